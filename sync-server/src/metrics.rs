//! The counters the relay exposes at `GET /metrics` (OpenMetrics text, which Prometheus
//! reads), so an operator can watch load and refusals without the relay ever logging
//! payloads. `prometheus-client` keeps the exposition format, the `_total` suffixes and one
//! series per reject code right; the hot paths only ever add one to an atomic.
//!
//! The store thread counts its own work ([`StoreStats`]); those counters are registered
//! here too, so one scrape shows both sides.
//!
//! A push's way through the relay is timed in stages, each a histogram of seconds with
//! the same buckets (8 µs to ~6 s, each √2 wider than the last), so a slow write can be
//! attributed: `push_wait` (frame arrived → taken into a group by the store thread),
//! `push_verify` (the group's signatures), `push_write` (its transaction, `fsync`
//! included), then from the frame's arrival, `push_committed` (its outcome back on the
//! connection, `Committed` about to be queued) and `push_forwarded` (the `Event` handed to
//! each live subscriber's socket writer).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use hearth_proto::RejectCode;

use crate::worker::StoreStats;

/// Every reject code the relay sends, each shown from the start (at 0), so an alert on
/// `increase(...)` sees the first one.
const REJECT_CODES: [RejectCode; 21] = [
    RejectCode::UnsupportedVersion,
    RejectCode::BadFrame,
    RejectCode::TooLarge,
    RejectCode::RateLimited,
    RejectCode::Unauthorized,
    RejectCode::NotMember,
    RejectCode::Conflict,
    RejectCode::QuotaExceeded,
    RejectCode::StorageUnavailable,
    RejectCode::Internal,
    RejectCode::InviteExpired,
    RejectCode::InviteUsed,
    RejectCode::Invalid,
    RejectCode::InviteRevoked,
    RejectCode::SpaceDeleted,
    RejectCode::ClockSkew,
    RejectCode::TokenRequired,
    RejectCode::TokenUnknown,
    RejectCode::TokenExpired,
    RejectCode::TokenUsed,
    RejectCode::SpaceExpired,
];

/// A reject code's label value.
fn reject_label(code: RejectCode) -> &'static str {
    match code {
        RejectCode::UnsupportedVersion => "unsupported_version",
        RejectCode::BadFrame => "bad_frame",
        RejectCode::TooLarge => "too_large",
        RejectCode::RateLimited => "rate_limited",
        RejectCode::Unauthorized => "unauthorized",
        RejectCode::NotMember => "not_member",
        RejectCode::Conflict => "conflict",
        RejectCode::QuotaExceeded => "quota_exceeded",
        RejectCode::StorageUnavailable => "storage_unavailable",
        RejectCode::Internal => "internal",
        RejectCode::InviteExpired => "invite_expired",
        RejectCode::InviteUsed => "invite_used",
        RejectCode::Invalid => "invalid",
        RejectCode::InviteRevoked => "invite_revoked",
        RejectCode::SpaceDeleted => "space_deleted",
        RejectCode::ClockSkew => "clock_skew",
        RejectCode::TokenRequired => "token_required",
        RejectCode::TokenUnknown => "token_unknown",
        RejectCode::TokenExpired => "token_expired",
        RejectCode::TokenUsed => "token_used",
        RejectCode::SpaceExpired => "space_expired",
        // A code added to the protocol before it is named here still counts.
        _ => "other",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    code: &'static str,
}

/// A moment in 4 bytes: microseconds since the relay's first stamp, wrapping after about
/// 71 minutes (no push is in flight that long), so a live event carries when its push
/// arrived without growing every subscriber's queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamp(u32);

impl Stamp {
    pub(crate) fn at(instant: Instant) -> Self {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        // Truncation is the wrapping.
        Stamp(instant.saturating_duration_since(epoch).as_micros() as u32)
    }

    /// The time since this stamp.
    pub(crate) fn elapsed(self) -> Duration {
        Duration::from_micros(u64::from(Stamp::at(Instant::now()).0.wrapping_sub(self.0)))
    }
}

/// A histogram of seconds for one stage of a push: 40 buckets from 8 µs, each √2 wider,
/// the last ending near 6 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(8e-6, std::f64::consts::SQRT_2, 40))
}

/// The relay's counters and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    frames_in: Counter,
    frames_out: Counter,
    pushes_committed: Counter,
    bytes_stored: Counter,
    rejects: Family<RejectLabels, Counter>,
    committed: Histogram,
    forwarded: Histogram,
}

