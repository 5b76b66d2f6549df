//! `hearth checkin`: the weekly ritual. Each partner answers alone; answers are shown side
//! by side only once both have submitted.

use anyhow::{Context, Result};
use hearth_doc::{
    AnswerValue, Answers, Checkin, Commitment, Deck, Person, PersonId, Question, QuestionKind,
    Seal, SpaceDoc, Submission, Week, weekly_deck,
};
use serde_json::json;

use crate::args::{CheckinArgs, CheckinCommand};
use crate::exit::user_error;
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, args: CheckinArgs) -> Result<()> {
    match args.command {
        Some(CheckinCommand::Show { week }) => show(session, week.as_deref()),
        Some(CheckinCommand::Keys { deck }) => keys(session, deck.as_deref()),
        None => answer(session, args),
    }
}

fn answer(session: &Session, args: CheckinArgs) -> Result<()> {
    let this_week = render::this_week();
    let week = match args.week.as_deref() {
        Some(w) => render::parse_week(w)?,
        None => this_week,
    };
    if week > this_week {
        user_error!(
            "{week} has not started yet; answer for this week ({this_week}) or an earlier one"
        );
    }
    if args.answers.is_empty() && !session.interactive {
        user_error!(
            "there is no terminal to ask the questions: answer with --answer KEY=VALUE, at \
             least --answer feeling=1..10 (all keys: `hearth checkin keys`)"
        );
    }

    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    let doc = profile.load()?;
    // The week's deck: a couple's own deck lives in the document, and a partner who
    // opened the week first has chosen it for both.
    let deck = doc.checkin_deck(week, args.deck.as_deref())?;
    let scripted = if args.answers.is_empty() {
        None
    } else {
        let pairs = args.answers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Some(deck.parse_answers(pairs)?)
    };
    let answers = match scripted {
        Some(answers) => answers,
        None => {
            if doc.checkin(week).is_some_and(|c| c.submitted_by(&me)) {
                user_error!(
                    "you have already answered the check-in for {week}; see it with `hearth checkin show {week}`"
                );
            }
            match walk(&deck, &doc, &me, week)? {
                Some(answers) => answers,
                None => {
                    session.say("That's okay. The check-in will be here when you are ready.");
                    return Ok(());
                }
            }
        }
    };
    let commitment = answers.text("commit").map(str::to_owned);
    let followed_up = answers.get("followup").is_some();
    let written = profile.write(|doc| {
        // Asked before this submission can close them: what the person left open.
        let not_followed_up = if followed_up {
            Vec::new()
        } else {
            to_follow_up(doc.open_commitments(&me), week)
        };
        doc.submit_checkin_with(week, &me, Some(&deck.id), answers, render::now())?;
        Ok((doc.people(), doc.checkin(week), not_followed_up))
    });
    let (people, checkin, not_followed_up) = match written {
        Err(hearth_client::Error::Doc(hearth_doc::DocError::AlreadySubmitted { .. })) => {
            user_error!(
                "you have already answered the check-in for {week}; see it with `hearth checkin show {week}`"
            )
        }
        other => other?,
    };
    let revealed = checkin.as_ref().is_some_and(|c| c.revealed(&people));
    if session.json {
        return render::print_json(&json!({ "week": week, "deck": deck.id, "revealed": revealed }));
    }
    let names = Names::of_people(&people);
    session.say(format_args!(
        "Your check-in for {week} is saved, sealed: only this device holds its key."
    ));
    if let Some(text) = commitment {
        session.say(format_args!(
            "Your small thing for this week: {text}. It will come back next week."
        ));
    }
    if let Some(hint) = scripted_follow_up_hint(&not_followed_up, week) {
        session.say(hint);
    }
    let partner = people.iter().find(|p| p.id != me);
    let partner_answered = checkin
        .as_ref()
        .zip(partner)
        .is_some_and(|(c, p)| c.submitted_by(&p.id));
    let next = match partner {
        _ if revealed => format!(
            "You have both answered. Sit down together and look: `hearth checkin show {week}`."
        ),
        Some(p) if partner_answered => format!(
            "{name} has answered too, so your key goes out with your answers. {name}'s opens \
             when their device next syncs; then `hearth checkin show {week}`.",
            name = names.of(&p.id)
        ),
        Some(p) => format!(
            "Your answers open to {} only once they have answered too.",
            names.of(&p.id)
        ),
        None => "Once your partner joins and answers, you will see both side by side.".to_owned(),
    };
    session.say(next);
    Ok(())
}

