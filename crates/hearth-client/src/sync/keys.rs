//! The space's keys during a sync: rotating to a new epoch after a removal, sharing a key
//! this device made (lockboxes for the other members), and fetching from this device's
//! lockboxes every epoch's key it lacks, trusting each only if it matches the check the
//! signed chain holds. Kept apart from the data exchange: keys are settled before any
//! envelope is sealed or opened.

use hearth_crypto::lockbox;
use hearth_proto::{AclState, ClientFrame, RejectCode, RelayFrame, SpaceId};

use super::SyncError;
use super::chain::{adopt_chain, append_record};
use super::link::{Link, unexpected};
use crate::Profile;

/// Brings this device in line with the relay's ACL `chain` after logging in: adopts it,
/// rotates the space's key if a removal asks for it, shares a key this device made with
/// the other members, and fetches every key it lacks. Returns the state to sync under.
pub(super) async fn settle(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    chain: &[Vec<u8>],
) -> Result<AclState, SyncError> {
    let mut state = adopt_chain(profile, chain, &link.limits)?;
    if state.needs_rotation() {
        state = rotate(profile, link, &state).await?;
    }
    share_key(profile, link, &state).await?;
    fetch_keys(profile, link, space, &state).await?;
    Ok(state)
}

/// Moves the space to a new epoch whose key only the current members receive.
pub(super) async fn rotate(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
) -> Result<AclState, SyncError> {
    let (record, key) = profile.sync_book().rotation(state)?;
    let epoch = state.epoch() + 1;
    // Kept before the relay can accept the record: from then on this device alone holds
    // the key until its lockboxes are up. If the record loses a race instead, the key's
    // check will not match the chain and `fetch_keys` replaces it.
    profile.sync_book_mut().put_epoch_key(epoch, &key)?;
    let state = append_record(profile, link, &record).await?;
    tracing::info!(epoch, "rotated the space's key");
    Ok(state)
}

/// If this device made the current epoch's key and has not shared it yet, wraps it for
/// every other member (lockboxes the relay keeps for them).
pub(super) async fn share_key(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
) -> Result<(), SyncError> {
    let epoch = state.epoch();
    if epoch == 0
        || state.epoch_by() != profile.device_id()
        || profile.sync_book().shared_epoch()? >= epoch
    {
        return Ok(());
    }
    let key = profile
        .sync_book()
        .epoch_key(epoch)?
        .ok_or_else(|| SyncError::KeyUnavailable {
            epoch,
            reason: "this device made it but no longer holds it".into(),
        })?;
    let space = state.space();
    let me = profile.device_id();
    for device in state.members().filter(|d| **d != me) {
        let Some(recipient) = state.recipient(device) else {
            continue;
        };
        let blob =
            lockbox::seal(&key, space.as_bytes(), epoch, recipient).map_err(crate::Error::from)?;
        link.send(&ClientFrame::PutLockbox {
            device: *device,
            epoch,
            blob,
        })
        .await?;
    }
    confirm(link).await?;
    profile.sync_book_mut().set_shared_epoch(epoch)?;
    Ok(())
}

/// PutLockbox has no success reply; a Ping proves the relay processed what came before it
/// (replies come in request order, and a refusal would arrive first).
pub(super) async fn confirm(link: &mut Link) -> Result<(), SyncError> {
    link.send(&ClientFrame::Ping { nonce: 1 }).await?;
    match link.recv().await? {
        RelayFrame::Pong { .. } => Ok(()),
        other => Err(unexpected("Pong", &other)),
    }
}

/// Makes sure this device holds every epoch's key the chain has reached, each matching the
/// check the chain holds for it; missing or mismatched ones come from this device's
/// lockboxes on the relay.
pub(super) async fn fetch_keys(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    state: &AclState,
) -> Result<(), SyncError> {
    for epoch in 0..=state.epoch() {
        let check = state.key_check(epoch).copied();
        if let Some(key) = profile.sync_book().epoch_key(epoch)?
            && Some(key.check(space, epoch)) == check
        {
            continue;
        }
        let unavailable = |reason: &str| SyncError::KeyUnavailable {
            epoch,
            reason: reason.to_owned(),
        };
        link.send(&ClientFrame::GetLockbox { epoch }).await?;
        let blob = match link.recv().await {
            Ok(RelayFrame::Lockbox { blob, .. }) => blob,
            Ok(other) => return Err(unexpected("Lockbox", &other)),
            Err(SyncError::Refused {
                code: RejectCode::Conflict,
                ..
            }) => {
                return Err(unavailable(
                    "the relay holds no key box for this device yet",
                ));
            }
            Err(e) => return Err(e),
        };
        let key = lockbox::open(&blob, &profile.secrets.device, space.as_bytes(), epoch)
            .map_err(|_| unavailable("the key box the relay holds does not open"))?;
        // age gives a lockbox no sender authentication: only the signed chain vouches.
        if Some(key.check(space, epoch)) != check {
            return Err(unavailable(
                "the key in the relay's key box is not the one the space's ACL names",
            ));
        }
        profile.sync_book_mut().put_epoch_key(epoch, &key)?;
    }
    Ok(())
}
