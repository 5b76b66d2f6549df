//! Ed25519 signature checks, verify-only. Signing needs a secret key, and secret keys live
//! in hearth-crypto; this crate only checks, so the relay can enforce the ACL and
//! authenticate devices without ever being able to sign anything itself.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::ProtoError;

/// Checks that `signature` is `key`'s Ed25519 signature over `message`.
///
/// Uses `verify_strict`: small-order keys and non-canonical signatures are refused, so a
/// signature cannot be reshaped into a second valid one, and a weak key cannot sign for
/// many messages at once.
///
/// # Errors
/// [`ProtoError::BadSignature`] if `key` is not a valid Ed25519 public key or the
/// signature does not verify.
pub fn verify_signature(
    key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), ProtoError> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| ProtoError::BadSignature)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| ProtoError::BadSignature)
}
