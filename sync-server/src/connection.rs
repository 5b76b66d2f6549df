//! One websocket connection, from `Hello` to close, as far as bytes go: reading frames,
//! running the [`Session`](crate::session)'s decision on each, carrying out the store
//! calls, hub publishes and sends it returns, and the timers (handshake, idle, ping) and
//! closes around them. Every rule about what a frame may do lives in the session; this
//! module decides nothing about the protocol.
//!
//! The task is a reader (this module's loop, which handles one frame at a time, so replies
//! go out in request order) and a writer draining a bounded queue, joined with `select!`:
//! whichever ends first ends the connection. Live events arrive on a second bounded queue
//! filled by the [`Hub`](crate::hub); the loop sends them in sequence order, reading any gap
//! back from the store, so a subscriber sees every seq after its cursor exactly once (the
//! bookkeeping is the [`Feed`]'s).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::clock::MonotonicClock;
use hearth_proto::{DeviceId, RejectCode, RelayFrame, SpaceId, encode_relay};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{Shared, verify_chain};
use crate::feed::{Arrival, Feed};
use crate::hub::Live;
use crate::metrics::Stamp;
use crate::reject::{Failure, Rejection, rejection};
use crate::session::{Answer, Close, Decision, Effect, Phase, Query, Session, StoreTrouble};
use crate::snapshots;
use crate::store::StoreError;

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

/// The connection must close (after whatever is already queued).
#[derive(Debug)]
struct Stop;

type Step = Result<(), Stop>;

