//! `hearth remind`: a nudge when this week's check-in is waiting for you, made to run from a
//! timer. It never prompts (a timer cannot type a passphrase), never waits on the network
//! unless asked to (`--sync`), and says nothing when nothing is due. A passphrase profile
//! is read while it is unlocked (`hearth unlock`); while it is locked the timer stays
//! silent, and no passphrase is ever written into a unit file.
//!
//! `--install` writes systemd user units (or prints a crontab line) that run it weekly; it
//! does not run `systemctl` itself: enabling a timer that outlives this command is a change
//! to the user's session they should see and type, and the exact command is printed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use hearth_client::{Profile, sync, unlock};
use serde_json::json;

use super::pairing::block_on;
use crate::args::RemindArgs;
use crate::exit::user_error;
use crate::reminder;
use crate::render;
use crate::schedule::{self, SERVICE_UNIT, TIMER_UNIT, When};
use crate::session::{PASSPHRASE_ENV, Session};

/// The longest a desktop notifier may take before it is given up on.
const NOTIFIER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(session: &Session, args: &RemindArgs) -> Result<()> {
    if args.install {
        install(session, args)
    } else if args.uninstall {
        uninstall(session)
    } else {
        remind(session, args)
    }
}

fn remind(session: &Session, args: &RemindArgs) -> Result<()> {
    let print = args.print || std::io::stdout().is_terminal();
    let Some(mut profile) = open_without_asking(session, print)? else {
        return Ok(());
    };
    if args.sync && profile.sync_book().relay()?.is_some() {
        // Reminding from what this device already has beats not reminding at all.
        if let Err(e) = block_on(sync::sync_once(&mut profile, sync::DEFAULT_TIMEOUT))?
            && print
            && !session.quiet
        {
            eprintln!("note: could not sync ({e}); this is what this device knows.");
        }
    }
    let doc = profile.load()?;
    let due = reminder::due(&doc, profile.person_id());
    if session.json {
        return render::print_json(&json!({
            "week": render::this_week(),
            "due": due.is_some(),
            "partner_answered": matches!(due, Some(reminder::Due::PartnerAnswered(_))),
            "message": due.as_ref().map(reminder::Due::message),
        }));
    }
    let Some(due) = due else { return Ok(()) };
    if print {
        println!("{}", due.message());
    } else {
        notify(&due.message());
    }
    Ok(())
}

/// Opens the profile if that needs no typing: no passphrase, unlocked, or a passphrase in
/// HEARTH_PASSPHRASE.
fn open_without_asking(session: &Session, print: bool) -> Result<Option<Profile>> {
    if !Profile::needs_passphrase(&session.home)? {
        return session.open().map(Some);
    }
    if let Some(profile) = unlock::open(&session.home, SystemTime::now())? {
        return Ok(Some(profile));
    }
    if std::env::var_os(PASSPHRASE_ENV).is_some_and(|p| !p.is_empty()) {
        return session.open().map(Some);
    }
    tracing::debug!("the profile is locked: no reminder");
    if print && !session.quiet {
        eprintln!(
            "hearth remind cannot open {} while it is locked, and never asks for the \
             passphrase: `hearth unlock` it (or set {PASSPHRASE_ENV} in a script), or see \
             `hearth status` for this week's check-in.",
            session.home.display()
        );
    }
    Ok(None)
}

