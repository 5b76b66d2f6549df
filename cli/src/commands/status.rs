//! `hearth status`: where things stand, at a glance.

use anyhow::Result;
use console::style;
use serde_json::json;

use hearth_client::sync::{self, SyncError};

use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session) -> Result<()> {
    let mut profile = session.open()?;
    let unlocked = super::unlock::standing(session)?;
    let doc = profile.load()?;
    let me = profile.person_id().clone();
    let people = doc.people();
    let names = Names::of_people(&people);
    let partner = people.iter().find(|p| p.id != me);
    let week = render::this_week();
    let checkin = doc.checkin(week);
    let i_answered = checkin.as_ref().is_some_and(|c| c.submitted_by(&me));
    let partner_answered = partner
        .zip(checkin.as_ref())
        .is_some_and(|(p, c)| c.submitted_by(&p.id));
    let revealed = checkin.as_ref().is_some_and(|c| c.revealed(&people));
    let open = doc.open_commitments(&me);
    let private = profile.private_journal()?.len();
    let relay = profile.sync_book().relay()?;
    let moving = sync::newer_relay(&profile)?;
    let relay_ca = profile.sync_book().relay_ca()?.map(|ca| ca.len());
    let mut doc = doc;
    let pending = profile.sync_book().pending(&mut doc)?;
    let waiting = profile.sync_book().waiting()?;
    let last_sync = profile.sync_book().last_sync()?;
    let heard = last_heard(&profile)?;
    // A login, not just a handshake: the relay's word on the space itself (deleted?)
    // comes only to a device that proves who it is.
    let standing = match &relay {
        Some(_) => Some(super::pairing::block_on(sync::check_space(
            &mut profile,
            std::time::Duration::from_secs(3),
        ))?),
        None => None,
    };
    // Read after the login above, which pins the relay's key at first contact.
    let fingerprint = profile.sync_book().relay_fingerprint()?;
    let reachable = standing.as_ref().map(answered);
    let untrusted = matches!(standing, Some(Err(SyncError::Tls { .. })));
    let problem = standing
        .as_ref()
        .and_then(|s| s.as_ref().err())
        .and_then(problem);

    if session.json {
        return render::print_json(&json!({
            "home": session.home,
            "passphrase": unlocked.is_some(),
            "unlocked_until_ms": unlocked.flatten().map(super::unlock::unix_ms),
            "person": { "id": me, "name": names.of(&me) },
            "partner": partner.map(|p| json!({ "id": p.id, "name": p.name })),
            "device_id": profile.device_id().to_string(),
            "space_id": profile.space_id(),
            "relay": relay,
            "relay_fingerprint": fingerprint.map(|f| f.to_string()),
            "relay_reachable": reachable,
            "relay_ca_certificates": relay_ca,
            "relay_problem": problem,
            "relay_moving_to": moving.as_ref().map(|m| m.url.clone()),
            "space_deleted": standing.as_ref().and_then(|s| s.as_ref().err()).and_then(deletion_json),
            "pending_changes": pending,
            "received_waiting": waiting,
            "last_sync_at": last_sync,
            "last_heard": heard.iter().map(|(id, whose, at)| json!({
                "device": id.to_string(),
                "whose": whose,
                "at_ms": at,
            })).collect::<Vec<_>>(),
            "week": week,
            "checkin_due": !i_answered,
            "partner_answered": partner_answered,
            "revealed": revealed,
            "open_commitments": open,
            "counts": {
                "appreciations": doc.appreciations().len(),
                "feedback": doc.feedback().len(),
                "journal": doc.journal().len(),
                "private_journal": private,
                "checkins": doc.checkins().len(),
            },
            "stored_chunks": profile.chunk_count()?,
        }));
    }
    println!(
        "You:       {} (this device {})",
        names.of(&me),
        profile.device_id().short()
    );
    match partner {
        Some(p) => println!("Partner:   {}", p.name),
        None => println!("Partner:   not joined yet"),
    }
    println!("Profile:   {}", session.home.display());
    match unlocked {
        None => println!("Key:       no passphrase; protected by file permissions only"),
        Some(Some(until)) => println!(
            "Key:       unlocked until {} (`hearth lock` locks it now)",
            super::unlock::local_time(until)
        ),
        Some(None) => println!(
            "Key:       locked; each command asks for the passphrase (`hearth unlock` to type \
             it once for 8 hours)"
        ),
    }
    match (&relay, reachable) {
        (None, _) => println!("Relay:     none; everything stays on this device for now"),
        (Some(url), Some(true)) => println!("Relay:     {url} {}", style("(reachable)").green()),
        (Some(url), _) if untrusted => println!(
            "Relay:     {url} {}",
            style("(its certificate is not trusted; changes wait here)").red()
        ),
        (Some(url), _) => println!(
            "Relay:     {url} {}",
            style("(not reachable right now; changes wait here)").yellow()
        ),
    }
    if let Some(problem) = &problem {
        println!("           {}", style(problem).red());
    }
    if let Some(m) = &moving {
        let who = match m.whose {
            hearth_client::Whose::Partners => "your partner".to_owned(),
            _ => format!("device {}", m.by.short()),
        };
        println!(
            "           {}",
            style(format!(
                "moved to {} by {who}; `hearth sync` follows once it answers",
                m.url
            ))
            .yellow()
        );
    }
    if let Some(n) = relay_ca.filter(|_| relay.is_some()) {
        let what = if n == 1 {
            "certificate"
        } else {
            "certificates"
        };
        println!("           trusts its own CA too ({n} {what}, given with --ca-file)");
    }
    if let Some(fingerprint) = fingerprint {
        println!("Relay key: {fingerprint} (compare it with your relay operator's)");
    }
    if relay.is_some() {
        let when = last_sync.map_or_else(
            || "never".to_owned(),
            |t| render::when(hearth_doc::Millis(t as i64)),
        );
        println!("Sync:      last {when}; {pending} change(s) waiting to be sent");
        for (id, whose, at) in &heard {
            let at = at.map_or_else(
                || "never yet".to_owned(),
                |t| render::when(hearth_doc::Millis(t as i64)),
            );
            println!("Heard:     {whose} device {}: {at}", id.short());
        }
        if waiting > 0 {
            println!(
                "           {waiting} received update(s) wait for earlier ones that have not \
                 arrived; they appear once those do"
            );
        }
    }
    println!();
    let line = match (i_answered, partner_answered, partner) {
        (false, true, Some(p)) => format!("{} has answered; your turn: `hearth checkin`", p.name),
        (false, _, _) => "due. When you have a quiet moment: `hearth checkin`".to_owned(),
        (true, false, Some(p)) => format!("you have answered; waiting for {}", p.name),
        (true, false, None) => "you have answered".to_owned(),
        (true, true, _) if revealed => {
            "you have both answered, and both are open: `hearth checkin show`".to_owned()
        }
        (true, true, _) => {
            "you have both answered; the answers open as your devices sync (`hearth sync`)"
                .to_owned()
        }
    };
    println!("{} {line}", style(format!("Check-in {week}:")).bold());
    if open.is_empty() {
        println!("Commitments: none open");
    } else {
        println!("{}", style("Your open commitments:").bold());
        for c in &open {
            println!("  • {} ({})", c.text, c.week);
        }
    }
    println!();
    println!(
        "{}, {}, {} ({private} private), {}",
        plural(doc.appreciations().len(), "appreciation"),
        plural(doc.feedback().len(), "feedback thread"),
        plural(doc.journal().len() + private, "journal entry"),
        plural(doc.checkins().len(), "check-in"),
    );
    Ok(())
}

