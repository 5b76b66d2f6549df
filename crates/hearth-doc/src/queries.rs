//! Typed views of the document: people, entries, check-ins, trends, lookups by handle.
//!
//! Every view is rebuilt from the document on each call and sorted by content (time, then
//! id), never by where Automerge happened to put things, so two devices holding the same
//! changes show exactly the same list. Unreadable entries are skipped one by one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValueRef, ValueRef};

use crate::checkins;
use crate::deck::Deck;
use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout::{self, Stored};
use crate::model::{
    Appreciation, Checkin, Commitment, CommitmentStatus, Feedback, JournalEntry, Person, Reply,
    TrendPoint,
};
use crate::records::{
    AppreciationRecord, CommitmentRecord, FeedbackRecord, IdOnly, JournalRecord, PersonRecord,
    ReplyRecord,
};
use crate::space::SpaceDoc;
use crate::week::Week;

/// The shortest suffix of an id [`SpaceDoc::find_entry`] accepts.
pub const MIN_HANDLE_LEN: usize = 4;

impl SpaceDoc {
    /// Everyone in the space, by `joined_at`, then id.
    ///
    /// A person is listed even when their record is damaged (with an empty name), because
    /// leaving someone out would reveal check-in answers before they have answered.
    pub fn people(&self) -> Vec<Person> {
        let mut people: BTreeMap<PersonId, Person> = BTreeMap::new();
        for map in layout::root_objects(&self.doc, layout::PEOPLE, ObjType::Map) {
            for item in self.doc.map_range(&map, ..) {
                let Ok(id) = item.key.parse::<PersonId>() else {
                    continue;
                };
                if people.contains_key(&id) {
                    continue;
                }
                let record = match &item.value {
                    ValueRef::Object(ObjType::Map) => {
                        Stored::Value(layout::object_json(&self.doc, &item.id(), ObjType::Map, 0))
                            .decode::<PersonRecord>()
                    }
                    ValueRef::Scalar(ScalarValueRef::Str(text)) => {
                        Stored::Text(Cow::Borrowed(text.as_ref())).decode::<PersonRecord>()
                    }
                    _ => None,
                };
                let (name, joined_at) = record.map_or((None, None), |r| (r.name, r.joined_at));
                people.insert(
                    id.clone(),
                    Person {
                        id,
                        name: name.unwrap_or_default(),
                        joined_at: joined_at.unwrap_or(Millis(0)),
                    },
                );
            }
        }
        let mut people: Vec<Person> = people.into_values().collect();
        people.sort_by(|a, b| (a.joined_at, &a.id).cmp(&(b.joined_at, &b.id)));
        people
    }

    /// One person, if they are in the space.
    pub fn person(&self, id: &PersonId) -> Option<Person> {
        self.people().into_iter().find(|p| p.id == *id)
    }

