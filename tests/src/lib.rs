//! Helpers for the end-to-end tests: a fresh profile directory per test and a way to run
//! the real `hearth` program in it, without a terminal, the way a script would.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One person's device: a temporary profile directory and the `hearth` program.
#[derive(Debug)]
pub struct Device {
    bin: PathBuf,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What a finished `hearth` run printed.
#[derive(Debug)]
pub struct Run {
    /// The exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Device {
    /// A device with an empty profile directory, running the program at `bin`.
    pub fn new(bin: &str) -> Self {
        Device {
            bin: PathBuf::from(bin),
            dir: tempfile::tempdir().expect("a temporary directory"),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every later run.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// The profile directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// A scratch directory beside the profile (for editor scripts, exports…).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// A command for `hearth ARGS` in this device's profile, without a terminal.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HEARTH_HOME", self.home())
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `hearth ARGS` to completion.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .output()
            .expect("the hearth program runs")
            .into()
    }

    /// Runs `hearth ARGS` with `input` on standard input.
    pub fn run_with_input<I, S>(&self, args: I, input: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("the hearth program starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input.as_bytes()).expect("writing stdin");
        drop(stdin);
        child
            .wait_with_output()
            .expect("the hearth program runs")
            .into()
    }

    /// Runs `hearth ARGS` (a shell command line) on a pseudo-terminal made by util-linux
    /// `script`, with `env` added, and returns what the terminal showed; None where there is
    /// no `script` to run it (the caller skips).
    pub fn run_on_a_terminal(&self, args: &str, env: &[(&str, &str)]) -> Option<String> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let path = std::env::var_os("PATH")?;
        let script = std::env::split_paths(&path)
            .map(|d| d.join("script"))
            .find(|p| p.is_file())?;
        let mut cmd = Command::new(script);
        cmd.args([
            "-qec",
            &format!("'{}' {args}", self.bin.display()),
            "/dev/null",
        ])
        .env_clear()
        .env("PATH", &path)
        .env("HEARTH_HOME", self.home())
        .env("TERM", "xterm-256color")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `hearth ARGS` and returns its standard output, failing the test unless it
    /// succeeded.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let shown: Vec<String> = args
            .clone()
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let run = self.run(args);
        assert_eq!(
            run.code,
            Some(0),
            "hearth {shown:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// Runs `hearth ARGS --json` and parses its output.
    pub fn json<I, S>(&self, args: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        all.push("--json".into());
        let out = self.ok(all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
    }
}

/// Every file under `dir`, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("readable file");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` that contain `needle`, as bytes.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(path, _)| path)
        .collect()
}

/// A new profile (no passphrase) for `name` in `home`, for tests that drive the client
/// library directly.
pub fn new_profile(home: &Path, name: &str) -> hearth_client::Profile {
    hearth_client::Profile::create(
        home,
        name,
        hearth_client::Protection::None,
        hearth_doc::Millis::now(),
    )
    .expect("a new profile")
}

/// Writes one appreciation as the profile's person.
pub fn appreciate(profile: &mut hearth_client::Profile, text: &str) {
    let me = profile.person_id().clone();
    profile
        .write(|doc| doc.add_appreciation(&me, text, hearth_doc::Millis::now()))
        .expect("an appreciation is written");
}

/// Every appreciation's text, sorted, duplicates kept.
pub fn appreciations(profile: &hearth_client::Profile) -> Vec<String> {
    let mut texts: Vec<String> = profile
        .load()
        .expect("the profile loads")
        .appreciations()
        .into_iter()
        .map(|a| a.text)
        .collect();
    texts.sort();
    texts
}

/// A real relay on 127.0.0.1:0 with its SQLite file at a given path, for async tests.
#[derive(Debug)]
pub struct TestRelay {
    /// Its websocket URL.
    pub url: String,
    relay: hearth_relay::LocalRelay,
}

impl TestRelay {
    /// Starts it; it is bound (ready for clients) when this returns.
    pub async fn start(db: &Path) -> TestRelay {
        // It runs its own runtime, so start it off this one's workers.
        let db = db.to_owned();
        let relay = tokio::task::spawn_blocking(move || hearth_relay::LocalRelay::start(db))
            .await
            .expect("the relay's start-up task")
            .expect("the relay starts");
        TestRelay {
            url: relay.url().to_owned(),
            relay,
        }
    }

    /// Stops it and waits until its database is closed.
    pub async fn stop(self) {
        // Shutting down joins the relay's thread: keep that off this runtime's workers.
        tokio::task::spawn_blocking(move || drop(self.relay))
            .await
            .expect("the relay stops");
    }
}

/// A new device in `home`, joined to `inviter`'s space by an invite minted and accepted
/// over the real relay (as the partner named `name`, or as another device of the inviter's
/// person when `name` is `None`).
pub async fn invited(
    home: &Path,
    inviter: &mut hearth_client::Profile,
    name: Option<&str>,
) -> hearth_client::Profile {
    let t = std::time::Duration::from_secs(20);
    let role = if name.is_some() {
        hearth_proto::InviteRole::Partner
    } else {
        hearth_proto::InviteRole::OwnDevice
    };
    let code = hearth_client::sync::invite(inviter, role, std::time::Duration::from_secs(3600), t)
        .await
        .expect("an invite");
    hearth_client::sync::join(home, &code, name, hearth_client::Protection::None, t)
        .await
        .expect("the invite is accepted")
        .profile
}

/// A couple on `relay`: `first` creates a space there as `first_name`, and `second` joins
/// it as the partner `second_name` through a real invite.
pub async fn paired(first: &Path, first_name: &str, second: &Path, second_name: &str, relay: &str) {
    let mut profile = new_profile(first, first_name);
    profile
        .sync_book_mut()
        .start_space(relay)
        .expect("the space starts on the relay");
    hearth_client::sync::sync_once(&mut profile, std::time::Duration::from_secs(20))
        .await
        .expect("the first sync");
    invited(second, &mut profile, Some(second_name)).await;
}
