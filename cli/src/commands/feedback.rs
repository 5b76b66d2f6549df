//! `hearth feedback`: raise one thing kindly, in four parts, and listen well in reply.

use anyhow::Result;
use hearth_doc::{Feedback, FeedbackDraft, PersonId, Reply, ReplyKind};
use serde::Serialize;
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
            let answer = heard_word(heard);
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
        // `--heard` is the speaker's answer to "Did I get it?"; the document checks the role.
        match kind {
            ReplyKind::Acknowledge => doc.answer_heard(&id, &me, text.trim(), render::now())?,
            _ => doc.add_reply(&id, &me, kind, text.trim(), render::now())?,
        }
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
    let me = profile.person_id().clone();
    session.saw_checkin(&doc, &me);
    let threads = doc.feedback();
    if session.json {
        let rows: Vec<ThreadRow<'_>> = threads
            .iter()
            .map(|thread| {
                let l = listening(thread);
                ThreadRow {
                    thread,
                    reflected: l.reflected,
                    felt_heard: l.felt_heard.map(heard_word),
                }
            })
            .collect();
        return render::print_json(&rows);
    }
    if threads.is_empty() {
        session.say(
            "No feedback yet. When something needs saying, `hearth feedback` walks you through it kindly.",
        );
        return Ok(());
    }
    let people = doc.people();
    let names = Names::of_people(&people);
    for thread in &threads {
        print_thread(thread, &names);
        let listener = people
            .iter()
            .find(|p| p.id != thread.author)
            .map(|p| p.id.clone());
        let l = listening(thread);
        let listener_name = listener
            .as_ref()
            .map(|p| if *p == me { "you" } else { names.of(p) });
        println!("  {}", console::style(l.summary(listener_name)).dim());
        if let Some(hint) = l.next_step(thread, &me, listener.as_ref(), &names) {
            session.say(format_args!("  {hint}"));
        }
        println!();
    }
    Ok(())
}

/// One `hearth feedback list --json` row: the thread as before, plus how the listening went.
#[derive(Serialize)]
struct ThreadRow<'a> {
    #[serde(flatten)]
    thread: &'a Feedback,
    /// The listener has reflected back.
    reflected: bool,
    /// The speaker's latest answer to "Did I get it?": yes, partly or no.
    felt_heard: Option<&'static str>,
}

/// How active listening has gone in one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listening {
    /// Someone other than the speaker has reflected back.
    reflected: bool,
    /// The speaker's latest answer to "Did I get it?", if any.
    felt_heard: Option<Heard>,
}

/// Reads a thread's replies: a reflection by anyone but the speaker counts, and the
/// speaker's latest `--heard` answer (stored as "yes", or "yes — a note") is the one that
/// stands, since a second reflection can make a "partly" a "yes".
fn listening(thread: &Feedback) -> Listening {
    let by_speaker = |r: &&Reply| r.author == thread.author;
    Listening {
        reflected: thread
            .replies
            .iter()
            .any(|r| r.kind == ReplyKind::Reflect && !by_speaker(&r)),
        felt_heard: thread
            .replies
            .iter()
            .filter(by_speaker)
            .filter(|r| r.kind == ReplyKind::Acknowledge)
            .filter_map(|r| heard_in(&r.text))
            .next_back(),
    }
}

impl Listening {
    /// One line on where the thread stands, e.g. "reflected back ✓ · felt heard: partly".
    fn summary(&self, listener: Option<&str>) -> String {
        let listener = listener.unwrap_or("your partner");
        match (self.reflected, self.felt_heard) {
            (false, _) => format!("waiting for {listener} to reflect back"),
            (true, None) => "reflected back ✓ · felt heard: not said yet".to_owned(),
            (true, Some(heard)) => format!("reflected back ✓ · felt heard: {}", heard_word(heard)),
        }
    }

    /// What the viewer could do next, if anything is theirs to do.
    fn next_step(
        &self,
        thread: &Feedback,
        me: &PersonId,
        listener: Option<&PersonId>,
        names: &Names,
    ) -> Option<String> {
        let id = thread.id.short();
        let speaking = thread.author == *me;
        let listening = listener == Some(me);
        match (self.reflected, self.felt_heard) {
            (false, _) if listening => Some(format!(
                "you could reflect it back: hearth feedback reply {id} --reflect \"What I'm hearing is…\""
            )),
            (true, None) if speaking => Some(format!(
                "did {} get it? hearth feedback reply {id} --heard yes|partly|no",
                listener.map_or("your partner", |p| names.of(p))
            )),
            (true, Some(Heard::Partly | Heard::No)) if listening => Some(format!(
                "you could try once more: hearth feedback reply {id} --reflect \"So what matters is…\""
            )),
            _ => None,
        }
    }
}

