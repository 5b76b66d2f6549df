//! `hearth-bench compare`: hearth's relay next to the Automerge reference sync servers.
//!
//! The peer harness (the Automerge reference relays' benchmark) lives outside the workspace,
//! in the folder [`peer_dir`] names
//! (`run.sh`, `loadgen.mjs`, `summarize.mjs`). It measures the published automerge-repo sync
//! server (`official`) and the same server on automerge-repo 2.x (`repo2`) and prints one JSON
//! line per result (`"bench":"automerge-relay"`). hearth's own benchmark prints lines of the
//! same shape with `"bench":"hearth-relay"`.
//!
//! * [`run_peer`] runs the harness once and returns its result lines.
//! * [`summarize`] reduces peer and hearth lines to one [`Row`] per metric of the issue's
//!   table: the median over runs per server, the better peer server, and hearth / peer.
//! * [`render_table`] prints those rows as a Markdown table with the issue's targets and
//!   whether each is met.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Environment variable that overrides where the peer harness (`run.sh`) lives.
pub const PEER_DIR_ENV: &str = "HEARTH_PEER_DIR";

/// The `"bench"` tag of the peer harness's result lines.
pub const PEER_BENCH: &str = "automerge-relay";

/// How many trailing lines of the harness's output an error message quotes.
const TAIL_LINES: usize = 25;

/// Where the peer harness lives: `$HEARTH_PEER_DIR` if set, else the folder
/// `shared/peers/automerge-repo` beside the checkout, where the workplace keeps it.
pub fn peer_dir() -> PathBuf {
    let dir = match std::env::var_os(PEER_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("..")
            .join("shared")
            .join("peers")
            .join("automerge-repo"),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// Runs the peer harness once:
/// `bash <peer dir>/run.sh --runs 1 --work WORK [--quick] [--no-install]`.
///
/// `--no-install` is passed unless `install` (run.sh still runs `npm ci` when `WORK` has no
/// `node_modules` yet). The harness's stderr (progress) is passed through to ours as it
/// arrives; its stdout is captured. Returns every result line whose `"bench"` is
/// `"automerge-relay"` (so not the `automerge-relay-summary` lines or the text table), with
/// `"run"` set to `run`, since each invocation is run 1 of its own. Lines with
/// `"test":"error"` are returned too (and reported on stderr); [`summarize`] ignores them.
///
/// Fails, quoting the last lines of the harness's output, if node (or npm, when it will be
/// needed) is missing, if run.sh exits unsuccessfully (e.g. a load generator failed), or if it
/// printed no result lines. run.sh keeps every result in `WORK/results/<stamp>.jsonl`.
pub fn run_peer(work: &Path, run: u32, quick: bool, install: bool) -> Result<Vec<Value>> {
    let dir = peer_dir();
    let script = dir.join("run.sh");
    if !script.is_file() {
        bail!(
            "peer harness not found: {} does not exist (set {PEER_DIR_ENV} to the folder holding \
             the automerge-repo peer benchmark's run.sh)",
            script.display()
        );
    }
    require_tool("node")?;
    if install || !work.join("node_modules").is_dir() {
        require_tool("npm")?;
    }

    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--runs")
        .arg("1")
        .arg("--work")
        .arg(work);
    if quick {
        cmd.arg("--quick");
    }
    if !install {
        cmd.arg("--no-install");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting bash {}", script.display()))?;

    // Pass stderr through line by line, keeping its tail for error messages; read stdout here
    // at the same time so neither pipe can fill up and stall the harness.
    let stderr = child
        .stderr
        .take()
        .context("peer harness: stderr was not piped")?;
    let echo = std::thread::spawn(move || -> VecDeque<String> {
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut err = std::io::stderr().lock();
                    // Losing a progress line is harmless; keep reading regardless.
                    let _ = err.write_all(&buf);
                    let _ = err.flush();
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(String::from_utf8_lossy(&buf).trim_end().to_owned());
                }
            }
        }
        tail
    });
    let mut stdout = Vec::new();
    let read = child
        .stdout
        .take()
        .context("peer harness: stdout was not piped")?
        .read_to_end(&mut stdout);
    let status = child.wait().context("waiting for the peer harness")?;
    let err_tail = echo.join().unwrap_or_default();
    read.context("reading the peer harness's output")?;
    let stdout = String::from_utf8_lossy(&stdout);

    let tail = || {
        let out: Vec<&str> = stdout.lines().collect();
        let out = &out[out.len().saturating_sub(TAIL_LINES)..];
        format!(
            "last lines of its stderr:\n{}\nlast lines of its stdout:\n{}",
            Vec::from(err_tail.clone()).join("\n"),
            out.join("\n")
        )
    };
    if !status.success() {
        bail!(
            "peer harness {} failed ({status}; results so far are in {}/results/); {}",
            script.display(),
            work.display(),
            tail()
        );
    }
    let lines = parse_peer_output(&stdout, run);
    if !lines.iter().any(|l| test_of(l) != Some("error")) {
        bail!(
            "peer harness {} printed no \"bench\":\"{PEER_BENCH}\" result lines; {}",
            script.display(),
            tail()
        );
    }
    for l in lines.iter().filter(|l| test_of(l) == Some("error")) {
        eprintln!(
            "hearth-bench compare: the peer harness reported an error for {}: {}",
            str_field(l, "server").unwrap_or("?"),
            l.get("error").unwrap_or(&Value::Null)
        );
    }
    Ok(lines)
}

/// Fails with a clear message unless `tool --version` runs.
fn require_tool(tool: &str) -> Result<()> {
    let ok = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "`{tool} --version` failed: the peer benchmark needs Node.js (20 or newer) and npm on \
             PATH, because the reference relays and their load generator are JavaScript"
        );
    }
    Ok(())
}

