//! Snapshots need both people (docs/security.md): a snapshot replaces the envelopes it
//! covers on the relay only once a device of the *other* person countersigned it, and a
//! device takes a snapshot in place of envelopes only if it carries such a
//! countersignature.
//!
//! Two sides of one sync:
//! - **Answering a proposal** ([`answer_proposal`]): the relay shows this device the
//!   snapshot another person's device pushed (`Proposed`, after the pages of a pull). This
//!   device opens it with the epoch key, reads it as a document, and checks it against what
//!   it knows ([`judge_proposal`]): it must hold the heads this device recorded at the
//!   largest seq at or below the snapshot's cover (`crate::sync_book::known`), and no
//!   change under one of this device's person's actors that this device does not have.
//!   Only then does it countersign (`Countersign`, signed over
//!   `hearth_proto::countersign_message`); otherwise the sync says why
//!   ([`SyncReport::not_countersigned`]) and the relay keeps every envelope.
//! - **Taking a snapshot** ([`vet_offered`]): when the relay hands this device a snapshot
//!   in place of envelopes (its cursor is behind the cover), the snapshot must carry a
//!   countersignature that counts under this device's ACL (`Countersigned`, just before
//!   it: [`offered_consent`]), open, and be a well-formed document. Else it is refused
//!   loudly ([`SyncReport::refused_snapshot`]): it covers nothing, the device asks for the
//!   envelopes without the snapshot (`SubscribeEnvelopes`), and if the relay no longer has
//!   them the sync says the history before the cover is unavailable.

use hearth_doc::{ChangeHash, SpaceDoc};
use hearth_proto::{
    AclState, ClientFrame, ConsentFault, Countersignature, DeviceId, Envelope, EnvelopeHeader,
    EnvelopeKind, Judged, RejectCode, RelayFrame, SpaceId, countersign_message,
    judge_countersignature, snapshot_hash,
};

use super::link::{Link, unexpected};
use super::screen::receive;
use super::{SyncError, SyncReport};
use crate::{Profile, Whose, Withheld};

/// Why this device did not countersign another person's snapshot proposal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalFault {
    /// It does not open with the space's key (or its signature fails).
    #[error("does not open with the space's key ({0})")]
    Unopenable(String),
    /// Its plaintext is not a well-formed document.
    #[error("is not a well-formed document ({0})")]
    NotADocument(String),
    /// It lacks changes this device had taken from envelopes it covers.
    #[error("leaves out changes this device has")]
    LeavesOut {
        /// How many of the heads this device knew at the cover it lacks.
        missing: usize,
    },
    /// It holds changes under this device's person's devices that this device does not
    /// have: changes in this person's name it cannot vouch for.
    #[error("carries {count} change(s) in your name that this device does not have")]
    InYourName {
        /// How many.
        count: usize,
    },
}

/// A snapshot proposal this device refused to countersign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCountersigned {
    /// The device that proposed it (the other person's).
    pub device: DeviceId,
    /// The seq it would have covered.
    pub covers_seq: u64,
    /// Why it was not countersigned.
    pub fault: ProposalFault,
}

/// Why this device refused a snapshot the relay handed it in place of envelopes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFault {
    /// The relay showed no countersignature for it (a snapshot stored before
    /// countersignatures, or one the relay took on its author's word alone).
    #[error("the relay shows no countersignature by the other person for it")]
    NotCountersigned,
    /// Its countersignature does not count under this device's ACL.
    #[error("{0}")]
    Consent(ConsentFault),
    /// It does not open with the space's key (or its signature fails).
    #[error("it does not open with the space's key ({0})")]
    Unopenable(String),
    /// Its plaintext is not a well-formed document.
    #[error("it is not a well-formed document ({0})")]
    NotADocument(String),
}

