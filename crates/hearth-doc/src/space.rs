//! The couple's shared document: creating, loading, syncing and writing it.
//!
//! `SpaceDoc` is the only way other crates touch Automerge. It keeps two promises the rest
//! of hearth relies on: every user action is exactly one Automerge change (so the outbox,
//! the relay and the tests can count them), and the bytes handed out for storage are
//! exactly what the local store does not have yet, whether it was written here or arrived
//! from another device. Reads live in `queries.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue};
use serde::Serialize;

use crate::authorship::{self, Legacy, People, PersonKey, Refusal};
use crate::checkins::{self, Choice};
use crate::chunks;
use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout;
use crate::model::{Answers, CommitmentStatus, FeedbackDraft, JournalDraft, ReplyKind};
use crate::queries;
use crate::records::{
    self, AppreciationRecord, CheckinRecord, FeedbackRecord, JournalRecord, ReplyRecord,
    RevealRecord, SealedSubmission,
};
use crate::week::Week;
use hearth_crypto::answers::{self, Commitment, SealKey};

/// One couple space, as an Automerge document with a typed API.
///
/// Each device uses its own actor id (any stable bytes unique to the device) and keeps one
/// `SpaceDoc` per space. Two `SpaceDoc`s must never write under the same actor id at the
/// same time: Automerge would see two different changes with the same sequence number.
#[derive(Debug)]
pub struct SpaceDoc {
    pub(crate) doc: AutoCommit,
    /// The heads the local store is known to hold (last load, `take_unsaved` or
    /// `save_snapshot`).
    saved: Vec<ChangeHash>,
    /// Keys of this device's own sealed answers, by commitment: they open its own answers
    /// before the keys are released.
    pub(crate) own_keys: HashMap<Commitment, OwnKey>,
    /// Keys made by sealing since the last [`SpaceDoc::take_new_keys`].
    new_keys: Vec<OwnKey>,
    /// Who is whom, from the space's signed ACL ([`SpaceDoc::set_people`]).
    pub(crate) people: People,
    /// Changes from other devices that wait for changes not here yet, with who vouched for
    /// each; judged once they can be ([`SpaceDoc::apply_screened`]).
    held: Vec<([u8; 32], automerge::Change)>,
    /// Changes under this device's own person's actors that came only inside the partner's
    /// snapshot: not taken on the partner's word, but held until one of this person's own
    /// devices vouches for them by building on them.
    unvouched: Vec<automerge::Change>,
}

/// What [`SpaceDoc::apply_screened`] did with bytes from another device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screened {
    /// Whether anything new arrived.
    pub changed: bool,
    /// The changes that were not applied, with why. Those refused for good
    /// ([`Refusal::lasting`]) belong in the caller's `refused` set from now on.
    pub refused: Vec<RefusedChange>,
}

/// One change [`SpaceDoc::apply_screened`] did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedChange {
    /// The change's hash.
    pub hash: ChangeHash,
    /// The device it was written under (its Automerge actor).
    pub actor: Vec<u8>,
    /// Why.
    pub reason: Refusal,
}

/// The key to one of this device's sealed check-ins, which the device must keep until it
/// is released (see [`hearth_crypto::answers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnKey {
    /// The check-in's week.
    pub week: Week,
    /// The commitment the key opens.
    pub commitment: Commitment,
    /// The key.
    pub key: SealKey,
}

impl SpaceDoc {
    /// A new space document: `creator`'s container (`by/<person key>`, see `layout.rs`)
    /// with their name, as its first person. Written as one change.
    ///
    /// # Errors
    ///
    /// [`DocError::EmptyActor`] or [`DocError::Empty`] for a blank name.
    pub fn create(
        actor: &[u8],
        creator: &PersonId,
        name: &str,
        now: Millis,
    ) -> Result<SpaceDoc, DocError> {
        let name = non_empty(name, "name")?;
        let mut space = SpaceDoc {
            doc: AutoCommit::new().with_actor(actor_id(actor)?),
            saved: Vec::new(),
            own_keys: HashMap::new(),
            new_keys: Vec::new(),
            people: People::default(),
            held: Vec::new(),
            unvouched: Vec::new(),
        };
        let me = space.writer();
        space.change(|doc| {
            let mine = layout::own_container(doc, &me, creator)?;
            doc.put(&mine, layout::NAME, name)?;
            doc.put(&mine, layout::JOINED_AT, layout::timestamp(now))?;
            Ok(())
        })?;
        Ok(space)
    }

    /// An empty document for a device that joins an existing space: it has no root
    /// collections of its own (those would compete with the creator's), and fills from the
    /// space's history through [`apply`](Self::apply).
    ///
    /// # Errors
    /// [`DocError::EmptyActor`].
    pub fn replica(actor: &[u8]) -> Result<SpaceDoc, DocError> {
        Ok(SpaceDoc {
            doc: AutoCommit::new().with_actor(actor_id(actor)?),
            saved: Vec::new(),
            own_keys: HashMap::new(),
            new_keys: Vec::new(),
            people: People::default(),
            held: Vec::new(),
            unvouched: Vec::new(),
        })
    }

