//! # hearth-doc
//!
//! The couple's shared space as one [Automerge](automerge) document, with a typed API on
//! top: people, appreciations, kind feedback and replies, a shared journal, weekly check-ins
//! and the small commitments they produce. It also holds the question decks (the weekly
//! check-in's [deck](weekly_deck) and the others, TOML files read by [`parse_deck`])
//! and the views built from the document (timeline, trend).
//!
//! This crate does no I/O, no networking and no cryptography of its own: it turns user
//! actions into Automerge changes, turns bytes from other devices back into state, and reads
//! typed views out. The client stores and ships the bytes (encrypted, by hearth-crypto).
//! Check-in answers enter the document sealed: this crate holds the sealed bytes and the
//! rules of who may read them when, and calls hearth-crypto's `answers` module to seal and
//! open them.
//!
//! ## The model in one example
//!
//! Each device keeps its own copy of the document. Writes happen offline, one Automerge
//! change per action. Devices exchange the changes they have not saved yet, in any order,
//! and end up with the same document:
//!
//! ```
//! use hearth_doc::{Millis, PersonId, SpaceDoc};
//!
//! # fn main() -> Result<(), hearth_doc::DocError> {
//! let ana = PersonId::random();
//! let ben = PersonId::random();
//!
//! // Ana creates the space on her laptop and stores it.
//! let mut laptop = SpaceDoc::create(b"ana-laptop", &ana, "Ana", Millis(1_763_900_000_000))?;
//! let snapshot = laptop.save_snapshot();
//!
//! // Ben joins from that snapshot on his phone and adds himself.
//! let mut phone = SpaceDoc::load(b"ben-phone", &snapshot, [])?;
//! phone.add_person(&ben, "Ben", Millis(1_763_900_060_000))?;
//!
//! // Both write while apart.
//! laptop.add_appreciation(&ana, "Thank you for the soup when I was ill", Millis(1_763_900_100_000))?;
//! phone.add_appreciation(&ben, "You made Sunday feel slow and easy", Millis(1_763_900_200_000))?;
//!
//! // Each hands the other what it has not saved yet.
//! let from_laptop = laptop.take_unsaved().expect("the laptop wrote something");
//! let from_phone = phone.take_unsaved().expect("the phone wrote something");
//! assert!(phone.apply(&from_laptop)?);
//! assert!(laptop.apply(&from_phone)?);
//!
//! // Same changes, same state, same order on both devices.
//! assert_eq!(laptop.heads(), phone.heads());
//! assert_eq!(laptop.appreciations(), phone.appreciations());
//! assert_eq!(laptop.people().len(), 2);
//! let texts: Vec<_> = phone.appreciations().into_iter().map(|a| a.text).collect();
//! assert_eq!(texts, ["Thank you for the soup when I was ill", "You made Sunday feel slow and easy"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Check-ins
//!
//! A check-in is answered with [`Deck::parse_answers`] (for `--answer KEY=VALUE`
//! flags) or value by value with [`Deck::check`], then submitted with
//! [`SpaceDoc::submit_checkin`], which seals them (see [`Seal`]). Answers are shown to the
//! partner only once [`Checkin::revealed`] says both have submitted.
//!
//! ```
//! use hearth_doc::{weekly_deck, Millis, PersonId, SpaceDoc, Week};
//!
//! # fn main() -> Result<(), hearth_doc::DocError> {
//! let ana = PersonId::random();
//! let mut doc = SpaceDoc::create(b"ana-laptop", &ana, "Ana", Millis(0))?;
//! let week: Week = "2026-W47".parse()?;
//! let answers = weekly_deck().parse_answers([
//!     ("feeling", "8"),
//!     ("need", "time,fun"),
//!     ("commit", "Cook on Thursday"),
//! ])?;
//! doc.submit_checkin(week, &ana, answers, Millis(1))?;
//! let checkin = doc.checkin(week).expect("just submitted");
//! assert!(checkin.submitted_by(&ana));
//! assert!(!checkin.revealed(&doc.people()), "Ana is alone in the space so far");
//! assert_eq!(doc.open_commitments(&ana)[0].text, "Cook on Thursday");
//! # Ok(())
//! # }
//! ```
//!
//! ## Document layout
//!
//! The schema is written once, in `docs/document.md`, and spelled in code once, in
//! `layout.rs`: each person writes only into their own container at the root
//! (`by/<person key>`: their name, their check-ins and sealed submissions, released keys,
//! appreciations, feedback, replies, journal entries, edits and decks), and every change
//! from another device is checked against that rule before it is applied
//! ([`authorship`], [`SpaceDoc::apply_screened`]). Readers merge the containers and
//! attribute each entry by where it is, never by the author it names. Lists merge
//! concurrent appends; each entry is **one JSON string** rather than a map of fields, and
//! later edits are one scalar per entry and field in `edits`. Spaces made before
//! containers keep their shared root collections, read with each value attributed by the
//! device whose op wrote it.
//!
//! Automerge 0.12 pays per operation when loading and per object when reading; a map per
//! entry made a ten-year history load in ~135 ms and read its timeline in ~135 ms, one
//! string per entry brings that to ~50 ms and ~20 ms (see below). Readers also accept
//! entries written as maps of fields, and tolerate unknown keys, missing optional fields and
//! values of the wrong type by skipping what they cannot read, entry by entry.
//!
//! ## Performance
//!
//! `cargo run --release -p hearth-doc --example ten_year` builds ten years of use (520
//! weekly check-ins answered by both partners, 3,650 journal entries, 2,000 appreciations,
//! 200 feedback threads with replies, 1,040 commitments: 7,290 changes, one per action) and
//! times what `hearth log --json` does with it. On the 2-core development VM: snapshot
//! 0.51 MiB, `load` ~50 ms, `timeline` ~19 ms, JSON ~5 ms. Nearly all of the load is
//! Automerge rebuilding and hashing every change, which grows with the number of changes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Tests may unwrap: a panic there is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod acl_seen;
mod authors;
pub mod authorship;
mod checkins;
mod chunks;
mod deck;
mod device_notes;
mod error;
mod ids;
mod layout;
mod model;
mod own_decks;
mod queries;
mod records;
mod relay_address;
mod space;
mod timeline;
mod week;

