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

/// One signature to check: the signer's public key, the message and the signature.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The signer's Ed25519 public key.
    pub key: &'a [u8; 32],
    /// What was signed.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; 64],
}

/// Checks many signatures at a time, for a relay that takes pushes from many devices at
/// once.
///
/// All valid, the common case, costs one batch equation: measured here ~32 µs per
/// signature from 8 at a time, against ~70 µs for [`verify_signature`]. If the batch fails,
/// each signature is checked with [`verify_signature`] to find which.
///
/// A batch accepts exactly the signatures [`verify_signature`] accepts, except for one
/// kind that only the signer's own secret key can make (an `R` with a small-order
/// component), which it may accept; clients still check every envelope one by one with
/// [`verify_signature`], so such a signature is refused where it matters. Keys are checked
/// as strictly as one by one: a weak (small-order) key fails.
///
/// Decoded public keys are kept (up to [`BatchVerifier::KEYS`]), since the same devices
/// push again and again.
#[derive(Debug, Default)]
pub struct BatchVerifier {
    keys: std::collections::HashMap<[u8; 32], VerifyingKey>,
}

impl BatchVerifier {
    /// How many decoded keys are kept; past that the cache starts over.
    pub const KEYS: usize = 4096;

    /// A verifier with no keys decoded yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        if let Some(key) = self.keys.get(bytes) {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(bytes)
            .ok()
            .filter(|k| !k.is_weak())?;
        if self.keys.len() >= Self::KEYS {
            self.keys.clear();
        }
        self.keys.insert(*bytes, key);
        Some(key)
    }

    /// Checks every signature; the answer for each, in order.
    pub fn verify(&mut self, checks: &[SignatureCheck<'_>]) -> Vec<Result<(), ProtoError>> {
        let one_by_one = |checks: &[SignatureCheck<'_>]| -> Vec<Result<(), ProtoError>> {
            checks
                .iter()
                .map(|c| verify_signature(c.key, c.message, c.signature))
                .collect()
        };
        // A batch of one costs more than one strict check.
        if checks.len() < 2 {
            return one_by_one(checks);
        }
        let Some(keys) = checks
            .iter()
            .map(|c| self.key(c.key))
            .collect::<Option<Vec<_>>>()
        else {
            return one_by_one(checks);
        };
        let messages: Vec<&[u8]> = checks.iter().map(|c| c.message).collect();
        let signatures: Vec<Signature> = checks
            .iter()
            .map(|c| Signature::from_bytes(c.signature))
            .collect();
        match ed25519_dalek::verify_batch(&messages, &signatures, &keys) {
            Ok(()) => checks.iter().map(|_| Ok(())).collect(),
            Err(_) => one_by_one(checks),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    struct Signed {
        key: [u8; 32],
        message: [u8; 32],
        signature: [u8; 64],
    }

    fn signed(n: u8) -> Signed {
        let signer = SigningKey::from_bytes(&[n.wrapping_add(1); 32]);
        let message = [n; 32];
        Signed {
            key: signer.verifying_key().to_bytes(),
            message,
            signature: signer.sign(&message).to_bytes(),
        }
    }

    fn checks(signed: &[Signed]) -> Vec<SignatureCheck<'_>> {
        signed
            .iter()
            .map(|s| SignatureCheck {
                key: &s.key,
                message: &s.message,
                signature: &s.signature,
            })
            .collect()
    }

    #[test]
    fn a_batch_of_good_signatures_passes_and_agrees_with_one_by_one() {
        let mut verifier = BatchVerifier::new();
        for n in [0, 1, 2, 7, 40] {
            let signed: Vec<Signed> = (0..n).map(signed).collect();
            let results = verifier.verify(&checks(&signed));
            assert_eq!(results.len(), usize::from(n));
            assert!(results.iter().all(Result::is_ok), "{n}: {results:?}");
        }
    }

    #[test]
    fn each_bad_signature_in_a_batch_is_found_and_only_it() {
        let mut verifier = BatchVerifier::new();
        let mut signed: Vec<Signed> = (0..12).map(signed).collect();
        signed[3].signature[10] ^= 1; // a damaged signature
        signed[7].message[0] ^= 1; // a changed message
        signed[9].key = signed[10].key; // another device's key
        let results = verifier.verify(&checks(&signed));
        for (i, result) in results.iter().enumerate() {
            let bad = matches!(i, 3 | 7 | 9);
            assert_eq!(result.is_err(), bad, "signature {i}: {result:?}");
        }
    }

    #[test]
    fn a_weak_key_or_an_invalid_key_fails_in_a_batch_too() {
        let mut verifier = BatchVerifier::new();
        let mut signed: Vec<Signed> = (0..4).map(signed).collect();
        // The identity point: a small-order key, refused by verify_strict.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        signed[1].key = identity;
        // Bytes that are no usable key.
        signed[2].key = [0xff; 32];
        let results = verifier.verify(&checks(&signed));
        assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
        assert!(results[1].is_err() && results[2].is_err(), "{results:?}");
    }
}