/// The space's other devices with whose each is and when this device last received a
/// verified envelope from it (`None`: never): a device long silent may be one whose writing
/// the relay holds back, and `hearth verify` with your partner tells.
fn last_heard(
    profile: &hearth_client::Profile,
) -> Result<Vec<(hearth_client::DeviceId, &'static str, Option<u64>)>> {
    if profile.sync_book().relay()?.is_none() {
        return Ok(Vec::new());
    }
    let heard = profile.sync_book().last_heard()?;
    Ok(profile
        .sync_book()
        .devices()?
        .into_iter()
        .filter(|d| !d.this_device)
        .map(|d| {
            let at = heard.iter().find(|(id, _)| *id == d.id).map(|(_, at)| *at);
            (d.id, if d.mine { "your" } else { "your partner's" }, at)
        })
        .collect())
}

fn plural(n: usize, one: &str) -> String {
    match (n, one.strip_suffix('y')) {
        (1, _) => format!("1 {one}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {one}s"),
    }
}

/// Whether the relay answered at all (a refusal is an answer; no connection is not, nor
/// one this device would not trust).
fn answered(standing: &Result<(), SyncError>) -> bool {
    !matches!(
        standing,
        Err(SyncError::Unreachable { .. } | SyncError::Timeout(_) | SyncError::Tls { .. })
    )
}

/// What `status` says about the space on the relay when the relay would not have this
/// device (deleted, proven or not; missing; not admitted), or when this device will not
/// log in there or trust it: its certificate, its key changed or is unproven, or this
/// device's clock is off. Anything else (a busy relay) is for `hearth sync` to report.
fn problem(error: &SyncError) -> Option<String> {
    match error {
        SyncError::SpaceDeleted(_)
        | SyncError::DeletionUnproven { .. }
        | SyncError::SpaceMissing
        | SyncError::SpaceExpired
        | SyncError::NotAdmitted
        | SyncError::Tls { .. }
        | SyncError::ClockSkew(_)
        | SyncError::RelayKeyChanged { .. }
        | SyncError::RelayKeyUnproven { .. }
        | SyncError::RelayUnidentified { .. } => Some(error.to_string()),
        _ => None,
    }
}

/// The deletion the relay claims, for `--json`: who, when, and whether it is proven.
fn deletion_json(error: &SyncError) -> Option<serde_json::Value> {
    match error {
        SyncError::SpaceDeleted(d) => Some(json!({
            "proven": true,
            "by": d.by.to_string(),
            "deleted_at_ms": d.deleted_at_ms,
        })),
        SyncError::DeletionUnproven { claimed, why } => Some(json!({
            "proven": false,
            "by": claimed.to_string(),
            "why": why,
        })),
        _ => None,
    }
}
