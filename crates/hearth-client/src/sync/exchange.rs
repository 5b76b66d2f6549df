//! The exchange with the relay in one sync: log in, create the space if the relay does
//! not hold it yet, settle the keys, push this device's outbox (each envelope removed only
//! after its `Committed`), pull everything after the cursor, compare the landmarks that
//! tell whether the relay went back in time, push what the pull made it write (check-in
//! keys it released), and push a snapshot when one is due. While the device waits to
//! release a key, its own writing is sealed after the pull instead, so that the release
//! rides in the same envelope.

use std::time::Duration;

use hearth_proto::{AclState, ClientFrame, RelayFrame, SpaceId};

use super::chain::login;
use super::keys::settle;
use super::link::{Link, now_ms, unexpected};
use super::screen::{receive, take_in};
use super::{SyncError, SyncReport};
use crate::Landmark;
use crate::Profile;

/// Pushes this device's changes and pulls everyone else's, once.
///
/// # Errors
/// A [`SyncError`]; whatever was committed or applied before it stays, the rest is kept
/// locally for the next sync.
pub async fn sync_once(profile: &mut Profile, timeout: Duration) -> Result<SyncReport, SyncError> {
    // A device that joins or rotates while this one syncs moves the ACL on; a second run
    // picks that up. Beyond that, say so rather than loop.
    let mut attempts = 0;
    let mut behind = None;
    loop {
        attempts += 1;
        let result = sync_attempt(profile, timeout).await;
        match after_attempt(attempts, &result) {
            Attempt::Again => {}
            Attempt::AgainAfterRewind { head, cursor } => {
                tracing::warn!(
                    head,
                    cursor,
                    "the relay went back in time; sending it everything again"
                );
                behind = Some((head, cursor));
            }
            Attempt::Done => {
                return result.map(|mut report| {
                    report.relay_behind = behind;
                    report
                });
            }
        }
    }
}

/// How many times [`sync_once`] runs a sync that the relay moved under it.
const ATTEMPTS: u32 = 3;

/// What [`sync_once`] does after an attempt.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// The ACL moved while syncing: run again, which adopts it.
    Again,
    /// The relay went back in time and this device rewound: run again, which resends.
    AgainAfterRewind {
        /// The relay's head.
        head: u64,
        /// The landmark it no longer held.
        cursor: u64,
    },
    /// Return this result.
    Done,
}

/// Whether attempt number `attempts` (from 1), which gave `result`, is worth another.
fn after_attempt(attempts: u32, result: &Result<SyncReport, SyncError>) -> Attempt {
    match result {
        _ if attempts >= ATTEMPTS => Attempt::Done,
        Err(SyncError::AclMoved) => Attempt::Again,
        Err(SyncError::RelayBehind { head, cursor }) => Attempt::AgainAfterRewind {
            head: *head,
            cursor: *cursor,
        },
        _ => Attempt::Done,
    }
}

