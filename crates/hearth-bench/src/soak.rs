//! The soak: many pairs of real client devices on one `hearth-relay` process, writing for
//! minutes while everything that can go wrong does, then a check that nothing was lost.
//!
//! Each device is the real client library as `hearth watch` runs it: a profile on disk
//! (SQLite, every chunk sealed with age), a live connection ([`Live`]) that pushes what
//! the device writes and applies what its partner writes. Every pair is a real space with
//! a signed ACL, joined through a real invite.
//!
//! While the pairs write (a realistic rate, then a peak rate):
//! - the relay is SIGKILLed at random moments and restarted on the same database and port;
//! - devices drop their connection at random and reconnect;
//! - devices "crash" at random: the connection and the profile are dropped without a
//!   goodbye, half of the time in the middle of a push, and the profile is opened again
//!   from disk;
//! - with `full_disk`, the relay's database lives on a small tmpfs that is filled to the
//!   last byte for a while, then emptied.
//!
//! Then the writing stops and the devices, still live, must converge by themselves. The
//! check (`verify`): both devices of every pair hold identical heads and every entry
//! either of them wrote, exactly once; the relay's database holds, for every device, each
//! envelope counter from 1 to its last exactly once (every one was committed: the outbox
//! only empties on `Committed`), each one decodes, verifies and decrypts, and every
//! space's sequence is dense; the relay's connections return to zero.
//!
//! With `copy_restart`, a second, shorter round copies the relay's SQLite files while it
//! is writing, kills it, starts it from the copy and checks that the devices repair it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use hearth_client::sync::{self, Live, LiveEvent, SyncError};
use hearth_client::{Profile, Protection};
use hearth_doc::{JournalDraft, Millis};
use hearth_proto::{Envelope, InviteRole, RejectCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::history::Rng;
use crate::relay::{RelayProcess, open_connections};

/// How long any one relay conversation may take before a device gives up on it.
const T: Duration = Duration::from_secs(15);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pairs of devices (two devices each).
    pub pairs: usize,
    /// How long the realistic phase writes.
    pub realistic: Duration,
    /// A device's mean time between writes in the realistic phase.
    pub realistic_every: Duration,
    /// How long the peak phase writes.
    pub peak: Duration,
    /// A device's mean time between writes in the peak phase.
    pub peak_every: Duration,
    /// Relay SIGKILLs, spread at random over both phases.
    pub kills: usize,
    /// A device's mean time between dropping its connection.
    pub disconnect_every: Duration,
    /// A device's mean time between crashes.
    pub crash_every: Duration,
    /// Put the relay's database on a tmpfs and fill it for a while (needs root: `mount`).
    pub full_disk: bool,
    /// Afterwards, a round of this length at the peak rate that copies the relay's files
    /// mid-write (halfway) and restarts it from the copy (at three quarters).
    pub copy_restart: Option<Duration>,
    /// Where the profiles and the relay's database go (emptied first).
    pub dir: PathBuf,
    /// The `hearth-relay` binary.
    pub relay_bin: PathBuf,
    /// Seeds every random choice.
    pub seed: u64,
}

impl Options {
    /// The soak: 1,000 pairs, 150 s at a realistic rate (a write every 60 s per
    /// device), 150 s at a peak rate (every 6 s), 12 relay kills.
    pub fn full(dir: PathBuf, relay_bin: PathBuf) -> Options {
        Options {
            pairs: 1000,
            realistic: Duration::from_secs(150),
            realistic_every: Duration::from_secs(60),
            peak: Duration::from_secs(150),
            peak_every: Duration::from_secs(6),
            kills: 12,
            disconnect_every: Duration::from_secs(90),
            crash_every: Duration::from_secs(180),
            full_disk: true,
            copy_restart: Some(Duration::from_secs(40)),
            dir,
            relay_bin,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Realistic,
    Peak,
    /// No writes and no faults: the devices catch up by themselves.
    Drain,
    Stop,
}

/// What the devices counted.
#[derive(Debug, Default)]
struct Tally {
    writes: AtomicU64,
    disconnects: AtomicU64,
    crashes: AtomicU64,
    crashes_mid_push: AtomicU64,
    /// Connections lost (the relay died, or refused something).
    dropped: AtomicU64,
    reconnects: AtomicU64,
    failed_opens: AtomicU64,
    /// Refusals because the relay's disk was full.
    disk_full_refusals: AtomicU64,
    /// Connections that found the relay behind their cursor (restored from a copy).
    relay_behind: AtomicU64,
    /// Envelopes a device refused (must stay 0: every envelope here is genuine).
    refused_envelopes: AtomicU64,
    /// Why, by reason.
    refusal_reasons: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Tally {
    fn json(&self) -> Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "writes": n(&self.writes), "disconnects": n(&self.disconnects),
            "client_crashes": n(&self.crashes), "client_crashes_mid_push": n(&self.crashes_mid_push),
            "connections_lost": n(&self.dropped), "reconnects": n(&self.reconnects),
            "failed_connects": n(&self.failed_opens),
            "disk_full_refusals": n(&self.disk_full_refusals),
            "relay_behind_detected": n(&self.relay_behind),
            "envelopes_refused": n(&self.refused_envelopes),
            "refusal_reasons": self.refusal_reasons.lock().map(|r| json!(*r)).unwrap_or_default(),
        })
    }
}

