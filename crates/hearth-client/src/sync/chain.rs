//! The space's ACL chain as the relay holds it: adopting the relay's chain only if it
//! verifies and extends the one this device verified before, and appending a record this
//! device signed. Kept apart because it is the one place where the relay's word on who may
//! read and write the space becomes this device's. That includes its word that the space
//! is gone: a deletion counts only with the signature of a member of the chain this device
//! verified ([`DeletionJudge`]), and a relay that answers as if a space this device knows
//! well never existed is not given a new one ([`SyncError::SpaceMissing`]). Its word that
//! the space expired (nobody joined it) is taken only for a space whose one member, as far
//! as this device verified, is this device: then it holds everything the relay held.

use std::time::Duration;

use hearth_doc::authorship::People;
use hearth_proto::{
    AclBody, AclRecord, AclState, ClientFrame, DeviceId, Limits, RejectCode, RelayFrame, SpaceId,
    verify_delete_space,
};

use super::link::{DeletionClaim, Link, unexpected};
use super::{SpaceDeletion, SyncError};
use crate::sync_book::{Unverified, VerifiedChain, people_of};
use crate::{Profile, Whose};

/// What a relay's claim that the space was deleted is judged against: this device's
/// space, the chain it verified, and whose each device is (to say who deleted it).
#[derive(Debug, Clone)]
pub(crate) struct DeletionJudge {
    space: SpaceId,
    state: AclState,
    people: People,
    me: DeviceId,
}

impl DeletionJudge {
    /// The judge for `profile`'s space, whose verified chain is `state`.
    pub(super) fn new(
        profile: &Profile,
        space: SpaceId,
        state: AclState,
    ) -> Result<DeletionJudge, SyncError> {
        let records = decode_chain(&profile.sync_book().acl_records()?)?;
        Ok(DeletionJudge {
            space,
            state,
            people: people_of(&records),
            me: profile.device_id(),
        })
    }

    /// What a claim of deletion comes to: [`SyncError::SpaceDeleted`] if its proof holds
    /// against `judge`, else [`SyncError::DeletionUnproven`] saying why (with no judge:
    /// there is nothing to check it against).
    pub(crate) fn verdict(judge: Option<&DeletionJudge>, claim: &DeletionClaim) -> SyncError {
        let judged = judge.map_or_else(
            || {
                Err(
                    "this device holds no verified list of the space's devices to check it against"
                        .to_owned(),
                )
            },
            |j| j.judge(claim),
        );
        match judged {
            Ok(deletion) => SyncError::SpaceDeleted(deletion),
            Err(why) => SyncError::DeletionUnproven {
                claimed: claim.device,
                why,
            },
        }
    }

    /// The deletion `claim` proves, or why it proves nothing: it must name this space, carry
    /// the signature of the device it names over the deletion, and that device must be a
    /// member of the chain this device verified.
    fn judge(&self, claim: &DeletionClaim) -> Result<SpaceDeletion, String> {
        if claim.space != self.space {
            return Err("the deletion names another space".into());
        }
        verify_delete_space(
            &claim.relay_id,
            &claim.nonce,
            &claim.space,
            &claim.device,
            &claim.signature,
        )
        .map_err(|_| {
            format!(
                "the signature it shows for device {} does not verify",
                claim.device.short()
            )
        })?;
        if !self.state.is_member(&claim.device) {
            return Err(format!(
                "device {} is not one of the space's devices as this device knows them",
                claim.device.short()
            ));
        }
        let person = |d: &DeviceId| self.people.person(d.as_bytes());
        let whose = match person(&claim.device) {
            None => Whose::Unknown,
            Some(p) if Some(p) == person(&self.me) => Whose::Yours,
            Some(_) => Whose::Partners,
        };
        Ok(SpaceDeletion {
            by: claim.device,
            whose,
            this_device: claim.device == self.me,
            deleted_at_ms: claim.deleted_at_ms,
        })
    }
}

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

/// A login's outcome: the link, the space, and the relay's chain (not yet adopted; empty
/// if the relay does not hold the space).
pub(super) struct Admitted {
    pub(super) link: Link,
    pub(super) space: SpaceId,
    pub(super) chain: Vec<Vec<u8>>,
    /// The relay removed the space because nobody joined it, and this device, its only
    /// member, may create it again on this link.
    pub(super) expired: bool,
}

