//! Space content keys. Each epoch of a space has one random 32-byte key K[e], shared by the
//! member devices through lockboxes; envelopes of that epoch are encrypted under a key
//! derived from it (BLAKE3 `derive_key`, so the raw K[e] never keys a cipher directly and
//! other uses can derive their own keys from it later).
//!
//! Content encryption is the `aead.rs` domain `ENVELOPE`:
//! XChaCha20-Poly1305 with a random 24-byte nonce, carried in the envelope; the caller passes
//! the envelope header's canonical bytes as associated data, so a ciphertext cannot be
//! moved under another header (space, epoch, author, counter).

use std::fmt;

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::aead::{ENVELOPE, NONCE_LEN, SymmetricKey};

const CONTENT_KEY_CONTEXT: &str = "hearth 2026 envelope content key v1";

/// One epoch's content key, `K[e]`. Shared with every member device (through lockboxes), so
/// it has a type of its own: profile data is never sealed under it by mistake.
#[derive(Clone)]
pub struct EpochKey(SymmetricKey);

impl EpochKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(SymmetricKey::generate()?))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SymmetricKey::from_bytes(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The commitment to this key as epoch `epoch` of `space` that the ACL carries
    /// ([`hearth_proto::key_check`]).
    pub fn check(&self, space: &hearth_proto::SpaceId, epoch: u32) -> [u8; 32] {
        hearth_proto::key_check(space, epoch, self.as_bytes())
    }

    fn content_key(&self) -> SymmetricKey {
        self.0.derive(CONTENT_KEY_CONTEXT)
    }

    /// Encrypts `plaintext` with a fresh random nonce, binding `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce could be drawn.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<([u8; NONCE_LEN], Vec<u8>), CryptoError> {
        self.content_key().seal_detached(&ENVELOPE, aad, plaintext)
    }

    /// Decrypts what [`EpochKey::seal`] produced under the same `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if anything was changed or another key or `aad` is used.
    pub fn open(
        &self,
        aad: &[u8],
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.content_key()
            .open_detached(&ENVELOPE, aad, nonce, ciphertext)
    }

    #[cfg(test)]
    pub(crate) fn content_key_for_vector(&self) -> SymmetricKey {
        self.content_key()
    }
}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_opens_only_with_the_same_key_and_header() {
        let k = EpochKey::generate().unwrap();
        let (nonce, ct) = k.seal(b"header-1", b"we planned a trip").unwrap();
        assert_eq!(
            &k.open(b"header-1", &nonce, &ct).unwrap()[..],
            b"we planned a trip"
        );
        assert!(k.open(b"header-2", &nonce, &ct).is_err());
        assert!(
            EpochKey::generate()
                .unwrap()
                .open(b"header-1", &nonce, &ct)
                .is_err()
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(k.open(b"header-1", &nonce, &bad).is_err());
    }
}