pub(super) async fn sync_attempt(
    profile: &mut Profile,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
    let (mut link, space, mut chain) = login(profile, timeout).await?;
    if chain.is_empty() {
        let genesis = profile
            .sync_book()
            .acl_records()?
            .into_iter()
            .next()
            .ok_or(SyncError::NotPaired)?;
        link.send(&ClientFrame::CreateSpace {
            genesis,
            token: None,
        })
        .await?;
        chain = match link.recv().await? {
            RelayFrame::AclChanged { records } => records,
            other => return Err(unexpected("AclChanged", &other)),
        };
    }
    let report = match settle(profile, &mut link, &space, &chain).await {
        Ok(state) => match exchange(profile, &mut link, &space, &state).await {
            Ok(report) => snapshot_if_due(profile, &mut link, &state, &report)
                .await
                .map(|()| report),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    link.close().await;
    if report.is_ok() {
        profile.sync_book_mut().mark_synced(now_ms())?;
    }
    report
}

pub(super) async fn exchange(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    state: &AclState,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    // Taken before pushing: the relay must still hold what this device last saw there.
    let mut marks = profile.sync_book().landmarks()?;
    let mut resend = profile
        .sync_book()
        .resend_pending()?
        .then(|| OwnPrefix::new(profile))
        .transpose()?;
    // What this device wrote goes out before the pull, so that the pull reads it back and
    // the cursor moves past it (and the whole document owed to a relay that went back in
    // time goes before the snapshot that covers it). But while this device waits to release
    // a check-in key, its writing waits for the pull: a release the pull brings about then
    // goes out in the same envelope as that writing instead of alone after it.
    let hold_back = resend.is_none() && profile.sync_book().may_release_keys()?;
    let mut moved = if hold_back {
        push_outbox(profile, link, &mut report).await?
    } else {
        push_staged(profile, link, state, &mut report).await?
    };
    let cursor = profile.sync_book().cursor()?;
    let since_seq = since_seq(&marks, cursor);
    link.send(&ClientFrame::Subscribe {
        space: *space,
        since_seq,
    })
    .await?;
    let behind = |profile: &mut Profile, head: u64, mark: Landmark| {
        // Restored from an older backup: what it lost is resent from here.
        profile.sync_book_mut().relay_rewound()?;
        Err(SyncError::RelayBehind {
            head,
            cursor: mark.seq,
        })
    };
    loop {
        match link.recv().await? {
            RelayFrame::Batch { items, head } => {
                let batch = match read_batch(&mut marks, cursor, head, items) {
                    Ok(batch) => batch,
                    Err(mark) => return behind(profile, head, mark),
                };
                moved += batch.bytes;
                if let Some(prefix) = &mut resend {
                    prefix.read(
                        batch
                            .kept
                            .iter()
                            .map(|(seq, bytes)| (*seq, bytes.as_slice())),
                    );
                }
                take_in(
                    profile,
                    space,
                    state,
                    batch
                        .kept
                        .iter()
                        .map(|(seq, bytes)| (*seq, bytes.as_slice())),
                    &mut report,
                )?;
                match batch.then {
                    AfterBatch::More => {}
                    AfterBatch::Done => break,
                    AfterBatch::Behind(mark) => return behind(profile, head, mark),
                }
            }
            RelayFrame::Event { seq, envelope } => {
                if let Some(prefix) = &mut resend {
                    prefix.read([(seq, envelope.as_slice())]);
                }
                receive(profile, space, state, seq, &envelope, &mut report)?;
            }
            // A record added while we sync: the next sync adopts it with the whole chain.
            RelayFrame::AclChanged { .. } => {}
            other => return Err(unexpected("Batch", &other)),
        }
    }
    if let Some(prefix) = resend {
        moved += resend_whole(profile, link, state, prefix.covers).await?;
    }
    // This device's writing, and the keys released on seeing the partner's sealed answers,
    // go out in this same sync, in as few envelopes as fit.
    moved += push_staged(profile, link, state, &mut report).await?;
    report.cursor = profile.sync_book().cursor()?;
    report.waiting = profile.sync_book().waiting()?;
    profile.sync_book_mut().add_unsnapshotted(moved)?;
    Ok(report)
}

/// Stages this device's unsent changes and pushes the outbox, one `Committed` at a time.
/// Returns the bytes pushed.
pub(super) async fn push_staged(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
    report: &mut SyncReport,
) -> Result<u64, SyncError> {
    profile.sync_book_mut().stage_outgoing(state.epoch())?;
    push_outbox(profile, link, report).await
}

/// Pushes the envelopes already in the outbox, one `Committed` at a time. Returns the bytes
/// pushed.
async fn push_outbox(
    profile: &mut Profile,
    link: &mut Link,
    report: &mut SyncReport,
) -> Result<u64, SyncError> {
    let mut moved = 0;
    let outbox = profile.sync_book().outbox()?;
    for (counter, envelope) in outbox {
        moved += envelope.len() as u64;
        link.send(&ClientFrame::Push { envelope }).await?;
        let seq = committed(link.recv().await?, counter)?;
        profile.sync_book_mut().acknowledge(counter, seq)?;
        report.pushed += 1;
    }
    Ok(moved)
}

/// How far a snapshot sent after a rewind may reach: the longest run of the relay's
/// envelopes from the start that this device's own person wrote.
///
/// A snapshot stands in for the envelopes it covers (the relay drops them), and a device
/// that already holds part of the space takes from another person's snapshot none of its
/// own person's changes (`hearth_doc::authorship`: it cannot tell them from forgeries). So
/// a snapshot of this device covering the partner's envelopes could keep the partner's
/// other devices from ever getting what was in them.
struct OwnPrefix {
    /// This device's person's devices.
    mine: std::collections::HashSet<hearth_proto::DeviceId>,
    /// The highest seq of the run so far (0: none).
    covers: u64,
    /// Whether the run still goes on.
    open: bool,
}

impl OwnPrefix {
    fn new(profile: &Profile) -> Result<OwnPrefix, SyncError> {
        let mine = profile
            .sync_book()
            .devices()?
            .into_iter()
            .filter(|d| d.mine)
            .map(|d| d.id)
            .collect();
        Ok(OwnPrefix {
            mine,
            covers: 0,
            open: true,
        })
    }

    /// Follows the relay's envelopes, in its order, from the start.
    fn read<'a>(&mut self, items: impl IntoIterator<Item = (u64, &'a [u8])>) {
        for (seq, bytes) in items {
            if !self.open {
                return;
            }
            let own = hearth_proto::Envelope::decode(bytes)
                .is_ok_and(|e| self.mine.contains(&e.header().author));
            if own {
                self.covers = seq;
            } else {
                self.open = false;
            }
        }
    }
}

