//! The signed envelope (docs/protocol.md): the only thing that carries a couple's data over the
//! wire and through the relay. The relay stores envelopes verbatim and checks their
//! signatures; only members' devices can open them. Sealing and opening happen in
//! hearth-crypto, which holds the keys; this module fixes the bytes both sides agree on.
//!
//! # Layout, format version 1
//!
//! All integers are big-endian and fixed-width; there are no optional fields except the
//! one the kind byte selects, so every envelope has exactly one encoding.
//!
//! The **header** (62 bytes for changes, 70 for a snapshot), which is also the AEAD
//! associated data returned by [`EnvelopeHeader::associated_data`]:
//!
//! | size | field                                                     |
//! |-----:|-----------------------------------------------------------|
//! |    1 | format version, `0x01`                                    |
//! |    1 | kind: `0x00` changes, `0x01` snapshot                     |
//! |    8 | `covers_seq`, **only** when kind is snapshot              |
//! |   16 | space id                                                  |
//! |    4 | epoch                                                     |
//! |   32 | author device id (Ed25519 public key)                     |
//! |    8 | author's device counter                                   |
//!
//! The **envelope** ([`Envelope::encode`]):
//!
//! | size | field                                          |
//! |-----:|------------------------------------------------|
//! |   62 or 70 | header, as above                       |
//! |   24 | XChaCha20-Poly1305 nonce                       |
//! |    4 | ciphertext length `n`                          |
//! |    n | ciphertext (including the Poly1305 tag)        |
//! |   64 | Ed25519 signature                              |
//!
//! [`Envelope::decode`] refuses an unknown version or kind, a length that runs past the
//! input, and any trailing byte.
//!
//! # Signature
//!
//! The author signs the 32-byte [`Envelope::signed_message`]:
//! `BLAKE3-derive-key("hearth envelope v1", u32 len(header) ‖ header ‖ u32 24 ‖ nonce ‖
//! u64 len(ciphertext) ‖ ciphertext)`, and [`Envelope::verify`] checks it with
//! `verify_strict` against the author named in the header. The context string keeps an
//! envelope signature from ever being valid as an ACL or auth signature, and the length
//! prefixes keep bytes from sliding between fields.

use crate::ProtoError;
use crate::cursor::Cursor;
use crate::ids::{DeviceId, SpaceId};
use crate::signature::verify_signature;

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// BLAKE3 derive-key context for [`Envelope::signed_message`].
pub const ENVELOPE_SIGNATURE_CONTEXT: &str = "hearth envelope v1";

const KIND_CHANGES: u8 = 0;
const KIND_SNAPSHOT: u8 = 1;
const NONCE_LEN: usize = 24;
const SIGNATURE_LEN: usize = 64;
/// The header of a changes envelope; a snapshot's carries 8 more (`covers_seq`).
const HEADER_LEN: usize = 62;

/// What an envelope's plaintext holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeKind {
    /// A batch of incremental document changes.
    Changes,
    /// A compacted document that makes every envelope up to `covers_seq` redundant.
    Snapshot {
        /// The last relay sequence number the snapshot includes.
        covers_seq: u64,
    },
}

/// The authenticated, unencrypted part of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvelopeHeader {
    /// Changes or snapshot.
    pub kind: EnvelopeKind,
    /// The space the envelope belongs to.
    pub space: SpaceId,
    /// The key epoch its content key comes from.
    pub epoch: u32,
    /// The device that wrote and signed it.
    pub author: DeviceId,
    /// The author's per-device counter; the relay deduplicates on (author, counter).
    pub counter: u64,
}

