//! A device's long-lived identity: the Ed25519 key that signs what it writes (its public
//! key is the device id everyone else knows it by) and the age X25519 identity that space
//! keys are wrapped to.

use std::fmt;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use ed25519_dalek::SigningKey;

use crate::{CryptoError, random_bytes};

/// A device's public identity: its Ed25519 verifying key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId([u8; 32]);

impl DeviceId {
    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps raw public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A short, human-sized prefix for listings (the full id is 64 hex characters).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.short())
    }
}

impl FromStr for DeviceId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| format!("a device id is 64 hex characters, got {s:?}"))?;
        Ok(Self(out))
    }
}

/// The secret keys of one device.
pub struct DeviceKeys {
    signing: SigningKey,
    age: age::x25519::Identity,
}

impl DeviceKeys {
    /// Fresh random keys.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let seed = zeroize::Zeroizing::new(random_bytes::<32>()?);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            age: age::x25519::Identity::generate(),
        })
    }

    /// This device's public id.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.signing.verifying_key().to_bytes())
    }

    /// The age recipient (public key) that space keys are wrapped to.
    pub fn age_recipient(&self) -> String {
        self.age.to_public().to_string()
    }

    pub(crate) fn signing_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.signing.to_bytes())
    }

    pub(crate) fn age_secret(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(self.age.to_string().expose_secret().to_owned())
    }

    pub(crate) fn from_parts(seed: &[u8; 32], age_secret: &str) -> Result<Self, String> {
        let age = age_secret
            .parse::<age::x25519::Identity>()
            .map_err(|e| format!("bad age identity: {e}"))?;
        Ok(Self {
            signing: SigningKey::from_bytes(seed),
            age,
        })
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("device_id", &self.device_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_round_trips_through_hex() {
        let keys = DeviceKeys::generate().unwrap();
        let id = keys.device_id();
        assert_eq!(id.to_string().parse::<DeviceId>().unwrap(), id);
        assert!("zz".parse::<DeviceId>().is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let keys = DeviceKeys::generate().unwrap();
        let dbg = format!("{keys:?}");
        assert!(!dbg.contains(&hex::encode(*keys.signing_seed())));
        assert!(!dbg.contains("AGE-SECRET-KEY"));
    }
}
