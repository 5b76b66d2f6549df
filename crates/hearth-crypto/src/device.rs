//! A device's long-lived identity: the Ed25519 key that signs what it writes (its public
//! key is the device id everyone else knows it by) and the age X25519 identity that space
//! keys are wrapped to.

use std::fmt;

use age::secrecy::ExposeSecret;
use ed25519_dalek::SigningKey;
use hearth_proto::DeviceId;

use crate::{CryptoError, random_bytes};

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
        DeviceId::from_bytes(self.signing.verifying_key().to_bytes())
    }

    /// The age recipient (public key) that space keys are wrapped to.
    pub fn age_recipient(&self) -> String {
        self.age.to_public().to_string()
    }

    /// The raw 32-byte X25519 public key of [`Self::age_recipient`], as the ACL carries it.
    ///
    /// # Errors
    /// [`CryptoError::InvalidRecipient`] if age's encoding is not what this build expects.
    pub fn recipient_bytes(&self) -> Result<[u8; 32], CryptoError> {
        crate::lockbox::recipient_bytes(&self.age_recipient())
    }

    /// Signs `message` (for hearth, always a domain-separated hash) with the device key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn age_identity(&self) -> &age::x25519::Identity {
        &self.age
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
