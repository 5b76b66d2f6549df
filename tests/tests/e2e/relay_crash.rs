//! The real relay binary, SIGKILLed and restarted on the same SQLite file, with real
//! clients: nothing the relay acknowledged (`Committed`) is lost, clients resume from their
//! cursors, and re-sent pushes are stored once.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hearth_client::sync::{self, SyncError};
use hearth_client::{Profile, Protection};
use hearth_proto::InviteRole;
use hearth_testkit::couple::{appreciate, appreciations, new_profile};

/// The bound on every wait: a bug fails the test instead of hanging it.
const T: Duration = Duration::from_secs(20);
/// SIGKILL's number: the relay must have died of it, not exited on its own.
const SIGKILL: i32 = 9;

/// The relay binary running as a child process; killed (and reaped) if dropped.
struct RelayProcess {
    child: Option<Child>,
    url: String,
}

impl RelayProcess {
    /// Starts the relay on a free port with `db` and waits (bounded) for `listening on ADDR`.
    fn start(db: &Path) -> RelayProcess {
        RelayProcess::start_with(db, &[])
    }

    /// [`RelayProcess::start`] with more flags.
    fn start_with(db: &Path, flags: &[&str]) -> RelayProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-relay-test-bin"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(flags)
            .env("RUST_LOG", "warn")
            .env_remove("HEARTH_RELAY_LISTEN")
            .env_remove("HEARTH_RELAY_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut relay = RelayProcess {
            child: Some(child),
            url: String::new(),
        };
        let (tx, rx) = mpsc::channel();
        // Reads until the relay's stdout closes (when it dies), so it never blocks on a pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(T)
            .expect("the relay printed no address in time")
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        relay.url = format!("ws://{addr}/v1/sync");
        relay
    }

    /// Whether it is still running (it has not exited on its own).
    fn running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// SIGKILLs the relay and reaps it.
    fn sigkill(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        // SIGKILL cannot be caught: reaping it returns as soon as the kernel has.
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(SIGKILL), "{status}");
        status
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn assert_no_duplicates(who: &str, texts: &[String]) {
    let mut counts = BTreeMap::<&str, usize>::new();
    for t in texts {
        *counts.entry(t).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{who} has duplicates: {twice:?}");
}

async fn sync_ok(p: &mut Profile) -> sync::SyncReport {
    let report = tokio::time::timeout(T + T, sync::sync_once(p, T))
        .await
        .expect("a sync hung")
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    report
}

/// Sam starts a space on `url`, Jordan joins it as a partner; both have synced once.
async fn couple(dir: &Path, url: &str) -> (Profile, Profile) {
    let mut sam = new_profile(&dir.join("sam"), "Sam");
    sam.sync_book_mut().start_space(url).unwrap();
    appreciate(&mut sam, "sam-first");
    sync_ok(&mut sam).await;
    let code = sync::invite(&mut sam, InviteRole::Partner, Duration::from_secs(3600), T)
        .await
        .unwrap();
    let joined = sync::join(
        &dir.join("jordan"),
        &code,
        Some("Jordan"),
        Protection::None,
        T,
    )
    .await
    .unwrap();
    assert!(joined.as_partner);
    let mut jordan = joined.profile;
    sync_ok(&mut jordan).await;
    sync_ok(&mut sam).await;
    (sam, jordan)
}

/// The relay's envelopes, read from its database file: `(seq, device, counter)` in order.
fn relay_envelopes(db: &Path) -> Vec<(u64, Vec<u8>, u64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, device, counter FROM envelopes ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, i64>(2)? as u64,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The seq the relay's snapshot covers (0 without one): the envelopes up to it are gone.
fn snapshot_covers(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COALESCE(MAX(covers_seq), 0) FROM snapshots",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

/// Dense sequence numbers after the snapshot's cover (from 1 without one), and each
/// (device, counter) stored once.
fn assert_relay_consistent(db: &Path) -> Vec<(u64, Vec<u8>, u64)> {
    let rows = relay_envelopes(db);
    let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let after = snapshot_covers(db);
    let dense: Vec<u64> = (after + 1..=after + rows.len() as u64).collect();
    assert_eq!(seqs, dense, "the relay's sequence has gaps");
    let unique: BTreeSet<(&[u8], u64)> = rows.iter().map(|r| (&r.1[..], r.2)).collect();
    assert_eq!(unique.len(), rows.len(), "an envelope was stored twice");
    rows
}

/// The counters of `device`'s envelopes on the relay.
fn counters_of(rows: &[(u64, Vec<u8>, u64)], device: &[u8]) -> BTreeSet<u64> {
    rows.iter().filter(|r| r.1 == device).map(|r| r.2).collect()
}

fn outbox_counters(p: &Profile) -> BTreeSet<u64> {
    p.sync_book()
        .outbox()
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_committed_loses_nothing_and_clients_resume_from_their_cursors() {
    const N: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("relay.db");
    let relay = RelayProcess::start(&db);
    let (mut sam, mut jordan) = couple(dir.path(), &relay.url).await;

    for i in 0..N {
        appreciate(&mut sam, &format!("sam-{i:02}"));
        // Ok means the relay answered Committed for everything pushed.
        let report = sync_ok(&mut sam).await;
        assert_eq!(report.pushed, 1);
    }
    assert!(sam.sync_book().outbox().unwrap().is_empty());
    let synced = appreciations(&sam);
    assert_eq!(synced.len(), N + 1);
    let sam_cursor = sam.sync_book().cursor().unwrap();
    let jordan_cursor = jordan.sync_book().cursor().unwrap();
    assert!(sam_cursor > jordan_cursor);

    relay.sigkill();
    let before = assert_relay_consistent(&db);
    let relay = RelayProcess::start(&db);
    sam.sync_book_mut().set_relay(&relay.url).unwrap();
    jordan.sync_book_mut().set_relay(&relay.url).unwrap();

    // Jordan resumes from his cursor and gets exactly what Sam had synced.
    let report = sync_ok(&mut jordan).await;
    assert_eq!(report.received, N, "one envelope per sync of Sam's");
    assert_eq!(report.cursor, sam_cursor);
    assert_eq!(jordan.sync_book().cursor().unwrap(), sam_cursor);
    let on_jordan = appreciations(&jordan);
    assert_no_duplicates("Jordan", &on_jordan);
    assert_eq!(on_jordan, synced);

    // Sam has nothing left to push and nothing new to pull.
    assert!(sam.sync_book().outbox().unwrap().is_empty());
    let report = sync_ok(&mut sam).await;
    assert_eq!((report.pushed, report.received), (0, 0));
    assert_eq!(report.cursor, sam_cursor);

    // Both go on writing and converge.
    appreciate(&mut sam, "sam-after-restart");
    appreciate(&mut jordan, "jordan-after-restart");
    sync_ok(&mut sam).await;
    sync_ok(&mut jordan).await;
    sync_ok(&mut sam).await;
    assert!(sam.sync_book().outbox().unwrap().is_empty());
    assert!(jordan.sync_book().outbox().unwrap().is_empty());
    assert_eq!(sam.sync_book().cursor().unwrap(), sam_cursor + 2);
    assert_eq!(jordan.sync_book().cursor().unwrap(), sam_cursor + 2);
    let all = appreciations(&sam);
    assert_no_duplicates("Sam", &all);
    assert_eq!(all.len(), N + 3);
    assert_eq!(appreciations(&jordan), all);
    assert_eq!(
        sam.load().unwrap().timeline(),
        jordan.load().unwrap().timeline()
    );

    drop(relay);
    let after = assert_relay_consistent(&db);
    assert_eq!(
        after[..before.len()],
        before[..],
        "the relay rewrote history"
    );
    assert_eq!(after.len(), before.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_pushes_keeps_every_committed_push_and_stores_resends_once() {
    // Enough envelopes that the kill lands while Sam is still pushing, few enough that no
    // snapshot becomes due (checked below).
    const BURST: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("relay.db");
    let relay = RelayProcess::start(&db);
    let (mut sam, mut jordan) = couple(dir.path(), &relay.url).await;
    let sam_device = sam.device_id().as_bytes().to_vec();
    let base = relay_envelopes(&db).len();

    // One envelope per appreciation, all in the outbox before the sync starts.
    let epoch = sam.sync_book().acl_state().unwrap().unwrap().epoch();
    for i in 0..BURST {
        appreciate(&mut sam, &format!("burst-{i:03}"));
        assert!(sam.sync_book_mut().stage_outgoing(epoch).unwrap().is_some());
    }
    let sealed: BTreeMap<u64, Vec<u8>> = sam.sync_book().outbox().unwrap().into_iter().collect();
    let staged: BTreeSet<u64> = sealed.keys().copied().collect();
    assert_eq!(staged.len(), BURST);
    // Sam's sync after the kill resends up to the whole burst and reads it all back; a
    // snapshot due then would make the relay drop the envelopes this test counts. (Each
    // padded envelope is 1,194 bytes on the wire: 150 of them, as before padding, were too
    // many.)
    let burst_bytes: usize = sealed.values().map(Vec::len).sum();
    assert!(
        2 * burst_bytes < sync::SNAPSHOT_AFTER_BYTES as usize,
        "{burst_bytes} bytes in the burst would make a snapshot due"
    );

    // Sam pushes in the background; the relay dies once half of them are on disk.
    // (On its own thread and runtime: `sync_once`'s future is not `Send`.)
    let (done, pushed) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(sync::sync_once(&mut sam, T));
        let _ = done.send((sam, result));
    });
    let watcher = rusqlite::Connection::open(&db).unwrap();
    let deadline = Instant::now() + T;
    loop {
        let stored: i64 = watcher
            .query_row("SELECT count(*) FROM envelopes", [], |r| r.get(0))
            .unwrap();
        if stored as usize >= base + BURST / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Sam's burst never reached the relay"
        );
        // Poll the relay's own database for the moment to strike (half the burst stored);
        // the pause only keeps this loop from starving the relay of the machine's 2 cores.
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(watcher);
    relay.sigkill();
    let (mut sam, result) = pushed
        .recv_timeout(T + T)
        .expect("Sam's sync hung after the relay died");
    assert!(
        matches!(result, Err(SyncError::Unreachable { .. })),
        "the kill did not interrupt the burst: {result:?}"
    );

    // Everything Sam saw acknowledged is on disk; what is left may be there too (committed,
    // but killed before the Committed reached him).
    let rows = assert_relay_consistent(&db);
    let on_relay = counters_of(&rows, &sam_device);
    let left = outbox_counters(&sam);
    let acknowledged: BTreeSet<u64> = staged.difference(&left).copied().collect();
    assert!(
        acknowledged.is_subset(&on_relay),
        "acknowledged but lost: {:?}",
        acknowledged.difference(&on_relay).collect::<Vec<_>>()
    );
    assert!(!left.is_empty());
    eprintln!(
        "burst: {} acknowledged, {} left in the outbox, {} of them already committed by the \
         relay",
        acknowledged.len(),
        left.len(),
        left.intersection(&on_relay).count()
    );
    // Whether the kill fell between a commit and its acknowledgement is up to timing, so
    // make that case certain: the last few acknowledged envelopes go back into the outbox,
    // as if their `Committed` had been lost with the relay.
    let unacknowledged: Vec<u64> = acknowledged.iter().rev().take(3).copied().collect();
    assert_eq!(unacknowledged.len(), 3);
    {
        let conn = rusqlite::Connection::open(&sam.paths().database).unwrap();
        for counter in &unacknowledged {
            conn.execute(
                "INSERT INTO outbox (counter, envelope) VALUES (?1, ?2)",
                rusqlite::params![*counter as i64, &sealed[counter]],
            )
            .unwrap();
        }
    }
    let left = outbox_counters(&sam);
    assert!(left.intersection(&on_relay).count() >= 3);

    let relay = RelayProcess::start(&db);
    sam.sync_book_mut().set_relay(&relay.url).unwrap();
    jordan.sync_book_mut().set_relay(&relay.url).unwrap();
    // The outbox is re-sent with the same counters; the relay dedupes what it had.
    let report = sync_ok(&mut sam).await;
    assert_eq!(report.pushed, left.len());
    assert!(sam.sync_book().outbox().unwrap().is_empty());
    let report = sync_ok(&mut jordan).await;
    assert_eq!(report.received, BURST);

    // Second kill, right after a sync returned; then both write more and converge.
    relay.sigkill();
    let rows = assert_relay_consistent(&db);
    assert_eq!(rows.len(), base + BURST);
    assert_eq!(
        counters_of(&rows, &sam_device)
            .intersection(&staged)
            .count(),
        BURST
    );
    let relay = RelayProcess::start(&db);
    sam.sync_book_mut().set_relay(&relay.url).unwrap();
    jordan.sync_book_mut().set_relay(&relay.url).unwrap();
    appreciate(&mut sam, "sam-after-second-kill");
    appreciate(&mut jordan, "jordan-after-second-kill");
    sync_ok(&mut jordan).await;
    sync_ok(&mut sam).await;
    sync_ok(&mut jordan).await;

    let on_sam = appreciations(&sam);
    let on_jordan = appreciations(&jordan);
    assert_no_duplicates("Sam", &on_sam);
    assert_no_duplicates("Jordan", &on_jordan);
    assert_eq!(on_sam.len(), 1 + BURST + 2);
    assert_eq!(on_sam, on_jordan);
    assert_eq!(
        sam.load().unwrap().timeline(),
        jordan.load().unwrap().timeline()
    );
    assert_eq!(
        sam.sync_book().cursor().unwrap(),
        jordan.sync_book().cursor().unwrap()
    );
    assert_eq!(sam.sync_book().cursor().unwrap(), (base + BURST + 2) as u64);

    drop(relay);
    assert_eq!(assert_relay_consistent(&db).len(), base + BURST + 2);
}

/// A small random-ish generator, seeded per run (printed, to replay a failure).
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn seed() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    seed
}

/// `hearth ARGS` (the real program) on the profile in `home`, without a terminal.
fn hearth(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth-test-bin"));
    cmd.args(args)
        .env("HEARTH_HOME", home)
        .env_remove("HEARTH_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn hearth_ok(home: &Path, args: &[&str]) {
    let out = hearth(home, args).output().unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_hearth_sync_mid_push_and_mid_apply_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = RelayProcess::start(&db);
    let (mut sam, jordan) = couple(dir.path(), &relay.url).await;
    // Jordan's device is the `hearth` program from here on.
    let home = dir.path().join("jordan");
    drop(jordan);
    let mut seed = seed();

    // How long one `hearth sync` with something to apply takes here: kills are spread
    // over that span and a little beyond, from before it connects to after it is done.
    for i in 0..10 {
        appreciate(&mut sam, &format!("calibration {i}"));
    }
    sync_ok(&mut sam).await;
    let started = Instant::now();
    hearth_ok(&home, &["sync"]);
    let typical = started.elapsed();

    let (mut killed, mut finished) = (0, 0);
    for round in 0..30 {
        // Sam's writes give Jordan's sync something to apply, Jordan's something to push.
        for i in 0..10 {
            appreciate(&mut sam, &format!("sam {round}-{i}"));
        }
        sync_ok(&mut sam).await;
        hearth_ok(&home, &["appreciate", &format!("jordan {round}")]);
        let kill_at = typical.mul_f64((rng(&mut seed) % 1500) as f64 / 1000.0);
        let started = Instant::now();
        let mut child = hearth(&home, &["sync"]).spawn().unwrap();
        let mut exited = None;
        while started.elapsed() < kill_at {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match exited {
            Some(status) => {
                assert!(status.success(), "hearth sync failed on its own: {status}");
                finished += 1;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    eprintln!("{killed} syncs killed, {finished} finished");
    assert!(killed >= 10, "the loop must kill syncs ({killed} kills)");

    // No manual step: syncing again brings both sides together.
    hearth_ok(&home, &["sync"]);
    sync_ok(&mut sam).await;
    hearth_ok(&home, &["sync"]);
    let jordan = Profile::open(&home, None).unwrap();
    let everything = appreciations(&sam);
    assert_no_duplicates("Sam", &everything);
    assert_eq!(everything.len(), 1 + 10 + 30 * 10 + 30, "{everything:?}");
    assert_eq!(appreciations(&jordan), everything);
    assert_eq!(sam.load().unwrap().heads(), jordan.load().unwrap().heads());

    // Every envelope Jordan's device sealed is on the relay exactly once.
    assert!(jordan.sync_book().outbox().unwrap().is_empty());
    let rows = assert_relay_consistent(&db);
    let device = jordan.device_id();
    assert_eq!(
        counters_of(&rows, device.as_bytes()),
        (1..=jordan.sync_book().last_counter().unwrap()).collect::<BTreeSet<_>>()
    );
}

/// Random bytes as hex: text that does not compress much.
fn noise(seed: &mut u64, bytes: usize) -> String {
    (0..bytes / 8)
        .map(|_| format!("{:016x}", rng(seed)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_pushes_keeps_serving_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    // The database may grow to 1 MiB: SQLite's own "database or disk is full" at the cap,
    // the same error a full disk gives.
    let mut relay = RelayProcess::start_with(&db, &["--max-db-mib", "1"]);
    let (mut sam, mut jordan) = couple(dir.path(), &relay.url).await;
    let mut seed = seed();
    let mut refusal = None;
    for i in 0..40 {
        let text = format!("large {i} {}", noise(&mut seed, 96 * 1024));
        appreciate(&mut sam, &text);
        match sync::sync_once(&mut sam, T).await {
            Ok(_) => {}
            Err(SyncError::Refused { code, message }) => {
                refusal = Some((code, message));
                break;
            }
            Err(e) => panic!("expected a refusal, got {e}"),
        }
    }
    let (code, message) = refusal.expect("the capped database fills up");
    assert_eq!(code, hearth_proto::RejectCode::QuotaExceeded);
    assert!(message.contains("disk is full"), "{message}");
    assert!(relay.running(), "the relay must not crash on a full disk");
    let waiting = outbox_counters(&sam);
    assert!(
        !waiting.is_empty(),
        "the refused envelope stays in Sam's outbox"
    );

    // It still serves: Jordan reads everything it stored, and another refusal is a
    // refusal, not a crash. (If Sam's sync had proposed a snapshot before the disk filled,
    // Jordan countersigns it, and the envelopes it covers make room again: then Sam's
    // next push fits.)
    let report = sync_ok(&mut jordan).await;
    let received = appreciations(&jordan).len();
    assert!(received >= 2, "{received}");
    match sync::sync_once(&mut sam, T).await {
        Err(SyncError::Refused { .. }) => assert_eq!(outbox_counters(&sam), waiting),
        Ok(_) => assert!(
            report.countersigned.is_some(),
            "room again only because Jordan's countersignature compacted the history"
        ),
        Err(e) => panic!("expected a refusal, got {e}"),
    }
    assert!(relay.running());

    // The operator makes room (here: lifts the cap); the devices sync as usual.
    relay.sigkill();
    let relay = RelayProcess::start(&db);
    sam.sync_book_mut().set_relay(&relay.url).unwrap();
    jordan.sync_book_mut().set_relay(&relay.url).unwrap();
    sync_ok(&mut sam).await;
    sync_ok(&mut jordan).await;
    assert!(sam.sync_book().outbox().unwrap().is_empty());
    let everything = appreciations(&sam);
    assert_eq!(appreciations(&jordan), everything);
    assert!(everything.len() > received);
    assert_relay_consistent(&db);
}
