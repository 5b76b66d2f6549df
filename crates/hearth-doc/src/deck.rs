//! Question decks as plain TOML files: the built-in ones compiled in, and a couple's own,
//! read and checked with errors that name the file's line.
//!
//! A deck is what a check-in (or the daily question) asks. Keeping them as files rather
//! than code lets a couple write their own with any editor, and lets the built-in ones be
//! read and reviewed by people who do not read Rust. The schema is documented in
//! `docs/checkins.md` ("Decks"); in short:
//!
//! ```toml
//! id = "our-sunday"               # lowercase letters, digits, - and _
//! title = "Our Sunday check-in"
//! description = "One line on what it is for"   # optional
//! kind = "checkin"                # or "daily"
//!
//! [[questions]]
//! key = "feeling"                 # the stable answer key
//! prompt = "How are you feeling about us this week?"
//! help = "1 is struggling, 10 is wonderful."  # optional
//! kind = "scale"                  # scale | choice | multi_choice | text | list
//! min = 1                         # scale only, with max, low and high
//! max = 10
//! required = true                 # optional, default false
//!
//! [[questions]]
//! key = "raise_request"
//! prompt = "Would you be willing to…?"
//! kind = "text"
//! when = { question = "raise", is = ["small", "talk"] }  # asked only then
//! ```
//!
//! Every check-in deck has the `feeling` 1–10 scale, so trends cover every week whatever
//! deck it used. Parsing is strict (an unknown field is an error, so a typo never silently
//! drops a question); a deck stored by a newer hearth that this version cannot read is
//! treated as unknown, and its check-ins still show their answers by key.
//!
//! What a deck is once parsed, and how answers to it are checked, is in `deck/model.rs`; the
//! couple's own decks, stored in the document, are in `own_decks.rs`.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

use serde::Deserialize;
use toml::Spanned;

use crate::error::DocError;

mod model;

pub use model::{
    Condition, Deck, DeckKind, Opt, Question, QuestionKind, WEEKLY_DECK_ID, weekly_deck,
};

/// The largest deck file accepted, in bytes: decks travel in the shared document.
pub const MAX_DECK_BYTES: usize = 32 * 1024;
const MAX_QUESTIONS: usize = 60;
const MAX_OPTIONS: usize = 30;
const MAX_ID_LEN: usize = 40;

/// The built-in decks' files, in the order they are listed.
const BUILTIN_FILES: [(&str, &str); 4] = [
    ("weekly.toml", include_str!("../decks/weekly.toml")),
    ("gentle.toml", include_str!("../decks/gentle.toml")),
    ("deeper.toml", include_str!("../decks/deeper.toml")),
    ("daily.toml", include_str!("../decks/daily.toml")),
];

static BUILTIN: LazyLock<Vec<Deck>> = LazyLock::new(|| {
    BUILTIN_FILES
        .iter()
        .map(|(file, text)| {
            parse_deck(file, text).expect("the built-in decks are checked by the tests")
        })
        .collect()
});

/// The decks that come with hearth: weekly, gentle, deeper (check-ins) and daily.
pub fn builtin_decks() -> &'static [Deck] {
    &BUILTIN
}

/// The built-in deck `id`. Its id without the version suffix works too (`gentle` for
/// `gentle-v1`), so people can type the short name.
pub fn builtin_deck(id: &str) -> Option<&'static Deck> {
    BUILTIN
        .iter()
        .find(|d| d.id == id || d.id.strip_suffix("-v1") == Some(id))
}

