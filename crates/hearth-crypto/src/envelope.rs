//! Sealing and opening envelopes (docs/protocol.md): XChaCha20-Poly1305 under the epoch's content
//! key with the header as associated data, then an Ed25519 signature by the author over
//! hearth-proto's domain-separated hash of header, nonce and ciphertext.
//!
//! Opening checks in the order that keeps a forgery from costing anything: the signature
//! first (authenticity comes from it, not from the AEAD: age and a shared epoch key give no
//! sender authentication, docs/architecture.md, "Pitfalls"), then that the envelope is for the expected space and
//! epoch, and only then decrypts. Whether the author may write to the space (a member, not
//! removed at that epoch) is the ACL's question and is asked by the caller.
//!
//! Every plaintext is padded before it is encrypted ([`crate::padding`]: PADMÉ, at least
//! 1 KiB), so an envelope's size tells the relay only its bucket. A sender sizes what it
//! seals with [`max_plaintext_for`], which accounts for the padding, so that nothing it
//! seals is over the relay's envelope limit.

use hearth_proto::{Envelope, EnvelopeHeader, EnvelopeKind, SpaceId, VerifiedEnvelope};
use zeroize::Zeroizing;

use crate::aead::TAG_LEN;
use crate::padding::{self, PaddingError};
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
    /// It decrypted, but its padding is damaged or in a format this build does not read.
    #[error(transparent)]
    BadPadding(PaddingError),
}

/// How many bytes the envelope of a `len`-byte plaintext of `kind` takes on the wire, once
/// padded, encrypted and signed; `None` if `len` is too large to pad.
pub fn sealed_len(kind: EnvelopeKind, len: usize) -> Option<usize> {
    Some(Envelope::encoded_len(
        kind,
        padding::padded_len(len)?.checked_add(TAG_LEN)?,
    ))
}

/// The longest plaintext of `kind` whose sealed envelope is at most `limit` bytes (the
/// relay's `max_envelope_bytes`), padding included; `None` if not even an empty one fits.
pub fn max_plaintext_for(limit: usize, kind: EnvelopeKind) -> Option<usize> {
    let room = limit.checked_sub(Envelope::encoded_len(kind, TAG_LEN))?;
    padding::max_plaintext_within(room)
}

/// Pads `plaintext`, encrypts it under `key` and signs the result as `device`. The
/// envelope is [`sealed_len`] bytes long.
///
/// `header.author` must be `device`'s id; it is overwritten to make sure.
///
/// # Errors
/// [`CryptoError::Random`] if no nonce could be drawn, [`CryptoError::Padding`] for a
/// plaintext over 4 GiB.
pub fn seal(
    device: &DeviceKeys,
    key: &EpochKey,
    mut header: EnvelopeHeader,
    plaintext: &[u8],
) -> Result<Envelope, CryptoError> {
    header.author = device.device_id();
    let aad = header.associated_data();
    let padded = padding::pad(plaintext)?;
    let (nonce, ciphertext) = key.seal(&aad, &padded)?;
    let message = Envelope::signed_message(&header, &nonce, &ciphertext);
    let signature = device.sign(&message);
    Ok(Envelope::from_parts(header, nonce, ciphertext, signature))
}

/// Verifies and decrypts an envelope of `space` sealed under `key` (epoch `epoch`), and
/// takes off its padding (an envelope sealed before padding opens as it was).
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
    decrypt(envelope, space, epoch, key)
}

/// [`open`] for an envelope whose signature was already checked: decrypts it, without
/// checking the signature a second time (an Ed25519 verification, ~70 µs here).
///
/// # Errors
/// An [`EnvelopeError`] other than `BadSignature`.
pub fn open_verified(
    envelope: &VerifiedEnvelope,
    space: &SpaceId,
    epoch: u32,
    key: &EpochKey,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    decrypt(envelope, space, epoch, key)
}

