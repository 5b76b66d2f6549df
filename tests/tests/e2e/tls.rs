//! A relay with a certificate of its own, from a private CA made in the test: partners pair
//! and sync over `wss://` trusting that CA through `--ca-file` (kept in the profile, so the
//! file may go away) or `SSL_CERT_FILE`; a certificate this device does not trust is a
//! message that says so and exit code 1, with nothing created or lost; SIGHUP swaps the
//! relay's certificate for new connections, and a bad new one is logged and kept out.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hearth_tests::{Device, Run};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const RELAY_BIN: &str = env!("CARGO_BIN_EXE_hearth-relay-test-bin");
/// The bound on every wait: a bug fails the test instead of hanging it.
const T: Duration = Duration::from_secs(30);

/// What the client says for a certificate signed by an authority it does not trust.
const UNTRUSTED: &str = "is signed by an authority this computer does not trust";

/// A private certificate authority, as an operator would make with openssl or step-cli.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes the CA's certificate to `path` (what `--ca-file` and `SSL_CERT_FILE` take).
    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pem).unwrap();
        path.to_owned()
    }

    /// A relay certificate for `names`, valid from `not_before` to `not_after` (days from
    /// today), as `(chain PEM, key PEM)`.
    fn issue_for(&self, names: &[&str], not_before: i64, not_after: i64) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        let now = rcgen::date_time_ymd(1970, 1, 1)
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
        let day = |n: i64| {
            let days = Duration::from_secs(n.unsigned_abs() * 86_400);
            if n < 0 { now - days } else { now + days }
        };
        params.not_before = day(not_before);
        params.not_after = day(not_after);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A relay certificate for 127.0.0.1 and localhost, valid now.
    fn issue(&self) -> (String, String) {
        self.issue_for(&["127.0.0.1", "localhost"], -1, 30)
    }
}

/// The certificate files a relay is started with, in `dir`.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    fn write(dir: &Path, (chain, key): &(String, String)) -> CertFiles {
        std::fs::create_dir_all(dir).unwrap();
        let files = CertFiles {
            cert: dir.join("fullchain.pem"),
            key: dir.join("privkey.pem"),
        };
        files.replace(chain, key);
        files
    }

    /// Replaces the files' contents, as a renewal (certbot, step) does.
    fn replace(&self, chain: &str, key: &str) {
        std::fs::write(&self.cert, chain).unwrap();
        std::fs::write(&self.key, key).unwrap();
    }
}

/// The real relay binary as a child process; killed (and reaped) if dropped.
struct RelayProcess {
    child: Child,
    addr: String,
    /// The relay's log lines (stderr), as they come.
    log: mpsc::Receiver<String>,
}

impl RelayProcess {
    /// Starts the relay on a free port with `db` and `flags`, and waits (bounded) for
    /// `listening on ADDR`.
    fn start(db: &Path, flags: &[&std::ffi::OsStr]) -> RelayProcess {
        let mut child = Command::new(RELAY_BIN)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(flags)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("HEARTH_RELAY_LISTEN")
            .env_remove("HEARTH_RELAY_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        // Reads until the relay's stderr closes, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx
            .recv_timeout(T)
            .expect("the relay printed no address in time")
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        RelayProcess { child, addr, log }
    }

    /// A relay serving TLS with `files`.
    fn with_tls(db: &Path, files: &CertFiles) -> RelayProcess {
        RelayProcess::start(
            db,
            &[
                "--tls-cert".as_ref(),
                files.cert.as_os_str(),
                "--tls-key".as_ref(),
                files.key.as_os_str(),
            ],
        )
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/v1/sync", self.addr)
    }

    fn wss(&self) -> String {
        self.url("wss")
    }

    fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -HUP failed: {status}");
    }

    /// Waits (bounded) for a log line containing `text`, returning it.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the relay did not log {text:?} within {T:?}"),
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_code(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code,
        Some(code),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// An exit 1 with the untrusted-certificate message, and never the "later" of a relay
/// that is only down.
fn assert_untrusted(run: &Run, what: &str) {
    assert_code(run, 1, what);
    assert!(run.stderr.contains(UNTRUSTED), "{what}: {}", run.stderr);
    assert!(run.stderr.contains("--ca-file"), "{what}: {}", run.stderr);
    for later in ["will reach the relay", "next time", "trying again"] {
        assert!(!run.stderr.contains(later), "{what}: {}", run.stderr);
    }
}

fn init_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["init", "--name", "Sam", "--no-passphrase", "--relay", url];
    args.extend_from_slice(extra);
    args
}

#[test]
fn partners_pair_and_sync_over_wss_with_the_private_ca_given_by_ca_file() {
    let sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &ca.issue());
    let relay = RelayProcess::with_tls(&sam.scratch().join("relay.db"), &files);
    relay.wait_for_log("serving TLS");
    let url = relay.wss();