    /// All appreciations, by `created_at`, then id.
    pub fn appreciations(&self) -> Vec<Appreciation> {
        let mut out: Vec<Appreciation> = layout::list_entries(&self.doc, layout::APPRECIATIONS)
            .iter()
            .filter_map(Stored::decode::<AppreciationRecord>)
            .map(|r| Appreciation {
                id: r.id,
                author: r.author,
                text: r.text,
                created_at: r.created_at,
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        dedup_by_id(&mut out, |a| &a.id);
        out
    }

    /// All feedback with its replies, by `created_at`, then id.
    pub fn feedback(&self) -> Vec<Feedback> {
        let mut replies: HashMap<EntryId, Vec<Reply>> = HashMap::new();
        for r in layout::list_entries(&self.doc, layout::REPLIES)
            .iter()
            .filter_map(Stored::decode::<ReplyRecord>)
        {
            if let Some(feedback) = r.feedback.clone() {
                replies.entry(feedback).or_default().push(reply(r));
            }
        }
        let mut out: Vec<Feedback> = layout::list_entries(&self.doc, layout::FEEDBACK)
            .iter()
            .filter_map(Stored::decode::<FeedbackRecord>)
            .map(|r| {
                let mut thread: Vec<Reply> = r.replies.into_iter().map(reply).collect();
                thread.extend(replies.remove(&r.id).unwrap_or_default());
                // By content, like every view, so both devices agree even on replies
                // written in the same millisecond.
                thread.sort_by(|a, b| {
                    (a.created_at, &a.author, a.kind, &a.text).cmp(&(
                        b.created_at,
                        &b.author,
                        b.kind,
                        &b.text,
                    ))
                });
                Feedback {
                    id: r.id,
                    author: r.author,
                    observation: r.observation.unwrap_or_default(),
                    feeling: r.feeling.unwrap_or_default(),
                    need: r.need.unwrap_or_default(),
                    request: r.request.unwrap_or_default(),
                    created_at: r.created_at,
                    replies: thread,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        dedup_by_id(&mut out, |f| &f.id);
        out
    }

    /// The shared journal, by `created_at`, then id, with edits applied.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.journal_with(&Edits::read(&self.doc))
    }

    pub(crate) fn journal_with(&self, edits: &Edits<'_>) -> Vec<JournalEntry> {
        let mut out: Vec<JournalEntry> = layout::list_entries(&self.doc, layout::JOURNAL)
            .iter()
            .filter_map(Stored::decode::<JournalRecord>)
            .map(|r| journal_entry(r, edits))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        dedup_by_id(&mut out, |j| &j.id);
        out
    }

    /// All commitments, by `created_at`, then id, with their current status.
    pub fn commitments(&self) -> Vec<Commitment> {
        self.commitments_with(&Edits::read(&self.doc))
    }

    /// Commitments written as records (by hearth before sealing) and those inside the
    /// check-in answers this device can read.
    pub(crate) fn commitments_with(&self, edits: &Edits<'_>) -> Vec<Commitment> {
        let mut out: Vec<Commitment> = layout::list_entries(&self.doc, layout::COMMITMENTS)
            .iter()
            .filter_map(Stored::decode::<CommitmentRecord>)
            .filter_map(|r| commitment(r, edits))
            .collect();
        out.extend(checkins::commitments_in(&self.checkins(), |id| {
            edits
                .get(id, layout::STATUS)
                .map(|v| layout::scalar_str(v).and_then(|s| s.parse().ok()))
        }));
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        dedup_by_id(&mut out, |c| &c.id);
        out
    }

    /// `person`'s commitments that have not been followed up yet, oldest first.
    pub fn open_commitments(&self, person: &PersonId) -> Vec<Commitment> {
        self.commitments()
            .into_iter()
            .filter(|c| c.author == *person && c.status == CommitmentStatus::Open)
            .collect()
    }

    /// Every week's check-in, by week.
    ///
    /// Check-ins opened for the same week on different devices are merged. If one person
    /// somehow submitted twice for a week (two of their devices, both offline), the earlier
    /// submission is shown.
    pub fn checkins(&self) -> Vec<Checkin> {
        self.settled(None)
    }

    /// The check-in for one week, if anyone has submitted.
    pub fn checkin(&self, week: Week) -> Option<Checkin> {
        self.settled(Some(week)).into_iter().next()
    }

    fn settled(&self, week: Option<Week>) -> Vec<Checkin> {
        let reveals = checkins::reveals(&self.doc, week);
        // Each deck is looked up (and a couple's own parsed) once, however many weeks use it.
        let mut decks: HashMap<String, Option<Deck>> = HashMap::new();
        checkins::merge(checkins::raw_checkins(&self.doc, true, week))
            .into_iter()
            .map(|c| {
                let released = reveals.get(&c.week).map_or(&[][..], Vec::as_slice);
                let deck = decks
                    .entry(c.deck.clone())
                    .or_insert_with(|| self.deck(&c.deck));
                checkins::settle(&c, deck.as_ref(), released, &self.own_keys)
            })
            .collect()
    }

    /// The weekly `feeling` scores per person, by week; weeks without any score are left
    /// out.
    pub fn trend(&self) -> Vec<TrendPoint> {
        self.checkins()
            .into_iter()
            .filter_map(|c| {
                let feeling: BTreeMap<PersonId, u8> = c
                    .submissions
                    .into_iter()
                    .filter_map(|(p, s)| Some((p, s.answers?.scale("feeling")?)))
                    .collect();
                (!feeling.is_empty()).then_some(TrendPoint {
                    week: c.week,
                    feeling,
                })
            })
            .collect()
    }

    /// Finds an appreciation, feedback, journal entry or commitment by its full id or by a
    /// unique suffix of at least [`MIN_HANDLE_LEN`] characters (the UI shows the last 8, see
    /// [`EntryId::short`]). Case does not matter.
    ///
    /// # Errors
    ///
    /// [`DocError::HandleTooShort`], [`DocError::NotFound`], or [`DocError::Ambiguous`]
    /// listing every match.
    pub fn find_entry(&self, handle: &str) -> Result<EntryId, DocError> {
        let wanted = handle.trim().to_ascii_lowercase();
        if wanted.chars().count() < MIN_HANDLE_LEN {
            return Err(DocError::HandleTooShort {
                handle: handle.to_owned(),
            });
        }
        let ids = entry_ids(&self.doc);
        if let Some(exact) = ids.iter().find(|id| id.as_str() == wanted) {
            return Ok(exact.clone());
        }
        let mut matches: Vec<EntryId> = ids
            .into_iter()
            .filter(|id| id.as_str().ends_with(&wanted))
            .collect();
        match matches.len() {
            0 => Err(DocError::NotFound {
                what: "entry",
                handle: handle.to_owned(),
            }),
            1 => Ok(matches.remove(0)),
            _ => Err(DocError::Ambiguous {
                handle: handle.to_owned(),
                candidates: matches,
            }),
        }
    }
}

/// The same entry can only appear twice through a bug or a hand-edited document; showing it
/// once keeps lookups by id unambiguous. Expects `items` sorted, so the kept copy is the
/// same everywhere.
fn dedup_by_id<T>(items: &mut Vec<T>, id: impl Fn(&T) -> &EntryId) {
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        items
            .iter()
            .map(|item| seen.insert(id(item).as_str()))
            .collect()
    };
    if keep.iter().all(|k| *k) {
        return;
    }
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(true));
}

fn reply(r: ReplyRecord) -> Reply {
    Reply {
        author: r.author,
        kind: r.kind,
        text: r.text,
        created_at: r.created_at,
    }
}

/// The `edits` map, indexed by entry id.
pub(crate) struct Edits<'a> {
    by_entry: HashMap<Cow<'a, str>, Vec<(Cow<'a, str>, ScalarValueRef<'a>)>>,
}

impl<'a> Edits<'a> {
    pub(crate) fn read(doc: &'a AutoCommit) -> Edits<'a> {
        let mut by_entry: HashMap<Cow<'a, str>, Vec<(Cow<'a, str>, ScalarValueRef<'a>)>> =
            HashMap::new();
        for (key, value) in layout::map_scalars(doc, layout::EDITS) {
            // Keys borrow from the document; splitting them must not copy every one.
            let split = match key {
                Cow::Borrowed(k) => k
                    .rsplit_once('/')
                    .map(|(e, f)| (Cow::Borrowed(e), Cow::Borrowed(f))),
                Cow::Owned(k) => k
                    .rsplit_once('/')
                    .map(|(e, f)| (Cow::Owned(e.to_owned()), Cow::Owned(f.to_owned()))),
            };
            if let Some((entry, field)) = split {
                by_entry.entry(entry).or_default().push((field, value));
            }
        }
        Edits { by_entry }
    }

    fn get(&self, entry: &EntryId, field: &str) -> Option<&ScalarValueRef<'a>> {
        self.get_str(entry.as_str(), field)
    }

