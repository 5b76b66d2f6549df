//! Sealed check-in answers: a commitment scheme, so neither partner reads the other's
//! answers before both have answered, and neither can change theirs after reading.
//!
//! When a partner submits, their answers enter the shared document encrypted under a fresh
//! random key ([`SealKey`]) with XChaCha20-Poly1305 (the `aead.rs` domain
//! `CHECKIN_ANSWERS`), next to a [`Commitment`]: a BLAKE3 hash over the week, the person,
//! the key, the nonce and the ciphertext. The key stays on the device that sealed the
//! answers. That device releases it (writes it into the document) only once it sees the
//! partner's sealed answers for the same week, and the release names the partner commitment
//! it saw; hearth-doc's `Seal` explains how readers use that.
//!
//! Why a hash over the key as well as the ciphertext: Poly1305 is not key-committing, so a
//! cheater could craft one ciphertext that opens to different answers under two keys. The
//! commitment pins the exact key, and a released key that does not hash to the commitment
//! opens nothing.
//!
//! This lives here rather than in hearth-doc so that all of hearth's cryptography is in one
//! crate. hearth-doc calls [`seal`] when a check-in is submitted and [`open`] when it settles
//! who may read what: the reveal rules are the document's, the cryptography is this
//! module's. The week and person are passed as the text the document stores them as
//! (`2026-W47`, 32 hex digits), which is also what the associated data and commitment bind.

use std::fmt;

use crate::CryptoError;
use crate::aead::{CHECKIN_ANSWERS, NONCE_LEN, SymmetricKey};

const COMMIT_CONTEXT: &str = "hearth 2026-11 sealed check-in answers v1 commitment";

/// The 32-byte key one submission's answers are sealed under. Wiped when dropped.
///
/// Its own type because it is the one key hearth publishes (in the shared document, once
/// released): no other key may be handed out in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey(SymmetricKey);

impl SealKey {
    /// A key from its bytes (as kept in a profile, or read from a released key).
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(SymmetricKey::from_bytes(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
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
    /// [`CryptoError::InvalidCommitment`] unless it is 64 hex digits.
    pub fn parse(text: &str) -> Result<Commitment, CryptoError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| CryptoError::InvalidCommitment(text.to_owned()))?;
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
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted answers (JSON), with the Poly1305 tag.
    pub ciphertext: Vec<u8>,
    /// The commitment that binds key, nonce and ciphertext to the week and person.
    pub commitment: Commitment,
}

/// Seals `plaintext` (the answers of `person` for `week`) under a fresh key.
///
/// # Errors
/// [`CryptoError::Random`] if the operating system has no randomness to give.
pub fn seal(week: &str, person: &str, plaintext: &[u8]) -> Result<(SealKey, Sealed), CryptoError> {
    let key = SealKey(SymmetricKey::generate()?);
    let (nonce, ciphertext) =
        key.0
            .seal_detached(&CHECKIN_ANSWERS, &context(week, person), plaintext)?;
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
pub fn open(week: &str, person: &str, sealed: &Sealed, key: &SealKey) -> Option<Vec<u8>> {
    if commit(week, person, key, &sealed.nonce, &sealed.ciphertext) != sealed.commitment {
        return None;
    }
    key.0
        .open_detached(
            &CHECKIN_ANSWERS,
            &context(week, person),
            &sealed.nonce,
            &sealed.ciphertext,
        )
        .ok()
        .map(|plain| plain.to_vec())
}

/// `len ‖ week ‖ len ‖ person`, bound after the domain prefix.
fn context(week: &str, person: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + week.len() + person.len());
    for part in [week, person] {
        out.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn commit(
    week: &str,
    person: &str,
    key: &SealKey,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Commitment {
    let mut h = blake3::Hasher::new_derive_key(COMMIT_CONTEXT);
    for part in [week.as_bytes(), person.as_bytes()] {
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
impl SealKey {
    /// [`seal`] with a chosen nonce, to rebuild the fixed vectors.
    pub(crate) fn seal_for_vector(
        &self,
        week: &str,
        person: &str,
        nonce: &[u8],
        plaintext: &[u8],
    ) -> Sealed {
        let ciphertext =
            self.0
                .encrypt_for_vector(&CHECKIN_ANSWERS, nonce, &context(week, person), plaintext);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("vectors hold 24-byte nonces");
        let commitment = commit(week, person, self, &nonce, &ciphertext);
        Sealed {
            nonce,
            ciphertext,
            commitment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: &str = "2026-W47";
    const ANA: &str = "0123456789abcdef0123456789abcdef";
    const BEN: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn sealed_answers_open_only_with_their_key_for_their_week_and_person() {
        let (key, sealed) = seal(WEEK, ANA, b"{\"feeling\":8}").unwrap();
        assert_eq!(open(WEEK, ANA, &sealed, &key).unwrap(), b"{\"feeling\":8}");

        let (other, _) = seal(WEEK, ANA, b"x").unwrap();
        assert!(open(WEEK, ANA, &sealed, &other).is_none(), "another key");
        assert!(
            open("2026-W48", ANA, &sealed, &key).is_none(),
            "another week"
        );
        assert!(open(WEEK, BEN, &sealed, &key).is_none(), "another person");
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(
            open(WEEK, ANA, &flipped, &key).is_none(),
            "changed ciphertext"
        );
        assert!(
            !sealed.ciphertext.windows(7).any(|w| w == b"feeling"),
            "the plaintext is not in the sealed bytes"
        );
    }

    #[test]
    fn a_key_that_does_not_match_the_commitment_opens_nothing_even_if_it_decrypts() {
        let (key, mut sealed) = seal(WEEK, ANA, b"answers").unwrap();
        sealed.commitment = Commitment::from_bytes([0; 32]);
        assert!(open(WEEK, ANA, &sealed, &key).is_none());
    }

    #[test]
    fn commitments_and_keys_read_back_from_hex() {
        let (key, sealed) = seal(WEEK, ANA, b"answers").unwrap();
        let text = sealed.commitment.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(Commitment::parse(&text).unwrap(), sealed.commitment);
        assert!(matches!(
            Commitment::parse("abc"),
            Err(CryptoError::InvalidCommitment(_))
        ));
        assert_eq!(SealKey::from_bytes(*key.as_bytes()), key);
        assert_eq!(format!("{key:?}"), "SealKey(…)", "keys never reach a log");
    }
}
