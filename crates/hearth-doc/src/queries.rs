//! Typed views of the document: people, entries, check-ins, trends, lookups by handle.
//!
//! Every view is rebuilt from the document on each call and sorted by content (time, then
//! id), never by where Automerge happened to put things, so two devices holding the same
//! changes show exactly the same list. Malformed entries are skipped one by one.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ValueRef};

use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout::{self, Fields};
use crate::model::{
    AnswerValue, Answers, Appreciation, Checkin, Commitment, CommitmentStatus, Feedback,
    JournalEntry, Person, Reply, ReplyKind, Submission, TrendPoint,
};
use crate::space::SpaceDoc;
use crate::template;
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
                let (name, joined_at) = match item.value {
                    ValueRef::Object(ObjType::Map) => {
                        let fields = Fields::read(&self.doc, &item.id());
                        (
                            fields.owned(layout::NAME).unwrap_or_default(),
                            fields.millis(layout::JOINED_AT).unwrap_or(Millis(0)),
                        )
                    }
                    _ => (String::new(), Millis(0)),
                };
                people.insert(
                    id.clone(),
                    Person {
                        id,
                        name,
                        joined_at,
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
        let mut out = entries(&self.doc, layout::APPRECIATIONS, |_, f, common| {
            Some(Appreciation {
                id: common.id,
                author: common.author,
                created_at: common.created_at,
                text: f.owned(layout::TEXT)?,
            })
        });
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    /// All feedback with its replies, by `created_at`, then id.
    pub fn feedback(&self) -> Vec<Feedback> {
        let mut out = entries(&self.doc, layout::FEEDBACK, |doc, f, common| {
            // The four parts are required when writing, but a missing one is no reason to
            // hide the rest of what someone said.
            let part = |key| f.owned(key).unwrap_or_default();
            let replies = f
                .object(layout::REPLIES, ObjType::List)
                .map(|list| replies(doc, &list))
                .unwrap_or_default();
            Some(Feedback {
                id: common.id,
                author: common.author,
                created_at: common.created_at,
                observation: part(layout::OBSERVATION),
                feeling: part(layout::FEELING),
                need: part(layout::NEED),
                request: part(layout::REQUEST),
                replies,
            })
        });
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    /// The shared journal, by `created_at`, then id.
    pub fn journal(&self) -> Vec<JournalEntry> {
        let mut out = entries(&self.doc, layout::JOURNAL, |doc, f, common| {
            Some(JournalEntry {
                id: common.id,
                author: common.author,
                created_at: common.created_at,
                title: f.owned(layout::TITLE).filter(|t| !t.is_empty()),
                body: f.owned(layout::BODY)?,
                tags: f
                    .object(layout::TAGS, ObjType::List)
                    .map(|list| layout::string_list(doc, &list))
                    .unwrap_or_default(),
                edited_at: f.millis(layout::EDITED_AT),
                private: false,
            })
        });
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    /// All commitments, by `created_at`, then id.
    pub fn commitments(&self) -> Vec<Commitment> {
        let mut out: Vec<Commitment> = commitment_objects(&self.doc)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
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
        merge_checkins(raw_checkins(&self.doc, true))
    }

    /// The check-in for one week, if anyone has submitted.
    pub fn checkin(&self, week: Week) -> Option<Checkin> {
        let raw = raw_checkins(&self.doc, true)
            .into_iter()
            .filter(|c| c.week == week)
            .collect();
        merge_checkins(raw).into_iter().next()
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
                    .filter_map(|(p, s)| Some((p, s.answers.scale("feeling")?)))
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

/// The fields every entry has; an entry without them is skipped.
pub(crate) struct Common {
    pub(crate) id: EntryId,
    pub(crate) author: PersonId,
    pub(crate) created_at: Millis,
}

fn common(f: &Fields<'_>) -> Option<Common> {
    Some(Common {
        id: f.parse(layout::ID)?,
        author: f.parse(layout::AUTHOR)?,
        created_at: f.millis(layout::CREATED_AT)?,
    })
}

/// Reads every entry map of a root list with `read`, skipping those it rejects.
fn entries<T>(
    doc: &AutoCommit,
    collection: &str,
    read: impl Fn(&AutoCommit, &Fields<'_>, Common) -> Option<T>,
) -> Vec<T> {
    let mut out = Vec::new();
    for list in layout::root_objects(doc, collection, ObjType::List) {
        for entry in layout::list_maps(doc, &list) {
            let fields = Fields::read(doc, &entry);
            if let Some(value) = common(&fields).and_then(|c| read(doc, &fields, c)) {
                out.push(value);
            }
        }
    }
    out
}

fn replies(doc: &AutoCommit, list: &ObjId) -> Vec<Reply> {
    let mut out: Vec<Reply> = layout::list_maps(doc, list)
        .iter()
        .filter_map(|obj| {
            let f = Fields::read(doc, obj);
            Some(Reply {
                author: f.parse(layout::AUTHOR)?,
                kind: f.parse::<ReplyKind>(layout::KIND)?,
                text: f.owned(layout::TEXT)?,
                created_at: f.millis(layout::CREATED_AT)?,
            })
        })
        .collect();
    // Stable: replies written in the same millisecond keep their (deterministic) list order.
    out.sort_by_key(|r| r.created_at);
    out
}

/// Commitments with the map each one lives in, in document order.
pub(crate) fn commitment_objects(doc: &AutoCommit) -> Vec<(Commitment, ObjId)> {
    let mut out = Vec::new();
    for list in layout::root_objects(doc, layout::COMMITMENTS, ObjType::List) {
        for entry in layout::list_maps(doc, &list) {
            let f = Fields::read(doc, &entry);
            let Some(common) = common(&f) else { continue };
            // A status this version does not know (from a newer partner) hides the entry
            // rather than guessing, which could overwrite it.
            let status = match f.string(layout::STATUS) {
                None => Some(CommitmentStatus::Open),
                Some(s) => s.parse().ok(),
            };
            let (Some(status), Some(text), Some(week)) =
                (status, f.owned(layout::TEXT), f.parse::<Week>(layout::WEEK))
            else {
                continue;
            };
            out.push((
                Commitment {
                    id: common.id,
                    author: common.author,
                    created_at: common.created_at,
                    text,
                    week,
                    status,
                },
                entry,
            ));
        }
    }
    out
}

/// Ids of every entry a handle can refer to, without reading the rest of each entry.
fn entry_ids(doc: &AutoCommit) -> BTreeSet<EntryId> {
    let mut ids = BTreeSet::new();
    for collection in [
        layout::APPRECIATIONS,
        layout::FEEDBACK,
        layout::JOURNAL,
        layout::COMMITMENTS,
    ] {
        for list in layout::root_objects(doc, collection, ObjType::List) {
            for entry in layout::list_maps(doc, &list) {
                if let Some(id) = Fields::read(doc, &entry).parse::<EntryId>(layout::ID) {
                    ids.insert(id);
                }
            }
        }
    }
    ids
}

/// A check-in map as stored, before check-ins for the same week are merged.
pub(crate) struct RawCheckin {
    pub(crate) id: String,
    pub(crate) week: Week,
    pub(crate) template: String,
    pub(crate) opened_at: Millis,
    /// The `answers` map, where submissions go.
    pub(crate) answers: Option<ObjId>,
    pub(crate) submissions: Vec<Submission>,
}

/// Reads every check-in map. Without `with_answers` the answer JSON is not parsed (the
/// timeline only needs who submitted when).
pub(crate) fn raw_checkins(doc: &AutoCommit, with_answers: bool) -> Vec<RawCheckin> {
    let mut out = Vec::new();
    for map in layout::root_objects(doc, layout::CHECKINS, ObjType::Map) {
        for item in doc.map_range(&map, ..) {
            if item.value != ValueRef::Object(ObjType::Map) {
                continue;
            }
            let f = Fields::read(doc, &item.id());
            let Some(week) = f.parse::<Week>(layout::WEEK) else {
                continue;
            };
            let template = f
                .owned(layout::TEMPLATE)
                .unwrap_or_else(|| template::WEEKLY_TEMPLATE_ID.to_owned());
            let answers = f.object(layout::ANSWERS, ObjType::Map);
            let submissions = answers
                .as_ref()
                .map(|a| submissions(doc, a, &template, with_answers))
                .unwrap_or_default();
            out.push(RawCheckin {
                id: item.key.into_owned(),
                week,
                template,
                opened_at: f.millis(layout::OPENED_AT).unwrap_or(Millis(0)),
                answers,
                submissions,
            });
        }
    }
    out
}

fn submissions(
    doc: &AutoCommit,
    answers_map: &ObjId,
    template_id: &str,
    with_answers: bool,
) -> Vec<Submission> {
    let template = if with_answers {
        template::template(template_id)
    } else {
        None
    };
    doc.map_range(answers_map, ..)
        .filter_map(|item| {
            let person: PersonId = item.key.parse().ok()?;
            if item.value != ValueRef::Object(ObjType::Map) {
                return None;
            }
            let f = Fields::read(doc, &item.id());
            let submitted_at = f.millis(layout::SUBMITTED_AT)?;
            // Unreadable answers still count as submitted: the partner is waiting on the
            // fact of the submission, and hiding it would keep the check-in closed forever.
            let mut answers = if with_answers {
                f.string(layout::ANSWERS)
                    .map(|json| parse_answers(&json))
                    .unwrap_or_default()
            } else {
                Answers::default()
            };
            if let Some(t) = &template {
                t.restore_kinds(&mut answers);
            }
            Some(Submission {
                person,
                submitted_at,
                answers,
            })
        })
        .collect()
}

/// Answers from their stored JSON, keeping every answer that reads and dropping the rest.
fn parse_answers(json: &str) -> Answers {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return Answers::default();
    };
    Answers(
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), AnswerValue::from_json(v)?)))
            .collect(),
    )
}

/// Groups stored check-ins by week. Within a week, check-ins are taken oldest first (then by
/// id) so the same one supplies the template, and the same submission wins, everywhere.
pub(crate) fn merge_checkins(mut raw: Vec<RawCheckin>) -> Vec<Checkin> {
    raw.sort_by(|a, b| (a.week, a.opened_at, &a.id).cmp(&(b.week, b.opened_at, &b.id)));
    let mut by_week: BTreeMap<Week, Checkin> = BTreeMap::new();
    for c in raw {
        let merged = by_week.entry(c.week).or_insert_with(|| Checkin {
            week: c.week,
            template: c.template.clone(),
            submissions: BTreeMap::new(),
        });
        for s in c.submissions {
            match merged.submissions.get(&s.person) {
                Some(existing) if existing.submitted_at <= s.submitted_at => {}
                _ => {
                    merged.submissions.insert(s.person.clone(), s);
                }
            }
        }
    }
    by_week
        .into_values()
        .filter(|c| !c.submissions.is_empty())
        .collect()
}
