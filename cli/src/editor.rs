//! Writing longer text in the user's editor ($VISUAL, then $EDITOR, then `vi`), like `git
//! commit` does.
//!
//! The draft must sit in a file while the editor has it. It lives in a fresh directory only
//! the user can read (0700, under the system temp dir) and is deleted as soon as the editor
//! exits; it never enters the profile directory.

use std::process::Command;

use anyhow::{Context, Result, bail};

const HEADER: &str = "\n# Write your entry above. Lines starting with '#' are left out.\n\
# Save and close the editor to keep it; leave it empty to discard it.\n";

/// Whether the user named an editor.
pub fn configured() -> bool {
    editor_var().is_some()
}

fn editor_var() -> Option<String> {
    ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
}

/// Opens the editor on an empty draft and returns what the user wrote, comments removed.
pub fn compose() -> Result<String> {
    let editor = editor_var().unwrap_or_else(|| "vi".to_owned());
    let dir = tempfile::Builder::new()
        .prefix("hearth-draft-")
        .tempdir()
        .context("creating a private folder for the draft")?;
    let path = dir.path().join("ENTRY.md");
    std::fs::write(&path, HEADER).context("writing the draft")?;

    // Like git: the editor variable may carry arguments ("code --wait"), so let the shell
    // split it, passing the file as "$1" to keep its path unmangled.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .with_context(|| format!("starting your editor ({editor})"))?;
    if !status.success() {
        bail!("your editor ({editor}) exited with {status}; nothing was saved");
    }
    let text = std::fs::read_to_string(&path).context("reading the draft back")?;
    drop(dir);
    Ok(strip_comments(&text))
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_lines_are_dropped_and_text_kept() {
        assert_eq!(strip_comments("hello\n\nworld\n# note\n"), "hello\n\nworld");
        assert_eq!(strip_comments(HEADER), "");
        assert_eq!(strip_comments("  #not a comment"), "#not a comment");
    }
}
