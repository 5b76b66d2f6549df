//! A partner's modified client (issue 14): Bob's real profile, driven below the stock
//! client by a hostile one that writes raw Automerge changes under whatever actor it likes,
//! seals them as real envelopes signed by Bob's device under the current epoch's key, and
//! pushes them straight to the real relay. Alice's device must show nothing written in her
//! name, keep her entries as she wrote them, keep her sealed answers sealed, report each
//! refused change once naming Bob's device, and go on taking honest changes both ways.
//!
//! The hostile client lives here, in the tests, and nowhere in a shipped crate.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use hearth_client::sync::{self, SyncReport};
use hearth_client::{DeviceId, Profile, Whose};
use hearth_doc::authorship::{PersonKey, person_container_key};
use hearth_doc::{PersonId, Seal, Week};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciations, paired};
use hearth_tests::Device;

use hostile::Hostile;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const T: Duration = Duration::from_secs(20);

/// Bob's modified client: his own keys and document, used the way the stock client never
/// would (also the hostile member of `consent.rs`).
pub(crate) mod hostile {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use automerge::{ActorId, AutoCommit};
    use futures_util::{SinkExt, StreamExt};
    use hearth_client::Profile;
    use hearth_crypto::{EpochKey, ProfileSecrets, keyfile, sign_login};
    use hearth_proto::{
        ClientFrame, DeviceId, EnvelopeHeader, EnvelopeKind, PROTOCOL_VERSION, RelayFrame, SpaceId,
        decode_relay, encode_client,
    };
    use tokio_tungstenite::tungstenite::Message;

    const T: Duration = Duration::from_secs(20);
    const MAX_FRAME: usize = 1024 * 1024;

    /// What Bob's machine holds: his device's secrets (read from its key file, as any
    /// program of his can), the space, its current epoch and that epoch's key.
    pub struct Hostile {
        home: PathBuf,
        secrets: ProfileSecrets,
        space: SpaceId,
        epoch: u32,
        key: EpochKey,
        relay: String,
    }

    impl Hostile {
        /// Bob's profile in `home` (no passphrase), as his hostile client reads it.
        pub fn of(home: &Path) -> Hostile {
            let profile = Profile::open(home, None).unwrap();
            let secrets = keyfile::read(&profile.paths().key_file, None).unwrap();
            let epoch = profile.sync_book().acl_state().unwrap().unwrap().epoch();
            let key = profile.sync_book().epoch_key(epoch).unwrap().unwrap();
            Hostile {
                home: home.to_owned(),
                secrets,
                space: profile.space().unwrap(),
                epoch,
                key,
                relay: profile.sync_book().relay().unwrap().unwrap(),
            }
        }

        /// Bob's device id.
        pub fn device(&self) -> DeviceId {
            self.secrets.device.device_id()
        }

        /// Bob's document as it is on his device, as raw Automerge writing under `actor`.
        pub fn doc(&self, actor: [u8; 32]) -> AutoCommit {
            let profile = Profile::open(&self.home, None).unwrap();
            let bytes = profile.load().unwrap().save_snapshot();
            AutoCommit::load(&bytes)
                .unwrap()
                .with_actor(ActorId::from(actor))
        }

        /// Seals `changes` (raw Automerge changes) as an envelope signed by Bob's device
        /// under the current epoch's key and pushes it to the relay; returns its seq. The
        /// counter is Bob's next one, and his profile's counter moves past it, so his stock
        /// client never reuses it (which the relay would take for a resend of this one).
        pub async fn push(&self, changes: &[u8]) -> u64 {
            self.push_kind(EnvelopeKind::Changes, changes).await
        }

        /// As [`Hostile::push`], but `document` (a whole document) goes out as a snapshot
        /// standing in for everything up to the relay's seq `covers_seq`.
        pub async fn push_snapshot(&self, document: &[u8], covers_seq: u64) {
            self.push_kind(EnvelopeKind::Snapshot { covers_seq }, document)
                .await;
        }

