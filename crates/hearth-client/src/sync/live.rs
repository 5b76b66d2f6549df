//! Live sessions: a connection that stays open after catching up, applying the partner's
//! envelopes as the relay forwards them and pushing this device's own as they appear.
//! `watch` (the CLI) and the benchmarks are built on [`Live`].

use std::time::Duration;

use hearth_proto::{AclState, ClientFrame, RelayFrame, SpaceId};

use super::chain::{Admitted, login};
use super::exchange::exchange;
use super::keys::settle;
use super::link::{Link, now_ms, unexpected};
use super::screen::receive;
use super::{SyncError, SyncReport};
use crate::Profile;

/// A connection that stays open: caught up once, then fed the relay's live events.
/// [`watch`] is built on it; so are the benchmarks.
pub struct Live {
    link: Link,
    space: SpaceId,
    state: AclState,
    idle: Duration,
}

/// What one live frame did.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// An envelope arrived (applied, known, waiting or refused: see the report).
    Received(SyncReport),
    /// The relay committed one of this device's envelopes.
    Committed,
    /// The space's ACL changed: close this and open a new one to pick the change up.
    AclMoved,
    /// Nothing the caller needs to act on.
    Idle,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("relay", &self.link.relay)
            .field("space", &self.space)
            .field("epoch", &self.state.epoch())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Logs in, settles the keys, pushes and pulls everything outstanding, and stays
    /// subscribed.
    ///
    /// # Errors
    /// A [`SyncError`]; whatever was committed or applied before it stays.
    pub async fn open(
        profile: &mut Profile,
        timeout: Duration,
    ) -> Result<(Live, SyncReport), SyncError> {
        match Self::open_once(profile, timeout).await {
            // The relay went back in time: this device rewound; the next login resends.
            Err(SyncError::RelayBehind { head, cursor }) => {
                let (live, mut report) = Self::open_once(profile, timeout).await?;
                report.relay_behind = Some((head, cursor));
                Ok((live, report))
            }
            // The relay removed the space nobody joined: a sync puts it back first.
            Err(SyncError::SpaceExpired) => {
                let report = super::exchange::sync_once(profile, timeout).await?;
                let (live, _) = Self::open_once(profile, timeout).await?;
                Ok((live, report))
            }
            done => done,
        }
    }

    async fn open_once(
        profile: &mut Profile,
        timeout: Duration,
    ) -> Result<(Live, SyncReport), SyncError> {
        let Admitted {
            mut link,
            space,
            chain,
            expired,
        } = login(profile, timeout).await?;
        if expired {
            link.close().await;
            return Err(SyncError::SpaceExpired);
        }
        let state = settle(profile, &mut link, &space, &chain).await?;
        let report = exchange(profile, &mut link, &space, &state).await?;
        profile.sync_book_mut().mark_synced(now_ms())?;
        Ok((
            Live {
                link,
                space,
                state,
                // The relay pings an idle connection; reading answers them. Allow a few
                // missed beats.
                idle: timeout.max(Duration::from_secs(90)),
            },
            report,
        ))
    }

    /// Seals what this device wrote since its last push and sends it, without waiting for
    /// the relay's `Committed` (it arrives through [`Live::next`]). Returns how many
    /// envelopes were sent.
    ///
    /// # Errors
    /// A [`SyncError`]; unsent envelopes stay in the outbox.
    pub async fn push(&mut self, profile: &mut Profile) -> Result<usize, SyncError> {
        if profile
            .sync_book_mut()
            .stage_outgoing(self.state.epoch())?
            .is_none()
        {
            return Ok(0);
        }
        let outbox = profile.sync_book().outbox()?;
        for (_, envelope) in &outbox {
            self.link
                .send(&ClientFrame::Push {
                    envelope: envelope.clone(),
                })
                .await?;
        }
        Ok(outbox.len())
    }

    /// Waits for the next frame from the relay and handles it.
    ///
    /// # Errors
    /// A [`SyncError`], e.g. [`SyncError::Timeout`] if the relay stays silent.
    pub async fn next(&mut self, profile: &mut Profile) -> Result<LiveEvent, SyncError> {
        let frame = tokio::time::timeout(self.idle, self.link.recv_any())
            .await
            .map_err(|_| SyncError::Timeout(self.idle))??;
        let event = match frame {
            RelayFrame::Event { seq, envelope } => {
                let mut report = SyncReport::default();
                match receive(
                    profile,
                    &self.space,
                    &self.state,
                    seq,
                    &envelope,
                    &mut report,
                ) {
                    Err(SyncError::AclMoved) => return Ok(LiveEvent::AclMoved),
                    other => other?,
                }
                report.cursor = profile.sync_book().cursor()?;
                report.withheld = live_gap(profile, report.cursor, seq)?;
                LiveEvent::Received(report)
            }
            RelayFrame::Committed { counter, seq } => {
                profile.sync_book_mut().acknowledge(counter, seq)?;
                LiveEvent::Committed
            }
            RelayFrame::AclChanged { .. } => return Ok(LiveEvent::AclMoved),
            RelayFrame::Pong { .. } => LiveEvent::Idle,
            other => return Err(unexpected("Event", &other)),
        };
        profile.sync_book_mut().mark_synced(now_ms())?;
        Ok(event)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        self.link.close().await;
    }
}