    let sam_ca = ca.write(&sam.scratch().join("ca.crt"));
    let out = sam.ok(init_args(&url, &["--ca-file", sam_ca.to_str().unwrap()]));
    assert!(out.contains("syncs through"), "{out}");
    // The profile keeps its own copy: the file may go.
    std::fs::remove_file(&sam_ca).unwrap();
    sam.ok(["appreciate", "Thank you for the tea"]);
    let code = sam.ok(["invite"]).trim().to_owned();
    assert!(code.starts_with("hearth1."), "{code}");

    let jordan = Device::new(BIN);
    let jordan_ca = ca.write(&jordan.scratch().join("ca.crt"));
    let out = jordan.ok([
        "join",
        &code,
        "--name",
        "Jordan",
        "--no-passphrase",
        "--ca-file",
        jordan_ca.to_str().unwrap(),
    ]);
    assert!(out.contains("Joined"), "{out}");
    std::fs::remove_file(&jordan_ca).unwrap();
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
    assert_eq!(status["relay"], url.as_str());
    assert_eq!(status["relay_reachable"], true);
    assert_eq!(status["relay_problem"], serde_json::Value::Null);
    assert_eq!(status["relay_ca_certificates"], 1);
    // The CA is public: it may rest in the profile database as it is. Nothing written does.
    let holding = hearth_tests::files_containing(&sam.home(), b"-----BEGIN CERTIFICATE-----");
    assert!(!holding.is_empty());
    for path in holding {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("profile.db"), "{}", path.display());
    }
    assert!(hearth_tests::files_containing(&sam.home(), b"Thank you for the tea").is_empty());
}

#[test]
fn partners_pair_over_wss_trusting_the_private_ca_through_ssl_cert_file_or_dir() {
    let mut sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &ca.issue());
    let relay = RelayProcess::with_tls(&sam.scratch().join("relay.db"), &files);
    let url = relay.wss();
    let bundle = ca.write(&sam.scratch().join("trusted.pem"));
    sam.env("SSL_CERT_FILE", &bundle);
    sam.ok(init_args(&url, &[]));
    sam.ok(["appreciate", "Thank you for the walk"]);
    let code = sam.ok(["invite"]).trim().to_owned();

    let mut jordan = Device::new(BIN);
    // Without it, Jordan's machine does not trust the relay, and nothing is created.
    let run = jordan.run(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert_untrusted(&run, "join without the CA");
    assert!(!jordan.home().join("profile.db").exists());
    // A directory of certificates, as `openssl rehash` keeps them, does as well.
    let dir = jordan.scratch().join("certs");
    std::fs::create_dir(&dir).unwrap();
    ca.write(&dir.join("hearth-ca.pem"));
    jordan.env("SSL_CERT_DIR", &dir);
    jordan.ok(["join", &code, "--name", "Jordan", "--no-passphrase"]);
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for the walk")
    );
    jordan.ok(["appreciate", "Thank you for the map"]);
    jordan.ok(["sync"]);
    sam.ok(["sync"]);
    assert!(
        sam.ok(["log"])
            .contains("Jordan appreciated: Thank you for the map")
    );
}

