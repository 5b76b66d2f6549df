//! The store thread. rusqlite is blocking and a `Connection` is not `Sync`, so one thread
//! owns the store and async tasks hand it jobs over a bounded channel (backpressure: a
//! flood of pushes waits here instead of piling up in memory).
//!
//! Group commit: when the thread picks up a push it also takes every push already waiting
//! (up to `max_batch`) and commits them in one transaction, one fsync for all. Under load
//! that turns N fsyncs into one; alone, a push costs what it did. Every reply is sent only
//! after the commit returned, so a `Committed` built on it is always about data on disk.
//!
//! The signatures of a group are checked here too, as one batch
//! ([`hearth_proto::BatchVerifier`]), just before its commit: under load that halves the
//! cost of a check, and while this thread is busy with one group the next one gathers.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use hearth_proto::{BatchVerifier, SignatureCheck};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::store::{DeviceKey, Push, PushOutcome, SpaceKey, Storage, StoreError};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
type Work = Box<dyn FnOnce(&mut dyn Storage) + Send>;

/// What an envelope's author signed, and the signature, for the store thread to check
/// before it stores the envelope.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// The signed message (`Envelope::signed_message`).
    pub message: [u8; 32],
    /// The author's signature over it.
    pub signature: [u8; 64],
}

/// One push as the store thread holds it.
struct Pending {
    space: SpaceKey,
    device: DeviceKey,
    counter: u64,
    bytes: Arc<[u8]>,
    signed: Signed,
    /// When the relay read the push frame off the socket.
    received: Instant,
    reply: Reply<PushOutcome>,
}

enum Job {
    Push(Pending),
    Run(Work),
}

/// Counters and timings of the store thread, for metrics (registered in
/// [`crate::metrics`]). Each timing is observed once per push, as that push lived it: a
/// push in a group of ten waits for all ten signatures and the one transaction.
#[derive(Debug)]
pub struct StoreStats {
    /// Pushes taken into a transaction: stored, duplicates answered from the store, and
    /// those the store refused (over quota); not those whose signature failed.
    pub pushes: Counter,
    /// Transactions those pushes took.
    pub batches: Counter,
    /// From the push frame's arrival to the store thread taking it into a group: the
    /// connection's checks, then the queue behind other pushes and reads.
    pub wait: Histogram,
    /// Checking the group's signatures.
    pub verify: Histogram,
    /// The group's transaction, `fsync` included.
    pub write: Histogram,
    /// The store's completed WAL checkpoints, if it has them ([`Storage::checkpoints`]).
    pub checkpoints: Option<Counter>,
}

