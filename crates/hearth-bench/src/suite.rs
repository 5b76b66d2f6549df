//! `hearth-bench relay`: the peer benchmark's workloads against a `hearth-relay` process,
//! in the order loadgen runs them, printed as JSON lines of the peer's shape
//! (`"bench": "hearth-relay"`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use hearth_client::{Profile, Protection, sync};
use hearth_doc::Millis;
use hearth_proto::InviteRole;
use serde_json::{Value, json};

use crate::history::{self, Shape};
use crate::relay::{self, Pairs, RelayProcess};

/// Every workload, in the order they run.
pub const ALL: [&str; 4] = ["latency", "throughput", "initial_sync", "idle"];

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `hearth-relay` binary.
    pub relay_bin: PathBuf,
    /// Pair counts for the latency test.
    pub pairs: Vec<usize>,
    /// Latency samples per pair count (loadgen: 300; quick: 60).
    pub samples: usize,
    /// Shortest latency run, in seconds (loadgen: 5; quick: 2).
    pub min_s: u64,
    /// Pairs for the throughput test (loadgen: the largest latency K up to 100).
    pub tput_pairs: usize,
    /// Throughput duration and warm-up, in seconds (loadgen: 10 and 2; quick: 3 and 1).
    pub tput_seconds: u64,
    /// Warm-up seconds not counted.
    pub tput_warmup: u64,
    /// In-flight window per pair (loadgen: 4).
    pub window: u64,
    /// Initial-sync history and tries (loadgen: 10,000 records, 3 tries; quick: 1,000, 2).
    pub history: Shape,
    /// Fresh devices that each receive the whole history.
    pub sync_tries: usize,
    /// Idle connections to hold at the end (0: skip).
    pub idle: usize,
    /// The `run` number to stamp on every line.
    pub run: u32,
    /// Which workloads: any of `latency`, `throughput`, `initial_sync`, `idle`.
    pub tests: Vec<String>,
}

impl Options {
    fn wants(&self, test: &str) -> bool {
        self.tests.iter().any(|t| t == test)
    }
}

impl Options {
    /// loadgen's defaults, or its `--quick` sizes.
    pub fn new(relay_bin: PathBuf, quick: bool) -> Options {
        if quick {
            Options {
                relay_bin,
                pairs: vec![1, 10],
                samples: 60,
                min_s: 2,
                tput_pairs: 10,
                tput_seconds: 3,
                tput_warmup: 1,
                window: 4,
                history: Shape {
                    weeks: 26,
                    journal: 365,
                    appreciations: 583,
                    feedback: 0,
                },
                sync_tries: 2,
                idle: 1000,
                run: 1,
                tests: ALL.iter().map(|t| (*t).to_owned()).collect(),
            }
        } else {
            Options {
                relay_bin,
                pairs: vec![1, 10, 100, 1000],
                samples: 300,
                min_s: 5,
                tput_pairs: 100,
                tput_seconds: 10,
                tput_warmup: 2,
                window: 4,
                history: Shape::PEER,
                sync_tries: 3,
                idle: 10_000,
                run: 1,
                tests: ALL.iter().map(|t| (*t).to_owned()).collect(),
            }
        }
    }
}

