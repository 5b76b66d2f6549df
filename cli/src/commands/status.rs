//! `hearth status`: where things stand, at a glance.

use anyhow::Result;
use console::style;
use serde_json::json;

use crate::render::{self, Names};
use crate::session::Session;

pub fn run(session: &Session) -> Result<()> {
    let profile = session.open()?;
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
    let mut doc = doc;
    let pending = profile.sync_book().pending(&mut doc)?;
    let waiting = profile.sync_book().waiting()?;
    let last_sync = profile.sync_book().last_sync()?;
    let reachable = match &relay {
        Some(url) => Some(super::pairing::block_on(
            hearth_client::sync::relay_reachable(url, std::time::Duration::from_secs(3)),
        )?),
        None => None,
    };

    if session.json {
        return render::print_json(&json!({
            "home": session.home,
            "person": { "id": me, "name": names.of(&me) },
            "partner": partner.map(|p| json!({ "id": p.id, "name": p.name })),
            "device_id": profile.device_id().to_string(),
            "space_id": profile.space_id(),
            "relay": relay,
            "relay_reachable": reachable,
            "pending_changes": pending,
            "received_waiting": waiting,
            "last_sync_at": last_sync,
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
    match (&relay, reachable) {
        (None, _) => println!("Relay:     none; everything stays on this device for now"),
        (Some(url), Some(true)) => println!("Relay:     {url} {}", style("(reachable)").green()),
        (Some(url), _) => println!(
            "Relay:     {url} {}",
            style("(not reachable right now; changes wait here)").yellow()
        ),
    }
    if relay.is_some() {
        let when = last_sync.map_or_else(
            || "never".to_owned(),
            |t| render::when(hearth_doc::Millis(t as i64)),
        );
        println!("Sync:      last {when}; {pending} change(s) waiting to be sent");
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

fn plural(n: usize, one: &str) -> String {
    match (n, one.strip_suffix('y')) {
        (1, _) => format!("1 {one}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {one}s"),
    }
}