/// Whether the chain `records` is `me`'s alone: its Genesis names `me` and no device was
/// ever added (the relay's own test for a space to expire). Then everything in the space
/// came from this device, and a relay that lost it lost nothing this device lacks.
fn alone(records: &[AclRecord], me: &DeviceId) -> bool {
    let founded = matches!(
        records.first().map(|r| &r.body),
        Some(AclBody::Genesis { device, .. }) if device == me
    );
    founded
        && !records
            .iter()
            .any(|r| matches!(r.body, AclBody::AddDevice { .. }))
}

/// A new connection to this device's relay, logged in as this device (the space must be
/// on a relay, with a chain, or it is [`SyncError::NotPaired`]), with the limits the relay
/// announced saved. The relay must first prove the key pinned for its address (pinned now
/// at first contact), or it is [`SyncError::RelayKeyChanged`] and nothing is sent. Returns
/// the link, the space and the relay's chain, not yet adopted. A relay that says the space
/// expired ([`Admitted::expired`]) is believed only for a space of which this device is the
/// only member it verified; otherwise it is [`SyncError::SpaceMissing`].
/// The link judges any claim that the space was deleted against this device's chain: a
/// proven one is [`SyncError::SpaceDeleted`], one without a member's signature
/// [`SyncError::DeletionUnproven`]; and a relay that says the space does not exist, when
/// this device verified more of it than its Genesis, is [`SyncError::SpaceMissing`]
/// (an empty chain is answered with `CreateSpace` only for a space that is just this
/// device's so far). Nothing else is saved before the chain is adopted.
pub(super) async fn login(profile: &mut Profile, timeout: Duration) -> Result<Admitted, SyncError> {
    let relay = profile.sync_book().relay()?.ok_or(SyncError::NotPaired)?;
    let state = profile
        .sync_book()
        .acl_state()?
        .ok_or(SyncError::NotPaired)?;
    let known = state.len();
    let space = profile.space()?;
    let only_me = alone(
        &decode_chain(&profile.sync_book().acl_records()?)?,
        &profile.device_id(),
    );
    let judge = DeletionJudge::new(profile, space, state)?;
    let trust = profile.relay_trust()?;
    let mut link = Link::connect(&relay, &trust, timeout).await?;
    if let Err(e) = super::trust::check_pinned(profile, &link) {
        link.close().await;
        return Err(e);
    }
    link.judge = Some(judge);
    let (chain, expired) = match link.login(&profile.secrets.device, &space, false).await {
        Ok(chain) => (chain, false),
        Err(SyncError::Refused {
            code: RejectCode::SpaceExpired,
            ..
        }) if only_me => (Vec::new(), true),
        Err(SyncError::Refused {
            code: RejectCode::SpaceExpired,
            ..
        }) => {
            tracing::warn!("the relay says a space with another member expired; not believed");
            link.close().await;
            return Err(SyncError::SpaceMissing);
        }
        Err(e) => return Err(e),
    };
    profile.sync_book_mut().set_relay_limits(&link.limits)?;
    if !expired && missing(&chain, known) {
        link.close().await;
        return Err(SyncError::SpaceMissing);
    }
    Ok(Admitted {
        link,
        space,
        chain,
        expired,
    })
}

/// Whether a relay's `chain` for a space of which this device verified `known` records
/// says the space is missing: the relay holds nothing, though this device holds more
/// than the Genesis it would create the space with again (a chain that could never
/// extend this device's).
fn missing(chain: &[Vec<u8>], known: u64) -> bool {
    chain.is_empty() && known > 1
}

/// Logs in as this device and says whether its space still stands on the relay, changing
/// nothing but the limits the relay announced (saved as on every login): `Ok` if the
/// relay let it in (or holds no space yet for a device that only has its Genesis), else
/// why not (e.g. [`SyncError::SpaceDeleted`]). What `hearth status` shows.
///
/// # Errors
/// A [`SyncError`]: unreachable, not admitted, deleted, missing…
pub async fn check_space(profile: &mut Profile, timeout: Duration) -> Result<(), SyncError> {
    let admitted = login(profile, timeout).await?;
    admitted.link.close().await;
    if admitted.expired {
        return Err(SyncError::SpaceExpired);
    }
    Ok(())
}

/// A new connection, logged in as this device, with the relay's chain adopted.
pub(super) async fn reconnect(profile: &mut Profile, timeout: Duration) -> Result<Link, SyncError> {
    let Admitted {
        link,
        chain,
        expired,
        ..
    } = login(profile, timeout).await?;
    if expired {
        // Only `sync_once` puts an expired space back.
        link.close().await;
        return Err(SyncError::SpaceExpired);
    }
    adopt_chain(profile, &chain, &link.limits)?;
    Ok(link)
}

