//! The websocket frames of the relay protocol (docs/protocol.md): one enum per direction, encoded
//! with postcard, one frame per binary websocket message. Envelopes and ACL records travel
//! inside frames as their own canonical bytes, so the relay can check them, store them
//! verbatim and fan them out without re-encoding.
//!
//! # Conversation
//!
//! 1. The client sends [`ClientFrame::Hello`] with its [`PROTOCOL_VERSION`].
//! 2. The relay answers [`RelayFrame::Challenge`] (its id, a fresh nonce, its [`Limits`]
//!    and the versions it speaks) or, if it does not speak the client's version,
//!    [`RelayFrame::Reject`] with [`RejectCode::UnsupportedVersion`] and a message naming
//!    both sides' versions.
//! 3. The client sends [`ClientFrame::Identify`] with a fresh nonce of its own; the relay
//!    answers [`RelayFrame::Identity`]: its public key, its clock, and its signature over
//!    [`identity_message`](crate::identity::identity_message), which the client checks
//!    (and the key against the one it pinned, see [`crate::identity`]) before it sends
//!    anything that says who it is. A relay accepts `Auth` without it, for clients from
//!    before it.
//! 4. The client sends [`ClientFrame::Auth`], signed over [`auth_message`] with its device
//!    key, or with the invite key when joining (`as_invite`). A `time_ms` more than
//!    [`MAX_AUTH_SKEW_MS`] from the relay's clock is refused first, with
//!    [`RejectCode::ClockSkew`] (the relay's time came in `Identity`). On success the relay
//!    sends [`RelayFrame::AclChanged`] with the space's whole chain (no records if the space
//!    does not exist yet: the client then sends [`ClientFrame::CreateSpace`]). On any other
//!    failure it sends `Reject` with [`RejectCode::Unauthorized`], whatever the reason, so a
//!    stranger learns nothing about the space.
//! 5. Then any requests, answered in the order they were sent: `Subscribe` with a `Batch`
//!    (after `Countersigned` when its first item is a snapshot; then `Proposed` if a
//!    snapshot waits for this device's countersignature; and `Event`s as other devices
//!    push), `Push` with `Committed`, `PushSnapshot` with `Committed` (the snapshot is
//!    only proposed), `Countersign` with `Countersigned`, `GetLockbox` with `Lockbox`,
//!    `Ping` with `Pong`; any of them may instead get a `Reject`.
//!
//! # Encoding and compatibility
//!
//! Postcard: variant index and integers as varints, byte strings and vectors as a varint
//! length then their items, ids and signatures as a length then their raw bytes. Variants
//! are only ever appended, never reordered, and `Hello`, `Challenge` and `Reject` keep
//! their layout in every version, so two sides that speak different versions can still
//! tell each other so. Every decoder checks the frame size first, refuses trailing bytes
//! and returns an error (never panics) on any input.

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, SpaceId};
use crate::{Limits, ProtoError};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every protocol version this build speaks, as announced in `Challenge`.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Most characters in [`ClientFrame::Hello`]'s `client` string.
pub const MAX_CLIENT_NAME_CHARS: usize = 64;

/// How far an [`ClientFrame::Auth`]'s `time_ms` may be from the relay's clock.
pub const MAX_AUTH_SKEW_MS: u64 = 5 * 60 * 1000;

/// BLAKE3 derive-key context of [`auth_message`].
pub const AUTH_CONTEXT: &str = "hearth auth v1";

/// BLAKE3 derive-key context of [`delete_space_message`].
pub const DELETE_SPACE_CONTEXT: &str = "hearth delete space v1";