impl Default for StoreStats {
    fn default() -> Self {
        Self {
            pushes: Counter::default(),
            batches: Counter::default(),
            wait: crate::metrics::latency_histogram(),
            verify: crate::metrics::latency_histogram(),
            write: crate::metrics::latency_histogram(),
            checkpoints: None,
        }
    }
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
            Job::Push(p) => write!(f, "Push(counter {}, {} bytes)", p.counter, p.bytes.len()),
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
        let stats = Arc::new(StoreStats {
            checkpoints: store.checkpoints(),
            ..StoreStats::default()
        });
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("hearth-relay-store".into())
            .spawn(move || {
                let mut verifier = BatchVerifier::new();
                let mut next = rx.blocking_recv();
                while let Some(job) = next.take() {
                    match job {
                        Job::Run(work) => work(&mut store),
                        push @ Job::Push(_) => {
                            let mut batch = vec![push];
                            while batch.len() < max_batch.max(1) {
                                match rx.try_recv() {
                                    Ok(p @ Job::Push(_)) => batch.push(p),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            commit(&mut store, &mut verifier, batch, &thread_stats);
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

    /// Checks `device`'s signature and stores one envelope (checked and group-committed
    /// with whatever else is waiting); `received` is when its frame arrived, for the
    /// timings.
    ///
    /// # Errors
    /// [`StoreError::BadSignature`] if `signed` is not `device`'s signature; what the store
    /// refuses; [`StoreError::Unavailable`] if the store thread stopped.
    pub async fn push(
        &self,
        space: SpaceKey,
        device: DeviceKey,
        counter: u64,
        bytes: Arc<[u8]>,
        signed: Signed,
        received: Instant,
    ) -> Result<PushOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Push(Pending {
                space,
                device,
                counter,
                bytes,
                signed,
                received,
                reply,
            }))
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

fn commit(
    store: &mut dyn Storage,
    verifier: &mut BatchVerifier,
    batch: Vec<Job>,
    stats: &StoreStats,
) {
    let taken = Instant::now();
    let pending: Vec<Pending> = batch
        .into_iter()
        .filter_map(|job| match job {
            Job::Push(p) => Some(p),
            Job::Run(_) => None,
        })
        .collect();
    for p in &pending {
        stats
            .wait
            .observe(taken.saturating_duration_since(p.received).as_secs_f64());
    }
    let checks: Vec<SignatureCheck<'_>> = pending
        .iter()
        .map(|p| SignatureCheck {
            key: &p.device,
            message: &p.signed.message,
            signature: &p.signed.signature,
        })
        .collect();
    let verdicts = verifier.verify(&checks);
    drop(checks);
    let verified = Instant::now();
    let verify = (verified - taken).as_secs_f64();
    let mut genuine = Vec::with_capacity(pending.len());
    for (p, verdict) in pending.into_iter().zip(verdicts) {
        stats.verify.observe(verify);
        match verdict {
            Ok(()) => genuine.push(p),
            Err(_) => {
                let _ = p.reply.send(Err(StoreError::BadSignature));
            }
        }
    }
    if genuine.is_empty() {
        return;
    }
    let pushes: Vec<Push<'_>> = genuine
        .iter()
        .map(|p| Push {
            space: &p.space,
            device: &p.device,
            counter: p.counter,
            bytes: &p.bytes,
        })
        .collect();
    let outcomes = store.push_batch(&pushes);
    let write = verified.elapsed().as_secs_f64();
    stats
        .pushes
        .inc_by(u64::try_from(pushes.len()).unwrap_or(u64::MAX));
    stats.batches.inc();
    drop(pushes);
    for (p, outcome) in genuine.into_iter().zip(outcomes) {
        stats.write.observe(write);
        // The pusher may have gone; its data is stored all the same.
        let _ = p.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::store::{SqliteStore, StoreLimits};

    const SPACE: SpaceKey = [3; 16];

    /// Device `device`'s key and its signature over a message naming `counter`.
    fn signed(device: u8, counter: u64) -> (DeviceKey, Signed) {
        let signer = SigningKey::from_bytes(&[device; 32]);
        let mut message = [device; 32];
        message[..8].copy_from_slice(&counter.to_be_bytes());
        let signature = signer.sign(&message).to_bytes();
        (
            signer.verifying_key().to_bytes(),
            Signed { message, signature },
        )
    }

    /// The store thread, held busy by a job until released.
    struct Held {
        release: std::sync::mpsc::Sender<()>,
        task: tokio::task::JoinHandle<Result<(), StoreError>>,
    }

    impl Held {
        async fn start(store: &StoreHandle) -> Held {
            let (release, hold) = std::sync::mpsc::channel::<()>();
            let (started, is_holding) = oneshot::channel::<()>();
            let holder = store.clone();
            let task = tokio::spawn(async move {
                holder
                    .run(move |_| {
                        let _ = started.send(());
                        let _ = hold.recv();
                        Ok(())
                    })
                    .await
            });
            is_holding.await.unwrap();
            Held { release, task }
        }

        /// Lets the store thread go once `n` jobs wait behind it (the channel holds them
        /// all: wait for that, not for time).
        async fn release_once_queued(self, store: &StoreHandle, n: usize) {
            while store.jobs.capacity() > 1024 - n {
                tokio::task::yield_now().await;
            }
            self.release.send(()).unwrap();
            self.task.await.unwrap().unwrap();
        }
    }

    async fn push(store: &StoreHandle, device: u8, counter: u64) -> Result<u64, StoreError> {
        let (key, signed) = signed(device, counter);
        let bytes: Arc<[u8]> = Arc::from(format!("{device}-{counter}").into_bytes());
        Ok(store
            .push(SPACE, key, counter, bytes, signed, Instant::now())
            .await?
            .seq)
    }

    fn spawn(dir: &tempfile::TempDir) -> (StoreHandle, JoinHandle<()>) {
        let mut store =
            SqliteStore::open(&dir.path().join("relay.db"), StoreLimits::default()).unwrap();
        store.create_space(&SPACE, b"genesis", 0, None).unwrap();
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
                    push(&store, device, counter).await.unwrap()
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
        let held = Held::start(&store).await;
        let mut tasks = Vec::new();
        for counter in 0..50u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { push(&store, 1, counter).await }));
        }
        held.release_once_queued(&store, 50).await;
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.stats().pushes.get(), 50);
        assert_eq!(store.stats().batches.get(), 1, "one transaction for all");
        drop(store);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_forged_push_in_a_group_is_refused_and_the_rest_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = spawn(&dir);
        let held = Held::start(&store).await;
        let mut tasks = Vec::new();
        for counter in 0..10u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (key, mut signed) = signed(1, counter);
                if counter == 4 {
                    // Device 2's signature, claimed for device 1's envelope.
                    signed.signature = super::tests::signed(2, counter).1.signature;
                }
                let bytes: Arc<[u8]> = Arc::from(format!("1-{counter}").into_bytes());
                store
                    .push(SPACE, key, counter, bytes, signed, Instant::now())
                    .await
            }));
        }
        held.release_once_queued(&store, 10).await;
        let mut stored = 0;
        for (counter, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Err(StoreError::BadSignature) => assert_eq!(counter, 4),
                Ok(_) => stored += 1,
                Err(e) => panic!("push {counter}: {e}"),
            }
        }
        assert_eq!(stored, 9);
        let head = store.run(|s| s.head(&SPACE)).await.unwrap();
        assert_eq!(head, 9, "only the nine genuine envelopes are stored");
        assert_eq!(
            store.stats().batches.get(),
            1,
            "checked and committed as one group"
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
        let err = push(&store, 1, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }
}
