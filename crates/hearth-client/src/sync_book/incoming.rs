//! Envelopes coming in: applying what the relay delivered (verified, decrypted, recorded as
//! seen, the cursor advanced, all in one transaction), parking what waits for earlier
//! changes, passing what was refused, and rewinding when the relay went back in time.

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};

use hearth_crypto::{EpochKey, envelope};
use hearth_doc::authorship::{People, PersonKey, Refusal};
use hearth_doc::{ChangeHash, RefusedChange};
use hearth_proto::{DeviceId, EnvelopeHeader, EnvelopeKind, VerifiedEnvelope};

use super::gaps::{self, Take};
use super::{Landmark, SyncBook};
use crate::store::sync_state::{Counter, Mark};
use crate::store::{self, ChunkKind};
use crate::{Error, Profile};

/// Takes `takes` (seqs applied, known, waiting or passed) and moves the cursor as far as
/// the seqs after it are taken one after another (see [`super::gaps`]), naming the envelope
/// it stops on as the cursor's landmark.
pub(super) fn take_seqs(
    tx: &rusqlite::Transaction<'_>,
    takes: impl IntoIterator<Item = Take>,
) -> Result<(), Error> {
    let cursor = store::sync_state::get(tx, Counter::Cursor)?;
    let mut ahead = store::sync_state::ahead(tx)?;
    let before = ahead.clone();
    let moved = gaps::advance(cursor, &mut ahead, takes);
    if ahead != before {
        store::sync_state::set_ahead(tx, &ahead)?;
    }
    let Some(mark) = moved.mark else {
        return Ok(());
    };
    store::sync_state::set(tx, Counter::Cursor, moved.cursor)?;
    match mark {
        Some(m) => store::sync_state::set_landmark(tx, Mark::Cursor, &m)?,
        None => store::sync_state::forget_landmark(tx, Mark::Cursor)?,
    }
    super::known::note_cursor(tx, moved.cursor, &ahead)
}

/// The seq `seq` held `header` (if it decoded): what [`take_seqs`] takes for it, if
/// anything. An opened snapshot covers every seq up to its signed `covers_seq`; one that
/// was refused or did not open takes nothing, not even its own place (the relay hands it
/// under its cover, where an envelope it dropped was), so the seqs it claims to stand for
/// stay missing and are asked for again and reported.
pub(super) fn take_of(seq: u64, header: Option<&EnvelopeHeader>, opened: bool) -> Option<Take> {
    let covers = match header.map(|h| h.kind) {
        Some(EnvelopeKind::Snapshot { covers_seq }) if opened => covers_seq,
        Some(EnvelopeKind::Snapshot { .. }) => return None,
        _ => 0,
    };
    Some(Take {
        seq,
        mark: header.map(|h| Landmark::at(seq, h)),
        covers,
    })
}

/// What happened to an incoming envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Verified, decrypted and applied.
    Applied,
    /// Already applied before (same author and counter): a replay, ignored.
    Replayed,
    /// Verified, but its changes build on changes that have not arrived (the relay
    /// reordered them, or an earlier one was refused). Kept, and applied as soon as what it
    /// needs arrives.
    Waiting,
    /// Verified and taken, but it brought nothing new (this device's own envelope coming
    /// back, or changes that arrived another way).
    Known,
    /// Refused: it failed to verify, decrypt or apply. Nothing from it was applied.
    Rejected {
        /// Why, for the warning shown to the user.
        reason: String,
    },
}

/// Whose device brought a refused change, as this device's ACL says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// A device of this device's own person (possibly this one).
    Yours,
    /// A device of the partner.
    Partners,
    /// A device the ACL does not know.
    Unknown,
}

/// One change the authorship rule refused (`hearth_doc::authorship`): nothing from it was
/// applied. Reported once, when it is first refused, not again when it arrives again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedChangeReport {
    /// The relay seq of the envelope that brought it.
    pub seq: u64,
    /// The device that brought it: the envelope's signed author (or, for a change of an
    /// envelope that had waited for earlier ones, the device it was written under).
    pub device: DeviceId,
    /// Whose device that is.
    pub person: Whose,
    /// Why, in words (the rule it breaks).
    pub reason: String,
    /// Whether it is refused for good, whoever brings it (else only for who brought it: it
    /// is accepted from its own device).
    pub lasting: bool,
}

