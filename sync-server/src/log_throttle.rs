//! Keeps the relay's logs bounded under attack. A flood of failed logins, refused
//! creations or rate-limited peers would otherwise write one line per attempt (a stranger
//! once wrote 5 MB in half a minute); here each log line, by where it is in the code, is
//! written at most [`PER_MINUTE`] times a minute, and the rest are counted and summed up
//! once the minute is over: `… and 9812 more like "authentication refused" in the last
//! minute`. It is a [`tracing_subscriber`] per-layer filter, so the library's events stay
//! as they are and only the binary's output is thinned; the summaries come from
//! [`LogThrottle::summarize`], which the binary runs on a timer.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// Lines written per call site and minute before the rest are only counted.
pub const PER_MINUTE: u32 = 20;

/// The window lines are counted in.
const WINDOW: Duration = Duration::from_secs(60);

/// The target of the summary lines (never throttled themselves).
const TARGET: &str = "hearth_relay::logs";

/// One call site's count in its current window.
#[derive(Debug)]
struct Tally {
    started: Instant,
    written: u32,
    suppressed: u64,
    level: Level,
    /// The message of the first line held back, for the summary.
    message: String,
}

/// Lines held back at one call site in a window that is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The level of those lines.
    pub level: Level,
    /// The message of the first of them.
    pub message: String,
    /// How many were held back.
    pub suppressed: u64,
}

/// The throttle; clones share their counts.
#[derive(Debug, Clone, Default)]
pub struct LogThrottle {
    tallies: Arc<Mutex<Tallies<Identifier>>>,
}

/// The counts, by call site `K`.
#[derive(Debug)]
struct Tallies<K>(HashMap<K, Tally>);

impl<K> Default for Tallies<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq> Tallies<K> {
    /// Whether a line at `site` of `level`, arriving at `now`, is written;
    /// `message` gives the line's text if it is held back (called only then).
    fn admit(
        &mut self,
        site: K,
        level: Level,
        now: Instant,
        message: impl FnOnce() -> String,
    ) -> bool {
        let tally = self.0.entry(site).or_insert_with(|| Tally {
            started: now,
            written: 0,
            suppressed: 0,
            level,
            message: String::new(),
        });
        if now.duration_since(tally.started) >= WINDOW && tally.suppressed == 0 {
            tally.started = now;
            tally.written = 0;
        }
        if tally.written < PER_MINUTE {
            tally.written += 1;
            return true;
        }
        if tally.suppressed == 0 {
            tally.message = message();
        }
        tally.suppressed += 1;
        false
    }

    /// Takes the summaries of every window over by `now` that held lines back, and
    /// forgets those call sites (their next line starts a new window).
    fn take_summaries(&mut self, now: Instant) -> Vec<Summary> {
        let mut out = Vec::new();
        self.0.retain(|_, tally| {
            let over = now.duration_since(tally.started) >= WINDOW;
            if over && tally.suppressed > 0 {
                out.push(Summary {
                    level: tally.level,
                    message: std::mem::take(&mut tally.message),
                    suppressed: tally.suppressed,
                });
            }
            !over
        });
        out
    }
}

impl LogThrottle {
    fn tallies(&self) -> std::sync::MutexGuard<'_, Tallies<Identifier>> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the summaries due at `now` (or all of them, with `all`, when the relay
    /// stops) as log lines of their own.
    pub fn summarize(&self, now: Instant, all: bool) {
        let due = self
            .tallies()
            .take_summaries(if all { now + WINDOW } else { now });
        for s in due {
            let line = format!(
                "… and {} more like {:?} in the last minute",
                s.suppressed, s.message
            );
            match s.level {
                Level::ERROR => tracing::error!(target: TARGET, "{line}"),
                Level::WARN => tracing::warn!(target: TARGET, "{line}"),
                Level::INFO => tracing::info!(target: TARGET, "{line}"),
                _ => tracing::debug!(target: TARGET, "{line}"),
            }
        }
    }
}

/// The `message` field of an event.
#[derive(Default)]
struct MessageOf(String);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S> Filter<S> for LogThrottle {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_event() && meta.target() != TARGET {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        if meta.target() == TARGET {
            return true;
        }
        self.tallies()
            .admit(meta.callsite(), *meta.level(), Instant::now(), || {
                let mut message = MessageOf::default();
                event.record(&mut message);
                message.0
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_site_writes_its_budget_then_counts_and_sums_up_once_the_minute_is_over() {
        let mut tallies = Tallies::default();
        let t0 = Instant::now();
        let written = (0..1000)
            .filter(|i| tallies.admit("a", Level::INFO, t0, || format!("refused {i}")))
            .count();
        assert_eq!(written, PER_MINUTE as usize);
        assert!(
            tallies.admit("b", Level::WARN, t0, String::new),
            "another site has its own budget"
        );
        assert!(
            tallies.take_summaries(t0 + WINDOW / 2).is_empty(),
            "not over yet"
        );
        assert_eq!(
            tallies.take_summaries(t0 + WINDOW),
            vec![Summary {
                level: Level::INFO,
                message: format!("refused {PER_MINUTE}"),
                suppressed: 1000 - u64::from(PER_MINUTE),
            }]
        );
        // The next minute starts afresh.
        let t1 = t0 + WINDOW;
        assert!(tallies.admit("a", Level::INFO, t1, String::new));
        assert!(tallies.take_summaries(t1 + WINDOW).is_empty());
    }

    #[test]
    fn a_site_within_its_budget_is_written_again_next_minute_without_a_summary() {
        let mut tallies = Tallies::default();
        let t0 = Instant::now();
        for _ in 0..PER_MINUTE {
            assert!(tallies.admit("a", Level::INFO, t0, String::new));
        }
        assert!(tallies.admit("a", Level::INFO, t0 + WINDOW, String::new));
        assert!(tallies.take_summaries(t0 + WINDOW * 3).is_empty());
    }

    #[test]
    fn a_site_over_its_budget_keeps_counting_until_it_is_summed_up() {
        let mut tallies = Tallies::default();
        let t0 = Instant::now();
        for _ in 0..=PER_MINUTE {
            tallies.admit("a", Level::WARN, t0, || "flood".into());
        }
        assert!(
            !tallies.admit("a", Level::WARN, t0 + WINDOW * 2, String::new),
            "held back until its summary is written"
        );
        let summaries = tallies.take_summaries(t0 + WINDOW * 2);
        assert_eq!(summaries[0].suppressed, 2);
        assert_eq!(summaries[0].message, "flood");
    }
}
