//! `hearth trends --svg/--png` and the chart in a Markdown export: the real program draws
//! real files, for one partner on one device and for a couple paired over a real relay.
//!
//! To look at the pictures a run draws, set HEARTH_TEST_CHARTS to a directory: the couple's
//! SVG and PNG are copied there.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use base64::Engine as _;
use hearth_doc::Week;
use hearth_testkit::TestRelay;
use hearth_testkit::couple::paired;
use hearth_tests::Device;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const BLUE: &str = "#0072B2";
const ORANGE: &str = "#E69F00";

fn device() -> Device {
    Device::new(BIN)
}

fn path(dev: &Device, name: &str) -> String {
    dev.scratch().join(name).to_str().unwrap().to_owned()
}

/// Polylines drawn in `colour`: one per unbroken run of weeks (legend samples are boxes).
fn polylines(svg: &str, colour: &str) -> usize {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && l.contains(&format!("stroke=\"{colour}\"")))
        .count()
}

/// Round marks drawn in `colour` (the first partner's; the legend has one too).
fn marks(svg: &str, colour: &str) -> usize {
    svg.lines()
        .filter(|l| l.starts_with("<circle") && l.contains(&format!("fill=\"{colour}\"")))
        .count()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn checkin(dev: &Device, week: Week, feeling: u8) {
    dev.ok([
        "checkin",
        "--week",
        &week.to_string(),
        "--answer",
        &format!("feeling={feeling}"),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_couples_picture_names_both_and_breaks_where_a_week_was_missed() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::at(&dir.path().join("relay.db"));
    let sam = device();
    let jordan = device();
    paired(&sam.home(), "Sam", &jordan.home(), "Jordan", &relay.url).await;

    // Twelve weeks up to this one. Nobody checked in two weeks in the middle, and Jordan
    // missed one more near the end.
    sam.ok(["checkin", "--answer", "feeling=8"]);
    let now: Week = sam.json(["trends"])[0]["week"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut weeks = vec![now];
    for _ in 0..11 {
        weeks.insert(0, weeks[0].previous());
    }
    let sam_scores = [6, 6, 7, 7, 8, 0, 0, 5, 6, 7, 7];
    let jordan_scores = [7, 6, 6, 8, 8, 0, 0, 4, 5, 0, 6];
    for (i, week) in weeks[..11].iter().enumerate() {
        if sam_scores[i] > 0 {
            checkin(&sam, *week, sam_scores[i]);
        }
        if jordan_scores[i] > 0 {
            checkin(&jordan, *week, jordan_scores[i]);
        }
    }
    sam.ok(["sync"]);
    jordan.ok(["sync"]);

    // A score stays sealed until both have answered that week, in pictures as everywhere:
    // Jordan sees none of Sam's for this week (not answered yet) or week 9 (missed).
    let seen: Vec<String> = jordan
        .json(["trends"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["week"].as_str().unwrap().to_owned())
        .collect();
    let answered: Vec<String> = [0, 1, 2, 3, 4, 7, 8, 10]
        .iter()
        .map(|&i| weeks[i].to_string())
        .collect();
    assert_eq!(seen, answered);
    let sealed = path(&jordan, "before.svg");
    jordan.ok(["trends", "--svg", &sealed]);
    let before = std::fs::read_to_string(&sealed).unwrap();
    assert_eq!(
        marks(&before, BLUE),
        8 + 1,
        "Sam's visible scores and the legend: {before}"
    );

    jordan.ok(["checkin", "--answer", "feeling=7"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);

    let svg_path = path(&sam, "us.svg");
    let png_path = path(&sam, "us.png");
    let run = sam.run(["trends", "--svg", &svg_path, "--png", &png_path]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("How each of you"), "{}", run.stdout);
    assert!(
        run.stderr.contains("us.svg") && run.stderr.contains("us.png"),
        "{}",
        run.stderr
    );

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    for text in [
        "How each of you has felt about us",
        "Sam",
        "Jordan",
        "no check-in",
    ] {
        assert!(
            svg.contains(&format!(">\n{text}\n<")),
            "no {text:?} in {svg}"
        );
    }
    // Twelve full labels do not fit: every other week is labelled, counting back from the
    // newest, which always is.
    for (i, week) in weeks.iter().enumerate() {
        let labelled = svg.contains(&format!(">\n{week}\n<"));
        assert_eq!(
            labelled,
            (11 - i).is_multiple_of(2),
            "label {week} in {svg}"
        );
    }
    // Sam: weeks 0–4 and 7–11, two lines; a line drawn across the gap would be one.
    assert_eq!(polylines(&svg, BLUE), 2, "{svg}");
    // Jordan: 0–4, 7–8 and 10–11; the missed week 9 breaks the line too.
    assert_eq!(polylines(&svg, ORANGE), 3, "{svg}");
    // The two silent weeks are shaded (plus the legend's sample).
    assert_eq!(svg.matches("fill=\"#EFEFEF\"").count(), 3, "{svg}");

    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(png_size(&png), (900, 480));

    if let Some(keep) = std::env::var_os("HEARTH_TEST_CHARTS") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::copy(&svg_path, keep.join("couple.svg")).unwrap();
        std::fs::copy(&png_path, keep.join("couple.png")).unwrap();
    }

    // Markdown export to a file: the chart beside it, linked from a Trends section.
    let md_path = path(&sam, "our year.md");
    sam.ok(["export", "--format", "md", "--output", &md_path]);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains("## Trends"), "{md}");
    assert!(md.contains("](<our year.trends.svg>)"), "{md}");
    let beside = std::fs::read_to_string(sam.scratch().join("our year.trends.svg")).unwrap();
    assert_eq!(polylines(&beside, BLUE), 2);

    // To standard output: the chart inside, as a data URI.
    let md = sam.ok(["export", "--format", "md"]);
    let (_, uri) = md.split_once("](data:image/svg+xml;base64,").expect(&md);
    let encoded = &uri[..uri.find(')').unwrap()];
    let inline = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let inline = String::from_utf8(inline).unwrap();
    assert!(
        inline.starts_with("<svg") && inline.contains("Jordan"),
        "{inline}"
    );

    relay.stop().await.expect("the relay stops");
}

#[test]
fn a_picture_never_overwrites_and_an_export_leaves_nothing_half_done() {
    let dev = device();
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev.ok(["checkin", "--answer", "feeling=7"]);

    let taken = path(&dev, "taken.svg");
    std::fs::write(&taken, "mine").unwrap();
    let fresh = path(&dev, "fresh.png");
    let run = dev.run(["trends", "--png", &fresh, "--svg", &taken]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("taken.svg already exists"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("choose another file name"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
    assert!(
        !Path::new(&fresh).exists(),
        "nothing is written when one target is refused"
    );

    let run = dev.run(["trends", "--svg", &fresh, "--png", &fresh]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("same file"), "{}", run.stderr);

    // An export whose chart name is taken is refused before anything is written.
    std::fs::write(dev.scratch().join("notes.trends.svg"), "mine").unwrap();
    let md = path(&dev, "notes.md");
    let run = dev.run(["export", "--format", "md", "--output", &md]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("notes.trends.svg already exists"),
        "{}",
        run.stderr
    );
    assert!(!Path::new(&md).exists());
    assert_eq!(
        std::fs::read_to_string(dev.scratch().join("notes.trends.svg")).unwrap(),
        "mine"
    );

    // No temporary files left behind by any of it.
    let left: Vec<_> = std::fs::read_dir(dev.scratch())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_svg_needs_no_font_and_a_png_without_one_says_what_to_do() {
    let mut dev = device();
    dev.env("HEARTH_FONT", "/nowhere/NoSuchFont.ttf");
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev.ok(["checkin", "--answer", "feeling=7"]);

    // No font is ever loaded for an SVG-only run, so this also shows that plotters never
    // needed one to lay out the picture.
    let svg = path(&dev, "a.svg");
    dev.ok(["trends", "--svg", &svg]);
    assert!(std::fs::read_to_string(&svg).unwrap().contains(">\nSam\n<"));

    let (svg, png) = (path(&dev, "b.svg"), path(&dev, "b.png"));
    let run = dev.run(["trends", "--svg", &svg, "--png", &png]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for hint in ["HEARTH_FONT", "/nowhere/NoSuchFont.ttf", "--svg"] {
        assert!(run.stderr.contains(hint), "{hint} in {}", run.stderr);
    }
    assert!(!Path::new(&svg).exists() && !Path::new(&png).exists());

    // The font this machine has (CI runs on the same image) draws it.
    let mut found = device();
    found.env("HEARTH_HOME", dev.home());
    let png = path(&found, "c.png");
    found.ok(["trends", "--png", &png]);
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (900, 480));
}

#[test]
fn without_check_ins_there_is_nothing_to_draw_and_that_is_fine() {
    let dev = device();
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    let (svg, png) = (path(&dev, "a.svg"), path(&dev, "a.png"));
    let run = dev.run(["trends", "--svg", &svg, "--png", &png]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("No check-ins yet"), "{}", run.stdout);
    assert!(!Path::new(&svg).exists() && !Path::new(&png).exists());
    let points = dev.json(["trends", "--svg", &svg]);
    assert_eq!(points, serde_json::json!([]));
    assert!(!Path::new(&svg).exists());

    let md = dev.ok(["export", "--format", "md"]);
    assert!(!md.contains("## Trends"), "{md}");
    let out = path(&dev, "notes.md");
    dev.ok(["export", "--format", "md", "--output", &out]);
    assert!(!dev.scratch().join("notes.trends.svg").exists());
}

#[test]
fn with_json_the_points_print_as_before_and_the_picture_is_drawn_too() {
    let dev = device();
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev.ok(["checkin", "--week", "2026-W01", "--answer", "feeling=6"]);
    dev.ok(["checkin", "--week", "2026-W03", "--answer", "feeling=8"]);
    let svg = path(&dev, "a.svg");
    let points = dev.json(["trends", "--svg", &svg]);
    assert_eq!(
        points,
        serde_json::json!([
            { "week": "2026-W01", "feeling": { "Sam": 6 } },
            { "week": "2026-W03", "feeling": { "Sam": 8 } },
        ])
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    // W01 and W03 stand apart: two single points, no line bridging W02.
    assert_eq!(polylines(&svg, BLUE), 0, "{svg}");
    assert_eq!(marks(&svg, BLUE), 2 + 1, "{svg}");
}
