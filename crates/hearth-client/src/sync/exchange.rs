//! The exchange with the relay in one sync: log in, create the space if the relay does
//! not hold it yet, settle the keys, pull everything after the cursor (comparing the
//! landmarks that tell whether the relay went back in time, and the witnesses that tell
//! whether it hides ACL records), push this device's outbox (each envelope removed only
//! after its `Committed`), and push a snapshot when one is due.

use std::time::Duration;

use hearth_proto::{AclState, ClientFrame, RelayFrame, SpaceId};

use super::chain::{Admitted, login};
use super::consent;
use super::keys::settle;
use super::link::{Link, now_ms, unexpected};
use super::screen::{receive, take_in};
use super::witness;
use super::{SyncError, SyncReport, TokenProblem};
use crate::Landmark;
use crate::Profile;

/// Pushes this device's changes and pulls everyone else's, once; then, if the document
/// names a newer relay for the space (one of its members moved it), moves there and syncs
/// there too ([`SyncReport::moved`], or [`SyncReport::move_pending`] if it cannot yet).
///
/// # Errors
/// A [`SyncError`]; whatever was committed or applied before it stays, the rest is kept
/// locally for the next sync.
pub async fn sync_once(profile: &mut Profile, timeout: Duration) -> Result<SyncReport, SyncError> {
    let report = sync_here(profile, timeout).await?;
    super::relocate::follow(profile, report, timeout).await
}

