//! What each device has seen of the space's ACL chain, said inside the encrypted document
//! so that the relay cannot hide it: each device records in its own person's container the
//! chain it verified (its length, the hash of its last record, the epoch it reached), and
//! a partner's device compares what it reads there with the chain the relay gave it. A
//! longer chain or a newer epoch named there means the relay is holding records back (a
//! removal, say); the same length with another hash means the relay shows the devices two
//! different chains (a fork). The comparison is [`compare`], a pure function.
//!
//! Stored in the container as `acl_seen`: a map from the device's key (hex) to one JSON
//! string `{"len": 5, "head": "<hex>", "epoch": 1}` (see `layout.rs` on why JSON strings).

use serde::{Deserialize, Serialize};

use crate::error::DocError;
use crate::space::SpaceDoc;

/// The container key of the map.
pub(crate) const ACL_SEEN: &str = "acl_seen";

/// The chain one device verified, as it says in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclSeen {
    /// The device that says it.
    pub device: [u8; 32],
    /// How many records its chain has.
    pub len: u64,
    /// The hash of the last of them.
    pub head: [u8; 32],
    /// The epoch that chain reached.
    pub epoch: u32,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    len: u64,
    head: String,
    epoch: u32,
}

/// How a chain compares with what a device said it had seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The chain holds what the device saw (it may hold more).
    Covered,
    /// The device saw records (or an epoch) this chain does not reach: the relay is
    /// holding them back from this device.
    Ahead,
    /// The device saw a chain of the same length (or shorter) whose record there differs:
    /// the relay shows the devices different chains.
    Forked,
}

/// Compares what `seen` says with this device's chain, of `len` records reaching `epoch`,
/// whose record hashes are given by `hash_at(n)` (the hash of the chain's first `n`
/// records' last one; `None` if `n` is beyond it).
pub fn compare(
    seen: &AclSeen,
    len: u64,
    epoch: u32,
    hash_at: impl Fn(u64) -> Option<[u8; 32]>,
) -> Seen {
    if seen.len > len || seen.epoch > epoch {
        return Seen::Ahead;
    }
    match hash_at(seen.len) {
        Some(hash) if hash == seen.head => Seen::Covered,
        _ => Seen::Forked,
    }
}

impl SpaceDoc {
    /// Records, in this device's person's container, the chain this device verified, unless
    /// it already says exactly that, or this device's person is not in the space yet (their
    /// container is made when they join, with the id they chose: made here first, it would
    /// carry another). Returns whether it wrote.
    ///
    /// # Errors
    /// An Automerge error.
    pub fn note_acl_seen(&mut self, seen: &AclSeen) -> Result<bool, DocError> {
        if self.acl_seen_by(&seen.device) == Some(*seen) || !self.authors().knows(&self.writer()) {
            return Ok(false);
        }
        self.put_device_note(
            ACL_SEEN,
            &seen.device,
            &Stored {
                len: seen.len,
                head: hex::encode(seen.head),
                epoch: seen.epoch,
            },
        )?;
        Ok(true)
    }

    /// What `device` last said it had seen, if anything.
    pub fn acl_seen_by(&self, device: &[u8; 32]) -> Option<AclSeen> {
        self.acl_seen().into_iter().find(|s| s.device == *device)
    }