        async fn push_kind(&self, kind: EnvelopeKind, plaintext: &[u8]) -> u64 {
            let conn = rusqlite::Connection::open(self.home.join("profile.db")).unwrap();
            let counter: i64 = conn
                .query_row("SELECT next_counter FROM sync_state", [], |r| r.get(0))
                .unwrap();
            conn.execute("UPDATE sync_state SET next_counter = next_counter + 1", [])
                .unwrap();
            drop(conn);
            let counter = u64::try_from(counter).unwrap();
            let envelope = hearth_crypto::envelope::seal(
                &self.secrets.device,
                &self.key,
                EnvelopeHeader {
                    kind,
                    space: self.space,
                    epoch: self.epoch,
                    author: self.device(),
                    counter,
                },
                plaintext,
            )
            .unwrap()
            .encode();
            let mut raw = Raw::logged_in(&self.relay, &self.secrets, self.space).await;
            let frame = match kind {
                EnvelopeKind::Changes => ClientFrame::Push { envelope },
                EnvelopeKind::Snapshot { .. } => ClientFrame::PushSnapshot { envelope },
            };
            raw.send(&frame).await;
            loop {
                match raw.next().await {
                    RelayFrame::Committed { counter: c, seq } if c == counter => {
                        let _ = raw.ws.close(None).await;
                        return seq;
                    }
                    RelayFrame::Reject { code, message } => {
                        panic!("the relay refused the push: {code:?} {message}")
                    }
                    _ => {}
                }
            }
        }
    }

    /// The wire protocol by hand.
    struct Raw {
        ws: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    }

    impl Raw {
        async fn logged_in(url: &str, secrets: &ProfileSecrets, space: SpaceId) -> Raw {
            let (ws, _) = tokio::time::timeout(T, tokio_tungstenite::connect_async(url))
                .await
                .unwrap()
                .unwrap();
            let mut raw = Raw { ws };
            raw.send(&ClientFrame::Hello {
                version: PROTOCOL_VERSION,
                client: "a modified client".into(),
            })
            .await;
            let RelayFrame::Challenge {
                relay_id, nonce, ..
            } = raw.next().await
            else {
                panic!("expected a Challenge");
            };
            let time_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let (_, signature) =
                sign_login(&secrets.device, &relay_id, &nonce, time_ms, &space, false);
            raw.send(&ClientFrame::Auth {
                device: secrets.device.device_id(),
                space,
                time_ms,
                signature,
                as_invite: false,
            })
            .await;
            match raw.next().await {
                RelayFrame::AclChanged { .. } => raw,
                other => panic!("expected the ACL after logging in, got {other:?}"),
            }
        }

        async fn send(&mut self, frame: &ClientFrame) {
            let bytes = encode_client(frame, MAX_FRAME).unwrap();
            self.ws.send(Message::Binary(bytes.into())).await.unwrap();
        }

        async fn next(&mut self) -> RelayFrame {
            loop {
                let message = tokio::time::timeout(T, self.ws.next())
                    .await
                    .expect("the relay answers in time")
                    .expect("the relay keeps the connection open")
                    .unwrap();
                if let Message::Binary(bytes) = message {
                    return decode_relay(&bytes, MAX_FRAME).unwrap();
                }
            }
        }
    }
}

/// Alice and Bob paired over a real relay, each with a real profile (no passphrase) the
/// `hearth` program runs on.
struct Couple {
    _dir: tempfile::TempDir,
    _relay: TestRelay,
    alice: Device,
    bob: Device,
}

impl Couple {
    async fn new() -> Couple {
        let dir = tempfile::tempdir().unwrap();
        let relay = TestRelay::at(&dir.path().join("relay.db"));
        let alice = Device::new(BIN);
        let bob = Device::new(BIN);
        paired(&alice.home(), "Alice", &bob.home(), "Bob", &relay.url).await;
        alice.ok(["sync"]);
        bob.ok(["sync"]);
        Couple {
            _dir: dir,
            _relay: relay,
            alice,
            bob,
        }
    }

