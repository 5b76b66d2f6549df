//! The session's rules as plain functions: every reject code the relay sends and every
//! path to acceptance, with real keys, signed ACL records and envelopes, and the store's
//! answers handed in by hand. Time is stepped with governor's fake clock.
#![allow(clippy::unwrap_used)] // a panic in a test is the failure report

use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use governor::clock::FakeRelativeClock;
use hearth_proto::test_support::{device, invite, key, signed_acl, signed_envelope};
use hearth_proto::{EnvelopeHeader, InviteRole};

use super::*;
use crate::store::PushOutcome;

/// The secret of the relay these sessions belong to.
const RELAY_SECRET: [u8; 32] = [9; 32];
const NONCE: [u8; 32] = [3; 32];
const NOW: u64 = 1_800_000_000_000;
const SPACE: SpaceId = SpaceId::from_bytes([5; 16]);
const OTHER_SPACE: SpaceId = SpaceId::from_bytes([6; 16]);

fn relay() -> Arc<RelayIdentity> {
    Arc::new(RelayIdentity::from_secret(&RELAY_SECRET))
}

/// The relay id of its `Challenge`: its key's fingerprint.
fn relay_id() -> [u8; 16] {
    relay().relay_id()
}

fn alice() -> SigningKey {
    key(1)
}

fn bob() -> SigningKey {
    key(2)
}

fn stranger() -> SigningKey {
    key(66)
}

/// A space's chain as the store holds it, grown record by record.
struct Space {
    records: Vec<AclRecord>,
    state: AclState,
}

impl Space {
    /// Created by alice.
    fn new() -> Self {
        let genesis = genesis(&alice(), SPACE, 0);
        let state =
            AclState::from_records(std::slice::from_ref(&genesis), &Limits::default()).unwrap();
        Self {
            records: vec![genesis],
            state,
        }
    }

    /// The next record, signed by `signers`.
    fn next(&self, body: AclBody, signers: &[&SigningKey]) -> AclRecord {
        signed_acl(self.state.head(), body, signers)
    }

    fn append(&mut self, body: AclBody, signers: &[&SigningKey]) -> &mut Self {
        let record = self.next(body, signers);
        self.state.apply(&record, NOW).unwrap();
        self.records.push(record);
        self
    }

    fn invite(&mut self, by: &SigningKey, invite_key: &SigningKey, role: InviteRole) -> &mut Self {
        self.append(
            AclBody::Invite {
                invite: invite(invite_key),
                expires_at_ms: NOW + 60_000,
                role,
                by: device(by),
            },
            &[by],
        )
    }

    fn join(&mut self, new: &SigningKey, invite_key: &SigningKey) -> &mut Self {
        self.append(
            AclBody::AddDevice {
                device: device(new),
                recipient: [7; 32],
                invite: invite(invite_key),
            },
            &[new, invite_key],
        )
    }

    fn remove(&mut self, gone: &SigningKey, by: &SigningKey) -> &mut Self {
        self.append(
            AclBody::RemoveDevice {
                device: device(gone),
                by: device(by),
                last_counter: 0,
            },
            &[by],
        )
    }

    fn rotate(&mut self, by: &SigningKey) -> &mut Self {
        let epoch = self.state.epoch() + 1;
        self.append(
            AclBody::RotateEpoch {
                epoch,
                key_check: [8; 32],
                by: device(by),
            },
            &[by],
        )
    }

    /// Alice and bob, bob having joined as the partner with invite key 100.
    fn couple() -> Self {
        let mut space = Self::new();
        space
            .invite(&alice(), &key(100), InviteRole::Partner)
            .join(&bob(), &key(100));
        space
    }

    fn chain(&self) -> Arc<Chain> {
        let encoded = self.records.iter().map(AclRecord::encode).collect();
        Arc::new(verify_chain(encoded, &Limits::default()).unwrap())
    }

    /// What the store answers a `Chain` query with.
    fn answer(&self) -> Answer {
        Answer::Chain(Ok(Some(self.chain())))
    }

    /// What the store thread answers an `AppendAcl` of `record` with: the chain's own
    /// judgement at `now_ms`.
    fn append_answer(&self, record: &AclRecord, now_ms: u64) -> Answer {
        let stored = self.chain();
        let mut chain = Chain {
            records: stored.records.clone(),
            state: stored.state.clone(),
        };
        Answer::Acl(Ok(match chain.state.apply(record, now_ms) {
            Ok(()) => {
                chain.records.push(record.encode());
                Ok(chain)
            }
            Err(refused) => Err(refused),
        }))
    }
}

fn genesis(by: &SigningKey, space: SpaceId, epoch: u32) -> AclRecord {
    signed_acl(
        [0; 32],
        AclBody::Genesis {
            space,
            device: device(by),
            recipient: [7; 32],
            epoch,
            key_check: [8; 32],
        },
        &[by],
    )
}

/// A client address for sessions that do not care which.
const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

/// The relay-wide gate for `admission`, with `per_address` limits, on a fake clock.
fn gate_with(
    admission: Admission,
    per_address: crate::config::PerAddress,
) -> (Arc<Gate<FakeRelativeClock>>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let config = crate::RelayConfig {
        admission: Some(admission),
        per_address,
        ..crate::RelayConfig::default()
    };
    (Arc::new(Gate::new(&config, clock.clone())), clock)
}

/// A session of the client at `peer` through `gate`.
fn session_through(
    gate: &Arc<Gate<FakeRelativeClock>>,
    clock: &FakeRelativeClock,
    peer: IpAddr,
) -> Session<FakeRelativeClock> {
    Session::new(
        1,
        relay(),
        NONCE,
        Limits::default(),
        Arc::clone(gate),
        peer,
        clock.clone(),
    )
}

fn session_with(
    limits: Limits,
    admission: Admission,
) -> (Session<FakeRelativeClock>, FakeRelativeClock) {
    let (gate, clock) = gate_with(admission, crate::config::PerAddress::default());
    let session = Session::new(1, relay(), NONCE, limits, gate, PEER, clock.clone());
    (session, clock)
}

fn session() -> Session<FakeRelativeClock> {
    session_with(Limits::default(), Admission::Open).0
}

fn hello() -> ClientFrame {
    ClientFrame::Hello {
        version: PROTOCOL_VERSION,
        client: "test".into(),
    }
}

fn auth_at(by: &SigningKey, space: SpaceId, as_invite: bool, time_ms: u64) -> ClientFrame {
    let device = device(by);
    let message = auth_message(&relay_id(), &NONCE, time_ms, &space, &device, as_invite);
    ClientFrame::Auth {
        device,
        space,
        time_ms,
        signature: by.sign(&message).to_bytes(),
        as_invite,
    }
}

fn auth(by: &SigningKey, as_invite: bool) -> ClientFrame {
    auth_at(by, SPACE, as_invite, NOW)
}

/// A session past `Hello` and `Auth` as `by`, with the store holding `space`.
fn ready_on(
    mut session: Session<FakeRelativeClock>,
    by: &SigningKey,
    as_invite: bool,
    space: &Space,
) -> Session<FakeRelativeClock> {
    session.on_frame(hello(), NOW);
    let asked = session.on_frame(auth(by, as_invite), NOW);
    assert!(matches!(
        asked.query,
        Some(Query::Chain {
            space: SPACE,
            fresh: true
        })
    ));
    let decision = session.resume(space.answer());
    assert!(rejects(&decision).is_empty(), "{decision:?}");
    assert!(matches!(session.phase(), Phase::Ready(_)));
    session
}

fn ready(by: &SigningKey, space: &Space) -> Session<FakeRelativeClock> {
    ready_on(session(), by, false, space)
}