    /// What every device said it had seen, each entry read from the container of the
    /// device's own person only (an entry naming a device of the other person, which a
    /// hostile partner could write, is ignored), one per device.
    pub fn acl_seen(&self) -> Vec<AclSeen> {
        self.device_notes(
            ACL_SEEN,
            |device, stored: Stored| {
                let mut head = [0u8; 32];
                hex::decode_to_slice(&stored.head, &mut head).ok()?;
                Some(AclSeen {
                    device,
                    len: stored.len,
                    head,
                    epoch: stored.epoch,
                })
            },
            |a, b| (a.len, a.epoch) > (b.len, b.epoch),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(len: u64, head: u8, epoch: u32) -> AclSeen {
        AclSeen {
            device: [1; 32],
            len,
            head: [head; 32],
            epoch,
        }
    }

    /// A chain of 5 records whose n-th hash is [n; 32].
    fn hash_at(n: u64) -> Option<[u8; 32]> {
        (1..=5).contains(&n).then(|| [u8::try_from(n).unwrap(); 32])
    }

    const ALICE: [u8; 32] = [0xA1; 32];
    const BOB: [u8; 32] = [0xB1; 32];

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
        let mut alice = SpaceDoc::create(
            &ALICE,
            &crate::PersonId::random(),
            "Alice",
            crate::Millis(1),
        )
        .unwrap();
        alice.set_people(people());
        let mut bob = SpaceDoc::load(&BOB, &alice.save_snapshot(), []).unwrap();
        bob.set_people(people());
        bob.add_person(&crate::PersonId::random(), "Bob", crate::Millis(2))
            .unwrap();
        (alice, bob)
    }

    fn send(from: &mut SpaceDoc, to: &mut SpaceDoc) {
        if let Some(bytes) = from.take_unsaved() {
            to.apply(&bytes).unwrap();
        }
    }

    #[test]
    fn what_a_device_saw_is_written_once_and_read_back_by_its_partner() {
        let (mut alice, mut bob) = couple();
        let said = AclSeen {
            device: ALICE,
            ..seen(4, 4, 1)
        };
        assert!(alice.note_acl_seen(&said).unwrap());
        assert!(!alice.note_acl_seen(&said).unwrap(), "nothing new to say");
        send(&mut alice, &mut bob);
        assert_eq!(bob.acl_seen(), [said]);
        assert_eq!(bob.acl_seen_by(&ALICE), Some(said));
    }

    #[test]
    fn a_device_whose_person_has_not_joined_yet_writes_nothing() {
        let mut alice = SpaceDoc::create(
            &ALICE,
            &crate::PersonId::random(),
            "Alice",
            crate::Millis(1),
        )
        .unwrap();
        let mut bob = SpaceDoc::load(&BOB, &alice.save_snapshot(), []).unwrap();
        bob.set_people(people());
        let said = AclSeen {
            device: BOB,
            ..seen(4, 4, 1)
        };
        assert!(!bob.note_acl_seen(&said).unwrap());
        assert!(
            bob.take_unsaved().is_none(),
            "no container made before Bob joins"
        );
    }

    #[test]
    fn an_entry_in_the_partners_container_naming_ones_own_device_is_ignored() {
        let (_, mut bob) = couple();
        // Bob says Alice's device saw a longer chain: not his to say.
        bob.note_acl_seen(&AclSeen {
            device: ALICE,
            ..seen(9, 9, 3)
        })
        .unwrap();
        assert_eq!(bob.acl_seen(), []);
    }

    #[test]
    fn a_chain_that_holds_what_the_device_saw_covers_it() {
        assert_eq!(compare(&seen(5, 5, 1), 5, 1, hash_at), Seen::Covered);
        assert_eq!(compare(&seen(3, 3, 0), 5, 1, hash_at), Seen::Covered);
    }

    #[test]
    fn a_longer_chain_or_a_newer_epoch_seen_elsewhere_is_held_back_here() {
        assert_eq!(compare(&seen(6, 6, 1), 5, 1, hash_at), Seen::Ahead);
        assert_eq!(compare(&seen(5, 5, 2), 5, 1, hash_at), Seen::Ahead);
    }

    #[test]
    fn another_record_at_the_same_place_is_a_fork() {
        assert_eq!(compare(&seen(5, 9, 1), 5, 1, hash_at), Seen::Forked);
        assert_eq!(compare(&seen(2, 9, 0), 5, 1, hash_at), Seen::Forked);
    }
}

/// One writer's part of the history a device holds: for `hearth verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterHistory {
    /// The writer's actor id (a device key).
    pub actor: Vec<u8>,
    /// How many of its changes this document holds.
    pub changes: u64,
    /// The hash of its latest one (the highest sequence number): it names, by Automerge's
    /// hash chain, every earlier one of its changes too.
    pub last: crate::ChangeHash,
}

impl SpaceDoc {
    /// Every writer of this document with how much of its history is here, by actor id.
    pub fn history_by_writer(&mut self) -> Vec<WriterHistory> {
        let mut by: std::collections::BTreeMap<Vec<u8>, (u64, u64, crate::ChangeHash)> =
            std::collections::BTreeMap::new();
        for change in self.doc.get_changes(&[]) {
            let entry =
                by.entry(change.actor_id().to_bytes().to_vec())
                    .or_insert((0, 0, change.hash()));
            entry.0 += 1;
            if change.seq() >= entry.1 {
                entry.1 = change.seq();
                entry.2 = change.hash();
            }
        }
        by.into_iter()
            .map(|(actor, (changes, _, last))| WriterHistory {
                actor,
                changes,
                last,
            })
            .collect()
    }
}