/// What one batch of incoming envelopes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// One outcome per envelope, in order.
    pub(crate) outcomes: Vec<Incoming>,
    /// The changes refused for the first time, in the order they were screened.
    pub(crate) refused: Vec<RefusedChangeReport>,
}

impl<P: Deref<Target = Profile>> SyncBook<P> {
    /// How many envelopes wait for earlier changes that have not arrived.
    ///
    /// # Errors
    /// A database error.
    pub fn waiting(&self) -> Result<usize, Error> {
        store::envelopes::parked_count(&self.profile.conn)
    }

    fn parked_domain(&self) -> Vec<u8> {
        format!("parked/{}", self.profile.space_id()).into_bytes()
    }

    /// Applies a verified envelope's plaintext to `doc`, together with every parked one,
    /// and records it as seen (or parked) in `tx`. Saving `doc` is the caller's.
    ///
    /// Every change is screened by the authorship rule first (`SpaceDoc::apply_screened`,
    /// vouched for by `author`, the envelope's verified signer): a refused one applies
    /// nothing, is recorded in `refusals`, and the envelope still counts as applied for
    /// its other changes, so one refused change neither parks its envelope nor holds back
    /// anything that does not build on it.
    #[allow(clippy::too_many_arguments)]
    fn apply_verified(
        &self,
        tx: &rusqlite::Transaction<'_>,
        doc: &mut hearth_doc::SpaceDoc,
        refusals: &mut Refusals,
        seq: u64,
        author: &[u8; 32],
        counter: i64,
        plaintext: &[u8],
    ) -> Result<Incoming, Error> {
        let before = doc.heads();
        let screened = match doc.apply_screened([(author, plaintext)], &refusals.lasting) {
            Ok(screened) => screened,
            Err(e) => {
                return Ok(Incoming::Rejected {
                    reason: e.to_string(),
                });
            }
        };
        refusals.note(tx, seq, Some(author), screened.refused)?;
        // Earlier arrivals that waited for changes this one may bring. Automerge holds
        // back what it cannot apply yet, in memory only, so they are applied again from
        // their sealed copies; after that the document waits exactly for what is missing.
        // Each is screened again under its own author: a change refused before stays
        // refused (and is not reported again), one depending on it is refused now.
        let parked = store::envelopes::parked(tx)?;
        if !parked.is_empty() {
            let domain = self.parked_domain();
            let opened = parked
                .iter()
                .map(|(device, sealed)| {
                    let device = <[u8; 32]>::try_from(device.as_slice()).map_err(|_| {
                        self.profile
                            .corrupt("a waiting envelope names no device".into())
                    })?;
                    let plain =
                        self.profile
                            .secrets
                            .storage
                            .open(&domain, sealed)
                            .map_err(|e| {
                                self.profile
                                    .corrupt(format!("a waiting envelope is unreadable: {e}"))
                            })?;
                    Ok((device, plain))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let screened = doc.apply_screened(
                opened.iter().map(|(d, p)| (d, p.as_slice())),
                &refusals.lasting,
            )?;
            // Which parked envelope brought a change is not known in a batch: name the
            // change's own device, the one it was written under.
            refusals.note(tx, seq, None, screened.refused)?;
        }
        // A change refused for good keeps nothing waiting: its dependents are refused with
        // it. One refused only for who brought it is waited for like any missing change.
        if doc.waiting() {
            let sealed = self
                .profile
                .secrets
                .storage
                .seal(&self.parked_domain(), plaintext)?;
            store::envelopes::park(tx, author, counter, &sealed)?;
            return Ok(Incoming::Waiting);
        }
        // Everything is complete now: the parked envelopes count as applied too.
        if !parked.is_empty() {
            store::envelopes::unpark_all_as_seen(tx)?;
        }
        store::envelopes::mark_seen(tx, author, counter)?;
        Ok(if doc.heads() == before {
            Incoming::Known
        } else {
            Incoming::Applied
        })
    }
}

/// The refused changes of one transaction: the hashes refused for good so far (what every
/// screen in it takes as `refused`), and the reports of those refused for the first time.
struct Refusals {
    lasting: HashSet<ChangeHash>,
    people: People,
    me: Option<PersonKey>,
    now_ms: u64,
    reports: Vec<RefusedChangeReport>,
}

impl Refusals {
    fn load(tx: &rusqlite::Transaction<'_>, people: People, me: &[u8; 32]) -> Result<Self, Error> {
        Ok(Refusals {
            lasting: store::refused::lasting(tx)?,
            me: people.person(me),
            people,
            now_ms: crate::sync::now_ms(),
            reports: Vec::new(),
        })
    }

    /// Records `refused` (brought in the envelope at `seq` by `sender`, if known), and
    /// reports each one this device had not refused before.
    fn note(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        seq: u64,
        sender: Option<&[u8; 32]>,
        refused: Vec<RefusedChange>,
    ) -> Result<(), Error> {
        for change in refused {
            let lasting = change.reason.lasting();
            if lasting {
                self.lasting.insert(change.hash);
            }
            let device = sender
                .copied()
                .or_else(|| <[u8; 32]>::try_from(change.actor.as_slice()).ok())
                .unwrap_or([0; 32]);
            let news = store::refused::record(
                tx,
                &change.hash,
                &device,
                lasting,
                rule_name(&change.reason),
                self.now_ms,
            )?;
            tracing::warn!(
                seq,
                device = %hex::encode(&device[..4]),
                reason = %change.reason,
                news,
                "change refused by the authorship rule"
            );
            if news {
                let person = match self.people.person(&device) {
                    None => Whose::Unknown,
                    Some(p) if Some(p) == self.me => Whose::Yours,
                    Some(_) => Whose::Partners,
                };
                self.reports.push(RefusedChangeReport {
                    seq,
                    device: DeviceId::from_bytes(device),
                    person,
                    reason: change.reason.to_string(),
                    lasting,
                });
            }
        }
        Ok(())
    }
}

/// The rule a refusal names, as stored: a name, never content (a refused root key is the
/// sender's text).
fn rule_name(reason: &Refusal) -> &'static str {
    match reason {
        Refusal::ActorIsNotAuthor { .. } => "actor-is-not-author",
        Refusal::UnknownDevice => "unknown-device",
        Refusal::OutsideOwnContainer { .. } => "outside-own-container",
        Refusal::RootWrite { .. } => "root-write",
        Refusal::OverwritesOther { .. } => "overwrites-other",
        Refusal::ForeignElement { .. } => "foreign-element",
        Refusal::DependsOnRefused { .. } => "depends-on-refused",
        Refusal::Undecodable => "undecodable",
        Refusal::Malformed { .. } => "malformed",
    }
}

impl<P: DerefMut<Target = Profile>> SyncBook<P> {
    /// The relay no longer holds the history this device received: its head is below this
    /// device's [`landmarks`](Self::landmarks), or another envelope sits where one of them
    /// was. It was restored from an older backup (or a copy of its files) or lost its
    /// database, and may have taken new writes since. Rewinds the cursor to the start, so
    /// the next sync reads the relay's whole history again (what this device already has is
    /// recognised and skipped), and marks everything as not yet pushed, so it seals the
    /// whole document this device holds (its own changes and everyone else's) and pushes
    /// it again, and, once it has read the history again, as one snapshot too: the relay
    /// gets back what it lost, and every device converges. Envelopes still in the outbox
    /// go out as well.
    ///
    /// The snapshot, because receivers take from a change envelope only changes of the
    /// signer's own person (`hearth_doc::authorship`), whereas in a whole document they
    /// judge each change by the device it was written under: a device that has only this
    /// one's copy of the partner's changes (the partner's device lost meanwhile) gets them
    /// from the snapshot.
    ///
    /// From then on, the relay delivering again an envelope this device had already applied
    /// is expected, not reported as a replay: reading the history again brings them all, and
    /// a device whose `Committed` the restore lost pushes them once more.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub(crate) fn relay_rewound(&mut self) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        rewind(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The relay removed this space because no second device joined it, and this device,
    /// its only member, puts it back: the chain goes back to its Genesis (the invites after
    /// it went with the space, and their key boxes), and the device rewinds as after a
    /// restore ([`relay_rewound`](Self::relay_rewound)), so the next exchange sends the
    /// relay everything. One transaction: a crash leaves either state, both of which the
    /// next sync handles.
    ///
    /// # Errors
    /// [`Error::NotPaired`] without a chain; a database error; nothing changed then.
    pub(crate) fn space_expired(&mut self) -> Result<(), Error> {
        let genesis = self
            .acl_records()?
            .into_iter()
            .next()
            .ok_or(Error::NotPaired)?;
        let tx = self.profile.begin_write()?;
        store::acl::replace_records(&tx, &[genesis])?;
        rewind(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Takes the places of `passed`, envelopes refused before they were opened (each seq
    /// with its header, if it decoded), so they are not read and reported again.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn pass(&mut self, passed: &[(u64, Option<EnvelopeHeader>)]) -> Result<(), Error> {
        let tx = self.profile.begin_write()?;
        take_seqs(
            &tx,
            passed
                .iter()
                .filter_map(|(seq, header)| take_of(*seq, header.as_ref(), false)),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Applies the envelope the relay delivered as `seq`, sealed under `key` (its epoch's),
    /// atomically with recording it as seen and advancing the cursor. The caller has
    /// checked the author against the ACL. An envelope that fails is recorded as passed
    /// (so syncing goes on) and nothing from it is applied. One whose changes build on
    /// changes not here yet is kept, sealed, and applied with the envelope that completes
    /// it.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    #[cfg(test)]
    pub(crate) fn apply_incoming(
        &mut self,
        seq: u64,
        envelope: &hearth_proto::Envelope,
        key: &EpochKey,
    ) -> Result<Incoming, Error> {
        let Ok(verified) = envelope.clone().into_verified() else {
            return Ok(Incoming::Rejected {
                reason: envelope::EnvelopeError::BadSignature.to_string(),
            });
        };
        let mut taken = self.apply_incoming_all(&[(seq, verified, key.clone())])?;
        Ok(taken.outcomes.pop().unwrap_or(Incoming::Known))
    }

    /// [`apply_incoming`](Self::apply_incoming) for several envelopes (`(seq, envelope,
    /// key)`, in the relay's order, each signature already checked by the screen) in one
    /// transaction over one load of the document: a batch from the relay costs one load
    /// and one write, not one per envelope.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub(crate) fn apply_incoming_all(
        &mut self,
        items: &[(u64, VerifiedEnvelope, EpochKey)],
    ) -> Result<Taken, Error> {
        let space = self.profile.space()?;
        let tx = self.profile.begin_write()?;
        let (mut doc, _) = self.profile.load_from(&tx)?;
        let mut refusals = Refusals::load(
            &tx,
            self.profile.people(&tx)?,
            self.profile.device_id().as_bytes(),
        )?;
        let before = doc.heads();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut takes = Vec::with_capacity(items.len());
        for (seq, envelope, key) in items {
            let header = *envelope.header();
            let signer = header.author.as_bytes();
            let author = &signer[..];
            let counter = header.counter as i64;
            // Its signature was checked by the screen, so a damaged copy of an envelope
            // applied before was refused as damaged there, not taken for a replay here.
            let outcome = match envelope::open_verified(envelope, &space, header.epoch, key) {
                Err(e) => Incoming::Rejected {
                    reason: e.to_string(),
                },
                Ok(plaintext) => {
                    let seen = store::envelopes::is_seen(&tx, author, counter)?;
                    if seen && store::sync_state::applied_before_rewind(&tx, author, counter)? {
                        // Read or pushed again after the relay was found restored: expected.
                        Incoming::Known
                    } else if seen {
                        Incoming::Replayed
                    } else {
                        self.apply_verified(
                            &tx,
                            &mut doc,
                            &mut refusals,
                            *seq,
                            signer,
                            counter,
                            &plaintext,
                        )?
                    }
                }
            };
            let opened = !matches!(outcome, Incoming::Rejected { .. });
            if opened {
                store::envelopes::heard(&tx, author, refusals.now_ms)?;
            }
            takes.extend(take_of(*seq, Some(&header), opened));
            outcomes.push(outcome);
        }
        // The relay has what it delivered: count those changes as pushed, so the next push
        // carries only this device's own.
        let after = doc.heads();
        let changed = after != before;
        if changed {
            let mut pushed = store::sync_state::pushed_heads(&tx)?;
            pushed.extend(after.iter().filter(|h| !before.contains(h)).copied());
            if doc.changes_since(&pushed).is_empty() {
                pushed = after;
            }
            store::sync_state::set_pushed_heads(&tx, &pushed)?;
        }
        // The partner's sealed answers may be here now: release this person's keys for those
        // weeks. That change is this device's own, so it is left out of `pushed_heads`.
        if changed {
            self.profile.settle_keys(&tx, &mut doc)?;
        }
        if let Some(bytes) = doc.take_unsaved() {
            let sealed = self
                .profile
                .secrets
                .storage
                .seal(&ChunkKind::Changes.domain(self.profile.space_id()), &bytes)?;
            store::chunks::append(&tx, ChunkKind::Changes, &sealed)?;
        }
        take_seqs(&tx, takes)?;
        tx.commit()?;
        Ok(Taken {
            outcomes,
            refused: refusals.reports,
        })
    }
}

/// Forgets where this device was on the relay and owes it the whole document (see
/// `SyncBook::relay_rewound`), inside the caller's transaction.
fn rewind(tx: &rusqlite::Connection) -> Result<(), Error> {
    store::sync_state::set(tx, Counter::Cursor, 0)?;
    store::sync_state::set_ahead(tx, &gaps::Ahead::new())?;
    store::sync_state::set_pushed_heads(tx, &[])?;
    store::sync_state::set(tx, Counter::Resend, 1)?;
    store::sync_state::remember_applied_before_rewind(tx)?;
    store::sync_state::forget_landmark(tx, Mark::Cursor)?;
    store::sync_state::forget_landmark(tx, Mark::Own)?;
    store::known_heads::forget_all(tx)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_crypto::Protection;
    use hearth_doc::Millis;
    use hearth_proto::Envelope;

    fn profile(dir: &std::path::Path, name: &str) -> Profile {
        Profile::create(&dir.join(name), name, Protection::None, Millis(1)).unwrap()
    }

    fn appreciate(p: &mut Profile, text: &str) {
        let me = p.person_id().clone();
        p.write(|doc| doc.add_appreciation(&me, text, Millis::now()))
            .unwrap();
    }

    /// A copy of a profile's directory: the same space and document, as a second device
    /// would hold after pairing (pairing itself is the sync engine's job).
    fn copy_profile(from: &std::path::Path, to: &std::path::Path) -> Profile {
        std::fs::create_dir_all(to).unwrap();
        for f in ["device.key", "profile.db"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
        Profile::open(to, None).unwrap()
    }

    #[test]
    fn an_opened_snapshot_covers_its_seqs_and_a_refused_one_covers_nothing() {
        let header = |kind| EnvelopeHeader {
            kind,
            space: hearth_proto::SpaceId::from_bytes([1; 16]),
            epoch: 0,
            author: DeviceId::from_bytes([2; 32]),
            counter: 4,
        };
        let snapshot = header(EnvelopeKind::Snapshot { covers_seq: 20 });
        let taken = take_of(20, Some(&snapshot), true).unwrap();
        assert_eq!((taken.seq, taken.covers), (20, 20));
        assert_eq!(
            take_of(20, Some(&snapshot), false),
            None,
            "not even its place"
        );
        let changes = header(EnvelopeKind::Changes);
        for opened in [true, false] {
            let taken = take_of(7, Some(&changes), opened).unwrap();
            assert_eq!(
                (taken.seq, taken.covers),
                (7, 0),
                "refused, its place is passed"
            );
        }
        let unreadable = take_of(8, None, false).unwrap();
        assert_eq!((unreadable.seq, unreadable.mark), (8, None));
    }

    #[test]
    fn staged_changes_open_on_another_device_and_replays_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.sync_book_mut().put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));

        appreciate(&mut a, "thank you for the walk");
        let counter = a.sync_book_mut().stage_outgoing(0).unwrap().unwrap();
        assert_eq!(counter, 1);
        assert_eq!(
            a.sync_book_mut().stage_outgoing(0).unwrap(),
            None,
            "nothing new to push"
        );
        let outbox = a.sync_book().outbox().unwrap();
        assert_eq!(outbox.len(), 1);
        assert!(
            !outbox[0].1.windows(10).any(|w| w == b"thank you "),
            "ciphertext only"
        );

        let env = Envelope::decode(&outbox[0].1).unwrap();
        assert_eq!(
            b.sync_book_mut().apply_incoming(1, &env, &key).unwrap(),
            Incoming::Applied
        );
        let texts: Vec<String> = b
            .load()
            .unwrap()
            .appreciations()
            .into_iter()
            .map(|x| x.text)
            .collect();
        assert_eq!(texts, vec!["thank you for the walk"]);
        assert_eq!(b.sync_book().cursor().unwrap(), 1);
        // The same envelope again, even under a new seq: a replay, applied once.
        assert_eq!(
            b.sync_book_mut().apply_incoming(2, &env, &key).unwrap(),
            Incoming::Replayed
        );
        assert_eq!(b.sync_book().cursor().unwrap(), 2);
        assert_eq!(b.load().unwrap().appreciations().len(), 1);

        a.sync_book_mut().acknowledge(counter, 1).unwrap();
        assert!(a.sync_book().outbox().unwrap().is_empty());
        appreciate(&mut a, "and for dinner");
        assert_eq!(
            a.sync_book_mut().stage_outgoing(0).unwrap(),
            Some(2),
            "counters keep rising"
        );
        let env = Envelope::decode(&a.sync_book().outbox().unwrap()[0].1).unwrap();
        assert_eq!(
            b.sync_book_mut().apply_incoming(3, &env, &key).unwrap(),
            Incoming::Applied
        );
        assert_eq!(
            b.load().unwrap().appreciations().len(),
            2,
            "only the new change was sent"
        );
    }

    #[test]
    fn after_a_rewind_what_was_applied_before_may_come_again_but_later_replays_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.sync_book_mut().put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));
        let mut sealed = |text: &str| {
            appreciate(&mut a, text);
            a.sync_book_mut().stage_outgoing(0).unwrap();
            let (counter, bytes) = a.sync_book().outbox().unwrap().pop().unwrap();
            a.sync_book_mut().acknowledge(counter, counter).unwrap();
            Envelope::decode(&bytes).unwrap()
        };
        let first = sealed("before the restore");
        assert_eq!(
            b.sync_book_mut().apply_incoming(1, &first, &key).unwrap(),
            Incoming::Applied
        );

