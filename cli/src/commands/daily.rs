//! `hearth daily`: the optional daily "How are you really doing?", one honest line and a
//! number if you like.
//!
//! The answer is kept as a journal entry tagged `daily`, titled with the question: the
//! journal already syncs, lists, exports and keeps private entries private, so the daily
//! habit needs no storage of its own. `hearth journal list --tag daily` reads them back. The
//! questions come from the built-in daily deck (`decks/daily.toml`), which also checks the
//! answers.

use anyhow::Result;
use hearth_doc::{JournalDraft, builtin_deck};
use serde_json::json;

use crate::args::DailyArgs;
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

/// The built-in daily deck and its two answer keys.
const DAILY_DECK: &str = "daily-v1";
const TEXT_KEY: &str = "today";
const SCORE_KEY: &str = "today_score";

pub fn run(session: &Session, args: DailyArgs) -> Result<()> {
    let deck = builtin_deck(DAILY_DECK).expect("the daily deck is built in");
    let question = deck
        .question(TEXT_KEY)
        .expect("the daily deck asks `today`");
    let asked = args.text.is_none() && session.interactive;
    if asked {
        eprintln!("{}", question.help);
    }
    let text = super::text_argument(session, args.text, &question.prompt, "answer")?;
    if text.is_empty() {
        user_error!("nothing was written, so nothing was saved");
    }
    let score = match args.score {
        Some(score) => Some(score),
        None if asked => super::ask_line(
            "And as a number? 1 (running on empty) to 5 (doing well), Enter to skip",
        )?,
        None => None,
    };
    let mut pairs = vec![(TEXT_KEY, text.as_str())];
    if let Some(score) = score.as_deref() {
        pairs.push((SCORE_KEY, score));
    }
    let answers = deck.parse_answers(pairs)?;
    let mut body = answers.text(TEXT_KEY).unwrap_or_default().to_owned();
    if let Some(n) = answers.scale(SCORE_KEY) {
        body.push_str(&format!("\n\n{n} of 5"));
    }
    let draft = JournalDraft {
        title: Some(question.prompt.clone()),
        body,
        tags: vec!["daily".to_owned()],
    };
    let id = super::journal::keep(session, draft, args.private)?;
    if session.json {
        return render::print_json(&json!({ "id": id, "private": args.private }));
    }
    if args.private {
        session.say("Kept for you alone, on this device. Thank you for checking in with yourself.");
    } else {
        session
            .say("Shared in your journal (tagged daily). Thank you for saying how you really are.");
    }
    Ok(())
}
