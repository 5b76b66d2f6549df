//! Fixed test keys and signing helpers, and the proptest strategies shared by the codec
//! tests of every module, so each round-trip and tamper test draws from the same space of
//! values.
//!
//! The signing helpers are public behind the `test-support` feature, so the relay's unit
//! tests sign envelopes and ACL records with the same keys as this crate's own tests; the
//! strategies stay private to this crate's tests.

use ed25519_dalek::{Signer, SigningKey};
#[cfg(test)]
use proptest::collection::vec;
#[cfg(test)]
use proptest::prelude::*;

#[cfg(test)]
use crate::Limits;
#[cfg(test)]
use crate::acl::InviteRole;
use crate::acl::{AclBody, AclRecord};
#[cfg(test)]
use crate::envelope::EnvelopeKind;
use crate::envelope::{Envelope, EnvelopeHeader};
#[cfg(test)]
use crate::frame::{ClientFrame, RejectCode, RelayFrame};
#[cfg(test)]
use crate::ids::SpaceId;
use crate::ids::{DeviceId, InviteId};

/// A deterministic signing key: every byte of the seed is `seed`.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The device id of `key`.
pub fn device(key: &SigningKey) -> DeviceId {
    DeviceId::from_bytes(key.verifying_key().to_bytes())
}

/// The invite id of `key`, for a key used as an invite key.
pub fn invite(key: &SigningKey) -> InviteId {
    InviteId::from_bytes(key.verifying_key().to_bytes())
}

/// An ACL record after `prev` with `body`, signed by `signers` in order.
pub fn signed_acl(prev: [u8; 32], body: AclBody, signers: &[&SigningKey]) -> AclRecord {
    let message = AclRecord::signing_message(&prev, &body);
    AclRecord {
        prev,
        body,
        signatures: signers
            .iter()
            .map(|k| (k.verifying_key().to_bytes(), k.sign(&message).to_bytes()))
            .collect(),
    }
}

/// An envelope over `ciphertext` validly signed by [`key`]`(seed)`, which becomes the author.
pub fn signed_envelope(seed: u8, mut header: EnvelopeHeader, ciphertext: Vec<u8>) -> Envelope {
    let key = key(seed);
    header.author = device(&key);
    let nonce = [seed; 24];
    let message = Envelope::signed_message(&header, &nonce, &ciphertext);
    Envelope::from_parts(header, nonce, ciphertext, key.sign(&message).to_bytes())
}

#[cfg(test)]
fn sig64() -> impl Strategy<Value = [u8; 64]> {
    vec(any::<u8>(), 64).prop_map(|v| {
        let mut out = [0u8; 64];
        out.copy_from_slice(&v);
        out
    })
}

#[cfg(test)]
pub(crate) fn any_space() -> impl Strategy<Value = SpaceId> {
    any::<[u8; 16]>().prop_map(SpaceId::from_bytes)
}

#[cfg(test)]
pub(crate) fn any_device() -> impl Strategy<Value = DeviceId> {
    any::<[u8; 32]>().prop_map(DeviceId::from_bytes)
}

#[cfg(test)]
fn any_invite() -> impl Strategy<Value = InviteId> {
    any::<[u8; 32]>().prop_map(InviteId::from_bytes)
}

#[cfg(test)]
pub(crate) fn any_header() -> impl Strategy<Value = EnvelopeHeader> {
    let kind = prop_oneof![
        Just(EnvelopeKind::Changes),
        any::<u64>().prop_map(|covers_seq| EnvelopeKind::Snapshot { covers_seq }),
    ];
    (kind, any_space(), any::<u32>(), any_device(), any::<u64>()).prop_map(
        |(kind, space, epoch, author, counter)| EnvelopeHeader {
            kind,
            space,
            epoch,
            author,
            counter,
        },
    )
}

#[cfg(test)]
fn any_role() -> impl Strategy<Value = InviteRole> {
    prop_oneof![Just(InviteRole::Partner), Just(InviteRole::OwnDevice)]
}

#[cfg(test)]
fn any_body() -> impl Strategy<Value = AclBody> {
    prop_oneof![
        (
            any_space(),
            any_device(),
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(space, device, recipient, epoch, key_check)| {
                AclBody::Genesis {
                    space,
                    device,
                    recipient,
                    epoch,
                    key_check,
                }
            }),
        (any_invite(), any::<u64>(), any_role(), any_device()).prop_map(
            |(invite, expires_at_ms, role, by)| AclBody::Invite {
                invite,
                expires_at_ms,
                role,
                by
            }
        ),
        (any_device(), any::<[u8; 32]>(), any_invite()).prop_map(|(device, recipient, invite)| {
            AclBody::AddDevice {
                device,
                recipient,
                invite,
            }
        }),
        (any_device(), any_device(), any::<u64>()).prop_map(|(device, by, last_counter)| {
            AclBody::RemoveDevice {
                device,
                by,
                last_counter,
            }
        }),
        (any::<u32>(), any::<[u8; 32]>(), any_device()).prop_map(|(epoch, key_check, by)| {
            AclBody::RotateEpoch {
                epoch,
                key_check,
                by,
            }
        }),
    ]
}

