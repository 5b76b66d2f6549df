//! Why a sync did not complete. Every variant leaves local data intact; the CLI matches
//! on them to choose an exit code.

use std::fmt;
use std::time::Duration;

use hearth_proto::{DeviceId, Fingerprint, RejectCode};

use crate::{Error, Whose};

/// Why a sync did not complete. Local data is intact in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The relay could not be reached.
    #[error("cannot reach the relay at {relay}: {reason}")]
    Unreachable {
        /// The relay's URL.
        relay: String,
        /// What failed.
        reason: String,
    },
    /// Something answers at the relay's address, but not as a hearth relay: a web page
    /// (often a 404: the address lacks the relay's path), no websocket, or another protocol.
    #[error(
        "{relay} is not a hearth relay: {reason}. Check the address with whoever runs the \
         relay"
    )]
    NotARelay {
        /// The relay's URL.
        relay: String,
        /// What answered instead.
        reason: String,
    },
    /// The relay's certificate is not trusted, or the connection's TLS is not what the
    /// address says (wss:// to a plain port, ws:// to a TLS one). It fails the same way
    /// until someone changes something, so nothing is retried and nothing was sent.
    #[error("{}", fault.explain(relay))]
    Tls {
        /// The relay's URL.
        relay: String,
        /// What is wrong.
        fault: crate::tls::TlsFault,
    },
    /// The relay refused a request.
    #[error("the relay refused: {message}")]
    Refused {
        /// Its reject code.
        code: RejectCode,
        /// Its message.
        message: String,
    },
    /// The relay answered with a frame the conversation does not allow at that point.
    #[error(
        "the relay broke the protocol: expected {wanted}, got {got}; nothing more was sent or \
         applied. If it persists, check which relay you use"
    )]
    UnexpectedFrame {
        /// The frame the conversation was waiting for.
        wanted: &'static str,
        /// The frame the relay sent.
        got: &'static str,
    },
    /// The relay sent bytes that are not a frame (or a frame over the size it announced).
    #[error(
        "the relay sent an unreadable frame ({0}); nothing from it was applied. If it \
         persists, check which relay you use"
    )]
    UnreadableFrame(#[source] hearth_proto::ProtoError),
    /// A frame this device would send is over the size the relay accepts.
    #[error(
        "cannot send to the relay: {0}. The change stays on this device; the relay's \
         operator can raise the limit"
    )]
    Unsendable(#[source] hearth_proto::ProtoError),
    /// The relay's ACL chain does not decode or verify.
    #[error("the relay's ACL does not verify ({0}); nothing was changed")]
    InvalidChain(#[source] hearth_proto::ProtoError),
    /// The relay's ACL chain does not extend the one this device verified before: it
    /// dropped or rewrote records.
    #[error(
        "the relay's ACL does not extend the one this device verified (a rollback or a \
         fork); nothing was changed"
    )]
    ChainRollback,
    /// The invite the relay holds for a code does not hold together.
    #[error("{0}; nothing was created here. Ask for a new invite with `hearth invite`")]
    BadInvite(InviteFault),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
    /// This profile is not on a relay.
    #[error("this profile does not sync with a relay")]
    NotPaired,
    /// The relay does not let this device into the space. A relay answers a removed device
    /// and a stranger alike, so this says both.
    #[error(
        "the relay does not let this device into the space: another of the space's devices \
         may have removed it, or the space lives on another relay. Everything this device \
         holds stays readable here; to sync again, ask for a new invite and `hearth join` it"
    )]
    NotAdmitted,
    /// A key this device needs to read the space is not on the relay yet.
    #[error(
        "the space's key for epoch {epoch} is not available yet ({reason}); the device that \
         made it shares it when it next syncs. Your changes are kept here; sync again later"
    )]
    KeyUnavailable {
        /// The epoch.
        epoch: u32,
        /// Why it could not be had.
        reason: String,
    },
    /// The space's ACL changed while this sync ran; running it again picks the change up.
    #[error("the space's devices changed while syncing; sync again")]
    AclMoved,
    /// The relay no longer holds what this device received from it (its head is behind,
    /// or another envelope sits where one this device saw was): it was restored from an
    /// older backup or lost its database. This device rewound to the start: it reads the
    /// relay's history again and sends it everything on the next attempt
    /// ([`sync_once`](super::sync_once) makes it at once).
    #[error(
        "the relay no longer holds update {cursor} as this device received it (it holds \
         {head}): it was probably restored from a backup; this device will read its history \
         again and send it everything, sync again"
    )]
    RelayBehind {
        /// The relay's head.
        head: u64,
        /// The update this device had received or committed that the relay no longer
        /// holds as it was.
        cursor: u64,
    },
    /// Another device has seen changes to the space's devices (records, or a key epoch)
    /// that the relay does not show this one: the relay is holding them back. Nothing was
    /// sealed, so a device removed in a hidden record cannot read anything new.
    #[error(
        "the relay is holding back changes to this space's devices: device {} has seen {}, \
         but the relay shows this device {have_records} device records (key epoch \
         {have_epoch}). A device may have been removed, so nothing was sent under the old \
         key; everything stays on this device. Sync again later; if this persists, the \
         relay is hiding them: compare `hearth device list` on your partner's device",
        by.short(),
        match records {
            Some(n) => format!("{n} device records (key epoch {epoch})"),
            None => format!("key epoch {epoch}"),
        }
    )]
    AclHidden {
        /// The device that saw more.
        by: hearth_proto::DeviceId,
        /// How many records its chain had, if it said.
        records: Option<u64>,
        /// The epoch its chain reached.
        epoch: u32,
        /// How many records this device's chain has.
        have_records: u64,
        /// The epoch this device's chain reached.
        have_epoch: u32,
    },
    /// Another device has seen a different list of the space's devices than the relay
    /// shows this one, at a record both have: the relay shows them different chains.
    #[error(
        "the relay shows device {} a different list of this space's devices than this one \
         (a fork): nothing was sent, and everything stays on this device. Compare `hearth \
         device list` on both devices; if they differ, the relay is not honest",
        by.short()
    )]
    AclForked {
        /// The device whose chain differs.
        by: hearth_proto::DeviceId,
    },
    /// The relay says one of the space's member devices deleted the space, and the
    /// deletion's signature checked out against the chain this device verified. Nothing
    /// was sent or re-created; local data is untouched.
    #[error("{0}")]
    SpaceDeleted(SpaceDeletion),
    /// The relay says the space was deleted, but its proof does not hold: the signature
    /// does not verify, or is not a member's as this device knows the members. Nothing was
    /// sent or changed.
    #[error(
        "the relay says the space was deleted but shows no signature from a member; it may \
         be lying ({why}). Nothing here was changed and nothing was sent; everything on this \
         device is kept. If it persists, check which relay you use"
    )]
    DeletionUnproven {
        /// The device the relay says deleted it.
        claimed: DeviceId,
        /// Why the proof does not hold.
        why: String,
    },
    /// The relay answers as if the space never existed, though this device verified more
    /// of its chain than its Genesis: creating it again could never work (the relay's
    /// chain would not extend this device's), so nothing is sent.
    #[error(
        "the relay no longer has this space: it answers as if the space never existed, and \
         shows no proof that one of its devices deleted it (it lost its data, or is hiding \
         it). Nothing was sent or created there; everything on this device is kept. If it \
         persists, ask the relay's operator, or check which relay you use"
    )]
    SpaceMissing,
    /// The relay creates spaces only with a creation token from its operator, and this
    /// device's space is not on it: no token was offered
    /// ([`Profile::offer_relay_token`](crate::Profile::offer_relay_token)), or the relay
    /// refused the one offered. Nothing was created or spent; everything stays here.
    #[error(
        "{}{}; everything stays on this device, and the space reaches the relay once it is \
         created there",
        if *after_expiry {
            "the relay removed this space because no second device joined it in time (this \
             device holds all of it), and putting it back needs a creation token: "
        } else {
            ""
        },
        problem
    )]
    TokenRefused {
        /// What was wrong.
        problem: TokenProblem,
        /// Whether the space was on the relay before and expired there.
        after_expiry: bool,
    },
    /// The relay removed this space because no second device joined it in time. This
    /// device was its only member and holds everything; `sync_once` puts it back (this is
    /// what other calls, such as [`check_space`](super::check_space), report).
    #[error(
        "the relay removed this space because no second device joined it in time; this \
         device holds all of it: `hearth sync` puts it back on the relay, and `hearth invite` \
         makes a new invite (the old ones went with it)"
    )]
    SpaceExpired,
    /// The relay refused the login because this device's clock is more than five minutes
    /// from the relay's. Nothing was sent or changed.
    #[error("{0}")]
    ClockSkew(ClockSkew),
    /// The relay at this device's relay address presents another key than the one this
    /// device pinned there (at first contact, or with `hearth relay trust`). Nothing but
    /// the handshake was sent to it: no login, no data.
    #[error(
        "the relay at {relay} is not the one this device knows: its key has fingerprint \
         {presented}, but this device pinned {pinned} there. The relay may have been rebuilt \
         with a new database, or the address may now lead to another server (someone may be \
         impersonating it). Nothing was sent to it, and everything on this device is kept. Ask \
         the relay's operator for its fingerprint (`hearth-relay fingerprint` on the server); \
         if it is {presented}, run `hearth relay trust {presented}`"
    )]
    RelayKeyChanged {
        /// The relay's URL.
        relay: String,
        /// The fingerprint pinned for it.
        pinned: Fingerprint,
        /// The fingerprint of the key it proved now.
        presented: Fingerprint,
    },
    /// The relay presents another key than the invite code says the inviting device knows
    /// it by. Nothing but the handshake was sent; no profile was created.
    #[error(
        "the relay at {relay} is not the one your invite was made on: its key has fingerprint \
         {presented}, but the invite code names {invited}. The address may now lead to another \
         server, or the relay was rebuilt since. Nothing was sent to it and nothing was created \
         here. Ask whoever invited you to check `hearth status` (it shows the relay's \
         fingerprint) and for a new invite"
    )]
    RelayKeyNotInvited {
        /// The relay's URL.
        relay: String,
        /// The fingerprint the invite code carries.
        invited: Fingerprint,
        /// The fingerprint of the key it proved now.
        presented: Fingerprint,
    },
    /// A fingerprint given to `hearth relay trust` is not that of the key the relay
    /// presents. Nothing was changed.
    #[error(
        "the relay at {relay} presents fingerprint {presented}, not the {given} you gave; \
         nothing was changed. Check the fingerprint with the relay's operator \
         (`hearth-relay fingerprint` on the server): if theirs is {given}, the address does \
         not lead to their relay"
    )]
    FingerprintMismatch {
        /// The relay's URL.
        relay: String,
        /// The fingerprint given.
        given: Fingerprint,
        /// The fingerprint of the key the relay proved.
        presented: Fingerprint,
    },
    /// The relay's proof of its key does not hold (made for another connection, or
    /// without the key): it is not the relay it claims to be. Nothing but the handshake
    /// was sent.
    #[error(
        "the relay at {relay} could not prove it holds its key ({why}): it may not be the \
         relay it claims to be. Nothing was sent to it, and everything on this device is \
         kept. If it persists, ask the relay's operator, or check which relay you use"
    )]
    RelayKeyUnproven {
        /// The relay's URL.
        relay: String,
        /// What was wrong with the proof.
        why: String,
    },
    /// The relay does not prove any key (a relay from before relay keys, or not a hearth
    /// relay). Nothing but the handshake was sent.
    #[error(
        "the relay at {relay} does not prove which relay it is: it runs a hearth-relay older \
         than this hearth, or it is not a hearth relay. Nothing was sent to it, and everything \
         on this device is kept; ask the relay's operator to upgrade it"
    )]
    RelayUnidentified {
        /// The relay's URL.
        relay: String,
    },
    /// Another device moved the space to another relay than the one this device was
    /// asked to move it to, and this device had not heard yet: moving it too would split
    /// the devices between two relays.
    #[error(
        "{} already moved this space to {to}; nothing was moved. `hearth sync` takes this \
         device there; then move the space again if you still want it elsewhere",
        mover(*whose, by)
    )]
    MovedElsewhere {
        /// The relay the space moved to.
        to: String,
        /// The device that moved it.
        by: DeviceId,
        /// Whose device that is.
        whose: Whose,
    },
    /// The local profile failed.
    #[error(transparent)]
    Profile(#[from] Error),
}

