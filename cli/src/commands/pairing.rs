//! `hearth invite`, `hearth join` and `hearth sync`: pairing through a relay and keeping
//! both sides in step. The work happens in `hearth_client::sync`; this module runs it on a
//! small runtime and words the outcome.

use std::time::Duration;

use anyhow::{Context, Result};
use hearth_client::sync::{self, SyncReport};
use hearth_client::{Profile, Protection, RelayCa, RelayUrl, Whose};
use hearth_proto::InviteRole;
use serde_json::json;

use super::relay::{self, Tying};
use crate::args::{InviteArgs, JoinArgs, SyncArgs};
use crate::exit::user_error;
use crate::progress::Progress;
use crate::render;
use crate::session::Session;

/// Runs one async client operation to completion on a single-threaded runtime.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    Ok(runtime.block_on(future))
}

pub fn invite(session: &Session, args: InviteArgs) -> Result<()> {
    let ca = args.ca_file.as_deref().map(RelayCa::read).transpose()?;
    let mut profile = session.open()?;
    if let Some(input) = &args.relay {
        match profile.sync_book().relay()? {
            // Typed another way, the same relay is no reason to refuse.
            Some(current) if RelayUrl::parse(&current).ok() == Some(relay::resolve(input)?) => {
                if let Some(ca) = &ca {
                    refuse_untrusted_relay(&current, Some(ca))?;
                    profile.sync_book_mut().set_relay_ca(ca)?;
                }
            }
            Some(current) => user_error!(
                "this space already syncs through {current}; leave out --relay to invite \
                 through it, or move the space first with `hearth relay set {input}`"
            ),
            None => {
                let trust = hearth_client::RelayTrust::new(ca.as_ref());
                let url = relay::checked(input, &trust, Tying::Offline)?;
                profile.sync_book_mut().start_space(url.as_str())?;
                if let Some(ca) = &ca {
                    profile.sync_book_mut().set_relay_ca(ca)?;
                }
                // On stderr: stdout carries the code alone.
                if !session.quiet {
                    eprintln!("Your space now syncs through {url}.");
                }
            }
        }
    }
    if let Some(token) = args.relay_token {
        profile.offer_relay_token(token);
    }
    if profile.sync_book().relay()?.is_none() {
        user_error!(
            "this space is not on a relay yet: run `hearth invite --relay ADDRESS` with your \
             relay's address, e.g. relay.example.org (see docs/self-hosting.md)"
        );
    }
    let role = if args.device {
        InviteRole::OwnDevice
    } else {
        InviteRole::Partner
    };
    let ttl = Duration::from_secs(args.expires.clamp(1, 24 * 30) * 3600);
    let code = block_on(sync::invite(&mut profile, role, ttl, sync::DEFAULT_TIMEOUT))??;
    note_unused_token(session, &profile);
    if session.json {
        return render::print_json(
            &json!({ "code": code.to_string(), "expires_in_hours": ttl.as_secs() / 3600 }),
        );
    }
    // The code alone on stdout, so `hearth invite | …` works; the explanation on stderr.
    println!("{code}");
    if session.quiet {
        return Ok(());
    }
    let who = if args.device {
        "your other device"
    } else {
        "your partner"
    };
    let how = if args.device {
        "hearth join CODE"
    } else {
        "hearth join CODE --name THEIR-NAME"
    };
    eprintln!(
        "Give this code to {who} privately (in person, or a message only they read). It works \
         once, for {} hours: `{how}`.",
        ttl.as_secs() / 3600
    );
    Ok(())
}

