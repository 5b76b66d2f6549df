//! Sealing and opening envelopes (docs/protocol.md): XChaCha20-Poly1305 under the epoch's content
//! key with the header as associated data, then an Ed25519 signature by the author over
//! hearth-proto's domain-separated hash of header, nonce and ciphertext.
//!
//! Opening checks in the order that keeps a forgery from costing anything: the signature
//! first (authenticity comes from it, not from the AEAD: age and a shared epoch key give no
//! sender authentication, docs/architecture.md, "Pitfalls"), then that the envelope is for the expected space and
//! epoch, and only then decrypts. Whether the author may write to the space (a member, not
//! removed at that epoch) is the ACL's question and is asked by the caller.

use hearth_proto::{Envelope, EnvelopeHeader, SpaceId};
use zeroize::Zeroizing;

use crate::{CryptoError, DeviceKeys, EpochKey};

/// Why an envelope was refused. Each names what a client should tell the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The signature does not verify against the author named in the header.
    #[error("the signature does not match its author")]
    BadSignature,
    /// The envelope is for another space.
    #[error("the envelope belongs to another space")]
    WrongSpace,
    /// The envelope is for an epoch whose key was not supplied.
    #[error("the envelope is for epoch {got}, not {want}")]
    WrongEpoch {
        /// Its epoch.
        got: u32,
        /// The epoch of the key given.
        want: u32,
    },
    /// It verified but did not decrypt: the author used a key other than the epoch's.
    #[error("the envelope does not decrypt with the space's key")]
    Undecryptable,
}

/// Encrypts `plaintext` under `key` and signs the result as `device`.
///
/// `header.author` must be `device`'s id; it is overwritten to make sure.
///
/// # Errors
/// [`CryptoError::Random`] if no nonce could be drawn.
pub fn seal(
    device: &DeviceKeys,
    key: &EpochKey,
    mut header: EnvelopeHeader,
    plaintext: &[u8],
) -> Result<Envelope, CryptoError> {
    header.author = device.device_id();
    let aad = header.associated_data();
    let (nonce, ciphertext) = key.seal(&aad, plaintext)?;
    let message = Envelope::signed_message(&header, &nonce, &ciphertext);
    let signature = device.sign(&message);
    Ok(Envelope::from_parts(header, nonce, ciphertext, signature))
}

/// Verifies and decrypts an envelope of `space` sealed under `key` (epoch `epoch`).
///
/// # Errors
/// An [`EnvelopeError`]; nothing is decrypted unless the signature verifies.
pub fn open(
    envelope: &Envelope,
    space: &SpaceId,
    epoch: u32,
    key: &EpochKey,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    envelope.verify().map_err(|_| EnvelopeError::BadSignature)?;
    let header = envelope.header();
    if header.space != *space {
        return Err(EnvelopeError::WrongSpace);
    }
    if header.epoch != epoch {
        return Err(EnvelopeError::WrongEpoch {
            got: header.epoch,
            want: epoch,
        });
    }
    key.open(
        &header.associated_data(),
        envelope.nonce(),
        envelope.ciphertext(),
    )
    .map_err(|_| EnvelopeError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_proto::EnvelopeKind;

    fn header(space: SpaceId, epoch: u32, counter: u64) -> EnvelopeHeader {
        EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space,
            epoch,
            author: hearth_proto::DeviceId::from_bytes([0; 32]),
            counter,
        }
    }

    #[test]
    fn a_sealed_envelope_opens_for_its_space_and_epoch() {
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let env = seal(&device, &key, header(space, 2, 7), b"a new appreciation").unwrap();
        assert_eq!(env.header().author, device.device_id());
        let decoded = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(
            &open(&decoded, &space, 2, &key).unwrap()[..],
            b"a new appreciation"
        );
        assert_eq!(
            open(&decoded, &SpaceId::from_bytes([5; 16]), 2, &key),
            Err(EnvelopeError::WrongSpace)
        );
        assert_eq!(
            open(&decoded, &space, 3, &key),
            Err(EnvelopeError::WrongEpoch { got: 2, want: 3 })
        );
        assert_eq!(
            open(&decoded, &space, 2, &EpochKey::generate().unwrap()),
            Err(EnvelopeError::Undecryptable)
        );
    }

    #[test]
    fn every_byte_of_an_envelope_is_protected() {
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let bytes = seal(&device, &key, header(space, 0, 1), b"journal")
            .unwrap()
            .encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let opened = Envelope::decode(&bad)
                .ok()
                .and_then(|e| open(&e, &space, 0, &key).ok());
            assert!(opened.is_none(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_forger_with_the_space_key_cannot_pass_as_another_device() {
        // Someone holding K[e] (a removed device, say) seals under their own key but names
        // the partner as author: the signature check refuses it before decryption.
        let partner = DeviceKeys::generate().unwrap();
        let forger = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let real = seal(&forger, &key, header(space, 0, 1), b"forged").unwrap();
        let mut h = *real.header();
        h.author = partner.device_id();
        let forged = Envelope::from_parts(
            h,
            *real.nonce(),
            real.ciphertext().to_vec(),
            *real.signature(),
        );
        assert_eq!(
            open(&forged, &space, 0, &key),
            Err(EnvelopeError::BadSignature)
        );
    }
}