#[cfg(test)]
pub(crate) fn any_acl_record() -> impl Strategy<Value = AclRecord> {
    (
        any::<[u8; 32]>(),
        any_body(),
        vec((any::<[u8; 32]>(), sig64()), 0..=2),
    )
        .prop_map(|(prev, body, signatures)| AclRecord {
            prev,
            body,
            signatures,
        })
}

#[cfg(test)]
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..200)
}

#[cfg(test)]
fn any_limits() -> impl Strategy<Value = Limits> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(|(a, b, c, d, e, f)| Limits {
            max_frame_bytes: a,
            max_envelope_bytes: b,
            max_devices_per_space: c,
            max_spaces: d,
            max_bytes_per_space: e,
            max_pushes_per_sec: f,
        })
}

#[cfg(test)]
pub(crate) fn any_client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u16>(), "[a-z0-9/.\\- ]{0,64}")
            .prop_map(|(version, client)| ClientFrame::Hello { version, client }),
        (
            any_device(),
            any_space(),
            any::<u64>(),
            sig64(),
            any::<bool>()
        )
            .prop_map(
                |(device, space, time_ms, signature, as_invite)| ClientFrame::Auth {
                    device,
                    space,
                    time_ms,
                    signature,
                    as_invite
                }
            ),
        (any_space(), any::<u64>())
            .prop_map(|(space, since_seq)| ClientFrame::Subscribe { space, since_seq }),
        bytes().prop_map(|envelope| ClientFrame::Push { envelope }),
        bytes().prop_map(|envelope| ClientFrame::PushSnapshot { envelope }),
        bytes().prop_map(|record| ClientFrame::PutAcl { record }),
        (any_device(), any::<u32>(), bytes()).prop_map(|(device, epoch, blob)| {
            ClientFrame::PutLockbox {
                device,
                epoch,
                blob,
            }
        }),
        any::<u32>().prop_map(|epoch| ClientFrame::GetLockbox { epoch }),
        (any_space(), sig64())
            .prop_map(|(space, signature)| ClientFrame::DeleteSpace { space, signature }),
        any::<u64>().prop_map(|nonce| ClientFrame::Ping { nonce }),
        (bytes(), proptest::option::of(".{0,40}"))
            .prop_map(|(genesis, token)| ClientFrame::CreateSpace { genesis, token }),
        (any::<u64>(), any::<[u8; 32]>(), any_device(), sig64()).prop_map(
            |(covers_seq, snapshot, device, signature)| ClientFrame::Countersign {
                covers_seq,
                snapshot,
                device,
                signature
            }
        ),
        (any_space(), any::<u64>())
            .prop_map(|(space, since_seq)| ClientFrame::SubscribeEnvelopes { space, since_seq }),
        any::<[u8; 32]>().prop_map(|nonce| ClientFrame::Identify { nonce }),
    ]
}

#[cfg(test)]
fn any_reject_code() -> impl Strategy<Value = RejectCode> {
    prop_oneof![
        (1u16..=16).prop_map(RejectCode::from),
        Just(RejectCode::Unrecognized)
    ]
}

#[cfg(test)]
pub(crate) fn any_relay_frame() -> impl Strategy<Value = RelayFrame> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            any_limits(),
            vec(any::<u16>(), 0..4)
        )
            .prop_map(
                |(relay_id, nonce, limits, versions)| RelayFrame::Challenge {
                    relay_id,
                    nonce,
                    limits,
                    versions
                }
            ),
        (vec((any::<u64>(), bytes()), 0..4), any::<u64>())
            .prop_map(|(items, head)| RelayFrame::Batch { items, head }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(seq, counter)| RelayFrame::Committed { seq, counter }),
        (any::<u64>(), bytes()).prop_map(|(seq, envelope)| RelayFrame::Event { seq, envelope }),
        vec(bytes(), 0..4).prop_map(|records| RelayFrame::AclChanged { records }),
        (any::<u32>(), bytes()).prop_map(|(epoch, blob)| RelayFrame::Lockbox { epoch, blob }),
        (any_reject_code(), ".{0,80}")
            .prop_map(|(code, message)| RelayFrame::Reject { code, message }),
        any::<u64>().prop_map(|nonce| RelayFrame::Pong { nonce }),
        (
            any_space(),
            any_device(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            sig64(),
            any::<u64>()
        )
            .prop_map(
                |(space, device, relay_id, nonce, signature, deleted_at_ms)| {
                    RelayFrame::SpaceDeleted {
                        space,
                        device,
                        relay_id,
                        nonce,
                        signature,
                        deleted_at_ms,
                    }
                }
            ),
        bytes().prop_map(|envelope| RelayFrame::Proposed { envelope }),
        (any::<u64>(), any_device(), sig64()).prop_map(|(covers_seq, device, signature)| {
            RelayFrame::Countersigned {
                covers_seq,
                device,
                signature,
            }
        }),
        (any::<[u8; 32]>(), any::<u64>(), sig64()).prop_map(|(key, time_ms, signature)| {
            RelayFrame::Identity {
                key,
                time_ms,
                signature,
            }
        }),
    ]
}
