//! The one error type of this crate.
//!
//! Callers (the client store, the CLI) match on the variants to choose an exit code and to
//! decide whether to ask the user again; the Display text is written for the person at the
//! keyboard, so each message says what went wrong *and* what to do about it.

use std::error::Error as StdError;

use crate::ids::{EntryId, PersonId};
use crate::week::Week;

/// Everything that can go wrong while reading, changing or syncing a space document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// A text the user had to write was empty or only whitespace.
    #[error("the {what} cannot be empty; write a few words and try again")]
    Empty {
        /// What was empty, in the user's words ("appreciation", "observation", …).
        what: &'static str,
    },

    /// No entry (or person, or feedback thread) has the given id.
    #[error("no {what} matches `{handle}`; check the id with `hearth log`")]
    NotFound {
        /// What was looked for ("entry", "feedback", "journal entry", …).
        what: &'static str,
        /// The id or handle as the caller gave it.
        handle: String,
    },

    /// A short handle matched more than one entry.
    #[error(
        "`{handle}` matches {} entries ({}); type more characters of the id",
        candidates.len(),
        candidates.iter().map(EntryId::as_str).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        /// The handle as the caller gave it.
        handle: String,
        /// Every entry whose id ends with the handle.
        candidates: Vec<EntryId>,
    },

    /// A handle was too short to look an entry up safely.
    #[error("`{handle}` is too short to find an entry; give at least 4 characters of its id")]
    HandleTooShort {
        /// The handle as the caller gave it.
        handle: String,
    },

    /// This person already answered the check-in for this week.
    #[error(
        "a check-in for {week} was already submitted by {person}; each partner answers once a \
         week, so add a journal entry if there is more to say"
    )]
    AlreadySubmitted {
        /// The week of the check-in.
        week: Week,
        /// The person who already submitted.
        person: PersonId,
    },

    /// A reply in a role that is not the replier's: in a feedback thread the listener
    /// reflects back, and the one who raised it says whether they felt heard.
    #[error("only {who} can {what}")]
    WrongRole {
        /// Who may ("your partner", "the one who raised it").
        who: &'static str,
        /// What they tried.
        what: &'static str,
    },

    /// A write in another person's name: each device writes only as the person the space's
    /// signed device list says it belongs to.
    #[error(
        "this device writes as person {own}, not {asked}: each device writes only as the \
         person it belongs to in the space"
    )]
    NotYourPerson {
        /// The person this device belongs to.
        own: PersonId,
        /// The person the write named.
        asked: PersonId,
    },

    /// A value typed by the user (an id, a week, a status…) could not be parsed.
    #[error("`{input}` is not a valid {what}; expected {expected}")]
    Invalid {
        /// What was being parsed ("week", "person id", "reply kind", …).
        what: &'static str,
        /// The text as given.
        input: String,
        /// The accepted format or values.
        expected: &'static str,
    },

    /// A check-in answer named a question the deck does not have.
    #[error("there is no check-in question `{key}`; the questions are: {valid}")]
    UnknownQuestion {
        /// The key as given.
        key: String,
        /// The deck's keys, comma separated.
        valid: String,
    },

    /// A check-in answer was out of range, not one of the options, or empty.
    #[error("the answer to `{key}` {reason}")]
    InvalidAnswer {
        /// The question key.
        key: String,
        /// Why it was refused, naming the valid range or options.
        reason: String,
    },

    /// Required check-in questions were left unanswered.
    #[error(
        "the check-in is missing required answers: {}; answer them and submit again",
        keys.join(", ")
    )]
    MissingAnswers {
        /// The keys of the unanswered required questions.
        keys: Vec<String>,
    },

    /// A deck file (or a deck stored in the space) has a problem at `line`.
    #[error("{file} line {line}, column {column}: {message}")]
    Deck {
        /// The file's name as the caller gave it, or `deck ID` for a stored deck.
        file: String,
        /// The 1-based line of the problem.
        line: usize,
        /// The 1-based column (in characters).
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// No deck, built in or in the space, has this id.
    #[error(
        "there is no deck `{id}`; see the decks with `hearth deck list` (if your partner has \
         just added it, sync first)"
    )]
    UnknownDeck {
        /// The id as given.
        id: String,
    },

    /// A deck being added has the id (or short name) of a built-in deck.
    #[error("`{id}` is the id of a built-in deck; give your deck another id")]
    BuiltinDeckId {
        /// The id.
        id: String,
    },

    /// A deck being added has the id of a different deck already in the space.
    #[error(
        "your space already has a different deck `{id}`; give yours another id, or replace \
         it on purpose (`hearth deck add --replace`)"
    )]
    DeckExists {
        /// The id.
        id: String,
    },

    /// The week's check-in was opened with another deck than the one asked for.
    #[error(
        "the check-in for {week} is answered with the deck `{deck}`, so yours uses it too \
         (both of you answer the same questions); leave out --deck, or use --deck {deck}"
    )]
    DeckMismatch {
        /// The week.
        week: Week,
        /// The deck the week's check-in uses.
        deck: String,
        /// The deck asked for.
        asked: String,
    },

    /// A daily deck was asked for where a check-in deck is needed.
    #[error("`{id}` is a daily deck, not a check-in; answer it with `hearth daily`")]
    NotACheckinDeck {
        /// The id.
        id: String,
    },

    /// The stored document could not be loaded.
    #[error(
        "could not load the space document; the stored copy may be damaged, so restore a backup \
         or sync again from your partner"
    )]
    Load {
        /// What automerge reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// Bytes from another device were not valid document data; nothing was applied.
    #[error(
        "changes from another device could not be read, so nothing was applied; ask that device \
         to sync again"
    )]
    Apply {
        /// What was wrong with the bytes.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// One change is bigger than an envelope may be.
    #[error(
        "one change is {size} bytes, over the {max}-byte limit for a single envelope; split the entry into smaller ones"
    )]
    ChangeTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The operating system gave no random bytes for a key.
    #[error("the system has no randomness to make a key ({0}); nothing was written, try again")]
    Random(String),

    /// There was nothing to load: no snapshot and no changes.
    #[error("there is no document data to load; the profile may be damaged, restore a backup")]
    NoData,

    /// The device actor id was empty.
    #[error("the device actor id is empty; give every device its own non-empty actor id")]
    EmptyActor,

    /// Automerge refused a change this crate made. This is a bug in hearth.
    #[error("the space document refused a change; this is a bug in hearth, please report it")]
    Automerge {
        /// What automerge reported.
        #[from]
        source: automerge::AutomergeError,
    },
}

impl DocError {
    pub(crate) fn load(source: impl Into<Box<dyn StdError + Send + Sync>>) -> DocError {
        DocError::Load {
            source: source.into(),
        }
    }

    pub(crate) fn apply(source: impl Into<Box<dyn StdError + Send + Sync>>) -> DocError {
        DocError::Apply {
            source: source.into(),
        }
    }
}