/// Walks through the deck on the terminal. `None` when the person is not ready now.
fn walk(deck: &Deck, doc: &SpaceDoc, me: &PersonId, week: Week) -> Result<Option<Answers>> {
    let ready = dialoguer::Confirm::new()
        .with_prompt("Are you in a good headspace for this right now?")
        .default(true)
        .interact()
        .context("reading your answer")?;
    if !ready {
        return Ok(None);
    }
    eprintln!(
        "Answer on your own and honestly. Your answers are sealed: your partner\nsees nothing of them until you have both answered.\n"
    );
    let mut answers = Answers::default();
    let earlier = to_follow_up(doc.open_commitments(me), week);
    if let Some(value) = ask_follow_up(&earlier, week)? {
        deck.check(FOLLOWUP, &value)?;
        answers.insert(FOLLOWUP, value);
    }
    for question in after_follow_up(deck) {
        if !deck.applies(&question.key, &answers) {
            continue;
        }
        if let Some(value) = ask(question)? {
            deck.check(&question.key, &value)?;
            answers.insert(&question.key, value);
        }
    }
    eprintln!();
    let submit = dialoguer::Confirm::new()
        .with_prompt("Submit your answers? They stay sealed until your partner has answered too.")
        .default(true)
        .interact()
        .context("reading your answer")?;
    if !submit {
        user_error!("not submitted; nothing was saved. Run `hearth checkin` again when you like");
    }
    Ok(Some(answers))
}

/// The question that follows up earlier commitments. Its key and option keys are a stable
/// contract (docs/checkins.md); the walk only words the options its own way.
const FOLLOWUP: &str = "followup";

/// How the walk offers the follow-up answers, by option key.
const FOLLOW_UP_CHOICES: [(&str, &str); 3] = [
    ("done", "Done"),
    ("partly", "Partly"),
    ("no", "Not this time"),
];

/// The commitments to ask about in a check-in for `week`: the person's open ones from
/// earlier weeks (a later week's cannot have been due yet).
fn to_follow_up(open: Vec<Commitment>, week: Week) -> Vec<Commitment> {
    open.into_iter().filter(|c| c.week < week).collect()
}

/// The deck's questions in the order the walk asks them, once the follow-up has been
/// asked first.
fn after_follow_up(deck: &Deck) -> impl Iterator<Item = &Question> {
    deck.questions.iter().filter(|q| q.key != FOLLOWUP)
}

/// "Last week you said: cook on Friday", or for an older one, the week it was made in.
fn said_line(c: &Commitment, week: Week) -> String {
    if c.week == week.previous() {
        format!("Last week you said: {}", c.text)
    } else {
        format!("In {} you said: {}", c.week, c.text)
    }
}

/// Asks how the earlier commitments went, before anything else: the follow-up belongs to
/// last week, and is easiest to answer while fresh. `None` when there is nothing to ask or
/// the person skips it.
fn ask_follow_up(earlier: &[Commitment], week: Week) -> Result<Option<AnswerValue>> {
    if earlier.is_empty() {
        return Ok(None);
    }
    eprintln!("First, last time's small thing for us.");
    for c in earlier {
        eprintln!("  {}", said_line(c, week));
    }
    eprintln!("No judgement either way: \"not this time\" is a fine answer.");
    let prompt = if earlier.len() == 1 {
        "Did it happen?"
    } else {
        "Did they happen?"
    };
    let mut items: Vec<&str> = FOLLOW_UP_CHOICES.iter().map(|(_, label)| *label).collect();
    items.push("(skip)");
    let picked = dialoguer::Select::new()
        .with_prompt(prompt)
        .items(&items)
        .default(0)
        .interact()
        .context("reading your answer")?;
    Ok(FOLLOW_UP_CHOICES
        .get(picked)
        .map(|(key, _)| AnswerValue::Choice((*key).to_owned())))
}

