//! The relay's housekeeping: removing spaces no second device joined within
//! `unjoined_space_ttl` (at start, before the first connection, then on a timer), forgetting
//! creation tokens long expired, and letting the per-address rate limiters forget
//! addresses whose budget is whole again. A removed space's live connections (only its
//! creator's device can have any) are told it expired and closed.

use std::sync::Arc;
use std::time::Duration;

use crate::app::Shared;
use crate::config::RelayConfig;
use crate::hub::Live;
use crate::store::{SpaceKey, Storage, StoreError};

/// Spaces removed per transaction, so a sweep never holds the store for long.
const BATCH: usize = 500;

/// How long an expired token is still listed (and refused as expired, not unknown).
const TOKEN_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often the limiters forget idle addresses.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// What one sweep did.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    pub(crate) expired: Vec<SpaceKey>,
    pub(crate) tokens: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Removes every space past its time to be joined, and the tokens past their grace, as of
/// `now_ms`.
///
/// # Errors
/// A database error; what was removed before it stays removed.
pub(crate) fn sweep(
    store: &mut dyn Storage,
    config: &RelayConfig,
    now_ms: u64,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    if !config.unjoined_space_ttl.is_zero() {
        let cut = now_ms.saturating_sub(ms(config.unjoined_space_ttl));
        loop {
            let batch = store.expire_unjoined(cut, now_ms, BATCH)?;
            let more = batch.len() == BATCH;
            swept.expired.extend(batch);
            if !more {
                break;
            }
        }
    }
    swept.tokens = store.forget_tokens(now_ms.saturating_sub(ms(TOKEN_GRACE)))?;
    Ok(swept)
}

/// Says what a sweep removed, if anything.
pub(crate) fn log(swept: &Swept, config: &RelayConfig) {
    if !swept.expired.is_empty() {
        tracing::info!(
            spaces = swept.expired.len(),
            ttl = %humantime::format_duration(config.unjoined_space_ttl),
            "removed spaces no second device joined in time; their creators may create them again"
        );
    }
    if swept.tokens > 0 {
        tracing::info!(
            tokens = swept.tokens,
            "forgot creation tokens expired long ago"
        );
    }
}

/// How often spaces are swept: a 24th of their time to be joined, between a minute and
/// an hour.
pub(crate) fn every(ttl: Duration) -> Duration {
    (ttl / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600))
}

/// Sweeps on a timer until the relay shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut forget = tokio::time::interval(FORGET_EVERY);
    let period = every(shared.config.unjoined_space_ttl);
    // The sweep at start has just run (in `Relay::open`).
    let mut sweep_timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = forget.tick() => shared.gate.forget_idle(),
            _ = sweep_timer.tick() => sweep_now(&shared).await,
        }
    }
}

async fn sweep_now(shared: &Shared) {
    let config = shared.config.clone();
    let swept = shared
        .store
        .run(move |s| sweep(s, &config, config.clock.now_ms()))
        .await;
    match swept {
        Ok(swept) => {
            for space in &swept.expired {
                shared.forget(hearth_proto::SpaceId::from_bytes(*space));
                // Connection ids start at 1: 0 is the relay itself.
                shared.hub.publish(space, 0, &Live::Expired);
            }
            log(&swept, &shared.config);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not sweep spaces nobody joined; trying again later")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{SqliteStore, StoreLimits};

    #[test]
    fn a_sweep_runs_a_24th_of_the_ttl_apart_within_a_minute_and_an_hour() {
        assert_eq!(
            every(Duration::from_secs(7 * 24 * 3600)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            every(Duration::from_secs(12 * 3600)),
            Duration::from_secs(1800)
        );
        assert_eq!(every(Duration::from_millis(1)), Duration::from_secs(60));
    }

    #[test]
    fn a_zero_ttl_keeps_every_space() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("r.db"), StoreLimits::default()).unwrap();
        s.create_space(&[1; 16], b"g", 1, None).unwrap();
        let config = RelayConfig {
            unjoined_space_ttl: Duration::ZERO,
            ..RelayConfig::default()
        };
        assert!(
            sweep(&mut s, &config, u64::MAX / 2)
                .unwrap()
                .expired
                .is_empty()
        );
        let config = RelayConfig {
            unjoined_space_ttl: Duration::from_millis(1),
            ..RelayConfig::default()
        };
        assert_eq!(sweep(&mut s, &config, 10).unwrap().expired, vec![[1; 16]]);
    }
}
