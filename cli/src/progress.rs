//! A small spinner for the moments `hearth sync` or `hearth export` take a while: it
//! appears on standard error only after a second (a quick command shows nothing at all),
//! only when standard error is a terminal, and never with `--quiet`. Whatever it drew is
//! erased before the command prints its result.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::session::Session;

/// How long a command runs before the spinner appears.
const DELAY: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A spinner that may appear while this value lives; dropping it erases the spinner.
#[derive(Debug)]
pub struct Progress {
    stop: Option<Sender<()>>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the clock on a spinner labelled `message` (e.g. "Syncing…").
    pub fn after_a_second(session: &Session, message: &str) -> Self {
        if session.quiet || !std::io::stderr().is_terminal() {
            return Self {
                stop: None,
                drawer: None,
            };
        }
        let (stop, stopped) = mpsc::channel();
        let message = message.to_owned();
        let drawer = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || draw(&stopped, &message))
            .ok();
        Self {
            stop: Some(stop),
            drawer,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Dropping the sender wakes the drawer at once.
        drop(self.stop.take());
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

fn draw(stopped: &mpsc::Receiver<()>, message: &str) {
    if !matches!(stopped.recv_timeout(DELAY), Err(RecvTimeoutError::Timeout)) {
        return;
    }
    let term = console::Term::stderr();
    for frame in FRAMES.iter().cycle() {
        if term.write_str(&format!("\r{frame} {message}")).is_err() {
            break;
        }
        if !matches!(stopped.recv_timeout(TICK), Err(RecvTimeoutError::Timeout)) {
            break;
        }
    }
    let _ = term.clear_line();
}
