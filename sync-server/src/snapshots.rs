//! Snapshots on the relay: a member's `PushSnapshot` is only a proposal, kept beside the
//! envelopes it covers; it replaces them once a device of the *other* person sends a
//! `Countersign` the relay accepts (docs/protocol.md, "Snapshots"). One member alone can
//! therefore not compact a space's history away: not a buggy client, not a hostile one
//! with a validly signed snapshot of garbage.
//!
//! The relay cannot open a snapshot, so it judges only what it can check: the
//! countersignature verifies (`hearth_proto::judge_countersignature`), the countersigner is
//! a current member and belongs to another person than the snapshot's author (from the ACL
//! chain, `AclState::person_of`), and it names the very proposal waiting. Those decisions
//! are the pure functions here ([`decide_countersign`], [`shown_to`]); [`countersign`] runs
//! them on the store thread against the stored chain and proposal, and accepts in the same
//! job, so a proposal replaced meanwhile is never accepted on another's countersignature.

use hearth_proto::{
    AclState, ConsentFault, Countersignature, DeviceId, Envelope, Judged, Limits, SpaceId,
    judge_countersignature,
};

use crate::app::verify_chain;
use crate::store::{Proposal, Storage, StoreError};

/// A `Countersign` as the relay received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountersignRequest {
    /// The seq the countersigned snapshot covers.
    pub(crate) covers_seq: u64,
    /// The hash of the snapshot's bytes it names.
    pub(crate) snapshot: [u8; 32],
    /// Who countersigned, and the signature.
    pub(crate) consent: Countersignature,
}

/// Why a `Countersign` was refused; nothing was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountersignRefusal {
    /// The connection's own device is no longer a member.
    Removed,
    /// No proposal waits (none was pushed, or it was accepted already).
    NoProposal {
        /// The cover the request named.
        covers_seq: u64,
    },
    /// Another proposal waits than the one countersigned (it was replaced meanwhile).
    Changed {
        /// The cover the request named.
        covers_seq: u64,
        /// The cover of the proposal waiting.
        waiting: u64,
    },
    /// The countersignature itself does not count.
    Fault(ConsentFault),
}

/// The relay's decision on a `Countersign` from a connection logged in as `sender`, with
/// `proposal` waiting, under the ACL `state`: the sender must still be a member, the
/// request must name the proposal waiting (its cover and hash), and the countersignature
/// must count for it ([`judge_countersignature`], offered now: a current member of another
/// person than the snapshot's author).
///
/// # Errors
/// The [`CountersignRefusal`].
pub(crate) fn decide_countersign(
    state: &AclState,
    sender: &DeviceId,
    proposal: Option<&Proposal>,
    request: &CountersignRequest,
) -> Result<(), CountersignRefusal> {
    if !state.is_member(sender) {
        return Err(CountersignRefusal::Removed);
    }
    let Some(proposal) = proposal else {
        return Err(CountersignRefusal::NoProposal {
            covers_seq: request.covers_seq,
        });
    };
    if proposal.covers_seq != request.covers_seq || proposal.hash != request.snapshot {
        return Err(CountersignRefusal::Changed {
            covers_seq: request.covers_seq,
            waiting: proposal.covers_seq,
        });
    }
    // Stored only after it decoded and verified as a snapshot.
    let envelope = Envelope::decode(&proposal.bytes)
        .map_err(|_| CountersignRefusal::Fault(ConsentFault::NotASnapshot))?;
    judge_countersignature(
        state,
        envelope.header(),
        &proposal.hash,
        &request.consent,
        Judged::Offered,
    )
    .map_err(CountersignRefusal::Fault)
}

/// Whether the proposal by `author` is shown to the subscribing device `subscriber`: only
/// to current members of the other person, the ones whose countersignature can count (the
/// author's own devices would download it on every sync for nothing).
pub(crate) fn shown_to(state: &AclState, subscriber: &DeviceId, author: &DeviceId) -> bool {
    state.is_member(subscriber) && state.other_people(author, subscriber)
}

