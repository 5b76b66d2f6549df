//! `hearth unlock` and `hearth lock`: the passphrase typed once, the key held by the Linux
//! kernel keyring (real `keyctl`, the real `hearth` program, real scrypt profiles), and
//! what that means for expiry, for other profiles, for files on disk and for the reminder
//! timer. The tests read and plant keyring entries themselves, as another process of the
//! same user could.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use hearth_client::unlock;
use hearth_tests::{Device, Run, files_containing};
use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const PASS: &str = "correct horse battery";

/// Removes a profile's keyring entry when the test ends, however it ends.
struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        if let Some(key) = find(&self.0) {
            let _ = key.invalidate();
        }
    }
}

/// Sam's device, with a profile behind a passphrase.
fn sam() -> (Device, Forget) {
    let dev = Device::new(BIN);
    let run = with_passphrase(&dev, ["init", "--name", "Sam"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let forget = Forget(unlock::entry_name(&dev.home()).unwrap());
    (dev, forget)
}

fn with_passphrase<const N: usize>(dev: &Device, args: [&str; N]) -> Run {
    dev.command(args)
        .env("HEARTH_PASSPHRASE", PASS)
        .output()
        .unwrap()
        .into()
}

/// `hearth unlock`, the passphrase on standard input: no HEARTH_PASSPHRASE anywhere.
fn unlock_for(dev: &Device, duration: &str) -> Run {
    dev.run_with_input(
        ["unlock", "--passphrase-stdin", "--for", duration],
        &format!("{PASS}\n"),
    )
}

fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code,
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

fn find(name: &str) -> Option<linux_keyutils::Key> {
    KeyRing::from_special_id(KeyRingIdentifier::User, false)
        .ok()?
        .search(name)
        .ok()
}

/// What the kernel keyring holds for the profile in `home`, read as any process of this
/// user can.
fn entry(home: &Path) -> Option<Vec<u8>> {
    find(&unlock::entry_name(home).unwrap())?.read_to_vec().ok()
}

/// The file key inside an entry.
fn file_key(entry: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(entry).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("key ")).unwrap();
    hex_decode(line)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Puts `payload` in the user keyring as `name`, as a hostile (or confused) program of this
/// user could.
fn plant(name: &str, payload: &[u8]) {
    let user = KeyRing::from_special_id(KeyRingIdentifier::User, true).unwrap();
    let process = KeyRing::from_special_id(KeyRingIdentifier::Process, true).unwrap();
    let key = process.add_key(name, payload).unwrap();
    key.set_perms(
        KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::ALL)
            .build(),
    )
    .unwrap();
    key.set_timeout(600).unwrap();
    user.link_key(key).unwrap();
    process.unlink_key(key).unwrap();
}

#[test]
fn unlock_once_then_commands_need_no_passphrase_until_lock() {
    let (dev, _forget) = sam();
    let locked = dev.run(["log"]);
    assert_code(&locked, 1);

    let run = unlock_for(&dev, "1h");
    assert_code(&run, 0);
    assert!(run.stdout.contains("Unlocked until"), "{}", run.stdout);

    dev.ok(["appreciate", "thank you for the tea"]);
    let log = dev.json(["log"]);
    assert!(log.to_string().contains("thank you for the tea"), "{log}");
    let status = dev.json(["status"]);
    assert_eq!(status["passphrase"], true);
    let until = status["unlocked_until_ms"].as_u64().unwrap();
    let now = hearth_testkit::keys::now_ms();
    assert!(
        until > now + 3_500_000 && until <= now + 3_600_000,
        "{until} vs {now}"
    );
    assert!(dev.ok(["status"]).contains("unlocked until"));

    let run = dev.run(["lock"]);
    assert_code(&run, 0);
    assert!(run.stdout.contains("Locked"), "{}", run.stdout);
    assert!(entry(&dev.home()).is_none());
    let again = dev.run(["log"]);
    assert_code(&again, 1);
    assert!(again.stderr.contains("hearth unlock"), "{}", again.stderr);
    assert!(dev.run(["lock"]).stdout.contains("was not unlocked"));
    // The passphrase still opens it, and nothing was lost.
    let run = with_passphrase(&dev, ["log"]);
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("thank you for the tea"),
        "{}",
        run.stdout
    );
}