#[test]
fn a_relay_certificate_from_an_untrusted_ca_is_exit_1_and_nothing_is_created_or_lost() {
    let sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let other = Ca::new("Someone Else's CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &ca.issue());
    let relay = RelayProcess::with_tls(&sam.scratch().join("relay.db"), &files);
    let url = relay.wss();
    let right = ca.write(&sam.scratch().join("ca.crt"));
    let wrong = other.write(&sam.scratch().join("other-ca.crt"));

    // Neither the machine's roots nor another CA vouch for it: nothing is created.
    for extra in [vec![], vec!["--ca-file", wrong.to_str().unwrap()]] {
        let run = sam.run(init_args(&url, &extra));
        assert_untrusted(&run, "init with an untrusted certificate");
        assert!(!sam.home().join("profile.db").exists(), "{}", run.stderr);
    }
    // A file that is not a certificate is named before anything happens.
    let key = sam.scratch().join("privkey-by-mistake.pem");
    std::fs::copy(&files.key, &key).unwrap();
    let run = sam.run(init_args(&url, &["--ca-file", key.to_str().unwrap()]));
    assert_code(&run, 1, "a key given as the CA");
    assert!(
        run.stderr.contains("holds no PEM certificate"),
        "{}",
        run.stderr
    );
    assert!(!sam.home().join("profile.db").exists());

    sam.ok(init_args(&url, &["--ca-file", right.to_str().unwrap()]));
    sam.ok(["appreciate", "Thank you for listening"]);
    let code = sam.ok(["invite"]).trim().to_owned();

    let jordan = Device::new(BIN);
    let jordan_wrong = other.write(&jordan.scratch().join("ca.crt"));
    let run = jordan.run([
        "join",
        &code,
        "--name",
        "Jordan",
        "--no-passphrase",
        "--ca-file",
        jordan_wrong.to_str().unwrap(),
    ]);
    assert_untrusted(&run, "join with the wrong CA");
    assert!(!jordan.home().join("profile.db").exists());
    // The failed attempt used nothing up: the same code works with the right CA.
    let jordan_right = ca.write(&jordan.scratch().join("ca.crt"));
    jordan.ok([
        "join",
        &code,
        "--name",
        "Jordan",
        "--no-passphrase",
        "--ca-file",
        jordan_right.to_str().unwrap(),
    ]);

    // Trusting the wrong CA from now on is refused, and the kept one stays.
    sam.ok(["appreciate", "Thank you for staying"]);
    let run = sam.run(["sync", "--ca-file", wrong.to_str().unwrap()]);
    assert_untrusted(&run, "sync --ca-file with the wrong CA");
    let log = sam.ok(["log"]);
    assert!(log.contains("Thank you for listening"), "{log}");
    assert!(log.contains("Thank you for staying"), "{log}");
    sam.ok(["sync"]);
    jordan.ok(["sync"]);
    assert!(
        jordan
            .ok(["log"])
            .contains("Sam appreciated: Thank you for staying")
    );
}

#[test]
fn an_offline_space_moves_onto_a_relay_with_a_private_ca_through_invite() {
    let sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &ca.issue());
    let relay = RelayProcess::with_tls(&sam.scratch().join("relay.db"), &files);
    let url = relay.wss();
    sam.ok(["init", "--name", "Sam", "--no-passphrase"]);
    sam.ok(["appreciate", "Thank you for the quiet evening"]);
    let run = sam.run(["invite", "--relay", &url]);
    assert_untrusted(&run, "invite --relay without the CA");
    // Still offline, so the right CA can be given next.
    assert_eq!(sam.json(["status"])["relay"], serde_json::Value::Null);
    let ca_file = ca.write(&sam.scratch().join("ca.crt"));
    let code = sam.ok([
        "invite",
        "--relay",
        &url,
        "--ca-file",
        ca_file.to_str().unwrap(),
    ]);
    assert!(code.trim().starts_with("hearth1."), "{code}");
    let status = sam.json(["status"]);
    assert_eq!(status["relay_reachable"], true);
    assert_eq!(status["pending_changes"], 0);
}

