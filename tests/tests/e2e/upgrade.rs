//! A couple's space made by the release before per-person containers (the checked-in
//! fixture `tests/fixtures/first-layout-couple`, with its README) keeps everything through
//! the upgrade: opened by this release on every device, in every order of upgrading, each
//! entry is there exactly once, attributed to the one who wrote it, sealed answers stay as
//! sealed as they were, and the entry Bob's device once wrote in Alice's name with the stock
//! binary is attributed to no one.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_client::{Profile, sync};
use hearth_doc::{PersonId, ReplyKind, Seal, SpaceDoc, Week};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::appreciate;

const T: Duration = Duration::from_secs(20);
const DEVICES: [&str; 3] = ["alice", "alice-laptop", "bob"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/first-layout-couple")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture's three devices, opened by this release, on its relay restarted from a copy
/// of its database.
struct Couple {
    dir: tempfile::TempDir,
    relay: TestRelay,
    devices: Vec<Profile>,
}

impl Couple {
    fn open() -> Couple {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture(), dir.path());
        let relay = TestRelay::at(&dir.path().join("relay.db"));
        let devices = DEVICES
            .iter()
            .map(|name| {
                let mut p = Profile::open(&dir.path().join(name), None).unwrap();
                p.sync_book_mut().set_relay(&relay.url).unwrap();
                p
            })
            .collect();
        Couple {
            dir,
            relay,
            devices,
        }
    }
}

fn name_of(doc: &SpaceDoc, id: &PersonId) -> String {
    doc.person(id).map(|p| p.name).unwrap_or_default()
}

/// What a device shows of the fixture's first-layout history, and of anything written
/// since, as (what, who) pairs, sorted.
fn shown(p: &Profile) -> Vec<(String, String)> {
    let doc = p.load().unwrap();
    let mut out = Vec::new();
    for a in doc.appreciations() {
        out.push((a.text.clone(), name_of(&doc, &a.author)));
    }
    for j in doc.journal() {
        let title = j.title.clone().unwrap_or_default();
        out.push((format!("{title}: {}", j.body), name_of(&doc, &j.author)));
    }
    for f in doc.feedback() {
        out.push((f.observation.clone(), name_of(&doc, &f.author)));
        for r in &f.replies {
            out.push((
                format!("{:?}: {}", r.kind, r.text),
                name_of(&doc, &r.author),
            ));
        }
    }
    for c in doc.commitments() {
        out.push((c.text.clone(), name_of(&doc, &c.author)));
    }
    out.sort();
    out
}

fn pair(what: &str, who: &str) -> (String, String) {
    (what.to_owned(), who.to_owned())
}

fn legacy_history() -> Vec<(String, String)> {
    let mut v = vec![
        pair("ALICE-APPRECIATION: thank you for the soup", "Alice"),
        pair("BOB-APPRECIATION: you made Sunday slow", "Bob"),
        pair("Our trip: ALICE-JOURNAL: the sea at dawn", "Alice"),
        pair("ALICE-FEEDBACK when the dishes waited", "Alice"),
        pair(
            &format!("{:?}: BOB-REFLECT you need rest", ReplyKind::Reflect),
            "Bob",
        ),
        pair(&format!("{:?}: yes", ReplyKind::Acknowledge), "Alice"),
        pair("ALICE-COMMIT cook on Thursday", "Alice"),
        pair("BOB-COMMIT plan a walk", "Bob"),
    ];
    v.sort();
    v
}