/// A snapshot the relay handed this device in place of the envelopes it covers, refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedSnapshot {
    /// The seq it claims to cover.
    pub covers_seq: u64,
    /// The device that signed it.
    pub device: DeviceId,
    /// Whose device that is.
    pub person: Whose,
    /// Why it was refused.
    pub fault: SnapshotFault,
    /// After asking for the envelopes without it, what the relay still did not hand over
    /// (it dropped them): the history this device lacks. `None` if the envelopes came.
    pub unavailable: Option<Withheld>,
}

/// Reads `plaintext` (a snapshot's, from elsewhere) as a whole document, every chunk parsed
/// and checksum-verified; one that holds no change at all is not a space.
///
/// # Errors
/// What was wrong, in words.
pub(crate) fn read_document(actor: &[u8], plaintext: &[u8]) -> Result<SpaceDoc, String> {
    let mut doc = SpaceDoc::replica(actor).map_err(|e| e.to_string())?;
    doc.apply(plaintext).map_err(|e| e.to_string())?;
    if doc.heads().is_empty() {
        return Err("it holds no changes at all".into());
    }
    Ok(doc)
}

/// The containment check a device makes before it countersigns `snapshot`: it holds every
/// change in `known` (the heads this device recorded at the largest seq at or below the
/// snapshot's cover), and every change it holds under an actor `mine` accepts (this
/// device's person's devices) is one `own` (this device's document) holds too.
///
/// # Errors
/// The [`ProposalFault`].
pub(crate) fn judge_proposal(
    snapshot: &mut SpaceDoc,
    known: &[ChangeHash],
    own: &mut SpaceDoc,
    mine: impl Fn(&[u8]) -> bool,
) -> Result<(), ProposalFault> {
    let missing = known
        .iter()
        .filter(|h| !snapshot.has_changes(std::slice::from_ref(h)))
        .count();
    if missing > 0 {
        return Err(ProposalFault::LeavesOut { missing });
    }
    let count = snapshot
        .changes_under(mine)
        .iter()
        .filter(|h| !own.has_changes(std::slice::from_ref(h)))
        .count();
    if count > 0 {
        return Err(ProposalFault::InYourName { count });
    }
    Ok(())
}

/// Whether `consent` (the `Countersigned` the relay sent before the snapshot, with its
/// cover) lets the snapshot with `header` and canonical `bytes` stand in for envelopes under
/// this device's ACL `state`: it names the snapshot's cover and counts
/// ([`judge_countersignature`], as accepted before: a countersigner removed since counts
/// for a snapshot of an epoch older than the current).
///
/// # Errors
/// The [`SnapshotFault`].
pub(crate) fn offered_consent(
    state: &AclState,
    header: &EnvelopeHeader,
    bytes: &[u8],
    consent: Option<&(u64, Countersignature)>,
) -> Result<(), SnapshotFault> {
    let EnvelopeKind::Snapshot { covers_seq } = header.kind else {
        return Err(SnapshotFault::Consent(ConsentFault::NotASnapshot));
    };
    let Some((_, consent)) = consent.filter(|(covers, _)| *covers == covers_seq) else {
        return Err(SnapshotFault::NotCountersigned);
    };
    judge_countersignature(
        state,
        header,
        &snapshot_hash(bytes),
        consent,
        Judged::Stored,
    )
    .map_err(SnapshotFault::Consent)
}

/// Whose device `device` is, as this device (`me`) reads the ACL `state`.
fn whose(state: &AclState, me: &DeviceId, device: &DeviceId) -> Whose {
    match state.person_of(device) {
        None => Whose::Unknown,
        Some(p) if Some(p) == state.person_of(me) => Whose::Yours,
        Some(_) => Whose::Partners,
    }
}

/// What opening a snapshot from elsewhere gave.
enum Opened {
    /// A well-formed document (boxed: a document is large beside the other outcomes).
    Document(Box<SpaceDoc>),
    /// This device holds no key for the snapshot's epoch.
    NoKey(u32),
    /// The signature, space, epoch or decryption failed.
    Unopenable(String),
    /// It opened, but its plaintext is not a well-formed document.
    NotADocument(String),
}

