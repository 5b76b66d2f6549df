//! A short soak in the normal test suite: real client devices (profiles on disk, live
//! connections) on the real relay binary, which is SIGKILLed and restarted while they
//! write; devices drop their connections and crash, half of the time mid-push; then the
//! relay's files are copied mid-write and it restarts from the copy. Every device must
//! converge by itself, with every entry once on both devices of every pair and every
//! committed envelope once in the relay's database. `hearth-bench soak` runs the same code
//! at 1,000 pairs for five minutes (README, "Reliability").
#![cfg(unix)]

use std::time::Duration;

use hearth_bench::soak::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_converge_and_nothing_is_lost_through_relay_kills_crashes_and_a_copied_database() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let opts = Options {
        pairs: 6,
        realistic: Duration::from_secs(4),
        realistic_every: Duration::from_secs(1),
        peak: Duration::from_secs(6),
        peak_every: Duration::from_millis(150),
        kills: 3,
        disconnect_every: Duration::from_secs(3),
        crash_every: Duration::from_secs(4),
        // The full disk needs a tmpfs (root); tests/tests/relay_crash.rs fills the
        // database to its cap instead.
        full_disk: false,
        copy_restart: Some(Duration::from_secs(6)),
        dir: dir.path().join("soak"),
        relay_bin: env!("CARGO_BIN_EXE_hearth-relay-test-bin").into(),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    eprintln!("soak seed {}", opts.seed);
    let lines = run(opts).await.expect("the soak holds");
    let main = &lines[0];
    assert_eq!(main["relay_sigkills"], 3, "{main}");
    let counted = &main["devices_counted"];
    assert!(counted["writes"].as_u64() > Some(50), "{main}");
    assert!(counted["client_crashes"].as_u64() > Some(0), "{main}");
    let copy = &lines[1];
    // A disconnect fires only while a device is live, after an exponential wait: on a
    // loaded machine, with three kills in ten seconds, one round can pass without one.
    let disconnects = |line: &serde_json::Value| line["devices_counted"]["disconnects"].as_u64();
    assert!(
        disconnects(main).unwrap_or(0) + disconnects(copy).unwrap_or(0) > 0,
        "{main}\n{copy}"
    );
    assert_eq!(counted["envelopes_refused"], 0, "{main}");
    assert!(main["envelopes_verified"].as_u64() > Some(0), "{main}");
    assert!(
        copy["devices_counted"]["relay_behind_detected"].as_u64() > Some(0),
        "the devices noticed the relay went back: {copy}"
    );
}