/// A frame from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// First frame of a connection. Its layout never changes.
    Hello {
        /// The protocol version the client speaks.
        version: u16,
        /// Client name and version for the relay's logs, at most 64 characters.
        client: String,
    },
    /// Answers the relay's `Challenge`.
    Auth {
        /// The signing key: the device's id, or the invite key when `as_invite`.
        device: DeviceId,
        /// The space to work in.
        space: SpaceId,
        /// The client's clock, UTC milliseconds (within [`MAX_AUTH_SKEW_MS`] of the relay's).
        time_ms: u64,
        /// Signature by `device` over [`auth_message`].
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
        /// Whether `device` is an invite key (a device that is joining).
        as_invite: bool,
    },
    /// Asks for every envelope after `since_seq`, then live events.
    Subscribe {
        /// Must be the authenticated space.
        space: SpaceId,
        /// The last sequence number the client has (0 for none).
        since_seq: u64,
    },
    /// An encoded [`Envelope`](crate::Envelope) of changes, stored verbatim.
    Push {
        /// The envelope's canonical bytes.
        envelope: Vec<u8>,
    },
    /// An encoded snapshot [`Envelope`](crate::Envelope), stored as a proposal: the relay
    /// drops the envelopes it covers only once a device of the other person countersigned
    /// it (`Countersign`).
    PushSnapshot {
        /// The envelope's canonical bytes.
        envelope: Vec<u8>,
    },
    /// Appends one encoded [`AclRecord`](crate::AclRecord) to the space's chain.
    PutAcl {
        /// The record's canonical bytes.
        record: Vec<u8>,
    },
    /// Stores a lockbox: the epoch key sealed to one device (or, for an invite, to the
    /// invite key, given here as a `DeviceId`).
    PutLockbox {
        /// Whose lockbox it is.
        device: DeviceId,
        /// The epoch whose key it holds.
        epoch: u32,
        /// The opaque sealed key.
        blob: Vec<u8>,
    },
    /// Fetches the authenticated key's own lockbox for `epoch`.
    GetLockbox {
        /// The epoch wanted.
        epoch: u32,
    },
    /// Deletes the space and everything the relay holds for it.
    DeleteSpace {
        /// Must be the authenticated space.
        space: SpaceId,
        /// The authenticated member device's signature over [`delete_space_message`].
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
    },
    /// Keep-alive; answered with `Pong`.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Creates the authenticated space with its Genesis record; the authenticated device
    /// must be the one the record names.
    CreateSpace {
        /// The Genesis record's canonical bytes.
        genesis: Vec<u8>,
        /// A creation token the relay's operator minted (`hrt_…`, see
        /// [`is_creation_token`]), for relays that create spaces only with one; a relay
        /// that creates spaces without one ignores it (and spends nothing).
        token: Option<String>,
    },
    /// Consents to the snapshot proposal the relay showed (`Proposed`): `device`, of
    /// another person than the snapshot's author, opened it and found everything it knows
    /// up to `covers_seq` in it. The relay then lets it stand in for the envelopes it
    /// covers and drops them. Answered with `Countersigned`.
    Countersign {
        /// The seq the proposal covers, as its header says.
        covers_seq: u64,
        /// [`snapshot_hash`](crate::consent::snapshot_hash) of the proposal's bytes.
        #[serde(with = "crate::byte_array")]
        snapshot: [u8; 32],
        /// The countersigning device (a current member).
        device: DeviceId,
        /// `device`'s signature over
        /// [`countersign_message`](crate::consent::countersign_message).
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
    },
    /// As `Subscribe`, but the relay never stands a snapshot in for envelopes: it sends
    /// whatever envelopes after `since_seq` it still holds. For a device that refused the
    /// snapshot it was handed and falls back to the envelopes.
    SubscribeEnvelopes {
        /// Must be the authenticated space.
        space: SpaceId,
        /// The last sequence number the client has taken (0 for none).
        since_seq: u64,
    },
    /// Asks the relay to prove it holds its key, between `Challenge` and `Auth`; answered
    /// with [`RelayFrame::Identity`]. Appended in this version.
    Identify {
        /// Fresh random bytes of the client's, so a proof recorded on another connection
        /// does not verify.
        #[serde(with = "crate::byte_array")]
        nonce: [u8; 32],
    },
}

