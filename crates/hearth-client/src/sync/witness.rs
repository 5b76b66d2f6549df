//! Cross-checks of the ACL, against a relay that hides records: what other devices say
//! they have seen of the space's chain is compared with the chain the relay gave this
//! device, before this device seals anything. Two witnesses:
//!
//! - **the document**: each device records in its own person's container the chain it
//!   verified (length, last hash, epoch: `hearth_doc::AclSeen`), written with its next push
//!   whenever its chain grows, and readable only by members;
//! - **envelope headers**: a member's validly signed envelope under an epoch this device's
//!   chain has not reached (kept in `sync_state.newer_epoch`, migration 8, since the
//!   envelope itself cannot be opened and is not taken).
//!
//! A witness that saw more than the relay shows ([`Doubt::Hidden`]) stops the sync before
//! anything is sealed: after a removal and a rotation that the relay hides, sealing under
//! the old key would let the removed device read what is written. A witness that saw a
//! different chain of the same length ([`Doubt::Forked`]) means the relay shows the devices
//! different chains. [`doubt`] is the rule, a pure function.

use hearth_doc::{AclSeen, Seen};
use hearth_proto::{AclRecord, AclState, DeviceId};

use super::SyncError;
use crate::Profile;

/// Why this device does not trust the chain the relay gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    /// `by` saw records, or an epoch, that the relay does not show this device.
    Hidden {
        /// The device that saw more.
        by: DeviceId,
        /// How many records its chain had, if it said (an envelope header names only its
        /// epoch).
        records: Option<u64>,
        /// The epoch its chain reached.
        epoch: u32,
    },
    /// `by` saw a chain that differs from this device's at a record both have.
    Forked {
        /// The device whose chain differs.
        by: DeviceId,
    },
}

/// What the witnesses say of this device's chain (`hashes`: each record's hash, in order;
/// `epoch`: the epoch it reaches): the first doubt, or `None`. `me` is this device, whose
/// own entry is not a witness.
pub(crate) fn doubt(
    me: &DeviceId,
    hashes: &[[u8; 32]],
    epoch: u32,
    seen: &[AclSeen],
    newer_epoch: Option<(DeviceId, u32)>,
) -> Option<Doubt> {
    if let Some((by, named)) = newer_epoch
        && named > epoch
    {
        return Some(Doubt::Hidden {
            by,
            records: None,
            epoch: named,
        });
    }
    let len = hashes.len() as u64;
    let hash_at = |n: u64| {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| hashes.get(i).copied())
    };
    seen.iter()
        .filter(|s| s.device != *me.as_bytes())
        .find_map(|s| {
            let by = DeviceId::from_bytes(s.device);
            match hearth_doc::compare_acl_seen(s, len, epoch, hash_at) {
                Seen::Covered => None,
                Seen::Ahead => Some(Doubt::Hidden {
                    by,
                    records: Some(s.len),
                    epoch: s.epoch,
                }),
                Seen::Forked => Some(Doubt::Forked { by }),
            }
        })
}

/// The hash of each record of this device's verified chain, in order.
fn chain_hashes(profile: &Profile) -> Result<Vec<[u8; 32]>, SyncError> {
    profile
        .sync_book()
        .acl_records()?
        .iter()
        .map(|bytes| {
            AclRecord::decode(bytes)
                .map(|r| r.hash())
                .map_err(SyncError::InvalidChain)
        })
        .collect()
}

/// Checks the chain this device adopted (`state`) against the witnesses: `Err` with
/// [`SyncError::AclHidden`] or [`SyncError::AclForked`] if one saw otherwise. If none did,
/// records in the document the chain this device verified, unless the document says so
/// already ([`note_due`]). One load of the document.
pub(super) fn check_and_note(profile: &mut Profile, state: &AclState) -> Result<(), SyncError> {
    let mut doc = profile.load()?;
    check_in(profile, state, &doc.acl_seen())?;
    let seen = AclSeen {
        device: *profile.device_id().as_bytes(),
        len: state.len(),
        head: state.head(),
        epoch: state.epoch(),
    };
    let unpushed = profile.sync_book().has_unpushed(&mut doc)?;
    if note_due(doc.acl_seen_by(&seen.device).as_ref(), &seen, unpushed) {
        profile.write(|doc| doc.note_acl_seen(&seen))?;
    }
    Ok(())
}

