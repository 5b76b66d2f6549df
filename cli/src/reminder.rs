//! The check-in reminder: what is waiting for you this week, in the words `hearth remind`
//! and the one line after other commands both use. It is a nudge, never a tally: no
//! streaks, no count of missed weeks, nothing about how long your partner has waited.
//!
//! The line after a command goes to standard error (standard output stays clean for
//! scripts), only when a person is at a terminal, never with `--json` or `--quiet`, and at
//! most once a day per profile: the day hearth last looked is kept in a small file in the
//! profile directory, holding that date and nothing from the space. Looking once a day is
//! enough either way: once you have answered, nothing is due again before the week (and so
//! the day) changes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use chrono::{Local, NaiveDate};
use hearth_doc::{PersonId, SpaceDoc};

use crate::args::Command;
use crate::render;
use crate::session::Session;

/// The file that holds the day the reminder was last looked for (and shown, if due).
const SHOWN_ON_FILE: &str = "reminder-shown-on";

/// What waits for you in this week's check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// You have not answered this week's check-in (and your partner has not either, or
    /// has not joined yet).
    ThisWeek,
    /// Your partner, by name, has answered this week's check-in and you have not.
    PartnerAnswered(String),
}

impl Due {
    /// The reminder, in words.
    pub fn message(&self) -> String {
        match self {
            Due::ThisWeek => {
                "It's check-in week. `hearth checkin` when you both have a quiet moment.".to_owned()
            }
            Due::PartnerAnswered(name) => {
                format!("{name} has answered this week's check-in — whenever you're ready.")
            }
        }
    }
}

/// What this week's check-in waits for from `me`, if anything.
pub fn due(doc: &SpaceDoc, me: &PersonId) -> Option<Due> {
    let checkin = doc.checkin(render::this_week());
    if checkin.as_ref().is_some_and(|c| c.submitted_by(me)) {
        return None;
    }
    let partner = checkin.and_then(|c| {
        doc.people()
            .into_iter()
            .find(|p| &p.id != me && c.submitted_by(&p.id))
    });
    Some(match partner {
        Some(p) => Due::PartnerAnswered(p.name),
        None => Due::ThisWeek,
    })
}

/// Whether `command` may end with the reminder line. `status`, `checkin` and `remind` say it
/// themselves; `init`, `join` and `demo` already suggest the next step; `watch` never ends;
/// JSON, `--quiet` and anything but a terminal on both outputs never get it.
pub fn may_follow(command: &Command, session: &Session) -> bool {
    let fits = matches!(
        command,
        Command::Appreciate(_)
            | Command::Feedback(_)
            | Command::Journal(_)
            | Command::Log(_)
            | Command::Export(_)
            | Command::Sync(_)
    );
    fits && !session.json
        && !session.quiet
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && shown_on(&session.home) != Some(today())
}

/// Prints the reminder line if the command saw the check-in waiting, and notes the day.
pub fn after_command(session: &Session) {
    if !session.may_remind {
        return;
    }
    let Some(seen) = session.checkin_seen() else {
        return;
    };
    if let Some(due) = seen {
        eprintln!("{}", console::style(due.message()).cyan().for_stderr());
    }
    // Failing to note the day only means hearth looks again next time.
    let _ = std::fs::write(shown_on_file(&session.home), format!("{}\n", today()));
}

fn shown_on_file(home: &Path) -> PathBuf {
    home.join(SHOWN_ON_FILE)
}

fn shown_on(home: &Path) -> Option<NaiveDate> {
    std::fs::read_to_string(shown_on_file(home))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn today() -> NaiveDate {
    Local::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_has_no_streaks_or_guilt() {
        let partner = Due::PartnerAnswered("Ana".into()).message();
        assert_eq!(
            partner,
            "Ana has answered this week's check-in — whenever you're ready."
        );
        let week = Due::ThisWeek.message();
        assert!(week.starts_with("It's check-in week."), "{week}");
        for text in [partner, week] {
            for word in ["streak", "missed", "overdue", "late", "days"] {
                assert!(!text.contains(word), "{text}");
            }
        }
    }
}