/// A frame from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayFrame {
    /// Answers `Hello`. Its layout never changes.
    Challenge {
        /// The relay's stable random id (binds auth signatures to this relay).
        #[serde(with = "crate::byte_array")]
        relay_id: [u8; 16],
        /// Fresh per connection.
        #[serde(with = "crate::byte_array")]
        nonce: [u8; 32],
        /// What the relay enforces.
        limits: Limits,
        /// Every protocol version the relay speaks.
        versions: Vec<u16>,
    },
    /// Stored envelopes, in sequence order, answering `Subscribe`.
    Batch {
        /// (sequence number, envelope bytes).
        items: Vec<(u64, Vec<u8>)>,
        /// The space's latest sequence number; if the last item's is lower, more batches
        /// follow.
        head: u64,
    },
    /// A push is durably stored.
    Committed {
        /// Where it was stored (the original seq for a duplicate push).
        seq: u64,
        /// The pushed envelope's device counter, to match the reply to the push.
        counter: u64,
    },
    /// Another device pushed an envelope.
    Event {
        /// Its sequence number.
        seq: u64,
        /// The envelope's bytes.
        envelope: Vec<u8>,
    },
    /// ACL records: the whole chain after `Auth`, then each record as it is appended.
    AclChanged {
        /// Canonical record bytes, in chain order.
        records: Vec<Vec<u8>>,
    },
    /// Answers `GetLockbox`.
    Lockbox {
        /// The epoch whose key it holds.
        epoch: u32,
        /// The opaque sealed key.
        blob: Vec<u8>,
    },
    /// A request was refused. Its layout never changes.
    Reject {
        /// What kind of refusal, and so what to do next.
        code: RejectCode,
        /// Human-readable detail (never secrets).
        message: String,
    },
    /// Answers `Ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// The space was deleted by one of its member devices: the answer to a member's `Auth`
    /// for it ever after, and what the space's live subscribers hear when it happens. It
    /// carries the deletion's proof, the `DeleteSpace` signature of that device, which a
    /// client checks against the chain it verified ([`verify_delete_space`]); the relay
    /// then closes the connection. Appended in this version: a client from before it
    /// reads it as an unreadable frame and stops, changing nothing.
    SpaceDeleted {
        /// The deleted space.
        space: SpaceId,
        /// The member device that deleted it.
        device: DeviceId,
        /// The relay id of the challenge the deletion was signed for.
        #[serde(with = "crate::byte_array")]
        relay_id: [u8; 16],
        /// That challenge's nonce.
        #[serde(with = "crate::byte_array")]
        nonce: [u8; 32],
        /// `device`'s signature over [`delete_space_message`] of the three above.
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
        /// When it was deleted, by the relay's clock (UTC milliseconds; the relay's word,
        /// not signed).
        deleted_at_ms: u64,
    },
    /// A snapshot a device of another person than this device's pushed, waiting for a
    /// countersignature (`Countersign`) before it may replace the envelopes it covers.
    /// Sent after the `Batch` pages answering a `Subscribe`, so before the `Pong` of a
    /// `Ping` sent after it.
    Proposed {
        /// The proposed snapshot envelope's bytes, as pushed.
        envelope: Vec<u8>,
    },
    /// The countersignature of the snapshot that stands in for the envelopes up to
    /// `covers_seq`: sent just before the `Batch` holding that snapshot, and as the answer
    /// to an accepted `Countersign`.
    Countersigned {
        /// The seq the snapshot covers.
        covers_seq: u64,
        /// The countersigning device.
        device: DeviceId,
        /// Its signature over [`countersign_message`](crate::consent::countersign_message).
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
    },
    /// Answers `Identify`: the relay's key, its clock, and its proof of holding the key
    /// (see [`crate::identity`]). Appended in this version.
    Identity {
        /// The relay's Ed25519 public key, whose fingerprint is the challenge's relay id.
        #[serde(with = "crate::byte_array")]
        key: [u8; 32],
        /// The relay's clock when it answered, UTC milliseconds: what a client whose login
        /// is refused with `ClockSkew` compares its own with.
        time_ms: u64,
        /// The key's signature over
        /// [`identity_message`](crate::identity::identity_message).
        #[serde(with = "crate::byte_array")]
        signature: [u8; 64],
    },
}