/// Opens an envelope whose signature the caller checked.
fn decrypt(
    envelope: &Envelope,
    space: &SpaceId,
    epoch: u32,
    key: &EpochKey,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
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
    let mut opened = key
        .open(
            &header.associated_data(),
            envelope.nonce(),
            envelope.ciphertext(),
        )
        .map_err(|_| EnvelopeError::Undecryptable)?;
    let content = padding::content(&opened).map_err(EnvelopeError::BadPadding)?;
    opened.truncate(content.end);
    opened.drain(..content.start);
    Ok(opened)
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

    /// An envelope whose plaintext is `raw` exactly, unpadded: as hearth sealed them before
    /// padding, or as a faulty client might pad them.
    fn seal_raw(
        device: &DeviceKeys,
        key: &EpochKey,
        header: EnvelopeHeader,
        raw: &[u8],
    ) -> Envelope {
        let mut header = header;
        header.author = device.device_id();
        let (nonce, ciphertext) = key.seal(&header.associated_data(), raw).unwrap();
        let signature = device.sign(&Envelope::signed_message(&header, &nonce, &ciphertext));
        Envelope::from_parts(header, nonce, ciphertext, signature)
    }

    #[test]
    fn small_plaintexts_make_envelopes_of_one_size_and_larger_ones_grow_by_bucket() {
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let wire = |len: usize| {
            let env = seal(&device, &key, header(space, 0, 1), &vec![0x85; len]).unwrap();
            let bytes = env.encode();
            assert_eq!(Some(bytes.len()), sealed_len(EnvelopeKind::Changes, len));
            bytes.len()
        };
        // 62 header + 24 nonce + 4 length + 1024 padded + 16 tag + 64 signature.
        let small = 62 + 24 + 4 + 1024 + 16 + 64;
        for len in [0, 1, 18, 300, 1019] {
            assert_eq!(wire(len), small, "{len} bytes");
        }
        assert_eq!(wire(1020), small + 64);
        assert_eq!(wire(1083), small + 64);
        assert_eq!(wire(1084), small + 128);
        assert_eq!(
            sealed_len(EnvelopeKind::Snapshot { covers_seq: 3 }, 5),
            Some(small + 8)
        );
    }

    #[test]
    fn the_largest_plaintext_for_a_limit_fits_it_and_one_byte_more_does_not() {
        let kinds = [
            EnvelopeKind::Changes,
            EnvelopeKind::Snapshot { covers_seq: 3 },
        ];
        let limits = (0..5000)
            .chain(2_097_000..2_097_200)
            .chain([hearth_proto::Limits::default().envelope_bytes(), 1024 + 400]);
        for limit in limits {
            for kind in kinds {
                match max_plaintext_for(limit, kind) {
                    None => assert!(sealed_len(kind, 0).unwrap() > limit, "limit {limit}"),
                    Some(max) => {
                        assert!(sealed_len(kind, max).unwrap() <= limit, "limit {limit}");
                        assert!(sealed_len(kind, max + 1).unwrap() > limit, "limit {limit}");
                    }
                }
            }
        }
        // And sealed for real, at the relay's default 2 MiB.
        let limit = hearth_proto::Limits::default().envelope_bytes();
        let max = max_plaintext_for(limit, EnvelopeKind::Changes).unwrap();
        // 2 MiB less the overhead is under 2^21: 63 buckets of 32 KiB, less the prefix.
        assert_eq!(max, 63 * 32_768 - 5);
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let fits = seal(&device, &key, header(space, 0, 1), &vec![1; max]).unwrap();
        assert!(fits.encode().len() <= limit);
        let over = seal(&device, &key, header(space, 0, 1), &vec![1; max + 1]).unwrap();
        assert!(over.encode().len() > limit);
    }

    #[test]
    fn an_envelope_with_damaged_padding_is_refused_like_a_tampered_one() {
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        let mut padded = padding::pad(b"a new appreciation").unwrap();
        let at = padded.len() - 1;
        padded[at] = 7;
        let env = seal_raw(&device, &key, header(space, 0, 1), &padded);
        assert_eq!(
            open(&env, &space, 0, &key),
            Err(EnvelopeError::BadPadding(PaddingError::Damaged(
                "the padding is not all zeros"
            )))
        );
        padded[at] = 0;
        padded[1..5].copy_from_slice(&2000u32.to_be_bytes());
        let env = seal_raw(&device, &key, header(space, 0, 1), &padded);
        let refused = open(&env, &space, 0, &key).unwrap_err();
        assert!(
            refused.to_string().contains("runs past its end"),
            "{refused}"
        );
        let env = seal_raw(&device, &key, header(space, 0, 1), &[0x02, 0, 0, 0, 0]);
        let refused = open(&env, &space, 0, &key).unwrap_err();
        assert_eq!(
            refused,
            EnvelopeError::BadPadding(PaddingError::UnknownVersion(2))
        );
        assert!(refused.to_string().contains("update hearth"), "{refused}");
    }

    #[test]
    fn an_envelope_sealed_before_padding_opens_as_it_was() {
        let device = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let space = SpaceId::from_bytes([4; 16]);
        // Automerge's magic bytes start every plaintext an earlier hearth sealed.
        let legacy = [0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 0, 0, 0];
        let env = seal_raw(&device, &key, header(space, 0, 1), &legacy);
        assert_eq!(&open(&env, &space, 0, &key).unwrap()[..], &legacy);
        assert_eq!(env.encode().len(), 62 + 24 + 4 + 10 + 16 + 64, "unpadded");
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