/// After the whole document went back to a relay that went back in time as change
/// envelopes (see `SyncBook::relay_rewound`), sends it as one snapshot too, covering
/// `covers` (see [`OwnPrefix`]). The snapshot reaches every device that reads from before
/// it (a new one, or one that also rewound), and a new device judges each change in it by
/// the device it was written under, so the partner's changes reach a new device even when
/// only this one still has them: in change envelopes signed by this device they are
/// refused as unvouched. Skipped (the change envelopes stand alone) if it would cover
/// nothing, if envelopes wait for missing changes, if the document is over the envelope
/// limit, or if the relay refuses it (it holds a newer one). Returns the bytes pushed.
async fn resend_whole(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
    covers: u64,
) -> Result<u64, SyncError> {
    let cursor = covers;
    let sealed = if profile.sync_book().waiting()? == 0 && cursor > 0 {
        profile.sync_book_mut().seal_snapshot(
            state.epoch(),
            cursor,
            link.limits.envelope_bytes(),
        )?
    } else {
        None
    };
    let Some(snapshot) = sealed else {
        profile.sync_book_mut().resent()?;
        return Ok(0);
    };
    let bytes = snapshot.envelope.len() as u64;
    link.send(&ClientFrame::PushSnapshot {
        envelope: snapshot.envelope,
    })
    .await?;
    match link.recv().await {
        Ok(RelayFrame::Committed { counter, .. }) if counter == snapshot.counter => {
            profile.sync_book_mut().resent()?;
            profile.sync_book_mut().snapshot_pushed(cursor)?;
            Ok(bytes)
        }
        Ok(other) => Err(unexpected("Committed", &other)),
        Err(SyncError::Refused { code, message }) => {
            tracing::info!(?code, %message, "snapshot not taken after a rewind");
            profile.sync_book_mut().resent()?;
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// After this many bytes of envelopes since the last snapshot, a device pushes a new one.
pub const SNAPSHOT_AFTER_BYTES: u64 = 256 * 1024;

/// Pushes a snapshot of the whole document (one envelope standing in for every envelope up
/// to the cursor) once enough has changed since the last one: a new device then loads one
/// compressed document instead of replaying every change, and the relay drops what the
/// snapshot covers. Skipped while envelopes wait for missing changes (the snapshot would
/// leave them out) or if the document is over the relay's envelope limit.
pub(super) async fn snapshot_if_due(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
    report: &SyncReport,
) -> Result<(), SyncError> {
    if !snapshot_due(report, profile.sync_book().unsnapshotted()?) {
        return Ok(());
    }
    let max = link.limits.envelope_bytes();
    let Some(crate::sync_book::SealedSnapshot {
        counter, envelope, ..
    }) = profile
        .sync_book_mut()
        .seal_snapshot(state.epoch(), report.cursor, max)?
    else {
        tracing::info!("the document is over the relay's envelope limit; no snapshot");
        return Ok(());
    };
    link.send(&ClientFrame::PushSnapshot { envelope }).await?;
    match link.recv().await {
        Ok(RelayFrame::Committed { counter: c, .. }) if c == counter => {
            profile.sync_book_mut().snapshot_pushed(report.cursor)?;
        }
        Ok(other) => return Err(unexpected("Committed", &other)),
        // The relay already holds a snapshot at least this new (the partner's): fine.
        Err(SyncError::Refused { code, message }) => {
            tracing::info!(?code, %message, "snapshot not taken");
            profile.sync_book_mut().snapshot_pushed(report.cursor)?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The first relay seq a sync asks for: just after the cursor, or earlier to read again
/// the landmarks at or before it, only to compare them.
fn since_seq(marks: &[Landmark], cursor: u64) -> u64 {
    marks
        .iter()
        .map(|m| m.seq)
        .filter(|seq| *seq <= cursor)
        .min()
        .map_or(cursor, |seq| seq - 1)
}

/// What one `Batch` brings this sync.
#[derive(Debug, PartialEq, Eq)]
struct Batch {
    /// The envelopes after the cursor, to screen and apply.
    kept: Vec<(u64, Vec<u8>)>,
    /// Their bytes, towards the next snapshot.
    bytes: u64,
    /// What comes after applying them.
    then: AfterBatch,
}

/// What follows a batch once its envelopes are applied.
#[derive(Debug, PartialEq, Eq)]
enum AfterBatch {
    /// More batches follow.
    More,
    /// The relay's head is reached.
    Done,
    /// The relay holds envelopes after this landmark but not the landmark: it went back in
    /// time.
    Behind(Landmark),
}

/// Reads a `Batch` of `items` up to the relay's `head` against the `marks` not checked yet
/// (each removed once the relay shows it in its place) and this device's `cursor`. `Err`
/// names a landmark the relay no longer holds as it was: it went back in time, and nothing
/// of the batch is taken.
fn read_batch(
    marks: &mut Vec<Landmark>,
    cursor: u64,
    head: u64,
    items: Vec<(u64, Vec<u8>)>,
) -> Result<Batch, Landmark> {
    if let Some(mark) = marks.iter().rev().find(|m| head < m.seq) {
        return Err(*mark);
    }
    let done = items.last().is_none_or(|(seq, _)| *seq >= head);
    let mut kept = Vec::with_capacity(items.len());
    let mut bytes_kept = 0;
    for (seq, bytes) in items {
        // The first landmark not checked yet, once the batch reaches its place.
        if let Some(mark) = marks.first().copied()
            && seq >= mark.seq
        {
            match mark.check(seq, &bytes) {
                Some(true) => {
                    marks.remove(0);
                }
                // A snapshot replaced them: the relay compacted, not rewound.
                None => marks.clear(),
                Some(false) => return Err(mark),
            }
        }
        if seq <= cursor {
            // Applied before: asked for only to compare.
            continue;
        }
        bytes_kept += bytes.len() as u64;
        kept.push((seq, bytes));
    }
    let then = match (done, marks.first()) {
        (false, _) => AfterBatch::More,
        (true, None) => AfterBatch::Done,
        // It holds later envelopes but not the landmark's.
        (true, Some(mark)) => AfterBatch::Behind(*mark),
    };
    Ok(Batch {
        kept,
        bytes: bytes_kept,
        then,
    })
}

/// Whether a snapshot is due after a sync that ended as `report`, with `unsnapshotted`
/// bytes of envelopes since the last one. Not while envelopes wait for missing changes
/// (the snapshot would leave them out), nor before anything is on the relay.
fn snapshot_due(report: &SyncReport, unsnapshotted: u64) -> bool {
    report.waiting == 0 && report.cursor > 0 && unsnapshotted >= SNAPSHOT_AFTER_BYTES
}

/// The relay's answer to a `Push` of `counter`: the seq it committed the envelope at.
fn committed(reply: RelayFrame, counter: u64) -> Result<u64, SyncError> {
    match reply {
        RelayFrame::Committed { counter: c, seq } if c == counter => Ok(seq),
        other => Err(unexpected("Committed", &other)),
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::EnvelopeKind;

    use super::*;
    use crate::sync::fixtures::{Couple, sealed, sealed_as};

    /// The owner's envelope with `counter`, delivered at `seq`.
    fn item(c: &Couple, seq: u64, counter: u64) -> (u64, Vec<u8>) {
        (seq, sealed(&c.owner, &c.keys[1], c.space, 1, counter, b"x"))
    }

    fn mark(c: &Couple, seq: u64, counter: u64) -> Landmark {
        Landmark {
            seq,
            author: c.owner.device_id(),
            counter,
        }
    }

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.kept.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn a_pull_starts_after_the_cursor_or_at_the_earliest_landmark_it_must_compare() {
        let c = Couple::new();
        assert_eq!(since_seq(&[], 7), 7);
        assert_eq!(since_seq(&[mark(&c, 5, 1), mark(&c, 7, 2)], 7), 4);
        // A landmark past the cursor is checked when the pull reaches it anyway.
        assert_eq!(since_seq(&[mark(&c, 9, 1)], 7), 7);
    }

    #[test]
    fn a_batch_that_reaches_the_head_ends_the_pull_and_one_short_of_it_asks_for_more() {
        let c = Couple::new();
        let items = vec![item(&c, 1, 1), item(&c, 2, 2)];
        let size: u64 = items.iter().map(|(_, b)| b.len() as u64).sum();
        let batch = read_batch(&mut Vec::new(), 0, 2, items.clone()).unwrap();
        assert_eq!(seqs(&batch), [1, 2]);
        assert_eq!(batch.bytes, size);
        assert_eq!(batch.then, AfterBatch::Done);
        let batch = read_batch(&mut Vec::new(), 0, 9, items).unwrap();
        assert_eq!(batch.then, AfterBatch::More);
        let batch = read_batch(&mut Vec::new(), 0, 0, Vec::new()).unwrap();
        assert_eq!(batch.then, AfterBatch::Done, "an empty space is caught up");
    }

    #[test]
    fn envelopes_at_or_before_the_cursor_are_compared_but_not_taken_again() {
        let c = Couple::new();
        let mut marks = vec![mark(&c, 2, 2)];
        let items = vec![item(&c, 2, 2), item(&c, 3, 3)];
        let batch = read_batch(&mut marks, 2, 3, items).unwrap();
        assert_eq!(seqs(&batch), [3]);
        assert!(marks.is_empty(), "the landmark was found in its place");
        assert_eq!(batch.then, AfterBatch::Done);
    }

    #[test]
    fn a_relay_whose_head_is_below_a_landmark_went_back_in_time() {
        let c = Couple::new();
        let lost = mark(&c, 5, 5);
        let mut marks = vec![mark(&c, 2, 2), lost];
        assert_eq!(
            read_batch(&mut marks, 5, 4, vec![item(&c, 2, 2)]),
            Err(lost)
        );
    }

    #[test]
    fn another_envelope_in_a_landmarks_place_means_the_relay_went_back_in_time() {
        let c = Couple::new();
        let lost = mark(&c, 2, 2);
        // The same place holds another counter; or the landmark's place is skipped.
        for items in [vec![item(&c, 2, 9)], vec![item(&c, 3, 2)]] {
            let mut marks = vec![lost];
            assert_eq!(read_batch(&mut marks, 2, 3, items), Err(lost));
        }
    }

    #[test]
    fn a_snapshot_in_a_landmarks_place_is_compaction_not_a_rewind() {
        let c = Couple::new();
        let snapshot = sealed_as(
            EnvelopeKind::Snapshot { covers_seq: 3 },
            &c.owner,
            &c.keys[1],
            c.space,
            1,
            4,
            b"x",
        );
        let mut marks = vec![mark(&c, 2, 2), mark(&c, 3, 3)];
        let batch = read_batch(&mut marks, 3, 4, vec![(4, snapshot)]).unwrap();
        assert!(marks.is_empty());
        assert_eq!(seqs(&batch), [4]);
        assert_eq!(batch.then, AfterBatch::Done);
    }

    #[test]
    fn a_relay_that_names_a_head_past_a_landmark_but_sends_nothing_went_back_in_time() {
        let c = Couple::new();
        let lost = mark(&c, 3, 3);
        let mut marks = vec![lost];
        let batch = read_batch(&mut marks, 3, 4, Vec::new()).unwrap();
        assert!(batch.kept.is_empty());
        assert_eq!(batch.then, AfterBatch::Behind(lost));
    }

    #[test]
    fn a_snapshot_is_due_only_after_enough_bytes_with_nothing_waiting_and_something_on_the_relay() {
        let ready = SyncReport {
            cursor: 10,
            ..SyncReport::default()
        };
        assert!(snapshot_due(&ready, SNAPSHOT_AFTER_BYTES));
        assert!(!snapshot_due(&ready, SNAPSHOT_AFTER_BYTES - 1));
        let waiting = SyncReport {
            waiting: 1,
            ..ready.clone()
        };
        assert!(!snapshot_due(&waiting, SNAPSHOT_AFTER_BYTES));
        assert!(!snapshot_due(&SyncReport::default(), SNAPSHOT_AFTER_BYTES));
    }

    #[test]
    fn a_push_is_done_only_when_the_relay_commits_that_counter() {
        assert_eq!(
            committed(RelayFrame::Committed { counter: 4, seq: 9 }, 4).unwrap(),
            9
        );
        assert!(committed(RelayFrame::Committed { counter: 3, seq: 9 }, 4).is_err());
        assert!(committed(RelayFrame::Pong { nonce: 1 }, 4).is_err());
    }

    #[test]
    fn a_sync_the_acl_moved_under_runs_again_up_to_three_times() {
        let moved = Err(SyncError::AclMoved);
        assert_eq!(after_attempt(1, &moved), Attempt::Again);
        assert_eq!(after_attempt(2, &moved), Attempt::Again);
        assert_eq!(after_attempt(3, &moved), Attempt::Done);
    }

    #[test]
    fn a_sync_that_found_the_relay_behind_runs_again_to_resend() {
        let behind = Err(SyncError::RelayBehind { head: 2, cursor: 5 });
        assert_eq!(
            after_attempt(1, &behind),
            Attempt::AgainAfterRewind { head: 2, cursor: 5 }
        );
        assert_eq!(after_attempt(3, &behind), Attempt::Done);
    }

    #[test]
    fn a_sync_that_succeeded_or_failed_otherwise_is_done() {
        assert_eq!(after_attempt(1, &Ok(SyncReport::default())), Attempt::Done);
        assert_eq!(after_attempt(1, &Err(SyncError::NotPaired)), Attempt::Done);
    }

    #[test]
    fn outgoing_changes_are_sealed_in_envelopes_the_relay_announced_it_takes() {
        use hearth_crypto::Protection;
        use hearth_doc::Millis;
        use hearth_proto::{Envelope, Limits};

        let dir = tempfile::tempdir().unwrap();
        let mut p = Profile::create(dir.path(), "Sam", Protection::None, Millis(1)).unwrap();
        p.sync_book_mut().start_space("ws://relay.invalid").unwrap();
        let me = p.person_id().clone();
        // Each change over half the smallest padded envelope, so no two share one.
        for i in 0..3u64 {
            let text: String = (0..40)
                .map(|n| format!("{:016x}", (i * 40 + n).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                .collect();
            p.write(|doc| doc.add_appreciation(&me, &text, Millis::now()))
                .unwrap();
        }
        // A relay that takes small envelopes only: about one change in each.
        let small = Limits {
            max_envelope_bytes: 1024 + 400,
            ..Limits::default()
        };
        let budget = hearth_crypto::envelope::max_plaintext_for(
            small.envelope_bytes(),
            EnvelopeKind::Changes,
        )
        .unwrap();
        let pushed = crate::store::sync_state::pushed_heads(&p.conn).unwrap();
        let expected = p
            .load()
            .unwrap()
            .changes_since_batched(&pushed, budget)
            .unwrap();
        assert!(expected.len() >= 3, "each appreciation alone");
        p.sync_book_mut().set_relay_limits(&small).unwrap();
        p.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        let outbox = p.sync_book().outbox().unwrap();
        assert_eq!(outbox.len(), expected.len());
        for (_, bytes) in &outbox {
            assert!(
                bytes.len() <= small.envelope_bytes(),
                "{} bytes",
                bytes.len()
            );
            Envelope::decode(bytes).unwrap();
        }
    }
}
