//! The one way hearth encrypts with a symmetric key: XChaCha20-Poly1305 with a random
//! 24-byte nonce, and associated data that starts with a fixed prefix naming what is sealed
//! (its *domain*) followed by the context the caller binds (a row's domain, a header, a space
//! and epoch). Four things are sealed this way, and before this module each had its own
//! hand-written copy of the same steps:
//!
//! | what                                 | key                        | layout                         | associated data                               |
//! |--------------------------------------|----------------------------|--------------------------------|-----------------------------------------------|
//! | profile store rows ([`STORAGE`])     | the storage key            | `1 ‖ nonce ‖ ciphertext`       | `"hearth/storage/v1" ‖ 0 ‖ row domain`        |
//! | invite lockbox ([`INVITE_LOCKBOX`])  | derived from the secret    | `nonce ‖ ciphertext`           | `"hearth invite lockbox v1" ‖ space ‖ epoch`  |
//! | envelope content ([`ENVELOPE`])      | derived from K\[e\]        | nonce in the envelope frame    | the header's canonical bytes                  |
//! | check-in answers ([`CHECKIN_ANSWERS`]) | the submission's own key | nonce in the stored submission | `"hearth sealed check-in answers v1" ‖ week ‖ person` |
//!
//! The layouts differ because the bytes are already out there: profiles on disk, lockboxes
//! on relays, envelopes in every device's history, sealed answers in the shared document.
//! A partner on an older release must keep opening what a newer one writes, so each domain
//! keeps its exact bytes, pinned by the fixed vectors in `vectors.rs`. What is shared is the
//! code, and a rule for anything sealed from now on: a new domain uses [`Layout::Versioned`]
//! (a version byte first, checked on open), with a prefix that names it and its version.
//! Where the nonce sits in a structure of its own ([`Domain`] without a [`Framing`]), that
//! structure's own version byte covers the layout.
//!
//! [`SymmetricKey`] is the one 32-byte key type behind all of them: zeroized on drop, never
//! printed. Public APIs wrap it in a type per role only where mixing two up would leak
//! something: [`crate::StorageKey`] never leaves the device, [`crate::EpochKey`] is shared
//! with every member, and [`crate::answers::SealKey`] is published in the shared document
//! once released; sealing profile rows under a key that is (or will be) shared, or releasing
//! the storage key as an answers key, must not type-check. The invite lockbox key never
//! leaves [`crate::InviteKeys`] and needs no wrapper.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes};

/// The length of an XChaCha20-Poly1305 nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// The length of a Poly1305 tag, which every ciphertext carries after the encrypted bytes.
pub(crate) const TAG_LEN: usize = 16;

/// A 32-byte symmetric key. Wiped when dropped; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct SymmetricKey(Zeroizing<[u8; 32]>);

