//! The handshake, as people meet it: a computer whose clock is off is told so (not that it
//! was removed), and a relay is known by its key. Real relays on 127.0.0.1 with real SQLite
//! files (their clock shifted where a test needs it), the real `hearth` and `hearth-relay`
//! programs and the client library; the proxy of `hostile_relay` plays an address that now
//! leads to another relay, and an impostor that replays a recorded identity proof.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hearth_client::sync::{self, JoinError, SyncError};
use hearth_client::{Profile, Protection};
use hearth_proto::{Fingerprint, InviteRole};
use hearth_relay::{RelayClock, RelayConfig};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, new_profile};
use hearth_tests::Device;

use crate::hostile_relay::{Direction, HostileRelay};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const RELAY_BIN: &str = env!("CARGO_BIN_EXE_hearth-relay-test-bin");
/// The bound on every network step and every wait: a bug fails the test, never hangs it.
const T: Duration = Duration::from_secs(20);
const TEN_MINUTES_MS: i64 = 10 * 60 * 1000;

/// A relay on a real database whose clock the test moves.
fn relay_with_clock(db: &Path, clock: &RelayClock) -> TestRelay {
    TestRelay::start(RelayConfig {
        db: db.to_owned(),
        clock: clock.clone(),
        ..RelayConfig::default()
    })
}

/// The fingerprint `hearth-relay fingerprint --db DB` prints.
fn fingerprint_of_db(db: &Path) -> Fingerprint {
    let out = Command::new(RELAY_BIN)
        .arg("fingerprint")
        .arg("--db")
        .arg(db)
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().parse().unwrap()
}

/// How many spaces a relay's database holds.
fn spaces_in(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM spaces", [], |r| r.get(0))
        .unwrap()
}

fn pending(profile: &Profile) -> usize {
    let mut doc = profile.load().unwrap();
    profile.sync_book().pending(&mut doc).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_named_with_the_relays_time_never_as_a_removal_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let clock = RelayClock::default();
    let relay = relay_with_clock(&dir.path().join("relay.db"), &clock);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    appreciate(&mut sam, "written while the clocks disagree");

    // The relay's clock ten minutes behind: this computer is ten minutes ahead.
    clock.set_offset(-TEN_MINUTES_MS);
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    let SyncError::ClockSkew(skew) = &err else {
        panic!("expected the clock to be named, got {err}");
    };
    assert!(skew.ahead());
    assert_eq!(skew.distance(), "10 minutes");
    let message = err.to_string();
    assert!(
        message.starts_with("this computer's clock is 10 minutes ahead of the relay's"),
        "{message}"
    );
    for removal in ["removed", "new invite", "hearth join"] {
        assert!(!message.contains(removal), "{message}");
    }
    assert_eq!(pending(&sam), 1, "the entry waits to be sent");

    // And behind, by the relay's clock running ahead.
    clock.set_offset(3 * TEN_MINUTES_MS);
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("30 minutes behind the relay's (the relay says it is "),
        "{err}"
    );

    // Once the clocks agree, the entry goes out as if nothing happened.
    clock.set_offset(0);
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(pending(&sam), 0);
    assert_eq!(appreciations(&sam), ["written while the clocks disagree"]);
}

#[test]
fn the_hearth_program_says_to_set_the_clock_exits_1_and_keeps_the_entry() {
    let sam = Device::new(BIN);
    let clock = RelayClock::default();
    let relay = relay_with_clock(&sam.scratch().join("relay.db"), &clock);
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    sam.ok(["appreciate", "thank you for setting the clock"]);

    clock.set_offset(TEN_MINUTES_MS);
    let run = sam.run(["sync"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "this computer's clock is 10 minutes behind the relay's (the relay says it is "
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("timedatectl set-ntp true"),
        "{}",
        run.stderr
    );
    for removal in ["removed", "new invite", "hearth join"] {
        assert!(!run.stderr.contains(removal), "{}", run.stderr);
    }
    assert!(sam.ok(["log"]).contains("thank you for setting the clock"));
    let status = sam.json(["status"]);
    assert!(
        status["relay_problem"]
            .as_str()
            .is_some_and(|p| p.contains("clock is 10 minutes behind")),
        "{status}"
    );
    assert_eq!(status["pending_changes"], 1);

    clock.set_offset(0);
    sam.ok(["sync"]);
    assert_eq!(sam.json(["status"])["pending_changes"], 0);
}

/// Lines of a child's output, read on a thread of their own, so a wait is bounded.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects lines from `rx` until one contains `until` (returned last), failing the test
/// after [`T`].
fn read_until(rx: &mpsc::Receiver<String>, until: &str) -> Vec<String> {
    let deadline = Instant::now() + T;
    let mut said = Vec::new();
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("no line with {until:?} in time; got {said:?}"));
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {until:?} in time; got {said:?}"));
        let done = line.contains(until);
        said.push(line);
        if done {
            return said;
        }
    }
}