/// The `"bench":"automerge-relay"` JSON lines of run.sh's stdout, with `"run"` set to `run`.
fn parse_peer_output(stdout: &str, run: u32) -> Vec<Value> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| str_field(v, "bench") == Some(PEER_BENCH))
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.insert("run".to_owned(), Value::from(run));
            }
            v
        })
        .collect()
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latency, CPU, time, memory).
    Lower,
    /// Larger is better (throughput).
    Higher,
}

/// One metric: the better peer relay's median, hearth's median, and hearth / peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is measured, e.g. `latency K=100 p99`; sizes are part of the name.
    pub metric: String,
    /// Unit of `peer` and `hearth`, e.g. `ms`, `MiB`, `entries/s`.
    pub unit: String,
    /// Median over runs of the better peer relay; `None` if no peer measured it.
    pub peer: Option<f64>,
    /// Which peer relay (`official`, `repo2`) `peer` is from.
    pub peer_server: Option<String>,
    /// Median over runs of hearth; `None` if hearth did not measure it.
    pub hearth: Option<f64>,
    /// `hearth / peer`, when both are known and the peer's value is not zero. Below 1 means
    /// hearth is smaller: better for [`Better::Lower`] metrics, worse for [`Better::Higher`].
    pub ratio: Option<f64>,
    /// Which way is better.
    pub better: Better,
    /// `peer_server`'s value in each run, in run order.
    pub peer_runs: Vec<f64>,
    /// hearth's value in each run, in run order.
    pub hearth_runs: Vec<f64>,
}

/// A family of rows measured at several sizes (pairs, records, connections, command).
struct Family {
    /// The `"test"` value of its lines.
    test: &'static str,
    /// For `rss` lines: the `"phase"`.
    phase: Option<&'static str>,
    /// The field that holds the size, if the family has sizes.
    key_field: Option<&'static str>,
    /// The sizes of the issue's table, always shown. A line without `key_field` counts as the
    /// first of these.
    defaults: &'static [&'static str],
    /// Only hearth measures it (the peer column stays empty).
    hearth_only: bool,
    /// The rows of one size.
    metrics: Vec<Metric>,
}

/// One row of a family: label from the size, unit, direction and the value of a line.
struct Metric {
    label: fn(&str) -> String,
    unit: &'static str,
    better: Better,
    value: fn(&Value) -> Option<f64>,
}

fn latency_label(k: &str, p: &str) -> String {
    format!("latency K={k} {p}")
}
/// `1 pair`, `10 pairs`.
fn pairs(k: &str) -> String {
    if k == "1" {
        "1 pair".to_owned()
    } else {
        format!("{k} pairs")
    }
}
fn throughput_label(k: &str) -> String {
    format!("throughput delivered, {}", pairs(k))
}
fn cpu_label(k: &str) -> String {
    format!("relay CPU per delivered entry, {}", pairs(k))
}
fn sync_label(records: &str) -> String {
    format!("initial sync (B, median of tries), {records} records")
}
fn upload_label(records: &str) -> String {
    format!("initial sync upload (A), {records} records")
}
fn rss_baseline_label(_: &str) -> String {
    "relay RSS baseline".to_owned()
}
fn rss_idle_label(k: &str) -> String {
    format!("relay RSS idle, {} connected", pairs(k))
}
fn rss_upload_label(records: &str) -> String {
    format!("relay RSS after {records}-record upload")
}
fn idle_rss_label(n: &str) -> String {
    format!("relay RSS with {n} idle connections")
}
fn idle_p99_label(n: &str) -> String {
    format!("active pair p99 with {n} idle connections")
}
fn cli_label(command: &str) -> String {
    format!("cli `{command}` median")
}

fn num(field: &'static str) -> impl Fn(&Value) -> Option<f64> {
    move |v| {
        v.get(field)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    }
}
fn rss_mib(v: &Value) -> Option<f64> {
    num("rss_kb")(v).map(|kb| kb / 1024.0)
}

fn families() -> Vec<Family> {
    let lower = Better::Lower;
    vec![
        Family {
            test: "latency",
            phase: None,
            key_field: Some("pairs"),
            defaults: &["1", "10", "100", "1000"],
            hearth_only: false,
            metrics: vec![
                Metric {
                    label: |k| latency_label(k, "p50"),
                    unit: "ms",
                    better: lower,
                    value: |v| num("p50_ms")(v),
                },
                Metric {
                    label: |k| latency_label(k, "p99"),
                    unit: "ms",
                    better: lower,
                    value: |v| num("p99_ms")(v),
                },
                Metric {
                    label: |k| latency_label(k, "max"),
                    unit: "ms",
                    better: lower,
                    value: |v| num("max_ms")(v),
                },
            ],
        },
        Family {
            test: "throughput",
            phase: None,
            key_field: Some("pairs"),
            defaults: &["100"],
            hearth_only: false,
            metrics: vec![
                Metric {
                    label: throughput_label,
                    unit: "entries/s",
                    better: Better::Higher,
                    value: |v| num("delivered_per_s")(v),
                },
                Metric {
                    label: cpu_label,
                    unit: "µs",
                    better: lower,
                    value: |v| num("server_cpu_us_per_delivered")(v),
                },
            ],
        },
        Family {
            test: "initial_sync",
            phase: None,
            key_field: Some("records"),
            defaults: &["10000"],
            hearth_only: false,
            metrics: vec![
                Metric {
                    label: sync_label,
                    unit: "ms",
                    better: lower,
                    value: |v| num("sync_ms_median")(v),
                },
                Metric {
                    label: upload_label,
                    unit: "ms",
                    better: lower,
                    value: |v| num("upload_ms")(v),
                },
            ],
        },
        Family {
            test: "rss",
            phase: Some("baseline"),
            key_field: None,
            defaults: &[""],
            hearth_only: false,
            metrics: vec![Metric {
                label: rss_baseline_label,
                unit: "MiB",
                better: lower,
                value: rss_mib,
            }],
        },
        Family {
            test: "rss",
            phase: Some("idle_connected"),
            key_field: Some("pairs"),
            defaults: &["100"],
            hearth_only: false,
            metrics: vec![Metric {
                label: rss_idle_label,
                unit: "MiB",
                better: lower,
                value: rss_mib,
            }],
        },
        Family {
            test: "rss",
            phase: Some("after_upload"),
            key_field: Some("records"),
            defaults: &["10000"],
            hearth_only: false,
            metrics: vec![Metric {
                label: rss_upload_label,
                unit: "MiB",
                better: lower,
                value: rss_mib,
            }],
        },
        Family {
            test: "idle_connections",
            phase: None,
            key_field: Some("connections"),
            defaults: &["10000"],
            hearth_only: true,
            metrics: vec![
                Metric {
                    label: idle_rss_label,
                    unit: "MiB",
                    better: lower,
                    value: rss_mib,
                },
                Metric {
                    label: idle_p99_label,
                    unit: "ms",
                    better: lower,
                    value: |v| num("active_p99_ms")(v),
                },
            ],
        },
        Family {
            test: "cli",
            phase: None,
            key_field: Some("command"),
            defaults: &["log --json", "appreciate"],
            hearth_only: true,
            metrics: vec![Metric {
                label: cli_label,
                unit: "ms",
                better: lower,
                value: |v| num("median_ms")(v),
            }],
        },
    ]
}

