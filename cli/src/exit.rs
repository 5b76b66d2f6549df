//! Exit codes and error messages. Every failure maps to one of the codes in the README
//! ("Exit codes") and a message that says what happened and what to do next:
//! 0 success, 1 something to fix in the command or a failure hearth does not classify
//! (a missing folder, a permission), 2 sync or relay unavailable (data kept locally),
//! 3 a data or key problem (wrong passphrase, damaged or tampered data).
//!
//! 3 is a claim that the user's data or keys are in question, so only errors that are known
//! to mean that map to it; anything unclassified is 1.

use std::process::ExitCode;

use hearth_client::Error as ClientError;
use hearth_client::sync::{JoinError, SyncError};
use hearth_doc::DocError;
use hearth_proto::RejectCode;

/// Exit code: the user can fix the command and run it again, or a failure that is not
/// classified (never a claim about their data).
pub const USER: u8 = 1;
/// Exit code: sync or the relay is unavailable; data is kept locally.
pub const SYNC: u8 = 2;
/// Exit code: a data or key problem.
pub const DATA: u8 = 3;

/// An error the user fixes by changing what they typed (exit 1).
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// A relay that could not be reached while nothing was changed yet (exit 2); its message
/// says what was left as it was.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Returns early with a [`UserError`].
macro_rules! user_error {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::exit::UserError(format!($($arg)*))))
    };
}
pub(crate) use user_error;

/// Prints `err` for a person and returns the exit code it maps to.
pub fn report(err: &anyhow::Error) -> ExitCode {
    // `hearth log | head`: the reader has all it wanted; that is not a failure.
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let (code, hint) = classify(err);
    eprintln!("hearth: {err:#}");
    if let Some(hint) = hint {
        eprintln!("{hint}");
    }
    ExitCode::from(code)
}

fn classify(err: &anyhow::Error) -> (u8, Option<String>) {
    for cause in err.chain() {
        if cause.is::<UserError>() {
            return (USER, None);
        }
        if cause.is::<Unavailable>() {
            return (SYNC, None);
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return classify_client(e);
        }
        if let Some(e) = cause.downcast_ref::<DocError>() {
            return (doc_code(e), None);
        }
        if let Some(e) = cause.downcast_ref::<JoinError>() {
            return match e {
                JoinError::Sync(s) => classify_sync(s),
                _ => (USER, None),
            };
        }
        if let Some(e) = cause.downcast_ref::<SyncError>() {
            return classify_sync(e);
        }
    }
    (USER, None)
}

/// The hint for a relay that broke the protocol.
const TAMPERING: &str =
    "Nothing from this sync was applied. If it persists, check which relay you use.";

fn classify_sync(err: &SyncError) -> (u8, Option<String>) {
    let kept = "Your changes are kept on this device and will sync next time (`hearth sync`).";
    match err {
        SyncError::Unreachable { .. } | SyncError::Timeout(_) => (SYNC, Some(kept.into())),
        SyncError::NotARelay { .. } => (
            SYNC,
            Some(format!(
                "{kept} If the address is wrong, `hearth relay` shows it and `hearth relay set \
                 URL` moves your space to the right one."
            )),
        ),
        // The same certificate is refused every time: something to fix, not to wait out.
        SyncError::Tls { .. } => (
            USER,
            Some(
                "Nothing was sent, and nothing on this device was created or changed. A private \
                 CA's certificate goes with --ca-file PATH on `hearth init`, `hearth join` or \
                 `hearth invite --relay`, or on `hearth sync` for a profile that exists; the \
                 profile keeps it."
                    .into(),
            ),
        ),
        SyncError::Refused { code, .. } => match code {
            RejectCode::StorageUnavailable
            | RejectCode::RateLimited
            | RejectCode::Internal
            | RejectCode::Unrecognized => (SYNC, Some(kept.into())),
            RejectCode::SpaceDeleted => (
                DATA,
                Some("This space was deleted from the relay by one of its devices. Everything on this device is kept: `hearth export --format md` saves it; `hearth init` starts a new space.".into()),
            ),
            RejectCode::ClockSkew => (USER, None),
            RejectCode::Unauthorized | RejectCode::NotMember => (
                DATA,
                Some("This device is not (or no longer) in the space on that relay. Your data here is untouched.".into()),
            ),
            _ => (SYNC, Some(kept.into())),
        },
        // Their messages say what to do; the data here is untouched.
        SyncError::NotAdmitted
        | SyncError::AclHidden { .. }
        | SyncError::AclForked { .. }
        | SyncError::SpaceDeleted(_)
        | SyncError::DeletionUnproven { .. }
        | SyncError::SpaceMissing => (DATA, None),
        SyncError::KeyUnavailable { .. } | SyncError::AclMoved | SyncError::RelayBehind { .. } => {
            (SYNC, None)
        }
        // Its message says what to run.
        SyncError::MovedElsewhere { .. } => (USER, None),
        // A token to ask the operator for; nothing was created or spent, nothing lost.
        SyncError::TokenRefused { .. } => (
            USER,
            Some(
                "Your profile and everything in it are kept. With a token, run `hearth sync \
                 --relay-token TOKEN`."
                    .into(),
            ),
        ),
        SyncError::SpaceExpired => (SYNC, None),
        // The message says how to set the clock; nothing was sent or changed.
        SyncError::ClockSkew(_) => (USER, None),
        // Not the relay this device (or the invite) knows, or no proof of it: their
        // messages say what changed and what to ask the operator.
        SyncError::RelayKeyChanged { .. }
        | SyncError::RelayKeyNotInvited { .. }
        | SyncError::FingerprintMismatch { .. }
        | SyncError::RelayKeyUnproven { .. } => (DATA, None),
        // A relay from before relay keys: unusable until its operator upgrades it.
        SyncError::RelayUnidentified { .. } => (SYNC, None),
        SyncError::NotPaired => (
            USER,
            Some("Put the space on a relay with `hearth invite --relay wss://…/v1/sync`.".into()),
        ),
        SyncError::Profile(e) => classify_client(e),
        // Over the relay's size limit: nothing is damaged, and the change waits here.
        SyncError::Unsendable(_) => (SYNC, Some(kept.into())),
        // Its message says to ask for a new invite; nothing was created here.
        SyncError::BadInvite(_) => (DATA, None),
        // A relay that breaks the protocol may be tampering: nothing was applied.
        SyncError::UnexpectedFrame { .. }
        | SyncError::UnreadableFrame(_)
        | SyncError::InvalidChain(_)
        | SyncError::ChainRollback => (DATA, Some(TAMPERING.into())),
        // A kind added later: as cautious as for a relay that misbehaves.
        _ => (DATA, Some(TAMPERING.into())),
    }
}

