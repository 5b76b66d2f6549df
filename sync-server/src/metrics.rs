//! Counters the relay exposes at `GET /metrics` in the Prometheus text format, so an
//! operator can watch load and refusals without the relay ever logging payloads. Plain
//! atomics: the hot paths only ever add one.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_proto::RejectCode;

use crate::worker::StoreStats;

/// Every reject code the relay sends, with its metric label.
const REJECT_LABELS: &[(RejectCode, &str)] = &[
    (RejectCode::UnsupportedVersion, "unsupported_version"),
    (RejectCode::BadFrame, "bad_frame"),
    (RejectCode::TooLarge, "too_large"),
    (RejectCode::RateLimited, "rate_limited"),
    (RejectCode::Unauthorized, "unauthorized"),
    (RejectCode::NotMember, "not_member"),
    (RejectCode::Conflict, "conflict"),
    (RejectCode::QuotaExceeded, "quota_exceeded"),
    (RejectCode::StorageUnavailable, "storage_unavailable"),
    (RejectCode::Internal, "internal"),
    (RejectCode::InviteExpired, "invite_expired"),
    (RejectCode::InviteUsed, "invite_used"),
    (RejectCode::Invalid, "invalid"),
    (RejectCode::InviteRevoked, "invite_revoked"),
];

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    pushes_committed: AtomicU64,
    bytes_stored: AtomicU64,
    rejects: [AtomicU64; 14],
}

impl Metrics {
    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn frame_out(&self) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stored(&self, bytes: usize) {
        self.pushes_committed.fetch_add(1, Ordering::Relaxed);
        self.bytes_stored.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, code: RejectCode) {
        let slot = usize::from(code.code()).min(self.rejects.len() - 1);
        self.rejects[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self, store: &StoreStats) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "hearth_relay_connections_open",
            "gauge",
            "Websocket connections currently open.",
            get(&self.connections_open),
        );
        metric(
            "hearth_relay_frames_in_total",
            "counter",
            "Frames received from clients.",
            get(&self.frames_in),
        );
        metric(
            "hearth_relay_frames_out_total",
            "counter",
            "Frames sent to clients.",
            get(&self.frames_out),
        );
        metric(
            "hearth_relay_pushes_committed_total",
            "counter",
            "Envelopes newly stored (duplicates not counted).",
            get(&self.pushes_committed),
        );
        metric(
            "hearth_relay_bytes_stored_total",
            "counter",
            "Envelope bytes newly stored since start.",
            get(&self.bytes_stored),
        );
        metric(
            "hearth_relay_store_pushes_total",
            "counter",
            "Pushes the store thread handled, duplicates included.",
            get(&store.pushes),
        );
        metric(
            "hearth_relay_store_batches_total",
            "counter",
            "Transactions the store thread committed pushes in.",
            get(&store.batches),
        );
        let _ = writeln!(
            out,
            "# HELP hearth_relay_rejects_total Reject frames sent, by code.\n# TYPE hearth_relay_rejects_total counter"
        );
        for (code, label) in REJECT_LABELS {
            let slot = usize::from(code.code()).min(self.rejects.len() - 1);
            let _ = writeln!(
                out,
                "hearth_relay_rejects_total{{code=\"{label}\"}} {}",
                get(&self.rejects[slot])
            );
        }
        out
    }
}
