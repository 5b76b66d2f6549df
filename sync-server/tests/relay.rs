//! End-to-end tests of the relay: the real server on 127.0.0.1:0 over a real SQLite file,
//! driven frame by frame with real Ed25519 keys, signed envelopes and ACL records.
//! Every wait is bounded by a timeout, so a bug fails a test instead of hanging it.
#![allow(clippy::unwrap_used)] // a panic in a test is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use hearth_proto::{
    AclBody, AclRecord, ClientFrame, Envelope, EnvelopeHeader, EnvelopeKind, InviteRole, Limits,
    PROTOCOL_VERSION, RejectCode, RelayFrame, SpaceId, auth_message, decode_relay, encode_client,
};
use hearth_relay::RelayConfig;
use hearth_testkit::{
    acl_record, device_id, invite_id, key, now_ms, signed_changes, signed_envelope,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);
const MAX: usize = 1024 * 1024;

/// A relay of the test kit with its database in a temporary folder of its own.
struct TestRelay {
    addr: SocketAddr,
    relay: hearth_testkit::TestRelay,
    _dir: tempfile::TempDir,
}

impl TestRelay {
    async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    async fn start_with(limits: Limits) -> Self {
        Self::start_with_config(RelayConfig {
            limits,
            ..RelayConfig::default()
        })
        .await
    }

    async fn start_with_config(config: RelayConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let relay = hearth_testkit::TestRelay::start(RelayConfig {
            db: dir.path().join("relay.db"),
            ..config
        });
        Self {
            addr: relay.addr(),
            relay,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Client {
        Client::at(self.addr).await
    }

    /// A client that said Hello and got its Challenge.
    async fn greeted(&self) -> Client {
        let mut client = self.connect().await;
        client.hello().await;
        client
    }

    async fn http_get(&self, path: &str) -> String {
        let mut stream = timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .unwrap()
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        timeout(WAIT, stream.read_to_string(&mut response))
            .await
            .expect("http response timed out")
            .unwrap();
        response
    }

    async fn stop(self) {
        timeout(WAIT, self.relay.stop())
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
    }

    /// Stops the relay and starts it again on the same database (on a new port).
    async fn restart(self) -> Self {
        let Self { relay, _dir, .. } = self;
        timeout(WAIT, relay.stop())
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
        let relay = hearth_testkit::TestRelay::at(&_dir.path().join("relay.db"));
        Self {
            addr: relay.addr(),
            relay,
            _dir,
        }
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    relay_id: [u8; 16],
    nonce: [u8; 32],
}

impl Client {
    async fn at(addr: SocketAddr) -> Self {
        let (ws, _) = timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/v1/sync")),
        )
        .await
        .expect("connect timed out")
        .expect("websocket upgrade");
        Client {
            ws,
            relay_id: [0; 16],
            nonce: [0; 32],
        }
    }

    async fn send(&mut self, frame: &ClientFrame) {
        let bytes = encode_client(frame, MAX).unwrap();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next frame, or `None` once the relay closed the connection.
    async fn next(&mut self) -> Option<RelayFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("no frame from the relay in time");
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(decode_relay(&bytes, MAX).unwrap());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
            }
        }
    }

    async fn recv(&mut self) -> RelayFrame {
        self.next().await.expect("the relay closed the connection")
    }

    async fn request(&mut self, frame: &ClientFrame) -> RelayFrame {
        self.send(frame).await;
        self.recv().await
    }

    async fn expect_closed(&mut self) {
        assert_eq!(self.next().await, None, "the relay should have closed");
    }

    async fn hello(&mut self) {
        let challenge = self
            .request(&ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                client: "relay-tests".into(),
            })
            .await;
        let RelayFrame::Challenge {
            relay_id,
            nonce,
            versions,
            ..
        } = challenge
        else {
            panic!("expected Challenge, got {challenge:?}");
        };
        assert!(versions.contains(&PROTOCOL_VERSION));
        self.relay_id = relay_id;
        self.nonce = nonce;
    }

    /// Asks the relay to prove its key over `nonce`; checks the proof (and that the
    /// challenge's relay id is the key's fingerprint) and returns the key.
    async fn identify(&mut self, nonce: [u8; 32]) -> [u8; 32] {
        let reply = self.request(&ClientFrame::Identify { nonce }).await;
        let RelayFrame::Identity {
            key,
            time_ms,
            signature,
        } = reply
        else {
            panic!("expected Identity, got {reply:?}");
        };
        assert!(time_ms.abs_diff(now_ms()) < 60_000, "the relay's clock");
        let fingerprint = hearth_proto::verify_relay_identity(
            &key,
            &nonce,
            &self.nonce,
            &self.relay_id,
            time_ms,
            &signature,
        )
        .unwrap();
        assert_eq!(*fingerprint.as_bytes(), self.relay_id);
        key
    }

    async fn auth_at(
        &mut self,
        signer: &SigningKey,
        space: SpaceId,
        as_invite: bool,
        time_ms: u64,
    ) -> RelayFrame {
        let device = device_id(signer);
        let message = auth_message(
            &self.relay_id,
            &self.nonce,
            time_ms,
            &space,
            &device,
            as_invite,
        );
        self.request(&ClientFrame::Auth {
            device,
            space,
            time_ms,
            signature: signer.sign(&message).to_bytes(),
            as_invite,
        })
        .await
    }

    async fn auth(&mut self, signer: &SigningKey, space: SpaceId, as_invite: bool) -> RelayFrame {
        self.auth_at(signer, space, as_invite, now_ms()).await
    }

    async fn push(&mut self, envelope: Vec<u8>) -> RelayFrame {
        self.request(&ClientFrame::Push { envelope }).await
    }

    /// Subscribes and collects every Batch item up to the head.
    async fn subscribe(&mut self, space: SpaceId, since_seq: u64) -> Vec<(u64, Vec<u8>)> {
        self.send(&ClientFrame::Subscribe { space, since_seq })
            .await;
        let mut all = Vec::new();
        loop {
            match self.recv().await {
                RelayFrame::Batch { items, head } => {
                    let last = items.last().map(|(seq, _)| *seq);
                    all.extend(items);
                    if last.is_none_or(|last| last >= head) {
                        return all;
                    }
                }
                other => panic!("expected Batch, got {other:?}"),
            }
        }
    }
}