/// Parses and checks a deck file. `file` names it in error messages.
///
/// # Errors
///
/// [`DocError::Deck`] naming the line (and column) of the first problem and what to do
/// about it: TOML syntax, an unknown or missing field, a duplicate key, an unknown kind, a
/// scale whose `min` is not below `max`, a choice without options, a `when` naming an
/// unknown question or option, a check-in deck without the `feeling` 1–10 scale.
pub fn parse_deck(file: &str, text: &str) -> Result<Deck, DocError> {
    let at = |span: Range<usize>, message: String| deck_error(file, text, span.start, message);
    if text.len() > MAX_DECK_BYTES {
        return Err(at(
            0..0,
            format!(
                "the file is {} bytes, over the {MAX_DECK_BYTES}-byte limit for a deck; \
                 split it into two decks",
                text.len()
            ),
        ));
    }
    let raw: RawDeck = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(span, tidy_toml_message(e.message()))
    })?;

    let id = raw.id.get_ref().trim();
    if let Some(problem) = name_problem(id) {
        return Err(at(raw.id.span(), format!("the deck id {problem}")));
    }
    if raw.title.get_ref().trim().is_empty() {
        return Err(at(raw.title.span(), "the title is empty; write one".into()));
    }
    let kind = match raw.kind.get_ref().as_str() {
        "checkin" => DeckKind::Checkin,
        "daily" => DeckKind::Daily,
        other => {
            return Err(at(
                raw.kind.span(),
                format!("the deck kind is \"{other}\"; use kind = \"checkin\" or kind = \"daily\""),
            ));
        }
    };
    if raw.questions.is_empty() {
        return Err(at(
            raw.kind.span(),
            "the deck has no questions; add at least one [[questions]] table".into(),
        ));
    }
    if raw.questions.len() > MAX_QUESTIONS {
        return Err(at(
            raw.questions[MAX_QUESTIONS].span(),
            format!("a deck holds at most {MAX_QUESTIONS} questions; split it into two decks"),
        ));
    }

    let mut questions: Vec<Question> = Vec::with_capacity(raw.questions.len());
    let mut seen = HashSet::new();
    for spanned in &raw.questions {
        let q = spanned.get_ref();
        let key = q.key.get_ref().trim();
        if let Some(problem) = name_problem(key) {
            return Err(at(q.key.span(), format!("the question key {problem}")));
        }
        if !seen.insert(key.to_owned()) {
            return Err(at(
                q.key.span(),
                format!("question key \"{key}\" is used twice; give each question its own key"),
            ));
        }
        if q.prompt.get_ref().trim().is_empty() {
            return Err(at(
                q.prompt.span(),
                format!("question \"{key}\" has an empty prompt; write the question"),
            ));
        }
        let kind = question_kind(key, q, &at)?;
        let when = match &q.when {
            None => None,
            Some(w) => Some(condition(key, w, &questions, &at)?),
        };
        questions.push(Question {
            key: key.to_owned(),
            prompt: q.prompt.get_ref().trim().to_owned(),
            help: q.help.trim().to_owned(),
            kind,
            required: q.required,
            when,
        });
    }

    if kind == DeckKind::Checkin {
        check_feeling(&raw, &questions, &at)?;
    }
    Ok(Deck {
        id: id.to_owned(),
        title: raw.title.get_ref().trim().to_owned(),
        description: raw.description.trim().to_owned(),
        kind,
        questions,
    })
}