fn rejects(decision: &Decision) -> Vec<RejectCode> {
    decision
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reject(r) => Some(r.code),
            _ => None,
        })
        .collect()
}

/// The one reject of `decision`, which must ask nothing more.
fn rejected(decision: &Decision) -> RejectCode {
    assert!(decision.query.is_none(), "{decision:?}");
    match rejects(decision).as_slice() {
        [code] => *code,
        other => panic!("expected one reject, got {other:?} in {decision:?}"),
    }
}

fn message(decision: &Decision) -> &str {
    decision
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Reject(r) => Some(r.message.as_str()),
            _ => None,
        })
        .unwrap()
}

fn closes(decision: &Decision) -> Option<Close> {
    decision.effects.iter().find_map(|e| match e {
        Effect::Close(close) => Some(*close),
        _ => None,
    })
}

fn sent(decision: &Decision) -> Vec<&RelayFrame> {
    decision
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(frame) => Some(frame),
            _ => None,
        })
        .collect()
}

fn envelope_as(seed: u8, space: SpaceId, epoch: u32, kind: EnvelopeKind, counter: u64) -> Vec<u8> {
    let header = EnvelopeHeader {
        kind,
        space,
        epoch,
        author: device(&key(seed)),
        counter,
    };
    signed_envelope(seed, header, b"ciphertext".to_vec()).encode()
}

fn changes(seed: u8, counter: u64) -> ClientFrame {
    ClientFrame::Push {
        envelope: envelope_as(seed, SPACE, 0, EnvelopeKind::Changes, counter),
    }
}

/// Pushes `frame` past the chain check (answered with `space`) and returns what is asked
/// of the store.
fn push_to_store(
    session: &mut Session<FakeRelativeClock>,
    frame: ClientFrame,
    space: &Space,
) -> Decision {
    let asked = session.on_frame(frame, NOW);
    assert!(
        matches!(asked.query, Some(Query::Chain { fresh: false, .. })),
        "{asked:?}"
    );
    session.resume(space.answer())
}

// --- the handshake ---

#[test]
fn hello_with_a_supported_version_gets_the_challenge_and_the_limits() {
    let mut session = session();
    let decision = session.on_frame(hello(), NOW);
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::Challenge { relay_id, nonce: NONCE, limits, .. }]
            if *limits == Limits::default() && *relay_id == relay().relay_id()
    ));
    assert_eq!(session.phase(), Phase::Auth);
}

#[test]
fn hello_with_an_unknown_version_names_both_and_closes() {
    let mut session = session();
    let decision = session.on_frame(
        ClientFrame::Hello {
            version: 99,
            client: "future".into(),
        },
        NOW,
    );
    assert_eq!(rejected(&decision), RejectCode::UnsupportedVersion);
    assert!(message(&decision).contains("99"));
    assert_eq!(closes(&decision), Some(CLOSING));
}

#[test]
fn any_frame_before_hello_is_a_bad_frame() {
    let decision = session().on_frame(ClientFrame::Ping { nonce: 1 }, NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
    assert_eq!(closes(&decision), Some(CLOSING));
}

#[test]
fn any_frame_but_auth_after_the_challenge_is_a_bad_frame() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    let decision = session.on_frame(hello(), NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
    assert!(closes(&decision).is_some());
}

#[test]
fn bytes_that_do_not_decode_are_a_bad_frame() {
    let decision = session().on_bytes(&[0xff, 0xff, 0xff], NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_frame_over_the_limit_is_too_large() {
    let limits = Limits {
        max_frame_bytes: 64,
        ..Limits::default()
    };
    let (mut session, _) = session_with(limits, Admission::Open);
    let decision = session.on_bytes(&[0; 65], NOW);
    assert_eq!(rejected(&decision), RejectCode::TooLarge);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_member_device_authenticates_and_gets_the_whole_chain() {
    let space = Space::couple();
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&bob(), false), NOW);
    let decision = session.resume(space.answer());
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { records }] if records.len() == 3
    ));
    assert_eq!(
        session.phase(),
        Phase::Ready(Authed {
            space: SPACE,
            key: device(&bob()),
            as_invite: false
        })
    );
}

#[test]
fn auth_with_a_bad_signature_is_unauthorized_before_any_lookup() {
    let mut forged = auth(&alice(), false);
    if let ClientFrame::Auth { signature, .. } = &mut forged {
        signature[0] ^= 1;
    }
    let mut session = session();
    session.on_frame(hello(), NOW);
    let decision = session.on_frame(forged, NOW);
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
    assert_eq!(message(&decision), UNAUTHORIZED);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_skewed_clock_is_named_before_the_signature_or_the_space_is_looked_at() {
    // Ahead and behind, for a member, a stranger, and a signature that does not verify:
    // the same answer, asked of nobody, so it says nothing about the space.
    let mut forged = auth_at(&alice(), SPACE, false, NOW + MAX_AUTH_SKEW_MS + 1);
    if let ClientFrame::Auth { signature, .. } = &mut forged {
        signature[0] ^= 1;
    }
    let cases = [
        (
            auth_at(&alice(), SPACE, false, NOW - 10 * 60_000),
            "600 s behind",
        ),
        (
            auth_at(&stranger(), SPACE, false, NOW + 10 * 60_000),
            "600 s ahead of",
        ),
        (forged, "300 s ahead of"),
    ];
    for (frame, says) in cases {
        let mut session = session();
        session.on_frame(hello(), NOW);
        let decision = session.on_frame(frame, NOW);
        assert_eq!(rejected(&decision), RejectCode::ClockSkew);
        let said = message(&decision);
        assert!(said.contains(says), "{said}");
        assert!(said.contains("set this device's clock"), "{said}");
        assert!(!said.contains("member"), "{said}");
        assert_eq!(closes(&decision), Some(CLOSING));
    }
    // Just within the allowance, the login goes on to the store.
    let mut session = session();
    session.on_frame(hello(), NOW);
    let decision = session.on_frame(auth_at(&alice(), SPACE, false, NOW + MAX_AUTH_SKEW_MS), NOW);
    assert!(rejects(&decision).is_empty(), "{decision:?}");
    assert!(decision.query.is_some());
}

#[test]
fn identify_is_answered_with_a_proof_bound_to_the_client_nonce_and_the_relays_clock() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    let decision = session.on_frame(ClientFrame::Identify { nonce: [7; 32] }, NOW);
    let [
        RelayFrame::Identity {
            key,
            time_ms,
            signature,
        },
    ] = sent(&decision).as_slice()
    else {
        panic!("expected one Identity, got {decision:?}");
    };
    assert_eq!(key, relay().public_key());
    assert_eq!(*time_ms, NOW);
    assert_eq!(
        hearth_proto::verify_relay_identity(key, &[7; 32], &NONCE, &relay_id(), NOW, signature),
        Ok(relay().fingerprint())
    );
    assert!(
        hearth_proto::verify_relay_identity(key, &[8; 32], &NONCE, &relay_id(), NOW, signature)
            .is_err(),
        "a proof for one client nonce is no proof for another"
    );
    assert_eq!(session.phase(), Phase::Identified);
    // Then the login goes on as without it.
    let space = Space::couple();
    session.on_frame(auth(&bob(), false), NOW);
    let decision = session.resume(space.answer());
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { .. }]
    ));
}

