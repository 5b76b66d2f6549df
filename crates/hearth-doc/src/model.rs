//! The typed records a couple writes, as every other crate sees them.
//!
//! These are plain values, detached from Automerge: the client renders them, exports them
//! as JSON and keeps private journal entries in its own store with the same shape. Serde
//! names are the stable snake_case field names, since `hearth export` and `--json` output
//! are read by people and scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::DocError;
use crate::ids::{EntryId, Millis, PersonId};
use crate::week::Week;

/// A partner in the space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Stable id, shared by all of this person's devices.
    pub id: PersonId,
    /// The name the partner chose.
    pub name: String,
    /// When they joined the space.
    pub joined_at: Millis,
}

/// A small, specific thank-you.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appreciation {
    /// Entry id.
    pub id: EntryId,
    /// Who said thank you.
    pub author: PersonId,
    /// What they appreciated.
    pub text: String,
    /// When it was written.
    pub created_at: Millis,
}

/// Kind feedback before it is written: the four-part form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeedbackDraft {
    /// "When I noticed…": what happened, as a camera would have seen it.
    pub observation: String,
    /// "…I felt…".
    pub feeling: String,
    /// "…because I need…".
    pub need: String,
    /// "Would you be willing to…?" — a request, which may be declined.
    pub request: String,
}

/// One piece of kind feedback and the conversation under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Entry id.
    pub id: EntryId,
    /// Who raised it.
    pub author: PersonId,
    /// "When I noticed…".
    pub observation: String,
    /// "…I felt…".
    pub feeling: String,
    /// "…because I need…".
    pub need: String,
    /// "Would you be willing to…?".
    pub request: String,
    /// When it was raised.
    pub created_at: Millis,
    /// Replies, oldest first.
    pub replies: Vec<Reply>,
}

/// What a reply to feedback is doing, following the active-listening practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyKind {
    /// The listener reflects back: "What I'm hearing is…".
    Reflect,
    /// The speaker answers "Did I get it?", or either says "I hear you".
    Acknowledge,
    /// An answer to the request: yes, not now, or something else.
    Respond,
}

impl ReplyKind {
    /// Every kind, in the order a conversation usually goes.
    pub const ALL: [ReplyKind; 3] = [
        ReplyKind::Reflect,
        ReplyKind::Acknowledge,
        ReplyKind::Respond,
    ];

    /// The lowercase name used in storage, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Reflect => "reflect",
            ReplyKind::Acknowledge => "acknowledge",
            ReplyKind::Respond => "respond",
        }
    }
}

impl fmt::Display for ReplyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReplyKind {
    type Err = DocError;

    fn from_str(s: &str) -> Result<ReplyKind, DocError> {
        let wanted = s.trim();
        ReplyKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| DocError::Invalid {
                what: "reply kind",
                input: s.to_owned(),
                expected: "one of reflect, acknowledge, respond",
            })
    }
}

/// A reply under a piece of feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Who replied.
    pub author: PersonId,
    /// What the reply is doing.
    pub kind: ReplyKind,
    /// The reply itself.
    pub text: String,
    /// When it was written.
    pub created_at: Millis,
}

/// A journal entry before it is written (or the new content of an edit).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JournalDraft {
    /// An optional title; a blank title counts as none.
    pub title: Option<String>,
    /// The entry.
    pub body: String,
    /// Free-form tags; blanks and repeats are dropped, a leading `#` is removed.
    pub tags: Vec<String>,
}

impl JournalDraft {
    /// The draft as it will be stored: trimmed title (or none), body without surrounding
    /// blank lines, clean tags.
    pub fn normalized(&self) -> JournalDraft {
        JournalDraft {
            title: self
                .title
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            body: clean_body(&self.body).to_owned(),
            tags: clean_tags(&self.tags),
        }
    }
}

