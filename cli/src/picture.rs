//! The trend chart as a picture to keep or share: an SVG or PNG file, drawn with plotters.
//! It shows what `hearth trends` prints in the terminal (ISO weeks across, the 1–10
//! "feeling about us" score up, one coloured line per partner), and like it never draws
//! across a week without a check-in: the line breaks there, and a week nobody answered is
//! shaded, so a quiet month reads as a quiet month.
//!
//! SVG text is drawn by whatever shows the picture, so SVG needs no font file; PNG text is
//! drawn here, with a system font (see [`crate::font`]). The layout therefore never asks
//! plotters to measure text: widths are estimated, and the same code draws both.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use hearth_doc::{TrendPoint, Week};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::Series;
use crate::exit::user_error;
use crate::font;

/// Width and height in pixels: wide enough for a year of weeks, short enough for a page.
pub const SIZE: (u32, u32) = (900, 480);
/// What the picture says at the top.
pub const TITLE: &str = "How each of you has felt about us";

/// Okabe–Ito colours, told apart with the common kinds of colour blindness.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xD5, 0x5E, 0x00),
];
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const SOFT_INK: RGBColor = RGBColor(0x66, 0x66, 0x66);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const GAP: RGBColor = RGBColor(0xEF, 0xEF, 0xEF);

const TITLE_PX: u32 = 24;
const TEXT_PX: u32 = 15;
const LABEL_PX: u32 = 13;

/// The data a picture shows: every week from the first check-in to `last`, and for each
/// person their score in each week (None when they did not answer).
#[derive(Debug)]
pub struct Plot {
    weeks: Vec<Week>,
    lines: Vec<Line>,
}

#[derive(Debug)]
struct Line {
    name: String,
    scores: Vec<Option<u8>>,
}