/// How far this device's clock is from the relay's, as found when the relay refused a
/// login for it (`ClockSkew`), with the relay's time from the `Identity` it signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSkew {
    /// This device's clock at the login, UTC milliseconds.
    pub device_ms: u64,
    /// The relay's clock, UTC milliseconds.
    pub relay_ms: u64,
}

impl ClockSkew {
    /// Whether this device's clock is ahead of the relay's.
    pub fn ahead(&self) -> bool {
        self.device_ms > self.relay_ms
    }

    /// How far off, in words: "10 minutes", "3 hours", "2 days".
    pub fn distance(&self) -> String {
        let minutes = (self.device_ms.abs_diff(self.relay_ms) + 30_000) / 60_000;
        let (n, unit) = match minutes {
            m if m < 120 => (m, "minute"),
            m if m < 48 * 60 => ((m + 30) / 60, "hour"),
            m => ((m + 12 * 60) / (24 * 60), "day"),
        };
        match n {
            1 => format!("1 {unit}"),
            n => format!("{n} {unit}s"),
        }
    }

    /// The relay's time as a person checks a clock against it: `14:03 UTC`, with the day
    /// in front when the two clocks are on different days.
    pub fn relay_time(&self) -> String {
        let to_utc = |ms: u64| hearth_doc::Millis(i64::try_from(ms).unwrap_or(i64::MAX)).to_utc();
        let relay = to_utc(self.relay_ms);
        if relay.date_naive() == to_utc(self.device_ms).date_naive() {
            relay.format("%H:%M UTC").to_string()
        } else {
            relay.format("%Y-%m-%d %H:%M UTC").to_string()
        }
    }
}

