//! `hearth unlock` and `hearth lock`: type the passphrase once, and commands (the reminder
//! timer too) open the profile without it until the time is up. The key is held by the
//! kernel keyring (`hearth_client::unlock`), never written to a file.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use hearth_client::{Profile, unlock};
use serde_json::json;

use crate::args::UnlockArgs;
use crate::render;
use crate::session::Session;

pub fn unlock(session: &Session, args: &UnlockArgs) -> Result<()> {
    if !Profile::needs_passphrase(&session.home)? {
        return nothing_to_do(session, "unlock");
    }
    let passphrase = session.passphrase(args.passphrase_stdin)?;
    let unlocked = unlock::unlock(&session.home, &passphrase, args.duration, SystemTime::now())?;
    if session.json {
        return render::print_json(&json!({
            "passphrase": true,
            "unlocked_until_ms": unix_ms(unlocked.until),
        }));
    }
    session.say(format_args!(
        "Unlocked until {} ({} from now). Commands open {} without the passphrase until \
         then, and so can the reminder timer; `hearth lock` locks it now.",
        local_time(unlocked.until),
        humantime::format_duration(args.duration),
        session.home.display(),
    ));
    Ok(())
}

pub fn lock(session: &Session) -> Result<()> {
    if !Profile::needs_passphrase(&session.home)? {
        return nothing_to_do(session, "lock");
    }
    let removed = unlock::lock(&session.home)?;
    if session.json {
        return render::print_json(&json!({ "passphrase": true, "was_unlocked": removed }));
    }
    session.say(if removed {
        "Locked: commands ask for the passphrase again."
    } else {
        "It was not unlocked: commands ask for the passphrase."
    });
    Ok(())
}

fn nothing_to_do(session: &Session, verb: &str) -> Result<()> {
    if session.json {
        return render::print_json(&json!({ "passphrase": false }));
    }
    session.say(format_args!(
        "The profile in {} has no passphrase, so there is nothing to {verb}: it opens without \
         one, protected by its files' permissions only.",
        session.home.display()
    ));
    Ok(())
}

/// What `hearth status` says about it: `None` for a profile without a passphrase, else
/// until when it is unlocked, if it is.
pub fn standing(session: &Session) -> Result<Option<Option<SystemTime>>> {
    if !Profile::needs_passphrase(&session.home)? {
        return Ok(None);
    }
    Ok(Some(unlock::unlocked_until(
        &session.home,
        SystemTime::now(),
    )?))
}

pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn local_time(at: SystemTime) -> String {
    render::when(hearth_doc::Millis(
        i64::try_from(unix_ms(at)).unwrap_or(i64::MAX),
    ))
}
