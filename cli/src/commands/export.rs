//! `hearth export`: everything the two of you wrote, as JSON or a readable Markdown file.
//! It belongs to you; an export is plaintext, so it goes where you say and nowhere else.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, Result};
use hearth_client::Profile;
use hearth_doc::{Answers, CommitmentStatus, JournalEntry, ReplyKind, SpaceDoc};
use serde_json::json;

use base64::Engine as _;

use super::checkin::{format_value, visible_submitters};
use super::trends;
use crate::args::{ExportArgs, ExportFormat};
use crate::chart;
use crate::exit::user_error;
use crate::picture::{self, Plot};
use crate::progress::Progress;
use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session, args: ExportArgs) -> Result<()> {
    if let Some(path) = &args.output
        && path.exists()
    {
        user_error!(
            "{} already exists; choose another file name (an export never overwrites)",
            path.display()
        );
    }
    let profile = session.open()?;
    let progress = Progress::after_a_second(session, "Gathering everything for the export…");
    let doc = profile.load()?;
    session.saw_checkin(&doc, profile.person_id());
    let mut journal = doc.journal();
    journal.extend(profile.private_journal()?);
    journal.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    // The Markdown export shows the trend as a picture: beside the file, or inside it.
    let mut chart_file = None;
    let text = match args.format {
        ExportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&to_json(&profile, &doc, &journal)?)?;
            s.push('\n');
            s
        }
        ExportFormat::Md => {
            let svg = trend_svg(&doc)?;
            let image = match (svg, &args.output) {
                (None, _) => None,
                (Some(svg), None) => Some(format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                )),
                (Some(svg), Some(path)) => {
                    let beside = picture::beside(path);
                    picture::check_new(&beside)?;
                    let link = link_target(&beside);
                    chart_file = Some((beside, svg));
                    Some(link)
                }
            };
            to_markdown(&profile, &doc, &journal, image.as_deref())
        }
    };
    drop(progress);
    match &args.output {
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing the export")?,
        Some(path) => {
            if let Some((svg_path, svg)) = &chart_file {
                picture::save_new(svg_path, svg.as_bytes())?;
            }
            if let Err(e) = write_new_private_file(path, text.as_bytes()) {
                // The chart belongs to the export; without it, it would only be litter.
                if let Some((svg_path, _)) = &chart_file {
                    let _ = std::fs::remove_file(svg_path);
                }
                return Err(e).with_context(|| format!("writing {}", path.display()));
            }
            if !session.quiet {
                eprintln!(
                    "Exported to {}. It is not encrypted: keep it somewhere only the two of you can read.",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The trend chart as SVG, with the scores this person may see; None without check-ins.
fn trend_svg(doc: &SpaceDoc) -> Result<Option<String>> {
    let points = doc.trend();
    let people: Vec<_> = doc.people().into_iter().map(|p| (p.id, p.name)).collect();
    let series = chart::series(&people);
    Plot::new(&points, &series, trends::last_week(&points))
        .map(|plot| plot.svg())
        .transpose()
}

/// A relative link to a file beside the export, in the form Markdown reads whatever its name.
fn link_target(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains([' ', '(', ')', '<', '>']) {
        format!("<{name}>")
    } else {
        name
    }
}

fn write_new_private_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn to_json(
    profile: &Profile,
    doc: &SpaceDoc,
    journal: &[JournalEntry],
) -> Result<serde_json::Value> {
    let me = profile.person_id();
    let people = doc.people();
    let checkins: Vec<_> = doc
        .checkins()
        .iter()
        .map(|c| {
            let answers: serde_json::Map<_, _> = visible_submitters(c)
                .into_iter()
                .filter_map(|p| c.submissions.get(p))
                .map(|s| {
                    (
                        s.person.to_string(),
                        json!({ "submitted_at": s.submitted_at, "seal": s.seal, "answers": s.answers }),
                    )
                })
                .collect();
            json!({
                "week": c.week,
                // The export names it as the document stores it.
                "template": c.deck,
                "revealed": c.revealed(&people),
                "submitted_by": c.submissions.keys().collect::<Vec<_>>(),
                "answers": answers,
            })
        })
        .collect();
    Ok(json!({
        "format": "hearth-export",
        "version": 1,
        "exported_at": render::now(),
        "space_id": profile.space_id(),
        "you": me,
        "people": people,
        "checkins": checkins,
        "appreciations": doc.appreciations(),
        "feedback": doc.feedback(),
        "journal": journal,
        "commitments": doc.commitments(),
    }))
}

fn to_markdown(
    profile: &Profile,
    doc: &SpaceDoc,
    journal: &[JournalEntry],
    trend_image: Option<&str>,
) -> String {
    let me = profile.person_id();
    let people = doc.people();
    let names = Names::of_people(&people);
    let together = people
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(" & ");
    let mut md = String::new();
    let _ = writeln!(md, "# Our hearth: {together}\n");
    let _ = writeln!(
        md,
        "Exported {} by {}. This file is not encrypted; keep it somewhere safe.\n",
        render::day(render::now()),
        names.of(me)
    );

    let _ = writeln!(md, "## Check-ins\n");
    let checkins = doc.checkins();
    if checkins.is_empty() {
        let _ = writeln!(md, "None yet.\n");
    }
    for c in &checkins {
        let _ = writeln!(md, "### {}\n", c.week);
        let deck = doc.deck(&c.deck);
        for p in visible_submitters(c) {
            let Some(s) = c.submissions.get(p) else {
                continue;
            };
            let _ = writeln!(
                md,
                "**{}** ({})\n",
                names.of(p),
                render::day(s.submitted_at)
            );
            for (key, value) in s.answers.iter().flat_map(Answers::iter) {
                let question = deck.as_ref().and_then(|t| t.question(key));
                let prompt = question.map_or(key, |q| q.prompt.as_str());
                let value = format_value(question, value).replace('\n', "\n  ");
                let _ = writeln!(md, "- {prompt}\n  {value}");
            }
            md.push('\n');
        }
        let sealed: Vec<&str> = c
            .submissions
            .keys()
            .filter(|p| !visible_submitters(c).contains(p))
            .map(|p| names.of(p))
            .collect();
        if !sealed.is_empty() {
            let _ = writeln!(md, "_Answered, still sealed: {}_\n", sealed.join(", "));
        }
    }

    if let Some(image) = trend_image {
        let _ = writeln!(md, "## Trends\n");
        let _ = writeln!(
            md,
            "![{}: each partner's weekly score, 1 to 10; gaps are weeks without a check-in]({image})\n",
            picture::TITLE
        );
    }

    let _ = writeln!(md, "## Appreciations\n");
    for a in doc.appreciations() {
        let _ = writeln!(
            md,
            "- {} — **{}**: {}",
            render::day(a.created_at),
            names.of(&a.author),
            a.text
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Feedback\n");
    for f in doc.feedback() {
        let _ = writeln!(
            md,
            "### {} — {}\n",
            render::day(f.created_at),
            names.of(&f.author)
        );
        let _ = writeln!(md, "- When I noticed: {}", f.observation);
        let _ = writeln!(md, "- I felt: {}", f.feeling);
        let _ = writeln!(md, "- Because I need: {}", f.need);
        let _ = writeln!(md, "- Would you be willing to: {}", f.request);
        for r in &f.replies {
            let label = match r.kind {
                ReplyKind::Reflect => "reflected",
                ReplyKind::Acknowledge => "felt heard?",
                ReplyKind::Respond => "responded",
            };
            let _ = writeln!(md, "  - {} {label}: {}", names.of(&r.author), r.text);
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Journal\n");
    for e in journal {
        let title = e.title.as_deref().unwrap_or("Untitled");
        let private = if e.private { " (private)" } else { "" };
        let _ = writeln!(md, "### {title}{private}\n");
        let mut meta = format!("{} — {}", render::when(e.created_at), names.of(&e.author));
        if !e.tags.is_empty() {
            meta.push_str(&format!(" — #{}", e.tags.join(" #")));
        }
        let _ = writeln!(md, "_{meta}_\n\n{}\n", e.body.trim_end());
    }

    let _ = writeln!(md, "## Commitments\n");
    for c in doc.commitments() {
        let mark = match c.status {
            CommitmentStatus::Done => "[x]",
            CommitmentStatus::Partly => "[~]",
            _ => "[ ]",
        };
        let _ = writeln!(
            md,
            "- {mark} {} — {} ({}, {})",
            c.text,
            names.of(&c.author),
            c.week,
            c.status
        );
    }
    md
}