/// Fetches the relay's ACL and adopts it if it verifies and extends the local one, without
/// moving any data: what `hearth device list` needs to be current.
///
/// # Errors
/// A [`SyncError`]; the local chain is unchanged then.
pub async fn refresh_acl(profile: &mut Profile, timeout: Duration) -> Result<AclState, SyncError> {
    let Admitted { link, chain, .. } = login(profile, timeout).await?;
    let limits = link.limits;
    link.close().await;
    if chain.is_empty() {
        // The space is not on the relay yet: the local chain is all there is.
        return profile.sync_book().acl_state()?.ok_or(SyncError::NotPaired);
    }
    adopt_chain(profile, &chain, &limits)
}

#[cfg(test)]
mod tests {
    use hearth_crypto::DeviceKeys;
    use hearth_proto::delete_space_message;

    use super::*;
    use crate::sync::fixtures::Couple;

    fn judge(c: &Couple) -> DeletionJudge {
        DeletionJudge {
            space: c.space,
            state: c.state(),
            people: people_of(&c.records),
            me: c.owner.device_id(),
        }
    }

    /// `by`'s deletion of `space`, signed for the challenge `[1; 16]`, `[2; 32]`.
    fn claim(by: &DeviceKeys, space: SpaceId) -> DeletionClaim {
        DeletionClaim {
            space,
            device: by.device_id(),
            relay_id: [1; 16],
            nonce: [2; 32],
            signature: by.sign(&delete_space_message(&[1; 16], &[2; 32], &space)),
            deleted_at_ms: 1_796_644_800_000,
        }
    }

    fn unproven(verdict: SyncError) -> String {
        match verdict {
            SyncError::DeletionUnproven { why, .. } => why,
            other => panic!("expected an unproven deletion, got {other}"),
        }
    }

    #[test]
    fn a_deletion_signed_by_a_member_is_proven_and_names_the_device() {
        let c = Couple::new();
        let verdict = DeletionJudge::verdict(Some(&judge(&c)), &claim(&c.owner, c.space));
        let SyncError::SpaceDeleted(deletion) = verdict else {
            panic!("expected a proven deletion, got {verdict}");
        };
        assert_eq!(deletion.by, c.owner.device_id());
        assert!(deletion.this_device);
        assert_eq!(deletion.whose, Whose::Yours);
        assert_eq!(deletion.day(), "2026-12-07");
    }

    #[test]
    fn a_deletion_without_a_members_valid_signature_proves_nothing() {
        let c = Couple::new();
        let j = judge(&c);
        let mut garbage = claim(&c.owner, c.space);
        garbage.signature = [7; 64];
        let mut other_challenge = claim(&c.owner, c.space);
        other_challenge.nonce = [9; 32];
        let cases = [
            (garbage, "does not verify"),
            (other_challenge, "does not verify"),
            (
                claim(&c.stranger, c.space),
                "not one of the space's devices",
            ),
            (claim(&c.removed, c.space), "not one of the space's devices"),
            (
                claim(&c.owner, SpaceId::from_bytes([8; 16])),
                "another space",
            ),
        ];
        for (claim, why) in cases {
            let said = unproven(DeletionJudge::verdict(Some(&j), &claim));
            assert!(said.contains(why), "{said}");
        }
        let said = unproven(DeletionJudge::verdict(None, &claim(&c.owner, c.space)));
        assert!(said.contains("no verified list"), "{said}");
    }

    #[test]
    fn only_a_space_whose_one_member_is_this_device_may_have_expired() {
        let c = Couple::new();
        let me = c.owner.device_id();
        assert!(alone(&c.records[..1], &me));
        assert!(alone(&c.records[..2], &me), "an invite nobody used");
        assert!(!alone(&c.records[..1], &c.stranger.device_id()));
        assert!(
            !alone(&c.records, &me),
            "a device joined, though it was removed since"
        );
        assert!(!alone(&[], &me));
    }

    #[test]
    fn only_a_relay_with_nothing_for_a_space_this_device_knows_beyond_its_genesis_is_missing_it() {
        assert!(missing(&[], 2));
        assert!(!missing(&[], 1), "a space only this device has: create it");
        assert!(!missing(&[vec![0]], 5), "a chain: adopt_chain judges it");
    }
}