/// After a scripted check-in that left earlier commitments without a follow-up: one kind
/// line naming them and how to say how they went next time.
fn scripted_follow_up_hint(earlier: &[Commitment], week: Week) -> Option<String> {
    let said: Vec<String> = earlier.iter().map(|c| said_line(c, week)).collect();
    let (first, rest) = said.split_first()?;
    let also: String = rest
        .iter()
        .map(|s| format!("; {}", lowercase_first(s)))
        .collect();
    Some(format!(
        "{first}{also}. Whenever you like, say how it went in your next check-in with \
         --answer followup=done, partly or no (\"not this time\" is a fine answer)."
    ))
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

fn ask(q: &Question) -> Result<Option<AnswerValue>> {
    let optional = if q.required { "" } else { " (Enter to skip)" };
    eprintln!("\n{}", q.help);
    let value = match &q.kind {
        QuestionKind::Scale {
            min,
            max,
            low,
            high,
        } => {
            let (min, max) = (*min, *max);
            let required = q.required;
            let raw: String = dialoguer::Input::new()
                .with_prompt(format!(
                    "{} {min}–{max} ({min} {low}, {max} {high}){optional}",
                    q.prompt
                ))
                .allow_empty(!required)
                .validate_with(move |s: &String| -> Result<(), String> {
                    match s.trim().parse::<u8>() {
                        _ if s.trim().is_empty() && !required => Ok(()),
                        Ok(n) if (min..=max).contains(&n) => Ok(()),
                        _ => Err(format!("a whole number from {min} to {max}")),
                    }
                })
                .interact_text()
                .context("reading your answer")?;
            raw.trim().parse::<u8>().ok().map(AnswerValue::Scale)
        }
        QuestionKind::Choice { options } => {
            let mut items: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
            if !q.required {
                items.push("(skip)");
            }
            let picked = dialoguer::Select::new()
                .with_prompt(&q.prompt)
                .items(&items)
                .default(0)
                .interact()
                .context("reading your answer")?;
            options
                .get(picked)
                .map(|o| AnswerValue::Choice(o.key.to_owned()))
        }
        QuestionKind::MultiChoice { options } => {
            let items: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
            let picked = dialoguer::MultiSelect::new()
                .with_prompt(format!("{} (space to pick, Enter when done)", q.prompt))
                .items(&items)
                .interact()
                .context("reading your answer")?;
            let keys: Vec<String> = picked
                .into_iter()
                .filter_map(|i| options.get(i).map(|o| o.key.to_owned()))
                .collect();
            (!keys.is_empty()).then_some(AnswerValue::Choices(keys))
        }
        QuestionKind::Text => {
            super::ask_line(&format!("{}{optional}", q.prompt))?.map(AnswerValue::Text)
        }
        QuestionKind::List => {
            eprintln!("{} One per line; an empty line finishes.", q.prompt);
            let mut items = Vec::new();
            while let Some(item) = super::ask_line("  one more")? {
                items.push(item);
            }
            (!items.is_empty()).then_some(AnswerValue::List(items))
        }
    };
    Ok(value)
}

fn show(session: &Session, week: Option<&str>) -> Result<()> {
    let profile = session.open()?;
    let doc = profile.load()?;
    let me = profile.person_id().clone();
    let checkin = match week {
        Some(w) => doc.checkin(render::parse_week(w)?),
        None => doc
            .checkin(render::this_week())
            .or_else(|| doc.checkins().into_iter().next_back()),
    };
    let Some(checkin) = checkin else {
        if session.json {
            return render::print_json(&serde_json::Value::Null);
        }
        match week {
            Some(w) => println!("Nobody has checked in for {w} yet."),
            None => println!("No check-ins yet. Start this week's with `hearth checkin`."),
        }
        return Ok(());
    };
    let people = doc.people();
    let revealed = checkin.revealed(&people);
    let visible = visible_submitters(&checkin);

    if session.json {
        let answers: serde_json::Map<String, serde_json::Value> = visible
            .iter()
            .filter_map(|p| checkin.submissions.get(*p))
            .map(|s| Ok((s.person.to_string(), serde_json::to_value(&s.answers)?)))
            .collect::<Result<_, serde_json::Error>>()?;
        let who: Vec<_> = people
            .iter()
            .map(|p| {
                let s = checkin.submissions.get(&p.id);
                json!({
                    "id": p.id,
                    "name": p.name,
                    "submitted_at": s.map(|s| s.submitted_at),
                    "seal": s.map(|s| s.seal),
                    "released_at": s.and_then(|s| s.released_at),
                })
            })
            .collect();
        return render::print_json(&json!({
            "week": checkin.week,
            "revealed": revealed,
            "people": who,
            "answers": answers,
        }));
    }

    let names = Names::of_people(&people);
    let deck = doc.deck(&checkin.deck);
    println!(
        "Check-in {} (week of {})",
        checkin.week,
        checkin.week.monday().format("%a %-d %b %Y")
    );
    if checkin.deck != hearth_doc::WEEKLY_DECK_ID {
        let title = deck.as_ref().map_or(checkin.deck.as_str(), |d| &d.title);
        println!("  deck: {title}");
    }
    for p in &people {
        let line = match checkin.submissions.get(&p.id) {
            Some(s) => format!(
                "answered {}, {}",
                render::day(s.submitted_at),
                seal_text(s, p.id == me)
            ),
            None => "not yet".to_owned(),
        };
        println!("  {}: {line}", p.name);
    }
    println!();
    print_answers(&checkin, deck.as_ref(), &visible, &names);
    println!("{}", show_note(&checkin, &people, &me, &names));
    Ok(())
}

/// How one person's answers stand, in a few words.
fn seal_text(s: &Submission, mine: bool) -> &'static str {
    match s.seal {
        Seal::Open => "open",
        Seal::Unsealed => "open (answered before sealing)",
        Seal::Sealed if mine && s.answers.is_some() => "sealed; the key is on this device",
        Seal::Sealed if mine => "sealed; the key is on the device you answered on",
        Seal::Sealed => "sealed",
        Seal::Replaced => {
            "NOT SHOWN: these answers were swapped after the other's were opened to them"
        }
        Seal::Mismatch => "NOT SHOWN: the key released for them does not open them",
    }
}