impl Plot {
    /// The weeks from the first point to `last`; None when there is nothing to draw.
    pub fn new(points: &[TrendPoint], series: &[Series], last: Week) -> Option<Plot> {
        let first = points.first()?.week;
        let last = last.max(points.last().map_or(first, |p| p.week));
        let mut weeks = vec![first];
        while let Some(&w) = weeks.last()
            && w < last
        {
            weeks.push(w.next());
        }
        let by_week: BTreeMap<Week, &TrendPoint> = points.iter().map(|p| (p.week, p)).collect();
        let lines = series
            .iter()
            .map(|s| Line {
                name: s.name.clone(),
                scores: weeks
                    .iter()
                    .map(|w| {
                        by_week
                            .get(w)
                            .and_then(|p| p.feeling.get(&s.person).copied())
                    })
                    .collect(),
            })
            .filter(|l| l.scores.iter().any(Option::is_some))
            .collect();
        Some(Plot { weeks, lines })
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
            self.draw(&root)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("drawing the SVG chart: {e}"))?;
        }
        Ok(out)
    }

    /// The chart as a PNG image, its text drawn with the system font.
    ///
    /// # Errors
    /// A user error naming HEARTH_FONT when no font can be found.
    pub fn png(&self) -> Result<Vec<u8>> {
        font::register()?;
        let (w, h) = SIZE;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            self.draw(&root)
                .and_then(|()| root.present())
                .map_err(|e| anyhow!("drawing the PNG chart: {e}"))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("encoding the PNG chart")?;
        writer
            .write_image_data(&rgb)
            .context("encoding the PNG chart")?;
        writer.finish().context("encoding the PNG chart")?;
        Ok(out)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (width, _) = SIZE;
        let width = i32::try_from(width).unwrap_or(i32::MAX);
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            TITLE,
            (width / 2, 14),
            text(TITLE_PX, INK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        self.draw_legend(root, width, 58)?;

        let n = self.weeks.len();
        let mut chart = ChartBuilder::on(root)
            .margin_top(80)
            .margin_left(12)
            .margin_right(44)
            .margin_bottom(8)
            .x_label_area_size(50)
            .y_label_area_size(58)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.5f64..10.5)?;
        // Weeks nobody answered, shaded behind the grid.
        let silent = (0..n).filter(|&i| self.lines.iter().all(|l| l.scores[i].is_none()));
        chart.draw_series(silent.map(|i| {
            let x = i as f64;
            Rectangle::new([(x - 0.5, 0.5), (x + 0.5, 10.5)], GAP.filled())
        }))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(10)
            .max_light_lines(0)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .bold_line_style(GRID)
            .axis_style(SOFT_INK)
            .label_style(text(LABEL_PX, INK))
            .axis_desc_style(text(TEXT_PX, INK))
            .y_desc("Feeling about us (1–10)")
            .x_desc("Week (ISO)")
            .draw()?;

        let (left, _) = chart.backend_coord(&(0.0, 0.5));
        let (right, axis_y) = chart.backend_coord(&((n - 1) as f64, 0.5));
        let step_px = if n > 1 {
            (right - left) as f64 / (n - 1) as f64
        } else {
            f64::from(width)
        };
        let radius = (step_px * 0.3).clamp(2.0, 6.0) as i32;

        for (k, line) in self.lines.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            // The first line is drawn wider, so where both gave the same scores both lines show.
            let stroke = if k == 0 { 5 } else { 3 };
            for run in runs(&line.scores) {
                if run.len() > 1 {
                    chart.draw_series(LineSeries::new(
                        run.iter().map(|&(i, s)| (i as f64, f64::from(s))),
                        colour.stroke_width(stroke),
                    ))?;
                }
            }
            for (i, score) in line.scores.iter().enumerate() {
                if let Some(score) = score {
                    let at = (i as f64, f64::from(*score));
                    draw_mark(chart.plotting_area(), k, at, radius, colour)?;
                }
            }
        }

        // Week labels, thinned to what fits, counted back from the newest so it is labelled.
        let label_px = approx_width("2026-W52", LABEL_PX) + 16;
        let fits = usize::try_from((right - left).max(0) / label_px + 1)
            .unwrap_or(1)
            .max(1);
        let every = [1, 2, 3, 4, 6, 8, 13, 26, 52]
            .into_iter()
            .find(|e| n.div_ceil(*e) <= fits)
            .unwrap_or(n.div_ceil(fits).max(1));
        for (i, week) in self.weeks.iter().enumerate() {
            if !(n - 1 - i).is_multiple_of(every) {
                continue;
            }
            let (x, _) = chart.backend_coord(&(i as f64, 0.5));
            root.draw(&PathElement::new(
                vec![(x, axis_y), (x, axis_y + 5)],
                SOFT_INK,
            ))?;
            root.draw(&Text::new(
                week.to_string(),
                (x, axis_y + 9),
                text(LABEL_PX, INK).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        Ok(())
    }

    /// One row under the title: each person's colour and mark, and the shading for gaps.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        width: i32,
        y: i32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        const SAMPLE: i32 = 28;
        const SPACE: i32 = 8;
        const BETWEEN: i32 = 30;
        let gap_label = "no check-in";
        let entries: Vec<&str> = self
            .lines
            .iter()
            .map(|l| l.name.as_str())
            .chain(std::iter::once(gap_label))
            .collect();
        let total: i32 = entries
            .iter()
            .map(|e| SAMPLE + SPACE + approx_width(e, TEXT_PX))
            .sum::<i32>()
            + BETWEEN * (entries.len() as i32 - 1);
        let mut x = (width - total).max(0) / 2;
        for (k, entry) in entries.iter().enumerate() {
            if k < self.lines.len() {
                let colour = COLOURS[k % COLOURS.len()];
                let half = if k == 0 { 3 } else { 2 };
                root.draw(&Rectangle::new(
                    [(x, y - half), (x + SAMPLE, y + half)],
                    colour.filled(),
                ))?;
                draw_mark(root, k, (x + SAMPLE / 2, y), 6, colour)?;
            } else {
                root.draw(&Rectangle::new(
                    [(x + 6, y - 9), (x + SAMPLE - 6, y + 9)],
                    GAP.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x + 6, y - 9), (x + SAMPLE - 6, y + 9)],
                    GRID,
                ))?;
            }
            root.draw(&Text::new(
                *entry,
                (x + SAMPLE + SPACE, y),
                text(TEXT_PX, INK).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += SAMPLE + SPACE + approx_width(entry, TEXT_PX) + BETWEEN;
        }
        Ok(())
    }
}