pub use acl_seen::{AclSeen, Seen, WriterHistory, compare as compare_acl_seen};
pub use automerge::ChangeHash;

pub use deck::{
    Condition, Deck, DeckKind, MAX_DECK_BYTES, Opt, Question, QuestionKind, WEEKLY_DECK_ID,
    builtin_deck, builtin_decks, parse_deck, weekly_deck,
};
pub use error::DocError;
pub use ids::{EntryId, Millis, PersonId};
pub use model::{
    AnswerValue, Answers, Appreciation, Checkin, Commitment, CommitmentStatus, Feedback,
    FeedbackDraft, JournalDraft, JournalEntry, Person, Reply, ReplyKind, Seal, Submission,
    TrendPoint,
};
pub use queries::MIN_HANDLE_LEN;
pub use relay_address::{RELAY_AHEAD_LIMIT, RelayAddress, newest_relay, next_relay_at};
pub use space::{OwnKey, RefusedChange, Screened, SpaceDoc};
pub use timeline::{TimelineItem, TimelineKind};
pub use week::Week;

/// The sealed-answers types this crate's API names ([`OwnKey`]'s key and commitment).
///
/// They belong to hearth-crypto, which seals and opens check-in answers
/// ([`hearth_crypto::answers`]); they are re-exported so a caller of this crate can keep the
/// keys it is handed without naming the crypto crate.
pub mod seal {
    pub use hearth_crypto::answers::{Commitment, SealKey};
}
