//! Reading check-ins: stored check-ins merged by week, each submission's seal settled, and
//! the commitments and follow-ups inside the answers anyone may read.
//!
//! A person normally has one submission a week, but two of their devices offline can each
//! add one, and a modified client can overwrite one. So every stored submission of a
//! person is a candidate, and the one that counts is settled like this, for person P:
//! - a released key is *valid* if it opens one of its author's candidates;
//! - if a partner's valid key names (as the commitment it saw) one of P's candidates, that
//!   one counts: it is what the partner committed against. If it names a commitment P no
//!   longer has, P's answers were swapped after the partner's were opened to P:
//!   [`Seal::Replaced`], never shown;
//! - else, if P has a valid key, the candidate it opens counts; else P's earliest one;
//! - the chosen candidate is [`Seal::Open`] if P's valid key opens it, [`Seal::Mismatch`] if
//!   P released keys but none opens it, [`Seal::Unsealed`] if it was written before
//!   sealing, else [`Seal::Sealed`] (readable only with the key the sealing device keeps).

use std::collections::{BTreeMap, HashMap};

use automerge::AutoCommit;

use crate::authors::{Authors, Writer};
use crate::authorship::PersonKey;
use crate::deck::Deck;
use crate::ids::{EntryId, Millis, PersonId};
use crate::layout::{self, Stored};
use crate::model::{Answers, Checkin, Commitment, CommitmentStatus, Seal, Submission};
use crate::records::{
    RevealRecord, SealedSubmission, SubmissionMeta, SubmissionRecord, answers_from_json,
};
use crate::space::OwnKey;
use crate::week::Week;
use hearth_crypto::answers::{self, Commitment as SealCommitment, SealKey, Sealed};

/// A submission's contents as stored.
pub(crate) enum Body {
    /// Answers from before sealing.
    Clear(serde_json::Value),
    /// Sealed answers.
    Sealed(Sealed),
    /// Not decoded (the timeline needs only who and when), or a damaged sealed part.
    Unread,
}

/// One person's submission as stored.
pub(crate) struct RawSubmission {
    pub(crate) submitted_at: Millis,
    pub(crate) body: Body,
}

impl RawSubmission {
    /// The commitment of sealed answers.
    pub(crate) fn commitment(&self) -> Option<SealCommitment> {
        match &self.body {
            Body::Sealed(s) => Some(s.commitment),
            _ => None,
        }
    }

    /// Earliest first, then by commitment: the same order on every device.
    fn order(&self) -> (Millis, Option<SealCommitment>) {
        (self.submitted_at, self.commitment())
    }
}

/// A check-in as stored, before check-ins for the same week are merged.
pub(crate) struct RawCheckin {
    pub(crate) id: String,
    pub(crate) week: Week,
    pub(crate) deck: String,
    pub(crate) opened_at: Millis,
    /// Every submission of each person, in no particular order.
    pub(crate) submissions: BTreeMap<PersonId, Vec<RawSubmission>>,
}

