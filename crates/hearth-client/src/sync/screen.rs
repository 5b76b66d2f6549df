//! Screening of incoming envelopes: each one the relay delivers is checked (it decodes,
//! names this space, its author is a device the chain knows, its signature is that
//! device's, and it names an epoch the chain has reached under which the author may write)
//! before it is opened and applied atomically with its cursor. One that fails is reported
//! with the device it names and passed; a validly signed one of a member from an epoch
//! newer than the adopted chain stops the sync before its cursor.
//!
//! The checks made before opening are one pure function, [`screen`], over the verified
//! ACL and the envelope's bytes; what opening and applying said becomes the report in
//! [`account`]. The signature is checked here, before any header field other than the
//! space and the author is acted on, so a relay (or anyone on the way) cannot stop a sync
//! with a header it made up: an epoch from the future, a counter past a removal. Decryption
//! and the counter rules (a replay, a change that waits for an earlier one) are judged when
//! the envelope is opened, by [`Profile::apply_incoming_all`], in the same transaction that
//! records it as seen. The screen's verdict carries the envelope as a
//! [`VerifiedEnvelope`], so opening does not check the signature a second time.

use std::fmt;

use hearth_proto::{AclState, DeviceId, Envelope, EnvelopeHeader, SpaceId, VerifiedEnvelope};

use super::{RejectedEnvelope, SyncError, SyncReport};
use crate::{Incoming, Profile};

/// Why an envelope was refused before it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its bytes are not an envelope.
    Unreadable(String),
    /// It names another space.
    OtherSpace,
    /// Its author is not, and never was, a member of this space.
    NotAMember,
    /// Its signature is not the signature of the device it names: forged, or damaged on
    /// the way. Nothing else in its header is believed.
    Tampered,
    /// Its author was removed, and it came after the last envelope the removal allows, or
    /// under an epoch the author never held.
    RemovedBefore {
        /// The author's last envelope the removal allows.
        last: u64,
        /// This envelope's counter.
        counter: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(e) => write!(f, "unreadable envelope: {e}"),
            Self::OtherSpace => f.write_str("it names another space"),
            Self::NotAMember => f.write_str("its author is not a member of this space"),
            Self::Tampered => f.write_str(
                "its signature does not match its author (forged or damaged on the way); \
                 nothing in it was believed",
            ),
            Self::RemovedBefore { last, counter } => write!(
                f,
                "its author was removed from this space after its envelope {last}; this one \
                 ({counter}) came later"
            ),
        }
    }
}

/// What the screen makes of one envelope.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// It may be opened with its epoch's key; its signature is checked.
    Open(VerifiedEnvelope),
    /// Refused before opening: reported, and the cursor passes it.
    Refused {
        /// Its header, if it decoded (the author it claims, unverified).
        header: Option<EnvelopeHeader>,
        /// Why.
        why: Refusal,
    },
    /// Signed by a current member under an epoch the adopted chain has not reached: the
    /// chain moved after this sync adopted it (a rotation). The sync stops before it and
    /// runs again with the newer chain, which judges it.
    NewerEpoch {
        /// Its author, whose signature it carries.
        author: DeviceId,
        /// The epoch it was written under.
        epoch: u32,
    },
}

/// The checks an envelope passes before it is opened, in this order: it decodes; it names
/// `space`; its author is a device the chain knows (a member now or once); its signature
/// is that device's; and only then its epoch and counter: a current member's envelope of
/// an epoch the chain has not reached is [`Verdict::NewerEpoch`], otherwise the author
/// must be a current member, or a removed one writing under an epoch it held, no later
/// than the removal allows.
///
/// The signature comes before the epoch so that an envelope nobody signed (or that names
/// a member it was not signed by) is refused and passed, not taken for news of a rotation
/// that would stop every sync.
pub(crate) fn screen(space: &SpaceId, state: &AclState, bytes: &[u8]) -> Verdict {
    let envelope = match Envelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => {
            return Verdict::Refused {
                header: None,
                why: Refusal::Unreadable(e.to_string()),
            };
        }
    };
    let header = *envelope.header();
    let refused = |why| Verdict::Refused {
        header: Some(header),
        why,
    };
    if header.space != *space {
        return refused(Refusal::OtherSpace);
    }
    let member = state.is_member(&header.author);
    let removed = state.removed_through(&header.author);
    if !member && removed.is_none() {
        return refused(Refusal::NotAMember);
    }
    let Ok(envelope) = envelope.into_verified() else {
        return refused(Refusal::Tampered);
    };
    if member && header.epoch > state.epoch() {
        return Verdict::NewerEpoch {
            author: header.author,
            epoch: header.epoch,
        };
    }
    match removed {
        _ if member => Verdict::Open(envelope),
        Some(last) if header.epoch < state.epoch() && header.counter <= last => {
            Verdict::Open(envelope)
        }
        Some(last) => refused(Refusal::RemovedBefore {
            last,
            counter: header.counter,
        }),
        None => refused(Refusal::NotAMember),
    }
}

