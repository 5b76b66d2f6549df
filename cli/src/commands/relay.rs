//! `hearth relay`: which relay the space syncs through, and moving it to another. Also the
//! check every command makes before it ties a space to a relay (`init --relay`, `invite
//! --relay`, `relay set`): the address is read as people type it, and the relay must
//! answer as a hearth relay, or nothing is created or changed.

use std::time::Duration;

use anyhow::Result;
use hearth_client::RelayUrl;
use hearth_client::sync::{self, SyncError};
use hearth_proto::RejectCode;

use crate::exit::{Unavailable, user_error};

/// How long the check before tying a space waits for the relay.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a failed check leaves as it was, and how to go on: said after the reason.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tying<'a> {
    /// `hearth init --relay`: no profile was created.
    Init,
    /// `hearth invite --relay`: the space stays on this device.
    Invite,
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
            Tying::Invite => "Nothing was changed: your space stays on this device only. Try \
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

/// Reads `input` and checks that a hearth relay answers there, before anything is tied to
/// it. Exit 1 if the address is not a hearth relay's (a 404, no websocket, another
/// protocol or version), exit 2 if nothing answers; either way the message says what was
/// left as it was.
pub(crate) fn checked(input: &str, tying: Tying<'_>) -> Result<RelayUrl> {
    let url = resolve(input)?;
    let checked = super::pairing::block_on(sync::check_relay(url.as_str(), CHECK_TIMEOUT))?;
    match checked {
        Ok(()) => Ok(url),
        Err(e) => refuse(&url, &e, tying),
    }
}

/// The error for a relay that did not pass the check.
pub(crate) fn refuse<T>(url: &RelayUrl, error: &SyncError, tying: Tying<'_>) -> Result<T> {
    let after = tying.left_as_it_was();
    match error {
        SyncError::NotARelay { .. } => user_error!("{error}.\n{after}"),
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