/// What happens next, or what went wrong, for this week.
fn show_note(checkin: &Checkin, people: &[Person], me: &PersonId, names: &Names) -> String {
    if checkin.revealed(people) {
        return "You have both answered. Take turns: read, listen, and ask before you explain."
            .to_owned();
    }
    let Some(partner) = people.iter().find(|p| p.id != *me) else {
        return "Your partner has not joined yet; their answers will appear here once they \
                have answered too."
            .to_owned();
    };
    let name = names.of(&partner.id);
    let mine = checkin.submissions.get(me);
    let theirs = checkin.submissions.get(&partner.id);
    match (mine, theirs) {
        (_, Some(t)) if matches!(t.seal, Seal::Replaced | Seal::Mismatch) => format!(
            "{name}'s answers cannot be shown: what was released does not match what was \
             sealed. Nothing was changed on this device; talk about it together."
        ),
        (Some(m), _) if matches!(m.seal, Seal::Replaced | Seal::Mismatch) => {
            "Your own answers read as changed after sealing: was this check-in answered on \
             another device too? Talk about it together."
                .to_owned()
        }
        (None, Some(_)) => format!(
            "{name} has answered; their answers stay sealed until you have answered too: \
             `hearth checkin --week {}`.",
            checkin.week
        ),
        (Some(_), None) => format!("Your answers open to {name} once they have answered too."),
        (Some(m), Some(t)) => match m.released_at {
            // Their key is the one still missing after they could read yours.
            Some(at) if t.seal == Seal::Sealed => format!(
                "{name} has been able to read your answers since {}; their key has not \
                 arrived yet. It comes when {name}'s device syncs.",
                render::day(at)
            ),
            _ => "You have both answered; the keys open the answers as your devices sync \
                  (`hearth sync`)."
                .to_owned(),
        },
        (None, None) => String::new(),
    }
}