/// What opening and applying an envelope did, in the report.
pub(crate) fn account(
    report: &mut SyncReport,
    seq: u64,
    author: Option<DeviceId>,
    outcome: Incoming,
) {
    match outcome {
        Incoming::Applied => report.received += 1,
        // Counted once the exchange is over: a later envelope may complete it.
        Incoming::Known | Incoming::Waiting => {}
        // The relay delivered an envelope this device already applied, under a new
        // seq: harmless (nothing is applied twice), but not what an honest relay does.
        Incoming::Replayed => refuse(
            report,
            seq,
            author,
            "a replay of an envelope already applied; ignored".into(),
        ),
        Incoming::Rejected { reason } => refuse(report, seq, author, reason),
    }
}

/// Verifies, decrypts and applies one envelope the relay pushed live as `seq` (an
/// `Event`). A bad one is reported but does not take its place: the relay could send a
/// made-up event under the seq of a real envelope still to come, which would then be
/// skipped for good. A page of the store read later passes it (see [`take_in`]). One this
/// device cannot judge yet (a newer epoch than `state`) stops the sync before the cursor
/// passes it.
pub(super) fn receive(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    seq: u64,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    take(profile, space, state, [(seq, bytes)], report, false)
}

/// Screens, opens and applies envelopes of a `Batch` page, in seq order (two under one seq
/// are both screened). The cursor passes a refused one as it passes an applied one, so it
/// is reported once, not again on every sync.
pub(super) fn take_in<'a>(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    items: impl IntoIterator<Item = (u64, &'a [u8])>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    take(profile, space, state, items, report, true)
}

/// [`take_in`], passing refused envelopes only if `pass`.
fn take<'a>(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    items: impl IntoIterator<Item = (u64, &'a [u8])>,
    report: &mut SyncReport,
    pass: bool,
) -> Result<(), SyncError> {
    let mut screened = Vec::new();
    let mut passed = Vec::new();
    for (seq, bytes) in items {
        match screen(space, state, bytes) {
            Verdict::Open(envelope) => {
                let epoch = envelope.header().epoch;
                // `settle` fetched every epoch's key up to the state's.
                let key = profile.sync_book().epoch_key(epoch)?.ok_or_else(|| {
                    SyncError::KeyUnavailable {
                        epoch,
                        reason: "this device does not hold it".into(),
                    }
                })?;
                screened.push((seq, envelope, key));
            }
            Verdict::Refused { header, why } => {
                refuse(report, seq, header.map(|h| h.author), why.to_string());
                if pass {
                    passed.push((seq, header));
                }
            }
            Verdict::NewerEpoch { author, epoch } => {
                // A witness that the chain moved on (see `witness`): kept, so that if the
                // relay goes on hiding it, this device seals nothing under the old epoch.
                profile.sync_book_mut().saw_newer_epoch(&author, epoch)?;
                return Err(SyncError::AclMoved);
            }
        }
    }
    deliver(profile, screened, report)?;
    if !passed.is_empty() {
        profile.sync_book_mut().pass(&passed)?;
    }
    Ok(())
}

/// Opens and applies screened envelopes, all in one transaction over one load of the
/// document, and reports what became of each.
fn deliver(
    profile: &mut Profile,
    items: Vec<(u64, VerifiedEnvelope, hearth_crypto::EpochKey)>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    if items.is_empty() {
        return Ok(());
    }
    let taken = profile.sync_book_mut().apply_incoming_all(&items)?;
    for ((seq, envelope, _), outcome) in items.iter().zip(taken.outcomes) {
        account(report, *seq, Some(envelope.header().author), outcome);
    }
    report.refused_changes.extend(taken.refused);
    Ok(())
}

