//! Envelopes going out: sealing this device's new changes (and whole-document snapshots)
//! into the outbox under the space's current key, and clearing them once the relay commits.

use std::ops::{Deref, DerefMut};

use hearth_crypto::envelope;
use hearth_proto::{EnvelopeHeader, EnvelopeKind};

use super::{Landmark, SyncBook};
use crate::store;
use crate::store::sync_state::{Counter, Mark};
use crate::{Error, Profile};

/// A snapshot envelope sealed and counted, not pushed yet.
#[derive(Debug)]
pub(crate) struct SealedSnapshot {
    /// Its device counter.
    pub(crate) counter: u64,
    /// The sealed envelope.
    pub(crate) envelope: Vec<u8>,
}

impl<P: Deref<Target = Profile>> SyncBook<P> {
    /// How many local changes the relay does not have yet: sealed envelopes waiting in the
    /// outbox, plus one if `doc` holds changes not sealed yet.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored heads are invalid.
    pub fn pending(&self, doc: &mut hearth_doc::SpaceDoc) -> Result<usize, Error> {
        let pushed = store::sync_state::pushed_heads(&self.profile.conn)?;
        let unsealed = usize::from(!doc.changes_since(&pushed).is_empty());
        Ok(store::envelopes::outbox_count(&self.profile.conn)? + unsealed)
    }

    /// The envelopes waiting for the relay's `Committed`, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        store::envelopes::outbox(&self.profile.conn)
    }

    /// Whether this device owes the relay the whole document (it went back in time:
    /// [`relay_rewound`](Self::relay_rewound)).
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn resend_pending(&self) -> Result<bool, Error> {
        Ok(store::sync_state::get(&self.profile.conn, Counter::Resend)? != 0)
    }

    /// The key this device seals under at `epoch`: sync settles every epoch's key before
    /// anything is sealed, so a missing one means the profile lost it.
    fn own_epoch_key(&self, epoch: u32) -> Result<hearth_crypto::EpochKey, Error> {
        self.epoch_key(epoch)?.ok_or_else(|| {
            self.profile
                .corrupt(format!("it has no key for epoch {epoch}"))
        })
    }
}

impl<P: DerefMut<Target = Profile>> SyncBook<P> {
    /// Seals every change the relay has not been given yet into envelopes of `epoch` (as
    /// few as fit the envelope limit), adds them to the outbox and returns the first one's
    /// counter; `None` if there is nothing new. Right after a move to another relay
    /// (`moved_to`), that is every change of this device's person's it
    /// holds: on the new relay only this person's devices can vouch for them.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the key of `epoch` is missing or the stored heads are invalid.
    pub fn stage_outgoing(&mut self, epoch: u32) -> Result<Option<u64>, Error> {
        let key = self.own_epoch_key(epoch)?;
        let space = self.profile.space()?;
        let tx = self.profile.begin_write()?;
        let (mut doc, _) = self.profile.load_from(&tx)?;
        let budget = changes_budget(self.relay_limits()?.envelope_bytes());
        let reupload = store::sync_state::get(&tx, Counter::Reupload)? != 0;
        let batches = if reupload {
            let people = self.profile.people(&tx)?;
            let me = people.person(self.profile.device_id().as_bytes());
            store::sync_state::set(&tx, Counter::Reupload, 0)?;
            doc.changes_under_batched(|actor| me.is_some() && people.person(actor) == me, budget)?
        } else {
            let pushed = store::sync_state::pushed_heads(&tx)?;
            doc.changes_since_batched(&pushed, budget)?
        };
        if batches.is_empty() {
            tx.commit()?;
            return Ok(None);
        }
        let first = store::sync_state::get(&tx, Counter::Next)?;
        let mut counter = first;
        for changes in &batches {
            let header = EnvelopeHeader {
                kind: EnvelopeKind::Changes,
                space,
                epoch,
                author: self.profile.device_id(),
                counter,
            };
            let sealed = envelope::seal(&self.profile.secrets.device, &key, header, changes)?;
            store::envelopes::put_outbox(&tx, counter, &sealed.encode())?;
            counter += 1;
        }
        store::sync_state::set_pushed_heads(&tx, &doc.heads())?;
        store::sync_state::set(&tx, Counter::Next, counter)?;
        tx.commit()?;
        Ok(Some(first))
    }

    /// Seals the whole document as a snapshot envelope of `epoch` standing in for every
    /// envelope up to relay seq `covers_seq`, using up one device counter; `None` if it
    /// would be larger than `max_bytes`, padding included.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the key of `epoch` is missing.
    pub(crate) fn seal_snapshot(
        &mut self,
        epoch: u32,
        covers_seq: u64,
        max_bytes: usize,
    ) -> Result<Option<SealedSnapshot>, Error> {
        let key = self.own_epoch_key(epoch)?;
        let space = self.profile.space()?;
        let tx = self.profile.begin_write()?;
        let (mut doc, _) = self.profile.load_from(&tx)?;
        let whole = doc.save_snapshot();
        let kind = EnvelopeKind::Snapshot { covers_seq };
        if !fits(whole.len(), max_bytes, kind) {
            return Ok(None);
        }
        let counter = store::sync_state::get(&tx, Counter::Next)?;
        let header = EnvelopeHeader {
            kind,
            space,
            epoch,
            author: self.profile.device_id(),
            counter,
        };
        let sealed = envelope::seal(&self.profile.secrets.device, &key, header, &whole)?;
        store::sync_state::set(&tx, Counter::Next, counter + 1)?;
        // Its own snapshot counts as seen, like its own changes coming back.
        store::envelopes::mark_seen(
            &tx,
            &self.profile.device_id().as_bytes()[..],
            counter as i64,
        )?;
        tx.commit()?;
        Ok(Some(SealedSnapshot {
            counter,
            envelope: sealed.encode(),
        }))
    }

