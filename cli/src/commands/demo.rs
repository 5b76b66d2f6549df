//! `hearth demo`: a scripted week of hearth in a throwaway profile, printed as a transcript
//! of the real commands, so a new user sees what hearth does before setting anything up.
//!
//! Each step runs this very program again, in the demo's profile directory, exactly as a
//! person would type it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::args::DemoArgs;
use crate::render;
use crate::session::Session;

pub fn run(_session: &Session, args: DemoArgs) -> Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("hearth-demo-")
        .tempdir()
        .context("creating a folder for the demo")?;
    let home = match &args.keep {
        Some(dir) => {
            if dir.exists() {
                crate::exit::user_error!(
                    "{} already exists; --keep needs a new directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => temp.path().join("profile"),
    };
    let exe = std::env::current_exe().context("finding the hearth program")?;
    let this_week = render::this_week();
    let w1 = this_week.previous().previous().to_string();
    let w2 = this_week.previous().to_string();

    println!(
        "A week with hearth, on one device, in a throwaway profile ({}).",
        home.display()
    );
    println!("Everything below is the real `hearth` program; nothing leaves this machine.\n");
    let steps: Vec<Vec<String>> = vec![
        args_of(&["init", "--name", "Sam", "--no-passphrase"]),
        args_of(&[
            "checkin",
            "--week",
            &w1,
            "--answer",
            "feeling=6",
            "--answer",
            "feeling_word=stretched",
            "--answer",
            "commit=a phone-free dinner",
        ]),
        args_of(&[
            "checkin",
            "--week",
            &w2,
            "--answer",
            "feeling=7",
            "--answer",
            "followup=done",
            "--answer",
            "need=time",
        ]),
        args_of(&[
            "checkin",
            "--answer",
            "feeling=8",
            "--answer",
            "feeling_word=close",
            "--answer",
            "need=fun,deeper",
            "--answer",
            "appreciated=the soup when I was ill",
            "--answer",
            "connected=Walking home in the rain on Thursday",
            "--answer",
            "commit=plan Saturday's hike",
        ]),
        args_of(&[
            "appreciate",
            "Thank you for fixing my bike without being asked",
        ]),
        args_of(&[
            "feedback",
            "--observation",
            "our phones came out at dinner three nights this week",
            "--feeling",
            "a bit lonely",
            "--need",
            "time that is just ours",
            "--request",
            "could we leave them in the hall during dinner?",
        ]),
        args_of(&[
            "journal",
            "add",
            "Lake walk. We talked about moving closer to the hills.",
            "--tag",
            "walks",
        ]),
        args_of(&[
            "journal",
            "add",
            "--private",
            "Not ready to bring up the job offer yet.",
        ]),
        args_of(&["checkin", "show"]),
        args_of(&["trends"]),
        args_of(&["log"]),
        args_of(&["status"]),
    ];
    for step in &steps {
        step_run(&exe, &home, step)?;
    }
    println!(
        "That was hearth offline, for one partner. Start your own with `hearth init --name YOUR-NAME`."
    );
    if args.keep.is_some() {
        println!(
            "The demo profile is kept in {}: try `hearth --home {} log`.",
            home.display(),
            home.display()
        );
    }
    Ok(())
}

fn args_of(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn step_run(exe: &Path, home: &Path, args: &[String]) -> Result<()> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| match a.split_once('=') {
            _ if !a.contains(' ') && !a.is_empty() => a.clone(),
            Some((key, value)) if !key.contains(' ') => format!("{key}=\"{value}\""),
            _ => format!("\"{a}\""),
        })
        .collect();
    println!("$ hearth {}", shown.join(" "));
    let status = Command::new(exe)
        .args(args)
        .env("HEARTH_HOME", home)
        .env_remove("HEARTH_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running hearth {}", args.join(" ")))?;
    if !status.success() {
        bail!(
            "the demo step `hearth {}` failed ({status})",
            args.join(" ")
        );
    }
    println!();
    Ok(())
}