/// Leading blank lines and trailing whitespace go (an editor always leaves a newline), but
/// indentation of the first line stays: a poem may start indented.
pub(crate) fn clean_body(body: &str) -> &str {
    let start = body
        .char_indices()
        .scan(0, |line_start, (i, c)| {
            if c == '\n' {
                *line_start = i + 1;
            }
            Some((c, *line_start))
        })
        .find(|(c, _)| !c.is_whitespace())
        .map_or(body.len(), |(_, line_start)| line_start);
    body[start..].trim_end()
}

pub(crate) fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim().trim_start_matches('#').trim();
        if !tag.is_empty() && !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    out
}

/// A journal entry, shared or private.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Entry id.
    pub id: EntryId,
    /// Who wrote it.
    pub author: PersonId,
    /// When it was first written.
    pub created_at: Millis,
    /// Optional title.
    pub title: Option<String>,
    /// The entry.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// When it was last edited, if ever.
    pub edited_at: Option<Millis>,
    /// True for entries only their author can see; those never enter the shared document.
    #[serde(default)]
    pub private: bool,
}

impl JournalEntry {
    /// A private entry, for the client to keep in its own store, outside the document.
    pub fn new_private(author: PersonId, draft: JournalDraft, now: Millis) -> JournalEntry {
        let draft = draft.normalized();
        JournalEntry {
            id: EntryId::new(),
            author,
            created_at: now,
            title: draft.title,
            body: draft.body,
            tags: draft.tags,
            edited_at: None,
            private: true,
        }
    }
}

/// How a weekly commitment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitmentStatus {
    /// Not yet followed up.
    Open,
    /// It happened.
    Done,
    /// It partly happened.
    Partly,
    /// It did not happen, and that is fine to say.
    Dropped,
}

impl CommitmentStatus {
    /// Every status.
    pub const ALL: [CommitmentStatus; 4] = [
        CommitmentStatus::Open,
        CommitmentStatus::Done,
        CommitmentStatus::Partly,
        CommitmentStatus::Dropped,
    ];

    /// The lowercase name used in storage, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatus::Open => "open",
            CommitmentStatus::Done => "done",
            CommitmentStatus::Partly => "partly",
            CommitmentStatus::Dropped => "dropped",
        }
    }
}

impl fmt::Display for CommitmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommitmentStatus {
    type Err = DocError;

    fn from_str(s: &str) -> Result<CommitmentStatus, DocError> {
        let wanted = s.trim();
        CommitmentStatus::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| DocError::Invalid {
                what: "commitment status",
                input: s.to_owned(),
                expected: "one of open, done, partly, dropped",
            })
    }
}

/// "One small thing I'll do for us this week."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    /// Entry id.
    pub id: EntryId,
    /// Who committed.
    pub author: PersonId,
    /// The small thing.
    pub text: String,
    /// The check-in week it was made in.
    pub week: Week,
    /// How it went.
    pub status: CommitmentStatus,
    /// When it was made.
    pub created_at: Millis,
}

/// One answer to one check-in question.
///
/// Serialised without a tag (a number, a string or a list of strings) so exported answers
/// read naturally; reading one back yields `Scale`, `Text` or `List`, and the document
/// restores `Choice`/`Choices` from the deck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnswerValue {
    /// A number on the question's scale.
    Scale(u8),
    /// The key of one option.
    Choice(String),
    /// The keys of several options.
    Choices(Vec<String>),
    /// Free text.
    Text(String),
    /// Several free-text items.
    List(Vec<String>),
}

impl AnswerValue {
    /// The untyped reading of a JSON value: number -> `Scale`, string -> `Text`, array of
    /// strings -> `List`. Anything else is not an answer.
    pub(crate) fn from_json(value: &serde_json::Value) -> Option<AnswerValue> {
        match value {
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .map(AnswerValue::Scale),
            serde_json::Value::String(s) => Some(AnswerValue::Text(s.clone())),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(AnswerValue::List),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for AnswerValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AnswerValue, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        AnswerValue::from_json(&value).ok_or_else(|| {
            serde::de::Error::custom(
                "an answer must be a number from 0 to 255, a string or a list of strings",
            )
        })
    }
}

/// One person's answers to a check-in, by question key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Answers(pub BTreeMap<String, AnswerValue>);

impl Answers {
    /// The answer to `key`, if given.
    pub fn get(&self, key: &str) -> Option<&AnswerValue> {
        self.0.get(key)
    }

