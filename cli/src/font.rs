//! The font a PNG chart draws its text with. hearth ships no font file, so it borrows one
//! installed on the system, or the one HEARTH_FONT names. SVG charts need none: their text
//! is drawn by whatever shows the picture.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::style::FontStyle;

use crate::exit::user_error;

/// The variable naming a .ttf or .otf file to draw PNG text with.
pub const ENV: &str = "HEARTH_FONT";

/// The family name charts ask plotters for; the found font is registered under it.
pub const FAMILY: &str = "sans-serif";

/// Plain, widely installed sans-serif faces, best first (compared without case).
const PREFERRED: &[&str] = &[
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSans-Regular.ttf",
    "NotoSans-Regular.otf",
    "FreeSans.ttf",
    "OpenSans-Regular.ttf",
    "Roboto-Regular.ttf",
    "Cantarell-Regular.otf",
    "Arial.ttf",
    "Helvetica.ttf",
    "Verdana.ttf",
    "segoeui.ttf",
];

/// Font folders are shallow; this bounds the walk if one links somewhere deep.
const MAX_DEPTH: usize = 5;

/// Finds a font and registers it with plotters under [`FAMILY`], once per process.
///
/// # Errors
/// A user error naming HEARTH_FONT and `--svg` when no font is found or it cannot be read.
pub fn register() -> Result<()> {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let path = find()?;
    let bytes =
        std::fs::read(&path).with_context(|| format!("reading the font {}", path.display()))?;
    // plotters keeps fonts for the life of the process; a CLI run draws at most two charts.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_err() {
        user_error!(
            "{} is not a font hearth can read; set {ENV} to a .ttf or .otf file, or use --svg, \
             which needs no font",
            path.display()
        );
    }
    let _ = DONE.set(());
    Ok(())
}

fn find() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            user_error!(
                "{ENV} is {} but there is no font file there; point it at a .ttf or .otf file, \
                 or use --svg, which needs no font",
                path.display()
            );
        }
        return Ok(path);
    }
    let mut found = Vec::new();
    for dir in font_dirs() {
        collect(&dir, 0, &mut found);
    }
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    for want in PREFERRED {
        let want = want.to_lowercase();
        if let Some(path) = found.iter().find(|p| name_of(p) == want) {
            return Ok(path.clone());
        }
    }
    // Otherwise any upright, regular-weight sans-serif face.
    let plain = |name: &str| {
        name.contains("sans")
            && ![
                "bold",
                "italic",
                "oblique",
                "mono",
                "condensed",
                "light",
                "thin",
                "black",
            ]
            .iter()
            .any(|style| name.contains(style))
    };
    found.sort();
    if let Some(path) = found.into_iter().find(|p| plain(&name_of(p))) {
        return Ok(path);
    }
    user_error!(
        "a PNG chart needs a font to draw its text, and none was found in the usual places; \
         set {ENV} to a .ttf or .otf file (for example DejaVuSans.ttf), or use --svg, which \
         needs no font"
    )
}

fn font_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(data).join("fonts"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        dirs.push(home.join(".local/share/fonts"));
        dirs.push(home.join(".fonts"));
        dirs.push(home.join("Library/Fonts"));
    }
    for dir in [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/Library/Fonts",
        "/System/Library/Fonts",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(windows) = std::env::var_os("WINDIR").filter(|w| !w.is_empty()) {
        dirs.push(PathBuf::from(windows).join("Fonts"));
    }
    dirs
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth < MAX_DEPTH {
                collect(&path, depth + 1, out);
            }
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"))
        {
            out.push(path);
        }
    }
}
