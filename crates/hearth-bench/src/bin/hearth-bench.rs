//! hearth's benchmark runner.
//!
//! `hearth-bench offline`: builds a profile holding a ten-year history, then times the real
//! `hearth` binary on it, whole process (`hearth log --json`, `hearth appreciate`), without
//! a passphrase, with one unlocked, and with one each time, and reports the profile's size. Results print as JSON lines, then a table.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hearth_bench::history::{self, Shape};
use hearth_bench::timing::{self, ms};
use hearth_client::{Profile, Protection};
use hearth_doc::Millis;
use serde_json::json;

const USAGE: &str = "usage: hearth-bench offline|sync|relay|compare|attacks|soak [--runs N] [--hearth PATH] [--keep DIR] [--quick]

  compare   runs the peer harness ($HEARTH_PEER_DIR/run.sh, Node; installs
            its packages from the npm registry the first time) and `relay` interleaved,
            --runs times (default 3), plus `offline` once, and prints metric, better peer,
            hearth, ratio and the issue's target as a Markdown table. Results go to
            --keep DIR (default target/bench-results/compare-<time>/).

  relay     the peer benchmark's workloads (the peer harness's) against a
            hearth-relay process on loopback (the binary beside this one): fan-out latency
            for 1, 10, 100 and 1,000 pairs, throughput with 4 entries in flight per pair,
            relay CPU per delivered entry, initial sync of a 10,000-record history to fresh
            devices, relay memory, and 10,000 idle connections beside an active pair.
            JSON lines of the peer's shape. --quick: the peer's quick sizes;
            --tests LIST: some of latency,throughput,initial_sync,idle.

  attacks   hostile clients against a hearth-relay process (the binary beside this one),
            one attack at a time for --seconds N each (default 15), while a legitimate
            pair writes every 150 ms: its latency p50/p99 against a quiet baseline, what
            the attackers got, the relay's CPU and memory, and its open connections
            during and after. --tests LIST: some of
            slowloris,half_open,login_flood,oversized,garbage.

  soak      1,000 pairs of real client devices (profiles on disk, live connections) on a
            hearth-relay process (the binary beside this one): 150 s at a realistic rate (a
            write every 60 s per device), 150 s at a peak rate (every 6 s), while the relay
            is SIGKILLed 12 times and restarted, devices drop their connections and crash
            (half of the time mid-push), and the relay's disk (a 512 MiB tmpfs) is full for
            15 s. Then the devices must converge by themselves; both devices of every pair
            must hold the same heads and every entry once, and the relay's database every
            committed envelope once. A second round copies the relay's SQLite files
            mid-write and restarts it from the copy. ~9 min; needs root for the tmpfs.
            --pairs N, --seconds N (each phase), --kills N, --no-full-disk, --no-copy,
            --keep DIR (default target/soak, emptied first).

  sync      with a relay on 127.0.0.1 (in this process, real SQLite file): the time from
            one partner's write to the other partner having it applied, one sync on each
            side (push, then pull), over --runs writes; the same with both connected
            live (as `hearth watch` is: push on the open connection, the relay forwards),
            over max(--runs, 100) writes, p50/p95/p99; and the time for a new device to
            join and receive the ten-year history.

  offline   time `hearth log --json` and `hearth appreciate` on a ten-year profile,
            whole process: without a passphrase, with one but unlocked (`hearth unlock`),
            and with one typed each time (HEARTH_PASSPHRASE, scrypt every run), runs
            interleaved; and report the profile's size.
  --runs N       runs per command (default 21)
  --hearth PATH  the hearth binary (default: beside this program, i.e. target/release/hearth)
  --keep DIR     build the profile in DIR and keep it (default: a temporary directory)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 0usize;
    let mut hearth: Option<PathBuf> = None;
    let mut keep: Option<PathBuf> = None;
    let mut command = None;
    let mut quick = false;
    let mut tests: Option<Vec<String>> = None;
    let mut seconds: Option<u64> = None;
    let mut pairs: Option<usize> = None;
    let mut kills: Option<usize> = None;
    let mut full_disk = true;
    let mut copy = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => runs = it.next().context("--runs needs a number")?.parse()?,
            "--hearth" => hearth = Some(it.next().context("--hearth needs a path")?.into()),
            "--keep" => keep = Some(it.next().context("--keep needs a directory")?.into()),
            "--quick" => quick = true,
            "--pairs" => pairs = Some(it.next().context("--pairs needs a number")?.parse()?),
            "--kills" => kills = Some(it.next().context("--kills needs a number")?.parse()?),
            "--no-full-disk" => full_disk = false,
            "--no-copy" => copy = false,
            "--seconds" => {
                seconds = Some(it.next().context("--seconds needs a number")?.parse()?);
            }
            "--tests" => {
                tests = Some(
                    it.next()
                        .context("--tests needs a list, e.g. latency,throughput")?
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if command.is_none() => command = Some(other.to_owned()),
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    match command.as_deref() {
        Some("offline") => offline(if runs == 0 { 21 } else { runs }, hearth, keep).map(drop),
        Some("compare") => compare(
            if runs == 0 { 3 } else { runs.min(20) },
            quick,
            hearth,
            keep,
        ),
        Some("attacks") => {
            let which = tests.unwrap_or_else(|| {
                hearth_bench::attack::ATTACKS
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect()
            });
            hearth_bench::attack::run(
                &hearth_bench::relay::default_relay_bin()?,
                seconds.unwrap_or(15),
                &which,
            )
            .map(drop)
        }
        Some("soak") => {
            let dir = keep.unwrap_or_else(|| PathBuf::from("target/soak"));
            let mut options = hearth_bench::soak::Options::full(
                std::path::absolute(dir)?,
                hearth_bench::relay::default_relay_bin()?,
            );
            if let Some(pairs) = pairs {
                options.pairs = pairs;
            }
            if let Some(kills) = kills {
                options.kills = kills;
            }
            if let Some(seconds) = seconds {
                options.realistic = std::time::Duration::from_secs(seconds);
                options.peak = std::time::Duration::from_secs(seconds);
            }
            options.full_disk = full_disk;
            if !copy {
                options.copy_restart = None;
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(hearth_bench::soak::run(options))
                .map(drop)
        }
        Some("sync") => sync_bench(if runs == 0 { 21 } else { runs }),
        Some("relay") => {
            let mut options =
                hearth_bench::suite::Options::new(hearth_bench::relay::default_relay_bin()?, quick);
            if let Some(tests) = tests {
                options.tests = tests;
            }
            hearth_bench::suite::run(&options).map(drop)
        }
        _ => bail!("{USAGE}"),
    }
}

fn default_hearth() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("hearth");
    if !path.exists() {
        bail!(
            "no hearth binary at {}: build it first (cargo build --release --workspace) or pass --hearth PATH",
            path.display()
        );
    }
    Ok(path)
}

fn offline(
    runs: usize,
    hearth: Option<PathBuf>,
    keep: Option<PathBuf>,
) -> Result<Vec<serde_json::Value>> {
    let hearth = match hearth {
        Some(p) => p,
        None => default_hearth()?,
    };
    let temp = tempfile::tempdir()?;
    let home = keep.unwrap_or_else(|| temp.path().join("profile"));

    let shape = Shape::TEN_YEARS;
    let started = Instant::now();
    let end = Millis::now();
    let start = Millis(end.0 - i64::from(shape.weeks) * 7 * 86_400_000);
    let mut profile = Profile::create(&home, "Sam", Protection::None, start)?;
    let me = profile.person_id().clone();
    let mut a = profile.load()?;
    // Offline, nobody checks the partner's device against an ACL; any id will do.
    let partner = [0xb0; 32];
    let own = *profile.device_id().as_bytes();
    let mut b = hearth_doc::SpaceDoc::load(&partner, &a.save_snapshot(), [])?;
    b.set_people(history::couple(own, partner));
    let jordan = hearth_doc::PersonId::of(
        &hearth_doc::authorship::PersonKey::from_founding_device(partner),
    );
    history::generate(&mut a, &me, &mut b, &jordan, shape, end)?;
    let everything = a.save_snapshot();
    profile.write(|doc| doc.apply(&everything))?;
    profile.compact()?;
    drop(profile);
    let generated = started.elapsed();
    let size = dir_size(&home)?;
    eprintln!(
        "generated {} records in {:.1} s; profile {} bytes at {}",
        shape.records(),
        generated.as_secs_f64(),
        size,
        home.display()
    );

    // The same profile behind a passphrase: its database, and its secrets in a key file
    // that needs scrypt to open.
    let locked_home = temp.path().join("passphrase-profile");
    std::fs::create_dir_all(&locked_home)?;
    std::fs::copy(home.join("profile.db"), locked_home.join("profile.db"))?;
    let secrets = hearth_crypto::keyfile::read(&home.join("device.key"), None)?;
    let passphrase = Path::new(BENCH_PASSPHRASE);
    hearth_crypto::keyfile::create(
        &locked_home.join("device.key"),
        &secrets,
        &Protection::Passphrase(BENCH_PASSPHRASE.into()),
    )?;
    let unlocked_home = temp.path().join("unlocked-profile");
    copy_profile(&locked_home, &unlocked_home)?;
    let unlocked = [("HEARTH_HOME", unlocked_home.as_path())];
    let unlock = timing::time_once(
        &hearth,
        &["unlock", "--for", "1h"],
        &[unlocked[0], ("HEARTH_PASSPHRASE", passphrase)],
    )?;
    eprintln!("unlocked a copy in {:.1} ms", ms(unlock));

    // Each scenario in turn within a round, so a busy moment on the machine falls on all.
    let scenarios: [(&str, Vec<(&str, &Path)>); 3] = [
        ("", vec![("HEARTH_HOME", home.as_path())]),
        ("_unlocked", unlocked.to_vec()),
        (
            "_passphrase",
            vec![
                ("HEARTH_HOME", locked_home.as_path()),
                ("HEARTH_PASSPHRASE", passphrase),
            ],
        ),
    ];
    // One warm-up run each, so the page cache holds the binary and the profile.
    for (_, env) in &scenarios {
        timing::time_once(&hearth, &["log", "--json"], env)?;
    }
    let mut log = vec![Vec::new(); scenarios.len()];
    for _ in 0..runs {
        for (samples, (_, env)) in log.iter_mut().zip(&scenarios) {
            samples.push(timing::time_once(&hearth, &["log", "--json"], env)?);
        }
    }
    let mut appreciate = vec![Vec::new(); scenarios.len()];
    for i in 0..runs {
        let text = format!("benchmark appreciation {i}");
        for (samples, (_, env)) in appreciate.iter_mut().zip(&scenarios) {
            samples.push(timing::time_once(&hearth, &["appreciate", &text], env)?);
        }
    }
    timing::time_once(&hearth, &["lock"], &unlocked)?;
    let size_after = dir_size(&home)?;

    let mut rows = Vec::new();
    for (command, samples) in [("log_json", log), ("appreciate", appreciate)] {
        for ((suffix, _), samples) in scenarios.iter().zip(samples) {
            rows.push((format!("{command}{suffix}"), timing::summarize(samples)));
        }
    }
    let mut lines = Vec::new();
    for (name, s) in &rows {
        let line = json!({
            "bench": "hearth-offline", "test": name, "runs": runs,
            "median_ms": round(ms(s.median)), "p90_ms": round(ms(s.p90)),
            "min_ms": round(ms(s.min)), "max_ms": round(ms(s.max)),
        });
        println!("{line}");
        lines.push(line);
    }
    println!(
        "{}",
        json!({ "bench": "hearth-offline", "test": "profile_size", "records": shape.records(),
                "bytes": size, "bytes_after_runs": size_after })
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "whole process (ms)", "median", "p90", "min"
    );
    for (name, s) in &rows {
        let label = match name.as_str() {
            "log_json" => "hearth log --json",
            "log_json_unlocked" => "hearth log --json, passphrase, unlocked",
            "log_json_passphrase" => "hearth log --json, passphrase each time",
            "appreciate" => "hearth appreciate",
            "appreciate_unlocked" => "hearth appreciate, passphrase, unlocked",
            _ => "hearth appreciate, passphrase each time",
        };
        println!(
            "{label:<44} {:>10.1} {:>10.1} {:>10.1}",
            ms(s.median),
            ms(s.p90),
            ms(s.min)
        );
    }
    for command in ["log_json", "appreciate"] {
        let median = |name: &str| {
            rows.iter()
                .find(|(n, _)| n == name)
                .map_or(f64::NAN, |(_, s)| ms(s.median))
        };
        println!(
            "{:<44} {:>10.2}x (target: at most 1.3x)",
            format!("{command}: unlocked / no passphrase"),
            median(&format!("{command}_unlocked")) / median(command)
        );
    }
    println!("{:<44} {:>10.2} MB", "profile size", size as f64 / 1e6);
    Ok(lines)
}

/// The passphrase of the benchmark's passphrase profiles (a throwaway, in a temporary
/// directory).
const BENCH_PASSPHRASE: &str = "benchmark passphrase";

/// Copies a profile's files (a closed profile: no WAL left) to a new directory.
fn copy_profile(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for name in ["profile.db", "device.key"] {
        std::fs::copy(from.join(name), to.join(name))?;
    }
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

fn sync_bench(runs: usize) -> Result<()> {
    use hearth_client::sync;
    use std::time::Duration;

    let timeout = Duration::from_secs(60);
    let temp = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let relay = hearth_relay::LocalRelay::start(temp.path().join("relay.db"))?;
    let url = relay.url().to_owned();

    runtime.block_on(async {
        // One pair: write on A, sync A (push), sync B (pull), until B has it.
        let mut a = Profile::create(&temp.path().join("a"), "Sam", Protection::None, Millis::now())?;
        a.sync_book_mut().start_space(&url)?;
        sync::sync_once(&mut a, timeout).await?;
        let code = sync::invite(&mut a, hearth_proto::InviteRole::Partner, Duration::from_secs(3600), timeout).await?;
        let mut b = sync::join(&temp.path().join("b"), &code, Some("Jordan"), Protection::None, timeout)
            .await?
            .profile;
        let me = a.person_id().clone();
        let mut samples = Vec::new();
        for i in 0..runs {
            let text = format!("latency probe {i}");
            let started = Instant::now();
            a.write(|doc| doc.add_appreciation(&me, &text, Millis::now()))?;
            sync::sync_once(&mut a, timeout).await?;
            sync::sync_once(&mut b, timeout).await?;
            samples.push(started.elapsed());
            if !b.load()?.appreciations().iter().any(|x| x.text == text) {
                bail!("partner B did not receive {text:?}");
            }
        }
        let s = timing::summarize(samples);
        println!(
            "{}",
            json!({ "bench": "hearth-sync", "test": "write_to_partner_applied", "runs": runs,
                    "median_ms": round(ms(s.median)), "p90_ms": round(ms(s.p90)), "max_ms": round(ms(s.max)) })
        );

        // The same pair, both connected live: A writes a ~200-byte journal entry and pushes
        // it on its open connection; the relay commits it and forwards it to B, which
        // verifies, decrypts and applies it (durably) before it signals.
        let live = live_latency(&mut a, b, runs.max(100), timeout).await?;
        let l = timing::summarize_with_p99(live.clone());
        println!(
            "{}",
            json!({ "bench": "hearth-sync", "test": "live_write_to_partner_applied", "pairs": 1,
                    "runs": live.len(), "p50_ms": round(ms(l.median)), "p95_ms": round(ms(l.p95)),
                    "p99_ms": round(ms(l.p99)), "max_ms": round(ms(l.max)) })
        );

        // A ten-year history, pushed once, then a new device joins and receives it all.
        let end = Millis::now();
        let shape = Shape::TEN_YEARS;
        let start = Millis(end.0 - i64::from(shape.weeks) * 7 * 86_400_000);
        let mut h = Profile::create(&temp.path().join("h"), "Sam", Protection::None, start)?;
        h.sync_book_mut().start_space(&url)?;
        sync::sync_once(&mut h, timeout).await?;
        let mut partner = history::paired_partner(&mut h, &temp.path().join("h-partner"), timeout).await?;
        let (mine, theirs) = history::generate_for(&h, &partner, shape, end)?;
        h.write(|d| d.apply(&mine))?;
        partner.write(|d| d.apply(&theirs))?;
        let pushed = Instant::now();
        sync::sync_once(&mut partner, timeout).await?;
        sync::sync_once(&mut h, timeout).await?;
        let push_time = pushed.elapsed();
        let code = sync::invite(&mut h, hearth_proto::InviteRole::OwnDevice, Duration::from_secs(3600), timeout).await?;
        let joined_at = Instant::now();
        let joined = sync::join(&temp.path().join("h2"), &code, None, Protection::None, timeout).await?;
        let join_time = joined_at.elapsed();
        let received = joined.profile.load()?.timeline().len();
        println!(
            "{}",
            json!({ "bench": "hearth-sync", "test": "ten_year_history", "records": shape.records(),
                    "upload_ms": round(ms(push_time)), "new_device_join_ms": round(ms(join_time)),
                    "timeline_items_on_new_device": received })
        );
        println!();
        println!("{:<40} {:>10} {:>10}", "loopback, release", "median", "p90/p95");
        println!("{:<40} {:>10.1} {:>10.1}", "write -> partner applied (ms)", ms(s.median), ms(s.p90));
        println!("{:<40} {:>10.1} {:>10.1}   p99 {:.1}", "live: write -> partner applied (ms)", ms(l.median), ms(l.p95), ms(l.p99));
        println!("{:<40} {:>10.0}", "ten-year history upload (ms)", ms(push_time));
        println!("{:<40} {:>10.0}", "new device joins + receives it (ms)", ms(join_time));
        Ok::<(), anyhow::Error>(())
    })?;
    drop(relay);
    Ok(())
}

/// Fan-out latency for one pair over live connections: from A's write (into its profile)
/// to B having it verified, decrypted and durably applied. `b` moves into its own task.
async fn live_latency(
    a: &mut Profile,
    mut b: Profile,
    probes: usize,
    timeout: std::time::Duration,
) -> Result<Vec<std::time::Duration>> {
    use hearth_client::sync::{Live, LiveEvent};

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let listener = tokio::spawn(async move {
        let (mut live, _) = Live::open(&mut b, timeout).await?;
        let _ = ready_tx.send(());
        loop {
            if let LiveEvent::Received(r) = live.next(&mut b).await?
                && r.received > 0
                && tx.send(Instant::now()).is_err()
            {
                return Ok::<(), anyhow::Error>(());
            }
        }
    });
    ready_rx.await.context("B never went live")?;
    let (mut live, _) = Live::open(a, timeout).await?;
    let me = a.person_id().clone();
    let body = "x".repeat(200);
    let mut samples = Vec::with_capacity(probes);
    for i in 0..probes {
        let draft = hearth_doc::JournalDraft {
            body: format!("{i:05} {body}"),
            ..Default::default()
        };
        let started = Instant::now();
        a.write(|doc| doc.add_journal(&me, &draft, Millis::now()).map(drop))?;
        live.push(a).await?;
        let applied = rx.recv().await.context("B stopped")?;
        samples.push(applied.duration_since(started));
        // A's own Committed, so its outbox stays empty.
        while !matches!(live.next(a).await?, LiveEvent::Committed) {}
    }
    live.close().await;
    listener.abort();
    Ok(samples)
}

/// Peer and hearth, interleaved run by run on this machine, then one table.
fn compare(runs: usize, quick: bool, hearth: Option<PathBuf>, keep: Option<PathBuf>) -> Result<()> {
    use hearth_bench::{compare, relay, suite};
    use std::io::Write;

    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let exe = std::env::current_exe()?;
    let out_dir = match keep {
        Some(dir) => dir,
        None => exe
            .parent()
            .and_then(Path::parent)
            .context("where this program lives")?
            .join("bench-results")
            .join(format!("compare-{stamp}")),
    };
    std::fs::create_dir_all(&out_dir)?;
    // The peer's packages are installed once, in a work folder that outlives this run.
    let peer_work = out_dir.parent().unwrap_or(&out_dir).join("peer-work");
    let installed = peer_work.join("node_modules").exists();
    let relay_bin = relay::default_relay_bin()?;
    let mut peer = Vec::new();
    let mut ours = Vec::new();
    for run in 1..=runs {
        let run_u32 = u32::try_from(run)?;
        eprintln!("== run {run} of {runs}: the peer (official, repo2)");
        peer.extend(compare::run_peer(
            &peer_work,
            run_u32,
            quick,
            run == 1 && !installed,
        )?);
        eprintln!("== run {run} of {runs}: hearth");
        let mut options = suite::Options::new(relay_bin.clone(), quick);
        options.run = run_u32;
        ours.extend(suite::run(&options)?);
    }
    eprintln!("== hearth: whole-process CLI on the ten-year history");
    for line in offline(if quick { 5 } else { 21 }, hearth, None)? {
        let command = match line["test"].as_str() {
            Some("log_json") => "log --json",
            Some("appreciate") => "appreciate",
            _ => continue,
        };
        ours.push(
            json!({ "bench": "hearth-relay", "server": "hearth", "run": 1, "test": "cli",
                          "command": command, "median_ms": line["median_ms"] }),
        );
    }
    let rows = compare::summarize(&peer, &ours);
    let table = compare::render_table(&rows);
    let mut raw = std::fs::File::create(out_dir.join("results.jsonl"))?;
    for line in peer.iter().chain(&ours) {
        writeln!(raw, "{line}")?;
    }
    std::fs::write(out_dir.join("table.md"), &table)?;
    println!();
    println!("{table}");
    eprintln!("raw lines and the table: {}", out_dir.display());
    Ok(())
}
