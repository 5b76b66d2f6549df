//! Moving the space to another relay (docs/protocol.md, "Moving a space to another
//! relay"): the device that moves it ([`move_space`], `hearth relay set`) writes the new
//! address into the document, tells the old relay if it still answers, brings the space's
//! chain and keys to the new relay, and only then ties its profile there; every other
//! device reads the address in the document on its next sync through the old relay and
//! follows ([`follow`], from [`sync_once`](super::sync_once)). A relay holds nothing a
//! device does not hold too, so nothing passes between the relays: each device uploads its
//! own person's writing to the new one.
//!
//! Who may move the space is who may write the document: any current member device. A
//! partner could point the space at a relay they run; it carries ciphertext only, so it
//! can withhold, which `hearth verify` and "last heard" show (docs/security.md).

use std::time::Duration;

use hearth_crypto::lockbox;
use hearth_doc::{Millis, newest_relay, next_relay_at};
use hearth_proto::{AclState, ClientFrame, DeviceId, RelayFrame};

use super::chain::DeletionJudge;
use super::exchange::{create_space, sync_here};
use super::keys::confirm;
use super::link::{Link, check_relay, unexpected};
use super::trust::check_pinned;
use super::{SyncError, SyncReport};
use crate::{Profile, RelayCa, RelayTrust, RelayUrl, Whose};

/// What `hearth relay set` did.
#[derive(Debug)]
pub struct MoveReport {
    /// The relay the space synced through before, if any.
    pub from: Option<String>,
    /// The relay it syncs through now.
    pub to: RelayUrl,
    /// Why the other devices could not read the new address through the old relay, if they
    /// could not (it is down, say): each of them then needs `hearth relay set` too.
    pub not_announced: Option<String>,
    /// The first sync through the new relay. The move is done even if it failed: the next
    /// sync goes on from there.
    pub synced: Result<SyncReport, SyncError>,
}

/// This device followed the newest relay address in the document to another relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The relay it synced through before.
    pub from: String,
    /// The relay it syncs through now.
    pub to: String,
    /// The device that moved the space there.
    pub by: DeviceId,
    /// Whose device that is.
    pub whose: Whose,
    /// Why the first sync through the new relay did not complete, if it did not; the move
    /// itself did, and the next sync goes on from there.
    pub first_sync: Option<String>,
}

/// A newer relay address in the document that this device could not move to yet: it keeps
/// syncing through the relay it is on, and tries again on every sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovePending {
    /// The address the document names.
    pub to: String,
    /// The device that wrote it.
    pub by: DeviceId,
    /// Whose device that is.
    pub whose: Whose,
    /// Why not yet.
    pub reason: String,
}

/// Moves the space to the relay at `to` (`hearth relay set`): checks that a hearth relay
/// answers there, brings it the space's chain and keys, writes the new address into the
/// document and syncs once more with the old relay so the other devices read it there (if
/// it answers), then ties this profile to the new relay and syncs there, uploading this
/// device's person's writing. A space that was on no relay yet is simply put on it.
/// `ca` is a CA to trust for the new relay's certificate (kept in the profile once the
/// space is there; without one, the profile's trust is used for it). A relay that creates
/// spaces only with an operator's token gets the one offered on the profile
/// ([`Profile::offer_relay_token`]).
///
/// # Errors
/// A [`SyncError`] from the check or from bringing the chain, or
/// [`SyncError::MovedElsewhere`] if another device moved the space to another relay
/// meanwhile: nothing was changed on this device then (but what the old relay held), and
/// the space still syncs through the old relay.
pub async fn move_space(
    profile: &mut Profile,
    to: &RelayUrl,
    ca: Option<&RelayCa>,
    timeout: Duration,
) -> Result<MoveReport, SyncError> {
    let trust = match ca {
        Some(ca) => RelayTrust::new(Some(ca)),
        None => profile.relay_trust()?,
    };
    check_relay(to.as_str(), &trust, timeout).await?;
    let from = profile.sync_book().relay()?;
    if from.is_none() {
        profile.sync_book_mut().start_space(to.as_str())?;
        if let Some(ca) = ca {
            profile.sync_book_mut().set_relay_ca(ca)?;
        }
        let synced = sync_here(profile, timeout).await;
        return Ok(MoveReport {
            from,
            to: to.clone(),
            not_announced: None,
            synced,
        });
    }
    // What the old relay holds first: if another device moved the space elsewhere
    // meantime, moving this one too would split the devices between two relays that never
    // hear of each other.
    // A relay that does not answer tells nothing; this device's own trouble stops it.
    if let Err(SyncError::Profile(e)) = sync_here(profile, timeout).await {
        return Err(SyncError::Profile(e));
    }
    if let Some(newer) = newer_relay(profile)?
        && RelayUrl::parse(&newer.url).ok().as_ref() != Some(to)
    {
        return Err(SyncError::MovedElsewhere {
            to: newer.url,
            by: newer.by,
            whose: newer.whose,
        });
    }
    // The chain next: a relay that will not take it (a fork, no room for new spaces)
    // leaves everything as it was, and nobody is pointed at it.
    bring_chain(profile, to, &trust, timeout).await?;
    let addresses = profile.load()?.relay_addresses();
    let at = next_relay_at(&addresses, Millis::now());
    let me = *profile.device_id().as_bytes();
    profile.write(|doc| doc.note_relay(&me, to.as_str(), at))?;
    let not_announced = match sync_here(profile, timeout).await {
        Ok(_) => None,
        Err(SyncError::Profile(e)) => return Err(SyncError::Profile(e)),
        Err(e) => Some(e.to_string()),
    };
    // What that sync adopted from the old relay (a device added meanwhile) goes too.
    bring_chain(profile, to, &trust, timeout).await?;
    profile.sync_book_mut().moved_to(to.as_str())?;
    if let Some(ca) = ca {
        profile.sync_book_mut().set_relay_ca(ca)?;
    }
    tracing::info!(relay = %to, "moved the space to another relay");
    let synced = sync_here(profile, timeout).await;
    Ok(MoveReport {
        from,
        to: to.clone(),
        not_announced,
        synced,
    })
}