fn str_field<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str)
}
fn test_of(v: &Value) -> Option<&str> {
    str_field(v, "test")
}

/// A size as text: `100` for numbers (integral ones without a fraction), strings as they are.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.to_string(),
            (None, Some(i)) => i.to_string(),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

impl Family {
    /// Whether `line` belongs to this family (any size). Side measurements (lines with a
    /// `"for"` field, such as the RSS before the throughput test) and summary lines are not.
    fn holds(&self, line: &Value) -> bool {
        test_of(line) == Some(self.test)
            && self
                .phase
                .is_none_or(|p| str_field(line, "phase") == Some(p))
            && line.get("for").is_none()
            && !str_field(line, "bench").is_some_and(|b| b.ends_with("-summary"))
    }

    /// The size of one of this family's lines.
    fn key_of(&self, line: &Value) -> String {
        let first = self.defaults.first().copied().unwrap_or_default();
        match self.key_field {
            None => first.to_owned(),
            Some(f) => line
                .get(f)
                .and_then(key_text)
                .unwrap_or_else(|| first.to_owned()),
        }
    }

    /// Sizes measured (with at least one value) in `lines`.
    fn keys_in(&self, lines: &[Value]) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for l in lines.iter().filter(|l| self.holds(l)) {
            let has_value = self.metrics.iter().any(|m| (m.value)(l).is_some());
            let k = self.key_of(l);
            if has_value && !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// The issue's sizes, then, only if none of those was measured on both sides (for
    /// hearth-only families: by hearth), the sizes that were: so that a quick run with smaller
    /// sizes on both sides still gets comparable rows.
    fn keys(&self, peer: &[Value], hearth: &[Value]) -> Vec<String> {
        let hearth_keys = self.keys_in(hearth);
        let both: Vec<String> = if self.hearth_only {
            hearth_keys
        } else {
            let peer_keys = self.keys_in(peer);
            hearth_keys
                .into_iter()
                .filter(|k| peer_keys.contains(k))
                .collect()
        };
        let mut keys: Vec<String> = self.defaults.iter().map(|d| (*d).to_owned()).collect();
        if !both.iter().any(|k| keys.contains(k)) {
            let mut extra: Vec<String> = both.into_iter().filter(|k| !keys.contains(k)).collect();
            extra.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            });
            keys.extend(extra);
        }
        keys
    }
}

/// Median of `xs` (the mean of the middle two for an even count); `None` if empty.
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// Per server: the median over runs of the per-run median of `value` over the lines of
/// `family` at size `key`. Servers in order of first appearance.
fn medians_by_server(
    lines: &[Value],
    family: &Family,
    key: &str,
    value: fn(&Value) -> Option<f64>,
) -> Vec<(String, f64)> {
    runs_by_server(lines, family, key, value)
        .into_iter()
        .filter_map(|(server, per_run)| median(per_run).map(|m| (server, m)))
        .collect()
}

/// Each server's value per run (the median of a run's lines, in run order).
fn runs_by_server(
    lines: &[Value],
    family: &Family,
    key: &str,
    value: fn(&Value) -> Option<f64>,
) -> Vec<(String, Vec<f64>)> {
    let mut by_server: Vec<(String, BTreeMap<String, Vec<f64>>)> = Vec::new();
    for l in lines
        .iter()
        .filter(|l| family.holds(l) && family.key_of(l) == key)
    {
        let Some(x) = value(l) else { continue };
        let server = str_field(l, "server").unwrap_or("").to_owned();
        let run = l.get("run").and_then(key_text).unwrap_or_default();
        let i = match by_server.iter().position(|(s, _)| *s == server) {
            Some(i) => i,
            None => {
                by_server.push((server, BTreeMap::new()));
                by_server.len() - 1
            }
        };
        by_server[i].1.entry(run).or_default().push(x);
    }
    by_server
        .into_iter()
        .map(|(server, runs)| {
            let mut runs: Vec<(String, f64)> = runs
                .into_iter()
                .filter_map(|(run, xs)| median(xs).map(|m| (run, m)))
                .collect();
            // Run numbers in numeric order (the map sorts "10" before "2").
            runs.sort_by_key(|(run, _)| run.parse::<u64>().unwrap_or(u64::MAX));
            (server, runs.into_iter().map(|(_, m)| m).collect())
        })
        .collect()
}