/// Whether to record `now` when the document says `said`: when it differs and rides with
/// a write this sync pushes anyway (`unpushed`), or alone after a rotation. The rotation
/// is the case that matters: it follows a removal, and its note is an envelope under the
/// new epoch, which a partner's device cannot miss without a gap in the relay's seqs, or,
/// if it gets it, without learning that the relay hides the rotation from it.
pub(crate) fn note_due(said: Option<&AclSeen>, now: &AclSeen, unpushed: bool) -> bool {
    if said == Some(now) {
        return false;
    }
    let rotated = said.map_or(now.epoch > 0, |s| s.epoch < now.epoch);
    unpushed || rotated
}

/// [`check_and_note`] without the note, for what a pull brought.
pub(super) fn check(profile: &Profile, state: &AclState) -> Result<(), SyncError> {
    check_in(profile, state, &profile.load()?.acl_seen())
}

fn check_in(profile: &Profile, state: &AclState, seen: &[AclSeen]) -> Result<(), SyncError> {
    let hashes = chain_hashes(profile)?;
    let newer = profile.sync_book().newer_epoch()?;
    match doubt(&profile.device_id(), &hashes, state.epoch(), seen, newer) {
        None => Ok(()),
        Some(Doubt::Hidden { by, records, epoch }) => Err(SyncError::AclHidden {
            by,
            records,
            epoch,
            have_records: hashes.len() as u64,
            have_epoch: state.epoch(),
        }),
        Some(Doubt::Forked { by }) => Err(SyncError::AclForked { by }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 32] = [1; 32];
    const PARTNER: [u8; 32] = [2; 32];

    fn hashes() -> Vec<[u8; 32]> {
        (1..=5u8).map(|n| [n; 32]).collect()
    }

    fn said(device: [u8; 32], len: u64, head: u8, epoch: u32) -> AclSeen {
        AclSeen {
            device,
            len,
            head: [head; 32],
            epoch,
        }
    }

    fn me() -> DeviceId {
        DeviceId::from_bytes(ME)
    }

    #[test]
    fn witnesses_that_saw_no_more_than_this_chain_raise_no_doubt() {
        let seen = [said(PARTNER, 5, 5, 1), said(ME, 5, 5, 1)];
        assert_eq!(doubt(&me(), &hashes(), 1, &seen, None), None);
        let older = [said(PARTNER, 3, 3, 0)];
        assert_eq!(doubt(&me(), &hashes(), 1, &older, None), None);
    }

    #[test]
    fn a_partner_that_saw_more_records_means_the_relay_hides_them() {
        let seen = [said(PARTNER, 7, 7, 2)];
        assert_eq!(
            doubt(&me(), &hashes(), 1, &seen, None),
            Some(Doubt::Hidden {
                by: DeviceId::from_bytes(PARTNER),
                records: Some(7),
                epoch: 2
            })
        );
    }

    #[test]
    fn a_signed_envelope_under_a_newer_epoch_means_the_relay_hides_the_rotation() {
        let by = DeviceId::from_bytes(PARTNER);
        assert_eq!(
            doubt(&me(), &hashes(), 1, &[], Some((by, 2))),
            Some(Doubt::Hidden {
                by,
                records: None,
                epoch: 2
            })
        );
        assert_eq!(
            doubt(&me(), &hashes(), 2, &[], Some((by, 2))),
            None,
            "the chain reached it"
        );
    }

    #[test]
    fn another_record_where_this_chain_has_one_is_a_fork() {
        let seen = [said(PARTNER, 4, 9, 1)];
        assert_eq!(
            doubt(&me(), &hashes(), 1, &seen, None),
            Some(Doubt::Forked {
                by: DeviceId::from_bytes(PARTNER)
            })
        );
    }

    #[test]
    fn a_chain_that_grew_is_noted_with_the_next_write_and_a_rotation_at_once() {
        let now = said(ME, 5, 5, 1);
        assert!(!note_due(Some(&now), &now, true), "nothing new");
        let before = said(ME, 4, 4, 1);
        assert!(!note_due(Some(&before), &now, false), "waits for a write");
        assert!(note_due(Some(&before), &now, true));
        let older_epoch = said(ME, 3, 3, 0);
        assert!(
            note_due(Some(&older_epoch), &now, false),
            "a rotation goes alone"
        );
        assert!(note_due(None, &now, false));
        assert!(!note_due(None, &said(ME, 1, 1, 0), false));
    }

    #[test]
    fn this_devices_own_entry_is_not_a_witness() {
        let seen = [said(ME, 9, 9, 9)];
        assert_eq!(doubt(&me(), &hashes(), 1, &seen, None), None);
    }
}