fn classify_client(err: &ClientError) -> (u8, Option<String>) {
    use hearth_client::CryptoError as C;
    match err {
        ClientError::NoProfile { .. } => (
            DATA,
            Some(
                "Create one with `hearth init --name YOUR-NAME`, or point --home (or HEARTH_HOME) \
                 at the directory that holds your profile."
                    .into(),
            ),
        ),
        ClientError::AlreadyExists { .. } => (
            USER,
            Some(
                "Your existing profile is untouched. To start another one, pass a different \
                 --home (or HEARTH_HOME)."
                    .into(),
            ),
        ),
        ClientError::DiskFull => (
            USER,
            Some(
                "Free some space and run the command again; everything saved before is intact."
                    .into(),
            ),
        ),
        ClientError::Crypto(C::WrongPassphrase { .. }) => (
            DATA,
            Some(
                "Nothing was changed. Type the passphrase you chose at `hearth init` at the \
                 prompt, or set HEARTH_PASSPHRASE to it for scripts."
                    .into(),
            ),
        ),
        ClientError::Crypto(C::PassphraseRequired { .. }) => (
            USER,
            Some(
                "There is no terminal to ask for it: run `hearth unlock` at a terminal first, or \
                 set HEARTH_PASSPHRASE to the profile's passphrase."
                    .into(),
            ),
        ),
        ClientError::KeyringUnavailable { .. } => (
            USER,
            Some(
                "Nothing was kept, and nothing else changed: commands ask for the passphrase \
                 each time (or read HEARTH_PASSPHRASE in scripts)."
                    .into(),
            ),
        ),
        ClientError::Doc(e) => (doc_code(e), None),
        ClientError::Corrupt { .. } | ClientError::NewerFormat { .. } | ClientError::Crypto(_) => (
            DATA,
            Some(
                "Nothing was changed or overwritten. Restore the profile directory from a backup, \
                 or run with a newer hearth if it was written by one."
                    .into(),
            ),
        ),
        ClientError::Proto(_) => (DATA, None),
        ClientError::Database(e) if database_damaged(e) => (
            DATA,
            Some("Nothing was changed. Restore the profile directory from a backup.".into()),
        ),
        // Not paired, already paired, a file that cannot be read or written, a database
        // that is busy or read-only: something to look at, not damaged data.
        _ => (USER, None),
    }
}

