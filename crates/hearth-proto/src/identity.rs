//! The relay's identity: an Ed25519 key the relay keeps for good (in its database), whose
//! public half clients pin the first time they meet a relay and check on every connection
//! before they log in. Nothing here signs: the relay signs with its own key
//! (`hearth-relay`), and this crate only names what it signs and checks the signature, as
//! for every other signature of the protocol.
//!
//! - The **fingerprint** is what people compare: the first 16 bytes of
//!   `BLAKE3-derive-key("hearth relay fingerprint v1", public key)`, written as eight groups
//!   of four hex digits (`3f2a-9c1b-…`). It is also the relay id of the relay's `Challenge`,
//!   so the login signatures that bind the relay id bind the key.
//! - The **proof** answers the client's [`ClientFrame::Identify`](crate::ClientFrame): the
//!   relay signs [`identity_message`] over the client's fresh nonce, the challenge's nonce
//!   and relay id, and its own clock. A nonce the client picks means a recorded proof is
//!   worth nothing on a later connection, even to an impostor that replays the whole
//!   challenge it was given with it.

use std::fmt;
use std::str::FromStr;

use crate::ProtoError;
use crate::signature::verify_signature;

/// BLAKE3 derive-key context of [`Fingerprint::of`].
pub const FINGERPRINT_CONTEXT: &str = "hearth relay fingerprint v1";

/// BLAKE3 derive-key context of [`identity_message`].
pub const IDENTITY_CONTEXT: &str = "hearth relay identity v1";

/// A relay key's fingerprint: what a relay's operator shares, what `hearth status` shows,
/// and the relay id its `Challenge` announces.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    /// The fingerprint of the Ed25519 public key `key`.
    pub fn of(key: &[u8; 32]) -> Self {
        let hash = blake3::derive_key(FINGERPRINT_CONTEXT, key);
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash[..16]);
        Self(out)
    }

    /// Wraps raw bytes (a relay id).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes: the relay id of the key's relay.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = hex::encode(self.0);
        for (i, group) in hex.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            // Hex digits are ASCII.
            f.write_str(std::str::from_utf8(group).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = ProtoError;

    /// Reads 32 hex digits in either case; dashes, colons and spaces between them are
    /// ignored, so a fingerprint pasted from any listing reads.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | ':' | ' ' | '\t'))
            .collect::<String>()
            .to_ascii_lowercase();
        let mut out = [0u8; 16];
        if digits.len() != 32 {
            return Err(ProtoError::malformed(
                "relay fingerprint",
                format!(
                    "a fingerprint is 32 hex digits (like 3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0), got {} in {s:?}",
                    digits.chars().count()
                ),
            ));
        }
        hex::decode_to_slice(&digits, &mut out).map_err(|_| {
            ProtoError::malformed(
                "relay fingerprint",
                format!("a fingerprint holds only hex digits 0-9 and a-f, got {s:?}"),
            )
        })?;
        Ok(Self(out))
    }
}

/// The 32-byte message a relay signs to prove it holds its key, answering `Identify`:
/// `BLAKE3-derive-key("hearth relay identity v1", client nonce ‖ relay nonce ‖ relay id ‖
/// time_ms (u64 BE))`, where the relay nonce and id are the connection's `Challenge`'s.
pub fn identity_message(
    client_nonce: &[u8; 32],
    relay_nonce: &[u8; 32],
    relay_id: &[u8; 16],
    time_ms: u64,
) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(IDENTITY_CONTEXT)
        .update(client_nonce)
        .update(relay_nonce)
        .update(relay_id)
        .update(&time_ms.to_be_bytes())
        .finalize()
        .as_bytes()
}

