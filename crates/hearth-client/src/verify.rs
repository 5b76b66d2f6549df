//! `hearth verify`: a short code for partners to compare side by side, as Signal's safety
//! numbers, covering the space's devices (the ACL chain this device verified) and the
//! history it holds, writer by writer. A relay can withhold everything from one partner
//! and no protocol between devices that only meet through it can tell; two people looking
//! at two screens can. When the codes differ, the lines say what differs: the devices, or
//! which writer's history one of them lacks.

use hearth_doc::WriterHistory;
use hearth_proto::{AclState, DeviceId};

use crate::{Error, Profile};

/// What `hearth verify` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The code over everything below: "1234 5678 9012".
    pub code: String,
    /// The code over the space's devices: "4821 0937".
    pub devices_code: String,
    /// How many ACL records the chain has.
    pub records: u64,
    /// The key epoch it reached.
    pub epoch: u32,
    /// One line per writer of the history, by device id.
    pub writers: Vec<WriterLine>,
}

/// One writer's part of the history in [`Verification`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterLine {
    /// The device that wrote it (its key is its actor id).
    pub device: DeviceId,
    /// How many of its changes this device holds.
    pub changes: u64,
    /// The code over them: "0921".
    pub code: String,
}

const CONTEXT: &str = "hearth verify v1";

/// `digits` decimal digits of `hash`, in groups of four.
fn digits(hash: &blake3::Hash, digits: u32) -> String {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    let n = u64::from_le_bytes(first) % 10u64.pow(digits);
    let text = format!("{n:0width$}", width = digits as usize);
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The codes for a space `space` whose chain has `records` records ending in `head` and
/// reaching `epoch`, holding `history` (sorted by actor, as `history_by_writer` gives it).
/// A pure function: the same inputs on two devices give the same codes.
pub fn codes(
    space: &[u8; 16],
    head: &[u8; 32],
    records: u64,
    epoch: u32,
    history: &[WriterHistory],
) -> Verification {
    let mut devices = blake3::Hasher::new_derive_key(CONTEXT);
    devices.update(b"devices");
    devices.update(space);
    devices.update(head);
    devices.update(&records.to_le_bytes());
    devices.update(&epoch.to_le_bytes());
    let devices = devices.finalize();
    let mut all = blake3::Hasher::new_derive_key(CONTEXT);
    all.update(b"all");
    all.update(devices.as_bytes());
    let mut writers = Vec::with_capacity(history.len());
    for w in history {
        let Ok(device) = <[u8; 32]>::try_from(w.actor.as_slice()) else {
            continue;
        };
        let mut line = blake3::Hasher::new_derive_key(CONTEXT);
        line.update(b"writer");
        line.update(space);
        line.update(&device);
        line.update(&w.changes.to_le_bytes());
        line.update(&w.last.0);
        let line = line.finalize();
        all.update(line.as_bytes());
        writers.push(WriterLine {
            device: DeviceId::from_bytes(device),
            changes: w.changes,
            code: digits(&line, 4),
        });
    }
    Verification {
        code: digits(&all.finalize(), 12),
        devices_code: digits(&devices, 8),
        records,
        epoch,
        writers,
    }
}

impl Profile {
    /// The codes of [`codes`] for this device's space as it holds it now; `None` before
    /// the space is on a relay (there is nothing to compare with anyone yet).
    ///
    /// # Errors
    /// A database error, or a profile that fails its checks.
    pub fn verification(&self) -> Result<Option<Verification>, Error> {
        let Some(state): Option<AclState> = self.sync_book().acl_state()? else {
            return Ok(None);
        };
        let mut doc = self.load()?;
        let history = doc.history_by_writer();
        let space = *self.space()?.as_bytes();
        Ok(Some(codes(
            &space,
            &state.head(),
            state.len(),
            state.epoch(),
            &history,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_doc::ChangeHash;

    fn writer(n: u8, changes: u64) -> WriterHistory {
        WriterHistory {
            actor: vec![n; 32],
            changes,
            last: ChangeHash([n; 32]),
        }
    }

    #[test]
    fn the_same_space_gives_the_same_codes_and_any_difference_changes_the_code() {
        let history = [writer(1, 10), writer(2, 4)];
        let a = codes(&[7; 16], &[9; 32], 5, 1, &history);
        assert_eq!(a, codes(&[7; 16], &[9; 32], 5, 1, &history));
        assert_eq!(a.code.len(), 14, "{}", a.code);
        assert_eq!(a.devices_code.len(), 9, "{}", a.devices_code);
        let fewer = codes(&[7; 16], &[9; 32], 5, 1, &[writer(1, 10), writer(2, 3)]);
        assert_ne!(a.code, fewer.code);
        assert_eq!(
            a.devices_code, fewer.devices_code,
            "the devices are the same"
        );
        assert_eq!(
            a.writers[0], fewer.writers[0],
            "writer 1's line is the same"
        );
        assert_ne!(
            a.writers[1].code, fewer.writers[1].code,
            "writer 2's line says it"
        );
        let other_chain = codes(&[7; 16], &[8; 32], 5, 1, &history);
        assert_ne!(a.devices_code, other_chain.devices_code);
        assert_ne!(a.code, other_chain.code);
    }

    #[test]
    fn codes_are_digits_in_groups_of_four() {
        let v = codes(&[0; 16], &[0; 32], 1, 0, &[writer(3, 1)]);
        for part in v.code.split(' ').chain(v.devices_code.split(' ')) {
            assert_eq!(part.len(), 4, "{}", v.code);
            assert!(part.chars().all(|c| c.is_ascii_digit()));
        }
        assert_eq!(v.writers[0].code.len(), 4);
    }
}
