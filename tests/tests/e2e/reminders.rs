//! Check-in reminders: the line after a command at a terminal, `hearth remind` from a timer
//! and by hand, and the timer's unit files.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use hearth_relay::LocalRelay;
use hearth_tests::{Device, Run};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const ESC: char = '\u{1b}';

fn sam() -> Device {
    let dev = Device::new(BIN);
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev
}

fn answer_this_week(dev: &Device) {
    dev.ok(["checkin", "--answer", "feeling=8"]);
}

/// A directory of programs: PATH for a run that must find only these.
fn bin_dir(dev: &Device, programs: &[&str]) -> PathBuf {
    let dir = dev.scratch().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for name in programs {
        let path = dir.join(name);
        // Leaves a mark if it is ever run: the tests check nothing runs systemctl.
        let marker = dev.scratch().join(format!("{name}.ran"));
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", marker.display()),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

/// A device whose HOME and XDG_CONFIG_HOME are temporary, with a systemd user session
/// (a runtime directory and a `systemctl` that only records being run) or without one.
fn with_config(dev: &mut Device, systemd: bool) -> PathBuf {
    let config = dev.scratch().join("config");
    let bin = bin_dir(dev, if systemd { &["systemctl"] } else { &[] });
    let home = dev.scratch().to_owned();
    dev.env("HOME", &home)
        .env("XDG_CONFIG_HOME", &config)
        .env("PATH", &bin);
    if systemd {
        dev.env("XDG_RUNTIME_DIR", &home);
    }
    config.join("systemd/user")
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
fn remind_says_nothing_when_you_have_answered_this_week() {
    let dev = sam();
    answer_this_week(&dev);
    for args in [&["remind", "--print"][..], &["remind"]] {
        let run = dev.run(args);
        assert_ok(&run);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
    }
    assert_eq!(dev.json(["remind"])["due"], false);
}

#[test]
fn remind_says_it_is_check_in_week_when_you_have_not_answered() {
    let dev = sam();
    let out = dev.ok(["remind", "--print"]);
    assert_eq!(
        out,
        "It's check-in week. `hearth checkin` when you both have a quiet moment.\n"
    );
    let json = dev.json(["remind"]);
    assert_eq!(json["due"], true);
    assert_eq!(json["partner_answered"], false);
}

#[test]
fn remind_from_a_timer_without_a_desktop_notifier_stays_silent() {
    let mut dev = sam();
    let empty = bin_dir(&dev, &[]);
    dev.env("PATH", &empty);
    let run = dev.run(["remind"]);
    assert_ok(&run);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
}

#[test]
fn remind_sends_a_desktop_notification_through_notify_send() {
    let mut dev = sam();
    let bin = bin_dir(&dev, &["notify-send"]);
    dev.env("PATH", &bin);
    let run = dev.run(["remind"]);
    assert_ok(&run);
    assert_eq!(run.stdout, "", "the notification replaces printing");
    if cfg!(target_os = "linux") {
        let sent = std::fs::read_to_string(dev.scratch().join("notify-send.ran")).unwrap();
        assert!(sent.starts_with("hearth It's check-in week."), "{sent}");
    }
}

#[test]
fn remind_never_asks_for_a_passphrase() {
    let dev = Device::new(BIN);
    let init = dev
        .command(["init", "--name", "Sam"])
        .env("HEARTH_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");

    // From a timer: silent, exit 0, no prompt (stdin is closed; a prompt would fail).
    let run = dev.run(["remind"]);
    assert_ok(&run);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));

    // Asked to print: still no prompt, but it says why there is nothing.
    let run = dev.run(["remind", "--print"]);
    assert_ok(&run);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("HEARTH_PASSPHRASE"), "{}", run.stderr);

    let with_env = dev
        .command(["remind", "--print"])
        .env("HEARTH_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&with_env.stdout).contains("It's check-in week."),
        "{with_env:?}"
    );
}

