//! The relay workloads of the peer benchmark (`HEARTH_PEER_DIR`, see `compare`), against a
//! real `hearth-relay` process on loopback: fan-out latency, throughput with a bounded
//! in-flight window, relay CPU per delivered entry, relay memory, idle connections.
//!
//! The load clients are in memory, like the peer's (automerge-repo clients without storage),
//! but otherwise the real thing: each pair is a space with a signed ACL (Genesis, Invite,
//! AddDevice), partner A writes a journal entry into its Automerge document and pushes the
//! change sealed and signed as an envelope under the space key; partner B verifies the
//! signature, decrypts and applies it to its own document, and only then counts it as
//! delivered. Timing and pacing follow `loadgen.mjs` (see docs/performance.md).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hearth_crypto::{DeviceKeys, EpochKey, InviteCode, envelope, sign_login, sign_record};
use hearth_doc::{JournalDraft, Millis, PersonId, SpaceDoc};
use hearth_proto::{
    AclBody, ClientFrame, Envelope, EnvelopeHeader, EnvelopeKind, InviteId, InviteRole, Limits,
    PROTOCOL_VERSION, RelayFrame, SpaceId, decode_relay, encode_client,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::stages::{RelaySnapshot, Stat};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A `hearth-relay` child process with its own database folder.
#[derive(Debug)]
pub struct RelayProcess {
    child: Child,
    /// `ws://127.0.0.1:PORT/v1/sync`.
    pub url: String,
}

impl RelayProcess {
    /// Starts `bin --listen 127.0.0.1:0 --db DIR/relay.db` and waits for its
    /// `listening on ADDR` line.
    ///
    /// # Errors
    /// If it cannot start or never says where it listens.
    pub fn start(bin: &Path, dir: &Path) -> Result<RelayProcess> {
        std::fs::create_dir_all(dir)?;
        RelayProcess::start_at(bin, &dir.join("relay.db"), "127.0.0.1:0")
    }

    /// Starts `bin --listen LISTEN --db DB` and waits for its `listening on ADDR` line.
    ///
    /// # Errors
    /// If it cannot start, exits, or never says where it listens.
    pub fn start_at(bin: &Path, db: &Path, listen: &str) -> Result<RelayProcess> {
        let mut child = Command::new(bin)
            .args(["--listen", listen, "--db"])
            .arg(db)
            .env("RUST_LOG", "warn")
            // Every pair comes from 127.0.0.1: no per-address limit on creating spaces (the
            // attacks measure refusals with the limits on failed logins as shipped).
            .env("HEARTH_RELAY_PER_ADDRESS__CREATIONS_PER_HOUR", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the relay's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                bail!("the relay exited before listening ({status})");
            };
            if let Some(addr) = line?.strip_prefix("listening on ") {
                break addr.trim().to_owned();
            }
        };
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(RelayProcess {
            child,
            url: format!("ws://{addr}/v1/sync"),
        })
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> &str {
        self.url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB (`VmRSS`).
    ///
    /// # Errors
    /// If /proc cannot be read.
    pub fn rss_kb(&self) -> Result<u64> {
        proc_status_kb(self.pid(), "VmRSS")
    }

    /// The most resident memory it has had, in KiB (`VmHWM`).
    ///
    /// # Errors
    /// If /proc cannot be read.
    pub fn peak_rss_kb(&self) -> Result<u64> {
        proc_status_kb(self.pid(), "VmHWM")
    }

    /// Whether it is still running (it has not exited on its own).
    ///
    /// # Errors
    /// If its status cannot be read.
    pub fn running(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    /// SIGKILLs it and reaps it.
    ///
    /// # Errors
    /// If it cannot be signalled or had already exited on its own.
    pub fn kill(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the relay had exited on its own ({status})");
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// CPU time used so far (user + system, all threads), at /proc's 10 ms resolution (the
    /// peer harness reads it the same way).
    ///
    /// # Errors
    /// If /proc cannot be read.
    pub fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the parenthesised command name; utime and stime are fields 14, 15.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("unexpected /proc/PID/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<u64> {
            fields
                .get(i)
                .and_then(|v| v.parse().ok())
                .context("unexpected /proc/PID/stat")
        };
        // `rest` starts at field 3 (state), so field n is at index n - 3.
        Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
    }

    /// Stops it with SIGTERM and waits (it shuts down gracefully).
    ///
    /// # Errors
    /// If it cannot be signalled.
    pub fn stop(mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for RelayProcess {
    /// A relay left running (a run that failed half-way) is killed, not orphaned.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of `/proc/PID/status` given in kB (`VmRSS`, `VmHWM`…).
fn proc_status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The relay's `hearth_relay_connections_open`, from `/metrics` at `host` (`ADDR:PORT`).
///
/// # Errors
/// If the relay does not answer or the gauge is missing.
pub async fn open_connections(host: &str) -> Result<u64> {
    let body = crate::stages::scrape(host).await?;
    body.lines()
        .find_map(|l| l.strip_prefix("hearth_relay_connections_open "))
        .and_then(|v| v.trim().parse().ok())
        .context("no hearth_relay_connections_open in /metrics")
}

/// One websocket conversation, split so a reader task can drain it.
struct Conn {
    sink: SplitSink<Socket, Message>,
    stream: SplitStream<Socket>,
    relay_id: [u8; 16],
    nonce: [u8; 32],
}

fn encode(frame: &ClientFrame) -> Result<Message> {
    let bytes = encode_client(frame, Limits::default().frame_bytes())
        .map_err(|e| anyhow!("encoding a frame: {e}"))?;
    Ok(Message::Binary(bytes.into()))
}

async fn recv(stream: &mut SplitStream<Socket>) -> Result<RelayFrame> {
    loop {
        match stream.next().await.context("the relay closed")?? {
            Message::Binary(bytes) => {
                let frame = decode_relay(&bytes, Limits::default().frame_bytes())
                    .map_err(|e| anyhow!("an unreadable frame: {e}"))?;
                if let RelayFrame::Reject { code, message } = frame {
                    bail!("the relay refused ({code:?}): {message}");
                }
                return Ok(frame);
            }
            Message::Close(_) => bail!("the relay closed"),
            _ => {}
        }
    }
}

impl Conn {
    async fn open(url: &str) -> Result<Conn> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            url,
            Some(hearth_client::sync::websocket_config()),
            true,
        )
        .await?;
        let (mut sink, mut stream) = ws.split();
        sink.send(encode(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            client: "hearth-bench".into(),
        })?)
        .await?;
        match recv(&mut stream).await? {
            RelayFrame::Challenge {
                relay_id, nonce, ..
            } => Ok(Conn {
                sink,
                stream,
                relay_id,
                nonce,
            }),
            other => bail!("expected Challenge, got {other:?}"),
        }
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        self.sink.send(encode(frame)?).await?;
        Ok(())
    }

    async fn request(&mut self, frame: &ClientFrame) -> Result<RelayFrame> {
        self.send(frame).await?;
        recv(&mut self.stream).await
    }

    async fn login(&mut self, device: &DeviceKeys, space: &SpaceId) -> Result<Vec<Vec<u8>>> {
        let time_ms = u64::try_from(Millis::now().0).unwrap_or(0);
        let (key, signature) =
            sign_login(device, &self.relay_id, &self.nonce, time_ms, space, false);
        match self
            .request(&ClientFrame::Auth {
                device: hearth_proto::DeviceId::from_bytes(key),
                space: *space,
                time_ms,
                signature,
                as_invite: false,
            })
            .await?
        {
            RelayFrame::AclChanged { records } => Ok(records),
            other => bail!("expected AclChanged, got {other:?}"),
        }
    }
}

/// A's side of a pair: its keys, document and connection (writes only; a reader task
/// drains the relay's `Committed` answers).
struct Writer {
    keys: DeviceKeys,
    key: EpochKey,
    space: SpaceId,
    person: PersonId,
    doc: SpaceDoc,
    pushed: Vec<hearth_doc::ChangeHash>,
    counter: u64,
    /// Bytes of every envelope pushed so far, as encoded on the wire.
    wire_bytes: u64,
    sink: SplitSink<Socket, Message>,
}

impl Writer {
    /// Writes one ~200-byte journal entry and pushes it; returns the envelope's counter.
    async fn write(&mut self, text: &str) -> Result<u64> {
        self.add(text)?;
        self.push().await
    }

    /// Adds one ~200-byte journal entry to A's document; the next push carries it.
    fn add(&mut self, text: &str) -> Result<()> {
        let draft = JournalDraft {
            body: text.to_owned(),
            ..JournalDraft::default()
        };
        self.doc.add_journal(&self.person, &draft, Millis::now())?;
        Ok(())
    }

    /// Pushes every change since the last push as one envelope, as the client's outbox
    /// does; returns the envelope's counter.
    async fn push(&mut self) -> Result<u64> {
        let changes = self.doc.changes_since(&self.pushed);
        self.pushed = self.doc.heads();
        self.counter += 1;
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space: self.space,
            epoch: 0,
            author: self.keys.device_id(),
            counter: self.counter,
        };
        let sealed = envelope::seal(&self.keys, &self.key, header, &changes)?.encode();
        self.wire_bytes += sealed.len() as u64;
        self.sink
            .send(encode(&ClientFrame::Push { envelope: sealed })?)
            .await?;
        Ok(self.counter)
    }
}

/// What the readers report: when the entries of each (pair, envelope counter) were
/// delivered to B.
#[derive(Default)]
struct Deliveries {
    /// When each entry an envelope carries was written.
    sent: HashMap<(usize, u64), Vec<Instant>>,
    latencies: Vec<Duration>,
    delivered: usize,
    counted: usize,
    count_from: Option<Instant>,
    count_until: Option<Instant>,
    /// Entries B has, per pair, since the last reset.
    seen_per_pair: Vec<u64>,
    /// When A's push of (pair, envelope counter) was on its socket (latency runs only).
    pushed: HashMap<(usize, u64), Instant>,
    /// Each envelope B applied, with its stages.
    arrivals: Vec<Arrival>,
}

/// One envelope's way through B, as B's reader timed it.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    pair: usize,
    counter: u64,
    /// When its (first) entry was written, if this run recorded it.
    written: Option<Instant>,
    /// B read the frame.
    received: Instant,
    /// B decoded the envelope and checked its signature.
    verified: Instant,
    /// B decrypted it.
    opened: Instant,
    /// B applied it to its document.
    applied: Instant,
}

/// The deliveries, a wake-up for any delivery and one per pair (so a delivery wakes only
/// its own writer).
type Shared = Arc<(Mutex<Deliveries>, Notify, Vec<Notify>)>;

/// K pairs, connected and live.
pub struct Pairs {
    writers: Vec<Writer>,
    shared: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Pairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairs")
            .field("pairs", &self.writers.len())
            .finish_non_exhaustive()
    }
}

