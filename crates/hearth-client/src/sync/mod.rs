//! The sync engine: how a device exchanges the space with the relay (see docs/protocol.md).
//!
//! `sync_once` logs in, creates the space on the relay if it is not there yet (or any more:
//! a relay removes a space nobody joined, and its only device puts it back), and adopts
//! the relay's ACL chain only if it extends the one this device verified before. It then
//! settles the keys: if a device was removed since the last rotation it moves the space to
//! a new epoch whose key it wraps for the remaining devices only; it shares a key it made
//! but has not shared yet (after a crash); and it fetches, from its lockboxes, every epoch's
//! key it lacks, trusting each only if it matches the check the signed chain holds. Then it
//! pulls everything after its cursor, checks the chain against what other devices say they
//! have seen (`witness`), and only then seals whatever this device wrote since its last
//! push under the current epoch and pushes the outbox (each envelope removed only after its
//! `Committed`). Every incoming envelope is verified (space, author in the ACL, signature,
//! then epoch), decrypted and applied atomically with its cursor; one that fails is
//! reported with the device it names and skipped, and syncing goes on. One validly signed
//! by a member under an epoch newer than the adopted chain stops the sync before its
//! cursor (the ACL moved meanwhile) and the sync runs again. Until a sync gets that far,
//! local changes wait in the document.
//! A snapshot replaces envelopes only with the other person's countersignature: a device
//! judges and countersigns the other person's proposals, and takes a snapshot in place of
//! envelopes only if it carries one (`consent`).
//!
//! Before logging in, every connection has the relay prove its key, and the key must be
//! the one this device pinned for the relay's address at first contact (`trust`).
//!
//! One module per concern: `link` talks to the socket, `trust` keeps the relay's key,
//! `chain` adopts the relay's ACL, `keys` settles the epoch keys, `exchange` is one sync's push and pull, `consent`
//! judges snapshots and countersigns them, `screen` judges incoming envelopes, `live` keeps a connection open, `membership` joins,
//! invites and removes devices, and `relocate` moves the space to another relay.

use std::time::Duration;

use hearth_proto::DeviceId;

mod chain;
mod consent;
mod error;
mod exchange;
#[cfg(test)]
mod fixtures;
mod keys;
mod link;
mod live;
mod membership;
mod relocate;
mod screen;
mod token;
mod trust;
mod witness;

pub use crate::tls::TlsFault;
pub use chain::{check_space, refresh_acl};
pub use consent::{NotCountersigned, ProposalFault, RefusedSnapshot, SnapshotFault};
pub use error::{ClockSkew, InviteFault, SpaceDeletion, SyncError, TokenProblem};
pub use exchange::{SNAPSHOT_AFTER_BYTES, sync_once};
pub(crate) use link::now_ms;
pub use link::{check_relay, relay_reachable, websocket_config};
pub use live::{Live, LiveEvent, watch};
pub use membership::{JoinError, Joined, invite, join, join_trusting, remove_device};
pub use relocate::{MovePending, MoveReport, Moved, NewerRelay, move_space, newer_relay};
pub use token::{NotARelayToken, RelayToken};
pub use trust::{Trusted, trust_relay};
pub use witness::Doubt;

/// How long the engine waits for the relay before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// An envelope that was refused and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEnvelope {
    /// Its sequence number on the relay.
    pub seq: u64,
    /// The device that claims to have written it (unverified if the signature failed).
    pub device: Option<DeviceId>,
    /// Why it was refused.
    pub reason: String,
}

/// What one sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Envelopes pushed and committed.
    pub pushed: usize,
    /// Envelopes received and applied.
    pub received: usize,
    /// Envelopes refused (warn the user: they name the device).
    pub rejected: Vec<RejectedEnvelope>,
    /// Changes inside envelopes that the authorship rule refused, each the first time it
    /// was refused (warn the user: they name the device that brought it). The envelopes
    /// carrying them were applied for their other changes.
    pub refused_changes: Vec<crate::RefusedChangeReport>,
    /// The relay cursor afterwards.
    pub cursor: u64,
    /// Envelopes received that still wait for earlier changes which have not arrived (the
    /// relay withheld or reordered them, or one was refused); they apply once those do.
    pub waiting: usize,
    /// The relay had gone back in time (restored from a backup?): `(its head, the place of
    /// the landmark it no longer held)` when that was found. This sync read its history
    /// again and sent it everything.
    pub relay_behind: Option<(u64, u64)>,
    /// Envelopes the relay holds but did not hand over, even when asked twice (see
    /// docs/security.md, "No silent gaps"): they are asked for again on every sync.
    pub withheld: Option<crate::Withheld>,
    /// The other person's snapshot proposal this device refused to countersign, and why
    /// (warn the user: the relay keeps the history as it is, and a proposal that leaves
    /// out what this device has is what a buggy or hostile client would send).
    pub not_countersigned: Option<Box<NotCountersigned>>,
    /// The cover of the other person's snapshot proposal this device countersigned: the
    /// relay dropped the envelopes it covers.
    pub countersigned: Option<u64>,
    /// A snapshot the relay handed this device in place of the envelopes it covers that
    /// this device refused (no countersignature by the other person, or it does not open
    /// as a document); with, if the relay no longer has them, the history this device
    /// lacks. Warn the user.
    pub refused_snapshot: Option<Box<RefusedSnapshot>>,
    /// The relay had removed the space because no second device joined it, and this sync
    /// created it there again and sent it everything (tell the user: invites made before
    /// no longer work).
    pub recreated_after_expiry: bool,
    /// The relay this device moved to in this sync, following the newest relay address a
    /// member wrote in the document (docs/document.md, "Where the space syncs"): say so,
    /// once. The rest of the report covers both relays.
    pub moved: Option<Box<Moved>>,
    /// A newer relay address in the document this device could not move to yet (it does
    /// not answer, or not as a hearth relay): it keeps syncing through the relay it is on
    /// and tries again on every sync. Say so.
    pub move_pending: Option<Box<MovePending>>,
}
