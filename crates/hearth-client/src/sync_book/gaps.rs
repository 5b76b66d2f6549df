//! No silent gaps: the relay numbers each space's envelopes densely (1, 2, 3, …), so a
//! device that took seq 7 and 9 but not 8 knows the relay has not handed it 8. The cursor
//! (everything at or below it is taken) moves only over seqs taken one after another, or
//! over a snapshot that covers them; seqs taken above a gap are kept aside ("ahead") until
//! the gap fills, and are not taken again when the relay delivers them once more. Every
//! sync asks again from the cursor, so a gap the relay closes later loses nothing, and one
//! that persists is reported ([`Withheld`]).
//!
//! [`advance`] is the rule, a pure function; the store keeps its inputs.

use std::collections::BTreeMap;

use super::Landmark;

/// One seq taken: applied, known, waiting, or refused and passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Take {
    /// Its place on the relay.
    pub(crate) seq: u64,
    /// The envelope there, if its header decoded: the cursor's landmark when the cursor
    /// stops on it.
    pub(crate) mark: Option<Landmark>,
    /// For an opened snapshot, the seq its signed header says it covers (every envelope at
    /// or below it is in it); 0 otherwise.
    pub(crate) covers: u64,
}

/// The seqs taken above the cursor, with the envelope each held (if it decoded).
pub(crate) type Ahead = BTreeMap<u64, Option<Landmark>>;

/// Where the cursor stands after [`advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Advanced {
    /// The new cursor: never below the old one.
    pub(crate) cursor: u64,
    /// The landmark at the new cursor, if the cursor moved: `Some(None)` when the envelope
    /// there did not decode (or the cursor stopped inside a snapshot's cover), `None` when
    /// it did not move.
    pub(crate) mark: Option<Option<Landmark>>,
}

/// Takes `takes` into `ahead` and moves `cursor` as far as the seqs after it are taken one
/// after another (or covered by a snapshot), removing from `ahead` what the cursor passed.
pub(crate) fn advance(
    cursor: u64,
    ahead: &mut Ahead,
    takes: impl IntoIterator<Item = Take>,
) -> Advanced {
    let mut covered = cursor;
    for take in takes {
        if take.seq > cursor {
            ahead.insert(take.seq, take.mark);
        }
        covered = covered.max(take.covers);
    }
    let mut new = covered;
    let mut mark = (covered > cursor).then(|| ahead.get(&covered).copied().flatten());
    // Everything at or below a snapshot's cover is in it.
    let below: Vec<u64> = ahead.range(..=new).map(|(seq, _)| *seq).collect();
    for seq in below {
        ahead.remove(&seq);
    }
    while let Some(at) = ahead.remove(&(new + 1)) {
        new += 1;
        mark = Some(at);
    }
    Advanced {
        cursor: new,
        mark: mark.filter(|_| new > cursor),
    }
}

/// Envelopes the relay holds (its head says so) but has not handed over, after a whole
/// pull: between the cursor and the relay's head, the seqs not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withheld {
    /// The first missing seq (the one after the cursor).
    pub from_seq: u64,
    /// The last seq the relay said it holds (or the last taken above the gap, if higher).
    pub to_seq: u64,
    /// How many seqs in between were not handed over.
    pub missing: u64,
}