pub fn join(session: &Session, args: JoinArgs) -> Result<()> {
    if Profile::exists(&session.home) {
        return Err(hearth_client::Error::AlreadyExists {
            path: hearth_client::ProfilePaths::new(&session.home).database,
        }
        .into());
    }
    let code: hearth_crypto::InviteCode = match args.code.trim().parse() {
        Ok(code) => code,
        Err(e) => user_error!("{e}"),
    };
    let ca = args.ca_file.as_deref().map(RelayCa::read).transpose()?;
    let protection = if args.no_passphrase {
        Protection::None
    } else {
        Protection::Passphrase(session.passphrase_for_new_profile()?)
    };
    let joined = block_on(sync::join_trusting(
        &session.home,
        &code,
        args.name.as_deref(),
        protection,
        ca.as_ref(),
        sync::DEFAULT_TIMEOUT,
    ))??;
    warn_refused_changes(&joined.report);
    let relay = joined.profile.sync_book().relay()?;
    if !session.json {
        relay::say_moves(session, &joined.report, relay.as_deref());
    }
    let doc = joined.profile.load()?;
    // A device that refused the relay's snapshot and could not get the envelopes instead
    // joined without that history: never say "Joined" as if it were all there.
    let lacking = joined
        .report
        .refused_snapshot
        .as_ref()
        .and_then(|r| r.unavailable.map(|_| r.covers_seq));
    if session.json {
        return render::print_json(&json!({
            "home": session.home,
            "as_partner": joined.as_partner,
            "received": joined.report.received,
            "refused_snapshot": joined.report.refused_snapshot.as_deref().map(refused_snapshot_json),
            "history_unavailable_through": lacking,
        }));
    }
    let names: Vec<String> = doc.people().into_iter().map(|p| p.name).collect();
    let who = if names.is_empty() {
        "the".to_owned()
    } else {
        format!("{}'s", names.join(" & "))
    };
    match lacking {
        Some(covers) => session.say(format_args!(
            "Joined {who} hearth on this device, but without its history up to update \
             {covers} ({} received; see the warning above).",
            plural(joined.report.received, "update")
        )),
        None => session.say(format_args!(
            "Joined {who} hearth on this device ({} received).",
            plural(joined.report.received, "update")
        )),
    }
    session.say("Run `hearth sync` to stay up to date, or `hearth log` to look around.");
    Ok(())
}

pub fn sync(session: &Session, args: SyncArgs) -> Result<()> {
    let ca = args.ca_file.as_deref().map(RelayCa::read).transpose()?;
    let mut profile = session.open()?;
    if let Some(token) = args.relay_token {
        profile.offer_relay_token(token);
    }
    if let Some(ca) = &ca {
        let Some(url) = profile.sync_book().relay()? else {
            user_error!(
                "this space is not on a relay yet, so there is no relay to trust --ca-file for: \
                 put it on one with `hearth invite --relay wss://…/v1/sync --ca-file PATH`"
            );
        };
        // A CA that does not vouch for the relay replaces nothing: the one kept stays.
        refuse_untrusted_relay(&url, Some(ca))?;
        profile.sync_book_mut().set_relay_ca(ca)?;
    }
    let progress = Progress::after_a_second(session, "Syncing…");
    let report = block_on(sync::sync_once(&mut profile, sync::DEFAULT_TIMEOUT))??;
    drop(progress);
    note_unused_token(session, &profile);
    if session.may_remind {
        // The one command that loads the document only for the reminder line (what just
        // arrived may be your partner's answer): once a day at most, see `reminder`.
        session.saw_checkin(&profile.load()?, profile.person_id());
    }
    let relay = profile.sync_book().relay()?;
    print_report(session, &report, relay.as_deref())
}

/// A creation token given for a space that was on the relay already is not spent: say so,
/// so it can go to whoever needs it.
fn note_unused_token(session: &Session, profile: &Profile) {
    if profile.relay_token_unused() && !session.quiet {
        eprintln!(
            "note: your space was on the relay already, so the creation token was not used; \
             it still works for someone else's space"
        );
    }
}

/// The note after a sync that put back a space the relay had removed because nobody joined it.
pub(crate) const RECREATED_NOTE: &str = "note: the relay had removed this space because no \
     second device joined it in time. This device held all of it, so it created the space \
     there again and sent everything: nothing is lost. Invites made before then no longer \
     work; make a new one with `hearth invite`.";

