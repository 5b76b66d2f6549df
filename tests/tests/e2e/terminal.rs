//! Terminal manners: `--quiet`, and output that carries no colour or progress codes unless
//! a person is at a terminal that wants them.
#![allow(clippy::unwrap_used)]

use hearth_relay::LocalRelay;
use hearth_tests::{Device, Run};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const ESC: char = '\u{1b}';

fn sam() -> Device {
    let dev = Device::new(BIN);
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev
}

fn assert_ok(run: &Run) {
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn quiet_silences_confirmations_but_not_data_or_errors() {
    let dev = sam();
    let run = dev.run(["appreciate", "--quiet", "Thank you for the soup"]);
    assert_ok(&run);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = dev.run(["-q", "journal", "add", "A good day"]);
    assert_ok(&run);
    assert_eq!(run.stdout, "");
    let run = dev.run(["init", "--quiet", "--name", "Sam", "--no-passphrase"]);
    assert_eq!(run.code, Some(1), "an existing profile is still an error");
    assert!(run.stderr.contains("already"), "{}", run.stderr);

    // What was asked for still comes.
    let log = dev.ok(["log", "--quiet"]);
    assert!(
        log.contains("Sam appreciated: Thank you for the soup"),
        "{log}"
    );
    let json = dev.json(["appreciate", "--quiet", "and the bread"]);
    assert!(json["id"].is_string());

    // Errors too.
    let run = dev.run(["feedback", "--quiet", "--observation", "the dishes"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
}

#[test]
fn piped_output_carries_no_colour_or_progress_codes() {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let url = relay.url().to_owned();
    sam.ok(["init", "--name", "Sam", "--no-passphrase", "--relay", &url]);
    sam.ok(["appreciate", "Thank you for the tea"]);
    sam.ok([
        "feedback",
        "--observation",
        "o",
        "--feeling",
        "f",
        "--need",
        "n",
        "--request",
        "r",
    ]);
    for args in [
        &["status"][..],
        &["log"],
        &["feedback", "list"],
        &["sync"],
        &["export", "--format", "md"],
    ] {
        let run = sam.run(args);
        assert_ok(&run);
        assert!(
            !run.stdout.contains(ESC) && !run.stderr.contains(ESC),
            "{args:?}: {run:?}"
        );
    }
}

#[test]
fn at_a_terminal_colour_follows_no_color() {
    let dev = sam();
    dev.ok(["appreciate", "Thank you for the tea"]);
    let Some(log) = dev.run_on_a_terminal("log", &[]) else {
        eprintln!("skipped: no util-linux `script` to make a terminal");
        return;
    };
    assert!(log.contains(ESC), "colour at a terminal: {log:?}");
    assert!(
        log.contains("Sam appreciated: Thank you for the tea"),
        "{log:?}"
    );
    for env in [("NO_COLOR", "1"), ("CLICOLOR", "0")] {
        let plain = dev.run_on_a_terminal("log", &[env]).unwrap();
        assert!(!plain.contains(ESC), "{env:?}: {plain:?}");
    }
}

#[test]
fn a_reader_that_stops_early_ends_hearth_quietly_and_a_full_disk_is_named() {
    let dev = sam();
    // `hearth checkin keys | head -1`: the reader is gone before hearth writes.
    let mut child = dev.command(["checkin", "keys"]).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    #[cfg(target_os = "linux")]
    {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = dev
            .command(["checkin", "keys"])
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot write the output"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