/// Sam and Ana, paired through a relay; Ana has answered this week's check-in and synced.
fn ana_has_answered() -> (LocalRelay, Device, Device) {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let url = relay.url().to_owned();
    sam.ok(["init", "--name", "Sam", "--no-passphrase", "--relay", &url]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let ana = Device::new(BIN);
    ana.ok(["join", &code, "--name", "Ana", "--no-passphrase"]);
    answer_this_week(&ana);
    ana.ok(["sync"]);
    (relay, sam, ana)
}

#[test]
fn remind_after_a_sync_names_the_partner_who_has_answered() {
    let (_relay, sam, ana) = ana_has_answered();

    // Offline by default: this device has not heard yet.
    assert!(
        sam.ok(["remind", "--print"])
            .starts_with("It's check-in week.")
    );
    let out = sam.ok(["remind", "--print", "--sync"]);
    assert_eq!(
        out,
        "Ana has answered this week's check-in — whenever you're ready.\n"
    );
    // Ana has answered and is waiting for nothing.
    assert_eq!(ana.ok(["remind", "--print"]), "");
}

#[test]
fn install_writes_systemd_units_that_run_this_program_on_this_profile() {
    let mut dev = sam();
    let units = with_config(&mut dev, true);
    let run = dev.run(["remind", "--install", "--at", "Mon,Thu 20:30"]);
    assert_ok(&run);
    assert_eq!(
        run.stdout,
        "systemctl --user daemon-reload && systemctl --user enable --now hearth-remind.timer\n"
    );
    let service = std::fs::read_to_string(units.join("hearth-remind.service")).unwrap();
    let exec = format!("\nExecStart={BIN} --home {} remind\n", dev.home().display());
    assert!(service.contains(&exec), "{service}\nwanted {exec}");
    let timer = std::fs::read_to_string(units.join("hearth-remind.timer")).unwrap();
    assert!(
        timer.contains("\nOnCalendar=Mon,Thu *-*-* 20:30:00\n"),
        "{timer}"
    );
    assert!(timer.contains("\nPersistent=true\n"), "{timer}");
    assert!(
        !dev.scratch().join("systemctl.ran").exists(),
        "hearth ran systemctl itself"
    );

    // The default time, and --sync carried into the timer's command.
    std::fs::remove_dir_all(&units).unwrap();
    assert_ok(&dev.run(["remind", "--install", "--sync"]));
    let service = std::fs::read_to_string(units.join("hearth-remind.service")).unwrap();
    assert!(service.contains(" remind --sync\n"), "{service}");
    let timer = std::fs::read_to_string(units.join("hearth-remind.timer")).unwrap();
    assert!(
        timer.contains("\nOnCalendar=Sun *-*-* 19:00:00\n"),
        "{timer}"
    );
}

#[test]
fn install_refuses_to_overwrite_changed_units_unless_forced() {
    let mut dev = sam();
    let units = with_config(&mut dev, true);
    assert_ok(&dev.run(["remind", "--install"]));
    // The same again is fine: nothing differs.
    assert_ok(&dev.run(["remind", "--install"]));

    let timer = units.join("hearth-remind.timer");
    let edited = std::fs::read_to_string(&timer)
        .unwrap()
        .replace("19:00", "21:00");
    std::fs::write(&timer, &edited).unwrap();
    let run = dev.run(["remind", "--install"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&timer).unwrap(), edited);

    assert_ok(&dev.run(["remind", "--install", "--force"]));
    assert!(
        std::fs::read_to_string(&timer)
            .unwrap()
            .contains("19:00:00")
    );

    let run = dev.run(["remind", "--install", "--at", "Sun 7pm"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("HH:MM"), "{}", run.stderr);
}

#[test]
fn uninstall_removes_the_units_and_says_how_to_stop_the_timer() {
    let mut dev = sam();
    let units = with_config(&mut dev, true);
    assert_ok(&dev.run(["remind", "--install"]));
    // What `systemctl --user enable` would have made.
    let wants = units.join("timers.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        units.join("hearth-remind.timer"),
        wants.join("hearth-remind.timer"),
    )
    .unwrap();

    let run = dev.run(["remind", "--uninstall"]);
    assert_ok(&run);
    assert!(
        run.stdout
            .contains("systemctl --user stop hearth-remind.timer"),
        "{}",
        run.stdout
    );
    for name in ["hearth-remind.service", "hearth-remind.timer"] {
        assert!(!units.join(name).exists(), "{name} is still there");
    }
    assert!(
        wants
            .join("hearth-remind.timer")
            .symlink_metadata()
            .is_err()
    );

    let again = dev.ok(["remind", "--uninstall"]);
    assert!(again.contains("No hearth reminder timer"), "{again}");
}

#[test]
fn install_without_systemd_prints_a_crontab_line() {
    let mut dev = sam();
    let units = with_config(&mut dev, false);
    let run = dev.run(["remind", "--install", "--at", "Sun 19:00"]);
    assert_ok(&run);
    assert_eq!(
        run.stdout,
        format!("0 19 * * 0 {BIN} --home {} remind\n", dev.home().display())
    );
    assert!(run.stderr.contains("crontab -e"), "{}", run.stderr);
    assert!(!units.exists(), "no unit files without systemd");

    // --cron asks for the line even where systemd is there.
    let mut dev = sam();
    let units = with_config(&mut dev, true);
    let out = dev.ok(["remind", "--install", "--cron"]);
    assert!(out.starts_with("0 19 * * 0 "), "{out}");
    assert!(!units.exists());
}

#[test]
fn sync_at_a_terminal_mentions_the_partner_who_has_answered() {
    let (_relay, sam, _ana) = ana_has_answered();
    let Some(out) = sam.run_on_a_terminal("sync", &[]) else {
        eprintln!("skipped: no util-linux `script` to make a terminal");
        return;
    };
    assert!(out.contains("received"), "{out:?}");
    assert!(
        out.contains("Ana has answered this week's check-in — whenever you're ready."),
        "{out:?}"
    );
}

#[test]
fn no_reminder_line_when_output_goes_to_a_pipe() {
    let dev = sam();
    for args in [
        &["appreciate", "Thank you for the tea"][..],
        &["log"],
        &["feedback", "list"],
        &["journal", "list"],
        &["export", "--format", "md"],
    ] {
        let run = dev.run(args);
        assert_ok(&run);
        assert!(!run.stderr.contains("check-in week"), "{args:?}: {run:?}");
        assert!(!run.stdout.contains(ESC) && !run.stderr.contains(ESC));
    }
    assert!(!dev.home().join("reminder-shown-on").exists());
}

#[test]
fn at_a_terminal_the_reminder_line_comes_once_a_day() {
    let dev = sam();
    dev.ok(["appreciate", "Thank you for the tea"]);
    let Some(log) = dev.run_on_a_terminal("log", &[]) else {
        eprintln!("skipped: no util-linux `script` to make a terminal");
        return;
    };
    assert!(log.contains("It's check-in week."), "{log:?}");
    let reminded_on = std::fs::read_to_string(dev.home().join("reminder-shown-on")).unwrap();
    assert_eq!(
        reminded_on.trim().len(),
        "2026-01-01".len(),
        "{reminded_on}"
    );

    // Once a day is enough.
    let again = dev.run_on_a_terminal("log", &[]).unwrap();
    assert!(!again.contains("check-in week"), "{again:?}");

    // Without colour under NO_COLOR; never after --json, --quiet or `status`.
    std::fs::remove_file(dev.home().join("reminder-shown-on")).unwrap();
    let plain = dev.run_on_a_terminal("log", &[("NO_COLOR", "1")]).unwrap();
    assert!(plain.contains("It's check-in week."), "{plain:?}");
    assert!(!plain.contains(ESC), "{plain:?}");
    std::fs::remove_file(dev.home().join("reminder-shown-on")).unwrap();
    for args in ["log --json", "log --quiet", "status"] {
        let out = dev.run_on_a_terminal(args, &[("NO_COLOR", "1")]).unwrap();
        assert!(!out.contains("check-in week."), "{args}: {out:?}");
    }
    assert!(!dev.home().join("reminder-shown-on").exists());

    // Nothing once this week's check-in is answered, and no need to look again today.
    answer_this_week(&dev);
    let out = dev.run_on_a_terminal("log", &[]).unwrap();
    assert!(!out.contains("check-in week"), "{out:?}");
    assert!(dev.home().join("reminder-shown-on").exists());
}
