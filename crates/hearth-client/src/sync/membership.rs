//! Changing who is in the space: joining with an invite code, minting an invite, and
//! removing a device (which the next sync follows with a key rotation). Each is a short
//! conversation of its own around the ACL chain, apart from the routine exchange.

use std::time::Duration;

use hearth_proto::{AclBody, AclState, ClientFrame, DeviceId, RejectCode, RelayFrame, SpaceId};

use super::chain::{append_record, decode_chain, reconnect};
use super::exchange::{exchange, sync_once};
use super::keys::{confirm, settle};
use super::link::{Link, now_ms, unexpected};
use super::trust::{check_invited, check_pinned};
use super::{InviteFault, SyncError, SyncReport};
use crate::{Error, Profile};

/// Why joining a space failed. Nothing was created locally unless joining succeeded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The invite has expired.
    #[error("this invite has expired; ask for a new one with `hearth invite`")]
    Expired,
    /// The invite was already used (by you on another device, or by someone else).
    #[error("this invite was already used; ask for a new one with `hearth invite`")]
    Used,
    /// The invite was cancelled: the device that made it was removed, or the space's key
    /// changed since (its key box holds only the old one).
    #[error(
        "this invite was cancelled when the space's devices changed; ask for a new one with `hearth invite`"
    )]
    Revoked,
    /// The relay does not know the invite (never uploaded, revoked, or the wrong relay).
    #[error("the relay does not know this invite; ask for a new one with `hearth invite`")]
    Unknown,
    /// A partner invite needs the joiner's name.
    #[error("joining as a partner needs your name: pass --name NAME")]
    NameNeeded,
    /// The sync part failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<Error> for JoinError {
    fn from(e: Error) -> Self {
        JoinError::Sync(SyncError::Profile(e))
    }
}

/// The relay's word on an invite, as the reason a join failed.
pub(super) fn invite_refusal(e: SyncError) -> JoinError {
    match e {
        SyncError::Refused {
            code: RejectCode::InviteUsed,
            ..
        } => JoinError::Used,
        SyncError::Refused {
            code: RejectCode::InviteExpired,
            ..
        } => JoinError::Expired,
        SyncError::Refused {
            code: RejectCode::InviteRevoked,
            ..
        } => JoinError::Revoked,
        other => JoinError::Sync(other),
    }
}

/// What joining did.
#[derive(Debug)]
pub struct Joined {
    /// The new profile, holding the space's history.
    pub profile: Profile,
    /// Whether this device joined as the partner (rather than another device of the
    /// inviter).
    pub as_partner: bool,
    /// The first sync's report.
    pub report: SyncReport,
}

/// Joins the space of `code` from this device, creating the profile in `home` once the
/// relay has accepted this device: checks the relay's key against the fingerprint the code
/// carries (and pins it), logs in with the invite key, takes the epoch key from
/// the invite's lockbox, appends this device to the ACL (signed by the device and the
/// invite), then syncs the whole history. As the partner, adds `name` to the space.
///
/// # Errors
/// A [`JoinError`]; `home` is left untouched unless the relay accepted the device.
pub async fn join(
    home: &std::path::Path,
    code: &hearth_crypto::InviteCode,
    name: Option<&str>,
    protection: hearth_crypto::Protection,
    timeout: Duration,
) -> Result<Joined, JoinError> {
    join_trusting(home, code, name, protection, None, timeout).await
}