/// One [`Row`] per metric of the issue's table, in its order: latency p50/p99/max at K=1, 10, 100
/// and 1000 pairs; throughput and relay CPU per delivered entry at 100 pairs; initial sync
/// (B's time, median of tries) and A's upload of 10,000 records; relay RSS at baseline, with
/// 100 pairs connected and idle, and after the 10,000-record upload; then the hearth-only
/// rows: RSS and active-pair p99 with 10,000 idle connections, and the medians of
/// `hearth log --json` and `hearth appreciate`.
///
/// Each value is the median over runs (of the per-run median, if a run has several lines) for
/// one server (each run's value is kept too, in run order); `peer` is the better peer server for the metric (lowest, or highest for
/// throughput) and `peer_server` names it; `ratio` is hearth / peer. Rows for the sizes above
/// are always present (with `None` where not measured). If neither side measured a family at
/// those sizes, rows for the sizes both did measure follow (e.g. throughput at 10 pairs when
/// both ran in quick mode). Lines of any `"bench"` are read, except `*-summary` lines; lines
/// with a `"for"` field (side measurements) and `"test":"error"` lines are ignored.
pub fn summarize(peer: &[Value], hearth: &[Value]) -> Vec<Row> {
    let mut rows = Vec::new();
    for family in families() {
        for key in family.keys(peer, hearth) {
            for m in &family.metrics {
                let peer_best = if family.hearth_only {
                    None
                } else {
                    medians_by_server(peer, &family, &key, m.value)
                        .into_iter()
                        .reduce(|best, next| {
                            let next_better = match m.better {
                                Better::Lower => next.1 < best.1,
                                Better::Higher => next.1 > best.1,
                            };
                            if next_better { next } else { best }
                        })
                };
                let hearth_values: Vec<f64> = medians_by_server(hearth, &family, &key, m.value)
                    .into_iter()
                    .map(|(_, x)| x)
                    .collect();
                // hearth is one relay; if its lines name several servers, take their median.
                let hearth_value = median(hearth_values);
                let peer_value = peer_best.as_ref().map(|(_, x)| *x);
                let peer_runs = peer_best
                    .as_ref()
                    .and_then(|(server, _)| {
                        runs_by_server(peer, &family, &key, m.value)
                            .into_iter()
                            .find(|(s, _)| s == server)
                    })
                    .map(|(_, runs)| runs)
                    .unwrap_or_default();
                let hearth_runs = runs_by_server(hearth, &family, &key, m.value)
                    .into_iter()
                    .next()
                    .map(|(_, runs)| runs)
                    .unwrap_or_default();
                let ratio = match (hearth_value, peer_value) {
                    (Some(h), Some(p)) if p != 0.0 => Some(h / p),
                    _ => None,
                };
                rows.push(Row {
                    metric: (m.label)(&key),
                    unit: m.unit.to_owned(),
                    peer: peer_value,
                    peer_server: peer_best.map(|(s, _)| s),
                    hearth: hearth_value,
                    ratio,
                    better: m.better,
                    peer_runs,
                    hearth_runs,
                });
            }
        }
    }
    rows
}

/// Each run's value, `a / b / c`, or `—` without any.
fn runs_cell(runs: &[f64]) -> String {
    if runs.is_empty() {
        return "—".into();
    }
    runs.iter()
        .map(|x| fmt_num(*x))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A target of the issue's table.
enum Target {
    /// hearth / peer must be at most this.
    RatioAtMost(f64),
    /// hearth / peer must be at least this.
    RatioAtLeast(f64),
    /// hearth's value (in the row's unit) must be below `limit`; `text` states it.
    Below { limit: f64, text: &'static str },
}

/// 200 MB (decimal, as in the issue) in MiB.
const RSS_LIMIT_MIB: f64 = 200_000_000.0 / (1024.0 * 1024.0);

fn target_for(metric: &str) -> Option<Target> {
    let is = |label: String| label == metric;
    if ["1", "10", "100"]
        .iter()
        .any(|k| is(latency_label(k, "p99")))
    {
        Some(Target::RatioAtMost(0.2))
    } else if is(throughput_label("100")) {
        Some(Target::RatioAtLeast(20.0))
    } else if is(cpu_label("100")) {
        Some(Target::RatioAtMost(0.02))
    } else if is(sync_label("10000")) || is(rss_idle_label("100")) {
        Some(Target::RatioAtMost(0.1))
    } else if is(idle_rss_label("10000")) {
        Some(Target::Below {
            limit: RSS_LIMIT_MIB,
            text: "< 200 MB",
        })
    } else if is(idle_p99_label("10000")) {
        Some(Target::Below {
            limit: 5.0,
            text: "< 5 ms",
        })
    } else if is(cli_label("log --json")) || is(cli_label("appreciate")) {
        Some(Target::Below {
            limit: 50.0,
            text: "< 50 ms",
        })
    } else {
        None
    }
}

/// A number for the table: whole numbers as they are; otherwise 0 decimals from 100, 1 from
/// 10, 2 from 1, and two significant digits below 1.
fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if (x.fract() == 0.0 && a < 1e15) || a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        // a > 0 here: 0.0 has no fraction. Two significant digits, at most 6 decimals.
        let decimals = (1.0 - a.log10().floor()).clamp(2.0, 6.0) as usize;
        format!("{x:.decimals$}")
    }
}

