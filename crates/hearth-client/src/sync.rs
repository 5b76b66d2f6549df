//! The sync engine: one websocket conversation with the relay (DESIGN §2, §5).
//!
//! `sync_once` logs in, creates the space on the relay if it is not there yet, and adopts
//! the relay's ACL chain only if it extends the one this device verified before. It then
//! settles the keys: if a device was removed since the last rotation it moves the space to
//! a new epoch whose key it wraps for the remaining devices only; it shares a key it made
//! but has not shared yet (after a crash); and it fetches, from its lockboxes, every epoch's
//! key it lacks, trusting each only if it matches the check the signed chain holds. Then it
//! seals whatever this device wrote since its last push under the current epoch, pushes the
//! outbox (each envelope removed only after its `Committed`), and pulls everything after
//! its cursor. Every incoming envelope is verified (signature, space, epoch, author in the
//! ACL), decrypted and applied atomically with its cursor; one that fails is reported with
//! the device that sent it and skipped, and syncing goes on. One from an epoch newer than
//! the adopted chain stops the sync before its cursor (the ACL moved meanwhile) and the
//! sync runs again. Until a sync gets that far, local changes wait in the document.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hearth_crypto::{AclSigner, lockbox, sign_login};
use hearth_proto::{
    AclBody, AclRecord, AclState, ClientFrame, DeviceId, Envelope, Limits, PROTOCOL_VERSION,
    RejectCode, RelayFrame, SpaceId, decode_relay, encode_client,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::sync_state::Landmark;
use crate::{Error, Incoming, Profile};

/// How long the engine waits for the relay before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a sync did not complete. Local data is intact in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The relay could not be reached.
    #[error("cannot reach the relay at {relay}: {reason}")]
    Unreachable {
        /// The relay's URL.
        relay: String,
        /// What failed.
        reason: String,
    },
    /// The relay refused a request.
    #[error("the relay refused: {message}")]
    Refused {
        /// Its reject code.
        code: RejectCode,
        /// Its message.
        message: String,
    },
    /// The relay answered something the protocol does not allow.
    #[error("the relay broke the protocol: {0}")]
    Protocol(String),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
    /// This profile is not on a relay.
    #[error("this profile does not sync with a relay")]
    NotPaired,
    /// The relay does not let this device into the space. A relay answers a removed device
    /// and a stranger alike, so this says both.
    #[error(
        "the relay does not let this device into the space: another of the space's devices \
         may have removed it, or the space lives on another relay. Everything this device \
         holds stays readable here; to sync again, ask for a new invite and `hearth join` it"
    )]
    NotAdmitted,
    /// A key this device needs to read the space is not on the relay yet.
    #[error(
        "the space's key for epoch {epoch} is not available yet ({reason}); the device that \
         made it shares it when it next syncs. Your changes are kept here; sync again later"
    )]
    KeyUnavailable {
        /// The epoch.
        epoch: u32,
        /// Why it could not be had.
        reason: String,
    },
    /// The space's ACL changed while this sync ran; running it again picks the change up.
    #[error("the space's devices changed while syncing; sync again")]
    AclMoved,
    /// The relay no longer holds what this device received from it (its head is behind,
    /// or another envelope sits where one this device saw was): it was restored from an
    /// older backup or lost its database. This device rewound to the start: it reads the
    /// relay's history again and sends it everything on the next attempt ([`sync_once`]
    /// makes it at once).
    #[error(
        "the relay no longer holds update {cursor} as this device received it (it holds \
         {head}): it was probably restored from a backup; this device will read its history \
         again and send it everything, sync again"
    )]
    RelayBehind {
        /// The relay's head.
        head: u64,
        /// The update this device had received or committed that the relay no longer
        /// holds as it was.
        cursor: u64,
    },
    /// The local profile failed.
    #[error(transparent)]
    Profile(#[from] Error),
}

/// An envelope that was refused and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEnvelope {
    /// Its sequence number on the relay.
    pub seq: u64,
    /// The device that claims to have written it (unverified if the signature failed).
    pub device: Option<DeviceId>,
    /// Why it was refused.
    pub reason: String,
}

/// What one sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Envelopes pushed and committed.
    pub pushed: usize,
    /// Envelopes received and applied.
    pub received: usize,
    /// Envelopes refused (warn the user: they name the device).
    pub rejected: Vec<RejectedEnvelope>,
    /// The relay cursor afterwards.
    pub cursor: u64,
    /// Envelopes received that still wait for earlier changes which have not arrived (the
    /// relay withheld or reordered them, or one was refused); they apply once those do.
    pub waiting: usize,
    /// The relay had gone back in time (restored from a backup?): `(its head, the place of
    /// the landmark it no longer held)` when that was found. This sync read its history
    /// again and sent it everything.
    pub relay_behind: Option<(u64, u64)>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One websocket conversation.
pub(crate) struct Link {
    ws: Socket,
    relay: String,
    timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) relay_id: [u8; 16],
    pub(crate) nonce: [u8; 32],
}

fn install_tls_provider() {
    // rustls needs a process-wide crypto provider; ring is the one compiled in. Installing
    // twice is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client's websocket settings. A small read buffer: tungstenite's default (128 KiB)
/// is zero-filled again on every read, measured at ~3% of a busy client's CPU; frames are
/// mostly small, and a large one takes a few more reads. No Nagle delay either: frames are
/// whole messages, sent when ready.
pub fn websocket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8192)
}

