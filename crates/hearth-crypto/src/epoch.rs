//! Space content keys. Each epoch of a space has one random 32-byte key K[e], shared by the
//! member devices through lockboxes; envelopes of that epoch are encrypted under a key
//! derived from it (BLAKE3 `derive_key`, so the raw K[e] never keys a cipher directly and
//! other uses can derive their own keys from it later).
//!
//! Content encryption is XChaCha20-Poly1305 with a random 24-byte nonce; the caller passes
//! the envelope header's canonical bytes as associated data, so a ciphertext cannot be
//! moved under another header (space, epoch, author, counter).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

const CONTENT_KEY_CONTEXT: &str = "hearth 2026 envelope content key v1";

/// One epoch's content key, K[e].
#[derive(Clone)]
pub struct EpochKey(Zeroizing<[u8; 32]>);

impl EpochKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(random_bytes()?)))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The commitment to this key as epoch `epoch` of `space` that the ACL carries
    /// ([`hearth_proto::key_check`]).
    pub fn check(&self, space: &hearth_proto::SpaceId, epoch: u32) -> [u8; 32] {
        hearth_proto::key_check(space, epoch, &self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key = Zeroizing::new(blake3::derive_key(CONTENT_KEY_CONTEXT, &*self.0));
        XChaCha20Poly1305::new(&(*key).into())
    }

    /// Encrypts `plaintext` with a fresh random nonce, binding `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce could be drawn.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<([u8; 24], Vec<u8>), CryptoError> {
        let nonce: [u8; 24] = random_bytes()?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        Ok((nonce, ciphertext))
    }

    /// Decrypts what [`EpochKey::seal`] produced under the same `aad`.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if anything was changed or another key or `aad` is used.
    pub fn open(
        &self,
        aad: &[u8],
        nonce: &[u8; 24],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.cipher()
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
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