/// The warning for a change the authorship rule refused: who brought it, what it did, and
/// that none of it was applied (the rest of its envelope was).
pub(crate) fn refused_change_warning(r: &hearth_client::RefusedChangeReport) -> String {
    let from = whose_device(r.person, &r.device);
    format!(
        "warning: refused a change from {from}: {}; nothing from it was applied",
        r.reason
    )
}

pub(crate) fn warn_refused_changes(report: &SyncReport) {
    for r in &report.refused_changes {
        eprintln!("{}", refused_change_warning(r));
    }
    if let Some(n) = &report.not_countersigned {
        eprintln!("{}", not_countersigned_warning(n));
    }
    if let Some(r) = &report.refused_snapshot {
        eprintln!("{}", refused_snapshot_warning(r));
    }
    // A gap the refused snapshot left is said there, with why.
    if let Some(w) = &report.withheld
        && report
            .refused_snapshot
            .as_ref()
            .is_none_or(|r| r.unavailable.is_none())
    {
        eprintln!("{}", withheld_warning(w));
    }
}

/// Who a device is, for a warning: the partner's, one of your own, or a stranger's.
fn whose_device(person: Whose, device: &hearth_client::DeviceId) -> String {
    match person {
        Whose::Partners => format!("your partner's device {}", device.short()),
        Whose::Yours => format!("your own device {}", device.short()),
        Whose::Unknown => format!("device {}, which is not in this space", device.short()),
    }
}

/// The warning for the partner's snapshot proposal this device did not countersign: who
/// proposed it, what is wrong with it, and that the relay keeps everything.
pub(crate) fn not_countersigned_warning(n: &sync::NotCountersigned) -> String {
    format!(
        "warning: your partner's device {} proposed a snapshot that {}; it was not \
         countersigned, and the relay keeps the history as it is",
        n.device.short(),
        n.fault
    )
}

/// The warning for a snapshot the relay handed over in place of the envelopes it covers,
/// which this device refused: whose it was, why, and whether the history it claims to
/// stand for could be read instead.
pub(crate) fn refused_snapshot_warning(r: &sync::RefusedSnapshot) -> String {
    let whose = whose_device(r.person, &r.device);
    match r.unavailable {
        Some(w) => format!(
            "warning: the relay's history up to update {} is unavailable: in its place the \
             relay handed over a snapshot by {whose}, which this device refused ({}), and it \
             no longer holds {} of the updates it stands for. This device has none of them; \
             your devices that already had them keep them. Ask the relay's operator to \
             restore its database from a backup (docs/operations.md).",
            r.covers_seq,
            r.fault,
            plural(usize::try_from(w.missing).unwrap_or(usize::MAX), "update")
        ),
        None => format!(
            "note: the relay handed over a snapshot by {whose} in place of updates up to {}, \
             which this device refused ({}); it read those updates themselves instead",
            r.covers_seq, r.fault
        ),
    }
}

fn refused_snapshot_json(r: &sync::RefusedSnapshot) -> serde_json::Value {
    json!({
        "covers_seq": r.covers_seq,
        "device": r.device.to_string(),
        "reason": r.fault.to_string(),
        "unavailable": r.unavailable.map(|w| json!({ "from_seq": w.from_seq, "to_seq": w.to_seq, "missing": w.missing })),
    })
}

/// The warning for envelopes the relay holds but did not hand over, even when asked twice.
pub(crate) fn withheld_warning(w: &hearth_client::Withheld) -> String {
    let what = match w.missing {
        1 if w.from_seq == w.to_seq => format!("update {} but did not hand it over", w.from_seq),
        1 => format!(
            "1 update between {} and {} that it did not hand over",
            w.from_seq, w.to_seq
        ),
        n => format!(
            "{n} updates between {} and {} that it did not hand over",
            w.from_seq, w.to_seq
        ),
    };
    format!(
        "warning: the relay holds {what}, even when asked twice. Nothing on this device is \
         lost and they are asked for again on every sync; if this persists, the relay is \
         withholding them."
    )
}

