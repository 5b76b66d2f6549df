//! The one error type of hearth-crypto: variants callers match on to pick an exit code and
//! a message that tells the user what to do.

use std::path::PathBuf;

/// What went wrong with a key or a sealed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The passphrase did not unlock the key file.
    #[error("wrong passphrase for {path}")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is passphrase-protected and no passphrase was supplied.
    #[error("{path} is protected by a passphrase, and none was given")]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },
    /// The key file asks for more scrypt work than hearth accepts (a sign of tampering).
    #[error("{path} asks for scrypt work factor 2^{required}, above hearth's limit of 2^{limit}")]
    ExcessiveWork {
        /// The key file.
        path: PathBuf,
        /// The work factor the file asks for.
        required: u8,
        /// The largest work factor accepted.
        limit: u8,
    },
    /// The key file is not one hearth wrote, or it was damaged.
    #[error("{path} is not a valid hearth key file: {reason}")]
    CorruptKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sealed value failed its integrity check: it was changed, truncated, or sealed with
    /// another key.
    #[error("sealed data failed its integrity check (tampered, truncated or from another profile)")]
    Tampered,
    /// A sealed value uses a format version this build does not know.
    #[error("sealed data has format version {got}; this build reads version {want}")]
    UnsupportedVersion {
        /// The version found.
        got: u8,
        /// The version this build reads.
        want: u8,
    },
    /// The key file already exists; hearth never overwrites one.
    #[error("{path} already exists; hearth never overwrites a key file")]
    KeyFileExists {
        /// The key file.
        path: PathBuf,
    },
    /// Reading or writing the key file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A string that should be an age X25519 recipient is not one.
    #[error("not an age recipient: {0}")]
    InvalidRecipient(String),
    /// An invite code is malformed, damaged or incomplete.
    #[error(
        "this invite code is not valid ({0}); ask your partner for a new invite with `hearth invite`"
    )]
    InvalidInvite(String),
    /// A check-in commitment (as a profile keeps it) is not 64 hex digits.
    #[error("{0:?} is not a check-in commitment (64 hex digits); the profile may be damaged")]
    InvalidCommitment(String),
    /// An ACL record needs a signature from a key that was not given.
    #[error("the record needs a signature from key {0}…, which is not at hand")]
    MissingSigner(String),
    /// A plaintext could not be padded for an envelope (it is over 4 GiB).
    #[error(transparent)]
    Padding(#[from] crate::padding::PaddingError),
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}
