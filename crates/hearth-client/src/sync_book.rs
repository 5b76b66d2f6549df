//! What a profile keeps to sync, behind one type the sync engine works through: the relay
//! it uses and the limits that relay announced, the space's ACL chain, its epoch keys, the
//! outbox of envelopes the relay has not acknowledged, the relay cursor, the landmarks and
//! the set of envelopes already applied. [`crate::Profile`] is the front door for what a
//! person does (write, read, keep a private journal); [`SyncBook`] is the ledger a sync
//! reads and writes, reached with [`Profile::sync_book`] (to read) and
//! [`Profile::sync_book_mut`] (to change it).
//!
//! Each step that moves data and the bookkeeping that describes it happen in one
//! transaction: sealing a push and advancing the pushed heads and the device counter;
//! applying an incoming envelope, recording it as seen and advancing the cursor. A crash
//! between steps therefore repeats a step (harmless: the relay dedupes pushes by counter,
//! and `seen` dedupes incoming envelopes) but never skips one.

use std::ops::{Deref, DerefMut};

use hearth_crypto::EpochKey;
use hearth_proto::Limits;

use crate::store;
use crate::store::sync_state::{Counter, Mark};
use crate::{Error, Profile, RelayCa, RelayTrust};

mod acl;
mod gaps;
mod incoming;
mod known;
mod landmark;
mod outgoing;

pub use acl::{DeviceInfo, MintedInvite};
pub(crate) use acl::{Unverified, VerifiedChain, people_of};
pub use gaps::Withheld;
pub(crate) use gaps::{Ahead, withheld};
pub use incoming::{Incoming, RefusedChangeReport, Whose};
pub use landmark::Landmark;
use landmark::OWN_LANDMARK_REACH;
pub(crate) use outgoing::SealedSnapshot;

/// A profile's sync bookkeeping. `P` is how it holds the profile: `&Profile` reads,
/// `&mut Profile` also writes, so a shared borrow of a profile cannot change its sync state.
#[derive(Debug)]
pub struct SyncBook<P> {
    profile: P,
}

/// The `meta` key the relay's CA certificates are kept under, as PEM (public data, like
/// the relay's address beside it).
pub(crate) const RELAY_CA_KEY: &str = "relay_ca";

impl Profile {
    /// The TLS settings for this profile's relay connections: the machine's roots and the
    /// profile's [`RelayCa`], built once and shared by every connection.
    ///
    /// # Errors
    /// As [`SyncBook::relay_ca`].
    pub fn relay_trust(&self) -> Result<RelayTrust, Error> {
        if let Some(trust) = self.relay_trust.get() {
            return Ok(trust.clone());
        }
        let trust = RelayTrust::new(self.sync_book().relay_ca()?.as_ref());
        Ok(self.relay_trust.get_or_init(|| trust).clone())
    }

    /// The profile's sync bookkeeping, to read.
    pub fn sync_book(&self) -> SyncBook<&Profile> {
        SyncBook { profile: self }
    }

    /// The profile's sync bookkeeping, to read and change.
    pub fn sync_book_mut(&mut self) -> SyncBook<&mut Profile> {
        SyncBook { profile: self }
    }
}

impl<P: Deref<Target = Profile>> SyncBook<P> {
    /// The relay this profile syncs with, if one is set.
    ///
    /// # Errors
    /// A database error.
    pub fn relay(&self) -> Result<Option<String>, Error> {
        store::meta::get(&self.profile.conn, "relay_url")
    }

    /// The CA certificates this profile trusts for its relay besides the machine's roots
    /// (given with `--ca-file`), if any.
    ///
    /// # Errors
    /// A database error; [`Error::Corrupt`] if what is kept is not certificates.
    pub fn relay_ca(&self) -> Result<Option<RelayCa>, Error> {
        let Some(pem) = store::meta::get(&self.profile.conn, RELAY_CA_KEY)? else {
            return Ok(None);
        };
        RelayCa::from_pem(pem.as_bytes())
            .map(Some)
            .map_err(|reason| Error::Corrupt {
                home: self.profile.paths().home.clone(),
                reason: format!("its relay CA certificate is unreadable: {reason}"),
            })
    }

    /// The relay key this device trusts at `relay` (pinned at first contact, or with
    /// `hearth relay trust`), if it has met a relay there.
    ///
    /// # Errors
    /// A database error.
    pub fn relay_key(&self, relay: &str) -> Result<Option<[u8; 32]>, Error> {
        store::relay_keys::get(&self.profile.conn, relay)
    }

    /// The fingerprint of the key trusted at this profile's relay, if any yet (what
    /// `hearth status` shows).
    ///
    /// # Errors
    /// A database error.
    pub fn relay_fingerprint(&self) -> Result<Option<hearth_proto::Fingerprint>, Error> {
        let Some(relay) = self.relay()? else {
            return Ok(None);
        };
        Ok(self
            .relay_key(&relay)?
            .map(|key| hearth_proto::Fingerprint::of(&key)))
    }

