//! `hearth checkin`: the weekly ritual. Each partner answers alone; answers are shown side
//! by side only once both have submitted.

use anyhow::{Context, Result};
use hearth_doc::{
    AnswerValue, Answers, Checkin, Commitment, Person, PersonId, Question, QuestionKind, SpaceDoc,
    Template, Week, weekly_template,
};
use serde_json::json;

use crate::args::{CheckinArgs, CheckinCommand};
use crate::exit::user_error;
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, args: CheckinArgs) -> Result<()> {
    match args.command {
        Some(CheckinCommand::Show { week }) => show(session, week.as_deref()),
        Some(CheckinCommand::Keys) => keys(session),
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
    let template = weekly_template();
    // Parse scripted answers before touching the profile: a typo costs nothing.
    let scripted = if args.answers.is_empty() {
        None
    } else {
        let pairs = args.answers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Some(template.parse_answers(pairs)?)
    };
    if scripted.is_none() && !session.interactive {
        user_error!(
            "there is no terminal to ask the questions: answer with --answer KEY=VALUE, at \
             least --answer feeling=1..10 (all keys: `hearth checkin keys`)"
        );
    }

    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    let answers = match scripted {
        Some(answers) => answers,
        None => {
            let doc = profile.load()?;
            if doc.checkin(week).is_some_and(|c| c.submitted_by(&me)) {
                user_error!(
                    "you have already answered the check-in for {week}; see it with `hearth checkin show {week}`"
                );
            }
            match walk(&template, &doc, &me, week)? {
                Some(answers) => answers,
                None => {
                    println!("That's okay. The check-in will be here when you are ready.");
                    return Ok(());
                }
            }
        }
    };
    let commitment = answers.text("commit").map(str::to_owned);
    let written = profile.write(|doc| {
        doc.submit_checkin(week, &me, answers, render::now())?;
        Ok((doc.people(), doc.checkin(week)))
    });
    let (people, checkin) = match written {
        Err(hearth_client::Error::Doc(hearth_doc::DocError::AlreadySubmitted { .. })) => {
            user_error!(
                "you have already answered the check-in for {week}; see it with `hearth checkin show {week}`"
            )
        }
        other => other?,
    };
    let revealed = checkin.as_ref().is_some_and(|c| c.revealed(&people));
    if session.json {
        return render::print_json(&json!({ "week": week, "revealed": revealed }));
    }
    let names = Names::of_people(&people);
    println!("Your check-in for {week} is saved.");
    if let Some(text) = commitment {
        println!("Your small thing for this week: {text}. It will come back next week.");
    }
    let partner = people.iter().find(|p| p.id != me);
    match partner {
        _ if revealed => println!(
            "You have both answered. Sit down together and look: `hearth checkin show {week}`."
        ),
        Some(p) => println!(
            "Your answers stay sealed until {} has answered too.",
            names.of(&p.id)
        ),
        None => println!("Once your partner joins and answers, you will see both side by side."),
    }
    Ok(())
}

/// Walks through the template on the terminal. `None` when the person is not ready now.
fn walk(template: &Template, doc: &SpaceDoc, me: &PersonId, week: Week) -> Result<Option<Answers>> {
    let ready = dialoguer::Confirm::new()
        .with_prompt("Are you in a good headspace for this right now?")
        .default(true)
        .interact()
        .context("reading your answer")?;
    if !ready {
        return Ok(None);
    }
    eprintln!(
        "Answer on your own and honestly; nothing is shown to your partner until you have both answered.\n"
    );
    let mut answers = Answers::default();
    let earlier: Vec<Commitment> = doc
        .open_commitments(me)
        .into_iter()
        .filter(|c| c.week < week)
        .collect();
    if !earlier.is_empty() {
        eprintln!("Last time you said you would:");
        for c in &earlier {
            eprintln!("  • {} ({})", c.text, c.week);
        }
    }
    for question in &template.questions {
        if question.key == "followup" && earlier.is_empty() {
            continue;
        }
        if !template.applies(question.key, &answers) {
            continue;
        }
        if let Some(value) = ask(question)? {
            template.check(question.key, &value)?;
            answers.insert(question.key, value);
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
            let mut items: Vec<&str> = options.iter().map(|o| o.label).collect();
            if !q.required {
                items.push("(skip)");
            }
            let picked = dialoguer::Select::new()
                .with_prompt(q.prompt)
                .items(&items)
                .default(0)
                .interact()
                .context("reading your answer")?;
            options
                .get(picked)
                .map(|o| AnswerValue::Choice(o.key.to_owned()))
        }
        QuestionKind::MultiChoice { options } => {
            let items: Vec<&str> = options.iter().map(|o| o.label).collect();
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
    let visible = visible_submitters(&checkin, &people, &me);

    if session.json {
        let answers: serde_json::Map<String, serde_json::Value> = visible
            .iter()
            .filter_map(|p| checkin.submissions.get(*p))
            .map(|s| Ok((s.person.to_string(), serde_json::to_value(&s.answers)?)))
            .collect::<Result<_, serde_json::Error>>()?;
        let who: Vec<_> = people
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "name": p.name,
                    "submitted_at": checkin.submissions.get(&p.id).map(|s| s.submitted_at),
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
    println!(
        "Check-in {} (week of {})",
        checkin.week,
        checkin.week.monday().format("%a %-d %b %Y")
    );
    for p in &people {
        match checkin.submissions.get(&p.id) {
            Some(s) => println!("  {}: answered {}", p.name, render::day(s.submitted_at)),
            None => println!("  {}: not yet", p.name),
        }
    }
    println!();
    print_answers(&checkin, &visible, &names);
    let partner = people.iter().find(|p| p.id != me);
    if !revealed {
        let note = match partner {
            None => "Your partner has not joined yet; their answers will appear here once they have answered too.".to_owned(),
            Some(p) if !checkin.submitted_by(&me) => format!(
                "{} has answered. Their answers open once you have answered too: `hearth checkin --week {}`.",
                p.name, checkin.week
            ),
            Some(p) => format!("{}'s answers stay sealed until they have answered.", p.name),
        };
        println!("{note}");
    } else {
        println!("You have both answered. Take turns: read, listen, and ask before you explain.");
    }
    Ok(())
}

/// Whose answers may be shown: your own always, your partner's only once everyone has
/// answered.
pub fn visible_submitters<'a>(
    checkin: &'a Checkin,
    people: &[Person],
    me: &PersonId,
) -> Vec<&'a PersonId> {
    let revealed = checkin.revealed(people);
    checkin
        .submissions
        .keys()
        .filter(|p| revealed || *p == me)
        .collect()
}

fn print_answers(checkin: &Checkin, visible: &[&PersonId], names: &Names) {
    let template = hearth_doc::template(&checkin.template).unwrap_or_else(weekly_template);
    let mut keys: Vec<String> = template.keys().into_iter().map(str::to_owned).collect();
    // Answers from a newer template still show, after the known ones.
    for p in visible {
        if let Some(s) = checkin.submissions.get(*p) {
            for (k, _) in s.answers.iter() {
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
                let value = checkin.submissions.get(*p)?.answers.get(key)?;
                Some((names.of(p), format_value(template.question(key), value)))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let prompt = template.question(key).map_or(key.as_str(), |q| q.prompt);
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

fn keys(session: &Session) -> Result<()> {
    let template = weekly_template();
    if session.json {
        let rows: Vec<_> = template
            .questions
            .iter()
            .map(|q| json!({ "key": q.key, "prompt": q.prompt, "kind": kind_text(&q.kind), "required": q.required }))
            .collect();
        return render::print_json(&rows);
    }
    println!("Answer with --answer KEY=VALUE (repeat a list or multi-choice key to add more):\n");
    for q in &template.questions {
        let required = if q.required { ", required" } else { "" };
        println!("  {:<18} {}", q.key, q.prompt);
        println!("  {:<18} {}{required}", "", kind_text(&q.kind));
    }
    Ok(())
}

fn kind_text(kind: &QuestionKind) -> String {
    match kind {
        QuestionKind::Scale { min, max, .. } => format!("a number {min}–{max}"),
        QuestionKind::Choice { options } => format!(
            "one of: {}",
            options.iter().map(|o| o.key).collect::<Vec<_>>().join(", ")
        ),
        QuestionKind::MultiChoice { options } => format!(
            "any of (comma-separated): {}",
            options.iter().map(|o| o.key).collect::<Vec<_>>().join(", ")
        ),
        QuestionKind::Text => "text".to_owned(),
        QuestionKind::List => "text; repeat the key for more items".to_owned(),
    }
}