/// Whose answers this device can show: open ones, and your own while sealed (this device
/// holds their key).
pub fn visible_submitters(checkin: &Checkin) -> Vec<&PersonId> {
    checkin
        .submissions
        .values()
        .filter(|s| s.answers.is_some())
        .map(|s| &s.person)
        .collect()
}

/// The answers in the order of the week's deck; answers it does not have (or all of them,
/// when the deck is not known here) still show, by key, after the known ones.
fn print_answers(checkin: &Checkin, deck: Option<&Deck>, visible: &[&PersonId], names: &Names) {
    let question = |key: &str| deck.and_then(|t| t.question(key));
    let mut keys: Vec<String> = deck
        .map(|t| t.keys().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    for p in visible {
        if let Some(s) = checkin.submissions.get(*p) {
            for (k, _) in s.answers.iter().flat_map(Answers::iter) {
                if !keys.iter().any(|known| known == k) {
                    keys.push(k.to_owned());
                }
            }
        }
    }
    for key in &keys {
        let rows: Vec<(&str, String)> = visible
            .iter()
            .filter_map(|p| {
                let value = checkin.submissions.get(*p)?.answers.as_ref()?.get(key)?;
                Some((names.of(p), format_value(question(key), value)))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let prompt = question(key).map_or(key.as_str(), |q| q.prompt.as_str());
        println!("{prompt}");
        for (name, value) in rows {
            println!(
                "  {name}: {}",
                render::indent(&value, name.chars().count() + 4)
            );
        }
        println!();
    }
}

pub fn format_value(question: Option<&Question>, value: &AnswerValue) -> String {
    let label = |key: &str| -> String {
        match question.map(|q| &q.kind) {
            Some(QuestionKind::Choice { options } | QuestionKind::MultiChoice { options }) => {
                options
                    .iter()
                    .find(|o| o.key == key)
                    .map_or_else(|| key.to_owned(), |o| o.label.to_owned())
            }
            _ => key.to_owned(),
        }
    };
    match value {
        AnswerValue::Scale(n) => match question.map(|q| &q.kind) {
            Some(QuestionKind::Scale { max, .. }) => format!("{n} of {max}"),
            _ => n.to_string(),
        },
        AnswerValue::Choice(c) => label(c),
        AnswerValue::Choices(cs) => cs.iter().map(|c| label(c)).collect::<Vec<_>>().join(", "),
        AnswerValue::Text(t) => t.clone(),
        AnswerValue::List(items) => items
            .iter()
            .map(|i| format!("• {i}"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn keys(session: &Session, deck: Option<&str>) -> Result<()> {
    let deck = match deck {
        None => weekly_deck(),
        Some(id) => super::deck::find(session, id)?,
    };
    print_keys(session, &deck)
}

/// A deck's questions with their answer keys, for `--answer KEY=VALUE`.
pub fn print_keys(session: &Session, deck: &Deck) -> Result<()> {
    if session.json {
        let rows: Vec<_> = deck
            .questions
            .iter()
            .map(|q| json!({ "key": q.key, "prompt": q.prompt, "kind": kind_text(&q.kind), "required": q.required, "when": q.when }))
            .collect();
        return render::print_json(&rows);
    }
    println!("Answer with --answer KEY=VALUE (repeat a list or multi-choice key to add more):\n");
    for q in &deck.questions {
        let required = if q.required { ", required" } else { "" };
        let when = q.when.as_ref().map_or(String::new(), |w| {
            format!("; asked when {} is {}", w.question, w.is.join(" or "))
        });
        println!("  {:<18} {}", q.key, q.prompt);
        println!("  {:<18} {}{required}{when}", "", kind_text(&q.kind));
    }
    Ok(())
}

fn kind_text(kind: &QuestionKind) -> String {
    match kind {
        QuestionKind::Scale { min, max, .. } => format!("a number {min}–{max}"),
        QuestionKind::Choice { options } => format!(
            "one of: {}",
            options
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        QuestionKind::MultiChoice { options } => format!(
            "any of (comma-separated): {}",
            options
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        QuestionKind::Text => "text".to_owned(),
        QuestionKind::List => "text; repeat the key for more items".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hearth_doc::{CommitmentStatus, EntryId, Millis};

    use super::*;

    fn commitment(week: &str, text: &str) -> Commitment {
        Commitment {
            id: EntryId::new(),
            author: PersonId::random(),
            text: text.into(),
            week: week.parse().unwrap(),
            status: CommitmentStatus::Open,
            created_at: Millis(0),
        }
    }

    #[test]
    fn only_earlier_weeks_commitments_are_followed_up() {
        let week: Week = "2026-W45".parse().unwrap();
        let open = vec![
            commitment("2026-W43", "call your mum"),
            commitment("2026-W44", "cook on Friday"),
            commitment("2026-W45", "this week's"),
            commitment("2026-W46", "a later week's"),
        ];
        let asked: Vec<String> = to_follow_up(open, week)
            .into_iter()
            .map(|c| c.text)
            .collect();
        assert_eq!(asked, ["call your mum", "cook on Friday"]);
    }

    #[test]
    fn the_follow_up_is_asked_first_and_not_again() {
        let t = weekly_deck();
        let later: Vec<&str> = after_follow_up(&t).map(|q| q.key.as_str()).collect();
        assert!(!later.contains(&FOLLOWUP), "{later:?}");
        assert_eq!(later.len(), t.questions.len() - 1);
        // The walk's own wording keeps the stored keys of the deck's options.
        let Some(QuestionKind::Choice { options }) = t.question(FOLLOWUP).map(|q| &q.kind) else {
            panic!("followup is a choice");
        };
        let keys: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
        let walk: Vec<&str> = FOLLOW_UP_CHOICES.iter().map(|(k, _)| *k).collect();
        assert_eq!(walk, keys);
        for key in walk {
            t.check(FOLLOWUP, &AnswerValue::Choice(key.into())).unwrap();
        }
    }

    #[test]
    fn commitments_are_named_by_when_they_were_made() {
        let week: Week = "2026-W45".parse().unwrap();
        assert_eq!(
            said_line(&commitment("2026-W44", "cook on Friday"), week),
            "Last week you said: cook on Friday"
        );
        assert_eq!(
            said_line(&commitment("2026-W40", "call your mum"), week),
            "In 2026-W40 you said: call your mum"
        );
    }

    #[test]
    fn the_scripted_hint_names_each_and_says_how_gently() {
        let week: Week = "2026-W45".parse().unwrap();
        assert_eq!(scripted_follow_up_hint(&[], week), None);
        let one =
            scripted_follow_up_hint(&[commitment("2026-W44", "cook on Friday")], week).unwrap();
        assert!(
            one.starts_with("Last week you said: cook on Friday."),
            "{one}"
        );
        assert!(one.contains("--answer followup=done"), "{one}");
        assert!(one.contains("not this time"), "{one}");
        let two = scripted_follow_up_hint(
            &[
                commitment("2026-W40", "call your mum"),
                commitment("2026-W44", "cook on Friday"),
            ],
            week,
        )
        .unwrap();
        assert!(
            two.starts_with(
                "In 2026-W40 you said: call your mum; last week you said: cook on Friday."
            ),
            "{two}"
        );
    }
}