/// Opens `envelope` (a snapshot from elsewhere) with its epoch's key and reads it as a
/// document.
fn open_document(
    profile: &Profile,
    space: &SpaceId,
    envelope: &Envelope,
) -> Result<Opened, SyncError> {
    let epoch = envelope.header().epoch;
    let Some(key) = profile.sync_book().epoch_key(epoch)? else {
        return Ok(Opened::NoKey(epoch));
    };
    let plaintext = match hearth_crypto::envelope::open(envelope, space, epoch, &key) {
        Ok(plaintext) => plaintext,
        Err(e) => return Ok(Opened::Unopenable(e.to_string())),
    };
    Ok(
        match read_document(profile.device_id().as_bytes(), &plaintext) {
            Ok(doc) => Opened::Document(Box::new(doc)),
            Err(why) => Opened::NotADocument(why),
        },
    )
}

/// Screens the snapshots among `items` (what a `Batch` brings past the cursor, in seq
/// order) before anything is taken: each must carry a countersignature that counts
/// (`consent`, the `Countersigned` the relay sent just before), open, and be a well-formed
/// document. A refused one is left out (it covers nothing) and reported; the rest is
/// returned to be taken as usual.
///
/// # Errors
/// A database error.
pub(super) fn vet_offered(
    profile: &Profile,
    space: &SpaceId,
    state: &AclState,
    items: Vec<(u64, Vec<u8>)>,
    consent: Option<&(u64, Countersignature)>,
    report: &mut SyncReport,
) -> Result<Vec<(u64, Vec<u8>)>, SyncError> {
    let mut kept = Vec::with_capacity(items.len());
    for (seq, bytes) in items {
        let Ok(envelope) = Envelope::decode(&bytes) else {
            kept.push((seq, bytes));
            continue;
        };
        let header = *envelope.header();
        let EnvelopeKind::Snapshot { covers_seq } = header.kind else {
            kept.push((seq, bytes));
            continue;
        };
        let fault = match offered_consent(state, &header, &bytes, consent) {
            Err(fault) => Some(fault),
            Ok(()) => match open_document(profile, space, &envelope)? {
                Opened::Document(_) => None,
                Opened::NoKey(epoch) => Some(SnapshotFault::Unopenable(format!(
                    "this device has no key for epoch {epoch}"
                ))),
                Opened::Unopenable(why) => Some(SnapshotFault::Unopenable(why)),
                Opened::NotADocument(why) => Some(SnapshotFault::NotADocument(why)),
            },
        };
        let Some(fault) = fault else {
            kept.push((seq, bytes));
            continue;
        };
        tracing::warn!(
            seq,
            covers_seq,
            device = %header.author.short(),
            %fault,
            "snapshot refused; asking for the envelopes it stands for"
        );
        report.refused_snapshot = Some(Box::new(RefusedSnapshot {
            covers_seq,
            device: header.author,
            person: whose(state, &profile.device_id(), &header.author),
            fault,
            unavailable: None,
        }));
    }
    Ok(kept)
}

