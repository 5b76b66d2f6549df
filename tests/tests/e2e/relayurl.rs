//! Relay addresses as people type them, the check before a space is tied to one, and
//! moving a space to another relay: through the real `hearth` program, and through the
//! client library for the moves, with real relays on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use hearth_relay::LocalRelay;
use hearth_tests::Device;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

/// `ws://127.0.0.1:PORT/v1/sync` as `127.0.0.1:PORT`: what someone would type.
fn host_port(url: &str) -> String {
    url.trim_start_matches("ws://")
        .trim_end_matches("/v1/sync")
        .to_owned()
}

/// An address where nothing listens: a port bound and let go.
fn nothing_listens() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("ws://{addr}/v1/sync")
}

fn no_profile(dev: &Device) -> bool {
    !dev.home().join("profile.db").exists() && !dev.home().join("device.key").exists()
}

#[test]
fn relayurl_an_address_without_a_path_works_for_init_invite_join_and_sync() {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let typed = host_port(relay.url());
    let out = sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        &typed,
    ]);
    assert!(
        out.contains(&format!("syncs through {}", relay.url())),
        "the resolved address is said: {out}"
    );
    assert_eq!(sam.json(["status"])["relay"], relay.url());
    sam.ok(["appreciate", "Thank you for the map"]);
    let code = sam.ok(["invite"]).trim().to_owned();

    let jordan = Device::new(BIN);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for the map")
    );
    jordan.ok(["appreciate", "Thank you for driving"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    assert!(
        sam.ok(["log"])
            .contains("Jordan appreciated: Thank you for driving")
    );

    // The same relay typed with its scheme and a trailing slash, for an offline space.
    let alex = Device::new(BIN);
    alex.ok(["init", "--name", "Alex", "--no-passphrase"]);
    let out = alex.ok(["invite", "--relay", &format!("ws://{typed}/")]);
    assert!(out.starts_with("hearth1."), "{out}");
    assert_eq!(alex.json(["status"])["relay"], relay.url());
    // And typed yet another way, the relay it is already on is no reason to refuse.
    alex.ok(["invite", "--relay", &typed]);
}

#[test]
fn relayurl_an_address_that_is_not_a_hearth_relay_or_is_down_creates_no_profile() {
    let dev = Device::new(BIN);
    let relay = LocalRelay::start(dev.scratch().join("relay.db")).unwrap();
    let init =
        |relay: &str| dev.run(["init", "--name", "Sam", "--no-passphrase", "--relay", relay]);

    // The relay's own server, at a path where no relay is: a 404.
    let typed = host_port(relay.url());
    let run = init(&format!("ws://{typed}/relay"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a hearth relay"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(run.stderr.contains("Nothing was created"), "{}", run.stderr);
    assert!(run.stderr.contains("without --relay"), "{}", run.stderr);
    assert!(no_profile(&dev));

    // A page that answers, but is no websocket.
    let run = init(&format!("ws://{typed}/healthz"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a hearth relay"),
        "{}",
        run.stderr
    );
    assert!(no_profile(&dev));

    // Addresses that cannot be a relay's say what to type instead, before any I/O.
    for (bad, says) in [
        ("https://relay.example.org", "use wss:// instead"),
        ("relay example.org", "one word"),
        ("wss://", "names no host"),
        ("relay.example.org:70000", "a port is a number"),
    ] {
        let run = init(bad);
        assert_eq!(run.code, Some(1), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{bad}: {}", run.stderr);
        assert!(no_profile(&dev), "{bad}");
    }

    // Nothing answers: exit 2, and still nothing made.
    let down = nothing_listens();
    let run = init(&down);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the relay"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Nothing was created"), "{}", run.stderr);
    assert!(no_profile(&dev));

    // An offline space is not tied to either, and stays offline.
    dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    dev.ok(["appreciate", "kept"]);
    let run = dev.run(["invite", "--relay", &format!("ws://{typed}/relay")]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("stays on this device"),
        "{}",
        run.stderr
    );
    let run = dev.run(["invite", "--relay", &down]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let status = dev.json(["status"]);
    assert_eq!(status["relay"], serde_json::Value::Null);
    assert!(dev.ok(["log"]).contains("kept"));
    // The relay that works still does.
    dev.ok(["invite", "--relay", &typed]);
    assert_eq!(dev.json(["status"])["relay"], relay.url());
}

#[test]
fn relayurl_invite_on_a_space_tied_to_another_relay_points_to_relay_set() {
    let sam = Device::new(BIN);
    let relay = LocalRelay::start(sam.scratch().join("relay.db")).unwrap();
    let other = LocalRelay::start(sam.scratch().join("other.db")).unwrap();
    sam.ok([
        "init",
        "--name",
        "Sam",
        "--no-passphrase",
        "--relay",
        relay.url(),
    ]);
    let run = sam.run(["invite", "--relay", other.url()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("hearth relay set"), "{}", run.stderr);
    assert!(run.stderr.contains(relay.url()), "{}", run.stderr);
    assert_eq!(sam.json(["status"])["relay"], relay.url());
}