fn line(o: &Options, test: &str, mut fields: Value) -> Value {
    let mut v = json!({ "bench": "hearth-relay", "server": "hearth", "run": o.run, "test": test });
    if let (Some(v), Some(f)) = (v.as_object_mut(), fields.as_object_mut()) {
        v.append(f);
    }
    println!("{v}");
    v
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn settle() {
    // As loadgen: let the relay settle before reading its memory.
    std::thread::sleep(Duration::from_millis(1500));
}

/// Runs every workload once; returns (and prints) the lines.
///
/// # Errors
/// If the relay or a client fails.
pub fn run(o: &Options) -> Result<Vec<Value>> {
    let temp = tempfile::tempdir()?;
    let relay = RelayProcess::start(&o.relay_bin, &temp.path().join("relay"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = Vec::new();
    settle();
    out.push(line(
        o,
        "rss",
        json!({ "phase": "baseline", "rss_kb": relay.rss_kb()? }),
    ));

    let mut tput_done = !o.wants("throughput");
    let latency_pairs: &[usize] = if o.wants("latency") { &o.pairs } else { &[] };
    for &k in latency_pairs {
        let mut pairs = runtime.block_on(Pairs::connect(&relay.url, k))?;
        settle();
        out.push(line(
            o,
            "rss",
            json!({ "phase": "idle_connected", "pairs": k, "rss_kb": relay.rss_kb()? }),
        ));
        let l = runtime.block_on(relay::latency(&mut pairs, &relay, o.samples, o.min_s))?;
        out.push(line(
            o,
            "latency",
            json!({
                "pairs": k, "interval_ms": l.interval_ms, "sent": l.sent, "lost": l.lost,
                "samples": l.sent - l.lost, "p50_ms": l.p50_ms, "p95_ms": l.p95_ms,
                "p99_ms": l.p99_ms, "p999_ms": l.p999_ms, "max_ms": r2(l.max_ms),
                "duration_s": r2(l.duration.as_secs_f64()),
                "server_cpu_s": r2(l.server_cpu.as_secs_f64()),
                "envelope_bytes_per_delivered": l.envelope_bytes_per_delivered,
                "stages": crate::stages::json(&l.stages), "slowest": l.slowest,
            }),
        ));
        out.push(line(
            o,
            "rss",
            json!({ "phase": "after_latency", "pairs": k, "rss_kb": relay.rss_kb()? }),
        ));
        if k == o.tput_pairs {
            out.extend(throughput(o, &runtime, &relay, &mut pairs)?);
            tput_done = true;
        }
        runtime.block_on(pairs.close());
    }
    if !tput_done {
        let mut pairs = runtime.block_on(Pairs::connect(&relay.url, o.tput_pairs))?;
        settle();
        out.push(line(o, "rss", json!({ "phase": "idle_connected", "for": "throughput", "pairs": o.tput_pairs, "rss_kb": relay.rss_kb()? })));
        out.extend(throughput(o, &runtime, &relay, &mut pairs)?);
        runtime.block_on(pairs.close());
    }

    out.push(runtime.block_on(initial_sync(o, &relay, temp.path()))?);
    settle();
    out.push(line(
        o,
        "rss",
        json!({ "phase": "after_upload", "rss_kb": relay.rss_kb()? }),
    ));

    if o.idle >= 2 {
        let idle = runtime.block_on(Pairs::connect(&relay.url, o.idle / 2))?;
        let mut active = runtime.block_on(Pairs::connect(&relay.url, 1))?;
        settle();
        let rss = relay.rss_kb()?;
        let l = runtime.block_on(relay::latency(&mut active, &relay, 300, 2))?;
        out.push(line(
            o,
            "idle_connections",
            json!({
                "connections": 2 * idle.len(), "rss_kb": rss,
                "active_p50_ms": l.p50_ms, "active_p99_ms": l.p99_ms,
                "active_p999_ms": l.p999_ms, "active_max_ms": r2(l.max_ms),
                "active_samples": l.sent,
                "stages": crate::stages::json(&l.stages), "slowest": l.slowest,
            }),
        ));
        runtime.block_on(active.close());
        runtime.block_on(idle.close());
    }
    out.push(line(
        o,
        "rss",
        json!({ "phase": "end", "rss_kb": relay.rss_kb()? }),
    ));
    relay.stop()?;
    Ok(out)
}

fn throughput(
    o: &Options,
    runtime: &tokio::runtime::Runtime,
    relay: &RelayProcess,
    pairs: &mut Pairs,
) -> Result<Vec<Value>> {
    let t = runtime.block_on(relay::throughput(
        pairs,
        relay,
        o.tput_seconds,
        o.tput_warmup,
        o.window,
    ))?;
    let first = line(
        o,
        "throughput",
        json!({
            "pairs": pairs.len(), "seconds": o.tput_seconds,
            "counted_s": o.tput_seconds - o.tput_warmup, "window": o.window,
            "sent": t.sent, "delivered": t.delivered, "envelopes": t.envelopes, "lost": t.sent.saturating_sub(t.delivered),
            "delivered_per_s": t.delivered_per_s,
            "server_cpu_us_per_delivered": t.server_cpu_us_per_delivered,
            "envelope_bytes_per_delivered": t.envelope_bytes_per_delivered,
            "lat_p50_ms": t.lat_p50_ms, "lat_p99_ms": t.lat_p99_ms,
            "server_cpu_s": r2(t.server_cpu.as_secs_f64()),
        }),
    );
    settle();
    let rss = line(
        o,
        "rss",
        json!({ "phase": "after_throughput", "rss_kb": relay.rss_kb()? }),
    );
    Ok(vec![first, rss])
}

/// The history uploaded by one real device (profile, SQLite, the sync engine), then
/// received in full by fresh devices joining by invite: each join timed from the invite
/// code to the whole history verified, decrypted, applied and stored.
async fn initial_sync(o: &Options, relay: &RelayProcess, dir: &Path) -> Result<Value> {
    let timeout = Duration::from_secs(120);
    let end = Millis::now();
    let shape = o.history;
    let start = Millis(end.0 - i64::from(shape.weeks) * 7 * 86_400_000);
    let mut h = Profile::create(&dir.join("history"), "Sam", Protection::None, start)?;
    h.sync_book_mut().start_space(&relay.url)?;
    sync::sync_once(&mut h, timeout).await?;
    let mut partner =
        history::paired_partner(&mut h, &dir.join("history-partner"), timeout).await?;
    let (everything, theirs) = history::generate_for(&h, &partner, shape, end)?;
    let doc_bytes = everything.len();
    let loading = Instant::now();
    hearth_doc::SpaceDoc::load(&[7; 32], &everything, [])?;
    let load_ms = loading.elapsed().as_secs_f64() * 1000.0;
    h.write(|d| d.apply(&everything))?;
    partner.write(|d| d.apply(&theirs))?;
    let cpu_before = relay.cpu()?;
    let upload = Instant::now();
    sync::sync_once(&mut partner, timeout).await?;
    sync::sync_once(&mut h, timeout).await?;
    let upload_ms = upload.elapsed().as_secs_f64() * 1000.0;
    let mut times = Vec::new();
    let expected = h.load()?.timeline().len();
    for i in 0..o.sync_tries {
        let code = sync::invite(
            &mut h,
            InviteRole::OwnDevice,
            Duration::from_secs(3600),
            timeout,
        )
        .await?;
        let started = Instant::now();
        let joined = sync::join(
            &dir.join(format!("fresh-{i}")),
            &code,
            None,
            Protection::None,
            timeout,
        )
        .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let got = joined.profile.load()?.timeline().len();
        anyhow::ensure!(
            got == expected,
            "a fresh device received {got} of {expected} entries"
        );
    }
    let server_cpu = relay.cpu()?.saturating_sub(cpu_before);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    // loadgen's lower median.
    let median = sorted[(sorted.len() - 1) / 2];
    Ok(line(
        o,
        "initial_sync",
        json!({
            "records": shape.records(), "journal": shape.journal,
            "checkins": shape.weeks * 2, "appreciations": shape.appreciations,
            "doc_bytes": doc_bytes, "doc_load_ms": r2(load_ms), "upload_ms": r2(upload_ms), "sync_ms": times.iter().map(|t| r2(*t)).collect::<Vec<_>>(),
            "sync_ms_median": r2(median), "failures": 0,
            "server_cpu_s": r2(server_cpu.as_secs_f64()),
        }),
    ))
}