/// Judges the snapshot proposal the relay showed this device (`bytes`, another person's)
/// and countersigns it if it holds everything this device knows up to its cover. A
/// proposal this device cannot judge (by its own person, under an epoch whose key it
/// lacks, or covering seqs it has no record for) is left for another device, quietly.
///
/// # Errors
/// A [`SyncError`] talking to the relay or the database; a relay that refuses the
/// countersignature is not one (it keeps the envelopes, and the next sync judges again).
pub(super) async fn answer_proposal(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    state: &AclState,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let Ok(envelope) = Envelope::decode(bytes) else {
        return Ok(());
    };
    let header = *envelope.header();
    let me = profile.device_id();
    let EnvelopeKind::Snapshot { covers_seq } = header.kind else {
        return Ok(());
    };
    if header.space != *space || !state.other_people(&header.author, &me) {
        return Ok(());
    }
    let Some((at, known)) = profile.sync_book().known_at(covers_seq)? else {
        tracing::info!(
            covers_seq,
            "no record of what this device knew up to the proposal's cover; not judging it"
        );
        return Ok(());
    };
    let verdict = match open_document(profile, space, &envelope)? {
        // Another device of this person may hold the key and judge it.
        Opened::NoKey(_) => return Ok(()),
        Opened::Unopenable(why) => Err(ProposalFault::Unopenable(why)),
        Opened::NotADocument(why) => Err(ProposalFault::NotADocument(why)),
        Opened::Document(mut snapshot) => {
            let my_person = state.person_of(&me);
            let mine = |actor: &[u8]| {
                <[u8; 32]>::try_from(actor).is_ok_and(|a| {
                    my_person.is_some() && state.person_of(&DeviceId::from_bytes(a)) == my_person
                })
            };
            let mut own = profile.load()?;
            judge_proposal(&mut snapshot, &known, &mut own, mine)
        }
    };
    if let Err(fault) = verdict {
        tracing::warn!(
            covers_seq,
            known_at = at,
            device = %header.author.short(),
            %fault,
            "snapshot proposal not countersigned"
        );
        report.not_countersigned = Some(Box::new(NotCountersigned {
            device: header.author,
            covers_seq,
            fault,
        }));
        return Ok(());
    }
    let hash = snapshot_hash(bytes);
    let signature = profile
        .secrets
        .device
        .sign(&countersign_message(space, covers_seq, &hash));
    link.send(&ClientFrame::Countersign {
        covers_seq,
        snapshot: hash,
        device: me,
        signature,
    })
    .await?;
    loop {
        match link.recv().await {
            Ok(RelayFrame::Countersigned { covers_seq: c, .. }) if c == covers_seq => break,
            // Pushed by another device meanwhile, on the open subscription.
            Ok(RelayFrame::Event { seq, envelope }) => {
                let cursor = profile.sync_book().cursor()?;
                if seq > cursor && !profile.sync_book().ahead()?.contains_key(&seq) {
                    receive(profile, space, state, seq, &envelope, report)?;
                }
            }
            Ok(RelayFrame::AclChanged { .. }) => {}
            Ok(other) => return Err(unexpected("Countersigned", &other)),
            Err(SyncError::Refused { code, message })
                if code != RejectCode::NotMember && code != RejectCode::Unauthorized =>
            {
                tracing::info!(?code, %message, "countersignature not taken");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(covers_seq, "countersigned the other person's snapshot");
    report.countersigned = Some(covers_seq);
    // The relay holds a snapshot of everything up to its cover now.
    profile.sync_book_mut().snapshot_pushed(covers_seq)?;
    Ok(())
}

/// After the pulls of a sync that refused a snapshot: what the relay still did not hand
/// over below its cover is history this device lacks.
pub(super) fn note_unavailable(report: &mut SyncReport) {
    let withheld = report.withheld;
    if let Some(refused) = &mut report.refused_snapshot {
        refused.unavailable = withheld.filter(|w| w.from_seq <= refused.covers_seq);
    }
}

#[cfg(test)]
mod tests {
    use hearth_doc::{Millis, PersonId};

    use super::*;

    const SAM: [u8; 32] = [0xa1; 32];
    const SAM_TABLET: [u8; 32] = [0xa2; 32];
    const JORDAN: [u8; 32] = [0xb1; 32];

    fn sam() -> PersonId {
        "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0".parse().unwrap()
    }

    fn jordan() -> PersonId {
        "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".parse().unwrap()
    }

    /// Sam's and Jordan's documents in sync, each with one entry.
    fn pair() -> (SpaceDoc, SpaceDoc) {
        let mut sams = SpaceDoc::create(&SAM, &sam(), "Sam", Millis(1)).unwrap();
        let mut jordans = SpaceDoc::load(&JORDAN, &sams.save_snapshot(), []).unwrap();
        jordans.add_person(&jordan(), "Jordan", Millis(2)).unwrap();
        sams.apply(&jordans.changes_since(&[])).unwrap();
        (sams, jordans)
    }

    fn jordans_devices(actor: &[u8]) -> bool {
        actor == JORDAN
    }

    /// Sam's document as a snapshot, read back the way a countersigner reads it.
    fn snapshot_of(doc: &mut SpaceDoc) -> SpaceDoc {
        read_document(&JORDAN, &doc.save_snapshot()).unwrap()
    }

    #[test]
    fn a_snapshot_holding_everything_this_device_knew_is_countersigned() {
        let (mut sams, mut jordans) = pair();
        let known = jordans.heads();
        sams.add_appreciation(&sam(), "more of Sam's", Millis(3))
            .unwrap();
        let mut snapshot = snapshot_of(&mut sams);
        assert_eq!(
            judge_proposal(&mut snapshot, &known, &mut jordans, jordans_devices),
            Ok(())
        );
        assert_eq!(
            judge_proposal(&mut snapshot, &[], &mut jordans, jordans_devices),
            Ok(()),
            "nothing known yet"
        );
    }

    #[test]
    fn a_snapshot_that_leaves_out_a_known_change_is_not() {
        let (mut sams, mut jordans) = pair();
        let mut before = snapshot_of(&mut sams);
        jordans
            .add_appreciation(&jordan(), "Jordan's, on the relay", Millis(3))
            .unwrap();
        let known = jordans.heads();
        assert_eq!(
            judge_proposal(&mut before, &known, &mut jordans, jordans_devices),
            Err(ProposalFault::LeavesOut { missing: 1 })
        );
        // An empty document is no space at all.
        let empty = SpaceDoc::replica(&SAM).unwrap().save_snapshot();
        assert!(read_document(&JORDAN, &empty).is_err());
        assert!(read_document(&JORDAN, b"garbage, not a document").is_err());
    }

    #[test]
    fn a_snapshot_carrying_a_change_in_this_persons_name_it_never_saw_is_not() {
        let (mut sams, mut jordans) = pair();
        let known = jordans.heads();
        // Sam writes under Jordan's actor id in his copy: Automerge changes are not signed.
        let mut forged = SpaceDoc::load(&JORDAN, &sams.save_snapshot(), []).unwrap();
        forged
            .add_appreciation(&jordan(), "not written by Jordan", Millis(4))
            .unwrap();
        let mut snapshot = snapshot_of(&mut forged);
        assert_eq!(
            judge_proposal(&mut snapshot, &known, &mut jordans, jordans_devices),
            Err(ProposalFault::InYourName { count: 1 })
        );
        // The same change under Sam's other device is Sam's business, not Jordan's.
        let mut by_tablet = SpaceDoc::load(&SAM_TABLET, &sams.save_snapshot(), []).unwrap();
        let tablets = by_tablet.own_person();
        by_tablet
            .add_appreciation(&tablets, "from another device", Millis(4))
            .unwrap();
        let mut snapshot = snapshot_of(&mut by_tablet);
        assert_eq!(
            judge_proposal(&mut snapshot, &known, &mut jordans, jordans_devices),
            Ok(())
        );
    }

    #[test]
    fn offered_snapshots_need_a_countersignature_for_their_own_cover() {
        use hearth_crypto::DeviceKeys;
        use hearth_proto::{AclBody, AclRecord, InviteId, InviteRole, Limits};

        let space = SpaceId::from_bytes([3; 16]);
        let (sam, jordan) = (
            DeviceKeys::generate().unwrap(),
            DeviceKeys::generate().unwrap(),
        );
        let key = hearth_crypto::EpochKey::generate().unwrap();
        let genesis = hearth_crypto::sign_record(
            [0; 32],
            AclBody::Genesis {
                space,
                device: sam.device_id(),
                recipient: sam.recipient_bytes().unwrap(),
                epoch: 0,
                key_check: key.check(&space, 0),
            },
            &[&sam],
        )
        .unwrap();
        let code =
            hearth_crypto::InviteCode::generate("ws://relay.invalid", *space.as_bytes()).unwrap();
        let invite = code.keys();
        let offer = hearth_crypto::sign_record(
            genesis.hash(),
            AclBody::Invite {
                invite: InviteId::from_bytes(invite.invite_id()),
                expires_at_ms: u64::MAX,
                role: InviteRole::Partner,
                by: sam.device_id(),
            },
            &[&sam],
        )
        .unwrap();
        let add = hearth_crypto::sign_record(
            offer.hash(),
            AclBody::AddDevice {
                device: jordan.device_id(),
                recipient: jordan.recipient_bytes().unwrap(),
                invite: InviteId::from_bytes(invite.invite_id()),
            },
            &[&jordan, &invite],
        )
        .unwrap();
        let records: Vec<AclRecord> = vec![genesis, offer, add];
        let state = AclState::from_records(&records, &Limits::default()).unwrap();
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Snapshot { covers_seq: 9 },
            space,
            epoch: 0,
            author: sam.device_id(),
            counter: 3,
        };
        let bytes = b"the snapshot envelope".to_vec();
        let by = |keys: &DeviceKeys, covers: u64| {
            let message = countersign_message(&space, covers, &snapshot_hash(&bytes));
            (
                9,
                Countersignature {
                    device: keys.device_id(),
                    signature: keys.sign(&message),
                },
            )
        };
        assert_eq!(
            offered_consent(&state, &header, &bytes, Some(&by(&jordan, 9))),
            Ok(())
        );
        assert_eq!(
            offered_consent(&state, &header, &bytes, None),
            Err(SnapshotFault::NotCountersigned)
        );
        let (_, consent) = by(&jordan, 9);
        assert_eq!(
            offered_consent(&state, &header, &bytes, Some(&(8, consent))),
            Err(SnapshotFault::NotCountersigned),
            "for another cover"
        );
        assert_eq!(
            offered_consent(&state, &header, &bytes, Some(&by(&sam, 9))),
            Err(SnapshotFault::Consent(ConsentFault::SamePerson))
        );
        assert_eq!(
            offered_consent(&state, &header, &bytes, Some(&by(&jordan, 10))),
            Err(SnapshotFault::Consent(ConsentFault::BadSignature))
        );
        assert_eq!(
            whose(&state, &jordan.device_id(), &sam.device_id()),
            Whose::Partners
        );
        assert_eq!(
            whose(&state, &sam.device_id(), &sam.device_id()),
            Whose::Yours
        );
    }

    #[test]
    fn a_refused_snapshot_whose_envelopes_never_came_names_the_history_missing() {
        let refused = RefusedSnapshot {
            covers_seq: 40,
            device: DeviceId::from_bytes([1; 32]),
            person: Whose::Partners,
            fault: SnapshotFault::NotCountersigned,
            unavailable: None,
        };
        let gap = Withheld {
            from_seq: 1,
            to_seq: 45,
            missing: 40,
        };
        let mut report = SyncReport {
            refused_snapshot: Some(Box::new(refused.clone())),
            withheld: Some(gap),
            ..SyncReport::default()
        };
        note_unavailable(&mut report);
        assert_eq!(report.refused_snapshot.unwrap().unavailable, Some(gap));
        // The envelopes came after all; a later gap is not the snapshot's.
        let mut report = SyncReport {
            refused_snapshot: Some(Box::new(refused)),
            withheld: Some(Withheld {
                from_seq: 44,
                to_seq: 45,
                missing: 1,
            }),
            ..SyncReport::default()
        };
        note_unavailable(&mut report);
        assert_eq!(report.refused_snapshot.unwrap().unavailable, None);
    }
}