    /// The limits the relay announced at the last login; before the first, the defaults
    /// every relay starts from. Checks made offline (the ACL chain, the envelope budget)
    /// use them, so they agree with what the relay enforces.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn relay_limits(&self) -> Result<Limits, Error> {
        Ok(store::sync_state::relay_limits(&self.profile.conn)?.unwrap_or_default())
    }

    /// The relay sequence number of the last envelope applied (0 before the first).
    ///
    /// # Errors
    /// A database error.
    pub fn cursor(&self) -> Result<u64, Error> {
        store::sync_state::get(&self.profile.conn, Counter::Cursor)
    }

    /// The seqs taken past a gap in the relay's seqs, above the cursor.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn ahead(&self) -> Result<Ahead, Error> {
        store::sync_state::ahead(&self.profile.conn)
    }

    /// Whether `doc` holds changes the relay has not been given.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn has_unpushed(&self, doc: &mut hearth_doc::SpaceDoc) -> Result<bool, Error> {
        let pushed = store::sync_state::pushed_heads(&self.profile.conn)?;
        Ok(!doc.changes_since(&pushed).is_empty())
    }

    /// When each other device was last heard from (a verified envelope of it arrived),
    /// by this device's clock in Unix ms.
    ///
    /// # Errors
    /// A database error.
    pub fn last_heard(&self) -> Result<Vec<(hearth_proto::DeviceId, u64)>, Error> {
        Ok(store::envelopes::last_heard(&self.profile.conn)?
            .into_iter()
            .map(|(d, at)| (hearth_proto::DeviceId::from_bytes(d), at))
            .collect())
    }

    /// The newest epoch a member's validly signed envelope was written under, with its
    /// author, if any was seen (see `sync::witness`).
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn newer_epoch(&self) -> Result<Option<(hearth_proto::DeviceId, u32)>, Error> {
        store::sync_state::newer_epoch(&self.profile.conn)
    }

    /// The counter of the last envelope this device sealed (0 before the first): once its
    /// outbox is empty, the relay has committed every counter from 1 to this.
    ///
    /// # Errors
    /// A database error.
    pub fn last_counter(&self) -> Result<u64, Error> {
        Ok(store::sync_state::get(&self.profile.conn, Counter::Next)?.saturating_sub(1))
    }

    /// The envelopes this device can name by their place on the relay, in order: the one at
    /// its cursor (the last it applied) and the last of its own the relay committed (if it
    /// is at most 32 behind the cursor). An
    /// honest relay still holds them there; [`crate::sync`] checks that on every sync, to
    /// notice a relay restored from a backup even after it took new writes. The own one
    /// matters most: only this device can ever push its envelopes, and once committed it
    /// never pushes one again, so nothing but the original can sit in its place; a partner
    /// re-pushing an envelope whose `Committed` the restore lost could land it at the very
    /// seq this device had it at.
    ///
    /// # Errors
    /// A database error.
    pub fn landmarks(&self) -> Result<Vec<Landmark>, Error> {
        let cursor = self.cursor()?;
        // Only while it still names the cursor's place.
        let received = store::sync_state::landmark(&self.profile.conn, Mark::Cursor)?
            .filter(|m| m.seq == cursor);
        let own = store::sync_state::landmark(&self.profile.conn, Mark::Own)?
            .filter(|m| m.seq + OWN_LANDMARK_REACH >= cursor);
        let mut marks: Vec<Landmark> = received.into_iter().chain(own).collect();
        marks.sort_by_key(|m| m.seq);
        marks.dedup_by_key(|m| m.seq);
        Ok(marks)
    }

    /// Bytes of envelopes sent or received since this device last pushed a snapshot.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn unsnapshotted(&self) -> Result<u64, Error> {
        store::sync_state::get(&self.profile.conn, Counter::Unsnapshotted)
    }

    /// When the last sync completed (UTC milliseconds).
    ///
    /// # Errors
    /// A database error.
    pub fn last_sync(&self) -> Result<Option<u64>, Error> {
        store::sync_state::last_sync_at(&self.profile.conn)
    }

    /// The newest epoch whose key this device made and has wrapped for the other members
    /// (0 before any).
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn shared_epoch(&self) -> Result<u32, Error> {
        let epoch = store::sync_state::get(&self.profile.conn, Counter::SharedEpoch)?;
        u32::try_from(epoch).map_err(|_| {
            self.profile
                .corrupt(format!("its shared epoch {epoch} is out of range"))
        })
    }

    fn epoch_domain(&self, epoch: u32) -> Vec<u8> {
        format!("epoch/{}/{epoch}", self.profile.space_id()).into_bytes()
    }

    /// The content key of `epoch`, if this device holds it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored key fails its integrity check.
    pub fn epoch_key(&self, epoch: u32) -> Result<Option<EpochKey>, Error> {
        store::acl::epoch_key(&self.profile.conn, epoch)?
            .map(|s| {
                self.profile
                    .secrets
                    .storage
                    .open_epoch_key(&self.epoch_domain(epoch), &s)
                    .map_err(|e| {
                        self.profile
                            .corrupt(format!("the key of epoch {epoch} is unreadable: {e}"))
                    })
            })
            .transpose()
    }
}

