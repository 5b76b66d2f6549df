//! `hearth init`: a new profile and a new space, on this device.

use anyhow::Result;
use hearth_client::{Profile, Protection, RelayCa, RelayTrust};
use serde_json::json;

use super::relay::{self, Tying};
use crate::args::InitArgs;
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

const MAX_NAME: usize = 64;

pub fn run(session: &Session, args: InitArgs) -> Result<()> {
    // Refuse before asking anything: an existing profile is never touched.
    if Profile::exists(&session.home) {
        return Err(hearth_client::Error::AlreadyExists {
            path: hearth_client::ProfilePaths::new(&session.home).database,
        }
        .into());
    }
    let name = match args.name {
        Some(name) => name,
        None if session.interactive => {
            super::ask_line("Your name, as your partner will see it")?.unwrap_or_default()
        }
        None => {
            user_error!("give your name with --name NAME (it is how your partner will see you)")
        }
    };
    let name = name.trim();
    if name.is_empty() {
        user_error!("your name cannot be empty: pass --name NAME");
    }
    if name.chars().count() > MAX_NAME || name.contains(['\n', '\r']) {
        user_error!("a name is one line of at most {MAX_NAME} characters");
    }
    let ca = args.ca_file.as_deref().map(RelayCa::read).transpose()?;
    // Before the passphrase is asked for, and before anything exists: a space is tied
    // only to an address where a hearth relay answers, with a certificate this device
    // trusts (one it refuses would refuse every later sync too).
    let relay = match &args.relay {
        Some(input) => Some(relay::checked(
            input,
            &RelayTrust::new(ca.as_ref()),
            Tying::Init,
        )?),
        None => None,
    };
    let protection = if args.no_passphrase {
        Protection::None
    } else {
        Protection::Passphrase(session.passphrase_for_new_profile()?)
    };
    let mut profile = Profile::create(&session.home, name, protection, render::now())?;
    let on_relay = match &relay {
        Some(url) => Some(super::pairing::start_on_relay(
            &mut profile,
            url,
            ca.as_ref(),
            args.relay_token,
        )?),
        None => None,
    };

    if session.json {
        return render::print_json(&json!({
            "home": session.home,
            "person_id": profile.person_id(),
            "device_id": profile.device_id().to_string(),
            "space_id": profile.space_id(),
            "passphrase": !args.no_passphrase,
            "relay": relay.as_ref().map(|u| u.as_str()),
            "relay_reached": on_relay,
            "relay_ca_certificates": ca.as_ref().map(RelayCa::len),
        }));
    }
    if session.quiet {
        return Ok(());
    }
    println!(
        "Welcome, {name}. Your hearth is ready in {}.",
        session.home.display()
    );
    if args.no_passphrase {
        println!("Your keys are protected by file permissions only (no passphrase).");
    }
    if let Some(url) = &relay {
        println!("Your space syncs through {url}. Invite your partner with `hearth invite`.");
    }
    println!();
    println!("A few things to try:");
    println!("  hearth checkin                  this week's check-in (a few minutes, on your own)");
    println!("  hearth appreciate \"…\"           thank your partner for something specific");
    println!(
        "  hearth journal add              write in the shared journal (--private: just for you)"
    );
    println!("  hearth status                   where things stand");
    Ok(())
}