/// Reads the stored check-ins (of one week, or all) with their submissions. Without
/// `with_bodies` the answers are not decoded (the timeline only needs who submitted when).
///
/// A submission counts only as its writer's (`authors.rs`): in a person's container it is
/// that person's, and it belongs to a check-in of the same container; in the first layout it
/// is its key's person's only if a device of theirs wrote it.
pub(crate) fn raw_checkins(
    doc: &AutoCommit,
    authors: &Authors,
    with_bodies: bool,
    week: Option<Week>,
) -> Vec<RawCheckin> {
    use crate::records::CheckinRecord;
    let week_text = week.map(|w| w.to_string());
    // Check-ins by where they are and their id: a partner cannot hang answers on a
    // check-in of yours by reusing its id.
    let mut checkins: BTreeMap<(Option<PersonKey>, String), RawCheckin> = BTreeMap::new();
    for (id, item) in layout::map_entries(doc, layout::CHECKINS) {
        let place = container_of(&item.writer);
        if checkins.contains_key(&(place, id.to_string())) {
            continue;
        }
        if week_text
            .as_deref()
            .is_some_and(|w| !item.stored.may_contain(w))
        {
            continue;
        }
        let Some(record) = item.stored.decode::<CheckinRecord>() else {
            continue;
        };
        if week.is_some_and(|w| w != record.week) {
            continue;
        }
        let mut raw = RawCheckin {
            id: id.into_owned(),
            week: record.week,
            deck: record.deck,
            opened_at: record.opened_at.unwrap_or(Millis(0)),
            submissions: BTreeMap::new(),
        };
        // Answers nested in a first-layout check-in have no op of their own: they count
        // only as the check-in's writer's.
        for (person, value) in record.answers.unwrap_or_default() {
            let Ok(claimed) = person.parse::<PersonId>() else {
                continue;
            };
            let Some(person) = authors.attribute(&item.writer, &claimed) else {
                continue;
            };
            if let Some(s) = raw_submission(Stored::Value(value), with_bodies) {
                raw.submissions.entry(person).or_default().push(s);
            }
        }
        checkins.insert((place, raw.id.clone()), raw);
    }
    for (key, item) in layout::map_entries_all(doc, layout::SUBMISSIONS) {
        let Some((checkin, person)) = key.rsplit_once('/') else {
            continue;
        };
        let Ok(claimed) = person.parse::<PersonId>() else {
            continue;
        };
        let Some(person) = authors.attribute(&item.writer, &claimed) else {
            continue;
        };
        // Sealed answers are bound to the person named when sealing: the key must name
        // the writer, or they could not be read as theirs anyway.
        if person != claimed {
            continue;
        }
        let place = container_of(&item.writer);
        let Some(raw) = checkins.get_mut(&(place, checkin.to_owned())) else {
            continue;
        };
        if let Some(s) = raw_submission(item.stored, with_bodies) {
            raw.submissions.entry(person).or_default().push(s);
        }
    }
    checkins.into_values().collect()
}

/// The container a stored value is in, `None` for the first layout.
fn container_of(writer: &Writer) -> Option<PersonKey> {
    match writer {
        Writer::Container(key) => Some(*key),
        Writer::Op(_) => None,
    }
}

/// One submission. Unreadable answers still count as submitted: the partner is waiting on
/// the fact of the submission, and hiding it would keep the check-in closed forever.
fn raw_submission(stored: Stored<'_>, with_body: bool) -> Option<RawSubmission> {
    let submission = match (&stored, with_body) {
        (Stored::Bytes(bytes), true) => {
            // Sealed answers. A damaged record still counts as submitted.
            match SealedSubmission::decode(bytes) {
                Some(s) => RawSubmission {
                    submitted_at: s.submitted_at,
                    body: Body::Sealed(s.sealed),
                },
                None => RawSubmission {
                    submitted_at: SealedSubmission::submitted_at(bytes)?,
                    body: Body::Unread,
                },
            }
        }
        (Stored::Bytes(bytes), false) => RawSubmission {
            submitted_at: SealedSubmission::submitted_at(bytes)?,
            body: Body::Unread,
        },
        (_, true) => {
            let record = stored.decode::<SubmissionRecord>()?;
            RawSubmission {
                submitted_at: record.submitted_at,
                body: Body::Clear(record.answers),
            }
        }
        (_, false) => RawSubmission {
            submitted_at: stored.decode::<SubmissionMeta>()?.submitted_at,
            body: Body::Unread,
        },
    };
    Some(submission)
}

/// A week's check-in: every candidate submission of each person, earliest first, before
/// the one that counts is settled.
pub(crate) struct WeekCheckin {
    pub(crate) week: Week,
    pub(crate) deck: String,
    pub(crate) submissions: BTreeMap<PersonId, Vec<RawSubmission>>,
}

