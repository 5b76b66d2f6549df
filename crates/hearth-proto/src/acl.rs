//! The space's access-control list (docs/protocol.md, "ACL records"): a hash-chained log of signed records that
//! says which devices belong to a space and which key epoch is current. Every client
//! verifies the whole chain and the relay enforces it too, so a device that is not in the
//! chain cannot even push. Records carry public keys, ids, epochs and expiries only; names
//! and everything personal live in the encrypted document.
//!
//! # Record layout, format version 1
//!
//! Integers are big-endian and fixed-width; the body tag fixes the body's length, so every
//! record has exactly one encoding.
//!
//! | size | field                                                                  |
//! |-----:|------------------------------------------------------------------------|
//! |    1 | format version, `0x01`                                                 |
//! |   32 | `prev`: hash of the previous record, all zeros for Genesis             |
//! |    1 | body tag, then the body:                                               |
//! |      | `0x00` Genesis: space (16), device (32), recipient (32), epoch (4), key check (32) |
//! |      | `0x01` Invite: invite key (32), expires_at_ms (8), role (1: `0x00` partner, `0x01` own device), by (32) |
//! |      | `0x02` AddDevice: device (32), recipient (32), invite key (32)         |
//! |      | `0x03` RemoveDevice: device (32), by (32), last counter (8)            |
//! |      | `0x04` RotateEpoch: epoch (4), key check (32), by (32)                 |
//! |    1 | signature count `k`, at most 2                                         |
//! | k×96 | `k` × (signer public key (32), Ed25519 signature (64))                 |
//!
//! * Each signer signs [`AclRecord::signing_message`] =
//!   `BLAKE3-derive-key("hearth acl signature v1", version ‖ prev ‖ tag ‖ body)`, i.e. the
//!   encoding up to (not including) the signature count.
//! * A record's hash ([`AclRecord::hash`], what the next record's `prev` holds and what
//!   [`AclState::head`] returns) is `BLAKE3-derive-key("hearth acl v1", whole encoding)`,
//!   signatures included, so the chain pins every byte.
//! * The signatures must be exactly [`AclBody::required_signers`], in that order.
//!
//! # Rules
//!
//! * Genesis comes first and only once, with `prev` all zeros and epoch 0, signed by its
//!   device.
//! * Invite: signed by `by`, a current member. Its key must be fresh.
//! * AddDevice: signed by the new device *and* the invite key it names. The invite must
//!   exist, be unused (invites are one-time) and not revoked; the device must not be a
//!   member already, must never have been removed (a removed key stays out; the device
//!   needs a new key), must not be the invite key itself (the inviter knows that secret),
//!   and the space must have room (`max_devices_per_space`).
//! * Partners: people are not in the ACL, so the "two people" rule is kept by role: at
//!   most one Partner invite may ever be consumed. After that, new Partner invites and
//!   the consumption of any other outstanding Partner invite are refused; each partner
//!   adds further devices with OwnDevice invites.
//! * RemoveDevice: signed by `by`, a current member. A device may remove itself (leaving);
//!   the last device cannot be removed. Invites the removed device issued and nobody used
//!   yet are revoked with it, so a lost device's pending invites die with it. `last_counter`
//!   is the highest envelope counter of the removed device that the remover holds (its own
//!   last, when leaving): clients refuse the removed device's envelopes with a higher
//!   counter ([`AclState::removed_through`]), so a removed device that still holds an old
//!   epoch's key cannot add to the space's history afterwards, even through a relay that
//!   helps it.
//! * RotateEpoch: signed by `by`, a current member; the epoch must be exactly current + 1.
//!   Invites nobody used yet are revoked: their lockboxes hold only the old keys.
//!   [`AclState::needs_rotation`] says whether a removal has happened since the last one.
//!
//! # People
//!
//! People are not records, but who invited whom is, so every device belongs to one person
//! ([`AclState::person_of`], [`people`]): the Genesis device founds one, the device that
//! consumed the partner invite founds the other, and a device that consumed an own-device
//! invite belongs to the person of the device that issued it. A person is named by its
//! founding device. Removed devices keep their person. Both the clients (the authorship
//! rule) and the relay (a snapshot needs the *other* person's countersignature) use it.
//!
//! # Time
//!
//! Invite expiry can only be judged when an AddDevice is first accepted, because the
//! chain carries no trusted clock and a partner who was offline for a week must still
//! accept a join that happened in time. So [`AclState::apply`] (for a record offered
//! now: the relay on `PutAcl`, a device about to upload) checks expiry against `now_ms`,
//! while [`AclState::from_records`] and [`AclState::replay`] (for records already
//! accepted by the relay) check every other rule but not the clock.
//!
//! # Room in the space
//!
//! `max_devices_per_space` is the relay's admission policy at the moment a device joins,
//! like the clock: [`AclState::apply`] checks it, replaying records already accepted does
//! not. Otherwise the limits a relay announces (or an operator lowers later) could make a
//! chain every member already verified read as broken, and a device that re-checks its
//! stored chain would refuse to sync for good.

use std::collections::BTreeMap;

use crate::cursor::Cursor;
use crate::error::AclRule;
use crate::ids::{DeviceId, InviteId, SpaceId};
use crate::signature::verify_signature;
use crate::{Limits, ProtoError};

/// The ACL record format version this build writes and reads.
pub const ACL_VERSION: u8 = 1;
/// BLAKE3 derive-key context for [`AclRecord::hash`].
pub const ACL_HASH_CONTEXT: &str = "hearth acl v1";
/// BLAKE3 derive-key context for [`AclRecord::signing_message`].
pub const ACL_SIGNATURE_CONTEXT: &str = "hearth acl signature v1";
/// Most signatures a record carries (AddDevice has two).
pub const MAX_ACL_SIGNATURES: usize = 2;
/// BLAKE3 derive-key context for [`key_check`].
pub const KEY_CHECK_CONTEXT: &str = "hearth epoch key check v1";

/// The commitment to an epoch's content key that Genesis and RotateEpoch carry:
/// `BLAKE3-derive-key("hearth epoch key check v1", space ‖ epoch (4, big-endian) ‖ key)`.
///
/// age gives a lockbox no sender authentication, so a device trusts a key it unwraps only
/// if it matches the check the signed chain holds for that epoch. The check reveals nothing
/// about a random 32-byte key.
pub fn key_check(space: &SpaceId, epoch: u32, key: &[u8; 32]) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(KEY_CHECK_CONTEXT)
        .update(space.as_bytes())
        .update(&epoch.to_be_bytes())
        .update(key)
        .finalize()
        .as_bytes()
}

/// Who an invite is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteRole {
    /// The other partner; at most one Partner invite is ever consumed per space.
    Partner,
    /// Another device of someone already in the space.
    OwnDevice,
}

