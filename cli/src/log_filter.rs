//! Which timeline items `hearth log` keeps: by kind, by person and by time. The rules live
//! here, apart from loading and printing, so they can be tested without a profile; the
//! command resolves names and moments first, then filtering is a plain predicate.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, TimeZone};
use hearth_doc::{Millis, Person, PersonId, TimelineItem, TimelineKind, Week};

use crate::args::LogKind;

/// The most `--since 30000d` may reach back: far enough for any history, small enough that
/// date arithmetic cannot overflow.
const MAX_DAYS_AGO: i64 = 100 * 366;

/// A point or stretch of time given to `--since` / `--until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// A calendar day, `2026-11-02`.
    Day(NaiveDate),
    /// An ISO week, `2026-W45`, Monday to Sunday.
    Week(Week),
    /// A span back from now, `7d` or `4w`, counted in days.
    DaysAgo(i64),
}

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<When, String> {
        let s = s.trim();
        let invalid = || {
            format!(
                "expected a day like 2026-11-02, an ISO week like 2026-W45, or a span back \
                 from now like 7d or 4w; got {s:?}"
            )
        };
        if let Some(unit) = s
            .chars()
            .last()
            .filter(|c| matches!(c, 'd' | 'w' | 'D' | 'W'))
        {
            let number = &s[..s.len() - 1];
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                let n: i64 = number.parse().map_err(|_| invalid())?;
                let days = if unit.eq_ignore_ascii_case(&'w') {
                    n.saturating_mul(7)
                } else {
                    n
                };
                if days > MAX_DAYS_AGO {
                    return Err(format!(
                        "{s:?} reaches back too far; at most {MAX_DAYS_AGO}d"
                    ));
                }
                return Ok(When::DaysAgo(days));
            }
        }
        if s.contains(['W', 'w']) {
            return s.parse::<Week>().map(When::Week).map_err(|_| invalid());
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(When::Day)
            .map_err(|_| invalid())
    }
}

impl When {
    /// The first moment it covers: where `--since` starts.
    pub fn start<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> Millis {
        match self {
            When::Day(day) => midnight(*day, &now.timezone()),
            When::Week(week) => midnight(week.monday(), &now.timezone()),
            When::DaysAgo(days) => Millis((now.clone() - Duration::days(*days)).timestamp_millis()),
        }
    }

    /// The first moment after it: where `--until` stops, so that a day or a week is
    /// included whole.
    pub fn end<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> Millis {
        match self {
            When::Day(day) => midnight(day.succ_opt().unwrap_or(*day), &now.timezone()),
            When::Week(week) => midnight(week.next().monday(), &now.timezone()),
            When::DaysAgo(_) => self.start(now),
        }
    }
}

/// The start of `day` in `tz`. Where a clock change skips midnight, the day starts at the
/// same wall time in UTC, which is off by at most the change itself.
fn midnight<Tz: TimeZone>(day: NaiveDate, tz: &Tz) -> Millis {
    let naive = day.and_time(chrono::NaiveTime::MIN);
    let at = tz.from_local_datetime(&naive).earliest().map_or_else(
        || naive.and_utc().timestamp_millis(),
        |t| t.timestamp_millis(),
    );
    Millis(at)
}

/// Finds the person `--by` names: `me`, `partner`, or a name in any case.
///
/// # Errors
///
/// A message for the person when nobody matches (listing the names there are), or when
/// `partner` is asked for before a partner has joined.
pub fn person(who: &str, people: &[Person], me: &PersonId) -> Result<PersonId, String> {
    let who = who.trim();
    if who.eq_ignore_ascii_case("me") {
        return Ok(me.clone());
    }
    if who.eq_ignore_ascii_case("partner") {
        return people
            .iter()
            .find(|p| p.id != *me)
            .map(|p| p.id.clone())
            .ok_or_else(|| "your partner has not joined yet, so nothing is theirs".to_owned());
    }
    let wanted = who.to_lowercase();
    if let Some(p) = people.iter().find(|p| p.name.to_lowercase() == wanted) {
        return Ok(p.id.clone());
    }
    let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
    Err(format!(
        "nobody here is called {who:?}; --by takes {}, `me` or `partner`",
        names.join(", ")
    ))
}

