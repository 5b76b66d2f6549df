//! `hearth feedback`: raise one thing kindly, in four parts, and listen well in reply.

use anyhow::Result;
use hearth_doc::{Feedback, FeedbackDraft, ReplyKind};
use serde_json::json;

use crate::args::{FeedbackArgs, FeedbackCommand, Heard, ReplyArgs};
use crate::exit::user_error;
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, args: FeedbackArgs) -> Result<()> {
    match args.command {
        Some(FeedbackCommand::List) => list(session),
        Some(FeedbackCommand::Reply(reply_args)) => reply(session, reply_args),
        None => raise(session, args),
    }
}

const PARTS: [(&str, &str, &str); 4] = [
    (
        "observation",
        "When I noticed… (what happened, as a camera would see it)",
        "--observation",
    ),
    ("feeling", "I felt…", "--feeling"),
    ("need", "…because I need…", "--need"),
    (
        "request",
        "Would you be willing to…? (a request, which can be declined)",
        "--request",
    ),
];

fn raise(session: &Session, args: FeedbackArgs) -> Result<()> {
    let mut given = [args.observation, args.feeling, args.need, args.request];
    let missing: Vec<&str> = PARTS
        .iter()
        .zip(&given)
        .filter(|(_, v)| v.is_none())
        .map(|((_, _, flag), _)| *flag)
        .collect();
    if !missing.is_empty() {
        if !session.interactive {
            user_error!(
                "feedback has four parts; missing {} (e.g. --observation \"…\" --feeling \"…\" \
                 --need \"…\" --request \"…\")",
                missing.join(", ")
            );
        }
        eprintln!("One thing at a time, when you are both in a good headspace. Four short parts:");
        for ((_, prompt, _), value) in PARTS.iter().zip(given.iter_mut()) {
            if value.is_none() {
                *value = Some(super::ask_line(prompt)?.unwrap_or_default());
            }
        }
    }
    let [observation, feeling, need, request] = given.map(Option::unwrap_or_default);
    let draft = FeedbackDraft {
        observation: observation.trim().to_owned(),
        feeling: feeling.trim().to_owned(),
        need: need.trim().to_owned(),
        request: request.trim().to_owned(),
    };
    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    let id = profile.write(|doc| {
        let id = doc.add_feedback(&me, &draft, render::now())?;
        session.saw_checkin(doc, &me);
        Ok(id)
    })?;
    if session.json {
        return render::print_json(&json!({ "id": id }));
    }
    session.say(format_args!(
        "Shared your feedback [{}]. Your partner can reflect it back with\n  hearth feedback reply {} --reflect \"What I'm hearing is…\"",
        id.short(),
        id.short()
    ));
    Ok(())
}

fn reply(session: &Session, args: ReplyArgs) -> Result<()> {
    let (kind, text) = match (args.reflect, args.heard, args.respond) {
        (Some(text), None, None) => (ReplyKind::Reflect, text),
        (None, Some(heard), None) => {
            let answer = match heard {
                Heard::Yes => "yes",
                Heard::Partly => "partly",
                Heard::No => "no",
            };
            let text = match args.note.as_deref().map(str::trim) {
                Some(note) if !note.is_empty() => format!("{answer} — {note}"),
                _ => answer.to_owned(),
            };
            (ReplyKind::Acknowledge, text)
        }
        (None, None, Some(text)) => (ReplyKind::Respond, text),
        _ => user_error!("give exactly one of --reflect, --heard or --respond"),
    };
    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    let thread = profile.write(|doc| {
        let id = doc.find_entry(&args.id)?;
        doc.add_reply(&id, &me, kind, text.trim(), render::now())?;
        session.saw_checkin(doc, &me);
        Ok(id)
    })?;
    if session.json {
        return render::print_json(&json!({ "feedback": thread, "kind": kind }));
    }
    let done = match kind {
        ReplyKind::Reflect => {
            "Reflected back. Your partner can say whether you got it with `--heard yes|partly|no`."
        }
        ReplyKind::Acknowledge => "Thanks for letting your partner know.",
        ReplyKind::Respond => "Responded.",
    };
    session.say(done);
    Ok(())
}

fn list(session: &Session) -> Result<()> {
    let profile = session.open()?;
    let doc = profile.load()?;
    session.saw_checkin(&doc, profile.person_id());
    let threads = doc.feedback();
    if session.json {
        return render::print_json(&threads);
    }
    if threads.is_empty() {
        session.say(
            "No feedback yet. When something needs saying, `hearth feedback` walks you through it kindly.",
        );
        return Ok(());
    }
    let names = Names::of_doc(&doc);
    for thread in &threads {
        print_thread(thread, &names);
        println!();
    }
    Ok(())
}

pub fn print_thread(thread: &Feedback, names: &Names) {
    println!(
        "{} {} — {}",
        console::style(format!("[{}]", thread.id.short())).dim(),
        render::day(thread.created_at),
        console::style(names.of(&thread.author)).bold()
    );
    println!(
        "  When I noticed: {}",
        render::indent(&thread.observation, 18)
    );
    println!("  I felt:         {}", render::indent(&thread.feeling, 18));
    println!("  Because I need: {}", render::indent(&thread.need, 18));
    println!("  Would you…:     {}", render::indent(&thread.request, 18));
    for reply in &thread.replies {
        let label = match reply.kind {
            ReplyKind::Reflect => "reflected",
            ReplyKind::Acknowledge => "felt heard?",
            ReplyKind::Respond => "responded",
        };
        println!(
            "    ↳ {} {}: {}",
            names.of(&reply.author),
            label,
            render::indent(&reply.text, 6)
        );
    }
}