impl EnvelopeHeader {
    /// The canonical encoding of the header (see the module docs), used as the AEAD
    /// associated data and as the first part of the encoded envelope.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(70);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(ENVELOPE_VERSION);
        match self.kind {
            EnvelopeKind::Changes => out.push(KIND_CHANGES),
            EnvelopeKind::Snapshot { covers_seq } => {
                out.push(KIND_SNAPSHOT);
                out.extend_from_slice(&covers_seq.to_be_bytes());
            }
        }
        out.extend_from_slice(self.space.as_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(self.author.as_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
    }

    fn read(cur: &mut Cursor<'_>) -> Result<Self, ProtoError> {
        let version = cur.u8("version")?;
        if version != ENVELOPE_VERSION {
            return Err(ProtoError::UnsupportedVersion {
                got: version.into(),
                want: ENVELOPE_VERSION.into(),
            });
        }
        let kind = match cur.u8("kind")? {
            KIND_CHANGES => EnvelopeKind::Changes,
            KIND_SNAPSHOT => EnvelopeKind::Snapshot {
                covers_seq: cur.u64("covers_seq")?,
            },
            other => {
                return Err(ProtoError::malformed(
                    "envelope",
                    format!("unknown kind {other}"),
                ));
            }
        };
        Ok(Self {
            kind,
            space: SpaceId::from_bytes(cur.array("space")?),
            epoch: cur.u32("epoch")?,
            author: DeviceId::from_bytes(cur.array("author")?),
            counter: cur.u64("counter")?,
        })
    }
}

/// A signed, encrypted batch of changes or a snapshot, as it travels and is stored.
///
/// Holding an `Envelope` says nothing about its authenticity: call [`Envelope::verify`]
/// (or decode with [`Envelope::decode_verified`]) before trusting any of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    header: EnvelopeHeader,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl Envelope {
    /// The 32-byte message the author signs (see the module docs for its exact input).
    pub fn signed_message(
        header: &EnvelopeHeader,
        nonce: &[u8; 24],
        ciphertext: &[u8],
    ) -> [u8; 32] {
        let header = header.associated_data();
        let mut h = blake3::Hasher::new_derive_key(ENVELOPE_SIGNATURE_CONTEXT);
        h.update(&len_u32(header.len()));
        h.update(&header);
        h.update(&len_u32(nonce.len()));
        h.update(nonce);
        h.update(&(ciphertext.len() as u64).to_be_bytes());
        h.update(ciphertext);
        *h.finalize().as_bytes()
    }

    /// Assembles an envelope from its parts; hearth-crypto calls this after sealing and
    /// signing [`Envelope::signed_message`]. Nothing is checked here.
    pub fn from_parts(
        header: EnvelopeHeader,
        nonce: [u8; 24],
        ciphertext: Vec<u8>,
        signature: [u8; 64],
    ) -> Self {
        Self {
            header,
            nonce,
            ciphertext,
            signature,
        }
    }

    /// The header.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// The AEAD nonce.
    pub fn nonce(&self) -> &[u8; 24] {
        &self.nonce
    }

    /// The ciphertext, including the AEAD tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The author's Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Checks the author's signature over header, nonce and ciphertext.
    ///
    /// This proves who wrote the envelope, not that they may: the caller still checks
    /// that `header.author` is a member of the space's ACL.
    ///
    /// # Errors
    /// [`ProtoError::BadSignature`] if the signature does not verify under
    /// `header.author`.
    pub fn verify(&self) -> Result<(), ProtoError> {
        let message = Self::signed_message(&self.header, &self.nonce, &self.ciphertext);
        verify_signature(self.header.author.as_bytes(), &message, &self.signature)
    }

