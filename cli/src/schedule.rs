//! When and how `hearth remind` runs by itself: the `--at` time, and the systemd user units
//! or crontab line that run it. Pure text, so the exact files are easy to test; writing
//! them is `commands::remind`'s job.

use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

use chrono::Weekday;

/// The timer's unit file name (the service shares its stem).
pub const TIMER_UNIT: &str = "hearth-remind.timer";
/// The service's unit file name.
pub const SERVICE_UNIT: &str = "hearth-remind.service";

const WRITTEN_BY: &str =
    "# Written by `hearth remind --install`; `hearth remind --uninstall` removes it.";

/// A time of the week: some days (none means every day) at a time of day, local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    days: Vec<Weekday>,
    hour: u32,
    minute: u32,
}

impl FromStr for When {
    type Err = String;

    /// "Sun 19:00", "Mon,Thu 20:30", "daily 19:00" or "19:00".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let example = "e.g. \"Sun 19:00\", \"Mon,Thu 20:30\" or \"19:00\" for every day";
        let words: Vec<&str> = s.split_whitespace().collect();
        let (days, time) = match words.as_slice() {
            [time] => ("daily", *time),
            [days, time] => (*days, *time),
            _ => {
                return Err(format!(
                    "cannot read {s:?} as a time of the week: {example}"
                ));
            }
        };
        let mut parsed: Vec<Weekday> = Vec::new();
        if !days.eq_ignore_ascii_case("daily") {
            for day in days.split(',') {
                let day = day
                    .trim()
                    .parse::<Weekday>()
                    .map_err(|_| format!("{day:?} is not a day of the week: {example}"))?;
                if !parsed.contains(&day) {
                    parsed.push(day);
                }
            }
            parsed.sort_by_key(Weekday::num_days_from_monday);
        }
        let (hour, minute) = time
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
            .filter(|&(h, m)| h < 24 && m < 60)
            .ok_or_else(|| format!("{time:?} is not a time of day (HH:MM, 24-hour): {example}"))?;
        Ok(When {
            days: parsed,
            hour,
            minute,
        })
    }
}

impl When {
    /// For a person: "on Sun at 19:00", "every day at 19:00".
    pub fn describe(&self) -> String {
        if self.days.is_empty() {
            format!("every day at {:02}:{:02}", self.hour, self.minute)
        } else {
            format!(
                "on {} at {:02}:{:02}",
                self.day_list(),
                self.hour,
                self.minute
            )
        }
    }

    /// systemd's OnCalendar= form, e.g. "Sun *-*-* 19:00:00".
    pub fn on_calendar(&self) -> String {
        let time = format!("*-*-* {:02}:{:02}:00", self.hour, self.minute);
        if self.days.is_empty() {
            time
        } else {
            format!("{} {time}", self.day_list())
        }
    }

