//! The one error type of hearth-client. Callers (the CLI) match on it to choose an exit
//! code; its messages say what happened and what to do.

use std::path::PathBuf;

use hearth_crypto::CryptoError;
use hearth_doc::DocError;

/// What went wrong with a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no profile in the directory.
    #[error("no hearth profile in {home}")]
    NoProfile {
        /// The profile directory.
        home: PathBuf,
    },
    /// `create` found an existing profile (or part of one) and left it alone.
    #[error("{path} already exists; hearth never overwrites a profile")]
    AlreadyExists {
        /// The file that is already there.
        path: PathBuf,
    },
    /// The profile's data failed its integrity check or does not make sense.
    #[error("the profile in {home} is damaged: {reason}")]
    Corrupt {
        /// The profile directory.
        home: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The profile was written by a newer hearth.
    #[error("the profile in {home} has format {got}; this hearth reads formats up to {want}")]
    NewerFormat {
        /// The profile directory.
        home: PathBuf,
        /// The format found.
        got: i64,
        /// The newest format this build reads.
        want: i64,
    },
    /// `unlock` was asked of a profile without a passphrase: there is nothing to unlock.
    #[error("the profile in {home} has no passphrase, so there is nothing to unlock")]
    NoPassphrase {
        /// The profile directory.
        home: PathBuf,
    },
    /// `unlock` was asked for no time at all, or for longer than hearth allows.
    #[error("a profile can stay unlocked for more than no time and at most {max_days} days")]
    UnlockDuration {
        /// The longest allowed, in days.
        max_days: u64,
    },
    /// There is no keyring on this system to keep an unlocked key in.
    #[error("no keyring is available on this computer: {reason}")]
    KeyringUnavailable {
        /// Why, in words.
        reason: String,
    },
    /// The space is not on a relay yet, so there is nobody to pair with through it.
    #[error("this space is not on a relay yet")]
    NotPaired,
    /// The space is already on a relay.
    #[error("this space is already on a relay")]
    AlreadyPaired,
    /// A protocol record or frame was refused.
    #[error(transparent)]
    Proto(#[from] hearth_proto::ProtoError),
    /// The disk is full; the command's change was not written.
    #[error("the disk is full, so nothing was written")]
    DiskFull,
    /// A key problem: wrong passphrase, damaged key file, tampered data.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The document refused an operation (invalid input, unknown entry…).
    #[error(transparent)]
    Doc(#[from] DocError),
    /// The profile database failed.
    #[error("profile database error")]
    Database(#[source] rusqlite::Error),
    /// A CA certificate file given for the relay (`--ca-file`) cannot be used; nothing was
    /// changed.
    #[error("cannot use {path} as the relay's CA certificate: {reason}")]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it, and what to give instead.
        reason: String,
    },
    /// A file or directory could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            Error::DiskFull
        } else {
            Error::Database(e)
        }
    }
}
