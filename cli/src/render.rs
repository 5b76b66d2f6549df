//! Small pieces of presentation shared by the commands: names, local times, weeks, JSON.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use chrono::{Local, TimeZone};
use hearth_doc::{Millis, Person, PersonId, SpaceDoc, Week};
use serde::Serialize;

use crate::exit::user_error;

/// Display names by person id.
#[derive(Debug, Default)]
pub struct Names(BTreeMap<PersonId, String>);

impl Names {
    pub fn of_doc(doc: &SpaceDoc) -> Self {
        Self::of_people(&doc.people())
    }

    pub fn of_people(people: &[Person]) -> Self {
        Self(
            people
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect(),
        )
    }

    pub fn of(&self, id: &PersonId) -> &str {
        self.0.get(id).map_or("someone", String::as_str)
    }
}

/// The current time.
pub fn now() -> Millis {
    Millis::now()
}

/// The ISO week it is now, on this device's calendar.
pub fn this_week() -> Week {
    Week::from_date(Local::now().date_naive())
}

/// Parses a week given on the command line.
pub fn parse_week(s: &str) -> Result<Week> {
    match s.parse::<Week>() {
        Ok(w) => Ok(w),
        Err(e) => user_error!("{e}"),
    }
}

/// A moment in local time, e.g. "2026-11-21 14:03".
pub fn when(at: Millis) -> String {
    match Local.timestamp_millis_opt(at.0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => format!("@{}", at.0),
    }
}

/// A day in local time, e.g. "Sat 21 Nov 2026".
pub fn day(at: Millis) -> String {
    match Local.timestamp_millis_opt(at.0).single() {
        Some(t) => t.format("%a %-d %b %Y").to_string(),
        None => format!("@{}", at.0),
    }
}

/// Writes `value` as pretty JSON to standard output.
///
/// Indented for a person at a terminal; compact when piped, where a program reads it (a
/// ten-year log is a third smaller and faster to write).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = stdout();
    if std::io::stdout().is_terminal() {
        serde_json::to_writer_pretty(&mut out, value).context("writing JSON")?;
    } else {
        serde_json::to_writer(&mut out, value).context("writing JSON")?;
    }
    writeln!(out).context("writing JSON")?;
    out.flush().context("writing JSON")?;
    Ok(())
}

/// Standard output, buffered: a long log is written in a few large writes rather than one
/// system call per line. Callers flush when done.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

/// Indents every line after the first so multi-line text lines up under its label.
pub fn indent(text: &str, by: usize) -> String {
    let pad = format!("\n{}", " ".repeat(by));
    text.trim_end().replace('\n', &pad)
}