/// What one ACL record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclBody {
    /// Creates the space with its first device.
    Genesis {
        /// The space being created.
        space: SpaceId,
        /// The creating device.
        device: DeviceId,
        /// The creating device's age X25519 public key, that epoch keys are wrapped to.
        recipient: [u8; 32],
        /// Always 0.
        epoch: u32,
        /// [`key_check`] of the epoch-0 key.
        key_check: [u8; 32],
    },
    /// Commits to a one-time invite key.
    Invite {
        /// The invite's public key.
        invite: InviteId,
        /// From this UTC millisecond on, the invite can no longer be used.
        expires_at_ms: u64,
        /// Who it is for.
        role: InviteRole,
        /// The member device issuing it.
        by: DeviceId,
    },
    /// A new device joins by consuming an invite.
    AddDevice {
        /// The joining device.
        device: DeviceId,
        /// The joining device's age X25519 public key, that epoch keys are wrapped to.
        recipient: [u8; 32],
        /// The invite it consumes.
        invite: InviteId,
    },
    /// A device leaves or is removed.
    RemoveDevice {
        /// The device removed.
        device: DeviceId,
        /// The member device removing it (may be `device` itself).
        by: DeviceId,
        /// The removed device's last envelope counter that counts: its envelopes with a
        /// higher counter are refused.
        last_counter: u64,
    },
    /// Moves the space to a new content-key epoch.
    RotateEpoch {
        /// The new epoch: the current one plus one.
        epoch: u32,
        /// [`key_check`] of the new epoch's key.
        key_check: [u8; 32],
        /// The member device rotating.
        by: DeviceId,
    },
}

impl AclBody {
    /// The public keys that must sign a record with this body, in signature order.
    pub fn required_signers(&self) -> Vec<[u8; 32]> {
        match self {
            Self::Genesis { device, .. } => vec![*device.as_bytes()],
            Self::Invite { by, .. }
            | Self::RemoveDevice { by, .. }
            | Self::RotateEpoch { by, .. } => vec![*by.as_bytes()],
            Self::AddDevice { device, invite, .. } => {
                vec![*device.as_bytes(), *invite.as_bytes()]
            }
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Genesis {
                space,
                device,
                recipient,
                epoch,
                key_check,
            } => {
                out.push(0);
                out.extend_from_slice(space.as_bytes());
                out.extend_from_slice(device.as_bytes());
                out.extend_from_slice(recipient);
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(key_check);
            }
            Self::Invite {
                invite,
                expires_at_ms,
                role,
                by,
            } => {
                out.push(1);
                out.extend_from_slice(invite.as_bytes());
                out.extend_from_slice(&expires_at_ms.to_be_bytes());
                out.push(match role {
                    InviteRole::Partner => 0,
                    InviteRole::OwnDevice => 1,
                });
                out.extend_from_slice(by.as_bytes());
            }
            Self::AddDevice {
                device,
                recipient,
                invite,
            } => {
                out.push(2);
                out.extend_from_slice(device.as_bytes());
                out.extend_from_slice(recipient);
                out.extend_from_slice(invite.as_bytes());
            }
            Self::RemoveDevice {
                device,
                by,
                last_counter,
            } => {
                out.push(3);
                out.extend_from_slice(device.as_bytes());
                out.extend_from_slice(by.as_bytes());
                out.extend_from_slice(&last_counter.to_be_bytes());
            }
            Self::RotateEpoch {
                epoch,
                key_check,
                by,
            } => {
                out.push(4);
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(key_check);
                out.extend_from_slice(by.as_bytes());
            }
        }
    }

    fn read(cur: &mut Cursor<'_>) -> Result<Self, ProtoError> {
        Ok(match cur.u8("body tag")? {
            0 => Self::Genesis {
                space: SpaceId::from_bytes(cur.array("space")?),
                device: DeviceId::from_bytes(cur.array("device")?),
                recipient: cur.array("recipient")?,
                epoch: cur.u32("epoch")?,
                key_check: cur.array("key_check")?,
            },
            1 => Self::Invite {
                invite: InviteId::from_bytes(cur.array("invite")?),
                expires_at_ms: cur.u64("expires_at_ms")?,
                role: match cur.u8("role")? {
                    0 => InviteRole::Partner,
                    1 => InviteRole::OwnDevice,
                    other => {
                        return Err(ProtoError::malformed(
                            "acl record",
                            format!("unknown invite role {other}"),
                        ));
                    }
                },
                by: DeviceId::from_bytes(cur.array("by")?),
            },
            2 => Self::AddDevice {
                device: DeviceId::from_bytes(cur.array("device")?),
                recipient: cur.array("recipient")?,
                invite: InviteId::from_bytes(cur.array("invite")?),
            },
            3 => Self::RemoveDevice {
                device: DeviceId::from_bytes(cur.array("device")?),
                by: DeviceId::from_bytes(cur.array("by")?),
                last_counter: cur.u64("last_counter")?,
            },
            4 => Self::RotateEpoch {
                epoch: cur.u32("epoch")?,
                key_check: cur.array("key_check")?,
                by: DeviceId::from_bytes(cur.array("by")?),
            },
            other => {
                return Err(ProtoError::malformed(
                    "acl record",
                    format!("unknown body tag {other}"),
                ));
            }
        })
    }
}

/// One signed link of the ACL chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclRecord {
    /// [`AclRecord::hash`] of the previous record; all zeros for Genesis.
    pub prev: [u8; 32],
    /// What the record does.
    pub body: AclBody,
    /// (signer public key, Ed25519 signature over [`AclRecord::signing_message`]), exactly
    /// the body's [`AclBody::required_signers`] in order.
    pub signatures: Vec<([u8; 32], [u8; 64])>,
}

impl AclRecord {
    /// The 32-byte message every signer of a record with this `prev` and `body` signs.
    pub fn signing_message(prev: &[u8; 32], body: &AclBody) -> [u8; 32] {
        let mut unsigned = Vec::with_capacity(1 + 32 + 1 + 77);
        write_unsigned(prev, body, &mut unsigned);
        *blake3::Hasher::new_derive_key(ACL_SIGNATURE_CONTEXT)
            .update(&unsigned)
            .finalize()
            .as_bytes()
    }