#[test]
fn identify_is_answered_once_and_only_between_challenge_and_auth() {
    let mut before_hello = session();
    let decision = before_hello.on_frame(ClientFrame::Identify { nonce: [7; 32] }, NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);

    let mut twice = session();
    twice.on_frame(hello(), NOW);
    twice.on_frame(ClientFrame::Identify { nonce: [7; 32] }, NOW);
    let decision = twice.on_frame(ClientFrame::Identify { nonce: [8; 32] }, NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
    assert!(closes(&decision).is_some());

    let space = Space::couple();
    let mut after_login = ready(&alice(), &space);
    let decision = after_login.on_frame(ClientFrame::Identify { nonce: [7; 32] }, NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
}

#[test]
fn a_stranger_removed_device_or_unknown_invite_is_unauthorized_alike() {
    let mut space = Space::couple();
    space.remove(&bob(), &alice());
    for (who, as_invite) in [(stranger(), false), (bob(), false), (key(101), true)] {
        let mut session = session();
        session.on_frame(hello(), NOW);
        session.on_frame(auth(&who, as_invite), NOW);
        let decision = session.resume(space.answer());
        assert_eq!(rejected(&decision), RejectCode::Unauthorized);
        assert_eq!(message(&decision), UNAUTHORIZED);
    }
}

#[test]
fn an_invite_key_cannot_create_a_space() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&key(100), true), NOW);
    let decision = session.resume(Answer::Chain(Ok(None)));
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
}

#[test]
fn a_store_failure_during_auth_closes_with_storage_unavailable() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&alice(), false), NOW);
    let decision = session.resume(Answer::Chain(Err(StoreError::Unavailable("gone".into()))));
    assert_eq!(rejected(&decision), RejectCode::StorageUnavailable);
    assert!(
        decision
            .effects
            .iter()
            .any(|e| matches!(e, Effect::StoreTrouble(StoreTrouble::Unavailable(_))))
    );
    assert!(closes(&decision).is_some());
}

// --- joining with an invite key ---

#[test]
fn a_fresh_invite_key_authenticates_for_its_lockbox_and_its_add_device() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::Partner);
    let mut session = ready_on(session(), &key(100), true, &space);
    let fetch = session.on_frame(ClientFrame::GetLockbox { epoch: 0 }, NOW);
    assert!(matches!(
        fetch.query,
        Some(Query::GetLockbox { epoch: 0, .. })
    ));
    let decision = session.resume(Answer::Lockbox(Ok(Some(vec![1, 2]))));
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::Lockbox { epoch: 0, blob }] if blob == &[1, 2]
    ));
    let add = space.next(
        AclBody::AddDevice {
            device: device(&bob()),
            recipient: [7; 32],
            invite: invite(&key(100)),
        },
        &[&bob(), &key(100)],
    );
    let decision = session.on_frame(
        ClientFrame::PutAcl {
            record: add.encode(),
        },
        NOW,
    );
    assert!(matches!(decision.query, Some(Query::AppendAcl { .. })));
    let decision = session.resume(space.append_answer(&add, NOW));
    assert!(rejects(&decision).is_empty());
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { records }] if records == &vec![add.encode()]
    ));
}

#[test]
fn an_invite_key_may_do_nothing_else() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::OwnDevice);
    let mut session = ready_on(session(), &key(100), true, &space);
    let someone_else = space.next(
        AclBody::Invite {
            invite: invite(&key(101)),
            expires_at_ms: NOW + 1,
            role: InviteRole::OwnDevice,
            by: device(&alice()),
        },
        &[&alice()],
    );
    for frame in [
        ClientFrame::Subscribe {
            space: SPACE,
            since_seq: 0,
        },
        changes(100, 1),
        ClientFrame::PutAcl {
            record: someone_else.encode(),
        },
    ] {
        let decision = session.on_frame(frame, NOW);
        assert_eq!(rejected(&decision), RejectCode::Invalid);
        assert_eq!(message(&decision), INVITE_ONLY);
    }
}

#[test]
fn a_revoked_invite_is_refused_as_revoked() {
    let mut space = Space::couple();
    space
        .invite(&bob(), &key(101), InviteRole::OwnDevice)
        .remove(&bob(), &alice());
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&key(101), true), NOW);
    let decision = session.resume(space.answer());
    assert_eq!(rejected(&decision), RejectCode::InviteRevoked);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_used_invite_and_a_second_partner_invite_are_refused_as_used() {
    let mut space = Space::couple();
    space.invite(&alice(), &key(101), InviteRole::OwnDevice);
    space.join(&key(3), &key(101));
    // Issued before bob joined, so still in the chain, but a partner already joined.
    let mut before = Space::new();
    before
        .invite(&alice(), &key(100), InviteRole::Partner)
        .invite(&alice(), &key(102), InviteRole::Partner)
        .join(&bob(), &key(100));
    for (space, invite_key) in [(&space, key(101)), (&before, key(102))] {
        let mut session = session();
        session.on_frame(hello(), NOW);
        session.on_frame(auth(&invite_key, true), NOW);
        let decision = session.resume(space.answer());
        assert_eq!(rejected(&decision), RejectCode::InviteUsed);
    }
}

#[test]
fn an_expired_invite_is_refused_as_expired() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::Partner);
    let later = NOW + 60_000;
    let mut session = session();
    session.on_frame(hello(), later);
    session.on_frame(auth_at(&key(100), SPACE, true, later), later);
    let decision = session.resume(space.answer());
    assert_eq!(rejected(&decision), RejectCode::InviteExpired);
}

#[test]
fn an_add_device_whose_invite_was_revoked_since_login_is_refused_as_revoked() {
    let mut space = Space::couple();
    space.invite(&alice(), &key(101), InviteRole::OwnDevice);
    let mut session = ready_on(session(), &key(101), true, &space);
    let add = space.next(
        AclBody::AddDevice {
            device: device(&key(3)),
            recipient: [7; 32],
            invite: invite(&key(101)),
        },
        &[&key(3), &key(101)],
    );
    // Meanwhile bob rotated the key, which revokes every unused invite.
    let mut meanwhile = Space::couple();
    meanwhile
        .invite(&alice(), &key(101), InviteRole::OwnDevice)
        .rotate(&bob());
    let add = signed_acl(meanwhile.state.head(), add.body, &[&key(3), &key(101)]);
    session.on_frame(
        ClientFrame::PutAcl {
            record: add.encode(),
        },
        NOW,
    );
    let decision = session.resume(meanwhile.append_answer(&add, NOW));
    assert_eq!(rejected(&decision), RejectCode::InviteRevoked);
    assert!(closes(&decision).is_none());
}

#[test]
fn an_add_device_after_the_invite_expired_is_refused_as_expired() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::Partner);
    let mut session = ready_on(session(), &key(100), true, &space);
    let add = space.next(
        AclBody::AddDevice {
            device: device(&bob()),
            recipient: [7; 32],
            invite: invite(&key(100)),
        },
        &[&bob(), &key(100)],
    );
    let late = NOW + 60_000;
    session.on_frame(
        ClientFrame::PutAcl {
            record: add.encode(),
        },
        late,
    );
    let decision = session.resume(space.append_answer(&add, late));
    assert_eq!(rejected(&decision), RejectCode::InviteExpired);
}

#[test]
fn an_add_device_consuming_a_used_invite_is_refused_as_used() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::OwnDevice);
    let mut session = ready_on(session(), &key(100), true, &space);
    let add = space.next(
        AclBody::AddDevice {
            device: device(&key(3)),
            recipient: [7; 32],
            invite: invite(&key(100)),
        },
        &[&key(3), &key(100)],
    );
    space.join(&bob(), &key(100));
    let add = signed_acl(space.state.head(), add.body, &[&key(3), &key(100)]);
    session.on_frame(
        ClientFrame::PutAcl {
            record: add.encode(),
        },
        NOW,
    );
    let decision = session.resume(space.append_answer(&add, NOW));
    assert_eq!(rejected(&decision), RejectCode::InviteUsed);
}