/// Kills a child when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_says_once_that_the_clock_is_off_waits_and_goes_on_when_the_clocks_agree() {
    let sam = Device::new(BIN);
    let clock = RelayClock::default();
    let relay = relay_with_clock(&sam.scratch().join("relay.db"), &clock);
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);

    clock.set_offset(-TEN_MINUTES_MS);
    let mut watcher = sam.command(["watch"]).spawn().unwrap();
    let stdout = lines_of(watcher.stdout.take().unwrap());
    let stderr = lines_of(watcher.stderr.take().unwrap());
    let _watcher = Killed(watcher);
    let first = read_until(&stderr, "clock is 10 minutes ahead of the relay's");
    assert!(first.iter().all(|l| !l.contains("removed")), "{first:?}");
    assert!(
        first.last().unwrap().contains("timedatectl set-ntp true"),
        "{first:?}"
    );

    // It did not stop: once the clocks agree, it is let in and says so.
    clock.set_offset(0);
    let after = read_until(&stderr, "The clocks agree again");
    let told: usize = first
        .iter()
        .chain(&after)
        .filter(|l| l.contains("clock is"))
        .count();
    assert_eq!(told, 1, "said once: {first:?} {after:?}");
    read_until(&stderr, "Connected; watching");

    jordan.ok(["appreciate", "LIVE: the clocks agree"]);
    jordan.ok(["sync"]);
    let shown = read_until(&stdout, "LIVE: the clocks agree");
    assert!(
        shown.last().unwrap().contains("Jordan appreciated:"),
        "{shown:?}"
    );
}