    /// The record's hash: what the next record's `prev` must hold.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::Hasher::new_derive_key(ACL_HASH_CONTEXT)
            .update(&self.encode())
            .finalize()
            .as_bytes()
    }

    /// Checks that the record carries exactly its required signatures, each valid. Says
    /// nothing about whether the signers may make this change: that is [`AclState`]'s job.
    ///
    /// # Errors
    /// [`ProtoError::AclRefused`] ([`AclRule::WrongSigners`]) if the signers are not the
    /// required ones, and [`ProtoError::BadSignature`] if a signature does not verify.
    pub fn verify_signatures(&self) -> Result<(), ProtoError> {
        let required = self.body.required_signers();
        if self.signatures.len() != required.len()
            || self
                .signatures
                .iter()
                .zip(&required)
                .any(|((signer, _), want)| signer != want)
        {
            return Err(ProtoError::AclRefused(AclRule::WrongSigners));
        }
        let message = Self::signing_message(&self.prev, &self.body);
        for (signer, signature) in &self.signatures {
            verify_signature(signer, &message, signature)?;
        }
        Ok(())
    }

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 32 + 78 + 1 + 96 * self.signatures.len());
        write_unsigned(&self.prev, &self.body, &mut out);
        // `decode` refuses more than MAX_ACL_SIGNATURES, so a record built with more
        // cannot round-trip; saturating keeps this total.
        out.push(u8::try_from(self.signatures.len()).unwrap_or(u8::MAX));
        for (signer, signature) in &self.signatures {
            out.extend_from_slice(signer);
            out.extend_from_slice(signature);
        }
        out
    }

    /// Decodes one record without checking its signatures or its place in a chain.
    ///
    /// # Errors
    /// [`ProtoError::UnsupportedVersion`] for a format version other than 1, and
    /// [`ProtoError::Malformed`] for anything else that is not exactly one record.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let mut cur = Cursor::new(bytes, "acl record");
        let version = cur.u8("version")?;
        if version != ACL_VERSION {
            return Err(ProtoError::UnsupportedVersion {
                got: version.into(),
                want: ACL_VERSION.into(),
            });
        }
        let prev = cur.array("prev")?;
        let body = AclBody::read(&mut cur)?;
        let count = usize::from(cur.u8("signature count")?);
        if count > MAX_ACL_SIGNATURES {
            return Err(ProtoError::malformed(
                "acl record",
                format!("{count} signatures, at most {MAX_ACL_SIGNATURES} allowed"),
            ));
        }
        let mut signatures = Vec::with_capacity(count);
        for _ in 0..count {
            signatures.push((cur.array("signer")?, cur.array("signature")?));
        }
        cur.finish()?;
        Ok(Self {
            prev,
            body,
            signatures,
        })
    }
}

fn write_unsigned(prev: &[u8; 32], body: &AclBody, out: &mut Vec<u8>) {
    out.push(ACL_VERSION);
    out.extend_from_slice(prev);
    body.write(out);
}

/// What the chain says about one invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteInfo {
    /// From this UTC millisecond on, the invite can no longer be used.
    pub expires_at_ms: u64,
    /// Who it is for.
    pub role: InviteRole,
    /// The device that issued it.
    pub by: DeviceId,
    /// The device that consumed it, once used.
    pub used_by: Option<DeviceId>,
    /// Whether it died unused with the removal of the device that issued it.
    pub revoked: bool,
}

impl InviteInfo {
    /// Whether the invite is unused, not revoked and not expired at `now_ms`. (A Partner
    /// invite is also refused once [`AclState::partner_joined`].)
    pub fn is_usable(&self, now_ms: u64) -> bool {
        self.used_by.is_none() && !self.revoked && now_ms < self.expires_at_ms
    }
}

/// The state a verified ACL chain leads to: who is in the space, at which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclState {
    space: SpaceId,
    head: [u8; 32],
    len: u64,
    epoch: u32,
    /// The check of each epoch's key, indexed by epoch.
    key_checks: Vec<[u8; 32]>,
    /// The device that made the current epoch's key (Genesis or RotateEpoch).
    epoch_by: DeviceId,
    /// Current members and their age recipients.
    members: BTreeMap<DeviceId, [u8; 32]>,
    /// Removed devices and the last envelope counter of each that counts.
    removed: BTreeMap<DeviceId, u64>,
    invites: BTreeMap<InviteId, InviteInfo>,
    /// Every device that ever joined, with its person's founding device (see "People").
    persons: BTreeMap<DeviceId, DeviceId>,
    partner_joined: bool,
    needs_rotation: bool,
    max_devices: u32,
}

/// The person a device joining through an invite of `role` issued by `by` belongs to,
/// named by its founding device: a partner invite founds a person of its own, an
/// own-device invite joins the issuer's. `None` if the issuer has no person in `persons`
/// (not in a chain that verified).
fn joining_person(
    persons: &BTreeMap<DeviceId, DeviceId>,
    device: DeviceId,
    role: InviteRole,
    by: &DeviceId,
) -> Option<DeviceId> {
    match role {
        InviteRole::Partner => Some(device),
        InviteRole::OwnDevice => persons.get(by).copied(),
    }
}

/// Each device of `records` (a chain the caller has verified, e.g. with
/// [`AclState::from_records`]) with its person's founding device (see "People" in the
/// module docs): the same answer as [`AclState::person_of`], for callers that hold the
/// records rather than the state.
pub fn people(records: &[AclRecord]) -> BTreeMap<DeviceId, DeviceId> {
    let mut persons = BTreeMap::new();
    let mut invites = BTreeMap::new();
    for record in records {
        match record.body {
            AclBody::Genesis { device, .. } => {
                persons.insert(device, device);
            }
            AclBody::Invite {
                invite, role, by, ..
            } => {
                invites.insert(invite, (role, by));
            }
            AclBody::AddDevice { device, invite, .. } => {
                if let Some(person) = invites
                    .get(&invite)
                    .and_then(|(role, by)| joining_person(&persons, device, *role, by))
                {
                    persons.insert(device, person);
                }
            }
            AclBody::RemoveDevice { .. } | AclBody::RotateEpoch { .. } => {}
        }
    }
    persons
}

impl AclState {
    /// Verifies a whole chain, Genesis first, and returns the state it leads to.
    ///
    /// These are records already accepted (from the relay or the local store), so invite
    /// expiry is not re-checked (see "Time" in the module docs); every other rule is.
    ///
    /// # Errors
    /// The first rule the chain breaks (see the module docs).
    pub fn from_records(records: &[AclRecord], limits: &Limits) -> Result<Self, ProtoError> {
        let (first, rest) = records
            .split_first()
            .ok_or(ProtoError::AclRefused(AclRule::EmptyChain))?;
        let AclBody::Genesis {
            space,
            device,
            recipient,
            epoch,
            key_check,
        } = first.body
        else {
            return Err(ProtoError::AclRefused(AclRule::GenesisFirst));
        };
        if first.prev != [0; 32] {
            return Err(ProtoError::BrokenChain(
                "genesis must have an all-zero prev",
            ));
        }
        if epoch != 0 {
            return Err(ProtoError::AclRefused(AclRule::GenesisEpoch));
        }
        first.verify_signatures()?;
        let mut state = Self {
            space,
            head: first.hash(),
            len: 1,
            epoch: 0,
            key_checks: vec![key_check],
            epoch_by: device,
            members: BTreeMap::from([(device, recipient)]),
            removed: BTreeMap::new(),
            invites: BTreeMap::new(),
            persons: BTreeMap::from([(device, device)]),
            partner_joined: false,
            needs_rotation: false,
            max_devices: limits.max_devices_per_space,
        };
        for record in rest {
            state.replay(record)?;
        }
        Ok(state)
    }

