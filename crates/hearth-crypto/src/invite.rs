//! Invite codes: how a partner (or another of your own devices) joins a space.
//!
//! `hearth invite` mints a one-time 32-byte invite secret and prints a code holding the
//! relay's URL, the space id and that secret, to be shared out of band. From the secret both
//! sides derive (BLAKE3 `derive_key`):
//! - the invite's Ed25519 key: its public half (the invite id) goes into the signed Invite
//!   record of the ACL; the joiner signs its AddDevice record (and its relay login) with it;
//! - a symmetric key that seals the invite's lockbox: the current epoch key, uploaded by the
//!   inviter, so the joiner can finish pairing while the inviter is offline.
//!
//! The invite lockbox is sealed with XChaCha20-Poly1305 under that derived key rather than
//! to an age recipient: whoever holds the code can open it either way, and this needs no
//! second key pair. It uses the `aead.rs` framing `INVITE_LOCKBOX` (`nonce ‖
//! ciphertext`, no version byte, as first shipped); its associated data binds the space and
//! epoch.
//!
//! Code format (one line, safe to paste into a shell):
//! `hearth1.<relay URL, base64url>.<space id, hex>.<secret, base64url>[.<relay key
//! fingerprint, hex>].<checksum, hex>` where the checksum is the first 4 bytes of BLAKE3
//! over everything before it, so a character lost or changed in transit is reported as such
//! instead of failing later. The fingerprint (32 hex digits) is that of the relay key the
//! inviting device pinned, so the joiner checks the relay from its very first connection
//! instead of trusting whatever answers there; codes minted before it (five parts) still
//! read, and the joiner then pins the key it first meets.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use hearth_proto::Fingerprint;
use zeroize::Zeroizing;

use crate::aead::{INVITE_LOCKBOX, SymmetricKey};
use crate::{CryptoError, EpochKey, random_bytes};

const PREFIX: &str = "hearth1";
const SIGNING_CONTEXT: &str = "hearth 2026 invite signing key v1";
const LOCKBOX_CONTEXT: &str = "hearth 2026 invite lockbox key v1";
const MAX_URL: usize = 2048;

/// An invite: where to go, which space, and the one-time secret.
#[derive(Clone)]
pub struct InviteCode {
    relay: String,
    space: [u8; 16],
    secret: Zeroizing<[u8; 32]>,
    relay_key: Option<Fingerprint>,
}

impl InviteCode {
    /// A new invite to `space` on the relay at `relay`.
    ///
    /// # Errors
    /// [`CryptoError::Random`]; [`CryptoError::InvalidInvite`] for an unusable relay URL.
    pub fn generate(relay: &str, space: [u8; 16]) -> Result<Self, CryptoError> {
        check_url(relay)?;
        Ok(Self {
            relay: relay.to_owned(),
            space,
            secret: Zeroizing::new(random_bytes()?),
            relay_key: None,
        })
    }

    /// The same invite, naming the fingerprint of the relay key the joiner must find.
    #[must_use]
    pub fn with_relay_key(mut self, fingerprint: Fingerprint) -> Self {
        self.relay_key = Some(fingerprint);
        self
    }

    /// The fingerprint of the relay's key as the inviting device knows it, if the code
    /// carries one (codes minted before fingerprints do not).
    pub fn relay_key(&self) -> Option<Fingerprint> {
        self.relay_key
    }

    /// The relay's URL.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The space's id.
    pub fn space(&self) -> [u8; 16] {
        self.space
    }

    /// The keys this invite's secret stands for.
    pub fn keys(&self) -> InviteKeys {
        let seed = Zeroizing::new(blake3::derive_key(SIGNING_CONTEXT, &*self.secret));
        InviteKeys {
            signing: SigningKey::from_bytes(&seed),
            lockbox: SymmetricKey::from_bytes(blake3::derive_key(LOCKBOX_CONTEXT, &*self.secret)),
        }
    }

    fn body(&self) -> String {
        let mut body = format!(
            "{PREFIX}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.relay.as_bytes()),
            hex::encode(self.space),
            URL_SAFE_NO_PAD.encode(*self.secret),
        );
        if let Some(fingerprint) = &self.relay_key {
            body.push('.');
            body.push_str(&hex::encode(fingerprint.as_bytes()));
        }
        body
    }
}

fn checksum(body: &str) -> String {
    hex::encode(&blake3::hash(body.as_bytes()).as_bytes()[..4])
}

fn check_url(relay: &str) -> Result<(), CryptoError> {
    let ok = (relay.starts_with("ws://") || relay.starts_with("wss://"))
        && relay.len() <= MAX_URL
        && !relay.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(CryptoError::InvalidInvite(format!(
            "the relay address {relay:?} is not a ws:// or wss:// URL"
        )))
    }
}

/// The code to share: print it, paste it, never log it.
impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body();
        write!(f, "{body}.{}", checksum(&body))
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteCode")
            .field("relay", &self.relay)
            .field("space", &hex::encode(self.space))
            .finish_non_exhaustive()
    }
}