/// How `--heard` is stored: the word first, then any note after " — ".
fn heard_word(heard: Heard) -> &'static str {
    match heard {
        Heard::Yes => "yes",
        Heard::Partly => "partly",
        Heard::No => "no",
    }
}

/// The `--heard` answer at the start of an acknowledgement; `None` for an "I hear you" that
/// answers nothing.
fn heard_in(text: &str) -> Option<Heard> {
    let word = text.split(" — ").next().unwrap_or_default().trim();
    [Heard::Yes, Heard::Partly, Heard::No]
        .into_iter()
        .find(|h| heard_word(*h).eq_ignore_ascii_case(word))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hearth_doc::{EntryId, Millis};

    use super::*;

    fn thread(speaker: &PersonId, replies: &[(&PersonId, ReplyKind, &str)]) -> Feedback {
        Feedback {
            id: EntryId::new(),
            author: speaker.clone(),
            observation: "o".into(),
            feeling: "f".into(),
            need: "n".into(),
            request: "r".into(),
            created_at: Millis(0),
            replies: replies
                .iter()
                .enumerate()
                .map(|(i, (who, kind, text))| Reply {
                    author: (*who).clone(),
                    kind: *kind,
                    text: (*text).into(),
                    created_at: Millis(i as i64),
                })
                .collect(),
        }
    }

    #[test]
    fn listening_needs_the_listeners_reflection_and_the_speakers_latest_word() {
        let (sam, ben) = (PersonId::random(), PersonId::random());
        let l = |replies: &[(&PersonId, ReplyKind, &str)]| listening(&thread(&sam, replies));
        let none = Listening {
            reflected: false,
            felt_heard: None,
        };
        assert_eq!(l(&[]), none);
        // The speaker restating it is not the listener reflecting back.
        assert_eq!(l(&[(&sam, ReplyKind::Reflect, "to be clear…")]), none);
        // The listener's "I hear you" answers nothing about feeling heard.
        let reflected = l(&[
            (&ben, ReplyKind::Reflect, "What I'm hearing is…"),
            (&ben, ReplyKind::Acknowledge, "yes"),
        ]);
        assert_eq!(
            reflected,
            Listening {
                reflected: true,
                felt_heard: None
            }
        );
        let later = l(&[
            (&ben, ReplyKind::Reflect, "What I'm hearing is…"),
            (
                &sam,
                ReplyKind::Acknowledge,
                "partly — not quite the evenings",
            ),
            (&ben, ReplyKind::Reflect, "So it's the evenings…"),
            (&sam, ReplyKind::Acknowledge, "yes"),
        ]);
        assert_eq!(later.felt_heard, Some(Heard::Yes));
    }

    #[test]
    fn summaries_and_hints_speak_to_whoever_is_looking() {
        let (sam, ben) = (PersonId::random(), PersonId::random());
        let names = Names::of_people(&[
            hearth_doc::Person {
                id: sam.clone(),
                name: "Sam".into(),
                joined_at: Millis(0),
            },
            hearth_doc::Person {
                id: ben.clone(),
                name: "Ben".into(),
                joined_at: Millis(0),
            },
        ]);
        let t = thread(&sam, &[]);
        let waiting = listening(&t);
        assert_eq!(
            waiting.summary(Some("Ben")),
            "waiting for Ben to reflect back"
        );
        assert_eq!(waiting.next_step(&t, &sam, Some(&ben), &names), None);
        let hint = waiting.next_step(&t, &ben, Some(&ben), &names).unwrap();
        assert!(hint.contains("--reflect"), "{hint}");

        let t = thread(&sam, &[(&ben, ReplyKind::Reflect, "I hear…")]);
        let reflected = listening(&t);
        assert_eq!(
            reflected.summary(Some("Ben")),
            "reflected back ✓ · felt heard: not said yet"
        );
        let hint = reflected.next_step(&t, &sam, Some(&ben), &names).unwrap();
        assert!(hint.starts_with("did Ben get it?"), "{hint}");
        assert_eq!(reflected.next_step(&t, &ben, Some(&ben), &names), None);

        let partly = Listening {
            reflected: true,
            felt_heard: Some(Heard::Partly),
        };
        assert_eq!(
            partly.summary(None),
            "reflected back ✓ · felt heard: partly"
        );
        assert!(partly.next_step(&t, &ben, Some(&ben), &names).is_some());
        assert_eq!(partly.next_step(&t, &sam, Some(&ben), &names), None);
    }

    #[test]
    fn heard_is_read_back_the_way_it_is_stored() {
        for h in [Heard::Yes, Heard::Partly, Heard::No] {
            assert_eq!(heard_in(heard_word(h)), Some(h));
            assert_eq!(heard_in(&format!("{} — thank you", heard_word(h))), Some(h));
        }
        assert_eq!(heard_in("I hear you"), None);
        assert_eq!(heard_in("yesterday — no"), None);
    }
}