    /// A scale answer.
    pub fn scale(&self, key: &str) -> Option<u8> {
        match self.get(key)? {
            AnswerValue::Scale(n) => Some(*n),
            _ => None,
        }
    }

    /// A text or single-choice answer.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            AnswerValue::Text(s) | AnswerValue::Choice(s) => Some(s),
            _ => None,
        }
    }

    /// A single-choice answer (the option key).
    pub fn choice(&self, key: &str) -> Option<&str> {
        self.text(key)
    }

    /// A list or multiple-choice answer.
    pub fn list(&self, key: &str) -> Option<&[String]> {
        match self.get(key)? {
            AnswerValue::List(items) | AnswerValue::Choices(items) => Some(items),
            _ => None,
        }
    }

    /// A multiple-choice answer (the option keys).
    pub fn choices(&self, key: &str) -> Option<&[String]> {
        self.list(key)
    }

    /// Sets the answer to `key`, replacing any earlier one.
    pub fn insert(&mut self, key: impl Into<String>, value: AnswerValue) {
        self.0.insert(key.into(), value);
    }

    /// True when nothing was answered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The answers in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AnswerValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Where one person's answers to a check-in stand.
///
/// Answers are sealed when submitted (by [`hearth_crypto::answers`]): encrypted under a key only the
/// submitting device holds, with a commitment that binds them. That device releases the key
/// once it sees the partner's sealed answers for the same week, naming the commitment it
/// saw. Readers trust only what the keys and commitments prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seal {
    /// Written by a hearth from before sealing: readable by both as soon as it arrives.
    Unsealed,
    /// Sealed, and its key has not been released yet. Only the device that sealed it can
    /// read it.
    Sealed,
    /// The key was released and opens exactly what was sealed.
    Open,
    /// The partner released their key against other sealed answers than these: these were
    /// put in place after the partner's answers were opened to their author. Never shown.
    Replaced,
    /// A key was released that does not open these sealed answers. Never shown.
    Mismatch,
}

impl Seal {
    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Seal::Unsealed => "unsealed",
            Seal::Sealed => "sealed",
            Seal::Open => "open",
            Seal::Replaced => "replaced",
            Seal::Mismatch => "mismatch",
        }
    }

    /// Whether both partners may read the answers.
    pub fn is_open(self) -> bool {
        matches!(self, Seal::Open | Seal::Unsealed)
    }
}

impl fmt::Display for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person's submitted check-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// Who answered.
    pub person: PersonId,
    /// When they submitted.
    pub submitted_at: Millis,
    /// Whether the answers are sealed, open, or broken.
    pub seal: Seal,
    /// When the key that opens them was released, if it was.
    pub released_at: Option<Millis>,
    /// What they answered, when this device can read it: the answers are open, or they
    /// are this device's own sealed answers (it holds the key). `None` otherwise.
    pub answers: Option<Answers>,
}

impl Submission {
    /// The answers, when readable here.
    pub fn readable(&self) -> Option<&Answers> {
        self.answers.as_ref()
    }
}

/// A week's check-in, with everyone's submissions so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkin {
    /// The week.
    pub week: Week,
    /// The id of the deck the questions came from (`weekly-v1`). Serialised as `template`,
    /// as the document stores it.
    #[serde(rename = "template")]
    pub deck: String,
    /// Submissions by person.
    pub submissions: BTreeMap<PersonId, Submission>,
}

impl Checkin {
    /// Whether `person` has answered this week (sealed or not).
    pub fn submitted_by(&self, person: &PersonId) -> bool {
        self.submissions.contains_key(person)
    }

    /// Whether the answers are out for both: at least two people are in the space, every
    /// one of them has submitted, and every submission is open. Until then each partner
    /// reads only their own answers.
    pub fn revealed(&self, people: &[Person]) -> bool {
        people.len() >= 2
            && people.iter().all(|p| {
                self.submissions
                    .get(&p.id)
                    .is_some_and(|s| s.seal.is_open())
            })
    }
}