    fn profile(dev: &Device) -> Profile {
        Profile::open(&dev.home(), None).unwrap()
    }

    fn device_of(dev: &Device) -> DeviceId {
        Couple::profile(dev).device_id()
    }

    /// The person id the signed ACL binds to `dev`'s person (its founding device).
    fn person_of(dev: &Device) -> PersonId {
        PersonId::of(&PersonKey::from_founding_device(
            *Couple::device_of(dev).as_bytes(),
        ))
    }

    fn hostile_bob(&self) -> Hostile {
        Hostile::of(&self.bob.home())
    }

    /// One sync of `dev`'s profile through the library, for its report.
    async fn sync(dev: &Device) -> SyncReport {
        let mut profile = Couple::profile(dev);
        sync::sync_once(&mut profile, T).await.unwrap()
    }
}

/// `person`'s container in `doc`.
fn container(doc: &AutoCommit, of: &Device) -> ObjId {
    let key = person_container_key(&PersonKey::from_founding_device(
        *Couple::device_of(of).as_bytes(),
    ));
    doc.get(ROOT, key)
        .unwrap()
        .expect("the person's container")
        .1
}

/// The collection `name` in `of`'s container.
fn collection(doc: &AutoCommit, of: &Device, name: &str) -> ObjId {
    let mine = container(doc, of);
    doc.get(&mine, name).unwrap().expect("the collection").1
}

/// The index and JSON text of the element of `list` whose text contains `needle`.
fn element(doc: &AutoCommit, list: &ObjId, needle: &str) -> (usize, String) {
    (0..doc.length(list))
        .find_map(|i| match doc.get(list, i).unwrap() {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(text) if text.contains(needle) => Some((i, text.to_string())),
                _ => None,
            },
            _ => None,
        })
        .expect("the element")
}

/// An appreciation like `entry` (its JSON text), with another id and `text`: a new entry
/// a reader would show.
fn another_entry(entry: &str, text: &str) -> String {
    let mut json: serde_json::Value = serde_json::from_str(entry).unwrap();
    json["id"] = "01930000-0000-7000-8000-00000000f0f0".into();
    json["text"] = text.into();
    json.to_string()
}

/// The change `write` makes on `doc`, as raw bytes.
fn change(doc: &mut AutoCommit, write: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let before = doc.get_heads();
    write(doc);
    doc.commit();
    doc.save_after(&before)
}

fn journal_bodies(dev: &Device) -> Vec<(PersonId, String)> {
    let mut out: Vec<_> = Couple::profile(dev)
        .load()
        .unwrap()
        .journal()
        .into_iter()
        .map(|e| (e.author, e.body))
        .collect();
    out.sort();
    out
}

fn appreciations_by(dev: &Device) -> Vec<(PersonId, String)> {
    let mut out: Vec<_> = Couple::profile(dev)
        .load()
        .unwrap()
        .appreciations()
        .into_iter()
        .map(|a| (a.author, a.text))
        .collect();
    out.sort();
    out
}

/// The refusals in `report`, checked to name `device` as the partner's.
fn refused_from(report: &SyncReport, device: DeviceId) -> Vec<String> {
    for r in &report.refused_changes {
        assert_eq!(r.device, device, "{r:?}");
        assert_eq!(r.person, Whose::Partners, "{r:?}");
    }
    report
        .refused_changes
        .iter()
        .map(|r| r.reason.clone())
        .collect()
}

