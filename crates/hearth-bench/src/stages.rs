//! Where a write's time goes: the stages of one write from A's document to B's, as the
//! clients time them exactly and as the relay times its part in `/metrics`, each reported
//! as p50, p99, p99.9 and max, so a tail can be attributed to a stage.
//!
//! Client stages (per sample, exact): `write` (A's change, seal, sign, send), `transit`
//! (A's frame sent → B's frame read: loopback both ways and the relay), `verify` (B decodes
//! and checks the signature), `decrypt`, `apply` (into B's document).
//!
//! Relay stages (from the relay's histograms, the difference between a scrape before and
//! one after the run): `relay_wait`, `relay_verify`, `relay_write`, then from the frame's
//! arrival `relay_committed` and `relay_forwarded` (see the relay's `metrics` module). A
//! percentile of a histogram is interpolated within its bucket as Prometheus'
//! `histogram_quantile` does (buckets are √2 wide, so within ±20%); its max is the upper
//! bound of the highest bucket that gained a sample.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The relay histograms `stages` reads, by the name it reports them under.
pub const RELAY_HISTOGRAMS: [(&str, &str); 5] = [
    ("relay_wait", "hearth_relay_push_wait_seconds"),
    ("relay_verify", "hearth_relay_push_verify_seconds"),
    ("relay_write", "hearth_relay_push_write_seconds"),
    ("relay_committed", "hearth_relay_push_committed_seconds"),
    ("relay_forwarded", "hearth_relay_push_forwarded_seconds"),
];

/// p50, p99, p99.9 and max of one stage, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Samples.
    pub n: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Stat {
    /// Nearest-rank percentiles of `samples` (sorted here).
    pub fn of(samples: &mut [Duration]) -> Stat {
        samples.sort_unstable();
        Stat {
            n: samples.len() as u64,
            p50_ms: crate::relay::percentile(samples, 50.0),
            p99_ms: crate::relay::percentile(samples, 99.0),
            p999_ms: crate::relay::percentile(samples, 99.9),
            max_ms: samples.last().map_or(f64::NAN, |d| round(ms(*d))),
        }
    }

    /// As JSON: `{"n", "p50_ms", "p99_ms", "p999_ms", "max_ms"}`.
    pub fn json(&self) -> Value {
        json!({
            "n": self.n, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms, "max_ms": self.max_ms,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The text of the relay's `/metrics` at `host` (`ADDR:PORT`).
///
/// # Errors
/// If the relay does not answer.
pub async fn scrape(host: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = TcpStream::connect(host).await?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    tcp.read_to_string(&mut body).await?;
    Ok(body)
}

/// One histogram's cumulative bucket counts, by upper bound (seconds; `+Inf` last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// The buckets of histogram `name` in a `/metrics` text.
    ///
    /// # Errors
    /// If it has none.
    pub fn parse(text: &str, name: &str) -> Result<Buckets> {
        let prefix = format!("{name}_bucket{{");
        let mut buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (labels, count) = rest.split_once("} ")?;
                let le = labels.split(',').find_map(|l| l.strip_prefix("le=\""))?;
                let le = le.trim_end_matches('"');
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, count.trim().parse().ok()?))
            })
            .collect();
        if buckets.is_empty() {
            anyhow::bail!("no histogram {name} in the relay's /metrics");
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Buckets(buckets))
    }

    /// What was observed after `before` was read.
    pub fn since(&self, before: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|(le, n)| {
                    let old = before
                        .0
                        .iter()
                        .find(|(b, _)| b == le)
                        .map_or(0, |(_, n)| *n);
                    (*le, n.saturating_sub(old))
                })
                .collect(),
        )
    }

    fn count(&self) -> u64 {
        self.0.last().map_or(0, |(_, n)| *n)
    }

    /// The `q` quantile in seconds, interpolated within its bucket.
    fn quantile(&self, q: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return f64::NAN;
        }
        let rank = q * n as f64;
        let mut lower = (0.0, 0u64);
        for &(le, cum) in &self.0 {
            if cum as f64 >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let inside = (cum - lower.1) as f64;
                let frac = if inside > 0.0 {
                    (rank - lower.1 as f64) / inside
                } else {
                    1.0
                };
                return lower.0 + (le - lower.0) * frac.clamp(0.0, 1.0);
            }
            lower = (le, cum);
        }
        lower.0
    }

    /// The upper bound of the highest bucket with a sample, in seconds.
    fn max(&self) -> f64 {
        let mut below = 0;
        let mut lower = 0.0;
        for &(le, cum) in &self.0 {
            if cum > below && le.is_finite() {
                lower = le;
            } else if cum > below {
                // Past the last finite bound: at least that much.
                return lower;
            }
            below = cum;
        }
        lower
    }

    /// The stage's figures.
    pub fn stat(&self) -> Stat {
        let ms = |s: f64| round(s * 1000.0);
        Stat {
            n: self.count(),
            p50_ms: ms(self.quantile(0.5)),
            p99_ms: ms(self.quantile(0.99)),
            p999_ms: ms(self.quantile(0.999)),
            max_ms: ms(self.max()),
        }
    }
}