/// After a sync through the old relay that gave `report`: if the newest relay address in
/// the document (written by a current member) is another relay than this device's, moves
/// there as [`move_space`] does, without writing an address of its own, and syncs there.
/// The report says so ([`SyncReport::moved`]) or why not yet
/// ([`SyncReport::move_pending`]).
///
/// # Errors
/// A profile error; anything the new relay answers is reported, not returned.
pub(super) async fn follow(
    profile: &mut Profile,
    mut report: SyncReport,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
    let Some(wanted) = newer_relay(profile)? else {
        return Ok(report);
    };
    let pending = |reason: String| {
        Some(Box::new(MovePending {
            to: wanted.url.clone(),
            by: wanted.by,
            whose: wanted.whose,
            reason,
        }))
    };
    let to = match RelayUrl::parse(&wanted.url) {
        Ok(to) => to,
        Err(e) => {
            report.move_pending = pending(e.to_string());
            return Ok(report);
        }
    };
    let trust = profile.relay_trust()?;
    let brought = match check_relay(to.as_str(), &trust, timeout).await {
        Ok(()) => bring_chain(profile, &to, &trust, timeout).await,
        Err(e) => Err(e),
    };
    match brought {
        Ok(()) => {}
        Err(SyncError::Profile(e)) => return Err(SyncError::Profile(e)),
        Err(e) => {
            tracing::warn!(relay = %to, error = %e, "cannot move to the space's new relay yet");
            report.move_pending = pending(e.to_string());
            return Ok(report);
        }
    }
    let from = profile.sync_book().relay()?.unwrap_or_default();
    profile.sync_book_mut().moved_to(to.as_str())?;
    tracing::info!(relay = %to, by = %wanted.by.short(), "followed the space to another relay");
    let first_sync = match sync_here(profile, timeout).await {
        Ok(later) => {
            absorb(&mut report, later);
            None
        }
        Err(SyncError::Profile(e)) => return Err(SyncError::Profile(e)),
        Err(e) => Some(e.to_string()),
    };
    report.moved = Some(Box::new(Moved {
        from,
        to: to.to_string(),
        by: wanted.by,
        whose: wanted.whose,
        first_sync,
    }));
    Ok(report)
}

/// The newest relay address in the document, when it is not the one this device syncs
/// through: where the next sync moves the space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewerRelay {
    /// The address, as the document holds it.
    pub url: String,
    /// The device that wrote it.
    pub by: DeviceId,
    /// Whose device that is.
    pub whose: Whose,
}

