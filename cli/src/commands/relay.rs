//! `hearth relay`: which relay the space syncs through, moving it to another, and trusting
//! its new key. Also the check every command makes before it ties a space to a relay
//! (`init --relay`, `invite --relay`, `relay set`): the address is read as people type
//! it, and the relay must answer as a hearth relay, or nothing is created or changed.
//!
//! `hearth relay trust`: hearth pins the relay's key at first contact and refuses a relay
//! that presents another one; after an operator rebuilt their relay (a new database, so a
//! new key), this re-pins it to the fingerprint they gave, and only if that is the key the
//! relay presents now.

use std::time::Duration;

use anyhow::Result;
use hearth_client::sync::{self, SyncError, SyncReport};
use hearth_client::{RelayCa, RelayTrust, RelayUrl, Whose};
use hearth_proto::{Fingerprint, RejectCode};
use serde_json::json;

use super::pairing::block_on;
use crate::args::{RelayArgs, RelayCommand, RelaySetArgs, RelayTrustArgs};
use crate::exit::{Unavailable, user_error};
use crate::render;
use crate::session::Session;

pub fn run(session: &Session, args: RelayArgs) -> Result<()> {
    match args.command.unwrap_or(RelayCommand::Show) {
        RelayCommand::Show => show(session),
        RelayCommand::Set(args) => set(session, &args),
        RelayCommand::Trust(args) => trust(session, &args),
    }
}

fn show(session: &Session) -> Result<()> {
    let profile = session.open()?;
    let relay = profile.sync_book().relay()?;
    let newer = sync::newer_relay(&profile)?;
    if session.json {
        return render::print_json(&json!({
            "relay": relay,
            "moving_to": newer.as_ref().map(|n| json!({
                "relay": n.url,
                "by": n.by.to_string(),
                "whose": whose_word(n.whose),
            })),
        }));
    }
    match &relay {
        // The data asked for: printed even with --quiet.
        Some(url) => println!("{url}"),
        None => {
            println!("none");
            session.say(
                "Your space stays on this device. Put it on a relay with `hearth relay set \
                 ADDRESS` (or `hearth invite --relay ADDRESS`).",
            );
        }
    }
    if let Some(n) = &newer {
        session.say(format_args!(
            "{} moved your space to {}; `hearth sync` moves this device there once it answers.",
            moved_by(n.whose, &n.by),
            n.url
        ));
    }
    Ok(())
}

fn set(session: &Session, args: &RelaySetArgs) -> Result<()> {
    let mut profile = session.open()?;
    let url = resolve(&args.url)?;
    let from = profile.sync_book().relay()?;
    if from
        .as_deref()
        .is_some_and(|f| RelayUrl::parse(f).ok().as_ref() == Some(&url))
    {
        if session.json {
            return render::print_json(
                &json!({ "from": from, "to": url.as_str(), "moved": false }),
            );
        }
        session.say(format_args!("Your space already syncs through {url}."));
        return Ok(());
    }
    let tying = match &from {
        Some(from) => Tying::Move { from },
        None => Tying::Offline,
    };
    let ca = args.ca_file.as_deref().map(RelayCa::read).transpose()?;
    let trust = match &ca {
        Some(ca) => RelayTrust::new(Some(ca)),
        None => profile.relay_trust()?,
    };
    let url = checked(url.as_str(), &trust, tying)?;
    if let Some(token) = args.relay_token.clone() {
        profile.offer_relay_token(token);
    }
    let moved = block_on(sync::move_space(
        &mut profile,
        &url,
        ca.as_ref(),
        sync::DEFAULT_TIMEOUT,
    ))?;
    let moved = match moved {
        Ok(moved) => moved,
        Err(e) => {
            let kept = match &from {
                Some(from) => format!("your space still syncs through {from}"),
                None => "your space stays on this device".to_owned(),
            };
            if let SyncError::TokenRefused { problem, .. } = &e {
                user_error!(
                    "the space was not moved to {url}, and nothing was changed: {kept}. \
                     {problem}; with a token from that relay's operator, run `hearth relay \
                     set {url} --relay-token TOKEN`"
                );
            }
            return Err(anyhow::Error::new(e).context(format!(
                "the space was not moved to {url}, and nothing was changed: {kept}"
            )));
        }
    };
    let synced = moved.synced.as_ref().ok();
    if session.json {
        return render::print_json(&json!({
            "from": moved.from,
            "to": moved.to.as_str(),
            "moved": true,
            "announced": moved.from.is_some() && moved.not_announced.is_none(),
            "not_announced": moved.not_announced,
            "synced": synced.is_some(),
            "sync_error": moved.synced.as_ref().err().map(ToString::to_string),
            "pushed": synced.map(|r| r.pushed),
            "received": synced.map(|r| r.received),
        }));
    }
    if let Some(report) = synced {
        super::pairing::warn_refused_changes(report);
    }
    let done = console::style("✓").green();
    match &moved.from {
        Some(from) => session.say(format_args!(
            "{done} Your space now syncs through {} (it synced through {from}).",
            moved.to
        )),
        None => session.say(format_args!(
            "{done} Your space now syncs through {}.",
            moved.to
        )),
    }
    match (&moved.from, &moved.not_announced) {
        (Some(_), None) => session.say(
            "Your partner's devices move there on their next sync, while the old relay still \
             runs; keep it running until they have.",
        ),
        (Some(from), Some(why)) => eprintln!(
            "warning: {from} did not take the new address ({why}), so your partner's devices \
             cannot read it there: on each of them, run `hearth relay set {}`.",
            moved.to
        ),
        (None, _) => {}
    }
    match &moved.synced {
        Ok(report) => session.say(format_args!(
            "Sent {} there, received {}.",
            super::pairing::plural(report.pushed, "update"),
            super::pairing::plural(report.received, "update")
        )),
        Err(e) => eprintln!(
            "note: the first sync through {} did not complete ({e}); `hearth sync` goes on \
             from there, and your changes are kept on this device.",
            moved.to
        ),
    }
    Ok(())
}

