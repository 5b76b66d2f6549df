//! Everything that happened in the space, as one list in time order.
//!
//! This is what `hearth log` prints and what `hearth log --json` emits, so the shape of a
//! serialised item is a public format: flat objects tagged by `kind`, e.g.
//! `{"at":1763900000000,"author":"…","kind":"appreciation","id":"…","text":"…"}`. Fields
//! may be added; existing ones keep their names.

use serde::{Deserialize, Serialize};

use crate::checkins;
use crate::ids::{EntryId, Millis, PersonId};
use crate::model::{CommitmentStatus, ReplyKind};
use crate::queries;
use crate::space::SpaceDoc;
use crate::week::Week;

/// One event in the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineItem {
    /// When it happened.
    pub at: Millis,
    /// Who did it.
    pub author: PersonId,
    /// What happened.
    #[serde(flatten)]
    pub kind: TimelineKind,
}

/// What happened, with the details worth showing. New kinds may be added, so matches need
/// a catch-all arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimelineKind {
    /// An appreciation was written.
    Appreciation {
        /// Entry id.
        id: EntryId,
        /// The appreciation.
        text: String,
    },
    /// Feedback was raised.
    Feedback {
        /// Entry id.
        id: EntryId,
        /// "When I noticed…".
        observation: String,
        /// "…I felt…".
        feeling: String,
        /// "…because I need…".
        need: String,
        /// "Would you be willing to…?".
        request: String,
    },
    /// Someone replied to feedback.
    Reply {
        /// The feedback replied to.
        feedback: EntryId,
        /// Reflect, acknowledge or respond. (Named `reply_kind` because `kind` is the tag.)
        reply_kind: ReplyKind,
        /// The reply.
        text: String,
    },
    /// A shared journal entry was written (the item carries its current content).
    Journal {
        /// Entry id.
        id: EntryId,
        /// Optional title.
        title: Option<String>,
        /// The entry.
        body: String,
        /// Tags.
        tags: Vec<String>,
        /// When it was last edited, if ever.
        edited_at: Option<Millis>,
    },
    /// Someone submitted their weekly check-in. Answers are not part of the timeline: they
    /// are shown only once both partners have submitted.
    CheckinSubmitted {
        /// The check-in week.
        week: Week,
    },
    /// Someone committed to one small thing (the item carries its current status).
    Commitment {
        /// Entry id.
        id: EntryId,
        /// The small thing.
        text: String,
        /// The week it was made in.
        week: Week,
        /// How it went.
        status: CommitmentStatus,
    },
}

impl TimelineItem {
    /// The entry this item is about: its own id, or for a reply the feedback's id. Check-in
    /// submissions have none.
    pub fn id(&self) -> Option<&EntryId> {
        match &self.kind {
            TimelineKind::Appreciation { id, .. }
            | TimelineKind::Feedback { id, .. }
            | TimelineKind::Journal { id, .. }
            | TimelineKind::Commitment { id, .. } => Some(id),
            TimelineKind::Reply { feedback, .. } => Some(feedback),
            TimelineKind::CheckinSubmitted { .. } => None,
        }
    }
}

impl SpaceDoc {
    /// Everything in the space, by time, then id (a reply sorts by its feedback's id;
    /// check-in submissions, which have none, come first among equals). Remaining ties keep
    /// a fixed order, so every device shows the same list.
    pub fn timeline(&self) -> Vec<TimelineItem> {
        let authors = self.authors();
        let edits = queries::Edits::read(&self.doc, &authors);
        let mut items = Vec::with_capacity(8192);
        for a in self.appreciations_with(&authors) {
            items.push(TimelineItem {
                at: a.created_at,
                author: a.author,
                kind: TimelineKind::Appreciation {
                    id: a.id,
                    text: a.text,
                },
            });
        }
        for f in self.feedback_with(&authors) {
            items.push(TimelineItem {
                at: f.created_at,
                author: f.author,
                kind: TimelineKind::Feedback {
                    id: f.id.clone(),
                    observation: f.observation,
                    feeling: f.feeling,
                    need: f.need,
                    request: f.request,
                },
            });
            for r in f.replies {
                items.push(TimelineItem {
                    at: r.created_at,
                    author: r.author,
                    kind: TimelineKind::Reply {
                        feedback: f.id.clone(),
                        reply_kind: r.kind,
                        text: r.text,
                    },
                });
            }
        }
        for j in self.journal_with(&authors, &edits) {
            items.push(TimelineItem {
                at: j.created_at,
                author: j.author,
                kind: TimelineKind::Journal {
                    id: j.id,
                    title: j.title,
                    body: j.body,
                    tags: j.tags,
                    edited_at: j.edited_at,
                },
            });
        }
        for c in checkins::merge(checkins::raw_checkins(&self.doc, &authors, false, None)) {
            for (person, subs) in c.submissions {
                let Some(s) = subs.first() else {
                    continue;
                };
                items.push(TimelineItem {
                    at: s.submitted_at,
                    author: person,
                    kind: TimelineKind::CheckinSubmitted { week: c.week },
                });
            }
        }
        for c in self.commitments_with(&authors, &edits) {
            items.push(TimelineItem {
                at: c.created_at,
                author: c.author,
                kind: TimelineKind::Commitment {
                    id: c.id,
                    text: c.text,
                    week: c.week,
                    status: c.status,
                },
            });
        }
        items.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| tiebreak(a).cmp(&tiebreak(b))));
        items
    }
}

fn tiebreak(item: &TimelineItem) -> (&str, &str, &str) {
    match &item.kind {
        TimelineKind::CheckinSubmitted { .. } => ("", "checkin", item.author.as_str()),
        _ => (
            item.id().map_or("", EntryId::as_str),
            kind_name(&item.kind),
            item.author.as_str(),
        ),
    }
}

fn kind_name(kind: &TimelineKind) -> &'static str {
    match kind {
        TimelineKind::Appreciation { .. } => "appreciation",
        TimelineKind::Feedback { .. } => "feedback",
        TimelineKind::Reply { .. } => "reply",
        TimelineKind::Journal { .. } => "journal",
        TimelineKind::CheckinSubmitted { .. } => "checkin_submitted",
        TimelineKind::Commitment { .. } => "commitment",
    }
}