impl SymmetricKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(random_bytes()?)))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key for one use of this one (BLAKE3 `derive_key`): `context` names the use, so
    /// the raw key never keys two different things.
    pub(crate) fn derive(&self, context: &str) -> SymmetricKey {
        Self(Zeroizing::new(blake3::derive_key(context, &*self.0)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }

    /// Seals `plaintext` in `framing`'s layout, binding `context`.
    pub(crate) fn seal(
        &self,
        framing: &Framing,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_with_nonce(framing, random_bytes()?, context, plaintext)
    }

    fn seal_with_nonce(
        &self,
        framing: &Framing,
        nonce: [u8; NONCE_LEN],
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ciphertext = self.encrypt(&framing.domain, &nonce, context, plaintext)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        if let Layout::Versioned(version) = framing.layout {
            out.push(version);
        }
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens what [`SymmetricKey::seal`] sealed under the same framing and context.
    ///
    /// [`CryptoError::UnsupportedVersion`] for a version byte this framing does not know;
    /// [`CryptoError::Tampered`] for anything changed, truncated, or sealed with another key,
    /// domain or context.
    pub(crate) fn open(
        &self,
        framing: &Framing,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let rest = match framing.layout {
            Layout::Versioned(want) => {
                let (&got, rest) = sealed.split_first().ok_or(CryptoError::Tampered)?;
                if got != want {
                    return Err(CryptoError::UnsupportedVersion { got, want });
                }
                rest
            }
            Layout::Bare => sealed,
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Tampered);
        }
        let (nonce, ciphertext) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CryptoError::Tampered)?;
        self.open_detached(&framing.domain, context, nonce, ciphertext)
    }

    /// Seals `plaintext` for a structure that keeps the nonce itself: returns the nonce and
    /// the ciphertext.
    pub(crate) fn seal_detached(
        &self,
        domain: &Domain,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<([u8; NONCE_LEN], Vec<u8>), CryptoError> {
        let nonce = random_bytes()?;
        Ok((nonce, self.encrypt(domain, &nonce, context, plaintext)?))
    }

    /// Opens what [`SymmetricKey::seal_detached`] sealed.
    ///
    /// [`CryptoError::Tampered`] for anything changed, or another key, domain or context.
    pub(crate) fn open_detached(
        &self,
        domain: &Domain,
        context: &[u8],
        nonce: &[u8; NONCE_LEN],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let aad = domain.associated_data(context);
        self.cipher()
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
    }

    fn encrypt(
        &self,
        domain: &Domain,
        nonce: &[u8; NONCE_LEN],
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let aad = domain.associated_data(context);
        self.cipher()
            .encrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // Only a plaintext beyond XChaCha20's 256 GiB limit gets here.
            .map_err(|_| CryptoError::Tampered)
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// What is sealed: the prefix of the associated data, which names it and its version, so
/// bytes sealed for one purpose never open as another.
#[derive(Debug)]
pub(crate) struct Domain {
    aad_prefix: &'static [u8],
}

impl Domain {
    fn associated_data(&self, context: &[u8]) -> Vec<u8> {
        [self.aad_prefix, context].concat()
    }
}

/// How sealed bytes are laid out when the nonce travels with them.
#[derive(Debug)]
pub(crate) enum Layout {
    /// `version ‖ nonce ‖ ciphertext`: the layout of everything new.
    Versioned(u8),
    /// `nonce ‖ ciphertext`: the invite lockbox, shipped before the version byte (its
    /// version is in its associated data and key context, so a new layout would need a
    /// new prefix, and readers of the old one beside it).
    Bare,
}

/// A domain and the layout of its sealed bytes.
#[derive(Debug)]
pub(crate) struct Framing {
    domain: Domain,
    layout: Layout,
}

/// Rows of the profile store; the context is the row's own domain (table and id).
pub(crate) const STORAGE: Framing = Framing {
    domain: Domain {
        aad_prefix: b"hearth/storage/v1\0",
    },
    layout: Layout::Versioned(1),
};

/// An invite's lockbox; the context is the space id and the epoch (big-endian).
pub(crate) const INVITE_LOCKBOX: Framing = Framing {
    domain: Domain {
        aad_prefix: b"hearth invite lockbox v1",
    },
    layout: Layout::Bare,
};

/// Envelope content; the context is the header's canonical bytes, which begin with the
/// envelope version. The prefix is empty because the content key is already derived for
/// this one use (`"hearth 2026 envelope content key v1"`), and the bytes are on the wire.
pub(crate) const ENVELOPE: Domain = Domain { aad_prefix: b"" };

/// Sealed check-in answers; the context is the week and the person, each length-prefixed.
pub(crate) const CHECKIN_ANSWERS: Domain = Domain {
    aad_prefix: b"hearth sealed check-in answers v1",
};

#[cfg(test)]
impl SymmetricKey {
    /// [`SymmetricKey::seal`] with a chosen nonce, to rebuild the fixed vectors.
    pub(crate) fn seal_for_vector(
        &self,
        framing: &Framing,
        nonce: &[u8],
        context: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let nonce = nonce.try_into().expect("vectors hold 24-byte nonces");
        self.seal_with_nonce(framing, nonce, context, plaintext)
            .expect("sealing a short plaintext cannot fail")
    }

    /// The ciphertext [`SymmetricKey::seal_detached`] makes with a chosen nonce.
    pub(crate) fn encrypt_for_vector(
        &self,
        domain: &Domain,
        nonce: &[u8],
        context: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let nonce = nonce.try_into().expect("vectors hold 24-byte nonces");
        self.encrypt(domain, &nonce, context, plaintext)
            .expect("sealing a short plaintext cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_versioned_value_opens_under_its_context_only() {
        let key = SymmetricKey::generate().unwrap();
        let sealed = key.seal(&STORAGE, b"chunk/1", b"our anniversary").unwrap();
        assert_eq!(sealed[0], 1, "the version byte comes first");
        assert_eq!(
            &key.open(&STORAGE, b"chunk/1", &sealed).unwrap()[..],
            b"our anniversary"
        );
        assert!(matches!(
            key.open(&STORAGE, b"chunk/2", &sealed),
            Err(CryptoError::Tampered)
        ));
        let mut newer = sealed.clone();
        newer[0] = 2;
        assert!(matches!(
            key.open(&STORAGE, b"chunk/1", &newer),
            Err(CryptoError::UnsupportedVersion { got: 2, want: 1 })
        ));
    }

    #[test]
    fn the_same_key_and_context_do_not_open_across_domains() {
        let key = SymmetricKey::generate().unwrap();
        let (nonce, ct) = key
            .seal_detached(
                &Domain {
                    aad_prefix: b"hearth test",
                },
                b"ctx",
                b"x",
            )
            .unwrap();
        assert!(key.open_detached(&ENVELOPE, b"ctx", &nonce, &ct).is_err());
        let framed = key.seal(&INVITE_LOCKBOX, b"ctx", b"x").unwrap();
        assert!(
            key.open(&STORAGE, b"ctx", &[&[1], &framed[..]].concat())
                .is_err()
        );
    }

    #[test]
    fn every_cut_of_a_bare_value_is_refused() {
        let key = SymmetricKey::generate().unwrap();
        let sealed = key.seal(&INVITE_LOCKBOX, b"", b"hello").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN, "no version byte");
        for len in 0..sealed.len() {
            assert!(key.open(&INVITE_LOCKBOX, b"", &sealed[..len]).is_err());
        }
    }

    #[test]
    fn a_derived_key_is_another_key() {
        let key = SymmetricKey::from_bytes([1; 32]);
        assert_ne!(key.derive("a").as_bytes(), key.as_bytes());
        assert_ne!(key.derive("a").as_bytes(), key.derive("b").as_bytes());
        assert_eq!(format!("{key:?}"), "SymmetricKey(..)");
    }
}