    /// How many bytes an envelope of `kind` takes once encoded, for a ciphertext (tag
    /// included) of `ciphertext_len` bytes: what the relay compares with
    /// [`Limits::max_envelope_bytes`](crate::Limits). A sender sizes its plaintexts with it,
    /// so that nothing it seals is too large for the relay to take.
    pub fn encoded_len(kind: EnvelopeKind, ciphertext_len: usize) -> usize {
        let header = match kind {
            EnvelopeKind::Changes => HEADER_LEN,
            EnvelopeKind::Snapshot { .. } => HEADER_LEN + 8,
        };
        (header + NONCE_LEN + 4 + SIGNATURE_LEN).saturating_add(ciphertext_len)
    }

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(70 + 24 + 4 + self.ciphertext.len() + 64);
        self.header.write(&mut out);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&len_u32(self.ciphertext.len()));
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes an envelope without checking its signature.
    ///
    /// Callers that took the bytes from the network should check them against
    /// [`Limits::max_envelope_bytes`](crate::Limits) first.
    ///
    /// # Errors
    /// [`ProtoError::UnsupportedVersion`] for a format version other than 1, and
    /// [`ProtoError::Malformed`] for anything else that is not exactly one envelope.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let mut cur = Cursor::new(bytes, "envelope");
        let header = EnvelopeHeader::read(&mut cur)?;
        let nonce = cur.array("nonce")?;
        let len = cur.u32("ciphertext length")?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| cur.remaining().checked_sub(SIGNATURE_LEN) == Some(*len))
            .ok_or_else(|| {
                ProtoError::malformed(
                    "envelope",
                    format!(
                        "ciphertext length {len} does not match the {} bytes left",
                        cur.remaining()
                    ),
                )
            })?;
        let ciphertext = cur.take(len, "ciphertext")?.to_vec();
        let signature = cur.array("signature")?;
        cur.finish()?;
        Ok(Self {
            header,
            nonce,
            ciphertext,
            signature,
        })
    }

    /// Decodes an envelope and checks its signature.
    ///
    /// # Errors
    /// As [`Envelope::decode`] and [`Envelope::verify`].
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, ProtoError> {
        let envelope = Self::decode(bytes)?;
        envelope.verify()?;
        Ok(envelope)
    }

    /// Checks the signature ([`Envelope::verify`]) and keeps the proof of it in the type,
    /// so what opens the envelope later need not check it again.
    ///
    /// # Errors
    /// [`ProtoError::BadSignature`], and the envelope is dropped.
    pub fn into_verified(self) -> Result<VerifiedEnvelope, ProtoError> {
        self.verify()?;
        Ok(VerifiedEnvelope(self))
    }
}

/// An [`Envelope`] whose signature was checked ([`Envelope::into_verified`]): its author
/// (`header().author`) signed exactly these bytes. Whether that device may write here is
/// still the ACL's question. There is no other way to make one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedEnvelope(Envelope);

impl std::ops::Deref for VerifiedEnvelope {
    type Target = Envelope;

    fn deref(&self) -> &Envelope {
        &self.0
    }
}

