//! Landmarks: envelopes this device names by their place on the relay, so that a relay
//! restored from an older backup is noticed even after it took new writes.

use hearth_proto::{DeviceId, Envelope, EnvelopeHeader, EnvelopeKind};

/// How far back (in relay sequence numbers) a sync re-reads to check this device's own
/// last committed envelope: beyond it, the check is skipped rather than re-reading more.
pub(crate) const OWN_LANDMARK_REACH: u64 = 32;

/// An envelope named by its place on the relay: see [`SyncBook::landmarks`](crate::SyncBook::landmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landmark {
    /// Its sequence number on the relay.
    pub seq: u64,
    /// Its author.
    pub author: DeviceId,
    /// Its author's counter for it.
    pub counter: u64,
}

impl Landmark {
    /// Compares the relay's envelope `bytes` at `seq` (the first it holds at or after the
    /// landmark's place) with the landmark: `Some(true)` if it is the same envelope in the
    /// same place, `Some(false)` if not (the relay's history differs), `None` if it is a
    /// snapshot (the relay compacted the landmark away).
    pub fn check(&self, seq: u64, bytes: &[u8]) -> Option<bool> {
        let Ok(envelope) = Envelope::decode(bytes) else {
            return Some(false);
        };
        let header = envelope.header();
        if matches!(header.kind, EnvelopeKind::Snapshot { .. }) {
            return None;
        }
        Some(seq == self.seq && header.author == self.author && header.counter == self.counter)
    }

    pub(super) fn at(seq: u64, header: &EnvelopeHeader) -> Landmark {
        Landmark {
            seq,
            author: header.author,
            counter: header.counter,
        }
    }
}
