//! The relay's wall clock: what a login's time is checked against, what `Identity` tells
//! clients, and what the relay stamps on what it stores (a space's creation, an ACL record
//! judged against invite expiry, a deletion). It is the system clock plus an offset that
//! only an embedding program sets ([`crate::RelayConfig::clock`], never read from a file),
//! so tests can run a relay whose clock is minutes off and move it back while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The relay's clock: the system's, shifted by an offset every clone shares.
#[derive(Debug, Clone, Default)]
pub struct RelayClock {
    offset_ms: Arc<AtomicI64>,
}

impl RelayClock {
    /// The system clock, shifted by `offset_ms` (negative: behind).
    pub fn offset_by(offset_ms: i64) -> Self {
        Self {
            offset_ms: Arc::new(AtomicI64::new(offset_ms)),
        }
    }

    /// Moves this clock and every clone of it to the system clock plus `offset_ms`.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// The offset from the system clock, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Now, UTC milliseconds since 1970 (0 for a system clock before 1970).
    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        u64::try_from(system.saturating_add(self.offset_ms())).unwrap_or(0)
    }
}

/// Two clocks are the same setting when they have the same offset.
impl PartialEq for RelayClock {
    fn eq(&self, other: &Self) -> bool {
        self.offset_ms() == other.offset_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_shifts_every_clone_and_can_be_moved_back() {
        let clock = RelayClock::offset_by(-600_000);
        let shared = clock.clone();
        let system = RelayClock::default();
        let behind = system.now_ms() - shared.now_ms();
        assert!((599_000..=601_000).contains(&behind), "{behind}");
        clock.set_offset(0);
        assert!(system.now_ms().abs_diff(shared.now_ms()) < 1_000);
        assert_eq!(shared, system);
    }
}
