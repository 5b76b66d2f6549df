//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the write-ahead log past
//! 1,000 pages: that commit copies every page back into the database file and `fsync`s it
//! before it returns, so one push in a few hundred waited for all of it (measured apart
//! from the relay, 20,000 back-to-back commits of the relay's row shape: p99.9 4.7 ms with
//! the automatic checkpoint, 1.6 ms with this thread; docs/performance.md). Here the
//! store's connection has no automatic checkpoint; its WAL hook, which SQLite calls after
//! each commit with the log's size, wakes a thread of its own that runs a `PASSIVE`
//! checkpoint on its own connection. A passive checkpoint never blocks the writer: commits
//! go on appending to the log while it copies what was committed before, and the log
//! starts again from its beginning at the first commit after a checkpoint that copied
//! everything. Under commits without a pause that moment never comes, so a commit that
//! finds the log at twice the threshold, with the thread between checkpoints, copies the
//! rest itself (the thread copied most of it already) and is not woken for it. Durability is the log's, as before: a commit is on disk once its frames are
//! (`synchronous = FULL`); a checkpoint that fails (a full disk) only leaves them there, and
//! the next one tries again.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use rusqlite::Connection;

use super::StoreError;

/// Log pages (of the database's page size) past which a checkpoint is asked for: SQLite's
/// own automatic threshold.
pub(crate) const CHECKPOINT_PAGES: i32 = 1000;

/// The checkpoint thread, and the wake-up the store's WAL hook sends it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
    completed: Counter,
}

impl Checkpointer {
    /// Turns off `writer`'s automatic checkpoint and starts the thread that checkpoints the
    /// database at `path` instead, woken by `writer`'s commits once the log holds
    /// [`CHECKPOINT_PAGES`] pages. It ends when `writer` is closed.
    ///
    /// # Errors
    /// A database error opening the second connection, or no thread.
    pub(crate) fn start(writer: &mut Connection, path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (wake, woken) = sync_channel::<()>(1);
        let completed = Counter::default();
        let counted = completed.clone();
        let working = Arc::new(AtomicBool::new(false));
        let at_work = Arc::clone(&working);
        let thread = std::thread::Builder::new()
            .name("hearth-relay-checkpoint".into())
            .spawn(move || run(&conn, &woken, &counted, &at_work))
            .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
        // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
        writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
            if pages < 2 * CHECKPOINT_PAGES {
                if pages >= CHECKPOINT_PAGES {
                    wake_up(&wake);
                }
                return Ok(());
            }
            // Under commits without a pause the thread never finds the log all copied with
            // no commit after it, and the log only starts again from its beginning then:
            // once the thread is between checkpoints, this commit copies what it has not
            // (little: it kept copying), and the next commit starts the log again. While
            // the thread is at work SQLite would refuse a second checkpoint (busy): the
            // next commit tries.
            if !working.load(Ordering::Acquire) {
                match wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE) {
                    Ok(_) => {}
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
                    Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed; the log keeps the data and grows until one succeeds"),
                }
            }
            Ok(())
        }))?;
        Ok(Self {
            thread: Some(thread),
            completed,
        })
    }

    /// Checkpoints completed so far (each copied every frame it found committed).
    pub(crate) fn completed(&self) -> Counter {
        self.completed.clone()
    }

    /// Removes `writer`'s hook, and with it the wake-up, so the thread ends; waits for it.
    pub(crate) fn stop(&mut self, writer: &mut Connection) {
        let none: Option<fn(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()>> =
            None;
        if let Err(e) = writer.wal_hook(none) {
            tracing::warn!(error = %e, "could not remove the WAL hook");
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asks for a checkpoint: one already asked for and not started yet covers this one, and
/// a thread that is gone cannot take it (the store is closing).
fn wake_up(wake: &SyncSender<()>) {
    let _ = wake.try_send(());
}

fn run(conn: &Connection, woken: &Receiver<()>, completed: &Counter, working: &AtomicBool) {
    while woken.recv().is_ok() {
        working.store(true, Ordering::Release);
        let started = Instant::now();
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match result {
            Ok((busy, log, copied)) => {
                tracing::debug!(
                    busy,
                    log,
                    copied,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "checkpoint"
                );
                if busy == 0 && copied == log {
                    completed.inc();
                }
            }
            // The frames stay in the log, on disk; the next commit past the threshold asks
            // again.
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the log keeps the data and grows until one succeeds")
            }
        }
        working.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::CHECKPOINT_PAGES;
    use crate::store::{Push, SqliteStore, Storage, StoreLimits};

    const SPACE: [u8; 16] = [7; 16];

    fn wal_bytes(db: &Path) -> u64 {
        std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len())
    }

    /// Pushes `n` envelopes of 4 KiB, 16 to a transaction, from counter `from` on.
    fn fill(store: &mut SqliteStore, from: u64, n: u64) {
        let device = [1; 32];
        let bytes = vec![0x5a; 4096];
        for start in (from..from + n).step_by(16) {
            let pushes: Vec<Push<'_>> = (start..(start + 16).min(from + n))
                .map(|counter| Push {
                    space: &SPACE,
                    device: &device,
                    counter,
                    bytes: &bytes,
                })
                .collect();
            for outcome in store.push_batch(&pushes) {
                outcome.unwrap();
            }
        }
    }

    #[test]
    fn the_log_is_checkpointed_by_its_own_thread_and_starts_again_from_its_beginning() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("relay.db");
        let mut store = SqliteStore::open(&db, StoreLimits::default()).unwrap();
        store.create_space(&SPACE, b"genesis", 0, None).unwrap();
        let completed = store.checkpoints().unwrap();
        // Past the threshold: ~1,200 pages of envelopes (and their index pages).
        fill(&mut store, 0, 1200);
        let grown = wal_bytes(&db);
        assert!(
            grown > u64::from(CHECKPOINT_PAGES.unsigned_abs()) * 4096,
            "{grown}"
        );
        let waited = std::time::Instant::now();
        while completed.get() == 0 {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(30),
                "no checkpoint completed"
            );
            std::thread::yield_now();
        }
        // Three times as much again, without a pause: the log would hold all of it (over
        // 24 MiB) if it never started again from its beginning.
        fill(&mut store, 1200, 3600);
        let after = wal_bytes(&db);
        let bound = 3 * u64::from(CHECKPOINT_PAGES.unsigned_abs()) * 4096;
        assert!(
            after <= bound,
            "the log grew from {grown} to {after} bytes, past {bound}"
        );
        // Everything is there, and the thread ends with the store.
        assert_eq!(store.head(&SPACE).unwrap(), 4800);
        drop(store);
        let reopened = SqliteStore::open(&db, StoreLimits::default()).unwrap();
        assert_eq!(reopened.head(&SPACE).unwrap(), 4800);
    }
}