/// Why the relay refused a request. The numbers are stable on the wire; a code this
/// build does not know decodes as [`RejectCode::Unrecognized`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
#[repr(u16)]
#[non_exhaustive]
pub enum RejectCode {
    /// The relay does not speak the client's version: the message says which it does.
    /// Upgrade the older side; retrying will not help.
    UnsupportedVersion = 1,
    /// The frame did not decode or came out of order. A client bug: reconnect, do not
    /// resend the same bytes.
    BadFrame = 2,
    /// The frame or envelope is over the announced limits: split the batch into smaller
    /// envelopes.
    TooLarge = 3,
    /// Too many pushes per second: back off and retry later.
    RateLimited = 4,
    /// Authentication failed (unknown device, bad signature, wrong space or stale
    /// challenge; deliberately not which). Stop; if it persists, the device is not in the
    /// space (pair again).
    Unauthorized = 5,
    /// The device was removed from the space after it authenticated (or wrote as someone
    /// else). Stop syncing this space; refresh the ACL.
    NotMember = 6,
    /// The request lost a race: an ACL record that no longer follows the head, or a reused
    /// device counter with different bytes. Fetch the latest state and retry.
    Conflict = 7,
    /// The space or the relay is full. Tell the user; retrying will not help until the
    /// operator raises the quota or data is compacted.
    QuotaExceeded = 8,
    /// The relay could not reach its storage. Retry with backoff; data stays local.
    StorageUnavailable = 9,
    /// A relay bug. Retry later with backoff.
    Internal = 10,
    /// The invite expired: ask for a new invite code. Only sent once the invite signature
    /// checked out, so only the invite's holder learns it.
    InviteExpired = 11,
    /// The invite was already used: ask for a new invite code (sent as for `InviteExpired`).
    InviteUsed = 12,
    /// A well-formed request the relay refuses on its content: an envelope whose signature
    /// fails or that names another space or an unknown epoch, an ACL record that breaks a
    /// rule, a creation token that is missing or spent. The message says which; do not
    /// resend it unchanged.
    Invalid = 13,
    /// The invite was cancelled (the device that made it was removed, or the space's key
    /// changed since): ask for a new invite code (sent as for `InviteExpired`).
    InviteRevoked = 14,
    /// The space was deleted by one of its member devices and its id cannot be used
    /// again on this relay (the answer to a `CreateSpace` for it). Stop syncing it; start
    /// a new space. A member's login gets [`RelayFrame::SpaceDeleted`] instead, with the
    /// proof.
    SpaceDeleted = 15,
    /// The `Auth`'s time is more than [`MAX_AUTH_SKEW_MS`] from the relay's clock: set the
    /// device's clock and log in again. Checked before anything about the space, so it
    /// tells a stranger nothing; the relay's time is in the `Identity` it sent before.
    ClockSkew = 16,
    /// The relay creates spaces only with a creation token from its operator, and the
    /// `CreateSpace` carried none: ask the operator for one and create the space with it.
    TokenRequired = 20,
    /// The creation token is not one this relay minted (mistyped, revoked, or another
    /// relay's): ask the operator for a new one. Nothing was spent or created.
    TokenUnknown = 21,
    /// The creation token has expired: ask the operator for a new one.
    TokenExpired = 22,
    /// The creation token has been used as many times as it allows: ask the operator for
    /// a new one.
    TokenUsed = 23,
    /// The answer to the `Auth` of the device whose Genesis started the space, after the
    /// relay removed the space because no second device joined it in time
    /// (`unjoined_space_ttl`). Only that one device was ever in it, so it holds everything
    /// the relay held: the connection stays open for it to `CreateSpace` again (with a
    /// token, where the relay asks for one). The relay's word, unsigned: a client accepts
    /// it only for a space whose only member, as far as it verified, is itself.
    SpaceExpired = 24,
    /// A code this build does not know (sent by a newer relay): treat it like `Internal`.
    Unrecognized = 0xFFFF,
}

impl RejectCode {
    /// The stable wire number.
    pub fn code(self) -> u16 {
        self as u16
    }
}

impl From<RejectCode> for u16 {
    fn from(code: RejectCode) -> Self {
        code.code()
    }
}

