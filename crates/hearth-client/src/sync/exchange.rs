//! The exchange with the relay in one sync: log in, create the space if the relay does
//! not hold it yet, settle the keys, push this device's outbox (each envelope removed only
//! after its `Committed`), pull everything after the cursor, compare the landmarks that
//! tell whether the relay went back in time, and push a snapshot when one is due.

use std::time::Duration;

use hearth_proto::{AclState, ClientFrame, RelayFrame, SpaceId};

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
        match sync_attempt(profile, timeout).await {
            Err(SyncError::AclMoved) if attempts < 3 => {}
            Err(SyncError::RelayBehind { head, cursor }) if attempts < 3 => {
                tracing::warn!(
                    head,
                    cursor,
                    "the relay went back in time; sending it everything again"
                );
                behind = Some((head, cursor));
            }
            Ok(mut report) => {
                report.relay_behind = behind;
                return Ok(report);
            }
            done => return done,
        }
    }
}

pub(super) async fn sync_attempt(
    profile: &mut Profile,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
    let relay = profile.sync_book().relay()?.ok_or(SyncError::NotPaired)?;
    profile
        .sync_book()
        .acl_state()?
        .ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;

    let mut link = Link::connect(&relay, timeout).await?;
    let mut chain = link.login(&profile.secrets.device, &space, false).await?;
    profile.sync_book_mut().set_relay_limits(&link.limits)?;
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
    let mut moved = push_staged(profile, link, state, &mut report).await?;
    let cursor = profile.sync_book().cursor()?;
    // Landmarks at or before the cursor are read again, only to compare them.
    let since_seq = marks
        .iter()
        .map(|m| m.seq)
        .filter(|seq| *seq <= cursor)
        .min()
        .map_or(cursor, |seq| seq - 1);
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
                if let Some(mark) = marks.iter().rev().find(|m| head < m.seq) {
                    return behind(profile, head, *mark);
                }
                let done = items.last().is_none_or(|(seq, _)| *seq >= head);
                let mut kept = Vec::with_capacity(items.len());
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
                            Some(false) => return behind(profile, head, mark),
                        }
                    }
                    if seq <= cursor {
                        // Applied before: asked for only to compare.
                        continue;
                    }
                    moved += bytes.len() as u64;
                    kept.push((seq, bytes));
                }
                take_in(
                    profile,
                    space,
                    state,
                    kept.iter().map(|(seq, bytes)| (*seq, bytes.as_slice())),
                    &mut report,
                )?;
                if done {
                    if let Some(mark) = marks.first() {
                        // It holds later envelopes but not the landmark's.
                        return behind(profile, head, *mark);
                    }
                    break;
                }
            }
            RelayFrame::Event { seq, envelope } => {
                receive(profile, space, state, seq, &envelope, &mut report)?;
            }
            // A record added while we sync: the next sync adopts it with the whole chain.
            RelayFrame::AclChanged { .. } => {}
            other => return Err(unexpected("Batch", &other)),
        }
    }
    // Keys released on seeing the partner's sealed answers go out in this same sync.
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
    let mut moved = 0;
    let outbox = profile.sync_book().outbox()?;
    for (counter, envelope) in outbox {
        moved += envelope.len() as u64;
        link.send(&ClientFrame::Push { envelope }).await?;
        match link.recv().await? {
            RelayFrame::Committed { counter: c, seq } if c == counter => {
                profile.sync_book_mut().acknowledge(counter, seq)?;
                report.pushed += 1;
            }
            other => return Err(unexpected("Committed", &other)),
        }
    }
    Ok(moved)
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
    if report.waiting > 0
        || report.cursor == 0
        || profile.sync_book().unsnapshotted()? < SNAPSHOT_AFTER_BYTES
    {
        return Ok(());
    }
    let max = link.limits.envelope_bytes();
    let Some((counter, envelope)) =
        profile
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