impl<P: DerefMut<Target = Profile>> SyncBook<P> {
    /// Records that `by`'s validly signed envelope was written under `epoch`.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn saw_newer_epoch(
        &mut self,
        by: &hearth_proto::DeviceId,
        epoch: u32,
    ) -> Result<(), Error> {
        store::sync_state::saw_newer_epoch(&self.profile.conn, by, epoch)
    }

    /// Sets the relay this profile syncs with.
    ///
    /// # Errors
    /// A database error.
    pub fn set_relay(&mut self, url: &str) -> Result<(), Error> {
        store::meta::set(&self.profile.conn, "relay_url", url)
    }

    /// Ties this profile to the relay at `url`, which holds the space's chain now
    /// (docs/protocol.md, "Moving a space to another relay"), and forgets, in the same
    /// transaction, where it stood on the old one: the cursor goes back to 0, the seqs taken
    /// past a gap, the landmarks and the heads known at each seq are dropped (they name the
    /// old relay's seqs: kept, the gap, rewind and consent checks would judge the new relay
    /// by them), and so is the snapshot bookkeeping. What holds across relays stays: the
    /// envelopes applied (`seen`), the refused changes, the newest epoch a member's envelope
    /// named. Envelopes applied so far may be delivered again (the outbox goes out again),
    /// so they are not taken for replays; and the next push seals every change of this
    /// device's person's it holds ([`stage_outgoing`](Self::stage_outgoing)).
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub(crate) fn moved_to(&mut self, url: &str) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        store::sync_state::set(&tx, Counter::Cursor, 0)?;
        store::sync_state::set_ahead(&tx, &Ahead::new())?;
        store::sync_state::forget_landmark(&tx, Mark::Cursor)?;
        store::sync_state::forget_landmark(&tx, Mark::Own)?;
        store::known_heads::forget_all(&tx)?;
        store::sync_state::forget_snapshot(&tx)?;
        store::sync_state::set(&tx, Counter::Resend, 0)?;
        store::sync_state::remember_applied_before_rewind(&tx)?;
        store::sync_state::set(&tx, Counter::Reupload, 1)?;
        store::meta::set(&tx, "relay_url", url)?;
        tx.commit()?;
        Ok(())
    }

    /// Trusts `ca` for the relay's certificate from now on, besides the machine's roots,
    /// in place of any CA kept before.
    ///
    /// # Errors
    /// A database error.
    pub fn set_relay_ca(&mut self, ca: &RelayCa) -> Result<(), Error> {
        store::meta::set(&self.profile.conn, RELAY_CA_KEY, &ca.to_pem())?;
        self.profile.relay_trust = std::cell::OnceCell::new();
        Ok(())
    }

    /// Trusts `key` at `relay` from `at_ms` on, replacing the key trusted there before.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn pin_relay_key(
        &mut self,
        relay: &str,
        key: &[u8; 32],
        at_ms: u64,
    ) -> Result<(), Error> {
        store::relay_keys::pin(&self.profile.conn, relay, key, at_ms)
    }

    /// Keeps the limits the relay announced at login, for the checks made offline.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn set_relay_limits(&mut self, limits: &Limits) -> Result<(), Error> {
        store::sync_state::set_relay_limits(&self.profile.conn, limits)
    }

    /// Adds `bytes` to [`unsnapshotted`](Self::unsnapshotted).
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn add_unsnapshotted(&mut self, bytes: u64) -> Result<(), Error> {
        let total = self.unsnapshotted()?.saturating_add(bytes);
        store::sync_state::set(&self.profile.conn, Counter::Unsnapshotted, total)
    }

    /// Records that the relay holds a snapshot of everything up to `covers_seq`.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn snapshot_pushed(&mut self, covers_seq: u64) -> Result<(), Error> {
        store::sync_state::set_snapshot(&self.profile.conn, covers_seq)
    }

    /// Records a completed sync.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn mark_synced(&mut self, at_ms: u64) -> Result<(), Error> {
        store::sync_state::set_last_sync_at(&self.profile.conn, at_ms)
    }

    /// Records that the key of `epoch` is wrapped for every other member.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn set_shared_epoch(&mut self, epoch: u32) -> Result<(), Error> {
        store::sync_state::set(&self.profile.conn, Counter::SharedEpoch, u64::from(epoch))
    }

    /// Keeps the content key of `epoch`, sealed.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn put_epoch_key(&mut self, epoch: u32, key: &EpochKey) -> Result<(), Error> {
        let sealed = self
            .profile
            .secrets
            .storage
            .seal_epoch_key(&self.epoch_domain(epoch), key)?;
        store::acl::put_epoch_key(&self.profile.conn, epoch, &sealed)
    }
}
