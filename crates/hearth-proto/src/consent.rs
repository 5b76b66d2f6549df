//! Snapshot consent (docs/protocol.md, "Snapshots"): a snapshot stands in for the envelopes
//! it covers only once a device of the *other* person has countersigned it. The author's
//! signature on the envelope says who made it; the countersignature says that someone who
//! does not depend on the author's honesty opened it, found a well-formed document holding
//! everything they knew up to its cover, and agreed that the relay may drop what it covers.
//!
//! This module fixes what is signed and the rule both sides apply to a countersignature:
//! the relay before it drops anything ([`Judged::Offered`]), and a device before it takes
//! a snapshot the relay hands it instead of envelopes ([`Judged::Stored`]). Signing needs
//! the device's secret key and lives in hearth-crypto; judging needs only public keys and
//! the ACL, so the relay can do it without being able to read or make a snapshot.
//!
//! # What is signed
//!
//! `BLAKE3-derive-key("hearth countersign v1", space (16) ‖ covers_seq (u64 BE) ‖
//! snapshot hash (32))`, where the snapshot hash is the plain BLAKE3 hash of the snapshot
//! envelope's canonical bytes ([`snapshot_hash`]): the countersignature pins every byte of
//! the one envelope the countersigner judged (header, author, epoch and counter included),
//! and names the space and the cover again so it can never stand for another.

use crate::acl::AclState;
use crate::envelope::{EnvelopeHeader, EnvelopeKind};
use crate::ids::{DeviceId, SpaceId};
use crate::signature::verify_signature;

/// BLAKE3 derive-key context of [`countersign_message`].
pub const COUNTERSIGN_CONTEXT: &str = "hearth countersign v1";

/// The hash a countersignature names a snapshot by: BLAKE3 over the snapshot envelope's
/// canonical bytes, exactly as pushed and stored.
pub fn snapshot_hash(envelope: &[u8]) -> [u8; 32] {
    *blake3::hash(envelope).as_bytes()
}

/// The 32-byte message a countersignature signs (see the module docs).
pub fn countersign_message(space: &SpaceId, covers_seq: u64, snapshot: &[u8; 32]) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(COUNTERSIGN_CONTEXT)
        .update(space.as_bytes())
        .update(&covers_seq.to_be_bytes())
        .update(snapshot)
        .finalize()
        .as_bytes()
}

/// A device's countersignature of one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Countersignature {
    /// The countersigning device.
    pub device: DeviceId,
    /// Its Ed25519 signature over [`countersign_message`].
    pub signature: [u8; 64],
}

/// When a countersignature is judged, which decides how a countersigner removed since
/// counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Offered now (the relay, on `Countersign`): the countersigner must be a current
    /// member.
    Offered,
    /// Accepted before (a device taking the relay's snapshot): a countersigner removed
    /// since still counts if the snapshot was sealed under an epoch older than the
    /// current one, i.e. before the rotation that shut it out, as a removed device's old
    /// envelopes do.
    Stored,
}

/// Why a countersignature does not let a snapshot stand in for envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsentFault {
    /// The envelope is not a snapshot.
    #[error("it is not a snapshot")]
    NotASnapshot,
    /// The signature is not the named device's over this snapshot, space and cover.
    #[error("its countersignature does not verify for this snapshot")]
    BadSignature,
    /// The snapshot's author never joined the space.
    #[error("its author is not in this space's ACL")]
    UnknownAuthor,
    /// The countersigner is not a member (never was, or was removed before it could
    /// countersign this).
    #[error("its countersigner is not a member of this space")]
    NotAMember,
    /// The countersigner belongs to the same person as the author: a person cannot vouch
    /// for their own snapshot.
    #[error("it is countersigned by a device of the same person who made it, not the other")]
    SamePerson,
}

