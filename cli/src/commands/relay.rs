//! `hearth relay trust`: the relay this space syncs through. hearth pins the relay's key at
//! first contact and refuses a relay that presents another one; after an operator rebuilt
//! their relay (a new database, so a new key), this re-pins it to the fingerprint they gave,
//! and only if that is the key the relay presents now.

use anyhow::Result;
use hearth_client::sync;
use hearth_proto::Fingerprint;
use serde_json::json;

use super::pairing::block_on;
use crate::args::{RelayCommand, RelayTrustArgs};
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

pub fn run(session: &Session, command: RelayCommand) -> Result<()> {
    match command {
        RelayCommand::Trust(args) => trust(session, &args),
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
