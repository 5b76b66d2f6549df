//! What this device knew at a relay seq, for judging another person's snapshot proposal
//! (docs/security.md, "Snapshots need both people"). A proposal covering seq N may make the
//! relay drop every envelope up to N, so before countersigning it this device checks that
//! it holds everything this device had taken from those envelopes.
//!
//! Each time the cursor moves, the heads of what the relay has (`pushed_heads`: changes
//! this device pushed and the relay committed, and changes it took from the relay) are
//! recorded at the new cursor, if [`recordable`]: then every change they name came from a
//! relay seq at or below the cursor, so a snapshot covering the cursor or more must hold
//! them. A proposal is judged against the record at the largest seq at or below its cover;
//! with none, this device does not countersign.

use std::ops::{Deref, DerefMut};

use hearth_doc::ChangeHash;

use super::{Ahead, SyncBook};
use crate::store;
use crate::{Error, Profile};

/// Whether the heads of what the relay has may be recorded as known at the cursor: only
/// with nothing taken past a gap (`ahead`, which may hold changes from seqs above the
/// cursor, this device's own committed envelopes included) and nothing sealed but not
/// committed (`outbox`, whose changes are at no seq yet). Local changes not sealed yet are
/// never in those heads.
pub(crate) fn recordable(ahead: &Ahead, outbox: usize) -> bool {
    ahead.is_empty() && outbox == 0
}

/// Records, in `tx`, what this device knows at `cursor` (just moved), if [`recordable`].
pub(super) fn note_cursor(
    tx: &rusqlite::Transaction<'_>,
    cursor: u64,
    ahead: &Ahead,
) -> Result<(), Error> {
    if cursor == 0 || !recordable(ahead, store::envelopes::outbox_count(tx)?) {
        return Ok(());
    }
    let heads = store::sync_state::pushed_heads(tx)?;
    store::known_heads::record(tx, cursor, &heads)
}

impl<P: Deref<Target = Profile>> SyncBook<P> {
    /// What this device knew at the largest relay seq at or below `seq` that it recorded
    /// (that seq, and the heads), if any.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn known_at(&self, seq: u64) -> Result<Option<(u64, Vec<ChangeHash>)>, Error> {
        store::known_heads::at_or_below(&self.profile.conn, seq)
    }
}

impl<P: DerefMut<Target = Profile>> SyncBook<P> {
    /// Forgets what was recorded: after the relay went back in time its seqs may hold
    /// other envelopes.
    ///
    /// # Errors
    /// A database error.
    #[cfg(test)]
    pub(crate) fn forget_known(&mut self) -> Result<(), Error> {
        store::known_heads::forget_all(&self.profile.conn)
    }
}

#[cfg(test)]
mod tests {
    use hearth_crypto::{EpochKey, Protection};
    use hearth_doc::Millis;
    use hearth_proto::DeviceId;

    use super::*;
    use crate::Landmark;

    fn mark(seq: u64) -> Option<Landmark> {
        Some(Landmark {
            seq,
            author: DeviceId::from_bytes([1; 32]),
            counter: seq,
        })
    }

    #[test]
    fn heads_are_recorded_only_with_nothing_past_a_gap_and_nothing_on_its_way() {
        let mut ahead = Ahead::new();
        assert!(recordable(&ahead, 0));
        assert!(
            !recordable(&ahead, 1),
            "sealed, not committed: at no seq yet"
        );
        ahead.insert(9, mark(9));
        assert!(!recordable(&ahead, 0), "taken past a gap: above the cursor");
    }

    fn profile(dir: &std::path::Path, name: &str) -> Profile {
        Profile::create(&dir.join(name), name, Protection::None, Millis(1)).unwrap()
    }

    #[test]
    fn what_a_device_knew_is_recorded_as_its_cursor_moves_and_forgotten_after_a_rewind() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = profile(dir.path(), "sam");
        let key = EpochKey::generate().unwrap();
        p.sync_book_mut().put_epoch_key(0, &key).unwrap();
        let me = p.person_id().clone();
        p.write(|doc| doc.add_appreciation(&me, "one", Millis::now()))
            .unwrap();
        let counter = p.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        let staged = p.load().unwrap().heads();
        assert_eq!(p.sync_book().known_at(5).unwrap(), None, "nothing yet");
        // Committed at 1: the cursor moves there, and nothing else is on its way.
        p.sync_book_mut().acknowledge(counter, 1).unwrap();
        assert_eq!(
            p.sync_book().known_at(1).unwrap(),
            Some((1, staged.clone()))
        );
        assert_eq!(
            p.sync_book().known_at(7).unwrap(),
            Some((1, staged.clone()))
        );
        assert_eq!(p.sync_book().known_at(0).unwrap(), None);

        // A second change committed past a gap (3, with 2 not taken): not recorded, since
        // it is above the cursor.
        p.write(|doc| doc.add_appreciation(&me, "two", Millis::now()))
            .unwrap();
        let counter = p.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        p.sync_book_mut().acknowledge(counter, 3).unwrap();
        assert_eq!(p.sync_book().cursor().unwrap(), 1);
        assert_eq!(
            p.sync_book().known_at(3).unwrap(),
            Some((1, staged.clone()))
        );
        // The gap fills (an envelope passed at 2): the cursor runs to 3, and everything
        // known there is recorded.
        p.sync_book_mut().pass(&[(2, None)]).unwrap();
        assert_eq!(p.sync_book().cursor().unwrap(), 3);
        let (at, heads) = p.sync_book().known_at(3).unwrap().unwrap();
        assert_eq!(at, 3);
        assert_eq!(heads, p.load().unwrap().heads());
        assert_ne!(heads, staged);

        p.sync_book_mut().relay_rewound().unwrap();
        assert_eq!(p.sync_book().known_at(3).unwrap(), None);
        p.sync_book_mut().forget_known().unwrap();
    }

    #[test]
    fn only_the_newest_few_dozen_seqs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(dir.path(), "sam");
        let heads = [ChangeHash([7; 32])];
        for seq in 1..=100 {
            store::known_heads::record(&p.conn, seq, &heads).unwrap();
        }
        let kept = u64::try_from(store::known_heads::KEPT).unwrap();
        assert_eq!(
            p.sync_book().known_at(100 - kept).unwrap(),
            None,
            "older ones are forgotten"
        );
        assert_eq!(
            p.sync_book().known_at(100 - kept + 1).unwrap(),
            Some((100 - kept + 1, heads.to_vec()))
        );
    }
}
