//! Screening of incoming envelopes: each one the relay delivers is checked (it decodes,
//! names this space and an epoch the chain has reached, its author may write under that
//! epoch) before it is opened and applied atomically with its cursor. One that fails is
//! reported with the device that sent it and passed; one from an epoch newer than the
//! adopted chain stops the sync before its cursor.

use hearth_proto::{AclState, DeviceId, Envelope, SpaceId};

use super::{RejectedEnvelope, SyncError, SyncReport};
use crate::{Incoming, Profile};

/// Verifies, decrypts and applies one envelope the relay delivered as `seq`. A bad one is
/// reported and passed; one this device cannot judge yet (a newer epoch than `state`)
/// stops the sync before the cursor passes it.
pub(super) fn receive(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    seq: u64,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    take_in(profile, space, state, [(seq, bytes)], report)
}

/// Screens, opens and applies envelopes the relay delivered, in its order. The cursor
/// passes a refused one as it passes an applied one, so it is reported once, not again on
/// every sync.
pub(super) fn take_in<'a>(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    items: impl IntoIterator<Item = (u64, &'a [u8])>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut screened = Vec::new();
    let mut passed = None;
    for (seq, bytes) in items {
        match screen(profile, space, state, seq, bytes, report)? {
            Some(item) => screened.push(item),
            None => passed = Some((seq, Envelope::decode(bytes).ok().map(|e| *e.header()))),
        }
    }
    deliver(profile, screened, report)?;
    if let Some((seq, header)) = passed {
        profile.sync_book_mut().pass(seq, header.as_ref())?;
    }
    Ok(())
}

/// The checks an envelope passes before it is opened: it decodes, names this space and an
/// epoch the chain has reached, and its author may write under that epoch. Returns it with
/// its epoch's key, or `None` if it was refused (and reported).
pub(super) fn screen(
    profile: &Profile,
    space: &SpaceId,
    state: &AclState,
    seq: u64,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<Option<(u64, Envelope, hearth_crypto::EpochKey)>, SyncError> {
    let envelope = match Envelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => {
            refuse(report, seq, None, format!("unreadable envelope: {e}"));
            return Ok(None);
        }
    };
    let header = *envelope.header();
    if header.space != *space {
        refuse(
            report,
            seq,
            Some(header.author),
            "it names another space".into(),
        );
        return Ok(None);
    }
    if header.epoch > state.epoch() {
        // Written after an ACL change this sync has not adopted (or forged: the next run,
        // with the newer chain, judges it).
        return Err(SyncError::AclMoved);
    }
    // Authorship: a current member, or a removed one writing under an epoch it held, no
    // later than the removal allows.
    let refusal = match state.removed_through(&header.author) {
        _ if state.is_member(&header.author) => None,
        Some(last) if header.epoch < state.epoch() && header.counter <= last => None,
        Some(last) => Some(format!(
            "its author was removed from this space after its envelope {last}; this one \
             ({}) came later",
            header.counter
        )),
        None => Some("its author is not a member of this space".into()),
    };
    if let Some(reason) = refusal {
        refuse(report, seq, Some(header.author), reason);
        return Ok(None);
    }
    // `settle` fetched every epoch's key up to the state's.
    let key = profile
        .sync_book()
        .epoch_key(header.epoch)?
        .ok_or_else(|| SyncError::KeyUnavailable {
            epoch: header.epoch,
            reason: "this device does not hold it".into(),
        })?;
    Ok(Some((seq, envelope, key)))
}

/// Opens and applies screened envelopes, all in one transaction over one load of the
/// document, and reports what became of each.
pub(super) fn deliver(
    profile: &mut Profile,
    items: Vec<(u64, Envelope, hearth_crypto::EpochKey)>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    if items.is_empty() {
        return Ok(());
    }
    let outcomes = profile.sync_book_mut().apply_incoming_all(&items)?;
    for ((seq, envelope, _), outcome) in items.iter().zip(outcomes) {
        let author = Some(envelope.header().author);
        match outcome {
            Incoming::Applied => report.received += 1,
            // Counted once the exchange is over: a later envelope may complete it.
            Incoming::Known | Incoming::Waiting => {}
            // The relay delivered an envelope this device already applied, under a new
            // seq: harmless (nothing is applied twice), but not what an honest relay does.
            Incoming::Replayed => refuse(
                report,
                *seq,
                author,
                "a replay of an envelope already applied; ignored".into(),
            ),
            Incoming::Rejected { reason } => refuse(report, *seq, author, reason),
        }
    }
    Ok(())
}

pub(super) fn refuse(report: &mut SyncReport, seq: u64, device: Option<DeviceId>, reason: String) {
    tracing::warn!(seq, device = ?device.map(|d| d.short()), %reason, "envelope refused");
    report.rejected.push(RejectedEnvelope {
        seq,
        device,
        reason,
    });
}
