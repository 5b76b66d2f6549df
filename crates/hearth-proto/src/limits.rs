//! The limits a relay enforces and announces in its `Challenge`, so that a client can
//! size its batches up front instead of learning them from a `Reject`. Clients also use
//! `max_devices_per_space` when checking an ACL chain.

use serde::{Deserialize, Serialize};

/// Resource limits of one relay. All sizes are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest websocket frame either side may send.
    pub max_frame_bytes: u32,
    /// Largest encoded envelope a `Push` or `PushSnapshot` may carry.
    pub max_envelope_bytes: u32,
    /// Most devices a space's ACL may hold at once.
    pub max_devices_per_space: u32,
    /// Most spaces one relay will host.
    pub max_spaces: u32,
    /// Most stored bytes (envelopes, snapshots, ACL, lockboxes) per space.
    pub max_bytes_per_space: u64,
    /// Most pushes per second per connection.
    pub max_pushes_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 4 * 1024 * 1024,
            max_envelope_bytes: 2 * 1024 * 1024,
            max_devices_per_space: 16,
            max_spaces: 10_000,
            max_bytes_per_space: 256 * 1024 * 1024,
            max_pushes_per_sec: 200,
        }
    }
}

impl Limits {
    /// `max_frame_bytes` as a `usize`, for comparing with buffer lengths.
    pub fn frame_bytes(&self) -> usize {
        usize::try_from(self.max_frame_bytes).unwrap_or(usize::MAX)
    }

    /// `max_envelope_bytes` as a `usize`, for comparing with buffer lengths.
    pub fn envelope_bytes(&self) -> usize {
        usize::try_from(self.max_envelope_bytes).unwrap_or(usize::MAX)
    }
}
