//! Where the space syncs, said inside the encrypted document: a device that moves the space
//! to another relay (`hearth relay set`) records the new address in its own person's
//! container, and it reaches the partner's devices with the next sync through the old relay.
//! A device that reads a newer address there than the one it syncs through follows it. The
//! relay carries the address only as ciphertext, so it can neither read nor forge it.
//!
//! Stored in the container as `relay`: a map from the device's key (hex) to one JSON string
//! `{"url": "wss://…/v1/sync", "at": <Unix ms>}` (see `layout.rs` on why JSON strings). An
//! entry counts only from the container of its device's person (the authorship rule lets
//! only that person write there); which of those devices still counts (a current member of
//! the space) is the caller's to say, from the verified ACL. The newest entry that counts is
//! the space's address ([`newest_relay`], a pure function).

use serde::{Deserialize, Serialize};

use crate::error::DocError;
use crate::ids::Millis;
use crate::space::SpaceDoc;

/// The container key of the map.
pub(crate) const RELAY: &str = "relay";

/// How far past a reader's clock an address may be dated and still count: honest clocks
/// disagree by minutes, not a day, and an address dated far ahead (by a partner's modified
/// client, to win every later move) is ignored until the reader's clock gets there.
pub const RELAY_AHEAD_LIMIT: Millis = Millis(24 * 60 * 60 * 1000);

/// One device's word on where the space syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAddress {
    /// The device that moved the space there.
    pub device: [u8; 32],
    /// The relay's address, as that device's hearth wrote it (read it again before use:
    /// the partner's client may have written anything).
    pub url: String,
    /// When, by that device's clock (Unix ms), kept later than every address it had seen.
    pub at: Millis,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    url: String,
    at: i64,
}

/// The address the space syncs through, of `addresses`: the newest (by `at`, then by URL,
/// so every device picks the same) of those whose device `counts` (a current member, by
/// the reader's ACL) and that are dated no more than [`RELAY_AHEAD_LIMIT`] past `now`.
pub fn newest_relay(
    addresses: &[RelayAddress],
    counts: impl Fn(&[u8; 32]) -> bool,
    now: Millis,
) -> Option<&RelayAddress> {
    addresses
        .iter()
        .filter(|a| counts(&a.device) && a.at.0 <= now.0.saturating_add(RELAY_AHEAD_LIMIT.0))
        .max_by(|a, b| (a.at, &a.url).cmp(&(b.at, &b.url)))
}

/// The time to date a new address written at `now`: later than every address in
/// `addresses` that is not dated too far ahead, so the new one is the newest on every
/// device whatever its clock says.
pub fn next_relay_at(addresses: &[RelayAddress], now: Millis) -> Millis {
    let latest = newest_relay(addresses, |_| true, now).map_or(i64::MIN, |a| a.at.0);
    Millis(now.0.max(latest.saturating_add(1)))
}

impl SpaceDoc {
    /// Records, in this device's person's container, that `device` moved the space to
    /// `url` at `at`, unless it already says exactly that, or this device's person is not in
    /// the space yet (as for `note_acl_seen`). Returns whether it wrote.
    ///
    /// # Errors
    /// An Automerge error.
    pub fn note_relay(
        &mut self,
        device: &[u8; 32],
        url: &str,
        at: Millis,
    ) -> Result<bool, DocError> {
        let said = self
            .relay_addresses()
            .into_iter()
            .any(|a| a.device == *device && a.url == url && a.at == at);
        if said || !self.authors().knows(&self.writer()) {
            return Ok(false);
        }
        self.put_device_note(
            RELAY,
            device,
            &Stored {
                url: url.to_owned(),
                at: at.0,
            },
        )?;
        Ok(true)
    }

