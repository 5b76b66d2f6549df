//! The driver of the end-to-end tests: a fresh profile directory per test and a way to run
//! the real `hearth` program in it, without a terminal, the way a script would. What the
//! tests share beyond the program (keys, a relay, a paired couple) is in hearth-testkit.
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
