//! hearth's cryptography: the keys a device holds, how its secrets rest on disk, and
//! everything hearth seals or signs for others to open.
//!
//! This is the only hearth crate that imports `age`. Everything that must stay secret on
//! a device flows through here:
//!
//! - [`DeviceKeys`]: an Ed25519 signing key (its public key is the [`DeviceId`]) and an
//!   age X25519 identity that partners will wrap space keys to.
//! - [`StorageKey`]: a random 32-byte key that seals everything the profile store writes
//!   (XChaCha20-Poly1305 with a random nonce and a domain string as associated data).
//! - [`EpochKey`], [`envelope`], [`lockbox`], [`invite`]: the space's shared keys, how
//!   changes travel sealed and signed, and how a device or a joiner gets the keys.
//!   [`padding`] pads every envelope's plaintext (PADMÉ, at least 1 KiB) before it is
//!   sealed, so the relay sees sizes only to within a bucket.
//! - [`answers`]: sealed check-in answers and their commitments, which hearth-doc calls
//!   when a check-in is submitted and when it settles who may read what.
//! - [`keyfile`]: the device's key file, age-encrypted with the user's passphrase (scrypt,
//!   with an explicit work factor) or, when the user chooses no passphrase, protected only by
//!   0600 permissions.
//!
//! Every symmetric encryption goes through one framing (XChaCha20-Poly1305, a domain prefix
//! in the associated data, a version byte for anything new) and one 32-byte key type, each
//! role wrapped in its own type where mixing two up would leak something; the private
//! module `aead.rs` documents the byte layout of each.
//!
//! ```
//! use hearth_crypto::{ProfileSecrets, Protection, SecretString, keyfile};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("device.key");
//! let secrets = ProfileSecrets::generate()?;
//! keyfile::create(&path, &secrets, &Protection::Passphrase(SecretString::from("correct horse")))?;
//!
//! let sealed = secrets.storage.seal(b"example", b"we went for a walk")?;
//! let unlocked = keyfile::read(&path, Some(&SecretString::from("correct horse")))?;
//! assert_eq!(&unlocked.storage.open(b"example", &sealed)?[..], b"we went for a walk");
//! assert!(keyfile::read(&path, Some(&SecretString::from("wrong"))).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
mod aead;
pub mod answers;
mod device;
pub mod envelope;
mod epoch;
mod error;
pub mod invite;
pub mod keyfile;
pub mod lockbox;
pub mod padding;
mod storage;
#[cfg(test)]
mod vectors;

pub use acl::{AclSigner, sign_login, sign_record};
pub use age::secrecy::{ExposeSecret, SecretString};
pub use device::DeviceKeys;
pub use epoch::EpochKey;
pub use error::CryptoError;
pub use hearth_proto::DeviceId;
pub use invite::{InviteCode, InviteKeys};
pub use keyfile::Protection;
pub use storage::StorageKey;

/// Everything secret a profile holds, as unlocked from its key file.
#[derive(Debug)]
pub struct ProfileSecrets {
    /// The device's signing and age keys.
    pub device: DeviceKeys,
    /// The key that seals the profile's stored data.
    pub storage: StorageKey,
}

impl ProfileSecrets {
    /// Fresh random secrets for a new profile.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the operating system's random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            device: DeviceKeys::generate()?,
            storage: StorageKey::generate()?,
        })
    }
}

/// Fills an array from the operating system's random source.
///
/// # Errors
/// [`CryptoError::Random`] if the random source fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(out)
}
