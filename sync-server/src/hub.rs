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

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Stamp;
use crate::store::{SpaceKey, Tombstone};

/// Something that happened in a space, for its live subscribers.
#[derive(Debug, Clone)]
pub(crate) enum Live {
    /// An envelope was committed at `seq`; its push frame arrived at `received` (set by
    /// [`Live::stamped`] when it is published, for the relay's timings).
    Event {
        seq: u64,
        envelope: Arc<[u8]>,
        received: Stamp,
    },
    /// An ACL record was appended.
    Acl(Arc<[u8]>),
    /// The space was deleted; what it left, the proof for its members.
    Deleted(Arc<Tombstone>),
    /// The relay removed the space because no second device joined it.
    Expired,
}

impl Live {
    /// This, with an event's push frame marked as arrived at `at`.
    pub(crate) fn stamped(mut self, at: Stamp) -> Self {
        if let Live::Event { received, .. } = &mut self {
            *received = at;
        }
        self
    }
}

#[derive(Debug)]
struct Subscriber {
    connection: u64,
    queue: mpsc::Sender<Live>,
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
        queue: mpsc::Sender<Live>,
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

    /// Hands `live` to every subscriber of `space` except connection `from`; drops the
    /// ones whose queue is full or closed.
    pub(crate) fn publish(&self, space: &SpaceKey, from: u64, live: &Live) {
        let mut spaces = self.spaces.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = spaces.get_mut(space) else {
            return;
        };
        subscribers.retain(|s| {
            if s.connection == from {
                return true;
            }
            match s.queue.try_send(live.clone()) {
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
    fn a_live_event_stays_as_small_as_its_envelope_handle() {
        // Every subscriber's queue allocates room for 32 of these up front; 10,000 idle
        // subscribers pay for each byte 320,000 times.
        assert!(std::mem::size_of::<Live>() <= 32);
    }

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
            received: Stamp::default(),
        };
        for seq in 1..=3 {
            hub.publish(&space, 99, &event(seq));
        }
        assert!(
            slow_gone.is_cancelled(),
            "the slow one is told it fell behind"
        );
        assert!(!fast_gone.is_cancelled());
        for want in 1..=3 {
            match fast_rx.try_recv() {
                Ok(Live::Event { seq, .. }) => assert_eq!(seq, want),
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
        hub.publish(&[1; 16], 7, &Live::Deleted(Arc::new(tombstone)));
        assert!(rx.try_recv().is_err());
        hub.unsubscribe(&[1; 16], 7);
        assert!(hub.spaces.lock().unwrap().is_empty());
    }
}