#[test]
fn unlock_with_a_wrong_passphrase_stores_nothing() {
    let (dev, _forget) = sam();
    let run = dev.run_with_input(["unlock", "--passphrase-stdin"], "not the passphrase\n");
    assert_code(&run, 3);
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
    assert!(entry(&dev.home()).is_none());
    assert_code(&dev.run(["log"]), 1);

    let empty = dev.run_with_input(["unlock", "--passphrase-stdin"], "\n");
    assert_code(&empty, 1);
    assert!(empty.stderr.contains("no passphrase"), "{}", empty.stderr);
    assert!(entry(&dev.home()).is_none());

    // With no terminal and no passphrase given, it says how to give one.
    let none = dev.run(["unlock"]);
    assert_code(&none, 1);
    assert!(none.stderr.contains("HEARTH_PASSPHRASE"), "{}", none.stderr);
    assert!(entry(&dev.home()).is_none());
}

#[test]
fn unlock_past_its_deadline_is_ignored_and_removed() {
    let (dev, _forget) = sam();
    assert_code(&unlock_for(&dev, "1h"), 0);
    let now = SystemTime::now();
    let until = unlock::unlocked_until(&dev.home(), now).unwrap().unwrap();
    let left = until.duration_since(now).unwrap();
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    assert!(unlock::open(&dev.home(), now).unwrap().is_some());

    // An hour and a second later, by the deadline stored in the entry (the kernel's own
    // timeout is an hour away yet): not unlocked, and the entry is gone.
    let later = now + Duration::from_secs(3601);
    assert!(unlock::open(&dev.home(), later).unwrap().is_none());
    assert!(entry(&dev.home()).is_none());
    assert_code(&dev.run(["log"]), 1);
}

#[test]
fn unlock_for_a_short_while_is_forgotten_by_the_kernel_itself() {
    let (dev, _forget) = sam();
    let started = Instant::now();
    assert_code(&unlock_for(&dev, "2s"), 0);
    let name = unlock::entry_name(&dev.home()).unwrap();
    assert!(find(&name).is_some());
    // Only the kernel's timeout is at work here: nothing of hearth's looks at the entry
    // while this waits.
    while find(&name).is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the kernel still holds the entry after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
    let run = dev.run(["log"]);
    assert_code(&run, 1);
    assert!(run.stderr.contains("locked"), "{}", run.stderr);
}

#[test]
fn unlock_of_one_profile_never_opens_another() {
    let (sam, _f1) = sam();
    let (ana, _f2) = self::sam();
    assert_code(&unlock_for(&sam, "1h"), 0);
    sam.ok(["appreciate", "only in Sam's profile"]);
    assert_code(&ana.run(["log"]), 1);
    assert!(entry(&ana.home()).is_none());

    // Sam's entry, word for word, under Ana's name (same passphrase, so a
    // key that opened one key file would be tried on the other): refused and removed.
    let sams = entry(&sam.home()).unwrap();
    let anas = unlock::entry_name(&ana.home()).unwrap();
    plant(&anas, &sams);
    assert_code(&ana.run(["log"]), 1);
    assert!(find(&anas).is_none(), "the stray entry is removed");

    // Sam's file key with Ana's directory named inside: the key file's MAC
    // refuses it.
    let text = String::from_utf8(sams).unwrap();
    let sams_home = std::fs::canonicalize(sam.home()).unwrap();
    let anas_home = std::fs::canonicalize(ana.home()).unwrap();
    let forged = text.replace(&hex(&sams_home), &hex(&anas_home));
    assert_ne!(forged, text);
    plant(&anas, forged.as_bytes());
    assert_code(&ana.run(["log"]), 1);
    assert!(find(&anas).is_none(), "the forged entry is removed");

    // Garbage under the name is no error either.
    plant(&anas, b"not an entry at all");
    assert_code(&ana.run(["log"]), 1);
    assert!(find(&anas).is_none());
    // And Sam stays unlocked throughout.
    assert!(sam.ok(["log"]).contains("only in Sam's profile"));
}