/// Shared by the controller and every device.
struct Control {
    opts: Options,
    /// Entries each device has written (device `d` is pair `d / 2`, side `d % 2`).
    written: Vec<AtomicU64>,
    /// Whether each device holds everything and has nothing left to push.
    converged: Vec<AtomicBool>,
    /// What each device last reported while draining, and its last error: said when one
    /// does not converge.
    status: Vec<std::sync::Mutex<Status>>,
    traces: Vec<std::sync::Mutex<Vec<String>>>,
    tally: Tally,
}

/// The text of device `d`'s `n`th entry: a unique label and ~200 bytes of prose.
fn entry_text(d: usize, n: u64) -> String {
    let mut rng = Rng::new(((d as u64) << 32) ^ n);
    let mut prose = rng.prose(180);
    prose.truncate(180);
    // Trimmed, as the document stores a journal entry's body.
    format!("soak {} {} {}", label(d), n, prose.trim())
}

fn label(d: usize) -> String {
    format!("p{}{}", d / 2, if d.is_multiple_of(2) { 'a' } else { 'b' })
}

/// An exponentially distributed delay with the given mean.
fn exp(rng: &mut Rng, mean: Duration) -> Duration {
    let u = (rng.below(1_000_000) as f64 + 1.0) / 1_000_001.0;
    mean.mul_f64(-u.ln())
}