fn print_report(session: &Session, report: &SyncReport, relay: Option<&str>) -> Result<()> {
    warn_refused_changes(report);
    for r in &report.rejected {
        let device = r.device.map_or_else(
            || "an unknown device".to_owned(),
            |d| format!("device {}", d.short()),
        );
        eprintln!(
            "warning: skipped an entry from {device}: {} (nothing from it was applied)",
            r.reason
        );
    }
    if report.recreated_after_expiry {
        eprintln!("{RECREATED_NOTE}");
    }
    if let Some((head, cursor)) = report.relay_behind {
        eprintln!(
            "note: the relay no longer held update {cursor} as this device had received it (it \
             holds {head} updates): it was probably restored from a backup. This device read \
             its history again and sent it everything it has, so nothing is lost; your \
             partner's devices do the same when they next sync."
        );
    }
    if report.waiting > 0 {
        eprintln!(
            "note: {} received but not shown yet: they build on earlier changes that have not \
             arrived. They appear once those do; if this persists, the relay may be holding \
             something back.",
            plural(report.waiting, "update")
        );
    }
    if session.json {
        let moves = relay::moves_json(report);
        return render::print_json(&json!({
            "pushed": report.pushed,
            "received": report.received,
            "waiting": report.waiting,
            "rejected": report.rejected.len(),
            "refused_changes": report.refused_changes.len(),
            "cursor": report.cursor,
            "relay_behind": report.relay_behind.map(|(head, cursor)| json!({ "relay_head": head, "cursor": cursor })),
            "withheld": report.withheld.map(|w| json!({ "from_seq": w.from_seq, "to_seq": w.to_seq, "missing": w.missing })),
            "countersigned": report.countersigned,
            "not_countersigned": report.not_countersigned.as_ref().map(|n| json!({ "device": n.device.to_string(), "covers_seq": n.covers_seq, "reason": n.fault.to_string() })),
            "refused_snapshot": report.refused_snapshot.as_deref().map(refused_snapshot_json),
            "relay": relay,
            "moved": moves["moved"],
            "move_pending": moves["move_pending"],
            "recreated_after_expiry": report.recreated_after_expiry,
        }));
    }
    relay::say_moves(session, report, relay);
    let done = console::style("✓").green();
    match (report.pushed, report.received) {
        (0, 0) => session.say(format_args!("{done} Up to date.")),
        (sent, received) => session.say(format_args!(
            "{done} Synced: sent {}, received {}.",
            plural(sent, "update"),
            plural(received, "update")
        )),
    }
    Ok(())
}

pub(crate) fn plural(n: usize, one: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ if one.ends_with('h') => format!("{n} {one}es"),
        _ => format!("{n} {one}s"),
    }
}

/// Fails with the certificate problem if the relay at `url` shows a certificate this
/// device (its roots and `ca`) refuses; a relay that does not answer passes, as it only
/// delays syncing (and is given less time than a sync: the sync after it waits again).
pub fn refuse_untrusted_relay(url: &str, ca: Option<&RelayCa>) -> Result<()> {
    let trust = hearth_client::RelayTrust::new(ca);
    match block_on(sync::check_relay(url, &trust, Duration::from_secs(5)))? {
        Err(e @ sync::SyncError::Tls { .. }) => Err(anyhow::Error::new(e)),
        _ => Ok(()),
    }
}

