//! The space's ACL chain on this device: storing it only once verified, starting a space
//! on a relay, minting invites, listing and removing devices. These steps only prepare
//! signed records and sealed keys on this device; the sync engine uploads them, and the
//! local ACL chain changes only when the relay has accepted a record (so the two chains
//! never diverge).

use hearth_crypto::{EpochKey, InviteCode, sign_record};
use hearth_doc::authorship::{People, PersonKey};
use hearth_proto::{
    AclBody, AclRecord, AclState, DeviceId, InviteId, InviteRole, Limits, ProtoError,
};

use std::ops::{Deref, DerefMut};

use super::SyncBook;
use crate::store;
use crate::{Error, Profile};

/// An invite ready to hand out: the code for the other person, and what the relay needs.
#[derive(Debug)]
pub struct MintedInvite {
    /// The code to share out of band.
    pub code: InviteCode,
    /// The signed Invite record to append to the space's ACL.
    pub record: AclRecord,
    /// Every epoch's key up to the current one, sealed for whoever holds the code.
    pub lockbox: Vec<u8>,
    /// The epoch the lockbox is for.
    pub epoch: u32,
}

/// An ACL chain that verified. Only [`VerifiedChain::verify`] makes one, and it runs the
/// records through `AclState::from_records`, so code that would store a chain nobody
/// checked does not compile.
#[derive(Debug)]
pub(crate) struct VerifiedChain {
    records: Vec<Vec<u8>>,
    state: AclState,
}

/// Why a chain did not verify.
#[derive(Debug)]
pub(crate) enum Unverified {
    /// A record does not decode.
    Undecodable(ProtoError),
    /// The records decode, but the chain breaks one of its rules.
    Refused(ProtoError),
}

impl From<Unverified> for Error {
    fn from(e: Unverified) -> Self {
        match e {
            Unverified::Undecodable(e) | Unverified::Refused(e) => Error::Proto(e),
        }
    }
}

impl VerifiedChain {
    /// Decodes `records` and replays them from the genesis under `limits`.
    ///
    /// # Errors
    /// [`Unverified`] saying whether a record did not decode or the chain broke a rule.
    pub(crate) fn verify(records: Vec<Vec<u8>>, limits: &Limits) -> Result<Self, Unverified> {
        let decoded = records
            .iter()
            .map(|r| AclRecord::decode(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Unverified::Undecodable)?;
        let state = AclState::from_records(&decoded, limits).map_err(Unverified::Refused)?;
        Ok(VerifiedChain { records, state })
    }

    /// The ACL the chain ends in.
    pub(crate) fn into_state(self) -> AclState {
        self.state
    }
}

/// One device of the space, as `hearth device list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its device id.
    pub id: DeviceId,
    /// Whether it is this device.
    pub this_device: bool,
    /// Whether it belongs to the same person as this device (rather than the partner).
    pub mine: bool,
}

/// Which person each device of a space belongs to, from its ACL records (a chain that
/// verified), for the authorship rule (`hearth_doc::authorship`).
///
/// People are not in the ACL, but who invited whom is: the device that created the space
/// founds one person and the device that consumed the partner invite the other, and a
/// device that consumed an own-device invite belongs to the person of the device that
/// issued it. Removed devices keep their person, so what they wrote stays theirs. Nothing
/// a profile says about its own person counts here. The rule is hearth-proto's
/// ([`hearth_proto::people`], the same as `AclState::person_of`), which the relay uses too.
pub(crate) fn people_of(records: &[AclRecord]) -> People {
    hearth_proto::people(records)
        .into_iter()
        .map(|(device, founder)| {
            (
                *device.as_bytes(),
                PersonKey::from_founding_device(*founder.as_bytes()),
            )
        })
        .collect()
}

impl<P: Deref<Target = Profile>> SyncBook<P> {
    /// The space's ACL chain as last verified, in order.
    ///
    /// # Errors
    /// A database error.
    pub fn acl_records(&self) -> Result<Vec<Vec<u8>>, Error> {
        store::acl::records(&self.profile.conn)
    }

    /// The space's ACL as last verified on this device, if the space is on a relay.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored chain does not verify.
    pub fn acl_state(&self) -> Result<Option<AclState>, Error> {
        let records = self.acl_records()?;
        if records.is_empty() {
            return Ok(None);
        }
        VerifiedChain::verify(records, &self.relay_limits()?)
            .map(|chain| Some(chain.into_state()))
            .map_err(|e| match e {
                Unverified::Undecodable(e) => self
                    .profile
                    .corrupt(format!("its ACL record does not decode: {e}")),
                Unverified::Refused(e) => self
                    .profile
                    .corrupt(format!("its ACL chain does not verify: {e}")),
            })
    }

