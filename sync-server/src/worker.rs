//! The store thread. rusqlite is blocking and a `Connection` is not `Sync`, so one thread
//! owns the store and async tasks hand it jobs over a bounded channel (backpressure: a
//! flood of pushes waits here instead of piling up in memory).
//!
//! Group commit: when the thread picks up a push it also takes every push already waiting
//! (up to `max_batch`) and commits them in one transaction, one fsync for all. Under load
//! that turns N fsyncs into one; alone, a push costs what it did. Every reply is sent only
//! after the commit returned, so a `Committed` built on it is always about data on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::store::{DeviceKey, Push, PushOutcome, SpaceKey, Storage, StoreError};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
type Work = Box<dyn FnOnce(&mut dyn Storage) + Send>;

enum Job {
    Push {
        space: SpaceKey,
        device: DeviceKey,
        counter: u64,
        bytes: Arc<[u8]>,
        reply: Reply<PushOutcome>,
    },
    Run(Work),
}

/// Counters about the store thread, for metrics.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Pushes committed (including duplicates answered from the store).
    pub pushes: AtomicU64,
    /// Transactions those pushes took.
    pub batches: AtomicU64,
}

/// A cheap, cloneable handle to the store thread.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    jobs: mpsc::Sender<Job>,
    stats: Arc<StoreStats>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Push { counter, bytes, .. } => {
                write!(f, "Push(counter {counter}, {} bytes)", bytes.len())
            }
            Job::Run(_) => f.write_str("Run"),
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the relay's store has stopped".into())
}

impl StoreHandle {
    /// Starts the store thread. It ends once every handle is dropped, after finishing the
    /// jobs already queued; join the returned handle to wait for that.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(
        mut store: impl Storage + 'static,
        queue: usize,
        max_batch: usize,
    ) -> std::io::Result<(StoreHandle, JoinHandle<()>)> {
        let (jobs, mut rx) = mpsc::channel::<Job>(queue.max(1));
        let stats = Arc::new(StoreStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("hearth-relay-store".into())
            .spawn(move || {
                let mut next = rx.blocking_recv();
                while let Some(job) = next.take() {
                    match job {
                        Job::Run(work) => work(&mut store),
                        push @ Job::Push { .. } => {
                            let mut batch = vec![push];
                            while batch.len() < max_batch.max(1) {
                                match rx.try_recv() {
                                    Ok(p @ Job::Push { .. }) => batch.push(p),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            commit(&mut store, batch, &thread_stats);
                        }
                    }
                    if next.is_none() {
                        next = rx.blocking_recv();
                    }
                }
                tracing::debug!("store thread stopped");
            })?;
        Ok((StoreHandle { jobs, stats }, thread))
    }

    /// Stores one envelope (group-committed with whatever else is waiting).
    ///
    /// # Errors
    /// What the store refuses; [`StoreError::Unavailable`] if the store thread stopped.
    pub async fn push(
        &self,
        space: SpaceKey,
        device: DeviceKey,
        counter: u64,
        bytes: Arc<[u8]>,
    ) -> Result<PushOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Push {
                space,
                device,
                counter,
                bytes,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `work` on the store thread, in order with the pushes around it.
    ///
    /// # Errors
    /// What `work` returns; [`StoreError::Unavailable`] if the store thread stopped.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn Storage) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Run(Box::new(move |store: &mut dyn Storage| {
            let _ = reply.send(work(store));
        }));
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The store thread's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
}

fn commit(store: &mut dyn Storage, batch: Vec<Job>, stats: &StoreStats) {
    let mut replies = Vec::with_capacity(batch.len());
    let mut owned = Vec::with_capacity(batch.len());
    for job in batch {
        if let Job::Push {
            space,
            device,
            counter,
            bytes,
            reply,
        } = job
        {
            owned.push((space, device, counter, bytes));
            replies.push(reply);
        }
    }
    let pushes: Vec<Push<'_>> = owned
        .iter()
        .map(|(space, device, counter, bytes)| Push {
            space,
            device,
            counter: *counter,
            bytes,
        })
        .collect();
    let outcomes = store.push_batch(&pushes);
    stats
        .pushes
        .fetch_add(pushes.len() as u64, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // The pusher may have gone; its data is stored all the same.
        let _ = reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, StoreLimits};

    const SPACE: SpaceKey = [3; 16];

    fn spawn(dir: &tempfile::TempDir) -> (StoreHandle, JoinHandle<()>) {
        let mut store =
            SqliteStore::open(&dir.path().join("relay.db"), StoreLimits::default()).unwrap();
        store.create_space(&SPACE, b"genesis", 0).unwrap();
        StoreHandle::spawn(store, 1024, 256).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_get_a_dense_unique_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = spawn(&dir);
        let mut tasks = Vec::new();
        for device in 0..10u8 {
            for counter in 0..20u64 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let bytes: Arc<[u8]> = Arc::from(format!("{device}-{counter}").into_bytes());
                    store
                        .push(SPACE, [device; 32], counter, bytes)
                        .await
                        .unwrap()
                        .seq
                }));
            }
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        let head = store.run(|s| s.head(&SPACE)).await.unwrap();
        assert_eq!(head, 200);
        drop(store);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_pushes_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = spawn(&dir);
        // Hold the store thread until 50 pushes are queued behind it.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, is_holding) = oneshot::channel::<()>();
        let holder = store.clone();
        let held = tokio::spawn(async move {
            holder
                .run(move |_| {
                    let _ = started.send(());
                    let _ = hold.recv();
                    Ok(())
                })
                .await
        });
        is_holding.await.unwrap();
        let mut tasks = Vec::new();
        for counter in 0..50u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .push(SPACE, [1; 32], counter, Arc::from(&b"x"[..]))
                    .await
            }));
        }
        // Every push is queued once the channel holds them all: wait for that, not for time.
        while store.jobs.capacity() > 1024 - 50 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.stats().pushes.load(Ordering::Relaxed), 50);
        assert_eq!(
            store.stats().batches.load(Ordering::Relaxed),
            1,
            "one transaction for all"
        );
        drop(store);
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn a_stopped_store_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = spawn(&dir);
        let crashing = store.clone();
        // A job that panics takes the store thread down, as a crash would.
        let _ = crashing
            .run(|_| -> Result<(), StoreError> { panic!("simulated store crash") })
            .await;
        assert!(thread.join().is_err());
        let err = store
            .push(SPACE, [1; 32], 1, Arc::from(&b"x"[..]))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }
}
