//! What every command needs before it can start: which profile, whether a person is at a
//! terminal, and the profile unlocked. A passphrase profile opens with the key `hearth
//! unlock` keeps, if it is unlocked; else the passphrase comes from `HEARTH_PASSPHRASE`, else
//! a prompt on a terminal; without either, commands fail fast with a message instead of
//! waiting on standard input.

use std::cell::OnceCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use hearth_client::{ExposeSecret, Profile, SecretString, unlock};
use zeroize::Zeroizing;

use crate::exit::user_error;
use crate::reminder::{self, Due};

/// The environment variable scripts use to supply the passphrase.
pub const PASSPHRASE_ENV: &str = "HEARTH_PASSPHRASE";

/// Where and how the command runs.
#[derive(Debug)]
pub struct Session {
    /// The profile directory.
    pub home: PathBuf,
    /// Print JSON instead of text.
    pub json: bool,
    /// A person is at a terminal who can answer prompts.
    pub interactive: bool,
    /// `--quiet`: no confirmations, hints or progress.
    pub quiet: bool,
    /// Whether this command may end with the check-in reminder line (see [`reminder`]).
    pub may_remind: bool,
    /// What the command saw of this week's check-in, from the document it loaded anyway.
    checkin: OnceCell<Option<Due>>,
}

impl Session {
    pub fn new(home: Option<PathBuf>, json: bool) -> Result<Self> {
        let home = match home {
            Some(home) => home,
            None => match hearth_client::default_home() {
                Some(home) => home,
                None => user_error!(
                    "cannot find a data directory for your profile: pass --home DIR or set HEARTH_HOME"
                ),
            },
        };
        Ok(Self {
            home,
            json,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            quiet: false,
            may_remind: false,
            checkin: OnceCell::new(),
        })
    }

    /// Prints a confirmation or a hint on standard output, unless `--quiet`.
    pub fn say(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            println!("{line}");
        }
    }

    /// Notes whether this week's check-in waits for `me`, from a document the command has
    /// in hand, so the reminder line after the command needs no second load. Cheap, and
    /// skipped entirely when no reminder line could be printed.
    pub fn saw_checkin(&self, doc: &hearth_doc::SpaceDoc, me: &hearth_doc::PersonId) {
        if self.may_remind && self.checkin.get().is_none() {
            let _ = self.checkin.set(reminder::due(doc, me));
        }
    }

    /// What [`Session::saw_checkin`] recorded: `None` if the command recorded nothing,
    /// `Some(None)` if nothing is due.
    pub fn checkin_seen(&self) -> Option<Option<&Due>> {
        self.checkin.get().map(Option::as_ref)
    }

    /// Opens and unlocks the profile: with the key `hearth unlock` keeps, else with the
    /// passphrase.
    pub fn open(&self) -> Result<Profile> {
        if !Profile::needs_passphrase(&self.home)? {
            return Ok(Profile::open(&self.home, None)?);
        }
        if let Some(profile) = unlock::open(&self.home, SystemTime::now())? {
            return Ok(profile);
        }
        let passphrase = self.passphrase(false)?;
        Ok(Profile::open(&self.home, Some(&passphrase))?)
    }

    /// The profile's passphrase: the first line of standard input if `from_stdin`, else
    /// `HEARTH_PASSPHRASE`, else typed at the prompt.
    pub fn passphrase(&self, from_stdin: bool) -> Result<SecretString> {
        if from_stdin {
            return passphrase_from_stdin();
        }
        if let Some(p) = passphrase_from_env() {
            return Ok(p);
        }
        if !self.interactive {
            user_error!(
                "the profile in {} is protected by a passphrase, it is locked, and there is no \
                 terminal to ask for it: run `hearth unlock` at a terminal first (it stays \
                 unlocked for 8 hours), or set {PASSPHRASE_ENV} to the passphrase",
                self.home.display()
            );
        }
        let typed = dialoguer::Password::new()
            .with_prompt("Passphrase")
            .interact()
            .context("reading the passphrase")?;
        Ok(SecretString::from(typed))
    }

    /// The passphrase for a new profile: from the environment, or typed twice.
    pub fn passphrase_for_new_profile(&self) -> Result<SecretString> {
        if let Some(p) = passphrase_from_env() {
            return Ok(p);
        }
        if !self.interactive {
            user_error!(
                "hearth init needs a passphrase to protect your keys, and there is no terminal \
                 to ask for one: set {PASSPHRASE_ENV}, or pass --no-passphrase to rely on file \
                 permissions alone"
            );
        }
        eprintln!(
            "Choose a passphrase. It protects this device's keys; hearth cannot recover it if \
             you forget it."
        );
        let typed = dialoguer::Password::new()
            .with_prompt("New passphrase")
            .with_confirmation("Again, to be sure", "The two did not match; try again.")
            .validate_with(|p: &String| {
                if p.trim().is_empty() {
                    Err("a passphrase cannot be empty (or use --no-passphrase)")
                } else {
                    Ok(())
                }
            })
            .interact()
            .context("reading the passphrase")?;
        Ok(SecretString::from(typed))
    }
}

fn passphrase_from_stdin() -> Result<SecretString> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the passphrase from standard input")?;
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    if typed.is_empty() {
        user_error!(
            "--passphrase-stdin: standard input had no passphrase on its first line; nothing \
             was unlocked"
        );
    }
    Ok(SecretString::from(typed.to_owned()))
}

fn passphrase_from_env() -> Option<SecretString> {
    std::env::var(PASSPHRASE_ENV)
        .ok()
        .map(SecretString::from)
        .filter(|p| !p.expose_secret().is_empty())
}
