//! A hostile relay: the real relay on a real SQLite file, whose database is edited between
//! runs (stop it, change the file with SQLite, start it again on the same file) to hand the
//! clients data an honest relay never would. The client's sync engine must refuse each bad
//! envelope with a warning that names the device, apply nothing from it, and keep syncing
//! the rest; it must refuse an ACL rollback outright and change nothing. A stranger talking
//! to the relay directly must be refused without learning whether the space exists.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hearth_client::sync::{self, JoinError, SyncError};
use hearth_client::{Profile, Protection};
use hearth_crypto::{DeviceKeys, EpochKey, InviteCode, sign_login};
use hearth_doc::{Millis, PersonId, SpaceDoc};
use hearth_proto::{
    ClientFrame, DeviceId, Envelope, EnvelopeHeader, EnvelopeKind, PROTOCOL_VERSION, RejectCode,
    RelayFrame, SpaceId, decode_relay, encode_client,
};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};
use rusqlite::{Connection, params};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(20);

/// The relay, which can be stopped, have its database edited, and be started again on the
/// same file (on a new port).
struct Relay {
    db: PathBuf,
    running: Option<TestRelay>,
    url: String,
}

impl Relay {
    fn start(db: PathBuf) -> Relay {
        let mut relay = Relay {
            db,
            running: None,
            url: String::new(),
        };
        relay.start_again();
        relay
    }

    fn start_again(&mut self) {
        let relay = TestRelay::at(&self.db);
        self.url = relay.url.clone();
        self.running = Some(relay);
    }

    async fn stop(&mut self) {
        if let Some(relay) = self.running.take() {
            relay.stop().await.unwrap();
        }
    }

    /// Stops the relay, runs `edit` on its database, and starts it again. The URL changes.
    async fn edit<R>(&mut self, edit: impl FnOnce(&Connection) -> R) -> R {
        self.stop().await;
        let conn = Connection::open(&self.db).unwrap();
        let out = edit(&conn);
        drop(conn);
        self.start_again();
        out
    }
}

/// One stored envelope, as the relay's `envelopes` table holds it.
#[derive(Debug, Clone)]
struct Row {
    seq: u64,
    device: Vec<u8>,
    counter: u64,
    bytes: Vec<u8>,
}

