//! Why a sync did not complete. Every variant leaves local data intact; the CLI matches
//! on them to choose an exit code.

use std::time::Duration;

use hearth_proto::RejectCode;

use crate::Error;

/// Why a sync did not complete. Local data is intact in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The relay could not be reached.
    #[error("cannot reach the relay at {relay}: {reason}")]
    Unreachable {
        /// The relay's URL.
        relay: String,
        /// What failed.
        reason: String,
    },
    /// The relay refused a request.
    #[error("the relay refused: {message}")]
    Refused {
        /// Its reject code.
        code: RejectCode,
        /// Its message.
        message: String,
    },
    /// The relay answered something the protocol does not allow.
    #[error("the relay broke the protocol: {0}")]
    Protocol(String),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
    /// This profile is not on a relay.
    #[error("this profile does not sync with a relay")]
    NotPaired,
    /// The relay does not let this device into the space. A relay answers a removed device
    /// and a stranger alike, so this says both.
    #[error(
        "the relay does not let this device into the space: another of the space's devices \
         may have removed it, or the space lives on another relay. Everything this device \
         holds stays readable here; to sync again, ask for a new invite and `hearth join` it"
    )]
    NotAdmitted,
    /// A key this device needs to read the space is not on the relay yet.
    #[error(
        "the space's key for epoch {epoch} is not available yet ({reason}); the device that \
         made it shares it when it next syncs. Your changes are kept here; sync again later"
    )]
    KeyUnavailable {
        /// The epoch.
        epoch: u32,
        /// Why it could not be had.
        reason: String,
    },
    /// The space's ACL changed while this sync ran; running it again picks the change up.
    #[error("the space's devices changed while syncing; sync again")]
    AclMoved,
    /// The relay no longer holds what this device received from it (its head is behind,
    /// or another envelope sits where one this device saw was): it was restored from an
    /// older backup or lost its database. This device rewound to the start: it reads the
    /// relay's history again and sends it everything on the next attempt ([`sync_once`]
    /// makes it at once).
    #[error(
        "the relay no longer holds update {cursor} as this device received it (it holds \
         {head}): it was probably restored from a backup; this device will read its history \
         again and send it everything, sync again"
    )]
    RelayBehind {
        /// The relay's head.
        head: u64,
        /// The update this device had received or committed that the relay no longer
        /// holds as it was.
        cursor: u64,
    },
    /// The local profile failed.
    #[error(transparent)]
    Profile(#[from] Error),
}
