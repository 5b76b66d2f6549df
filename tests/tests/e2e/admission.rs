//! Who may create spaces on a relay, and what a stranger's flood costs it: a real relay on
//! a real SQLite file (in-process, or the real `hearth-relay` binary), the real `hearth`
//! program and client library, real keys. Token mode refuses strangers and takes each token
//! as often as it allows; a flood from one address is rate limited while a couple on the
//! same address keeps syncing, and leaves a short log; a space nobody joined expires, and
//! its only device puts it back with everything, while a relay that says a joined space
//! expired is not believed.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hearth_client::sync::{self, SyncError};
use hearth_crypto::{DeviceKeys, EpochKey, sign_login, sign_record};
use hearth_proto::{
    AclBody, ClientFrame, PROTOCOL_VERSION, RejectCode, RelayFrame, SpaceId, decode_relay,
    encode_client,
};
use hearth_relay::{Admission, PerAddress, RelayConfig};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};
use hearth_tests::{Device, files_containing};
use rusqlite::Connection;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const RELAY_BIN: &str = env!("CARGO_BIN_EXE_hearth-relay-test-bin");
/// The bound on every wait: a bug fails the test instead of hanging it.
const T: Duration = Duration::from_secs(20);

/// `hearth-relay ARGS` to completion: (exit code, stdout, stderr).
fn relay_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(RELAY_BIN)
        .args(args)
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_CONFIG")
        .env_remove("HEARTH_RELAY_ADMISSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A token minted with `hearth-relay token create --db DB EXTRA…`.
fn mint(db: &Path, extra: &[&str]) -> String {
    let db = db.to_str().unwrap();
    let mut args = vec!["token", "create", "--db", db];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = relay_cli(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let token = stdout.trim().to_owned();
    assert!(hearth_proto::is_creation_token(&token), "{stdout:?}");
    token
}

fn spaces_on(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM spaces", [], |r| r.get(0))
        .unwrap()
}

/// A relay in `admission` mode with its database at `db`, and otherwise as `with` says.
fn relay(db: &Path, admission: Admission, with: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    relay_on(db, admission, with, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// [`relay`] on `addr` (where a relay on the same database ran before).
fn relay_on(
    db: &Path,
    admission: Admission,
    with: impl FnOnce(&mut RelayConfig),
    addr: SocketAddr,
) -> TestRelay {
    let mut config = RelayConfig {
        db: db.to_owned(),
        admission: Some(admission),
        ..RelayConfig::default()
    };
    with(&mut config);
    TestRelay::start_at(addr, config)
}

fn init(device: &Device, name: &str, url: &str, token: Option<&str>) -> hearth_tests::Run {
    let mut args = vec!["init", "--name", name, "--no-passphrase", "--relay", url];
    if let Some(token) = token {
        args.extend(["--relay-token", token]);
    }
    device.run(args)
}

#[test]
fn a_token_relay_refuses_a_strangers_space_says_what_to_do_and_keeps_the_profile() {
    let eve = Device::new(BIN);
    let db = eve.scratch().join("relay.db");
    let relay = relay(&db, Admission::Token, |_| {});
    let run = init(&eve, "Eve", &relay.url, None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("this relay creates spaces only with a creation token from its operator"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hearth sync --relay-token TOKEN"),
        "{}",
        run.stderr
    );
    assert_eq!(spaces_on(&db), 0, "nothing created");
    // The profile is there, with what Eve writes, for when she has a token.
    eve.ok(["appreciate", "kept while waiting for a token"]);
    let token = mint(&db, &[]);
    let out = eve.ok(["sync", "--relay-token", &token]);
    assert!(
        out.contains("Synced") || out.contains("Up to date"),
        "{out}"
    );
    assert_eq!(spaces_on(&db), 1);
}

#[test]
fn a_token_creates_one_space_is_refused_once_spent_and_never_rests_anywhere_in_plaintext() {
    let sam = Device::new(BIN);
    let db = sam.scratch().join("relay.db");
    let relay = relay(&db, Admission::Token, |_| {});
    // Minted while the relay runs, on its database.
    let token = mint(&db, &[]);
    let run = init(&sam, "Sam", &relay.url, Some(&token));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(spaces_on(&db), 1);
    sam.ok(["appreciate", "Thank you for the tea"]);

    // The same token again, for another space: spent.
    let alex = Device::new(BIN);
    let run = init(&alex, "Alex", &relay.url, Some(&token));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("used up"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ask the relay's operator for a new one"),
        "{}",
        run.stderr
    );
    assert_eq!(spaces_on(&db), 1);

    // The partner joins with the invite code alone.
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for the tea")
    );

    // A token for a space that is on the relay already is not spent.
    let spare = mint(&db, &[]);
    let run = sam.run(["sync", "--relay-token", &spare]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("the creation token was not used"),
        "{}",
        run.stderr
    );
    // From the environment this time, out of the process list.
    let mut casey = Device::new(BIN);
    casey.env("HEARTH_RELAY_TOKEN", &spare);
    let run = init(&casey, "Casey", &relay.url, None);
    assert_eq!(run.code, Some(0), "the spare still works: {}", run.stderr);
    assert_eq!(spaces_on(&db), 2);

    // Neither token rests in a profile or in the relay's files.
    for secret in [&token, &spare] {
        for dir in [
            sam.home(),
            jordan.home(),
            casey.home(),
            db.parent().unwrap().to_owned(),
        ] {
            assert!(
                files_containing(&dir, secret.as_bytes()).is_empty(),
                "{secret} in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn an_expired_or_revoked_token_is_refused_with_its_own_reason() {
    let eve = Device::new(BIN);
    let db = eve.scratch().join("relay.db");
    let relay = relay(&db, Admission::Token, |_| {});
    // Expired by the time any client can offer it.
    let expired = mint(&db, &["--expires", "1ms"]);
    let run = init(&eve, "Eve", &relay.url, Some(&expired));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("this creation token has expired"),
        "{}",
        run.stderr
    );

    let revoked = mint(&db, &[]);
    let (_, list, _) = relay_cli(&["token", "list", "--db", db.to_str().unwrap()]);
    let id = list
        .lines()
        .nth(2)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (code, _, stderr) = relay_cli(&["token", "revoke", &id, "--db", db.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let run = eve.run(["sync", "--relay-token", &revoked]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the relay does not know this creation token"),
        "{}",
        run.stderr
    );
    // Not even shaped like a token: refused before anything is sent.
    let run = eve.run(["sync", "--relay-token", "hrt_typo"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("starts with hrt_"), "{}", run.stderr);
    assert_eq!(spaces_on(&db), 0);
}

#[test]
fn token_create_list_and_revoke_through_the_relay_binary_never_show_a_token_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let db_arg = db.to_str().unwrap();
    // No database there yet: a mistyped path is said so, not created.
    let (code, _, stderr) = relay_cli(&["token", "list", "--db", db_arg]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("there is no relay database at"), "{stderr}");
    assert!(!db.exists());

    let relay = relay(&db, Admission::Token, |_| {});
    let one = mint(&db, &[]);
    // Found through the relay's own config file, as the relay finds its database.
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, format!("db = {db_arg:?}\nadmission = \"token\"\n")).unwrap();
    let (code, three, stderr) = relay_cli(&[
        "--config",
        config.to_str().unwrap(),
        "token",
        "create",
        "--uses",
        "3",
        "--expires",
        "30d",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Token 2 may create 3 spaces until"),
        "{stderr}"
    );
    assert!(!stderr.contains("open mode"), "{stderr}");
    let three = three.trim().to_owned();

    let (code, list, _) = relay_cli(&["token", "list", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!((rows[0][0], rows[0][1], rows[0][3]), ("1", "1", "usable"));
    assert_eq!((rows[1][0], rows[1][1], rows[1][3]), ("2", "3", "usable"));
    assert!(!list.contains(&one) && !list.contains(&three), "{list}");

    let (code, _, stderr) = relay_cli(&["token", "revoke", "1", "--db", db_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = relay_cli(&["token", "revoke", "1", "--db", db_arg]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("there is no token 1"), "{stderr}");

    // Spent once, the list says so.
    let sam = Device::new(BIN);
    let run = init(&sam, "Sam", &relay.url, Some(&three));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (_, list, _) = relay_cli(&["token", "list", "--db", db_arg]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!((rows[0][0], rows[0][1]), ("2", "2"));
}

/// A stranger's client speaking the protocol by hand.
struct Raw {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    relay_id: [u8; 16],
    nonce: [u8; 32],
}

const MAX_FRAME: usize = 1024 * 1024;

impl Raw {
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
        let Some(RelayFrame::Challenge {
            relay_id, nonce, ..
        }) = raw.next().await
        else {
            panic!("no Challenge");
        };
        raw.relay_id = relay_id;
        raw.nonce = nonce;
        raw
    }

    async fn send(&mut self, frame: &ClientFrame) {
        let bytes = encode_client(frame, MAX_FRAME).unwrap();
        let _ = self.ws.send(Message::Binary(bytes.into())).await;
    }

    async fn next(&mut self) -> Option<RelayFrame> {
        loop {
            match tokio::time::timeout(T, self.ws.next()).await.unwrap() {
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(decode_relay(&bytes, MAX_FRAME).unwrap());
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Logs in as `keys` for `space`, signing with `signer` (a stranger's forgery when
    /// they differ).
    async fn auth(
        &mut self,
        keys: &DeviceKeys,
        signer: &DeviceKeys,
        space: SpaceId,
    ) -> Option<RelayFrame> {
        let time_ms = hearth_testkit::now_ms();
        let (_, signature) =
            sign_login(signer, &self.relay_id, &self.nonce, time_ms, &space, false);
        self.send(&ClientFrame::Auth {
            device: keys.device_id(),
            space,
            time_ms,
            signature,
            as_invite: false,
        })
        .await;
        self.next().await
    }
}

/// What one stranger's attempt to create a space came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Created,
    Refused(RejectCode),
}

/// A stranger with a fresh key creates a fresh space on `url`, with `token` if given.
async fn create_as_stranger(url: &str, token: Option<String>) -> Attempt {
    let keys = DeviceKeys::generate().unwrap();
    let space = SpaceId::from_bytes(hearth_crypto::random_bytes::<16>().unwrap());
    let mut raw = Raw::greeted(url).await;
    match raw.auth(&keys, &keys, space).await {
        Some(RelayFrame::AclChanged { records }) if records.is_empty() => {}
        other => panic!("expected to be let in to create, got {other:?}"),
    }
    let genesis = sign_record(
        [0; 32],
        AclBody::Genesis {
            space,
            device: keys.device_id(),
            recipient: keys.recipient_bytes().unwrap(),
            epoch: 0,
            key_check: EpochKey::generate().unwrap().check(&space, 0),
        },
        &[&keys],
    )
    .unwrap();
    raw.send(&ClientFrame::CreateSpace {
        genesis: genesis.encode(),
        token,
    })
    .await;
    match raw.next().await {
        Some(RelayFrame::AclChanged { .. }) => Attempt::Created,
        Some(RelayFrame::Reject { code, .. }) => Attempt::Refused(code),
        other => panic!("expected an answer to CreateSpace, got {other:?}"),
    }
}

/// A stranger's login for `space` with a forged signature.
async fn fail_to_log_in(url: &str, space: SpaceId) -> RejectCode {
    let claimed = DeviceKeys::generate().unwrap();
    let forger = DeviceKeys::generate().unwrap();
    let mut raw = Raw::greeted(url).await;
    match raw.auth(&claimed, &forger, space).await {
        Some(RelayFrame::Reject { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_one_address_is_rate_limited_while_a_couple_on_it_keeps_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = relay(&db, Admission::Open, |c| {
        c.per_address = PerAddress {
            creations_per_hour: 5,
            failed_logins_per_minute: 10,
        };
    });
    // Paired beforehand, from the same address the flood comes from (127.0.0.1): one
    // creation of the five.
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
    let space = SpaceId::from_bytes(*sam.space().unwrap().as_bytes());

    let url = relay.url.clone();
    let flood = tokio::spawn(async move {
        let mut creations = Vec::new();
        let mut logins = Vec::new();
        for round in 0..60 {
            logins.push(fail_to_log_in(&url, space).await);
            // The failed logins' budget runs out first (its first refill is 6 s away).
            if round >= 12 {
                creations.push(create_as_stranger(&url, None).await);
            }
        }
        (creations, logins)
    });
    // The couple writes and syncs all through the flood.
    let mut written = Vec::new();
    for i in 0..6 {
        let text = format!("during the flood {i}");
        appreciate(&mut sam, &text);
        written.push(text);
        sync::sync_once(&mut sam, T).await.unwrap();
        sync::sync_once(&mut jordan, T).await.unwrap();
    }
    let (creations, logins) = tokio::time::timeout(T * 6, flood).await.unwrap().unwrap();
    let created = creations.iter().filter(|a| **a == Attempt::Created).count();
    assert_eq!(created, 4, "the budget, less the couple's own space");
    assert!(
        creations[4..]
            .iter()
            .all(|a| *a == Attempt::Refused(RejectCode::RateLimited)),
        "{creations:?}"
    );
    assert!(
        logins[..10].iter().all(|c| *c == RejectCode::Unauthorized),
        "{logins:?}"
    );
    assert_eq!(logins[10], RejectCode::RateLimited, "{logins:?}");
    assert!(
        logins
            .iter()
            .filter(|c| **c == RejectCode::RateLimited)
            .count()
            > 30,
        "{logins:?}"
    );
    assert_eq!(spaces_on(&db), 5);
    // After the flood, too.
    sync::sync_once(&mut jordan, T).await.unwrap();
    let seen = appreciations(&jordan);
    for text in &written {
        assert!(seen.contains(text), "{text} missing from {seen:?}");
    }
}

/// The relay binary as a child process, its standard error collected.
struct RelayProcess {
    child: Child,
    url: String,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl RelayProcess {
    fn start(db: &Path, listen: &str, env: &[(&str, &str)]) -> RelayProcess {
        let mut command = Command::new(RELAY_BIN);
        command
            .args(["--listen", listen, "--db"])
            .arg(db)
            .env_remove("RUST_LOG")
            .env_remove("HEARTH_RELAY_ADMISSION")
            .env_remove("HEARTH_RELAY_LISTEN")
            .env_remove("HEARTH_RELAY_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            all
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(T)
            .expect("the relay says where it listens")
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap()
            .replace("0.0.0.0", "127.0.0.1");
        RelayProcess {
            child,
            url: format!("ws://{addr}/v1/sync"),
            stderr: Some(stderr),
        }
    }

    /// SIGTERM, a clean stop, and everything it wrote to standard error.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
        let bytes = self.stderr.take().unwrap().join().unwrap();
        // Piped, the relay writes no colour codes (operability.rs checks that).
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_against_the_relay_binary_leaves_a_short_log_that_sums_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(&dir.path().join("relay.db"), "127.0.0.1:0", &[]);
    let space = SpaceId::from_bytes([9; 16]);
    const LOGINS: usize = 600;
    const CREATIONS: usize = 200;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = relay.url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..LOGINS / 4 {
                fail_to_log_in(&url, space).await;
            }
            for _ in 0..CREATIONS / 4 {
                create_as_stranger(&url, None).await;
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(T * 6, task).await.unwrap().unwrap();
    }
    let log = relay.stop();
    // One line per attempt would be more than 800 lines of ~150 bytes; the throttle
    // writes each kind of line 20 times a minute and a summary of the rest.
    assert!(log.len() < 40 * 1024, "{} bytes:\n{log}", log.len());
    assert!(log.lines().count() < 150, "{log}");
    assert!(log.contains("more like"), "{log}");
    assert!(log.contains("authentication refused"), "{log}");
    assert!(
        log.contains("too many failed logins from one address"),
        "{log}"
    );
    assert!(log.contains("relay stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_a_reachable_address_admits_new_spaces_only_with_a_token_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = RelayProcess::start(&db, "0.0.0.0:0", &[]);
    assert_eq!(
        create_as_stranger(&relay.url, None).await,
        Attempt::Refused(RejectCode::TokenRequired)
    );
    let token = mint(&db, &[]);
    assert_eq!(
        create_as_stranger(&relay.url, Some(token.clone())).await,
        Attempt::Created
    );
    assert_eq!(
        create_as_stranger(&relay.url, Some(token)).await,
        Attempt::Refused(RejectCode::TokenUsed)
    );
    let log = relay.stop();
    assert!(log.contains("admission=\"token\""), "{log}");

    // On loopback, or by the operator's choice, it is open.
    let relay = RelayProcess::start(&db, "0.0.0.0:0", &[("HEARTH_RELAY_ADMISSION", "open")]);
    assert_eq!(create_as_stranger(&relay.url, None).await, Attempt::Created);
    let log = relay.stop();
    assert!(log.contains("admission=\"open\""), "{log}");
    let relay = RelayProcess::start(&db, "127.0.0.1:0", &[]);
    assert_eq!(create_as_stranger(&relay.url, None).await, Attempt::Created);
    let log = relay.stop();
    assert!(
        log.contains("anyone who can reach this relay may create spaces"),
        "{log}"
    );
}

/// Starts a relay on `db` whose spaces expire the moment nobody joined them, lets its
/// start sweep them (before it serves anyone), and stops it.
async fn sweep_with_a_short_ttl(db: &Path) {
    let relay = relay(db, Admission::Open, |c| {
        c.unjoined_space_ttl = Duration::from_millis(1);
    });
    relay.stop().await.unwrap();
}

fn expired_rows(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM expired_spaces", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_nobody_joined_expires_and_its_creator_puts_it_back_with_everything() {
    let sam = Device::new(BIN);
    let db = sam.scratch().join("relay.db");
    let first = relay(&db, Admission::Open, |_| {});
    let run = init(&sam, "Sam", &first.url, None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    sam.ok(["appreciate", "Written before the space expired"]);
    sam.ok(["sync"]);
    let stale_code = sam.ok(["invite"]).trim().to_owned();
    let addr = first.addr();
    first.stop().await.unwrap();

    sweep_with_a_short_ttl(&db).await;
    assert_eq!(spaces_on(&db), 0, "removed: nobody joined it");
    assert_eq!(expired_rows(&db), 1);

    let again = relay_on(&db, Admission::Open, |_| {}, addr);
    let status = sam.ok(["status"]);
    assert!(
        status.contains("no second device joined it in time"),
        "{status}"
    );
    sam.ok(["appreciate", "Written after it expired"]);
    let run = sam.run(["sync"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the relay had removed this space because no second device joined it"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing is lost"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("hiding") && !run.stderr.contains("no longer has this space"),
        "an expiry is not a hostile relay: {}",
        run.stderr
    );
    assert_eq!(spaces_on(&db), 1);
    assert_eq!(expired_rows(&db), 0);

    // The old invite went with the space; a new one brings the partner everything.
    let jordan = Device::new(BIN);
    let run = jordan.run(["join", &stale_code, "--name", "Jordan", "--no-passphrase"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("the relay does not know this invite"),
        "{}",
        run.stderr
    );
    let code = sam.ok(["invite"]).trim().to_owned();
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    let log = jordan.ok(["log"]);
    assert!(
        log.contains("Sam appreciated: Written before the space expired"),
        "{log}"
    );
    assert!(
        log.contains("Sam appreciated: Written after it expired"),
        "{log}"
    );

    // Joined now: it never expires.
    again.stop().await.unwrap();
    sweep_with_a_short_ttl(&db).await;
    assert_eq!(spaces_on(&db), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_space_on_a_token_relay_comes_back_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let first = relay(&db, Admission::Token, |_| {});
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&first.url).unwrap();
    sam.offer_relay_token(mint(&db, &[]).parse().unwrap());
    appreciate(&mut sam, "first");
    sync::sync_once(&mut sam, T).await.unwrap();
    assert!(!sam.relay_token_unused(), "spent");
    let addr = first.addr();
    first.stop().await.unwrap();
    sweep_with_a_short_ttl(&db).await;

    let _again = relay_on(&db, Admission::Token, |_| {}, addr);
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            SyncError::TokenRefused {
                problem: sync::TokenProblem::Missing,
                after_expiry: true
            }
        ),
        "{err}"
    );
    assert_eq!(spaces_on(&db), 0);
    // Refused once, nothing lost: with a token it comes back, with everything.
    sam.offer_relay_token(mint(&db, &[]).parse().unwrap());
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert!(report.recreated_after_expiry);
    let jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
    assert_eq!(appreciations(&jordan), ["first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_says_a_joined_space_expired_is_not_believed_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let first = relay(&db, Admission::Open, |_| {});
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&first.url).unwrap();
    appreciate(&mut sam, "ours");
    sync::sync_once(&mut sam, T).await.unwrap();
    let _jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
    sync::sync_once(&mut sam, T).await.unwrap();
    let addr = first.addr();
    first.stop().await.unwrap();
    // A lying relay: the couple's space dropped, and an expiry in Sam's name left behind.
    let space = *sam.space().unwrap().as_bytes();
    let device = *sam.device_id().as_bytes();
    let conn = Connection::open(&db).unwrap();
    conn.execute("DELETE FROM spaces WHERE space = ?1", [&space[..]])
        .unwrap();
    conn.execute(
        "INSERT INTO expired_spaces (space, device, expired_at) VALUES (?1, ?2, 1)",
        rusqlite::params![&space[..], &device[..]],
    )
    .unwrap();
    drop(conn);

    let _liar = relay_on(
        &db,
        Admission::Open,
        |c| c.unjoined_space_ttl = Duration::ZERO,
        addr,
    );
    let err = sync::sync_once(&mut sam, T).await.unwrap_err();
    assert!(matches!(err, SyncError::SpaceMissing), "{err}");
    assert_eq!(spaces_on(&db), 0, "nothing created again");
    assert_eq!(appreciations(&sam), ["ours"], "nothing lost here");
}
