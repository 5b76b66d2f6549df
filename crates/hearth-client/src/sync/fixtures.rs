//! Real keys, ACL chains and envelopes for the sync engine's unit tests, so that every
//! decision is tested against what a relay would actually deliver (no mocks: the chain is
//! signed and verified, the envelopes sealed and signed, by hearth-crypto).

use hearth_crypto::{DeviceKeys, EpochKey, InviteCode, envelope, sign_record};
use hearth_proto::{
    AclBody, AclRecord, AclState, EnvelopeHeader, EnvelopeKind, InviteId, InviteRole, Limits,
    SpaceId,
};

/// A space with a history: `owner` started it under `keys[0]`, `removed` joined and was
/// removed after its envelope [`Couple::REMOVED_THROUGH`], and the owner rotated to
/// `keys[1]`. `stranger` never belonged.
pub(crate) struct Couple {
    pub(crate) space: SpaceId,
    pub(crate) owner: DeviceKeys,
    pub(crate) removed: DeviceKeys,
    pub(crate) stranger: DeviceKeys,
    pub(crate) keys: [EpochKey; 2],
    pub(crate) records: Vec<AclRecord>,
}

impl Couple {
    /// The removed device's last envelope its removal allows.
    pub(crate) const REMOVED_THROUGH: u64 = 5;

    pub(crate) fn new() -> Couple {
        let space = SpaceId::from_bytes([7; 16]);
        let owner = DeviceKeys::generate().unwrap();
        let removed = DeviceKeys::generate().unwrap();
        let stranger = DeviceKeys::generate().unwrap();
        let keys = [EpochKey::generate().unwrap(), EpochKey::generate().unwrap()];
        let genesis = genesis(&owner, space, &keys[0]);
        let code = InviteCode::generate("ws://relay.invalid", *space.as_bytes()).unwrap();
        let invite = code.keys();
        let invite_id = InviteId::from_bytes(invite.invite_id());
        let offer = sign_record(
            genesis.hash(),
            AclBody::Invite {
                invite: invite_id,
                expires_at_ms: u64::MAX,
                role: InviteRole::OwnDevice,
                by: owner.device_id(),
            },
            &[&owner],
        )
        .unwrap();
        let add = sign_record(
            offer.hash(),
            AclBody::AddDevice {
                device: removed.device_id(),
                recipient: removed.recipient_bytes().unwrap(),
                invite: invite_id,
            },
            &[&removed, &invite],
        )
        .unwrap();
        let remove = sign_record(
            add.hash(),
            AclBody::RemoveDevice {
                device: removed.device_id(),
                by: owner.device_id(),
                last_counter: Self::REMOVED_THROUGH,
            },
            &[&owner],
        )
        .unwrap();
        let rotate = sign_record(
            remove.hash(),
            AclBody::RotateEpoch {
                epoch: 1,
                key_check: keys[1].check(&space, 1),
                by: owner.device_id(),
            },
            &[&owner],
        )
        .unwrap();
        Couple {
            space,
            owner,
            removed,
            stranger,
            keys,
            records: vec![genesis, offer, add, remove, rotate],
        }
    }

    /// The verified state after the whole history (epoch 1).
    pub(crate) fn state(&self) -> AclState {
        AclState::from_records(&self.records, &Limits::default()).unwrap()
    }
}

/// The Genesis record of `space`, started by `owner` under `key`.
pub(crate) fn genesis(owner: &DeviceKeys, space: SpaceId, key: &EpochKey) -> AclRecord {
    sign_record(
        [0; 32],
        AclBody::Genesis {
            space,
            device: owner.device_id(),
            recipient: owner.recipient_bytes().unwrap(),
            epoch: 0,
            key_check: key.check(&space, 0),
        },
        &[owner],
    )
    .unwrap()
}

/// An envelope of changes `plaintext`, sealed under `key` and signed by `author`, as the
/// relay would deliver it.
pub(crate) fn sealed(
    author: &DeviceKeys,
    key: &EpochKey,
    space: SpaceId,
    epoch: u32,
    counter: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    sealed_as(
        EnvelopeKind::Changes,
        author,
        key,
        space,
        epoch,
        counter,
        plaintext,
    )
}

/// [`sealed`], of any kind (a snapshot, say).
pub(crate) fn sealed_as(
    kind: EnvelopeKind,
    author: &DeviceKeys,
    key: &EpochKey,
    space: SpaceId,
    epoch: u32,
    counter: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let header = EnvelopeHeader {
        kind,
        space,
        epoch,
        author: author.device_id(),
        counter,
    };
    envelope::seal(author, key, header, plaintext)
        .unwrap()
        .encode()
}