/// Every device shows the fixture's history as it was written, and nothing in Alice's name
/// that she did not write.
fn assert_history(c: &Couple, extra: &[(String, String)], when: &str) {
    let mut expected = legacy_history();
    expected.extend(extra.iter().cloned());
    expected.sort();
    for (name, p) in DEVICES.iter().zip(&c.devices) {
        assert_eq!(shown(p), expected, "{name}, {when}");
        let doc = p.load().unwrap();
        let people: Vec<String> = doc.people().into_iter().map(|p| p.name).collect();
        assert_eq!(people, ["Alice", "Bob"], "{name}, {when}");
        assert_eq!(
            &doc.own_person(),
            p.person_id(),
            "{name} keeps its person, {when}"
        );
        let w40: Week = "2026-W40".parse().unwrap();
        let w41: Week = "2026-W41".parse().unwrap();
        let both = doc.checkin(w40).unwrap();
        assert_eq!(both.submissions.len(), 2, "{name}, {when}");
        assert!(
            both.submissions.values().all(|s| s.seal == Seal::Open),
            "{name}, {when}: {both:?}"
        );
        let one = doc.checkin(w41).unwrap();
        assert_eq!(one.submissions.len(), 1, "{name}, {when}");
        let s = one.submissions.values().next().unwrap();
        assert_eq!(s.seal, Seal::Sealed, "{name}, {when}");
        assert_eq!(
            s.answers.is_some(),
            *name == "alice-laptop",
            "only the laptop that sealed them reads them, {when}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_layout_space_opens_intact_and_nothing_forged_is_attributed() {
    let c = Couple::open();
    assert_history(&c, &[], "opened by this release");
    let raw = automerge::AutoCommit::load(&c.devices[0].load().unwrap().save_snapshot()).unwrap();
    let (_, list) = automerge::ReadDoc::get(&raw, automerge::ROOT, "appreciations")
        .unwrap()
        .unwrap();
    let texts: Vec<String> = automerge::ReadDoc::list_range(&raw, &list, ..)
        .map(|item| format!("{:?}", item.value))
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("FORGED-BY-BOB")),
        "the forged entry is still in the document, just attributed to no one: {texts:?}"
    );
    c.relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_of_upgrading_keeps_every_entry_once_and_theirs() {
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let mut c = Couple::open();
        let mut written = Vec::new();
        for &i in &order {
            let text = format!("NEW-FROM-{}", DEVICES[i].to_uppercase());
            appreciate(&mut c.devices[i], &text);
            let report = sync::sync_once(&mut c.devices[i], T).await.unwrap();
            assert!(report.rejected.is_empty(), "{order:?}: {report:?}");
            let who = if i == 2 { "Bob" } else { "Alice" };
            written.push(pair(&text, who));
        }
        for _ in 0..2 {
            for p in &mut c.devices {
                let report = sync::sync_once(p, T).await.unwrap();
                assert!(report.rejected.is_empty(), "{order:?}: {report:?}");
            }
        }
        assert_history(
            &c,
            &written,
            &format!("after upgrading in the order {order:?}"),
        );
        let heads: Vec<_> = c
            .devices
            .iter()
            .map(|p| p.load().unwrap().heads())
            .collect();
        assert!(heads.windows(2).all(|w| w[0] == w[1]), "{order:?}");
        c.relay.stop().await.unwrap();
    }
}

/// The fixture's envelopes were sealed before envelopes were padded: each holds Automerge
/// bytes as they are. This release opens every one of them, and a device that joins now
/// reads the whole history from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_sealed_before_padding_open_and_a_new_device_reads_them_all() {
    let mut c = Couple::open();
    let alice = &c.devices[0];
    let space = alice.space().unwrap();
    let key = alice.sync_book().epoch_key(0).unwrap().unwrap();
    let conn = rusqlite::Connection::open(c.dir.path().join("relay.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT bytes FROM envelopes ORDER BY seq")
        .unwrap();
    let stored: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(stored.len() >= 5, "{} envelopes", stored.len());
    for bytes in &stored {
        let envelope = hearth_proto::Envelope::decode(bytes).unwrap();
        let sealed = envelope.ciphertext().len() - 16;
        let plain = hearth_crypto::envelope::open(&envelope, &space, 0, &key).unwrap();
        assert_eq!(
            plain.len(),
            sealed,
            "unpadded: the plaintext is all there is"
        );
        assert_eq!(
            &plain[..4],
            [0x85, 0x6f, 0x4a, 0x83],
            "Automerge's magic bytes"
        );
    }
    let home = c.dir.path().join("alice-tablet");
    let tablet = hearth_testkit::couple::invited(&home, &mut c.devices[0], None).await;
    assert_eq!(shown(&tablet), legacy_history());
    c.relay.stop().await.unwrap();
}