impl From<u16> for RejectCode {
    fn from(code: u16) -> Self {
        match code {
            1 => Self::UnsupportedVersion,
            2 => Self::BadFrame,
            3 => Self::TooLarge,
            4 => Self::RateLimited,
            5 => Self::Unauthorized,
            6 => Self::NotMember,
            7 => Self::Conflict,
            8 => Self::QuotaExceeded,
            9 => Self::StorageUnavailable,
            10 => Self::Internal,
            11 => Self::InviteExpired,
            12 => Self::InviteUsed,
            13 => Self::Invalid,
            14 => Self::InviteRevoked,
            15 => Self::SpaceDeleted,
            16 => Self::ClockSkew,
            20 => Self::TokenRequired,
            21 => Self::TokenUnknown,
            22 => Self::TokenExpired,
            23 => Self::TokenUsed,
            24 => Self::SpaceExpired,
            _ => Self::Unrecognized,
        }
    }
}

/// How every creation token starts: `hrt_`, then 43 characters of URL-safe base64 (32
/// random bytes), so a token pasted into the wrong place is recognisable as one.
pub const CREATION_TOKEN_PREFIX: &str = "hrt_";

/// The length of a creation token, prefix included.
pub const CREATION_TOKEN_LEN: usize = CREATION_TOKEN_PREFIX.len() + 43;

/// Whether `token` has the shape of a creation token (`hrt_` and 43 URL-safe base64
/// characters). Says nothing of whether a relay minted it.
pub fn is_creation_token(token: &str) -> bool {
    token.len() == CREATION_TOKEN_LEN
        && token.starts_with(CREATION_TOKEN_PREFIX)
        && token[CREATION_TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks that this build speaks the peer's protocol version.
///
/// # Errors
/// [`ProtoError::UnsupportedVersion`], naming both versions.
pub fn check_version(theirs: u16) -> Result<(), ProtoError> {
    if SUPPORTED_VERSIONS.contains(&theirs) {
        Ok(())
    } else {
        Err(ProtoError::UnsupportedVersion {
            got: theirs,
            want: PROTOCOL_VERSION,
        })
    }
}

/// The 32-byte message an `Auth` signs:
/// `BLAKE3-derive-key("hearth auth v1", relay_id ‖ nonce ‖ time_ms (u64 BE) ‖ space ‖
/// device ‖ as_invite (one byte, 0 or 1))`. Binding the relay id and the nonce keeps a
/// signature from being replayed to another relay or on another connection.
pub fn auth_message(
    relay_id: &[u8; 16],
    nonce: &[u8; 32],
    time_ms: u64,
    space: &SpaceId,
    device: &DeviceId,
    as_invite: bool,
) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(AUTH_CONTEXT)
        .update(relay_id)
        .update(nonce)
        .update(&time_ms.to_be_bytes())
        .update(space.as_bytes())
        .update(device.as_bytes())
        .update(&[u8::from(as_invite)])
        .finalize()
        .as_bytes()
}

/// The 32-byte message a `DeleteSpace` signs, bound to the connection's challenge:
/// `BLAKE3-derive-key("hearth delete space v1", relay_id ‖ nonce ‖ space)`.
pub fn delete_space_message(relay_id: &[u8; 16], nonce: &[u8; 32], space: &SpaceId) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(DELETE_SPACE_CONTEXT)
        .update(relay_id)
        .update(nonce)
        .update(space.as_bytes())
        .finalize()
        .as_bytes()
}

/// Checks a deletion's proof: `signature` must be `device`'s over
/// [`delete_space_message`] for `space` and the challenge (`relay_id`, `nonce`) it was
/// signed for. Whether `device` was a member is the caller's question, against its chain.
///
/// # Errors
/// [`ProtoError::BadSignature`] if it does not verify.
pub fn verify_delete_space(
    relay_id: &[u8; 16],
    nonce: &[u8; 32],
    space: &SpaceId,
    device: &DeviceId,
    signature: &[u8; 64],
) -> Result<(), ProtoError> {
    let message = delete_space_message(relay_id, nonce, space);
    crate::signature::verify_signature(device.as_bytes(), &message, signature)
}

