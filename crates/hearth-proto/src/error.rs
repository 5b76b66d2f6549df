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
    /// An ACL record breaks one of the chain's other rules.
    #[error("acl record refused: {0}")]
    AclRefused(&'static str),
}

impl ProtoError {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            reason: reason.into(),
        }
    }
}
