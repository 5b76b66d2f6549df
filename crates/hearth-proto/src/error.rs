//! The one error type of this crate. Everything here reads bytes a stranger may have sent,
//! so every failure is a value the caller can match on (to pick a `Reject` code, or to
//! tell the user what happened), never a panic.

use crate::ids::DeviceId;

/// Why a frame, envelope or ACL record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The other side speaks a protocol or format version this build does not.
    #[error(
        "unsupported version {got}: this side speaks version {want}; upgrade whichever side is older"
    )]
    UnsupportedVersion {
        /// The version the peer sent.
        got: u16,
        /// The version this side speaks.
        want: u16,
    },
    /// Input exceeds a size limit; it was refused before being decoded.
    #[error("{what} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// What was too large (`"frame"`, `"envelope"`, …).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A signature does not verify, or the key it names is not a valid Ed25519 key.
    #[error("bad signature: the data was altered or signed by someone else")]
    BadSignature,
    /// An ACL record does not link to the head of the chain it is applied to.
    #[error("acl chain is broken: {0}")]
    BrokenChain(&'static str),
    /// A record was signed by a device that is not (or no longer) a member of the space.
    #[error("device {} is not a member of this space", .0.short())]
    NotMember(DeviceId),
    /// An AddDevice names an invite the ACL has no Invite record for.
    #[error("unknown invite: ask your partner for a new invite code")]
    UnknownInvite,
    /// An invite was used after its expiry.
    #[error("this invite expired: ask your partner for a new invite code")]
    InviteExpired {
        /// When it expired, UTC milliseconds.
        expires_at_ms: u64,
    },
    /// An invite was used a second time (invites are one-time).
    #[error("this invite was already used: ask your partner for a new invite code")]
    InviteUsed,
    /// An ACL record breaks one of the chain's other rules (which one: the [`AclRule`]).
    #[error("acl record refused: {0}")]
    AclRefused(AclRule),
}

/// The rule of the ACL chain a record broke, so that a caller can answer each one its own
/// way (the relay sends `InviteRevoked` for a revoked invite, `Invalid` for the others).
/// The rules themselves are described in [`crate::acl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AclRule {
    /// The signatures are not exactly the ones the record's body requires, in order.
    #[error("the record is not signed by exactly the keys it needs")]
    WrongSigners,
    /// A chain must hold at least its Genesis.
    #[error("the chain is empty")]
    EmptyChain,
    /// The first record of a chain is not a Genesis.
    #[error("the chain must start with genesis")]
    GenesisFirst,
    /// Genesis names an epoch other than 0.
    #[error("genesis must start at epoch 0")]
    GenesisEpoch,
    /// A second Genesis after the first.
    #[error("a space has exactly one genesis")]
    OneGenesis,
    /// An Invite reuses a key the chain already issued.
    #[error("this invite key was already issued")]
    InviteReissued,
    /// A Partner invite is issued or consumed after a partner joined.
    #[error("a partner has already joined this space")]
    PartnerJoined,
    /// An AddDevice's device key is the invite key it consumes.
    #[error("a device key must not be the invite key it joins with")]
    DeviceIsInviteKey,
    /// An AddDevice consumes an invite that died with its device or with a key rotation.
    #[error("this invite was revoked (its device was removed, or the space rotated its key since)")]
    InviteRevoked,
    /// An AddDevice adds a device that is already a member.
    #[error("the device is already a member")]
    AlreadyMember,
    /// An AddDevice adds a device that was removed before.
    #[error("a removed device cannot rejoin; it needs a new device key")]
    RemovedCannotRejoin,
    /// An AddDevice would take the space over `max_devices_per_space`.
    #[error("the space already has the most devices this relay allows")]
    SpaceFull,
    /// A RemoveDevice names a device that is not a member.
    #[error("the device is not a member")]
    RemovedNotMember,
    /// A RemoveDevice would remove the space's last device.
    #[error("the last device of a space cannot be removed")]
    LastDevice,
    /// A RotateEpoch does not name the current epoch + 1.
    #[error("the epoch must advance by exactly one")]
    EpochStep,
}

impl ProtoError {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            reason: reason.into(),
        }
    }
}
