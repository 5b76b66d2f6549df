//! `hearth log`: everything in one timeline, oldest first, including your private journal;
//! filtered by kind, person and time when asked (the rules are in [`crate::log_filter`]).

use std::collections::BTreeSet;

use std::io::Write;

use anyhow::Result;
use hearth_doc::{EntryId, JournalEntry, ReplyKind, TimelineItem, TimelineKind};
use serde::Serialize;

use crate::args::LogArgs;
use crate::exit::user_error;
use crate::log_filter::{self, Filter};
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, args: LogArgs) -> Result<()> {
    // Times are checked before the profile is opened: a typo costs nothing.
    let now = chrono::Local::now();
    let since = args.since.map(|w| w.start(&now));
    let until = args.until.map(|w| w.end(&now));
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        user_error!("--since is not before --until, so nothing could match; swap them?");
    }
    let profile = session.open()?;
    let doc = profile.load()?;
    session.saw_checkin(&doc, profile.person_id());
    let people = doc.people();
    let by = match args.by.as_deref() {
        Some(who) => match log_filter::person(who, &people, profile.person_id()) {
            Ok(id) => Some(id),
            Err(why) => user_error!("{why}"),
        },
        None => None,
    };
    let filter = Filter {
        kinds: args.kind,
        by,
        since,
        until,
    };
    let filtered = !filter.kinds.is_empty()
        || filter.by.is_some()
        || filter.since.is_some()
        || filter.until.is_some();
    let private = profile.private_journal()?;
    let private_ids: BTreeSet<EntryId> = private.iter().map(|e| e.id.clone()).collect();
    let mut items = doc.timeline();
    items.extend(private.into_iter().map(journal_item));
    items.sort_by_key(|item| item.at);
    let items = filter.select(items, args.limit);
    let names = Names::of_people(&people);

    if session.json {
        let rows: Vec<LogRow<'_>> = items
            .iter()
            .map(|item| LogRow {
                private: match &item.kind {
                    TimelineKind::Journal { id, .. } => Some(private_ids.contains(id)),
                    _ => None,
                },
                author_name: names.of(&item.author),
                item,
            })
            .collect();
        return render::print_json(&rows);
    }
    if items.is_empty() && filtered {
        session.say("Nothing matches those filters.");
        return Ok(());
    }
    if items.is_empty() {
        session.say("Nothing here yet. `hearth appreciate \"…\"` is a lovely way to start.");
        return Ok(());
    }
    let mut out = render::stdout();
    for item in &items {
        let line = describe(item, &names, &private_ids);
        writeln!(
            out,
            "{}  {line}",
            console::style(render::when(item.at)).dim()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One `hearth log --json` row: the timeline item, plus the author's name and, for journal
/// entries, whether the entry is private.
#[derive(Serialize)]
struct LogRow<'a> {
    #[serde(flatten)]
    item: &'a TimelineItem,
    author_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<bool>,
}

/// One timeline item as a line for a person.
pub fn describe(item: &TimelineItem, names: &Names, private_ids: &BTreeSet<EntryId>) -> String {
    let who = names.of(&item.author);
    match &item.kind {
        TimelineKind::Appreciation { text, .. } => format!("{who} appreciated: {text}"),
        TimelineKind::Feedback {
            id,
            observation,
            request,
            ..
        } => format!(
            "{who} raised something [{}]: {observation} → {request}",
            id.short()
        ),
        TimelineKind::Reply {
            feedback,
            reply_kind,
            text,
        } => {
            let verb = match reply_kind {
                ReplyKind::Reflect => "reflected back",
                ReplyKind::Acknowledge => "said whether they felt heard",
                ReplyKind::Respond => "responded",
            };
            format!("{who} {verb} [{}]: {text}", feedback.short())
        }
        TimelineKind::Journal {
            id, title, body, ..
        } => {
            let private = if private_ids.contains(id) {
                " (private)"
            } else {
                ""
            };
            let heading = title
                .as_deref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            format!(
                "{who} wrote in the journal{private}: {heading}{}",
                first_line(body)
            )
        }
        TimelineKind::CheckinSubmitted { week } => {
            format!("{who} answered the {week} check-in")
        }
        TimelineKind::Commitment { text, status, .. } => {
            format!("{who} will do one small thing: {text} ({status})")
        }
        // A newer document may hold kinds this build does not know how to describe.
        #[allow(unreachable_patterns)]
        _ => format!("{who} did something this version of hearth cannot show"),
    }
}

fn journal_item(entry: JournalEntry) -> TimelineItem {
    TimelineItem {
        at: entry.created_at,
        author: entry.author,
        kind: TimelineKind::Journal {
            id: entry.id,
            title: entry.title,
            body: entry.body,
            tags: entry.tags,
            edited_at: entry.edited_at,
        },
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let short: String = line.chars().take(100).collect();
    if short.len() < text.trim_end().len() {
        format!("{short}…")
    } else {
        short
    }
}