fn reject_code(frame: &RelayFrame) -> RejectCode {
    match frame {
        RelayFrame::Reject { code, .. } => *code,
        other => panic!("expected Reject, got {other:?}"),
    }
}

fn reject_message(frame: &RelayFrame) -> String {
    match frame {
        RelayFrame::Reject { message, .. } => message.clone(),
        other => panic!("expected Reject, got {other:?}"),
    }
}

/// A space created by device A (key 1) and joined by device B (key 2) through a partner
/// invite (key 3), with both devices connected and authenticated.
struct Couple {
    space: SpaceId,
    /// Hash of the last ACL record.
    head: [u8; 32],
    a_key: SigningKey,
    b_key: SigningKey,
    a: Client,
    b: Client,
}

async fn create_space(
    relay: &TestRelay,
    creator: &SigningKey,
    space: SpaceId,
) -> (Client, AclRecord) {
    let mut client = relay.greeted().await;
    assert_eq!(
        client.auth(creator, space, false).await,
        RelayFrame::AclChanged { records: vec![] },
        "a new space authenticates for creation"
    );
    let genesis = acl_record(
        [0; 32],
        AclBody::Genesis {
            space,
            device: device_id(creator),
            recipient: [7; 32],
            epoch: 0,
            key_check: [8; 32],
        },
        &[creator],
    );
    let reply = client
        .request(&ClientFrame::CreateSpace {
            genesis: genesis.encode(),
            token: None,
        })
        .await;
    assert_eq!(
        reply,
        RelayFrame::AclChanged {
            records: vec![genesis.encode()]
        }
    );
    (client, genesis)
}

async fn couple(relay: &TestRelay) -> Couple {
    let space = SpaceId::from_bytes([0x5a; 16]);
    let (a_key, b_key, invite_key) = (key(1), key(2), key(3));
    let (mut a, genesis) = create_space(relay, &a_key, space).await;
    let invite = acl_record(
        genesis.hash(),
        AclBody::Invite {
            invite: invite_id(&invite_key),
            expires_at_ms: now_ms() + 3_600_000,
            role: InviteRole::Partner,
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    assert_eq!(
        a.request(&ClientFrame::PutAcl {
            record: invite.encode()
        })
        .await,
        RelayFrame::AclChanged {
            records: vec![invite.encode()]
        }
    );
    a.send(&ClientFrame::PutLockbox {
        device: device_id(&invite_key),
        epoch: 0,
        blob: b"epoch key sealed to the invite".to_vec(),
    })
    .await;
    assert_eq!(
        a.request(&ClientFrame::Ping { nonce: 7 }).await,
        RelayFrame::Pong { nonce: 7 }
    );

    // The joiner authenticates with the invite key, fetches its lockbox, adds its device.
    let mut joining = relay.greeted().await;
    assert_eq!(
        joining.auth(&invite_key, space, true).await,
        RelayFrame::AclChanged {
            records: vec![genesis.encode(), invite.encode()]
        }
    );
    assert_eq!(
        joining.request(&ClientFrame::GetLockbox { epoch: 0 }).await,
        RelayFrame::Lockbox {
            epoch: 0,
            blob: b"epoch key sealed to the invite".to_vec()
        }
    );
    let refused = joining
        .push(signed_changes(&invite_key, space, 1, b"not yet"))
        .await;
    assert_eq!(
        reject_code(&refused),
        RejectCode::Invalid,
        "an invite key cannot push"
    );
    let add = acl_record(
        invite.hash(),
        AclBody::AddDevice {
            device: device_id(&b_key),
            recipient: [7; 32],
            invite: invite_id(&invite_key),
        },
        &[&b_key, &invite_key],
    );
    assert_eq!(
        joining
            .request(&ClientFrame::PutAcl {
                record: add.encode()
            })
            .await,
        RelayFrame::AclChanged {
            records: vec![add.encode()]
        }
    );
    // A subscriber would see it live; A is not subscribed yet, so nothing queued for it.
    let mut b = relay.greeted().await;
    assert_eq!(
        b.auth(&b_key, space, false).await,
        RelayFrame::AclChanged {
            records: vec![genesis.encode(), invite.encode(), add.encode()]
        }
    );
    Couple {
        space,
        head: add.hash(),
        a_key,
        b_key,
        a,
        b,
    }
}

#[tokio::test]
async fn partner_joins_with_an_invite_and_sees_pushes_live() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    assert!(b.subscribe(space, 0).await.is_empty());

    let sealed = signed_changes(&a_key, space, 1, b"an appreciation, sealed");
    assert_eq!(
        a.push(sealed.clone()).await,
        RelayFrame::Committed { seq: 1, counter: 1 }
    );
    assert_eq!(
        b.recv().await,
        RelayFrame::Event {
            seq: 1,
            envelope: sealed
        },
        "B receives the identical bytes"
    );
    relay.stop().await;
}

#[tokio::test]
async fn duplicate_push_answers_the_original_seq_and_is_stored_once() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    let first = signed_changes(&a_key, space, 1, b"first");
    assert_eq!(
        a.push(first.clone()).await,
        RelayFrame::Committed { seq: 1, counter: 1 }
    );
    assert_eq!(
        a.push(first.clone()).await,
        RelayFrame::Committed { seq: 1, counter: 1 }
    );
    assert_eq!(
        a.push(signed_changes(&a_key, space, 2, b"second")).await,
        RelayFrame::Committed { seq: 2, counter: 2 }
    );
    let stored = b.subscribe(space, 0).await;
    assert_eq!(stored.len(), 2, "the duplicate is stored once");
    assert_eq!(stored[0], (1, first));
    relay.stop().await;
}