/// The relay's stage histograms at one moment.
#[derive(Debug, Clone, Default)]
pub struct RelaySnapshot(BTreeMap<&'static str, Buckets>);

impl RelaySnapshot {
    /// Reads them from the relay at `host`.
    ///
    /// # Errors
    /// If the relay does not answer or lacks one.
    pub async fn take(host: &str) -> Result<RelaySnapshot> {
        let text = scrape(host)
            .await
            .context("scraping the relay's /metrics")?;
        Self::from_text(&text)
    }

    /// Reads them from a `/metrics` text.
    ///
    /// # Errors
    /// If one is missing.
    pub fn from_text(text: &str) -> Result<RelaySnapshot> {
        let mut all = BTreeMap::new();
        for (stage, metric) in RELAY_HISTOGRAMS {
            all.insert(stage, Buckets::parse(text, metric)?);
        }
        Ok(RelaySnapshot(all))
    }

    /// Each stage's figures for what was observed after `before`.
    pub fn since(&self, before: &RelaySnapshot) -> Vec<(&'static str, Stat)> {
        RELAY_HISTOGRAMS
            .iter()
            .filter_map(|(stage, _)| {
                let now = self.0.get(stage)?;
                let then = before.0.get(stage).cloned().unwrap_or_default();
                Some((*stage, now.since(&then).stat()))
            })
            .collect()
    }
}

/// Stages as one JSON object, `{stage: {p50_ms, …}}`.
pub fn json(stages: &[(&str, Stat)]) -> Value {
    Value::Object(
        stages
            .iter()
            .map(|(name, stat)| ((*name).to_owned(), stat.json()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE hearth_relay_push_write_seconds histogram
hearth_relay_push_write_seconds_sum 0.5
hearth_relay_push_write_seconds_count 10
hearth_relay_push_write_seconds_bucket{le=\"0.001\"} 4
hearth_relay_push_write_seconds_bucket{le=\"0.002\"} 9
hearth_relay_push_write_seconds_bucket{le=\"0.1\"} 10
hearth_relay_push_write_seconds_bucket{le=\"+Inf\"} 10
";

    #[test]
    fn quantiles_interpolate_within_their_bucket_and_max_is_the_top_bound() {
        let b = Buckets::parse(TEXT, "hearth_relay_push_write_seconds").unwrap();
        let stat = b.stat();
        assert_eq!(stat.n, 10);
        // Rank 5 of 10: the first of the five in (1 ms, 2 ms].
        assert!((stat.p50_ms - 1.2).abs() < 1e-9, "{stat:?}");
        // Rank 9.9: in the last bucket (2 ms, 100 ms], 0.9 of the way.
        assert!((stat.p99_ms - 90.2).abs() < 1e-9, "{stat:?}");
        assert_eq!(stat.max_ms, 100.0);
    }

    #[test]
    fn a_difference_counts_only_what_came_after() {
        let before = Buckets::parse(TEXT, "hearth_relay_push_write_seconds").unwrap();
        let after_text = TEXT
            .replace("{le=\"0.002\"} 9", "{le=\"0.002\"} 11")
            .replace("{le=\"0.1\"} 10", "{le=\"0.1\"} 12")
            .replace("{le=\"+Inf\"} 10", "{le=\"+Inf\"} 12");
        let after = Buckets::parse(&after_text, "hearth_relay_push_write_seconds").unwrap();
        let stat = after.since(&before).stat();
        assert_eq!(stat.n, 2);
        assert_eq!(stat.max_ms, 2.0, "the slow one came before");
        assert!(Buckets::parse(TEXT, "missing").is_err());
    }

    #[test]
    fn exact_stages_use_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let stat = Stat::of(&mut samples);
        assert_eq!(stat.n, 1000);
        assert_eq!(stat.p50_ms, 0.5);
        assert_eq!(stat.p99_ms, 0.99);
        assert_eq!(stat.p999_ms, 1.0);
        assert_eq!(stat.max_ms, 1.0);
    }
}