fn refuse(report: &mut SyncReport, seq: u64, device: Option<DeviceId>, reason: String) {
    tracing::warn!(seq, device = ?device.map(|d| d.short()), %reason, "envelope refused");
    report.rejected.push(RejectedEnvelope {
        seq,
        device,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use hearth_crypto::{EpochKey, Protection, sign_record};
    use hearth_doc::Millis;
    use hearth_proto::{AclBody, AclRecord, Limits};

    use super::*;
    use crate::sync::fixtures::{Couple, sealed};

    fn refusal(verdict: Verdict) -> (Option<DeviceId>, Refusal) {
        match verdict {
            Verdict::Refused { header, why } => (header.map(|h| h.author), why),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn opened(verdict: &Verdict) -> bool {
        matches!(verdict, Verdict::Open(_))
    }

    #[test]
    fn an_unreadable_envelope_is_refused_without_an_author() {
        let c = Couple::new();
        let (author, why) = refusal(screen(&c.space, &c.state(), b"not an envelope"));
        assert_eq!(author, None);
        assert!(matches!(why, Refusal::Unreadable(_)), "{why:?}");
        assert!(
            why.to_string().starts_with("unreadable envelope: "),
            "{why}"
        );
    }

    #[test]
    fn an_envelope_for_another_space_is_refused() {
        let c = Couple::new();
        let other = SpaceId::from_bytes([8; 16]);
        let bytes = sealed(&c.owner, &c.keys[1], other, 1, 1, b"x");
        let (author, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(author, Some(c.owner.device_id()));
        assert_eq!(why, Refusal::OtherSpace);
        assert_eq!(why.to_string(), "it names another space");
    }

    #[test]
    fn an_envelope_from_a_stranger_is_refused_naming_the_stranger() {
        let c = Couple::new();
        let bytes = sealed(&c.stranger, &c.keys[1], c.space, 1, 1, b"x");
        let (author, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(author, Some(c.stranger.device_id()));
        assert_eq!(why, Refusal::NotAMember);
        assert_eq!(why.to_string(), "its author is not a member of this space");
    }

    #[test]
    fn a_removed_devices_envelope_after_its_last_allowed_one_is_refused() {
        let c = Couple::new();
        let counter = Couple::REMOVED_THROUGH + 1;
        let bytes = sealed(&c.removed, &c.keys[0], c.space, 0, counter, b"x");
        let (author, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(author, Some(c.removed.device_id()));
        assert_eq!(
            why,
            Refusal::RemovedBefore {
                last: Couple::REMOVED_THROUGH,
                counter
            }
        );
        assert!(why.to_string().contains("after its envelope 5"), "{why}");
    }

    #[test]
    fn a_removed_devices_envelope_under_the_key_it_never_held_is_refused() {
        let c = Couple::new();
        let bytes = sealed(&c.removed, &c.keys[1], c.space, 1, 1, b"x");
        let (_, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert!(matches!(why, Refusal::RemovedBefore { .. }), "{why:?}");
    }

    #[test]
    fn a_removed_devices_envelope_written_before_its_removal_is_opened() {
        let c = Couple::new();
        for counter in [1, Couple::REMOVED_THROUGH] {
            let bytes = sealed(&c.removed, &c.keys[0], c.space, 0, counter, b"x");
            assert!(opened(&screen(&c.space, &c.state(), &bytes)), "{counter}");
        }
    }

    #[test]
    fn a_members_envelope_under_the_current_or_an_earlier_epoch_is_opened() {
        let c = Couple::new();
        for epoch in [0, 1] {
            let key = &c.keys[usize::try_from(epoch).unwrap()];
            let bytes = sealed(&c.owner, key, c.space, epoch, 9, b"x");
            assert!(opened(&screen(&c.space, &c.state(), &bytes)), "{epoch}");
        }
    }

    #[test]
    fn a_members_signed_envelope_from_an_epoch_the_chain_has_not_reached_stops_the_sync() {
        let c = Couple::new();
        let bytes = sealed(&c.owner, &c.keys[1], c.space, 2, 1, b"x");
        assert!(matches!(
            screen(&c.space, &c.state(), &bytes),
            Verdict::NewerEpoch { .. }
        ));
    }

    #[test]
    fn a_future_epoch_from_a_stranger_or_a_removed_device_is_refused_not_waited_for() {
        let c = Couple::new();
        let bytes = sealed(&c.stranger, &c.keys[1], c.space, 99, 1, b"x");
        let (author, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(
            (author, why),
            (Some(c.stranger.device_id()), Refusal::NotAMember)
        );
        // A removed device never rejoins, so it never holds a newer epoch's key.
        let bytes = sealed(&c.removed, &c.keys[1], c.space, 99, 1, b"x");
        let (author, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(author, Some(c.removed.device_id()));
        assert!(matches!(why, Refusal::RemovedBefore { .. }), "{why:?}");
    }

    #[test]
    fn a_forgery_in_a_members_name_is_refused_before_its_epoch_or_counter_is_believed() {
        let c = Couple::new();
        // Under the current epoch, under one the chain has not reached (99), and in a
        // removed device's name with a counter its removal allows: all refused as tampered,
        // naming the device they claim.
        for (author, epoch, counter) in [
            (&c.owner, 1, 1),
            (&c.owner, 99, 1),
            (&c.removed, 0, Couple::REMOVED_THROUGH),
        ] {
            let key = &c.keys[usize::try_from(epoch.min(1)).unwrap()];
            let bytes = forged(&sealed(author, key, c.space, epoch, counter, b"x"));
            let (claimed, why) = refusal(screen(&c.space, &c.state(), &bytes));
            assert_eq!(claimed, Some(author.device_id()), "{epoch}");
            assert_eq!(why, Refusal::Tampered, "{epoch}");
            assert!(why.to_string().contains("signature"), "{why}");
        }
    }

    #[test]
    fn an_envelope_signed_by_another_key_than_the_member_it_names_is_refused_as_tampered() {
        let c = Couple::new();
        let theirs =
            Envelope::decode(&sealed(&c.stranger, &c.keys[1], c.space, 99, 1, b"x")).unwrap();
        let mut header = *theirs.header();
        header.author = c.owner.device_id();
        let bytes = Envelope::from_parts(
            header,
            *theirs.nonce(),
            theirs.ciphertext().to_vec(),
            *theirs.signature(),
        )
        .encode();
        let (claimed, why) = refusal(screen(&c.space, &c.state(), &bytes));
        assert_eq!(
            (claimed, why),
            (Some(c.owner.device_id()), Refusal::Tampered)
        );
    }

    #[test]
    fn an_applied_envelope_counts_as_received() {
        let mut report = SyncReport::default();
        account(&mut report, 4, None, Incoming::Applied);
        assert_eq!(report.received, 1);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn known_and_waiting_envelopes_are_neither_received_nor_refused() {
        let mut report = SyncReport::default();
        account(&mut report, 4, None, Incoming::Known);
        account(&mut report, 5, None, Incoming::Waiting);
        assert_eq!(report.received, 0);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn a_replayed_or_rejected_envelope_is_reported_with_its_device_and_not_counted() {
        let device = Some(DeviceId::from_bytes([3; 32]));
        let mut report = SyncReport::default();
        account(&mut report, 4, device, Incoming::Replayed);
        account(
            &mut report,
            5,
            device,
            Incoming::Rejected {
                reason: "it does not apply".into(),
            },
        );
        assert_eq!(report.received, 0);
        let seqs: Vec<_> = report.rejected.iter().map(|r| (r.seq, r.device)).collect();
        assert_eq!(seqs, [(4, device), (5, device)]);
        assert!(report.rejected[0].reason.contains("replay"));
        assert_eq!(report.rejected[1].reason, "it does not apply");
    }

    /// The same envelope with its signature zeroed.
    fn forged(bytes: &[u8]) -> Vec<u8> {
        let e = Envelope::decode(bytes).unwrap();
        Envelope::from_parts(*e.header(), *e.nonce(), e.ciphertext().to_vec(), [0; 64]).encode()
    }

    /// A device's profile whose space is on a (never contacted) relay, and a copy of it
    /// standing in for another device that writes to the same document.
    struct Pair {
        _dir: tempfile::TempDir,
        me: Profile,
        other: Profile,
        space: SpaceId,
        state: AclState,
    }

    impl Pair {
        fn new() -> Pair {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("me");
            let mut me = Profile::create(&home, "Sam", Protection::None, Millis(1)).unwrap();
            let copy = dir.path().join("other");
            std::fs::create_dir_all(&copy).unwrap();
            for f in ["device.key", "profile.db"] {
                std::fs::copy(home.join(f), copy.join(f)).unwrap();
            }
            let mut other = Profile::open(&copy, None).unwrap();
            me.sync_book_mut()
                .start_space("ws://relay.invalid")
                .unwrap();
            other
                .sync_book_mut()
                .put_epoch_key(0, &me.sync_book().epoch_key(0).unwrap().unwrap())
                .unwrap();
            let space = me.space().unwrap();
            let state = me.sync_book().acl_state().unwrap().unwrap();
            Pair {
                _dir: dir,
                me,
                other,
                space,
                state,
            }
        }

        /// `text` written on the other device, staged and sealed: its next envelope.
        fn written(&mut self, text: &str) -> Vec<u8> {
            let person = self.other.person_id().clone();
            self.other
                .write(|doc| doc.add_appreciation(&person, text, Millis::now()))
                .unwrap();
            let counter = self
                .other
                .sync_book_mut()
                .stage_outgoing(0)
                .unwrap()
                .unwrap();
            let outbox = self.other.sync_book().outbox().unwrap();
            outbox.into_iter().find(|(c, _)| *c == counter).unwrap().1
        }

        fn take(&mut self, items: &[(u64, &[u8])]) -> Result<SyncReport, SyncError> {
            let mut report = SyncReport::default();
            take_in(
                &mut self.me,
                &self.space,
                &self.state,
                items.iter().copied(),
                &mut report,
            )?;
            Ok(report)
        }

        fn texts(&self) -> Vec<String> {
            let doc = self.me.load().unwrap();
            doc.appreciations().into_iter().map(|a| a.text).collect()
        }

        fn key(&self) -> EpochKey {
            self.me.sync_book().epoch_key(0).unwrap().unwrap()
        }
    }

    #[test]
    fn a_members_change_is_applied_and_the_cursor_moves_past_it() {
        let mut p = Pair::new();
        let bytes = p.written("thank you for the soup");
        let report = p.take(&[(1, &bytes)]).unwrap();
        assert_eq!(report.received, 1);
        assert!(report.rejected.is_empty());
        assert_eq!(p.texts(), ["thank you for the soup"]);
        assert_eq!(p.me.sync_book().cursor().unwrap(), 1);
    }

    #[test]
    fn the_same_envelope_delivered_again_is_reported_as_a_replay_and_applied_once() {
        let mut p = Pair::new();
        let bytes = p.written("thank you for the soup");
        p.take(&[(1, &bytes)]).unwrap();
        let report = p.take(&[(2, &bytes)]).unwrap();
        assert_eq!(report.received, 0);
        assert_eq!(report.rejected.len(), 1);
        assert!(report.rejected[0].reason.contains("replay"));
        assert_eq!(p.texts().len(), 1);
        assert_eq!(p.me.sync_book().cursor().unwrap(), 2);
    }

    #[test]
    fn a_change_that_builds_on_a_missing_one_waits_and_applies_when_that_arrives() {
        let mut p = Pair::new();
        let first = p.written("first");
        let second = p.written("second");
        let report = p.take(&[(2, &second)]).unwrap();
        assert_eq!((report.received, report.rejected.len()), (0, 0));
        assert_eq!(p.me.sync_book().waiting().unwrap(), 1);
        let report = p.take(&[(1, &first)]).unwrap();
        assert_eq!((report.received, report.rejected.len()), (1, 0));
        assert_eq!(p.me.sync_book().waiting().unwrap(), 0);
        let mut texts = p.texts();
        texts.sort();
        assert_eq!(texts, ["first", "second"]);
    }

    #[test]
    fn this_devices_own_envelope_coming_back_is_known_not_received() {
        let mut p = Pair::new();
        let person = p.me.person_id().clone();
        p.me.write(|doc| doc.add_appreciation(&person, "mine", Millis::now()))
            .unwrap();
        p.me.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        let (_, bytes) = p.me.sync_book().outbox().unwrap().remove(0);
        let report = p.take(&[(1, &bytes)]).unwrap();
        assert_eq!((report.received, report.rejected.len()), (0, 0));
        assert_eq!(p.me.sync_book().cursor().unwrap(), 1);
    }

    #[test]
    fn a_forged_signature_is_refused_and_nothing_from_it_is_applied() {
        let mut p = Pair::new();
        let bytes = forged(&p.written("not from them"));
        let report = p.take(&[(1, &bytes)]).unwrap();
        assert_eq!(report.received, 0);
        assert_eq!(report.rejected.len(), 1);
        assert!(report.rejected[0].reason.contains("signature"));
        assert!(p.texts().is_empty());
        assert_eq!(p.me.sync_book().cursor().unwrap(), 1);
    }

    #[test]
    fn an_envelope_sealed_under_another_key_is_refused() {
        let mut p = Pair::new();
        let wrong = EpochKey::generate().unwrap();
        let bytes = sealed(&p.me.secrets.device, &wrong, p.space, 0, 1, b"x");
        let report = p.take(&[(1, &bytes)]).unwrap();
        assert_eq!(report.rejected.len(), 1);
        assert!(report.rejected[0].reason.contains("decrypt"));
        assert_eq!(p.me.sync_book().cursor().unwrap(), 1);
    }

    #[test]
    fn an_envelope_whose_changes_the_document_cannot_read_is_refused() {
        let mut p = Pair::new();
        let key = p.key();
        let bytes = sealed(&p.me.secrets.device, &key, p.space, 0, 1, b"not changes");
        let report = p.take(&[(1, &bytes)]).unwrap();
        assert_eq!((report.received, report.rejected.len()), (0, 1));
        assert!(p.texts().is_empty());
    }

    #[test]
    fn an_envelope_refused_by_the_screen_is_reported_once_and_the_cursor_passes_it() {
        let mut p = Pair::new();
        let stranger = hearth_crypto::DeviceKeys::generate().unwrap();
        let key = p.key();
        let refused = sealed(&stranger, &key, p.space, 0, 1, b"x");
        let good = p.written("after it");
        let report = p.take(&[(1, &refused), (2, &good)]).unwrap();
        assert_eq!(report.received, 1);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].seq, 1);
        assert_eq!(report.rejected[0].device, Some(stranger.device_id()));
        assert_eq!(p.me.sync_book().cursor().unwrap(), 2);
        // Refused last in its batch: the cursor still passes it.
        let report = p.take(&[(3, &refused)]).unwrap();
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(p.me.sync_book().cursor().unwrap(), 3);
    }

    #[test]
    fn an_envelope_whose_epoch_key_this_device_lacks_stops_the_sync() {
        let mut p = Pair::new();
        let next = EpochKey::generate().unwrap();
        let mut records: Vec<AclRecord> =
            p.me.sync_book()
                .acl_records()
                .unwrap()
                .iter()
                .map(|r| AclRecord::decode(r).unwrap())
                .collect();
        let rotate = sign_record(
            p.state.head(),
            AclBody::RotateEpoch {
                epoch: 1,
                key_check: next.check(&p.space, 1),
                by: p.me.device_id(),
            },
            &[&p.me.secrets.device],
        )
        .unwrap();
        records.push(rotate);
        p.state = AclState::from_records(&records, &Limits::default()).unwrap();
        let bytes = sealed(&p.me.secrets.device, &next, p.space, 1, 1, b"x");
        let err = p.take(&[(1, &bytes)]).unwrap_err();
        assert!(
            matches!(err, SyncError::KeyUnavailable { epoch: 1, .. }),
            "{err}"
        );
        assert_eq!(p.me.sync_book().cursor().unwrap(), 0);
    }

    #[test]
    fn an_unsigned_envelope_claiming_a_future_epoch_is_refused_and_the_rest_is_applied() {
        let mut p = Pair::new();
        let key = p.key();
        let good = p.written("kept");
        let claim = forged(&sealed(&p.me.secrets.device, &key, p.space, 99, 1, b"x"));
        let report = p.take(&[(1, &good), (2, &claim)]).unwrap();
        assert_eq!(report.received, 1);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].seq, 2);
        assert_eq!(report.rejected[0].device, Some(p.me.device_id()));
        assert_eq!(p.texts(), ["kept"]);
        assert_eq!(
            p.me.sync_book().cursor().unwrap(),
            2,
            "the cursor passes it"
        );
    }

    #[test]
    fn an_envelope_from_a_newer_epoch_stops_the_sync_before_its_cursor() {
        let mut p = Pair::new();
        let key = p.key();
        let good = p.written("kept for the next run");
        let newer = sealed(&p.me.secrets.device, &key, p.space, 1, 1, b"x");
        let err = p.take(&[(1, &good), (2, &newer)]).unwrap_err();
        assert!(matches!(err, SyncError::AclMoved), "{err}");
        assert_eq!(
            p.me.sync_book().cursor().unwrap(),
            0,
            "nothing of the batch is taken"
        );
        assert!(p.texts().is_empty());
    }
}