/// Whether `consent` lets the snapshot whose header is `header` and whose canonical bytes
/// hash to `hash` ([`snapshot_hash`]) stand in for the envelopes it covers, under the ACL
/// `state`: the signature is `consent.device`'s over [`countersign_message`], and the
/// countersigner is a member (see [`Judged`]) who belongs to another person than the
/// snapshot's author ([`AclState::person_of`]).
///
/// # Errors
/// The first [`ConsentFault`] that applies.
pub fn judge_countersignature(
    state: &AclState,
    header: &EnvelopeHeader,
    hash: &[u8; 32],
    consent: &Countersignature,
    judged: Judged,
) -> Result<(), ConsentFault> {
    let EnvelopeKind::Snapshot { covers_seq } = header.kind else {
        return Err(ConsentFault::NotASnapshot);
    };
    let message = countersign_message(&header.space, covers_seq, hash);
    verify_signature(consent.device.as_bytes(), &message, &consent.signature)
        .map_err(|_| ConsentFault::BadSignature)?;
    if state.person_of(&header.author).is_none() {
        return Err(ConsentFault::UnknownAuthor);
    }
    let member = state.is_member(&consent.device)
        || (judged == Judged::Stored
            && state.was_removed(&consent.device)
            && header.epoch < state.epoch());
    if !member || state.person_of(&consent.device).is_none() {
        return Err(ConsentFault::NotAMember);
    }
    if !state.other_people(&header.author, &consent.device) {
        return Err(ConsentFault::SamePerson);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::test_support::{key, signed_acl};
    use crate::{AclBody, AclRecord, InviteId, InviteRole, Limits};

    fn dev(k: &SigningKey) -> DeviceId {
        DeviceId::from_bytes(k.verifying_key().to_bytes())
    }

    const SPACE: [u8; 16] = [5; 16];

    /// Sam (1) and his phone (3); Jordan (2) and his laptop (4), removed, then a rotation.
    fn chain() -> (Vec<AclRecord>, AclState) {
        let (sam, jordan, phone, laptop) = (key(1), key(2), key(3), key(4));
        let mut records = vec![signed_acl(
            [0; 32],
            AclBody::Genesis {
                space: SpaceId::from_bytes(SPACE),
                device: dev(&sam),
                recipient: [7; 32],
                epoch: 0,
                key_check: [8; 32],
            },
            &[&sam],
        )];
        let mut push = |body: AclBody, signers: &[&SigningKey]| {
            let prev = records.last().map(AclRecord::hash).unwrap_or_default();
            records.push(signed_acl(prev, body, signers));
        };
        let invite = |n: u8| InviteId::from_bytes(key(n).verifying_key().to_bytes());
        for (by, joining, invite_key, role) in [
            (&sam, &jordan, 100, InviteRole::Partner),
            (&sam, &phone, 101, InviteRole::OwnDevice),
            (&jordan, &laptop, 102, InviteRole::OwnDevice),
        ] {
            push(
                AclBody::Invite {
                    invite: invite(invite_key),
                    expires_at_ms: u64::MAX,
                    role,
                    by: dev(by),
                },
                &[by],
            );
            push(
                AclBody::AddDevice {
                    device: dev(joining),
                    recipient: [9; 32],
                    invite: invite(invite_key),
                },
                &[joining, &key(invite_key)],
            );
        }
        push(
            AclBody::RemoveDevice {
                device: dev(&laptop),
                by: dev(&jordan),
                last_counter: 0,
            },
            &[&jordan],
        );
        push(
            AclBody::RotateEpoch {
                epoch: 1,
                key_check: [6; 32],
                by: dev(&jordan),
            },
            &[&jordan],
        );
        let state = AclState::from_records(&records, &Limits::default()).unwrap();
        (records, state)
    }

    fn snapshot_by(author: &SigningKey, covers_seq: u64, epoch: u32) -> EnvelopeHeader {
        EnvelopeHeader {
            kind: EnvelopeKind::Snapshot { covers_seq },
            space: SpaceId::from_bytes(SPACE),
            epoch,
            author: dev(author),
            counter: 9,
        }
    }

    fn countersigned(
        by: &SigningKey,
        header: &EnvelopeHeader,
        hash: &[u8; 32],
    ) -> Countersignature {
        let EnvelopeKind::Snapshot { covers_seq } = header.kind else {
            panic!("a snapshot");
        };
        let message = countersign_message(&header.space, covers_seq, hash);
        Countersignature {
            device: dev(by),
            signature: by.sign(&message).to_bytes(),
        }
    }

    #[test]
    fn the_countersign_message_binds_space_cover_and_snapshot_and_nothing_else_signs_it() {
        let space = SpaceId::from_bytes(SPACE);
        let hash = snapshot_hash(b"a snapshot envelope");
        let message = countersign_message(&space, 40, &hash);
        assert_ne!(
            message,
            countersign_message(&SpaceId::from_bytes([6; 16]), 40, &hash)
        );
        assert_ne!(message, countersign_message(&space, 41, &hash));
        assert_ne!(
            message,
            countersign_message(&space, 40, &snapshot_hash(b"another snapshot"))
        );
        assert_ne!(hash, snapshot_hash(b"a snapshot envelope "));
        assert_eq!(hash, *blake3::hash(b"a snapshot envelope").as_bytes());
        // Its own context: never the message of an envelope, a login or an ACL record.
        let mut unkeyed = Vec::new();
        unkeyed.extend_from_slice(space.as_bytes());
        unkeyed.extend_from_slice(&40u64.to_be_bytes());
        unkeyed.extend_from_slice(&hash);
        for context in [
            crate::envelope::ENVELOPE_SIGNATURE_CONTEXT,
            crate::acl::ACL_SIGNATURE_CONTEXT,
            crate::frame::AUTH_CONTEXT,
        ] {
            assert_ne!(
                message,
                *blake3::Hasher::new_derive_key(context)
                    .update(&unkeyed)
                    .finalize()
                    .as_bytes()
            );
        }
        // Stable across versions: a test vector.
        assert_eq!(
            hex::encode(countersign_message(&space, 40, &[0x11; 32])),
            hex::encode(
                blake3::Hasher::new_derive_key("hearth countersign v1")
                    .update(&[5; 16])
                    .update(&[0, 0, 0, 0, 0, 0, 0, 40])
                    .update(&[0x11; 32])
                    .finalize()
                    .as_bytes()
            )
        );
    }

    #[test]
    fn the_other_persons_device_may_countersign() {
        let (_, state) = chain();
        let header = snapshot_by(&key(1), 40, 1);
        let hash = snapshot_hash(b"sam's snapshot");
        for judged in [Judged::Offered, Judged::Stored] {
            let consent = countersigned(&key(2), &header, &hash);
            assert_eq!(
                judge_countersignature(&state, &header, &hash, &consent, judged),
                Ok(())
            );
        }
        // Either person's snapshot, countersigned by any device of the other.
        let jordans = snapshot_by(&key(2), 40, 1);
        let consent = countersigned(&key(3), &jordans, &hash);
        assert_eq!(
            judge_countersignature(&state, &jordans, &hash, &consent, Judged::Offered),
            Ok(())
        );
    }

    #[test]
    fn a_device_of_the_authors_own_person_may_not() {
        let (_, state) = chain();
        let header = snapshot_by(&key(1), 40, 1);
        let hash = snapshot_hash(b"sam's snapshot");
        for by in [key(1), key(3)] {
            let consent = countersigned(&by, &header, &hash);
            assert_eq!(
                judge_countersignature(&state, &header, &hash, &consent, Judged::Offered),
                Err(ConsentFault::SamePerson)
            );
        }
    }

    #[test]
    fn a_signature_over_anything_else_does_not_count() {
        let (_, state) = chain();
        let header = snapshot_by(&key(1), 40, 1);
        let hash = snapshot_hash(b"sam's snapshot");
        let other = snapshot_hash(b"another snapshot");
        let cases = [
            countersigned(&key(2), &header, &other),
            countersigned(&key(2), &snapshot_by(&key(1), 41, 1), &hash),
            Countersignature {
                // Jordan's name on the phone's signature.
                device: dev(&key(2)),
                ..countersigned(&key(3), &header, &hash)
            },
            Countersignature {
                device: dev(&key(2)),
                signature: [0; 64],
            },
        ];
        for consent in cases {
            assert_eq!(
                judge_countersignature(&state, &header, &hash, &consent, Judged::Offered),
                Err(ConsentFault::BadSignature)
            );
        }
        let changes = EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            ..header
        };
        let consent = countersigned(&key(2), &header, &hash);
        assert_eq!(
            judge_countersignature(&state, &changes, &hash, &consent, Judged::Offered),
            Err(ConsentFault::NotASnapshot)
        );
    }

    #[test]
    fn a_stranger_or_a_removed_device_counts_only_as_the_rules_say() {
        let (_, state) = chain();
        let hash = snapshot_hash(b"sam's snapshot");
        let stranger = key(66);
        let header = snapshot_by(&key(1), 40, 1);
        let consent = countersigned(&stranger, &header, &hash);
        for judged in [Judged::Offered, Judged::Stored] {
            assert_eq!(
                judge_countersignature(&state, &header, &hash, &consent, judged),
                Err(ConsentFault::NotAMember)
            );
        }
        // Jordan's laptop, removed and rotated out: it cannot countersign now, and a
        // countersignature of it counts later only for a snapshot of an epoch it held.
        let laptop = key(4);
        let current = countersigned(&laptop, &header, &hash);
        assert_eq!(
            judge_countersignature(&state, &header, &hash, &current, Judged::Stored),
            Err(ConsentFault::NotAMember)
        );
        let old = snapshot_by(&key(1), 40, 0);
        let before = countersigned(&laptop, &old, &hash);
        assert_eq!(
            judge_countersignature(&state, &old, &hash, &before, Judged::Offered),
            Err(ConsentFault::NotAMember)
        );
        assert_eq!(
            judge_countersignature(&state, &old, &hash, &before, Judged::Stored),
            Ok(())
        );
        // A snapshot by someone not in the chain has no person to be other than.
        let by_stranger = snapshot_by(&stranger, 40, 1);
        let consent = countersigned(&key(2), &by_stranger, &hash);
        assert_eq!(
            judge_countersignature(&state, &by_stranger, &hash, &consent, Judged::Offered),
            Err(ConsentFault::UnknownAuthor)
        );
    }
}