impl fmt::Display for ClockSkew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = if self.ahead() { "ahead of" } else { "behind" };
        write!(
            f,
            "this computer's clock is {} {way} the relay's (the relay says it is {}): set the \
             clock (e.g. `timedatectl set-ntp true`, or your system's date & time settings) and \
             run the command again. Nothing was sent, and everything on this device is kept; \
             hearth also dates what you write and checks invites' expiry by this clock",
            self.distance(),
            self.relay_time()
        )
    }
}

fn mover(whose: Whose, by: &DeviceId) -> String {
    match whose {
        Whose::Partners => format!("your partner's device {}", by.short()),
        Whose::Yours => format!("your device {}", by.short()),
        Whose::Unknown => format!("device {}", by.short()),
    }
}

/// A deletion of the space on the relay, proven: the device that deleted it signed the
/// deletion, and this device's verified chain names it as a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceDeletion {
    /// The device that deleted the space.
    pub by: DeviceId,
    /// Whose device it is, as this device's chain says.
    pub whose: Whose,
    /// Whether it was this very device (through another program).
    pub this_device: bool,
    /// When, by the relay's clock (UTC milliseconds): the relay's word, not signed.
    pub deleted_at_ms: u64,
}

impl SpaceDeletion {
    /// Who deleted it, in words: "your partner's device 1a2b3c4d".
    pub fn who(&self) -> String {
        let short = self.by.short();
        match (self.this_device, self.whose) {
            (true, _) => format!("this device ({short})"),
            (false, Whose::Yours) => format!("your other device {short}"),
            (false, Whose::Partners) => format!("your partner's device {short}"),
            (false, Whose::Unknown) => format!("device {short}"),
        }
    }

