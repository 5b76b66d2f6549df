//! A couple's own question decks, kept in the shared document so they reach the partner,
//! and the choice of deck for a week's check-in.
//!
//! A deck is stored as the TOML text its author wrote (`decks`: id -> text, see
//! `layout.rs`) and parsed by every reader with the same rules as `hearth deck add`. A
//! stored deck this version cannot read is skipped, as if unknown: check-ins that used it
//! still show their answers, by key.
//!
//! Both partners answer a week with the same deck: the first check-in opened for the week
//! fixes it, and asking for another one that week is refused with the deck to use. Two
//! partners who open the same week offline with different decks both keep their answers;
//! readers take the deck of the check-in opened first, and answers to keys that deck does
//! not have are shown by key.

use automerge::ObjType;
use automerge::transaction::Transactable;

use crate::checkins;
use crate::deck::{self, Deck, DeckKind, WEEKLY_DECK_ID, parse_deck};
use crate::error::DocError;
use automerge::ReadDoc;

use crate::layout;
use crate::space::SpaceDoc;
use crate::week::Week;

impl SpaceDoc {
    /// The deck `id`: a built-in one (also by its short name, `gentle` for `gentle-v1`),
    /// else one the couple added. `None` if there is none this version can read.
    pub fn deck(&self, id: &str) -> Option<Deck> {
        if let Some(builtin) = deck::builtin_deck(id) {
            return Some(builtin.clone());
        }
        self.stored_decks()
            .into_iter()
            .find(|(key, _)| key == id)
            .and_then(|(key, text)| read_stored(&key, &text))
    }

    /// The decks the couple added, by id; ones this version cannot read are left out.
    pub fn own_decks(&self) -> Vec<Deck> {
        let mut decks: Vec<Deck> = self
            .stored_decks()
            .into_iter()
            .filter_map(|(key, text)| read_stored(&key, &text))
            .collect();
        decks.sort_by(|a, b| a.id.cmp(&b.id));
        decks
    }

    /// Adds a deck from its TOML text (`file` names it in errors), as one change, so it
    /// syncs to the partner. Adding the very same text again writes nothing. Returns the
    /// deck and whether anything was written.
    ///
    /// # Errors
    ///
    /// [`DocError::Deck`] naming the line of the first problem in the file,
    /// [`DocError::BuiltinDeckId`] for the id of a built-in deck, [`DocError::DeckExists`]
    /// if the space has a different deck with this id and `replace` is false.
    pub fn add_deck(
        &mut self,
        file: &str,
        text: &str,
        replace: bool,
    ) -> Result<(Deck, bool), DocError> {
        let deck = parse_deck(file, text)?;
        // Short names count too: `--deck gentle` must never be ambiguous.
        if deck::builtin_deck(&deck.id).is_some() {
            return Err(DocError::BuiltinDeckId { id: deck.id });
        }
        match self
            .stored_decks()
            .into_iter()
            .find(|(key, _)| *key == deck.id)
        {
            Some((_, existing)) if existing == text => return Ok((deck, false)),
            Some(_) if !replace => return Err(DocError::DeckExists { id: deck.id }),
            _ => {}
        }
        let (me, person) = self.me()?;
        self.change(|doc| {
            let decks =
                layout::collection_for_write(doc, &me, &person, layout::DECKS, ObjType::Map)?;
            doc.put(&decks, deck.id.as_str(), text)?;
            Ok(())
        })?;
        Ok((deck, true))
    }

    /// The deck `person` answers `week` with: the one the week's check-in already uses, or
    /// `asked`, or the weekly one.
    ///
    /// # Errors
    ///
    /// [`DocError::DeckMismatch`] if the week already uses another deck than `asked`,
    /// [`DocError::UnknownDeck`] if the deck is not here (not yet synced, or from a newer
    /// hearth), [`DocError::NotACheckinDeck`] for a daily deck.
    pub fn checkin_deck(&self, week: Week, asked: Option<&str>) -> Result<Deck, DocError> {
        let unknown = |id: &str| DocError::UnknownDeck { id: id.to_owned() };
        let asked = asked
            .map(|id| self.deck(id).ok_or_else(|| unknown(id)))
            .transpose()?;
        let deck = match (self.week_deck(week), asked) {
            (Some(existing), Some(asked)) if asked.id != existing => {
                return Err(DocError::DeckMismatch {
                    week,
                    deck: existing,
                    asked: asked.id,
                });
            }
            (Some(existing), None) => self.deck(&existing).ok_or_else(|| unknown(&existing))?,
            (_, Some(asked)) => asked,
            (None, None) => self
                .deck(WEEKLY_DECK_ID)
                .expect("the weekly deck is built in"),
        };
        if deck.kind == DeckKind::Checkin {
            Ok(deck)
        } else {
            Err(DocError::NotACheckinDeck { id: deck.id })
        }
    }

    /// The deck id of the week's first-opened check-in (as readers merge them), if any.
    fn week_deck(&self, week: Week) -> Option<String> {
        checkins::raw_checkins(&self.doc, &self.authors(), false, Some(week))
            .into_iter()
            .min_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)))
            .map(|c| c.deck)
    }

    /// Every stored deck text by id. Where both partners stored a deck under one id, the
    /// later write counts (by Automerge's op order, as last-writer-wins would have it in one
    /// map): the same everywhere.
    fn stored_decks(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String, (u64, Vec<u8>))> = Vec::new();
        for (map, _) in layout::collections(&self.doc, layout::DECKS, ObjType::Map) {
            for item in self.doc.map_range(&map, ..) {
                let automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) = &item.value
                else {
                    continue;
                };
                let order = match item.id() {
                    automerge::ObjId::Id(counter, actor, _) => (counter, actor.to_bytes().to_vec()),
                    automerge::ObjId::Root => (0, Vec::new()),
                };
                match out.iter_mut().find(|(k, _, _)| *k == item.key) {
                    Some(existing) if existing.2 >= order => {}
                    Some(existing) => *existing = (item.key.to_string(), text.to_string(), order),
                    None => out.push((item.key.to_string(), text.to_string(), order)),
                }
            }
        }
        out.into_iter().map(|(k, t, _)| (k, t)).collect()
    }
}

/// A stored deck, if it parses and really has the id it is stored under.
fn read_stored(key: &str, text: &str) -> Option<Deck> {
    let deck = parse_deck(&format!("deck {key}"), text).ok()?;
    (deck.id == key && deck::builtin_deck(key).is_none()).then_some(deck)
}