/// A person's mark at `at`: a circle for the first, a smaller square for the second (so a
/// score both gave shows both), then circles again.
fn draw_mark<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    k: usize,
    at: CT::From,
    radius: i32,
    colour: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if k == 1 {
        let half = (radius * 3 / 4).max(2);
        area.draw(
            &(EmptyElement::at(at)
                + Rectangle::new([(-half, -half), (half, half)], colour.filled())),
        )
    } else {
        area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), radius, colour.filled())))
    }
}

/// Consecutive answered weeks: (week index, score) runs, split wherever a week is missing.
fn runs(scores: &[Option<u8>]) -> Vec<Vec<(usize, u8)>> {
    let mut out: Vec<Vec<(usize, u8)>> = Vec::new();
    let mut current = Vec::new();
    for (i, s) in scores.iter().enumerate() {
        match s {
            Some(s) => current.push((i, *s)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn text(px: u32, colour: RGBColor) -> TextStyle<'static> {
    (font::FAMILY, px).into_font().color(&colour)
}

/// Roughly how wide `s` is at `px`: an average sans-serif letter is a little over half as
/// wide as it is tall. Good enough to space labels, and the same for SVG and PNG.
fn approx_width(s: &str, px: u32) -> i32 {
    (s.chars().count() as f64 * f64::from(px) * 0.58).ceil() as i32
}

/// Writes `bytes` to `path`, which must not exist yet, all or nothing: into a temporary
/// file beside it first, then moved into place without replacing anything. Readable by
/// its owner only, like an export.
///
/// # Errors
/// A user error when `path` exists by then; I/O errors otherwise (the temporary file is
/// removed).
pub fn save_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".hearth-chart-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    if let Err(e) = temp.persist_noclobber(path) {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            user_error!("{}", exists(path));
        }
        return Err(e.error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// Refuses a target that exists already, before anything is drawn or written.
///
/// # Errors
/// A user error saying to choose another name.
pub fn check_new(path: &Path) -> Result<()> {
    if path.exists() {
        user_error!("{}", exists(path));
    }
    Ok(())
}

fn exists(path: &Path) -> String {
    format!(
        "{} already exists; choose another file name (a chart never overwrites a file)",
        path.display()
    )
}

/// Where a Markdown export's chart goes: beside it, `NAME.trends.svg` for `NAME.md`.
pub fn beside(markdown: &Path) -> PathBuf {
    let stem = markdown
        .file_stem()
        .map_or_else(|| "hearth".into(), |s| s.to_string_lossy().into_owned());
    markdown.with_file_name(format!("{stem}.trends.svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_at_missing_weeks_and_never_bridge_them() {
        let scores = [
            Some(7),
            Some(8),
            None,
            None,
            Some(5),
            None,
            Some(6),
            Some(6),
        ];
        assert_eq!(
            runs(&scores),
            vec![vec![(0, 7), (1, 8)], vec![(4, 5)], vec![(6, 6), (7, 6)]]
        );
        assert!(runs(&[None, None]).is_empty());
    }

    #[test]
    fn a_markdown_export_keeps_its_chart_beside_it() {
        assert_eq!(
            beside(Path::new("/tmp/our year.md")),
            Path::new("/tmp/our year.trends.svg")
        );
        assert_eq!(beside(Path::new("notes")), Path::new("notes.trends.svg"));
    }
}