/// Where the document says the space syncs, if that is not the relay this device syncs
/// through (the newest address a current member wrote: docs/document.md, "Where the space
/// syncs"). The next sync moves there once it answers.
///
/// # Errors
/// A profile error.
pub fn newer_relay(profile: &Profile) -> Result<Option<NewerRelay>, crate::Error> {
    let Some(current) = profile.sync_book().relay()? else {
        return Ok(None);
    };
    let addresses = profile.load()?.relay_addresses();
    if addresses.is_empty() {
        return Ok(None);
    }
    let devices = profile.sync_book().devices()?;
    let member = |d: &[u8; 32]| devices.iter().any(|m| m.id.as_bytes() == d);
    let Some(newest) = newest_relay(&addresses, member, Millis::now()) else {
        return Ok(None);
    };
    let same = match (RelayUrl::parse(&newest.url), RelayUrl::parse(&current)) {
        (Ok(a), Ok(b)) => a == b,
        _ => newest.url == current,
    };
    if same {
        return Ok(None);
    }
    let by = DeviceId::from_bytes(newest.device);
    let whose = match devices.iter().find(|d| d.id == by) {
        Some(d) if d.mine => Whose::Yours,
        Some(_) => Whose::Partners,
        None => Whose::Unknown,
    };
    Ok(Some(NewerRelay {
        url: newest.url.clone(),
        by,
        whose,
    }))
}

/// Makes the relay at `to` hold this device's verified chain and the keys: creates the
/// space there with its Genesis and uploads the rest of the chain on the same connection
/// (a relay judges those records as a stored chain, without the clock), or, if the relay
/// holds the space already, appends what it lacks; then wraps every epoch key this device
/// holds for every other current member. Nothing changes on this device.
///
/// # Errors
/// [`SyncError::ChainRollback`] if the relay holds a chain for the space that neither
/// extends this device's nor is a part of it; whatever the relay refused.
async fn bring_chain(
    profile: &mut Profile,
    to: &RelayUrl,
    trust: &RelayTrust,
    timeout: Duration,
) -> Result<(), SyncError> {
    let local = profile.sync_book().acl_records()?;
    let state = profile
        .sync_book()
        .acl_state()?
        .ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;
    let judge = DeletionJudge::new(profile, space, state.clone())?;
    let mut link = Link::connect(to.as_str(), trust, timeout).await?;
    // The new address's key is pinned at this first contact, and checked on every later.
    if let Err(e) = check_pinned(profile, &link) {
        link.close().await;
        return Err(e);
    }
    link.judge = Some(judge);
    let held = link.login(&profile.secrets.device, &space, false).await?;
    let missing = if held.is_empty() {
        // With the creation token offered for this command, if the relay asks for one.
        create_space(profile, &mut link, false).await?;
        &local[1..]
    } else if held.len() <= local.len() && held[..] == local[..held.len()] {
        &local[held.len()..]
    } else if held.len() > local.len() && held[..local.len()] == local[..] {
        // The partner moved first and the space's devices changed there since: the next
        // sync adopts those records.
        &[]
    } else {
        link.close().await;
        return Err(SyncError::ChainRollback);
    };
    for record in missing {
        link.send(&ClientFrame::PutAcl {
            record: record.clone(),
        })
        .await?;
        match link.recv().await? {
            RelayFrame::AclChanged { .. } => {}
            other => return Err(unexpected("AclChanged", &other)),
        }
    }
    share_keys(profile, &mut link, &state).await?;
    link.close().await;
    Ok(())
}

/// Wraps every epoch key this device holds for every other current member, so a device
/// that comes to the new relay later finds there the keys it lacks, whoever made them.
async fn share_keys(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
) -> Result<(), SyncError> {
    let space = state.space();
    let me = profile.device_id();
    for epoch in 0..=state.epoch() {
        let Some(key) = profile.sync_book().epoch_key(epoch)? else {
            continue;
        };
        for device in state.members().filter(|d| **d != me) {
            let Some(recipient) = state.recipient(device) else {
                continue;
            };
            let blob = lockbox::seal(&key, space.as_bytes(), epoch, recipient)
                .map_err(crate::Error::from)?;
            link.send(&ClientFrame::PutLockbox {
                device: *device,
                epoch,
                blob,
            })
            .await?;
        }
    }
    confirm(link).await
}

/// Folds the report of the first sync through the new relay into the one through the old.
fn absorb(into: &mut SyncReport, later: SyncReport) {
    into.pushed += later.pushed;
    into.received += later.received;
    into.rejected.extend(later.rejected);
    into.refused_changes.extend(later.refused_changes);
    into.cursor = later.cursor;
    into.waiting = later.waiting;
    // The old relay's seqs are behind this device now.
    into.withheld = later.withheld;
    into.relay_behind = later.relay_behind.or(into.relay_behind);
    into.not_countersigned = later.not_countersigned.or(into.not_countersigned.take());
    into.countersigned = later.countersigned.or(into.countersigned);
    into.refused_snapshot = later.refused_snapshot.or(into.refused_snapshot.take());
}