/// The shape of a question from its `kind` and the fields that go with it.
fn question_kind(
    key: &str,
    q: &RawQuestion,
    at: &impl Fn(Range<usize>, String) -> DocError,
) -> Result<QuestionKind, DocError> {
    let kind = q.kind.get_ref().as_str();
    if !matches!(kind, "scale" | "choice" | "multi_choice" | "text" | "list") {
        return Err(at(
            q.kind.span(),
            format!(
                "question \"{key}\" has kind \"{kind}\"; use one of scale, choice, \
                 multi_choice, text, list"
            ),
        ));
    }
    let is_scale = kind == "scale";
    let is_choice = matches!(kind, "choice" | "multi_choice");
    // Fields that belong to another kind are refused: they are a sign of a mistake.
    if !is_scale {
        let stray = [
            ("min", q.min.as_ref().map(Spanned::span)),
            ("max", q.max.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .chain([
            ("low", q.low.as_ref().map(Spanned::span)),
            ("high", q.high.as_ref().map(Spanned::span)),
        ]);
        for (field, span) in stray {
            if let Some(span) = span {
                return Err(at(
                    span,
                    format!(
                        "question \"{key}\" has kind \"{kind}\", which takes no {field}; remove \
                         it, or use kind = \"scale\""
                    ),
                ));
            }
        }
    }
    if !is_choice && let Some(options) = &q.options {
        return Err(at(
            options.span(),
            format!(
                "question \"{key}\" has kind \"{kind}\", which takes no options; remove them, \
                 or use kind = \"choice\" or \"multi_choice\""
            ),
        ));
    }
    Ok(match kind {
        "scale" => {
            let bound = |value: &Option<Spanned<i64>>, field: &str| -> Result<u8, DocError> {
                let Some(v) = value else {
                    return Err(at(
                        q.kind.span(),
                        format!("question \"{key}\" is a scale without {field}; add {field} = …"),
                    ));
                };
                u8::try_from(*v.get_ref()).ok().filter(|n| *n <= 100).ok_or_else(|| {
                    at(
                        v.span(),
                        format!(
                            "question \"{key}\" has {field} = {}; use a whole number from 0 to 100",
                            v.get_ref()
                        ),
                    )
                })
            };
            let (min, max) = (bound(&q.min, "min")?, bound(&q.max, "max")?);
            if min >= max {
                let span = q.min.as_ref().map_or(q.kind.span(), Spanned::span);
                return Err(at(
                    span,
                    format!(
                        "question \"{key}\" is a scale from {min} to {max}; min must be smaller \
                         than max"
                    ),
                ));
            }
            let word = |w: &Option<Spanned<String>>| {
                w.as_ref()
                    .map(|w| w.get_ref().trim().to_owned())
                    .unwrap_or_default()
            };
            QuestionKind::Scale {
                min,
                max,
                low: word(&q.low),
                high: word(&q.high),
            }
        }
        "choice" | "multi_choice" => {
            let options = choice_options(key, kind, q, at)?;
            if kind == "choice" {
                QuestionKind::Choice { options }
            } else {
                QuestionKind::MultiChoice { options }
            }
        }
        "text" => QuestionKind::Text,
        _ => QuestionKind::List,
    })
}

fn choice_options(
    key: &str,
    kind: &str,
    q: &RawQuestion,
    at: &impl Fn(Range<usize>, String) -> DocError,
) -> Result<Vec<Opt>, DocError> {
    let Some(raw) = q.options.as_ref().filter(|o| !o.get_ref().is_empty()) else {
        let span = q.options.as_ref().map_or(q.kind.span(), Spanned::span);
        return Err(at(
            span,
            format!(
                "question \"{key}\" has kind \"{kind}\" but no options; add options = [{{ key = \
                 \"yes\", label = \"Yes\" }}, …]"
            ),
        ));
    };
    if raw.get_ref().len() > MAX_OPTIONS {
        return Err(at(
            raw.span(),
            format!("question \"{key}\" has more than {MAX_OPTIONS} options; keep it shorter"),
        ));
    }
    let mut seen = HashSet::new();
    let mut options = Vec::new();
    for o in raw.get_ref() {
        let option = o.key.get_ref().trim();
        if let Some(problem) = name_problem(option) {
            return Err(at(
                o.key.span(),
                format!("an option key of question \"{key}\" {problem}"),
            ));
        }
        if !seen.insert(option.to_owned()) {
            return Err(at(
                o.key.span(),
                format!(
                    "question \"{key}\" has the option \"{option}\" twice; give each option its \
                     own key"
                ),
            ));
        }
        if o.label.get_ref().trim().is_empty() {
            return Err(at(
                o.label.span(),
                format!("option \"{option}\" of question \"{key}\" has an empty label; write one"),
            ));
        }
        options.push(Opt {
            key: option.to_owned(),
            label: o.label.get_ref().trim().to_owned(),
        });
    }
    Ok(options)
}

/// A `when` names an earlier choice question and some of its options.
fn condition(
    key: &str,
    w: &Spanned<RawWhen>,
    earlier: &[Question],
    at: &impl Fn(Range<usize>, String) -> DocError,
) -> Result<Condition, DocError> {
    let named = w.get_ref().question.get_ref().trim();
    let Some(target) = earlier.iter().find(|q| q.key == named) else {
        return Err(at(
            w.get_ref().question.span(),
            format!(
                "question \"{key}\" is asked when \"{named}\" is answered, but no question before \
                 it has that key; name an earlier choice question"
            ),
        ));
    };
    let (QuestionKind::Choice { options } | QuestionKind::MultiChoice { options }) = &target.kind
    else {
        return Err(at(
            w.get_ref().question.span(),
            format!(
                "question \"{key}\" depends on \"{named}\", which is not a choice; `when` can \
                 only name a choice or multi_choice question"
            ),
        ));
    };
    let values = w.get_ref().is.get_ref();
    if values.is_empty() {
        return Err(at(
            w.get_ref().is.span(),
            format!("the `when` of question \"{key}\" lists no options; add is = [\"…\"]"),
        ));
    }
    for v in values {
        if !options.iter().any(|o| o.key == *v) {
            return Err(at(
                w.get_ref().is.span(),
                format!(
                    "the `when` of question \"{key}\" names \"{v}\", which is not an option of \
                     \"{named}\"; use one of {}",
                    options
                        .iter()
                        .map(|o| o.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(Condition {
        question: named.to_owned(),
        is: values.clone(),
    })
}

/// A check-in deck asks `feeling` 1–10, required, so trends cover every week.
fn check_feeling(
    raw: &RawDeck,
    questions: &[Question],
    at: &impl Fn(Range<usize>, String) -> DocError,
) -> Result<(), DocError> {
    let Some(index) = questions.iter().position(|q| q.key == "feeling") else {
        return Err(at(
            raw.kind.span(),
            "a check-in deck needs the question \"feeling\" (kind = \"scale\", min = 1, max = 10, \
             required = true) so trends keep working; add it"
                .into(),
        ));
    };
    let q = &questions[index];
    let ok = matches!(
        q.kind,
        QuestionKind::Scale {
            min: 1,
            max: 10,
            ..
        }
    ) && q.required
        && q.when.is_none();
    if ok {
        Ok(())
    } else {
        Err(at(
            raw.questions[index].get_ref().key.span(),
            "question \"feeling\" must be kind = \"scale\" with min = 1, max = 10 and required = \
             true (and no `when`), so trends keep working"
                .into(),
        ))
    }
}

/// Why `name` cannot be an id or key, or `None` if it can.
fn name_problem(name: &str) -> Option<String> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if name.is_empty() {
        Some("is empty; write one".into())
    } else if name.len() > MAX_ID_LEN {
        Some(format!(
            "is longer than {MAX_ID_LEN} characters; shorten it"
        ))
    } else if !first_ok || !rest_ok {
        Some(format!(
            "\"{name}\" has other characters than lowercase letters, digits, - and _, or does not \
             start with a letter; write it like \"our_sunday\""
        ))
    } else {
        None
    }
}

/// toml's messages end in a newline and sometimes repeat themselves; one line reads better.
fn tidy_toml_message(message: &str) -> String {
    let line = message.trim().replace('\n', "; ");
    format!("{line}; fix the TOML there")
}

fn deck_error(file: &str, text: &str, offset: usize, message: String) -> DocError {
    let (line, column) = line_column(text, offset);
    DocError::Deck {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeck {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    kind: Spanned<String>,
    #[serde(default)]
    questions: Vec<Spanned<RawQuestion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    key: Spanned<String>,
    prompt: Spanned<String>,
    #[serde(default)]
    help: String,
    kind: Spanned<String>,
    min: Option<Spanned<i64>>,
    max: Option<Spanned<i64>>,
    low: Option<Spanned<String>>,
    high: Option<Spanned<String>>,
    options: Option<Spanned<Vec<RawOption>>>,
    #[serde(default)]
    required: bool,
    when: Option<Spanned<RawWhen>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    key: Spanned<String>,
    label: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    question: Spanned<String>,
    is: Spanned<Vec<String>>,
}

#[cfg(test)]
mod tests;