// --- creating a space ---

fn creating(admission: Admission) -> Session<FakeRelativeClock> {
    creating_as(&alice(), admission)
}

/// A session logged in as `by` for a space the relay does not hold.
fn creating_as(by: &SigningKey, admission: Admission) -> Session<FakeRelativeClock> {
    let (session, _) = session_with(Limits::default(), admission);
    creating_on(session, by)
}

/// `session` past `Hello` and `Auth` as `by` for `SPACE`, which the store never held.
fn creating_on(
    mut session: Session<FakeRelativeClock>,
    by: &SigningKey,
) -> Session<FakeRelativeClock> {
    session.on_frame(hello(), NOW);
    session.on_frame(auth(by, false), NOW);
    let asked = session.resume(Answer::Chain(Ok(None)));
    assert!(matches!(
        asked.query,
        Some(Query::Tombstone { space: SPACE })
    ));
    let asked = session.resume(Answer::Tombstone(Ok(None)));
    assert!(matches!(asked.query, Some(Query::Expiry { space: SPACE })));
    let decision = session.resume(Answer::Expiry(Ok(None)));
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { records }] if records.is_empty()
    ));
    assert!(matches!(session.phase(), Phase::Create { .. }));
    session
}

fn create(genesis: &AclRecord) -> ClientFrame {
    ClientFrame::CreateSpace {
        genesis: genesis.encode(),
        token: None,
    }
}

#[test]
fn a_device_creates_a_missing_space_with_its_genesis() {
    let mut session = creating(Admission::Open);
    let genesis = genesis(&alice(), SPACE, 0);
    let decision = session.on_frame(create(&genesis), NOW);
    assert!(matches!(
        decision.query,
        Some(Query::CreateSpace {
            space: SPACE,
            now_ms: NOW,
            ..
        })
    ));
    let decision = session.resume(Answer::Done(Ok(())));
    assert!(
        decision
            .effects
            .iter()
            .any(|e| matches!(e, Effect::RememberCreated { space: SPACE, .. }))
    );
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { records }] if records == &vec![genesis.encode()]
    ));
    assert!(matches!(
        session.phase(),
        Phase::Ready(Authed {
            as_invite: false,
            ..
        })
    ));
}

#[test]
fn a_creating_connection_answers_ping_and_refuses_anything_else() {
    let mut session = creating(Admission::Open);
    let pong = session.on_frame(ClientFrame::Ping { nonce: 7 }, NOW);
    assert!(matches!(
        sent(&pong).as_slice(),
        [RelayFrame::Pong { nonce: 7 }]
    ));
    let decision = session.on_frame(changes(1, 1), NOW);
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_bad_genesis_is_invalid() {
    let garbled = ClientFrame::CreateSpace {
        genesis: vec![1, 2, 3],
        token: None,
    };
    let other_space = create(&genesis(&alice(), OTHER_SPACE, 0));
    let late_epoch = create(&genesis(&alice(), SPACE, 1));
    for frame in [garbled, other_space, late_epoch] {
        let mut session = creating(Admission::Open);
        let decision = session.on_frame(frame, NOW);
        assert_eq!(rejected(&decision), RejectCode::Invalid);
        assert!(closes(&decision).is_none());
    }
}

/// `record` offered on a connection that is uploading a moved space's chain, and the store
/// thread's answer: the chain's judgement without the clock (`AclState::replay`).
fn seed(
    session: &mut Session<FakeRelativeClock>,
    space: &Space,
    record: &AclRecord,
    now_ms: u64,
) -> Decision {
    let asked = session.on_frame(
        ClientFrame::PutAcl {
            record: record.encode(),
        },
        now_ms,
    );
    assert!(
        matches!(
            asked.query,
            Some(Query::AppendAcl {
                accepted_elsewhere: true,
                ..
            })
        ),
        "{asked:?}"
    );
    let stored = space.chain();
    let mut chain = Chain {
        records: stored.records.clone(),
        state: stored.state.clone(),
    };
    chain.state.replay(record).unwrap();
    chain.records.push(record.encode());
    session.resume(Answer::Acl(Ok(Ok(chain))))
}

#[test]
fn the_partner_moves_a_space_here_with_its_founders_genesis_and_the_rest_of_its_chain() {
    // Alice founded the space elsewhere and invited bob, a week ago: the invite has long
    // expired by the relay's clock. Bob's device brings the space here.
    let couple = Space::couple();
    let week_later = NOW + 7 * 24 * 3600 * 1000;
    let mut session = creating_as(&bob(), Admission::Open);
    let decision = session.on_frame(create(&couple.records[0]), week_later);
    assert!(
        matches!(decision.query, Some(Query::CreateSpace { .. })),
        "{decision:?}"
    );
    let decision = session.resume(Answer::Done(Ok(())));
    assert!(rejects(&decision).is_empty(), "{decision:?}");
    assert!(matches!(
        session.phase(),
        Phase::Ready(Authed { key, .. }) if key == device(&bob())
    ));
    let mut here = Space::new();
    for record in &couple.records[1..] {
        let decision = seed(&mut session, &here, record, week_later);
        assert!(
            matches!(sent(&decision).as_slice(), [RelayFrame::AclChanged { .. }]),
            "{decision:?}"
        );
        here.state.replay(record).unwrap();
        here.records.push(record.clone());
    }
    assert!(here.state.is_member(&device(&bob())));
    // A ping is part of the upload; anything else ends it, and the clock counts again.
    session.on_frame(ClientFrame::Ping { nonce: 1 }, week_later);
    let next = here.next(
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [8; 32],
            by: device(&bob()),
        },
        &[&bob()],
    );
    seed(&mut session, &here, &next, week_later);
    push_to_store(&mut session, lockbox(device(&alice()), 0, 10), &here);
    let asked = session.on_frame(
        ClientFrame::PutAcl {
            record: next.encode(),
        },
        week_later,
    );
    assert!(matches!(
        asked.query,
        Some(Query::AppendAcl {
            accepted_elsewhere: false,
            ..
        })
    ));
}

#[test]
fn a_connection_that_brought_a_space_here_is_not_a_member_until_its_chain_says_so() {
    let couple = Space::couple();
    let mut session = creating_as(&bob(), Admission::Open);
    session.on_frame(create(&couple.records[0]), NOW);
    session.resume(Answer::Done(Ok(())));
    // The Genesis alone: bob's device is not in it yet.
    let decision = push_to_store(&mut session, changes(2, 1), &Space::new());
    assert_eq!(rejected(&decision), RejectCode::NotMember);
}

#[test]
fn a_device_that_logged_in_to_a_space_already_here_is_judged_on_the_clock() {
    let space = Space::couple();
    let mut session = ready(&alice(), &space);
    let record = space.next(
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [8; 32],
            by: device(&alice()),
        },
        &[&alice()],
    );
    let asked = session.on_frame(
        ClientFrame::PutAcl {
            record: record.encode(),
        },
        NOW,
    );
    assert!(matches!(
        asked.query,
        Some(Query::AppendAcl {
            accepted_elsewhere: false,
            ..
        })
    ));
}

fn create_with(genesis: &AclRecord, token: &str) -> ClientFrame {
    ClientFrame::CreateSpace {
        genesis: genesis.encode(),
        token: Some(token.to_owned()),
    }
}

/// A token of the right shape.
fn token(fill: char) -> String {
    format!("hrt_{}", fill.to_string().repeat(43))
}

