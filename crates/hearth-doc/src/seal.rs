//! Sealed check-in answers: a commitment scheme, so neither partner reads the other's
//! answers before both have answered, and neither can change theirs after reading.
//!
//! When a partner submits, their answers enter the shared document encrypted under a fresh
//! random key ([`SealKey`]) with XChaCha20-Poly1305, next to a [`Commitment`]: a BLAKE3 hash
//! over the week, the person, the key, the nonce and the ciphertext. The key stays on the
//! device that sealed the answers. That device releases it (writes it into the document)
//! only once it sees the partner's sealed answers for the same week, and the release names
//! the partner commitment it saw ([`crate::Seal`] explains how readers use that).
//!
//! Why a hash over the key as well as the ciphertext: Poly1305 is not key-committing, so a
//! cheater could craft one ciphertext that opens to different answers under two keys. The
//! commitment pins the exact key, and a released key that does not hash to the commitment
//! opens nothing.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::DocError;
use crate::ids::PersonId;
use crate::week::Week;

const COMMIT_CONTEXT: &str = "hearth 2026-11 sealed check-in answers v1 commitment";
const AAD_PREFIX: &[u8] = b"hearth sealed check-in answers v1";

/// The 32-byte key one submission's answers are sealed under. Wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey(Zeroizing<[u8; 32]>);

impl SealKey {
    /// A key from its bytes (as kept in a profile).
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(Zeroizing::new(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(…)")
    }
}

/// The commitment to one sealed submission: 32 bytes, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Commitment([u8; 32]);

impl Commitment {
    /// The commitment's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A commitment from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Commitment {
        Commitment(bytes)
    }

    /// Reads the hex form.
    ///
    /// # Errors
    /// [`DocError::Invalid`] unless it is 64 hex digits.
    pub fn parse(text: &str) -> Result<Commitment, DocError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| DocError::Invalid {
            what: "commitment",
            input: text.to_owned(),
            expected: "64 hex digits",
        })?;
        Ok(Commitment(bytes))
    }

    /// The first 8 hex digits, enough to tell two commitments apart on screen.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({})", self.short())
    }
}

/// Sealed answers as they sit in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
    /// The encrypted answers (JSON), with the Poly1305 tag.
    pub ciphertext: Vec<u8>,
    /// The commitment that binds key, nonce and ciphertext to the week and person.
    pub commitment: Commitment,
}

/// Seals `plaintext` (one person's answers for `week`) under a fresh key.
///
/// # Errors
/// [`DocError::Random`] if the operating system has no randomness to give.
pub fn seal(
    week: Week,
    person: &PersonId,
    plaintext: &[u8],
) -> Result<(SealKey, Sealed), DocError> {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut key[..]).map_err(|e| DocError::Random(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| DocError::Random(e.to_string()))?;
    let key = SealKey(key);
    let aad = aad(week, person);
    let ciphertext = XChaCha20Poly1305::new(&(*key.0).into())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| DocError::Random("the cipher refused to seal".into()))?;
    let commitment = commit(week, person, &key, &nonce, &ciphertext);
    Ok((
        key,
        Sealed {
            nonce,
            ciphertext,
            commitment,
        },
    ))
}

/// Opens sealed answers with a released (or own) key: the key must hash, with everything
/// else, to the commitment, and the ciphertext must authenticate for this week and person.
/// `None` otherwise: a wrong key, or answers moved from another week or person.
pub fn open(week: Week, person: &PersonId, sealed: &Sealed, key: &SealKey) -> Option<Vec<u8>> {
    if commit(week, person, key, &sealed.nonce, &sealed.ciphertext) != sealed.commitment {
        return None;
    }
    XChaCha20Poly1305::new(&(*key.0).into())
        .decrypt(
            &XNonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad(week, person),
            },
        )
        .ok()
}

