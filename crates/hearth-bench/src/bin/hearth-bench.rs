//! hearth's benchmark runner.
//!
//! `hearth-bench offline`: builds a profile holding a ten-year history, then times the real
//! `hearth` binary on it, whole process (`hearth log --json`, `hearth appreciate`), and
//! reports the profile's size. Results print as JSON lines, then a table.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hearth_bench::history::{self, Shape};
use hearth_bench::timing::{self, ms};
use hearth_client::{Profile, Protection};
use hearth_doc::Millis;
use serde_json::json;

const USAGE: &str = "usage: hearth-bench offline|sync [--runs N] [--hearth PATH] [--keep DIR]

  sync      with a relay on 127.0.0.1 (in this process, real SQLite file): the time from
            one partner's write to the other partner having it applied, one sync on each
            side (push, then pull), over --runs writes; the same with both connected
            live (as `hearth watch` is: push on the open connection, the relay forwards),
            over max(--runs, 100) writes, p50/p95/p99; and the time for a new device to
            join and receive the ten-year history.

  offline   time `hearth log --json` and `hearth appreciate` on a ten-year profile
            (no passphrase), whole process, and report the profile's size.
  --runs N       runs per command (default 21)
  --hearth PATH  the hearth binary (default: beside this program, i.e. target/release/hearth)
  --keep DIR     build the profile in DIR and keep it (default: a temporary directory)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 21usize;
    let mut hearth: Option<PathBuf> = None;
    let mut keep: Option<PathBuf> = None;
    let mut command = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => runs = it.next().context("--runs needs a number")?.parse()?,
            "--hearth" => hearth = Some(it.next().context("--hearth needs a path")?.into()),
            "--keep" => keep = Some(it.next().context("--keep needs a directory")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if command.is_none() => command = Some(other.to_owned()),
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    match command.as_deref() {
        Some("offline") => offline(runs.max(1), hearth, keep),
        Some("sync") => sync_bench(runs.max(1)),
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

fn offline(runs: usize, hearth: Option<PathBuf>, keep: Option<PathBuf>) -> Result<()> {
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
    history::generate(&mut a, &me, shape, end)?;
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

    let env = [("HEARTH_HOME", home.as_path())];
    // One warm-up run each, so the page cache holds the binary and the profile.
    timing::time_once(&hearth, &["log", "--json"], &env)?;
    let mut log = Vec::new();
    for _ in 0..runs {
        log.push(timing::time_once(&hearth, &["log", "--json"], &env)?);
    }
    let mut appreciate = Vec::new();
    for i in 0..runs {
        let text = format!("benchmark appreciation {i}");
        appreciate.push(timing::time_once(&hearth, &["appreciate", &text], &env)?);
    }
    let size_after = dir_size(&home)?;

    let rows = [
        ("log_json", timing::summarize(log)),
        ("appreciate", timing::summarize(appreciate)),
    ];
    for (name, s) in &rows {
        println!(
            "{}",
            json!({
                "bench": "hearth-offline", "test": name, "runs": runs,
                "median_ms": round(ms(s.median)), "p90_ms": round(ms(s.p90)),
                "min_ms": round(ms(s.min)), "max_ms": round(ms(s.max)),
            })
        );
    }
    println!(
        "{}",
        json!({ "bench": "hearth-offline", "test": "profile_size", "records": shape.records(),
                "bytes": size, "bytes_after_runs": size_after })
    );
    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "whole process (ms)", "median", "p90", "min"
    );
    for (name, s) in &rows {
        let label = if *name == "log_json" {
            "hearth log --json"
        } else {
            "hearth appreciate"
        };
        println!(
            "{label:<28} {:>10.1} {:>10.1} {:>10.1}",
            ms(s.median),
            ms(s.p90),
            ms(s.min)
        );
    }
    println!("{:<28} {:>10.2} MB", "profile size", size as f64 / 1e6);
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
        a.start_space(&url)?;
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
        h.start_space(&url)?;
        let who = h.person_id().clone();
        let mut doc = h.load()?;
        history::generate(&mut doc, &who, shape, end)?;
        let everything = doc.save_snapshot();
        h.write(|d| d.apply(&everything))?;
        let pushed = Instant::now();
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
