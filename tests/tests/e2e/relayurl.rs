//! Relay addresses as people type them, the check before a space is tied to one, and
//! moving a space to another relay: through the real `hearth` program, and through the
//! client library for the moves, with real relays on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use hearth_relay::LocalRelay;
use hearth_tests::Device;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

/// `ws://127.0.0.1:PORT/v1/sync` as `127.0.0.1:PORT`: what someone would type.
fn host_port(url: &str) -> String {
    url.trim_start_matches("ws://")
        .trim_end_matches("/v1/sync")
        .to_owned()
}

/// An address where nothing listens: a port bound and let go.
fn nothing_listens() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("ws://{addr}/v1/sync")
}

fn no_profile(dev: &Device) -> bool {
    !dev.home().join("profile.db").exists() && !dev.home().join("device.key").exists()
}

#[test]
fn relayurl_an_address_without_a_path_works_for_init_invite_join_and_sync() {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let typed = host_port(relay.url());
    let out = sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &typed,
    ]);
    assert!(
        out.contains(&format!("syncs through {}", relay.url())),
        "the resolved address is said: {out}"
    );
    assert_eq!(sam.json(["status"])["relay"], relay.url());
    sam.ok(["appreciate", "Thank you for the map"]);
    let code = sam.ok(["invite"]).trim().to_owned();

    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for the map")
    );
    jordan.ok(["appreciate", "Thank you for driving"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    assert!(
        sam.ok(["log"])
            .contains("Jordan appreciated: Thank you for driving")
    );

    // The same relay typed with its scheme and a trailing slash, for an offline space.
    let alex = Device::new(BIN);
    alex.ok(["init", "--name", "Alex", "--no-passphrase"]);
    let out = alex.ok(["invite", "--relay", &format!("ws://{typed}/")]);
    assert!(out.starts_with("hearth1."), "{out}");
    assert_eq!(alex.json(["status"])["relay"], relay.url());
    // And typed yet another way, the relay it is already on is no reason to refuse.
    alex.ok(["invite", "--relay", &typed]);
}

#[test]
fn relayurl_an_address_that_is_not_a_hearth_relay_or_is_down_creates_no_profile() {
    let dev = Device::new(BIN);
    let relay = LocalRelay::start(dev.scratch().join("relay.db")).unwrap();
    let init =
        |relay: &str| dev.run(["init", "--name", "Sam", "--no-passphrase", "--relay", relay]);

    // The relay's own server, at a path where no relay is: a 404.
    let typed = host_port(relay.url());
    let run = init(&format!("ws://{typed}/relay"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a hearth relay"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(run.stderr.contains("Nothing was created"), "{}", run.stderr);
    assert!(run.stderr.contains("without --relay"), "{}", run.stderr);
    assert!(no_profile(&dev));

    // A page that answers, but is no websocket.
    let run = init(&format!("ws://{typed}/healthz"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a hearth relay"),
        "{}",
        run.stderr
    );
    assert!(no_profile(&dev));

    // Addresses that cannot be a relay's say what to type instead, before any I/O.
    for (bad, says) in [
        ("https://relay.example.org", "use wss:// instead"),
        ("relay example.org", "one word"),
        ("wss://", "names no host"),
        ("relay.example.org:70000", "a port is a number"),
    ] {
        let run = init(bad);
        assert_eq!(run.code, Some(1), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{bad}: {}", run.stderr);
        assert!(no_profile(&dev), "{bad}");
    }

    // Nothing answers: exit 2, and still nothing made.
    let down = nothing_listens();
    let run = init(&down);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the relay"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Nothing was created"), "{}", run.stderr);
    assert!(no_profile(&dev));

    // An offline space is not tied to either, and stays offline.
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev.ok(["appreciate", "kept"]);
    let run = dev.run(["invite", "--relay", &format!("ws://{typed}/relay")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("stays on this device"),
        "{}",
        run.stderr
    );
    let run = dev.run(["invite", "--relay", &down]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let status = dev.json(["status"]);
    assert_eq!(status["relay"], serde_json::Value::Null);
    assert!(dev.ok(["log"]).contains("kept"));
    // The relay that works still does.
    dev.ok(["invite", "--relay", &typed]);
    assert_eq!(dev.json(["status"])["relay"], relay.url());
}

#[test]
fn relayurl_invite_on_a_space_tied_to_another_relay_points_to_relay_set() {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let other = LocalRelay::start(sam.scratch().join("other.db")).unwrap();
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        relay.url(),
    ]);
    let run = sam.run(["invite", "--relay", other.url()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("hearth relay set"), "{}", run.stderr);
    assert!(run.stderr.contains(relay.url()), "{}", run.stderr);
    assert_eq!(sam.json(["status"])["relay"], relay.url());
}

#[test]
fn relayurl_hearth_relay_set_moves_the_space_and_the_partner_follows_on_its_next_sync() {
    let sam = Device::new(BIN);
    let old = LocalRelay::start(sam.scratch().join("old.db")).unwrap();
    let new = LocalRelay::start(sam.scratch().join("new.db")).unwrap();
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        old.url(),
    ]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    jordan.ok(["appreciate", "Jordan, written offline"]);
    assert_eq!(sam.ok(["relay"]).trim(), old.url());

    let out = sam.ok(["relay", "set", &host_port(new.url())]);
    assert!(
        out.contains(&format!("now syncs through {}", new.url())),
        "{out}"
    );
    assert!(out.contains("Your partner's devices move there"), "{out}");
    assert_eq!(sam.ok(["relay", "show"]).trim(), new.url());
    assert_eq!(sam.json(["status"])["relay"], new.url());

    // Jordan's next sync reads the new address through the old relay, and says so once.
    assert_eq!(jordan.ok(["relay"]).trim(), old.url());
    let out = jordan.ok(["sync"]);
    assert!(
        out.contains(&format!("Your partner moved your space to {}", new.url())),
        "{out}"
    );
    assert_eq!(jordan.ok(["relay"]).trim(), new.url());
    let again = jordan.ok(["sync"]);
    assert!(!again.contains("moved your space"), "{again}");
    sam.ok(["sync"]);
    assert!(
        sam.ok(["log"])
            .contains("Jordan appreciated: Jordan, written offline")
    );

    // The relay it is on, typed another way: nothing to do.
    let out = sam.ok(["relay", "set", new.url()]);
    assert!(out.contains("already syncs through"), "{out}");
    // Nowhere to go: nothing changes, with the exit code of the cause.
    let run = sam.run([
        "relay",
        "set",
        &format!("ws://{}/nope", host_port(new.url())),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("still syncs through {}", new.url())),
        "{}",
        run.stderr
    );
    let run = sam.run(["relay", "set", &nothing_listens()]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(sam.ok(["relay"]).trim(), new.url());
    let run = sam.run(["relay", "set", "http://example.org"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

#[test]
fn relayurl_moving_to_a_relay_that_admits_spaces_by_token_spends_the_token_given_with_relay_set() {
    let sam = Device::new(BIN);
    let old = LocalRelay::start(sam.scratch().join("old.db")).unwrap();
    let new_db = sam.scratch().join("new.db");
    let new = hearth_testkit::TestRelay::start(hearth_relay::RelayConfig {
        db: new_db.clone(),
        admission: Some(hearth_relay::Admission::Token),
        ..hearth_relay::RelayConfig::default()
    });
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        old.url(),
    ]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);

    let run = sam.run(["relay", "set", &new.url]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("hearth relay set") && run.stderr.contains("--relay-token"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("still syncs through {}", old.url())),
        "{}",
        run.stderr
    );
    assert_eq!(sam.ok(["relay"]).trim(), old.url());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-relay-test-bin"))
        .args(["token", "create", "--db", new_db.to_str().unwrap()])
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_CONFIG")
        .env_remove("HEARTH_RELAY_ADMISSION")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    sam.ok(["relay", "set", &new.url, "--relay-token", &token]);
    assert_eq!(sam.ok(["relay"]).trim(), new.url);
    // The partner follows into the space that now exists there: no token of its own.
    let out = jordan.ok(["sync"]);
    assert!(out.contains("moved your space to"), "{out}");
    assert_eq!(jordan.ok(["relay"]).trim(), new.url);
}

// --- moving a space, through the client library ---

mod moving {
    use std::path::Path;
    use std::time::Duration;

    use hearth_client::sync::{self, SyncReport};
    use hearth_client::{Profile, RelayUrl, Whose};
    use hearth_testkit::TestRelay;
    use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};

    const T: Duration = Duration::from_secs(20);

    async fn sync(profile: &mut Profile) -> SyncReport {
        let report = sync::sync_once(profile, T).await.unwrap();
        honest(&report);
        report
    }

    /// None of the honest-relay checks fired, and nothing was refused.
    fn honest(report: &SyncReport) {
        assert_eq!(report.withheld, None, "{report:?}");
        assert_eq!(report.relay_behind, None, "{report:?}");
        assert!(
            report.rejected.is_empty(),
            "replays or refusals: {report:?}"
        );
        assert!(report.refused_changes.is_empty(), "{report:?}");
        assert!(report.not_countersigned.is_none(), "{report:?}");
        assert!(report.refused_snapshot.is_none(), "{report:?}");
        assert_eq!(report.waiting, 0, "{report:?}");
    }

    /// Envelopes and snapshot proposals the relay at `db` holds.
    fn stored(db: &Path) -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM envelopes) + (SELECT COUNT(*) FROM proposals)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn relay_of(profile: &Profile) -> String {
        profile.sync_book().relay().unwrap().unwrap()
    }

    /// Sam and Jordan on the old relay, each with something synced, then each with
    /// something written and not synced yet.
    async fn couple_with_unsynced_writes(dir: &Path, old: &TestRelay) -> (Profile, Profile) {
        let mut sam = new_profile(&dir.join("sam"), "Sam");
        sam.sync_book_mut().start_space(&old.url).unwrap();
        let mut jordan = invited(&dir.join("jordan"), &mut sam, Some("Jordan")).await;
        appreciate(&mut sam, "Sam, on the old relay");
        appreciate(&mut jordan, "Jordan, on the old relay");
        sync(&mut jordan).await;
        sync(&mut sam).await;
        sync(&mut jordan).await;
        appreciate(&mut jordan, "Jordan, offline when the space moves");
        appreciate(&mut sam, "Sam, just before the move");
        (sam, jordan)
    }

    fn converged(sam: &Profile, jordan: &Profile, expected: usize) -> Vec<String> {
        let all = appreciations(sam);
        assert_eq!(all.len(), expected, "{all:?}");
        assert_eq!(appreciations(jordan), all);
        assert_eq!(
            sam.load().unwrap().heads(),
            jordan.load().unwrap().heads(),
            "one history on both devices"
        );
        all
    }

    /// After the move both write, and it all goes through the new relay only.
    async fn both_write_through(
        sam: &mut Profile,
        jordan: &mut Profile,
        old_db: &Path,
        new_db: &Path,
    ) {
        let on_old = stored(old_db);
        let on_new = stored(new_db);
        appreciate(sam, "Sam, after the move");
        appreciate(jordan, "Jordan, after the move");
        sync(sam).await;
        sync(jordan).await;
        sync(sam).await;
        assert_eq!(stored(old_db), on_old, "nothing more went to the old relay");
        assert!(stored(new_db) >= on_new + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relayurl_moving_a_space_while_the_partner_is_offline_both_converge_on_the_new_relay() {
        let dir = tempfile::tempdir().unwrap();
        let (old_db, new_db) = (dir.path().join("old.db"), dir.path().join("new.db"));
        let old = TestRelay::at(&old_db);
        let new = TestRelay::at(&new_db);
        let (mut sam, mut jordan) = couple_with_unsynced_writes(dir.path(), &old).await;

        let to = RelayUrl::parse(&new.url).unwrap();
        let moved = sync::move_space(&mut sam, &to, None, T).await.unwrap();
        assert_eq!(moved.from.as_deref(), Some(old.url.as_str()));
        assert_eq!(moved.not_announced, None, "the old relay was up");
        honest(&moved.synced.unwrap());
        assert_eq!(relay_of(&sam), new.url);

        // Jordan comes back, syncs once through the old relay, reads where the space
        // went, follows it and brings his offline writing.
        let report = sync(&mut jordan).await;
        let followed = report.moved.expect("Jordan follows the space");
        assert_eq!(followed.to, new.url);
        assert_eq!(followed.from, old.url);
        assert_eq!(followed.by, sam.device_id());
        assert_eq!(followed.whose, Whose::Partners);
        assert_eq!(followed.first_sync, None);
        assert_eq!(relay_of(&jordan), new.url);
        assert!(
            appreciations(&jordan).contains(&"Sam, just before the move".to_owned()),
            "what Sam wrote before moving reached Jordan"
        );
        let report = sync(&mut sam).await;
        assert!(report.moved.is_none() && report.move_pending.is_none());
        converged(&sam, &jordan, 4);
        // Said once: the next sync moves nothing.
        assert!(sync(&mut jordan).await.moved.is_none());

        both_write_through(&mut sam, &mut jordan, &old_db, &new_db).await;
        let all = converged(&sam, &jordan, 6);

        // A device that joins on the new relay gets the whole history from it alone, each
        // person's writing vouched for by their own devices.
        let code = sync::invite(
            &mut jordan,
            hearth_proto::InviteRole::OwnDevice,
            Duration::from_secs(3600),
            T,
        )
        .await
        .unwrap();
        let joined = sync::join(
            &dir.path().join("phone"),
            &code,
            None,
            hearth_client::Protection::None,
            T,
        )
        .await
        .unwrap();
        honest(&joined.report);
        let mut phone = joined.profile;
        sync(&mut phone).await;
        assert_eq!(appreciations(&phone), all);
        assert_eq!(relay_of(&phone), new.url);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relayurl_a_space_moves_with_its_chain_to_a_relay_that_would_not_admit_those_joins_today()
     {
        // The new relay admits one device per space: the couple's joins, judged as they
        // were first accepted, come along all the same (as invites long expired would).
        let dir = tempfile::tempdir().unwrap();
        let old = TestRelay::at(&dir.path().join("old.db"));
        let new = TestRelay::start(hearth_relay::RelayConfig {
            db: dir.path().join("new.db"),
            limits: hearth_proto::Limits {
                max_devices_per_space: 1,
                ..hearth_proto::Limits::default()
            },
            ..hearth_relay::RelayConfig::default()
        });
        let (mut sam, mut jordan) = couple_with_unsynced_writes(dir.path(), &old).await;
        // Jordan moves it this time: not the device whose Genesis founded the space.
        let to = RelayUrl::parse(&new.url).unwrap();
        honest(
            &sync::move_space(&mut jordan, &to, None, T)
                .await
                .unwrap()
                .synced
                .unwrap(),
        );
        let report = sync(&mut sam).await;
        assert_eq!(report.moved.map(|m| m.whose), Some(Whose::Partners));
        sync(&mut jordan).await;
        converged(&sam, &jordan, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relayurl_a_partner_told_with_relay_set_after_the_old_relay_is_gone_converges_too() {
        let dir = tempfile::tempdir().unwrap();
        let (old_db, new_db) = (dir.path().join("old.db"), dir.path().join("new.db"));
        let old = TestRelay::at(&old_db);
        let new = TestRelay::at(&new_db);
        let (mut sam, mut jordan) = couple_with_unsynced_writes(dir.path(), &old).await;
        let to = RelayUrl::parse(&new.url).unwrap();
        honest(
            &sync::move_space(&mut sam, &to, None, T)
                .await
                .unwrap()
                .synced
                .unwrap(),
        );

        // The old relay is gone before Jordan hears of the move.
        old.stop().await.unwrap();
        let err = sync::sync_once(&mut jordan, T).await.unwrap_err();
        assert!(matches!(err, sync::SyncError::Unreachable { .. }), "{err}");
        // Sam tells Jordan where the space is now.
        let typed = new
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/v1/sync");
        let to = RelayUrl::parse(typed).unwrap();
        let moved = sync::move_space(&mut jordan, &to, None, T).await.unwrap();
        assert!(moved.not_announced.is_some(), "the old relay is gone");
        honest(&moved.synced.unwrap());
        assert_eq!(relay_of(&jordan), new.url);

        let report = sync(&mut sam).await;
        assert!(report.moved.is_none() && report.move_pending.is_none());
        converged(&sam, &jordan, 4);
        both_write_through(&mut sam, &mut jordan, &old_db, &new_db).await;
        converged(&sam, &jordan, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relayurl_moving_a_space_the_partner_already_moved_elsewhere_does_not_split_the_couple()
    {
        let dir = tempfile::tempdir().unwrap();
        let old = TestRelay::at(&dir.path().join("old.db"));
        let theirs = TestRelay::at(&dir.path().join("theirs.db"));
        let mine = TestRelay::at(&dir.path().join("mine.db"));
        let (mut sam, mut jordan) = couple_with_unsynced_writes(dir.path(), &old).await;
        let to = RelayUrl::parse(&theirs.url).unwrap();
        honest(
            &sync::move_space(&mut sam, &to, None, T)
                .await
                .unwrap()
                .synced
                .unwrap(),
        );

        // Jordan has not synced since, and moves the space somewhere else.
        let elsewhere = RelayUrl::parse(&mine.url).unwrap();
        let err = sync::move_space(&mut jordan, &elsewhere, None, T)
            .await
            .unwrap_err();
        let sync::SyncError::MovedElsewhere {
            to: went, whose, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(
            (went.as_str(), *whose),
            (theirs.url.as_str(), Whose::Partners)
        );
        assert!(err.to_string().contains("hearth sync"), "{err}");
        assert_eq!(relay_of(&jordan), old.url, "nothing moved");
        // Jordan's next sync takes him where Sam is.
        assert!(sync(&mut jordan).await.moved.is_some());
        assert_eq!(relay_of(&jordan), theirs.url);
        sync(&mut sam).await;
        converged(&sam, &jordan, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relayurl_a_partner_pointing_the_space_where_no_relay_answers_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let old = TestRelay::at(&dir.path().join("old.db"));
        let (mut sam, mut jordan) = couple_with_unsynced_writes(dir.path(), &old).await;
        // Jordan's modified client writes, in his own container, an address where nothing
        // answers (as `hearth relay set` would, without checking it first).
        let nowhere = super::nothing_listens();
        let me = *jordan.device_id().as_bytes();
        jordan
            .write(|doc| doc.note_relay(&me, &nowhere, hearth_doc::Millis::now()))
            .unwrap();
        let report = sync::sync_once(&mut jordan, T).await.unwrap();
        assert!(report.move_pending.is_some(), "{report:?}");
        assert_eq!(
            relay_of(&jordan),
            old.url,
            "Jordan's own device cannot move either"
        );

        let report = sync::sync_once(&mut sam, T).await.unwrap();
        let pending = report.move_pending.expect("Sam is told, and stays");
        assert_eq!(pending.to, nowhere);
        assert_eq!(pending.whose, Whose::Partners);
        assert!(
            pending.reason.contains("cannot reach"),
            "{}",
            pending.reason
        );
        assert_eq!(relay_of(&sam), old.url);
        assert!(
            appreciations(&sam).contains(&"Jordan, offline when the space moves".to_owned()),
            "and keeps syncing through the relay it is on"
        );
    }
}
