//! The weekly ritual, end to end: two partners over a real relay for three weeks, through
//! the real `hearth` program. Answers stay sealed until both have answered (checked in
//! the partner's decrypted document and the relay's bytes), open side by side after, last
//! week's small thing comes back and is followed up, and one feedback thread is reflected
//! back and heard.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_testkit::TestRelay;
use hearth_testkit::couple::paired;
use hearth_tests::{Device, files_containing};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

const WEEKS: [&str; 3] = ["2026-W45", "2026-W46", "2026-W47"];

/// Everything a device can read of its space, uncompressed: the document as its profile
/// decrypts it, saved without compression so a plaintext answer would show as bytes.
fn readable_bytes(home: &Path) -> Vec<u8> {
    let profile = hearth_client::Profile::open(home, None).unwrap();
    let mut doc = profile.load().unwrap();
    let mut raw = automerge::AutoCommit::load(&doc.save_snapshot()).unwrap();
    raw.save_nocompress()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The secret must be nowhere the other partner or the relay could look: not in the
/// partner's decrypted document (which holds everything the relay carried, opened with
/// the space's keys), not in the bytes of the partner's profile, not in the relay's files.
fn sealed_from(secret: &str, partner: &Device, relay_dir: &Path) {
    assert!(
        !contains(&readable_bytes(&partner.home()), secret),
        "{secret:?} is readable in the partner's document"
    );
    assert!(files_containing(&partner.home(), secret.as_bytes()).is_empty());
    assert!(files_containing(relay_dir, secret.as_bytes()).is_empty());
}

fn show(dev: &Device, week: &str) -> Value {
    dev.json(["checkin", "show", week])
}

/// `person`'s entry in a `checkin show --json`.
fn person<'a>(shown: &'a Value, name: &str) -> &'a Value {
    shown["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

fn answers_of<'a>(shown: &'a Value, name: &str) -> &'a Value {
    let id = person(shown, name)["id"].as_str().unwrap().to_owned();
    &shown["answers"][id.as_str()]
}

