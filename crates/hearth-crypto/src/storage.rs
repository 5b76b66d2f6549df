//! Sealing for data at rest: every chunk of the document, every private entry and every
//! other secret row the profile store writes is sealed with the profile's storage key.
//!
//! Format (the `aead.rs` framing `STORAGE`): `version (1) || nonce (24)
//! || XChaCha20-Poly1305 ciphertext and tag`, with associated data `"hearth/storage/v1" || 0
//! || domain`. The domain names what the bytes
//! are (for example the table and row id), so a sealed value moved to another place in the
//! store fails to open instead of being misread.

use std::fmt;

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::aead::{STORAGE, SymmetricKey};

/// The symmetric key that seals a profile's stored data. It never leaves the device, so it
/// has a type of its own: nothing shared can be sealed under it by mistake, and it cannot be
/// handed out as another key.
pub struct StorageKey(SymmetricKey);

impl StorageKey {
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

    /// Seals `plaintext` for storage under `domain`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if no nonce could be drawn.
    pub fn seal(&self, domain: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(&STORAGE, domain, plaintext)
    }

    /// Opens a value sealed by [`StorageKey::seal`] under the same `domain`.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if the bytes were changed, truncated, sealed under another
    /// domain or with another key; [`CryptoError::UnsupportedVersion`] for an unknown format.
    pub fn open(&self, domain: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(&STORAGE, domain, sealed)
    }

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