    /// Appends a record being offered now (the relay on `PutAcl`, a device before it
    /// uploads one), checking every rule including invite expiry at `now_ms`. On error
    /// the state is unchanged.
    ///
    /// # Errors
    /// The rule the record breaks, e.g. [`ProtoError::InviteExpired`],
    /// [`ProtoError::InviteUsed`], [`ProtoError::NotMember`].
    pub fn apply(&mut self, record: &AclRecord, now_ms: u64) -> Result<(), ProtoError> {
        self.append(record, Some(now_ms))
    }

    /// Appends a record that was already accepted by the relay (e.g. from `AclChanged`),
    /// checking every rule except invite expiry. On error the state is unchanged.
    ///
    /// # Errors
    /// The rule the record breaks.
    pub fn replay(&mut self, record: &AclRecord) -> Result<(), ProtoError> {
        self.append(record, None)
    }

    /// The space this chain governs.
    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// The current members' device ids, in order.
    pub fn members(&self) -> impl Iterator<Item = &DeviceId> {
        self.members.keys()
    }

    /// Whether `device` is a current member.
    pub fn is_member(&self, device: &DeviceId) -> bool {
        self.members.contains_key(device)
    }

    /// The age X25519 public key a current member receives epoch keys at.
    pub fn recipient(&self, device: &DeviceId) -> Option<&[u8; 32]> {
        self.members.get(device)
    }

    /// Whether `device` was a member once and has been removed.
    pub fn was_removed(&self, device: &DeviceId) -> bool {
        self.removed.contains_key(device)
    }

    /// For a removed device, the last of its envelope counters that counts (its envelopes
    /// with a higher counter are refused); `None` if it was never removed.
    pub fn removed_through(&self, device: &DeviceId) -> Option<u64> {
        self.removed.get(device).copied()
    }

    /// The device that made the current epoch's key, and so wraps it for the others.
    pub fn epoch_by(&self) -> DeviceId {
        self.epoch_by
    }