/// Judges `request` from `sender` against the stored chain and proposal of `space` and,
/// if it counts, accepts the proposal (the store drops what it covers), all in one job on
/// the store thread.
///
/// # Errors
/// A [`StoreError`] (the space is gone, the database failed); the inner `Err` is the
/// relay's refusal.
pub(crate) fn countersign(
    store: &mut dyn Storage,
    limits: &Limits,
    space: &SpaceId,
    sender: &DeviceId,
    request: &CountersignRequest,
) -> Result<Result<(), CountersignRefusal>, StoreError> {
    let key = space.as_bytes();
    let chain = verify_chain(store.acl(key)?, limits)?;
    let proposal = store.proposal(key)?;
    if let Err(refusal) = decide_countersign(&chain.state, sender, proposal.as_ref(), request) {
        return Ok(Err(refusal));
    }
    store.accept_snapshot(
        key,
        request.covers_seq,
        &request.snapshot,
        request.consent.device.as_bytes(),
        &request.consent.signature,
    )?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;
    use hearth_proto::test_support::{device, invite, key, signed_acl, signed_envelope};
    use hearth_proto::{
        AclBody, AclRecord, EnvelopeHeader, EnvelopeKind, InviteRole, countersign_message,
        snapshot_hash,
    };

    use super::*;

    const SPACE: SpaceId = SpaceId::from_bytes([5; 16]);

    /// Sam (1) with his tablet (3), Jordan (2); a stranger is key 66.
    fn state() -> AclState {
        let (sam, jordan, tablet) = (key(1), key(2), key(3));
        let mut records = vec![signed_acl(
            [0; 32],
            AclBody::Genesis {
                space: SPACE,
                device: device(&sam),
                recipient: [7; 32],
                epoch: 0,
                key_check: [8; 32],
            },
            &[&sam],
        )];
        for (by, joining, invite_key, role) in [
            (&sam, &jordan, 100, InviteRole::Partner),
            (&sam, &tablet, 101, InviteRole::OwnDevice),
        ] {
            let prev = records.last().map(AclRecord::hash).unwrap_or_default();
            let offer = signed_acl(
                prev,
                AclBody::Invite {
                    invite: invite(&key(invite_key)),
                    expires_at_ms: u64::MAX,
                    role,
                    by: device(by),
                },
                &[by],
            );
            let add = signed_acl(
                offer.hash(),
                AclBody::AddDevice {
                    device: device(joining),
                    recipient: [9; 32],
                    invite: invite(&key(invite_key)),
                },
                &[joining, &key(invite_key)],
            );
            records.extend([offer, add]);
        }
        AclState::from_records(&records, &Limits::default()).unwrap()
    }

    /// Sam's proposal covering seq 40.
    fn proposal() -> Proposal {
        let bytes = signed_envelope(
            1,
            EnvelopeHeader {
                kind: EnvelopeKind::Snapshot { covers_seq: 40 },
                space: SPACE,
                epoch: 0,
                author: device(&key(1)),
                counter: 9,
            },
            b"sealed document".to_vec(),
        )
        .encode();
        Proposal {
            covers_seq: 40,
            author: *device(&key(1)).as_bytes(),
            hash: snapshot_hash(&bytes),
            bytes,
        }
    }

    fn request_by(seed: u8, proposal: &Proposal) -> CountersignRequest {
        let signer = key(seed);
        let message = countersign_message(&SPACE, proposal.covers_seq, &proposal.hash);
        CountersignRequest {
            covers_seq: proposal.covers_seq,
            snapshot: proposal.hash,
            consent: Countersignature {
                device: device(&signer),
                signature: signer.sign(&message).to_bytes(),
            },
        }
    }

    #[test]
    fn the_other_persons_countersignature_of_the_waiting_proposal_is_accepted() {
        let p = proposal();
        let jordan = device(&key(2));
        assert_eq!(
            decide_countersign(&state(), &jordan, Some(&p), &request_by(2, &p)),
            Ok(())
        );
        // Sent by any member's connection: the signature says whose consent it is.
        assert_eq!(
            decide_countersign(&state(), &device(&key(1)), Some(&p), &request_by(2, &p)),
            Ok(())
        );
    }

    #[test]
    fn a_countersignature_by_the_authors_own_person_is_refused() {
        let p = proposal();
        for seed in [1, 3] {
            assert_eq!(
                decide_countersign(
                    &state(),
                    &device(&key(seed)),
                    Some(&p),
                    &request_by(seed, &p)
                ),
                Err(CountersignRefusal::Fault(ConsentFault::SamePerson)),
                "device {seed}"
            );
        }
    }

    #[test]
    fn a_stranger_or_a_bad_signature_is_refused() {
        let p = proposal();
        let jordan = device(&key(2));
        assert_eq!(
            decide_countersign(&state(), &jordan, Some(&p), &request_by(66, &p)),
            Err(CountersignRefusal::Fault(ConsentFault::NotAMember))
        );
        let mut forged = request_by(2, &p);
        forged.consent.signature[0] ^= 1;
        assert_eq!(
            decide_countersign(&state(), &jordan, Some(&p), &forged),
            Err(CountersignRefusal::Fault(ConsentFault::BadSignature))
        );
    }

    #[test]
    fn only_the_proposal_waiting_can_be_countersigned_and_only_by_a_member_connection() {
        let p = proposal();
        let jordan = device(&key(2));
        let request = request_by(2, &p);
        assert_eq!(
            decide_countersign(&state(), &jordan, None, &request),
            Err(CountersignRefusal::NoProposal { covers_seq: 40 })
        );
        let replaced = Proposal {
            covers_seq: 41,
            ..proposal()
        };
        assert_eq!(
            decide_countersign(&state(), &jordan, Some(&replaced), &request),
            Err(CountersignRefusal::Changed {
                covers_seq: 40,
                waiting: 41
            })
        );
        let other_bytes = Proposal {
            hash: snapshot_hash(b"other"),
            ..proposal()
        };
        assert!(matches!(
            decide_countersign(&state(), &jordan, Some(&other_bytes), &request),
            Err(CountersignRefusal::Changed { .. })
        ));
        assert_eq!(
            decide_countersign(&state(), &device(&key(66)), Some(&p), &request),
            Err(CountersignRefusal::Removed)
        );
    }

    #[test]
    fn a_proposal_is_shown_only_to_the_other_persons_devices() {
        let state = state();
        let sam = device(&key(1));
        assert!(shown_to(&state, &device(&key(2)), &sam));
        assert!(!shown_to(&state, &sam, &sam));
        assert!(!shown_to(&state, &device(&key(3)), &sam), "Sam's tablet");
        assert!(!shown_to(&state, &device(&key(66)), &sam));
        assert!(shown_to(&state, &device(&key(3)), &device(&key(2))));
    }
}
