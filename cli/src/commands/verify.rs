//! `hearth verify`: a code to compare with your partner side by side. The one answer to a
//! relay that withholds everything from one of you, which no exchange through the relay
//! can catch on its own.

use anyhow::Result;
use hearth_client::sync;
use serde_json::json;

use super::pairing::block_on;
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

pub fn run(session: &Session) -> Result<()> {
    let mut profile = session.open()?;
    if profile.sync_book().relay()?.is_none() {
        user_error!(
            "this space is on this device only, so there is no one to compare with yet: invite \
             your partner with `hearth invite --relay wss://…/v1/sync`"
        );
    }
    // Up to date first: a change one of you has not sent yet would make the codes differ.
    let synced = block_on(sync::sync_once(&mut profile, sync::DEFAULT_TIMEOUT))?;
    let Some(v) = profile.verification()? else {
        user_error!("this device has not met its relay yet: run `hearth sync` first");
    };
    let devices = profile.sync_book().devices()?;
    let whose = |id: &hearth_client::DeviceId| match devices.iter().find(|d| d.id == *id) {
        Some(d) if d.this_device => "this device",
        Some(d) if d.mine => "yours",
        Some(_) => "your partner's",
        None => "no longer in the space",
    };
    if session.json {
        let writers: Vec<_> = v
            .writers
            .iter()
            .map(|w| {
                json!({
                    "device": w.device.to_string(),
                    "whose": whose(&w.device),
                    "changes": w.changes,
                    "code": w.code,
                })
            })
            .collect();
        return render::print_json(&json!({
            "code": v.code,
            "devices": { "code": v.devices_code, "records": v.records, "epoch": v.epoch },
            "writers": writers,
            "synced": synced.is_ok(),
        }));
    }
    if let Err(e) = &synced {
        eprintln!("note: could not sync first ({e}); the code is for what this device holds now.");
    }
    println!("Compare this with your partner's `hearth verify`, side by side:");
    println!();
    println!("    {}", console::style(&v.code).bold());
    println!();
    println!("The same code: you both see the same devices and the same history.");
    println!("A different one: the lines below say what differs.");
    println!();
    println!(
        "  devices          {}   {} records, key epoch {}",
        v.devices_code, v.records, v.epoch
    );
    for w in &v.writers {
        println!(
            "  writer {}  {}        {} change(s), {}",
            w.device.short(),
            w.code,
            w.changes,
            whose(&w.device)
        );
    }
    println!();
    println!(
        "If `devices` differs, the relay shows you different lists of devices. If a writer's \
         line differs, one of you lacks some of that device's writing: sync both devices and \
         compare again; if it still differs, the relay is holding it back."
    );
    Ok(())
}
