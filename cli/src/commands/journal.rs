//! `hearth journal`: the shared journal, and private entries that stay on this device.

use std::io::IsTerminal;

use anyhow::Result;
use hearth_doc::{EntryId, JournalDraft, JournalEntry};
use serde_json::json;

use crate::args::{JournalAddArgs, JournalCommand, JournalListArgs};
use crate::editor;
use crate::exit::user_error;
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, cmd: JournalCommand) -> Result<()> {
    match cmd {
        JournalCommand::Add(args) => add(session, args),
        JournalCommand::List(args) => list(session, args),
    }
}

fn add(session: &Session, args: JournalAddArgs) -> Result<()> {
    let body = match args.text.as_deref() {
        Some("-") => super::read_stdin()?,
        Some(text) => text.to_owned(),
        // Piped input without an editor configured: take it, as `git commit -F -` would.
        None if !std::io::stdin().is_terminal() && !editor::configured() => super::read_stdin()?,
        None => editor::compose()?,
    };
    let body = body.trim().to_owned();
    if body.is_empty() {
        user_error!("the entry is empty, so nothing was saved");
    }
    let tags = clean_tags(&args.tags)?;
    let draft = JournalDraft {
        title: args
            .title
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        body,
        tags,
    };
    // Open (and unlock) only after the text is in hand: a long editor session should not
    // hold the profile's write lock.
    let id = keep(session, draft, args.private)?;
    if session.json {
        return render::print_json(&json!({ "id": id, "private": args.private }));
    }
    if args.private {
        session.say(format_args!(
            "Saved a private entry [{}]: it stays on this device, just for you.",
            id.short()
        ));
    } else {
        session.say(format_args!(
            "Added to your shared journal [{}].",
            id.short()
        ));
    }
    Ok(())
}

/// Keeps an entry: a private one sealed in this profile only, a shared one in the
/// document. Returns its id.
pub(super) fn keep(session: &Session, draft: JournalDraft, private: bool) -> Result<EntryId> {
    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    if private {
        let entry = JournalEntry::new_private(me, draft, render::now());
        profile.add_private_journal(&entry)?;
        return Ok(entry.id);
    }
    Ok(profile.write(|doc| {
        let id = doc.add_journal(&me, &draft, render::now())?;
        session.saw_checkin(doc, &me);
        Ok(id)
    })?)
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for tag in tags {
        let tag = tag.trim().trim_start_matches('#').to_lowercase();
        if tag.is_empty() || tag.contains(char::is_whitespace) {
            user_error!("a tag is one word, e.g. --tag travel (got {tag:?})");
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

fn list(session: &Session, args: JournalListArgs) -> Result<()> {
    let profile = session.open()?;
    let doc = profile.load()?;
    session.saw_checkin(&doc, profile.person_id());
    let mut entries = doc.journal();
    entries.extend(profile.private_journal()?);
    if let Some(tag) = &args.tag {
        let tag = tag.trim().trim_start_matches('#').to_lowercase();
        entries.retain(|e| e.tags.contains(&tag));
    }
    entries.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if session.json {
        return render::print_json(&entries);
    }
    if entries.is_empty() {
        session.say("The journal is empty. Write the first entry with `hearth journal add`.");
        return Ok(());
    }
    let names = Names::of_doc(&doc);
    for entry in &entries {
        let mut heading = format!(
            "[{}] {} — {}",
            entry.id.short(),
            render::when(entry.created_at),
            names.of(&entry.author)
        );
        if entry.private {
            heading.push_str(" (private)");
        }
        if !entry.tags.is_empty() {
            heading.push_str(&format!("  #{}", entry.tags.join(" #")));
        }
        println!("{heading}");
        if let Some(title) = &entry.title {
            println!("  {title}");
        }
        println!("  {}\n", render::indent(&entry.body, 2));
    }
    Ok(())
}