    /// The whole document went back to the relay after it went back in time, as change
    /// envelopes and, if it could be sent, a snapshot.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn resent(&mut self) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        store::sync_state::set(&tx, Counter::Resend, 0)?;
        tx.commit()?;
        Ok(())
    }

    /// The relay committed the envelope with `counter` as `seq`.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn acknowledge(&mut self, counter: u64, seq: u64) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        store::envelopes::remove_outbox(&tx, counter)?;
        if store::sync_state::landmark(&tx, Mark::Own)?.is_none_or(|own| seq > own.seq) {
            let own = Landmark {
                seq,
                author: self.profile.device_id(),
                counter,
            };
            store::sync_state::set_landmark(&tx, Mark::Own, &own)?;
        }
        // The relay holds it at `seq`: that place is taken, as if it had come back.
        let own = Landmark {
            seq,
            author: self.profile.device_id(),
            counter,
        };
        super::incoming::take_seqs(
            &tx,
            [super::gaps::Take {
                seq,
                mark: Some(own),
                covers: 0,
            }],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// How many bytes of changes one envelope may carry on a relay whose envelope limit is
/// `limit`: the largest plaintext whose padded, sealed envelope is within it (0 if the
/// relay takes nothing: every change is then too large, and staging says so).
fn changes_budget(limit: usize) -> usize {
    envelope::max_plaintext_for(limit, EnvelopeKind::Changes).unwrap_or(0)
}

/// Whether a plaintext of `len` bytes, sealed as `kind`, is within a relay envelope limit
/// of `limit` bytes once padded.
fn fits(len: usize, limit: usize, kind: EnvelopeKind) -> bool {
    envelope::max_plaintext_for(limit, kind).is_some_and(|max| len <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_move_the_next_push_seals_all_of_this_persons_writing_once_and_the_old_relays_places_are_forgotten()
     {
        use hearth_crypto::Protection;
        use hearth_doc::Millis;

        let dir = tempfile::tempdir().unwrap();
        let mut p = Profile::create(dir.path(), "Sam", Protection::None, Millis(1)).unwrap();
        p.sync_book_mut()
            .start_space("ws://old.invalid/v1/sync")
            .unwrap();
        let me = p.person_id().clone();
        p.write(|doc| doc.add_appreciation(&me, "for the walk", Millis::now()))
            .unwrap();
        let first = p.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        p.sync_book_mut().acknowledge(first, 7).unwrap();
        assert!(p.sync_book().outbox().unwrap().is_empty());
        assert_eq!(p.sync_book_mut().stage_outgoing(0).unwrap(), None);
        assert!(!p.sync_book().landmarks().unwrap().is_empty());

        p.sync_book_mut()
            .moved_to("ws://new.invalid/v1/sync")
            .unwrap();
        assert_eq!(
            p.sync_book().relay().unwrap().as_deref(),
            Some("ws://new.invalid/v1/sync")
        );
        assert_eq!(p.sync_book().cursor().unwrap(), 0);
        assert!(p.sync_book().landmarks().unwrap().is_empty());
        assert!(p.sync_book().ahead().unwrap().is_empty());
        // Everything this person wrote, already pushed to the old relay, goes again, under
        // new counters; then only what is new.
        let again = p.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        assert!(again > first, "counters keep rising across relays");
        let outbox = p.sync_book().outbox().unwrap();
        assert_eq!(outbox.len(), 1);
        let changes = hearth_proto::Envelope::decode(&outbox[0].1).unwrap();
        assert_eq!(changes.header().author, p.device_id());
        assert_eq!(p.sync_book_mut().stage_outgoing(0).unwrap(), None);
    }

    #[test]
    fn what_is_staged_or_snapshotted_is_never_too_large_for_the_relay_once_sealed() {
        let snapshot = EnvelopeKind::Snapshot { covers_seq: 9 };
        for limit in [0, 1200, 1424, 5000, 64 * 1024, 2 * 1024 * 1024] {
            let budget = changes_budget(limit);
            if budget > 0 {
                let sealed = envelope::sealed_len(EnvelopeKind::Changes, budget).unwrap();
                assert!(sealed <= limit, "limit {limit}: {sealed}");
                let over = envelope::sealed_len(EnvelopeKind::Changes, budget + 1).unwrap();
                assert!(
                    over > limit,
                    "limit {limit}: the budget is the largest that fits"
                );
            }
            for len in [0, 1000, 4000, 60_000, 2_000_000, 2_100_000] {
                let sealed = envelope::sealed_len(snapshot, len).unwrap();
                assert_eq!(
                    fits(len, limit, snapshot),
                    sealed <= limit,
                    "{len} in {limit}"
                );
            }
        }
        assert_eq!(
            changes_budget(1000),
            0,
            "below the padding floor nothing fits"
        );
    }
}
