//! Keys drawn from one byte, so that a test names its devices 1, 2, 3 and every run signs
//! the same bytes: a failure replays exactly.

use ed25519_dalek::SigningKey;
use hearth_proto::{DeviceId, InviteId};

/// A signing key whose 32-byte seed is `seed` repeated.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The device id of a device that signs with `key`.
pub fn device_id(key: &SigningKey) -> DeviceId {
    DeviceId::from_bytes(key.verifying_key().to_bytes())
}

/// The invite id of an invite whose key is `key`.
pub fn invite_id(key: &SigningKey) -> InviteId {
    InviteId::from_bytes(key.verifying_key().to_bytes())
}

/// Now, in milliseconds since the Unix epoch, as the protocol carries time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
