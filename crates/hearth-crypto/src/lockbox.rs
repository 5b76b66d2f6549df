//! Lockboxes: an epoch key `K[e]` wrapped for one member device, so the relay can hold them
//! as opaque blobs and a device fetches its own.
//!
//! A lockbox is an age file (X25519) to the device's age recipient. age has no sender
//! authentication (docs/architecture.md, "Pitfalls"): anyone holding the recipient can make a lockbox that opens
//! cleanly. So the plaintext names the space and epoch it is for, and [`open`] checks them;
//! callers trust a key only as far as the signed ACL says its epoch exists, and every
//! envelope is still checked against its author's signature before it is decrypted.
//!
//! Plaintext layout: `"hearth-lockbox v1" || space (16) || epoch (4, big-endian) || K[e] (32)`.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::{CryptoError, DeviceKeys, EpochKey};

const MAGIC: &[u8] = b"hearth-lockbox v1";
/// The bech32 prefix of age X25519 recipients.
const RECIPIENT_HRP: &str = "age";

/// The raw X25519 public key inside an `age1…` recipient.
///
/// # Errors
/// [`CryptoError::InvalidRecipient`] if `recipient` is not an age X25519 recipient.
pub fn recipient_bytes(recipient: &str) -> Result<[u8; 32], CryptoError> {
    let invalid = |why: &str| CryptoError::InvalidRecipient(why.to_owned());
    let (hrp, data) = bech32::decode(recipient).map_err(|e| invalid(&e.to_string()))?;
    if hrp.as_str() != RECIPIENT_HRP {
        return Err(invalid("not an age recipient"));
    }
    data.try_into()
        .map_err(|_| invalid("an age recipient holds 32 bytes"))
}

/// The `age1…` recipient of a raw X25519 public key (as the ACL carries it).
///
/// # Errors
/// [`CryptoError::InvalidRecipient`] if the bytes cannot be encoded (they always can).
pub fn recipient_string(bytes: &[u8; 32]) -> Result<String, CryptoError> {
    let hrp = bech32::Hrp::parse(RECIPIENT_HRP)
        .map_err(|e| CryptoError::InvalidRecipient(e.to_string()))?;
    bech32::encode::<bech32::Bech32>(hrp, bytes)
        .map_err(|e| CryptoError::InvalidRecipient(e.to_string()))
}

/// Wraps `key` (epoch `epoch` of `space`) for the device whose age X25519 public key is
/// `recipient` (the 32 bytes the ACL carries).
///
/// # Errors
/// [`CryptoError::InvalidRecipient`] if `recipient` is not a usable X25519 public key.
pub fn seal(
    key: &EpochKey,
    space: &[u8; 16],
    epoch: u32,
    recipient: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    let recipient: age::x25519::Recipient = recipient_string(recipient)?
        .parse()
        .map_err(|e: &str| CryptoError::InvalidRecipient(e.to_owned()))?;
    let plaintext = Zeroizing::new([MAGIC, space, &epoch.to_be_bytes(), key.as_bytes()].concat());
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| CryptoError::InvalidRecipient(e.to_string()))?;
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|_| CryptoError::Tampered)?;
    writer
        .write_all(&plaintext)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|_| CryptoError::Tampered)?;
    Ok(out)
}

/// Opens a lockbox meant for `device`, for epoch `epoch` of `space`.
///
/// # Errors
/// [`CryptoError::Tampered`] if it is not for this device, damaged, or names another space
/// or epoch.
pub fn open(
    blob: &[u8],
    device: &DeviceKeys,
    space: &[u8; 16],
    epoch: u32,
) -> Result<EpochKey, CryptoError> {
    let decryptor = age::Decryptor::new_buffered(blob).map_err(|_| CryptoError::Tampered)?;
    if decryptor.is_scrypt() {
        return Err(CryptoError::Tampered);
    }
    let identity = device.age_identity();
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|_| CryptoError::Tampered)?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plaintext)
        .map_err(|_| CryptoError::Tampered)?;
    let expected_len = MAGIC.len() + 16 + 4 + 32;
    if plaintext.len() != expected_len || !plaintext.starts_with(MAGIC) {
        return Err(CryptoError::Tampered);
    }
    let rest = &plaintext[MAGIC.len()..];
    if &rest[..16] != space || rest[16..20] != epoch.to_be_bytes() {
        return Err(CryptoError::Tampered);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&rest[20..]);
    Ok(EpochKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lockbox_opens_for_its_device_space_and_epoch_only() {
        let alice = DeviceKeys::generate().unwrap();
        let bob = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = [9u8; 16];
        let recipient = alice.recipient_bytes().unwrap();
        assert_eq!(
            recipient_string(&recipient).unwrap(),
            alice.age_recipient(),
            "the ACL's 32 bytes are age's recipient"
        );
        let blob = seal(&key, &space, 3, &recipient).unwrap();
        let opened = open(&blob, &alice, &space, 3).unwrap();
        assert_eq!(opened.as_bytes(), key.as_bytes());
        assert!(open(&blob, &bob, &space, 3).is_err(), "another device");
        assert!(open(&blob, &alice, &[8u8; 16], 3).is_err(), "another space");
        assert!(open(&blob, &alice, &space, 4).is_err(), "another epoch");
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(open(&bad, &alice, &space, 3).is_err(), "damaged");
        assert!(recipient_bytes("not a recipient").is_err());
        assert!(
            recipient_bytes(
                &recipient_string(&[1; 32])
                    .unwrap()
                    .replacen("age", "agf", 1)
            )
            .is_err()
        );
    }
}