/// Encodes a client frame, refusing one over `max_frame_bytes`.
///
/// # Errors
/// [`ProtoError::TooLarge`] if the encoding exceeds `max_frame_bytes`.
pub fn encode_client(frame: &ClientFrame, max_frame_bytes: usize) -> Result<Vec<u8>, ProtoError> {
    encode(frame, max_frame_bytes)
}

/// Decodes a client frame, checking its size before anything else.
///
/// # Errors
/// [`ProtoError::TooLarge`] over `max_frame_bytes`, [`ProtoError::Malformed`] for bytes
/// that are not exactly one valid frame.
pub fn decode_client(bytes: &[u8], max_frame_bytes: usize) -> Result<ClientFrame, ProtoError> {
    let frame: ClientFrame = decode(bytes, max_frame_bytes)?;
    if let ClientFrame::Hello { client, .. } = &frame
        && client.chars().count() > MAX_CLIENT_NAME_CHARS
    {
        return Err(ProtoError::malformed(
            "frame",
            format!("client name over {MAX_CLIENT_NAME_CHARS} characters"),
        ));
    }
    Ok(frame)
}

/// Encodes a relay frame, refusing one over `max_frame_bytes`.
///
/// # Errors
/// [`ProtoError::TooLarge`] if the encoding exceeds `max_frame_bytes`.
pub fn encode_relay(frame: &RelayFrame, max_frame_bytes: usize) -> Result<Vec<u8>, ProtoError> {
    encode(frame, max_frame_bytes)
}

/// Decodes a relay frame, checking its size before anything else.
///
/// # Errors
/// [`ProtoError::TooLarge`] over `max_frame_bytes`, [`ProtoError::Malformed`] for bytes
/// that are not exactly one valid frame.
pub fn decode_relay(bytes: &[u8], max_frame_bytes: usize) -> Result<RelayFrame, ProtoError> {
    decode(bytes, max_frame_bytes)
}

fn encode<T: Serialize>(frame: &T, max_frame_bytes: usize) -> Result<Vec<u8>, ProtoError> {
    let bytes =
        postcard::to_allocvec(frame).map_err(|e| ProtoError::malformed("frame", e.to_string()))?;
    check_size(bytes.len(), max_frame_bytes)?;
    Ok(bytes)
}

fn decode<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    max_frame_bytes: usize,
) -> Result<T, ProtoError> {
    check_size(bytes.len(), max_frame_bytes)?;
    let (frame, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| ProtoError::malformed("frame", e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtoError::malformed(
            "frame",
            format!("{} trailing bytes", rest.len()),
        ));
    }
    Ok(frame)
}