/// Groups stored check-ins by week. Within a week, check-ins are taken oldest first (then by
/// id) so the same one supplies the deck everywhere.
pub(crate) fn merge(mut raw: Vec<RawCheckin>) -> Vec<WeekCheckin> {
    raw.sort_by(|a, b| (a.week, a.opened_at, &a.id).cmp(&(b.week, b.opened_at, &b.id)));
    let mut by_week: BTreeMap<Week, WeekCheckin> = BTreeMap::new();
    for c in raw {
        let merged = by_week.entry(c.week).or_insert_with(|| WeekCheckin {
            week: c.week,
            deck: c.deck,
            submissions: BTreeMap::new(),
        });
        for (person, subs) in c.submissions {
            merged.submissions.entry(person).or_default().extend(subs);
        }
    }
    for c in by_week.values_mut() {
        for subs in c.submissions.values_mut() {
            subs.sort_by_key(RawSubmission::order);
            subs.dedup_by_key(|s| s.order());
        }
    }
    by_week
        .into_values()
        .filter(|c| !c.submissions.is_empty())
        .collect()
}

/// A released key, as read from the document.
pub(crate) type Reveal = RevealRecord;

/// Every released key, by week. Malformed records are skipped, and so is a key its writer
/// could not have released (one naming another person than the writer).
pub(crate) fn reveals(
    doc: &AutoCommit,
    authors: &Authors,
    week: Option<Week>,
) -> HashMap<Week, Vec<Reveal>> {
    let week_text = week.map(|w| w.to_string());
    let mut out: HashMap<Week, Vec<Reveal>> = HashMap::new();
    for item in layout::list_entries(doc, layout::REVEALS) {
        if week_text
            .as_deref()
            .is_some_and(|w| !item.stored.may_contain(w))
        {
            continue;
        }
        let Stored::Bytes(bytes) = &item.stored else {
            continue;
        };
        let Some(r) = RevealRecord::decode(bytes) else {
            continue;
        };
        if week.is_some_and(|w| w != r.week) {
            continue;
        }
        if authors.attribute(&item.writer, &r.person).as_ref() != Some(&r.person) {
            continue;
        }
        out.entry(r.week).or_default().push(r);
    }
    out
}

/// How one person's submissions for a week settled (see the module docs).
pub(crate) enum Choice<'a> {
    /// A partner committed against answers this person no longer has.
    Replaced,
    /// The submission that counts.
    Chosen {
        submission: &'a RawSubmission,
        /// The valid key that opens it, with the answers it opened.
        opened: Option<(&'a Reveal, Vec<u8>)>,
        /// The person released keys, but none opens this submission.
        mismatch: bool,
    },
}

/// Opens `person`'s sealed answers for `week` with `key`; `None` if the key is not the one
/// committed to, or the answers were moved from another week or person.
pub(crate) fn open_answers(
    week: Week,
    person: &PersonId,
    sealed: &Sealed,
    key: &SealKey,
) -> Option<Vec<u8>> {
    answers::open(&week.to_string(), person.as_str(), sealed, key)
}