fn hex(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn unlock_entry_of_a_profile_made_again_at_the_same_path_is_ignored() {
    let (dev, _forget) = sam();
    assert_code(&unlock_for(&dev, "1h"), 0);
    std::fs::remove_dir_all(dev.home()).unwrap();
    let run = with_passphrase(&dev, ["init", "--name", "Sam again"]);
    assert_code(&run, 0);
    assert!(entry(&dev.home()).is_some(), "the old entry is still there");
    let run = dev.run(["log"]);
    assert_code(&run, 1);
    assert!(entry(&dev.home()).is_none(), "and now it is removed");
    assert_code(&with_passphrase(&dev, ["log"]), 0);
}

#[test]
fn unlocked_key_is_in_no_file_under_the_profile_or_tmpdir() {
    let (mut dev, _forget) = sam();
    let tmp: PathBuf = dev.scratch().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    dev.env("TMPDIR", &tmp);
    assert_code(&unlock_for(&dev, "1h"), 0);
    dev.ok(["appreciate", "thanks for the walk"]);
    dev.ok(["journal", "add", "--private", "a note just for me"]);
    dev.ok(["log"]);
    dev.ok(["status"]);
    dev.ok(["export", "--format", "json"]);

    let entry = entry(&dev.home()).unwrap();
    let key = file_key(&entry);
    assert_eq!(key.len(), 16);
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for dir in [dev.home(), tmp.clone(), dev.scratch().to_owned()] {
        for needle in [&key[..], key_hex.as_bytes(), &entry[..]] {
            assert_eq!(
                files_containing(&dir, needle),
                Vec::<PathBuf>::new(),
                "the unlocked key is in a file under {}",
                dir.display()
            );
        }
    }
}

#[test]
fn unlock_and_lock_say_there_is_nothing_to_do_without_a_passphrase() {
    let dev = Device::new(BIN);
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    let name = unlock::entry_name(&dev.home()).unwrap();
    for verb in ["unlock", "lock"] {
        let run = dev.run([verb]);
        assert_code(&run, 0);
        assert!(
            run.stdout
                .contains(&format!("no passphrase, so there is nothing to {verb}")),
            "{}",
            run.stdout
        );
        assert_eq!(dev.json([verb])["passphrase"], false);
    }
    assert!(find(&name).is_none());
    let status = dev.json(["status"]);
    assert_eq!(status["passphrase"], false);
    assert!(status["unlocked_until_ms"].is_null());
}

#[test]
fn unlock_rejects_durations_before_asking_anything() {
    let (dev, _forget) = sam();
    for (bad, says) in [
        ("0s", "no time"),
        ("32d", "at most 31 days"),
        ("soon", "duration such as"),
    ] {
        let run = unlock_for(&dev, bad);
        assert_code(&run, 1);
        assert!(run.stderr.contains(says), "{bad}: {}", run.stderr);
    }
    assert!(entry(&dev.home()).is_none());
}

/// A PATH with a `notify-send` that notes what it was asked to show.
fn fake_notifier(dev: &mut Device) -> PathBuf {
    let bin = dev.scratch().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shown = dev.scratch().join("notified");
    let script = bin.join("notify-send");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", shown.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dev.env("PATH", &bin);
    shown
}

#[test]
fn unlock_lets_the_reminder_timer_nudge_and_it_is_silent_while_locked() {
    let (mut dev, _forget) = sam();
    let shown = fake_notifier(&mut dev);
    let home = dev.home().display().to_string();
    // As the timer's unit runs it: no terminal, no HEARTH_PASSPHRASE.
    let timer = ["--home", home.as_str(), "remind"];

    let run = dev.run(timer);
    assert_code(&run, 0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert!(!shown.exists(), "nothing is shown while locked");

    assert_code(&unlock_for(&dev, "1h"), 0);
    let run = dev.run(timer);
    assert_code(&run, 0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let said = std::fs::read_to_string(&shown).unwrap();
    assert!(said.contains("It's check-in week."), "{said}");
    assert!(
        dev.ok(["remind", "--print"])
            .contains("It's check-in week.")
    );

    dev.ok(["lock"]);
    std::fs::remove_file(&shown).unwrap();
    let run = dev.run(timer);
    assert_code(&run, 0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert!(!shown.exists(), "nothing is shown once locked again");
}

#[test]
fn unlock_is_what_the_timer_units_point_to_and_they_hold_no_passphrase() {
    let (mut dev, _forget) = sam();
    let bin = dev.scratch().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let systemctl = bin.join("systemctl");
    std::fs::write(&systemctl, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dev.scratch().join("config");
    let scratch = dev.scratch().to_owned();
    dev.env("HOME", &scratch)
        .env("XDG_CONFIG_HOME", &config)
        .env("XDG_RUNTIME_DIR", &scratch)
        .env("PATH", &bin);

    // Even with the passphrase in this shell's environment, none goes into the units.
    let run = with_passphrase(&dev, ["remind", "--install"]);
    assert_code(&run, 0);
    assert!(run.stderr.contains("hearth unlock"), "{}", run.stderr);
    let units = config.join("systemd/user");
    for unit in ["hearth-remind.service", "hearth-remind.timer"] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        for secret in [PASS, "PASSPHRASE", "Environment"] {
            assert!(!text.contains(secret), "{unit}:\n{text}");
        }
    }
}