    /// The [`key_check`] the chain holds for `epoch`'s key, if the chain has reached it.
    pub fn key_check(&self, epoch: u32) -> Option<&[u8; 32]> {
        self.key_checks.get(usize::try_from(epoch).ok()?)
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The hash of the last record: the `prev` of the next one.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// How many records the chain holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a state exists only once Genesis has been verified.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// What the chain says about an invite, if it issued one with this key.
    pub fn invite(&self, invite: &InviteId) -> Option<&InviteInfo> {
        self.invites.get(invite)
    }

    /// Whether a Partner invite has been consumed (no further partner may join).
    pub fn partner_joined(&self) -> bool {
        self.partner_joined
    }

    /// Whether a device was removed since the last RotateEpoch: the remaining devices
    /// should rotate before writing anything new.
    pub fn needs_rotation(&self) -> bool {
        self.needs_rotation
    }

    /// The person `device` belongs to, named by that person's founding device (the
    /// Genesis device, or the device that consumed the partner invite); see "People" in
    /// the module docs. Removed devices keep their person; `None` for a device that never
    /// joined.
    pub fn person_of(&self, device: &DeviceId) -> Option<DeviceId> {
        self.persons.get(device).copied()
    }

    /// Whether `a` and `b` both joined and belong to different people: what a snapshot's
    /// countersigner must be to its author.
    pub fn other_people(&self, a: &DeviceId, b: &DeviceId) -> bool {
        matches!((self.person_of(a), self.person_of(b)), (Some(x), Some(y)) if x != y)
    }

    fn member(&self, device: &DeviceId) -> Result<(), ProtoError> {
        if self.is_member(device) {
            Ok(())
        } else {
            Err(ProtoError::NotMember(*device))
        }
    }

    /// Checks everything first and mutates only once the record is known good.
    fn append(&mut self, record: &AclRecord, now_ms: Option<u64>) -> Result<(), ProtoError> {
        if record.prev != self.head {
            return Err(ProtoError::BrokenChain(
                "the record does not follow the current head",
            ));
        }
        record.verify_signatures()?;
        match record.body {
            AclBody::Genesis { .. } => {
                return Err(ProtoError::AclRefused(AclRule::OneGenesis));
            }
            AclBody::Invite {
                invite,
                expires_at_ms,
                role,
                by,
            } => {
                self.member(&by)?;
                if self.invites.contains_key(&invite) {
                    return Err(ProtoError::AclRefused(AclRule::InviteReissued));
                }
                if role == InviteRole::Partner && self.partner_joined {
                    return Err(ProtoError::AclRefused(AclRule::PartnerJoined));
                }
                self.invites.insert(
                    invite,
                    InviteInfo {
                        expires_at_ms,
                        role,
                        by,
                        used_by: None,
                        revoked: false,
                    },
                );
            }
            AclBody::AddDevice {
                device,
                recipient,
                invite,
            } => {
                let info = self.invites.get(&invite).ok_or(ProtoError::UnknownInvite)?;
                if device.as_bytes() == invite.as_bytes() {
                    // The invite secret travels in the invite code, so whoever else saw
                    // the code could sign as this device.
                    return Err(ProtoError::AclRefused(AclRule::DeviceIsInviteKey));
                }
                if info.used_by.is_some() {
                    return Err(ProtoError::InviteUsed);
                }
                if info.revoked {
                    return Err(ProtoError::AclRefused(AclRule::InviteRevoked));
                }
                if now_ms.is_some_and(|now| now >= info.expires_at_ms) {
                    return Err(ProtoError::InviteExpired {
                        expires_at_ms: info.expires_at_ms,
                    });
                }
                if self.is_member(&device) {
                    return Err(ProtoError::AclRefused(AclRule::AlreadyMember));
                }
                if self.removed.contains_key(&device) {
                    return Err(ProtoError::AclRefused(AclRule::RemovedCannotRejoin));
                }
                if info.role == InviteRole::Partner && self.partner_joined {
                    return Err(ProtoError::AclRefused(AclRule::PartnerJoined));
                }
                // Room is judged when a join is offered (see "Room in the space").
                if now_ms.is_some()
                    && self.members.len() >= usize::try_from(self.max_devices).unwrap_or(usize::MAX)
                {
                    return Err(ProtoError::AclRefused(AclRule::SpaceFull));
                }
                let role = info.role;
                let person = joining_person(&self.persons, device, role, &info.by);
                if let Some(info) = self.invites.get_mut(&invite) {
                    info.used_by = Some(device);
                }
                self.partner_joined |= role == InviteRole::Partner;
                self.members.insert(device, recipient);
                if let Some(person) = person {
                    self.persons.insert(device, person);
                }
            }
            AclBody::RemoveDevice {
                device,
                by,
                last_counter,
            } => {
                self.member(&by)?;
                if !self.is_member(&device) {
                    return Err(ProtoError::AclRefused(AclRule::RemovedNotMember));
                }
                if self.members.len() == 1 {
                    return Err(ProtoError::AclRefused(AclRule::LastDevice));
                }
                self.members.remove(&device);
                self.removed.insert(device, last_counter);
                for info in self.invites.values_mut() {
                    if info.by == device && info.used_by.is_none() {
                        info.revoked = true;
                    }
                }
                self.needs_rotation = true;
            }
            AclBody::RotateEpoch {
                epoch,
                key_check,
                by,
            } => {
                self.member(&by)?;
                if Some(epoch) != self.epoch.checked_add(1) {
                    return Err(ProtoError::AclRefused(AclRule::EpochStep));
                }
                self.epoch = epoch;
                self.key_checks.push(key_check);
                self.epoch_by = by;
                // An unused invite's lockbox holds the old keys only: it dies here.
                for info in self.invites.values_mut() {
                    if info.used_by.is_none() {
                        info.revoked = true;
                    }
                }
                self.needs_rotation = false;
            }
        }
        self.head = record.hash();
        self.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    use super::*;
    use crate::test_support::{any_acl_record, key, signed_acl as signed};

    const NOW: u64 = 1_000_000;
    const LATER: u64 = NOW + 60_000;

    fn dev(k: &SigningKey) -> DeviceId {
        DeviceId::from_bytes(k.verifying_key().to_bytes())
    }

    fn inv(k: &SigningKey) -> InviteId {
        InviteId::from_bytes(k.verifying_key().to_bytes())
    }

    /// A space created by `alice` (seed 1), ready for more records.
    struct Chain {
        records: Vec<AclRecord>,
        state: AclState,
    }

    impl Chain {
        fn new() -> Self {
            Self::with_limits(&Limits::default())
        }

        fn with_limits(limits: &Limits) -> Self {
            let alice = key(1);
            let genesis = signed(
                [0; 32],
                AclBody::Genesis {
                    space: SpaceId::from_bytes([5; 16]),
                    device: dev(&alice),
                    recipient: [7; 32],
                    epoch: 0,
                    key_check: [8; 32],
                },
                &[&alice],
            );
            let state = AclState::from_records(std::slice::from_ref(&genesis), limits).unwrap();
            Self {
                records: vec![genesis],
                state,
            }
        }

        fn record(&self, body: AclBody, signers: &[&SigningKey]) -> AclRecord {
            signed(self.state.head(), body, signers)
        }

        fn push(&mut self, body: AclBody, signers: &[&SigningKey]) -> Result<(), ProtoError> {
            self.push_at(body, signers, NOW)
        }

        fn push_at(
            &mut self,
            body: AclBody,
            signers: &[&SigningKey],
            now_ms: u64,
        ) -> Result<(), ProtoError> {
            let record = self.record(body, signers);
            let before = self.state.clone();
            let result = self.state.apply(&record, now_ms);
            match result {
                Ok(()) => self.records.push(record),
                Err(_) => assert_eq!(self.state, before, "a refused record changed the state"),
            }
            result
        }

        fn invite(&mut self, by: &SigningKey, invite: &SigningKey, role: InviteRole) {
            self.push(
                AclBody::Invite {
                    invite: inv(invite),
                    expires_at_ms: LATER,
                    role,
                    by: dev(by),
                },
                &[by],
            )
            .unwrap();
        }

        fn join(&mut self, device: &SigningKey, invite: &SigningKey) -> Result<(), ProtoError> {
            self.push(
                AclBody::AddDevice {
                    device: dev(device),
                    // Each device's recipient differs, to tell them apart.
                    recipient: device.verifying_key().to_bytes().map(|b| b ^ 0xff),
                    invite: inv(invite),
                },
                &[device, invite],
            )
        }
    }

    #[test]
    fn couple_with_several_devices_builds_and_replays() {
        let (alice, bob, bob_phone) = (key(1), key(2), key(3));
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&bob, &key(100)).unwrap();
        chain.invite(&bob, &key(101), InviteRole::OwnDevice);
        chain.join(&bob_phone, &key(101)).unwrap();
        assert_eq!(chain.state.members().count(), 3);
        chain
            .push(
                AclBody::RemoveDevice {
                    device: dev(&bob_phone),
                    by: dev(&bob),
                    last_counter: 0,
                },
                &[&bob],
            )
            .unwrap();
        assert!(chain.state.needs_rotation());
        chain
            .push(
                AclBody::RotateEpoch {
                    epoch: 1,
                    key_check: [9; 32],
                    by: dev(&alice),
                },
                &[&alice],
            )
            .unwrap();
        assert!(!chain.state.needs_rotation());
        assert_eq!(chain.state.epoch(), 1);
        assert!(chain.state.is_member(&dev(&bob)));
        assert!(!chain.state.is_member(&dev(&bob_phone)));
        assert!(chain.state.was_removed(&dev(&bob_phone)));
        // The chain keeps who receives keys where, and the check of every epoch's key.
        assert_eq!(chain.state.recipient(&dev(&alice)), Some(&[7; 32]));
        assert_eq!(
            chain.state.recipient(&dev(&bob)),
            Some(&bob.verifying_key().to_bytes().map(|b| b ^ 0xff))
        );
        assert_eq!(chain.state.recipient(&dev(&bob_phone)), None);
        assert_eq!(chain.state.key_check(0), Some(&[8; 32]));
        assert_eq!(chain.state.key_check(1), Some(&[9; 32]));
        assert_eq!(chain.state.key_check(2), None);
        assert_eq!(
            chain.state.invite(&inv(&key(100))).unwrap().used_by,
            Some(dev(&bob))
        );
        assert!(chain.state.partner_joined());

        let decoded: Vec<AclRecord> = chain
            .records
            .iter()
            .map(|r| AclRecord::decode(&r.encode()).unwrap())
            .collect();
        let replayed = AclState::from_records(&decoded, &Limits::default()).unwrap();
        assert_eq!(replayed, chain.state);
        assert_eq!(replayed.len(), 7);
        assert_eq!(replayed.head(), chain.records.last().unwrap().hash());
    }

    #[test]
    fn people_follow_who_invited_whom_and_removed_devices_keep_theirs() {
        let (alice, bob, bob_phone, alice_tablet) = (key(1), key(2), key(3), key(4));
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&bob, &key(100)).unwrap();
        chain.invite(&bob, &key(101), InviteRole::OwnDevice);
        chain.join(&bob_phone, &key(101)).unwrap();
        chain.invite(&alice, &key(102), InviteRole::OwnDevice);
        chain.join(&alice_tablet, &key(102)).unwrap();
        chain
            .push(
                AclBody::RemoveDevice {
                    device: dev(&alice_tablet),
                    by: dev(&bob_phone),
                    last_counter: 0,
                },
                &[&bob_phone],
            )
            .unwrap();
        let state = &chain.state;
        let person = |k: &SigningKey| state.person_of(&dev(k));
        assert_eq!(person(&alice), Some(dev(&alice)), "the founder");
        assert_eq!(
            person(&bob),
            Some(dev(&bob)),
            "the partner founds the other"
        );
        assert_eq!(
            person(&bob_phone),
            Some(dev(&bob)),
            "invited by Bob's device"
        );
        assert_eq!(
            person(&alice_tablet),
            Some(dev(&alice)),
            "removed, and still Alice's, whoever removed it"
        );
        assert_eq!(person(&key(66)), None, "never joined");
        assert_eq!(person(&key(100)), None, "an invite key is nobody");
        assert!(state.other_people(&dev(&alice), &dev(&bob_phone)));
        assert!(state.other_people(&dev(&bob), &dev(&alice_tablet)));
        assert!(!state.other_people(&dev(&bob), &dev(&bob_phone)));
        assert!(!state.other_people(&dev(&alice), &dev(&alice)));
        assert!(
            !state.other_people(&dev(&alice), &dev(&key(66))),
            "a stranger is nobody's other person"
        );
        // The records alone say the same, and so does the chain replayed.
        let from_records = people(&chain.records);
        assert_eq!(from_records.len(), 4);
        for (device, founder) in &from_records {
            assert_eq!(state.person_of(device), Some(*founder));
        }
        let replayed = AclState::from_records(&chain.records, &Limits::default()).unwrap();
        assert_eq!(&replayed, state);
    }