/// What a sync's report says about the space moving: that this device followed the
/// newest address in the document (said once, when it happens), or that it cannot yet.
pub(crate) fn say_moves(session: &Session, report: &SyncReport, current: Option<&str>) {
    if let Some(m) = &report.moved {
        session.say(format_args!(
            "{} moved your space to {}: this device now syncs there (it synced through {}).",
            moved_by(m.whose, &m.by),
            m.to,
            m.from
        ));
        if let Some(why) = &m.first_sync {
            eprintln!(
                "note: the first sync through {} did not complete ({why}); `hearth sync` goes \
                 on from there, and your changes are kept on this device.",
                m.to
            );
        }
    }
    if let Some(p) = &report.move_pending {
        let here = current.unwrap_or("the relay it is on");
        eprintln!(
            "warning: {} moved your space to {}, but this device cannot move there yet: {}. \
             It keeps syncing through {here} and tries again on every sync. If that is not \
             where your space should be, `hearth relay set {here}` keeps it here.",
            moved_by(p.whose, &p.by),
            p.to,
            p.reason
        );
    }
}

/// Who moved the space, for a sentence: "Your partner", "Your other device 1a2b3c4d".
fn moved_by(whose: Whose, by: &hearth_client::DeviceId) -> String {
    match whose {
        Whose::Partners => "Your partner".to_owned(),
        Whose::Yours => format!("Your device {}", by.short()),
        Whose::Unknown => format!("Device {}", by.short()),
    }
}

fn whose_word(whose: Whose) -> &'static str {
    match whose {
        Whose::Partners => "partner",
        Whose::Yours => "yours",
        Whose::Unknown => "unknown",
    }
}

/// The moves in `report` for `--json`.
pub(crate) fn moves_json(report: &SyncReport) -> serde_json::Value {
    json!({
        "moved": report.moved.as_ref().map(|m| json!({
            "from": m.from,
            "to": m.to,
            "by": m.by.to_string(),
            "whose": whose_word(m.whose),
            "first_sync_error": m.first_sync,
        })),
        "move_pending": report.move_pending.as_ref().map(|p| json!({
            "to": p.to,
            "by": p.by.to_string(),
            "whose": whose_word(p.whose),
            "reason": p.reason,
        })),
    })
}

/// How long the check before tying a space waits for the relay.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a failed check leaves as it was, and how to go on: said after the reason.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tying<'a> {
    /// `hearth init --relay`: no profile was created.
    Init,
    /// `hearth invite --relay` (or `hearth relay set` on an offline space): the space stays
    /// on this device.
    Offline,
    /// `hearth relay set`: the space stays on the relay it is on.
    Move {
        /// That relay.
        from: &'a str,
    },
}