/// Shows `message` as a desktop notification where there is a notifier; otherwise nothing.
fn notify(message: &str) {
    let Some(mut notifier) = notifier(message) else {
        return;
    };
    let child = notifier
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return };
    // Without a desktop session a notifier may wait on a bus that never answers.
    let started = Instant::now();
    while started.elapsed() < NOTIFIER_TIMEOUT {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn notifier(message: &str) -> Option<Command> {
    if cfg!(target_os = "macos") {
        // The message goes in as an argument, never spliced into the script.
        let mut cmd = Command::new(on_path("osascript")?);
        cmd.args([
            "-e",
            "on run argv",
            "-e",
            "display notification (item 1 of argv) with title \"hearth\"",
            "-e",
            "end run",
            message,
        ]);
        Some(cmd)
    } else {
        let mut cmd = Command::new(on_path("notify-send")?);
        cmd.args(["hearth", message]);
        Some(cmd)
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Where systemd looks for user units: $XDG_CONFIG_HOME/systemd/user, else
/// ~/.config/systemd/user.
fn systemd_user_dir() -> Result<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let config = match (absolute("XDG_CONFIG_HOME"), absolute("HOME")) {
        (Some(config), _) => config,
        (None, Some(home)) => home.join(".config"),
        (None, None) => {
            user_error!("cannot tell where your systemd user units go: set HOME or XDG_CONFIG_HOME")
        }
    };
    Ok(config.join("systemd").join("user"))
}

/// A systemd user session to hand the timer to: Linux, a runtime directory (set by
/// systemd-logind for a logged-in user) and `systemctl` on PATH.
fn systemd_user_session() -> bool {
    cfg!(target_os = "linux")
        && std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| !d.is_empty())
        && on_path("systemctl").is_some()
}

fn install(session: &Session, args: &RemindArgs) -> Result<()> {
    let when: When = match args.at.parse() {
        Ok(when) => when,
        Err(e) => user_error!("--at: {e}"),
    };
    if !Profile::exists(&session.home) {
        user_error!(
            "there is no profile in {} to remind you about: create one with `hearth init`, or \
             pass the --home you use",
            session.home.display()
        );
    }
    let exe = std::env::current_exe().context("finding the path of this program")?;
    // Always written out: the timer's environment may not have your HEARTH_HOME or data dir.
    let home = std::path::absolute(&session.home)
        .with_context(|| format!("resolving {}", session.home.display()))?;
    let needs_passphrase = Profile::needs_passphrase(&session.home)?;

    if !args.cron && systemd_user_session() {
        let dir = systemd_user_dir()?;
        let (service, timer) = schedule::systemd_units(&exe, &home, args.sync, &when);
        let units = [
            (dir.join(SERVICE_UNIT), service),
            (dir.join(TIMER_UNIT), timer),
        ];
        let differing: Vec<String> = units
            .iter()
            .filter(|(path, text)| {
                path.exists() && std::fs::read_to_string(path).ok().as_deref() != Some(text)
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !differing.is_empty() && !args.force {
            user_error!(
                "{} already exist(s) and differ(s) from what hearth would write (your own edits, \
                 or another --at or --home): nothing was changed. Pass --force to replace, or \
                 `hearth remind --uninstall` first",
                differing.join(" and ")
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (path, text) in &units {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        if !session.quiet {
            eprintln!(
                "Wrote {} and {}: {}, a nudge if this week's check-in is waiting for you \
                 (nothing otherwise). To start the timer, run:",
                units[0].0.display(),
                units[1].0.display(),
                when.describe()
            );
        }
        println!("systemctl --user daemon-reload && systemctl --user enable --now {TIMER_UNIT}");
    } else {
        let line = schedule::crontab_line(&exe, &home, args.sync, &when);
        if !session.quiet {
            eprintln!(
                "Add this line to your crontab (`crontab -e`, or `(crontab -l; hearth remind \
                 --install --cron) | crontab -`) for a nudge {} if this week's check-in is \
                 waiting. Cron jobs often cannot reach the desktop; `hearth remind --print` in \
                 your shell's startup file is another way.",
                when.describe()
            );
        }
        println!("{line}");
    }
    if needs_passphrase && !session.quiet {
        eprintln!(
            "note: this profile is protected by a passphrase, which a timer cannot type and \
             hearth never writes into a unit file: the timer reminds you while the profile is \
             unlocked (`hearth unlock`, for 8 hours unless you say `--for 7d`, say) and stays \
             silent while it is locked."
        );
    }
    Ok(())
}

fn uninstall(session: &Session) -> Result<()> {
    let dir = systemd_user_dir()?;
    let wanted_by = dir.join("timers.target.wants").join(TIMER_UNIT);
    let mut removed: Vec<PathBuf> = Vec::new();
    for path in [dir.join(TIMER_UNIT), dir.join(SERVICE_UNIT), wanted_by] {
        if path.symlink_metadata().is_ok() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(path);
        }
    }
    if removed.is_empty() {
        session.say(format_args!(
            "No hearth reminder timer in {}. If you added a crontab line for it, remove it with \
             `crontab -e`.",
            dir.display()
        ));
        return Ok(());
    }
    if !session.quiet {
        let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "Removed {}. If the timer is running now, stop it with:",
            names.join(", ")
        );
    }
    println!("systemctl --user stop {TIMER_UNIT}; systemctl --user daemon-reload");
    Ok(())
}