async fn pair(
    url: &str,
    index: usize,
    shared: Shared,
) -> Result<(Writer, [tokio::task::JoinHandle<()>; 2])> {
    let a = DeviceKeys::generate()?;
    let b = DeviceKeys::generate()?;
    let key = EpochKey::generate()?;
    let space = SpaceId::from_bytes(hearth_crypto::random_bytes()?);
    let invite = InviteCode::generate(url, *space.as_bytes())?;
    let invite = invite.keys();
    let genesis = sign_record(
        [0; 32],
        AclBody::Genesis {
            space,
            device: a.device_id(),
            recipient: a.recipient_bytes()?,
            epoch: 0,
            key_check: key.check(&space, 0),
        },
        &[&a],
    )?;
    let offer = sign_record(
        genesis.hash(),
        AclBody::Invite {
            invite: InviteId::from_bytes(invite.invite_id()),
            expires_at_ms: u64::MAX,
            role: InviteRole::Partner,
            by: a.device_id(),
        },
        &[&a],
    )?;
    let add = sign_record(
        offer.hash(),
        AclBody::AddDevice {
            device: b.device_id(),
            recipient: b.recipient_bytes()?,
            invite: InviteId::from_bytes(invite.invite_id()),
        },
        &[&b, &invite],
    )?;

    let mut conn_a = Conn::open(url).await?;
    conn_a.login(&a, &space).await?;
    for frame in [
        ClientFrame::CreateSpace {
            genesis: genesis.encode(),
            token: None,
        },
        ClientFrame::PutAcl {
            record: offer.encode(),
        },
        ClientFrame::PutAcl {
            record: add.encode(),
        },
    ] {
        match conn_a.request(&frame).await? {
            RelayFrame::AclChanged { .. } => {}
            other => bail!("expected AclChanged, got {other:?}"),
        }
    }
    let mut conn_b = Conn::open(url).await?;
    conn_b.login(&b, &space).await?;
    conn_b
        .send(&ClientFrame::Subscribe {
            space,
            since_seq: 0,
        })
        .await?;
    match recv(&mut conn_b.stream).await? {
        RelayFrame::Batch { .. } => {}
        other => bail!("expected Batch, got {other:?}"),
    }

    let person = PersonId::random();
    let doc = SpaceDoc::create(a.device_id().as_bytes(), &person, "A", Millis::now())?;
    let Conn {
        sink: sink_a,
        stream: mut stream_a,
        ..
    } = conn_a;
    // A's answers (Committed) are drained and dropped; reading also answers the relay's pings.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream_a.next().await {} });
    let Conn {
        sink: mut sink_b,
        stream: mut stream_b,
        ..
    } = conn_b;
    let reader_key = key.clone();
    let reader = tokio::spawn(async move {
        let mut doc = match SpaceDoc::replica(b.device_id().as_bytes()) {
            Ok(doc) => doc,
            Err(_) => return,
        };
        while let Ok(frame) = recv(&mut stream_b).await {
            let received = Instant::now();
            let RelayFrame::Event {
                envelope: bytes, ..
            } = frame
            else {
                continue;
            };
            // Verify, decrypt, apply: only then is it delivered.
            let Ok(envelope) = Envelope::decode(&bytes).and_then(Envelope::into_verified) else {
                continue;
            };
            let verified = Instant::now();
            let Ok(plain) = envelope::open_verified(&envelope, &space, 0, &reader_key) else {
                continue;
            };
            let opened = Instant::now();
            if doc.apply(&plain).is_err() {
                continue;
            }
            let now = Instant::now();
            let counter = envelope.header().counter;
            let (lock, notify, per_pair) = &*shared;
            if let Ok(mut d) = lock.lock() {
                let written = d.sent.remove(&(index, counter)).unwrap_or_default();
                d.arrivals.push(Arrival {
                    pair: index,
                    counter,
                    written: written.first().copied(),
                    received,
                    verified,
                    opened,
                    applied: now,
                });
                let entries = written.len();
                d.latencies
                    .extend(written.iter().map(|sent| now.duration_since(*sent)));
                d.delivered += entries;
                let in_window = d.count_from.is_some_and(|from| now >= from)
                    && d.count_until.is_none_or(|until| now <= until);
                if in_window {
                    d.counted += entries;
                }
                if let Some(seen) = d.seen_per_pair.get_mut(index) {
                    *seen += entries as u64;
                }
            }
            notify.notify_waiters();
            if let Some(pair) = per_pair.get(index) {
                pair.notify_waiters();
            }
        }
        let _ = sink_b.close().await;
    });
    Ok((
        Writer {
            keys: a,
            key,
            space,
            person,
            doc,
            pushed: Vec::new(),
            counter: 0,
            wire_bytes: 0,
            sink: sink_a,
        },
        [drain, reader],
    ))
}