#[tokio::test]
async fn reconnecting_with_since_seq_gets_only_newer_envelopes() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        b_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    let mut sent = Vec::new();
    for counter in 1..=5 {
        let bytes = signed_changes(
            &a_key,
            space,
            counter,
            format!("change {counter}").as_bytes(),
        );
        assert_eq!(
            a.push(bytes.clone()).await,
            RelayFrame::Committed {
                seq: counter,
                counter
            }
        );
        sent.push((counter, bytes));
    }
    assert_eq!(b.subscribe(space, 0).await, sent);
    drop(b);

    let mut again = relay.greeted().await;
    assert!(matches!(
        again.auth(&b_key, space, false).await,
        RelayFrame::AclChanged { .. }
    ));
    assert_eq!(again.subscribe(space, 3).await, sent[3..].to_vec());
    // And live events follow the batch.
    let sixth = signed_changes(&a_key, space, 6, b"change 6");
    assert_eq!(
        a.push(sixth.clone()).await,
        RelayFrame::Committed { seq: 6, counter: 6 }
    );
    assert_eq!(
        again.recv().await,
        RelayFrame::Event {
            seq: 6,
            envelope: sixth
        }
    );
    relay.stop().await;
}

#[tokio::test]
async fn stranger_is_unauthorized_with_the_same_message_as_for_a_missing_space() {
    let relay = TestRelay::start().await;
    let Couple { space, .. } = couple(&relay).await;
    let stranger = key(66);

    let mut client = relay.greeted().await;
    let existing = client.auth(&stranger, space, false).await;
    assert_eq!(reject_code(&existing), RejectCode::Unauthorized);
    client.expect_closed().await;

    let mut client = relay.greeted().await;
    let as_invite = client.auth(&stranger, space, true).await;
    assert_eq!(reject_code(&as_invite), RejectCode::Unauthorized);

    let mut client = relay.greeted().await;
    let missing = client
        .auth(&stranger, SpaceId::from_bytes([0x77; 16]), true)
        .await;
    assert_eq!(reject_code(&missing), RejectCode::Unauthorized);
    assert_eq!(reject_message(&existing), reject_message(&missing));
    assert_eq!(reject_message(&existing), reject_message(&as_invite));
    relay.stop().await;
}

#[tokio::test]
async fn bad_auth_signature_is_unauthorized() {
    let relay = TestRelay::start().await;
    let Couple { space, a_key, .. } = couple(&relay).await;
    let mut client = relay.greeted().await;
    let time_ms = now_ms();
    // Signed over another nonce: a replayed or forged signature.
    let message = auth_message(
        &client.relay_id,
        &[0; 32],
        time_ms,
        &space,
        &device_id(&a_key),
        false,
    );
    let reply = client
        .request(&ClientFrame::Auth {
            device: device_id(&a_key),
            space,
            time_ms,
            signature: a_key.sign(&message).to_bytes(),
            as_invite: false,
        })
        .await;
    assert_eq!(reject_code(&reply), RejectCode::Unauthorized);
    client.expect_closed().await;
    relay.stop().await;
}