    /// The five time fields of a crontab line, e.g. "0 19 * * 0".
    pub fn cron_fields(&self) -> String {
        let days = if self.days.is_empty() {
            "*".to_owned()
        } else {
            self.days
                .iter()
                .map(|d| d.num_days_from_sunday().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{} {} * * {days}", self.minute, self.hour)
    }

    fn day_list(&self) -> String {
        self.days
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The command line the timer runs: this program, the profile, `remind`.
fn arguments(home: &Path, sync: bool) -> Vec<String> {
    let mut args = vec![
        "--home".to_owned(),
        home.display().to_string(),
        "remind".to_owned(),
    ];
    if sync {
        args.push("--sync".to_owned());
    }
    args
}

/// The service and timer unit files, in that order.
pub fn systemd_units(exe: &Path, home: &Path, sync: bool, when: &When) -> (String, String) {
    let mut exec = systemd_word(&exe.display().to_string());
    for arg in arguments(home, sync) {
        exec.push(' ');
        exec.push_str(&systemd_word(&arg));
    }
    let mut service = String::new();
    let _ = writeln!(service, "{WRITTEN_BY}");
    let _ = writeln!(service, "[Unit]");
    let _ = writeln!(
        service,
        "Description=hearth: a gentle nudge when this week's check-in is waiting"
    );
    let _ = writeln!(service);
    let _ = writeln!(service, "[Service]");
    let _ = writeln!(service, "Type=oneshot");
    let _ = writeln!(service, "ExecStart={exec}");

    let mut timer = String::new();
    let _ = writeln!(timer, "{WRITTEN_BY}");
    let _ = writeln!(timer, "[Unit]");
    let _ = writeln!(
        timer,
        "Description=hearth: check-in reminder, {}",
        when.describe()
    );
    let _ = writeln!(timer);
    let _ = writeln!(timer, "[Timer]");
    let _ = writeln!(timer, "OnCalendar={}", when.on_calendar());
    // Run at the next start if the machine was off or asleep at that time.
    let _ = writeln!(timer, "Persistent=true");
    let _ = writeln!(timer);
    let _ = writeln!(timer, "[Install]");
    let _ = writeln!(timer, "WantedBy=timers.target");
    (service, timer)
}

/// One crontab line that runs the reminder at `when`.
pub fn crontab_line(exe: &Path, home: &Path, sync: bool, when: &When) -> String {
    let mut line = format!(
        "{} {}",
        when.cron_fields(),
        shell_word(&exe.display().to_string())
    );
    for arg in arguments(home, sync) {
        line.push(' ');
        line.push_str(&shell_word(&arg));
    }
    line
}

/// A word of an ExecStart= line: systemd expands `%` specifiers and `$` variables even
/// inside quotes, so those are doubled; quotes only when the word needs them.
fn systemd_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if escaped
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// A word for cron's shell: single-quoted when needed, and `%` escaped (cron turns a bare
/// one into a newline).
fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '+' | ','));
    let quoted = if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    };
    quoted.replace('%', r"\%")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when(s: &str) -> When {
        s.parse().expect("a valid time")
    }

    #[test]
    fn times_of_the_week_read_as_people_write_them() {
        assert_eq!(when("Sun 19:00").on_calendar(), "Sun *-*-* 19:00:00");
        assert_eq!(when("sunday 7:05").cron_fields(), "5 7 * * 0");
        assert_eq!(
            when("Thu,mon 20:30").on_calendar(),
            "Mon,Thu *-*-* 20:30:00"
        );
        assert_eq!(when("Thu,mon 20:30").cron_fields(), "30 20 * * 1,4");
        assert_eq!(when("19:00").on_calendar(), "*-*-* 19:00:00");
        assert_eq!(when("daily 19:00").cron_fields(), "0 19 * * *");
        assert_eq!(when("Sun 19:00").describe(), "on Sun at 19:00");
        for bad in [
            "",
            "Sun",
            "Sun 25:00",
            "Funday 19:00",
            "Sun 19:00 extra",
            "Sun 7pm",
        ] {
            assert!(bad.parse::<When>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unit_files_run_this_program_on_this_profile() {
        let (service, timer) = systemd_units(
            Path::new("/opt/hearth/bin/hearth"),
            Path::new("/home/sam/our hearth"),
            false,
            &when("Sun 19:00"),
        );
        assert!(
            service.contains(
                "\nExecStart=/opt/hearth/bin/hearth --home \"/home/sam/our hearth\" remind\n"
            ),
            "{service}"
        );
        assert!(
            timer.contains("\nOnCalendar=Sun *-*-* 19:00:00\n"),
            "{timer}"
        );
        assert!(timer.contains("\nPersistent=true\n"), "{timer}");
        assert!(timer.contains("\nWantedBy=timers.target\n"), "{timer}");
    }

    #[test]
    fn specials_are_escaped_for_systemd_and_cron() {
        assert_eq!(systemd_word("/a/100%/$HOME"), "/a/100%%/$$HOME");
        assert_eq!(systemd_word("/a \"b\""), "\"/a \\\"b\\\"\"");
        let line = crontab_line(
            Path::new("/usr/bin/hearth"),
            Path::new("/home/sam/it's 100%"),
            true,
            &when("Mon 08:00"),
        );
        assert_eq!(
            line,
            r"0 8 * * 1 /usr/bin/hearth --home '/home/sam/it'\''s 100\%' remind --sync"
        );
    }
}