    /// What every device said about where the space syncs, each entry read from the
    /// container of the device's own person only (an entry naming a device of the other
    /// person, which a hostile partner could write, is ignored); the newest per device.
    pub fn relay_addresses(&self) -> Vec<RelayAddress> {
        self.device_notes(
            RELAY,
            |device, stored: Stored| {
                Some(RelayAddress {
                    device,
                    url: stored.url,
                    at: Millis(stored.at),
                })
            },
            |a, b| (a.at, &a.url) > (b.at, &b.url),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: [u8; 32] = [0xA1; 32];
    const BOB: [u8; 32] = [0xB1; 32];
    const NOW: Millis = Millis(1_800_000_000_000);

    fn people() -> crate::authorship::People {
        use crate::authorship::PersonKey;
        [
            (ALICE, PersonKey::from_founding_device(ALICE)),
            (BOB, PersonKey::from_founding_device(BOB)),
        ]
        .into_iter()
        .collect()
    }

    /// Alice's device, and Bob's loaded from it and joined as the partner.
    fn couple() -> (SpaceDoc, SpaceDoc) {
        let mut alice =
            SpaceDoc::create(&ALICE, &crate::PersonId::random(), "Alice", Millis(1)).unwrap();
        alice.set_people(people());
        let mut bob = SpaceDoc::load(&BOB, &alice.save_snapshot(), []).unwrap();
        bob.set_people(people());
        bob.add_person(&crate::PersonId::random(), "Bob", Millis(2))
            .unwrap();
        (alice, bob)
    }

    fn send(from: &mut SpaceDoc, to: &mut SpaceDoc) {
        if let Some(bytes) = from.take_unsaved() {
            to.apply(&bytes).unwrap();
        }
    }

    fn at(device: [u8; 32], url: &str, at: i64) -> RelayAddress {
        RelayAddress {
            device,
            url: url.into(),
            at: Millis(at),
        }
    }

    #[test]
    fn an_address_written_by_one_partner_is_read_by_the_other() {
        let (mut alice, mut bob) = couple();
        assert!(
            alice
                .note_relay(&ALICE, "wss://new.example/v1/sync", NOW)
                .unwrap()
        );
        assert!(
            !alice
                .note_relay(&ALICE, "wss://new.example/v1/sync", NOW)
                .unwrap(),
            "nothing new to say"
        );
        send(&mut alice, &mut bob);
        assert_eq!(
            bob.relay_addresses(),
            [at(ALICE, "wss://new.example/v1/sync", NOW.0)]
        );
    }

    #[test]
    fn an_address_in_the_partners_container_naming_ones_own_device_is_ignored() {
        let (mut alice, mut bob) = couple();
        // Bob writes, in his own container, that Alice's device moved the space.
        bob.note_relay(&ALICE, "wss://bobs.example/v1/sync", NOW)
            .unwrap();
        send(&mut bob, &mut alice);
        assert_eq!(alice.relay_addresses(), []);
    }

    #[test]
    fn the_newest_address_of_a_device_that_counts_wins_the_same_way_everywhere() {
        let addresses = [
            at(ALICE, "wss://a.example/v1/sync", 10),
            at(BOB, "wss://b.example/v1/sync", 20),
        ];
        let all = |_: &[u8; 32]| true;
        assert_eq!(
            newest_relay(&addresses, all, NOW).map(|a| a.device),
            Some(BOB)
        );
        // A device that no longer counts (removed from the space) moves nothing.
        let not_bob = |d: &[u8; 32]| *d != BOB;
        assert_eq!(
            newest_relay(&addresses, not_bob, NOW).map(|a| a.device),
            Some(ALICE)
        );
        // The same time: the URL decides, on every device alike.
        let tied = [
            at(ALICE, "wss://z.example/v1/sync", 20),
            at(BOB, "wss://b.example/v1/sync", 20),
        ];
        assert_eq!(
            newest_relay(&tied, all, NOW).map(|a| a.url.as_str()),
            Some("wss://z.example/v1/sync")
        );
        assert_eq!(newest_relay(&[], all, NOW), None);
    }

    #[test]
    fn each_persons_own_writing_uploaded_apart_makes_the_whole_document() {
        let (mut alice, mut bob) = couple();
        alice
            .add_appreciation(&alice.own_person(), "for the map", Millis(3))
            .unwrap();
        send(&mut bob, &mut alice);
        alice
            .add_appreciation(&alice.own_person(), "and the tea", Millis(4))
            .unwrap();
        send(&mut alice, &mut bob);
        bob.add_appreciation(&bob.own_person(), "for waiting", Millis(5))
            .unwrap();
        send(&mut bob, &mut alice);
        let mut fresh = SpaceDoc::replica(&[0xC1; 32]).unwrap();
        // Bob's first: his changes wait for Alice's they build on, then all apply.
        for batch in bob.changes_under_batched(|a| a == BOB, 400).unwrap() {
            fresh.apply(&batch).unwrap();
        }
        assert!(
            fresh.appreciations().is_empty(),
            "nothing of Bob's applies alone"
        );
        let batches = alice.changes_under_batched(|a| a == ALICE, 400).unwrap();
        assert!(batches.len() > 1, "cut to the budget");
        for batch in &batches {
            fresh.apply(batch).unwrap();
        }
        assert_eq!(fresh.heads(), alice.heads());
        assert_eq!(fresh.appreciations().len(), 3);
    }

    #[test]
    fn an_address_dated_far_ahead_of_the_readers_clock_does_not_count_yet() {
        let ahead = NOW.0 + RELAY_AHEAD_LIMIT.0 + 1;
        let addresses = [
            at(ALICE, "wss://a.example/v1/sync", NOW.0 - 5),
            at(BOB, "wss://forever.example/v1/sync", ahead),
        ];
        let all = |_: &[u8; 32]| true;
        assert_eq!(
            newest_relay(&addresses, all, NOW).map(|a| a.device),
            Some(ALICE)
        );
        assert_eq!(
            newest_relay(&addresses, all, Millis(ahead - RELAY_AHEAD_LIMIT.0)).map(|a| a.device),
            Some(BOB),
            "once the clock gets there, it counts"
        );
        // And a new address is dated after what counts, not after the far one.
        assert_eq!(next_relay_at(&addresses, NOW), NOW);
        let later = [at(BOB, "x", NOW.0 + 60_000)];
        assert_eq!(next_relay_at(&later, NOW), Millis(NOW.0 + 60_001));
        let extreme = [at(BOB, "x", i64::MAX)];
        assert_eq!(next_relay_at(&extreme, NOW), NOW);
    }
}
