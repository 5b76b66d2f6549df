//! What an operator sees: the relay's log lines as journald and log collectors take them,
//! and the systemd unit shipped in contrib/.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const RELAY: &str = env!("CARGO_BIN_EXE_hearth-relay-test-bin");
const T: Duration = Duration::from_secs(30);

/// Starts the relay with stderr piped (not a terminal), lets it log its start, asks it to
/// stop (SIGTERM) and returns what it wrote to stderr.
fn relay_stderr(db: &Path, flags: &[&str], env: &[(&str, &str)]) -> String {
    let mut child: Child = Command::new(RELAY)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(flags)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("HEARTH_RELAY_LOG_FORMAT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(T)
        .expect("no `listening on` in time")
        .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    // SIGTERM: the relay logs "shutting down" and "relay stopped", then exits 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn relay_logs_are_plain_text_off_a_terminal_and_json_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");

    // Piped stderr, as under journald: no colour codes, but the lines are there.
    let text = relay_stderr(&db, &[], &[]);
    assert!(text.contains("relay started"), "{text}");
    assert!(text.contains("relay stopped"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in piped logs: {text:?}"
    );

    // JSON, by flag and by environment: every line one object with a level and a message.
    for (flags, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("HEARTH_RELAY_LOG_FORMAT", "json")][..]),
    ] {
        let json = relay_stderr(&db, flags, env);
        let lines: Vec<serde_json::Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        let messages: Vec<&str> = lines
            .iter()
            .map(|v| {
                assert!(v["level"].is_string(), "{v}");
                assert!(v["timestamp"].is_string(), "{v}");
                v["fields"]["message"].as_str().unwrap()
            })
            .collect();
        assert!(
            messages.iter().any(|m| m.starts_with("relay started")),
            "{messages:?}"
        );
        assert!(messages.contains(&"relay stopped"), "{messages:?}");
        assert!(!json.contains('\u{1b}'), "{json:?}");
    }

    // A format it does not know is refused before it starts, naming the setting.
    let out = Command::new(RELAY)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env("HEARTH_RELAY_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log_format") && stderr.contains("\"text\" or \"json\""),
        "{stderr}"
    );
}

/// The unit in contrib/ passes `systemd-analyze verify` with nothing to say: an unknown
/// key or a bad value is only a warning there, so any output at all fails this test. The
/// binary's path is swapped for the one cargo built, since verify checks that it exists.
#[test]
fn the_systemd_unit_in_contrib_verifies() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/hearth-relay.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("ExecStart=/usr/local/bin/hearth-relay\n"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hearth-relay.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/hearth-relay", RELAY)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect(
            "systemd-analyze is needed to check contrib/hearth-relay.service (Debian: systemd)",
        );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