    #[test]
    fn a_second_genesis_is_refused() {
        let mut chain = Chain::new();
        let alice = key(1);
        let again = AclBody::Genesis {
            space: SpaceId::from_bytes([5; 16]),
            device: dev(&alice),
            recipient: [7; 32],
            epoch: 0,
            key_check: [8; 32],
        };
        assert!(matches!(
            chain.push(again, &[&alice]),
            Err(ProtoError::AclRefused(AclRule::OneGenesis))
        ));
    }

    #[test]
    fn a_chain_must_start_with_a_well_formed_genesis() {
        let limits = Limits::default();
        assert!(AclState::from_records(&[], &limits).is_err());
        let alice = key(1);
        let body = AclBody::Genesis {
            space: SpaceId::from_bytes([5; 16]),
            device: dev(&alice),
            recipient: [7; 32],
            epoch: 0,
            key_check: [8; 32],
        };
        let bad_prev = signed([1; 32], body, &[&alice]);
        assert!(matches!(
            AclState::from_records(&[bad_prev], &limits),
            Err(ProtoError::BrokenChain(_))
        ));
        let bad_epoch = signed(
            [0; 32],
            AclBody::Genesis {
                space: SpaceId::from_bytes([5; 16]),
                device: dev(&alice),
                recipient: [7; 32],
                epoch: 3,
                key_check: [8; 32],
            },
            &[&alice],
        );
        assert!(AclState::from_records(&[bad_epoch], &limits).is_err());
        let signed_by_other = signed([0; 32], body, &[&key(2)]);
        assert!(AclState::from_records(&[signed_by_other], &limits).is_err());
        let not_genesis = signed(
            [0; 32],
            AclBody::RotateEpoch {
                epoch: 1,
                key_check: [9; 32],
                by: dev(&alice),
            },
            &[&alice],
        );
        assert!(AclState::from_records(&[not_genesis], &limits).is_err());
    }

    #[test]
    fn a_stranger_cannot_invite() {
        let mut chain = Chain::new();
        let stranger = key(66);
        let result = chain.push(
            AclBody::Invite {
                invite: inv(&key(100)),
                expires_at_ms: LATER,
                role: InviteRole::Partner,
                by: dev(&stranger),
            },
            &[&stranger],
        );
        assert_eq!(result, Err(ProtoError::NotMember(dev(&stranger))));
    }

    #[test]
    fn an_expired_invite_is_refused_when_offered_but_history_still_replays() {
        let mut chain = Chain::new();
        chain.invite(&key(1), &key(100), InviteRole::Partner);
        let join = AclBody::AddDevice {
            device: dev(&key(2)),
            recipient: [7; 32],
            invite: inv(&key(100)),
        };
        assert_eq!(
            chain.push_at(join, &[&key(2), &key(100)], LATER),
            Err(ProtoError::InviteExpired {
                expires_at_ms: LATER
            })
        );
        assert!(
            chain
                .state
                .invite(&inv(&key(100)))
                .unwrap()
                .is_usable(LATER - 1)
        );
        assert!(
            !chain
                .state
                .invite(&inv(&key(100)))
                .unwrap()
                .is_usable(LATER)
        );
        // Accepted in time; a partner who reads the chain a week later must still accept it.
        chain
            .push_at(join, &[&key(2), &key(100)], LATER - 1)
            .unwrap();
        let mut late = AclState::from_records(&chain.records[..2], &Limits::default()).unwrap();
        late.replay(&chain.records[2]).unwrap();
        assert_eq!(late, chain.state);
    }

    #[test]
    fn an_invite_works_only_once() {
        let mut chain = Chain::new();
        chain.invite(&key(1), &key(100), InviteRole::OwnDevice);
        chain.join(&key(2), &key(100)).unwrap();
        assert_eq!(chain.join(&key(3), &key(100)), Err(ProtoError::InviteUsed));
    }

    #[test]
    fn an_invite_the_chain_never_issued_is_unknown() {
        let mut chain = Chain::new();
        assert_eq!(
            chain.join(&key(2), &key(100)),
            Err(ProtoError::UnknownInvite)
        );
    }