/// Lengths are bounded by frame limits far below 4 GiB; saturating keeps this total.
fn len_u32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    use super::*;
    use crate::test_support::{any_header, signed_envelope};

    fn vector_envelope() -> (SigningKey, Envelope) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space: SpaceId::from_bytes([0x11; 16]),
            epoch: 2,
            author: DeviceId::from_bytes(key.verifying_key().to_bytes()),
            counter: 42,
        };
        let nonce = [0x22; 24];
        let ciphertext = b"hearth test ciphertext".to_vec();
        let message = Envelope::signed_message(&header, &nonce, &ciphertext);
        let signature = key.sign(&message).to_bytes();
        (
            key,
            Envelope::from_parts(header, nonce, ciphertext, signature),
        )
    }

    /// Author key seed 0x07 × 32, space 0x11 × 16, epoch 2, counter 42, nonce 0x22 × 24,
    /// ciphertext "hearth test ciphertext": the vector docs/protocol.md quotes.
    #[test]
    fn envelope_test_vector_is_stable() {
        let (_, env) = vector_envelope();
        let encoded = hex::encode(env.encode());
        let message = hex::encode(Envelope::signed_message(
            env.header(),
            env.nonce(),
            env.ciphertext(),
        ));
        let ad = hex::encode(env.header().associated_data());
        let report = format!(
            "\nassociated data: {ad}\nsigned message:  {message}\nencoding:        {encoded}\n"
        );
        assert_eq!(
            ad,
            concat!(
                "0100",                                                             // version 1, kind changes
                "11111111111111111111111111111111",                                 // space
                "00000002",                                                         // epoch
                "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c", // author
                "000000000000002a",                                                 // counter
            ),
            "{report}"
        );
        assert_eq!(
            message, "a260b541fcb526cc2892ced63470e0e7dafdaa33faab23ecff07616caf698ee9",
            "{report}"
        );
        assert_eq!(
            encoded,
            concat!(
                "0100",                                                             // version 1, kind changes
                "11111111111111111111111111111111",                                 // space
                "00000002",                                                         // epoch
                "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c", // author
                "000000000000002a",                                                 // counter
                "222222222222222222222222222222222222222222222222",                 // nonce
                "00000016",                                     // ciphertext length
                "68656172746820746573742063697068657274657874", // "hearth test ciphertext"
                "543f9d25ac22e5c771bb13b92f157b393a577ceeb6213342c5ab5e65c4980af2", // signature
                "881da2b4bc2bb2e483483cef30a26a9fd8a64cbaef70778ba74f3a6154875d04",
            ),
            "{report}"
        );
        env.verify().unwrap();
    }

    #[test]
    fn snapshot_header_carries_covers_seq() {
        let (_, env) = vector_envelope();
        let mut header = *env.header();
        header.kind = EnvelopeKind::Snapshot { covers_seq: 9 };
        let ad = header.associated_data();
        assert_eq!(ad.len(), 70);
        assert_eq!(&ad[..10], &[1, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(env.header().associated_data().len(), 62);
    }

    #[test]
    fn the_encoded_length_is_known_before_encoding() {
        let (_, env) = vector_envelope();
        let kinds = [
            EnvelopeKind::Changes,
            EnvelopeKind::Snapshot { covers_seq: 9 },
        ];
        for kind in kinds {
            for len in [0, 1, 22, 1040, 70_000] {
                let mut header = *env.header();
                header.kind = kind;
                let sized = Envelope::from_parts(header, [0; 24], vec![0; len], [0; 64]);
                assert_eq!(Envelope::encoded_len(kind, len), sized.encode().len());
            }
        }
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let (_, env) = vector_envelope();
        let bytes = env.encode();
        for i in 0..bytes.len() {
            for bit in [0, 7] {
                let mut tampered = bytes.clone();
                tampered[i] ^= 1 << bit;
                assert!(
                    Envelope::decode_verified(&tampered).is_err(),
                    "flipping bit {bit} of byte {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn envelope_signed_by_someone_else_is_refused() {
        let (_, env) = vector_envelope();
        let stranger = SigningKey::from_bytes(&[8; 32]);
        let message = Envelope::signed_message(env.header(), env.nonce(), env.ciphertext());
        let forged = Envelope::from_parts(
            *env.header(),
            *env.nonce(),
            env.ciphertext().to_vec(),
            stranger.sign(&message).to_bytes(),
        );
        assert_eq!(forged.verify(), Err(ProtoError::BadSignature));
    }

    #[test]
    fn truncated_trailing_and_future_versions_are_refused() {
        let (_, env) = vector_envelope();
        let bytes = env.encode();
        for len in 0..bytes.len() {
            assert!(
                Envelope::decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Envelope::decode(&longer).is_err());
        let mut future = bytes;
        future[0] = 2;
        assert_eq!(
            Envelope::decode(&future),
            Err(ProtoError::UnsupportedVersion { got: 2, want: 1 })
        );
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(
            header in any_header(),
            nonce in any::<[u8; 24]>(),
            ciphertext in proptest::collection::vec(any::<u8>(), 0..300),
            sig in proptest::collection::vec(any::<u8>(), 64),
        ) {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            let env = Envelope::from_parts(header, nonce, ciphertext, signature);
            prop_assert_eq!(Envelope::decode(&env.encode())?, env);
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Envelope::decode(&bytes);
        }

        #[test]
        fn mutated_envelope_fails_decode_or_verify(
            (seed, header, ciphertext) in (any::<u8>(), any_header(), proptest::collection::vec(any::<u8>(), 0..100)),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let env = signed_envelope(seed, header, ciphertext);
            let original = env.encode();
            let mut bytes = original.clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes.extend_from_slice(&extra);
            if bytes != original {
                prop_assert!(Envelope::decode_verified(&bytes).is_err());
            }
        }
    }
}