#[test]
fn a_token_relay_refuses_a_stranger_without_a_token_and_keeps_the_connection() {
    let mut session = creating(Admission::Token);
    let decision = session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
    assert_eq!(rejected(&decision), RejectCode::TokenRequired);
    assert!(message(&decision).contains("ask the relay's operator"));
    assert!(closes(&decision).is_none());
    assert!(matches!(session.phase(), Phase::Create { .. }));
}

#[test]
fn a_token_relay_creates_with_a_token_by_its_hash_only() {
    let mut session = creating(Admission::Token);
    let decision = session.on_frame(create_with(&genesis(&alice(), SPACE, 0), &token('a')), NOW);
    let Some(Query::CreateSpace { ticket, .. }) = decision.query else {
        panic!("{decision:?}");
    };
    assert_eq!(ticket, Some(crate::tokens::hash(&token('a'))));
    let decision = session.resume(Answer::Done(Ok(())));
    assert!(matches!(session.phase(), Phase::Ready(_)), "{decision:?}");
}

#[test]
fn a_token_the_store_refuses_gets_its_own_code_and_a_malformed_one_is_unknown() {
    for (refusal, want) in [
        (TokenRefusal::Unknown, RejectCode::TokenUnknown),
        (
            TokenRefusal::Expired { at_ms: NOW },
            RejectCode::TokenExpired,
        ),
        (TokenRefusal::Used, RejectCode::TokenUsed),
    ] {
        let mut session = creating(Admission::Token);
        session.on_frame(create_with(&genesis(&alice(), SPACE, 0), &token('b')), NOW);
        let decision = session.resume(Answer::Done(Err(StoreError::Token(refusal))));
        assert_eq!(rejected(&decision), want);
        assert!(
            matches!(session.phase(), Phase::Create { .. }),
            "may try another"
        );
    }
    let mut session = creating(Admission::Token);
    let decision = session.on_frame(create_with(&genesis(&alice(), SPACE, 0), "hrt_short"), NOW);
    assert_eq!(rejected(&decision), RejectCode::TokenUnknown);
}

#[test]
fn an_open_relay_ignores_a_token_and_spends_nothing() {
    let mut session = creating(Admission::Open);
    let decision = session.on_frame(create_with(&genesis(&alice(), SPACE, 0), &token('c')), NOW);
    assert!(matches!(
        decision.query,
        Some(Query::CreateSpace { ticket: None, .. })
    ));
}

#[test]
fn one_address_creating_too_many_spaces_waits_while_another_address_goes_on() {
    let per_address = crate::config::PerAddress {
        creations_per_hour: 2,
        failed_logins_per_minute: 30,
    };
    let (gate, clock) = gate_with(Admission::Open, per_address);
    let flooder = PEER;
    for _ in 0..2 {
        let mut session = creating_on(session_through(&gate, &clock, flooder), &alice());
        let decision = session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
        assert!(decision.query.is_some(), "{decision:?}");
    }
    let mut session = creating_on(session_through(&gate, &clock, flooder), &alice());
    let decision = session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
    assert_eq!(rejected(&decision), RejectCode::RateLimited);
    assert!(
        message(&decision).contains("retry in"),
        "{}",
        message(&decision)
    );
    let other = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
    let mut session = creating_on(session_through(&gate, &clock, other), &alice());
    let decision = session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
    assert!(decision.query.is_some(), "{decision:?}");
}

#[test]
fn failed_logins_over_the_budget_wait_but_a_member_from_the_same_address_gets_in() {
    let per_address = crate::config::PerAddress {
        creations_per_hour: 10,
        failed_logins_per_minute: 2,
    };
    let (gate, clock) = gate_with(Admission::Open, per_address);
    let space = Space::couple();
    let mut failures = Vec::new();
    for _ in 0..3 {
        let mut session = session_through(&gate, &clock, PEER);
        session.on_frame(hello(), NOW);
        session.on_frame(auth(&stranger(), false), NOW);
        failures.push(rejected(&session.resume(space.answer())));
    }
    assert_eq!(
        failures,
        [
            RejectCode::Unauthorized,
            RejectCode::Unauthorized,
            RejectCode::RateLimited
        ]
    );
    ready_on(
        session_through(&gate, &clock, PEER),
        &alice(),
        false,
        &space,
    );
    clock.advance(Duration::from_secs(60));
    let mut session = session_through(&gate, &clock, PEER);
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&stranger(), false), NOW);
    assert_eq!(
        rejected(&session.resume(space.answer())),
        RejectCode::Unauthorized
    );
}

#[test]
fn the_creator_of_an_expired_space_hears_so_and_may_create_it_again() {
    let (mut session, _) = session_with(Limits::default(), Admission::Token);
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&alice(), false), NOW);
    session.resume(Answer::Chain(Ok(None)));
    session.resume(Answer::Tombstone(Ok(None)));
    let decision = session.resume(Answer::Expiry(Ok(Some(Expiry {
        device: *device(&alice()).as_bytes(),
        expired_at_ms: NOW,
    }))));
    assert_eq!(rejected(&decision), RejectCode::SpaceExpired);
    assert!(closes(&decision).is_none());
    assert!(matches!(session.phase(), Phase::Create { .. }));
    // As for any creation, with a token on a token relay.
    let decision = session.on_frame(create_with(&genesis(&alice(), SPACE, 0), &token('d')), NOW);
    assert!(matches!(decision.query, Some(Query::CreateSpace { .. })));
}

#[test]
fn anyone_but_its_creator_logging_in_to_an_expired_space_is_a_stranger() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&bob(), false), NOW);
    session.resume(Answer::Chain(Ok(None)));
    session.resume(Answer::Tombstone(Ok(None)));
    let decision = session.resume(Answer::Expiry(Ok(Some(Expiry {
        device: *device(&alice()).as_bytes(),
        expired_at_ms: NOW,
    }))));
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_live_connection_to_a_space_that_expires_hears_so_and_closes() {
    let space = Space::new();
    let session = ready(&alice(), &space);
    let decision = session.on_space_expired();
    assert_eq!(rejected(&decision), RejectCode::SpaceExpired);
    assert!(closes(&decision).is_some());
}

#[test]
fn creating_a_space_that_appeared_meanwhile_is_a_conflict() {
    let mut session = creating(Admission::Open);
    session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
    let decision = session.resume(Answer::Done(Err(StoreError::SpaceExists)));
    assert_eq!(rejected(&decision), RejectCode::Conflict);
    assert!(matches!(session.phase(), Phase::Create { .. }));
}

#[test]
fn creating_a_space_deleted_meanwhile_is_refused_as_deleted() {
    let mut session = creating(Admission::Open);
    session.on_frame(create(&genesis(&alice(), SPACE, 0)), NOW);
    let decision = session.resume(Answer::Done(Err(StoreError::SpaceDeleted)));
    assert_eq!(rejected(&decision), RejectCode::SpaceDeleted);
}

/// What alice's deletion of the couple's space left.
fn tombstone() -> Tombstone {
    let message = hearth_proto::delete_space_message(&relay_id(), &NONCE, &SPACE);
    let mut members = vec![*device(&alice()).as_bytes(), *device(&bob()).as_bytes()];
    members.sort_unstable();
    Tombstone {
        device: *device(&alice()).as_bytes(),
        relay_id: relay_id(),
        nonce: NONCE,
        signature: alice().sign(&message).to_bytes(),
        deleted_at_ms: NOW,
        members,
    }
}

fn proof(tombstone: &Tombstone) -> RelayFrame {
    RelayFrame::SpaceDeleted {
        space: SPACE,
        device: DeviceId::from_bytes(tombstone.device),
        relay_id: tombstone.relay_id,
        nonce: tombstone.nonce,
        signature: tombstone.signature,
        deleted_at_ms: tombstone.deleted_at_ms,
    }
}