/// What is missing after a pull that ended with `cursor`, `ahead` and the relay's `head`:
/// `None` if the cursor reached the head with nothing taken beyond it.
pub(crate) fn withheld(cursor: u64, ahead: &Ahead, head: u64) -> Option<Withheld> {
    let top = ahead.keys().next_back().copied().unwrap_or(0).max(head);
    if top <= cursor {
        return None;
    }
    let taken = ahead.range(cursor + 1..=top).count() as u64;
    let missing = (top - cursor).saturating_sub(taken);
    (missing > 0).then_some(Withheld {
        from_seq: cursor + 1,
        to_seq: top,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use hearth_proto::DeviceId;

    use super::*;

    fn mark(seq: u64) -> Option<Landmark> {
        Some(Landmark {
            seq,
            author: DeviceId::from_bytes([1; 32]),
            counter: seq,
        })
    }

    fn take(seq: u64) -> Take {
        Take {
            seq,
            mark: mark(seq),
            covers: 0,
        }
    }

    #[test]
    fn seqs_taken_one_after_another_move_the_cursor_to_the_last() {
        let mut ahead = Ahead::new();
        let moved = advance(3, &mut ahead, [take(4), take(5)]);
        assert_eq!(
            moved,
            Advanced {
                cursor: 5,
                mark: Some(mark(5))
            }
        );
        assert!(ahead.is_empty());
    }

    #[test]
    fn a_gap_stops_the_cursor_and_what_is_past_it_waits_aside() {
        let mut ahead = Ahead::new();
        let moved = advance(3, &mut ahead, [take(4), take(6), take(7)]);
        assert_eq!(moved.cursor, 4);
        assert_eq!(ahead.keys().copied().collect::<Vec<_>>(), [6, 7]);
        assert_eq!(
            withheld(4, &ahead, 7),
            Some(Withheld {
                from_seq: 5,
                to_seq: 7,
                missing: 1
            })
        );
        // The gap fills: the cursor runs over everything kept aside.
        let moved = advance(4, &mut ahead, [take(5)]);
        assert_eq!(
            moved,
            Advanced {
                cursor: 7,
                mark: Some(mark(7))
            }
        );
        assert!(ahead.is_empty());
        assert_eq!(withheld(7, &ahead, 7), None);
    }

    #[test]
    fn the_gap_at_the_start_of_a_pull_keeps_the_cursor_where_it_was() {
        let mut ahead = Ahead::new();
        let moved = advance(3, &mut ahead, [take(5)]);
        assert_eq!(
            moved,
            Advanced {
                cursor: 3,
                mark: None
            }
        );
        assert_eq!(withheld(3, &ahead, 5).map(|w| w.missing), Some(1));
    }

    #[test]
    fn a_snapshot_moves_the_cursor_over_everything_it_covers() {
        let mut ahead = Ahead::new();
        ahead.insert(9, mark(9));
        let snapshot = Take {
            seq: 20,
            mark: mark(20),
            covers: 20,
        };
        let moved = advance(3, &mut ahead, [snapshot, take(21)]);
        assert_eq!(
            moved,
            Advanced {
                cursor: 21,
                mark: Some(mark(21))
            }
        );
        assert!(ahead.is_empty(), "what it covers is no longer kept aside");
    }

    #[test]
    fn a_snapshot_covering_less_than_its_place_leaves_the_gap_above_its_cover() {
        let mut ahead = Ahead::new();
        let snapshot = Take {
            seq: 20,
            mark: mark(20),
            covers: 10,
        };
        let moved = advance(3, &mut ahead, [snapshot]);
        assert_eq!(moved.cursor, 10);
        assert_eq!(moved.mark, Some(None), "no envelope of its own at 10");
        assert_eq!(withheld(10, &ahead, 20).map(|w| w.missing), Some(9));
    }

    #[test]
    fn seqs_at_or_below_the_cursor_change_nothing() {
        let mut ahead = Ahead::new();
        let moved = advance(5, &mut ahead, [take(2), take(5)]);
        assert_eq!(
            moved,
            Advanced {
                cursor: 5,
                mark: None
            }
        );
        assert!(ahead.is_empty());
    }

    #[test]
    fn an_envelope_that_did_not_decode_still_fills_its_place() {
        let mut ahead = Ahead::new();
        let moved = advance(
            1,
            &mut ahead,
            [Take {
                seq: 2,
                mark: None,
                covers: 0,
            }],
        );
        assert_eq!(
            moved,
            Advanced {
                cursor: 2,
                mark: Some(None)
            }
        );
    }

    #[test]
    fn a_relay_whose_head_is_past_everything_it_sent_is_holding_the_rest_back() {
        let ahead = Ahead::new();
        assert_eq!(
            withheld(4, &ahead, 6),
            Some(Withheld {
                from_seq: 5,
                to_seq: 6,
                missing: 2
            })
        );
        assert_eq!(withheld(6, &ahead, 6), None);
        assert_eq!(
            withheld(6, &ahead, 2),
            None,
            "a head below the cursor is the rewind check's"
        );
    }
}