    /// The day it was deleted, `YYYY-MM-DD` in UTC.
    pub fn day(&self) -> String {
        let ms = i64::try_from(self.deleted_at_ms).unwrap_or(i64::MAX);
        hearth_doc::Millis(ms).to_utc().date_naive().to_string()
    }
}

impl fmt::Display for SpaceDeletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this space was deleted from the relay by {} on {}; everything on this device is \
             kept: `hearth export --format md` saves it; `hearth init` starts a new space",
            self.who(),
            self.day()
        )
    }
}

/// Why the relay would not create the space with the token this device offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// None was offered.
    #[error(
        "this relay creates spaces only with a creation token from its operator: ask the \
         relay's operator for one (`hearth-relay token create`) and pass it with --relay-token"
    )]
    Missing,
    /// The relay does not know it.
    #[error(
        "the relay does not know this creation token (mistyped, revoked, or made for \
         another relay): ask the relay's operator for a new one"
    )]
    Unknown,
    /// It expired.
    #[error("this creation token has expired: ask the relay's operator for a new one")]
    Expired,
    /// Its uses are spent.
    #[error("this creation token has been used up: ask the relay's operator for a new one")]
    Used,
}

impl TokenProblem {
    /// The problem a relay's reject `code` names, if it names one.
    pub(crate) fn of(code: hearth_proto::RejectCode) -> Option<Self> {
        use hearth_proto::RejectCode as C;
        match code {
            C::TokenRequired => Some(Self::Missing),
            C::TokenUnknown => Some(Self::Unknown),
            C::TokenExpired => Some(Self::Expired),
            C::TokenUsed => Some(Self::Used),
            _ => None,
        }
    }
}

