//! The trend chart drawn in the terminal: one column per ISO week, the "how are you feeling
//! about us" score (1–10) on the vertical axis, one mark per partner. Weeks without a
//! check-in stay visible as gaps, so a quiet month reads as a quiet month.

use std::collections::BTreeMap;
use std::fmt::Write;

use hearth_doc::{PersonId, TrendPoint, Week};

const COLUMN: usize = 3;
const TOP: u8 = 10;

/// One line of the chart's legend: the mark and whose it is.
#[derive(Debug, Clone)]
pub struct Series {
    pub person: PersonId,
    pub name: String,
    pub mark: char,
}

/// Picks a distinct mark for each person: their initial, or a digit when initials clash.
pub fn series(people: &[(PersonId, String)]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for (i, (person, name)) in people.iter().enumerate() {
        let initial = name
            .chars()
            .find(|c| c.is_alphanumeric())
            .map_or('?', |c| c.to_ascii_uppercase());
        let mark = if out.iter().any(|s| s.mark == initial) || initial == '*' {
            char::from_digit(u32::try_from(i + 1).unwrap_or(9) % 10, 10).unwrap_or('#')
        } else {
            initial
        };
        out.push(Series {
            person: person.clone(),
            name: name.clone(),
            mark,
        });
    }
    out
}

/// Draws the weeks from `first` to `last` (inclusive) that fit in `width` columns, newest
/// on the right.
pub fn draw(points: &[TrendPoint], series: &[Series], last: Week, width: usize) -> String {
    let fit = width.saturating_sub(6) / COLUMN;
    let by_week: BTreeMap<Week, &TrendPoint> = points.iter().map(|p| (p.week, p)).collect();
    let first_point = points.first().map_or(last, |p| p.week);
    let mut weeks = Vec::new();
    let mut w = last;
    while weeks.len() < fit.max(1) {
        weeks.push(w);
        if w <= first_point {
            break;
        }
        w = w.previous();
    }
    weeks.reverse();

    let mut out = String::new();
    for score in (1..=TOP).rev() {
        let _ = write!(out, "{score:>3} │");
        for week in &weeks {
            let marks: Vec<char> = by_week
                .get(week)
                .map(|p| {
                    series
                        .iter()
                        .filter(|s| p.feeling.get(&s.person) == Some(&score))
                        .map(|s| s.mark)
                        .collect()
                })
                .unwrap_or_default();
            let cell = match marks.as_slice() {
                [] => ' ',
                [one] => *one,
                _ => '*',
            };
            let _ = write!(out, " {cell} ");
        }
        out.push('\n');
    }
    out.push_str("    └");
    for week in &weeks {
        out.push_str(if by_week.contains_key(week) {
            "───"
        } else {
            "╌·╌"
        });
    }
    out.push('\n');
    // Label every fourth week and the newest one, wherever a label fits.
    let mut labels = vec![' '; 5 + weeks.len() * COLUMN + 4];
    let mut free_from = 0;
    for (i, week) in weeks.iter().enumerate() {
        if i % 4 != 0 && i + 1 != weeks.len() {
            continue;
        }
        let at = 5 + i * COLUMN;
        if at < free_from {
            continue;
        }
        let label: Vec<char> = format!("W{:02}", week.number()).chars().collect();
        labels[at..at + label.len()].copy_from_slice(&label);
        free_from = at + label.len() + 1;
    }
    let labels: String = labels.into_iter().collect();
    out.push_str(labels.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(week: &str, scores: &[(&PersonId, u8)]) -> TrendPoint {
        TrendPoint {
            week: week.parse().unwrap(),
            feeling: scores.iter().map(|(p, s)| ((*p).clone(), *s)).collect(),
        }
    }

    #[test]
    fn marks_land_on_their_scores_and_gaps_show() {
        let a = PersonId::random();
        let b = PersonId::random();
        let s = series(&[(a.clone(), "Sam".into()), (b.clone(), "Jo".into())]);
        let points = vec![
            point("2026-W40", &[(&a, 8), (&b, 6)]),
            point("2026-W42", &[(&a, 7), (&b, 7)]),
        ];
        let chart = draw(&points, &s, "2026-W42".parse().unwrap(), 80);
        let lines: Vec<&str> = chart.lines().collect();
        // Row for 8 (third line) has S in the first column; row 7 has both ('*') in the third.
        assert_eq!(lines[2], "  8 │ S       ");
        assert_eq!(lines[3], "  7 │       * ");
        assert_eq!(lines[4], "  6 │ J       ");
        assert!(
            lines[10].contains("╌·╌"),
            "the missed week shows as a gap: {}",
            lines[10]
        );
        assert_eq!(lines[11], "     W40   W42");
    }

    #[test]
    fn clashing_initials_get_digits() {
        let s = series(&[
            (PersonId::random(), "Sam".into()),
            (PersonId::random(), "sky".into()),
        ]);
        assert_eq!(s[0].mark, 'S');
        assert_eq!(s[1].mark, '2');
    }
}
