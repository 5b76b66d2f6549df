//! What a question deck is once loaded: its questions, in order, and the rules for
//! answering them.
//!
//! The questions themselves live in TOML files (`crates/hearth-doc/decks/`, read by the
//! parent module), not in the document, so every device asks the built-in ones the same
//! way and stored answers stay small (just keys and values). A couple's own decks travel in
//! the document as their TOML text. The answer keys are a stable contract: they are stored
//! in the document, typed on the command line (`--answer feeling=8`) and documented one by
//! one in `docs/checkins.md`. A key may gain options in a later deck version, but it never
//! changes meaning.

use serde::Serialize;

use crate::deck::builtin_deck;
use crate::error::DocError;
use crate::model::{AnswerValue, Answers};

/// The id of [`weekly_deck`].
pub const WEEKLY_DECK_ID: &str = "weekly-v1";

/// A question deck: an ordered list of questions, for a weekly check-in or the daily
/// question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deck {
    /// Stable id, stored with each check-in.
    pub id: String,
    /// A short title to show above the questions.
    pub title: String,
    /// One line on what the deck is for (may be empty).
    pub description: String,
    /// Whether it is a weekly check-in or the daily question.
    pub kind: DeckKind,
    /// The questions, in the order they are asked.
    pub questions: Vec<Question>,
}

/// What a deck is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeckKind {
    /// A weekly check-in (`hearth checkin --deck ID`); always asks `feeling` 1–10.
    Checkin,
    /// The daily question (`hearth daily`).
    Daily,
}

impl DeckKind {
    /// The word used in deck files and listings: `checkin` or `daily`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeckKind::Checkin => "checkin",
            DeckKind::Daily => "daily",
        }
    }
}

/// One question of a deck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The stable answer key.
    pub key: String,
    /// The question, in warm and plain words.
    pub prompt: String,
    /// A line of help shown under the prompt.
    pub help: String,
    /// What kind of answer it takes.
    pub kind: QuestionKind,
    /// Whether a check-in can be submitted without it (when it applies).
    pub required: bool,
    /// Asked only when an earlier choice was answered in one of some ways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

/// When a conditional question is asked: the answer to `question` (a choice, or a multiple
/// choice) is, or includes, one of `is`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// The key of an earlier choice question.
    pub question: String,
    /// Option keys of that question.
    pub is: Vec<String>,
}

impl Condition {
    /// Whether the answers so far meet the condition.
    pub fn holds(&self, answers: &Answers) -> bool {
        match answers.get(&self.question) {
            Some(AnswerValue::Choice(c) | AnswerValue::Text(c)) => self.is.contains(c),
            Some(AnswerValue::Choices(cs) | AnswerValue::List(cs)) => {
                cs.iter().any(|c| self.is.contains(c))
            }
            _ => false,
        }
    }
}

/// The shape of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QuestionKind {
    /// A whole number from `min` to `max`.
    Scale {
        /// The lowest number.
        min: u8,
        /// The highest number.
        max: u8,
        /// What the lowest number means.
        low: String,
        /// What the highest number means.
        high: String,
    },
    /// Exactly one of the options.
    Choice {
        /// The options.
        options: Vec<Opt>,
    },
    /// Any number of the options (at least one when answered).
    MultiChoice {
        /// The options.
        options: Vec<Opt>,
    },
    /// A line or a paragraph of free text.
    Text,
    /// Several short free-text items.
    List,
}

/// An option of a choice question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opt {
    /// The stable key, stored and typed on the command line.
    pub key: String,
    /// What the user reads.
    pub label: String,
}

/// The weekly check-in (`decks/weekly.toml`), in the order of `CHECKINS.md`.
///
/// The readiness question ("are you in a good headspace for this?") comes first but is not
/// part of the deck: it is asked by the client and never stored. A couple's own decks are
/// found with [`SpaceDoc::deck`](crate::SpaceDoc::deck).
pub fn weekly_deck() -> Deck {
    builtin_deck(WEEKLY_DECK_ID)
        .expect("the weekly deck is built in")
        .clone()
}