impl Metrics {
    /// The relay's counters, with the store thread's `store` counters beside them.
    pub fn new(store: &StoreStats) -> Self {
        // The first stamp is the relay's start, not a push's.
        let _ = Stamp::at(Instant::now());
        let mut registry = Registry::with_prefix("hearth_relay");
        let connections_open = Gauge::default();
        let frames_in = Counter::default();
        let frames_out = Counter::default();
        let pushes_committed = Counter::default();
        let bytes_stored = Counter::default();
        let rejects = Family::<RejectLabels, Counter>::default();
        for code in REJECT_CODES {
            // Creating the series is the point; the guard it returns is not needed.
            drop(rejects.get_or_create(&RejectLabels {
                code: reject_label(code),
            }));
        }
        // Counter names are given without `_total`: the encoder adds it to the sample.
        registry.register(
            "connections_open",
            "Websocket connections currently open",
            connections_open.clone(),
        );
        registry.register(
            "frames_in",
            "Binary frames received from clients",
            frames_in.clone(),
        );
        registry.register("frames_out", "Frames queued to clients", frames_out.clone());
        registry.register(
            "pushes_committed",
            "Envelopes newly stored by Push (duplicates not counted)",
            pushes_committed.clone(),
        );
        registry.register(
            "bytes_stored",
            "Envelope bytes newly stored by Push since start",
            bytes_stored.clone(),
        );
        registry.register(
            "store_pushes",
            "Pushes the store thread took into a transaction, duplicates included",
            store.pushes.clone(),
        );
        registry.register(
            "store_batches",
            "Transactions the store thread committed pushes in",
            store.batches.clone(),
        );
        registry.register("rejects", "Reject frames sent, by code", rejects.clone());
        if let Some(checkpoints) = &store.checkpoints {
            registry.register(
                "wal_checkpoints",
                "WAL checkpoints completed by the checkpoint thread",
                checkpoints.clone(),
            );
        }
        registry.register(
            "push_wait_seconds",
            "From a push frame's arrival until the store thread takes it into a group",
            store.wait.clone(),
        );
        registry.register(
            "push_verify_seconds",
            "Checking the signatures of the group a push is in, per push",
            store.verify.clone(),
        );
        registry.register(
            "push_write_seconds",
            "The transaction (fsync included) of the group a push is in, per push",
            store.write.clone(),
        );
        let committed = latency_histogram();
        registry.register(
            "push_committed_seconds",
            "From a push frame's arrival until its outcome is back on its connection",
            committed.clone(),
        );
        let forwarded = latency_histogram();
        registry.register(
            "push_forwarded_seconds",
            "From a push frame's arrival until its Event is handed to a live subscriber's writer",
            forwarded.clone(),
        );
        Self {
            registry,
            connections_open,
            frames_in,
            frames_out,
            pushes_committed,
            bytes_stored,
            rejects,
            committed,
            forwarded,
        }
    }

    /// A push that arrived at `received` has its outcome.
    pub(crate) fn push_committed(&self, received: Instant) {
        self.committed.observe(received.elapsed().as_secs_f64());
    }

    /// The event of a push that arrived at `received` was handed to a subscriber's writer.
    pub(crate) fn push_forwarded(&self, received: Stamp) {
        self.forwarded.observe(received.elapsed().as_secs_f64());
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub(crate) fn frame_in(&self) {
        self.frames_in.inc();
    }

    pub(crate) fn frame_out(&self) {
        self.frames_out.inc();
    }

    pub(crate) fn stored(&self, bytes: usize) {
        self.pushes_committed.inc();
        self.bytes_stored
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    pub(crate) fn rejected(&self, code: RejectCode) {
        self.rejects
            .get_or_create(&RejectLabels {
                code: reject_label(code),
            })
            .inc();
    }

    /// The counters in the OpenMetrics text format, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would only drop the rest.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not render the metrics");
        }
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name` (with its labels) in `text`.
    fn sample(text: &str, name: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn each_reject_code_is_counted_under_its_own_label() {
        let metrics = Metrics::new(&StoreStats::default());
        metrics.rejected(RejectCode::Invalid);
        metrics.rejected(RejectCode::InviteRevoked);
        metrics.rejected(RejectCode::InviteRevoked);
        metrics.rejected(RejectCode::UnsupportedVersion);
        let text = metrics.render();
        let rejects = |code: &str| {
            sample(
                &text,
                &format!("hearth_relay_rejects_total{{code=\"{code}\"}}"),
            )
        };
        assert_eq!(rejects("invalid"), Some(1), "{text}");
        assert_eq!(rejects("invite_revoked"), Some(2), "{text}");
        assert_eq!(rejects("unsupported_version"), Some(1), "{text}");
        assert_eq!(
            rejects("bad_frame"),
            Some(0),
            "every code is shown from the start"
        );
    }

    #[test]
    fn counters_keep_their_names_and_the_gauge_goes_down_again() {
        let store = StoreStats::default();
        let metrics = Metrics::new(&store);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        metrics.frame_in();
        metrics.frame_out();
        metrics.frame_out();
        metrics.stored(100);
        metrics.stored(23);
        store.pushes.inc_by(3);
        store.batches.inc();
        let text = metrics.render();
        for (name, value) in [
            ("hearth_relay_connections_open", 1),
            ("hearth_relay_frames_in_total", 1),
            ("hearth_relay_frames_out_total", 2),
            ("hearth_relay_pushes_committed_total", 2),
            ("hearth_relay_bytes_stored_total", 123),
            ("hearth_relay_store_pushes_total", 3),
            ("hearth_relay_store_batches_total", 1),
        ] {
            assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
        }
        assert!(
            text.contains("# TYPE hearth_relay_frames_in counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE hearth_relay_connections_open gauge"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
