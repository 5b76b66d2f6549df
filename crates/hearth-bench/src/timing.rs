//! Timing whole processes, as a person experiences them: from spawn to exit, output read.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Summary of repeated runs.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Fastest run.
    pub min: Duration,
    /// Median run.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// Slowest run.
    pub max: Duration,
}

/// Summarises samples (which must not be empty).
pub fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Summary {
        min: at(0.0),
        median: at(0.5),
        p90: at(0.9),
        max: at(1.0),
    }
}

/// Percentiles of many samples, for latency distributions.
#[derive(Debug, Clone, Copy)]
pub struct Tail {
    /// Median.
    pub median: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

/// Median, p95, p99 and max of `samples` (which must not be empty), nearest-rank.
pub fn summarize_with_p99(mut samples: Vec<Duration>) -> Tail {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Tail {
        median: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Runs `bin ARGS` once with `env`, reading its output; fails unless it succeeds.
pub fn time_once(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<Duration> {
    let mut cmd = Command::new(bin);
    // A passphrase only where the scenario gives one, never the caller's.
    cmd.args(args)
        .env_remove("HEARTH_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} {args:?} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