/// Settles which submission of each person counts, given the week's released keys.
pub(crate) fn choose<'a>(
    c: &'a WeekCheckin,
    reveals: &'a [Reveal],
) -> BTreeMap<&'a PersonId, Choice<'a>> {
    let week = c.week;
    // Valid keys: a key of P's that opens one of P's candidates. Earliest release first.
    let mut sorted: Vec<&Reveal> = reveals.iter().collect();
    sorted.sort_by_key(|r| (r.released_at, r.commitment));
    let valid: BTreeMap<&PersonId, (&Reveal, SealCommitment, Vec<u8>)> = c
        .submissions
        .iter()
        .filter_map(|(person, subs)| {
            sorted.iter().filter(|r| r.person == *person).find_map(|r| {
                let sealed = subs.iter().find_map(|s| match &s.body {
                    Body::Sealed(sealed) if sealed.commitment == r.commitment => Some(sealed),
                    _ => None,
                })?;
                let bytes = open_answers(week, person, sealed, &r.key)?;
                Some((person, (*r, r.commitment, bytes)))
            })
        })
        .collect();
    let mut out = BTreeMap::new();
    for (person, subs) in &c.submissions {
        let named = valid
            .iter()
            .filter(|(other, _)| **other != person)
            .find_map(|(_, (r, _, _))| r.seen);
        let position =
            |wanted: SealCommitment| subs.iter().position(|s| s.commitment() == Some(wanted));
        let index = match named {
            Some(seen) => match position(seen) {
                Some(i) => i,
                None => {
                    out.insert(person, Choice::Replaced);
                    continue;
                }
            },
            None => valid
                .get(person)
                .and_then(|(_, commitment, _)| position(*commitment))
                .unwrap_or(0),
        };
        let Some(submission) = subs.get(index) else {
            continue;
        };
        // The key that opens the chosen one: usually the valid key already opened; else
        // (the partner committed against another candidate) a later one may.
        let opened = match (&submission.body, valid.get(person)) {
            (Body::Sealed(sealed), Some((r, commitment, bytes)))
                if *commitment == sealed.commitment =>
            {
                Some((*r, bytes.clone()))
            }
            (Body::Sealed(sealed), _) => sorted
                .iter()
                .filter(|r| r.person == *person && r.commitment == sealed.commitment)
                .find_map(|r| Some((*r, open_answers(week, person, sealed, &r.key)?))),
            _ => None,
        };
        let mismatch = opened.is_none() && reveals.iter().any(|r| r.person == *person);
        out.insert(
            person,
            Choice::Chosen {
                submission,
                opened,
                mismatch,
            },
        );
    }
    out
}

/// Settles every submission of one week: which are open, which only this device can read
/// (`own_keys`), which are broken. `deck` is the week's deck, if it is known here: it
/// gives answers read back from JSON their precise kinds.
pub(crate) fn settle(
    c: &WeekCheckin,
    deck: Option<&Deck>,
    reveals: &[Reveal],
    own_keys: &HashMap<SealCommitment, OwnKey>,
    people: &[PersonId],
) -> Checkin {
    let week = c.week;
    let read = |value: &serde_json::Value| -> Answers {
        let mut answers = answers_from_json(value);
        if let Some(t) = deck {
            t.restore_kinds(&mut answers);
        }
        answers
    };
    // Straight into `Answers` (what hearth writes always reads so); anything odd goes the
    // forgiving way, value by value.
    let read_bytes = |bytes: &[u8]| match serde_json::from_slice::<Answers>(bytes) {
        Ok(mut answers) => {
            if let Some(t) = &deck {
                t.restore_kinds(&mut answers);
            }
            Some(answers)
        }
        Err(_) => serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .map(|v| read(&v)),
    };
    let submissions = choose(c, reveals)
        .into_iter()
        .map(|(person, choice)| {
            let submitted_at = c.submissions[person][0].submitted_at;
            let (seal, submitted_at, released_at, answers) = match choice {
                // Never shown as the answers, but the device that sealed them may still
                // read what it answered.
                Choice::Replaced => {
                    let own = c.submissions[person].iter().find_map(|s| match &s.body {
                        Body::Sealed(sealed) => own_keys
                            .get(&sealed.commitment)
                            .and_then(|own| open_answers(week, person, sealed, &own.key))
                            .and_then(|bytes| read_bytes(&bytes)),
                        _ => None,
                    });
                    (Seal::Replaced, submitted_at, None, own)
                }
                Choice::Chosen {
                    submission,
                    opened,
                    mismatch,
                } => {
                    let at = submission.submitted_at;
                    match (&submission.body, opened) {
                        (Body::Clear(value), _) => (Seal::Unsealed, at, None, Some(read(value))),
                        (_, Some((r, bytes))) => {
                            (Seal::Open, at, Some(r.released_at), read_bytes(&bytes))
                        }
                        _ if mismatch => (Seal::Mismatch, at, None, None),
                        (Body::Sealed(sealed), None) => {
                            let own = own_keys
                                .get(&sealed.commitment)
                                .and_then(|own| open_answers(week, person, sealed, &own.key))
                                .and_then(|bytes| read_bytes(&bytes));
                            (Seal::Sealed, at, None, own)
                        }
                        (Body::Unread, None) => (Seal::Sealed, at, None, None),
                    }
                }
            };
            let submission = Submission {
                person: person.clone(),
                submitted_at,
                seal,
                released_at,
                answers,
            };
            (person.clone(), submission)
        })
        .collect();
    let mut submissions: BTreeMap<PersonId, Submission> = submissions;
    for (person, at) in deleted_after_release(c, reveals, people) {
        submissions.entry(person.clone()).or_insert(Submission {
            person,
            submitted_at: at,
            seal: Seal::Replaced,
            released_at: None,
            answers: None,
        });
    }
    Checkin {
        week,
        deck: c.deck.clone(),
        submissions,
    }
}