#[test]
fn a_member_logging_in_to_its_deleted_space_is_shown_the_proof_and_closed() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&bob(), false), NOW);
    session.resume(Answer::Chain(Ok(None)));
    let decision = session.resume(Answer::Tombstone(Ok(Some(tombstone()))));
    assert_eq!(sent(&decision), [&proof(&tombstone())]);
    assert_eq!(closes(&decision), Some(CLOSING));
    assert!(
        matches!(session.phase(), Phase::Auth),
        "{:?}",
        session.phase()
    );
}

#[test]
fn anyone_else_logging_in_to_a_deleted_space_is_unauthorized_as_for_an_existing_one() {
    let mut session = session();
    session.on_frame(hello(), NOW);
    session.on_frame(auth(&stranger(), false), NOW);
    session.resume(Answer::Chain(Ok(None)));
    let decision = session.resume(Answer::Tombstone(Ok(Some(tombstone()))));
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
    assert_eq!(message(&decision), UNAUTHORIZED);
    // An invite key is not asked about tombstones at all.
    let mut invited = self::session();
    invited.on_frame(hello(), NOW);
    invited.on_frame(auth(&key(100), true), NOW);
    let decision = invited.resume(Answer::Chain(Ok(None)));
    assert_eq!(rejected(&decision), RejectCode::Unauthorized);
}

// --- requests once authenticated ---

#[test]
fn an_authenticated_connection_answers_ping_and_refuses_a_second_handshake() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let pong = session.on_frame(ClientFrame::Ping { nonce: 3 }, NOW);
    assert!(matches!(
        sent(&pong).as_slice(),
        [RelayFrame::Pong { nonce: 3 }]
    ));
    let decision = session.on_frame(hello(), NOW);
    assert_eq!(rejected(&decision), RejectCode::BadFrame);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_member_subscribes_to_its_space() {
    let space = Space::couple();
    let mut session = ready(&bob(), &space);
    let decision = push_to_store(
        &mut session,
        ClientFrame::Subscribe {
            space: SPACE,
            since_seq: 4,
        },
        &space,
    );
    assert!(matches!(
        decision.effects.as_slice(),
        [Effect::Subscribe {
            space: SPACE,
            since_seq: 4,
            snapshot: true,
            ..
        }]
    ));
    // Asking for the envelopes alone (a device that refused the snapshot it was handed).
    let decision = push_to_store(
        &mut session,
        ClientFrame::SubscribeEnvelopes {
            space: SPACE,
            since_seq: 4,
        },
        &space,
    );
    assert!(matches!(
        decision.effects.as_slice(),
        [Effect::Subscribe {
            space: SPACE,
            since_seq: 4,
            snapshot: false,
            device,
        }] if *device == hearth_proto::test_support::device(&bob())
    ));
}

#[test]
fn subscribing_to_another_space_is_invalid() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let decision = session.on_frame(
        ClientFrame::Subscribe {
            space: OTHER_SPACE,
            since_seq: 0,
        },
        NOW,
    );
    assert_eq!(rejected(&decision), RejectCode::Invalid);
}

#[test]
fn a_removed_device_that_subscribes_is_told_and_disconnected() {
    let mut space = Space::couple();
    let mut session = ready(&bob(), &space);
    space.remove(&bob(), &alice());
    let decision = push_to_store(
        &mut session,
        ClientFrame::Subscribe {
            space: SPACE,
            since_seq: 0,
        },
        &space,
    );
    assert_eq!(rejected(&decision), RejectCode::NotMember);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_request_on_a_deleted_space_is_not_member() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    session.on_frame(
        ClientFrame::Subscribe {
            space: SPACE,
            since_seq: 0,
        },
        NOW,
    );
    let decision = session.resume(Answer::Chain(Ok(None)));
    assert_eq!(rejected(&decision), RejectCode::NotMember);
}

#[test]
fn a_members_push_is_stored_published_and_committed() {
    let space = Space::couple();
    let mut session = ready(&bob(), &space);
    let decision = push_to_store(&mut session, changes(2, 7), &space);
    let Some(Query::Push {
        space: SPACE,
        device: pusher,
        counter: 7,
        signed,
        ..
    }) = decision.query
    else {
        panic!("expected a push, got {decision:?}");
    };
    assert_eq!(pusher, device(&bob()));
    // The store thread checks the signature against this message.
    assert!(verify_signature(pusher.as_bytes(), &signed.message, &signed.signature).is_ok());
    let decision = session.resume(Answer::Pushed(Ok(PushOutcome {
        seq: 12,
        duplicate: false,
    })));
    assert!(matches!(
        decision.effects.as_slice(),
        [
            Effect::Stored { .. },
            Effect::Publish {
                space: SPACE,
                live: Live::Event { seq: 12, .. }
            },
            Effect::OwnCommitted(12),
            Effect::Send(RelayFrame::Committed {
                seq: 12,
                counter: 7
            }),
        ]
    ));
}

#[test]
fn a_duplicate_push_is_answered_with_its_seq_and_not_published_again() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    push_to_store(&mut session, changes(1, 1), &space);
    let decision = session.resume(Answer::Pushed(Ok(PushOutcome {
        seq: 3,
        duplicate: true,
    })));
    assert!(matches!(
        decision.effects.as_slice(),
        [Effect::Send(RelayFrame::Committed { seq: 3, counter: 1 })]
    ));
}

#[test]
fn an_envelope_that_cannot_be_accepted_is_refused_before_the_store() {
    let limits = Limits {
        max_envelope_bytes: 400,
        ..Limits::default()
    };
    let cases = [
        (
            ClientFrame::Push {
                envelope: vec![0; 401],
            },
            RejectCode::TooLarge,
        ),
        (
            ClientFrame::Push {
                envelope: vec![1, 2, 3],
            },
            RejectCode::Invalid,
        ),
        (
            ClientFrame::Push {
                envelope: envelope_as(1, SPACE, 0, EnvelopeKind::Snapshot { covers_seq: 1 }, 1),
            },
            RejectCode::Invalid,
        ),
        (
            ClientFrame::PushSnapshot {
                envelope: envelope_as(1, SPACE, 0, EnvelopeKind::Changes, 1),
            },
            RejectCode::Invalid,
        ),
        (
            ClientFrame::Push {
                envelope: envelope_as(1, OTHER_SPACE, 0, EnvelopeKind::Changes, 1),
            },
            RejectCode::Invalid,
        ),
        // Someone else's envelope, pushed on alice's connection.
        (changes(2, 1), RejectCode::NotMember),
    ];
    for (frame, want) in cases {
        let space = Space::couple();
        let mut session = ready_on(
            session_with(limits, Admission::Open).0,
            &alice(),
            false,
            &space,
        );
        let decision = session.on_frame(frame, NOW);
        assert_eq!(rejected(&decision), want, "{decision:?}");
        assert!(closes(&decision).is_none());
    }
}

#[test]
fn a_push_from_a_removed_device_is_refused() {
    let mut space = Space::couple();
    let mut session = ready(&bob(), &space);
    space.remove(&bob(), &alice());
    let decision = push_to_store(&mut session, changes(2, 1), &space);
    assert_eq!(rejected(&decision), RejectCode::NotMember);
    assert_eq!(message(&decision), REMOVED);
}

#[test]
fn a_push_under_an_epoch_the_chain_has_not_reached_is_invalid() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let frame = ClientFrame::Push {
        envelope: envelope_as(1, SPACE, 1, EnvelopeKind::Changes, 1),
    };
    let decision = push_to_store(&mut session, frame, &space);
    assert_eq!(rejected(&decision), RejectCode::Invalid);
    assert!(message(&decision).contains("epoch 1"));
}

