//! Typed views of the document: people, entries, check-ins, trends, lookups by handle.
//!
//! Every view is rebuilt from the document on each call and sorted by content (time, then
//! id), never by where Automerge happened to put things, so two devices holding the same
//! changes show exactly the same list. Unreadable entries are skipped one by one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::{AutoCommit, ScalarValueRef};

use crate::authors::Authors;
use crate::checkins;
use crate::deck::Deck;
use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout;
use crate::model::{
    Appreciation, Checkin, Commitment, CommitmentStatus, Feedback, JournalEntry, Person, Reply,
    ReplyKind, TrendPoint,
};
use crate::records::{
    AppreciationRecord, CommitmentRecord, FeedbackRecord, IdOnly, JournalRecord, ReplyRecord,
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
        let authors = self.authors();
        let mut people: Vec<Person> = authors
            .everyone()
            .map(|(_, named)| Person {
                id: named.id.clone(),
                name: named.name.clone().unwrap_or_default(),
                joined_at: named.joined_at.unwrap_or(Millis(0)),
            })
            .collect();
        people.sort_by(|a, b| (a.joined_at, &a.id).cmp(&(b.joined_at, &b.id)));
        people.dedup_by(|a, b| a.id == b.id);
        // Names are each person's own to choose, yours included: a partner who takes your
        // name must not read as you wherever hearth shows names.
        let me = authors.id_of(&self.writer());
        let mine = people
            .iter()
            .find(|p| p.id == me)
            .map(|p| normalized_name(&p.name));
        if let Some(mine) = mine.filter(|n| !n.is_empty()) {
            for p in people.iter_mut().filter(|p| p.id != me) {
                if normalized_name(&p.name) == mine {
                    p.name = format!("{} (partner)", p.name.trim());
                }
            }
        }
        people
    }

    /// Who wrote what, for this read (see `authors.rs`).
    pub(crate) fn authors(&self) -> Authors {
        Authors::read(&self.doc, &self.people)
    }

    /// One person, if they are in the space.
    pub fn person(&self, id: &PersonId) -> Option<Person> {
        self.people().into_iter().find(|p| p.id == *id)
    }

    /// All appreciations, by `created_at`, then id.
    pub fn appreciations(&self) -> Vec<Appreciation> {
        self.appreciations_with(&self.authors())
    }

    pub(crate) fn appreciations_with(&self, authors: &Authors) -> Vec<Appreciation> {
        let mut out: Vec<Appreciation> = layout::list_entries(&self.doc, layout::APPRECIATIONS)
            .iter()
            .filter_map(|item| {
                let r = item.stored.decode::<AppreciationRecord>()?;
                Some(Appreciation {
                    author: authors.attribute(&item.writer, &r.author)?,
                    id: r.id,
                    text: r.text,
                    created_at: r.created_at,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id, &a.author).cmp(&(b.created_at, &b.id, &b.author)));
        dedup_by_id(&mut out, |a| (&a.id, &a.author));
        out
    }

    /// All feedback with its replies, by `created_at`, then id.
    ///
    /// Replies are checked for their role: a reflection counts only from the listener
    /// (not the one who raised it), and "did I get it?" is answered only by the one who
    /// raised it; anything else is left out, whoever wrote it.
    pub fn feedback(&self) -> Vec<Feedback> {
        self.feedback_with(&self.authors())
    }

    pub(crate) fn feedback_with(&self, authors: &Authors) -> Vec<Feedback> {
        let mut replies: HashMap<EntryId, Vec<Reply>> = HashMap::new();
        for item in layout::list_entries(&self.doc, layout::REPLIES) {
            let Some(r) = item.stored.decode::<ReplyRecord>() else {
                continue;
            };
            let Some(author) = authors.attribute(&item.writer, &r.author) else {
                continue;
            };
            if let Some(feedback) = r.feedback.clone() {
                replies.entry(feedback).or_default().push(reply(r, author));
            }
        }
        let mut out: Vec<Feedback> = layout::list_entries(&self.doc, layout::FEEDBACK)
            .iter()
            .filter_map(|item| {
                let r = item.stored.decode::<FeedbackRecord>()?;
                let author = authors.attribute(&item.writer, &r.author)?;
                Some((r, author))
            })
            .map(|(r, author)| {
                // Replies nested in a first-layout entry carry no op of their own: they
                // count as the entry's writer's, so only that person's kinds of reply.
                let nested = r.replies.into_iter().map(|n| {
                    let by = author.clone();
                    reply(n, by)
                });
                // Every entry with this id gets the replies to it (a copy of someone's id
                // under another author must not take theirs); roles decide what shows.
                let mut thread: Vec<Reply> = nested
                    .chain(replies.get(&r.id).cloned().unwrap_or_default())
                    .filter(|reply| role_fits(reply, &author))
                    .collect();
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
                    author,
                    observation: r.observation.unwrap_or_default(),
                    feeling: r.feeling.unwrap_or_default(),
                    need: r.need.unwrap_or_default(),
                    request: r.request.unwrap_or_default(),
                    created_at: r.created_at,
                    replies: thread,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id, &a.author).cmp(&(b.created_at, &b.id, &b.author)));
        dedup_by_id(&mut out, |f| (&f.id, &f.author));
        out
    }

    /// The shared journal, by `created_at`, then id, with edits applied.
    pub fn journal(&self) -> Vec<JournalEntry> {
        let authors = self.authors();
        self.journal_with(&authors, &Edits::read(&self.doc, &authors))
    }

    pub(crate) fn journal_with(&self, authors: &Authors, edits: &Edits<'_>) -> Vec<JournalEntry> {
        let mut out: Vec<JournalEntry> = layout::list_entries(&self.doc, layout::JOURNAL)
            .iter()
            .filter_map(|item| {
                let r = item.stored.decode::<JournalRecord>()?;
                let author = authors.attribute(&item.writer, &r.author)?;
                Some(journal_entry(r, author, edits))
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id, &a.author).cmp(&(b.created_at, &b.id, &b.author)));
        dedup_by_id(&mut out, |j| (&j.id, &j.author));
        out
    }

    /// All commitments, by `created_at`, then id, with their current status.
    pub fn commitments(&self) -> Vec<Commitment> {
        let authors = self.authors();
        self.commitments_with(&authors, &Edits::read(&self.doc, &authors))
    }

    /// Commitments written as records (by hearth before sealing) and those inside the
    /// check-in answers this device can read. A status counts only as its author set it.
    pub(crate) fn commitments_with(&self, authors: &Authors, edits: &Edits<'_>) -> Vec<Commitment> {
        let mut out: Vec<Commitment> = layout::list_entries(&self.doc, layout::COMMITMENTS)
            .iter()
            .filter_map(|item| {
                let r = item.stored.decode::<CommitmentRecord>()?;
                let author = authors.attribute(&item.writer, &r.author)?;
                commitment(r, author, edits)
            })
            .collect();
        out.extend(checkins::commitments_in(
            &self.settled_with(authors, None),
            |id, author| {
                edits
                    .get(id, author, layout::STATUS)
                    .map(|v| layout::scalar_str(v).and_then(|s| s.parse().ok()))
            },
        ));
        out.sort_by(|a, b| (a.created_at, &a.id, &a.author).cmp(&(b.created_at, &b.id, &b.author)));
        dedup_by_id(&mut out, |c| (&c.id, &c.author));
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
        self.settled_with(&self.authors(), None)
    }

    /// The check-in for one week, if anyone has submitted.
    pub fn checkin(&self, week: Week) -> Option<Checkin> {
        self.settled_with(&self.authors(), Some(week))
            .into_iter()
            .next()
    }

    pub(crate) fn settled_with(&self, authors: &Authors, week: Option<Week>) -> Vec<Checkin> {
        let reveals = checkins::reveals(&self.doc, authors, week);
        let people: Vec<PersonId> = authors.everyone().map(|(_, n)| n.id.clone()).collect();
        // Each deck is looked up (and a couple's own parsed) once, however many weeks use it.
        let mut decks: HashMap<String, Option<Deck>> = HashMap::new();
        checkins::merge(checkins::raw_checkins(&self.doc, authors, true, week))
            .into_iter()
            .map(|c| {
                let released = reveals.get(&c.week).map_or(&[][..], Vec::as_slice);
                let deck = decks
                    .entry(c.deck.clone())
                    .or_insert_with(|| self.deck(&c.deck));
                checkins::settle(&c, deck.as_ref(), released, &self.own_keys, &people)
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
        let authors = self.authors();
        let ids = entry_ids(&self.doc, &authors);
        if let Some(exact) = ids.keys().find(|id| id.as_str() == wanted) {
            return Ok(exact.clone());
        }
        let mut matches: Vec<EntryId> = ids
            .keys()
            .filter(|id| id.as_str().ends_with(&wanted))
            .cloned()
            .collect();
        if matches.len() > 1 {
            // A partner can mint an id that ends like one of yours: your own entry is the
            // one your handle means.
            let me = authors.id_of(&self.writer());
            let own: Vec<EntryId> = matches
                .iter()
                .filter(|id| ids[*id].contains(&me))
                .cloned()
                .collect();
            if own.len() == 1 {
                matches = own;
            }
        }
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
/// same everywhere. An entry is its id *and* its author: a copy of someone's id under
/// another author is that other author's entry, and never hides the original.
fn dedup_by_id<T>(items: &mut Vec<T>, id: impl Fn(&T) -> (&EntryId, &PersonId)) {
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        items
            .iter()
            .map(|item| {
                let (entry, author) = id(item);
                seen.insert((entry.as_str(), author.as_str()))
            })
            .collect()
    };
    if keep.iter().all(|k| *k) {
        return;
    }
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(true));
}

/// A display name as compared for look-alikes: trimmed, case and inner spacing ignored.
fn normalized_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether a reply's kind fits its author's role in the thread raised by `speaker`.
fn role_fits(reply: &Reply, speaker: &PersonId) -> bool {
    match reply.kind {
        ReplyKind::Reflect => reply.author != *speaker,
        ReplyKind::Acknowledge => reply.author == *speaker,
        ReplyKind::Respond => true,
    }
}

fn reply(r: ReplyRecord, author: PersonId) -> Reply {
    Reply {
        author,
        kind: r.kind,
        text: r.text,
        created_at: r.created_at,
    }
}

/// The edits of one entry: field, value, and the person who wrote it.
type EntryEdits<'a> = Vec<(Cow<'a, str>, ScalarValueRef<'a>, PersonId)>;

/// The `edits` maps (each person's and the first layout's), indexed by entry id, each edit
/// with the person who wrote it: an edit counts only as the entry's author's.
pub(crate) struct Edits<'a> {
    by_entry: HashMap<Cow<'a, str>, EntryEdits<'a>>,
}

impl<'a> Edits<'a> {
    pub(crate) fn read(doc: &'a AutoCommit, authors: &Authors) -> Edits<'a> {
        let mut by_entry: HashMap<Cow<'a, str>, EntryEdits<'a>> = HashMap::new();
        for (key, value, writer) in layout::map_scalars(doc, layout::EDITS) {
            let Some(by) = authors.person(&writer).map(|k| authors.id_of(&k)) else {
                continue;
            };
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
                by_entry.entry(entry).or_default().push((field, value, by));
            }
        }
        Edits { by_entry }
    }

    /// The edit of `field` of `entry` made by `author`'s person: in a container the first
    /// (each person has one), in the first layout the latest.
    fn get(&self, entry: &EntryId, author: &PersonId, field: &str) -> Option<&ScalarValueRef<'a>> {
        let mut found = None;
        for (f, v, by) in self.by_entry.get(entry.as_str())? {
            if f == field && by == author {
                found = Some(v);
            }
        }
        found
    }
}

/// A journal record with its edits applied. An edit of the wrong type is ignored.
pub(crate) fn journal_entry(r: JournalRecord, author: PersonId, edits: &Edits<'_>) -> JournalEntry {
    let mut title = r.title;
    let mut body = r.body;
    let mut tags = r.tags;
    let mut edited_at = r.edited_at;
    match edits.get(&r.id, &author, layout::TITLE) {
        Some(ScalarValueRef::Str(t)) => title = Some(t.to_string()),
        Some(ScalarValueRef::Null) => title = None,
        _ => {}
    }
    if let Some(b) = edits
        .get(&r.id, &author, layout::BODY)
        .and_then(layout::scalar_str)
    {
        body = b.to_owned();
    }
    if let Some(t) = edits
        .get(&r.id, &author, layout::TAGS)
        .and_then(layout::scalar_str)
        .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
    {
        tags = t;
    }
    if let Some(at) = edits
        .get(&r.id, &author, layout::EDITED_AT)
        .and_then(layout::scalar_millis)
    {
        edited_at = Some(at);
    }
    JournalEntry {
        id: r.id,
        author,
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
fn commitment(r: CommitmentRecord, author: PersonId, edits: &Edits<'_>) -> Option<Commitment> {
    let status = match edits.get(&r.id, &author, layout::STATUS) {
        Some(value) => layout::scalar_str(value)?.parse().ok()?,
        None => r.status,
    };
    Some(Commitment {
        id: r.id,
        author,
        text: r.text,
        week: r.week,
        status,
        created_at: r.created_at,
    })
}

/// The current state of `author`'s journal entry `id`, without reading the others.
pub(crate) fn find_journal(
    doc: &AutoCommit,
    authors: &Authors,
    id: &EntryId,
    author: &PersonId,
) -> Option<JournalEntry> {
    let edits = Edits::read(doc, authors);
    layout::list_entries(doc, layout::JOURNAL)
        .iter()
        .filter(|item| item.stored.may_contain(id.as_str()))
        .filter_map(|item| {
            let r = item.stored.decode::<JournalRecord>()?;
            let by = authors.attribute(&item.writer, &r.author)?;
            (r.id == *id && by == *author).then(|| journal_entry(r, by, &edits))
        })
        .next()
}

/// Who may have raised the feedback `id`: everyone whose entry has that id (normally one).
pub(crate) fn feedback_authors(doc: &AutoCommit, authors: &Authors, id: &EntryId) -> Vec<PersonId> {
    layout::list_entries(doc, layout::FEEDBACK)
        .iter()
        .filter(|item| item.stored.may_contain(id.as_str()))
        .filter_map(|item| {
            let r = item.stored.decode::<FeedbackRecord>()?;
            (r.id == *id).then(|| authors.attribute(&item.writer, &r.author))?
        })
        .collect()
}

/// Ids of every entry a handle can refer to, with who wrote each (entries attributed to
/// no one are left out), without decoding the rest of each entry.
fn entry_ids(doc: &AutoCommit, authors: &Authors) -> BTreeMap<EntryId, BTreeSet<PersonId>> {
    let mut out: BTreeMap<EntryId, BTreeSet<PersonId>> = BTreeMap::new();
    for collection in [
        layout::APPRECIATIONS,
        layout::FEEDBACK,
        layout::JOURNAL,
        layout::COMMITMENTS,
    ] {
        for item in layout::list_entries(doc, collection) {
            let Some(r) = item.stored.decode::<IdOnly>() else {
                continue;
            };
            let Some(author) = authors.attribute(&item.writer, &r.author) else {
                continue;
            };
            out.entry(r.id).or_default().insert(author);
        }
    }
    out
}

#[cfg(test)]
mod tests;