#[test]
fn sighup_gives_new_connections_the_new_certificate_and_keeps_the_old_one_for_a_bad_file() {
    let sam = Device::new(BIN);
    let old_ca = Ca::new("Old CA");
    let new_ca = Ca::new("New CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &old_ca.issue());
    let relay = RelayProcess::with_tls(&sam.scratch().join("relay.db"), &files);
    let url = relay.wss();
    let old_pem = old_ca.write(&sam.scratch().join("old-ca.crt"));
    let new_pem = new_ca.write(&sam.scratch().join("new-ca.crt"));
    sam.ok(init_args(&url, &["--ca-file", old_pem.to_str().unwrap()]));
    sam.ok(["appreciate", "Thank you for the flowers"]);
    sam.ok(["sync"]);

    // A botched renewal (a truncated chain): logged, and the certificate in use stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    relay.hang_up();
    let line = relay.wait_for_log("kept the TLS certificate in use");
    assert!(line.contains("fullchain.pem"), "{line}");
    sam.ok(["appreciate", "Thank you for the card"]);
    sam.ok(["sync"]);

    // A certificate from another CA: new connections get it once the relay says so.
    let (chain, key) = new_ca.issue();
    files.replace(&chain, &key);
    relay.hang_up();
    relay.wait_for_log("reloaded the TLS certificate");
    sam.ok(["appreciate", "Thank you for the soup"]);
    let run = sam.run(["sync"]);
    assert_untrusted(
        &run,
        "sync against the new certificate, trusting the old CA",
    );
    let status = sam.json(["status"]);
    assert_eq!(status["relay_reachable"], false);
    assert!(
        status["relay_problem"]
            .as_str()
            .unwrap_or_default()
            .contains(UNTRUSTED),
        "{status}"
    );
    // `hearth watch` stops with the message rather than retrying forever.
    let watch = run_bounded(&sam, &["watch"]);
    assert_untrusted(&watch, "watch against an untrusted certificate");
    // Nothing written meanwhile is lost, and it goes out once the new CA is trusted.
    let log = sam.ok(["log"]);
    for text in ["the flowers", "the card", "the soup"] {
        assert!(log.contains(text), "{log}");
    }
    let out = sam.ok(["sync", "--ca-file", new_pem.to_str().unwrap()]);
    assert!(out.contains("Synced"), "{out}");
    assert_eq!(sam.json(["status"])["pending_changes"], 0);
}

#[test]
fn the_wrong_scheme_for_the_port_says_which_to_use() {
    let sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let files = CertFiles::write(&sam.scratch().join("relay-tls"), &ca.issue());
    let tls = RelayProcess::with_tls(&sam.scratch().join("tls.db"), &files);
    let plain = RelayProcess::start(&sam.scratch().join("plain.db"), &[]);
    plain.wait_for_log("without TLS");
    let ca_file = ca.write(&sam.scratch().join("ca.crt"));
    let ca_arg = ca_file.to_str().unwrap();

    let run = sam.run(init_args(&tls.url("ws"), &["--ca-file", ca_arg]));
    assert_code(&run, 1, "ws:// to a TLS port");
    assert!(
        run.stderr.contains("expects TLS on that port: use wss://"),
        "{}",
        run.stderr
    );
    let run = sam.run(init_args(&plain.wss(), &["--ca-file", ca_arg]));
    assert_code(&run, 1, "wss:// to a plain port");
    assert!(
        run.stderr.contains("does not speak TLS on that port"),
        "{}",
        run.stderr
    );
    assert!(!sam.home().join("profile.db").exists());
}

#[test]
fn a_certificate_for_another_name_or_out_of_date_says_so() {
    let sam = Device::new(BIN);
    let ca = Ca::new("Hearth Test CA");
    let ca_file = ca.write(&sam.scratch().join("ca.crt"));
    let ca_arg = ca_file.to_str().unwrap();
    let cases: [(&[&str], i64, i64, &str); 3] = [
        (
            &["relay.example.org"],
            -1,
            30,
            "is not for 127.0.0.1 (it is for relay.example.org)",
        ),
        (&["127.0.0.1"], -30, -2, "expired on"),
        (&["127.0.0.1"], 2, 30, "is not valid yet"),
    ];
    for (i, (names, from, to, said)) in cases.into_iter().enumerate() {
        let files = CertFiles::write(
            &sam.scratch().join(format!("tls-{i}")),
            &ca.issue_for(names, from, to),
        );
        let relay = RelayProcess::with_tls(&sam.scratch().join(format!("{i}.db")), &files);
        let run = sam.run(init_args(&relay.wss(), &["--ca-file", ca_arg]));
        assert_code(&run, 1, said);
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
        assert!(!sam.home().join("profile.db").exists());
    }
}

#[test]
fn a_relay_with_tls_files_it_cannot_use_does_not_start_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let out = Command::new(RELAY_BIN)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("relay.db"))
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .env_remove("HEARTH_RELAY_LISTEN")
        .env_remove("HEARTH_RELAY_DB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the TLS cert file"), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
    assert!(!dir.path().join("relay.db").exists(), "nothing was opened");

    let out = Command::new(RELAY_BIN)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("relay.db"))
        .arg("--tls-cert")
        .arg(&missing)
        .env_remove("HEARTH_RELAY_LISTEN")
        .env_remove("HEARTH_RELAY_DB")
        .env_remove("HEARTH_RELAY_TLS_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`tls_cert` is set but `tls_key` is not"),
        "{stderr}"
    );
}

/// Runs `hearth ARGS` and waits for it to end by itself, failing the test if it does not
/// within [`T`].
fn run_bounded(device: &Device, args: &[&str]) -> Run {
    let child = device.command(args).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(T) {
        Ok(out) => out.unwrap().into(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("hearth {args:?} did not stop by itself within {T:?}");
        }
    }
}