fn statuses(dev: &Device) -> Vec<(String, String)> {
    let export = dev.json(["export", "--format", "json"]);
    let mut out: Vec<(String, String)> = export["commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partners_keep_the_weekly_ritual_for_three_weeks_over_a_relay() {
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    std::fs::create_dir(&relay_dir).unwrap();
    let relay = TestRelay::at(&relay_dir.join("relay.db"));
    let ana = Device::new(BIN);
    let ben = Device::new(BIN);
    paired(&ana.home(), "Ana", &ben.home(), "Ben", &relay.url).await;

    // Week 1. Ana answers first; her answers are sealed.
    let w1 = WEEKS[0];
    let secret = "SEALED-the lake at dawn";
    let out = ana.ok([
        "checkin",
        "--week",
        w1,
        "--answer",
        "feeling=6",
        "--answer",
        &format!("connected={secret}"),
        "--answer",
        "commit=cook on Friday",
    ]);
    assert!(out.contains("sealed"), "{out}");
    ana.ok(["sync"]);
    ben.ok(["sync"]);
    let seen = show(&ben, w1);
    assert_eq!(person(&seen, "Ana")["seal"], "sealed");
    assert!(answers_of(&seen, "Ana").is_null(), "{seen}");
    assert_eq!(seen["revealed"], false);
    let text = ben.ok(["checkin", "show", w1]);
    assert!(
        text.contains("Ana has answered; their answers stay sealed until you have answered too"),
        "{text}"
    );
    assert!(ben.json(["trends"]).as_array().unwrap().is_empty());
    sealed_from(secret, &ben, &relay_dir);
    sealed_from("cook on Friday", &ben, &relay_dir);
    // Ana reads her own.
    assert_eq!(answers_of(&show(&ana, w1), "Ana")["connected"], secret);

    // Ben answers after seeing Ana's sealed answers: his key goes out with them, and he
    // still cannot read hers until her device has seen his.
    let out = ben.ok([
        "checkin",
        "--week",
        w1,
        "--answer",
        "feeling=8",
        "--answer",
        "connected=SEALED-dinner on the balcony",
        "--answer",
        "commit=plan the weekend",
    ]);
    assert!(out.contains("Ana has answered too"), "{out}");
    ben.ok(["sync"]);
    assert!(answers_of(&show(&ben, w1), "Ana").is_null());
    sealed_from(secret, &ben, &relay_dir);
    // Ana's sync receives his answers and key, releases hers and pushes it, all at once.
    ana.ok(["sync"]);
    let on_ana = show(&ana, w1);
    assert_eq!(on_ana["revealed"], true, "{on_ana}");
    assert_eq!(
        answers_of(&on_ana, "Ben")["connected"],
        "SEALED-dinner on the balcony"
    );
    ben.ok(["sync"]);
    let on_ben = show(&ben, w1);
    assert_eq!(on_ben["revealed"], true, "{on_ben}");
    assert_eq!(answers_of(&on_ben, "Ana")["connected"], secret);
    assert_eq!(person(&on_ben, "Ana")["seal"], "open");
    let side_by_side = ben.ok(["checkin", "show", w1]);
    assert!(
        side_by_side.contains("Ana: 6 of 10") && side_by_side.contains("Ben: 8 of 10"),
        "{side_by_side}"
    );
    assert!(side_by_side.contains("You have both answered"));
    let both = vec![
        ("cook on Friday".to_owned(), "open".to_owned()),
        ("plan the weekend".to_owned(), "open".to_owned()),
    ];
    assert_eq!(statuses(&ana), both);
    assert_eq!(statuses(&ben), both);

    // Between weeks: Ben raises one thing; Ana reflects it back; Ben felt heard.
    let fb = ben.json([
        "feedback",
        "--observation",
        "the phone came to dinner twice this week",
        "--feeling",
        "a bit lonely",
        "--need",
        "time that is just ours",
        "--request",
        "could dinner be phone-free?",
    ]);
    let fb = fb["id"].as_str().unwrap().to_owned();
    ben.ok(["sync"]);
    ana.ok(["sync"]);
    ana.ok([
        "feedback",
        "reply",
        &fb,
        "--reflect",
        "What I'm hearing is that dinner is our time and the phone took it",
    ]);
    ana.ok(["sync"]);
    ben.ok(["sync"]);
    ben.ok(["feedback", "reply", &fb, "--heard", "yes"]);
    ben.ok(["sync"]);
    ana.ok(["sync"]);
    let threads = ana.json(["feedback", "list"]);
    let replies = threads[0]["replies"].as_array().unwrap();
    let kinds: Vec<&str> = replies
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reflect", "acknowledge"], "{threads}");
    assert_eq!(
        ana.json(["feedback", "list"]),
        ben.json(["feedback", "list"])
    );
    // The inspection that found no sealed answer does see what is shared in the clear.
    assert!(contains(
        &readable_bytes(&ana.home()),
        "the phone came to dinner twice this week"
    ));

    // Week 2. Both follow up last week's small thing, sealed like everything else: until
    // both have answered, the partner still sees last week's as open.
    let w2 = WEEKS[1];
    ana.ok([
        "checkin",
        "--week",
        w2,
        "--answer",
        "feeling=7",
        "--answer",
        "followup=done",
        "--answer",
        "commit=phone-free dinners",
    ]);
    ana.ok(["sync"]);
    ben.ok(["sync"]);
    assert_eq!(statuses(&ben), both, "Ana's follow-up is sealed too");
    ben.ok([
        "checkin",
        "--week",
        w2,
        "--answer",
        "feeling=8",
        "--answer",
        "followup=partly",
    ]);
    ben.ok(["sync"]);
    ana.ok(["sync"]);
    ben.ok(["sync"]);
    let followed = vec![
        ("cook on Friday".to_owned(), "done".to_owned()),
        ("phone-free dinners".to_owned(), "open".to_owned()),
        ("plan the weekend".to_owned(), "partly".to_owned()),
    ];
    assert_eq!(statuses(&ana), followed);
    assert_eq!(statuses(&ben), followed);

    // Week 3. Ana answers; Ben does not this week. Hers stay sealed from him.
    let w3 = WEEKS[2];
    let quiet = "SEALED-a tired week, still glad of us";
    ana.ok([
        "checkin",
        "--week",
        w3,
        "--answer",
        "feeling=5",
        "--answer",
        &format!("connected={quiet}"),
        "--answer",
        "followup=done",
    ]);
    ana.ok(["sync"]);
    ben.ok(["sync"]);
    let w3_on_ben = show(&ben, w3);
    assert_eq!(person(&w3_on_ben, "Ana")["seal"], "sealed");
    assert!(person(&w3_on_ben, "Ben")["submitted_at"].is_null());
    sealed_from(quiet, &ben, &relay_dir);
    assert_eq!(
        statuses(&ben),
        followed,
        "Ana's follow-up of week 3 opens only once Ben has answered"
    );

    // The trend each sees: both scores for the weeks both answered, and Ana's own week 3
    // only on her side.
    let trend = |dev: &Device| -> Vec<(String, Value)> {
        dev.json(["trends"])
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["week"].as_str().unwrap().to_owned(), p["feeling"].clone()))
            .collect()
    };
    let shared = vec![
        (w1.to_owned(), serde_json::json!({"Ana": 6, "Ben": 8})),
        (w2.to_owned(), serde_json::json!({"Ana": 7, "Ben": 8})),
    ];
    assert_eq!(trend(&ben), shared);
    let mut on_ana = shared.clone();
    on_ana.push((w3.to_owned(), serde_json::json!({"Ana": 5})));
    assert_eq!(trend(&ana), on_ana);

    // And Ana's device keeps only the key still owed: week 3's.
    let keys: i64 = rusqlite::Connection::open(ana.home().join("profile.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM seal_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        keys, 1,
        "released keys are forgotten, the unreleased one kept"
    );
    relay.stop().await.expect("the relay stops");
}
