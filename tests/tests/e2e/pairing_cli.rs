//! The pairing story through the real `hearth` program and a real relay on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_relay::LocalRelay;
use hearth_tests::Device;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

struct Relay {
    url: String,
    _relay: LocalRelay,
}

impl Relay {
    fn start(db: &Path) -> Relay {
        let relay = LocalRelay::start(db.to_owned()).unwrap();
        Relay {
            url: relay.url().to_owned(),
            _relay: relay,
        }
    }
}

#[test]
fn partners_pair_with_the_cli_and_see_each_others_entries() {
    let sam = Device::new(BIN);
    let relay = Relay::start(&sam.scratch().join("relay.db"));
    let out = sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    assert!(out.contains("syncs through"), "{out}");
    sam.ok(["appreciate", "Thank you for the tea"]);
    let code = sam.ok(["invite"]).trim().to_owned();
    assert!(code.starts_with("hearth1."), "{code}");

    let jordan = Device::new(BIN);
    let out = jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert!(out.contains("Joined"), "{out}");
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for the tea")
    );

    jordan.ok(["appreciate", "Thank you for waiting up"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    let log = sam.ok(["log"]);
    assert!(
        log.contains("Jordan appreciated: Thank you for waiting up"),
        "{log}"
    );
    let status = sam.json(["status"]);
    assert_eq!(status["partner"]["name"], "Jordan");
    assert_eq!(status["relay_reachable"], true);
    assert_eq!(status["pending_changes"], 0);
    assert_eq!(status["received_waiting"], 0);

    // The code was for one person, once.
    let eve = Device::new(BIN);
    let run = eve.run(["join", &code, "--name", "Eve", "--no-passphrase"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("already used"), "{}", run.stderr);
    assert!(run.stderr.contains("hearth invite"), "{}", run.stderr);

    // A damaged code says so.
    let mut damaged = code.clone();
    damaged.pop();
    damaged.push(if code.ends_with('0') { '1' } else { '0' });
    let run = eve.run(["join", &damaged, "--name", "Eve", "--no-passphrase"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("invite code is not valid"),
        "{}",
        run.stderr
    );
    assert!(!eve.home().join("profile.db").exists());
}

#[test]
fn with_the_relay_down_writes_succeed_and_sync_exits_2() {
    let dev = Device::new(BIN);
    // A space is tied only to a relay that answers (relayurl.rs); this one goes down after.
    let relay = Relay::start(&dev.scratch().join("relay.db"));
    let out = dev.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    assert!(out.contains("Welcome"), "{out}");
    drop(relay);
    dev.ok(["appreciate", "still saved"]);
    let run = dev.run(["sync"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("kept on this device"), "{}", run.stderr);
    assert!(dev.ok(["log"]).contains("still saved"));
    let status = dev.json(["status"]);
    assert_eq!(status["relay_reachable"], false);
    assert!(status["pending_changes"].as_u64().unwrap() >= 1);
}

#[test]
fn watch_prints_the_partners_new_entries_as_they_arrive() {
    use std::io::BufRead;

    let sam = Device::new(BIN);
    let relay = Relay::start(&sam.scratch().join("relay.db"));
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    let code = sam.ok(["invite"]).trim().to_owned();
    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);

    let mut watcher = sam.command(["watch"]).spawn().unwrap();
    let stdout = watcher.stdout.take().unwrap();
    // Wait for the watcher to say it is connected and caught up, so the entry below can
    // only reach it live.
    let stderr = std::io::BufReader::new(watcher.stderr.take().unwrap());
    let mut said = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let connected = line.contains("Connected; watching");
        said.push(line);
        if connected {
            break;
        }
    }
    assert!(
        said.iter().any(|l| l.contains("Connected; watching")),
        "{said:?}"
    );
    let (lines, seen) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });

    jordan.ok(["appreciate", "LIVE: thank you for the flowers"]);
    jordan.ok(["sync"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut got = None;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match seen.recv_timeout(left) {
            Ok(line) if line.contains("LIVE: thank you for the flowers") => {
                got = Some(line);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    watcher.kill().unwrap();
    let _ = watcher.wait();
    let _ = reader.join();
    let line = got.expect("the watcher printed Jordan's appreciation");
    assert!(line.contains("Jordan appreciated:"), "{line}");
    // What the watcher applied is in Sam's profile.
    assert!(
        sam.ok(["log"])
            .contains("Jordan appreciated: LIVE: thank you for the flowers")
    );
}

#[test]
fn a_lost_device_is_listed_and_removed_with_the_cli() {
    let laptop = Device::new(BIN);
    let relay = Relay::start(&laptop.scratch().join("relay.db"));
    laptop.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &relay.url,
    ]);
    let code = laptop.ok(["invite", "--device"]).trim().to_owned();
    let phone = Device::new(BIN);
    phone.ok(["join", &code, "--no-passphrase"]);

    let listed = laptop.ok(["device", "list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("this device") && listed.contains("yours"),
        "{listed}"
    );
    let devices = laptop.json(["device", "list"]);
    let rows = devices["devices"].as_array().unwrap();
    let phone_id = rows
        .iter()
        .find(|d| d["this_device"] == false)
        .map(|d| d["short"].as_str().unwrap().to_owned())
        .unwrap();

    // Not at a terminal, removal needs --yes; a wrong id names what to do.
    let run = laptop.run(["device", "remove", &phone_id]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    let run = laptop.run(["device", "remove", "zz", "--yes"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("device list"), "{}", run.stderr);
    assert_eq!(laptop.ok(["device", "list"]).lines().count(), 2);

    let out = laptop.ok(["device", "remove", &phone_id, "--yes"]);
    assert!(out.contains("new key"), "{out}");
    assert_eq!(laptop.ok(["device", "list"]).lines().count(), 1);
    laptop.ok(["appreciate", "MARKER written after the phone was removed"]);
    laptop.ok(["sync"]);

    // The phone is told, keeps what it had, and gets nothing new.
    let run = phone.run(["sync"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("removed"), "{}", run.stderr);
    assert!(!phone.ok(["log"]).contains("MARKER"));
}
