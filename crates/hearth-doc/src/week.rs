//! ISO weeks, the rhythm of the weekly check-in.
//!
//! A check-in belongs to a week, not to a moment: both partners answer "this week's"
//! check-in whenever it suits them, and their answers must land in the same place. ISO 8601
//! weeks (Monday to Sunday, week 1 holds the year's first Thursday) give every device the
//! same answer without any coordination.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DocError;

/// An ISO 8601 week, written `2026-W47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    // Field order matters: the derived Ord sorts by year, then week.
    year: i32,
    week: u32,
}

impl Week {
    /// The ISO week holding `date`.
    ///
    /// Around New Year the ISO year can differ from the calendar year: 2024-12-30 is in
    /// 2025-W01.
    pub fn from_date(date: NaiveDate) -> Week {
        let iso = date.iso_week();
        Week {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// A week from its ISO year and number, if that week exists (some years have 53).
    pub fn new(year: i32, week: u32) -> Option<Week> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(Week::from_date)
    }

    /// The Monday that starts this week.
    pub fn monday(&self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .expect("a Week is only ever built from a valid ISO week")
    }

    /// The week before this one (or this week, at the very start of chrono's calendar).
    pub fn previous(&self) -> Week {
        self.monday()
            .checked_sub_days(Days::new(7))
            .map_or(*self, Week::from_date)
    }

    /// The week after this one (or this week, at the very end of chrono's calendar).
    pub fn next(&self) -> Week {
        self.monday()
            .checked_add_days(Days::new(7))
            .map_or(*self, Week::from_date)
    }

    /// The ISO week-numbering year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The week number, 1 to 53.
    pub fn number(&self) -> u32 {
        self.week
    }
}

impl fmt::Display for Week {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for Week {
    type Err = DocError;

    /// Parses `2026-W47` (the `W` may be lowercase; a single-digit week like `2026-W7` is
    /// accepted too).
    fn from_str(s: &str) -> Result<Week, DocError> {
        let invalid = || DocError::Invalid {
            what: "week",
            input: s.to_owned(),
            expected: "an ISO week like 2026-W47",
        };
        let (year, week) = s
            .trim()
            .split_once("-W")
            .or_else(|| s.trim().split_once("-w"))
            .ok_or_else(invalid)?;
        let digits = |t: &str, max_len: usize| {
            !t.is_empty() && t.len() <= max_len && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(year, 4) || year.len() != 4 || !digits(week, 2) {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let week: u32 = week.parse().map_err(|_| invalid())?;
        Week::new(year, week).ok_or_else(invalid)
    }
}

impl Serialize for Week {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Week {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Week, D::Error> {
        deserializer.deserialize_str(crate::ids::ParseVisitor::<Week>::new(
            "an ISO week like 2026-W47",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn weeks_display_and_parse_round_trip() {
        let w: Week = "2026-W47".parse().unwrap();
        assert_eq!((w.year(), w.number()), (2026, 47));
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!("2026-w47".parse::<Week>().unwrap(), w);
        assert_eq!("2026-W7".parse::<Week>().unwrap().to_string(), "2026-W07");
        assert_eq!(w.monday(), date(2026, 11, 16));
    }

    #[test]
    fn bad_weeks_are_refused_with_the_format() {
        for bad in [
            "",
            "2026",
            "2026-47",
            "2026-W0",
            "2026-W54",
            "2025-W53",
            "26-W01",
            "2026-W470",
            "2026-W+1",
        ] {
            let err = bad.parse::<Week>().unwrap_err();
            assert!(err.to_string().contains("2026-W47"), "{bad}: {err}");
        }
        // 2026 has 53 ISO weeks.
        assert!("2026-W53".parse::<Week>().is_ok());
    }

    #[test]
    fn iso_years_differ_from_calendar_years_at_new_year() {
        assert_eq!(Week::from_date(date(2024, 12, 30)).to_string(), "2025-W01");
        assert_eq!(Week::from_date(date(2027, 1, 1)).to_string(), "2026-W53");
    }

    #[test]
    fn previous_and_next_cross_year_boundaries() {
        let w: Week = "2026-W01".parse().unwrap();
        assert_eq!(w.previous().to_string(), "2025-W52");
        assert_eq!(w.previous().next(), w);
        let last: Week = "2026-W53".parse().unwrap();
        assert_eq!(last.next().to_string(), "2027-W01");
    }

    #[test]
    fn weeks_order_by_year_then_number_and_serialise_as_strings() {
        let a: Week = "2025-W52".parse().unwrap();
        let b: Week = "2026-W01".parse().unwrap();
        assert!(a < b);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"2026-W01\"");
        assert_eq!(serde_json::from_str::<Week>("\"2026-W01\"").unwrap(), b);
        assert!(serde_json::from_str::<Week>("\"soon\"").is_err());
    }
}