/// Puts a new profile's space on `url` (checked to be a hearth relay; trusting `ca` for
/// it) and creates it there, with `token` if the relay asks for one; a relay that went
/// down since the check only delays that to the first `hearth sync`. A certificate problem
/// does not pass by itself, and a token the relay refuses (or needs and did not get) is
/// the user's to fix: both are errors, with the profile kept.
pub fn start_on_relay(
    profile: &mut Profile,
    url: &RelayUrl,
    ca: Option<&RelayCa>,
    token: Option<sync::RelayToken>,
) -> Result<bool> {
    profile.sync_book_mut().start_space(url.as_str())?;
    if let Some(ca) = ca {
        profile.sync_book_mut().set_relay_ca(ca)?;
    }
    let offered = token.is_some();
    if let Some(token) = token {
        profile.offer_relay_token(token);
    }
    match block_on(sync::sync_once(profile, sync::DEFAULT_TIMEOUT))? {
        Ok(_) => Ok(true),
        Err(e @ sync::SyncError::Tls { .. }) => Err(anyhow::Error::new(e).context(
            "your space is ready on this device, but cannot reach the relay until its \
             certificate is trusted (`hearth sync --ca-file PATH`)",
        )),
        Err(e @ sync::SyncError::TokenRefused { .. }) => Err(e.into()),
        Err(e) => {
            let again = if offered {
                " (give it --relay-token again then: the token was not used)"
            } else {
                ""
            };
            eprintln!(
                "note: {e}. Your space is ready here and will reach the relay on `hearth \
                 sync`{again}."
            );
            Ok(false)
        }
    }
}

