//! An honest relay, or a caught one (issue 15): what a relay that lies to the clients can
//! no longer do, shown through the malicious proxy of [`crate::hostile_relay`] in front of
//! a real relay. An envelope nobody signed that claims a future epoch must not stall
//! syncing; a deleted space must be said plainly, with the deleting member's signature as
//! proof, and a relay that claims a deletion without one must be called out; neither may
//! lose anything on the device or make it re-create the space.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth_client::sync;
use hearth_proto::{
    ClientFrame, DeviceId, Envelope, EnvelopeHeader, EnvelopeKind, RelayFrame, SpaceId,
    delete_space_message, encode_relay,
};
use hearth_testkit::couple::{appreciate, appreciations};
use hearth_tests::Run;

use crate::hostile_relay::{Direction, Pair, Place, Raw, Scope, Times};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const T: Duration = Duration::from_secs(20);

/// Runs `hearth ARGS` on the profile in `home`, without a terminal.
fn hearth(home: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HEARTH_HOME", home)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// An envelope in `author`'s name claiming epoch 99, with `signature` (zeros: unsigned; or
/// a stranger's) and garbage inside: what a relay can make up without anyone's key.
fn claiming_epoch_99(space: SpaceId, author: DeviceId, signature: [u8; 64]) -> Vec<u8> {
    let header = EnvelopeHeader {
        kind: EnvelopeKind::Changes,
        space,
        epoch: 99,
        author,
        counter: 1_000_000,
    };
    Envelope::from_parts(header, [7; 24], b"made up by the relay".to_vec(), signature).encode()
}

/// The same claim, signed, but by a key that is not `author`'s.
fn badly_signed_epoch_99(space: SpaceId, author: DeviceId) -> Vec<u8> {
    let unsigned = Envelope::decode(&claiming_epoch_99(space, author, [0; 64])).unwrap();
    let stranger = hearth_crypto::DeviceKeys::generate().unwrap();
    let message =
        Envelope::signed_message(unsigned.header(), unsigned.nonce(), unsigned.ciphertext());
    claiming_epoch_99(space, author, stranger.sign(&message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_envelope_claiming_a_future_epoch_is_refused_and_syncing_goes_on() {
    let mut p = Pair::new().await;
    let sam = p.sam.device_id();
    let space = p.sam.space().unwrap();
    p.sam_writes("SAM-BEFORE").await;
    let jordan = Scope::Device(p.jordan.device_id());
    // In every batch Jordan gets while the rules stand: one would have made each attempt
    // stop for a rotation that never happened, and every sync fail.
    for claim in [
        claiming_epoch_99(space, sam, [0; 64]),
        badly_signed_epoch_99(space, sam),
    ] {
        p.proxy
            .inject_batch_item(jordan, Times::ForGood, Place::Back, claim);
    }

    let run = hearth(&p.path("jordan"), &["sync"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: skipped an entry from"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    for warning in warnings {
        assert!(
            warning.contains(&format!("device {}", sam.short())) && warning.contains("signature"),
            "{warning}"
        );
    }
    assert_eq!(
        p.proxy.tally().injected,
        2,
        "one attempt: nothing made it run again"
    );
    assert!(appreciations(&p.jordan).contains(&"SAM-BEFORE".to_owned()));

    // The relay stops lying: later syncs are clean, and nothing was lost either way.
    p.proxy.clear();
    appreciate(&mut p.jordan, "JORDAN-AFTER");
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    p.sam_writes("SAM-AFTER").await;
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.waiting, 0);
    assert_eq!(appreciations(&p.sam), appreciations(&p.jordan));
    for text in ["SAM-BEFORE", "SAM-AFTER", "JORDAN-AFTER"] {
        assert!(appreciations(&p.sam).contains(&text.to_owned()), "{text}");
    }
}

/// Sam's modified client deletes the space on the relay, as any member may: a signed
/// `DeleteSpace` over its connection's challenge. Returns what the relay answered.
async fn sam_deletes_the_space(p: &Pair) -> RelayFrame {
    let secrets = hearth_crypto::keyfile::read(&p.sam.paths().key_file, None).unwrap();
    let space = p.sam.space().unwrap();
    let (mut raw, login) = Raw::logged_in(&p.relay.url, &secrets.device, space).await;
    assert!(matches!(login, RelayFrame::AclChanged { .. }), "{login:?}");
    let message = delete_space_message(&raw.relay_id, &raw.nonce, &space);
    raw.send(&ClientFrame::DeleteSpace {
        space,
        signature: secrets.device.sign(&message),
    })
    .await;
    raw.next().await.unwrap()
}

/// How many spaces, and tombstones, the relay's database holds for `space`.
fn on_the_relay(p: &Pair, space: SpaceId) -> (i64, i64) {
    let conn = rusqlite::Connection::open(p.path("relay.db")).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE space = ?1"),
            [&space.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap()
    };
    (count("spaces"), count("tombstones"))
}

/// Today, `YYYY-MM-DD` in UTC.
fn today() -> String {
    hearth_doc::Millis::now().to_utc().date_naive().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_the_partner_deleted_is_said_plainly_and_nothing_is_lost_or_created_again() {
    let mut p = Pair::new().await;
    p.sam_writes("SAM-BEFORE").await;
    appreciate(&mut p.jordan, "JORDAN-BEFORE");
    sync::sync_once(&mut p.jordan, T).await.unwrap();
    let kept = appreciations(&p.jordan);
    let space = p.jordan.space().unwrap();
    let sam = p.sam.device_id();
    let created = p.proxy.seen(Direction::ToRelay, "CreateSpace");
    let (before, after) = (today(), sam_deletes_the_space(&p).await);
    assert_eq!(after, RelayFrame::AclChanged { records: vec![] });
    let days = [before, today()];

    let home = p.path("jordan");
    let said = |run: &Run| {
        let line = format!(
            "hearth: this space was deleted from the relay by your partner's device {} on ",
            sam.short()
        );
        assert!(
            days.iter().any(|day| run.stderr.contains(&format!(
                "{line}{day}; everything on this device is kept: `hearth export --format md` saves it; \
                 `hearth init` starts a new space"
            ))),
            "{}",
            run.stderr
        );
    };
    // Said the same, sync after sync, and by watch; nothing is sent to re-create it.
    for args in [&["sync"][..], &["sync"], &["watch"]] {
        let run = hearth(&home, args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.stderr);
        said(&run);
    }
    let status = hearth(&home, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status.stdout.contains(&format!(
            "this space was deleted from the relay by your partner's device {}",
            sam.short()
        )),
        "{}",
        status.stdout
    );
    let json = hearth(&home, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["space_deleted"]["proven"], true);
    assert_eq!(json["space_deleted"]["by"], sam.to_string());
    assert_eq!(json["relay_reachable"], true);

    assert_eq!(p.proxy.seen(Direction::ToRelay, "CreateSpace"), created);
    assert_eq!(
        on_the_relay(&p, space),
        (0, 1),
        "no space again, one tombstone"
    );
    // Everything Jordan had is still his, and exports.
    let jordan = hearth_client::Profile::open(&home, None).unwrap();
    assert_eq!(appreciations(&jordan), kept);
    let export = hearth(&home, &["export", "--format", "md"]);
    assert_eq!(export.code, Some(0), "{}", export.stderr);
    for text in ["SAM-BEFORE", "JORDAN-BEFORE"] {
        assert!(export.stdout.contains(text), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_watch_says_the_space_was_deleted_the_moment_it_is() {
    use std::io::BufRead;

    let p = Pair::new().await;
    let sam = p.sam.device_id();
    let mut watcher = Command::new(BIN)
        .arg("watch")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HEARTH_HOME", p.path("jordan"))
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, heard) = std::sync::mpsc::channel::<String>();
    let stderr = watcher.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| -> String {
        let deadline = std::time::Instant::now() + T;
        let mut said = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match heard.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(line) => said.push(line),
                Err(_) => break,
            }
        }
        panic!("the watcher never said {what:?}; it said {said:?}");
    };
    wait_for("Connected; watching");

    sam_deletes_the_space(&p).await;
    let line = wait_for("was deleted from the relay");
    assert!(
        line.contains(&format!("by your partner's device {}", sam.short())),
        "{line}"
    );
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(watcher.wait().unwrap().code());
    });
    assert_eq!(
        exited.recv_timeout(T).unwrap(),
        Some(3),
        "watch stops, exit 3"
    );
    reader.join().unwrap();
}

/// A made-up `SpaceDeleted` naming `device`, with `signature` over the deletion's message
/// for a challenge the relay never sent.
fn made_up_deletion(space: SpaceId, device: DeviceId, signature: [u8; 64]) -> Vec<u8> {
    let frame = RelayFrame::SpaceDeleted {
        space,
        device,
        relay_id: [0x42; 16],
        nonce: [0x43; 32],
        signature,
        deleted_at_ms: hearth_testkit::now_ms(),
    };
    encode_relay(&frame, 1 << 20).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_claims_a_deletion_no_member_signed_is_called_out_and_loses_nothing() {
    let mut p = Pair::new().await;
    p.sam_writes("SAM-BEFORE").await;
    sync::sync_once(&mut p.jordan, T).await.unwrap();
    let kept = appreciations(&p.jordan);
    let space = p.jordan.space().unwrap();
    let sam = p.sam.device_id();
    let stranger = hearth_crypto::DeviceKeys::generate().unwrap();
    let strangers = stranger.sign(&delete_space_message(&[0x42; 16], &[0x43; 32], &space));
    let created = p.proxy.seen(Direction::ToRelay, "CreateSpace");
    let home = p.path("jordan");
    // A garbage signature in Sam's name, then a stranger's valid one in the stranger's.
    for (claim, why) in [
        (made_up_deletion(space, sam, [7; 64]), "does not verify"),
        (
            made_up_deletion(space, stranger.device_id(), strangers),
            "is not one of the space's devices",
        ),
    ] {
        let rule = p
            .proxy
            .answer_login(Scope::Device(p.jordan.device_id()), Times::ForGood, claim);
        let run = hearth(&home, &["sync"]);
        assert_eq!(run.code, Some(3), "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "hearth: the relay says the space was deleted but shows no signature from a \
                 member; it may be lying ("
            ) && run.stderr.contains(why),
            "{}",
            run.stderr
        );
        let status = hearth(&home, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(status["space_deleted"]["proven"], false);
        p.proxy.remove(rule);
    }
    assert_eq!(p.proxy.seen(Direction::ToRelay, "CreateSpace"), created);
    assert_eq!(on_the_relay(&p, space), (1, 0), "the space is still there");

    // Told the truth again, Jordan syncs as before, with everything he had.
    let mut jordan = hearth_client::Profile::open(&home, None).unwrap();
    assert_eq!(appreciations(&jordan), kept);
    p.sam_writes("SAM-AFTER").await;
    let report = sync::sync_once(&mut jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(appreciations(&jordan).contains(&"SAM-AFTER".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_answers_as_if_the_space_never_existed_gets_no_new_one() {
    let p = Pair::new().await;
    let space = p.jordan.space().unwrap();
    let created = p.proxy.seen(Direction::ToRelay, "CreateSpace");
    let empty = encode_relay(&RelayFrame::AclChanged { records: vec![] }, 1 << 20).unwrap();
    p.proxy
        .answer_login(Scope::Device(p.jordan.device_id()), Times::ForGood, empty);
    let home = p.path("jordan");
    for _ in 0..2 {
        let run = hearth(&home, &["sync"]);
        assert_eq!(run.code, Some(3), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("hearth: the relay no longer has this space: it answers as if"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(p.proxy.seen(Direction::ToRelay, "CreateSpace"), created);
    assert_eq!(on_the_relay(&p, space), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_with_a_code_from_a_newer_relay_is_reported_and_changes_nothing() {
    let mut p = Pair::new().await;
    // `Reject { code: 0x7777, message }` as a newer relay would encode it: variant 6, the
    // code as a varint, then the message.
    let message = "a reason this build has no code for";
    let mut frame = vec![6, 0xF7, 0xEE, 0x01, u8::try_from(message.len()).unwrap()];
    frame.extend_from_slice(message.as_bytes());
    assert!(matches!(
        hearth_proto::decode_relay(&frame, 1 << 20).unwrap(),
        RelayFrame::Reject {
            code: hearth_proto::RejectCode::Unrecognized,
            ..
        }
    ));
    appreciate(&mut p.jordan, "JORDAN-WAITS");
    let rule = p
        .proxy
        .answer_login(Scope::Device(p.jordan.device_id()), Times::ForGood, frame);
    let home = p.path("jordan");
    let run = hearth(&home, &["sync"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("hearth: the relay refused: {message}"))
            && run.stderr.contains("Your changes are kept on this device"),
        "{}",
        run.stderr
    );
    p.proxy.remove(rule);
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert_eq!(report.pushed, 1, "JORDAN-WAITS waited and goes out now");
    sync::sync_once(&mut p.sam, T).await.unwrap();
    assert!(appreciations(&p.sam).contains(&"JORDAN-WAITS".to_owned()));
}

/// Attack 1: a relay that withholds one of Sam's envelopes from Jordan once, and then
/// turns honest. Jordan's first sync asks twice and reports the gap; the envelope after it
/// is taken and waits; the next sync takes the withheld one, and both appear. Withheld for
/// good, it is reported on every sync, and nothing moves past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_withheld_by_the_relay_is_asked_for_again_and_reported_until_it_comes() {
    let mut p = Pair::new().await;
    let cursor = p.jordan.sync_book().cursor().unwrap();
    p.sam_writes("SAM-WITHHELD").await;
    p.sam_writes("SAM-AFTER-IT").await;
    let sam = p.sam.device_id();
    let jordan = Scope::Device(p.jordan.device_id());
    let rule = p.proxy.withhold(jordan, Times::ForGood, move |i| {
        i.author == sam && i.seq == cursor + 1
    });

    for _ in 0..2 {
        let run = hearth(&p.path("jordan"), &["sync"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "warning: the relay holds 1 update between {} and {} that it did not hand \
                 over, even when asked twice",
                cursor + 1,
                cursor + 2
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("1 update received but not shown yet"),
            "{}",
            run.stderr
        );
        let json = hearth(&p.path("jordan"), &["sync", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(report["withheld"]["missing"], 1, "{}", json.stdout);
    }
    assert!(p.proxy.tally().withheld >= 4, "asked twice in each sync");
    let shown = |p: &Pair| {
        let on = hearth_client::Profile::open(&p.path("jordan"), None).unwrap();
        appreciations(&on)
    };
    assert!(!shown(&p).iter().any(|t| t.starts_with("SAM-")));

    // The relay turns honest: one sync brings both, and says nothing more.
    p.proxy.remove(rule);
    let run = hearth(&p.path("jordan"), &["sync"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(shown(&p).contains(&"SAM-WITHHELD".to_owned()));
    assert!(shown(&p).contains(&"SAM-AFTER-IT".to_owned()));
}

/// A relay that withholds an envelope only the first time it would hand it over: the
/// second ask within the same sync gets it, and the user hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_withheld_once_is_taken_within_the_same_sync() {
    let mut p = Pair::new().await;
    let cursor = p.jordan.sync_book().cursor().unwrap();
    p.sam_writes("SAM-ONCE").await;
    p.sam_writes("SAM-TWICE").await;
    let sam = p.sam.device_id();
    p.proxy
        .withhold(Scope::Device(p.jordan.device_id()), Times::Once, move |i| {
            i.author == sam && i.seq == cursor + 1
        });
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert_eq!(p.proxy.tally().withheld, 1);
    assert_eq!(report.withheld, None);
    assert_eq!(report.waiting, 0);
    assert_eq!(appreciations(&p.sam), appreciations(&p.jordan));
}

/// A relay that reverses every page it sends: the sync neither stalls nor takes it for a
/// restore, and everything arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversed_pages_neither_stall_a_sync_nor_pass_for_a_restore() {
    let mut p = Pair::new().await;
    for i in 0..5 {
        p.sam_writes(&format!("SAM-{i}")).await;
    }
    p.proxy.reverse_batches(Scope::Device(p.jordan.device_id()));
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(p.proxy.tally().reversed >= 1);
    assert_eq!(report.relay_behind, None);
    assert_eq!((report.withheld, report.waiting), (None, 0));
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(appreciations(&p.sam), appreciations(&p.jordan));
    // Again, with landmarks to compare this time.
    p.sam_writes("SAM-LAST").await;
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert_eq!(report.relay_behind, None);
    assert_eq!(appreciations(&p.sam), appreciations(&p.jordan));
}

/// A made-up item or event under the seq of a real envelope does not push the real one
/// out: both are screened, the made-up one is refused naming the device it claims, and the
/// real one is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_envelope_under_a_real_ones_seq_does_not_push_it_out() {
    let mut p = Pair::new().await;
    let cursor = p.jordan.sync_book().cursor().unwrap();
    let sam = p.sam.device_id();
    let space = p.sam.space().unwrap();
    p.sam_writes("SAM-REAL").await;
    let jordan = Scope::Device(p.jordan.device_id());
    p.proxy.inject_event(
        jordan,
        Times::Once,
        cursor + 1,
        claiming_epoch_99(space, sam, [0; 64]),
    );
    // At the back of the page: under the seq of Sam's real envelope, the last.
    p.proxy.inject_batch_item(
        jordan,
        Times::Once,
        Place::Back,
        badly_signed_epoch_99(space, sam),
    );
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert_eq!(p.proxy.tally().injected, 2);
    let places: Vec<u64> = report.rejected.iter().map(|r| r.seq).collect();
    assert_eq!(places, [cursor + 1, cursor + 1], "{:?}", report.rejected);
    assert!(appreciations(&p.jordan).contains(&"SAM-REAL".to_owned()));
    assert_eq!((report.withheld, report.waiting), (None, 0));
    let again = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
}

/// `hearth verify` (issue 15, part 4): after syncing, both partners' devices show the same
/// code. A relay that withholds everything Sam's device writes from Jordan, with no gap to
/// see (it hides the head too), is caught by comparing: the codes differ, the devices line
/// is the same, and Sam's writer line is the one that differs. `hearth status` says when
/// each device was last heard from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_comparing_verify_codes_catch_a_relay_that_withholds_everything_from_one() {
    let mut p = Pair::new().await;
    p.sam_writes("SAM-SEEN").await;
    let dir = p.dir.path().to_owned();
    let verify = |who: &str| -> serde_json::Value {
        let run = hearth(&dir.join(who), &["verify", "--json"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let (sam, jordan) = (verify("sam"), verify("jordan"));
    assert_eq!(sam["code"], jordan["code"], "{sam}\n{jordan}");
    assert_eq!(sam["devices"], jordan["devices"]);
    let text = hearth(&p.path("jordan"), &["verify"]);
    assert!(
        text.stdout.contains(sam["code"].as_str().unwrap()),
        "{}",
        text.stdout
    );

    let status = hearth(&p.path("jordan"), &["status"]);
    assert!(
        status.stdout.contains(&format!(
            "Heard:     your partner's device {}:",
            p.sam.device_id().short()
        )),
        "{}",
        status.stdout
    );

    // From now on the relay hands Jordan nothing of Sam's, head lowered to match.
    let sam_id = p.sam.device_id();
    p.proxy.withhold(
        Scope::Device(p.jordan.device_id()),
        Times::ForGood,
        move |i| i.author == sam_id,
    );
    p.sam_writes("SAM-HIDDEN").await;
    let (sam, jordan) = (verify("sam"), verify("jordan"));
    assert_ne!(sam["code"], jordan["code"]);
    assert_eq!(sam["devices"], jordan["devices"], "the same devices");
    let line = |v: &serde_json::Value| {
        v["writers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["device"] == sam_id.to_string())
            .cloned()
            .unwrap()
    };
    assert_ne!(
        line(&sam)["code"],
        line(&jordan)["code"],
        "Sam's writing differs"
    );
    let jordans = p.jordan.device_id().to_string();
    let others = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["writers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["device"] == jordans)
            .map(|w| w["code"].clone())
            .collect()
    };
    assert_eq!(
        others(&sam),
        others(&jordan),
        "Jordan's writing is the same on both"
    );
}

/// Attack 2 through the proxy: Sam removes his laptop (a removal and a rotation), and the
/// relay hides both records from Jordan alone, still passing Sam's envelopes on. Sam's
/// note of the new chain, under the new epoch, is Jordan's witness: Jordan's device seals
/// nothing under the old key, which the laptop keeps, and says the relay is hiding device
/// changes; once the relay shows them, Jordan's writing goes out under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_the_relay_hides_from_the_partner_stops_it_sealing_under_the_old_key() {
    let mut p = Pair::new().await;
    let laptop = hearth_testkit::couple::invited(&p.path("laptop"), &mut p.sam, None).await;
    sync::sync_once(&mut p.jordan, T).await.unwrap();
    let known = p.jordan.sync_book().acl_records().unwrap().len();
    p.proxy
        .hide_acl_after(Scope::Device(p.jordan.device_id()), known);
    sync::remove_device(&mut p.sam, laptop.device_id(), T)
        .await
        .unwrap();
    assert_eq!(p.sam.sync_book().acl_state().unwrap().unwrap().epoch(), 1);

    let jordans = |p: &Pair| {
        let conn = rusqlite::Connection::open(p.path("relay.db")).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM envelopes WHERE device = ?1",
            [&p.jordan.device_id().as_bytes()[..]],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    let before = jordans(&p);
    appreciate(&mut p.jordan, "JORDAN-AFTER-THE-REMOVAL");
    let err = sync::sync_once(&mut p.jordan, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            sync::SyncError::AclHidden {
                epoch: 1,
                have_epoch: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(jordans(&p), before, "nothing sealed under the old key");
    let run = hearth(&p.path("jordan"), &["sync"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the relay is holding back changes to this space's devices"),
        "{}",
        run.stderr
    );

    p.proxy.clear();
    let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(
        p.jordan.sync_book().acl_state().unwrap().unwrap().epoch(),
        1
    );
    sync::sync_once(&mut p.sam, T).await.unwrap();
    assert!(appreciations(&p.sam).contains(&"JORDAN-AFTER-THE-REMOVAL".to_owned()));
}