/// Whether SQLite says the file itself is damaged (as opposed to busy, locked or read-only).
fn database_damaged(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn doc_code(err: &DocError) -> u8 {
    match err {
        DocError::Load { .. }
        | DocError::Apply { .. }
        | DocError::NoData
        | DocError::Automerge { .. } => DATA,
        _ => USER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: anyhow::Error) -> u8 {
        classify(&err).0
    }

    #[test]
    fn a_missing_folder_is_something_to_fix_not_damaged_data() {
        let missing = std::fs::File::create("/nonexistent-hearth-dir/us.md")
            .expect_err("the folder does not exist");
        assert_eq!(
            code(anyhow::Error::new(missing).context("writing us.md")),
            USER
        );
        let client = ClientError::Io {
            path: "/nonexistent-hearth-dir/us.md".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(code(anyhow::Error::new(client)), USER);
    }

    #[test]
    fn damaged_data_and_wrong_keys_keep_exit_code_3() {
        let corrupt = ClientError::Corrupt {
            home: "/h".into(),
            reason: "chunk 3 does not open".into(),
        };
        assert_eq!(code(anyhow::Error::new(corrupt)), DATA);
        let not_a_db = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        );
        assert_eq!(
            code(anyhow::Error::new(ClientError::Database(not_a_db))),
            DATA
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(code(anyhow::Error::new(ClientError::Database(busy))), USER);
    }

    #[test]
    fn a_space_deleted_or_missing_on_the_relay_is_exit_code_3_and_an_unknown_code_2() {
        let deleted = SyncError::SpaceDeleted(hearth_client::sync::SpaceDeletion {
            by: hearth_client::DeviceId::from_bytes([1; 32]),
            whose: hearth_client::Whose::Partners,
            this_device: false,
            deleted_at_ms: 0,
        });
        let unproven = SyncError::DeletionUnproven {
            claimed: hearth_client::DeviceId::from_bytes([1; 32]),
            why: "its signature does not verify".into(),
        };
        for err in [deleted, unproven, SyncError::SpaceMissing] {
            assert_eq!(code(anyhow::Error::new(err)), DATA);
        }
        let refused = |code| SyncError::Refused {
            code,
            message: "m".into(),
        };
        assert_eq!(
            code(anyhow::Error::new(refused(RejectCode::SpaceDeleted))),
            DATA
        );
        assert_eq!(
            code(anyhow::Error::new(refused(RejectCode::Unrecognized))),
            SYNC
        );
    }

    #[test]
    fn a_refused_creation_token_is_exit_code_1_with_what_to_run_next() {
        let err = SyncError::TokenRefused {
            problem: hearth_client::sync::TokenProblem::Expired,
            after_expiry: false,
        };
        let (code, hint) = classify(&anyhow::Error::new(err));
        assert_eq!(code, USER);
        assert!(
            hint.unwrap_or_default()
                .contains("hearth sync --relay-token")
        );
    }

    #[test]
    fn a_skewed_clock_is_for_the_user_to_fix_and_a_changed_relay_key_is_exit_code_3() {
        let skew = SyncError::ClockSkew(hearth_client::sync::ClockSkew {
            device_ms: 600_000,
            relay_ms: 0,
        });
        assert_eq!(code(anyhow::Error::new(skew)), USER);
        let fp = hearth_proto::Fingerprint::from_bytes([1; 16]);
        let other = hearth_proto::Fingerprint::from_bytes([2; 16]);
        let relay = || "ws://127.0.0.1:1/v1/sync".to_owned();
        for err in [
            SyncError::RelayKeyChanged {
                relay: relay(),
                pinned: fp,
                presented: other,
            },
            SyncError::FingerprintMismatch {
                relay: relay(),
                given: fp,
                presented: other,
            },
            SyncError::RelayKeyUnproven {
                relay: relay(),
                why: "x".into(),
            },
        ] {
            assert_eq!(code(anyhow::Error::new(err)), DATA);
        }
        let joining = JoinError::Sync(SyncError::RelayKeyNotInvited {
            relay: relay(),
            invited: fp,
            presented: other,
        });
        assert_eq!(code(anyhow::Error::new(joining)), DATA);
        assert_eq!(
            code(anyhow::Error::new(SyncError::RelayUnidentified {
                relay: relay()
            })),
            SYNC
        );
    }

    #[test]
    fn a_certificate_problem_is_something_to_fix_not_to_retry() {
        let err = SyncError::Tls {
            relay: "wss://relay.lan/v1/sync".into(),
            fault: hearth_client::TlsFault::UnknownIssuer,
        };
        let (code, hint) = classify(&anyhow::Error::new(err));
        assert_eq!(code, USER);
        let hint = hint.unwrap_or_default();
        assert!(hint.contains("--ca-file"), "{hint}");
        assert!(!hint.contains("next time"), "{hint}");
        let joining = JoinError::Sync(SyncError::Tls {
            relay: "ws://relay.lan/v1/sync".into(),
            fault: hearth_client::TlsFault::ExpectsTls,
        });
        assert_eq!(code_of(joining), USER);
    }

    fn code_of(err: impl std::error::Error + Send + Sync + 'static) -> u8 {
        classify(&anyhow::Error::new(err)).0
    }

    #[test]
    fn an_unclassified_error_is_exit_code_1() {
        assert_eq!(code(anyhow::anyhow!("something unexpected")), USER);
    }
}