/// What is wrong with an invite as the relay holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteFault {
    /// Its key box does not open with the code.
    #[error("the invite's key box does not open with this code")]
    KeyBoxSealed,
    /// Its key box holds keys the space's ACL does not name.
    #[error("the invite's key box holds keys the space's ACL does not name")]
    KeysNotInChain,
    /// A device invite names no valid person to join as.
    #[error("the invite names an invalid person")]
    InvalidPerson,
    /// A device invite names no person at all.
    #[error("a device invite without its person")]
    MissingPerson,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deletion(whose: Whose, this_device: bool) -> SpaceDeletion {
        SpaceDeletion {
            by: DeviceId::from_bytes([0x1a; 32]),
            whose,
            this_device,
            // 2026-12-07 12:00 UTC.
            deleted_at_ms: 1_796_644_800_000,
        }
    }

    #[test]
    fn a_deletion_says_who_and_when_and_that_everything_here_is_kept() {
        assert_eq!(
            SyncError::SpaceDeleted(deletion(Whose::Partners, false)).to_string(),
            "this space was deleted from the relay by your partner's device 1a1a1a1a on \
             2026-12-07; everything on this device is kept: `hearth export --format md` saves it; \
             `hearth init` starts a new space"
        );
        assert_eq!(
            deletion(Whose::Yours, false).who(),
            "your other device 1a1a1a1a"
        );
        assert_eq!(deletion(Whose::Yours, true).who(), "this device (1a1a1a1a)");
    }

    #[test]
    fn a_refused_token_says_what_to_do_and_that_nothing_is_lost() {
        let err = SyncError::TokenRefused {
            problem: TokenProblem::Missing,
            after_expiry: false,
        };
        assert_eq!(
            err.to_string(),
            "this relay creates spaces only with a creation token from its operator: ask the \
             relay's operator for one (`hearth-relay token create`) and pass it with \
             --relay-token; everything stays on this device, and the space reaches the relay \
             once it is created there"
        );
        let err = SyncError::TokenRefused {
            problem: TokenProblem::Used,
            after_expiry: true,
        };
        assert!(
            err.to_string().starts_with(
                "the relay removed this space because no second device joined it in time"
            ),
            "{err}"
        );
        assert!(err.to_string().contains("used up"), "{err}");
    }

    #[test]
    fn a_skewed_clock_says_which_way_how_far_and_the_relays_time_never_removal() {
        // 2026-12-07 14:03 UTC on the relay.
        let relay_ms = 1_796_652_180_000;
        let ahead = SyncError::ClockSkew(ClockSkew {
            device_ms: relay_ms + 10 * 60_000,
            relay_ms,
        });
        assert_eq!(
            ahead.to_string(),
            "this computer's clock is 10 minutes ahead of the relay's (the relay says it is \
             14:03 UTC): set the clock (e.g. `timedatectl set-ntp true`, or your system's date \
             & time settings) and run the command again. Nothing was sent, and everything on \
             this device is kept; hearth also dates what you write and checks invites' expiry \
             by this clock"
        );
        let behind = ClockSkew {
            device_ms: relay_ms - 3 * 3_600_000 - 60_000,
            relay_ms,
        };
        assert!(!behind.ahead());
        assert_eq!(behind.distance(), "3 hours");
        let message = SyncError::ClockSkew(behind).to_string();
        assert!(message.contains("3 hours behind the relay's"), "{message}");
        assert!(!message.contains("removed"), "{message}");
        let days = ClockSkew {
            device_ms: relay_ms - 400 * 86_400_000,
            relay_ms,
        };
        assert_eq!(days.distance(), "400 days");
        assert_eq!(days.relay_time(), "2026-12-07 14:03 UTC");
        let one = ClockSkew {
            device_ms: relay_ms + 61_000,
            relay_ms,
        };
        assert_eq!(one.distance(), "1 minute");
    }

    #[test]
    fn a_changed_relay_key_names_both_fingerprints_what_it_may_mean_and_the_command() {
        let pinned: Fingerprint = "1111-2222-3333-4444-5555-6666-7777-8888".parse().unwrap();
        let presented: Fingerprint = "9999-aaaa-bbbb-cccc-dddd-eeee-ffff-0000".parse().unwrap();
        let message = SyncError::RelayKeyChanged {
            relay: "wss://relay.example.org/v1/sync".into(),
            pinned,
            presented,
        }
        .to_string();
        for part in [
            "wss://relay.example.org/v1/sync",
            "pinned 1111-2222-3333-4444-5555-6666-7777-8888",
            "fingerprint 9999-aaaa-bbbb-cccc-dddd-eeee-ffff-0000",
            "rebuilt",
            "another server",
            "Nothing was sent",
            "`hearth-relay fingerprint`",
            "`hearth relay trust 9999-aaaa-bbbb-cccc-dddd-eeee-ffff-0000`",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }

    #[test]
    fn an_unproven_deletion_says_the_relay_may_be_lying() {
        let err = SyncError::DeletionUnproven {
            claimed: DeviceId::from_bytes([0x1a; 32]),
            why: "its signature does not verify".into(),
        };
        let message = err.to_string();
        assert!(
            message.starts_with(
                "the relay says the space was deleted but shows no signature from a member; \
                 it may be lying (its signature does not verify)"
            ),
            "{message}"
        );
        assert!(
            message.contains("everything on this device is kept"),
            "{message}"
        );
    }
}