fn rows(conn: &Connection, space: &[u8; 16]) -> Vec<Row> {
    let mut stmt = conn
        .prepare("SELECT seq, device, counter, bytes FROM envelopes WHERE space = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([&space[..]], |r| {
        Ok(Row {
            seq: r.get::<_, i64>(0)? as u64,
            device: r.get(1)?,
            counter: r.get::<_, i64>(2)? as u64,
            bytes: r.get(3)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Appends an envelope after the space's head, keeping the sequence dense; returns its seq.
fn append(conn: &Connection, space: &[u8; 16], device: &[u8], counter: u64, bytes: &[u8]) -> u64 {
    let head: i64 = conn
        .query_row(
            "SELECT head FROM spaces WHERE space = ?1",
            [&space[..]],
            |r| r.get(0),
        )
        .unwrap();
    let seq = head + 1;
    conn.execute(
        "INSERT INTO envelopes (space, seq, device, counter, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![&space[..], seq, device, counter as i64, bytes],
    )
    .unwrap();
    conn.execute(
        "UPDATE spaces SET head = ?2, bytes_used = bytes_used + ?3 WHERE space = ?1",
        params![&space[..], seq, bytes.len() as i64],
    )
    .unwrap();
    seq as u64
}

/// Flips one byte in the middle of the envelope's ciphertext; it still decodes.
fn flip_a_ciphertext_byte(bytes: &mut [u8]) {
    let ciphertext = Envelope::decode(bytes).unwrap().ciphertext().to_vec();
    let at = bytes
        .windows(ciphertext.len())
        .position(|w| w == ciphertext)
        .unwrap()
        + ciphertext.len() / 2;
    bytes[at] ^= 0x01;
    assert!(Envelope::decode(bytes).is_ok(), "still well-formed");
}

/// A stranger's well-formed document change: a valid Automerge change adding an
/// appreciation, as anyone with the (open-source) client could make.
fn strangers_change(text: &str) -> Vec<u8> {
    let person = PersonId::random();
    let mut doc = SpaceDoc::create(&[0xEE; 32], &person, "Eve", Millis::now()).unwrap();
    doc.add_appreciation(&person, text, Millis::now()).unwrap();
    doc.changes_since(&[])
}

/// Sam (phone and laptop) and Jordan, paired over one relay, all three up to date.
struct Couple {
    dir: tempfile::TempDir,
    relay: Relay,
    space: [u8; 16],
    sam: Profile,
    laptop: Profile,
    jordan: Profile,
}

impl Couple {
    async fn new() -> Couple {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start(dir.path().join("relay.db"));
        let mut sam = new_profile(&dir.path().join("sam"), "Sam");
        sam.sync_book_mut().start_space(&relay.url).unwrap();
        appreciate(&mut sam, "SAM-FIRST");
        sync::sync_once(&mut sam, T).await.unwrap();

        let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
        appreciate(&mut jordan, "JORDAN-FIRST");
        sync::sync_once(&mut jordan, T).await.unwrap();

        let mut laptop = invited(&dir.path().join("laptop"), &mut sam, None).await;
        for p in [&mut sam, &mut jordan, &mut laptop] {
            let report = sync::sync_once(p, T).await.unwrap();
            assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        }
        let expected = vec!["JORDAN-FIRST".to_owned(), "SAM-FIRST".to_owned()];
        assert_eq!(appreciations(&sam), expected);
        assert_eq!(appreciations(&jordan), expected);
        assert_eq!(appreciations(&laptop), expected);
        assert_eq!(
            jordan.sync_book().acl_records().unwrap().len(),
            5,
            "Genesis, the partner invite, Jordan, the device invite, the laptop"
        );
        let space = *sam.space().unwrap().as_bytes();
        Couple {
            dir,
            relay,
            space,
            sam,
            laptop,
            jordan,
        }
    }

    /// Edits the relay's database and points every device at the restarted relay.
    async fn edit_relay<R>(&mut self, edit: impl FnOnce(&Connection, &[u8; 16]) -> R) -> R {
        let space = self.space;
        let out = self.relay.edit(|conn| edit(conn, &space)).await;
        for p in [&mut self.sam, &mut self.laptop, &mut self.jordan] {
            p.sync_book_mut().set_relay(&self.relay.url).unwrap();
        }
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn stop(mut self) {
        self.relay.stop().await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn with(before: &[String], extra: &[&str]) -> Vec<String> {
    sorted(
        before
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| (*s).to_owned()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_envelope_is_refused_naming_its_device_and_syncing_goes_on() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    appreciate(&mut c.sam, "TAMPERED-BY-THE-RELAY");
    assert_eq!(sync::sync_once(&mut c.sam, T).await.unwrap().pushed, 1);
    // Written on the laptop before it saw the phone's entry: it does not depend on it.
    appreciate(&mut c.laptop, "HONEST-AFTER-THE-TAMPERED-ONE");
    assert_eq!(sync::sync_once(&mut c.laptop, T).await.unwrap().pushed, 1);

    let sam_device = *c.sam.device_id().as_bytes();
    let laptop_device = *c.laptop.device_id().as_bytes();
    let (tampered, honest) = c
        .edit_relay(|conn, space| {
            let all = rows(conn, space);
            let target = all
                .iter()
                .rev()
                .find(|r| r.device == sam_device)
                .unwrap()
                .clone();
            let honest = all.last().unwrap().clone();
            assert_eq!(honest.device, laptop_device);
            assert!(honest.seq > target.seq, "the honest one is stored after");
            let mut bytes = target.bytes.clone();
            flip_a_ciphertext_byte(&mut bytes);
            conn.execute(
                "UPDATE envelopes SET bytes = ?3 WHERE space = ?1 AND seq = ?2",
                params![&space[..], target.seq as i64, bytes],
            )
            .unwrap();
            (target.seq, honest.seq)
        })
        .await;

    let chunks_before = c.jordan.chunk_count().unwrap();
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let refused = &report.rejected[0];
    assert_eq!(refused.seq, tampered);
    assert_eq!(refused.device, Some(c.sam.device_id()), "names Sam's phone");
    assert!(refused.reason.contains("signature"), "{}", refused.reason);
    assert_eq!(report.received, 1, "the honest envelope after it arrived");
    assert_eq!(report.cursor, honest, "the cursor passed both");
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["HONEST-AFTER-THE-TAMPERED-ONE"]),
        "nothing from the tampered envelope, everything from the honest one"
    );
    assert_eq!(
        c.jordan.chunk_count().unwrap(),
        chunks_before + 1,
        "one stored chunk: the honest envelope's"
    );

    // Syncing goes on: the bad envelope is not offered again, and Jordan's own writing
    // still gets through to Sam.
    appreciate(&mut c.jordan, "JORDAN-AFTERWARDS");
    let again = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    assert_eq!(again.pushed, 1);
    sync::sync_once(&mut c.sam, T).await.unwrap();
    assert!(appreciations(&c.sam).contains(&"JORDAN-AFTERWARDS".to_owned()));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_forged_by_a_stranger_are_refused_and_syncing_goes_on() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    let space = SpaceId::from_bytes(c.space);
    let eve = DeviceKeys::generate().unwrap();
    // A stranger cannot know the space's key: the best it can do is a key of its own.
    let eves_key = EpochKey::generate().unwrap();
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 0,
        author: eve.device_id(),
        counter: 1,
    };
    let as_herself = hearth_crypto::envelope::seal(
        &eve,
        &eves_key,
        header,
        &strangers_change("FORGED-AS-A-STRANGER"),
    )
    .unwrap()
    .encode();
    // Or claiming to be Sam's phone, signed with her own key (she cannot sign as Sam).
    let as_sam = {
        let header = EnvelopeHeader {
            author: c.sam.device_id(),
            counter: 10_000,
            ..header
        };
        let plaintext = strangers_change("FORGED-AS-SAM");
        let (nonce, ciphertext) = eves_key
            .seal(&header.associated_data(), &plaintext)
            .unwrap();
        let message = Envelope::signed_message(&header, &nonce, &ciphertext);
        Envelope::from_parts(header, nonce, ciphertext, eve.sign(&message)).encode()
    };
    let eve_id = *eve.device_id().as_bytes();
    let sam_id = *c.sam.device_id().as_bytes();
    let (forged_eve, forged_sam) = c
        .edit_relay(|conn, space| {
            (
                append(conn, space, &eve_id, 1, &as_herself),
                append(conn, space, &sam_id, 10_000, &as_sam),
            )
        })
        .await;
    // An honest envelope stored after both.
    appreciate(&mut c.sam, "HONEST-AFTER-THE-FORGERIES");
    let sams = sync::sync_once(&mut c.sam, T).await.unwrap();
    assert_eq!(sams.pushed, 1);
    assert_eq!(sams.rejected.len(), 2, "Sam refuses them too");

    let chunks_before = c.jordan.chunk_count().unwrap();
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    let stranger = &report.rejected[0];
    assert_eq!(stranger.seq, forged_eve);
    assert_eq!(stranger.device, Some(eve.device_id()), "names the stranger");
    assert!(
        stranger.reason.contains("not a member"),
        "{}",
        stranger.reason
    );
    let impostor = &report.rejected[1];
    assert_eq!(impostor.seq, forged_sam);
    assert_eq!(
        impostor.device,
        Some(c.sam.device_id()),
        "names the device it claims"
    );
    assert!(impostor.reason.contains("signature"), "{}", impostor.reason);
    assert_eq!(report.received, 1);
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["HONEST-AFTER-THE-FORGERIES"])
    );
    assert_eq!(c.jordan.chunk_count().unwrap(), chunks_before + 1);
    assert_eq!(
        c.jordan.load().unwrap().people().len(),
        2,
        "no Eve in the space"
    );
    let again = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_envelope_is_reported_and_applied_once() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    appreciate(&mut c.sam, "SAID-ONCE");
    assert_eq!(sync::sync_once(&mut c.sam, T).await.unwrap().pushed, 1);
    assert_eq!(sync::sync_once(&mut c.laptop, T).await.unwrap().received, 1);
    let sam_device = *c.sam.device_id().as_bytes();
    let (original, replay) = c
        .edit_relay(|conn, space| {
            let row = rows(conn, space).into_iter().next_back().unwrap();
            assert_eq!(row.device, sam_device);
            // The same bytes again under the next seq (the relay's own counter column must
            // stay unique, so it gets another number there; the envelope is unchanged).
            let replay = append(
                conn,
                space,
                &row.device,
                row.counter + 1_000_000,
                &row.bytes,
            );
            (row.seq, replay)
        })
        .await;
    appreciate(&mut c.sam, "HONEST-AFTER-THE-REPLAY");
    sync::sync_once(&mut c.sam, T).await.unwrap();

    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let refused = &report.rejected[0];
    assert_eq!(refused.seq, replay);
    assert!(refused.seq > original);
    assert_eq!(refused.device, Some(c.sam.device_id()));
    assert!(refused.reason.contains("replay"), "{}", refused.reason);
    assert_eq!(report.received, 2, "the original and the honest one after");
    let texts = appreciations(&c.jordan);
    assert_eq!(
        texts,
        with(&before, &["HONEST-AFTER-THE-REPLAY", "SAID-ONCE"]),
        "applied once"
    );

    // A device that had already applied the original sees only the replay, and ignores it.
    let laptop = sync::sync_once(&mut c.laptop, T).await.unwrap();
    assert!(
        laptop.rejected.iter().any(|r| r.seq == replay
            && r.device == Some(c.sam.device_id())
            && r.reason.contains("replay")),
        "{:?}",
        laptop.rejected
    );
    assert_eq!(appreciations(&c.laptop), texts);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_rollback_stops_the_sync_and_changes_nothing() {
    let mut c = Couple::new().await;
    let acl_before = c.jordan.sync_book().acl_records().unwrap();
    let cursor_before = c.jordan.sync_book().cursor().unwrap();
    let texts_before = appreciations(&c.jordan);
    let timeline_before = c.jordan.load().unwrap().timeline();
    // Something new on the relay, which must not be taken from a rolled-back relay.
    appreciate(&mut c.sam, "SAM-WHILE-ROLLED-BACK");
    sync::sync_once(&mut c.sam, T).await.unwrap();

    // The relay forgets the two newest records (the laptop's invite and the laptop):
    // Jordan is still a member of the shorter chain, so the login succeeds.
    let (dropped, envelopes) = c
        .edit_relay(|conn, space| {
            let mut stmt = conn
                .prepare("SELECT idx, record FROM acl WHERE space = ?1 AND idx >= 3 ORDER BY idx")
                .unwrap();
            let dropped: Vec<(i64, Vec<u8>)> = stmt
                .query_map([&space[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(dropped.len(), 2);
            conn.execute(
                "DELETE FROM acl WHERE space = ?1 AND idx >= 3",
                [&space[..]],
            )
            .unwrap();
            (dropped, rows(conn, space).len())
        })
        .await;

    appreciate(&mut c.jordan, "JORDAN-WHILE-ROLLED-BACK");
    let err = sync::sync_once(&mut c.jordan, T).await.unwrap_err();
    assert!(matches!(err, SyncError::ChainRollback), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("does not extend the one this device verified")
            && message.contains("rollback")
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(
        c.jordan.sync_book().acl_records().unwrap(),
        acl_before,
        "ACL kept"
    );
    assert_eq!(
        c.jordan.sync_book().cursor().unwrap(),
        cursor_before,
        "nothing pulled"
    );
    assert_eq!(
        appreciations(&c.jordan),
        with(&texts_before, &["JORDAN-WHILE-ROLLED-BACK"]),
        "nothing applied"
    );
    let mut doc = c.jordan.load().unwrap();
    assert_eq!(
        c.jordan.sync_book().pending(&mut doc).unwrap(),
        1,
        "kept for later"
    );
    let stored = c.edit_relay(|conn, space| rows(conn, space).len()).await;
    assert_eq!(stored, envelopes, "nothing pushed to a rolled-back relay");
    assert_eq!(
        c.jordan.load().unwrap().timeline().len(),
        timeline_before.len() + 1,
        "only Jordan's own entry is new"
    );
    // Refused again, the same way.
    assert!(matches!(
        sync::sync_once(&mut c.jordan, T).await,
        Err(SyncError::ChainRollback)
    ));

    // Once the relay serves the whole chain again, Jordan syncs as before.
    c.edit_relay(|conn, space| {
        for (idx, record) in &dropped {
            conn.execute(
                "INSERT INTO acl (space, idx, record) VALUES (?1, ?2, ?3)",
                params![&space[..], idx, record],
            )
            .unwrap();
        }
    })
    .await;
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.pushed, 1);
    assert!(appreciations(&c.jordan).contains(&"SAM-WHILE-ROLLED-BACK".to_owned()));
    c.stop().await;
}

/// A raw protocol conversation, for what a stranger would send by hand.
struct Raw {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    relay_id: [u8; 16],
    nonce: [u8; 32],
}

const MAX_FRAME: usize = 1024 * 1024;

impl Raw {
    /// Connected, with Hello sent and the Challenge read.
    async fn greeted(url: &str) -> Raw {
        let (ws, _) = tokio::time::timeout(T, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        let mut raw = Raw {
            ws,
            relay_id: [0; 16],
            nonce: [0; 32],
        };
        raw.send(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            client: "a stranger".into(),
        })
        .await;
        match raw.next().await {
            Some(RelayFrame::Challenge {
                relay_id, nonce, ..
            }) => {
                raw.relay_id = relay_id;
                raw.nonce = nonce;
            }
            other => panic!("expected Challenge, got {other:?}"),
        }
        raw
    }

    async fn send(&mut self, frame: &ClientFrame) {
        let bytes = encode_client(frame, MAX_FRAME).unwrap();
        // The relay may already have closed; what it answered is what the test checks.
        let _ = self.ws.send(Message::Binary(bytes.into())).await;
    }

    /// The next frame, or None once the relay has closed the connection.
    async fn next(&mut self) -> Option<RelayFrame> {
        loop {
            let message = tokio::time::timeout(T, self.ws.next())
                .await
                .expect("the relay answers in time");
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(decode_relay(&bytes, MAX_FRAME).unwrap());
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Logs in with `signer`'s key, claiming to be `device`; returns the relay's answer.
    async fn auth(
        &mut self,
        signer: &DeviceKeys,
        device: DeviceId,
        space: SpaceId,
        as_invite: bool,
    ) -> Option<RelayFrame> {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let (_, signature) = sign_login(
            signer,
            &self.relay_id,
            &self.nonce,
            time_ms,
            &space,
            as_invite,
        );
        self.send(&ClientFrame::Auth {
            device,
            space,
            time_ms,
            signature,
            as_invite,
        })
        .await;
        self.next().await
    }
}

fn refusal(frame: Option<RelayFrame>) -> (RejectCode, String) {
    match frame {
        Some(RelayFrame::Reject { code, message }) => (code, message),
        other => panic!("expected a Reject, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_is_refused_alike_whether_or_not_the_space_exists() {
    let mut c = Couple::new().await;
    let existing = SpaceId::from_bytes(c.space);
    let missing = SpaceId::from_bytes(hearth_crypto::random_bytes::<16>().unwrap());
    let eve = DeviceKeys::generate().unwrap();
    let stored_before = c.edit_relay(|conn, space| rows(conn, space).len()).await;
    let url = c.relay.url.clone();

    let mut answers = Vec::new();
    // As a joining device (an invite key nobody issued), for the couple's space and for a
    // space that does not exist.
    for space in [existing, missing] {
        let mut raw = Raw::greeted(&url).await;
        answers.push(refusal(raw.auth(&eve, eve.device_id(), space, true).await));
        assert!(raw.next().await.is_none(), "the relay hangs up");
    }
    // As a device of its own, and claiming to be Sam's phone, for the couple's space.
    for device in [eve.device_id(), c.sam.device_id()] {
        let mut raw = Raw::greeted(&url).await;
        answers.push(refusal(raw.auth(&eve, device, existing, false).await));
        // Pushing anyway gets nothing stored: the connection is gone.
        let envelope = hearth_crypto::envelope::seal(
            &eve,
            &EpochKey::generate().unwrap(),
            EnvelopeHeader {
                kind: EnvelopeKind::Changes,
                space: existing,
                epoch: 0,
                author: eve.device_id(),
                counter: 1,
            },
            &strangers_change("PUSHED-BY-A-STRANGER"),
        )
        .unwrap()
        .encode();
        raw.send(&ClientFrame::Push { envelope }).await;
        assert!(raw.next().await.is_none(), "the relay hangs up");
    }
    for (code, message) in &answers {
        assert_eq!(*code, RejectCode::Unauthorized);
        assert_eq!(message, &answers[0].1, "the same words every time");
    }

    // Pushing without logging in at all is refused too.
    let mut raw = Raw::greeted(&url).await;
    let envelope = hearth_crypto::envelope::seal(
        &eve,
        &EpochKey::generate().unwrap(),
        EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space: existing,
            epoch: 0,
            author: eve.device_id(),
            counter: 2,
        },
        &strangers_change("PUSHED-WITHOUT-LOGIN"),
    )
    .unwrap()
    .encode();
    raw.send(&ClientFrame::Push { envelope }).await;
    assert!(matches!(raw.next().await, Some(RelayFrame::Reject { .. })));
    assert!(raw.next().await.is_none(), "the relay hangs up");

    let eve_id = *eve.device_id().as_bytes();
    let (stored, by_eve) = c
        .edit_relay(|conn, space| {
            let all = rows(conn, space);
            let by_eve = all.iter().filter(|r| r.device == eve_id).count();
            (all.len(), by_eve)
        })
        .await;
    assert_eq!(stored, stored_before, "nothing stored");
    assert_eq!(by_eve, 0);
    // The couple syncs on, none the wiser.
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.received, 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_with_a_made_up_invite_is_refused_alike_whether_or_not_the_space_exists() {
    let c = Couple::new().await;
    let missing = hearth_crypto::random_bytes::<16>().unwrap();
    for (name, space) in [("eve-existing", c.space), ("eve-missing", missing)] {
        let code = InviteCode::generate(&c.relay.url, space).unwrap();
        let home = c.path(name);
        let joined = sync::join(&home, &code, Some("Eve"), Protection::None, T).await;
        assert!(
            matches!(joined, Err(JoinError::Unknown)),
            "{name}: {:?}",
            joined.map(|j| j.as_partner)
        );
        assert!(!home_exists(&home), "{name}: no profile is created");
    }
    c.stop().await;
}

fn home_exists(home: &Path) -> bool {
    home.join("profile.db").exists() || home.join("device.key").exists()
}

/// A change whose envelope depends on one the relay tampered with cannot be applied yet;
/// once the relay hands over the intact original, both must be there. (The engine must
/// not count the dependent change as taken when Automerge only queued it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_after_a_tampered_one_of_the_same_device_is_not_lost() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    appreciate(&mut c.sam, "SAM-TAMPERED");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    appreciate(&mut c.sam, "SAM-NEXT");
    sync::sync_once(&mut c.sam, T).await.unwrap();

    let sam_device = *c.sam.device_id().as_bytes();
    let (target, original) = c
        .edit_relay(|conn, space| {
            let all = rows(conn, space);
            let mine: Vec<&Row> = all.iter().filter(|r| r.device == sam_device).collect();
            let target = mine[mine.len() - 2].clone();
            let mut bytes = target.bytes.clone();
            flip_a_ciphertext_byte(&mut bytes);
            conn.execute(
                "UPDATE envelopes SET bytes = ?3 WHERE space = ?1 AND seq = ?2",
                params![&space[..], target.seq as i64, bytes],
            )
            .unwrap();
            (target.seq, target)
        })
        .await;
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert!(
        report.rejected.iter().any(|r| r.seq == target),
        "{:?}",
        report.rejected
    );
    assert!(!appreciations(&c.jordan).contains(&"SAM-TAMPERED".to_owned()));

    // The relay hands over the intact original (say, restored from a backup).
    c.edit_relay(|conn, space| {
        append(
            conn,
            space,
            &original.device,
            original.counter + 1_000_000,
            &original.bytes,
        )
    })
    .await;
    let redelivered = sync::sync_once(&mut c.jordan, T).await.unwrap();
    // And Sam keeps writing.
    appreciate(&mut c.sam, "SAM-LATER");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    let later = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["SAM-LATER", "SAM-NEXT", "SAM-TAMPERED"]),
        "Jordan did not converge with Sam; Jordan's syncs reported, in turn:\n\
         {report:?}\n{redelivered:?}\n{later:?}"
    );
    assert_eq!(appreciations(&c.jordan), appreciations(&c.sam));
    c.stop().await;
}

/// The relay may delay an envelope (docs/security.md): handed a device's two envelopes in
/// the wrong order, a partner must still end up with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_delivered_out_of_order_still_converge() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    appreciate(&mut c.sam, "SAM-EARLIER");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    appreciate(&mut c.sam, "SAM-LATER-ONE");
    sync::sync_once(&mut c.sam, T).await.unwrap();

    let sam_device = *c.sam.device_id().as_bytes();
    c.edit_relay(|conn, space| {
        let all = rows(conn, space);
        let (a, b) = (&all[all.len() - 2], &all[all.len() - 1]);
        assert!(a.device == sam_device && b.device == sam_device);
        // Swap the two envelopes' places (and the relay's bookkeeping columns with them;
        // the counter column is unique, so go through a free value).
        let swap = |seq: u64, counter: i64, bytes: &[u8]| {
            conn.execute(
                "UPDATE envelopes SET counter = ?3, bytes = ?4 WHERE space = ?1 AND seq = ?2",
                params![&space[..], seq as i64, counter, bytes],
            )
            .unwrap();
        };
        swap(a.seq, -1, &b.bytes);
        swap(b.seq, a.counter as i64, &a.bytes);
        swap(a.seq, b.counter as i64, &b.bytes);
    })
    .await;
    let first = sync::sync_once(&mut c.jordan, T).await.unwrap();
    let second = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["SAM-EARLIER", "SAM-LATER-ONE"]),
        "Jordan's syncs reported:\n{first:?}\n{second:?}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_moved_from_another_space_is_refused_and_syncing_goes_on() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    // Another couple's space on the same relay.
    let mut other = new_profile(&c.path("other"), "Other");
    other.sync_book_mut().start_space(&c.relay.url).unwrap();
    appreciate(&mut other, "FROM-ANOTHER-SPACE");
    sync::sync_once(&mut other, T).await.unwrap();
    let other_space = *other.space().unwrap().as_bytes();
    let moved = c
        .edit_relay(|conn, space| {
            let row = rows(conn, &other_space).into_iter().next_back().unwrap();
            // Moved as it is, and moved with its header rewritten to name this space.
            let mut renamed = row.bytes.clone();
            let at = renamed.windows(16).position(|w| w == other_space).unwrap();
            renamed[at..at + 16].copy_from_slice(space);
            [
                append(conn, space, &row.device, row.counter, &row.bytes),
                append(conn, space, &row.device, row.counter + 1, &renamed),
            ]
        })
        .await;
    appreciate(&mut c.sam, "HONEST-AFTER-THE-MOVE");
    sync::sync_once(&mut c.sam, T).await.unwrap();

    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    let refused: Vec<u64> = report.rejected.iter().map(|r| r.seq).collect();
    assert_eq!(refused, moved.to_vec(), "{:?}", report.rejected);
    assert!(
        report.rejected[0].reason.contains("another space"),
        "{}",
        report.rejected[0].reason
    );
    // Renamed, it names this space but no member wrote it (and its signature covers the
    // header, so it would not verify either).
    assert!(
        report.rejected[1].reason.contains("not a member"),
        "{}",
        report.rejected[1].reason
    );
    assert_eq!(report.received, 1, "the honest one after");
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["HONEST-AFTER-THE-MOVE"])
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_cannot_add_to_the_history_even_through_a_relay_that_helps_it() {
    let mut c = Couple::new().await;
    let laptop = c.laptop.device_id();
    // The laptop's last words before it is lost: everyone keeps them.
    appreciate(&mut c.laptop, "LAPTOP-BEFORE-REMOVAL");
    sync::sync_once(&mut c.laptop, T).await.unwrap();
    sync::remove_device(&mut c.sam, laptop, T).await.unwrap();
    assert_eq!(c.sam.sync_book().acl_state().unwrap().unwrap().epoch(), 1);

    // An honest relay no longer lets it in.
    appreciate(&mut c.laptop, "LAPTOP-AFTER-REMOVAL");
    let err = sync::sync_once(&mut c.laptop, T).await.unwrap_err();
    assert!(matches!(err, SyncError::NotAdmitted), "{err}");

    // A relay that helps it stores what it seals under the old epoch, whose key it still
    // holds: a well-formed envelope with a valid signature from a device that was a member.
    c.laptop.sync_book_mut().stage_outgoing(0).unwrap();
    let (counter, forged) = c.laptop.sync_book().outbox().unwrap().pop().unwrap();
    let seq = c
        .edit_relay(|conn, space| append(conn, space, laptop.as_bytes(), counter, &forged))
        .await;

    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let refused = &report.rejected[0];
    assert_eq!((refused.seq, refused.device), (seq, Some(laptop)));
    assert!(refused.reason.contains("removed"), "{}", refused.reason);
    let texts = appreciations(&c.jordan);
    assert!(texts.contains(&"LAPTOP-BEFORE-REMOVAL".to_owned()));
    assert!(!texts.contains(&"LAPTOP-AFTER-REMOVAL".to_owned()));

    // A device that joins later reads the whole history and refuses it the same way.
    let mut tablet = invited(&c.path("tablet"), &mut c.sam, None).await;
    let report = sync::sync_once(&mut tablet, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(appreciations(&tablet), texts);
    c.stop().await;
}

/// No silent gaps (docs/security.md): a relay that leaves one of Sam's envelopes out of
/// its history (the seq it gave it is missing) is caught by Jordan's device, which keeps
/// its cursor before the gap, reports what is held back on every sync, and takes the
/// envelope, and everything that waited for it, the moment the relay hands it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_the_relay_holds_back_is_reported_and_taken_once_it_comes() {
    let mut c = Couple::new().await;
    let before = appreciations(&c.jordan);
    appreciate(&mut c.sam, "HELD-BACK");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    appreciate(&mut c.sam, "AFTER-THE-HELD-BACK-ONE");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    let cursor = c.jordan.sync_book().cursor().unwrap();
    let held = c
        .edit_relay(|conn, space| {
            let rows = rows(conn, space);
            let held = rows[rows.len() - 2].clone();
            conn.execute(
                "DELETE FROM envelopes WHERE space = ?1 AND seq = ?2",
                params![&space[..], held.seq as i64],
            )
            .unwrap();
            held
        })
        .await;

    for _ in 0..2 {
        let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
        let withheld = report.withheld.expect("the gap is reported");
        assert_eq!(withheld.from_seq, held.seq, "{withheld:?}");
        assert_eq!(withheld.missing, 1, "{withheld:?}");
        assert_eq!(
            report.waiting, 1,
            "the later one waits for the held-back one"
        );
        assert_eq!(appreciations(&c.jordan), before, "nothing half-applied");
        assert_eq!(
            c.jordan.sync_book().cursor().unwrap(),
            cursor,
            "the cursor stays before the gap"
        );
    }

    // The relay hands it over after all: both arrive, and the cursor runs to the head.
    c.edit_relay(|conn, space| {
        conn.execute(
            "INSERT INTO envelopes (space, seq, device, counter, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&space[..], held.seq as i64, held.device, held.counter as i64, held.bytes],
        )
        .unwrap();
    })
    .await;
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.withheld, None);
    assert_eq!(report.waiting, 0);
    assert!(
        report.rejected.is_empty(),
        "what came past the gap is not taken again: {:?}",
        report.rejected
    );
    assert_eq!(
        appreciations(&c.jordan),
        with(&before, &["AFTER-THE-HELD-BACK-ONE", "HELD-BACK"])
    );
    assert_eq!(
        c.jordan.sync_book().cursor().unwrap(),
        held.seq + 1,
        "the cursor reaches the head"
    );
    let again = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!((again.received, again.withheld), (0, None));
    c.stop().await;
}

/// A relay that names a head past the last envelope it hands over is holding the rest
/// back: reported, and nothing moves past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_past_everything_the_relay_hands_over_is_reported_as_held_back() {
    let mut c = Couple::new().await;
    appreciate(&mut c.sam, "THE-LAST-ONE");
    sync::sync_once(&mut c.sam, T).await.unwrap();
    let cursor = c.jordan.sync_book().cursor().unwrap();
    let head = c
        .edit_relay(|conn, space| {
            let last = rows(conn, space).pop().unwrap();
            conn.execute(
                "DELETE FROM envelopes WHERE space = ?1 AND seq = ?2",
                params![&space[..], last.seq as i64],
            )
            .unwrap();
            last.seq
        })
        .await;
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(
        report.withheld,
        Some(hearth_client::Withheld {
            from_seq: cursor + 1,
            to_seq: head,
            missing: head - cursor,
        })
    );
    assert_eq!(c.jordan.sync_book().cursor().unwrap(), cursor);
    c.stop().await;
}

/// Cross-checks (docs/security.md): Sam removes his lost laptop, which rotates the key. A
/// relay that then hides the removal and the rotation from Jordan (its ACL shows the old
/// chain) still carries Sam's note of the new chain, an envelope under the new epoch,
/// signed by Sam: Jordan's device takes that as a witness and seals nothing (the laptop
/// keeps the old key), saying the relay is hiding device changes. Once the relay shows
/// the records, Jordan's writing goes out under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_hides_a_removal_from_the_partner_is_caught_before_anything_is_sealed() {
    let mut c = Couple::new().await;
    let laptop = c.laptop.device_id();
    sync::remove_device(&mut c.sam, laptop, T).await.unwrap();
    assert_eq!(c.sam.sync_book().acl_state().unwrap().unwrap().epoch(), 1);
    let jordan = c.jordan.device_id();
    let jordans = |conn: &Connection, space: &[u8; 16]| {
        rows(conn, space)
            .into_iter()
            .filter(|r| r.device == jordan.as_bytes())
            .count()
    };
    let (hidden, before) = c
        .edit_relay(|conn, space| {
            let mut stmt = conn
                .prepare("SELECT idx, record FROM acl WHERE space = ?1 AND idx >= 5 ORDER BY idx")
                .unwrap();
            let hidden: Vec<(i64, Vec<u8>)> = stmt
                .query_map([&space[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            drop(stmt);
            conn.execute(
                "DELETE FROM acl WHERE space = ?1 AND idx >= 5",
                [&space[..]],
            )
            .unwrap();
            (hidden, jordans(conn, space))
        })
        .await;
    assert_eq!(hidden.len(), 2, "the removal and the rotation");

    appreciate(&mut c.jordan, "JORDAN-AFTER-THE-REMOVAL");
    let err = sync::sync_once(&mut c.jordan, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::AclHidden {
                epoch: 1,
                have_epoch: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the relay is holding back changes to this space's devices"),
        "{err}"
    );
    let again = sync::sync_once(&mut c.jordan, T).await.unwrap_err();
    assert!(matches!(again, SyncError::AclHidden { .. }), "{again}");
    let after = c.edit_relay(|conn, space| jordans(conn, space)).await;
    assert_eq!(
        after, before,
        "nothing sealed under the old key reached the relay"
    );
    assert!(c.jordan.sync_book().outbox().unwrap().is_empty());

    // The relay shows the records: Jordan's writing goes out under epoch 1.
    c.edit_relay(|conn, space| {
        for (idx, record) in &hidden {
            conn.execute(
                "INSERT INTO acl (space, idx, record) VALUES (?1, ?2, ?3)",
                params![&space[..], idx, record],
            )
            .unwrap();
        }
    })
    .await;
    let report = sync::sync_once(&mut c.jordan, T).await.unwrap();
    assert_eq!(report.pushed, 1);
    let last = c
        .edit_relay(|conn, space| {
            rows(conn, space)
                .into_iter()
                .rfind(|r| r.device == jordan.as_bytes())
                .unwrap()
        })
        .await;
    assert_eq!(Envelope::decode(&last.bytes).unwrap().header().epoch, 1);
    sync::sync_once(&mut c.sam, T).await.unwrap();
    assert!(appreciations(&c.sam).contains(&"JORDAN-AFTER-THE-REMOVAL".to_owned()));
    c.stop().await;
}