/// The people whose answers a partner's valid key names as seen, but who have no
/// submission for the week any more: their answers were removed after the partner's were
/// opened to them. They read as replaced (with the release's time), never as not answered.
fn deleted_after_release(
    c: &WeekCheckin,
    reveals: &[Reveal],
    people: &[PersonId],
) -> Vec<(PersonId, Millis)> {
    let missing: Vec<&PersonId> = people
        .iter()
        .filter(|p| !c.submissions.contains_key(*p))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in reveals.iter().filter(|r| r.seen.is_some()) {
        let Some(subs) = c.submissions.get(&r.person) else {
            continue;
        };
        let valid = subs.iter().any(|s| match &s.body {
            Body::Sealed(sealed) => {
                sealed.commitment == r.commitment
                    && open_answers(c.week, &r.person, sealed, &r.key).is_some()
            }
            _ => false,
        });
        if !valid {
            continue;
        }
        for p in missing.iter().filter(|p| ***p != r.person) {
            if !out.iter().any(|(q, _)| q == *p) {
                out.push(((*p).clone(), r.released_at));
            }
        }
    }
    out
}

/// The commitments ("one small thing I'll do for us") inside the answers this device can
/// read, with the status the author's later follow-up answers gave them. An explicit status
/// edit (`explicit`: `Some(None)` for a status this version does not know, which hides the
/// commitment rather than guess) wins over a follow-up.
pub(crate) fn commitments_in(
    checkins: &[Checkin],
    explicit: impl Fn(&EntryId, &PersonId) -> Option<Option<CommitmentStatus>>,
) -> Vec<Commitment> {
    let mut out: Vec<Commitment> = Vec::new();
    for c in checkins {
        for s in c.submissions.values() {
            let Some(answers) = s.readable() else {
                continue;
            };
            if let Some(status) = followup_status(answers) {
                for earlier in out
                    .iter_mut()
                    .filter(|e| e.author == s.person && e.week < c.week)
                    .filter(|e| {
                        e.status == CommitmentStatus::Open && explicit(&e.id, &e.author).is_none()
                    })
                {
                    earlier.status = status;
                }
            }
            let Some(text) = answers
                .text("commit")
                .map(str::trim)
                .filter(|t| !t.is_empty())
            else {
                continue;
            };
            let id = commitment_id(c.week, &s.person);
            let status = match explicit(&id, &s.person) {
                Some(Some(status)) => status,
                Some(None) => continue,
                None => CommitmentStatus::Open,
            };
            out.push(Commitment {
                status,
                id,
                author: s.person.clone(),
                text: text.to_owned(),
                week: c.week,
                created_at: s.submitted_at,
            });
        }
    }
    out
}

/// The id of the commitment in `person`'s answers for `week`: the same on every device.
pub(crate) fn commitment_id(week: Week, person: &PersonId) -> EntryId {
    EntryId::derived(
        "hearth 2026-11 check-in commitment id v1",
        &[&week.to_string(), person.as_str()],
    )
}

/// What a follow-up answer says about the earlier commitments.
fn followup_status(answers: &Answers) -> Option<CommitmentStatus> {
    match answers.choice("followup")? {
        "done" => Some(CommitmentStatus::Done),
        "partly" => Some(CommitmentStatus::Partly),
        "no" => Some(CommitmentStatus::Dropped),
        _ => None,
    }
}