impl Pairs {
    /// Sets up `k` pairs (a few at a time, as the peer does) and pushes each A's initial
    /// document to its B, so measured writes carry one entry each.
    ///
    /// # Errors
    /// If the relay refuses or a connection fails.
    pub async fn connect(url: &str, k: usize) -> Result<Pairs> {
        let shared: Shared = Arc::new((
            Mutex::new(Deliveries {
                seen_per_pair: vec![0; k],
                ..Deliveries::default()
            }),
            Notify::new(),
            (0..k).map(|_| Notify::new()).collect(),
        ));
        let mut writers = Vec::with_capacity(k);
        let mut tasks = Vec::with_capacity(2 * k);
        for start in (0..k).step_by(20) {
            let batch = (start..(start + 20).min(k))
                .map(|i| pair(url, i, Arc::clone(&shared)))
                .collect::<Vec<_>>();
            for result in futures_util::future::join_all(batch).await {
                let (writer, handles) = result?;
                writers.push(writer);
                tasks.extend(handles);
            }
        }
        let mut pairs = Pairs {
            writers,
            shared,
            tasks,
        };
        for (i, w) in pairs.writers.iter_mut().enumerate() {
            if let Ok(mut d) = pairs.shared.0.lock() {
                d.sent.insert((i, w.counter + 1), vec![Instant::now()]);
            }
            w.push().await?;
        }
        pairs.wait_delivered(k, Duration::from_secs(60)).await?;
        pairs.reset();
        Ok(pairs)
    }

