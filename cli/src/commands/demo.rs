//! `hearth demo`: a complete local demo. It starts a real relay on loopback (its database in
//! a temporary folder) and two partners' profiles beside it, then plays a short week as a
//! transcript of the real commands: pairing by invite, a check-in each, the reveal, an
//! appreciation and the shared log. Everything is removed afterwards unless `--keep DIR`.
//!
//! Each step runs this very program again, with the partner's profile directory, exactly as
//! a person would type it; only the relay runs inside this process.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::args::DemoArgs;
use crate::exit::user_error;
use crate::render;
use crate::session::Session;

struct Partner {
    name: &'static str,
    home: PathBuf,
}

pub fn run(_session: &Session, args: DemoArgs) -> Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("hearth-demo-")
        .tempdir()
        .context("creating a folder for the demo")?;
    let root = match &args.keep {
        Some(dir) if dir.exists() => {
            user_error!(
                "{} already exists; --keep needs a new directory",
                dir.display()
            )
        }
        Some(dir) => dir.clone(),
        None => temp.path().to_owned(),
    };
    let relay = hearth_relay::LocalRelay::start(temp.path().join("relay.db"))
        .context("starting the demo relay on 127.0.0.1")?;
    let url = relay.url().to_owned();
    let exe = std::env::current_exe().context("finding the hearth program")?;
    let sam = Partner {
        name: "Sam",
        home: root.join("sam"),
    };
    let jordan = Partner {
        name: "Jordan",
        home: root.join("jordan"),
    };
    let week = render::this_week().to_string();

    println!(
        "hearth demo: a relay on {} and two partners, Sam and Jordan,",
        url
    );
    println!("each with their own encrypted profile. Every line below is the real `hearth`");
    println!("program; the relay only ever holds ciphertext. Nothing leaves this machine.\n");

    step(
        &exe,
        &sam,
        &["init", "--name", "Sam", "--no-passphrase", "--relay", &url],
    )?;
    let code = step(&exe, &sam, &["invite"])?;
    let code = code.trim().to_owned();
    step(
        &exe,
        &jordan,
        &["join", &code, "--name", "Jordan", "--no-passphrase"],
    )?;
    step(
        &exe,
        &sam,
        &[
            "checkin",
            "--answer",
            "feeling=8",
            "--answer",
            "feeling_word=close",
            "--answer",
            "need=time,fun",
            "--answer",
            "appreciated=the soup when I was ill",
            "--answer",
            "commit=plan Saturday's hike",
        ],
    )?;
    step(&exe, &sam, &["sync"])?;
    step(&exe, &jordan, &["sync"])?;
    step(&exe, &jordan, &["checkin", "show", &week])?;
    step(
        &exe,
        &jordan,
        &[
            "checkin",
            "--answer",
            "feeling=7",
            "--answer",
            "feeling_word=a bit tired",
            "--answer",
            "need=deeper",
            "--answer",
            "connected=the walk home in the rain",
        ],
    )?;
    step(
        &exe,
        &jordan,
        &[
            "appreciate",
            "Thank you for fixing my bike without being asked",
        ],
    )?;
    step(&exe, &jordan, &["sync"])?;
    step(&exe, &sam, &["sync"])?;
    step(&exe, &sam, &["checkin", "show", &week])?;
    // Sam's key went out with that sync; Jordan's device opens Sam's answers with it.
    step(&exe, &jordan, &["sync"])?;
    step(&exe, &sam, &["log"])?;
    step(&exe, &sam, &["status"])?;

    println!("That was hearth. Start your own with `hearth init --name YOUR-NAME`, and see");
    println!("docs/self-hosting.md to run a relay for the two of you.");
    if args.keep.is_some() {
        println!(
            "The two profiles are kept in {} (the demo relay has stopped): try `hearth --home {} log`.",
            root.display(),
            sam.home.display()
        );
    }
    drop(relay);
    Ok(())
}

/// Runs one step as `who`, prints it as a transcript line and its output, and returns its
/// standard output.
fn step(exe: &Path, who: &Partner, args: &[&str]) -> Result<String> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| match a.split_once('=') {
            _ if !a.contains(' ') && !a.is_empty() => (*a).to_owned(),
            Some((key, value)) if !key.contains(' ') => format!("{key}=\"{value}\""),
            _ => format!("\"{a}\""),
        })
        .collect();
    println!("{}$ hearth {}", who.name, shown.join(" "));
    let out = Command::new(exe)
        .args(args)
        .env("HEARTH_HOME", &who.home)
        .env_remove("HEARTH_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running hearth {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    print!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!(
            "the demo step `hearth {}` failed ({})",
            args.join(" "),
            out.status
        );
    }
    println!();
    Ok(stdout)
}