impl Link {
    /// Connects and exchanges Hello / Challenge.
    pub(crate) async fn connect(relay: &str, timeout: Duration) -> Result<Link, SyncError> {
        install_tls_provider();
        let unreachable = |reason: String| SyncError::Unreachable {
            relay: relay.to_owned(),
            reason,
        };
        let connect =
            tokio_tungstenite::connect_async_with_config(relay, Some(websocket_config()), true);
        let (ws, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let mut link = Link {
            ws,
            relay: relay.to_owned(),
            timeout,
            limits: Limits::default(),
            relay_id: [0; 16],
            nonce: [0; 32],
        };
        link.send(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            client: format!("hearth/{}", env!("CARGO_PKG_VERSION")),
        })
        .await?;
        match link.recv().await? {
            RelayFrame::Challenge {
                relay_id,
                nonce,
                limits,
                ..
            } => {
                link.limits = limits;
                link.relay_id = relay_id;
                link.nonce = nonce;
                Ok(link)
            }
            other => Err(unexpected("Challenge", &other)),
        }
    }

    pub(crate) async fn send(&mut self, frame: &ClientFrame) -> Result<(), SyncError> {
        let bytes = encode_client(frame, self.limits.frame_bytes())
            .map_err(|e| SyncError::Protocol(format!("cannot encode a frame: {e}")))?;
        tokio::time::timeout(self.timeout, self.ws.send(Message::Binary(bytes.into())))
            .await
            .map_err(|_| SyncError::Timeout(self.timeout))?
            .map_err(|e| SyncError::Unreachable {
                relay: self.relay.clone(),
                reason: e.to_string(),
            })
    }

    /// The next frame from the relay; a `Reject` becomes [`SyncError::Refused`].
    pub(crate) async fn recv(&mut self) -> Result<RelayFrame, SyncError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.recv_any())
            .await
            .map_err(|_| SyncError::Timeout(timeout))?
    }

    /// The next frame, however long it takes (for a connection that stays open).
    pub(crate) async fn recv_any(&mut self) -> Result<RelayFrame, SyncError> {
        loop {
            let next = self.ws.next().await;
            let message = match next {
                None => return Err(self.closed()),
                Some(Err(e)) => {
                    return Err(SyncError::Unreachable {
                        relay: self.relay.clone(),
                        reason: e.to_string(),
                    });
                }
                Some(Ok(m)) => m,
            };
            match message {
                Message::Binary(bytes) => {
                    let frame = decode_relay(&bytes, self.limits.frame_bytes())
                        .map_err(|e| SyncError::Protocol(format!("an unreadable frame: {e}")))?;
                    if let RelayFrame::Reject { code, message } = frame {
                        return Err(SyncError::Refused { code, message });
                    }
                    return Ok(frame);
                }
                Message::Close(_) => return Err(self.closed()),
                // Pings are answered by tungstenite; text frames are not part of the protocol.
                _ => {}
            }
        }
    }

    fn closed(&self) -> SyncError {
        SyncError::Unreachable {
            relay: self.relay.clone(),
            reason: "the relay closed the connection".into(),
        }
    }

    /// Logs in as `signer` for `space`; returns the relay's ACL chain (empty if the space
    /// does not exist there yet).
    pub(crate) async fn login(
        &mut self,
        signer: &(dyn AclSigner + Sync),
        space: &SpaceId,
        as_invite: bool,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        let time_ms = now_ms();
        let (key, signature) = sign_login(
            signer,
            &self.relay_id,
            &self.nonce,
            time_ms,
            space,
            as_invite,
        );
        self.send(&ClientFrame::Auth {
            device: DeviceId::from_bytes(key),
            space: *space,
            time_ms,
            signature,
            as_invite,
        })
        .await?;
        match self.recv().await {
            Ok(RelayFrame::AclChanged { records }) => Ok(records),
            Ok(other) => Err(unexpected("AclChanged", &other)),
            Err(SyncError::Refused {
                code: RejectCode::Unauthorized,
                ..
            }) if !as_invite => Err(SyncError::NotAdmitted),
            Err(e) => Err(e),
        }
    }

    /// Closes the conversation politely; errors are irrelevant by then.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