impl Deck {
    /// The question with this key.
    pub fn question(&self, key: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.key == key)
    }

    /// Every answer key, in the order the questions are asked.
    pub fn keys(&self) -> Vec<&str> {
        self.questions.iter().map(|q| q.key.as_str()).collect()
    }

    /// Whether the question `key` should be asked, given the answers so far: it exists and
    /// its `when`, if any, holds.
    ///
    /// In the weekly deck the four-part feedback form (`raise_*`) is only asked once
    /// `raise` is `small` or `talk`. Whether `followup` applies depends on open
    /// commitments, which the caller knows
    /// ([`SpaceDoc::open_commitments`](crate::SpaceDoc::open_commitments)).
    pub fn applies(&self, key: &str, answers: &Answers) -> bool {
        self.question(key)
            .is_some_and(|q| q.when.as_ref().is_none_or(|w| w.holds(answers)))
    }

    /// Parses `--answer KEY=VALUE` pairs into answers.
    ///
    /// Repeating a `List` key adds an item; repeating a `MultiChoice` key adds options, which
    /// may also be given comma separated (`need=time,touch`). Choice option keys are matched
    /// case-insensitively; text is trimmed.
    ///
    /// # Errors
    ///
    /// [`DocError::UnknownQuestion`] naming the valid keys, [`DocError::InvalidAnswer`]
    /// naming the valid range or options (or saying the text cannot be empty, or that a
    /// single-answer key was repeated), and [`DocError::MissingAnswers`] naming required
    /// questions left out.
    pub fn parse_answers<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Answers, DocError> {
        let mut answers = Answers::default();
        for (key, raw) in pairs {
            let key = key.trim();
            let q = self.question(key).ok_or_else(|| self.unknown(key))?;
            let value = raw.trim();
            let repeated = answers.get(&q.key).is_some();
            let once = || {
                if repeated {
                    Err(invalid(&q.key, "was given more than once; give it once"))
                } else {
                    Ok(())
                }
            };
            let new = match &q.kind {
                QuestionKind::Scale { min, max, .. } => {
                    once()?;
                    let n = value
                        .parse::<u8>()
                        .ok()
                        .filter(|n| (min..=max).contains(&n))
                        .ok_or_else(|| {
                            invalid(
                                &q.key,
                                format!(
                                    "must be a whole number from {min} to {max}, not `{value}`"
                                ),
                            )
                        })?;
                    AnswerValue::Scale(n)
                }
                QuestionKind::Choice { options } => {
                    once()?;
                    AnswerValue::Choice(find_option(&q.key, options, value)?.to_owned())
                }
                QuestionKind::MultiChoice { options } => {
                    let mut chosen = match answers.0.remove(&q.key) {
                        Some(AnswerValue::Choices(c)) => c,
                        _ => Vec::new(),
                    };
                    let mut any = false;
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        any = true;
                        let key = find_option(&q.key, options, part)?;
                        if !chosen.iter().any(|c| c == key) {
                            chosen.push(key.to_owned());
                        }
                    }
                    if !any {
                        return Err(invalid(
                            &q.key,
                            format!("cannot be empty; choose from {}", option_keys(options)),
                        ));
                    }
                    AnswerValue::Choices(chosen)
                }
                QuestionKind::Text => {
                    once()?;
                    if value.is_empty() {
                        return Err(invalid(&q.key, "cannot be empty; leave it out instead"));
                    }
                    AnswerValue::Text(value.to_owned())
                }
                QuestionKind::List => {
                    if value.is_empty() {
                        return Err(invalid(&q.key, "cannot be empty; leave it out instead"));
                    }
                    let mut items = match answers.0.remove(&q.key) {
                        Some(AnswerValue::List(items)) => items,
                        _ => Vec::new(),
                    };
                    items.push(value.to_owned());
                    AnswerValue::List(items)
                }
            };
            answers.insert(&q.key, new);
        }
        self.check_required(&answers)?;
        Ok(answers)
    }

    /// Validates one already-typed answer, as the interactive walk collects them.
    ///
    /// A `Text` answer is accepted for a choice question (and a `List` for a multiple
    /// choice) when it holds valid option keys, since that is how answers read back from
    /// JSON look.
    ///
    /// # Errors
    ///
    /// [`DocError::UnknownQuestion`] or [`DocError::InvalidAnswer`], naming what is valid.
    pub fn check(&self, key: &str, value: &AnswerValue) -> Result<(), DocError> {
        let q = self.question(key).ok_or_else(|| self.unknown(key))?;
        let wrong_shape = |what: &str| invalid(&q.key, format!("should be {what}"));
        match (&q.kind, value) {
            (QuestionKind::Scale { min, max, .. }, AnswerValue::Scale(n)) => {
                if (min..=max).contains(&n) {
                    Ok(())
                } else {
                    Err(invalid(
                        &q.key,
                        format!("must be a whole number from {min} to {max}, not `{n}`"),
                    ))
                }
            }
            (QuestionKind::Scale { min, max, .. }, _) => {
                Err(wrong_shape(&format!("a whole number from {min} to {max}")))
            }
            (QuestionKind::Choice { options }, AnswerValue::Choice(s) | AnswerValue::Text(s)) => {
                exact_option(&q.key, options, s)
            }
            (QuestionKind::Choice { options }, _) => {
                Err(wrong_shape(&format!("one of {}", option_keys(options))))
            }
            (
                QuestionKind::MultiChoice { options },
                AnswerValue::Choices(items) | AnswerValue::List(items),
            ) => {
                if items.is_empty() {
                    return Err(invalid(
                        &q.key,
                        format!("cannot be empty; choose from {}", option_keys(options)),
                    ));
                }
                items
                    .iter()
                    .try_for_each(|item| exact_option(&q.key, options, item))
            }
            (QuestionKind::MultiChoice { options }, _) => {
                Err(wrong_shape(&format!("a list of {}", option_keys(options))))
            }
            (QuestionKind::Text, AnswerValue::Text(s)) => {
                if s.trim().is_empty() {
                    Err(invalid(&q.key, "cannot be empty; leave it out instead"))
                } else {
                    Ok(())
                }
            }
            (QuestionKind::Text, _) => Err(wrong_shape("text")),
            (QuestionKind::List, AnswerValue::List(items)) => {
                if items.is_empty() || items.iter().any(|i| i.trim().is_empty()) {
                    Err(invalid(
                        &q.key,
                        "cannot have empty items; leave them out instead",
                    ))
                } else {
                    Ok(())
                }
            }
            (QuestionKind::List, _) => Err(wrong_shape("a list of short texts")),
        }
    }

    /// Validates a whole set of answers: each one with [`Deck::check`], then the
    /// required questions.
    ///
    /// # Errors
    ///
    /// The first problem found, as [`Deck::check`] reports it, or
    /// [`DocError::MissingAnswers`].
    pub fn validate(&self, answers: &Answers) -> Result<(), DocError> {
        for (key, value) in answers.iter() {
            self.check(key, value)?;
        }
        self.check_required(answers)
    }

    /// Gives answers read back from JSON their precise kinds again: a string answering a
    /// choice question becomes a `Choice`, a list answering a multiple choice becomes
    /// `Choices`. Keys this deck does not know are left as they are.
    pub(crate) fn restore_kinds(&self, answers: &mut Answers) {
        for (key, value) in answers.0.iter_mut() {
            let Some(q) = self.question(key) else {
                continue;
            };
            let restored = match (&q.kind, &mut *value) {
                (QuestionKind::Choice { .. }, AnswerValue::Text(s)) => {
                    AnswerValue::Choice(std::mem::take(s))
                }
                (QuestionKind::MultiChoice { .. }, AnswerValue::List(items)) => {
                    AnswerValue::Choices(std::mem::take(items))
                }
                _ => continue,
            };
            *value = restored;
        }
    }

    fn check_required(&self, answers: &Answers) -> Result<(), DocError> {
        let missing: Vec<String> = self
            .questions
            .iter()
            .filter(|q| q.required && answers.get(&q.key).is_none())
            .filter(|q| self.applies(&q.key, answers))
            .map(|q| q.key.to_owned())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DocError::MissingAnswers { keys: missing })
        }
    }

    fn unknown(&self, key: &str) -> DocError {
        DocError::UnknownQuestion {
            key: key.to_owned(),
            valid: self.keys().join(", "),
        }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> DocError {
    DocError::InvalidAnswer {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn option_keys(options: &[Opt]) -> String {
    options
        .iter()
        .map(|o| o.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_option<'o>(key: &str, options: &'o [Opt], given: &str) -> Result<&'o str, DocError> {
    options
        .iter()
        .find(|o| o.key.eq_ignore_ascii_case(given))
        .map(|o| o.key.as_str())
        .ok_or_else(|| {
            invalid(
                key,
                format!("must be one of {}, not `{given}`", option_keys(options)),
            )
        })
}

fn exact_option(key: &str, options: &[Opt], given: &str) -> Result<(), DocError> {
    if options.iter().any(|o| o.key == given) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be one of {}, not `{given}`", option_keys(options)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Answers, DocError> {
        weekly_deck().parse_answers(pairs.iter().copied())
    }

    fn reason(err: DocError) -> String {
        match err {
            DocError::InvalidAnswer { reason, .. } => reason,
            other => panic!("expected InvalidAnswer, got {other:?}"),
        }
    }

    #[test]
    fn weekly_deck_has_the_stable_keys_in_order() {
        let t = weekly_deck();
        assert_eq!(t.id, "weekly-v1");
        assert_eq!(
            t.keys(),
            [
                "feeling",
                "feeling_word",
                "doing",
                "doing_areas",
                "appreciated",
                "connected",
                "need",
                "need_text",
                "raise",
                "raise_observation",
                "raise_feeling",
                "raise_need",
                "raise_request",
                "together",
                "together_text",
                "commit",
                "followup",
            ]
        );
        let required: Vec<_> = t
            .questions
            .iter()
            .filter(|q| q.required)
            .map(|q| q.key.as_str())
            .collect();
        assert_eq!(required, ["feeling"]);
        assert_eq!(builtin_deck("weekly-v1"), Some(&t));
        assert_eq!(builtin_deck("weekly-v0"), None);
    }

    #[test]
    fn a_full_check_in_parses_from_answer_flags() {
        let a = parse(&[
            ("feeling", "8"),
            ("feeling_word", " hopeful "),
            ("doing", "3"),
            ("doing_areas", "work, SLEEP"),
            ("doing_areas", "work"),
            ("appreciated", "the soup"),
            ("appreciated", "picking me up late"),
            ("need", "time,touch"),
            ("raise", "Small"),
            ("raise_observation", "dishes left overnight"),
            ("together", "walk"),
            ("commit", "cook on Thursday"),
            ("followup", "partly"),
        ])
        .unwrap();
        assert_eq!(a.scale("feeling"), Some(8));
        assert_eq!(a.text("feeling_word"), Some("hopeful"));
        assert_eq!(
            a.get("doing_areas"),
            Some(&AnswerValue::Choices(vec!["work".into(), "sleep".into()]))
        );
        assert_eq!(
            a.list("appreciated").unwrap(),
            ["the soup", "picking me up late"]
        );
        assert_eq!(a.get("raise"), Some(&AnswerValue::Choice("small".into())));
        assert_eq!(a.choice("followup"), Some("partly"));
        weekly_deck().validate(&a).unwrap();
    }

    #[test]
    fn out_of_range_scales_name_the_range() {
        assert!(reason(parse(&[("feeling", "11")]).unwrap_err()).contains("from 1 to 10"));
        assert!(reason(parse(&[("feeling", "nine")]).unwrap_err()).contains("from 1 to 10"));
        let r = reason(parse(&[("feeling", "5"), ("doing", "0")]).unwrap_err());
        assert!(r.contains("from 1 to 5"), "{r}");
    }

    #[test]
    fn unknown_options_and_keys_name_the_valid_ones() {
        let r = reason(parse(&[("feeling", "5"), ("raise", "maybe")]).unwrap_err());
        assert!(r.contains("nothing, small, talk"), "{r}");
        let r = reason(parse(&[("feeling", "5"), ("need", "time,cake")]).unwrap_err());
        assert!(
            r.contains("words, time, touch, help, space, fun, deeper, other"),
            "{r}"
        );
        let err = parse(&[("feling", "5")]).unwrap_err();
        assert!(matches!(&err, DocError::UnknownQuestion { key, .. } if key == "feling"));
        assert!(err.to_string().contains("feeling, feeling_word, doing"));
    }

    #[test]
    fn empty_text_and_repeated_single_answers_are_refused() {
        let r = reason(parse(&[("feeling", "5"), ("connected", "  ")]).unwrap_err());
        assert!(r.contains("cannot be empty"), "{r}");
        let r = reason(parse(&[("feeling", "5"), ("appreciated", "")]).unwrap_err());
        assert!(r.contains("cannot be empty"), "{r}");
        let r = reason(parse(&[("feeling", "5"), ("need", " , ")]).unwrap_err());
        assert!(r.contains("cannot be empty"), "{r}");
        let r = reason(parse(&[("feeling", "5"), ("feeling", "6")]).unwrap_err());
        assert!(r.contains("more than once"), "{r}");
    }

    #[test]
    fn missing_required_answers_are_named() {
        let err = parse(&[("connected", "Sunday breakfast")]).unwrap_err();
        assert!(matches!(&err, DocError::MissingAnswers { keys } if keys == &["feeling"]));
        assert!(err.to_string().contains("feeling"));
    }

    #[test]
    fn check_validates_typed_values() {
        let t = weekly_deck();
        t.check("feeling", &AnswerValue::Scale(10)).unwrap();
        assert!(t.check("feeling", &AnswerValue::Scale(0)).is_err());
        assert!(t.check("feeling", &AnswerValue::Text("8".into())).is_err());
        t.check("raise", &AnswerValue::Choice("talk".into()))
            .unwrap();
        t.check("raise", &AnswerValue::Text("talk".into())).unwrap();
        assert!(
            t.check("raise", &AnswerValue::Choice("TALK".into()))
                .is_err()
        );
        t.check("need", &AnswerValue::Choices(vec!["fun".into()]))
            .unwrap();
        assert!(t.check("need", &AnswerValue::Choices(vec![])).is_err());
        assert!(
            t.check("connected", &AnswerValue::Text(" ".into()))
                .is_err()
        );
        assert!(
            t.check("appreciated", &AnswerValue::List(vec!["".into()]))
                .is_err()
        );
        assert!(t.check("nope", &AnswerValue::Scale(1)).is_err());
    }

    #[test]
    fn the_four_part_form_applies_only_when_something_is_raised() {
        let t = weekly_deck();
        let mut a = Answers::default();
        assert!(!t.applies("raise_observation", &a));
        a.insert("raise", AnswerValue::Choice("nothing".into()));
        assert!(!t.applies("raise_request", &a));
        a.insert("raise", AnswerValue::Choice("talk".into()));
        assert!(t.applies("raise_request", &a));
        assert!(t.applies("commit", &a));
        assert!(!t.applies("nope", &a));
    }

    #[test]
    fn restore_kinds_turns_json_strings_back_into_choices() {
        let t = weekly_deck();
        let mut a = Answers::default();
        a.insert("raise", AnswerValue::Text("small".into()));
        a.insert("need", AnswerValue::List(vec!["fun".into()]));
        a.insert("connected", AnswerValue::Text("at the lake".into()));
        a.insert("future_key", AnswerValue::Text("kept".into()));
        t.restore_kinds(&mut a);
        assert_eq!(a.get("raise"), Some(&AnswerValue::Choice("small".into())));
        assert_eq!(
            a.get("need"),
            Some(&AnswerValue::Choices(vec!["fun".into()]))
        );
        assert_eq!(
            a.get("connected"),
            Some(&AnswerValue::Text("at the lake".into()))
        );
        assert_eq!(a.get("future_key"), Some(&AnswerValue::Text("kept".into())));
    }

    #[test]
    fn docs_checkins_md_explains_every_key_prompt_and_option() {
        let doc = include_str!("../../../../docs/checkins.md");
        for q in crate::deck::builtin_decks()
            .iter()
            .flat_map(|d| &d.questions)
        {
            assert!(doc.contains(&format!("`{}`", q.key)), "key {}", q.key);
            assert!(doc.contains(&q.prompt), "prompt of {}", q.key);
            if let QuestionKind::Choice { options } | QuestionKind::MultiChoice { options } =
                &q.kind
            {
                for o in options {
                    assert!(
                        doc.contains(&format!("`{}`", o.key)),
                        "option {} of {}",
                        o.key,
                        q.key
                    );
                }
            }
        }
    }
}
