//! The space's ACL chain as the relay holds it: adopting the relay's chain only if it
//! verifies and extends the one this device verified before, and appending a record this
//! device signed. Kept apart because it is the one place where the relay's word on who may
//! read and write the space becomes this device's.

use std::time::Duration;

use hearth_proto::{AclRecord, AclState, ClientFrame, Limits, RejectCode, RelayFrame, SpaceId};

use super::SyncError;
use super::link::{Link, unexpected};
use crate::Profile;
use crate::sync_book::{Unverified, VerifiedChain};

pub(super) fn decode_chain(records: &[Vec<u8>]) -> Result<Vec<AclRecord>, SyncError> {
    records
        .iter()
        .map(|r| AclRecord::decode(r))
        .collect::<Result<_, _>>()
        .map_err(SyncError::InvalidChain)
}

/// Takes the relay's chain if it verifies (under the `limits` the relay announced) and
/// extends the one this device already has: a relay can withhold records, but it cannot
/// make a device forget or rewrite one.
pub(super) fn adopt_chain(
    profile: &mut Profile,
    relay_chain: &[Vec<u8>],
    limits: &Limits,
) -> Result<AclState, SyncError> {
    let local = profile.sync_book().acl_records()?;
    if relay_chain.len() < local.len() || relay_chain[..local.len()] != local[..] {
        return Err(SyncError::ChainRollback);
    }
    let chain = VerifiedChain::verify(relay_chain.to_vec(), limits).map_err(|e| match e {
        Unverified::Undecodable(e) | Unverified::Refused(e) => SyncError::InvalidChain(e),
    })?;
    if relay_chain.len() > local.len() {
        profile.sync_book_mut().replace_acl(&chain)?;
    }
    Ok(chain.into_state())
}

/// Offers `record` to the relay and, once it is accepted, appends it to the local chain.
/// A record that lost the race for its place in the chain (another device changed the ACL
/// first) is [`SyncError::AclMoved`].
pub(super) async fn append_record(
    profile: &mut Profile,
    link: &mut Link,
    record: &AclRecord,
) -> Result<AclState, SyncError> {
    let bytes = record.encode();
    link.send(&ClientFrame::PutAcl {
        record: bytes.clone(),
    })
    .await?;
    match link.recv().await {
        Ok(RelayFrame::AclChanged { .. }) => {}
        Ok(other) => return Err(unexpected("AclChanged", &other)),
        Err(SyncError::Refused {
            code: RejectCode::Conflict,
            ..
        }) => return Err(SyncError::AclMoved),
        Err(e) => return Err(e),
    }
    let mut chain = profile.sync_book().acl_records()?;
    chain.push(bytes);
    adopt_chain(profile, &chain, &link.limits)
}

/// A new connection to this device's relay, logged in as this device (the space must be
/// on a relay, with a chain, or it is [`SyncError::NotPaired`]), with the limits the relay
/// announced saved. Returns the link, the space and the relay's chain, not yet adopted.
pub(super) async fn login(
    profile: &mut Profile,
    timeout: Duration,
) -> Result<(Link, SpaceId, Vec<Vec<u8>>), SyncError> {
    let relay = profile.sync_book().relay()?.ok_or(SyncError::NotPaired)?;
    profile
        .sync_book()
        .acl_state()?
        .ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;
    let mut link = Link::connect(&relay, timeout).await?;
    let chain = link.login(&profile.secrets.device, &space, false).await?;
    profile.sync_book_mut().set_relay_limits(&link.limits)?;
    Ok((link, space, chain))
}

/// A new connection, logged in as this device, with the relay's chain adopted.
pub(super) async fn reconnect(profile: &mut Profile, timeout: Duration) -> Result<Link, SyncError> {
    let (link, _, chain) = login(profile, timeout).await?;
    adopt_chain(profile, &chain, &link.limits)?;
    Ok(link)
}

/// Fetches the relay's ACL and adopts it if it verifies and extends the local one, without
/// moving any data: what `hearth device list` needs to be current.
///
/// # Errors
/// A [`SyncError`]; the local chain is unchanged then.
pub async fn refresh_acl(profile: &mut Profile, timeout: Duration) -> Result<AclState, SyncError> {
    let relay = profile.sync_book().relay()?.ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;
    let mut link = Link::connect(&relay, timeout).await?;
    let chain = link.login(&profile.secrets.device, &space, false).await;
    let limits = link.limits;
    link.close().await;
    let chain = chain?;
    profile.sync_book_mut().set_relay_limits(&limits)?;
    if chain.is_empty() {
        // The space is not on the relay yet: the local chain is all there is.
        return profile.sync_book().acl_state()?.ok_or(SyncError::NotPaired);
    }
    adopt_chain(profile, &chain, &limits)
}