/// [`join`], trusting `ca` for the relay's certificate besides the machine's roots; the
/// new profile keeps it for every later connection.
///
/// # Errors
/// As [`join`]; a certificate `ca` and the machine do not trust is
/// [`SyncError::Tls`], with nothing created.
pub async fn join_trusting(
    home: &std::path::Path,
    code: &hearth_crypto::InviteCode,
    name: Option<&str>,
    protection: hearth_crypto::Protection,
    ca: Option<&crate::RelayCa>,
    timeout: Duration,
) -> Result<Joined, JoinError> {
    use hearth_proto::{InviteId, InviteRole};

    let trust = crate::RelayTrust::new(ca);

    let space = SpaceId::from_bytes(code.space());
    let invite = code.keys();
    let invite_id = InviteId::from_bytes(invite.invite_id());

    let mut link = Link::connect(code.relay(), &trust, timeout).await?;
    // Before the invite key is shown to it: the relay the inviter knows, or (for a code
    // from before fingerprints) whichever relay is met first, pinned below.
    if let Err(e) = check_invited(code.relay_key(), &link) {
        link.close().await;
        return Err(e.into());
    }
    let relay_key = link.relay_key;
    let chain = match link.login(&invite, &space, true).await {
        Ok(chain) => chain,
        Err(SyncError::Refused {
            code: RejectCode::Unauthorized,
            ..
        }) => return Err(JoinError::Unknown),
        Err(e) => return Err(invite_refusal(e)),
    };
    let state = AclState::from_records(&decode_chain(&chain)?, &link.limits)
        .map_err(SyncError::InvalidChain)?;
    let info = state.invite(&invite_id).ok_or(JoinError::Unknown)?;
    if info.used_by.is_some() {
        return Err(JoinError::Used);
    }
    if info.revoked {
        return Err(JoinError::Revoked);
    }
    if !info.is_usable(now_ms()) {
        return Err(JoinError::Expired);
    }
    let as_partner = info.role == InviteRole::Partner;
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if as_partner && name.is_none() {
        return Err(JoinError::NameNeeded);
    }
    let epoch = state.epoch();
    link.send(&ClientFrame::GetLockbox { epoch }).await?;
    let blob = match link.recv().await? {
        RelayFrame::Lockbox { blob, .. } => blob,
        other => return Err(unexpected("Lockbox", &other).into()),
    };
    let (keys, inviter) = invite
        .open_lockbox(&blob, space.as_bytes(), epoch)
        .map_err(|_| SyncError::BadInvite(InviteFault::KeyBoxSealed))?;
    // The key box is only as good as the chain says: each key must match its epoch's check.
    let vouched = (0..=epoch)
        .zip(&keys)
        .all(|(e, key)| state.key_check(e) == Some(&key.check(&space, e)));
    if !vouched {
        return Err(SyncError::BadInvite(InviteFault::KeysNotInChain).into());
    }
    // Generated before the person id: a partner's id is bound to the person key its
    // device founds (the device consuming the partner invite), as the reading side
    // derives it from the signed chain.
    let secrets = hearth_crypto::ProfileSecrets::generate().map_err(Error::from)?;
    let person = match (as_partner, inviter) {
        (true, _) => {
            hearth_doc::PersonId::of(&hearth_doc::authorship::PersonKey::from_founding_device(
                *secrets.device.device_id().as_bytes(),
            ))
        }
        (false, Some(p)) => p
            .parse()
            .map_err(|_| SyncError::BadInvite(InviteFault::InvalidPerson))?,
        (false, None) => {
            return Err(SyncError::BadInvite(InviteFault::MissingPerson).into());
        }
    };

    let record = hearth_crypto::sign_record(
        state.head(),
        AclBody::AddDevice {
            device: secrets.device.device_id(),
            recipient: secrets.device.recipient_bytes().map_err(Error::from)?,
            invite: invite_id,
        },
        &[&secrets.device, &invite],
    )
    .map_err(Error::from)?;
    link.send(&ClientFrame::PutAcl {
        record: record.encode(),
    })
    .await?;
    match link.recv().await {
        Ok(RelayFrame::AclChanged { .. }) => {}
        Ok(other) => return Err(unexpected("AclChanged", &other).into()),
        Err(e) => return Err(invite_refusal(e)),
    }
    link.close().await;

    // The relay accepted this device: from here on the profile exists.
    let mut profile =
        Profile::create_joining(home, protection, secrets, &space, &person, code.relay(), ca)?;
    for (e, key) in (0..).zip(&keys) {
        profile.sync_book_mut().put_epoch_key(e, key)?;
    }
    profile
        .sync_book_mut()
        .pin_relay_key(code.relay(), &relay_key, now_ms())?;
    let mut link = Link::connect(code.relay(), &trust, timeout).await?;
    check_pinned(&mut profile, &link)?;
    let chain = link.login(&profile.secrets.device, &space, false).await?;
    profile.sync_book_mut().set_relay_limits(&link.limits)?;
    let state = settle(&mut profile, &mut link, &space, &chain).await?;
    let mut report = exchange(&mut profile, &mut link, &space, &state).await?;
    link.close().await;
    if let Some(name) = name.filter(|_| as_partner) {
        let now = hearth_doc::Millis::now();
        profile.write(|doc| doc.add_person(&person, name, now))?;
        let pushed = sync_once(&mut profile, timeout).await?;
        report.pushed += pushed.pushed;
        report.received += pushed.received;
        report.rejected.extend(pushed.rejected);
        report.refused_changes.extend(pushed.refused_changes);
        report.cursor = pushed.cursor;
        report.waiting = pushed.waiting;
    }
    Ok(Joined {
        profile,
        as_partner,
        report,
    })
}

/// Mints an invite and hands it to the relay (the signed Invite record and the invite's key
/// box), so the other device can join while this one is offline. Syncs first, so the space
/// exists on the relay and the record follows its newest ACL head.
///
/// # Errors
/// A [`SyncError`]; no code is returned unless the relay accepted the invite.
pub async fn invite(
    profile: &mut Profile,
    role: hearth_proto::InviteRole,
    ttl: Duration,
    timeout: Duration,
) -> Result<hearth_crypto::InviteCode, SyncError> {
    sync_once(profile, timeout).await?;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let minted = profile.sync_book().mint_invite(role, ttl_ms, now_ms())?;
    let mut link = reconnect(profile, timeout).await?;
    append_record(profile, &mut link, &minted.record).await?;
    link.send(&ClientFrame::PutLockbox {
        device: DeviceId::from_bytes(minted.code.keys().invite_id()),
        epoch: minted.epoch,
        blob: minted.lockbox,
    })
    .await?;
    confirm(&mut link).await?;
    link.close().await;
    Ok(minted.code)
}

/// Removes `device` from the space and moves the space to a new key that only the
/// remaining devices receive, so it can read nothing written afterwards (what it already
/// had stays readable to it: there is no forward secrecy). Syncs first, so the removal
/// follows the relay's newest ACL; then appends the RemoveDevice record; then syncs again,
/// which rotates the key and shares it. A device may remove itself (leaving); the others
/// rotate when they next sync.
///
/// # Errors
/// A [`SyncError`]; [`SyncError::Profile`] with [`Error::Proto`] if the chain refuses the
/// removal (not a member, or the last device).
pub async fn remove_device(
    profile: &mut Profile,
    device: DeviceId,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
    sync_once(profile, timeout).await?;
    let record = profile.sync_book().removal(device)?;
    let mut link = reconnect(profile, timeout).await?;
    let accepted = append_record(profile, &mut link, &record).await;
    link.close().await;
    accepted?;
    if device == profile.device_id() {
        return Ok(SyncReport::default());
    }
    sync_once(profile, timeout).await
}