fn unexpected(wanted: &str, got: &RelayFrame) -> SyncError {
    let name = match got {
        RelayFrame::Challenge { .. } => "Challenge",
        RelayFrame::Batch { .. } => "Batch",
        RelayFrame::Committed { .. } => "Committed",
        RelayFrame::Event { .. } => "Event",
        RelayFrame::AclChanged { .. } => "AclChanged",
        RelayFrame::Lockbox { .. } => "Lockbox",
        RelayFrame::Reject { .. } => "Reject",
        RelayFrame::Pong { .. } => "Pong",
    };
    SyncError::Protocol(format!("expected {wanted}, got {name}"))
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn decode_chain(records: &[Vec<u8>]) -> Result<Vec<AclRecord>, SyncError> {
    records
        .iter()
        .map(|r| AclRecord::decode(r))
        .collect::<Result<_, _>>()
        .map_err(|e| SyncError::Protocol(format!("an ACL record does not decode: {e}")))
}

/// Takes the relay's chain if it verifies and extends the one this device already has: a
/// relay can withhold records, but it cannot make a device forget or rewrite one.
fn adopt_chain(profile: &mut Profile, relay_chain: &[Vec<u8>]) -> Result<AclState, SyncError> {
    let local = profile.acl_records()?;
    if relay_chain.len() < local.len() || relay_chain[..local.len()] != local[..] {
        return Err(SyncError::Protocol(
            "the relay's ACL does not extend the one this device verified (a rollback or a \
             fork); nothing was changed"
                .into(),
        ));
    }
    let decoded = decode_chain(relay_chain)?;
    let state = AclState::from_records(&decoded, &Limits::default())
        .map_err(|e| SyncError::Protocol(format!("the relay's ACL does not verify: {e}")))?;
    if relay_chain.len() > local.len() {
        profile.replace_acl(relay_chain)?;
    }
    Ok(state)
}

/// Pushes this device's changes and pulls everyone else's, once.
///
/// # Errors
/// A [`SyncError`]; whatever was committed or applied before it stays, the rest is kept
/// locally for the next sync.
pub async fn sync_once(profile: &mut Profile, timeout: Duration) -> Result<SyncReport, SyncError> {
    // A device that joins or rotates while this one syncs moves the ACL on; a second run
    // picks that up. Beyond that, say so rather than loop.
    let mut attempts = 0;
    let mut behind = None;
    loop {
        attempts += 1;
        match sync_attempt(profile, timeout).await {
            Err(SyncError::AclMoved) if attempts < 3 => {}
            Err(SyncError::RelayBehind { head, cursor }) if attempts < 3 => {
                tracing::warn!(
                    head,
                    cursor,
                    "the relay went back in time; sending it everything again"
                );
                behind = Some((head, cursor));
            }
            Ok(mut report) => {
                report.relay_behind = behind;
                return Ok(report);
            }
            done => return done,
        }
    }
}

async fn sync_attempt(profile: &mut Profile, timeout: Duration) -> Result<SyncReport, SyncError> {
    let relay = profile.relay()?.ok_or(SyncError::NotPaired)?;
    profile.acl_state()?.ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;

    let mut link = Link::connect(&relay, timeout).await?;
    let mut chain = link.login(&profile.secrets.device, &space, false).await?;
    if chain.is_empty() {
        let genesis = profile
            .acl_records()?
            .into_iter()
            .next()
            .ok_or(SyncError::NotPaired)?;
        link.send(&ClientFrame::CreateSpace {
            genesis,
            token: None,
        })
        .await?;
        chain = match link.recv().await? {
            RelayFrame::AclChanged { records } => records,
            other => return Err(unexpected("AclChanged", &other)),
        };
    }
    let report = match settle(profile, &mut link, &space, &chain).await {
        Ok(state) => match exchange(profile, &mut link, &space, &state).await {
            Ok(report) => snapshot_if_due(profile, &mut link, &state, &report)
                .await
                .map(|()| report),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    link.close().await;
    if report.is_ok() {
        profile.mark_synced(now_ms())?;
    }
    report
}

/// Brings this device in line with the relay's ACL `chain` after logging in: adopts it,
/// rotates the space's key if a removal asks for it, shares a key this device made with
/// the other members, and fetches every key it lacks. Returns the state to sync under.
async fn settle(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    chain: &[Vec<u8>],
) -> Result<AclState, SyncError> {
    let mut state = adopt_chain(profile, chain)?;
    if state.needs_rotation() {
        state = rotate(profile, link, &state).await?;
    }
    share_key(profile, link, &state).await?;
    fetch_keys(profile, link, space, &state).await?;
    Ok(state)
}

/// Moves the space to a new epoch whose key only the current members receive.
async fn rotate(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
) -> Result<AclState, SyncError> {
    let (record, key) = profile.rotation(state)?;
    let epoch = state.epoch() + 1;
    // Kept before the relay can accept the record: from then on this device alone holds
    // the key until its lockboxes are up. If the record loses a race instead, the key's
    // check will not match the chain and `fetch_keys` replaces it.
    profile.put_epoch_key(epoch, &key)?;
    let state = append_record(profile, link, &record).await?;
    tracing::info!(epoch, "rotated the space's key");
    Ok(state)
}

/// Offers `record` to the relay and, once it is accepted, appends it to the local chain.
/// A record that lost the race for its place in the chain (another device changed the ACL
/// first) is [`SyncError::AclMoved`].
async fn append_record(
    profile: &mut Profile,
    link: &mut Link,
    record: &AclRecord,
) -> Result<AclState, SyncError> {
    let bytes = record.encode();
    link.send(&ClientFrame::PutAcl {
        record: bytes.clone(),
    })
    .await?;
    match link.recv().await {
        Ok(RelayFrame::AclChanged { .. }) => {}
        Ok(other) => return Err(unexpected("AclChanged", &other)),
        Err(SyncError::Refused {
            code: RejectCode::Conflict,
            ..
        }) => return Err(SyncError::AclMoved),
        Err(e) => return Err(e),
    }
    let mut chain = profile.acl_records()?;
    chain.push(bytes);
    adopt_chain(profile, &chain)
}

/// A new connection, logged in as this device, with the relay's chain adopted.
async fn reconnect(profile: &mut Profile, timeout: Duration) -> Result<Link, SyncError> {
    let relay = profile.relay()?.ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;
    let mut link = Link::connect(&relay, timeout).await?;
    let chain = link.login(&profile.secrets.device, &space, false).await?;
    adopt_chain(profile, &chain)?;
    Ok(link)
}

/// If this device made the current epoch's key and has not shared it yet, wraps it for
/// every other member (lockboxes the relay keeps for them).
async fn share_key(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
) -> Result<(), SyncError> {
    let epoch = state.epoch();
    if epoch == 0 || state.epoch_by() != profile.device_id() || profile.shared_epoch()? >= epoch {
        return Ok(());
    }
    let key = profile
        .epoch_key(epoch)?
        .ok_or_else(|| SyncError::KeyUnavailable {
            epoch,
            reason: "this device made it but no longer holds it".into(),
        })?;
    let space = state.space();
    let me = profile.device_id();
    for device in state.members().filter(|d| **d != me) {
        let Some(recipient) = state.recipient(device) else {
            continue;
        };
        let blob =
            lockbox::seal(&key, space.as_bytes(), epoch, recipient).map_err(crate::Error::from)?;
        link.send(&ClientFrame::PutLockbox {
            device: *device,
            epoch,
            blob,
        })
        .await?;
    }
    confirm(link).await?;
    profile.set_shared_epoch(epoch)?;
    Ok(())
}

/// PutLockbox has no success reply; a Ping proves the relay processed what came before it
/// (replies come in request order, and a refusal would arrive first).
async fn confirm(link: &mut Link) -> Result<(), SyncError> {
    link.send(&ClientFrame::Ping { nonce: 1 }).await?;
    match link.recv().await? {
        RelayFrame::Pong { .. } => Ok(()),
        other => Err(unexpected("Pong", &other)),
    }
}

/// Makes sure this device holds every epoch's key the chain has reached, each matching the
/// check the chain holds for it; missing or mismatched ones come from this device's
/// lockboxes on the relay.
async fn fetch_keys(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    state: &AclState,
) -> Result<(), SyncError> {
    for epoch in 0..=state.epoch() {
        let check = state.key_check(epoch).copied();
        if let Some(key) = profile.epoch_key(epoch)?
            && Some(key.check(space, epoch)) == check
        {
            continue;
        }
        let unavailable = |reason: &str| SyncError::KeyUnavailable {
            epoch,
            reason: reason.to_owned(),
        };
        link.send(&ClientFrame::GetLockbox { epoch }).await?;
        let blob = match link.recv().await {
            Ok(RelayFrame::Lockbox { blob, .. }) => blob,
            Ok(other) => return Err(unexpected("Lockbox", &other)),
            Err(SyncError::Refused {
                code: RejectCode::Conflict,
                ..
            }) => {
                return Err(unavailable(
                    "the relay holds no key box for this device yet",
                ));
            }
            Err(e) => return Err(e),
        };
        let key = lockbox::open(&blob, &profile.secrets.device, space.as_bytes(), epoch)
            .map_err(|_| unavailable("the key box the relay holds does not open"))?;
        // age gives a lockbox no sender authentication: only the signed chain vouches.
        if Some(key.check(space, epoch)) != check {
            return Err(unavailable(
                "the key in the relay's key box is not the one the space's ACL names",
            ));
        }
        profile.put_epoch_key(epoch, &key)?;
    }
    Ok(())
}

/// Whether the relay answers a handshake within `timeout`.
pub async fn relay_reachable(relay: &str, timeout: Duration) -> bool {
    match Link::connect(relay, timeout).await {
        Ok(link) => {
            link.close().await;
            true
        }
        Err(_) => false,
    }
}

async fn exchange(
    profile: &mut Profile,
    link: &mut Link,
    space: &SpaceId,
    state: &AclState,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    // Taken before pushing: the relay must still hold what this device last saw there.
    let mut marks = profile.landmarks()?;
    let mut moved = push_staged(profile, link, state, &mut report).await?;
    let cursor = profile.cursor()?;
    // Landmarks at or before the cursor are read again, only to compare them.
    let since_seq = marks
        .iter()
        .map(|m| m.seq)
        .filter(|seq| *seq <= cursor)
        .min()
        .map_or(cursor, |seq| seq - 1);
    link.send(&ClientFrame::Subscribe {
        space: *space,
        since_seq,
    })
    .await?;
    let behind = |profile: &mut Profile, head: u64, mark: Landmark| {
        // Restored from an older backup: what it lost is resent from here.
        profile.relay_rewound()?;
        Err(SyncError::RelayBehind {
            head,
            cursor: mark.seq,
        })
    };
    loop {
        match link.recv().await? {
            RelayFrame::Batch { items, head } => {
                if let Some(mark) = marks.iter().rev().find(|m| head < m.seq) {
                    return behind(profile, head, *mark);
                }
                let done = items.last().is_none_or(|(seq, _)| *seq >= head);
                let mut kept = Vec::with_capacity(items.len());
                for (seq, bytes) in items {
                    // The first landmark not checked yet, once the batch reaches its place.
                    if let Some(mark) = marks.first().copied()
                        && seq >= mark.seq
                    {
                        match mark.check(seq, &bytes) {
                            Some(true) => {
                                marks.remove(0);
                            }
                            // A snapshot replaced them: the relay compacted, not rewound.
                            None => marks.clear(),
                            Some(false) => return behind(profile, head, mark),
                        }
                    }
                    if seq <= cursor {
                        // Applied before: asked for only to compare.
                        continue;
                    }
                    moved += bytes.len() as u64;
                    kept.push((seq, bytes));
                }
                take_in(
                    profile,
                    space,
                    state,
                    kept.iter().map(|(seq, bytes)| (*seq, bytes.as_slice())),
                    &mut report,
                )?;
                if done {
                    if let Some(mark) = marks.first() {
                        // It holds later envelopes but not the landmark's.
                        return behind(profile, head, *mark);
                    }
                    break;
                }
            }
            RelayFrame::Event { seq, envelope } => {
                receive(profile, space, state, seq, &envelope, &mut report)?;
            }
            // A record added while we sync: the next sync adopts it with the whole chain.
            RelayFrame::AclChanged { .. } => {}
            other => return Err(unexpected("Batch", &other)),
        }
    }
    // Keys released on seeing the partner's sealed answers go out in this same sync.
    moved += push_staged(profile, link, state, &mut report).await?;
    report.cursor = profile.cursor()?;
    report.waiting = profile.waiting()?;
    profile.add_unsnapshotted(moved)?;
    Ok(report)
}

/// Stages this device's unsent changes and pushes the outbox, one `Committed` at a time.
/// Returns the bytes pushed.
async fn push_staged(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
    report: &mut SyncReport,
) -> Result<u64, SyncError> {
    profile.stage_outgoing(state.epoch())?;
    let mut moved = 0;
    for (counter, envelope) in profile.outbox()? {
        moved += envelope.len() as u64;
        link.send(&ClientFrame::Push { envelope }).await?;
        match link.recv().await? {
            RelayFrame::Committed { counter: c, seq } if c == counter => {
                profile.acknowledge(counter, seq)?;
                report.pushed += 1;
            }
            other => return Err(unexpected("Committed", &other)),
        }
    }
    Ok(moved)
}

/// After this many bytes of envelopes since the last snapshot, a device pushes a new one.
pub const SNAPSHOT_AFTER_BYTES: u64 = 256 * 1024;

/// Pushes a snapshot of the whole document (one envelope standing in for every envelope up
/// to the cursor) once enough has changed since the last one: a new device then loads one
/// compressed document instead of replaying every change, and the relay drops what the
/// snapshot covers. Skipped while envelopes wait for missing changes (the snapshot would
/// leave them out) or if the document is over the relay's envelope limit.
async fn snapshot_if_due(
    profile: &mut Profile,
    link: &mut Link,
    state: &AclState,
    report: &SyncReport,
) -> Result<(), SyncError> {
    if report.waiting > 0 || report.cursor == 0 || profile.unsnapshotted()? < SNAPSHOT_AFTER_BYTES {
        return Ok(());
    }
    let max = link.limits.envelope_bytes();
    let Some((counter, envelope)) = profile.seal_snapshot(state.epoch(), report.cursor, max)?
    else {
        tracing::info!("the document is over the relay's envelope limit; no snapshot");
        return Ok(());
    };
    link.send(&ClientFrame::PushSnapshot { envelope }).await?;
    match link.recv().await {
        Ok(RelayFrame::Committed { counter: c, .. }) if c == counter => {
            profile.snapshot_pushed(report.cursor)?;
        }
        Ok(other) => return Err(unexpected("Committed", &other)),
        // The relay already holds a snapshot at least this new (the partner's): fine.
        Err(SyncError::Refused { code, message }) => {
            tracing::info!(?code, %message, "snapshot not taken");
            profile.snapshot_pushed(report.cursor)?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Verifies, decrypts and applies one envelope the relay delivered as `seq`. A bad one is
/// reported and passed; one this device cannot judge yet (a newer epoch than `state`)
/// stops the sync before the cursor passes it.
fn receive(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    seq: u64,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    take_in(profile, space, state, [(seq, bytes)], report)
}

/// Screens, opens and applies envelopes the relay delivered, in its order. The cursor
/// passes a refused one as it passes an applied one, so it is reported once, not again on
/// every sync.
fn take_in<'a>(
    profile: &mut Profile,
    space: &SpaceId,
    state: &AclState,
    items: impl IntoIterator<Item = (u64, &'a [u8])>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let mut screened = Vec::new();
    let mut passed = None;
    for (seq, bytes) in items {
        match screen(profile, space, state, seq, bytes, report)? {
            Some(item) => screened.push(item),
            None => passed = Some((seq, Envelope::decode(bytes).ok().map(|e| *e.header()))),
        }
    }
    deliver(profile, screened, report)?;
    if let Some((seq, header)) = passed {
        profile.pass(seq, header.as_ref())?;
    }
    Ok(())
}

/// The checks an envelope passes before it is opened: it decodes, names this space and an
/// epoch the chain has reached, and its author may write under that epoch. Returns it with
/// its epoch's key, or `None` if it was refused (and reported).
fn screen(
    profile: &Profile,
    space: &SpaceId,
    state: &AclState,
    seq: u64,
    bytes: &[u8],
    report: &mut SyncReport,
) -> Result<Option<(u64, Envelope, hearth_crypto::EpochKey)>, SyncError> {
    let envelope = match Envelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => {
            refuse(report, seq, None, format!("unreadable envelope: {e}"));
            return Ok(None);
        }
    };
    let header = *envelope.header();
    if header.space != *space {
        refuse(
            report,
            seq,
            Some(header.author),
            "it names another space".into(),
        );
        return Ok(None);
    }
    if header.epoch > state.epoch() {
        // Written after an ACL change this sync has not adopted (or forged: the next run,
        // with the newer chain, judges it).
        return Err(SyncError::AclMoved);
    }
    // Authorship: a current member, or a removed one writing under an epoch it held, no
    // later than the removal allows.
    let refusal = match state.removed_through(&header.author) {
        _ if state.is_member(&header.author) => None,
        Some(last) if header.epoch < state.epoch() && header.counter <= last => None,
        Some(last) => Some(format!(
            "its author was removed from this space after its envelope {last}; this one \
             ({}) came later",
            header.counter
        )),
        None => Some("its author is not a member of this space".into()),
    };
    if let Some(reason) = refusal {
        refuse(report, seq, Some(header.author), reason);
        return Ok(None);
    }
    // `settle` fetched every epoch's key up to the state's.
    let key = profile
        .epoch_key(header.epoch)?
        .ok_or_else(|| SyncError::KeyUnavailable {
            epoch: header.epoch,
            reason: "this device does not hold it".into(),
        })?;
    Ok(Some((seq, envelope, key)))
}

/// Opens and applies screened envelopes, all in one transaction over one load of the
/// document, and reports what became of each.
fn deliver(
    profile: &mut Profile,
    items: Vec<(u64, Envelope, hearth_crypto::EpochKey)>,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    if items.is_empty() {
        return Ok(());
    }
    let outcomes = profile.apply_incoming_all(&items)?;
    for ((seq, envelope, _), outcome) in items.iter().zip(outcomes) {
        let author = Some(envelope.header().author);
        match outcome {
            Incoming::Applied => report.received += 1,
            // Counted once the exchange is over: a later envelope may complete it.
            Incoming::Known | Incoming::Waiting => {}
            // The relay delivered an envelope this device already applied, under a new
            // seq: harmless (nothing is applied twice), but not what an honest relay does.
            Incoming::Replayed => refuse(
                report,
                *seq,
                author,
                "a replay of an envelope already applied; ignored".into(),
            ),
            Incoming::Rejected { reason } => refuse(report, *seq, author, reason),
        }
    }
    Ok(())
}

fn refuse(report: &mut SyncReport, seq: u64, device: Option<DeviceId>, reason: String) {
    tracing::warn!(seq, device = ?device.map(|d| d.short()), %reason, "envelope refused");
    report.rejected.push(RejectedEnvelope {
        seq,
        device,
        reason,
    });
}

/// Why joining a space failed. Nothing was created locally unless joining succeeded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The invite has expired.
    #[error("this invite has expired; ask for a new one with `hearth invite`")]
    Expired,
    /// The invite was already used (by you on another device, or by someone else).
    #[error("this invite was already used; ask for a new one with `hearth invite`")]
    Used,
    /// The invite was cancelled: the device that made it was removed, or the space's key
    /// changed since (its key box holds only the old one).
    #[error(
        "this invite was cancelled when the space's devices changed; ask for a new one with `hearth invite`"
    )]
    Revoked,
    /// The relay does not know the invite (never uploaded, revoked, or the wrong relay).
    #[error("the relay does not know this invite; ask for a new one with `hearth invite`")]
    Unknown,
    /// A partner invite needs the joiner's name.
    #[error("joining as a partner needs your name: pass --name NAME")]
    NameNeeded,
    /// The sync part failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<Error> for JoinError {
    fn from(e: Error) -> Self {
        JoinError::Sync(SyncError::Profile(e))
    }
}

/// The relay's word on an invite, as the reason a join failed.
fn invite_refusal(e: SyncError) -> JoinError {
    match e {
        SyncError::Refused {
            code: RejectCode::InviteUsed,
            ..
        } => JoinError::Used,
        SyncError::Refused {
            code: RejectCode::InviteExpired,
            ..
        } => JoinError::Expired,
        SyncError::Refused {
            code: RejectCode::InviteRevoked,
            ..
        } => JoinError::Revoked,
        other => JoinError::Sync(other),
    }
}

/// What joining did.
#[derive(Debug)]
pub struct Joined {
    /// The new profile, holding the space's history.
    pub profile: Profile,
    /// Whether this device joined as the partner (rather than another device of the
    /// inviter).
    pub as_partner: bool,
    /// The first sync's report.
    pub report: SyncReport,
}

/// Joins the space of `code` from this device, creating the profile in `home` once the
/// relay has accepted this device: logs in with the invite key, takes the epoch key from
/// the invite's lockbox, appends this device to the ACL (signed by the device and the
/// invite), then syncs the whole history. As the partner, adds `name` to the space.
///
/// # Errors
/// A [`JoinError`]; `home` is left untouched unless the relay accepted the device.
pub async fn join(
    home: &std::path::Path,
    code: &hearth_crypto::InviteCode,
    name: Option<&str>,
    protection: hearth_crypto::Protection,
    timeout: Duration,
) -> Result<Joined, JoinError> {
    use hearth_proto::{InviteId, InviteRole};

    let space = SpaceId::from_bytes(code.space());
    let invite = code.keys();
    let invite_id = InviteId::from_bytes(invite.invite_id());

    let mut link = Link::connect(code.relay(), timeout).await?;
    let chain = match link.login(&invite, &space, true).await {
        Ok(chain) => chain,
        Err(SyncError::Refused {
            code: RejectCode::Unauthorized,
            ..
        }) => return Err(JoinError::Unknown),
        Err(e) => return Err(invite_refusal(e)),
    };
    let state = AclState::from_records(&decode_chain(&chain)?, &Limits::default())
        .map_err(|e| SyncError::Protocol(format!("the relay's ACL does not verify: {e}")))?;
    let info = state.invite(&invite_id).ok_or(JoinError::Unknown)?;
    if info.used_by.is_some() {
        return Err(JoinError::Used);
    }
    if info.revoked {
        return Err(JoinError::Revoked);
    }
    if !info.is_usable(now_ms()) {
        return Err(JoinError::Expired);
    }
    let as_partner = info.role == InviteRole::Partner;
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if as_partner && name.is_none() {
        return Err(JoinError::NameNeeded);
    }
    let epoch = state.epoch();
    link.send(&ClientFrame::GetLockbox { epoch }).await?;
    let blob = match link.recv().await? {
        RelayFrame::Lockbox { blob, .. } => blob,
        other => return Err(unexpected("Lockbox", &other).into()),
    };
    let (keys, inviter) = invite
        .open_lockbox(&blob, space.as_bytes(), epoch)
        .map_err(|_| {
            SyncError::Protocol("the invite's key box does not open with this code".into())
        })?;
    // The key box is only as good as the chain says: each key must match its epoch's check.
    let vouched = (0..=epoch)
        .zip(&keys)
        .all(|(e, key)| state.key_check(e) == Some(&key.check(&space, e)));
    if !vouched {
        return Err(SyncError::Protocol(
            "the invite's key box holds keys the space's ACL does not name".into(),
        )
        .into());
    }
    let person = match (as_partner, inviter) {
        (true, _) => hearth_doc::PersonId::random(),
        (false, Some(p)) => p
            .parse()
            .map_err(|_| SyncError::Protocol("the invite names an invalid person".into()))?,
        (false, None) => {
            return Err(SyncError::Protocol("a device invite without its person".into()).into());
        }
    };

    let secrets = hearth_crypto::ProfileSecrets::generate().map_err(Error::from)?;
    let record = hearth_crypto::sign_record(
        state.head(),
        AclBody::AddDevice {
            device: secrets.device.device_id(),
            recipient: secrets.device.recipient_bytes().map_err(Error::from)?,
            invite: invite_id,
        },
        &[&secrets.device, &invite],
    )
    .map_err(Error::from)?;
    link.send(&ClientFrame::PutAcl {
        record: record.encode(),
    })
    .await?;
    match link.recv().await {
        Ok(RelayFrame::AclChanged { .. }) => {}
        Ok(other) => return Err(unexpected("AclChanged", &other).into()),
        Err(e) => return Err(invite_refusal(e)),
    }
    link.close().await;

    // The relay accepted this device: from here on the profile exists.
    let mut profile =
        Profile::create_joining(home, protection, secrets, &space, &person, code.relay())?;
    for (e, key) in (0..).zip(&keys) {
        profile.put_epoch_key(e, key)?;
    }
    let mut link = Link::connect(code.relay(), timeout).await?;
    let chain = link.login(&profile.secrets.device, &space, false).await?;
    let state = settle(&mut profile, &mut link, &space, &chain).await?;
    let mut report = exchange(&mut profile, &mut link, &space, &state).await?;
    link.close().await;
    if let Some(name) = name.filter(|_| as_partner) {
        let now = hearth_doc::Millis::now();
        profile.write(|doc| doc.add_person(&person, name, now))?;
        let pushed = sync_once(&mut profile, timeout).await?;
        report.pushed += pushed.pushed;
        report.received += pushed.received;
        report.rejected.extend(pushed.rejected);
        report.cursor = pushed.cursor;
        report.waiting = pushed.waiting;
    }
    Ok(Joined {
        profile,
        as_partner,
        report,
    })
}

/// Mints an invite and hands it to the relay (the signed Invite record and the invite's key
/// box), so the other device can join while this one is offline. Syncs first, so the space
/// exists on the relay and the record follows its newest ACL head.
///
/// # Errors
/// A [`SyncError`]; no code is returned unless the relay accepted the invite.
pub async fn invite(
    profile: &mut Profile,
    role: hearth_proto::InviteRole,
    ttl: Duration,
    timeout: Duration,
) -> Result<hearth_crypto::InviteCode, SyncError> {
    sync_once(profile, timeout).await?;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let minted = profile.mint_invite(role, ttl_ms, now_ms())?;
    let mut link = reconnect(profile, timeout).await?;
    append_record(profile, &mut link, &minted.record).await?;
    link.send(&ClientFrame::PutLockbox {
        device: DeviceId::from_bytes(minted.code.keys().invite_id()),
        epoch: minted.epoch,
        blob: minted.lockbox,
    })
    .await?;
    confirm(&mut link).await?;
    link.close().await;
    Ok(minted.code)
}

/// Fetches the relay's ACL and adopts it if it verifies and extends the local one, without
/// moving any data: what `hearth device list` needs to be current.
///
/// # Errors
/// A [`SyncError`]; the local chain is unchanged then.
pub async fn refresh_acl(profile: &mut Profile, timeout: Duration) -> Result<AclState, SyncError> {
    let relay = profile.relay()?.ok_or(SyncError::NotPaired)?;
    let space = profile.space()?;
    let mut link = Link::connect(&relay, timeout).await?;
    let chain = link.login(&profile.secrets.device, &space, false).await;
    link.close().await;
    let chain = chain?;
    if chain.is_empty() {
        // The space is not on the relay yet: the local chain is all there is.
        return profile.acl_state()?.ok_or(SyncError::NotPaired);
    }
    adopt_chain(profile, &chain)
}

/// Removes `device` from the space and moves the space to a new key that only the
/// remaining devices receive, so it can read nothing written afterwards (what it already
/// had stays readable to it: there is no forward secrecy). Syncs first, so the removal
/// follows the relay's newest ACL; then appends the RemoveDevice record; then syncs again,
/// which rotates the key and shares it. A device may remove itself (leaving); the others
/// rotate when they next sync.
///
/// # Errors
/// A [`SyncError`]; [`SyncError::Profile`] with [`Error::Proto`] if the chain refuses the
/// removal (not a member, or the last device).
pub async fn remove_device(
    profile: &mut Profile,
    device: DeviceId,
    timeout: Duration,
) -> Result<SyncReport, SyncError> {
    sync_once(profile, timeout).await?;
    let record = profile.removal(device)?;
    let mut link = reconnect(profile, timeout).await?;
    let accepted = append_record(profile, &mut link, &record).await;
    link.close().await;
    accepted?;
    if device == profile.device_id() {
        return Ok(SyncReport::default());
    }
    sync_once(profile, timeout).await
}

/// A connection that stays open: caught up once, then fed the relay's live events.
/// [`watch`] is built on it; so are the benchmarks.
pub struct Live {
    link: Link,
    space: SpaceId,
    state: AclState,
    idle: Duration,
}

/// What one live frame did.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// An envelope arrived (applied, known, waiting or refused: see the report).
    Received(SyncReport),
    /// The relay committed one of this device's envelopes.
    Committed,
    /// The space's ACL changed: close this and open a new one to pick the change up.
    AclMoved,
    /// Nothing the caller needs to act on.
    Idle,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("relay", &self.link.relay)
            .field("space", &self.space)
            .field("epoch", &self.state.epoch())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Logs in, settles the keys, pushes and pulls everything outstanding, and stays
    /// subscribed.
    ///
    /// # Errors
    /// A [`SyncError`]; whatever was committed or applied before it stays.
    pub async fn open(
        profile: &mut Profile,
        timeout: Duration,
    ) -> Result<(Live, SyncReport), SyncError> {
        match Self::open_once(profile, timeout).await {
            // The relay went back in time: this device rewound; the next login resends.
            Err(SyncError::RelayBehind { head, cursor }) => {
                let (live, mut report) = Self::open_once(profile, timeout).await?;
                report.relay_behind = Some((head, cursor));
                Ok((live, report))
            }
            done => done,
        }
    }

    async fn open_once(
        profile: &mut Profile,
        timeout: Duration,
    ) -> Result<(Live, SyncReport), SyncError> {
        let relay = profile.relay()?.ok_or(SyncError::NotPaired)?;
        profile.acl_state()?.ok_or(SyncError::NotPaired)?;
        let space = profile.space()?;
        let mut link = Link::connect(&relay, timeout).await?;
        let chain = link.login(&profile.secrets.device, &space, false).await?;
        let state = settle(profile, &mut link, &space, &chain).await?;
        let report = exchange(profile, &mut link, &space, &state).await?;
        profile.mark_synced(now_ms())?;
        Ok((
            Live {
                link,
                space,
                state,
                // The relay pings an idle connection; reading answers them. Allow a few
                // missed beats.
                idle: timeout.max(Duration::from_secs(90)),
            },
            report,
        ))
    }

    /// Seals what this device wrote since its last push and sends it, without waiting for
    /// the relay's `Committed` (it arrives through [`Live::next`]). Returns how many
    /// envelopes were sent.
    ///
    /// # Errors
    /// A [`SyncError`]; unsent envelopes stay in the outbox.
    pub async fn push(&mut self, profile: &mut Profile) -> Result<usize, SyncError> {
        if profile.stage_outgoing(self.state.epoch())?.is_none() {
            return Ok(0);
        }
        let outbox = profile.outbox()?;
        for (_, envelope) in &outbox {
            self.link
                .send(&ClientFrame::Push {
                    envelope: envelope.clone(),
                })
                .await?;
        }
        Ok(outbox.len())
    }

    /// Waits for the next frame from the relay and handles it.
    ///
    /// # Errors
    /// A [`SyncError`], e.g. [`SyncError::Timeout`] if the relay stays silent.
    pub async fn next(&mut self, profile: &mut Profile) -> Result<LiveEvent, SyncError> {
        let frame = tokio::time::timeout(self.idle, self.link.recv_any())
            .await
            .map_err(|_| SyncError::Timeout(self.idle))??;
        let event = match frame {
            RelayFrame::Event { seq, envelope } => {
                let mut report = SyncReport::default();
                match receive(
                    profile,
                    &self.space,
                    &self.state,
                    seq,
                    &envelope,
                    &mut report,
                ) {
                    Err(SyncError::AclMoved) => return Ok(LiveEvent::AclMoved),
                    other => other?,
                }
                report.cursor = seq;
                LiveEvent::Received(report)
            }
            RelayFrame::Committed { counter, seq } => {
                profile.acknowledge(counter, seq)?;
                LiveEvent::Committed
            }
            RelayFrame::AclChanged { .. } => return Ok(LiveEvent::AclMoved),
            RelayFrame::Pong { .. } => LiveEvent::Idle,
            other => return Err(unexpected("Event", &other)),
        };
        profile.mark_synced(now_ms())?;
        Ok(event)
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        self.link.close().await;
    }
}

/// Stays connected: syncs, then applies the partner's envelopes as the relay forwards them
/// and pushes this device's own changes as they appear (checked every `push_every`).
/// Calls `on_applied` once caught up (so the caller knows it is live) and after each batch
/// of incoming changes, with the profile, so the caller can show what is new.
///
/// Returns `Ok(())` when the space's ACL changed (a device joined or left, or the key
/// rotated): call it again at once to pick the change up.
///
/// # Errors
/// A [`SyncError`]; everything applied or committed before it stays.
pub async fn watch(
    profile: &mut Profile,
    timeout: Duration,
    push_every: Duration,
    mut on_applied: impl FnMut(&mut Profile),
) -> Result<(), SyncError> {
    let (mut live, _) = Live::open(profile, timeout).await?;
    // Called once connected and caught up, whatever arrived: the caller learns it is live.
    on_applied(profile);
    let mut tick = tokio::time::interval(push_every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                live.push(profile).await?;
            }
            event = live.next(profile) => match event? {
                LiveEvent::Received(report) => {
                    for r in &report.rejected {
                        tracing::warn!(seq = r.seq, reason = %r.reason, "envelope refused while watching");
                    }
                    if report.received > 0 {
                        on_applied(profile);
                    }
                }
                LiveEvent::AclMoved => {
                    live.close().await;
                    return Ok(());
                }
                LiveEvent::Committed | LiveEvent::Idle => {}
            }
        }
    }
}
