//! One websocket connection, from `Hello` to close: the handshake, the per-request
//! checks that let the relay enforce the ACL without being able to read anything, and
//! the live stream of other devices' pushes.
//!
//! The task is a reader (this module's protocol loop, which handles one request at a
//! time, so replies go out in request order) and a writer draining a bounded queue,
//! joined with `select!`: whichever ends first ends the connection. Live events arrive
//! on a second bounded queue filled by the [`Hub`](crate::hub); the loop sends them in
//! sequence order, reading any gap back from the store, so a subscriber sees every seq
//! after its cursor exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hearth_proto::frame::{MAX_AUTH_SKEW_MS, SUPPORTED_VERSIONS};
use hearth_proto::{
    AclBody, AclRecord, AclState, ClientFrame, DeviceId, Envelope, EnvelopeKind, InviteId,
    InviteRole, PROTOCOL_VERSION, ProtoError, RejectCode, RelayFrame, SpaceId, auth_message,
    check_version, decode_client, delete_space_message, encode_relay, verify_signature,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{Chain, Shared, verify_chain};
use crate::config::Creation;
use crate::hub::Live;
use crate::store::StoreError;
use crate::worker::Signed;

/// Frames waiting for the writer.
const OUT_QUEUE: usize = 64;
/// Live events waiting for a subscriber before it counts as fallen behind.
const LIVE_QUEUE: usize = 1024;
/// Most envelopes in one `Batch`.
const PAGE_ITEMS: usize = 256;
/// Room left in a `Batch` frame for its own encoding (varints around each item).
const PAGE_OVERHEAD: usize = 64 + 16 * PAGE_ITEMS;
/// How long one frame may wait for a client that does not read before the relay gives up
/// on the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the writer may take to flush the last frames once the reader is done.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The one answer to every failed `Auth`: a stranger learns nothing about the space.
pub(crate) const UNAUTHORIZED: &str = "authentication failed: this device is not a member of that space, or the signature, clock or challenge did not match; check your clock, and if it persists pair this device again";

const REMOVED: &str = "this device was removed from the space; stop syncing it";

const INVITE_ONLY: &str = "an invite key may only fetch its lockbox (GetLockbox) and add its device (PutAcl with the AddDevice that consumes it); reconnect as the new device for anything else";

/// The connection must close (after whatever is already queued).
#[derive(Debug)]
struct Stop;

type Step = Result<(), Stop>;

/// Who the connection authenticated as.
#[derive(Debug, Clone, Copy)]
struct Authed {
    space: SpaceId,
    key: DeviceId,
    as_invite: bool,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Hello,
    Auth,
    /// Authenticated for creating `space` (which did not exist) and nothing else.
    Create {
        space: SpaceId,
        device: DeviceId,
    },
    Ready(Authed),
}

/// Pushes allowed per second, refilled continuously.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            tokens: rate,
            rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Runs one websocket connection to its end.
pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>) {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (sink, stream) = socket.split();
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let mut nonce = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut nonce) {
        tracing::error!(connection = id, error = %e, "no randomness for a challenge nonce");
        return;
    }
    shared.metrics.connection_opened();
    tracing::debug!(connection = id, "websocket opened");
    let session = Session {
        id,
        bucket: Bucket::new(shared.config.limits.max_pushes_per_sec),
        shared: Arc::clone(&shared),
        out,
        phase: Phase::Hello,
        nonce,
        live: None,
        overflow: CancellationToken::new(),
        writer_gone: CancellationToken::new(),
        subscribed: None,
        cursor: 0,
        own: BTreeSet::new(),
    };
    // The session is never dropped in the middle of a frame: a push the store has taken
    // must be answered and, above all, fanned out to the other subscribers, even when the
    // pushing client is already gone (dropping it there once left a committed envelope that
    // live subscribers never got). When the writer ends first, the session finishes the
    // frame it is handling and stops before reading another.
    let writer_gone = session.writer_gone.clone();
    let writer = async move {
        write_loop(sink, out_rx).await;
        writer_gone.cancel();
    };
    let session = session.run(stream);
    tokio::pin!(writer);
    tokio::pin!(session);
    tokio::select! {
        () = &mut writer => session.await,
        () = &mut session => {
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, writer).await;
        }
    }
    shared.metrics.connection_closed();
    tracing::debug!(connection = id, "websocket closed");
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !closing => {}
            // Failed, closing, or a client that has not read for WRITE_TIMEOUT: done.
            _ => return,
        }
    }
    let _ = sink.close().await;
}