        // The relay was found restored: B reads everything again, and A pushes again what
        // the restore lost. Neither is a replay worth a warning.
        b.sync_book_mut().relay_rewound().unwrap();
        assert_eq!(b.sync_book().cursor().unwrap(), 0);
        assert_eq!(
            b.sync_book_mut().apply_incoming(1, &first, &key).unwrap(),
            Incoming::Known
        );
        assert_eq!(
            b.sync_book_mut().apply_incoming(7, &first, &key).unwrap(),
            Incoming::Known
        );

        // What arrives after the rewind is judged as ever.
        let second = sealed("after the restore");
        assert_eq!(
            b.sync_book_mut().apply_incoming(8, &second, &key).unwrap(),
            Incoming::Applied
        );
        assert_eq!(
            b.sync_book_mut().apply_incoming(9, &second, &key).unwrap(),
            Incoming::Replayed
        );
        assert_eq!(b.load().unwrap().appreciations().len(), 2);
    }

    #[test]
    fn a_tampered_or_foreign_envelope_applies_nothing_and_syncing_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.sync_book_mut().put_epoch_key(0, &key).unwrap();
        appreciate(&mut a, "hello");
        a.sync_book_mut().stage_outgoing(0).unwrap();
        let mut bytes = a.sync_book().outbox().unwrap()[0].1.clone();
        let before = a.chunk_count().unwrap();
        // Another space's profile refuses it.
        let mut c = profile(dir.path(), "c");
        let env = Envelope::decode(&bytes).unwrap();
        assert!(matches!(
            c.sync_book_mut().apply_incoming(1, &env, &key).unwrap(),
            Incoming::Rejected { .. }
        ));
        assert_eq!(c.sync_book().cursor().unwrap(), 1, "the cursor passes it");
        // A flipped ciphertext byte fails the signature.
        let mid = bytes.len() - 80;
        bytes[mid] ^= 1;
        if let Ok(bad) = Envelope::decode(&bytes) {
            assert!(matches!(
                a.sync_book_mut().apply_incoming(6, &bad, &key).unwrap(),
                Incoming::Rejected { .. }
            ));
        }
        assert_eq!(a.chunk_count().unwrap(), before);
    }

    #[test]
    fn an_envelope_that_arrives_before_what_it_builds_on_waits_and_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.sync_book_mut().put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));
        appreciate(&mut a, "first");
        a.sync_book_mut().stage_outgoing(0).unwrap();
        appreciate(&mut a, "second, which builds on the first");
        a.sync_book_mut().stage_outgoing(0).unwrap();
        let outbox = a.sync_book().outbox().unwrap();
        let first = Envelope::decode(&outbox[0].1).unwrap();
        let second = Envelope::decode(&outbox[1].1).unwrap();

        // The relay hands them over the wrong way round.
        assert_eq!(
            b.sync_book_mut().apply_incoming(1, &second, &key).unwrap(),
            Incoming::Waiting
        );
        assert_eq!(b.sync_book().waiting().unwrap(), 1);
        assert!(b.load().unwrap().appreciations().is_empty());
        drop(b);
        // Kept across a restart, sealed.
        let mut b = Profile::open(&dir.path().join("b"), None).unwrap();
        assert_eq!(
            b.sync_book_mut().apply_incoming(2, &first, &key).unwrap(),
            Incoming::Applied
        );
        assert_eq!(b.sync_book().waiting().unwrap(), 0);
        assert_eq!(b.load().unwrap().appreciations().len(), 2);
        // Both count as seen now.
        assert_eq!(
            b.sync_book_mut().apply_incoming(3, &second, &key).unwrap(),
            Incoming::Replayed
        );
        drop(b);
        for file in std::fs::read_dir(dir.path().join("b")).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(6).any(|w| w == b"second"),
                "parked plaintext is sealed"
            );
        }
    }

    #[test]
    fn sync_state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        a.sync_book_mut()
            .start_space("ws://127.0.0.1:7878/v1/sync")
            .unwrap();
        let limits = hearth_proto::Limits {
            max_devices_per_space: 3,
            ..hearth_proto::Limits::default()
        };
        a.sync_book_mut().set_relay_limits(&limits).unwrap();
        let key = EpochKey::generate().unwrap();
        a.sync_book_mut().put_epoch_key(3, &key).unwrap();
        drop(a);
        let a = Profile::open(&dir.path().join("a"), None).unwrap();
        assert_eq!(
            a.sync_book().relay().unwrap().as_deref(),
            Some("ws://127.0.0.1:7878/v1/sync")
        );
        assert_eq!(a.sync_book().acl_records().unwrap().len(), 1);
        assert_eq!(a.sync_book().relay_limits().unwrap(), limits);
        assert!(a.sync_book().epoch_key(0).unwrap().is_some());
        assert!(a.sync_book().epoch_key(3).unwrap().is_some());
        assert!(a.sync_book().epoch_key(4).unwrap().is_none());
    }
}
