//! Which [`RejectCode`] and message the relay answers each failure with, in one place.
//!
//! The code is what a client branches on (retry, re-fetch the ACL, ask for a new invite,
//! stop), so the same error must always get the same code; the message is what its user
//! reads, so it says what happened and what to do. The same [`ProtoError`] means different
//! things depending on what was being judged: a frame that does not decode breaks the
//! connection (`BadFrame`), an envelope that does not decode is one bad item (`Invalid`).
//! So a failure is named together with what it was found in ([`Failure`]), and
//! [`reject_code`] is the one function that turns it into a code.

use hearth_proto::{AclRule, ConsentFault, ProtoError, RejectCode};

use crate::snapshots::CountersignRefusal;
use crate::store::{StoreError, TokenRefusal};

/// A `Reject` frame to send: the code and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) code: RejectCode,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// An error, named with what it was found in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure<'a> {
    /// The websocket message did not decode as a client frame.
    Frame(&'a ProtoError),
    /// A pushed envelope did not decode or verify.
    Envelope(&'a ProtoError),
    /// A `PutAcl` record did not decode.
    AclUnreadable(&'a ProtoError),
    /// A `PutAcl` record decoded but the chain refused it.
    AclRefused(&'a ProtoError),
    /// A `CreateSpace` Genesis did not decode.
    GenesisUnreadable(&'a ProtoError),
    /// A `CreateSpace` Genesis decoded but does not start a valid chain.
    GenesisRefused(&'a ProtoError),
    /// The store failed or refused.
    Store(&'a StoreError),
    /// A `Countersign` was refused (see [`crate::snapshots`]).
    Countersign(&'a CountersignRefusal),
}

/// The code a client gets for `failure`.
pub(crate) fn reject_code(failure: Failure<'_>) -> RejectCode {
    match failure {
        Failure::Frame(ProtoError::TooLarge { .. }) => RejectCode::TooLarge,
        Failure::Frame(_) => RejectCode::BadFrame,
        Failure::Envelope(_)
        | Failure::AclUnreadable(_)
        | Failure::GenesisUnreadable(_)
        | Failure::GenesisRefused(_) => RejectCode::Invalid,
        Failure::AclRefused(error) => match error {
            // Lost a race for the head: fetching the ACL and retrying can succeed.
            ProtoError::BrokenChain(_) => RejectCode::Conflict,
            ProtoError::InviteExpired { .. } => RejectCode::InviteExpired,
            ProtoError::InviteUsed => RejectCode::InviteUsed,
            ProtoError::AclRefused(AclRule::InviteRevoked) => RejectCode::InviteRevoked,
            _ => RejectCode::Invalid,
        },
        Failure::Store(error) => match error {
            StoreError::NoSuchSpace => RejectCode::NotMember,
            StoreError::SpaceExists | StoreError::Conflict(_) => RejectCode::Conflict,
            StoreError::SpaceDeleted => RejectCode::SpaceDeleted,
            StoreError::QuotaExceeded(_) | StoreError::DiskFull => RejectCode::QuotaExceeded,
            StoreError::BadSignature => RejectCode::Invalid,
            StoreError::Unavailable(_) | StoreError::Database(_) => RejectCode::StorageUnavailable,
            StoreError::Token(TokenRefusal::Unknown) => RejectCode::TokenUnknown,
            StoreError::Token(TokenRefusal::Expired { .. }) => RejectCode::TokenExpired,
            StoreError::Token(TokenRefusal::Used) => RejectCode::TokenUsed,
        },
        Failure::Countersign(refusal) => match refusal {
            CountersignRefusal::Removed => RejectCode::NotMember,
            // Lost a race with a newer proposal (or another device's countersignature).
            CountersignRefusal::NoProposal { .. } | CountersignRefusal::Changed { .. } => {
                RejectCode::Conflict
            }
            CountersignRefusal::Fault(_) => RejectCode::Invalid,
        },
    }
}

/// The `Reject` for `failure`: its [`reject_code`] and a message that says what to do.
pub(crate) fn rejection(failure: Failure<'_>) -> Rejection {
    let code = reject_code(failure);
    let message = match failure {
        Failure::Frame(ProtoError::TooLarge { size, max, .. }) => format!(
            "a frame of {size} bytes is over this relay's limit of {max}; split the batch into smaller envelopes"
        ),
        Failure::Frame(error) => {
            format!("{error}; this is a client bug: reconnect, and do not resend the same bytes")
        }
        Failure::Envelope(error) => format!(
            "the envelope was refused ({error}); nothing was stored; do not resend it unchanged"
        ),
        Failure::AclUnreadable(error) => {
            format!("the ACL record does not decode ({error}); do not resend it unchanged")
        }
        Failure::AclRefused(error) => match code {
            RejectCode::Conflict => {
                format!("{error}: another record was appended first; fetch the ACL and retry")
            }
            RejectCode::Invalid => format!("{error}; do not resend this record unchanged"),
            // The invite's own messages already say to ask for a new invite.
            _ => error.to_string(),
        },
        Failure::GenesisUnreadable(error) => {
            format!("the genesis record does not decode ({error}); send a valid Genesis record")
        }
        Failure::GenesisRefused(error) => {
            format!("the genesis record is refused ({error}); do not resend it unchanged")
        }
        Failure::Store(error) => store_message(error),
        Failure::Countersign(refusal) => countersign_message(refusal),
    };
    Rejection { code, message }
}

fn countersign_message(refusal: &CountersignRefusal) -> String {
    let fault = match refusal {
        CountersignRefusal::Removed => {
            return "this device was removed from the space; stop syncing it".into();
        }
        CountersignRefusal::NoProposal { covers_seq } => {
            return format!(
                "no snapshot covering seq {covers_seq} waits for a countersignature (it was \
                 accepted already, or never proposed); nothing was dropped; sync again"
            );
        }
        CountersignRefusal::Changed {
            covers_seq,
            waiting,
        } => {
            return format!(
                "the snapshot covering seq {covers_seq} was replaced by another proposal \
                 (covering seq {waiting}) before it was countersigned; nothing was dropped; \
                 sync again to judge the one waiting"
            );
        }
        CountersignRefusal::Fault(fault) => fault,
    };
    let why = match fault {
        ConsentFault::SamePerson => "a snapshot needs the countersignature of a device of the \
             other person, not one of its author's own devices"
            .to_owned(),
        ConsentFault::NotAMember => {
            "the countersigning device is not a member of this space".to_owned()
        }
        ConsentFault::BadSignature => "the countersignature does not verify for this \
             snapshot, space and cover"
            .to_owned(),
        other => format!("the countersignature was refused: {other}"),
    };
    format!("{why}; nothing was dropped, and the relay keeps the envelopes the snapshot covers")
}

fn store_message(error: &StoreError) -> String {
    match error {
        StoreError::NoSuchSpace => "the space no longer exists on this relay; stop syncing it".into(),
        StoreError::SpaceExists => {
            "a space with this id already exists; create the space again with a new id".into()
        }
        StoreError::SpaceDeleted => {
            "this space was deleted by one of its devices and its id cannot be used again on this relay; stop syncing it, and start a new space".into()
        }
        StoreError::Conflict(m) => format!("{m}; fetch the latest state and retry"),
        StoreError::QuotaExceeded(m) => format!(
            "{m}; compact with a snapshot or ask the relay's operator to raise the quota"
        ),
        StoreError::DiskFull => {
            "the relay's disk is full and nothing was stored; tell the relay's operator".into()
        }
        StoreError::BadSignature => "the envelope was refused (its signature does not verify); nothing was stored; do not resend it unchanged".into(),
        StoreError::Unavailable(_) | StoreError::Database(_) => {
            "the relay could not reach its storage; retry later with backoff (your data stays local)"
                .into()
        }
        StoreError::Token(refusal) => token_message(*refusal),
    }
}

fn token_message(refusal: TokenRefusal) -> String {
    let what = match refusal {
        TokenRefusal::Expired { at_ms } => format!(
            "this creation token expired on {}",
            crate::tokens::timestamp(at_ms)
        ),
        TokenRefusal::Used => "this creation token has been used as often as it allows".into(),
        TokenRefusal::Unknown => "this relay does not know that creation token (mistyped, revoked, or made for another relay)".into(),
    };
    format!("{what}; nothing was created or spent; ask the relay's operator for a new token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(failure: Failure<'_>) -> RejectCode {
        let rejection = rejection(failure);
        assert_eq!(rejection.code, reject_code(failure));
        assert!(!rejection.message.is_empty());
        rejection.code
    }

    #[test]
    fn a_frame_that_does_not_decode_is_a_bad_frame_unless_it_is_too_large() {
        let big = ProtoError::TooLarge {
            what: "frame",
            size: 10,
            max: 5,
        };
        assert_eq!(code(Failure::Frame(&big)), RejectCode::TooLarge);
        assert!(
            rejection(Failure::Frame(&big))
                .message
                .contains("limit of 5")
        );
        let garbled = ProtoError::Malformed {
            what: "frame",
            reason: "x".into(),
        };
        assert_eq!(code(Failure::Frame(&garbled)), RejectCode::BadFrame);
    }

    #[test]
    fn a_bad_envelope_or_genesis_is_invalid() {
        for error in [
            ProtoError::BadSignature,
            ProtoError::UnsupportedVersion { got: 9, want: 1 },
        ] {
            assert_eq!(code(Failure::Envelope(&error)), RejectCode::Invalid);
            assert_eq!(code(Failure::AclUnreadable(&error)), RejectCode::Invalid);
            assert_eq!(
                code(Failure::GenesisUnreadable(&error)),
                RejectCode::Invalid
            );
            assert_eq!(code(Failure::GenesisRefused(&error)), RejectCode::Invalid);
        }
    }

    #[test]
    fn each_refused_acl_record_gets_the_code_a_client_acts_on() {
        let cases = [
            (ProtoError::BrokenChain("x"), RejectCode::Conflict),
            (
                ProtoError::InviteExpired { expires_at_ms: 1 },
                RejectCode::InviteExpired,
            ),
            (ProtoError::InviteUsed, RejectCode::InviteUsed),
            (
                ProtoError::AclRefused(AclRule::InviteRevoked),
                RejectCode::InviteRevoked,
            ),
            (ProtoError::UnknownInvite, RejectCode::Invalid),
            (ProtoError::BadSignature, RejectCode::Invalid),
            (
                ProtoError::AclRefused(AclRule::SpaceFull),
                RejectCode::Invalid,
            ),
            (
                ProtoError::AclRefused(AclRule::EpochStep),
                RejectCode::Invalid,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(code(Failure::AclRefused(&error)), want, "{error}");
        }
        let revoked = rejection(Failure::AclRefused(&ProtoError::AclRefused(
            AclRule::InviteRevoked,
        )));
        assert_eq!(
            revoked.message,
            "acl record refused: this invite was revoked (its device was removed, or the space rotated its key since)"
        );
    }

    #[test]
    fn each_store_failure_gets_its_code() {
        let cases = [
            (StoreError::NoSuchSpace, RejectCode::NotMember),
            (StoreError::SpaceExists, RejectCode::Conflict),
            (StoreError::SpaceDeleted, RejectCode::SpaceDeleted),
            (StoreError::Conflict("c".into()), RejectCode::Conflict),
            (
                StoreError::QuotaExceeded("q".into()),
                RejectCode::QuotaExceeded,
            ),
            (StoreError::DiskFull, RejectCode::QuotaExceeded),
            (StoreError::BadSignature, RejectCode::Invalid),
            (
                StoreError::Unavailable("u".into()),
                RejectCode::StorageUnavailable,
            ),
            (
                StoreError::Database(rusqlite::Error::InvalidQuery),
                RejectCode::StorageUnavailable,
            ),
            (
                StoreError::Token(TokenRefusal::Unknown),
                RejectCode::TokenUnknown,
            ),
            (
                StoreError::Token(TokenRefusal::Expired { at_ms: 0 }),
                RejectCode::TokenExpired,
            ),
            (StoreError::Token(TokenRefusal::Used), RejectCode::TokenUsed),
        ];
        for (error, want) in cases {
            assert_eq!(code(Failure::Store(&error)), want, "{error}");
        }
    }

    #[test]
    fn every_refused_token_says_to_ask_the_operator_for_a_new_one() {
        for refusal in [
            TokenRefusal::Unknown,
            TokenRefusal::Expired {
                at_ms: 1_800_000_000_000,
            },
            TokenRefusal::Used,
        ] {
            let message = rejection(Failure::Store(&StoreError::Token(refusal))).message;
            assert!(
                message.ends_with("ask the relay's operator for a new token"),
                "{message}"
            );
        }
        let expired = rejection(Failure::Store(&StoreError::Token(TokenRefusal::Expired {
            at_ms: 1_800_000_000_000,
        })));
        assert!(
            expired.message.contains("2027-01-15"),
            "{}",
            expired.message
        );
    }
}