    fn reset(&self) {
        if let Ok(mut d) = self.shared.0.lock() {
            d.sent.clear();
            d.latencies.clear();
            d.delivered = 0;
            d.counted = 0;
            d.count_from = None;
            d.count_until = None;
            d.seen_per_pair.iter_mut().for_each(|seen| *seen = 0);
            d.pushed.clear();
            d.arrivals.clear();
        }
    }

    async fn wait_delivered(&self, n: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.shared.1.notified();
            let delivered = self.shared.0.lock().map(|d| d.delivered).unwrap_or(0);
            if delivered >= n {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }

    /// Bytes of every envelope the writers pushed so far, as encoded on the wire.
    fn wire_bytes(&self) -> u64 {
        self.writers.iter().map(|w| w.wire_bytes).sum()
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Closes every connection.
    pub async fn close(mut self) {
        for w in &mut self.writers {
            let _ = w.sink.close().await;
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The text of one entry: 160 characters of words, about 200 bytes, like loadgen's.
fn entry_text(i: u64) -> String {
    let mut rng = crate::history::Rng::new(42 + i);
    let mut s = rng.prose(160);
    s.truncate(160);
    s
}

/// Latency figures, as loadgen reports them.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Writes sent.
    pub sent: usize,
    /// Writes not delivered within the drain time.
    pub lost: usize,
    /// Nearest-rank percentiles, in ms.
    pub p50_ms: f64,
    /// 95th.
    pub p95_ms: f64,
    /// 99th.
    pub p99_ms: f64,
    /// 99.9th.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Where the time went: the clients' stages, then the relay's (see [`crate::stages`]).
    pub stages: Vec<(&'static str, Stat)>,
    /// The slowest samples, each with its client stages in ms, slowest first.
    pub slowest: Vec<Value>,
    /// The interval between one pair's writes.
    pub interval_ms: u64,
    /// Relay CPU during the run.
    pub server_cpu: Duration,
    /// How long the run took.
    pub duration: Duration,
    /// Envelope bytes pushed (as encoded on the wire) per delivered entry: here one entry
    /// per envelope. Each envelope also travels once more, from the relay to B.
    pub envelope_bytes_per_delivered: f64,
}

/// loadgen's nearest-rank percentile: `sorted[ceil(p/100 * n) - 1]`, in ms.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let d = sorted[rank.clamp(1, sorted.len()) - 1];
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// Fan-out latency with loadgen's pacing: each pair writes every
/// max(150 ms, 1000·K/50 ms), max(⌈samples/K⌉, ⌈min_s/interval⌉) times, starting at a
/// random offset within the first interval; the time from A's write to B's apply.
///
/// # Errors
/// If a write fails.
pub async fn latency(
    pairs: &mut Pairs,
    relay: &RelayProcess,
    samples: usize,
    min_s: u64,
) -> Result<Latency> {
    let k = pairs.len().max(1);
    let interval = Duration::from_millis((1000 * k as u64 / 50).max(150));
    let writes = samples
        .div_ceil(k)
        .max((min_s * 1000).div_ceil(interval.as_millis() as u64) as usize);
    pairs.reset();
    let cpu_before = relay.cpu()?;
    let relay_before = RelaySnapshot::take(relay.addr()).await?;
    let bytes_before = pairs.wire_bytes();
    let started = Instant::now();
    let mut rng = crate::history::Rng::new(99);
    let offsets: Vec<Duration> = (0..k)
        .map(|_| Duration::from_millis(rng.below(interval.as_millis() as u64)))
        .collect();
    let shared = Arc::clone(&pairs.shared);
    let mut schedule: Vec<(Duration, usize)> = (0..writes)
        .flat_map(|n| {
            offsets
                .iter()
                .enumerate()
                .map(move |(i, off)| (*off + interval * n as u32, i))
        })
        .collect();
    schedule.sort();
    let mut sent = 0usize;
    for (at, i) in schedule {
        let wait = (started + at).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let text = entry_text(sent as u64);
        let writer = &mut pairs.writers[i];
        // Recorded before the write: the sample covers the document change, sealing,
        // the push, the relay's commit and fan-out, and B's verify, decrypt and apply.
        let counter = writer.counter + 1;
        if let Ok(mut d) = shared.0.lock() {
            d.sent.insert((i, counter), vec![Instant::now()]);
        }
        writer.write(&text).await?;
        let pushed = Instant::now();
        if let Ok(mut d) = shared.0.lock() {
            d.pushed.insert((i, counter), pushed);
        }
        sent += 1;
    }
    pairs.wait_delivered(sent, Duration::from_secs(10)).await?;
    let duration = started.elapsed();
    let server_cpu = relay.cpu()?.saturating_sub(cpu_before);
    let relay_stages = RelaySnapshot::take(relay.addr())
        .await?
        .since(&relay_before);
    let (mut lat, delivered, mut stages, slowest) = {
        let d = shared.0.lock().map_err(|_| anyhow!("poisoned"))?;
        let (stages, slowest) = client_stages(&d);
        (d.latencies.clone(), d.delivered, stages, slowest)
    };
    stages.extend(relay_stages);
    lat.sort();
    let bytes = pairs.wire_bytes().saturating_sub(bytes_before);
    Ok(Latency {
        envelope_bytes_per_delivered: per_entry(bytes, delivered),
        sent,
        lost: sent.saturating_sub(delivered),
        p50_ms: percentile(&lat, 50.0),
        p95_ms: percentile(&lat, 95.0),
        p99_ms: percentile(&lat, 99.0),
        p999_ms: percentile(&lat, 99.9),
        max_ms: lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        stages,
        slowest,
        interval_ms: interval.as_millis() as u64,
        server_cpu,
        duration,
    })
}

/// How many of the slowest samples a latency run lists.
const SLOWEST: usize = 5;

/// The clients' stages of every sample whose push was timed, and the slowest samples.
fn client_stages(d: &Deliveries) -> (Vec<(&'static str, Stat)>, Vec<Value>) {
    let mut rows: Vec<[Duration; 6]> = d
        .arrivals
        .iter()
        .filter_map(|a| {
            let written = a.written?;
            let pushed = *d.pushed.get(&(a.pair, a.counter))?;
            let gap = |from: Instant, to: Instant| to.saturating_duration_since(from);
            Some([
                gap(written, a.applied),
                gap(written, pushed),
                gap(pushed, a.received),
                gap(a.received, a.verified),
                gap(a.verified, a.opened),
                gap(a.opened, a.applied),
            ])
        })
        .collect();
    const NAMES: [&str; 5] = ["write", "transit", "verify", "decrypt", "apply"];
    let stages = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut column: Vec<Duration> = rows.iter().map(|r| r[i + 1]).collect();
            (*name, Stat::of(&mut column))
        })
        .collect();
    rows.sort_by(|a, b| b[0].cmp(&a[0]));
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let slowest = rows
        .iter()
        .take(SLOWEST)
        .map(|r| {
            let mut v = serde_json::Map::new();
            v.insert("total_ms".into(), json!(ms(r[0])));
            for (i, name) in NAMES.iter().enumerate() {
                v.insert(format!("{name}_ms"), json!(ms(r[i + 1])));
            }
            Value::Object(v)
        })
        .collect();
    (stages, slowest)
}

/// Throughput figures.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Writes sent.
    pub sent: usize,
    /// Writes delivered (warm-up and drain included).
    pub delivered: usize,
    /// Envelopes the writes went out in.
    pub envelopes: usize,
    /// Delivered per second within the counted window.
    pub delivered_per_s: f64,
    /// Relay CPU per delivered entry, in µs.
    pub server_cpu_us_per_delivered: f64,
    /// Envelope bytes pushed (as encoded on the wire) per delivered entry; each envelope
    /// carries the entries written while earlier ones were in flight, and also travels once
    /// more, from the relay to B.
    pub envelope_bytes_per_delivered: f64,
    /// Relay CPU during the run (window and drain).
    pub server_cpu: Duration,
    /// Latency while saturated, p50 and p99, in ms.
    pub lat_p50_ms: f64,
    /// 99th.
    pub lat_p99_ms: f64,
}

/// Every pair writes as fast as it can with at most `window` entries not yet delivered to
/// B, for `seconds`; entries delivered after the first `warmup` seconds are counted.
/// Entries a pair writes while earlier ones are in flight go out together in its next
/// envelope, as a client's outbox sends them; each entry's latency runs from its own write.
///
/// # Errors
/// If a write fails.
pub async fn throughput(
    pairs: &mut Pairs,
    relay: &RelayProcess,
    seconds: u64,
    warmup: u64,
    window: u64,
) -> Result<Throughput> {
    pairs.reset();
    let shared = Arc::clone(&pairs.shared);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    if let Ok(mut d) = shared.0.lock() {
        d.count_from = Some(started + Duration::from_secs(warmup));
        d.count_until = Some(until);
    }
    let cpu_before = relay.cpu()?;
    let bytes_before = pairs.wire_bytes();
    let writers = std::mem::take(&mut pairs.writers);
    let mut handles = Vec::with_capacity(writers.len());
    for (i, mut w) in writers.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        handles.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let first = w.counter;
            while Instant::now() < until {
                let notified = shared.2[i].notified();
                let seen = shared
                    .0
                    .lock()
                    .map(|d| d.seen_per_pair.get(i).copied().unwrap_or(0))
                    .unwrap_or(0);
                let room = window.saturating_sub(sent.saturating_sub(seen));
                if room > 0 {
                    let mut written = Vec::with_capacity(room as usize);
                    for n in sent..sent + room {
                        written.push(Instant::now());
                        if w.add(&entry_text(n)).is_err() {
                            break;
                        }
                    }
                    sent += written.len() as u64;
                    if let Ok(mut d) = shared.0.lock() {
                        d.sent.insert((i, w.counter + 1), written);
                    }
                    if w.push().await.is_err() {
                        break;
                    }
                } else {
                    let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
                }
            }
            let envelopes = (w.counter - first) as usize;
            (w, sent as usize, envelopes)
        }));
    }
    let (mut sent, mut envelopes) = (0, 0);
    for h in handles {
        let (w, n, e) = h.await?;
        pairs.writers.push(w);
        sent += n;
        envelopes += e;
    }
    pairs.wait_delivered(sent, Duration::from_secs(10)).await?;
    let server_cpu = relay.cpu()?.saturating_sub(cpu_before);
    let d = shared.0.lock().map_err(|_| anyhow!("poisoned"))?;
    let mut lat = d.latencies.clone();
    lat.sort();
    let counted_s = seconds.saturating_sub(warmup).max(1) as f64;
    let bytes = pairs.wire_bytes().saturating_sub(bytes_before);
    Ok(Throughput {
        envelope_bytes_per_delivered: per_entry(bytes, d.delivered),
        sent,
        delivered: d.delivered,
        envelopes,
        delivered_per_s: (d.counted as f64 / counted_s).round(),
        server_cpu_us_per_delivered: (server_cpu.as_secs_f64() * 1e6 / d.delivered.max(1) as f64)
            .round(),
        server_cpu,
        lat_p50_ms: percentile(&lat, 50.0),
        lat_p99_ms: percentile(&lat, 99.0),
    })
}

/// `bytes` over `entries`, to one decimal (`NaN` without entries).
fn per_entry(bytes: u64, entries: usize) -> f64 {
    if entries == 0 {
        return f64::NAN;
    }
    (bytes as f64 * 10.0 / entries as f64).round() / 10.0
}

/// Where the release `hearth-relay` binary is: beside this program.
///
/// # Errors
/// If it is not there.
pub fn default_relay_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("hearth-relay");
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p hearth-relay`",
            path.display()
        );
    }
    Ok(path)
}
