//! Sealing for data at rest: every chunk of the document, every private entry and every
//! other secret row the profile store writes is sealed with the profile's storage key.
//!
//! Format: `version (1) || nonce (24) || XChaCha20-Poly1305 ciphertext and tag`, with
//! associated data `"hearth/storage/v1" || 0 || domain`. The domain names what the bytes
//! are (for example the table and row id), so a sealed value moved to another place in the
//! store fails to open instead of being misread.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AD_PREFIX: &[u8] = b"hearth/storage/v1\0";

/// The symmetric key that seals a profile's stored data.
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl StorageKey {
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

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }

    /// Seals `plaintext` for storage under `domain`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce could be drawn.
    pub fn seal(&self, domain: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let aad = associated_data(domain);
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value sealed by [`StorageKey::seal`] under the same `domain`.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if the bytes were changed, truncated, sealed under another
    /// domain or with another key; [`CryptoError::UnsupportedVersion`] for an unknown format.
    pub fn open(&self, domain: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Tampered)?;
        if version != VERSION {
            return Err(CryptoError::UnsupportedVersion {
                got: version,
                want: VERSION,
            });
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Tampered);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Tampered)?;
        let aad = associated_data(domain);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
    }
}

impl StorageKey {
    /// Seals an epoch key for storage under `domain`.
    ///
    /// # Errors
    /// [`CryptoError::Random`].
    pub fn seal_epoch_key(
        &self,
        domain: &[u8],
        key: &crate::EpochKey,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal(domain, key.as_bytes())
    }

    /// Opens an epoch key sealed by [`StorageKey::seal_epoch_key`].
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if it fails its integrity check or is not a key.
    pub fn open_epoch_key(
        &self,
        domain: &[u8],
        sealed: &[u8],
    ) -> Result<crate::EpochKey, CryptoError> {
        let bytes = self.open(domain, sealed)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Tampered)?;
        Ok(crate::EpochKey::from_bytes(key))
    }
}

fn associated_data(domain: &[u8]) -> Vec<u8> {
    [AD_PREFIX, domain].concat()
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_under_its_domain_only() {
        let key = StorageKey::generate().unwrap();
        let sealed = key.seal(b"chunk/1", b"our anniversary").unwrap();
        assert_eq!(
            &key.open(b"chunk/1", &sealed).unwrap()[..],
            b"our anniversary"
        );
        assert!(matches!(
            key.open(b"chunk/2", &sealed),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let key = StorageKey::generate().unwrap();
        let sealed = key.seal(b"d", b"hello").unwrap();
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                assert!(key.open(b"d", &bad).is_err(), "byte {i} bit {bit}");
            }
        }
        for len in 0..sealed.len() {
            assert!(
                key.open(b"d", &sealed[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn another_key_cannot_open() {
        let a = StorageKey::generate().unwrap();
        let b = StorageKey::generate().unwrap();
        let sealed = a.seal(b"d", b"hello").unwrap();
        assert!(matches!(b.open(b"d", &sealed), Err(CryptoError::Tampered)));
    }

    #[test]
    fn plaintext_does_not_appear_in_sealed_bytes() {
        let key = StorageKey::generate().unwrap();
        let sealed = key.seal(b"d", b"MARKER-PLAINTEXT-123").unwrap();
        assert!(!sealed.windows(20).any(|w| w == b"MARKER-PLAINTEXT-123"));
    }
}