/// [`sync_once`] with the relay this device syncs through now, wherever the document says
/// the space is.
///
/// # Errors
/// As [`sync_once`].
pub(super) async fn sync_here(
    profile: &mut Profile,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
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
    let Admitted {
        mut link,
        space,
        mut chain,
        expired,
    } = login(profile, timeout).await?;
    if expired {
        // Its only device puts it back: chain back to the Genesis, and everything resent.
        tracing::info!("the relay removed this space because nobody joined it; creating it again");
        profile.sync_book_mut().space_expired()?;
    }
    if chain.is_empty() {
        chain = match create_space(profile, &mut link, expired).await {
            Ok(chain) => chain,
            Err(e) => {
                link.close().await;
                return Err(e);
            }
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
    report.map(|mut report| {
        report.recreated_after_expiry = expired;
        report
    })
}

/// Creates this device's space on the relay with its Genesis, and the creation token
/// offered on the profile, if any (spent, and so dropped from the profile, once the space
/// exists). Returns the relay's chain.
pub(super) async fn create_space(
    profile: &mut Profile,
    link: &mut Link,
    after_expiry: bool,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let genesis = profile
        .sync_book()
        .acl_records()?
        .into_iter()
        .next()
        .ok_or(SyncError::NotPaired)?;
    let token = profile.relay_token.as_ref().map(|t| t.expose().to_owned());
    link.send(&ClientFrame::CreateSpace { genesis, token })
        .await?;
    match link.recv().await {
        Ok(RelayFrame::AclChanged { records }) => {
            profile.relay_token = None;
            Ok(records)
        }
        Ok(other) => Err(unexpected("AclChanged", &other)),
        Err(SyncError::Refused { code, message }) => match TokenProblem::of(code) {
            Some(problem) => Err(SyncError::TokenRefused {
                problem,
                after_expiry,
            }),
            None => Err(SyncError::Refused { code, message }),
        },
        Err(e) => Err(e),
    }
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
    // Nothing is sealed under a chain another device has seen past; and this device's
    // writing is sealed only after the pull, so that what the pull brings (a partner's
    // envelope under an epoch the relay hides from this device) is known first.
    witness::check_and_note(profile, state)?;
    let mut moved = 0;
    let mut proposal = None;
    // A gap the relay leaves is asked for once more at once; if it is still there after
    // that, it is reported, and every later sync asks again.
    for pull in 0..PULLS {
        let cursor = profile.sync_book().cursor()?;
        let since_seq = if pull == 0 {
            since_seq(&marks, cursor)
        } else {
            cursor
        };
        // The envelopes from the start are read only once for the resend's prefix.
        let mut prefix = if pull == 0 { resend.take() } else { None };
        // A snapshot refused: ask for the envelopes it claims to stand for instead.
        let snapshot = report.refused_snapshot.is_none();
        let pulled = pull_once(
            profile,
            link,
            Pull {
                space,
                state,
                since_seq,
                snapshot,
            },
            &mut marks,
            &mut prefix,
            &mut report,
        )
        .await?;
        if pull == 0 {
            resend = prefix;
        }
        moved += pulled.bytes;
        proposal = pulled.proposal.or(proposal);
        let cursor = profile.sync_book().cursor()?;
        report.withheld =
            crate::sync_book::withheld(cursor, &profile.sync_book().ahead()?, pulled.head);
        if report.withheld.is_none() {
            break;
        }
    }
    consent::note_unavailable(&mut report);
    if let Some(prefix) = resend {
        moved += resend_whole(profile, link, state, prefix.covers).await?;
    }
    // What arrived may say the relay hides records: then nothing more is sealed (or
    // countersigned).
    if report.received > 0 {
        witness::check(profile, state)?;
    }
    // Judged once everything up to the relay's head is taken (and recorded as known), and
    // before this device's own writing goes out.
    if let Some(proposal) = proposal {
        consent::answer_proposal(profile, link, space, state, &proposal, &mut report).await?;
    }
    // This device's writing, with the keys released on seeing the partner's sealed
    // answers.
    moved += push_staged(profile, link, state, &mut report).await?;
    report.cursor = profile.sync_book().cursor()?;
    report.waiting = profile.sync_book().waiting()?;
    // Countersigned: the relay's snapshot covers what this sync moved, so it does not
    // count towards this device's own next one.
    if report.countersigned.is_none() {
        profile.sync_book_mut().add_unsnapshotted(moved)?;
    }
    Ok(report)
}

/// How many times one sync pulls from its cursor: once, and once more if the relay left a
/// gap.
const PULLS: usize = 2;

/// What one pull brought.
struct Pulled {
    /// Bytes of envelopes taken, towards the next snapshot.
    bytes: u64,
    /// The highest head the relay named.
    head: u64,
    /// The snapshot proposal the relay showed this device for its countersignature, if
    /// any (judged once the pulls are over: `consent::answer_proposal`).
    proposal: Option<Vec<u8>>,
}

/// What one pull asks for.
#[derive(Clone, Copy)]
struct Pull<'a> {
    space: &'a SpaceId,
    state: &'a AclState,
    /// Everything after this seq.
    since_seq: u64,
    /// Whether the relay may stand its snapshot in for the envelopes it covers (`Subscribe`)
    /// or must send the envelopes it still has (`SubscribeEnvelopes`, after a refused one).
    snapshot: bool,
}

/// Asks for everything after `since_seq`, and takes it: the relay's `Batch` pages and any
/// `Event` pushed meanwhile, until the `Pong` to a `Ping` sent right after the
/// `Subscribe` (the relay answers requests in order, so the `Pong` follows its last page
/// whatever the pages hold or lack). A snapshot among the pages is taken only with the
/// countersignature (`Countersigned`) the relay sent before it (`consent::vet_offered`).
async fn pull_once(
    profile: &mut Profile,
    link: &mut Link,
    pull: Pull<'_>,
    marks: &mut Vec<Landmark>,
    resend: &mut Option<OwnPrefix>,
    report: &mut SyncReport,
) -> Result<Pulled, SyncError> {
    let Pull {
        space,
        state,
        since_seq,
        snapshot,
    } = pull;
    link.send(&if snapshot {
        ClientFrame::Subscribe {
            space: *space,
            since_seq,
        }
    } else {
        ClientFrame::SubscribeEnvelopes {
            space: *space,
            since_seq,
        }
    })
    .await?;
    let nonce = now_ms();
    link.send(&ClientFrame::Ping { nonce }).await?;
    let behind = |profile: &mut Profile, head: u64, mark: Landmark| {
        // Restored from an older backup: what it lost is resent from here.
        profile.sync_book_mut().relay_rewound()?;
        Err(SyncError::RelayBehind {
            head,
            cursor: mark.seq,
        })
    };
    let mut pulled = Pulled {
        bytes: 0,
        head: 0,
        proposal: None,
    };
    let mut consent = None;
    loop {
        match link.recv().await? {
            RelayFrame::Batch { mut items, head } => {
                pulled.head = pulled.head.max(head);
                // In seq order, whatever order the relay sent them in.
                // Two items under one seq are both screened: one the relay slipped in must
                // not push out the real one.
                items.sort_by_key(|(seq, _)| *seq);
                if let Some(prefix) = resend {
                    prefix.read(items.iter().map(|(seq, bytes)| (*seq, bytes.as_slice())));
                }
                let cursor = profile.sync_book().cursor()?;
                let ahead = profile.sync_book().ahead()?;
                let batch = match read_batch(marks, cursor, &ahead, head, items) {
                    Ok(batch) => batch,
                    Err(mark) => return behind(profile, head, mark),
                };
                pulled.bytes += batch.bytes;
                let kept = consent::vet_offered(
                    profile,
                    space,
                    state,
                    batch.kept,
                    consent.take().as_ref(),
                    report,
                )?;
                take_in(
                    profile,
                    space,
                    state,
                    kept.iter().map(|(seq, bytes)| (*seq, bytes.as_slice())),
                    report,
                )?;
            }
            RelayFrame::Countersigned {
                covers_seq,
                device,
                signature,
            } => {
                consent = Some((
                    covers_seq,
                    hearth_proto::Countersignature { device, signature },
                ));
            }
            RelayFrame::Proposed { envelope } => pulled.proposal = Some(envelope),
            RelayFrame::Event { seq, envelope } => {
                if let Some(prefix) = resend {
                    prefix.read([(seq, envelope.as_slice())]);
                }
                let cursor = profile.sync_book().cursor()?;
                if seq > cursor && !profile.sync_book().ahead()?.contains_key(&seq) {
                    receive(profile, space, state, seq, &envelope, report)?;
                }
            }
            RelayFrame::Pong { nonce: n } if n == nonce => break,
            // A record added while we sync: the next sync adopts it with the whole chain.
            RelayFrame::AclChanged { .. } => {}
            other => return Err(unexpected("Batch", &other)),
        }
    }
    // The relay holds envelopes past a landmark (or named a head past it) but did not show
    // the landmark in its place.
    if let Some(mark) = marks.first().copied() {
        return behind(profile, pulled.head, mark);
    }
    Ok(pulled)
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

/// Proposes a snapshot of the whole document (one envelope standing in for every envelope
/// up to the cursor) once enough has changed since the last one: once a device of the other
/// person countersigned it (`consent`), a new device loads one compressed document instead
/// of replaying every change, and the relay drops what the snapshot covers; until then the
/// relay keeps it beside the envelopes. Skipped while envelopes wait for missing changes
/// (the snapshot would leave them out) or if the document is over the relay's envelope
/// limit.
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
    /// The envelopes after the cursor not taken yet, to screen and apply.
    kept: Vec<(u64, Vec<u8>)>,
    /// Their bytes, towards the next snapshot.
    bytes: u64,
}

/// Reads a `Batch` of `items` (in seq order) up to the relay's `head` against the `marks`
/// not checked yet (each removed once the relay shows it in its place), this device's
/// `cursor` and what it took `ahead` of it. `Err` names a landmark the relay no longer
/// holds as it was (or a seq taken ahead that now holds another envelope): it went back in
/// time, and nothing of the batch is taken.
fn read_batch(
    marks: &mut Vec<Landmark>,
    cursor: u64,
    ahead: &crate::sync_book::Ahead,
    head: u64,
    items: Vec<(u64, Vec<u8>)>,
) -> Result<Batch, Landmark> {
    if let Some(mark) = marks.iter().rev().find(|m| head < m.seq) {
        return Err(*mark);
    }
    // Whether any item the relay put at `seq` is the one `mark` names: a relay that slips
    // another item in beside it has not rewound for that.
    let at = |seq: u64, mark: &Landmark| {
        let checks: Vec<Option<bool>> = items
            .iter()
            .filter(|(s, _)| *s == seq)
            .map(|(_, bytes)| mark.check(seq, bytes))
            .collect();
        if checks.contains(&Some(true)) {
            Some(true)
        } else if checks.contains(&None) {
            None
        } else {
            Some(false)
        }
    };
    let mut kept = Vec::with_capacity(items.len());
    let mut bytes_kept = 0;
    for (seq, bytes) in &items {
        let seq = *seq;
        // The first landmark not checked yet, once the batch reaches its place.
        if let Some(mark) = marks.first().copied()
            && seq >= mark.seq
        {
            match at(seq, &mark) {
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
        if let Some(taken) = ahead.get(&seq) {
            // Taken past a gap before: the same envelope must still be there.
            if let Some(mark) = taken
                && at(seq, mark) == Some(false)
            {
                return Err(*mark);
            }
            continue;
        }
        bytes_kept += bytes.len() as u64;
        kept.push((seq, bytes.clone()));
    }
    Ok(Batch {
        kept,
        bytes: bytes_kept,
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

    fn none() -> crate::sync_book::Ahead {
        crate::sync_book::Ahead::new()
    }

    #[test]
    fn a_batch_keeps_what_comes_after_the_cursor_with_its_bytes() {
        let c = Couple::new();
        let items = vec![item(&c, 1, 1), item(&c, 2, 2)];
        let size: u64 = items.iter().map(|(_, b)| b.len() as u64).sum();
        let batch = read_batch(&mut Vec::new(), 0, &none(), 2, items).unwrap();
        assert_eq!(seqs(&batch), [1, 2]);
        assert_eq!(batch.bytes, size);
        let batch = read_batch(&mut Vec::new(), 0, &none(), 0, Vec::new()).unwrap();
        assert!(batch.kept.is_empty(), "an empty space is caught up");
    }

    #[test]
    fn envelopes_at_or_before_the_cursor_are_compared_but_not_taken_again() {
        let c = Couple::new();
        let mut marks = vec![mark(&c, 2, 2)];
        let items = vec![item(&c, 2, 2), item(&c, 3, 3)];
        let batch = read_batch(&mut marks, 2, &none(), 3, items).unwrap();
        assert_eq!(seqs(&batch), [3]);
        assert!(marks.is_empty(), "the landmark was found in its place");
    }

    #[test]
    fn envelopes_taken_past_a_gap_are_not_taken_again_when_they_come_again() {
        let c = Couple::new();
        let mut ahead = none();
        ahead.insert(4, Some(mark(&c, 4, 4)));
        let items = vec![item(&c, 3, 3), item(&c, 4, 4), item(&c, 5, 5)];
        let batch = read_batch(&mut Vec::new(), 2, &ahead, 5, items).unwrap();
        assert_eq!(seqs(&batch), [3, 5]);
    }

    #[test]
    fn another_envelope_where_one_was_taken_past_a_gap_means_the_relay_went_back_in_time() {
        let c = Couple::new();
        let mut ahead = none();
        let was = mark(&c, 4, 4);
        ahead.insert(4, Some(was));
        let items = vec![item(&c, 3, 3), item(&c, 4, 9)];
        assert_eq!(read_batch(&mut Vec::new(), 2, &ahead, 4, items), Err(was));
    }

    #[test]
    fn an_item_slipped_in_beside_a_landmark_is_screened_and_not_taken_for_a_rewind() {
        let c = Couple::new();
        let mut marks = vec![mark(&c, 2, 2)];
        let slipped = (2, b"not an envelope".to_vec());
        let items = vec![slipped, item(&c, 2, 2), item(&c, 3, 3), (3, b"x".to_vec())];
        let batch = read_batch(&mut marks, 1, &none(), 3, items).unwrap();
        assert!(marks.is_empty(), "the landmark is there");
        assert_eq!(
            seqs(&batch),
            [2, 2, 3, 3],
            "both items of each place are screened"
        );
    }

    #[test]
    fn a_relay_whose_head_is_below_a_landmark_went_back_in_time() {
        let c = Couple::new();
        let lost = mark(&c, 5, 5);
        let mut marks = vec![mark(&c, 2, 2), lost];
        assert_eq!(
            read_batch(&mut marks, 5, &none(), 4, vec![item(&c, 2, 2)]),
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
            assert_eq!(read_batch(&mut marks, 2, &none(), 3, items), Err(lost));
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
        let batch = read_batch(&mut marks, 3, &none(), 4, vec![(4, snapshot)]).unwrap();
        assert!(marks.is_empty());
        assert_eq!(seqs(&batch), [4]);
    }

    #[test]
    fn a_relay_that_names_a_head_past_a_landmark_but_sends_nothing_leaves_it_unchecked() {
        let c = Couple::new();
        let lost = mark(&c, 3, 3);
        let mut marks = vec![lost];
        let batch = read_batch(&mut marks, 3, &none(), 4, Vec::new()).unwrap();
        assert!(batch.kept.is_empty());
        assert_eq!(marks, [lost], "the pull reports it once the relay is done");
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