    /// Loads a space from a full snapshot followed by incremental chunks (each the output
    /// of [`take_unsaved`](Self::take_unsaved) or [`save_snapshot`](Self::save_snapshot)),
    /// as this device stored them. The snapshot's head hashes are not re-verified: use it
    /// for bytes whose integrity is already authenticated (the profile's sealed chunks),
    /// and [`apply`](Self::apply) for anything from elsewhere.
    /// The loaded state counts as saved.
    ///
    /// The snapshot may be empty if the chunks hold the whole history.
    ///
    /// # Errors
    ///
    /// [`DocError::Load`] if any of the bytes are damaged, [`DocError::NoData`] if there was
    /// nothing to load, [`DocError::EmptyActor`].
    pub fn load<'a>(
        actor: &[u8],
        snapshot: &[u8],
        incrementals: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<SpaceDoc, DocError> {
        let actor = actor_id(actor)?;
        let doc = if snapshot.is_empty() {
            AutoCommit::new()
        } else {
            // The snapshot comes from this device's own store, where it was sealed with an
            // AEAD: any change to it fails to open long before it gets here. Recomputing
            // and checking every head hash again costs ~10% of a ten-year load for nothing.
            // Bytes from other devices go through `apply`, which checks everything.
            AutoCommit::load_unverified_heads(snapshot).map_err(DocError::load)?
        };
        let mut space = SpaceDoc {
            doc: doc.with_actor(actor),
            saved: Vec::new(),
            own_keys: HashMap::new(),
            new_keys: Vec::new(),
            people: People::default(),
            held: Vec::new(),
            unvouched: Vec::new(),
        };
        // One batch for all chunks: Automerge's cost per apply call grows with the
        // document, so 64 chunks applied one by one took longer than the snapshot itself.
        space.apply_all(incrementals).map_err(|e| match e {
            DocError::Apply { source } => DocError::Load { source },
            other => other,
        })?;
        space.saved = space.doc.get_heads();
        if space.saved.is_empty() {
            return Err(DocError::NoData);
        }
        Ok(space)
    }

