//! Live fan-out: which connections are subscribed to which space, and how a committed
//! push or an appended ACL record reaches them.
//!
//! Each subscriber has its own bounded queue and is fed with `try_send`, so one slow
//! reader never blocks the pusher or the other subscribers: a subscriber whose queue is
//! full is dropped from the space and told so (its connection then closes, and the client
//! resumes from its cursor with `Subscribe{since_seq}`). The lock is a plain mutex held
//! only to copy or edit the list, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{SpaceKey, Tombstone};

/// Something that happened in a space, for its live subscribers.
#[derive(Debug, Clone)]
pub(crate) enum Live {
    /// An envelope was committed at `seq`.
    Event { seq: u64, envelope: Arc<[u8]> },
    /// An ACL record was appended.
    Acl(Arc<[u8]>),
    /// The space was deleted; what it left, the proof for its members.
    Deleted(Arc<Tombstone>),
    /// The relay removed the space because no second device joined it.
    Expired,
}

/// A [`Live`] on its way to a subscriber, with when the frame that caused it arrived
/// (for the relay's timings).
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) live: Live,
    pub(crate) received: Instant,
}

#[derive(Debug)]
struct Subscriber {
    connection: u64,
    queue: mpsc::Sender<Published>,
    /// Cancelled when the subscriber fell behind and was dropped.
    overflow: CancellationToken,
}

/// The registry of live subscribers, by space.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    spaces: Mutex<HashMap<SpaceKey, Vec<Subscriber>>>,
}

impl Hub {
    pub(crate) fn subscribe(
        &self,
        space: SpaceKey,
        connection: u64,
        queue: mpsc::Sender<Published>,
        overflow: CancellationToken,
    ) {
        let mut spaces = self.spaces.lock().unwrap_or_else(PoisonError::into_inner);
        let subscribers = spaces.entry(space).or_default();
        subscribers.retain(|s| s.connection != connection);
        subscribers.push(Subscriber {
            connection,
            queue,
            overflow,
        });
    }

    pub(crate) fn unsubscribe(&self, space: &SpaceKey, connection: u64) {
        let mut spaces = self.spaces.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = spaces.get_mut(space) {
            subscribers.retain(|s| s.connection != connection);
            if subscribers.is_empty() {
                spaces.remove(space);
            }
        }
    }

    /// Hands `live` (caused by a frame that arrived at `received`) to every subscriber of
    /// `space` except connection `from`; drops the ones whose queue is full or closed.
    pub(crate) fn publish(&self, space: &SpaceKey, from: u64, live: &Live, received: Instant) {
        let mut spaces = self.spaces.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = spaces.get_mut(space) else {
            return;
        };
        subscribers.retain(|s| {
            if s.connection == from {
                return true;
            }
            let published = Published {
                live: live.clone(),
                received,
            };
            match s.queue.try_send(published) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(
                        connection = s.connection,
                        "subscriber fell behind; dropping it"
                    );
                    s.overflow.cancel();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if subscribers.is_empty() {
            spaces.remove(space);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_subscriber_is_dropped_without_blocking_the_others() {
        let hub = Hub::default();
        let space = [1; 16];
        let (slow, _slow_rx) = mpsc::channel(1);
        let (fast, mut fast_rx) = mpsc::channel(8);
        let (slow_gone, fast_gone) = (CancellationToken::new(), CancellationToken::new());
        hub.subscribe(space, 1, slow, slow_gone.clone());
        hub.subscribe(space, 2, fast, fast_gone.clone());
        let event = |seq| Live::Event {
            seq,
            envelope: Arc::from(&b"x"[..]),
        };
        for seq in 1..=3 {
            hub.publish(&space, 99, &event(seq), Instant::now());
        }
        assert!(
            slow_gone.is_cancelled(),
            "the slow one is told it fell behind"
        );
        assert!(!fast_gone.is_cancelled());
        for want in 1..=3 {
            match fast_rx.try_recv() {
                Ok(Published {
                    live: Live::Event { seq, .. },
                    ..
                }) => assert_eq!(seq, want),
                other => panic!("expected event {want}, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_pushing_connection_gets_no_echo() {
        let hub = Hub::default();
        let (queue, mut rx) = mpsc::channel(8);
        hub.subscribe([1; 16], 7, queue, CancellationToken::new());
        let tombstone = Tombstone {
            device: [2; 32],
            relay_id: [3; 16],
            nonce: [4; 32],
            signature: [5; 64],
            deleted_at_ms: 6,
            members: vec![[2; 32]],
        };
        hub.publish(
            &[1; 16],
            7,
            &Live::Deleted(Arc::new(tombstone)),
            Instant::now(),
        );
        assert!(rx.try_recv().is_err());
        hub.unsubscribe(&[1; 16], 7);
        assert!(hub.spaces.lock().unwrap().is_empty());
    }
}