fn check_size(size: usize, max: usize) -> Result<(), ProtoError> {
    if size > max {
        Err(ProtoError::TooLarge {
            what: "frame",
            size,
            max,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;
    use proptest::prelude::*;

    use super::*;
    use crate::signature::verify_signature;
    use crate::test_support::{any_client_frame, any_relay_frame, key};

    const MAX: usize = 1024 * 1024;

    #[test]
    fn version_mismatch_names_both_versions() {
        check_version(PROTOCOL_VERSION).unwrap();
        let err = check_version(7).unwrap_err();
        assert_eq!(err, ProtoError::UnsupportedVersion { got: 7, want: 1 });
        let message = err.to_string();
        assert!(message.contains('7') && message.contains('1'), "{message}");
    }

    #[test]
    fn hello_and_reject_layouts_are_frozen() {
        let hello = ClientFrame::Hello {
            version: 1,
            client: "hearth/0.1".into(),
        };
        assert_eq!(
            hex::encode(encode_client(&hello, MAX).unwrap()),
            "00010a6865617274682f302e31"
        );
        let reject = RelayFrame::Reject {
            code: RejectCode::UnsupportedVersion,
            message: "v1".into(),
        };
        assert_eq!(
            hex::encode(encode_relay(&reject, MAX).unwrap()),
            "0601027631"
        );
    }

    #[test]
    fn frames_added_for_snapshot_consent_come_after_every_older_variant() {
        let first = |bytes: Vec<u8>| bytes[0];
        let space = SpaceId::from_bytes([1; 16]);
        let device = DeviceId::from_bytes([2; 32]);
        let client = [
            ClientFrame::Countersign {
                covers_seq: 1,
                snapshot: [3; 32],
                device,
                signature: [4; 64],
            },
            ClientFrame::SubscribeEnvelopes {
                space,
                since_seq: 0,
            },
        ];
        let indices: Vec<u8> = client
            .iter()
            .map(|f| first(encode_client(f, MAX).unwrap()))
            .collect();
        assert_eq!(indices, [11, 12]);
        let relay = [
            RelayFrame::Proposed { envelope: vec![5] },
            RelayFrame::Countersigned {
                covers_seq: 1,
                device,
                signature: [4; 64],
            },
        ];
        let indices: Vec<u8> = relay
            .iter()
            .map(|f| first(encode_relay(f, MAX).unwrap()))
            .collect();
        assert_eq!(indices, [9, 10]);
    }

    #[test]
    fn reject_codes_keep_their_numbers() {
        for n in 0..=40u16 {
            let code = RejectCode::from(n);
            if code != RejectCode::Unrecognized {
                assert_eq!(code.code(), n);
            }
        }
        assert_eq!(RejectCode::Unauthorized.code(), 5);
        assert_eq!(RejectCode::TokenRequired.code(), 20);
        assert_eq!(RejectCode::SpaceExpired.code(), 24);
        assert_eq!(RejectCode::from(999), RejectCode::Unrecognized);
    }

    #[test]
    fn a_creation_token_is_hrt_and_43_url_safe_base64_characters() {
        let good = format!("hrt_{}", "aZ09-_".repeat(7) + "x");
        assert!(is_creation_token(&good), "{good}");
        assert!(!is_creation_token(&good[1..]), "no prefix");
        assert!(!is_creation_token(&format!("{good}x")), "too long");
        assert!(!is_creation_token(&good.replace('x', "+")), "not URL-safe");
        assert!(!is_creation_token(""));
    }

    #[test]
    fn oversized_frames_are_refused_before_decoding() {
        let push = ClientFrame::Push {
            envelope: vec![0; 2000],
        };
        assert!(matches!(
            encode_client(&push, 1000),
            Err(ProtoError::TooLarge { .. })
        ));
        let bytes = encode_client(&push, MAX).unwrap();
        assert!(matches!(
            decode_client(&bytes, 1000),
            Err(ProtoError::TooLarge { .. })
        ));
        assert_eq!(decode_client(&bytes, MAX).unwrap(), push);
    }

    #[test]
    fn long_client_names_and_trailing_bytes_are_refused() {
        let hello = ClientFrame::Hello {
            version: 1,
            client: "x".repeat(65),
        };
        let bytes = encode_client(&hello, MAX).unwrap();
        assert!(decode_client(&bytes, MAX).is_err());
        let mut ping = encode_client(&ClientFrame::Ping { nonce: 3 }, MAX).unwrap();
        ping.push(0);
        assert!(decode_client(&ping, MAX).is_err());
    }

    #[test]
    fn auth_signature_is_bound_to_every_field() {
        let device_key = key(1);
        let device = DeviceId::from_bytes(device_key.verifying_key().to_bytes());
        let space = SpaceId::from_bytes([3; 16]);
        let message = auth_message(&[1; 16], &[2; 32], 77, &space, &device, false);
        let signature = device_key.sign(&message).to_bytes();
        verify_signature(device.as_bytes(), &message, &signature).unwrap();
        let others = [
            auth_message(&[9; 16], &[2; 32], 77, &space, &device, false),
            auth_message(&[1; 16], &[9; 32], 77, &space, &device, false),
            auth_message(&[1; 16], &[2; 32], 78, &space, &device, false),
            auth_message(
                &[1; 16],
                &[2; 32],
                77,
                &SpaceId::from_bytes([4; 16]),
                &device,
                false,
            ),
            auth_message(&[1; 16], &[2; 32], 77, &space, &device, true),
            delete_space_message(&[1; 16], &[2; 32], &space),
        ];
        for other in others {
            assert!(verify_signature(device.as_bytes(), &other, &signature).is_err());
        }
    }

    #[test]
    fn a_deletion_proof_verifies_only_for_its_device_space_and_challenge() {
        let device_key = key(1);
        let device = DeviceId::from_bytes(device_key.verifying_key().to_bytes());
        let space = SpaceId::from_bytes([3; 16]);
        let signature = device_key
            .sign(&delete_space_message(&[1; 16], &[2; 32], &space))
            .to_bytes();
        verify_delete_space(&[1; 16], &[2; 32], &space, &device, &signature).unwrap();
        let other = DeviceId::from_bytes(key(2).verifying_key().to_bytes());
        let elsewhere = SpaceId::from_bytes([4; 16]);
        for (relay_id, nonce, space, device) in [
            ([9; 16], [2; 32], space, device),
            ([1; 16], [9; 32], space, device),
            ([1; 16], [2; 32], elsewhere, device),
            ([1; 16], [2; 32], space, other),
        ] {
            assert_eq!(
                verify_delete_space(&relay_id, &nonce, &space, &device, &signature),
                Err(ProtoError::BadSignature)
            );
        }
        assert!(verify_delete_space(&[1; 16], &[2; 32], &space, &device, &[0; 64]).is_err());
    }

    #[test]
    fn space_deleted_is_appended_after_every_older_relay_frame() {
        let frame = RelayFrame::SpaceDeleted {
            space: SpaceId::from_bytes([3; 16]),
            device: DeviceId::from_bytes([4; 32]),
            relay_id: [1; 16],
            nonce: [2; 32],
            signature: [5; 64],
            deleted_at_ms: 7,
        };
        let bytes = encode_relay(&frame, MAX).unwrap();
        assert_eq!(bytes[0], 8, "the variant after Pong");
        assert_eq!(decode_relay(&bytes, MAX).unwrap(), frame);
        assert_eq!(RejectCode::SpaceDeleted.code(), 15);
    }

    #[test]
    fn identity_frames_and_the_clock_skew_code_come_after_every_older_one() {
        let identify = ClientFrame::Identify { nonce: [1; 32] };
        let bytes = encode_client(&identify, MAX).unwrap();
        assert_eq!(bytes[0], 13, "the client variant after SubscribeEnvelopes");
        assert_eq!(decode_client(&bytes, MAX).unwrap(), identify);
        let identity = RelayFrame::Identity {
            key: [2; 32],
            time_ms: 7,
            signature: [3; 64],
        };
        let bytes = encode_relay(&identity, MAX).unwrap();
        assert_eq!(bytes[0], 11, "the relay variant after Countersigned");
        assert_eq!(decode_relay(&bytes, MAX).unwrap(), identity);
        assert_eq!(RejectCode::ClockSkew.code(), 16);
        assert_eq!(RejectCode::from(16), RejectCode::ClockSkew);
    }

    proptest! {
        #[test]
        fn client_frames_round_trip(frame in any_client_frame()) {
            let bytes = encode_client(&frame, MAX)?;
            prop_assert_eq!(decode_client(&bytes, MAX)?, frame);
        }

        #[test]
        fn relay_frames_round_trip(frame in any_relay_frame()) {
            let bytes = encode_relay(&frame, MAX)?;
            prop_assert_eq!(decode_relay(&bytes, MAX)?, frame);
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_client(&bytes, MAX);
            let _ = decode_relay(&bytes, MAX);
        }

        #[test]
        fn decoding_mutated_frames_never_panics(
            client in any_client_frame(),
            relay in any_relay_frame(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            for mut bytes in [encode_client(&client, MAX)?, encode_relay(&relay, MAX)?] {
                for (at, value) in &edits {
                    let i = at.index(bytes.len());
                    bytes[i] = *value;
                }
                let _ = decode_client(&bytes, MAX);
                let _ = decode_relay(&bytes, MAX);
                let cut = cut.index(bytes.len());
                let _ = decode_client(&bytes[..cut], MAX);
                let _ = decode_relay(&bytes[..cut], MAX);
            }
        }
    }
}