#[test]
fn each_store_refusal_of_a_push_gets_its_code() {
    let cases = [
        (StoreError::BadSignature, RejectCode::Invalid),
        (
            StoreError::Conflict("counter reused".into()),
            RejectCode::Conflict,
        ),
        (
            StoreError::QuotaExceeded("space full".into()),
            RejectCode::QuotaExceeded,
        ),
        (StoreError::DiskFull, RejectCode::QuotaExceeded),
        (
            StoreError::Unavailable("down".into()),
            RejectCode::StorageUnavailable,
        ),
    ];
    for (error, want) in cases {
        let space = Space::new();
        let mut session = ready(&alice(), &space);
        push_to_store(&mut session, changes(1, 1), &space);
        let decision = session.resume(Answer::Pushed(Err(error)));
        assert_eq!(rejected(&decision), want);
        assert!(
            closes(&decision).is_none(),
            "a refused push keeps the connection"
        );
    }
}

#[test]
fn pushes_over_the_rate_are_limited_until_time_passes() {
    let limits = Limits {
        max_pushes_per_sec: 2,
        ..Limits::default()
    };
    let space = Space::new();
    let (session, clock) = session_with(limits, Admission::Open);
    let mut session = ready_on(session, &alice(), false, &space);
    for counter in 1..=2 {
        assert!(session.on_frame(changes(1, counter), NOW).query.is_some());
        session.resume(Answer::Pushed(Ok(PushOutcome {
            seq: counter,
            duplicate: false,
        })));
    }
    let limited = session.on_frame(changes(1, 3), NOW);
    assert_eq!(rejected(&limited), RejectCode::RateLimited);
    assert!(message(&limited).contains("more than 2 pushes per second"));
    let snapshot = ClientFrame::PushSnapshot {
        envelope: envelope_as(1, SPACE, 0, EnvelopeKind::Snapshot { covers_seq: 2 }, 3),
    };
    assert_eq!(
        rejected(&session.on_frame(snapshot, NOW)),
        RejectCode::RateLimited
    );
    clock.advance(Duration::from_millis(500));
    assert!(session.on_frame(changes(1, 3), NOW).query.is_some());
}

#[test]
fn a_verified_snapshot_is_proposed_and_committed_at_what_it_covers() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let frame = ClientFrame::PushSnapshot {
        envelope: envelope_as(1, SPACE, 0, EnvelopeKind::Snapshot { covers_seq: 40 }, 9),
    };
    let decision = push_to_store(&mut session, frame, &space);
    assert!(matches!(
        decision.query,
        Some(Query::ProposeSnapshot {
            space: SPACE,
            covers_seq: 40,
            author,
            ..
        }) if author == device(&alice())
    ));
    let decision = session.resume(Answer::Done(Ok(())));
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::Committed {
            seq: 40,
            counter: 9
        }]
    ));
}

/// Bob's countersignature of the snapshot `bytes` covering `covers_seq`.
fn countersign_by(signer: &SigningKey, covers_seq: u64, bytes: &[u8]) -> ClientFrame {
    let snapshot = hearth_proto::snapshot_hash(bytes);
    let message = hearth_proto::countersign_message(&SPACE, covers_seq, &snapshot);
    ClientFrame::Countersign {
        covers_seq,
        snapshot,
        device: device(signer),
        signature: signer.sign(&message).to_bytes(),
    }
}

#[test]
fn a_countersignature_goes_to_the_store_thread_and_is_echoed_once_accepted() {
    let space = Space::couple();
    let mut session = ready(&bob(), &space);
    let frame = countersign_by(&bob(), 40, b"alice's snapshot");
    let ClientFrame::Countersign { signature, .. } = frame.clone() else {
        panic!("a Countersign");
    };
    let decision = session.on_frame(frame, NOW);
    assert!(matches!(
        decision.query,
        Some(Query::Countersign {
            space: SPACE,
            sender,
            request: CountersignRequest { covers_seq: 40, .. },
        }) if sender == device(&bob())
    ));
    let decision = session.resume(Answer::Countersigned(Ok(Ok(()))));
    assert_eq!(
        sent(&decision),
        [&RelayFrame::Countersigned {
            covers_seq: 40,
            device: device(&bob()),
            signature,
        }]
    );
}

#[test]
fn a_refused_countersignature_gets_the_code_of_its_reason() {
    use hearth_proto::ConsentFault;

    let space = Space::couple();
    for (refusal, code, says) in [
        (
            CountersignRefusal::Fault(ConsentFault::SamePerson),
            RejectCode::Invalid,
            "other person",
        ),
        (
            CountersignRefusal::Fault(ConsentFault::NotAMember),
            RejectCode::Invalid,
            "not a member",
        ),
        (
            CountersignRefusal::Fault(ConsentFault::BadSignature),
            RejectCode::Invalid,
            "does not verify",
        ),
        (
            CountersignRefusal::NoProposal { covers_seq: 40 },
            RejectCode::Conflict,
            "no snapshot covering seq 40",
        ),
        (
            CountersignRefusal::Changed {
                covers_seq: 40,
                waiting: 44,
            },
            RejectCode::Conflict,
            "covering seq 44",
        ),
        (
            CountersignRefusal::Removed,
            RejectCode::NotMember,
            "removed",
        ),
    ] {
        let mut session = ready(&bob(), &space);
        session.on_frame(countersign_by(&bob(), 40, b"snapshot"), NOW);
        let decision = session.resume(Answer::Countersigned(Ok(Err(refusal))));
        assert_eq!(rejected(&decision), code, "{refusal:?}");
        assert!(message(&decision).contains(says), "{}", message(&decision));
        if code == RejectCode::Invalid {
            assert!(message(&decision).contains("nothing was dropped"));
        }
    }
}

#[test]
fn an_invite_key_cannot_countersign() {
    let mut space = Space::couple();
    space.invite(&alice(), &key(101), InviteRole::OwnDevice);
    let mut session = ready_on(session(), &key(101), true, &space);
    let decision = session.on_frame(countersign_by(&key(101), 1, b"snapshot"), NOW);
    assert_eq!(rejected(&decision), RejectCode::Invalid);
}

#[test]
fn a_snapshot_whose_signature_fails_is_invalid_and_not_stored() {
    let space = Space::new();
    let mut envelope = envelope_as(1, SPACE, 0, EnvelopeKind::Snapshot { covers_seq: 4 }, 1);
    let last = envelope.len() - 1;
    envelope[last] ^= 1;
    let mut session = ready(&alice(), &space);
    let decision = push_to_store(&mut session, ClientFrame::PushSnapshot { envelope }, &space);
    assert_eq!(rejected(&decision), RejectCode::Invalid);
}

#[test]
fn a_members_acl_record_is_appended_cached_published_and_echoed() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let record = space.next(
        AclBody::Invite {
            invite: invite(&key(100)),
            expires_at_ms: NOW + 1,
            role: InviteRole::Partner,
            by: device(&alice()),
        },
        &[&alice()],
    );
    let decision = session.on_frame(
        ClientFrame::PutAcl {
            record: record.encode(),
        },
        NOW,
    );
    assert!(matches!(
        decision.query,
        Some(Query::AppendAcl {
            space: SPACE,
            now_ms: NOW,
            ..
        })
    ));
    let decision = session.resume(space.append_answer(&record, NOW));
    assert!(matches!(
        decision.effects.as_slice(),
        [
            Effect::Remember { space: SPACE, chain },
            Effect::Publish { space: SPACE, live: Live::Acl(_) },
            Effect::Send(RelayFrame::AclChanged { .. }),
        ] if chain.records.len() == 2
    ));
}