    /// Applies bytes from another device: changes (as `take_unsaved` makes them) or a
    /// snapshot. Returns whether anything new arrived.
    ///
    /// New changes are new to the local store as well, so the next
    /// [`take_unsaved`](Self::take_unsaved) includes them. Changes whose dependencies have
    /// not arrived yet wait inside Automerge (see [`missing_deps`](Self::missing_deps)) and
    /// count once they can be applied.
    ///
    /// # Errors
    ///
    /// [`DocError::Apply`] if the bytes are not valid document data. Nothing is applied
    /// then, not even the valid part.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<bool, DocError> {
        self.apply_all([bytes])
    }

    /// Applies several messages from other devices at once, all or nothing. Returns
    /// whether anything new arrived.
    ///
    /// Prefer this to calling [`apply`](Self::apply) in a loop: Automerge's cost per call
    /// grows with the document (on a ten-year history, ~1 ms a call in a release build).
    ///
    /// # Errors
    ///
    /// [`DocError::Apply`] if any of the messages is not valid document data; nothing is
    /// applied then.
    pub fn apply_all<'a>(
        &mut self,
        messages: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<bool, DocError> {
        let before = self.doc.get_heads();
        let mut all = chunks::Incoming::default();
        for bytes in messages {
            let incoming = chunks::parse(bytes).map_err(DocError::apply)?;
            all.changes.extend(incoming.changes);
            all.documents.extend(incoming.documents);
        }
        self.apply_incoming(all).map_err(DocError::apply)?;
        Ok(self.doc.get_heads() != before)
    }

    /// Tells the document who is whom: each device's person, from the space's signed ACL
    /// (never from what a profile says about itself). Writes go into this device's
    /// person's container; reads of the first layout attribute entries by it; and
    /// [`apply_screened`](Self::apply_screened) judges changes by it.
    pub fn set_people(&mut self, people: People) {
        self.people = people;
    }

    /// The person this device writes as: its person in the ACL, or, before this device
    /// knows the ACL (a space that never met a relay), the person it founds itself.
    pub fn writer(&self) -> PersonKey {
        let actor = self.doc.get_actor().to_bytes();
        self.people
            .person(actor)
            .unwrap_or_else(|| PersonKey::for_actor(actor))
    }

    /// Applies bytes from other devices, each message `(sender, bytes)` judged by the
    /// authorship rule ([`authorship`]) before anything is applied. Only the changes that
    /// pass are applied; the others are returned with why. Changes that depend on a hash in
    /// `refused` (those refused for good before) are refused too.
    ///
    /// Who vouches for a change: in an envelope, the device that signed it (the change must
    /// be under a device of the sender's person). Inside a whole document (a snapshot),
    /// each change is judged as its own actor's when this device joins from it (it holds
    /// nothing yet), or when it is the sender's person's, or the snapshot is this device's
    /// own person's; a change under one of *this device's person's* actors in the
    /// partner's snapshot is judged as the sender's, so a partner cannot extend your
    /// history through a snapshot.
    ///
    /// A change is judged only once everything it depends on is here (until then it is
    /// held, and [`waiting`](Self::waiting) says so), so the verdict never depends on the
    /// order of arrival. Each accepted change is also checked to be well-formed (its ops
    /// target objects that exist, with keys of the right kind, and its counters run
    /// forward), so that a crafted change cannot break the document.
    ///
    /// # Errors
    ///
    /// [`DocError::Apply`] if any message is not valid document data; nothing is applied
    /// then.
    pub fn apply_screened<'a>(
        &mut self,
        messages: impl IntoIterator<Item = (&'a [u8; 32], &'a [u8])>,
        refused: &HashSet<ChangeHash>,
    ) -> Result<Screened, DocError> {
        let before = self.doc.get_heads();
        let me = self.writer();
        let mut offered: Vec<([u8; 32], automerge::Change)> = std::mem::take(&mut self.held);
        let mut unvouched: Vec<automerge::Change> = std::mem::take(&mut self.unvouched);
        let mut whole: Vec<AutoCommit> = Vec::new();
        let mut loose = 0;
        for (sender, bytes) in messages {
            let incoming = chunks::parse(bytes).map_err(DocError::apply)?;
            loose += incoming.changes.len();
            offered.extend(incoming.changes.into_iter().map(|c| (*sender, c)));
            let sender_person = self.people.person(sender);
            for mut doc in incoming.documents {
                for change in doc.get_changes(&[]) {
                    let actor = change.actor_id().to_bytes();
                    let own_actor = self.people.person(actor) == Some(me);
                    let vouched_by_actor =
                        before.is_empty() || !own_actor || sender_person == Some(me);
                    if vouched_by_actor {
                        let signer = <[u8; 32]>::try_from(actor).unwrap_or([0; 32]);
                        offered.push((signer, change));
                    } else {
                        unvouched.push(change);
                    }
                }
                whole.push(doc);
            }
        }
        let mut out = Screened::default();
        // A whole document arriving at an empty one, whose every change passes, is taken
        // as it is (Automerge built it, so it is well-formed): applying it change by change
        // is many times slower than the load that parsing already did.
        if loose == 0 && whole.len() == 1 && before.is_empty() {
            let verdicts = authorship::screen_in(
                &self.people,
                &Legacy::default(),
                offered.iter().map(|(s, c)| (s, c)),
                refused,
            );
            if verdicts.iter().all(|v| v.outcome.is_ok()) {
                let actor = self.doc.get_actor().clone();
                let doc = whole.pop().expect("one document");
                self.doc = doc.with_actor(actor);
                out.changed = !self.doc.get_heads().is_empty();
                return Ok(out);
            }
        }
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        offered.retain(|(_, c)| {
            seen.insert(c.hash()) && self.doc.get_change_meta_by_hash(&c.hash()).is_none()
        });
        // An own change that came only in the partner's snapshot is taken once one of this
        // person's devices vouches for it: a change it signed builds on it.
        let mut unvouched: HashMap<ChangeHash, automerge::Change> = unvouched
            .into_iter()
            .filter(|c| {
                !seen.contains(&c.hash()) && self.doc.get_change_meta_by_hash(&c.hash()).is_none()
            })
            .map(|c| (c.hash(), c))
            .collect();
        if !unvouched.is_empty() {
            let mut vouching: Vec<ChangeHash> = offered
                .iter()
                .filter(|(signer, c)| {
                    self.people.person(signer) == Some(me)
                        && self.people.person(c.actor_id().to_bytes()) == Some(me)
                })
                .flat_map(|(_, c)| c.deps().to_vec())
                .collect();
            while let Some(hash) = vouching.pop() {
                if let Some(change) = unvouched.remove(&hash) {
                    vouching.extend(change.deps().iter().copied());
                    let signer =
                        <[u8; 32]>::try_from(change.actor_id().to_bytes()).unwrap_or([0; 32]);
                    offered.push((signer, change));
                }
            }
        }
        self.unvouched = unvouched.into_values().collect();
        let mut refused_now: HashSet<ChangeHash> = refused.clone();
        let mut pending = offered;
        loop {
            // The changes whose dependencies are all here, or ready before them in this
            // round (batches come in causal order, so one round takes nearly everything),
            // or refused (those are judged now, and fall with what they depend on).
            let mut available: HashSet<ChangeHash> = HashSet::new();
            let mut ready = Vec::new();
            let mut rest = Vec::new();
            for (signer, change) in pending {
                let is_ready = change.deps().iter().all(|d| {
                    available.contains(d)
                        || refused_now.contains(d)
                        || self.doc.get_change_meta_by_hash(d).is_some()
                });
                if is_ready {
                    available.insert(change.hash());
                    ready.push((signer, change));
                } else {
                    rest.push((signer, change));
                }
            }
            pending = rest;
            if ready.is_empty() {
                break;
            }
            let legacy = self.legacy_objects();
            let verdicts = authorship::screen_in(
                &self.people,
                &legacy,
                ready.iter().map(|(s, c)| (s, c)),
                &refused_now,
            );
            let mut accepted = Vec::new();
            let mut made: HashMap<(u64, ActorId), ObjType> = HashMap::new();
            let mut max_ops: HashMap<ChangeHash, u64> = HashMap::new();
            for ((_, change), verdict) in ready.into_iter().zip(verdicts) {
                let outcome = verdict
                    .outcome
                    .and_then(|()| self.well_formed(&change, &mut made, &max_ops));
                match outcome {
                    Ok(()) => {
                        max_ops.insert(change.hash(), change.max_op());
                        accepted.push(change);
                    }
                    Err(reason) => {
                        if reason.lasting() {
                            refused_now.insert(verdict.hash);
                        }
                        out.refused.push(RefusedChange {
                            hash: verdict.hash,
                            actor: change.actor_id().to_bytes().to_vec(),
                            reason,
                        });
                    }
                }
            }
            if accepted.is_empty() {
                // Only refusals: what waits on them is judged in the next round.
                continue;
            }
            // A backstop for what the checks above cannot see: Automerge panics on some
            // impossible ops; that must not bring the device down.
            let doc = &mut self.doc;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                doc.apply_changes(accepted)
            })) {
                Ok(result) => result.map_err(DocError::apply)?,
                Err(_) => {
                    return Err(DocError::Apply {
                        source: Box::new(chunks::refuse_owned(
                            "a change breaks the document's structure".to_owned(),
                        )),
                    });
                }
            }
        }
        // What is still missing something is held, judged once it can be.
        self.held = pending;
        out.changed = self.doc.get_heads() != before;
        Ok(out)
    }

    /// Whether an accepted change is one an Automerge document could have made: its ops
    /// target objects that exist (here or made earlier in the batch, `made`), with map
    /// keys on maps and list positions on lists, overwrite and insert after earlier ops
    /// only, and its first op comes after every op of what it depends on (`max_ops` for
    /// changes earlier in the batch).
    fn well_formed(
        &mut self,
        change: &automerge::Change,
        made: &mut HashMap<(u64, ActorId), ObjType>,
        max_ops: &HashMap<ChangeHash, u64>,
    ) -> Result<(), Refusal> {
        use automerge::legacy::{Key, ObjectId, OpType};
        let malformed = |what| Err(Refusal::Malformed { what });
        let start = change.start_op().get();
        for dep in change.deps() {
            let max = match max_ops.get(dep) {
                Some(m) => Some(*m),
                None => self.doc.get_change_meta_by_hash(dep).map(|m| m.max_op),
            };
            if max.is_some_and(|m| start <= m) {
                return malformed("its counters do not come after what it builds on");
            }
        }
        let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode()))
            .map_err(|_| Refusal::Undecodable)?;
        let actor = change.actor_id().clone();
        for (i, op) in expanded.operations.iter().enumerate() {
            let counter = start + i as u64;
            let ty = match &op.obj {
                ObjectId::Root => ObjType::Map,
                ObjectId::Id(id) => {
                    let key = (id.counter(), id.actor().clone());
                    match made.get(&key) {
                        Some(ty) => *ty,
                        None => match self.doc.import(&format!(
                            "{}@{}",
                            id.counter(),
                            id.actor().to_hex_string()
                        )) {
                            Ok((_, ty)) => ty,
                            Err(_) => {
                                return malformed("an op targets an object that does not exist");
                            }
                        },
                    }
                }
            };
            let sequence = matches!(ty, ObjType::List | ObjType::Text);
            match (&op.key, sequence) {
                (Key::Map(_), false) if !op.insert => {}
                (Key::Seq(_), true) => {}
                _ => return malformed("an op's key does not fit its object"),
            }
            if let Key::Seq(automerge::legacy::ElementId::Id(e)) = &op.key
                && e.counter() >= counter
            {
                return malformed("an op names a later element");
            }
            if op.pred.iter().any(|p| p.counter() >= counter) {
                return malformed("an op overwrites a later op");
            }
            if let OpType::Make(made_ty) = op.action {
                made.insert((counter, actor.clone()), made_ty);
            }
        }
        Ok(())
    }

    /// The first layout's shared collections in this document (see [`Legacy`]).
    pub(crate) fn legacy_objects(&self) -> Legacy {
        Legacy::from_ids(authorship::LEGACY_ROOT_KEYS.iter().flat_map(|key| {
            self.doc
                .get_all(ROOT, *key)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(_, id)| match id {
                    automerge::ObjId::Id(counter, actor, _) => Some((counter, actor)),
                    automerge::ObjId::Root => None,
                })
        }))
    }

    /// Whether changes applied to this instance wait for earlier changes it has not seen
    /// (held back, in memory only, until their dependencies arrive).
    pub fn waiting(&mut self) -> bool {
        !self.held.is_empty()
            || !self.unvouched.is_empty()
            || !self.doc.get_missing_deps(&[]).is_empty()
    }

    fn apply_incoming(
        &mut self,
        incoming: chunks::Incoming,
    ) -> Result<(), automerge::AutomergeError> {
        let mut documents = incoming.documents.into_iter();
        // A whole document arriving at an empty one (a new device's first snapshot, or a
        // profile's first stored chunk) is taken as it is: merging would replay it change
        // by change, many times slower than the load that parsing already did.
        if incoming.changes.is_empty()
            && self.doc.get_heads().is_empty()
            && let Some(first) = documents.next()
        {
            let actor = self.doc.get_actor().clone();
            self.doc = first.with_actor(actor);
        }
        if !incoming.changes.is_empty() {
            self.doc.apply_changes(incoming.changes)?;
        }
        for mut other in documents {
            self.doc.merge(&mut other)?;
        }
        Ok(())
    }

    /// The changes the local store does not have yet (everything since the last
    /// `take_unsaved`, `save_snapshot` or `load`, local or from other devices), or `None`.
    ///
    /// Automerge's own `save_incremental` returns the whole history after a load
    /// (docs/architecture.md, "Pitfalls"), so this tracks the saved heads itself.
    pub fn take_unsaved(&mut self) -> Option<Vec<u8>> {
        let heads = self.doc.get_heads();
        if heads == self.saved {
            return None;
        }
        // Nothing saved yet: the whole document, compressed, rather than every change.
        let bytes = if self.saved.is_empty() {
            self.doc.save()
        } else {
            self.doc.save_after(&self.saved)
        };
        self.saved = heads;
        (!bytes.is_empty()).then_some(bytes)
    }

    /// A compact full save. Everything counts as saved afterwards.
    pub fn save_snapshot(&mut self) -> Vec<u8> {
        let bytes = self.doc.save();
        self.saved = self.doc.get_heads();
        bytes
    }

    /// Everything the document holds that is not covered by `heads` (Automerge's
    /// `save_after`): what a device that has `heads` is missing. Empty if nothing.
    ///
    /// Unlike [`take_unsaved`](Self::take_unsaved) this does not move the saved mark; the
    /// sync engine tracks what it has pushed separately from what the store has saved.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The same changes as [`changes_since`](Self::changes_since), cut into batches of at
    /// most `max_bytes` each (whole changes, in an order every batch can be applied in), so
    /// that a long stretch of offline work fits the relay's envelope limit.
    ///
    /// # Errors
    /// [`DocError::ChangeTooLarge`] if one change alone is over `max_bytes`.
    pub fn changes_since_batched(
        &mut self,
        heads: &[ChangeHash],
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, DocError> {
        batched(self.doc.get_changes(heads), max_bytes)
    }

    /// Every change the document holds under an Automerge actor `actor` accepts, cut into
    /// batches as [`changes_since_batched`](Self::changes_since_batched) does (in an order
    /// every batch can be applied in once what they build on from other actors is there):
    /// what a device uploads of its own person's writing to a relay the space moved to.
    ///
    /// # Errors
    /// [`DocError::ChangeTooLarge`] if one change alone is over `max_bytes`.
    pub fn changes_under_batched(
        &mut self,
        actor: impl Fn(&[u8]) -> bool,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, DocError> {
        let changes = self
            .doc
            .get_changes(&[])
            .into_iter()
            .filter(|c| actor(c.actor_id().to_bytes()));
        batched(changes, max_bytes)
    }

    /// The current heads of the document.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Hashes of changes that other changes depend on but that have not arrived yet.
    /// Empty when the document is complete.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    /// Whether the document holds every change in `hashes` (and so everything each of them
    /// builds on): a device checks this before it countersigns another person's snapshot
    /// (docs/security.md, "Snapshots need both people").
    pub fn has_changes(&mut self, hashes: &[ChangeHash]) -> bool {
        hashes
            .iter()
            .all(|h| self.doc.get_change_by_hash(h).is_some())
    }

    /// The hashes of the changes the document holds under an Automerge actor `actor`
    /// accepts (each device writes under its own device id): what a countersigning device
    /// compares with its own copy, so a snapshot cannot carry changes in its person's
    /// name that it never made.
    pub fn changes_under(&mut self, actor: impl Fn(&[u8]) -> bool) -> Vec<ChangeHash> {
        self.doc
            .get_changes(&[])
            .into_iter()
            .filter(|c| actor(c.actor_id().to_bytes()))
            .map(|c| c.hash())
            .collect()
    }

    /// This device's actor id.
    pub fn actor(&self) -> &[u8] {
        self.doc.get_actor().to_bytes()
    }

    /// The document's schema version, if it has one: the highest of the person
    /// containers' (2 today), else the first layout's at the root (1).
    pub fn schema(&self) -> Option<i64> {
        let number =
            |obj: &automerge::ObjId| match self.doc.get(obj, layout::SCHEMA).ok().flatten()? {
                (automerge::Value::Scalar(s), _) => s.as_i64(),
                _ => None,
            };
        layout::containers(&self.doc)
            .iter()
            .flat_map(|(_, objects)| objects.iter().filter_map(number))
            .max()
            .or_else(|| number(&ROOT))
    }

    /// The id of the person this device writes as (see [`writer`](Self::writer)).
    pub fn own_person(&self) -> PersonId {
        self.authors().id_of(&self.writer())
    }

    /// The person this device writes as and their id in the space.
    ///
    /// # Errors
    /// None today; a `Result` so that writes read alike.
    pub(crate) fn me(&self) -> Result<(PersonKey, PersonId), DocError> {
        let me = self.writer();
        Ok((me, self.authors().id_of(&me)))
    }

    /// [`me`](Self::me), checking that a write naming `author` is in this device's own
    /// person's name. Before the person has written anything, the first write names them
    /// (an id no one else in the space has).
    ///
    /// # Errors
    /// [`DocError::NotYourPerson`].
    pub(crate) fn writing_as(&self, author: &PersonId) -> Result<(PersonKey, PersonId), DocError> {
        let me = self.writer();
        let authors = self.authors();
        let own = if authors.knows(&me) {
            authors.id_of(&me)
        } else if authors.key_of(author).is_none_or(|k| k == me) {
            author.clone()
        } else {
            PersonId::of(&me)
        };
        if own == *author {
            Ok((me, own))
        } else {
            Err(DocError::NotYourPerson {
                own,
                asked: author.clone(),
            })
        }
    }

    /// Runs `write` as one Automerge change, or not at all.
    pub(crate) fn change<T>(
        &mut self,
        write: impl FnOnce(&mut AutoCommit) -> Result<T, DocError>,
    ) -> Result<T, DocError> {
        match write(&mut self.doc) {
            Ok(value) => {
                self.doc.commit();
                Ok(value)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    /// Adds a person to the space, or renames them if they are already in it (their
    /// `joined_at` stays).
    ///
    /// # Errors
    ///
    /// [`DocError::Empty`] for a blank name.
    pub fn add_person(&mut self, id: &PersonId, name: &str, now: Millis) -> Result<(), DocError> {
        let name = non_empty(name, "name")?;
        let (me, person) = self.writing_as(id)?;
        let existing = self.person(&person);
        if existing.as_ref().is_some_and(|p| p.name == name) {
            return Ok(());
        }
        let joined_at = existing.map_or(now, |p| p.joined_at);
        self.change(|doc| {
            let mine = layout::own_container(doc, &me, &person)?;
            doc.put(&mine, layout::NAME, name)?;
            if doc.get(&mine, layout::JOINED_AT)?.is_none() {
                doc.put(&mine, layout::JOINED_AT, layout::timestamp(joined_at))?;
            }
            Ok(())
        })
    }

    /// Adds an appreciation.
    ///
    /// # Errors
    ///
    /// [`DocError::Empty`] if `text` is blank.
    pub fn add_appreciation(
        &mut self,
        author: &PersonId,
        text: &str,
        now: Millis,
    ) -> Result<EntryId, DocError> {
        let record = AppreciationRecord {
            id: EntryId::new(),
            author: author.clone(),
            text: non_empty(text, "appreciation")?.to_owned(),
            created_at: now,
        };
        let (me, person) = self.writing_as(author)?;
        self.change(|doc| append(doc, (&me, &person), layout::APPRECIATIONS, &record))?;
        Ok(record.id)
    }

    /// Adds a piece of feedback in the four-part form.
    ///
    /// # Errors
    ///
    /// [`DocError::Empty`] naming the first blank part (`observation`, `feeling`, `need` or
    /// `request`).
    pub fn add_feedback(
        &mut self,
        author: &PersonId,
        draft: &FeedbackDraft,
        now: Millis,
    ) -> Result<EntryId, DocError> {
        let part = |text: &str, what| non_empty(text, what).map(|t| Some(t.to_owned()));
        let record = FeedbackRecord {
            id: EntryId::new(),
            author: author.clone(),
            observation: part(&draft.observation, "observation")?,
            feeling: part(&draft.feeling, "feeling")?,
            need: part(&draft.need, "need")?,
            request: part(&draft.request, "request")?,
            created_at: now,
            replies: Vec::new(),
        };
        let (me, person) = self.writing_as(author)?;
        self.change(|doc| append(doc, (&me, &person), layout::FEEDBACK, &record))?;
        Ok(record.id)
    }

    /// Replies to a piece of feedback. The listener reflects back: the one who raised it
    /// cannot reflect their own feedback.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if there is no such feedback, [`DocError::Empty`] for a blank
    /// reply, [`DocError::WrongRole`] for a reflection of one's own feedback.
    pub fn add_reply(
        &mut self,
        feedback: &EntryId,
        author: &PersonId,
        kind: ReplyKind,
        text: &str,
        now: Millis,
    ) -> Result<(), DocError> {
        let text = non_empty(text, "reply")?;
        let (me, person) = self.writing_as(author)?;
        let speakers = queries::feedback_authors(&self.doc, &self.authors(), feedback);
        if speakers.is_empty() {
            return Err(not_found("feedback", feedback));
        }
        let raised_it = speakers.contains(&person);
        if kind == ReplyKind::Reflect && speakers.iter().all(|s| *s == person) {
            return Err(DocError::WrongRole {
                who: "your partner",
                what: "reflect back what they heard in feedback you raised",
            });
        }
        if kind == ReplyKind::Acknowledge && !raised_it {
            return Err(DocError::WrongRole {
                who: "the one who raised it",
                what: "say whether they felt heard",
            });
        }
        let record = ReplyRecord {
            feedback: Some(feedback.clone()),
            author: author.clone(),
            kind,
            text: text.to_owned(),
            created_at: now,
        };
        // Replies go to one list per person rather than a list inside each feedback entry:
        // only the replier writes their reply, and the lists are read in a single pass.
        self.change(|doc| append(doc, (&me, &person), layout::REPLIES, &record))
    }

    /// The answer of the one who raised `feedback` to "Did I get it?" (`text`: "yes",
    /// "partly" or "no", and any note), stored as an acknowledgement. Only they may give it.
    ///
    /// # Errors
    ///
    /// As [`SpaceDoc::add_reply`], and [`DocError::WrongRole`] if `author` did not raise it.
    pub fn answer_heard(
        &mut self,
        feedback: &EntryId,
        author: &PersonId,
        text: &str,
        now: Millis,
    ) -> Result<(), DocError> {
        self.add_reply(feedback, author, ReplyKind::Acknowledge, text, now)
    }

    /// Adds a shared journal entry. (Private entries never enter the document: see
    /// [`JournalEntry::new_private`](crate::JournalEntry::new_private).)
    ///
    /// # Errors
    ///
    /// [`DocError::Empty`] if the body is blank.
    pub fn add_journal(
        &mut self,
        author: &PersonId,
        draft: &JournalDraft,
        now: Millis,
    ) -> Result<EntryId, DocError> {
        let draft = draft.normalized();
        if draft.body.is_empty() {
            return Err(DocError::Empty {
                what: "journal entry",
            });
        }
        // The body is a plain string inside the record, never Automerge Text: Text bodies
        // measured 20x the load time (docs/document.md), and an entry is edited as a whole.
        let record = JournalRecord {
            id: EntryId::new(),
            author: author.clone(),
            created_at: now,
            title: draft.title,
            body: draft.body,
            tags: draft.tags,
            edited_at: None,
        };
        let (me, person) = self.writing_as(author)?;
        self.change(|doc| append(doc, (&me, &person), layout::JOURNAL, &record))?;
        Ok(record.id)
    }

    /// Replaces a journal entry's title, body and tags, and sets `edited_at`.
    ///
    /// Only fields that actually change are written, each as its own value, so two
    /// partners editing different fields at once both keep their edit, and edits of the
    /// same field resolve the same way on every device (last writer wins). An edit that
    /// changes nothing writes nothing.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`], or [`DocError::Empty`] if the new body is blank.
    pub fn edit_journal(
        &mut self,
        id: &EntryId,
        draft: &JournalDraft,
        now: Millis,
    ) -> Result<(), DocError> {
        let draft = draft.normalized();
        if draft.body.is_empty() {
            return Err(DocError::Empty {
                what: "journal entry",
            });
        }
        let (me, person) = self.me()?;
        let authors = self.authors();
        let Some(current) = queries::find_journal(&self.doc, &authors, id, &person) else {
            if self.journal().iter().any(|j| j.id == *id) {
                return Err(DocError::WrongRole {
                    who: "the one who wrote it",
                    what: "edit a journal entry",
                });
            }
            return Err(not_found("journal entry", id));
        };
        let title_changed = current.title != draft.title;
        let body_changed = current.body != draft.body;
        let tags_changed = current.tags != draft.tags;
        if !(title_changed || body_changed || tags_changed) {
            return Ok(());
        }
        let key = |field| layout::edit_key(id.as_str(), field);
        self.change(|doc| {
            let edits =
                layout::collection_for_write(doc, &me, &person, layout::EDITS, ObjType::Map)?;
            if title_changed {
                match &draft.title {
                    Some(t) => doc.put(&edits, key(layout::TITLE), t.as_str())?,
                    // A null, not a delete, so removing a title takes part in
                    // last-writer-wins like any other edit.
                    None => doc.put(&edits, key(layout::TITLE), automerge::ScalarValue::Null)?,
                }
            }
            if body_changed {
                doc.put(&edits, key(layout::BODY), draft.body.as_str())?;
            }
            if tags_changed {
                doc.put(&edits, key(layout::TAGS), records::to_json(&draft.tags))?;
            }
            doc.put(&edits, key(layout::EDITED_AT), layout::timestamp(now))?;
            Ok(())
        })
    }

    /// Submits one person's answers to the check-in for `week`, as one change, with the
    /// deck the week already uses (the weekly one for a new week). See
    /// [`submit_checkin_with`](Self::submit_checkin_with).
    ///
    /// # Errors
    ///
    /// As [`submit_checkin_with`](Self::submit_checkin_with).
    pub fn submit_checkin(
        &mut self,
        week: Week,
        person: &PersonId,
        answers: Answers,
        now: Millis,
    ) -> Result<(), DocError> {
        self.submit_checkin_with(week, person, None, answers, now)
    }

    /// Submits one person's answers to the check-in for `week`, as one change, answered
    /// with the deck `deck` (an id; `None` for the one the week already uses, else the
    /// weekly one). The deck id is stored with the check-in; a partner
    /// answering the same week answers the same deck ([`SpaceDoc::checkin_deck`]).
    ///
    /// Also records the answer to `commit` as a new open [`Commitment`](crate::Commitment)
    /// for this week, and applies the answer to `followup` (done / partly / no) to this
    /// person's still-open commitments from earlier weeks.
    ///
    /// Check-ins are stored under random ids and grouped by week when read, so two partners
    /// who both open the same week's check-in offline both keep their answers.
    ///
    /// # Errors
    ///
    /// [`DocError::AlreadySubmitted`] if this person already submitted for `week`, the deck
    /// errors of [`SpaceDoc::checkin_deck`], or the deck's validation errors
    /// ([`DocError::InvalidAnswer`], [`DocError::UnknownQuestion`],
    /// [`DocError::MissingAnswers`]).
    pub fn submit_checkin_with(
        &mut self,
        week: Week,
        person: &PersonId,
        deck: Option<&str>,
        answers: Answers,
        now: Millis,
    ) -> Result<(), DocError> {
        let (me, person_id) = self.writing_as(person)?;
        let person = &person_id;
        let deck = self.checkin_deck(week, deck)?;
        deck.validate(&answers)?;
        let this_week = checkins::raw_checkins(&self.doc, &self.authors(), false, Some(week));
        if this_week.iter().any(|c| c.submissions.contains_key(person)) {
            return Err(DocError::AlreadySubmitted {
                week,
                person: person.clone(),
            });
        }
        // Each person opens the week in their own container (readers merge check-ins of a
        // week), with the deck the week already uses.
        let checkin_id = EntryId::new().to_string();
        let new_checkin = Some(CheckinRecord {
            week,
            deck: deck.id.clone(),
            opened_by: Some(person.clone()),
            opened_at: Some(now),
            answers: None,
        });
        // The answers are sealed: the document holds only ciphertext and a commitment until
        // this device releases the key. The commitment and follow-up inside them are read
        // from the answers by whoever can open them (`checkins::commitments_in`), so
        // nothing of the answers is written in the clear.
        let plaintext = serde_json::to_vec(&answers)
            .expect("answers are strings and small numbers, which always serialise");
        let (key, sealed) = answers::seal(&week.to_string(), person.as_str(), &plaintext)
            .map_err(|e| DocError::Random(e.to_string()))?;
        let submission = SealedSubmission {
            submitted_at: now,
            sealed,
        };
        let own = OwnKey {
            week,
            commitment: submission.sealed.commitment,
            key,
        };
        // If the partner has already sealed theirs, this key goes out in the same change;
        // never against answers without a commitment (they bind the partner to nothing).
        let release = self
            .partner_commitment(week, person)
            .flatten()
            .map(|seen| RevealRecord {
                week,
                person: person.clone(),
                commitment: own.commitment,
                key: own.key.clone(),
                seen: Some(seen),
                released_at: now,
            });
        let mine = (&me, person);
        self.change(|doc| {
            if let Some(record) = &new_checkin {
                let checkins =
                    layout::collection_for_write(doc, &me, person, layout::CHECKINS, ObjType::Map)?;
                doc.put(&checkins, checkin_id.as_str(), records::to_json(record))?;
            }
            let submissions =
                layout::collection_for_write(doc, &me, person, layout::SUBMISSIONS, ObjType::Map)?;
            doc.put(
                &submissions,
                layout::submission_key(&checkin_id, person.as_str()),
                ScalarValue::Bytes(submission.encode()),
            )?;
            if let Some(record) = &release {
                append_bytes(doc, mine, layout::REVEALS, record.encode())?;
            }
            Ok(())
        })?;
        self.own_keys.insert(own.commitment, own.clone());
        self.new_keys.push(own);
        Ok(())
    }

    /// Whether someone other than `person` has submitted for `week`, and if so the
    /// commitment of their sealed answers that counts (`Some(None)` for answers from before
    /// sealing).
    fn partner_commitment(&self, week: Week, person: &PersonId) -> Option<Option<Commitment>> {
        let authors = self.authors();
        let c = checkins::merge(checkins::raw_checkins(
            &self.doc,
            &authors,
            true,
            Some(week),
        ))
        .into_iter()
        .next()?;
        let reveals = checkins::reveals(&self.doc, &authors, Some(week));
        let released = reveals.get(&week).map_or(&[][..], Vec::as_slice);
        seen_by(&checkins::choose(&c, released), person)
    }

    /// Releases the keys of `person`'s sealed answers that are due: each week where this
    /// device holds the key, the partner has submitted too, and the key is not out yet.
    /// Writes one change if anything was due; returns the weeks released.
    ///
    /// # Errors
    /// Only if Automerge refuses the change (a bug).
    pub fn release_due_keys(
        &mut self,
        person: &PersonId,
        now: Millis,
    ) -> Result<Vec<Week>, DocError> {
        if self.own_keys.is_empty() {
            return Ok(Vec::new());
        }
        let (me, person_id) = self.writing_as(person)?;
        let person = &person_id;
        let authors = self.authors();
        // One pass over the released keys; then only weeks whose keys are still here.
        let reveals = checkins::reveals(&self.doc, &authors, None);
        let out = self.released(&reveals);
        let weeks: BTreeSet<Week> = self
            .own_keys
            .values()
            .filter(|k| !out.contains(&k.commitment))
            .map(|k| k.week)
            .collect();
        let only = match weeks.len() {
            0 => return Ok(Vec::new()),
            1 => weeks.first().copied(),
            _ => None,
        };
        let mut due = Vec::new();
        for c in checkins::merge(checkins::raw_checkins(&self.doc, &authors, true, only)) {
            if !weeks.contains(&c.week) {
                continue;
            }
            let released = reveals.get(&c.week).map_or(&[][..], Vec::as_slice);
            let chosen = checkins::choose(&c, released);
            let Some(Choice::Chosen {
                submission,
                opened: None,
                ..
            }) = chosen.get(person)
            else {
                continue;
            };
            let Some((mine, key)) = submission
                .commitment()
                .and_then(|c| Some((c, &self.own_keys.get(&c)?.key)))
            else {
                continue;
            };
            // Only against the partner's *sealed* answers: a submission without a
            // commitment (the format from before sealing, or a modified client's) binds them
            // to nothing, so releasing against it would let them read first and answer after.
            let Some(Some(seen)) = seen_by(&chosen, person) else {
                continue;
            };
            due.push(RevealRecord {
                week: c.week,
                person: person.clone(),
                commitment: mine,
                key: key.clone(),
                seen: Some(seen),
                released_at: now,
            });
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.change(|doc| {
            for record in &due {
                append_bytes(doc, (&me, person), layout::REVEALS, record.encode())?;
            }
            Ok(())
        })?;
        Ok(due.into_iter().map(|r| r.week).collect())
    }

    /// Gives this document the keys of the device's own sealed answers (kept by the
    /// client), so it can read them before they are released and release them when due.
    pub fn add_own_keys(&mut self, keys: impl IntoIterator<Item = OwnKey>) {
        self.own_keys
            .extend(keys.into_iter().map(|k| (k.commitment, k)));
    }

    /// This device's keys that are out in the document now (released by this or another
    /// device): the client no longer needs to keep them.
    pub fn released_own_keys(&self) -> Vec<Commitment> {
        if self.own_keys.is_empty() {
            return Vec::new();
        }
        self.released(&checkins::reveals(&self.doc, &self.authors(), None))
            .into_iter()
            .collect()
    }

    /// Which of this device's keys are among `reveals`.
    fn released(&self, reveals: &HashMap<Week, Vec<checkins::Reveal>>) -> BTreeSet<Commitment> {
        reveals
            .values()
            .flatten()
            .filter(|r| {
                self.own_keys
                    .get(&r.commitment)
                    .is_some_and(|k| k.key == r.key)
            })
            .map(|r| r.commitment)
            .collect()
    }

    /// The keys made by sealing since the last call. The client must keep them (they
    /// exist nowhere else) in the same transaction that stores the change.
    pub fn take_new_keys(&mut self) -> Vec<OwnKey> {
        std::mem::take(&mut self.new_keys)
    }

    /// Sets how a commitment went. Setting the status it already has writes nothing.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if there is no such commitment.
    pub fn set_commitment_status(
        &mut self,
        id: &EntryId,
        status: CommitmentStatus,
    ) -> Result<(), DocError> {
        let (me, person) = self.me()?;
        let all = self.commitments();
        let Some(current) = all.iter().find(|c| c.id == *id && c.author == person) else {
            if all.iter().any(|c| c.id == *id) {
                return Err(DocError::WrongRole {
                    who: "the one who made it",
                    what: "say how a commitment went",
                });
            }
            return Err(not_found("commitment", id));
        };
        if current.status == status {
            return Ok(());
        }
        self.change(|doc| put_status(doc, (&me, &person), id, status))
    }
}

/// The partner's submission that counts, as `person` would name it when releasing a key:
/// `None` if nobody else has submitted, `Some(None)` if theirs has no commitment.
fn seen_by(
    chosen: &BTreeMap<&PersonId, Choice<'_>>,
    person: &PersonId,
) -> Option<Option<Commitment>> {
    let (_, theirs) = chosen.iter().find(|(p, _)| **p != person)?;
    Some(match theirs {
        Choice::Chosen { submission, .. } => submission.commitment(),
        Choice::Replaced => None,
    })
}

/// Records a commitment's status as its own last-writer-wins edit.
fn put_status(
    doc: &mut AutoCommit,
    (me, person): (&PersonKey, &PersonId),
    id: &EntryId,
    status: CommitmentStatus,
) -> Result<(), DocError> {
    let edits = layout::collection_for_write(doc, me, person, layout::EDITS, ObjType::Map)?;
    doc.put(
        &edits,
        layout::edit_key(id.as_str(), layout::STATUS),
        status.as_str(),
    )?;
    Ok(())
}

fn actor_id(actor: &[u8]) -> Result<ActorId, DocError> {
    if actor.is_empty() {
        Err(DocError::EmptyActor)
    } else {
        Ok(ActorId::from(actor))
    }
}

fn non_empty<'t>(text: &'t str, what: &'static str) -> Result<&'t str, DocError> {
    let text = text.trim();
    if text.is_empty() {
        Err(DocError::Empty { what })
    } else {
        Ok(text)
    }
}

fn not_found(what: &'static str, id: &EntryId) -> DocError {
    DocError::NotFound {
        what,
        handle: id.to_string(),
    }
}

/// The writer's person key and id, for writes into their container.
type Mine<'a> = (&'a PersonKey, &'a PersonId);

/// Adds one binary record to one of the writer's lists, at the front like [`append`].
fn append_bytes(
    doc: &mut AutoCommit,
    (me, person): Mine<'_>,
    collection: &str,
    record: Vec<u8>,
) -> Result<(), DocError> {
    let list = layout::collection_for_write(doc, me, person, collection, ObjType::List)?;
    doc.insert(&list, 0, ScalarValue::Bytes(record))?;
    Ok(())
}

/// Adds one record to one of the writer's lists.
///
/// At the front, not the end: readers sort by time and id, so list order carries no
/// meaning, and Automerge finds the front of a list at once but walks the whole list to
/// find its end (measured: 30x slower for 8,000 entries in a debug build, 3x in release).
fn append(
    doc: &mut AutoCommit,
    (me, person): Mine<'_>,
    collection: &str,
    record: &impl Serialize,
) -> Result<(), DocError> {
    let list = layout::collection_for_write(doc, me, person, collection, ObjType::List)?;
    doc.insert(&list, 0, records::to_json(record))?;
    Ok(())
}

/// `changes`, in their order, cut into batches of at most `max_bytes` of whole changes.
fn batched(
    changes: impl IntoIterator<Item = automerge::Change>,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, DocError> {
    let mut batches = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for mut change in changes {
        let bytes = change.bytes();
        if bytes.len() > max_bytes {
            return Err(DocError::ChangeTooLarge {
                size: bytes.len(),
                max: max_bytes,
            });
        }
        if !current.is_empty() && current.len() + bytes.len() > max_bytes {
            batches.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&bytes);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batches_respect_the_limit_and_rebuild_the_same_document() {
        let person = PersonId::random();
        let mut a = SpaceDoc::create(b"device-a", &person, "Sam", Millis(1)).unwrap();
        let mut b = SpaceDoc::replica(b"device-b").unwrap();
        for i in 0..200 {
            a.add_appreciation(
                &person,
                &format!("thanks for thing number {i}, it mattered"),
                Millis(2 + i),
            )
            .unwrap();
        }
        let batches = a.changes_since_batched(&[], 2_000).unwrap();
        assert!(batches.len() > 3, "{} batches", batches.len());
        assert!(batches.iter().all(|b| b.len() <= 2_000));
        for batch in &batches {
            b.apply(batch).unwrap();
        }
        assert_eq!(a.appreciations(), b.appreciations());
        assert_eq!(a.heads(), b.heads());
        assert!(matches!(
            a.changes_since_batched(&[], 10),
            Err(DocError::ChangeTooLarge { .. })
        ));
        let heads = a.heads();
        assert!(a.changes_since_batched(&heads, 2_000).unwrap().is_empty());
    }
}