/// Runs `hearth ARGS` whatever it answers: the stock program on a profile whose person id
/// was edited may refuse some writes, and that is fine.
fn attempt(dev: &Device, args: &[&str]) {
    // Today's stock program refuses them on Bob's device (a device writes only as its own
    // person); what matters here is what Alice's device shows either way.
    let _ = dev.run(args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_client_on_a_profile_claiming_to_be_the_partner_writes_nothing_in_her_name() {
    let c = Couple::new().await;
    let alice = Couple::person_of(&c.alice);
    let bob = Couple::person_of(&c.bob);
    let week = "2026-W45";
    let raised = c.alice.json([
        "feedback",
        "--observation",
        "the bins stayed out all week",
        "--feeling",
        "tired",
        "--need",
        "to share the chores",
        "--request",
        "could you take them in on Fridays?",
    ]);
    let thread = raised["id"].as_str().unwrap().to_owned();
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);

    // Bob edits his own profile to say he is Alice, and uses the stock program.
    let db = rusqlite::Connection::open(c.bob.home().join("profile.db")).unwrap();
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'person_id'",
        [alice.as_str()],
    )
    .unwrap();
    drop(db);
    attempt(&c.bob, &["appreciate", "POSING-thank you, from Alice"]);
    attempt(
        &c.bob,
        &["journal", "add", "POSING-a journal entry by Alice"],
    );
    attempt(&c.bob, &["feedback", "reply", &thread, "--heard", "yes"]);
    attempt(
        &c.bob,
        &[
            "checkin",
            "--week",
            week,
            "--answer",
            "feeling=2",
            "--answer",
            "connected=POSING-answers in Alice's name",
        ],
    );
    attempt(&c.bob, &["sync"]);
    c.alice.ok(["sync"]);

    // On Alice's device, nothing is hers that she did not write.
    let log = c.alice.json(["log"]);
    for row in log.as_array().unwrap() {
        let text = row.to_string();
        if row["author"] == alice.as_str() {
            assert!(!text.contains("POSING"), "shown as Alice's: {row}");
        } else if text.contains("POSING") {
            assert_eq!(row["author"], bob.as_str(), "{row}");
        }
    }
    let doc = Couple::profile(&c.alice).load().unwrap();
    for a in doc.appreciations() {
        assert!(a.author != alice || !a.text.contains("POSING"), "{a:?}");
    }
    for e in doc.journal() {
        assert!(e.author != alice || !e.body.contains("POSING"), "{e:?}");
    }
    let feedback = doc.feedback();
    let replies = &feedback
        .iter()
        .find(|f| f.id.as_str() == thread)
        .unwrap()
        .replies;
    assert!(
        replies.iter().all(|r| r.author != alice),
        "Alice never replied: {replies:?}"
    );
    let list = c.alice.json(["feedback", "list"]);
    assert_eq!(list[0]["felt_heard"], serde_json::Value::Null, "{list}");
    if let Some(checkin) = doc.checkin(week.parse::<Week>().unwrap()) {
        assert!(
            !checkin.submitted_by(&alice),
            "Alice has not answered: {checkin:?}"
        );
    }

    // Alice still answers the week herself.
    let out = c.alice.ok([
        "checkin",
        "--week",
        week,
        "--answer",
        "feeling=7",
        "--answer",
        "connected=SEALED-Alice's own answer",
    ]);
    assert!(out.contains("sealed"), "{out}");
    let shown = c.alice.json(["checkin", "show", week]);
    let own = shown["answers"][alice.as_str()].clone();
    assert_eq!(own["connected"], "SEALED-Alice's own answer", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_changes_rewriting_or_deleting_the_partners_entries_are_refused_and_sync_flows_on() {
    let c = Couple::new().await;
    let alice = Couple::person_of(&c.alice);
    c.alice
        .ok(["journal", "add", "ALICE-what I wrote", "--title", "mine"]);
    c.alice.ok(["appreciate", "ALICE-thank you for the walk"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    let journal_before = journal_bodies(&c.alice);
    let appreciations_before = appreciations_by(&c.alice);
    assert_eq!(journal_bodies(&c.bob), journal_before);

    let hostile = c.hostile_bob();
    let bob_device = *hostile.device().as_bytes();
    // The body of Alice's journal entry, rewritten in her container.
    let mut doc = hostile.doc(bob_device);
    let journal = collection(&doc, &c.alice, "journal");
    let (at, entry) = element(&doc, &journal, "ALICE-what I wrote");
    let rewritten = change(&mut doc, |d| {
        let json = entry.replace("ALICE-what I wrote", "BOB-rewrote this");
        d.put(&journal, at, json).unwrap();
    });
    hostile.push(&rewritten).await;
    // Her appreciation, deleted from her list.
    let mut doc = hostile.doc(bob_device);
    let list = collection(&doc, &c.alice, "appreciations");
    let (at, _) = element(&doc, &list, "ALICE-thank you for the walk");
    let deleted = change(&mut doc, |d| d.delete(&list, at).unwrap());
    hostile.push(&deleted).await;

    let report = Couple::sync(&c.alice).await;
    let reasons = refused_from(&report, hostile.device());
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(journal_bodies(&c.alice), journal_before);
    assert_eq!(appreciations_by(&c.alice), appreciations_before);
    // Bob's own stock device refuses them as well when they come back to it.
    c.bob.ok(["sync"]);
    assert_eq!(journal_bodies(&c.bob), journal_before);
    assert_eq!(appreciations_by(&c.bob), appreciations_before);

    // Reported once: not again on the next sync, nor on the CLI's.
    let again = Couple::sync(&c.alice).await;
    assert!(
        again.refused_changes.is_empty(),
        "{:?}",
        again.refused_changes
    );

    // Sync keeps flowing: Bob's honest appreciation through the stock path arrives, and so
    // does Alice's next one at Bob's.
    c.bob.ok(["appreciate", "BOB-thank you for dinner"]);
    c.bob.ok(["sync"]);
    let run = c.alice.run(["sync"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    assert!(
        appreciations(&Couple::profile(&c.alice)).contains(&"BOB-thank you for dinner".to_owned())
    );
    c.alice.ok(["appreciate", "ALICE-and for the tea"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    assert!(appreciations(&Couple::profile(&c.bob)).contains(&"ALICE-and for the tea".to_owned()));
    assert_eq!(journal_bodies(&c.alice), journal_before);
    assert!(appreciations_by(&c.alice).contains(&(alice, "ALICE-thank you for the walk".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_a_commitment_release_nothing_and_a_later_sealed_submission_is_judged_on_its_own()
 {
    let c = Couple::new().await;
    let alice = Couple::person_of(&c.alice);
    let bob = Couple::person_of(&c.bob);
    let week = "2026-W46";
    let secret = "SEALED-Alice's secret answer";
    let hostile = c.hostile_bob();
    let bob_device = *hostile.device().as_bytes();

    // Bob's modified client submits in his own container in the form from before sealing:
    // answers in the clear, no commitment to bind them.
    let mut doc = hostile.doc(bob_device);
    let checkin_id = "01930000-0000-7000-8000-0000000000b0";
    let submission_key = format!("{checkin_id}/{bob}");
    let unsealed = change(&mut doc, |d| {
        let mine = container(d, &c.bob);
        let checkins = match d.get(&mine, "checkins").unwrap() {
            Some((_, id)) => id,
            None => d.put_object(&mine, "checkins", ObjType::Map).unwrap(),
        };
        let submissions = match d.get(&mine, "submissions").unwrap() {
            Some((_, id)) => id,
            None => d.put_object(&mine, "submissions", ObjType::Map).unwrap(),
        };
        let now = hearth_doc::Millis::now().0;
        d.put(
            &checkins,
            checkin_id,
            format!(
                r#"{{"week":"{week}","template":"weekly-v1","opened_by":"{bob}","opened_at":{now}}}"#
            ),
        )
        .unwrap();
        d.put(
            &submissions,
            submission_key.as_str(),
            format!(
                r#"{{"submitted_at":{now},"answers":{{"feeling":5,"connected":"BOB-unbound"}}}}"#
            ),
        )
        .unwrap();
    });
    hostile.push(&unsealed).await;
    c.alice.ok(["sync"]);

    // Alice answers normally: her key must not go out against answers that bind nothing.
    c.alice.ok([
        "checkin",
        "--week",
        week,
        "--answer",
        "feeling=8",
        "--answer",
        &format!("connected={secret}"),
    ]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    let seen = c.bob.json(["checkin", "show", week]);
    let alices = seen["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == alice.as_str())
        .unwrap()
        .clone();
    assert_eq!(alices["seal"], "sealed", "{seen}");
    assert!(seen["answers"][alice.as_str()].is_null(), "{seen}");
    let mut bobs_doc = hostile.doc(bob_device);
    let readable = bobs_doc.save_nocompress();
    assert!(
        !readable
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "Alice's answer is readable on Bob's device"
    );

    // Bob deletes his unbound submission (his own, so that is his to do) and submits again
    // through the stock client, sealed this time.
    let mut doc = hostile.doc(bob_device);
    let removed = change(&mut doc, |d| {
        let submissions = collection(d, &c.bob, "submissions");
        d.delete(&submissions, submission_key.as_str()).unwrap();
    });
    hostile.push(&removed).await;
    c.bob.ok(["sync"]);
    let out = c.bob.run([
        "checkin",
        "--week",
        week,
        "--answer",
        "feeling=6",
        "--answer",
        "connected=BOB-sealed this time",
    ]);
    c.bob.ok(["sync"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);

    // Whatever became of it, Alice's answers reached Bob only against sealed answers of his
    // that he committed to before reading hers: never against the unbound ones.
    let mine = c.alice.json(["checkin", "show", week]);
    let alice_view = Couple::profile(&c.alice).load().unwrap();
    let checkin = alice_view.checkin(week.parse::<Week>().unwrap()).unwrap();
    let bobs = checkin.submissions.get(&bob).expect("Bob's submission");
    assert_ne!(bobs.seal, Seal::Unsealed, "{mine}");
    let theirs = c.bob.json(["checkin", "show", week]);
    if out.code == Some(0) {
        // The sealed resubmission stands: both see each other's answers, as after any
        // ordinary week, and Bob's are the sealed ones.
        let readable = theirs["answers"][alice.as_str()]["connected"].clone();
        assert!(readable.is_null() || readable == secret, "{theirs}");
        assert_ne!(
            mine["answers"][bob.as_str()]["connected"],
            "BOB-unbound",
            "{mine}"
        );
    } else {
        assert!(theirs["answers"][alice.as_str()].is_null(), "{theirs}");
    }
    assert_eq!(
        mine["answers"][alice.as_str()]["connected"],
        secret,
        "Alice reads her own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_under_the_partners_actor_id_is_refused_and_both_sides_keep_syncing() {
    let c = Couple::new().await;
    let alice = Couple::person_of(&c.alice);
    c.alice.ok(["appreciate", "ALICE-first"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    let before = appreciations_by(&c.alice);

    // Written under Alice's own actor id (her device id), into her own container: as if
    // her device had written it. Signed by Bob's device, which cannot vouch for it.
    let hostile = c.hostile_bob();
    let alice_device = *Couple::device_of(&c.alice).as_bytes();
    let mut doc = hostile.doc(alice_device);
    let list = collection(&doc, &c.alice, "appreciations");
    let (_, first) = element(&doc, &list, "ALICE-first");
    let forged = change(&mut doc, |d| {
        d.insert(&list, 0, another_entry(&first, "FORGED-in Alice's name"))
            .unwrap();
    });
    hostile.push(&forged).await;

    let run = c.alice.run(["sync"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let short = hostile.device().short();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: refused a change"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains(&format!("from your partner's device {short}"))
            && warnings[0].contains("nothing from it was applied"),
        "{}",
        warnings[0]
    );
    assert_eq!(appreciations_by(&c.alice), before);
    // Bob's own device refuses it too when it comes back to it.
    c.bob.ok(["sync"]);
    assert_eq!(appreciations_by(&c.bob), before);

    // Honest envelopes keep flowing both ways, Alice's next change (the very sequence
    // number the forgery took for her actor) included: nothing waits or fails to read.
    for round in 0..2 {
        c.alice.ok(["appreciate", &format!("ALICE-after {round}")]);
        let run = c.alice.run(["sync"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(!run.stderr.contains("warning"), "{}", run.stderr);
        assert_clean(&Couple::sync(&c.bob).await);
        c.bob.ok(["appreciate", &format!("BOB-after {round}")]);
        c.bob.ok(["sync"]);
        assert_clean(&Couple::sync(&c.alice).await);
    }
    let on_alice = appreciations_by(&c.alice);
    let on_bob = appreciations_by(&c.bob);
    assert_eq!(on_alice, on_bob);
    assert_eq!(on_alice.len(), 5, "{on_alice:?}");
    assert!(on_alice.iter().all(|(_, t)| !t.contains("FORGED")));
    assert_eq!(
        on_alice.iter().filter(|(who, _)| *who == alice).count(),
        3,
        "{on_alice:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_carrying_a_rewrite_of_the_partners_entry_applies_none_of_it_on_a_new_device() {
    let c = Couple::new().await;
    c.alice.ok(["journal", "add", "ALICE-what I wrote"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    let before = journal_bodies(&c.alice);

    // Bob's modified client rewrites Alice's entry in its copy and hands the relay the whole
    // document as a snapshot: a device reading from the start gets it instead of the
    // envelopes it covers, and judges each change in it by the device it was written under.
    let hostile = c.hostile_bob();
    let mut doc = hostile.doc(*hostile.device().as_bytes());
    let journal = collection(&doc, &c.alice, "journal");
    let (at, entry) = element(&doc, &journal, "ALICE-what I wrote");
    change(&mut doc, |d| {
        let json = entry.replace("ALICE-what I wrote", "BOB-rewrote this");
        d.put(&journal, at, json).unwrap();
    });
    let cursor = Couple::profile(&c.bob).sync_book().cursor().unwrap();
    hostile.push_snapshot(&doc.save(), cursor).await;

    // Alice's new phone joins and loads the space from that snapshot.
    let phone = new_device_of(&c.alice, "alice-phone").await;
    let refused = refused_from(&phone.report, hostile.device());
    assert_eq!(refused.len(), 1, "{refused:?}");
    let bodies: Vec<String> = phone
        .profile
        .load()
        .unwrap()
        .journal()
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(bodies, ["ALICE-what I wrote"]);
    let mut phone = phone.profile;
    let report = sync::sync_once(&mut phone, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(
        report.refused_changes.is_empty(),
        "reported once: {:?}",
        report.refused_changes
    );
    assert_eq!(journal_bodies(&c.alice), before);
}

/// A new device of `of`'s person, joined through an invite over the real relay, with the
/// report of its first sync.
async fn new_device_of(of: &Device, name: &str) -> sync::Joined {
    let home = of.home().with_file_name(name);
    let mut inviter = Couple::profile(of);
    let code = sync::invite(
        &mut inviter,
        hearth_proto::InviteRole::OwnDevice,
        Duration::from_secs(3600),
        T,
    )
    .await
    .unwrap();
    sync::join(&home, &code, None, hearth_client::Protection::None, T)
        .await
        .unwrap()
}

/// Not an attack: Bob's device doing what `snapshot_if_due` does (the whole document, as a
/// snapshot covering its cursor), while Alice's phone is behind her laptop. The relay then
/// drops the laptop's envelope the snapshot covers, so the phone sees the laptop's change
/// only inside Bob's snapshot. It does not take Alice's change on Bob's word (that would let
/// him extend her history): it holds it, and takes it once one of Alice's own devices
/// builds on it, the laptop's next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_partner_snapshot_covering_your_other_devices_change_still_brings_it() {
    let c = Couple::new().await;
    let phone = new_device_of(&c.alice, "alice-phone").await;
    let mut phone = phone.profile;
    c.alice.ok(["appreciate", "ALICE-from the laptop"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);
    let hostile = c.hostile_bob();
    let mut doc = hostile.doc(*hostile.device().as_bytes());
    let cursor = Couple::profile(&c.bob).sync_book().cursor().unwrap();
    hostile.push_snapshot(&doc.save(), cursor).await;

    let report = sync::sync_once(&mut phone, T).await.unwrap();
    assert!(
        report.refused_changes.is_empty(),
        "an honest snapshot is no cause for a warning: {report:?}"
    );
    c.alice.ok(["appreciate", "ALICE-again from the laptop"]);
    c.alice.ok(["sync"]);
    let report = sync::sync_once(&mut phone, T).await.unwrap();
    let texts = appreciations(&phone);
    assert!(
        texts.contains(&"ALICE-from the laptop".to_owned())
            && texts.contains(&"ALICE-again from the laptop".to_owned()),
        "{texts:?}"
    );
    assert_eq!(report.waiting, 0, "nothing is left waiting: {report:?}");
}

/// A sync that refused nothing and left nothing waiting.
fn assert_clean(report: &SyncReport) {
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(
        report.refused_changes.is_empty(),
        "{:?}",
        report.refused_changes
    );
    assert_eq!(report.waiting, 0);
}

/// `hearth watch` says so, live, when it refuses a change: one warning line naming the
/// partner's device, and it keeps watching (the partner's next honest entry still shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_watch_warns_of_a_refused_change_and_keeps_watching() {
    use std::io::BufRead;

    let c = Couple::new().await;
    c.alice.ok(["appreciate", "ALICE-thank you for the walk"]);
    c.alice.ok(["sync"]);
    c.bob.ok(["sync"]);

    let mut watcher = c.alice.command(["watch"]).spawn().unwrap();
    let (lines, heard) = std::sync::mpsc::channel::<String>();
    let stderr = watcher.stderr.take().unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let to_err = lines.clone();
    let readers = [
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if to_err.send(format!("err: {line}")).is_err() {
                    break;
                }
            }
        }),
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if lines.send(format!("out: {line}")).is_err() {
                    break;
                }
            }
        }),
    ];
    let wait_for = |what: &str| -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut said = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match heard.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(what);
                    said.push(line);
                    if found {
                        return said;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("the watcher never said {what:?}; it said {said:?}");
    };
    wait_for("Connected; watching");

    let hostile = c.hostile_bob();
    let mut doc = hostile.doc(*hostile.device().as_bytes());
    let list = collection(&doc, &c.alice, "appreciations");
    let (at, _) = element(&doc, &list, "ALICE-thank you for the walk");
    let deleted = change(&mut doc, |d| d.delete(&list, at).unwrap());
    hostile.push(&deleted).await;
    let said = wait_for("refused a change");
    let warning = said.last().unwrap();
    assert!(
        warning.starts_with("err: warning: refused a change from your partner's device")
            && warning.contains("nothing from it was applied"),
        "{warning}"
    );

    c.bob.ok(["appreciate", "BOB-still here"]);
    c.bob.ok(["sync"]);
    wait_for("BOB-still here");
    watcher.kill().unwrap();
    let _ = watcher.wait();
    for reader in readers {
        let _ = reader.join();
    }
    assert!(
        appreciations(&Couple::profile(&c.alice))
            .contains(&"ALICE-thank you for the walk".to_owned()),
        "her appreciation is still there"
    );
}