    #[test]
    fn add_device_needs_both_the_device_and_the_invite_signature() {
        let mut chain = Chain::new();
        chain.invite(&key(1), &key(100), InviteRole::Partner);
        let body = AclBody::AddDevice {
            device: dev(&key(2)),
            recipient: [7; 32],
            invite: inv(&key(100)),
        };
        for signers in [
            vec![&key(2)],
            vec![&key(100)],
            vec![],
            vec![&key(100), &key(2)],
            vec![&key(2), &key(101)],
            vec![&key(1), &key(100)],
        ] {
            let signers: Vec<&SigningKey> = signers.into_iter().collect();
            assert!(
                chain.push(body, &signers).is_err(),
                "accepted with {} signatures",
                signers.len()
            );
        }
        // Right signer keys, but one signature is over something else.
        let mut record = chain.record(body, &[&key(2), &key(100)]);
        record.signatures[1].1 = key(100).sign(b"something else").to_bytes();
        assert_eq!(
            chain.state.apply(&record, NOW),
            Err(ProtoError::BadSignature)
        );
        chain.join(&key(2), &key(100)).unwrap();
    }

    #[test]
    fn a_removed_device_can_no_longer_sign_or_rejoin() {
        let (alice, bob) = (key(1), key(2));
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&bob, &key(100)).unwrap();
        chain.invite(&bob, &key(101), InviteRole::OwnDevice);
        chain
            .push(
                AclBody::RemoveDevice {
                    device: dev(&bob),
                    by: dev(&alice),
                    last_counter: 0,
                },
                &[&alice],
            )
            .unwrap();
        let not_member = Err(ProtoError::NotMember(dev(&bob)));
        assert_eq!(
            chain.push(
                AclBody::RotateEpoch {
                    epoch: 1,
                    key_check: [9; 32],
                    by: dev(&bob)
                },
                &[&bob]
            ),
            not_member
        );
        assert_eq!(
            chain.push(
                AclBody::Invite {
                    invite: inv(&key(102)),
                    expires_at_ms: LATER,
                    role: InviteRole::OwnDevice,
                    by: dev(&bob),
                },
                &[&bob]
            ),
            not_member
        );
        assert_eq!(
            chain.push(
                AclBody::RemoveDevice {
                    device: dev(&alice),
                    by: dev(&bob),
                    last_counter: 0,
                },
                &[&bob]
            ),
            not_member
        );
        // Bob's pending invite died with him, and his key cannot come back.
        assert!(chain.state.invite(&inv(&key(101))).unwrap().revoked);
        assert!(chain.join(&key(3), &key(101)).is_err());
        chain.invite(&alice, &key(103), InviteRole::OwnDevice);
        assert!(matches!(
            chain.join(&bob, &key(103)),
            Err(ProtoError::AclRefused(AclRule::RemovedCannotRejoin))
        ));
    }

    #[test]
    fn rotating_revokes_unused_invites_and_names_who_made_the_key() {
        let (alice, bob) = (key(1), key(2));
        let mut chain = Chain::new();
        assert_eq!(chain.state.epoch_by(), dev(&alice));
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&bob, &key(100)).unwrap();
        chain.invite(&alice, &key(101), InviteRole::OwnDevice);
        chain
            .push(
                AclBody::RotateEpoch {
                    epoch: 1,
                    key_check: [9; 32],
                    by: dev(&bob),
                },
                &[&bob],
            )
            .unwrap();
        assert_eq!(chain.state.epoch_by(), dev(&bob));
        let used = chain.state.invite(&inv(&key(100))).unwrap();
        assert!(!used.revoked, "a used invite stays as it was");
        // The unused invite's lockbox holds epoch 0 only: it cannot admit anyone now.
        assert!(chain.state.invite(&inv(&key(101))).unwrap().revoked);
        assert!(matches!(
            chain.join(&key(3), &key(101)),
            Err(ProtoError::AclRefused(AclRule::InviteRevoked))
        ));
        chain.invite(&alice, &key(102), InviteRole::OwnDevice);
        chain.join(&key(3), &key(102)).unwrap();
    }

    #[test]
    fn a_device_may_leave_but_the_last_one_may_not() {
        let (alice, bob) = (key(1), key(2));
        let mut chain = Chain::new();
        let alone = AclBody::RemoveDevice {
            device: dev(&alice),
            by: dev(&alice),
            last_counter: 0,
        };
        assert!(chain.push(alone, &[&alice]).is_err());
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&bob, &key(100)).unwrap();
        chain
            .push(
                AclBody::RemoveDevice {
                    device: dev(&bob),
                    by: dev(&bob),
                    last_counter: 0,
                },
                &[&bob],
            )
            .unwrap();
        assert_eq!(
            chain.state.members().collect::<Vec<_>>(),
            vec![&dev(&alice)]
        );
    }

    #[test]
    fn the_epoch_advances_by_exactly_one() {
        let alice = key(1);
        let mut chain = Chain::new();
        for epoch in [0, 2, u32::MAX] {
            assert!(matches!(
                chain.push(
                    AclBody::RotateEpoch {
                        epoch,
                        key_check: [9; 32],
                        by: dev(&alice)
                    },
                    &[&alice]
                ),
                Err(ProtoError::AclRefused(AclRule::EpochStep))
            ));
        }
        chain
            .push(
                AclBody::RotateEpoch {
                    epoch: 1,
                    key_check: [9; 32],
                    by: dev(&alice),
                },
                &[&alice],
            )
            .unwrap();
        assert_eq!(chain.state.epoch(), 1);
    }

    #[test]
    fn a_record_that_does_not_link_to_the_head_is_refused() {
        let alice = key(1);
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&key(2), &key(100)).unwrap();
        let stale = signed(
            chain.records[0].hash(),
            AclBody::RotateEpoch {
                epoch: 1,
                key_check: [9; 32],
                by: dev(&alice),
            },
            &[&alice],
        );
        assert!(matches!(
            chain.state.apply(&stale, NOW),
            Err(ProtoError::BrokenChain(_))
        ));
        // A chain whose middle record was re-signed over a different prev breaks at that link.
        let mut records = chain.records.clone();
        records[1] = signed([9; 32], records[1].body, &[&alice]);
        assert!(matches!(
            AclState::from_records(&records, &Limits::default()),
            Err(ProtoError::BrokenChain(_))
        ));
        // Dropping or reordering records breaks it too.
        let mut reordered = chain.records.clone();
        reordered.swap(1, 2);
        assert!(AclState::from_records(&reordered, &Limits::default()).is_err());
        assert!(
            AclState::from_records(
                &[chain.records[0].clone(), chain.records[2].clone()],
                &Limits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn only_one_partner_invite_is_ever_consumed() {
        let alice = key(1);
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.invite(&alice, &key(101), InviteRole::Partner);
        chain.join(&key(2), &key(100)).unwrap();
        assert!(matches!(
            chain.join(&key(3), &key(101)),
            Err(ProtoError::AclRefused(AclRule::PartnerJoined))
        ));
        let another = AclBody::Invite {
            invite: inv(&key(102)),
            expires_at_ms: LATER,
            role: InviteRole::Partner,
            by: dev(&alice),
        };
        assert!(chain.push(another, &[&alice]).is_err());
        // Own-device invites keep working.
        chain.invite(&alice, &key(103), InviteRole::OwnDevice);
        chain.join(&key(3), &key(103)).unwrap();
    }

    #[test]
    fn a_full_space_refuses_another_device() {
        let limits = Limits {
            max_devices_per_space: 2,
            ..Limits::default()
        };
        let mut chain = Chain::with_limits(&limits);
        chain.invite(&key(1), &key(100), InviteRole::Partner);
        chain.join(&key(2), &key(100)).unwrap();
        chain.invite(&key(1), &key(101), InviteRole::OwnDevice);
        assert!(matches!(
            chain.join(&key(3), &key(101)),
            Err(ProtoError::AclRefused(AclRule::SpaceFull))
        ));
    }

    #[test]
    fn a_chain_already_accepted_replays_under_a_smaller_limit_but_admits_no_one_more() {
        let mut chain = Chain::new();
        chain.invite(&key(1), &key(100), InviteRole::Partner);
        chain.join(&key(2), &key(100)).unwrap();
        chain.invite(&key(1), &key(101), InviteRole::OwnDevice);
        let one = Limits {
            max_devices_per_space: 1,
            ..Limits::default()
        };
        // A relay announcing (or an operator configuring) room for one device cannot make
        // the members' two-device chain read as broken...
        let mut state = AclState::from_records(&chain.records, &one).unwrap();
        assert_eq!(state.members().count(), 2);
        // ...but a join offered now is judged by it.
        let join = signed(
            state.head(),
            AclBody::AddDevice {
                device: dev(&key(3)),
                recipient: [3; 32],
                invite: inv(&key(101)),
            },
            &[&key(3), &key(101)],
        );
        assert!(matches!(
            state.apply(&join, NOW),
            Err(ProtoError::AclRefused(AclRule::SpaceFull))
        ));
    }

    #[test]
    fn invite_keys_are_single_use_and_never_device_keys() {
        let alice = key(1);
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::OwnDevice);
        let again = AclBody::Invite {
            invite: inv(&key(100)),
            expires_at_ms: LATER,
            role: InviteRole::OwnDevice,
            by: dev(&alice),
        };
        assert!(chain.push(again, &[&alice]).is_err());
        assert!(matches!(
            chain.join(&key(100), &key(100)),
            Err(ProtoError::AclRefused(AclRule::DeviceIsInviteKey))
        ));
        assert!(matches!(
            chain.join(&alice, &key(100)),
            Err(ProtoError::AclRefused(AclRule::AlreadyMember))
        ));
    }

    #[test]
    fn flipping_any_byte_of_any_record_breaks_the_chain() {
        let alice = key(1);
        let mut chain = Chain::new();
        chain.invite(&alice, &key(100), InviteRole::Partner);
        chain.join(&key(2), &key(100)).unwrap();
        chain
            .push(
                AclBody::RemoveDevice {
                    device: dev(&key(2)),
                    by: dev(&alice),
                    last_counter: 0,
                },
                &[&alice],
            )
            .unwrap();
        chain
            .push(
                AclBody::RotateEpoch {
                    epoch: 1,
                    key_check: [9; 32],
                    by: dev(&alice),
                },
                &[&alice],
            )
            .unwrap();
        let limits = Limits::default();
        for (r, original) in chain.records.iter().enumerate() {
            // The chain up to the tampered record is checked once; the tampered record
            // must then be refused right where it sits.
            let before =
                (r > 0).then(|| AclState::from_records(&chain.records[..r], &limits).unwrap());
            let bytes = original.encode();
            for i in 0..bytes.len() {
                let mut tampered = bytes.clone();
                tampered[i] ^= 0x01;
                let Ok(record) = AclRecord::decode(&tampered) else {
                    continue;
                };
                let refused = match &before {
                    None => AclState::from_records(&[record], &limits).is_err(),
                    Some(state) => state.clone().replay(&record).is_err(),
                };
                assert!(refused, "flipping byte {i} of record {r} went unnoticed");
            }
        }
    }

    /// Genesis by the key with seed 0x01 × 32, for space 0x05 × 16, recipient 0x07 × 32
    /// and key check 0x08 × 32: the vector docs/protocol.md quotes.
    #[test]
    fn genesis_test_vector_is_stable() {
        let genesis = &Chain::new().records[0];
        let encoded = hex::encode(genesis.encode());
        let message = hex::encode(AclRecord::signing_message(&genesis.prev, &genesis.body));
        let hash = hex::encode(genesis.hash());
        let report = format!(
            "\nsigning message: {message}\nrecord hash:     {hash}\nencoding:        {encoded}\n"
        );
        assert_eq!(
            message, "feb05ccfb2bbd31890fbc7970524b995f8b29e584dfa99e041a2dc2c13c15009",
            "{report}"
        );
        assert_eq!(
            hash, "856fcb0fc724975a6962dfddfde709f9b72861120b0282c110a94378fc95b4ff",
            "{report}"
        );
        assert_eq!(
            encoded,
            concat!(
                "01",                                                               // version
                "0000000000000000000000000000000000000000000000000000000000000000", // prev
                "00",                                                               // genesis
                "05050505050505050505050505050505",                                 // space
                "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", // device
                "0707070707070707070707070707070707070707070707070707070707070707", // recipient
                "00000000",                                                         // epoch
                "0808080808080808080808080808080808080808080808080808080808080808", // key check
                "01",                                                               // 1 signature
                "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", // signer
                "10bf4c8e2949711a7428ecbc7a323b7c929e6f24dae590d3e337687869e97cc0",
                "092e06a2a7b648e841a76ba6eb99e20b08fbe4779851e702d8cd878396d87d0a",
            ),
            "{report}"
        );
    }

    #[test]
    fn record_hash_and_signing_message_are_domain_separated() {
        let chain = Chain::new();
        let genesis = &chain.records[0];
        assert_ne!(
            genesis.hash(),
            AclRecord::signing_message(&genesis.prev, &genesis.body)
        );
        assert_eq!(chain.state.head(), genesis.hash());
    }

    proptest! {
        #[test]
        fn acl_records_round_trip(record in any_acl_record()) {
            prop_assert_eq!(AclRecord::decode(&record.encode())?, record);
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AclRecord::decode(&bytes);
        }

        #[test]
        fn mutated_records_never_panic(
            record in any_acl_record(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = record.encode();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let _ = AclRecord::decode(&bytes);
            let _ = AclRecord::decode(&bytes[..cut.index(bytes.len())]);
        }
    }
}
