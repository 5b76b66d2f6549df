//! `hearth deck`: the question decks. The built-in ones come with hearth; a couple's own
//! are TOML files added with `hearth deck add`, kept in the shared document so they reach
//! the partner, and used with `hearth checkin --deck ID`.

use std::path::Path;

use anyhow::{Context, Result};
use hearth_doc::{Deck, DocError, MAX_DECK_BYTES, builtin_deck, builtin_decks};
use serde_json::json;

use crate::args::DeckCommand;
use crate::exit::user_error;
use crate::session::Session;

pub fn run(session: &Session, cmd: DeckCommand) -> Result<()> {
    match cmd {
        DeckCommand::List => list(session),
        DeckCommand::Show { id } => show(session, &id),
        DeckCommand::Add { file, replace } => add(session, &file, replace),
    }
}

/// The deck `id`: a built-in one needs no profile, a couple's own is read from the space.
pub fn find(session: &Session, id: &str) -> Result<Deck> {
    if let Some(deck) = builtin_deck(id) {
        return Ok(deck.clone());
    }
    let doc = session.open()?.load()?;
    Ok(doc
        .deck(id)
        .ok_or_else(|| DocError::UnknownDeck { id: id.to_owned() })?)
}

fn list(session: &Session) -> Result<()> {
    let doc = session.open()?.load()?;
    let own = doc.own_decks();
    let rows: Vec<(&Deck, bool)> = builtin_decks()
        .iter()
        .map(|d| (d, true))
        .chain(own.iter().map(|d| (d, false)))
        .collect();
    if session.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(d, builtin)| {
                json!({
                    "id": d.id,
                    "title": d.title,
                    "kind": d.kind,
                    "questions": d.questions.len(),
                    "builtin": builtin,
                })
            })
            .collect();
        return crate::render::print_json(&rows);
    }
    for (d, builtin) in &rows {
        let whose = if *builtin { "built in" } else { "yours" };
        println!(
            "  {:<20} {:<8} {:>2} questions  {} ({whose})",
            d.id,
            d.kind.as_str(),
            d.questions.len(),
            d.title
        );
    }
    if own.is_empty() {
        session.say("Add your own with `hearth deck add FILE` (see docs/checkins.md, \"Decks\").");
    }
    Ok(())
}

fn show(session: &Session, id: &str) -> Result<()> {
    let deck = find(session, id)?;
    if !session.json {
        println!("{} ({}, {})", deck.title, deck.id, deck.kind.as_str());
        if !deck.description.is_empty() {
            println!("{}", deck.description);
        }
        println!();
    }
    super::checkin::print_keys(session, &deck)
}

fn add(session: &Session, file: &Path, replace: bool) -> Result<()> {
    let (name, text) = if file == Path::new("-") {
        ("standard input".to_owned(), super::read_stdin()?)
    } else {
        let meta = std::fs::metadata(file)
            .with_context(|| format!("cannot read the deck file {}", file.display()))?;
        if meta.len() > MAX_DECK_BYTES as u64 {
            user_error!(
                "{} is {} bytes, over the {MAX_DECK_BYTES}-byte limit for a deck; split it into two decks",
                file.display(),
                meta.len()
            );
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the deck file {}", file.display()))?;
        (file.display().to_string(), text)
    };
    // Checked before the profile is opened: a mistake in the file costs no passphrase.
    let deck = hearth_doc::parse_deck(&name, &text)?;
    if deck.kind != hearth_doc::DeckKind::Checkin {
        user_error!(
            "{name}: only check-in decks (kind = \"checkin\") can be added for now; the daily \
             question is `hearth daily`"
        );
    }
    let mut profile = session.open()?;
    let (deck, written) = profile.write(|doc| doc.add_deck(&name, &text, replace))?;
    if session.json {
        return crate::render::print_json(&json!({
            "id": deck.id,
            "questions": deck.questions.len(),
            "written": written,
        }));
    }
    if written {
        session.say(format_args!(
            "Added the deck \"{}\" ({}, {} questions). It reaches your partner on the next \
             sync; answer it with `hearth checkin --deck {}`.",
            deck.title,
            deck.id,
            deck.questions.len(),
            deck.id
        ));
    } else {
        session.say(format_args!(
            "The deck {} is already in your space, exactly like this; nothing changed.",
            deck.id
        ));
    }
    Ok(())
}
