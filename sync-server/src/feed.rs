//! Where a subscriber's live stream stands: the last seq it was sent, and the seqs of the
//! connection's own pushes that must not be echoed back to it.
//!
//! Live events reach a connection out of order when pushes from several connections commit
//! in one batch, and its own pushes never come back through the hub at all. So the relay
//! keeps a cursor per subscriber and sends every seq after it exactly once, in order:
//! an event right after the cursor goes out at once, one further ahead means the gap is
//! read back from the store first, an event at or below the cursor was already sent. This
//! module holds only that bookkeeping (no socket, no store), so it is tested as plain
//! functions; the connection does the reading and sending it calls for.

use std::collections::BTreeSet;

use hearth_proto::SpaceId;

/// One connection's place in its space's stream.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    space: Option<SpaceId>,
    /// The last seq sent to (or known by) the subscriber.
    cursor: u64,
    /// Seqs past the cursor that this connection pushed itself.
    own: BTreeSet<u64>,
}

/// What to do with a live event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Already sent (or not subscribed): drop it.
    Stale,
    /// Send it now.
    Next,
    /// Read the seqs between the cursor and this one from the store first.
    AfterGap,
}

impl Feed {
    /// Starts (or restarts) the stream of `space` after `since_seq`.
    pub(crate) fn start(&mut self, space: SpaceId, since_seq: u64) {
        self.space = Some(space);
        self.cursor = since_seq;
        self.own.clear();
    }

    /// The subscribed space, if any.
    pub(crate) fn space(&self) -> Option<SpaceId> {
        self.space
    }

    /// The last seq the subscriber has.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The subscriber was sent everything up to `seq` (a backlog page, a snapshot).
    pub(crate) fn sent_through(&mut self, seq: u64) {
        self.cursor = seq;
    }

    /// This connection's push was committed at `seq`: its client has it already.
    pub(crate) fn own_committed(&mut self, seq: u64) {
        if self.space.is_some() && seq > self.cursor {
            self.own.insert(seq);
            self.skip_own();
        }
    }

    /// Where a live event at `seq` stands against the cursor.
    pub(crate) fn arrival(&self, seq: u64) -> Arrival {
        if self.space.is_none() || seq <= self.cursor {
            Arrival::Stale
        } else if seq == self.cursor + 1 {
            Arrival::Next
        } else {
            Arrival::AfterGap
        }
    }

    /// A live event at `seq` was sent.
    pub(crate) fn delivered(&mut self, seq: u64) {
        self.cursor = seq;
        self.skip_own();
    }

    /// An envelope at `seq` read back from the store to fill a gap: whether to send it
    /// (not if it is the connection's own); the cursor moves past it either way.
    pub(crate) fn refill(&mut self, seq: u64) -> bool {
        self.cursor = seq;
        !self.own.remove(&seq)
    }

    /// Nothing is stored between the cursor and `before` any more (a snapshot dropped it):
    /// move on to just before it.
    pub(crate) fn gap_gone(&mut self, before: u64) {
        self.cursor = before - 1;
    }

    fn skip_own(&mut self) {
        while self.own.remove(&(self.cursor + 1)) {
            self.cursor += 1;
        }
        // Anything at or below the cursor can no longer come up.
        let cursor = self.cursor;
        self.own.retain(|seq| *seq > cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(since: u64) -> Feed {
        let mut feed = Feed::default();
        feed.start(SpaceId::from_bytes([1; 16]), since);
        feed
    }

    #[test]
    fn events_before_subscribing_are_dropped() {
        let feed = Feed::default();
        assert_eq!(feed.arrival(1), Arrival::Stale);
    }

    #[test]
    fn the_next_seq_goes_out_and_older_ones_are_dropped() {
        let mut feed = subscribed(4);
        assert_eq!(feed.arrival(4), Arrival::Stale);
        assert_eq!(feed.arrival(5), Arrival::Next);
        feed.delivered(5);
        assert_eq!(feed.arrival(5), Arrival::Stale);
        assert_eq!(feed.cursor(), 5);
    }

    #[test]
    fn an_event_ahead_of_the_cursor_waits_for_the_gap_to_be_read() {
        let feed = subscribed(4);
        assert_eq!(feed.arrival(7), Arrival::AfterGap);
    }

    #[test]
    fn a_connections_own_push_is_never_echoed() {
        let mut feed = subscribed(4);
        feed.own_committed(6);
        assert_eq!(feed.cursor(), 4, "seq 5 is still owed");
        // Filling the gap up to 7 sends 5 but not 6.
        assert!(feed.refill(5));
        assert!(!feed.refill(6));
        assert_eq!(feed.arrival(7), Arrival::Next);
    }

    #[test]
    fn an_own_push_right_after_the_cursor_moves_it() {
        let mut feed = subscribed(4);
        feed.own_committed(5);
        assert_eq!(feed.cursor(), 5);
        feed.own_committed(7);
        feed.delivered(6);
        assert_eq!(feed.cursor(), 7, "6 sent, 7 is the client's own");
    }

    #[test]
    fn an_own_push_without_a_subscription_is_not_tracked() {
        let mut feed = Feed::default();
        feed.own_committed(1);
        assert_eq!(feed.cursor(), 0);
    }

    #[test]
    fn a_gap_a_snapshot_dropped_is_skipped() {
        let mut feed = subscribed(2);
        feed.gap_gone(9);
        assert_eq!(feed.arrival(9), Arrival::Next);
    }
}
