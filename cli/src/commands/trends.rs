//! `hearth trends`: each partner's weekly "how are you feeling about us" score, as a chart
//! in the terminal and, with `--svg`/`--png`, as a picture file.

use std::path::PathBuf;

use anyhow::Result;
use hearth_doc::{TrendPoint, Week};
use serde_json::json;

use crate::args::TrendsArgs;
use crate::chart;
use crate::exit::user_error;
use crate::picture::{self, Plot};
use crate::render;
use crate::session::Session;

/// Three recent weeks at or below this score earn a gentle note, never a diagnosis.
const LOW: f64 = 4.0;

pub fn run(session: &Session, args: TrendsArgs) -> Result<()> {
    let pictures: Vec<(PathBuf, Format)> = [(args.svg, Format::Svg), (args.png, Format::Png)]
        .into_iter()
        .filter_map(|(path, format)| Some((path?, format)))
        .collect();
    if let [(a, _), (b, _)] = pictures.as_slice()
        && a == b
    {
        user_error!(
            "--svg and --png name the same file, {}; give each its own",
            a.display()
        );
    }
    for (path, _) in &pictures {
        picture::check_new(path)?;
    }
    let profile = session.open()?;
    let doc = profile.load()?;
    // Only scores this device may read: open ones, and your own while sealed.
    let points = doc.trend();
    let people = doc.people();
    let series = chart::series(
        &people
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect::<Vec<_>>(),
    );
    let last = last_week(&points);
    if !pictures.is_empty() {
        match Plot::new(&points, &series, last) {
            None => eprintln!("No check-ins yet, so no picture was written."),
            Some(plot) => {
                // Everything is drawn before anything is written: a missing font for the
                // PNG leaves no SVG behind either.
                let mut drawn = Vec::new();
                for (path, format) in &pictures {
                    let bytes = match format {
                        Format::Svg => plot.svg()?.into_bytes(),
                        Format::Png => plot.png()?,
                    };
                    drawn.push((path, bytes));
                }
                for (path, bytes) in drawn {
                    picture::save_new(path, &bytes)?;
                    eprintln!("Drew the chart in {}.", path.display());
                }
            }
        }
    }
    if session.json {
        let rows: Vec<_> = points
            .iter()
            .map(|p| {
                let scores: serde_json::Map<_, _> = people
                    .iter()
                    .filter_map(|person| {
                        p.feeling
                            .get(&person.id)
                            .map(|s| (person.name.clone(), json!(s)))
                    })
                    .collect();
                json!({ "week": p.week, "feeling": scores })
            })
            .collect();
        return render::print_json(&rows);
    }
    if points.is_empty() {
        println!("No check-ins yet, so nothing to draw. `hearth checkin` adds this week's point.");
        return Ok(());
    }
    println!("How each of you has felt about \"us\" (1–10), week by week\n");
    print!("{}", chart::draw(&points, &series, last, terminal_width()));
    let legend: Vec<String> = series
        .iter()
        .map(|s| format!("{} {}", s.mark, s.name))
        .collect();
    println!("\n     {}   * both   ╌·╌ no check-in", legend.join("   "));
    println!();
    for s in &series {
        let recent = recent_scores(&points, s, 4);
        if let Some(latest) = recent.first() {
            if recent.len() > 1 {
                println!(
                    "{}: latest {latest}, {:.1} on average over the last {} check-ins",
                    s.name,
                    average(&recent),
                    recent.len()
                );
            } else {
                println!("{}: latest {latest}", s.name);
            }
        }
    }
    if series.iter().any(|s| low_lately(&points, s)) {
        println!(
            "\nThe scores have been low for a few weeks. That is worth a gentle talk together, and \
             if it keeps weighing on you, someone outside the two of you (a friend, a counsellor) \
             can help. hearth is a notebook, not therapy."
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Svg,
    Png,
}

/// The newest week a chart shows: this week, so recent silence shows, or a later one.
pub fn last_week(points: &[TrendPoint]) -> Week {
    let now = render::this_week();
    now.max(points.last().map_or(now, |p| p.week))
}

fn average(scores: &[u8]) -> f64 {
    scores.iter().map(|&s| f64::from(s)).sum::<f64>() / scores.len().max(1) as f64
}

fn low_lately(points: &[TrendPoint], s: &chart::Series) -> bool {
    let recent = recent_scores(points, s, 3);
    recent.len() == 3 && average(&recent) <= LOW
}

/// A person's last `n` scores, newest first.
fn recent_scores(points: &[TrendPoint], s: &chart::Series, n: usize) -> Vec<u8> {
    points
        .iter()
        .rev()
        .filter_map(|p| p.feeling.get(&s.person).copied())
        .take(n)
        .collect()
}

fn terminal_width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map_or(80, |(_, cols)| usize::from(cols))
        .clamp(30, 200)
}