/// Runs one websocket connection from the client at `peer` to its end.
pub(crate) async fn run(socket: WebSocket, shared: Arc<Shared>, peer: IpAddr) {
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
    let config = &shared.config;
    let connection = Connection {
        id,
        session: Session::new(
            id,
            Arc::clone(&shared.identity),
            nonce,
            config.limits,
            Arc::clone(&shared.gate),
            peer,
            MonotonicClock,
        ),
        shared: Arc::clone(&shared),
        out,
        closed: false,
        live: None,
        received: Instant::now(),
        overflow: CancellationToken::new(),
        writer_gone: CancellationToken::new(),
        feed: Feed::default(),
    };
    // The connection is never dropped in the middle of a frame: a push the store has taken
    // must be answered and, above all, fanned out to the other subscribers, even when the
    // pushing client is already gone (dropping it there once left a committed envelope that
    // live subscribers never got). When the writer ends first, the connection finishes the
    // frame it is handling and stops before reading another.
    let writer_gone = connection.writer_gone.clone();
    let writer = async move {
        write_loop(sink, out_rx).await;
        writer_gone.cancel();
    };
    let connection = connection.run(stream);
    tokio::pin!(writer);
    tokio::pin!(connection);
    tokio::select! {
        () = &mut writer => connection.await,
        () = &mut connection => {
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

struct Connection {
    id: u64,
    session: Session,
    shared: Arc<Shared>,
    out: mpsc::Sender<Message>,
    /// A close frame was queued: nothing more goes out.
    closed: bool,
    /// Live events for the subscribed space.
    live: Option<mpsc::Receiver<Live>>,
    /// When the frame being handled arrived.
    received: Instant,
    /// Cancelled by the hub when this subscriber fell behind (or its space was deleted).
    overflow: CancellationToken,
    /// Cancelled when the connection's writer has stopped (the client is gone).
    writer_gone: CancellationToken,
    feed: Feed,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(space) = self.feed.space() {
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

fn is_too_large(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// A full disk refuses every push; say so at most every 10 s, not once per push.
fn disk_full_log_due() -> bool {
    use std::sync::atomic::AtomicU64;
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    (last == 0 || now >= last + 10)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

impl Connection {
    async fn run(mut self, mut stream: SplitStream<WebSocket>) {
        let config = &self.shared.config;
        let handshake_deadline = tokio::time::Instant::now() + config.handshake_timeout;
        let idle = config.idle_timeout.max(Duration::from_millis(10));
        let mut last_heard = tokio::time::Instant::now();
        let mut ping = tokio::time::interval_at(last_heard + idle / 2, idle / 2);
        let shutdown = self.shared.shutdown.clone();
        loop {
            let ready = matches!(self.session.phase(), Phase::Ready(_));
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
                    let decision = self.session.on_fell_behind();
                    let _ = self.carry_out(decision).await;
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
                            let decision = self.session.on_oversized_message();
                            let _ = self.carry_out(decision).await;
                        }
                        return;
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        last_heard = tokio::time::Instant::now();
                        self.received = Instant::now();
                        self.shared.metrics.frame_in();
                        let decision = self.session.on_bytes(&bytes, self.shared.config.clock.now_ms());
                        self.carry_out(decision).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = tokio::time::Instant::now();
                        Ok(())
                    }
                    Some(Ok(Message::Text(_))) => {
                        let decision = self.session.on_text_message();
                        self.carry_out(decision).await
                    }
                },
            };
            if step.is_err() {
                self.close(1000, "closing").await;
                return;
            }
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.out.send(Message::Close(Some(frame))).await;
    }

    /// Carries out a decision, answering its queries until the session is done.
    async fn carry_out(&mut self, mut decision: Decision) -> Step {
        loop {
            for effect in decision.effects {
                self.effect(effect).await?;
            }
            let Some(query) = decision.query else {
                return Ok(());
            };
            let answer = self.answer(query).await;
            decision = self.session.resume(answer);
        }
    }

    async fn effect(&mut self, effect: Effect) -> Step {
        match effect {
            Effect::Send(frame) => self.send(&frame).await,
            Effect::Reject(rejection) => self.reject(rejection).await,
            Effect::StoreTrouble(trouble) => {
                self.store_trouble(&trouble);
                Ok(())
            }
            Effect::Close(Close { code, reason }) => {
                self.close(code, reason).await;
                Err(Stop)
            }
            Effect::Publish { space, live } => {
                let live = live.stamped(Stamp::at(self.received));
                self.shared.hub.publish(space.as_bytes(), self.id, &live);
                Ok(())
            }
            Effect::Remember { space, chain } => {
                self.shared.remember(space, chain);
                Ok(())
            }
            Effect::RememberCreated { space, chain } => {
                self.shared.remember_created(space, chain);
                Ok(())
            }
            Effect::Forget(space) => {
                self.shared.forget(space);
                Ok(())
            }
            Effect::Stored { bytes } => {
                self.shared.metrics.stored(bytes);
                Ok(())
            }
            Effect::OwnCommitted(seq) => {
                self.feed.own_committed(seq);
                Ok(())
            }
            Effect::Subscribe {
                space,
                since_seq,
                device,
                snapshot,
            } => self.subscribe(space, since_seq, device, snapshot).await,
        }
    }

    fn store_trouble(&self, trouble: &StoreTrouble) {
        match trouble {
            StoreTrouble::Unavailable(error) => {
                tracing::warn!(connection = self.id, error = %error, "store failed");
            }
            StoreTrouble::DiskFull => {
                if disk_full_log_due() {
                    tracing::warn!(
                        connection = self.id,
                        "disk full: the database cannot grow (no room on its disk, or --max-db-mib \
                         reached); pushes are refused and clients keep their data until there is room"
                    );
                }
            }
        }
    }

    async fn answer(&self, query: Query) -> Answer {
        let store = &self.shared.store;
        match query {
            Query::Chain { space, fresh } => Answer::Chain(if fresh {
                self.shared.load_chain(space).await
            } else {
                self.shared.chain(space).await
            }),
            Query::CreateSpace {
                space,
                genesis,
                now_ms,
                ticket,
            } => {
                let key = *space.as_bytes();
                Answer::Done(
                    store
                        .run(move |s| s.create_space(&key, &genesis, now_ms, ticket.as_ref()))
                        .await,
                )
            }
            Query::Push {
                space,
                device,
                counter,
                bytes,
                signed,
            } => {
                let outcome = store
                    .push(
                        *space.as_bytes(),
                        *device.as_bytes(),
                        counter,
                        bytes,
                        signed,
                        self.received,
                    )
                    .await;
                self.shared.metrics.push_committed(self.received);
                Answer::Pushed(outcome)
            }
            Query::ProposeSnapshot {
                space,
                covers_seq,
                author,
                bytes,
            } => {
                let key = *space.as_bytes();
                Answer::Done(
                    store
                        .run(move |s| {
                            s.propose_snapshot(&key, covers_seq, author.as_bytes(), &bytes)
                        })
                        .await,
                )
            }
            Query::Countersign {
                space,
                sender,
                request,
            } => {
                let limits = self.shared.config.limits;
                // Judged and accepted on the store thread, so a proposal replaced meanwhile
                // is never accepted on another's countersignature.
                Answer::Countersigned(
                    store
                        .run(move |s| snapshots::countersign(s, &limits, &space, &sender, &request))
                        .await,
                )
            }
            Query::AppendAcl {
                space,
                record,
                bytes,
                now_ms,
                accepted_elsewhere,
            } => {
                let key = *space.as_bytes();
                let limits = self.shared.config.limits;
                // Judged and appended on the store thread, so two records racing for the
                // same place in the chain are judged one after the other.
                Answer::Acl(
                    store
                        .run(move |s| {
                            let mut chain = verify_chain(s.acl(&key)?, &limits)?;
                            let judged = if accepted_elsewhere {
                                chain.state.replay(&record)
                            } else {
                                chain.state.apply(&record, now_ms)
                            };
                            if let Err(e) = judged {
                                return Ok(Err(e));
                            }
                            s.append_acl(&key, chain.state.len() - 1, &bytes)?;
                            chain.records.push(bytes);
                            Ok(Ok(chain))
                        })
                        .await,
                )
            }
            Query::PutLockbox {
                space,
                device,
                epoch,
                blob,
            } => {
                let key = *space.as_bytes();
                Answer::Done(
                    store
                        .run(move |s| s.put_lockbox(&key, device.as_bytes(), epoch, &blob))
                        .await,
                )
            }
            Query::GetLockbox {
                space,
                owner,
                epoch,
            } => {
                let key = *space.as_bytes();
                Answer::Lockbox(
                    store
                        .run(move |s| s.lockbox(&key, owner.as_bytes(), epoch))
                        .await,
                )
            }
            Query::DeleteSpace { space, tombstone } => {
                let key = *space.as_bytes();
                Answer::Done(store.run(move |s| s.delete_space(&key, &tombstone)).await)
            }
            Query::Tombstone { space } => {
                let key = *space.as_bytes();
                Answer::Tombstone(store.run(move |s| s.tombstone(&key)).await)
            }
            Query::Expiry { space } => {
                let key = *space.as_bytes();
                Answer::Expiry(store.run(move |s| s.expiry(&key)).await)
            }
        }
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

    async fn reject(&self, rejection: Rejection) -> Step {
        let Rejection { code, message } = rejection;
        self.shared.metrics.rejected(code);
        tracing::debug!(connection = self.id, ?code, "reject");
        self.send(&RelayFrame::Reject { code, message }).await
    }

    /// A store failure while streaming: reject, and carry on with the connection.
    async fn reject_store(&self, error: &StoreError) -> Step {
        if let Some(trouble) = StoreTrouble::of(error) {
            self.store_trouble(&trouble);
        }
        self.reject(rejection(Failure::Store(error))).await
    }

    /// Registers as the space's live subscriber, then sends everything after `since_seq`
    /// (with `snapshot`, the accepted snapshot first if it covers more, just after its
    /// countersignature), then the proposal waiting for `device`'s countersignature, if
    /// any: all before the next request is read, so before the `Pong` of a `Ping` sent
    /// after the `Subscribe`.
    async fn subscribe(
        &mut self,
        space: SpaceId,
        since_seq: u64,
        device: DeviceId,
        snapshot: bool,
    ) -> Step {
        // Register first, so that nothing committed after the reads below is missed; the
        // cursor drops whatever the reads already sent.
        let (queue, live) = mpsc::channel(LIVE_QUEUE);
        let overflow = CancellationToken::new();
        self.shared
            .hub
            .subscribe(*space.as_bytes(), self.id, queue, overflow.clone());
        self.live = Some(live);
        self.overflow = overflow;
        self.feed.start(space, since_seq);
        let key = *space.as_bytes();
        let stored = self
            .shared
            .store
            .run(move |s| Ok((s.snapshot(&key)?, s.head(&key)?, s.proposal(&key)?)))
            .await;
        let (accepted, head, proposal) = match stored {
            Ok(found) => found,
            Err(e) => return self.reject_store(&e).await,
        };
        let mut backlog = true;
        if let Some(accepted) = accepted.filter(|a| snapshot && a.covers_seq > since_seq) {
            // The envelopes up to `covers_seq` are gone: the snapshot stands in for them,
            // with the countersignature that lets it (none for one stored before consent).
            let covers = accepted.covers_seq;
            if let Some((device, signature)) = accepted.consent {
                self.send(&RelayFrame::Countersigned {
                    covers_seq: covers,
                    device: DeviceId::from_bytes(device),
                    signature,
                })
                .await?;
            }
            self.send(&RelayFrame::Batch {
                items: vec![(covers, accepted.bytes)],
                head,
            })
            .await?;
            self.feed.sent_through(covers);
            backlog = covers < head;
        }
        if backlog {
            self.send_backlog(key).await?;
        }
        if let Some(proposal) = proposal {
            self.show_proposal(space, device, proposal).await?;
        }
        Ok(())
    }

    /// Sends the stored envelopes after the feed's cursor, page by page, up to the head.
    async fn send_backlog(&mut self, key: crate::store::SpaceKey) -> Step {
        let page_bytes = self
            .shared
            .config
            .limits
            .frame_bytes()
            .saturating_sub(PAGE_OVERHEAD)
            .max(1);
        loop {
            let after = self.feed.cursor();
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
                self.feed.sent_through(*last);
            }
            let done = items.is_empty() || self.feed.cursor() >= head;
            tracing::debug!(connection = self.id, items = items.len(), head, "batch");
            self.send(&RelayFrame::Batch { items, head }).await?;
            if done {
                return Ok(());
            }
        }
    }

    /// Sends `proposal` to the subscribing `device` if its countersignature could count
    /// (a current member of another person than the author: [`snapshots::shown_to`]).
    async fn show_proposal(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        proposal: crate::store::Proposal,
    ) -> Step {
        let chain = match self.shared.chain(space).await {
            Ok(Some(chain)) => chain,
            Ok(None) => return Ok(()),
            Err(e) => return self.reject_store(&e).await,
        };
        let author = DeviceId::from_bytes(proposal.author);
        if !snapshots::shown_to(&chain.state, &device, &author) {
            return Ok(());
        }
        tracing::debug!(
            connection = self.id,
            covers_seq = proposal.covers_seq,
            "proposal shown"
        );
        self.send(&RelayFrame::Proposed {
            envelope: proposal.bytes,
        })
        .await
    }

    async fn deliver(&mut self, live: Live) -> Step {
        match live {
            Live::Acl(record) => {
                let decision = self.session.on_acl_changed(&record);
                self.carry_out(decision).await
            }
            Live::Deleted(tombstone) => {
                let decision = self.session.on_space_deleted(&tombstone);
                self.carry_out(decision).await
            }
            Live::Expired => {
                let decision = self.session.on_space_expired();
                self.carry_out(decision).await
            }
            Live::Event {
                seq,
                envelope,
                received,
            } => {
                match self.feed.arrival(seq) {
                    Arrival::Stale => return Ok(()),
                    Arrival::AfterGap => self.catch_up(seq).await?,
                    Arrival::Next => {}
                }
                if self.feed.arrival(seq) == Arrival::Next {
                    self.send(&RelayFrame::Event {
                        seq,
                        envelope: envelope.to_vec(),
                    })
                    .await?;
                    self.shared.metrics.push_forwarded(received);
                    self.feed.delivered(seq);
                }
                Ok(())
            }
        }
    }

    /// Sends, from the store, every envelope between the cursor and `before`: events can
    /// reach the hub out of order when pushes from several connections commit together.
    async fn catch_up(&mut self, before: u64) -> Step {
        let Some(space) = self.feed.space() else {
            return Ok(());
        };
        let key = *space.as_bytes();
        let page_bytes = self.shared.config.limits.frame_bytes() / 2;
        while self.feed.cursor() + 1 < before {
            let after = self.feed.cursor();
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
                self.feed.gap_gone(before);
                return Ok(());
            };
            if *first >= before {
                self.feed.gap_gone(before);
                return Ok(());
            }
            for (seq, envelope) in items {
                if seq >= before {
                    break;
                }
                if self.feed.refill(seq) {
                    self.send(&RelayFrame::Event { seq, envelope }).await?;
                }
            }
        }
        Ok(())
    }
}