    fn get_str(&self, entry: &str, field: &str) -> Option<&ScalarValueRef<'a>> {
        self.by_entry
            .get(entry)?
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v)
    }
}

/// A journal record with its edits applied. An edit of the wrong type is ignored.
pub(crate) fn journal_entry(r: JournalRecord, edits: &Edits<'_>) -> JournalEntry {
    let mut title = r.title;
    let mut body = r.body;
    let mut tags = r.tags;
    let mut edited_at = r.edited_at;
    match edits.get(&r.id, layout::TITLE) {
        Some(ScalarValueRef::Str(t)) => title = Some(t.to_string()),
        Some(ScalarValueRef::Null) => title = None,
        _ => {}
    }
    if let Some(b) = edits.get(&r.id, layout::BODY).and_then(layout::scalar_str) {
        body = b.to_owned();
    }
    if let Some(t) = edits
        .get(&r.id, layout::TAGS)
        .and_then(layout::scalar_str)
        .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
    {
        tags = t;
    }
    if let Some(at) = edits
        .get(&r.id, layout::EDITED_AT)
        .and_then(layout::scalar_millis)
    {
        edited_at = Some(at);
    }
    JournalEntry {
        id: r.id,
        author: r.author,
        created_at: r.created_at,
        title: title.filter(|t| !t.trim().is_empty()),
        body,
        tags,
        edited_at,
        private: false,
    }
}

/// A commitment record with its status edit applied; `None` for a status this version
/// does not know.
fn commitment(r: CommitmentRecord, edits: &Edits<'_>) -> Option<Commitment> {
    let status = match edits.get(&r.id, layout::STATUS) {
        Some(value) => layout::scalar_str(value)?.parse().ok()?,
        None => r.status,
    };
    Some(Commitment {
        id: r.id,
        author: r.author,
        text: r.text,
        week: r.week,
        status,
        created_at: r.created_at,
    })
}

/// The current state of one journal entry, without reading the others.
pub(crate) fn find_journal(doc: &AutoCommit, id: &EntryId) -> Option<JournalEntry> {
    let record = find_record::<JournalRecord>(doc, layout::JOURNAL, id, |r| &r.id)?;
    Some(journal_entry(record, &Edits::read(doc)))
}

/// Who raised the feedback `id`, if it exists.
pub(crate) fn feedback_author(doc: &AutoCommit, id: &EntryId) -> Option<PersonId> {
    find_record::<FeedbackRecord>(doc, layout::FEEDBACK, id, |r| &r.id).map(|r| r.author)
}

fn find_record<T: serde::de::DeserializeOwned>(
    doc: &AutoCommit,
    collection: &str,
    id: &EntryId,
    id_of: impl Fn(&T) -> &EntryId,
) -> Option<T> {
    layout::list_entries(doc, collection)
        .iter()
        .filter(|stored| stored.may_contain(id.as_str()))
        .filter_map(Stored::decode::<T>)
        .find(|record| id_of(record) == id)
}

/// Ids of every entry a handle can refer to, without decoding the rest of each entry.
fn entry_ids(doc: &AutoCommit) -> BTreeSet<EntryId> {
    [
        layout::APPRECIATIONS,
        layout::FEEDBACK,
        layout::JOURNAL,
        layout::COMMITMENTS,
    ]
    .into_iter()
    .flat_map(|collection| layout::list_entries(doc, collection))
    .filter_map(|stored| stored.decode::<IdOnly>())
    .map(|r| r.id)
    .collect()
}

#[cfg(test)]
mod tests;