/// One week of the "how are we feeling" trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The week.
    pub week: Week,
    /// Each person's `feeling` answer (1–10), for those who gave one.
    pub feeling: BTreeMap<PersonId, u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_kinds_and_statuses_parse_and_print_lowercase() {
        for k in ReplyKind::ALL {
            assert_eq!(k.to_string().parse::<ReplyKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!("Reflect".parse::<ReplyKind>().unwrap(), ReplyKind::Reflect);
        let err = "agree".parse::<ReplyKind>().unwrap_err();
        assert!(err.to_string().contains("reflect, acknowledge, respond"));
        for s in CommitmentStatus::ALL {
            assert_eq!(s.to_string().parse::<CommitmentStatus>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("finished".parse::<CommitmentStatus>().is_err());
    }

    #[test]
    fn answers_serialise_plainly_and_read_back_loosely() {
        let mut a = Answers::default();
        a.insert("feeling", AnswerValue::Scale(8));
        a.insert("raise", AnswerValue::Choice("small".into()));
        a.insert(
            "need",
            AnswerValue::Choices(vec!["time".into(), "fun".into()]),
        );
        a.insert("appreciated", AnswerValue::List(vec!["the soup".into()]));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"appreciated":["the soup"],"feeling":8,"need":["time","fun"],"raise":"small"}"#
        );
        let back: Answers = serde_json::from_str(&json).unwrap();
        assert_eq!(back.scale("feeling"), Some(8));
        assert_eq!(back.choice("raise"), Some("small"));
        assert_eq!(back.choices("need").unwrap(), ["time", "fun"]);
        assert_eq!(back.list("appreciated").unwrap(), ["the soup"]);
        assert_eq!(back.text("feeling"), None);
        assert!(serde_json::from_str::<Answers>(r#"{"feeling":300}"#).is_err());
    }

    #[test]
    fn revealed_needs_two_people_who_both_submitted() {
        let a = Person {
            id: PersonId::random(),
            name: "Ana".into(),
            joined_at: Millis(1),
        };
        let b = Person {
            id: PersonId::random(),
            name: "Ben".into(),
            joined_at: Millis(2),
        };
        let mut c = Checkin {
            week: "2026-W47".parse().unwrap(),
            deck: "weekly-v1".into(),
            submissions: BTreeMap::new(),
        };
        let submit = |c: &mut Checkin, p: &Person| {
            c.submissions.insert(
                p.id.clone(),
                Submission {
                    person: p.id.clone(),
                    submitted_at: Millis(3),
                    seal: Seal::Open,
                    released_at: Some(Millis(4)),
                    answers: Some(Answers::default()),
                },
            );
        };
        submit(&mut c, &a);
        assert!(c.submitted_by(&a.id));
        assert!(
            !c.revealed(std::slice::from_ref(&a)),
            "alone is never revealed"
        );
        assert!(!c.revealed(&[a.clone(), b.clone()]));
        submit(&mut c, &b);
        assert!(c.revealed(&[a, b]));
    }

    #[test]
    fn journal_drafts_are_normalised_and_private_entries_are_marked() {
        let draft = JournalDraft {
            title: Some("   ".into()),
            body: "\n\n  an indented first line\nsecond\n\n".into(),
            tags: vec!["#walks".into(), " walks ".into(), "".into(), "us".into()],
        };
        let me = PersonId::random();
        let e = JournalEntry::new_private(me.clone(), draft, Millis(5));
        assert!(e.private);
        assert_eq!(e.author, me);
        assert_eq!(e.title, None);
        assert_eq!(e.body, "  an indented first line\nsecond");
        assert_eq!(e.tags, ["walks", "us"]);
        let json = serde_json::to_value(&e).unwrap();
        let mut without_flag = json.clone();
        without_flag.as_object_mut().unwrap().remove("private");
        let back: JournalEntry = serde_json::from_value(without_flag).unwrap();
        assert!(
            !back.private,
            "entries from older exports default to shared"
        );
    }
}