#[test]
fn a_relay_with_another_key_at_the_address_gets_no_login_and_trust_moves_the_pin_only_to_its_key() {
    let sam = Device::new(BIN);
    let first_db = sam.scratch().join("first.db");
    let rebuilt_db = sam.scratch().join("rebuilt.db");
    let first = TestRelay::at(&first_db);
    let address = HostileRelay::start(&first.url);
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &address.url,
    ]);
    sam.ok(["appreciate", "kept through the rebuild"]);
    sam.ok(["sync"]);
    let pinned = fingerprint_of_db(&first_db);
    let status = sam.json(["status"]);
    assert_eq!(status["relay_fingerprint"], pinned.to_string(), "{status}");
    assert!(sam.ok(["status"]).contains(&format!("Relay key: {pinned}")));

    // The operator rebuilds the relay with a new database: the address now leads to it.
    let rebuilt = TestRelay::at(&rebuilt_db);
    address.repoint(&rebuilt.url);
    let logins = address.seen(Direction::ToRelay, "Auth");
    let identifies = address.seen(Direction::ToRelay, "Identify");
    let run = sam.run(["sync"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    // Read once the rebuilt relay answered, so its database surely exists.
    let presented = fingerprint_of_db(&rebuilt_db);
    assert_ne!(presented, pinned);
    for part in [
        format!("fingerprint {presented}, but this device pinned {pinned}"),
        "rebuilt".to_owned(),
        "another server".to_owned(),
        "`hearth-relay fingerprint`".to_owned(),
        format!("`hearth relay trust {presented}`"),
    ] {
        assert!(run.stderr.contains(&part), "{part:?} in {}", run.stderr);
    }
    // Only the handshake reached it: no login, nothing stored.
    assert_eq!(address.seen(Direction::ToRelay, "Auth"), logins);
    assert_eq!(address.seen(Direction::ToRelay, "Identify"), identifies + 1);
    assert_eq!(spaces_in(&rebuilt_db), 0);
    assert!(sam.ok(["log"]).contains("kept through the rebuild"));
    let status = sam.json(["status"]);
    assert_eq!(status["relay_fingerprint"], pinned.to_string());
    assert!(
        status["relay_problem"]
            .as_str()
            .is_some_and(|p| p.contains("is not the one this device knows")),
        "{status}"
    );

    // A fingerprint that is not the relay's is refused, and nothing changes.
    let run = sam.run(["relay", "trust", &pinned.to_string()]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "presents fingerprint {presented}, not the {pinned} you gave"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    let run = sam.run(["relay", "trust", "not-a-fingerprint"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("32 hex digits"), "{}", run.stderr);
    assert_eq!(
        sam.json(["status"])["relay_fingerprint"],
        pinned.to_string()
    );
    assert_eq!(address.seen(Direction::ToRelay, "Auth"), logins);

    // The operator's fingerprint, as they would read it out (any case, any grouping).
    let spoken = presented.to_string().to_uppercase().replace('-', " ");
    let out = sam.ok(["relay", "trust", &spoken]);
    assert!(
        out.contains(&format!("new key ({presented}; it was {pinned})")),
        "{out}"
    );
    assert_eq!(
        sam.json(["status"])["relay_fingerprint"],
        presented.to_string()
    );
    // The rebuilt relay lost the space; this device still has only its Genesis, so the
    // sync puts it there again, with the entry.
    sam.ok(["sync"]);
    assert_eq!(spaces_in(&rebuilt_db), 1);
    assert!(address.seen(Direction::ToRelay, "Auth") > logins);
    let again = sam.ok(["relay", "trust", &presented.to_string()]);
    assert!(again.contains("nothing changed"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_answering_on_the_same_port_with_a_fresh_database_is_refused_before_login() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = TestRelay::at(&db);
    let addr = relay.addr();
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    appreciate(&mut sam, "before the other relay");
    sync::sync_once(&mut sam, T).await.unwrap();
    let pinned = sam.sync_book().relay_fingerprint().unwrap().unwrap();
    assert_eq!(pinned, fingerprint_of_db(&db));
    relay.stop().await.unwrap();

    let other_db = dir.path().join("other.db");
    let other = TestRelay::start_at(
        addr,
        RelayConfig {
            db: other_db.clone(),
            ..RelayConfig::default()
        },
    );
    appreciate(&mut sam, "not for the other relay");
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    let SyncError::RelayKeyChanged {
        pinned: was,
        presented,
        ..
    } = err
    else {
        panic!("expected the relay key to be questioned, got {err}");
    };
    assert_eq!(was, pinned);
    assert_eq!(presented, fingerprint_of_db(&other_db));
    assert_eq!(spaces_in(&other_db), 0, "nothing reached the other relay");
    assert_eq!(pending(&sam), 1);
    assert_eq!(sam.sync_book().relay_fingerprint().unwrap(), Some(pinned));
    other.stop().await.unwrap();

    // The first relay back on its own database: the same key, no alarm, and the entry goes.
    let back = TestRelay::start_at(
        addr,
        RelayConfig {
            db: db.clone(),
            ..RelayConfig::default()
        },
    );
    assert_eq!(back.url, format!("ws://{addr}/v1/sync"));
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(report.pushed, 1);
}

/// `hearth-relay` as a child process on `db`, its log read for the `relay started` line.
struct RelayProcess {
    child: Killed,
    addr: String,
    logged_fingerprint: String,
    /// Its output, still read: a relay whose log pipe is closed drops the connections it
    /// logs about.
    _output: [mpsc::Receiver<String>; 2],
}

fn start_relay_process(db: &Path, listen: &str) -> RelayProcess {
    let mut child = Command::new(RELAY_BIN)
        .args(["--listen", listen, "--db"])
        .arg(db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("HEARTH_RELAY_LISTEN")
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    let child = Killed(child);
    let started = read_until(&stderr, "relay started");
    let line = started.last().unwrap();
    let logged_fingerprint = line
        .split_once("fingerprint=")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("no fingerprint in {line:?}"));
    let listening = read_until(&stdout, "listening on ");
    let addr = listening
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    RelayProcess {
        child,
        addr,
        logged_fingerprint,
        _output: [stdout, stderr],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_program_logs_and_prints_one_fingerprint_that_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let missing = Command::new(RELAY_BIN)
        .arg("fingerprint")
        .arg("--db")
        .arg(dir.path().join("no-such.db"))
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("there is no relay database at"), "{said}");
    assert!(
        !dir.path().join("no-such.db").exists(),
        "nothing was created"
    );

    let relay = start_relay_process(&db, "127.0.0.1:0");
    let fingerprint = fingerprint_of_db(&db);
    assert_eq!(relay.logged_fingerprint, fingerprint.to_string());
    let url = format!("ws://{}/v1/sync", relay.addr);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(
        sam.sync_book().relay_fingerprint().unwrap(),
        Some(fingerprint)
    );

    let addr = relay.addr.clone();
    drop(relay);
    let again = start_relay_process(&db, &addr);
    assert_eq!(again.logged_fingerprint, fingerprint.to_string());
    appreciate(&mut sam, "after the restart");
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(report.pushed, 1, "no false alarm after a restart");
    drop(again.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_identity_proof_is_refused_and_no_login_follows() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::at(&dir.path().join("relay.db"));
    let impostor = HostileRelay::start(&relay.url);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&impostor.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();

    // It answers with the challenge and proof it recorded from that connection.
    impostor.replay_identity();
    let logins = impostor.seen(Direction::ToRelay, "Auth");
    appreciate(&mut sam, "not for an impostor");
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    let SyncError::RelayKeyUnproven { why, .. } = &err else {
        panic!("expected the proof to be refused, got {err}");
    };
    assert!(why.contains("does not verify"), "{why}");
    assert!(err.to_string().contains("Nothing was sent to it"), "{err}");
    assert!(impostor.tally().replayed_identities >= 1);
    assert_eq!(impostor.seen(Direction::ToRelay, "Auth"), logins);
    assert_eq!(pending(&sam), 1);

    impostor.clear();
    assert_eq!(sync::sync_once(&mut sam, T).await.unwrap().pushed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_checks_the_relay_against_the_fingerprint_in_the_invite_from_the_first_contact() {
    let dir = tempfile::tempdir().unwrap();
    let first_db = dir.path().join("relay.db");
    let relay = TestRelay::at(&first_db);
    let address = HostileRelay::start(&relay.url);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&address.url).unwrap();
    let code = sync::invite(&mut sam, InviteRole::Partner, Duration::from_secs(3600), T)
        .await
        .unwrap();
    let pinned = sam.sync_book().relay_fingerprint().unwrap().unwrap();
    assert_eq!(code.relay_key(), Some(pinned));

    // The address leads elsewhere when the partner joins: the invite key is never shown.
    let elsewhere = TestRelay::at(&dir.path().join("elsewhere.db"));
    address.repoint(&elsewhere.url);
    let logins = address.seen(Direction::ToRelay, "Auth");
    let jordan_home = dir.path().join("jordan");
    let text = code.to_string();
    let code: hearth_crypto::InviteCode = text.parse().unwrap();
    let err = sync::join(&jordan_home, &code, Some("Jordan"), Protection::None, T)
        .await
        .unwrap_err();
    let JoinError::Sync(SyncError::RelayKeyNotInvited {
        invited, presented, ..
    }) = &err
    else {
        panic!("expected the relay to be refused, got {err}");
    };
    assert_eq!(*invited, pinned);
    assert_ne!(*presented, pinned);
    assert!(
        err.to_string().contains("nothing was created here"),
        "{err}"
    );
    assert_eq!(address.seen(Direction::ToRelay, "Auth"), logins);
    assert!(!Profile::exists(&jordan_home));

    // Back to the right relay: the join goes through, and the joiner pinned its key.
    address.repoint(&relay.url);
    let joined = sync::join(&jordan_home, &code, Some("Jordan"), Protection::None, T)
        .await
        .unwrap();
    assert_eq!(
        joined.profile.sync_book().relay_fingerprint().unwrap(),
        Some(pinned)
    );
}

/// A relay from before `Identify`, as far as the handshake goes: it answers `Hello` with a
/// `Challenge` and anything else with `BadFrame`, then closes; it reports the frames it got.
fn older_relay() -> (String, mpsc::Receiver<Vec<u8>>) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use hearth_proto::{Limits, RejectCode, RelayFrame, encode_relay};
    use tokio_tungstenite::tungstenite::Message;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("ws://{}/v1/sync", listener.local_addr().unwrap());
    let (got, frames) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    continue;
                };
                let mut greeted = false;
                while let Some(Ok(Message::Binary(bytes))) = ws.next().await {
                    let _ = got.send(bytes.to_vec());
                    let answer = if greeted {
                        RelayFrame::Reject {
                            code: RejectCode::BadFrame,
                            message: "after Challenge the next frame must be Auth".into(),
                        }
                    } else {
                        greeted = true;
                        RelayFrame::Challenge {
                            relay_id: [7; 16],
                            nonce: [8; 32],
                            limits: Limits::default(),
                            versions: vec![hearth_proto::PROTOCOL_VERSION],
                        }
                    };
                    let bytes = encode_relay(&answer, 1 << 20).unwrap();
                    if ws.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
            }
        });
    });
    (url, frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_proves_no_key_is_refused_saying_so_and_gets_no_login() {
    let dir = tempfile::tempdir().unwrap();
    let (url, frames) = older_relay();
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&url).unwrap();
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    assert!(
        matches!(err, SyncError::RelayUnidentified { .. }),
        "expected an unidentified relay, got {err}"
    );
    let message = err.to_string();
    assert!(message.contains("older than this hearth"), "{message}");
    assert!(
        message.contains("ask the relay's operator to upgrade it"),
        "{message}"
    );
    let kinds: Vec<u8> = frames.try_iter().map(|f| f[0]).collect();
    assert_eq!(kinds, [0, 13], "Hello and Identify, and no Auth");
    assert_eq!(
        sam.sync_book().relay_fingerprint().unwrap(),
        None,
        "nothing pinned"
    );
}