#[tokio::test]
async fn the_relay_proves_one_key_across_restarts_and_its_challenge_names_its_fingerprint() {
    let relay = TestRelay::start().await;
    let mut proved = Vec::new();
    let relay = {
        let mut client = relay.greeted().await;
        proved.push(client.identify([1; 32]).await);
        // A second Identify on the same connection is out of order.
        let again = client
            .request(&ClientFrame::Identify { nonce: [2; 32] })
            .await;
        assert_eq!(reject_code(&again), RejectCode::BadFrame);
        relay.restart().await
    };
    let mut client = relay.greeted().await;
    proved.push(client.identify([3; 32]).await);
    assert_eq!(proved[0], proved[1], "the same key after a restart");
    // And a login goes on after it as without it.
    let a_key = key(1);
    let space = SpaceId::from_bytes([0x51; 16]);
    let reply = client.auth(&a_key, space, false).await;
    assert!(
        matches!(reply, RelayFrame::AclChanged { ref records } if records.is_empty()),
        "{reply:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn stale_auth_time_is_refused_as_clock_skew_and_closes() {
    let relay = TestRelay::start().await;
    let Couple { space, a_key, .. } = couple(&relay).await;
    let mut client = relay.greeted().await;
    let an_hour_ago = now_ms() - 3_600_000;
    let reply = client.auth_at(&a_key, space, false, an_hour_ago).await;
    assert_eq!(reject_code(&reply), RejectCode::ClockSkew);
    let said = reject_message(&reply);
    assert!(said.contains("behind the relay's"), "{said}");
    client.expect_closed().await;
    relay.stop().await;
}

#[tokio::test]
async fn tampered_envelope_is_rejected_and_nothing_stored() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    let mut tampered = signed_changes(&a_key, space, 1, b"the original text");
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let reply = a.push(tampered).await;
    assert_eq!(reject_code(&reply), RejectCode::Invalid);
    // The connection stays usable, and nothing was stored.
    assert_eq!(
        a.request(&ClientFrame::Ping { nonce: 1 }).await,
        RelayFrame::Pong { nonce: 1 }
    );
    assert!(b.subscribe(space, 0).await.is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn push_as_another_author_is_rejected() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    // B relays a validly signed envelope of A's: only its author may push it.
    let reply = b.push(signed_changes(&a_key, space, 1, b"A's words")).await;
    assert_eq!(reject_code(&reply), RejectCode::NotMember);
    assert!(a.subscribe(space, 0).await.is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn version_mismatch_names_both_versions() {
    let relay = TestRelay::start().await;
    let mut client = relay.connect().await;
    let reply = client
        .request(&ClientFrame::Hello {
            version: 99,
            client: "from the future".into(),
        })
        .await;
    assert_eq!(reject_code(&reply), RejectCode::UnsupportedVersion);
    let message = reject_message(&reply);
    assert!(
        message.contains("99") && message.contains(&PROTOCOL_VERSION.to_string()),
        "{message}"
    );
    client.expect_closed().await;
    relay.stop().await;
}

#[tokio::test]
async fn oversized_frame_is_refused_and_the_relay_keeps_serving() {
    let limits = Limits {
        max_frame_bytes: 64 * 1024,
        max_envelope_bytes: 32 * 1024,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(limits).await;
    let mut client = relay.greeted().await;
    let huge = vec![0u8; 200 * 1024];
    // The relay refuses it (and closes) as soon as it reads the frame's length; the
    // client may see the Reject, or the connection reset while it was still sending.
    let _ = client.ws.send(Message::Binary(huge.into())).await;
    if let Some(frame) = client.next().await {
        assert_eq!(reject_code(&frame), RejectCode::TooLarge);
        client.expect_closed().await;
    }

    // An envelope over the envelope limit inside a frame under the frame limit.
    let a_key = key(1);
    let space = SpaceId::from_bytes([9; 16]);
    let (mut a, _) = create_space(&relay, &a_key, space).await;
    let reply = a
        .push(signed_changes(&a_key, space, 1, &[1; 40 * 1024]))
        .await;
    assert_eq!(reject_code(&reply), RejectCode::TooLarge);
    assert_eq!(
        a.push(signed_changes(&a_key, space, 1, b"small")).await,
        RelayFrame::Committed { seq: 1, counter: 1 }
    );
    relay.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_open_websockets() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    assert!(b.subscribe(space, 0).await.is_empty());
    // Both clients stay connected while the relay stops.
    relay.stop().await;
    a.expect_closed().await;
    b.expect_closed().await;
}

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    assert!(b.subscribe(space, 0).await.is_empty());
    assert!(matches!(
        a.push(signed_changes(&a_key, space, 1, b"counted")).await,
        RelayFrame::Committed { .. }
    ));
    assert!(matches!(b.recv().await, RelayFrame::Event { seq: 1, .. }));
    let health = relay.http_get("/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let metrics = relay.http_get("/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let open: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hearth_relay_connections_open "))
        .expect("a connections gauge")
        .parse()
        .unwrap();
    // A and B; the joiner's closed connection may not have been noticed yet.
    assert!((2..=3).contains(&open), "{open} connections open");
    for line in [
        "hearth_relay_pushes_committed_total 1",
        "hearth_relay_store_batches_total 1",
        "hearth_relay_rejects_total{code=\"invalid\"} 1",
        "hearth_relay_push_committed_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    // B's event is timed once it is handed to B's writer, around when B reads it.
    timeout(WAIT, async {
        while !relay
            .http_get("/metrics")
            .await
            .contains("hearth_relay_push_forwarded_seconds_count 1")
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the event sent to B was never timed");
    relay.stop().await;
}

#[tokio::test]
async fn removed_device_is_told_and_can_no_longer_sync() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        head,
        a_key,
        b_key,
        mut a,
        mut b,
    } = couple(&relay).await;
    assert!(b.subscribe(space, 0).await.is_empty());
    let remove = acl_record(
        head,
        AclBody::RemoveDevice {
            device: device_id(&b_key),
            by: device_id(&a_key),
            last_counter: 0,
        },
        &[&a_key],
    );
    let record = remove.encode();
    assert_eq!(
        a.request(&ClientFrame::PutAcl {
            record: record.clone()
        })
        .await,
        RelayFrame::AclChanged {
            records: vec![record.clone()]
        }
    );
    assert_eq!(
        b.recv().await,
        RelayFrame::AclChanged {
            records: vec![record]
        },
        "subscribers see ACL changes live"
    );
    assert_eq!(reject_code(&b.recv().await), RejectCode::NotMember);
    b.expect_closed().await;

    let mut again = relay.greeted().await;
    let reply = again.auth(&b_key, space, false).await;
    assert_eq!(reject_code(&reply), RejectCode::Unauthorized);
    // A record that no longer follows the head loses the race.
    let stale = acl_record(
        head,
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [9; 32],
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    let reply = a
        .request(&ClientFrame::PutAcl {
            record: stale.encode(),
        })
        .await;
    assert_eq!(reject_code(&reply), RejectCode::Conflict);
    relay.stop().await;
}

#[tokio::test]
async fn a_lockbox_for_an_epoch_the_acl_has_not_reached_is_refused() {
    let relay = TestRelay::start().await;
    let Couple {
        head,
        a_key,
        mut a,
        b_key,
        ..
    } = couple(&relay).await;
    // Keys are wrapped only once their RotateEpoch record is in, so two devices racing to
    // rotate cannot leave lockboxes that disagree with the chain.
    let early = a
        .request(&ClientFrame::PutLockbox {
            device: device_id(&b_key),
            epoch: 1,
            blob: b"a key for an epoch that does not exist yet".to_vec(),
        })
        .await;
    assert_eq!(reject_code(&early), RejectCode::Invalid);
    let rotate = acl_record(
        head,
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [9; 32],
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    assert!(matches!(
        a.request(&ClientFrame::PutAcl {
            record: rotate.encode()
        })
        .await,
        RelayFrame::AclChanged { .. }
    ));
    a.send(&ClientFrame::PutLockbox {
        device: device_id(&b_key),
        epoch: 1,
        blob: b"the new key, wrapped for b".to_vec(),
    })
    .await;
    assert_eq!(
        a.request(&ClientFrame::Ping { nonce: 9 }).await,
        RelayFrame::Pong { nonce: 9 }
    );
    relay.stop().await;
}

#[tokio::test]
async fn used_and_expired_invites_are_refused_with_their_reason() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        head,
        a_key,
        mut a,
        ..
    } = couple(&relay).await;
    let mut reuse = relay.greeted().await;
    let reply = reuse.auth(&key(3), space, true).await;
    assert_eq!(reject_code(&reply), RejectCode::InviteUsed);

    let late = key(4);
    let expired = acl_record(
        head,
        AclBody::Invite {
            invite: invite_id(&late),
            expires_at_ms: now_ms() - 1,
            role: InviteRole::OwnDevice,
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    assert!(matches!(
        a.request(&ClientFrame::PutAcl {
            record: expired.encode()
        })
        .await,
        RelayFrame::AclChanged { .. }
    ));
    let mut joiner = relay.greeted().await;
    let reply = joiner.auth(&late, space, true).await;
    assert_eq!(reject_code(&reply), RejectCode::InviteExpired);
    relay.stop().await;
}

#[tokio::test]
async fn pushes_over_the_rate_limit_are_refused() {
    let limits = Limits {
        max_pushes_per_sec: 1,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(limits).await;
    let a_key = key(1);
    let space = SpaceId::from_bytes([8; 16]);
    let (mut a, _) = create_space(&relay, &a_key, space).await;
    assert!(matches!(
        a.push(signed_changes(&a_key, space, 1, b"one")).await,
        RelayFrame::Committed { .. }
    ));
    let reply = a.push(signed_changes(&a_key, space, 2, b"two")).await;
    assert_eq!(reject_code(&reply), RejectCode::RateLimited);
    relay.stop().await;
}

/// A's other device (key 4), added through an own-device invite (key 5): the same person
/// as A, logged in.
async fn as_other_device(relay: &TestRelay, couple: &mut Couple) -> Client {
    let (tablet, invite_key) = (key(4), key(5));
    let invite = acl_record(
        couple.head,
        AclBody::Invite {
            invite: invite_id(&invite_key),
            expires_at_ms: now_ms() + 3_600_000,
            role: InviteRole::OwnDevice,
            by: device_id(&couple.a_key),
        },
        &[&couple.a_key],
    );
    let add = acl_record(
        invite.hash(),
        AclBody::AddDevice {
            device: device_id(&tablet),
            recipient: [7; 32],
            invite: invite_id(&invite_key),
        },
        &[&tablet, &invite_key],
    );
    for record in [&invite, &add] {
        assert!(matches!(
            couple
                .a
                .request(&ClientFrame::PutAcl {
                    record: record.encode()
                })
                .await,
            RelayFrame::AclChanged { .. }
        ));
    }
    couple.head = add.hash();
    let mut client = relay.greeted().await;
    assert!(matches!(
        client.auth(&tablet, couple.space, false).await,
        RelayFrame::AclChanged { .. }
    ));
    client
}

impl Client {
    /// Subscribes from `since_seq` (asking for the envelopes alone unless `snapshot`) and
    /// collects every frame up to the `Pong` of a `Ping` sent right after, as the client
    /// ends a pull.
    async fn pull(&mut self, space: SpaceId, since_seq: u64, snapshot: bool) -> Vec<RelayFrame> {
        self.send(&if snapshot {
            ClientFrame::Subscribe { space, since_seq }
        } else {
            ClientFrame::SubscribeEnvelopes { space, since_seq }
        })
        .await;
        self.send(&ClientFrame::Ping { nonce: 77 }).await;
        let mut frames = Vec::new();
        loop {
            match self.recv().await {
                RelayFrame::Pong { nonce: 77 } => return frames,
                other => frames.push(other),
            }
        }
    }

    /// A's countersignature by `signer` of `snapshot` (its bytes) covering `covers_seq`.
    async fn countersign(
        &mut self,
        signer: &SigningKey,
        space: SpaceId,
        covers_seq: u64,
        snapshot: &[u8],
    ) -> RelayFrame {
        let hash = hearth_proto::snapshot_hash(snapshot);
        let message = hearth_proto::countersign_message(&space, covers_seq, &hash);
        self.request(&ClientFrame::Countersign {
            covers_seq,
            snapshot: hash,
            device: device_id(signer),
            signature: signer.sign(&message).to_bytes(),
        })
        .await
    }
}

/// The seqs of the envelopes (and the snapshot) among `frames`' batches.
fn batch_seqs(frames: &[RelayFrame]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            RelayFrame::Batch { items, .. } => Some(items.iter().map(|(seq, _)| *seq)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A couple whose A pushed three envelopes and proposed a snapshot covering seq 2.
async fn couple_with_a_proposal(relay: &TestRelay) -> (Couple, Vec<u8>) {
    let mut couple = couple(relay).await;
    let (space, a_key) = (couple.space, couple.a_key.clone());
    for counter in 1..=3 {
        assert!(matches!(
            couple
                .a
                .push(signed_changes(&a_key, space, counter, b"change"))
                .await,
            RelayFrame::Committed { .. }
        ));
    }
    let snapshot = signed_envelope(
        &a_key,
        space,
        4,
        EnvelopeKind::Snapshot { covers_seq: 2 },
        b"the whole document up to seq 2",
    );
    assert_eq!(
        couple
            .a
            .request(&ClientFrame::PushSnapshot {
                envelope: snapshot.clone()
            })
            .await,
        RelayFrame::Committed { seq: 2, counter: 4 }
    );
    (couple, snapshot)
}

#[tokio::test]
async fn a_proposed_snapshot_drops_nothing_and_is_shown_to_the_other_person_only() {
    let relay = TestRelay::start().await;
    let (mut couple, snapshot) = couple_with_a_proposal(&relay).await;
    let space = couple.space;
    // B, the other person, still reads every envelope, and then the proposal.
    let frames = couple.b.pull(space, 0, true).await;
    assert_eq!(batch_seqs(&frames), [1, 2, 3], "nothing was dropped");
    assert_eq!(
        frames.last(),
        Some(&RelayFrame::Proposed {
            envelope: snapshot.clone()
        }),
        "after the pages, before the Pong"
    );
    // A's own devices are not shown it: their countersignature could not count.
    let mut tablet = as_other_device(&relay, &mut couple).await;
    let frames = tablet.pull(space, 0, true).await;
    assert_eq!(batch_seqs(&frames), [1, 2, 3]);
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, RelayFrame::Proposed { .. })),
        "{frames:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_countersignature_by_the_authors_person_a_stranger_or_a_bad_signature_drops_nothing() {
    let relay = TestRelay::start().await;
    let (mut couple, snapshot) = couple_with_a_proposal(&relay).await;
    let (space, a_key, b_key) = (couple.space, couple.a_key.clone(), couple.b_key.clone());
    let mut tablet = as_other_device(&relay, &mut couple).await;

    // The author itself, and another device of the author's person.
    let own = couple.a.countersign(&a_key, space, 2, &snapshot).await;
    assert_eq!(reject_code(&own), RejectCode::Invalid);
    assert!(reject_message(&own).contains("other person"), "{own:?}");
    let own = tablet.countersign(&key(4), space, 2, &snapshot).await;
    assert_eq!(reject_code(&own), RejectCode::Invalid);
    // Someone who is no member, signing for the proposal through B's connection.
    let stranger = couple.b.countersign(&key(66), space, 2, &snapshot).await;
    assert_eq!(reject_code(&stranger), RejectCode::Invalid);
    assert!(
        reject_message(&stranger).contains("not a member"),
        "{stranger:?}"
    );
    // B's name on a signature over something else.
    let hash = hearth_proto::snapshot_hash(&snapshot);
    let other = hearth_proto::countersign_message(&space, 3, &hash);
    let forged = couple
        .b
        .request(&ClientFrame::Countersign {
            covers_seq: 2,
            snapshot: hash,
            device: device_id(&b_key),
            signature: b_key.sign(&other).to_bytes(),
        })
        .await;
    assert_eq!(reject_code(&forged), RejectCode::Invalid);
    assert!(
        reject_message(&forged).contains("does not verify"),
        "{forged:?}"
    );
    // A countersignature of another snapshot than the one waiting.
    let stale = couple
        .b
        .countersign(&b_key, space, 2, b"another snapshot")
        .await;
    assert_eq!(reject_code(&stale), RejectCode::Conflict);
    for refusal in [own, stranger, forged, stale] {
        assert!(
            reject_message(&refusal).contains("nothing was dropped"),
            "{refusal:?}"
        );
    }

    let frames = couple.b.pull(space, 0, true).await;
    assert_eq!(
        batch_seqs(&frames),
        [1, 2, 3],
        "every envelope is still there"
    );
    assert!(matches!(frames.last(), Some(RelayFrame::Proposed { .. })));
    relay.stop().await;
}

#[tokio::test]
async fn the_other_persons_countersignature_lets_the_snapshot_stand_in_for_what_it_covers() {
    let relay = TestRelay::start().await;
    let (mut couple, snapshot) = couple_with_a_proposal(&relay).await;
    let (space, a_key, b_key) = (couple.space, couple.a_key.clone(), couple.b_key.clone());
    let hash = hearth_proto::snapshot_hash(&snapshot);
    let signature = b_key
        .sign(&hearth_proto::countersign_message(&space, 2, &hash))
        .to_bytes();
    let countersigned = RelayFrame::Countersigned {
        covers_seq: 2,
        device: device_id(&b_key),
        signature,
    };
    assert_eq!(
        couple.b.countersign(&b_key, space, 2, &snapshot).await,
        countersigned
    );
    // A new subscriber gets the countersignature, then the snapshot in place of seqs 1-2.
    let mut fresh = relay.greeted().await;
    assert!(matches!(
        fresh.auth(&a_key, space, false).await,
        RelayFrame::AclChanged { .. }
    ));
    let frames = fresh.pull(space, 0, true).await;
    assert_eq!(frames[0], countersigned);
    assert_eq!(
        frames[1],
        RelayFrame::Batch {
            items: vec![(2, snapshot.clone())],
            head: 3
        }
    );
    assert_eq!(batch_seqs(&frames), [2, 3]);
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, RelayFrame::Proposed { .. }))
    );
    // The envelopes it covers are gone, even for one asking for envelopes alone.
    assert_eq!(batch_seqs(&fresh.pull(space, 0, false).await), [3]);
    // A subscriber already past the snapshot does not get it.
    assert_eq!(batch_seqs(&fresh.pull(space, 2, true).await), [3]);
    // Counted once: a second countersignature finds nothing waiting.
    let again = couple.b.countersign(&b_key, space, 2, &snapshot).await;
    assert_eq!(reject_code(&again), RejectCode::Conflict);
    relay.stop().await;
}

#[tokio::test]
async fn envelopes_alone_are_served_from_before_an_accepted_snapshot_while_the_relay_has_them() {
    let relay = TestRelay::start().await;
    let (mut couple, snapshot) = couple_with_a_proposal(&relay).await;
    let (space, b_key) = (couple.space, couple.b_key.clone());
    assert!(matches!(
        couple.b.countersign(&b_key, space, 2, &snapshot).await,
        RelayFrame::Countersigned { .. }
    ));
    // A newer proposal: the accepted snapshot stays, and so do the envelopes after it.
    let newer = signed_envelope(
        &couple.a_key,
        space,
        5,
        EnvelopeKind::Snapshot { covers_seq: 3 },
        b"the whole document up to seq 3",
    );
    assert!(matches!(
        couple
            .a
            .request(&ClientFrame::PushSnapshot { envelope: newer })
            .await,
        RelayFrame::Committed { seq: 3, .. }
    ));
    let frames = couple.b.pull(space, 0, true).await;
    assert_eq!(batch_seqs(&frames), [2, 3]);
    assert!(matches!(frames.last(), Some(RelayFrame::Proposed { .. })));
    assert_eq!(batch_seqs(&couple.b.pull(space, 0, false).await), [3]);
    relay.stop().await;
}

#[tokio::test]
async fn binary_prints_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth-relay"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("relay.db"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = timeout(WAIT, lines.next_line())
        .await
        .expect("no address printed in time")
        .unwrap()
        .unwrap();
    let addr: SocketAddr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0);
    let mut client = Client::at(addr).await;
    client.hello().await;

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = timeout(WAIT, child.wait())
        .await
        .expect("the relay did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    client.expect_closed().await;
    assert_eq!(
        timeout(WAIT, lines.next_line()).await.unwrap().unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_sees_every_seq_once_in_order_under_concurrent_pushes() {
    const EACH: u64 = 30;
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        b_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    let mut watcher = relay.greeted().await;
    assert!(matches!(
        watcher.auth(&a_key, space, false).await,
        RelayFrame::AclChanged { .. }
    ));
    assert!(watcher.subscribe(space, 0).await.is_empty());

    let pusher = |mut client: Client, key: SigningKey| async move {
        for counter in 1..=EACH {
            let bytes = signed_changes(&key, space, counter, &counter.to_be_bytes());
            client.send(&ClientFrame::Push { envelope: bytes }).await;
        }
        for _ in 1..=EACH {
            assert!(matches!(client.recv().await, RelayFrame::Committed { .. }));
        }
        client
    };
    let from_a = tokio::spawn(pusher(a, a_key.clone()));
    let from_b = tokio::spawn(pusher(b, b_key.clone()));
    let mut seqs = Vec::new();
    while seqs.len() < 2 * EACH as usize {
        match watcher.recv().await {
            RelayFrame::Event { seq, .. } => seqs.push(seq),
            other => panic!("expected Event, got {other:?}"),
        }
    }
    assert_eq!(seqs, (1..=2 * EACH).collect::<Vec<_>>());
    a = from_a.await.unwrap();
    b = from_b.await.unwrap();
    drop((a, b));
    relay.stop().await;
}

#[tokio::test]
async fn silent_clients_are_disconnected() {
    let relay = TestRelay::start_with_config(RelayConfig {
        handshake_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(400),
        ..RelayConfig::default()
    })
    .await;
    // Never says Hello.
    let mut mute = relay.connect().await;
    mute.expect_closed().await;
    // Authenticates, then goes silent: a client answers pings only while it reads, so
    // this one stops reading for longer than the idle timeout (silence is the point here,
    // not a wait for readiness).
    let a_key = key(1);
    let (mut quiet, _) = create_space(&relay, &a_key, SpaceId::from_bytes([4; 16])).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    quiet.expect_closed().await;
    relay.stop().await;
}

#[tokio::test]
async fn connections_that_never_finish_their_http_request_are_closed() {
    let relay = TestRelay::start_with_config(RelayConfig {
        request_timeout: Duration::from_millis(300),
        ..RelayConfig::default()
    })
    .await;
    // One connects and says nothing; one sends half a request line, then a header byte
    // now and then (slowloris), never the blank line that ends the request.
    let mut mute = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    slow.write_all(b"GET /v1/sync HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        let mut closed = false;
        for _ in 0..100 {
            if slow.write_all(b"X").await.is_err() {
                closed = true;
                break;
            }
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(100), slow.read(&mut byte)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                closed = true;
                break;
            }
        }
        closed
    });
    // Meanwhile a real client is served as usual.
    let _client = relay.greeted().await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, mute.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent connection is closed: {read:?}"
    );
    assert!(
        trickle.await.unwrap(),
        "a connection trickling its request is closed"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_member_can_delete_the_space_and_everyone_is_told_with_the_proof() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        b_key,
        mut a,
        mut b,
        ..
    } = couple(&relay).await;
    assert!(matches!(
        a.push(signed_changes(&a_key, space, 1, b"soon gone")).await,
        RelayFrame::Committed { .. }
    ));
    assert_eq!(b.subscribe(space, 0).await.len(), 1);
    let message = hearth_proto::delete_space_message(&a.relay_id, &a.nonce, &space);
    let signature = a_key.sign(&message).to_bytes();
    let reply = a
        .request(&ClientFrame::DeleteSpace { space, signature })
        .await;
    assert_eq!(reply, RelayFrame::AclChanged { records: vec![] });
    a.expect_closed().await;
    // The subscriber is shown who deleted it, with the signature, which verifies.
    let told = b.recv().await;
    let deleted_at_ms = deleted_at(&told);
    assert!(deleted_at_ms.abs_diff(now_ms()) < 60_000, "{deleted_at_ms}");
    let proof = RelayFrame::SpaceDeleted {
        space,
        device: device_id(&a_key),
        relay_id: a.relay_id,
        nonce: a.nonce,
        signature,
        deleted_at_ms,
    };
    assert_eq!(told, proof);
    hearth_proto::verify_delete_space(
        &a.relay_id,
        &a.nonce,
        &space,
        &device_id(&a_key),
        &signature,
    )
    .unwrap();
    b.expect_closed().await;

    // Ever after, even across a restart, its members' logins get the same proof, and the
    // id is not free again.
    let relay = relay.restart().await;
    for member in [&a_key, &b_key] {
        let mut again = relay.greeted().await;
        assert_eq!(again.auth(member, space, false).await, proof);
        again.expect_closed().await;
    }
    relay.stop().await;
}

/// When the `SpaceDeleted` frame `frame` says the space was deleted.
fn deleted_at(frame: &RelayFrame) -> u64 {
    match frame {
        RelayFrame::SpaceDeleted { deleted_at_ms, .. } => *deleted_at_ms,
        other => panic!("expected SpaceDeleted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_space_is_neither_shown_to_strangers_nor_created_again() {
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        mut a,
        ..
    } = couple(&relay).await;
    let message = hearth_proto::delete_space_message(&a.relay_id, &a.nonce, &space);
    a.request(&ClientFrame::DeleteSpace {
        space,
        signature: a_key.sign(&message).to_bytes(),
    })
    .await;
    // A stranger, and the invite key B joined with, get what they get for any space they
    // are not in.
    for (who, as_invite) in [(key(66), false), (key(3), true)] {
        let mut client = relay.greeted().await;
        let answer = client.auth(&who, space, as_invite).await;
        assert_eq!(reject_code(&answer), RejectCode::Unauthorized);
        client.expect_closed().await;
    }
    // Nobody can create it again: a stranger does not get as far as `CreateSpace`, and a
    // member is shown the deletion instead.
    let mut member = relay.greeted().await;
    assert!(matches!(
        member.auth(&a_key, space, false).await,
        RelayFrame::SpaceDeleted { .. }
    ));
    // Another space is created as usual.
    let (_, _) = create_space(&relay, &key(67), SpaceId::from_bytes([0x77; 16])).await;
    relay.stop().await;
}

/// Found by `hearth-bench soak`: a client that vanished right after pushing (a crash
/// mid-push) made the relay's writer fail, which dropped the connection's session while it
/// waited for the store. The push was committed but never fanned out: a partner connected
/// live missed it until it reconnected, and the pusher's resend was a duplicate, so nothing
/// published it later either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_push_reaches_live_subscribers_even_if_its_pusher_vanished() {
    const PUSHES: u64 = 40;
    let relay = TestRelay::start().await;
    let Couple {
        space,
        a_key,
        b_key,
        mut a,
        b,
        ..
    } = couple(&relay).await;
    assert!(a.subscribe(space, 0).await.is_empty());

    // B sends a burst of pushes and is gone without reading a single answer.
    let mut b = b;
    for counter in 1..=PUSHES {
        let bytes = signed_changes(&b_key, space, counter, &counter.to_be_bytes());
        b.send(&ClientFrame::Push { envelope: bytes }).await;
    }
    drop(b);

    // Once B's connection is over on the relay, whatever it stored is what a fresh
    // subscriber reads back...
    loop {
        let metrics = relay.http_get("/metrics").await;
        if metrics.contains("hearth_relay_connections_open 1\n") {
            break;
        }
        tokio::task::yield_now().await;
    }
    let mut c = relay.greeted().await;
    assert!(matches!(
        c.auth(&a_key, space, false).await,
        RelayFrame::AclChanged { .. }
    ));
    let stored = c.subscribe(space, 0).await.len() as u64;
    assert!(stored >= 1, "the relay stored some of the burst");
    // ...and A, live all along, must have been sent every one of them.
    let mut seqs = Vec::new();
    while (seqs.len() as u64) < stored {
        match a.recv().await {
            RelayFrame::Event { seq, .. } => seqs.push(seq),
            other => panic!("expected Event, got {other:?}"),
        }
    }
    assert_eq!(seqs, (1..=stored).collect::<Vec<_>>());
    drop((a, c));
    relay.stop().await;
}

/// The value of the sample `name` (with its labels) in a `/metrics` response.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_exactly_the_traffic_the_relay_saw() {
    let relay = TestRelay::start().await;
    let space = SpaceId::from_bytes([0x3c; 16]);
    let (a_key, invite_key) = (key(1), key(3));

    // Hello, Auth, CreateSpace: 3 frames each way.
    let (mut a, genesis) = create_space(&relay, &a_key, space).await;
    // An invite, then a rotation that cancels it: 2 each way.
    let invite = acl_record(
        genesis.hash(),
        AclBody::Invite {
            invite: invite_id(&invite_key),
            expires_at_ms: now_ms() + 3_600_000,
            role: InviteRole::Partner,
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    let rotate = acl_record(
        invite.hash(),
        AclBody::RotateEpoch {
            epoch: 1,
            key_check: [9; 32],
            by: device_id(&a_key),
        },
        &[&a_key],
    );
    for record in [&invite, &rotate] {
        assert!(matches!(
            a.request(&ClientFrame::PutAcl {
                record: record.encode()
            })
            .await,
            RelayFrame::AclChanged { .. }
        ));
    }
    // Two envelopes stored, one of them pushed twice: 3 each way, 3 pushes through the
    // store, 2 newly stored.
    let first = signed_changes(&a_key, space, 1, b"first");
    let second = signed_changes(&a_key, space, 2, b"the second one");
    for bytes in [&first, &first, &second] {
        assert!(matches!(
            a.push(bytes.clone()).await,
            RelayFrame::Committed { .. }
        ));
    }
    // A forged envelope (A's header, another key's signature): refused as invalid after
    // the store thread's signature check, never taken into a transaction. 1 each way.
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 0,
        author: device_id(&a_key),
        counter: 3,
    };
    let nonce = [3; 24];
    let forged_signature = key(9)
        .sign(&Envelope::signed_message(&header, &nonce, b"forged"))
        .to_bytes();
    let forged = Envelope::from_parts(header, nonce, b"forged".to_vec(), forged_signature);
    assert_eq!(
        reject_code(&a.push(forged.encode()).await),
        RejectCode::Invalid
    );
    // The cancelled invite: Hello and Auth, 2 each way, then closed.
    let mut late = relay.greeted().await;
    assert_eq!(
        reject_code(&late.auth(&invite_key, space, true).await),
        RejectCode::InviteRevoked
    );
    late.expect_closed().await;
    // A client of another protocol version: 1 each way, then closed.
    let mut old = relay.connect().await;
    assert_eq!(
        reject_code(
            &old.request(&ClientFrame::Hello {
                version: PROTOCOL_VERSION + 1,
                client: "from the future".into(),
            })
            .await
        ),
        RejectCode::UnsupportedVersion
    );
    old.expect_closed().await;

    // The relay counts a closed connection once its task ends, just after the close frame.
    let metrics = timeout(WAIT, async {
        loop {
            let metrics = relay.http_get("/metrics").await;
            if sample(&metrics, "hearth_relay_connections_open") == 1 {
                return metrics;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the closed connections were never counted as closed");
    assert!(
        metrics.contains("content-type: application/openmetrics-text"),
        "{metrics}"
    );
    let frames = 3 + 2 + 3 + 1 + 2 + 1;
    for (name, want) in [
        ("hearth_relay_frames_in_total", frames),
        ("hearth_relay_frames_out_total", frames),
        ("hearth_relay_pushes_committed_total", 2),
        (
            "hearth_relay_bytes_stored_total",
            (first.len() + second.len()) as u64,
        ),
        ("hearth_relay_store_pushes_total", 3),
        ("hearth_relay_store_batches_total", 3),
        ("hearth_relay_rejects_total{code=\"invalid\"}", 1),
        ("hearth_relay_rejects_total{code=\"invite_revoked\"}", 1),
        (
            "hearth_relay_rejects_total{code=\"unsupported_version\"}",
            1,
        ),
        ("hearth_relay_rejects_total{code=\"unauthorized\"}", 0),
        // Each push's stages: the forged one waited and was checked, but never written.
        ("hearth_relay_push_wait_seconds_count", 4),
        ("hearth_relay_push_verify_seconds_count", 4),
        ("hearth_relay_push_write_seconds_count", 3),
        ("hearth_relay_push_committed_seconds_count", 4),
    ] {
        assert_eq!(sample(&metrics, name), want, "{name} in\n{metrics}");
    }
    // A stage's buckets are cumulative and end in +Inf at the count.
    assert!(
        metrics.contains("hearth_relay_push_write_seconds_bucket{le=\"+Inf\"} 3"),
        "{metrics}"
    );
    relay.stop().await;
}