#[test]
fn an_acl_record_the_chain_refuses_is_answered_by_its_rule() {
    let space = Space::couple();
    let stale = signed_acl(
        [1; 32],
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [8; 32],
            by: device(&alice()),
        },
        &[&alice()],
    );
    let skipped = space.next(
        AclBody::RotateEpoch {
            epoch: 2,
            key_check: [8; 32],
            by: device(&alice()),
        },
        &[&alice()],
    );
    for (record, want) in [
        (stale, RejectCode::Conflict),
        (skipped, RejectCode::Invalid),
    ] {
        let mut session = ready(&alice(), &space);
        session.on_frame(
            ClientFrame::PutAcl {
                record: record.encode(),
            },
            NOW,
        );
        let decision = session.resume(space.append_answer(&record, NOW));
        assert_eq!(rejected(&decision), want);
    }
}

#[test]
fn an_acl_record_that_does_not_decode_is_invalid() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    let decision = session.on_frame(ClientFrame::PutAcl { record: vec![1, 0] }, NOW);
    assert_eq!(rejected(&decision), RejectCode::Invalid);
}

fn lockbox(device: DeviceId, epoch: u32, size: usize) -> ClientFrame {
    ClientFrame::PutLockbox {
        device,
        epoch,
        blob: vec![0; size],
    }
}

#[test]
fn a_lockbox_for_a_member_or_an_invite_is_stored() {
    let mut space = Space::couple();
    space.invite(&alice(), &key(101), InviteRole::OwnDevice);
    for to in [device(&bob()), device(&key(101))] {
        let mut session = ready(&alice(), &space);
        let decision = push_to_store(&mut session, lockbox(to, 0, 10), &space);
        assert!(matches!(
            decision.query,
            Some(Query::PutLockbox { epoch: 0, .. })
        ));
        let decision = session.resume(Answer::Done(Ok(())));
        assert!(decision.effects.is_empty() && decision.query.is_none());
    }
}

#[test]
fn a_lockbox_that_cannot_be_accepted_is_refused() {
    let mut space = Space::couple();
    let too_big = Limits::default().envelope_bytes() + 1;
    let mut session = ready(&alice(), &space);
    assert_eq!(
        rejected(&session.on_frame(lockbox(device(&bob()), 0, too_big), NOW)),
        RejectCode::TooLarge
    );
    let future = push_to_store(&mut session, lockbox(device(&bob()), 1, 10), &space);
    assert_eq!(rejected(&future), RejectCode::Invalid);
    let unknown = push_to_store(&mut session, lockbox(device(&stranger()), 0, 10), &space);
    assert_eq!(rejected(&unknown), RejectCode::Invalid);
    let mut gone = ready(&bob(), &space);
    space.remove(&bob(), &alice());
    let removed = push_to_store(&mut gone, lockbox(device(&alice()), 0, 10), &space);
    assert_eq!(rejected(&removed), RejectCode::NotMember);
}

#[test]
fn a_missing_lockbox_is_a_conflict_to_retry() {
    let space = Space::new();
    let mut session = ready(&alice(), &space);
    session.on_frame(ClientFrame::GetLockbox { epoch: 2 }, NOW);
    let decision = session.resume(Answer::Lockbox(Ok(None)));
    assert_eq!(rejected(&decision), RejectCode::Conflict);
}

fn delete(by: &SigningKey, space: SpaceId) -> ClientFrame {
    let message = hearth_proto::delete_space_message(&relay_id(), &NONCE, &space);
    ClientFrame::DeleteSpace {
        space,
        signature: by.sign(&message).to_bytes(),
    }
}

#[test]
fn a_signed_delete_leaves_its_proof_removes_the_space_tells_the_others_and_closes() {
    let space = Space::couple();
    let mut session = ready(&alice(), &space);
    let decision = push_to_store(&mut session, delete(&alice(), SPACE), &space);
    let Some(Query::DeleteSpace {
        space: SPACE,
        tombstone: left,
    }) = decision.query
    else {
        panic!("expected the deletion, got {decision:?}");
    };
    assert_eq!(left, tombstone());
    let decision = session.resume(Answer::Done(Ok(())));
    assert!(matches!(
        decision.effects.as_slice(),
        [
            Effect::Forget(SPACE),
            Effect::Publish { space: SPACE, live: Live::Deleted(told) },
            Effect::Send(RelayFrame::AclChanged { records }),
            Effect::Close(CLOSING),
        ] if records.is_empty() && **told == tombstone()
    ));
}

#[test]
fn a_subscriber_whose_space_another_device_deleted_is_shown_the_proof_and_closed() {
    let space = Space::couple();
    let session = ready(&bob(), &space);
    let decision = session.on_space_deleted(&tombstone());
    assert_eq!(sent(&decision), [&proof(&tombstone())]);
    assert_eq!(closes(&decision), Some(CLOSING));
}

#[test]
fn a_delete_not_signed_by_this_device_for_this_space_is_invalid() {
    let space = Space::couple();
    let mut session = ready(&alice(), &space);
    for frame in [delete(&bob(), SPACE), delete(&alice(), OTHER_SPACE)] {
        assert_eq!(rejected(&session.on_frame(frame, NOW)), RejectCode::Invalid);
    }
}

// --- what other connections did ---

#[test]
fn a_device_removed_by_another_is_told_and_disconnected() {
    let mut space = Space::couple();
    let mut session = ready(&bob(), &space);
    space.remove(&bob(), &alice());
    let removal = space.records.last().unwrap().encode();
    let decision = session.on_acl_changed(&removal);
    assert!(matches!(
        sent(&decision).as_slice(),
        [RelayFrame::AclChanged { .. }]
    ));
    assert!(matches!(
        decision.query,
        Some(Query::Chain { fresh: false, .. })
    ));
    let decision = session.resume(space.answer());
    assert_eq!(rejected(&decision), RejectCode::NotMember);
    assert!(closes(&decision).is_some());
}

#[test]
fn a_device_still_in_the_space_just_hears_of_the_change() {
    let mut space = Space::couple();
    let mut session = ready(&alice(), &space);
    space.invite(&bob(), &key(101), InviteRole::OwnDevice);
    session.on_acl_changed(&space.records.last().unwrap().encode());
    let decision = session.resume(space.answer());
    assert!(decision.effects.is_empty());
}

#[test]
fn an_invite_connection_hears_of_changes_without_a_membership_check() {
    let mut space = Space::new();
    space.invite(&alice(), &key(100), InviteRole::Partner);
    let mut session = ready_on(session(), &key(100), true, &space);
    let decision = session.on_acl_changed(&[1]);
    assert!(decision.query.is_none());
    assert_eq!(sent(&decision).len(), 1);
}

#[test]
fn the_connection_level_refusals_close_with_their_codes() {
    let session = session();
    let behind = session.on_fell_behind();
    assert_eq!(rejected(&behind), RejectCode::RateLimited);
    assert_eq!(closes(&behind).map(|c| c.code), Some(1008));
    let oversized = session.on_oversized_message();
    assert_eq!(rejected(&oversized), RejectCode::TooLarge);
    assert_eq!(closes(&oversized).map(|c| c.code), Some(1009));
    let text = session.on_text_message();
    assert_eq!(rejected(&text), RejectCode::BadFrame);
    assert_eq!(closes(&text), Some(CLOSING));
}

#[test]
fn an_answer_to_no_question_is_an_internal_error() {
    let mut session = session();
    let decision = session.resume(Answer::Done(Ok(())));
    assert_eq!(rejected(&decision), RejectCode::Internal);
    assert!(closes(&decision).is_some());
}
