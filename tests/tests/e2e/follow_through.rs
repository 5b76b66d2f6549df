//! Two partners over a real relay on 127.0.0.1:0, through the real `hearth` program:
//! listening in feedback threads (did the listener reflect back, did the speaker feel heard)
//! and finding things again with `hearth log`'s filters.
#![allow(clippy::unwrap_used)]

use hearth_doc::{Millis, Week};
use hearth_relay::LocalRelay;
use hearth_tests::Device;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

/// Sam and Jordan, paired with `hearth invite` and `hearth join`, and the relay they sync
/// through (keep it for as long as they need it).
fn couple() -> (Device, Device, LocalRelay) {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        relay.url(),
    ]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    sam.ok(["sync"]);
    (sam, jordan, relay)
}

/// The one thread in `dev`'s `hearth feedback list --json`.
fn only_thread(dev: &Device) -> Value {
    let list = dev.json(["feedback", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    list[0].clone()
}

#[test]
fn feedback_list_shows_whether_the_listener_reflected_and_the_speaker_felt_heard() {
    let (sam, jordan, _relay) = couple();
    let raised = sam.json([
        "feedback",
        "--observation",
        "the dishes stayed in the sink overnight",
        "--feeling",
        "tired",
        "--need",
        "to share the evening chores",
        "--request",
        "could we do them together after dinner?",
    ]);
    let id = raised["id"].as_str().unwrap().to_owned();
    let short = &id[id.len() - 8..];

    // Nobody has reflected yet: Sam waits, Jordan is shown how.
    let list = sam.ok(["feedback", "list"]);
    assert!(
        list.contains("waiting for Jordan to reflect back"),
        "{list}"
    );
    assert!(!list.contains("--reflect"), "{list}");
    let thread = only_thread(&sam);
    assert_eq!(thread["reflected"], false);
    assert_eq!(thread["felt_heard"], Value::Null);
    // The fields that were there before are still there.
    assert_eq!(thread["id"], id.as_str());
    assert_eq!(
        thread["observation"],
        "the dishes stayed in the sink overnight"
    );
    sam.ok(["sync"]);
    jordan.ok(["sync"]);
    let list = jordan.ok(["feedback", "list"]);
    assert!(list.contains("waiting for you to reflect back"), "{list}");
    assert!(
        list.contains(&format!(
            "you could reflect it back: hearth feedback reply {short} --reflect"
        )),
        "{list}"
    );
    // --quiet keeps the state and drops the hint.
    let quiet = jordan.ok(["feedback", "list", "--quiet"]);
    assert!(quiet.contains("waiting for you to reflect back"), "{quiet}");
    assert!(!quiet.contains("you could"), "{quiet}");

    // The speaker cannot reflect their own feedback back: that is the listener's part.
    let run = sam.run([
        "feedback",
        "reply",
        short,
        "--reflect",
        "to be clear: evenings",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("only your partner can reflect back"),
        "{}",
        run.stderr
    );
    assert_eq!(only_thread(&sam)["reflected"], false);
    // Nor can the listener say whether the speaker felt heard.
    let run = jordan.run(["feedback", "reply", short, "--heard", "yes"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("only the one who raised it can say whether they felt heard"),
        "{}",
        run.stderr
    );

    jordan.ok([
        "feedback",
        "reply",
        short,
        "--reflect",
        "What I'm hearing is that evenings feel lopsided",
    ]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    let list = sam.ok(["feedback", "list"]);
    assert!(
        list.contains("reflected back ✓ · felt heard: not said yet"),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "did Jordan get it? hearth feedback reply {short} --heard yes|partly|no"
        )),
        "{list}"
    );
    assert_eq!(only_thread(&sam)["reflected"], true);

    sam.ok([
        "feedback",
        "reply",
        short,
        "--heard",
        "partly",
        "--note",
        "it is more the mornings",
    ]);
    let list = sam.ok(["feedback", "list"]);
    assert!(
        list.contains("reflected back ✓ · felt heard: partly"),
        "{list}"
    );
    assert_eq!(only_thread(&sam)["felt_heard"], "partly");
    sam.ok(["sync"]);
    jordan.ok(["sync"]);
    let list = jordan.ok(["feedback", "list"]);
    assert!(list.contains("felt heard: partly"), "{list}");
    assert!(list.contains("you could try once more"), "{list}");

    // A second try, and the speaker's latest answer is the one that stands.
    jordan.ok([
        "feedback",
        "reply",
        short,
        "--reflect",
        "So it is the mornings that feel lopsided",
    ]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    sam.ok(["feedback", "reply", short, "--heard", "yes"]);
    let thread = only_thread(&sam);
    assert_eq!(thread["felt_heard"], "yes");
    assert_eq!(
        thread["replies"].as_array().unwrap().len(),
        4,
        "two reflections and two answers; the refused replies left nothing"
    );
    let list = sam.ok(["feedback", "list"]);
    assert!(
        list.contains("reflected back ✓ · felt heard: yes"),
        "{list}"
    );
    assert!(!list.contains("did Jordan get it?"), "{list}");
}

/// `hearth log --json` with `args`, as (kind, author name) pairs.
fn log(dev: &Device, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["log"];
    all.extend_from_slice(args);
    dev.json(all)
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["kind"].as_str().unwrap().to_owned(),
                row["author_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, a)| ((*k).to_owned(), (*a).to_owned()))
        .collect()
}

#[test]
fn log_filters_by_kind_person_and_time() {
    let (sam, jordan, _relay) = couple();
    sam.ok(["appreciate", "Thank you for the tea"]);
    sam.ok(["checkin", "--answer", "feeling=7"]);
    jordan.ok(["appreciate", "Thank you for waiting up"]);
    jordan.ok(["journal", "add", "A long walk by the river"]);
    jordan.ok(["appreciate", "Thank you for the map"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    let everything = log(&sam, &[]);
    assert_eq!(everything.len(), 5, "{everything:?}");

    // By kind: repeated or comma-separated, the same.
    let appreciations = pairs(&[
        ("appreciation", "Sam"),
        ("appreciation", "Jordan"),
        ("appreciation", "Jordan"),
    ]);
    assert_eq!(log(&sam, &["--kind", "appreciation"]), appreciations);
    let with_journal = log(&sam, &["--kind", "appreciation,journal"]);
    assert_eq!(with_journal.len(), 4, "{with_journal:?}");
    assert_eq!(
        log(&sam, &["--kind", "appreciation", "--kind", "journal"]),
        with_journal
    );
    assert_eq!(
        log(&sam, &["--kind", "checkin"]),
        pairs(&[("checkin_submitted", "Sam")])
    );

    // By person: a name in any case, me, partner.
    let jordans = pairs(&[
        ("appreciation", "Jordan"),
        ("journal", "Jordan"),
        ("appreciation", "Jordan"),
    ]);
    assert_eq!(log(&sam, &["--by", "jordan"]), jordans);
    assert_eq!(log(&sam, &["--by", "JORDAN"]), jordans);
    assert_eq!(log(&sam, &["--by", "partner"]), jordans);
    assert_eq!(log(&jordan, &["--by", "me"]), jordans);
    assert_eq!(
        log(&sam, &["--by", "me"]),
        pairs(&[("appreciation", "Sam"), ("checkin_submitted", "Sam")])
    );

    // Combined, and -n counts what the filters kept.
    assert_eq!(
        log(
            &sam,
            &["--by", "partner", "--kind", "appreciation", "-n", "1"]
        ),
        pairs(&[("appreciation", "Jordan")])
    );
    let text = sam.ok(["log", "--by", "jordan", "--kind", "appreciation", "-n", "1"]);
    assert!(
        text.contains("Jordan appreciated: Thank you for the map"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    // By time: everything happened today, in this week.
    let today = Millis::now().to_utc().date_naive();
    let this_week = Week::from_date(today).to_string();
    let last_week = Week::from_date(today).previous().to_string();
    let yesterday = today.pred_opt().unwrap().format("%Y-%m-%d").to_string();
    let today = today.format("%Y-%m-%d").to_string();
    assert_eq!(log(&sam, &["--since", &this_week]), everything);
    assert_eq!(log(&sam, &["--until", &this_week]), everything);
    assert_eq!(
        log(&sam, &["--since", &today, "--until", &today]),
        everything
    );
    assert_eq!(log(&sam, &["--since", "1d"]), everything);
    assert_eq!(log(&sam, &["--since", "4w", "--kind", "journal"]).len(), 1);
    assert!(log(&sam, &["--until", &last_week]).is_empty());
    assert!(log(&sam, &["--until", &yesterday]).is_empty());
    assert!(log(&sam, &["--until", "1d"]).is_empty());
    let none = sam.ok(["log", "--until", &yesterday]);
    assert!(none.contains("Nothing matches those filters"), "{none}");

    // Mistakes exit 1 and say what would work.
    let run = sam.run(["log", "--by", "Alex"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for name in ["\"Alex\"", "Sam", "Jordan", "me", "partner"] {
        assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
    }
    let run = sam.run(["log", "--since", "last tuesday"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("2026-W45"), "{}", run.stderr);
    assert!(run.stderr.contains("7d"), "{}", run.stderr);
    let run = sam.run(["log", "--kind", "hug"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("appreciation"), "{}", run.stderr);
    let run = sam.run(["log", "--since", &today, "--until", &yesterday]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("--since is not before --until"),
        "{}",
        run.stderr
    );
}
