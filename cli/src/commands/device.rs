//! `hearth device list|remove`: the space's devices as its ACL names them, and removing a
//! lost or retired one (which moves the space to a new key the removed device never gets).

use anyhow::Result;
use hearth_client::sync;
use hearth_client::{DeviceInfo, Profile};
use serde_json::json;

use super::pairing::block_on;
use crate::args::{DeviceCommand, DeviceRemoveArgs};
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

pub fn run(session: &Session, command: DeviceCommand) -> Result<()> {
    match command {
        DeviceCommand::List => list(session),
        DeviceCommand::Remove(args) => remove(session, &args),
    }
}

fn paired(session: &Session) -> Result<Profile> {
    let profile = session.open()?;
    if profile.sync_book().relay()?.is_none() {
        user_error!(
            "this space is on this device only, so it has no other devices; to add one, run \
             `hearth invite --device --relay wss://…/v1/sync`"
        );
    }
    Ok(profile)
}

fn whose(device: &DeviceInfo) -> &'static str {
    match (device.this_device, device.mine) {
        (true, _) => "this device",
        (false, true) => "yours",
        (false, false) => "your partner's",
    }
}

fn list(session: &Session) -> Result<()> {
    let mut profile = paired(session)?;
    let fresh = block_on(sync::refresh_acl(&mut profile, sync::DEFAULT_TIMEOUT))?;
    let devices = profile.sync_book().devices()?;
    if session.json {
        let rows: Vec<_> = devices
            .iter()
            .map(|d| {
                json!({
                    "id": d.id.to_string(),
                    "short": d.id.short(),
                    "this_device": d.this_device,
                    "mine": d.mine,
                })
            })
            .collect();
        return render::print_json(&json!({ "devices": rows }));
    }
    for device in &devices {
        println!("{}  {}", device.id.short(), whose(device));
    }
    if let Err(e) = fresh {
        eprintln!("note: {e}; this is the list as this device last saw it.");
    }
    Ok(())
}

fn remove(session: &Session, args: &DeviceRemoveArgs) -> Result<()> {
    let mut profile = paired(session)?;
    let wanted = args.device.trim().to_ascii_lowercase();
    if wanted.len() < 4 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        user_error!(
            "{:?} is not a device id: use the id `hearth device list` shows (at least 4 of its characters)",
            args.device
        );
    }
    let devices = profile.sync_book().devices()?;
    let matching: Vec<&DeviceInfo> = devices
        .iter()
        .filter(|d| d.id.to_string().starts_with(&wanted))
        .collect();
    let device = match matching.as_slice() {
        [one] => *one,
        [] => user_error!(
            "no device of this space has an id starting with {wanted}; see `hearth device list`"
        ),
        _ => user_error!("more than one device's id starts with {wanted}; give more of it"),
    };
    if devices.len() == 1 {
        user_error!("this is the space's only device; a space keeps at least one");
    }
    let what = match (device.this_device, device.mine) {
        (true, _) => {
            "this device (it will stop syncing; what it holds stays readable here)".to_owned()
        }
        (false, true) => format!("your device {}", device.id.short()),
        (false, false) => format!("your partner's device {}", device.id.short()),
    };
    if !args.yes {
        if !session.interactive {
            user_error!("removing a device cannot be undone: add --yes to confirm");
        }
        let sure = dialoguer::Confirm::new()
            .with_prompt(format!(
                "Remove {what}? It cannot sync again, and the space moves to a new key it never gets."
            ))
            .default(false)
            .interact()?;
        if !sure {
            user_error!("nothing was removed");
        }
    }
    let id = device.id;
    let leaving = device.this_device;
    block_on(sync::remove_device(&mut profile, id, sync::DEFAULT_TIMEOUT))??;
    if session.json {
        return render::print_json(&json!({ "removed": id.to_string(), "left": leaving }));
    }
    if leaving {
        session.say(
            "This device has left the space. Its copy stays readable here; it no longer syncs.",
        );
    } else {
        session.say(format_args!(
            "Removed {what}. The space now uses a new key that only the remaining devices have."
        ));
        session.say(
            "It can still read what it already had (no device can un-see that), but nothing new.",
        );
    }
    Ok(())
}
