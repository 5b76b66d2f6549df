//! Which relay key this device trusts at each relay address: trust on first use, kept.
//! The first connection to a relay address pins the key the relay proved there (or, for a
//! device joining with an invite code that names one, the key the inviting device had
//! pinned); every later connection must prove the same key before this device logs in, so
//! a relay rebuilt with a new database, or an address that now leads to another server,
//! is told apart from the relay the space was on. Only `hearth relay trust FINGERPRINT`
//! moves a pin, and only to the key the relay proves there at that moment.
//!
//! What a pin does not do: it cannot tell whether the first relay met was the right one
//! (the operator's fingerprint, compared once, does), and a server that only forwards the
//! conversation to the real relay proves the real key; TLS is what keeps the path itself
//! honest (docs/security.md, "The relay's key").

use std::time::Duration;

use hearth_proto::Fingerprint;

use super::SyncError;
use super::link::{Link, now_ms};
use crate::Profile;

/// Checks the key `link`'s relay proved against the one pinned for its address, pinning
/// it if this is the first contact.
///
/// # Errors
/// [`SyncError::RelayKeyChanged`] if another key is pinned there; a database error.
pub(super) fn check_pinned(profile: &mut Profile, link: &Link) -> Result<(), SyncError> {
    match profile.sync_book().relay_key(&link.relay)? {
        Some(pinned) if pinned == link.relay_key => Ok(()),
        Some(pinned) => {
            tracing::warn!(
                pinned = %Fingerprint::of(&pinned),
                presented = %link.fingerprint(),
                "the relay presents another key than the one pinned"
            );
            Err(SyncError::RelayKeyChanged {
                relay: link.relay.clone(),
                pinned: Fingerprint::of(&pinned),
                presented: link.fingerprint(),
            })
        }
        None => {
            tracing::info!(fingerprint = %link.fingerprint(), "relay key pinned at first contact");
            profile
                .sync_book_mut()
                .pin_relay_key(&link.relay, &link.relay_key, now_ms())?;
            Ok(())
        }
    }
}

/// Checks the key `link`'s relay proved against the fingerprint an invite code carries
/// (none for a code from before fingerprints: the joiner trusts the key it meets).
///
/// # Errors
/// [`SyncError::RelayKeyNotInvited`] if they differ.
pub(super) fn check_invited(invited: Option<Fingerprint>, link: &Link) -> Result<(), SyncError> {
    match invited {
        Some(invited) if invited != link.fingerprint() => Err(SyncError::RelayKeyNotInvited {
            relay: link.relay.clone(),
            invited,
            presented: link.fingerprint(),
        }),
        _ => Ok(()),
    }
}

/// What `hearth relay trust` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted {
    /// The fingerprint pinned before, if any.
    pub before: Option<Fingerprint>,
    /// The fingerprint pinned now.
    pub now: Fingerprint,
}

/// Re-pins this device's relay to the key it presents now, if that key's fingerprint is
/// `fingerprint` (the one the relay's operator gave). Only the handshake is sent: no login.
///
/// # Errors
/// [`SyncError::NotPaired`] without a relay; [`SyncError::FingerprintMismatch`] if the
/// relay presents another key (nothing is changed); the errors of connecting.
pub async fn trust_relay(
    profile: &mut Profile,
    fingerprint: Fingerprint,
    timeout: Duration,
) -> Result<Trusted, SyncError> {
    let relay = profile.sync_book().relay()?.ok_or(SyncError::NotPaired)?;
    let trust = profile.relay_trust()?;
    let link = Link::connect(&relay, &trust, timeout).await?;
    let presented = link.fingerprint();
    let key = link.relay_key;
    link.close().await;
    if presented != fingerprint {
        return Err(SyncError::FingerprintMismatch {
            relay,
            given: fingerprint,
            presented,
        });
    }
    let before = profile
        .sync_book()
        .relay_key(&relay)?
        .map(|k| Fingerprint::of(&k));
    if before != Some(presented) {
        profile
            .sync_book_mut()
            .pin_relay_key(&relay, &key, now_ms())?;
        tracing::info!(fingerprint = %presented, "relay key pinned by the user");
    }
    Ok(Trusted {
        before,
        now: presented,
    })
}