fn aad(week: Week, person: &PersonId) -> Vec<u8> {
    let week = week.to_string();
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 2 + week.len() + person.as_str().len());
    aad.extend_from_slice(AAD_PREFIX);
    for part in [week.as_str(), person.as_str()] {
        aad.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn commit(
    week: Week,
    person: &PersonId,
    key: &SealKey,
    nonce: &[u8; 24],
    ciphertext: &[u8],
) -> Commitment {
    let mut h = blake3::Hasher::new_derive_key(COMMIT_CONTEXT);
    let week = week.to_string();
    for part in [week.as_bytes(), person.as_str().as_bytes()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(key.as_bytes());
    h.update(nonce);
    h.update(&(ciphertext.len() as u64).to_le_bytes());
    h.update(ciphertext);
    Commitment(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week() -> Week {
        "2026-W47".parse().unwrap()
    }

    #[test]
    fn sealed_answers_open_only_with_their_key_for_their_week_and_person() {
        let ana = PersonId::random();
        let (key, sealed) = seal(week(), &ana, b"{\"feeling\":8}").unwrap();
        assert_eq!(
            open(week(), &ana, &sealed, &key).unwrap(),
            b"{\"feeling\":8}"
        );

        let (other, _) = seal(week(), &ana, b"x").unwrap();
        assert!(open(week(), &ana, &sealed, &other).is_none(), "another key");
        assert!(
            open(week().next(), &ana, &sealed, &key).is_none(),
            "another week"
        );
        assert!(
            open(week(), &PersonId::random(), &sealed, &key).is_none(),
            "another person"
        );
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(
            open(week(), &ana, &flipped, &key).is_none(),
            "changed ciphertext"
        );
        assert!(
            !sealed.ciphertext.windows(7).any(|w| w == b"feeling"),
            "the plaintext is not in the sealed bytes"
        );
    }

    // Sealed answers made by the first release with sealing, as the document stores them
    // (`SealedSubmission`), with the key the sealing device kept. Existing check-ins must
    // keep opening: read the old format beside a new one, never edit these to pass.
    const VECTOR_WEEK: &str = "2026-W47";
    const VECTOR_PERSON: &str = "0123456789abcdef0123456789abcdef";
    const VECTOR_ANSWERS: &[u8] = b"{\"feeling\":8,\"need\":[\"time\"]}";
    const VECTOR_KEY: &str = "4932375b5c136ba4ef33752c3134ef3c0b4f5d758186b16c0af894390cc342ee";
    const VECTOR_SUBMISSION: &str = "010000019ab0a20700e6676171d7b1ecbd328cefc53cc756a397ce2cd04c4d658b4e1a3f7c962f5d6c0661ae68c1c9461606e6d7416a6a03fbb88c04bbd97e851a15350af9a94732bf59848876143632b898959090dc30a8ab29689223e26c7f7ca2cbb1b2a65eaf700d7ef05ca7";

    #[test]
    fn answers_sealed_by_the_first_release_still_open_and_are_rebuilt_byte_for_byte() {
        let week: Week = VECTOR_WEEK.parse().unwrap();
        let person: PersonId = VECTOR_PERSON.parse().unwrap();
        let mut key = [0u8; 32];
        hex::decode_to_slice(VECTOR_KEY, &mut key).unwrap();
        let key = SealKey::from_bytes(key);
        let stored = hex::decode(VECTOR_SUBMISSION).unwrap();
        let submission = crate::records::SealedSubmission::decode(&stored).unwrap();
        assert_eq!(submission.submitted_at, crate::Millis(1_763_900_000_000));
        let sealed = submission.sealed;
        assert_eq!(open(week, &person, &sealed, &key).unwrap(), VECTOR_ANSWERS);

        // XChaCha20-Poly1305 under the key itself, associated data "hearth sealed check-in
        // answers v1" ‖ len ‖ week ‖ len ‖ person; the commitment a keyed BLAKE3 over
        // week, person, key, nonce and ciphertext.
        let aad = [
            b"hearth sealed check-in answers v1".as_slice(),
            &[8],
            VECTOR_WEEK.as_bytes(),
            &[32],
            VECTOR_PERSON.as_bytes(),
        ]
        .concat();
        let ciphertext = XChaCha20Poly1305::new(&(*key.as_bytes()).into())
            .encrypt(
                &XNonce::from(sealed.nonce),
                Payload {
                    msg: VECTOR_ANSWERS,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(ciphertext, sealed.ciphertext);
        assert_eq!(
            commit(week, &person, &key, &sealed.nonce, &ciphertext),
            sealed.commitment
        );
    }

    #[test]
    fn commitments_and_keys_read_back_from_hex() {
        let (key, sealed) = seal(week(), &PersonId::random(), b"answers").unwrap();
        let text = sealed.commitment.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(Commitment::parse(&text).unwrap(), sealed.commitment);
        assert!(Commitment::parse("abc").is_err());
        assert_eq!(SealKey::from_bytes(*key.as_bytes()), key);
        assert_eq!(format!("{key:?}"), "SealKey(…)", "keys never reach a log");
    }
}