/// Uniform in [0.5, 1.5) times `mean`.
fn jitter(rng: &mut Rng, mean: Duration) -> Duration {
    mean.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn profile_home(dir: &Path, d: usize) -> PathBuf {
    dir.join("devices").join(label(d))
}

async fn next_event(
    live: &mut Option<Live>,
    profile: &mut Profile,
) -> Result<LiveEvent, SyncError> {
    match live {
        Some(live) => live.next(profile).await,
        None => std::future::pending().await,
    }
}

fn write_entry(profile: &mut Profile, ctl: &Control, d: usize) -> Result<()> {
    let n = ctl.written[d].load(Ordering::SeqCst);
    let person = profile.person_id().clone();
    let draft = JournalDraft {
        body: entry_text(d, n),
        ..JournalDraft::default()
    };
    profile
        .write(|doc| doc.add_journal(&person, &draft, Millis::now()))
        .with_context(|| format!("{} writing entry {n}", label(d)))?;
    // Counted once durable: a crash after this must not lose it.
    ctl.written[d].fetch_add(1, Ordering::SeqCst);
    ctl.tally.writes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A device's state while draining, and its last error.
#[derive(Debug, Default)]
struct Status {
    state: String,
    last_error: String,
}

/// Whether device `d` holds every entry of its pair and has nothing left to push.
fn caught_up(profile: &Profile, ctl: &Control, d: usize, live: bool) -> Result<bool> {
    let outbox = profile.sync_book().outbox()?.len();
    let expected =
        ctl.written[d].load(Ordering::SeqCst) + ctl.written[d ^ 1].load(Ordering::SeqCst);
    let have = profile.load()?.journal().len() as u64;
    if let Ok(mut status) = ctl.status[d].lock() {
        status.state = format!(
            "live {live}, outbox {outbox}, holds {have} of {expected} entries, cursor {}",
            profile.sync_book().cursor()?
        );
    }
    Ok(live && outbox == 0 && have == expected)
}

fn note_refused(ctl: &Control, report: &sync::SyncReport) {
    ctl.tally
        .refused_envelopes
        .fetch_add(report.rejected.len() as u64, Ordering::Relaxed);
    if let Ok(mut reasons) = ctl.tally.refusal_reasons.lock() {
        for r in &report.rejected {
            *reasons
                .entry(r.reason.chars().take(60).collect())
                .or_default() += 1;
        }
    }
}

fn note_error(ctl: &Control, d: usize, e: &SyncError) {
    if let Ok(mut status) = ctl.status[d].lock() {
        status.last_error = e.to_string();
    }
    let counter = match e {
        SyncError::Refused {
            code: RejectCode::QuotaExceeded,
            ..
        } => &ctl.tally.disk_full_refusals,
        _ => &ctl.tally.dropped,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Keeps the last few things device `d` did, to say when it does not converge.
fn trace(ctl: &Control, d: usize, profile: &Profile, what: &str) {
    let cursor = profile.sync_book().cursor().unwrap_or(0);
    let mark = profile
        .sync_book()
        .landmarks()
        .ok()
        .and_then(|m| m.last().map(|m| m.seq))
        .unwrap_or(0);
    if let Ok(mut t) = ctl.traces[d].lock() {
        if t.len() >= 16 {
            t.remove(0);
        }
        t.push(format!("{what}@c{cursor}/m{mark}"));
    }
}

/// One device: writes at the phase's rate, stays live, and suffers the faults.
async fn device(d: usize, ctl: Arc<Control>, mut phase: watch::Receiver<Phase>) -> Result<()> {
    let home = profile_home(&ctl.opts.dir, d);
    let mut rng = Rng::new(ctl.opts.seed ^ (d as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut profile = Profile::open(&home, None)?;
    let mut live: Option<Live> = None;
    let mut reconnect_at = Instant::now() + Duration::from_millis(rng.below(2000));
    let (mut disconnect_at, mut crash_at) = (far(), far());
    let mut write_at = far();
    let mut current = *phase.borrow_and_update();
    let every = |p: Phase| match p {
        Phase::Realistic => Some(ctl.opts.realistic_every),
        Phase::Peak => Some(ctl.opts.peak_every),
        Phase::Drain | Phase::Stop => None,
    };
    if let Some(every) = every(current) {
        write_at = Instant::now() + Duration::from_millis(rng.below(every.as_millis() as u64));
    }
    let mut check_at = far();
    loop {
        let faults = matches!(current, Phase::Realistic | Phase::Peak);
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                current = *phase.borrow_and_update();
                write_at = match every(current) {
                    Some(every) => Instant::now() + jitter(&mut rng, every),
                    None => far(),
                };
                match current {
                    Phase::Drain => check_at = Instant::now(),
                    Phase::Stop => break,
                    _ => {}
                }
            }
            _ = sleep_until(write_at.into()) => {
                write_entry(&mut profile, &ctl, d)?;
                trace(&ctl, d, &profile, "write");
                write_at = every(current).map_or_else(far, |e| Instant::now() + jitter(&mut rng, e));
                if let Some(l) = live.as_mut()
                    && let Err(e) = l.push(&mut profile).await
                {
                    note_error(&ctl, d, &e);
                    live = None;
                    reconnect_at = Instant::now() + Duration::from_millis(100 + rng.below(900));
                }
            }
            event = next_event(&mut live, &mut profile) => {
                match event {
                    Ok(LiveEvent::Received(report)) => {
                        note_refused(&ctl, &report);
                        trace(&ctl, d, &profile, "ev");
                    }
                    Ok(LiveEvent::Committed) => trace(&ctl, d, &profile, "ok"),
                    Ok(LiveEvent::AclMoved) => {
                        if let Some(l) = live.take() {
                            l.close().await;
                        }
                        reconnect_at = Instant::now();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        note_error(&ctl, d, &e);
                        trace(&ctl, d, &profile, "err");
                        live = None;
                        reconnect_at = Instant::now() + Duration::from_millis(100 + rng.below(900));
                    }
                }
                if current == Phase::Drain {
                    check_at = check_at.min(Instant::now() + Duration::from_millis(200));
                }
            }
            _ = sleep_until(reconnect_at.into()), if live.is_none() => {
                match Live::open(&mut profile, T).await {
                    Ok((opened, report)) => {
                        live = Some(opened);
                        trace(&ctl, d, &profile, &format!("open(+{})", report.received));
                        ctl.tally.reconnects.fetch_add(1, Ordering::Relaxed);
                        note_refused(&ctl, &report);
                        if report.relay_behind.is_some() {
                            ctl.tally.relay_behind.fetch_add(1, Ordering::Relaxed);
                        }
                        disconnect_at = Instant::now() + exp(&mut rng, ctl.opts.disconnect_every);
                        crash_at = Instant::now() + exp(&mut rng, ctl.opts.crash_every);
                        if current == Phase::Drain {
                            check_at = Instant::now();
                        }
                    }
                    Err(e) => {
                        note_error(&ctl, d, &e);
                        ctl.tally.failed_opens.fetch_add(1, Ordering::Relaxed);
                        reconnect_at = Instant::now() + Duration::from_millis(200 + rng.below(1300));
                    }
                }
            }
            _ = sleep_until(disconnect_at.into()), if faults && live.is_some() => {
                if let Some(l) = live.take() {
                    l.close().await;
                }
                ctl.tally.disconnects.fetch_add(1, Ordering::Relaxed);
                trace(&ctl, d, &profile, "disc");
                reconnect_at = Instant::now() + Duration::from_millis(rng.below(2000));
            }
            _ = sleep_until(crash_at.into()), if faults && live.is_some() => {
                // Gone without a goodbye: the connection and the open profile are dropped,
                // half of the time in the middle of pushing a new entry.
                if let Some(mut l) = live.take() {
                    if rng.below(2) == 0 {
                        write_entry(&mut profile, &ctl, d)?;
                        let cut = Duration::from_micros(rng.below(3000));
                        let _ = tokio::time::timeout(cut, l.push(&mut profile)).await;
                        ctl.tally.crashes_mid_push.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(l);
                }
                drop(profile);
                profile = Profile::open(&home, None)?;
                ctl.tally.crashes.fetch_add(1, Ordering::Relaxed);
                trace(&ctl, d, &profile, "crash");
                reconnect_at = Instant::now() + Duration::from_millis(rng.below(2000));
            }
            _ = sleep_until(check_at.into()), if current == Phase::Drain => {
                let done = caught_up(&profile, &ctl, d, live.is_some())?;
                ctl.converged[d].store(done, Ordering::SeqCst);
                check_at = Instant::now() + Duration::from_secs(1);
            }
        }
    }
    if let Some(l) = live {
        l.close().await;
    }
    Ok(())
}

/// The relay process across its kills and restarts, always on the same port and database.
struct Supervisor {
    bin: PathBuf,
    db: PathBuf,
    listen: String,
    relay: Option<RelayProcess>,
    kills: usize,
    peak_rss_kb: u64,
}

impl Supervisor {
    async fn start(bin: &Path, db: &Path) -> Result<Supervisor> {
        let (bin2, db2) = (bin.to_owned(), db.to_owned());
        let relay =
            tokio::task::spawn_blocking(move || RelayProcess::start_at(&bin2, &db2, "127.0.0.1:0"))
                .await??;
        Ok(Supervisor {
            bin: bin.to_owned(),
            db: db.to_owned(),
            listen: relay.addr().to_owned(),
            relay: Some(relay),
            kills: 0,
            peak_rss_kb: 0,
        })
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/sync", self.listen)
    }

    fn note_peak(&mut self) {
        if let Some(peak) = self.relay.as_ref().and_then(|r| r.peak_rss_kb().ok()) {
            self.peak_rss_kb = self.peak_rss_kb.max(peak);
        }
    }

    /// Fails if the relay exited on its own (a crash, a panic, a full disk it could not take).
    fn check_running(&mut self) -> Result<()> {
        if let Some(relay) = self.relay.as_mut() {
            ensure!(relay.running()?, "the relay exited on its own");
        }
        self.note_peak();
        Ok(())
    }

    fn sigkill(&mut self) -> Result<()> {
        self.check_running()?;
        let relay = self.relay.take().context("no relay to kill")?;
        relay.kill()?;
        self.kills += 1;
        Ok(())
    }

    /// Starts the relay again on the same port (retrying while the port is still held).
    async fn restart(&mut self) -> Result<()> {
        ensure!(self.relay.is_none(), "the relay is already running");
        let mut last = None;
        for _ in 0..50 {
            let (bin, db, listen) = (self.bin.clone(), self.db.clone(), self.listen.clone());
            match tokio::task::spawn_blocking(move || RelayProcess::start_at(&bin, &db, &listen))
                .await?
            {
                Ok(relay) => {
                    self.relay = Some(relay);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| anyhow!("the relay did not restart")))
    }

    async fn stop(&mut self) -> Result<()> {
        self.check_running()?;
        if let Some(relay) = self.relay.take() {
            tokio::task::spawn_blocking(move || relay.stop()).await??;
        }
        Ok(())
    }
}

/// A tmpfs mounted for the relay's database, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .context("running mount")?;
        ensure!(
            status.success(),
            "cannot mount a tmpfs at {} (the full-disk fault needs root; pass --no-full-disk)",
            dir.display()
        );
        Ok(Tmpfs(dir.to_owned()))
    }

    /// Writes a ballast file until the filesystem is full; returns the bytes written.
    fn fill(&self) -> Result<u64> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(self.0.join("ballast"))?;
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(e.into()),
            }
        }
        // Single bytes, to take the very last block.
        while let Ok(1) = file.write(&[0]) {
            written += 1;
        }
        Ok(written)
    }

    fn empty(&self) -> Result<()> {
        std::fs::remove_file(self.0.join("ballast"))?;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Creates the pairs: A starts a space on the relay, invites B, B joins.
async fn setup(opts: &Options, url: &str) -> Result<()> {
    use futures_util::StreamExt as _;
    let results: Vec<Result<()>> = futures_util::stream::iter(0..opts.pairs)
        .map(|p| {
            let dir = opts.dir.clone();
            let url = url.to_owned();
            async move {
                let mut a = Profile::create(
                    &profile_home(&dir, 2 * p),
                    "A",
                    Protection::None,
                    Millis::now(),
                )?;
                a.sync_book_mut().start_space(&url)?;
                let code =
                    sync::invite(&mut a, InviteRole::Partner, Duration::from_secs(3600), T).await?;
                sync::join(
                    &profile_home(&dir, 2 * p + 1),
                    &code,
                    Some("B"),
                    Protection::None,
                    T,
                )
                .await
                .map_err(|e| anyhow!("pair {p}: joining: {e}"))?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

/// What one round of load did.
#[derive(Debug)]
struct Round {
    /// Entries written in each phase, in order.
    phase_writes: Vec<u64>,
    tally: Value,
    drain: Duration,
    kills: usize,
    full_disk: Option<Value>,
    copied: Option<Value>,
}

/// Runs the devices through `phases` (each `(phase, how long)`), applying `faults` at their
/// times from the start, then drains and stops them.
async fn round(
    ctl: &Arc<Control>,
    sup: &mut Supervisor,
    phases: &[(Phase, Duration)],
    kills: usize,
    tmpfs: Option<&Tmpfs>,
    copy_to: Option<&Path>,
) -> Result<Round> {
    let (tx, rx) = watch::channel(phases.first().map_or(Phase::Drain, |p| p.0));
    let devices: Vec<_> = (0..ctl.written.len())
        .map(|d| tokio::spawn(device(d, Arc::clone(ctl), rx.clone())))
        .collect();
    drop(rx);
    let total: Duration = phases.iter().map(|p| p.1).sum();
    let started = Instant::now();
    let mut rng = Rng::new(ctl.opts.seed ^ 0x50a4);

    // The schedule: kills at random moments (at least half a slot apart, none in the first
    // or last eighth, at most 5 s), phase changes, and the full disk and the copy late on.
    enum Fault {
        Phase(Phase),
        Kill,
        FillDisk,
        EmptyDisk,
        Copy,
        SwitchToCopy,
    }
    let mut schedule: Vec<(Duration, Fault)> = Vec::new();
    let mut at = Duration::ZERO;
    for (phase, len) in phases.iter().skip(1).zip(phases) {
        at += len.1;
        schedule.push((at, Fault::Phase(phase.0)));
    }
    // The writing ends at `total`, whatever else is scheduled.
    schedule.push((total, Fault::Phase(Phase::Drain)));
    let margin = (total / 8).min(Duration::from_secs(5));
    let span = total.saturating_sub(margin * 2);
    for k in 0..kills {
        let slot = span / kills.max(1) as u32;
        let within = Duration::from_millis(rng.below(slot.as_millis().max(1) as u64 / 2));
        schedule.push((margin + slot * k as u32 + within, Fault::Kill));
    }
    if tmpfs.is_some() {
        let from = total.mul_f64(0.7);
        schedule.push((from, Fault::FillDisk));
        schedule.push((from + Duration::from_secs(15), Fault::EmptyDisk));
    }
    if copy_to.is_some() {
        schedule.push((total / 2, Fault::Copy));
        schedule.push((total.mul_f64(0.75), Fault::SwitchToCopy));
    }
    schedule.sort_by_key(|s| s.0);

    let mut full_disk = None;
    let mut copied = None;
    let kills_before = sup.kills;
    let writes = || ctl.tally.writes.load(Ordering::Relaxed);
    let mut phase_writes = Vec::new();
    let mut phase_start = writes();
    for (at, fault) in schedule {
        let deadline = started + at;
        // Watch the relay while waiting: it must never exit on its own.
        while Instant::now() < deadline {
            sup.check_running()?;
            tokio::time::sleep((deadline - Instant::now()).min(Duration::from_secs(1))).await;
        }
        match fault {
            Fault::Phase(p) => {
                phase_writes.push(writes() - phase_start);
                phase_start = writes();
                tx.send_replace(p)
            }
            Fault::Kill => {
                sup.sigkill()?;
                // Down for up to 2 s: devices find it gone and keep writing offline.
                tokio::time::sleep(Duration::from_millis(rng.below(2000))).await;
                sup.restart().await?;
                continue;
            }
            Fault::FillDisk => {
                let t = tmpfs.context("no tmpfs")?;
                let refusals = ctl.tally.disk_full_refusals.load(Ordering::Relaxed);
                let writes = ctl.tally.writes.load(Ordering::Relaxed);
                let bytes = t.fill()?;
                full_disk = Some((bytes, refusals, writes));
                continue;
            }
            Fault::EmptyDisk => {
                let t = tmpfs.context("no tmpfs")?;
                sup.check_running()?;
                t.empty()?;
                if let Some((bytes, refusals, writes)) = full_disk.take() {
                    full_disk = Some((
                        bytes,
                        ctl.tally.disk_full_refusals.load(Ordering::Relaxed) - refusals,
                        ctl.tally.writes.load(Ordering::Relaxed) - writes,
                    ));
                }
                continue;
            }
            Fault::Copy => {
                let to = copy_to.context("no copy folder")?;
                std::fs::create_dir_all(to)?;
                let mut sizes = Vec::new();
                // File by file, as `cp` would, while the relay writes.
                for suffix in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{suffix}", sup.db.display()));
                    if from.exists() {
                        let name = from.file_name().context("a file name")?;
                        sizes.push(std::fs::copy(&from, to.join(name))?);
                    }
                }
                copied = Some(json!({ "copied_bytes": sizes }));
                continue;
            }
            Fault::SwitchToCopy => {
                let to = copy_to.context("no copy folder")?;
                sup.sigkill()?;
                sup.db = to.join(sup.db.file_name().context("a file name")?);
                sup.restart().await?;
                continue;
            }
        };
    }
    let full_disk = full_disk.map(|(bytes, refusals, writes)| {
        json!({ "ballast_bytes": bytes, "refusals": refusals, "writes_meanwhile": writes, "seconds": 15 })
    });

    // Drain: no writes, no faults; the devices must converge by themselves.
    tx.send_replace(Phase::Drain);
    let drain_started = Instant::now();
    let limit = Duration::from_secs(180);
    loop {
        sup.check_running()?;
        let behind: Vec<usize> = ctl
            .converged
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.load(Ordering::SeqCst))
            .map(|(d, _)| d)
            .collect();
        if behind.is_empty() {
            break;
        }
        if drain_started.elapsed() > limit {
            let said: Vec<String> = behind
                .iter()
                .take(5)
                .map(|d| {
                    let status = ctl.status[*d]
                        .lock()
                        .map(|s| format!("{} | last error: {}", s.state, s.last_error))
                        .unwrap_or_default();
                    let trace = ctl.traces[*d]
                        .lock()
                        .map(|t| t.join(" "))
                        .unwrap_or_default();
                    let partner = ctl.traces[*d ^ 1]
                        .lock()
                        .map(|t| t.join(" "))
                        .unwrap_or_default();
                    format!(
                        "{}: {status}\n  did: {trace}\n  partner did: {partner}",
                        label(*d)
                    )
                })
                .collect();
            bail!(
                "{} devices had not caught up {limit:?} after the writing stopped:\n{}\n(so far: {})",
                behind.len(),
                said.join("\n"),
                ctl.tally.json()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drain = drain_started.elapsed();
    tx.send_replace(Phase::Stop);
    for d in devices {
        d.await??;
    }
    // Every envelope here is genuine: refusing one is a bug.
    let refused = ctl.tally.refused_envelopes.load(Ordering::Relaxed);
    ensure!(
        refused == 0,
        "devices refused {refused} genuine envelopes: {}",
        ctl.tally.json()
    );
    for c in &ctl.converged {
        c.store(false, Ordering::SeqCst);
    }
    Ok(Round {
        phase_writes,
        tally: ctl.tally.json(),
        drain,
        kills: sup.kills - kills_before,
        full_disk,
        copied,
    })
}

/// Waits (bounded) for the relay's open connections to reach zero; returns how long it took.
async fn connections_to_zero(sup: &Supervisor) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let open = open_connections(&sup.listen).await?;
        if open == 0 {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{open} connections still open 30 s after every device left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What [`verify`] found.
#[derive(Debug, Default)]
struct Verified {
    entries: u64,
    envelopes: u64,
    devices: u64,
}

/// Both devices of every pair hold identical heads and every entry written, exactly once;
/// with `db`, the relay's database holds every committed envelope of every device exactly
/// once, each genuine, in a dense sequence.
fn verify(ctl: &Control, db: Option<&Path>) -> Result<Verified> {
    let mut out = Verified::default();
    let conn = db
        .map(|db| {
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        })
        .transpose()?;
    for pair in 0..ctl.opts.pairs {
        let (a, b) = (2 * pair, 2 * pair + 1);
        let profiles = [a, b].map(|d| Profile::open(&profile_home(&ctl.opts.dir, d), None));
        let [pa, pb] = profiles;
        let (pa, pb) = (pa?, pb?);
        let (mut da, mut db_) = (pa.load()?, pb.load()?);
        ensure!(
            da.heads() == db_.heads(),
            "pair {pair}: the two devices' heads differ"
        );
        let mut expected = BTreeSet::new();
        for d in [a, b] {
            for n in 0..ctl.written[d].load(Ordering::SeqCst) {
                expected.insert(entry_text(d, n));
            }
        }
        for (d, doc) in [(a, &da), (b, &db_)] {
            let bodies: Vec<String> = doc.journal().into_iter().map(|j| j.body).collect();
            let distinct: BTreeSet<&String> = bodies.iter().collect();
            ensure!(
                distinct.len() == bodies.len(),
                "{} holds an entry twice",
                label(d)
            );
            let got: BTreeSet<String> = bodies.into_iter().collect();
            ensure!(
                got == expected,
                "{}: {} entries missing, {} unexpected",
                label(d),
                expected.difference(&got).count(),
                got.difference(&expected).count()
            );
        }
        out.entries += expected.len() as u64;
        let Some(conn) = conn.as_ref() else { continue };
        let space = pa.space()?;
        let key = pa
            .sync_book()
            .epoch_key(0)?
            .context("device A has no key for epoch 0")?;
        let covers: Option<i64> = conn
            .query_row(
                "SELECT covers_seq FROM snapshots WHERE space = ?1",
                [&space.as_bytes()[..]],
                |r| r.get(0),
            )
            .ok();
        let (head, rows): (i64, i64) = conn.query_row(
            "SELECT head, (SELECT COUNT(*) FROM envelopes WHERE space = ?1) FROM spaces WHERE space = ?1",
            [&space.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        ensure!(
            rows == head - covers.unwrap_or(0),
            "pair {pair}: the relay's sequence is not dense ({rows} envelopes, head {head})"
        );
        for p in [&pa, &pb] {
            ensure!(
                p.sync_book().outbox()?.is_empty(),
                "{} still has an outbox",
                label(a)
            );
            let device = p.device_id();
            let mut stmt = conn.prepare_cached(
                "SELECT counter, bytes FROM envelopes WHERE space = ?1 AND device = ?2 ORDER BY counter",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![&space.as_bytes()[..], &device.as_bytes()[..]],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )?;
            let mut counters = Vec::new();
            for row in rows {
                let (counter, bytes) = row?;
                let envelope = Envelope::decode(&bytes)
                    .map_err(|e| anyhow!("pair {pair}: a stored envelope does not decode: {e}"))?;
                let h = envelope.header();
                ensure!(
                    h.counter == counter && h.author == device && h.space == space,
                    "pair {pair}: a stored envelope's header does not match its row"
                );
                hearth_crypto::envelope::open(&envelope, &space, 0, &key).map_err(|e| {
                    anyhow!("pair {pair}: a stored envelope does not verify and decrypt: {e}")
                })?;
                counters.push(counter);
            }
            let last = p.sync_book().last_counter()?;
            out.envelopes += counters.len() as u64;
            out.devices += 1;
            if covers.is_none() {
                ensure!(
                    counters == (1..=last).collect::<Vec<_>>(),
                    "pair {pair}: the relay holds counters {:?}… of a device whose last is {last}",
                    counters.iter().take(10).collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(out)
}

/// Runs the soak and prints (and returns) one JSON line per round.
///
/// # Errors
/// If anything was lost, duplicated or left behind, or the relay exited on its own.
pub async fn run(opts: Options) -> Result<Vec<Value>> {
    if opts.dir.exists() {
        std::fs::remove_dir_all(&opts.dir)?;
    }
    std::fs::create_dir_all(opts.dir.join("devices"))?;
    let relay_dir = opts.dir.join("relay");
    let tmpfs = if opts.full_disk {
        // Room for the database with a wide margin; the fill takes the rest.
        Some(Tmpfs::mount(&relay_dir, 512)?)
    } else {
        std::fs::create_dir_all(&relay_dir)?;
        None
    };
    let mut sup = Supervisor::start(&opts.relay_bin, &relay_dir.join("relay.db")).await?;
    let setup_started = Instant::now();
    setup(&opts, &sup.url()).await?;
    let setup_time = setup_started.elapsed();
    let devices = 2 * opts.pairs;
    let ctl = Arc::new(Control {
        written: (0..devices).map(|_| AtomicU64::new(0)).collect(),
        converged: (0..devices).map(|_| AtomicBool::new(false)).collect(),
        status: (0..devices).map(|_| std::sync::Mutex::default()).collect(),
        traces: (0..devices).map(|_| std::sync::Mutex::default()).collect(),
        tally: Tally::default(),
        opts,
    });
    let mut out = Vec::new();

    let started = Instant::now();
    let r = round(
        &ctl,
        &mut sup,
        &[
            (Phase::Realistic, ctl.opts.realistic),
            (Phase::Peak, ctl.opts.peak),
        ],
        ctl.opts.kills,
        tmpfs.as_ref(),
        None,
    )
    .await?;
    let elapsed = started.elapsed();
    let zero = connections_to_zero(&sup).await?;
    sup.stop().await?;
    let checked = tokio::task::block_in_place(|| verify(&ctl, Some(&sup.db)))?;
    let line = json!({
        "bench": "hearth-relay", "test": "soak", "pairs": ctl.opts.pairs, "devices": devices,
        "setup_s": setup_time.as_secs(),
        "realistic_s": ctl.opts.realistic.as_secs(), "realistic_every_s": ctl.opts.realistic_every.as_secs_f64(),
        "peak_s": ctl.opts.peak.as_secs(), "peak_every_s": ctl.opts.peak_every.as_secs_f64(),
        "realistic_writes": r.phase_writes.first(), "peak_writes": r.phase_writes.get(1),
        "seconds": elapsed.as_secs(), "relay_sigkills": r.kills, "full_disk": r.full_disk,
        "devices_counted": r.tally, "drain_s": (r.drain.as_secs_f64() * 10.0).round() / 10.0,
        "entries_verified": checked.entries, "envelopes_verified": checked.envelopes,
        "devices_verified": checked.devices,
        "connections_to_zero_ms": zero.as_millis() as u64,
        "relay_peak_rss_kb": sup.peak_rss_kb,
    });
    println!("{line}");
    out.push(line);

    if let Some(length) = ctl.opts.copy_restart {
        sup.restart().await?;
        let copy_dir = ctl.opts.dir.join("relay-copy");
        let r = round(
            &ctl,
            &mut sup,
            &[(Phase::Peak, length)],
            0,
            None,
            Some(&copy_dir),
        )
        .await?;
        let zero = connections_to_zero(&sup).await?;
        sup.stop().await?;
        // The copy lost what the relay committed after it, so the database no longer holds
        // every counter: the devices sent it their whole documents again instead.
        let checked = tokio::task::block_in_place(|| verify(&ctl, None))?;
        let line = json!({
            "bench": "hearth-relay", "test": "soak_copy_restart", "pairs": ctl.opts.pairs,
            "copied": r.copied, "writes": r.phase_writes.first(), "devices_counted": r.tally,
            "drain_s": (r.drain.as_secs_f64() * 10.0).round() / 10.0,
            "entries_verified": checked.entries,
            "connections_to_zero_ms": zero.as_millis() as u64,
            "relay_peak_rss_kb": sup.peak_rss_kb,
        });
        println!("{line}");
        out.push(line);
    }
    drop(tmpfs);
    Ok(out)
}