pub fn watch(session: &Session) -> Result<()> {
    use std::collections::BTreeSet;
    use std::io::Write;

    let mut profile = session.open()?;
    if profile.sync_book().relay()?.is_none() {
        user_error!(
            "this space is not on a relay yet, so there is nothing to watch: see `hearth invite --relay`"
        );
    }
    let me = profile.person_id().clone();
    let key = |item: &hearth_doc::TimelineItem| serde_json::to_string(item).unwrap_or_default();
    let mut known: BTreeSet<String> = profile.load()?.timeline().iter().map(key).collect();
    let private_ids = BTreeSet::new();
    let mut connected = false;
    // Set while waiting for this computer's clock to be set: said once, and once more
    // when the relay lets this device in again.
    let clock_off = std::cell::Cell::new(false);
    let mut show_new = |profile: &mut Profile| {
        if clock_off.replace(false) && !session.quiet {
            eprintln!("The clocks agree again; watching.");
        }
        if !connected {
            connected = true;
            if !session.quiet {
                eprintln!("Connected; watching for your partner's new entries (Ctrl-C to stop).");
            }
        }
        let Ok(doc) = profile.load() else { return };
        let names = crate::render::Names::of_doc(&doc);
        let mut out = std::io::stdout().lock();
        for item in doc.timeline() {
            if known.insert(key(&item)) && item.author != me {
                let line = super::log::describe(&item, &names, &private_ids);
                let _ = writeln!(out, "{}  {line}", render::when(item.at));
            }
        }
        let _ = out.flush();
    };
    block_on(async {
        let mut backoff = Duration::from_secs(1);
        loop {
            // The space moved to another relay (now, or while this device was away): a
            // sync takes this device there first.
            if sync::newer_relay(&profile)?.is_some() {
                match sync::sync_once(&mut profile, sync::DEFAULT_TIMEOUT).await {
                    Ok(report) => {
                        warn_refused_changes(&report);
                        let relay = profile.sync_book().relay()?;
                        relay::say_moves(session, &report, relay.as_deref());
                    }
                    Err(e) => eprintln!("{e}"),
                }
            }
            let watched = tokio::select! {
                result = sync::watch(&mut profile, sync::DEFAULT_TIMEOUT, Duration::from_secs(2), &mut show_new, |r| eprintln!("{}", refused_change_warning(r)), |w| eprintln!("{}", withheld_warning(w))) => result,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            match watched {
                Err(e @ (sync::SyncError::Unreachable { .. } | sync::SyncError::Timeout(_))) => {
                    eprintln!(
                        "{e}; trying again in {}s (your changes are kept here)",
                        backoff.as_secs()
                    );
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                // A clock set by NTP moments after a laptop wakes is common: wait for it
                // quietly rather than stop, having said once what to do.
                Err(e @ sync::SyncError::ClockSkew(_)) => {
                    if !clock_off.replace(true) {
                        eprintln!(
                            "hearth: {e}\nhearth watch keeps trying, quietly, until the clocks agree (Ctrl-C to stop)."
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(anyhow::Error::new(e)),
                Ok(()) => backoff = Duration::from_secs(1),
            }
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::{DeviceId, RefusedChangeReport};

    fn refused(person: Whose) -> RefusedChangeReport {
        RefusedChangeReport {
            seq: 7,
            device: DeviceId::from_bytes([0x1a; 32]),
            person,
            reason: "it writes into an object of person 5e6f7a8b".into(),
            lasting: true,
        }
    }

    #[test]
    fn a_refused_change_is_one_line_naming_the_device_whose_it_is_and_that_nothing_applied() {
        assert_eq!(
            refused_change_warning(&refused(Whose::Partners)),
            "warning: refused a change from your partner's device 1a1a1a1a: it writes into \
             an object of person 5e6f7a8b; nothing from it was applied"
        );
        assert!(
            refused_change_warning(&refused(Whose::Yours)).contains("your own device 1a1a1a1a")
        );
        assert!(
            refused_change_warning(&refused(Whose::Unknown))
                .contains("device 1a1a1a1a, which is not in this space")
        );
    }

    #[test]
    fn a_proposal_not_countersigned_names_the_partners_device_and_what_is_wrong() {
        let n = sync::NotCountersigned {
            device: DeviceId::from_bytes([0x1a; 32]),
            covers_seq: 40,
            fault: sync::ProposalFault::LeavesOut { missing: 1 },
        };
        assert_eq!(
            not_countersigned_warning(&n),
            "warning: your partner's device 1a1a1a1a proposed a snapshot that leaves out \
             changes this device has; it was not countersigned, and the relay keeps the \
             history as it is"
        );
        let n = sync::NotCountersigned {
            fault: sync::ProposalFault::NotADocument("bad chunk".into()),
            ..n
        };
        assert!(
            not_countersigned_warning(&n)
                .contains("proposed a snapshot that is not a well-formed document (bad chunk)")
        );
    }

    #[test]
    fn a_refused_snapshot_says_whose_it_was_why_and_whether_the_history_came_anyway() {
        let mut r = sync::RefusedSnapshot {
            covers_seq: 40,
            device: DeviceId::from_bytes([0x1a; 32]),
            person: Whose::Partners,
            fault: sync::SnapshotFault::NotCountersigned,
            unavailable: Some(hearth_client::Withheld {
                from_seq: 1,
                to_seq: 41,
                missing: 40,
            }),
        };
        let warning = refused_snapshot_warning(&r);
        assert!(
            warning.starts_with(
                "warning: the relay's history up to update 40 is unavailable: in its place \
                 the relay handed over a snapshot by your partner's device 1a1a1a1a, which \
                 this device refused (the relay shows no countersignature by the other \
                 person for it), and it no longer holds 40 updates"
            ),
            "{warning}"
        );
        r.unavailable = None;
        assert!(refused_snapshot_warning(&r).starts_with("note: "));
        assert!(refused_snapshot_warning(&r).contains("read those updates themselves"));
    }

    #[test]
    fn withheld_updates_are_named_by_place_and_count() {
        let w = |from_seq, to_seq, missing| hearth_client::Withheld {
            from_seq,
            to_seq,
            missing,
        };
        assert_eq!(
            withheld_warning(&w(5, 5, 1)),
            "warning: the relay holds update 5 but did not hand it over, even when asked \
             twice. Nothing on this device is lost and they are asked for again on every \
             sync; if this persists, the relay is withholding them."
        );
        assert!(withheld_warning(&w(5, 9, 1)).contains("holds 1 update between 5 and 9 that"));
        assert!(withheld_warning(&w(5, 9, 3)).contains("holds 3 updates between 5 and 9 that"));
    }
}