    /// Mints a one-time invite for a partner or another device of yours, valid for
    /// `ttl_ms` from `now_ms`.
    ///
    /// # Errors
    /// [`Error::NotPaired`] if the space is not on a relay yet; [`Error::Corrupt`] if the
    /// current epoch's key is missing.
    pub(crate) fn mint_invite(
        &self,
        role: InviteRole,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<MintedInvite, Error> {
        let state = self.acl_state()?.ok_or(Error::NotPaired)?;
        let relay = self.relay()?.ok_or(Error::NotPaired)?;
        let epoch = state.epoch();
        // The joiner needs every epoch's key to read the whole history.
        let keys = (0..=epoch)
            .map(|e| {
                self.epoch_key(e)?
                    .ok_or_else(|| self.profile.corrupt(format!("it has no key for epoch {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let space = self.profile.space()?;
        let mut code = InviteCode::generate(&relay, *space.as_bytes())?;
        // The joiner checks the relay's key from its first connection on.
        if let Some(key) = self.relay_key(&relay)? {
            code = code.with_relay_key(hearth_proto::Fingerprint::of(&key));
        }
        let invite = code.keys();
        let record = sign_record(
            state.head(),
            AclBody::Invite {
                invite: InviteId::from_bytes(invite.invite_id()),
                expires_at_ms: now_ms.saturating_add(ttl_ms),
                role,
                by: self.profile.device_id(),
            },
            &[&self.profile.secrets.device],
        )?;
        let person = (role == InviteRole::OwnDevice).then(|| self.profile.person_id().as_str());
        let lockbox = invite.seal_lockbox(&keys, space.as_bytes(), person)?;
        Ok(MintedInvite {
            code,
            record,
            lockbox,
            epoch,
        })
    }

    /// The space's current devices in the order they joined, each marked as this device's
    /// person's or the partner's (by `people_of`).
    ///
    /// # Errors
    /// [`Error::NotPaired`] if the space is not on a relay; [`Error::Corrupt`] if the stored
    /// chain does not verify.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, Error> {
        let state = self.acl_state()?.ok_or(Error::NotPaired)?;
        let records = self
            .acl_records()?
            .iter()
            .map(|r| AclRecord::decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let people = people_of(&records);
        let me = self.profile.device_id();
        let my_person = people.person(me.as_bytes());
        Ok(records
            .iter()
            .filter_map(|record| match record.body {
                AclBody::Genesis { device, .. } | AclBody::AddDevice { device, .. } => Some(device),
                _ => None,
            })
            .filter(|d| state.is_member(d))
            .map(|id| DeviceInfo {
                id,
                this_device: id == me,
                mine: people.person(id.as_bytes()) == my_person,
            })
            .collect())
    }

    /// Signs the removal of `device` from the space by this device, following the ACL as
    /// last verified here (the caller syncs first, so it follows the relay's head).
    ///
    /// # Errors
    /// [`Error::NotPaired`]; [`Error::Proto`] if the chain refuses it (not a member, the
    /// last device).
    pub(crate) fn removal(&self, device: DeviceId) -> Result<AclRecord, Error> {
        let mut state = self.acl_state()?.ok_or(Error::NotPaired)?;
        // What of the removed device's writing counts: everything this device holds from
        // it (applied, or verified and waiting for earlier changes), or, when leaving,
        // everything it sealed. Its envelopes with higher counters are refused from now on.
        let last_counter = if device == self.profile.device_id() {
            self.last_counter()?
        } else {
            crate::store::envelopes::highest_held(&self.profile.conn, &device.as_bytes()[..])?
                .map_or(0, |c| u64::try_from(c).unwrap_or(0))
        };
        let record = sign_record(
            state.head(),
            AclBody::RemoveDevice {
                device,
                by: self.profile.device_id(),
                last_counter,
            },
            &[&self.profile.secrets.device],
        )?;
        // Checked here so a refusal names its rule before anything goes to the relay.
        state.replay(&record)?;
        Ok(record)
    }

    /// A fresh key for the next epoch after `state`, and the RotateEpoch record that
    /// commits to it, signed by this device.
    ///
    /// # Errors
    /// [`Error::Crypto`] if no key could be drawn.
    pub(crate) fn rotation(&self, state: &AclState) -> Result<(AclRecord, EpochKey), Error> {
        let epoch = state.epoch() + 1;
        let key = EpochKey::generate()?;
        let record = sign_record(
            state.head(),
            AclBody::RotateEpoch {
                epoch,
                key_check: key.check(&state.space(), epoch),
                by: self.profile.device_id(),
            },
            &[&self.profile.secrets.device],
        )?;
        Ok((record, key))
    }
}

impl<P: DerefMut<Target = Profile>> SyncBook<P> {
    /// Replaces the stored ACL chain with `chain`: only a chain that verified can be kept.
    ///
    /// # Errors
    /// A database error; the old chain is kept then.
    pub(crate) fn replace_acl(&mut self, chain: &VerifiedChain) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        store::acl::replace_records(&tx, &chain.records)?;
        tx.commit()?;
        Ok(())
    }

    /// Puts this profile's space on `relay`: a fresh epoch-0 key and the Genesis record,
    /// both kept here until the first sync uploads them.
    ///
    /// # Errors
    /// [`Error::AlreadyPaired`] if the space already has an ACL.
    pub fn start_space(&mut self, relay: &str) -> Result<AclRecord, Error> {
        if !self.acl_records()?.is_empty() {
            return Err(Error::AlreadyPaired);
        }
        let space = self.profile.space()?;
        let key = EpochKey::generate()?;
        let genesis = sign_record(
            [0; 32],
            AclBody::Genesis {
                space,
                device: self.profile.device_id(),
                recipient: self.profile.secrets.device.recipient_bytes()?,
                epoch: 0,
                key_check: key.check(&space, 0),
            },
            &[&self.profile.secrets.device],
        )?;
        self.put_epoch_key(0, &key)?;
        let chain = VerifiedChain::verify(vec![genesis.encode()], &self.relay_limits()?)?;
        self.replace_acl(&chain)?;
        self.set_relay(relay)?;
        Ok(genesis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_crypto::Protection;
    use hearth_doc::Millis;

    #[test]
    fn people_follow_who_invited_whom_in_a_signed_chain_and_removed_devices_keep_theirs() {
        use hearth_crypto::DeviceKeys;
        use hearth_proto::SpaceId;

        let space = SpaceId::from_bytes([7; 16]);
        let laptop = DeviceKeys::generate().unwrap();
        let phone = DeviceKeys::generate().unwrap();
        let tablet = DeviceKeys::generate().unwrap();
        let desktop = DeviceKeys::generate().unwrap();
        let key = EpochKey::generate().unwrap();
        let mut records = vec![
            sign_record(
                [0; 32],
                AclBody::Genesis {
                    space,
                    device: laptop.device_id(),
                    recipient: laptop.recipient_bytes().unwrap(),
                    epoch: 0,
                    key_check: key.check(&space, 0),
                },
                &[&laptop],
            )
            .unwrap(),
        ];
        // `by` invites `joining` with `role`: the Invite and the AddDevice that consumes it.
        let mut join = |by: &DeviceKeys, joining: &DeviceKeys, role: InviteRole| {
            let code = InviteCode::generate("ws://relay.invalid", *space.as_bytes()).unwrap();
            let invite = code.keys();
            let id = InviteId::from_bytes(invite.invite_id());
            let offer = sign_record(
                records.last().unwrap().hash(),
                AclBody::Invite {
                    invite: id,
                    expires_at_ms: u64::MAX,
                    role,
                    by: by.device_id(),
                },
                &[by],
            )
            .unwrap();
            let add = sign_record(
                offer.hash(),
                AclBody::AddDevice {
                    device: joining.device_id(),
                    recipient: joining.recipient_bytes().unwrap(),
                    invite: id,
                },
                &[joining, &invite],
            )
            .unwrap();
            records.extend([offer, add]);
        };
        join(&laptop, &phone, InviteRole::Partner);
        join(&phone, &tablet, InviteRole::OwnDevice);
        join(&laptop, &desktop, InviteRole::OwnDevice);
        let removal = sign_record(
            records.last().unwrap().hash(),
            AclBody::RemoveDevice {
                device: desktop.device_id(),
                by: laptop.device_id(),
                last_counter: 0,
            },
            &[&laptop],
        )
        .unwrap();
        records.push(removal);
        let encoded = records.iter().map(AclRecord::encode).collect();
        VerifiedChain::verify(encoded, &Limits::default()).unwrap();

        let people = people_of(&records);
        let person = |d: &DeviceKeys| people.person(d.device_id().as_bytes());
        let creator = PersonKey::from_founding_device(*laptop.device_id().as_bytes());
        let partner = PersonKey::from_founding_device(*phone.device_id().as_bytes());
        assert_eq!(person(&laptop), Some(creator));
        assert_eq!(
            person(&desktop),
            Some(creator),
            "removed, still the creator's"
        );
        assert_eq!(person(&phone), Some(partner));
        assert_eq!(
            person(&tablet),
            Some(partner),
            "added by the partner's phone"
        );
        assert_eq!(people.len(), 4);
    }

    #[test]
    fn a_started_space_mints_invites_that_open_to_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut p =
            Profile::create(&dir.path().join("p"), "Sam", Protection::None, Millis(1)).unwrap();
        assert!(p.sync_book().acl_state().unwrap().is_none());
        assert!(matches!(
            p.sync_book().mint_invite(InviteRole::Partner, 1000, 0),
            Err(Error::NotPaired)
        ));

        p.sync_book_mut()
            .start_space("ws://127.0.0.1:7878/v1/sync")
            .unwrap();
        let state = p.sync_book().acl_state().unwrap().unwrap();
        assert!(state.is_member(&p.device_id()));
        assert_eq!(state.epoch(), 0);
        assert!(matches!(
            p.sync_book_mut().start_space("ws://elsewhere"),
            Err(Error::AlreadyPaired)
        ));

        let minted = p
            .sync_book()
            .mint_invite(InviteRole::Partner, 86_400_000, 1_000)
            .unwrap();
        let mut state = state;
        state.apply(&minted.record, 2_000).unwrap();
        let back: InviteCode = minted.code.to_string().parse().unwrap();
        assert_eq!(back.relay(), "ws://127.0.0.1:7878/v1/sync");
        let (keys, person) = back
            .keys()
            .open_lockbox(&minted.lockbox, p.space().unwrap().as_bytes(), minted.epoch)
            .unwrap();
        assert_eq!(person, None, "a partner invite carries no person");
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(
            Some(&key.check(&p.space().unwrap(), 0)),
            state.key_check(0),
            "the genesis commits to the key"
        );
        let ours = p.sync_book().epoch_key(0).unwrap().unwrap();
        // Same key: what one seals, the other opens.
        let (nonce, ct) = ours.seal(b"aad", b"hello").unwrap();
        assert_eq!(&key.open(b"aad", &nonce, &ct).unwrap()[..], b"hello");
    }

    #[test]
    fn a_relay_announcing_a_smaller_space_cannot_make_the_stored_chain_read_as_broken() {
        use hearth_crypto::DeviceKeys;

        let dir = tempfile::tempdir().unwrap();
        let mut p =
            Profile::create(&dir.path().join("p"), "Sam", Protection::None, Millis(1)).unwrap();
        p.sync_book_mut().start_space("ws://relay.invalid").unwrap();
        let minted = p
            .sync_book()
            .mint_invite(InviteRole::Partner, 86_400_000, 1_000)
            .unwrap();
        let invite_keys = minted.code.keys();
        let partner = DeviceKeys::generate().unwrap();
        let join = sign_record(
            minted.record.hash(),
            AclBody::AddDevice {
                device: partner.device_id(),
                recipient: partner.recipient_bytes().unwrap(),
                invite: InviteId::from_bytes(invite_keys.invite_id()),
            },
            &[&partner, &invite_keys],
        )
        .unwrap();
        let mut records = p.sync_book().acl_records().unwrap();
        records.push(minted.record.encode());
        records.push(join.encode());
        let chain = VerifiedChain::verify(records, &Limits::default()).unwrap();
        p.sync_book_mut().replace_acl(&chain).unwrap();

        // A relay that says a space holds one device, and "no limit" on bytes as u64::MAX.
        let hostile = Limits {
            max_devices_per_space: 1,
            max_bytes_per_space: u64::MAX,
            ..Limits::default()
        };
        p.sync_book_mut().set_relay_limits(&hostile).unwrap();
        let state = p.sync_book().acl_state().unwrap().unwrap();
        assert_eq!(state.members().count(), 2, "both devices are still members");
        assert!(p.sync_book().devices().is_ok());
        let saved = p.sync_book().relay_limits().unwrap();
        assert_eq!(saved.max_devices_per_space, 1);
        assert_eq!(saved.max_bytes_per_space, i64::MAX as u64);
    }
}