impl Tying<'_> {
    fn left_as_it_was(self) -> String {
        match self {
            Tying::Init => "Nothing was created. To start now and put your space on a relay \
                            later: `hearth init --name YOUR-NAME` without --relay, then \
                            `hearth invite --relay URL` once the relay answers."
                .to_owned(),
            Tying::Offline => "Nothing was changed: your space stays on this device only. Try \
                              again with the right address, or once the relay is up."
                .to_owned(),
            Tying::Move { from } => format!(
                "Nothing was changed: your space still syncs through {from}. Try again with \
                 the right address, or once the relay is up."
            ),
        }
    }
}

/// Reads a relay address as typed; a bad one is the user's to fix (exit 1).
pub(crate) fn resolve(input: &str) -> Result<RelayUrl> {
    match RelayUrl::parse(input) {
        Ok(url) => Ok(url),
        Err(e) => user_error!("{e}"),
    }
}

/// Reads `input` and checks that a hearth relay answers there (with a certificate `trust`
/// accepts), before anything is tied to it. Exit 1 if the address is not a hearth relay's
/// (a 404, no websocket, another protocol or version) or its certificate is refused, exit
/// 2 if nothing answers; either way the message says what was left as it was.
pub(crate) fn checked(input: &str, trust: &RelayTrust, tying: Tying<'_>) -> Result<RelayUrl> {
    let url = resolve(input)?;
    let checked = super::pairing::block_on(sync::check_relay(url.as_str(), trust, CHECK_TIMEOUT))?;
    match checked {
        Ok(()) => Ok(url),
        Err(e) => refuse(&url, &e, tying),
    }
}

/// The error for a relay that did not pass the check.
pub(crate) fn refuse<T>(url: &RelayUrl, error: &SyncError, tying: Tying<'_>) -> Result<T> {
    let after = tying.left_as_it_was();
    match error {
        SyncError::NotARelay { .. } | SyncError::Tls { .. } => user_error!("{error}.\n{after}"),
        SyncError::Refused {
            code: RejectCode::UnsupportedVersion,
            message,
        } => user_error!(
            "the relay at {url} speaks another version of hearth's protocol ({message}).\n{after}"
        ),
        SyncError::Unreachable { .. } | SyncError::Timeout(_) => Err(anyhow::Error::new(
            Unavailable(format!("{error}.\n{after}")),
        )),
        other => {
            user_error!("the relay at {url} did not answer as a hearth relay: {other}.\n{after}")
        }
    }
}

fn trust(session: &Session, args: &RelayTrustArgs) -> Result<()> {
    // Before the profile is opened (and its passphrase asked for): a typo is caught first.
    let fingerprint: Fingerprint = match args.fingerprint.parse() {
        Ok(fingerprint) => fingerprint,
        Err(_) => user_error!(
            "{:?} is not a relay fingerprint: it is 32 hex digits, like \
             3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0 (`hearth-relay fingerprint` prints it on \
             the server)",
            args.fingerprint
        ),
    };
    let mut profile = session.open()?;
    let Some(relay) = profile.sync_book().relay()? else {
        user_error!(
            "this space is not on a relay yet, so there is no relay to trust: see `hearth invite --relay`"
        );
    };
    let trusted = block_on(sync::trust_relay(
        &mut profile,
        fingerprint,
        sync::DEFAULT_TIMEOUT,
    ))??;
    if session.json {
        return render::print_json(&json!({
            "relay": relay,
            "fingerprint": trusted.now.to_string(),
            "before": trusted.before.map(|f| f.to_string()),
            "changed": trusted.before != Some(trusted.now),
        }));
    }
    match trusted.before {
        Some(before) if before == trusted.now => session.say(format_args!(
            "The relay at {relay} already has this fingerprint ({}); nothing changed.",
            trusted.now
        )),
        Some(before) => session.say(format_args!(
            "Trusted the relay at {relay} with its new key ({}; it was {before}). Run `hearth sync`.",
            trusted.now
        )),
        None => session.say(format_args!(
            "Trusted the relay at {relay} ({}). Run `hearth sync`.",
            trusted.now
        )),
    }
    Ok(())
}