struct Session {
    id: u64,
    shared: Arc<Shared>,
    out: mpsc::Sender<Message>,
    phase: Phase,
    nonce: [u8; 32],
    bucket: Bucket,
    /// Live events for the subscribed space.
    live: Option<mpsc::Receiver<Live>>,
    /// Cancelled by the hub when this subscriber fell behind (or its space was deleted).
    overflow: CancellationToken,
    subscribed: Option<SpaceId>,
    /// The last seq this connection has sent (or was told of) to its subscriber.
    cursor: u64,
    /// Seqs of this connection's own pushes past the cursor: never echoed back.
    /// Cancelled when the connection's writer has stopped (the client is gone).
    writer_gone: CancellationToken,
    own: BTreeSet<u64>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(space) = self.subscribed {
            self.shared.hub.unsubscribe(space.as_bytes(), self.id);
        }
    }
}

async fn next_live(live: &mut Option<mpsc::Receiver<Live>>) -> Option<Live> {
    match live {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn is_too_large(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// A full disk refuses every push; say so at most every 10 s, not once per push.
fn disk_full_log_due() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    (last == 0 || now >= last + 10)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The reject for a store failure; the message says what to do.
fn store_reject(error: &StoreError) -> (RejectCode, String) {
    match error {
        StoreError::NoSuchSpace => (
            RejectCode::NotMember,
            "the space no longer exists on this relay; stop syncing it".into(),
        ),
        StoreError::SpaceExists => (
            RejectCode::Conflict,
            "a space with this id already exists; create the space again with a new id".into(),
        ),
        StoreError::Conflict(m) => (
            RejectCode::Conflict,
            format!("{m}; fetch the latest state and retry"),
        ),
        StoreError::QuotaExceeded(m) => (
            RejectCode::QuotaExceeded,
            format!("{m}; compact with a snapshot or ask the relay's operator to raise the quota"),
        ),
        StoreError::DiskFull => (
            RejectCode::QuotaExceeded,
            "the relay's disk is full and nothing was stored; tell the relay's operator".into(),
        ),
        StoreError::BadSignature => (
            RejectCode::Invalid,
            "the envelope was refused (its signature does not verify); nothing was stored; do not resend it unchanged".into(),
        ),
        StoreError::Unavailable(_) | StoreError::Database(_) => (
            RejectCode::StorageUnavailable,
            "the relay could not reach its storage; retry later with backoff (your data stays local)"
                .into(),
        ),
    }
}

/// The reject for an ACL record the chain refuses.
fn acl_reject(error: &ProtoError) -> (RejectCode, String) {
    match error {
        ProtoError::BrokenChain(_) => (
            RejectCode::Conflict,
            format!("{error}: another record was appended first; fetch the ACL and retry"),
        ),
        ProtoError::InviteExpired { .. } => (RejectCode::InviteExpired, error.to_string()),
        ProtoError::InviteUsed => (RejectCode::InviteUsed, error.to_string()),
        _ => (
            RejectCode::Invalid,
            format!("{error}; do not resend this record unchanged"),
        ),
    }
}

impl Session {
    async fn run(mut self, mut stream: SplitStream<WebSocket>) {
        let config = &self.shared.config;
        let handshake_deadline = tokio::time::Instant::now() + config.handshake_timeout;
        let idle = config.idle_timeout.max(Duration::from_millis(10));
        let mut last_heard = tokio::time::Instant::now();
        let mut ping = tokio::time::interval_at(last_heard + idle / 2, idle / 2);
        let shutdown = self.shared.shutdown.clone();
        loop {
            let ready = matches!(self.phase, Phase::Ready(_));
            let deadline = if ready {
                last_heard + idle
            } else {
                handshake_deadline
            };
            let overflow = self.overflow.clone();
            let writer_gone = self.writer_gone.clone();
            let step = tokio::select! {
                // Nothing can reach the client any more; checked between frames only.
                () = writer_gone.cancelled() => return,
                () = shutdown.cancelled() => {
                    self.close(1001, "the relay is shutting down; reconnect later").await;
                    return;
                }
                () = overflow.cancelled() => {
                    let _ = self
                        .reject(
                            RejectCode::RateLimited,
                            "this connection fell behind the live stream; reconnect and Subscribe from your last seq",
                        )
                        .await;
                    self.close(1008, "fell behind").await;
                    return;
                }
                () = tokio::time::sleep_until(deadline) => {
                    if ready {
                        self.close(1001, "idle for too long; reconnect when needed").await;
                    } else {
                        self.close(1008, "authenticate within the handshake timeout").await;
                    }
                    return;
                }
                _ = ping.tick(), if ready => {
                    self.out.send(Message::Ping(Bytes::new())).await.map_err(|_| Stop)
                }
                Some(live) = next_live(&mut self.live) => self.deliver(live).await,
                message = stream.next() => match message {
                    None | Some(Ok(Message::Close(_))) => return,
                    Some(Err(e)) => {
                        if is_too_large(e) {
                            let max = self.shared.config.limits.max_frame_bytes;
                            let _ = self
                                .reject(
                                    RejectCode::TooLarge,
                                    &format!("a frame is over this relay's limit of {max} bytes; split the batch into smaller envelopes"),
                                )
                                .await;
                            self.close(1009, "frame too large").await;
                        }
                        return;
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        last_heard = tokio::time::Instant::now();
                        self.shared.metrics.frame_in();
                        self.handle(&bytes).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = tokio::time::Instant::now();
                        Ok(())
                    }
                    Some(Ok(Message::Text(_))) => {
                        self.reject_and_close(RejectCode::BadFrame, "frames are binary websocket messages; reconnect with a hearth client").await
                    }
                },
            };
            if step.is_err() {
                self.close(1000, "closing").await;
                return;
            }
        }
    }

    async fn close(&self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.out.send(Message::Close(Some(frame))).await;
    }

    async fn send(&self, frame: &RelayFrame) -> Step {
        let bytes = match encode_relay(frame, self.shared.config.limits.frame_bytes()) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(connection = self.id, error = %e, "could not encode a reply");
                encode_relay(
                    &RelayFrame::Reject {
                        code: RejectCode::Internal,
                        message: "the relay could not encode its reply; retry later".into(),
                    },
                    self.shared.config.limits.frame_bytes(),
                )
                .map_err(|_| Stop)?
            }
        };
        self.shared.metrics.frame_out();
        // A client that stops reading fills the queue; shutdown must not wait on it.
        tokio::select! {
            sent = self.out.send(Message::Binary(bytes.into())) => sent.map_err(|_| Stop),
            () = self.shared.shutdown.cancelled() => Err(Stop),
        }
    }

    async fn reject(&self, code: RejectCode, message: &str) -> Step {
        self.shared.metrics.rejected(code);
        tracing::debug!(connection = self.id, ?code, "reject");
        self.send(&RelayFrame::Reject {
            code,
            message: message.into(),
        })
        .await
    }

    async fn reject_and_close(&self, code: RejectCode, message: &str) -> Step {
        self.reject(code, message).await?;
        Err(Stop)
    }

    async fn reject_store(&self, error: &StoreError) -> Step {
        let (code, message) = store_reject(error);
        if code == RejectCode::StorageUnavailable {
            tracing::warn!(connection = self.id, error = %error, "store failed");
        }
        if matches!(error, StoreError::DiskFull) && disk_full_log_due() {
            tracing::warn!(
                connection = self.id,
                "disk full: the database cannot grow (no room on its disk, or --max-db-mib \
                 reached); pushes are refused and clients keep their data until there is room"
            );
        }
        self.reject(code, &message).await
    }

    async fn handle(&mut self, bytes: &[u8]) -> Step {
        let frame = match decode_client(bytes, self.shared.config.limits.frame_bytes()) {
            Ok(frame) => frame,
            Err(ProtoError::TooLarge { size, max, .. }) => {
                return self
                    .reject_and_close(
                        RejectCode::TooLarge,
                        &format!("a frame of {size} bytes is over this relay's limit of {max}; split the batch into smaller envelopes"),
                    )
                    .await;
            }
            Err(e) => {
                return self
                    .reject_and_close(
                        RejectCode::BadFrame,
                        &format!(
                            "{e}; this is a client bug: reconnect, and do not resend the same bytes"
                        ),
                    )
                    .await;
            }
        };
        match (self.phase, frame) {
            (Phase::Hello, ClientFrame::Hello { version, client }) => {
                self.hello(version, &client).await
            }
            (
                Phase::Auth,
                ClientFrame::Auth {
                    device,
                    space,
                    time_ms,
                    signature,
                    as_invite,
                },
            ) => {
                self.auth(device, space, time_ms, &signature, as_invite)
                    .await
            }
            (Phase::Create { space, device }, ClientFrame::CreateSpace { genesis, token }) => {
                self.create(space, device, genesis, token).await
            }
            (Phase::Create { .. } | Phase::Ready(_), ClientFrame::Ping { nonce }) => {
                self.send(&RelayFrame::Pong { nonce }).await
            }
            (Phase::Create { .. }, _) => {
                self.reject_and_close(RejectCode::Unauthorized, UNAUTHORIZED)
                    .await
            }
            (Phase::Ready(authed), frame) => self.request(authed, frame).await,
            (Phase::Hello, _) => {
                self.reject_and_close(
                    RejectCode::BadFrame,
                    "the first frame must be Hello; reconnect and start with Hello",
                )
                .await
            }
            (Phase::Auth, _) => {
                self.reject_and_close(
                    RejectCode::BadFrame,
                    "after Challenge the next frame must be Auth; reconnect and authenticate",
                )
                .await
            }
        }
    }

    async fn hello(&mut self, version: u16, client: &str) -> Step {
        if check_version(version).is_err() {
            tracing::info!(
                connection = self.id,
                version,
                "unsupported protocol version"
            );
            let message = format!(
                "this relay speaks protocol version {} (supported: {SUPPORTED_VERSIONS:?}); your client speaks version {version}; upgrade whichever side is older",
                PROTOCOL_VERSION
            );
            return self
                .reject_and_close(RejectCode::UnsupportedVersion, &message)
                .await;
        }
        tracing::debug!(connection = self.id, client_len = client.len(), "hello");
        self.phase = Phase::Auth;
        self.send(&RelayFrame::Challenge {
            relay_id: self.shared.relay_id,
            nonce: self.nonce,
            limits: self.shared.config.limits,
            versions: SUPPORTED_VERSIONS.to_vec(),
        })
        .await
    }

    async fn auth(
        &mut self,
        device: DeviceId,
        space: SpaceId,
        time_ms: u64,
        signature: &[u8; 64],
        as_invite: bool,
    ) -> Step {
        let now = now_ms();
        let message = auth_message(
            &self.shared.relay_id,
            &self.nonce,
            time_ms,
            &space,
            &device,
            as_invite,
        );
        if now.abs_diff(time_ms) > MAX_AUTH_SKEW_MS
            || verify_signature(device.as_bytes(), &message, signature).is_err()
        {
            return self.unauthorized(space, device).await;
        }
        let chain = match self.shared.load_chain(space).await {
            Ok(Some(chain)) => chain,
            Ok(None) if !as_invite => {
                tracing::info!(connection = self.id, space = %space.short(), "authenticated to create a space");
                self.phase = Phase::Create { space, device };
                return self
                    .send(&RelayFrame::AclChanged {
                        records: Vec::new(),
                    })
                    .await;
            }
            Ok(None) => return self.unauthorized(space, device).await,
            Err(e) => {
                self.reject_store(&e).await?;
                return Err(Stop);
            }
        };
        if as_invite {
            let invite = InviteId::from_bytes(*device.as_bytes());
            let Some(info) = chain.state.invite(&invite) else {
                return self.unauthorized(space, device).await;
            };
            if info.revoked {
                return self
                    .reject_and_close(
                        RejectCode::InviteRevoked,
                        "this invite was cancelled when the space's devices changed; ask for a new invite",
                    )
                    .await;
            }
            if info.used_by.is_some()
                || (info.role == InviteRole::Partner && chain.state.partner_joined())
            {
                return self
                    .reject_and_close(RejectCode::InviteUsed, &ProtoError::InviteUsed.to_string())
                    .await;
            }
            if now >= info.expires_at_ms {
                let expired = ProtoError::InviteExpired {
                    expires_at_ms: info.expires_at_ms,
                };
                return self
                    .reject_and_close(RejectCode::InviteExpired, &expired.to_string())
                    .await;
            }
        } else if !chain.state.is_member(&device) {
            return self.unauthorized(space, device).await;
        }
        tracing::info!(
            connection = self.id,
            space = %space.short(),
            device = %device.short(),
            as_invite,
            records = chain.records.len(),
            "authenticated"
        );
        self.phase = Phase::Ready(Authed {
            space,
            key: device,
            as_invite,
        });
        self.send(&RelayFrame::AclChanged {
            records: chain.records.clone(),
        })
        .await
    }

    async fn unauthorized(&self, space: SpaceId, device: DeviceId) -> Step {
        tracing::info!(
            connection = self.id,
            space = %space.short(),
            device = %device.short(),
            "authentication refused"
        );
        self.reject_and_close(RejectCode::Unauthorized, UNAUTHORIZED)
            .await
    }

    async fn create(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        genesis: Vec<u8>,
        token: Option<String>,
    ) -> Step {
        if self.shared.config.creation == Creation::Token {
            let _ = token;
            return self
                .reject(
                    RejectCode::Invalid,
                    "this relay creates spaces only with an operator's creation token, and it cannot check tokens yet; ask the operator to run it in open mode",
                )
                .await;
        }
        let record = match AclRecord::decode(&genesis) {
            Ok(record) => record,
            Err(e) => {
                return self
                    .reject(
                        RejectCode::Invalid,
                        &format!(
                            "the genesis record does not decode ({e}); send a valid Genesis record"
                        ),
                    )
                    .await;
            }
        };
        let names_this = matches!(
            record.body,
            AclBody::Genesis { space: s, device: d, .. } if s == space && d == device
        );
        if !names_this {
            return self
                .reject(
                    RejectCode::Invalid,
                    "CreateSpace needs a Genesis record naming the authenticated space and device; sign one that names both",
                )
                .await;
        }
        if let Err(e) =
            AclState::from_records(std::slice::from_ref(&record), &self.shared.config.limits)
        {
            return self
                .reject(
                    RejectCode::Invalid,
                    &format!("the genesis record is refused ({e}); do not resend it unchanged"),
                )
                .await;
        }
        let key = *space.as_bytes();
        let stored = genesis.clone();
        let now = now_ms();
        if let Err(e) = self
            .shared
            .store
            .run(move |s| s.create_space(&key, &stored, now))
            .await
        {
            return self.reject_store(&e).await;
        }
        tracing::info!(connection = self.id, space = %space.short(), bytes = genesis.len(), "space created");
        let chain = verify_chain(vec![genesis.clone()], &self.shared.config.limits);
        if let Ok(chain) = chain {
            self.shared.remember_created(space, Arc::new(chain));
        }
        self.phase = Phase::Ready(Authed {
            space,
            key: device,
            as_invite: false,
        });
        self.send(&RelayFrame::AclChanged {
            records: vec![genesis],
        })
        .await
    }

    async fn request(&mut self, authed: Authed, frame: ClientFrame) -> Step {
        match frame {
            ClientFrame::Hello { .. }
            | ClientFrame::Auth { .. }
            | ClientFrame::CreateSpace { .. } => {
                self.reject_and_close(
                    RejectCode::BadFrame,
                    "this connection is already authenticated; reconnect to start over",
                )
                .await
            }
            ClientFrame::Ping { nonce } => self.send(&RelayFrame::Pong { nonce }).await,
            ClientFrame::GetLockbox { epoch } => self.get_lockbox(authed, epoch).await,
            ClientFrame::PutAcl { record } => self.put_acl(authed, record).await,
            _ if authed.as_invite => self.reject(RejectCode::Invalid, INVITE_ONLY).await,
            ClientFrame::Subscribe { space, since_seq } => {
                self.subscribe(authed, space, since_seq).await
            }
            ClientFrame::Push { envelope } => self.push(authed, envelope).await,
            ClientFrame::PushSnapshot { envelope } => self.push_snapshot(authed, envelope).await,
            ClientFrame::PutLockbox {
                device,
                epoch,
                blob,
            } => self.put_lockbox(authed, device, epoch, blob).await,
            ClientFrame::DeleteSpace { space, signature } => {
                self.delete_space(authed, space, &signature).await
            }
        }
    }

    /// The current chain, or a reject already sent.
    async fn chain(&self, space: SpaceId) -> Result<Option<Arc<Chain>>, Stop> {
        match self.shared.chain(space).await {
            Ok(Some(chain)) => Ok(Some(chain)),
            Ok(None) => {
                self.reject_store(&StoreError::NoSuchSpace).await?;
                Ok(None)
            }
            Err(e) => {
                self.reject_store(&e).await?;
                Ok(None)
            }
        }
    }

    async fn subscribe(&mut self, authed: Authed, space: SpaceId, since_seq: u64) -> Step {
        if space != authed.space {
            return self
                .reject(
                    RejectCode::Invalid,
                    "Subscribe must name the space this connection authenticated for; reconnect and authenticate for that space",
                )
                .await;
        }
        let Some(chain) = self.chain(space).await? else {
            return Ok(());
        };
        if !chain.state.is_member(&authed.key) {
            return self.reject_and_close(RejectCode::NotMember, REMOVED).await;
        }
        // Register first, so that nothing committed after the reads below is missed; the
        // cursor drops whatever the reads already sent.
        let (queue, live) = mpsc::channel(LIVE_QUEUE);
        let overflow = CancellationToken::new();
        self.shared
            .hub
            .subscribe(*space.as_bytes(), self.id, queue, overflow.clone());
        self.live = Some(live);
        self.overflow = overflow;
        self.subscribed = Some(space);
        self.cursor = since_seq;
        self.own.clear();
        let key = *space.as_bytes();
        let snapshot = self
            .shared
            .store
            .run(move |s| Ok((s.snapshot(&key)?, s.head(&key)?)))
            .await;
        let (snapshot, head) = match snapshot {
            Ok(found) => found,
            Err(e) => return self.reject_store(&e).await,
        };
        if let Some((covers, bytes)) = snapshot
            && covers > since_seq
        {
            // The envelopes up to `covers` are gone: the snapshot stands in for them.
            self.send(&RelayFrame::Batch {
                items: vec![(covers, bytes)],
                head,
            })
            .await?;
            self.cursor = covers;
            if covers >= head {
                return Ok(());
            }
        }
        let page_bytes = self
            .shared
            .config
            .limits
            .frame_bytes()
            .saturating_sub(PAGE_OVERHEAD)
            .max(1);
        loop {
            let after = self.cursor;
            let page = self
                .shared
                .store
                .run(move |s| Ok((s.since(&key, after, PAGE_ITEMS, page_bytes)?, s.head(&key)?)))
                .await;
            let (items, head) = match page {
                Ok(page) => page,
                Err(e) => return self.reject_store(&e).await,
            };
            if let Some((last, _)) = items.last() {
                self.cursor = *last;
            }
            let done = items.is_empty() || self.cursor >= head;
            tracing::debug!(connection = self.id, items = items.len(), head, "batch");
            self.send(&RelayFrame::Batch { items, head }).await?;
            if done {
                return Ok(());
            }
        }
    }

    async fn deliver(&mut self, live: Live) -> Step {
        match live {
            Live::Acl(record) => {
                self.send(&RelayFrame::AclChanged {
                    records: vec![record.to_vec()],
                })
                .await?;
                self.still_member().await
            }
            Live::Deleted => {
                self.reject_and_close(
                    RejectCode::NotMember,
                    "the space was deleted by one of its devices; stop syncing it",
                )
                .await
            }
            Live::Event { seq, envelope } => {
                if seq <= self.cursor {
                    return Ok(());
                }
                self.catch_up(seq).await?;
                if seq == self.cursor + 1 {
                    self.send(&RelayFrame::Event {
                        seq,
                        envelope: envelope.to_vec(),
                    })
                    .await?;
                    self.cursor = seq;
                    self.skip_own();
                }
                Ok(())
            }
        }
    }

    /// After an ACL change: a device that was removed is told so and disconnected.
    async fn still_member(&self) -> Step {
        let Phase::Ready(authed) = self.phase else {
            return Ok(());
        };
        if authed.as_invite {
            return Ok(());
        }
        match self.shared.chain(authed.space).await {
            Ok(Some(chain)) if !chain.state.is_member(&authed.key) => {
                self.reject_and_close(RejectCode::NotMember, REMOVED).await
            }
            _ => Ok(()),
        }
    }

    /// Sends, from the store, every envelope between the cursor and `before`: events can
    /// reach the hub out of order when pushes from several connections commit together.
    async fn catch_up(&mut self, before: u64) -> Step {
        let Some(space) = self.subscribed else {
            return Ok(());
        };
        let key = *space.as_bytes();
        let page_bytes = self.shared.config.limits.frame_bytes() / 2;
        while self.cursor + 1 < before {
            let after = self.cursor;
            let items = match self
                .shared
                .store
                .run(move |s| s.since(&key, after, PAGE_ITEMS, page_bytes))
                .await
            {
                Ok(items) => items,
                Err(e) => return self.reject_store(&e).await,
            };
            let Some((first, _)) = items.first() else {
                // A snapshot dropped them in the meantime.
                self.cursor = before - 1;
                return Ok(());
            };
            if *first >= before {
                self.cursor = before - 1;
                return Ok(());
            }
            for (seq, envelope) in items {
                if seq >= before {
                    break;
                }
                if !self.own.remove(&seq) {
                    self.send(&RelayFrame::Event { seq, envelope }).await?;
                }
                self.cursor = seq;
            }
        }
        Ok(())
    }

    fn skip_own(&mut self) {
        while self.own.remove(&(self.cursor + 1)) {
            self.cursor += 1;
        }
        // Anything at or below the cursor can no longer come up.
        let cursor = self.cursor;
        self.own.retain(|seq| *seq > cursor);
    }

    /// Refuses an envelope that does not decode or verify.
    async fn refuse_envelope(&self, error: &ProtoError, bytes: usize) -> Step {
        tracing::info!(connection = self.id, bytes, "envelope refused");
        self.reject(
            RejectCode::Invalid,
            &format!(
                "the envelope was refused ({error}); nothing was stored; do not resend it unchanged"
            ),
        )
        .await
    }

    /// Decodes and checks an envelope for this connection, all but its signature; `None`
    /// once a reject was sent.
    async fn checked_envelope(
        &self,
        authed: Authed,
        bytes: &[u8],
        snapshot: bool,
    ) -> Result<Option<Envelope>, Stop> {
        let max = self.shared.config.limits.envelope_bytes();
        if bytes.len() > max {
            self.reject(
                RejectCode::TooLarge,
                &format!("an envelope of {} bytes is over this relay's limit of {max}; split the batch into smaller envelopes", bytes.len()),
            )
            .await?;
            return Ok(None);
        }
        // The signature is checked later: a push's by the store thread, in a batch with
        // the others waiting (see worker.rs); a snapshot's by `push_snapshot`.
        let envelope = match Envelope::decode(bytes) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.refuse_envelope(&e, bytes.len()).await?;
                return Ok(None);
            }
        };
        let header = envelope.header();
        let kind_ok = matches!(
            (header.kind, snapshot),
            (EnvelopeKind::Changes, false) | (EnvelopeKind::Snapshot { .. }, true)
        );
        if !kind_ok {
            self.reject(
                RejectCode::Invalid,
                "wrong envelope kind: send changes with Push and snapshots with PushSnapshot",
            )
            .await?;
            return Ok(None);
        }
        if header.space != authed.space {
            self.reject(
                RejectCode::Invalid,
                "the envelope names another space than this connection authenticated for; push it on a connection authenticated for its space",
            )
            .await?;
            return Ok(None);
        }
        if header.author != authed.key {
            self.reject(
                RejectCode::NotMember,
                "the envelope's author is not the device this connection authenticated as; push only your own envelopes",
            )
            .await?;
            return Ok(None);
        }
        let Some(chain) = self.chain(authed.space).await? else {
            return Ok(None);
        };
        if !chain.state.is_member(&header.author) {
            self.reject(RejectCode::NotMember, REMOVED).await?;
            return Ok(None);
        }
        if header.epoch > chain.state.epoch() {
            self.reject(
                RejectCode::Invalid,
                &format!(
                    "the envelope names epoch {}, but the space is at epoch {}; fetch the ACL",
                    header.epoch,
                    chain.state.epoch()
                ),
            )
            .await?;
            return Ok(None);
        }
        Ok(Some(envelope))
    }

    async fn push(&mut self, authed: Authed, bytes: Vec<u8>) -> Step {
        if !self.bucket.take() {
            let rate = self.shared.config.limits.max_pushes_per_sec;
            return self
                .reject(
                    RejectCode::RateLimited,
                    &format!("more than {rate} pushes per second; back off and retry later"),
                )
                .await;
        }
        let Some(envelope) = self.checked_envelope(authed, &bytes, false).await? else {
            return Ok(());
        };
        let header = envelope.header();
        let counter = header.counter;
        let signed = Signed {
            message: Envelope::signed_message(header, envelope.nonce(), envelope.ciphertext()),
            signature: *envelope.signature(),
        };
        drop(envelope);
        let size = bytes.len();
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let outcome = self
            .shared
            .store
            .push(
                *authed.space.as_bytes(),
                *authed.key.as_bytes(),
                counter,
                Arc::clone(&bytes),
                signed,
            )
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(StoreError::BadSignature) => {
                return self.refuse_envelope(&ProtoError::BadSignature, size).await;
            }
            Err(e) => return self.reject_store(&e).await,
        };
        tracing::debug!(
            connection = self.id,
            seq = outcome.seq,
            counter,
            bytes = size,
            duplicate = outcome.duplicate,
            "push committed"
        );
        if !outcome.duplicate {
            self.shared.metrics.stored(size);
            self.shared.hub.publish(
                authed.space.as_bytes(),
                self.id,
                &Live::Event {
                    seq: outcome.seq,
                    envelope: bytes,
                },
            );
            if self.subscribed.is_some() && outcome.seq > self.cursor {
                self.own.insert(outcome.seq);
                self.skip_own();
            }
        }
        self.send(&RelayFrame::Committed {
            seq: outcome.seq,
            counter,
        })
        .await
    }

    async fn push_snapshot(&mut self, authed: Authed, bytes: Vec<u8>) -> Step {
        if !self.bucket.take() {
            return self
                .reject(
                    RejectCode::RateLimited,
                    "too many pushes per second; back off and retry later",
                )
                .await;
        }
        let Some(envelope) = self.checked_envelope(authed, &bytes, true).await? else {
            return Ok(());
        };
        let EnvelopeKind::Snapshot { covers_seq } = envelope.header().kind else {
            return Ok(());
        };
        if let Err(e) = envelope.verify() {
            return self.refuse_envelope(&e, bytes.len()).await;
        }
        let counter = envelope.header().counter;
        let key = *authed.space.as_bytes();
        let size = bytes.len();
        if let Err(e) = self
            .shared
            .store
            .run(move |s| s.put_snapshot(&key, covers_seq, &bytes))
            .await
        {
            return self.reject_store(&e).await;
        }
        tracing::info!(
            connection = self.id,
            covers_seq,
            bytes = size,
            "snapshot stored"
        );
        self.send(&RelayFrame::Committed {
            seq: covers_seq,
            counter,
        })
        .await
    }

    async fn put_acl(&mut self, authed: Authed, bytes: Vec<u8>) -> Step {
        let record = match AclRecord::decode(&bytes) {
            Ok(record) => record,
            Err(e) => {
                return self
                    .reject(
                        RejectCode::Invalid,
                        &format!(
                            "the ACL record does not decode ({e}); do not resend it unchanged"
                        ),
                    )
                    .await;
            }
        };
        if authed.as_invite {
            let consumes_this = matches!(
                record.body,
                AclBody::AddDevice { invite, .. } if invite.as_bytes() == authed.key.as_bytes()
            );
            if !consumes_this {
                return self.reject(RejectCode::Invalid, INVITE_ONLY).await;
            }
        }
        let key = *authed.space.as_bytes();
        let limits = self.shared.config.limits;
        let stored = bytes.clone();
        let now = now_ms();
        // Judged and appended on the store thread, so two records racing for the same
        // place in the chain are judged one after the other.
        let result = self
            .shared
            .store
            .run(move |s| {
                let mut chain = verify_chain(s.acl(&key)?, &limits)?;
                if let Err(e) = chain.state.apply(&record, now) {
                    return Ok(Err(e));
                }
                s.append_acl(&key, chain.state.len() - 1, &stored)?;
                chain.records.push(stored);
                Ok(Ok(chain))
            })
            .await;
        let chain = match result {
            Ok(Ok(chain)) => chain,
            Ok(Err(refused)) => {
                let (code, message) = acl_reject(&refused);
                return self.reject(code, &message).await;
            }
            Err(e) => return self.reject_store(&e).await,
        };
        tracing::info!(
            connection = self.id,
            space = %authed.space.short(),
            index = chain.records.len() - 1,
            "acl record appended"
        );
        self.shared.remember(authed.space, Arc::new(chain));
        self.shared.hub.publish(
            authed.space.as_bytes(),
            self.id,
            &Live::Acl(Arc::from(bytes.clone())),
        );
        self.send(&RelayFrame::AclChanged {
            records: vec![bytes],
        })
        .await
    }

    async fn put_lockbox(
        &mut self,
        authed: Authed,
        device: DeviceId,
        epoch: u32,
        blob: Vec<u8>,
    ) -> Step {
        let max = self.shared.config.limits.envelope_bytes();
        if blob.len() > max {
            return self
                .reject(
                    RejectCode::TooLarge,
                    &format!(
                        "a lockbox of {} bytes is over the limit of {max}",
                        blob.len()
                    ),
                )
                .await;
        }
        let Some(chain) = self.chain(authed.space).await? else {
            return Ok(());
        };
        if !chain.state.is_member(&authed.key) {
            return self.reject(RejectCode::NotMember, REMOVED).await;
        }
        if epoch > chain.state.epoch() {
            // Keys are wrapped only once the ACL has moved to their epoch, so two devices
            // racing to rotate cannot leave one's lockboxes under the other's record.
            return self
                .reject(
                    RejectCode::Invalid,
                    &format!(
                        "a lockbox for epoch {epoch}, but the space is at epoch {}; append the RotateEpoch record first",
                        chain.state.epoch()
                    ),
                )
                .await;
        }
        let known = chain.state.is_member(&device)
            || chain
                .state
                .invite(&InviteId::from_bytes(*device.as_bytes()))
                .is_some();
        if !known {
            return self
                .reject(
                    RejectCode::Invalid,
                    "a lockbox must be for a member device or an invite key in the ACL; upload the ACL record first",
                )
                .await;
        }
        let key = *authed.space.as_bytes();
        let size = blob.len();
        if let Err(e) = self
            .shared
            .store
            .run(move |s| s.put_lockbox(&key, device.as_bytes(), epoch, &blob))
            .await
        {
            return self.reject_store(&e).await;
        }
        tracing::debug!(connection = self.id, epoch, bytes = size, "lockbox stored");
        Ok(())
    }

    async fn get_lockbox(&mut self, authed: Authed, epoch: u32) -> Step {
        let key = *authed.space.as_bytes();
        let owner = *authed.key.as_bytes();
        match self
            .shared
            .store
            .run(move |s| s.lockbox(&key, &owner, epoch))
            .await
        {
            Ok(Some(blob)) => self.send(&RelayFrame::Lockbox { epoch, blob }).await,
            Ok(None) => {
                self.reject(
                    RejectCode::Conflict,
                    &format!("no lockbox for epoch {epoch} is stored for this key yet; a member device uploads it when it next syncs; retry later"),
                )
                .await
            }
            Err(e) => self.reject_store(&e).await,
        }
    }

    async fn delete_space(&mut self, authed: Authed, space: SpaceId, signature: &[u8; 64]) -> Step {
        let message = delete_space_message(&self.shared.relay_id, &self.nonce, &space);
        if space != authed.space
            || verify_signature(authed.key.as_bytes(), &message, signature).is_err()
        {
            return self
                .reject(
                    RejectCode::Invalid,
                    "DeleteSpace must name the authenticated space and be signed by this device over this connection's challenge",
                )
                .await;
        }
        let Some(chain) = self.chain(space).await? else {
            return Ok(());
        };
        if !chain.state.is_member(&authed.key) {
            return self.reject(RejectCode::NotMember, REMOVED).await;
        }
        let key = *space.as_bytes();
        if let Err(e) = self.shared.store.run(move |s| s.delete_space(&key)).await {
            return self.reject_store(&e).await;
        }
        tracing::info!(connection = self.id, space = %space.short(), "space deleted");
        self.shared.forget(space);
        self.shared
            .hub
            .publish(space.as_bytes(), self.id, &Live::Deleted);
        self.send(&RelayFrame::AclChanged {
            records: Vec::new(),
        })
        .await?;
        Err(Stop)
    }
}