/// The `--kind` an item answers to; `None` for a kind this build does not know, which only
/// an unfiltered log shows.
pub fn kind_of(kind: &TimelineKind) -> Option<LogKind> {
    match kind {
        TimelineKind::Appreciation { .. } => Some(LogKind::Appreciation),
        TimelineKind::Feedback { .. } => Some(LogKind::Feedback),
        TimelineKind::Reply { .. } => Some(LogKind::Reply),
        TimelineKind::Journal { .. } => Some(LogKind::Journal),
        TimelineKind::CheckinSubmitted { .. } => Some(LogKind::Checkin),
        TimelineKind::Commitment { .. } => Some(LogKind::Commitment),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// What `hearth log` keeps, with names and moments already resolved. The default keeps
/// everything.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only these kinds; empty for all.
    pub kinds: Vec<LogKind>,
    /// Only what this person did.
    pub by: Option<PersonId>,
    /// Nothing before this moment.
    pub since: Option<Millis>,
    /// Nothing at or after this moment.
    pub until: Option<Millis>,
}

impl Filter {
    /// Whether `item` passes every filter given.
    pub fn keeps(&self, item: &TimelineItem) -> bool {
        let kind_ok =
            self.kinds.is_empty() || kind_of(&item.kind).is_some_and(|k| self.kinds.contains(&k));
        kind_ok
            && self.by.as_ref().is_none_or(|p| item.author == *p)
            && self.since.is_none_or(|t| item.at >= t)
            && self.until.is_none_or(|t| item.at < t)
    }

    /// The items that pass, then only the last `last` of those.
    pub fn select(&self, mut items: Vec<TimelineItem>, last: Option<usize>) -> Vec<TimelineItem> {
        items.retain(|item| self.keeps(item));
        if let Some(n) = last {
            let skip = items.len().saturating_sub(n);
            items.drain(..skip);
        }
        items
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use hearth_doc::EntryId;

    use super::*;

    fn at(s: &str) -> Millis {
        Millis(DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis())
    }

    fn appreciation(at_: &str, author: &PersonId) -> TimelineItem {
        TimelineItem {
            at: at(at_),
            author: author.clone(),
            kind: TimelineKind::Appreciation {
                id: EntryId::new(),
                text: "thanks".into(),
            },
        }
    }

    fn checkin(at_: &str, author: &PersonId) -> TimelineItem {
        TimelineItem {
            at: at(at_),
            author: author.clone(),
            kind: TimelineKind::CheckinSubmitted {
                week: "2026-W45".parse().unwrap(),
            },
        }
    }

    fn people() -> (Vec<Person>, PersonId, PersonId) {
        let (sam, ben) = (PersonId::random(), PersonId::random());
        let person = |id: &PersonId, name: &str| Person {
            id: id.clone(),
            name: name.into(),
            joined_at: Millis(0),
        };
        (vec![person(&sam, "Sam"), person(&ben, "Ben")], sam, ben)
    }

    #[test]
    fn when_reads_days_weeks_and_spans_back() {
        assert_eq!(
            "2026-11-02".parse::<When>(),
            Ok(When::Day(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()))
        );
        assert_eq!(
            "2026-W45".parse::<When>(),
            Ok(When::Week(Week::new(2026, 45).unwrap()))
        );
        assert_eq!("7d".parse::<When>(), Ok(When::DaysAgo(7)));
        assert_eq!("4w".parse::<When>(), Ok(When::DaysAgo(28)));
        for bad in ["yesterday", "2026-13-01", "2026-W54", "d", "-3d", "7 d", ""] {
            let err = bad.parse::<When>().unwrap_err();
            assert!(
                err.contains("2026-W45") && err.contains("7d"),
                "{bad}: {err}"
            );
        }
        assert!("99999999w".parse::<When>().unwrap_err().contains("too far"));
    }

    #[test]
    fn a_day_or_week_is_included_whole_and_spans_count_back_from_now() {
        let now = at("2026-11-12T15:00:00Z").to_utc();
        let day = When::Day(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        assert_eq!(day.start(&now), at("2026-11-02T00:00:00Z"));
        assert_eq!(day.end(&now), at("2026-11-03T00:00:00Z"));
        // 2026-W45 runs Monday 2 to Sunday 8 November.
        let week = When::Week(Week::new(2026, 45).unwrap());
        assert_eq!(week.start(&now), at("2026-11-02T00:00:00Z"));
        assert_eq!(week.end(&now), at("2026-11-09T00:00:00Z"));
        let back = When::DaysAgo(7);
        assert_eq!(back.start(&now), at("2026-11-05T15:00:00Z"));
        assert_eq!(back.end(&now), back.start(&now));
        // Days start at local midnight.
        let berlin = now.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap());
        assert_eq!(day.start(&berlin), at("2026-11-01T23:00:00Z"));
    }

    #[test]
    fn by_takes_names_in_any_case_me_and_partner() {
        let (people, sam, ben) = people();
        assert_eq!(person("ben", &people, &sam), Ok(ben.clone()));
        assert_eq!(person("SAM", &people, &sam), Ok(sam.clone()));
        assert_eq!(person("me", &people, &sam), Ok(sam.clone()));
        assert_eq!(person("partner", &people, &sam), Ok(ben.clone()));
        assert_eq!(person("Partner", &people, &ben), Ok(sam.clone()));
        let err = person("Alex", &people, &sam).unwrap_err();
        assert!(
            err.contains("\"Alex\"") && err.contains("Sam, Ben"),
            "{err}"
        );
        let alone = &people[..1];
        assert!(
            person("partner", alone, &sam)
                .unwrap_err()
                .contains("not joined")
        );
    }

    #[test]
    fn filters_combine_and_the_last_n_count_after_filtering() {
        let (_, sam, ben) = people();
        let items = vec![
            appreciation("2026-11-01T10:00:00Z", &sam),
            checkin("2026-11-02T10:00:00Z", &ben),
            appreciation("2026-11-03T10:00:00Z", &ben),
            appreciation("2026-11-08T23:59:59Z", &ben),
            appreciation("2026-11-09T00:00:00Z", &ben),
            checkin("2026-11-10T10:00:00Z", &sam),
        ];
        assert_eq!(Filter::default().select(items.clone(), None), items);

        let week = When::Week(Week::new(2026, 45).unwrap());
        let now = Utc::now();
        let filter = Filter {
            kinds: vec![LogKind::Appreciation],
            by: Some(ben.clone()),
            since: Some(week.start(&now)),
            until: Some(week.end(&now)),
        };
        let kept = filter.select(items.clone(), None);
        assert_eq!(kept, [items[2].clone(), items[3].clone()]);
        assert_eq!(filter.select(items.clone(), Some(1)), [items[3].clone()]);

        let checkins = Filter {
            kinds: vec![LogKind::Checkin, LogKind::Journal],
            ..Filter::default()
        };
        assert_eq!(
            checkins.select(items.clone(), None),
            [items[1].clone(), items[5].clone()]
        );
        let by_sam = Filter {
            by: Some(sam),
            ..Filter::default()
        };
        assert_eq!(
            by_sam.select(items.clone(), Some(5)),
            [items[0].clone(), items[5].clone()]
        );
    }
}