/// The target cell: the target, then ✓, or ✗ and the factor by which it is missed.
fn target_cell(row: &Row) -> String {
    let Some(target) = target_for(&row.metric) else {
        return "—".to_owned();
    };
    let (text, got, met, missed_by) = match target {
        Target::RatioAtMost(t) => (
            format!("≤ {t}× peer"),
            row.ratio,
            row.ratio.map(|r| r <= t),
            row.ratio.map(|r| r / t),
        ),
        Target::RatioAtLeast(t) => (
            format!("≥ {t}× peer"),
            row.ratio,
            row.ratio.map(|r| r >= t),
            row.ratio
                .map(|r| if r > 0.0 { t / r } else { f64::INFINITY }),
        ),
        Target::Below { limit, text } => (
            text.to_owned(),
            row.hearth,
            row.hearth.map(|h| h < limit),
            row.hearth.map(|h| h / limit),
        ),
    };
    match (got, met, missed_by) {
        (Some(_), Some(true), _) => format!("{text} ✓"),
        (Some(_), Some(false), Some(f)) if f.is_finite() => {
            format!("{text} ✗ (missed by {}×)", fmt_num(f))
        }
        (Some(_), Some(false), _) => format!("{text} ✗"),
        _ => format!("{text}: not measured"),
    }
}

fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt_num)
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The rows as a Markdown table:
/// `| metric | peer (server) | hearth | hearth/peer | target |`.
///
/// Missing values are shown as `—`. The target column states the issue's target where the
/// row has one (hearth / peer ≤ 0.2 for latency p99 at K=1, 10, 100; ≥ 20 for throughput;
/// ≤ 0.02 for relay CPU per entry; ≤ 0.1 for initial sync and for RSS with 100 pairs
/// connected; < 200 MB RSS and < 5 ms active p99 with 10,000 idle connections; < 50 ms for
/// `log --json` and `appreciate`) followed by ✓ when met, or ✗ and the factor by which it is
/// missed (e.g. `≥ 20× peer ✗ (missed by 2.5×)`), or `not measured`.
pub fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| metric | peer (server) | hearth | hearth/peer | target | peer, each run | hearth, each run |\n| --- | ---: | ---: | ---: | --- | ---: | ---: |\n",
    );
    for row in rows {
        let metric = if row.unit.is_empty() {
            row.metric.clone()
        } else {
            format!("{} ({})", row.metric, row.unit)
        };
        let peer = match (row.peer, &row.peer_server) {
            (Some(p), Some(s)) => format!("{} ({s})", fmt_num(p)),
            (p, _) => cell(p),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            escape(&metric),
            escape(&peer),
            cell(row.hearth),
            cell(row.ratio),
            escape(&target_cell(row)),
            runs_cell(&row.peer_runs),
            runs_cell(&row.hearth_runs),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines copied from baseline-20261121.jsonl (3 runs of both peer relays).
    const BASELINE: &str = r#"
{"bench":"automerge-relay","server":"official","run":1,"test":"rss","phase":"baseline","rss_kb":80592,"hwm_kb":81500}
{"bench":"automerge-relay","server":"official","run":1,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":136796,"hwm_kb":136796}
{"bench":"automerge-relay","server":"official","run":1,"test":"latency","pairs":100,"interval_ms":2000,"offered_per_s":50,"sent":300,"lost":0,"samples":300,"p50_ms":17.96,"p95_ms":47.06,"p99_ms":94.89,"max_ms":121.49,"duration_s":6,"server_cpu_s":4.36,"server_cpu_pct":72.5,"client_cpu_pct":22.4,"foreign_cpu_pct":104.6,"client_eld_p99_ms":19.1,"quiet_wait_s":30,"quiet":false}
{"bench":"automerge-relay","server":"official","run":1,"test":"rss","phase":"idle_connected","pairs":100,"for":"throughput","rss_kb":175464,"hwm_kb":175464}
{"bench":"automerge-relay","server":"official","run":1,"test":"throughput","pairs":100,"procs":2,"seconds":10,"counted_s":8,"window":4,"sent":2147,"delivered":2147,"lost":0,"delivered_per_s":218,"server_cpu_us_per_delivered":6055,"lat_p50_ms":1491.86,"lat_p99_ms":3683.71,"server_cpu_s":13,"server_cpu_pct":121.9,"client_cpu_pct":60.4,"foreign_cpu_pct":3.4,"quiet_wait_s":28,"quiet":true}
{"bench":"automerge-relay","server":"official","run":1,"test":"initial_sync","records":10000,"journal":3650,"checkins":520,"appreciations":5830,"strings":"text","changes":10001,"doc_bytes":803609,"upload_ms":6072.6,"upload_server_cpu_pct":80.2,"sync_ms":[2204.1,2535.8,2625.3],"sync_ms_median":2535.8,"failures":0,"server_cpu_s":1.43,"server_cpu_pct":19.4,"client_cpu_pct":99.9,"foreign_cpu_pct":2.4,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"rss","phase":"baseline","rss_kb":74700,"hwm_kb":77652}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":156844,"hwm_kb":156844}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"latency","pairs":100,"interval_ms":2000,"offered_per_s":50,"sent":300,"lost":0,"samples":300,"p50_ms":8.8,"p95_ms":13.34,"p99_ms":16.87,"max_ms":24.5,"duration_s":6,"server_cpu_s":1.31,"server_cpu_pct":21.7,"client_cpu_pct":22.4,"foreign_cpu_pct":3.3,"client_eld_p99_ms":9.4,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"rss","phase":"idle_connected","pairs":100,"for":"throughput","rss_kb":165564,"hwm_kb":165564}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"throughput","pairs":100,"procs":2,"seconds":10,"counted_s":8,"window":4,"sent":4877,"delivered":4877,"lost":0,"delivered_per_s":495,"server_cpu_us_per_delivered":1474,"lat_p50_ms":602.98,"lat_p99_ms":1616.34,"server_cpu_s":7.19,"server_cpu_pct":69.8,"client_cpu_pct":113.8,"foreign_cpu_pct":2.2,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"initial_sync","records":10000,"journal":3650,"checkins":520,"appreciations":5830,"strings":"text","changes":10001,"doc_bytes":803609,"upload_ms":4074.6,"upload_server_cpu_pct":78.5,"sync_ms":[1844.3,2090,2175.5],"sync_ms_median":2090,"failures":0,"server_cpu_s":0.47,"server_cpu_pct":7.7,"client_cpu_pct":112.3,"foreign_cpu_pct":0.5,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"official","run":2,"test":"rss","phase":"baseline","rss_kb":75104,"hwm_kb":76684}
{"bench":"automerge-relay","server":"official","run":2,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":145628,"hwm_kb":145628}
{"bench":"automerge-relay","server":"official","run":2,"test":"latency","pairs":100,"p50_ms":15.88,"p99_ms":46.06}
{"bench":"automerge-relay","server":"official","run":2,"test":"throughput","pairs":100,"procs":2,"seconds":10,"counted_s":8,"window":4,"sent":2337,"delivered":2337,"lost":0,"delivered_per_s":254,"server_cpu_us_per_delivered":5374,"lat_p50_ms":1409.32,"lat_p99_ms":3514.13,"server_cpu_s":12.56,"server_cpu_pct":117.3,"client_cpu_pct":64.5,"foreign_cpu_pct":4.9,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"official","run":2,"test":"initial_sync","records":10000,"upload_ms":5035,"sync_ms":[2092.3,2393.6,2426.3],"sync_ms_median":2393.6,"failures":0}
{"bench":"automerge-relay","server":"repo2","run":2,"test":"rss","phase":"baseline","rss_kb":72436,"hwm_kb":75796}
{"bench":"automerge-relay","server":"repo2","run":2,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":150068,"hwm_kb":153200}
{"bench":"automerge-relay","server":"repo2","run":2,"test":"latency","pairs":100,"p50_ms":8.22,"p99_ms":23.92}
{"bench":"automerge-relay","server":"repo2","run":2,"test":"throughput","pairs":100,"procs":2,"seconds":10,"counted_s":8,"window":4,"sent":5065,"delivered":5065,"lost":0,"delivered_per_s":522,"server_cpu_us_per_delivered":1422,"lat_p50_ms":609.46,"lat_p99_ms":1425.28,"server_cpu_s":7.2,"server_cpu_pct":68.6,"client_cpu_pct":112.9,"foreign_cpu_pct":2.1,"quiet_wait_s":2,"quiet":true}
{"bench":"automerge-relay","server":"repo2","run":2,"test":"initial_sync","records":10000,"upload_ms":4561.3,"sync_ms":[1799.7,2109.3,2214.6],"sync_ms_median":2109.3,"failures":0}
{"bench":"automerge-relay","server":"official","run":3,"test":"rss","phase":"baseline","rss_kb":72652,"hwm_kb":73664}
{"bench":"automerge-relay","server":"official","run":3,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":146308,"hwm_kb":146308}
{"bench":"automerge-relay","server":"official","run":3,"test":"latency","pairs":100,"p50_ms":18.8,"p99_ms":52.58}
{"bench":"automerge-relay","server":"official","run":3,"test":"throughput","pairs":100,"delivered_per_s":210,"server_cpu_us_per_delivered":6230}
{"bench":"automerge-relay","server":"official","run":3,"test":"initial_sync","records":10000,"upload_ms":5207.5,"sync_ms_median":2439}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"rss","phase":"baseline","rss_kb":71552,"hwm_kb":74144}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":156852,"hwm_kb":168440}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"rss","phase":"idle_connected","pairs":100,"for":"throughput","rss_kb":165208,"hwm_kb":168440}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"latency","pairs":100,"p50_ms":8.59,"p99_ms":22.23}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"throughput","pairs":100,"delivered_per_s":521,"server_cpu_us_per_delivered":1453}
{"bench":"automerge-relay","server":"repo2","run":3,"test":"initial_sync","records":10000,"upload_ms":4470.7,"sync_ms_median":2080.5}
{"bench":"automerge-relay-summary","server":"repo2","metric":"latency K=100 p99","unit":"ms","median":1,"min":1,"max":1,"runs":3}
"#;

    /// Hand-made hearth lines: 3 runs.
    const HEARTH: &str = r#"
{"bench":"hearth-relay","server":"hearth","run":1,"test":"latency","pairs":100,"p50_ms":1.0,"p95_ms":2.0,"p99_ms":3.0}
{"bench":"hearth-relay","server":"hearth","run":2,"test":"latency","pairs":100,"p50_ms":1.2,"p95_ms":2.0,"p99_ms":9.0}
{"bench":"hearth-relay","server":"hearth","run":3,"test":"latency","pairs":100,"p50_ms":0.8,"p95_ms":2.0,"p99_ms":4.0}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"latency","pairs":1000,"p50_ms":2.0,"p95_ms":3.0,"p99_ms":6.0}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"throughput","pairs":100,"delivered_per_s":5000,"server_cpu_us_per_delivered":20}
{"bench":"hearth-relay","server":"hearth","run":2,"test":"throughput","pairs":100,"delivered_per_s":7000,"server_cpu_us_per_delivered":30}
{"bench":"hearth-relay","server":"hearth","run":3,"test":"throughput","pairs":100,"delivered_per_s":6000,"server_cpu_us_per_delivered":25}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"rss","phase":"baseline","rss_kb":4096}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"rss","phase":"idle_connected","pairs":100,"rss_kb":10240}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"rss","phase":"idle_connected","pairs":100,"for":"throughput","rss_kb":999999}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"idle_connections","connections":10000,"rss_kb":153600,"active_p99_ms":7.5}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"cli","command":"log --json","median_ms":12.5}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"cli","command":"appreciate","median_ms":40}
{"bench":"hearth-relay","server":"hearth","run":2,"test":"cli","command":"appreciate","median_ms":80}
"#;

    fn lines(text: &str) -> Vec<Value> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn row<'a>(rows: &'a [Row], metric: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.metric == metric)
            .unwrap_or_else(|| panic!("no row {metric:?} in {rows:#?}"))
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn medians_of_three_runs_and_the_better_peer_server() {
        let rows = summarize(&lines(BASELINE), &lines(HEARTH));
        // official p99 at K=100: 94.89, 46.06, 52.58 -> 52.58; repo2: 16.87, 23.92, 22.23 -> 22.23.
        let p99 = row(&rows, "latency K=100 p99");
        assert!(close(p99.peer, 22.23));
        assert_eq!(p99.peer_server.as_deref(), Some("repo2"));
        assert!(close(p99.hearth, 4.0)); // 3, 9, 4
        assert!(close(p99.ratio, 4.0 / 22.23));
        assert_eq!(p99.better, Better::Lower);
        // Baseline RSS: official 80592, 75104, 72652 -> 75104; repo2 74700, 72436, 71552 -> 72436.
        let base = row(&rows, "relay RSS baseline");
        assert!(close(base.peer, 72436.0 / 1024.0));
        assert_eq!(base.peer_server.as_deref(), Some("repo2"));
        // Initial sync: official 2535.8, 2393.6, 2439 -> 2439; repo2 2090, 2109.3, 2080.5 -> 2090.
        let sync = row(&rows, "initial sync (B, median of tries), 10000 records");
        assert!(close(sync.peer, 2090.0));
        assert_eq!(sync.hearth, None);
        assert_eq!(sync.ratio, None);
    }

    #[test]
    fn throughput_prefers_the_higher_peer_and_ratio_is_hearth_over_peer() {
        let rows = summarize(&lines(BASELINE), &lines(HEARTH));
        // official 218, 254, 210 -> 218; repo2 495, 522, 521 -> 521 (higher is better).
        let tput = row(&rows, "throughput delivered, 100 pairs");
        assert_eq!(tput.better, Better::Higher);
        assert!(close(tput.peer, 521.0));
        assert_eq!(tput.peer_server.as_deref(), Some("repo2"));
        assert!(close(tput.hearth, 6000.0));
        assert!(close(tput.ratio, 6000.0 / 521.0));
        // CPU per entry: official 6055, 5374, 6230 -> 6055; repo2 1474, 1422, 1453 -> 1453.
        let cpu = row(&rows, "relay CPU per delivered entry, 100 pairs");
        assert_eq!(cpu.better, Better::Lower);
        assert!(close(cpu.peer, 1453.0));
        assert!(close(cpu.ratio, 25.0 / 1453.0));
    }

    #[test]
    fn side_measurements_and_summary_lines_are_ignored() {
        let rows = summarize(&lines(BASELINE), &lines(HEARTH));
        // repo2 idle with 100 pairs: 156844, 150068, 156852 -> 156844 (not the "for" lines);
        // official: 136796, 145628, 146308 -> 145628, the lower.
        let idle = row(&rows, "relay RSS idle, 100 pairs connected");
        assert!(close(idle.peer, 145628.0 / 1024.0));
        assert_eq!(idle.peer_server.as_deref(), Some("official"));
        assert!(close(idle.hearth, 10.0));
        // The summary line's "median": 1 must not have been read as a latency.
        assert!(close(row(&rows, "latency K=100 p99").peer, 22.23));
    }

    #[test]
    fn rows_follow_the_issue_table_and_hearth_only_rows_have_no_peer() {
        let rows = summarize(&lines(BASELINE), &lines(HEARTH));
        let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency K=1 p50",
                "latency K=1 p99",
                "latency K=1 max",
                "latency K=10 p50",
                "latency K=10 p99",
                "latency K=10 max",
                "latency K=100 p50",
                "latency K=100 p99",
                "latency K=100 max",
                "latency K=1000 p50",
                "latency K=1000 p99",
                "latency K=1000 max",
                "throughput delivered, 100 pairs",
                "relay CPU per delivered entry, 100 pairs",
                "initial sync (B, median of tries), 10000 records",
                "initial sync upload (A), 10000 records",
                "relay RSS baseline",
                "relay RSS idle, 100 pairs connected",
                "relay RSS after 10000-record upload",
                "relay RSS with 10000 idle connections",
                "active pair p99 with 10000 idle connections",
                "cli `log --json` median",
                "cli `appreciate` median",
            ]
        );
        // Each run's figure, in run order, beside the median.
        assert_eq!(row(&rows, "latency K=100 p99").hearth_runs, [3.0, 9.0, 4.0]);
        let k1000 = row(&rows, "latency K=1000 p99");
        assert_eq!((k1000.peer, k1000.ratio), (None, None));
        assert!(close(k1000.hearth, 6.0));
        let idle = row(&rows, "relay RSS with 10000 idle connections");
        assert_eq!(idle.peer_server, None);
        assert!(close(idle.hearth, 150.0));
        // appreciate: runs 1 and 2 -> mean of the middle two.
        assert!(close(row(&rows, "cli `appreciate` median").hearth, 60.0));
    }

    #[test]
    fn a_run_with_several_lines_counts_once_with_its_median() {
        let hearth = lines(
            r#"{"bench":"hearth-relay","server":"hearth","run":1,"test":"cli","command":"log --json","median_ms":10}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"cli","command":"log --json","median_ms":11}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"cli","command":"log --json","median_ms":30}
{"bench":"hearth-relay","server":"hearth","run":2,"test":"cli","command":"log --json","median_ms":20}
{"bench":"hearth-relay","server":"hearth","run":3,"test":"cli","command":"log --json","median_ms":40}"#,
        );
        let rows = summarize(&[], &hearth);
        // Run medians 11, 20, 40 -> 20 (the 30 of run 1 does not count as a run of its own).
        assert!(close(row(&rows, "cli `log --json` median").hearth, 20.0));
    }

    #[test]
    fn quick_runs_with_smaller_sizes_on_both_sides_get_comparable_rows() {
        let peer = lines(
            r#"{"bench":"automerge-relay","server":"repo2","run":1,"test":"throughput","pairs":10,"delivered_per_s":54,"server_cpu_us_per_delivered":3000}
{"bench":"automerge-relay","server":"repo2","run":1,"test":"latency","pairs":10,"p50_ms":9,"p99_ms":20}"#,
        );
        let hearth = lines(
            r#"{"bench":"hearth-relay","server":"hearth","run":1,"test":"throughput","pairs":10,"delivered_per_s":540,"server_cpu_us_per_delivered":30}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"latency","pairs":10,"p50_ms":1,"p99_ms":2}
{"bench":"hearth-relay","server":"hearth","run":1,"test":"latency","pairs":3,"p50_ms":1,"p99_ms":2}"#,
        );
        let rows = summarize(&peer, &hearth);
        let tput = row(&rows, "throughput delivered, 10 pairs");
        assert!(close(tput.ratio, 10.0));
        // The issue's size stays, empty; latency needs no extra sizes since K=10 is one of them.
        assert_eq!(row(&rows, "throughput delivered, 100 pairs").peer, None);
        assert!(!rows.iter().any(|r| r.metric.starts_with("latency K=3 ")));
        // No target for sizes other than the issue's.
        let table = render_table(&rows);
        let line = table
            .lines()
            .find(|l| l.contains("throughput delivered, 10 pairs"))
            .unwrap();
        // No target; then each run's value, one run on each side.
        assert!(line.ends_with("| — | 54 | 540 |"), "{line}");
    }

    #[test]
    fn table_shows_servers_dashes_and_targets() {
        let rows = summarize(&lines(BASELINE), &lines(HEARTH));
        let table = render_table(&rows);
        let mut it = table.lines();
        assert_eq!(
            it.next(),
            Some(
                "| metric | peer (server) | hearth | hearth/peer | target | peer, each run | hearth, each run |"
            )
        );
        let line = |start: &str| -> String {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {start} (")))
                .unwrap_or_else(|| panic!("no line for {start} in\n{table}"))
                .to_owned()
        };
        // 4 / 22.23 = 0.18 <= 0.2.
        assert_eq!(
            line("latency K=100 p99"),
            "| latency K=100 p99 (ms) | 22.2 (repo2) | 4 | 0.18 | ≤ 0.2× peer ✓ | 16.9 / 23.9 / 22.2 | 3 / 9 / 4 |"
        );
        // Not measured on either side.
        assert_eq!(
            line("latency K=1 p99"),
            "| latency K=1 p99 (ms) | — | — | — | ≤ 0.2× peer: not measured | — | — |"
        );
        // p50 has no target.
        assert!(line("latency K=100 p50").contains("| — |"));
        // 6000 / 521 = 11.5 < 20: missed by 20 / 11.5 = 1.74.
        assert_eq!(
            line("throughput delivered, 100 pairs"),
            "| throughput delivered, 100 pairs (entries/s) | 521 (repo2) | 6000 | 11.5 | ≥ 20× peer ✗ (missed by 1.74×) | 495 / 522 / 521 | 5000 / 7000 / 6000 |"
        );
        // 25 / 1453 = 0.0172 <= 0.02.
        assert!(
            line("relay CPU per delivered entry, 100 pairs").contains("| 0.017 | ≤ 0.02× peer ✓ |")
        );
        // 10 MiB / 142.2 MiB = 0.07 <= 0.1.
        assert!(line("relay RSS idle, 100 pairs connected").contains("≤ 0.1× peer ✓ |"));
        assert!(
            line("initial sync (B, median of tries), 10000 records")
                .contains("| — | — | ≤ 0.1× peer: not measured |")
        );
        // 150 MiB < 200 MB; 7.5 ms misses 5 ms by 1.5x.
        assert_eq!(
            line("relay RSS with 10000 idle connections"),
            "| relay RSS with 10000 idle connections (MiB) | — | 150 | — | < 200 MB ✓ | — | 150 |"
        );
        assert!(
            line("active pair p99 with 10000 idle connections")
                .contains("| 7.50 | — | < 5 ms ✗ (missed by 1.50×) |")
        );
        assert!(line("cli `log --json` median").contains("| 12.5 | — | < 50 ms ✓ |"));
        assert!(
            line("cli `appreciate` median").contains("| 60 | — | < 50 ms ✗ (missed by 1.20×) |")
        );
        assert!(line("relay RSS after 10000-record upload").contains("| — | — | — |"));
    }

    #[test]
    fn peer_output_keeps_result_lines_and_sets_the_run() {
        let stdout = r#"{"bench":"automerge-relay","server":"official","run":1,"test":"latency","pairs":1,"p50_ms":12.94,"p99_ms":28.51}
{"bench":"automerge-relay","server":"official","run":1,"test":"storage","data_kb":8764}

== summary (/tmp/w/results/20261122T000000Z.jsonl)
metric  official (1 run)
------  ----------------
{"bench":"automerge-relay-summary","server":"official","metric":"latency K=1 p50","unit":"ms","median":12.94,"min":12.94,"max":12.94,"runs":1}
{not json
"#;
        let got = parse_peer_output(stdout, 3);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|v| v["run"] == 3));
        assert_eq!(got[0]["p99_ms"], 28.51);
    }

    #[test]
    fn numbers_are_formatted_for_reading() {
        assert_eq!(fmt_num(521.0), "521");
        assert_eq!(fmt_num(1473.6), "1474");
        assert_eq!(fmt_num(11.516), "11.5");
        assert_eq!(fmt_num(7.5), "7.50");
        assert_eq!(fmt_num(0.1799), "0.18");
        assert_eq!(fmt_num(0.0172), "0.017");
        assert_eq!(fmt_num(0.0), "0");
    }
}