impl FromStr for InviteCode {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| CryptoError::InvalidInvite(why.to_owned());
        let s = s.trim();
        let parts: Vec<&str> = s.split('.').collect();
        if parts.first() != Some(&PREFIX) {
            return Err(bad("it does not start with \"hearth1.\""));
        }
        let (relay, space, secret, relay_key, sum) = match parts[..] {
            [_, relay, space, secret, sum] => (relay, space, secret, None, sum),
            [_, relay, space, secret, key, sum] => (relay, space, secret, Some(key), sum),
            _ => {
                return Err(bad(
                    "it has the wrong number of parts; it may have been cut off",
                ));
            }
        };
        let body = &s[..s.len() - sum.len() - 1];
        if checksum(body) != sum {
            return Err(bad(
                "its checksum does not match: a character was changed or lost",
            ));
        }
        let relay = URL_SAFE_NO_PAD
            .decode(relay)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("the relay address is garbled"))?;
        check_url(&relay)?;
        let mut space_id = [0u8; 16];
        hex::decode_to_slice(space, &mut space_id).map_err(|_| bad("the space id is garbled"))?;
        let secret_bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(secret)
                .map_err(|_| bad("the secret is garbled"))?,
        );
        let secret: [u8; 32] = secret_bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad("the secret has the wrong length"))?;
        let relay_key = relay_key
            .map(|key| {
                let mut bytes = [0u8; 16];
                hex::decode_to_slice(key, &mut bytes)
                    .map_err(|_| bad("the relay's fingerprint is garbled"))?;
                Ok::<_, CryptoError>(Fingerprint::from_bytes(bytes))
            })
            .transpose()?;
        Ok(Self {
            relay,
            space: space_id,
            secret: Zeroizing::new(secret),
            relay_key,
        })
    }
}

/// The keys derived from an invite secret.
pub struct InviteKeys {
    signing: SigningKey,
    lockbox: SymmetricKey,
}

impl InviteKeys {
    /// The invite's public key, named in the ACL's Invite record.
    pub fn invite_id(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `message` with the invite key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }

    /// What the lockbox's associated data binds after its domain prefix.
    fn context(space: &[u8; 16], epoch: u32) -> Vec<u8> {
        [&space[..], &epoch.to_be_bytes()].concat()
    }

    /// Seals the space's keys, `keys[e]` being epoch `e`'s and the last the current one,
    /// for whoever holds this invite (a joining device needs every epoch to read the whole
    /// history), with the inviter's person id when the invite is for another device of the
    /// same person.
    ///
    /// Plaintext: `person length (1) ‖ person ‖ K[0] ‖ … ‖ K[current]`; associated data:
    /// `"hearth invite lockbox v1" ‖ space ‖ current epoch`.
    ///
    /// # Errors
    /// [`CryptoError::Random`]; [`CryptoError::Tampered`] if `keys` is empty or the person
    /// id is over 255 bytes.
    pub fn seal_lockbox(
        &self,
        keys: &[EpochKey],
        space: &[u8; 16],
        person: Option<&str>,
    ) -> Result<Vec<u8>, CryptoError> {
        let person = person.unwrap_or("").as_bytes();
        let person_len = u8::try_from(person.len()).map_err(|_| CryptoError::Tampered)?;
        let current = keys
            .len()
            .checked_sub(1)
            .and_then(|e| u32::try_from(e).ok())
            .ok_or(CryptoError::Tampered)?;
        let mut plain = Zeroizing::new(Vec::with_capacity(1 + person.len() + 32 * keys.len()));
        plain.push(person_len);
        plain.extend_from_slice(person);
        for key in keys {
            plain.extend_from_slice(key.as_bytes());
        }
        self.lockbox
            .seal(&INVITE_LOCKBOX, &Self::context(space, current), &plain)
    }