/// Checks a relay's proof of its key on this connection: `key` must be the key whose
/// fingerprint the challenge announced as its relay id, and `signature` its signature over
/// [`identity_message`] of the client's nonce, the challenge and `time_ms`. Returns the
/// key's fingerprint. Whether it is the key the client expects is the caller's question.
///
/// # Errors
/// [`ProtoError::Malformed`] if the challenge's relay id is not the key's fingerprint,
/// [`ProtoError::BadSignature`] if the signature does not verify (a proof recorded on
/// another connection, or made without the key).
pub fn verify_relay_identity(
    key: &[u8; 32],
    client_nonce: &[u8; 32],
    relay_nonce: &[u8; 32],
    relay_id: &[u8; 16],
    time_ms: u64,
    signature: &[u8; 64],
) -> Result<Fingerprint, ProtoError> {
    let fingerprint = Fingerprint::of(key);
    if fingerprint.as_bytes() != relay_id {
        return Err(ProtoError::malformed(
            "relay identity",
            "the relay id of its challenge is not its key's fingerprint",
        ));
    }
    let message = identity_message(client_nonce, relay_nonce, relay_id, time_ms);
    verify_signature(key, &message, signature)?;
    Ok(fingerprint)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;

    use super::*;
    use crate::test_support::key;

    fn relay_key() -> ([u8; 32], ed25519_dalek::SigningKey) {
        let signing = key(40);
        (signing.verifying_key().to_bytes(), signing)
    }

    #[test]
    fn a_fingerprint_is_written_in_groups_of_four_and_read_back_however_it_is_pasted() {
        let fp = Fingerprint::from_bytes([
            0x3f, 0x2a, 0x9c, 0x1b, 0x0b, 0x4d, 0xe5, 0xf6, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
            0xde, 0xf0,
        ]);
        assert_eq!(fp.to_string(), "3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0");
        for pasted in [
            "3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0",
            "3F2A9C1B0B4DE5F6123456789ABCDEF0",
            " 3f2a:9c1b:0b4d:e5f6:1234:5678:9abc:def0 ",
            "3f2a 9c1b 0b4d e5f6 1234 5678 9abc def0",
        ] {
            assert_eq!(pasted.parse::<Fingerprint>().unwrap(), fp, "{pasted}");
        }
        for bad in [
            "3f2a-9c1b",
            "3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0-00",
            "zz2a9c1b0b4de5f6123456789abcdef0",
        ] {
            let err = bad.parse::<Fingerprint>().unwrap_err().to_string();
            assert!(err.contains("fingerprint"), "{err}");
        }
    }

    #[test]
    fn the_fingerprint_is_derived_from_the_key_alone() {
        let (public, _) = relay_key();
        assert_eq!(Fingerprint::of(&public), Fingerprint::of(&public));
        assert_ne!(
            Fingerprint::of(&public),
            Fingerprint::of(&key(41).verifying_key().to_bytes())
        );
        let full = blake3::derive_key(FINGERPRINT_CONTEXT, &public);
        assert_eq!(Fingerprint::of(&public).as_bytes()[..], full[..16]);
    }

    #[test]
    fn a_proof_verifies_only_for_its_key_client_nonce_challenge_and_time() {
        let (public, signing) = relay_key();
        let relay_id = *Fingerprint::of(&public).as_bytes();
        let signature = signing
            .sign(&identity_message(&[1; 32], &[2; 32], &relay_id, 77))
            .to_bytes();
        assert_eq!(
            verify_relay_identity(&public, &[1; 32], &[2; 32], &relay_id, 77, &signature),
            Ok(Fingerprint::of(&public))
        );
        // Replayed to a client that picked another nonce, on another challenge, or with
        // another time: refused.
        for (client, relay, time) in [
            ([9; 32], [2; 32], 77),
            ([1; 32], [9; 32], 77),
            ([1; 32], [2; 32], 78),
        ] {
            assert_eq!(
                verify_relay_identity(&public, &client, &relay, &relay_id, time, &signature),
                Err(ProtoError::BadSignature)
            );
        }
        // Another key cannot stand behind this relay id, nor this key behind another id.
        let (other, other_signing) = (key(41).verifying_key().to_bytes(), key(41));
        let forged = other_signing
            .sign(&identity_message(&[1; 32], &[2; 32], &relay_id, 77))
            .to_bytes();
        assert!(matches!(
            verify_relay_identity(&other, &[1; 32], &[2; 32], &relay_id, 77, &forged),
            Err(ProtoError::Malformed { .. })
        ));
        assert!(matches!(
            verify_relay_identity(&public, &[1; 32], &[2; 32], &[0; 16], 77, &signature),
            Err(ProtoError::Malformed { .. })
        ));
    }
}