/// A gap below the live event at `seq` that this device's own envelopes still on their way
/// cannot explain (the relay may commit one of them before an event and answer `Committed`
/// after it): the relay skipped something.
fn live_gap(
    profile: &Profile,
    cursor: u64,
    seq: u64,
) -> Result<Option<crate::Withheld>, SyncError> {
    let gap = crate::sync_book::withheld(cursor, &profile.sync_book().ahead()?, seq);
    let in_flight = profile.sync_book().outbox()?.len() as u64;
    Ok(gap.filter(|g| g.missing > in_flight))
}

/// Stays connected: syncs, then applies the partner's envelopes as the relay forwards them
/// and pushes this device's own changes as they appear (checked every `push_every`).
/// Calls `on_applied` once caught up (so the caller knows it is live) and after each batch
/// of incoming changes, with the profile, so the caller can show what is new;
/// `on_refused` for each change the authorship rule refused, so the caller can warn; and
/// `on_withheld` when the relay holds back envelopes it has (see [`SyncReport::withheld`]).
/// A live event that skips over a seq makes it reconnect once, which asks for the gap
/// again; a gap that is still there is reported, once per place.
///
/// Returns `Ok(())` when the space's ACL changed (a device joined or left, or the key
/// rotated): call it again at once to pick the change up; and when what arrived names a
/// newer relay for the space ([`super::newer_relay`]): [`super::sync_once`] moves there,
/// then call it again.
///
/// # Errors
/// A [`SyncError`]; everything applied or committed before it stays.
pub async fn watch(
    profile: &mut Profile,
    timeout: Duration,
    push_every: Duration,
    mut on_applied: impl FnMut(&mut Profile),
    mut on_refused: impl FnMut(&crate::RefusedChangeReport),
    mut on_withheld: impl FnMut(&crate::Withheld),
) -> Result<(), SyncError> {
    // The start of the last gap asked for again, and of the last one reported.
    let mut asked = None;
    let mut reported = None;
    let mut first = true;
    loop {
        let (mut live, caught_up) = Live::open(profile, timeout).await?;
        caught_up.refused_changes.iter().for_each(&mut on_refused);
        if let Some(gap) = caught_up.withheld
            && reported != Some(gap.from_seq)
        {
            reported = Some(gap.from_seq);
            on_withheld(&gap);
        }
        if first || caught_up.received > 0 {
            // Called once connected and caught up, whatever arrived: the caller learns it
            // is live.
            on_applied(profile);
            first = false;
        }
        let mut tick = tokio::time::interval(push_every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    live.push(profile).await?;
                }
                event = live.next(profile) => match event {
                    // The relay removed the space nobody joined: reconnecting puts it back.
                    Err(SyncError::Refused { code: hearth_proto::RejectCode::SpaceExpired, .. }) => break,
                    event => match event? {
                    LiveEvent::Received(report) => {
                        for r in &report.rejected {
                            tracing::warn!(seq = r.seq, reason = %r.reason, "envelope refused while watching");
                        }
                        report.refused_changes.iter().for_each(&mut on_refused);
                        if report.received > 0 {
                            on_applied(profile);
                            if super::newer_relay(profile)?.is_some() {
                                live.close().await;
                                return Ok(());
                            }
                        }
                        if let Some(gap) = report.withheld
                            && asked != Some(gap.from_seq)
                        {
                            asked = Some(gap.from_seq);
                            tracing::info!(from = gap.from_seq, to = gap.to_seq, "a gap in live events; asking again");
                            break;
                        }
                    }
                    LiveEvent::AclMoved => {
                        live.close().await;
                        return Ok(());
                    }
                    LiveEvent::Committed | LiveEvent::Idle => {}
                    },
                }
            }
        }
        live.close().await;
    }
}