    /// Opens an invite lockbox sealed when `space` was at epoch `epoch`: the keys of epochs
    /// 0 to `epoch` in order, and the inviter's person id if the invite is for another
    /// device of the same person.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] if it is damaged or for another invite, space or epoch.
    pub fn open_lockbox(
        &self,
        blob: &[u8],
        space: &[u8; 16],
        epoch: u32,
    ) -> Result<(Vec<EpochKey>, Option<String>), CryptoError> {
        let plain = self
            .lockbox
            .open(&INVITE_LOCKBOX, &Self::context(space, epoch), blob)?;
        let (&person_len, rest) = plain.split_first().ok_or(CryptoError::Tampered)?;
        let (person, keys) = rest
            .split_at_checked(usize::from(person_len))
            .ok_or(CryptoError::Tampered)?;
        let want = usize::try_from(epoch)
            .ok()
            .and_then(|e| e.checked_add(1))
            .and_then(|n| n.checked_mul(32));
        if Some(keys.len()) != want {
            return Err(CryptoError::Tampered);
        }
        let keys = keys
            .chunks_exact(32)
            .map(|k| k.try_into().map(EpochKey::from_bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CryptoError::Tampered)?;
        let person = match person {
            [] => None,
            p => Some(String::from_utf8(p.to_vec()).map_err(|_| CryptoError::Tampered)?),
        };
        Ok((keys, person))
    }
}

impl fmt::Debug for InviteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteKeys")
            .field("invite_id", &hex::encode(self.invite_id()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_round_trips_and_both_sides_derive_the_same_keys() {
        let code = InviteCode::generate("wss://relay.example.org/v1/sync", [5; 16]).unwrap();
        let text = code.to_string();
        assert!(text.starts_with("hearth1."));
        assert!(!text.contains(char::is_whitespace));
        let back: InviteCode = text.parse().unwrap();
        assert_eq!(back.relay(), "wss://relay.example.org/v1/sync");
        assert_eq!(back.space(), [5; 16]);
        assert_eq!(back.keys().invite_id(), code.keys().invite_id());

        let key = EpochKey::generate().unwrap();
        let blob = code
            .keys()
            .seal_lockbox(std::slice::from_ref(&key), &[5; 16], None)
            .unwrap();
        let (opened, person) = back.keys().open_lockbox(&blob, &[5; 16], 0).unwrap();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].as_bytes(), key.as_bytes());
        assert_eq!(person, None);
        // After two rotations the box carries every epoch's key, oldest first.
        let ring = [
            key.clone(),
            EpochKey::generate().unwrap(),
            EpochKey::generate().unwrap(),
        ];
        let own = code
            .keys()
            .seal_lockbox(&ring, &[5; 16], Some("ab12"))
            .unwrap();
        let (opened, person) = back.keys().open_lockbox(&own, &[5; 16], 2).unwrap();
        assert_eq!(person.as_deref(), Some("ab12"));
        let opened: Vec<_> = opened.iter().map(|k| *k.as_bytes()).collect();
        let ring: Vec<_> = ring.iter().map(|k| *k.as_bytes()).collect();
        assert_eq!(opened, ring);
        assert!(
            back.keys().open_lockbox(&own, &[5; 16], 1).is_err(),
            "another epoch"
        );
        assert!(back.keys().open_lockbox(&blob, &[5; 16], 1).is_err());
        assert!(
            back.keys().open_lockbox(&blob, &[6; 16], 0).is_err(),
            "another space"
        );
        let other = InviteCode::generate("ws://127.0.0.1:1", [5; 16]).unwrap();
        assert!(other.keys().open_lockbox(&blob, &[5; 16], 0).is_err());
        assert!(code.keys().seal_lockbox(&[], &[5; 16], None).is_err());
    }

    #[test]
    fn a_code_carries_the_relays_fingerprint_and_a_code_from_before_it_still_reads() {
        let fingerprint = Fingerprint::from_bytes([0xab; 16]);
        let code = InviteCode::generate("ws://127.0.0.1:7878/v1/sync", [5; 16])
            .unwrap()
            .with_relay_key(fingerprint);
        let text = code.to_string();
        assert_eq!(text.split('.').count(), 6, "{text}");
        let back: InviteCode = text.parse().unwrap();
        assert_eq!(back.relay_key(), Some(fingerprint));
        assert_eq!(back.keys().invite_id(), code.keys().invite_id());
        // The checksum covers the fingerprint: a changed digit is caught.
        let changed = text.replacen("abab", "abac", 1);
        let err = changed.parse::<InviteCode>().unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        // A code as minted before fingerprints: five parts, no fingerprint.
        let old = "hearth1.d3M6Ly8xMjcuMC4wLjE6Nzg3OA.01010101010101010101010101010101.\
                   AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
        let old = format!("{old}.{}", checksum(old));
        let read: InviteCode = old.parse().unwrap();
        assert_eq!(read.relay(), "ws://127.0.0.1:7878");
        assert_eq!(read.relay_key(), None);
        assert_eq!(read.to_string(), old, "written back as it was");
    }

    #[test]
    fn damaged_codes_say_what_is_wrong() {
        let text = InviteCode::generate("ws://127.0.0.1:7878", [1; 16])
            .unwrap()
            .to_string();
        let err = |s: &str| s.parse::<InviteCode>().unwrap_err().to_string();
        assert!(err("").contains("hearth1"));
        assert!(
            err(&text[..text.len() - 10]).contains("cut off")
                || err(&text[..text.len() - 10]).contains("checksum")
        );
        let mut changed = text.clone().into_bytes();
        let i = changed.len() / 2;
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        assert!(err(&String::from_utf8(changed).unwrap()).contains("checksum"));
        assert!(err("hearth1.a.b.c.d").contains("checksum"));
        assert!(InviteCode::generate("http://x", [0; 16]).is_err());
        // Debug never shows the secret.
        let code: InviteCode = text.parse().unwrap();
        let secret_part = text.split('.').nth(3).unwrap();
        assert!(!format!("{code:?}").contains(secret_part));
    }
}
