//! The couple's shared document: creating, loading, syncing and writing it.
//!
//! `SpaceDoc` is the only way other crates touch Automerge. It keeps two promises the rest
//! of hearth relies on: every user action is exactly one Automerge change (so the outbox,
//! the relay and the tests can count them), and the bytes handed out for storage are
//! exactly what the local store does not have yet, whether it was written here or arrived
//! from another device. Reads live in `queries.rs`.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ROOT};

use crate::chunks;
use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout::{self, Fields};
use crate::model::{
    clean_body, Answers, CommitmentStatus, FeedbackDraft, JournalDraft, ReplyKind,
};
use crate::queries;
use crate::template::weekly_template;
use crate::week::Week;

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
}

impl SpaceDoc {
    /// A new space document: `schema: 1`, empty collections, and `creator` as its first
    /// person. Written as one change.
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
        };
        space.change(|doc| {
            doc.put(ROOT, layout::SCHEMA, layout::SCHEMA_VERSION)?;
            for (key, ty) in layout::COLLECTIONS {
                doc.put_object(ROOT, key, ty)?;
            }
            put_person(doc, creator, name, now)
        })?;
        Ok(space)
    }

    /// Loads a space from a full snapshot followed by incremental chunks (each the output
    /// of [`take_unsaved`](Self::take_unsaved) or [`save_snapshot`](Self::save_snapshot)).
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
            AutoCommit::load(snapshot).map_err(DocError::load)?
        };
        let mut space = SpaceDoc {
            doc: doc.with_actor(actor),
            saved: Vec::new(),
        };
        for chunk in incrementals {
            let incoming = chunks::parse(chunk).map_err(DocError::load)?;
            space.apply_incoming(incoming).map_err(DocError::load)?;
        }
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
        let before = self.doc.get_heads();
        let incoming = chunks::parse(bytes).map_err(DocError::apply)?;
        self.apply_incoming(incoming).map_err(DocError::apply)?;
        Ok(self.doc.get_heads() != before)
    }

    fn apply_incoming(
        &mut self,
        incoming: chunks::Incoming,
    ) -> Result<(), automerge::AutomergeError> {
        if !incoming.changes.is_empty() {
            self.doc.apply_changes(incoming.changes)?;
        }
        for mut other in incoming.documents {
            self.doc.merge(&mut other)?;
        }
        Ok(())
    }

    /// The changes the local store does not have yet (everything since the last
    /// `take_unsaved`, `save_snapshot` or `load`, local or from other devices), or `None`.
    ///
    /// Automerge's own `save_incremental` returns the whole history after a load
    /// (DESIGN.md §8), so this tracks the saved heads itself.
    pub fn take_unsaved(&mut self) -> Option<Vec<u8>> {
        let heads = self.doc.get_heads();
        if heads == self.saved {
            return None;
        }
        let bytes = self.doc.save_after(&self.saved);
        self.saved = heads;
        (!bytes.is_empty()).then_some(bytes)
    }

    /// A compact full save. Everything counts as saved afterwards.
    pub fn save_snapshot(&mut self) -> Vec<u8> {
        let bytes = self.doc.save();
        self.saved = self.doc.get_heads();
        bytes
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

    /// This device's actor id.
    pub fn actor(&self) -> &[u8] {
        self.doc.get_actor().to_bytes()
    }

    /// The document's schema version (1 today), if it has one.
    pub fn schema(&self) -> Option<i64> {
        match self.doc.get(ROOT, layout::SCHEMA).ok().flatten()? {
            (automerge::Value::Scalar(s), _) => s.as_i64(),
            _ => None,
        }
    }

    /// Runs `write` as one Automerge change, or not at all.
    fn change<T>(
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
        if let Some(existing) = self.person(id) {
            if existing.name == name {
                return Ok(());
            }
            return self.change(|doc| {
                let people = layout::root_for_write(doc, layout::PEOPLE, ObjType::Map)?;
                match doc.get(&people, id.as_str())? {
                    Some((v, obj)) if v.to_objtype() == Some(ObjType::Map) => {
                        doc.put(&obj, layout::NAME, name)?;
                        Ok(())
                    }
                    _ => put_person(doc, id, name, existing.joined_at),
                }
            });
        }
        self.change(|doc| put_person(doc, id, name, now))
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
        let text = non_empty(text, "appreciation")?;
        let id = EntryId::new();
        self.change(|doc| {
            let entry = append_entry(doc, layout::APPRECIATIONS, &id, author, now)?;
            doc.put(&entry, layout::TEXT, text)?;
            Ok(())
        })?;
        Ok(id)
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
        let parts = [
            (layout::OBSERVATION, non_empty(&draft.observation, "observation")?),
            (layout::FEELING, non_empty(&draft.feeling, "feeling")?),
            (layout::NEED, non_empty(&draft.need, "need")?),
            (layout::REQUEST, non_empty(&draft.request, "request")?),
        ];
        let id = EntryId::new();
        self.change(|doc| {
            let entry = append_entry(doc, layout::FEEDBACK, &id, author, now)?;
            for (key, text) in parts {
                doc.put(&entry, key, text)?;
            }
            doc.put_object(&entry, layout::REPLIES, ObjType::List)?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Replies to a piece of feedback.
    ///
    /// # Errors
    ///
    /// [`DocError::NotFound`] if there is no such feedback, [`DocError::Empty`] for a blank
    /// reply.
    pub fn add_reply(
        &mut self,
        feedback: &EntryId,
        author: &PersonId,
        kind: ReplyKind,
        text: &str,
        now: Millis,
    ) -> Result<(), DocError> {
        let text = non_empty(text, "reply")?;
        let entry = find_entry_object(&self.doc, layout::FEEDBACK, feedback)
            .ok_or_else(|| not_found("feedback", feedback))?;
        self.change(|doc| {
            let replies = match doc.get(&entry, layout::REPLIES)? {
                Some((v, list)) if v.to_objtype() == Some(ObjType::List) => list,
                _ => doc.put_object(&entry, layout::REPLIES, ObjType::List)?,
            };
            let reply = doc.insert_object(&replies, doc.length(&replies), ObjType::Map)?;
            doc.put(&reply, layout::AUTHOR, author.as_str())?;
            doc.put(&reply, layout::KIND, kind.as_str())?;
            doc.put(&reply, layout::TEXT, text)?;
            doc.put(&reply, layout::CREATED_AT, layout::timestamp(now))?;
            Ok(())
        })
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
        let id = EntryId::new();
        self.change(|doc| {
            let entry = append_entry(doc, layout::JOURNAL, &id, author, now)?;
            if let Some(title) = &draft.title {
                doc.put(&entry, layout::TITLE, title.as_str())?;
            }
            // A plain string, not Automerge Text: DESIGN.md §3 measured Text bodies at 20x
            // the load time, and an entry is edited as a whole anyway.
            doc.put(&entry, layout::BODY, draft.body.as_str())?;
            put_tags(doc, &entry, &draft.tags)?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Replaces a journal entry's title, body and tags, and sets `edited_at`.
    ///
    /// Only fields that actually change are written, so two partners editing different
    /// fields at once both keep their edit; edits of the same field resolve the same way on
    /// every device (Automerge's last-writer-wins). An edit that changes nothing writes
    /// nothing.
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
        let entry = find_entry_object(&self.doc, layout::JOURNAL, id)
            .ok_or_else(|| not_found("journal entry", id))?;
        let (title, body, tags) = {
            let fields = Fields::read(&self.doc, &entry);
            let tags = fields
                .object(layout::TAGS, ObjType::List)
                .map(|list| layout::string_list(&self.doc, &list));
            (
                fields.owned(layout::TITLE).filter(|t| !t.is_empty()),
                fields.owned(layout::BODY).map(|b| clean_body(&b).to_owned()),
                tags,
            )
        };
        let title_changed = title != draft.title;
        let body_changed = body.as_deref() != Some(draft.body.as_str());
        let tags_changed = tags.as_deref().unwrap_or_default() != draft.tags.as_slice();
        if !(title_changed || body_changed || tags_changed) {
            return Ok(());
        }
        self.change(|doc| {
            if title_changed {
                match &draft.title {
                    Some(t) => doc.put(&entry, layout::TITLE, t.as_str())?,
                    // A null, not a delete, so a removed title takes part in last-writer-wins.
                    None => doc.put(&entry, layout::TITLE, automerge::ScalarValue::Null)?,
                }
            }
            if body_changed {
                doc.put(&entry, layout::BODY, draft.body.as_str())?;
            }
            if tags_changed {
                put_tags(doc, &entry, &draft.tags)?;
            }
            doc.put(&entry, layout::EDITED_AT, layout::timestamp(now))?;
            Ok(())
        })
    }

    /// Submits one person's answers to the check-in for `week`, as one change.
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
    /// [`DocError::AlreadySubmitted`] if this person already submitted for `week`, or the
    /// template's validation errors ([`DocError::InvalidAnswer`],
    /// [`DocError::UnknownQuestion`], [`DocError::MissingAnswers`]).
    pub fn submit_checkin(
        &mut self,
        week: Week,
        person: &PersonId,
        answers: Answers,
        now: Millis,
    ) -> Result<(), DocError> {
        let template = weekly_template();
        template.validate(&answers)?;
        let raw = queries::raw_checkins(&self.doc, false);
        let this_week: Vec<&queries::RawCheckin> = raw.iter().filter(|c| c.week == week).collect();
        if this_week
            .iter()
            .any(|c| c.submissions.iter().any(|s| s.person == *person))
        {
            return Err(DocError::AlreadySubmitted {
                week,
                person: person.clone(),
            });
        }
        // Join an existing check-in for the week if there is one (readers merge them anyway);
        // the smallest id keeps the choice the same on every device.
        let target = this_week
            .iter()
            .filter_map(|c| c.answers.clone().map(|a| (c.id.as_str(), a)))
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(_, answers)| answers);
        let commitment = answers
            .text("commit")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let followup = match answers.choice("followup") {
            Some("done") => Some(CommitmentStatus::Done),
            Some("partly") => Some(CommitmentStatus::Partly),
            Some("no") => Some(CommitmentStatus::Dropped),
            _ => None,
        };
        let earlier_open: Vec<ObjId> = match followup {
            Some(_) => queries::commitment_objects(&self.doc)
                .into_iter()
                .filter(|(c, _)| {
                    c.author == *person && c.status == CommitmentStatus::Open && c.week < week
                })
                .map(|(_, obj)| obj)
                .collect(),
            None => Vec::new(),
        };
        let json = serde_json::to_string(&answers)
            .expect("answers are strings and small numbers, which always serialise");
        self.change(|doc| {
            let answers_map = match target {
                Some(map) => map,
                None => {
                    let checkins = layout::root_for_write(doc, layout::CHECKINS, ObjType::Map)?;
                    let checkin_id = EntryId::new();
                    let checkin = doc.put_object(&checkins, checkin_id.as_str(), ObjType::Map)?;
                    doc.put(&checkin, layout::WEEK, week.to_string())?;
                    doc.put(&checkin, layout::TEMPLATE, template.id)?;
                    doc.put(&checkin, layout::OPENED_BY, person.as_str())?;
                    doc.put(&checkin, layout::OPENED_AT, layout::timestamp(now))?;
                    doc.put_object(&checkin, layout::ANSWERS, ObjType::Map)?
                }
            };
            let submission = doc.put_object(&answers_map, person.as_str(), ObjType::Map)?;
            doc.put(&submission, layout::SUBMITTED_AT, layout::timestamp(now))?;
            // One JSON string, not a tree of Automerge objects: it is small, and a later
            // version replaces it with a sealed ciphertext.
            doc.put(&submission, layout::ANSWERS, json)?;
            if let Some(text) = &commitment {
                let id = EntryId::new();
                let entry = append_entry(doc, layout::COMMITMENTS, &id, person, now)?;
                doc.put(&entry, layout::TEXT, text.as_str())?;
                doc.put(&entry, layout::WEEK, week.to_string())?;
                doc.put(&entry, layout::STATUS, CommitmentStatus::Open.as_str())?;
            }
            if let Some(status) = followup {
                for obj in &earlier_open {
                    doc.put(obj, layout::STATUS, status.as_str())?;
                }
            }
            Ok(())
        })
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
        let entry = find_entry_object(&self.doc, layout::COMMITMENTS, id)
            .ok_or_else(|| not_found("commitment", id))?;
        let current = Fields::read(&self.doc, &entry).parse::<CommitmentStatus>(layout::STATUS);
        if current == Some(status) {
            return Ok(());
        }
        self.change(|doc| {
            doc.put(&entry, layout::STATUS, status.as_str())?;
            Ok(())
        })
    }
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

fn put_person(
    doc: &mut AutoCommit,
    id: &PersonId,
    name: &str,
    joined_at: Millis,
) -> Result<(), DocError> {
    let people = layout::root_for_write(doc, layout::PEOPLE, ObjType::Map)?;
    let person = doc.put_object(&people, id.as_str(), ObjType::Map)?;
    doc.put(&person, layout::NAME, name)?;
    doc.put(&person, layout::JOINED_AT, layout::timestamp(joined_at))?;
    Ok(())
}

/// Appends a new entry map with the fields every entry has; the caller adds the rest.
fn append_entry(
    doc: &mut AutoCommit,
    collection: &str,
    id: &EntryId,
    author: &PersonId,
    now: Millis,
) -> Result<ObjId, DocError> {
    let list = layout::root_for_write(doc, collection, ObjType::List)?;
    let entry = doc.insert_object(&list, doc.length(&list), ObjType::Map)?;
    doc.put(&entry, layout::ID, id.as_str())?;
    doc.put(&entry, layout::AUTHOR, author.as_str())?;
    doc.put(&entry, layout::CREATED_AT, layout::timestamp(now))?;
    Ok(entry)
}

fn put_tags(doc: &mut AutoCommit, entry: &ObjId, tags: &[String]) -> Result<(), DocError> {
    // The list is replaced whole: tags are edited as one field, last writer wins.
    let list = doc.put_object(entry, layout::TAGS, ObjType::List)?;
    for (i, tag) in tags.iter().enumerate() {
        doc.insert(&list, i, tag.as_str())?;
    }
    Ok(())
}

/// The map of the entry with this id in one of the root lists.
fn find_entry_object(doc: &AutoCommit, collection: &str, id: &EntryId) -> Option<ObjId> {
    layout::root_objects(doc, collection, ObjType::List)
        .iter()
        .flat_map(|list| layout::list_maps(doc, list))
        .find(|entry| {
            matches!(
                doc.get(entry, layout::ID),
                Ok(Some((automerge::Value::Scalar(s), _))) if s.as_str() == Some(id.as_str())
            )
        })
}
