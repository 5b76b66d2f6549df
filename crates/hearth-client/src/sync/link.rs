//! The link to the relay: one websocket conversation (connect, Hello/Challenge, the relay's
//! proof of its key, login, send and receive frames with a timeout). It exists so that
//! everything else in `sync` talks in frames, never in sockets; the relay's announced
//! limits, its proven key and clock, and the login challenge live here. Whether the key is
//! the one this device trusts is `trust`'s question, asked before any login.
//! So does the relay's word that the space was deleted (`SpaceDeleted`, at login or while
//! subscribed): it becomes an error here, judged against this device's verified chain
//! when the link was given one ([`Link::judge`]).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hearth_crypto::{AclSigner, sign_login};
use hearth_proto::{
    ClientFrame, DeviceId, Fingerprint, Limits, PROTOCOL_VERSION, ProtoError, RejectCode,
    RelayFrame, SpaceId, decode_relay, encode_client, verify_relay_identity,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::SyncError;
use super::chain::DeletionJudge;
use super::error::ClockSkew;
use crate::tls::{RelayTrust, fault_of};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One websocket conversation.
pub(crate) struct Link {
    ws: Socket,
    pub(super) relay: String,
    timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) relay_id: [u8; 16],
    pub(crate) nonce: [u8; 32],
    /// The relay's public key, proven on this connection.
    pub(crate) relay_key: [u8; 32],
    /// The relay's clock when it proved its key (UTC milliseconds).
    relay_time_ms: u64,
    /// What a claim that the space was deleted is checked against (this device's verified
    /// chain); without it, such a claim cannot be proven.
    pub(crate) judge: Option<DeletionJudge>,
}

/// The client's websocket settings. A small read buffer: tungstenite's default (128 KiB)
/// is zero-filled again on every read, measured at ~3% of a busy client's CPU; frames are
/// mostly small, and a large one takes a few more reads. No Nagle delay either: frames are
/// whole messages, sent when ready.
pub fn websocket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8192)
}

impl Link {
    /// Connects (a `wss://` relay's certificate checked against `trust`) and exchanges
    /// Hello / Challenge. A TLS failure is [`SyncError::Tls`], not
    /// [`SyncError::Unreachable`]: it will not pass by itself.
    pub(crate) async fn connect(
        relay: &str,
        trust: &RelayTrust,
        timeout: Duration,
    ) -> Result<Link, SyncError> {
        let unreachable = |reason: String| SyncError::Unreachable {
            relay: relay.to_owned(),
            reason,
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            relay,
            Some(websocket_config()),
            true,
            Some(trust.connector()),
        );
        let tls = relay
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("wss://"));
        let (ws, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
            .map_err(|e| match fault_of(tls, &e) {
                Some(fault) => SyncError::Tls {
                    relay: relay.to_owned(),
                    fault,
                },
                None => unreachable(e.to_string()),
            })?;
        let mut link = Link {
            ws,
            relay: relay.to_owned(),
            timeout,
            // Until the relay announces its own in `Challenge`.
            limits: Limits::default(),
            relay_id: [0; 16],
            nonce: [0; 32],
            relay_key: [0; 32],
            relay_time_ms: 0,
            judge: None,
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
            }
            other => return Err(unexpected("Challenge", &other)),
        }
        link.identify().await?;
        Ok(link)
    }

    /// Asks the relay to prove its key over a fresh nonce, and checks the proof.
    async fn identify(&mut self) -> Result<(), SyncError> {
        let nonce: [u8; 32] =
            hearth_crypto::random_bytes().map_err(|e| SyncError::Profile(e.into()))?;
        self.send(&ClientFrame::Identify { nonce }).await?;
        let (key, time_ms, signature) = match self.recv().await {
            Ok(RelayFrame::Identity {
                key,
                time_ms,
                signature,
            }) => (key, time_ms, signature),
            Ok(other) => return Err(unexpected("Identity", &other)),
            // A relay from before `Identify` does not decode it.
            Err(SyncError::Refused {
                code: RejectCode::BadFrame,
                ..
            }) => {
                return Err(SyncError::RelayUnidentified {
                    relay: self.relay.clone(),
                });
            }
            Err(e) => return Err(e),
        };
        verify_relay_identity(
            &key,
            &nonce,
            &self.nonce,
            &self.relay_id,
            time_ms,
            &signature,
        )
        .map_err(|e| SyncError::RelayKeyUnproven {
            relay: self.relay.clone(),
            why: match e {
                ProtoError::BadSignature => "its signature does not verify: it was made for \
                                             another connection, or without the key"
                    .into(),
                other => other.to_string(),
            },
        })?;
        self.relay_key = key;
        self.relay_time_ms = time_ms;
        Ok(())
    }

    /// The fingerprint of the key the relay proved on this connection.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.relay_key)
    }

    pub(crate) async fn send(&mut self, frame: &ClientFrame) -> Result<(), SyncError> {
        let bytes =
            encode_client(frame, self.limits.frame_bytes()).map_err(SyncError::Unsendable)?;
        tokio::time::timeout(self.timeout, self.ws.send(Message::Binary(bytes.into())))
            .await
            .map_err(|_| SyncError::Timeout(self.timeout))?
            .map_err(|e| SyncError::Unreachable {
                relay: self.relay.clone(),
                reason: e.to_string(),
            })
    }

    /// The next frame from the relay; a `Reject` becomes [`SyncError::Refused`], and
    /// `SpaceDeleted` [`SyncError::SpaceDeleted`] or [`SyncError::DeletionUnproven`].
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
                        .map_err(SyncError::UnreadableFrame)?;
                    return match frame {
                        RelayFrame::Reject { code, message } => {
                            Err(SyncError::Refused { code, message })
                        }
                        RelayFrame::SpaceDeleted {
                            space,
                            device,
                            relay_id,
                            nonce,
                            signature,
                            deleted_at_ms,
                        } => Err(DeletionJudge::verdict(
                            self.judge.as_ref(),
                            &DeletionClaim {
                                space,
                                device,
                                relay_id,
                                nonce,
                                signature,
                                deleted_at_ms,
                            },
                        )),
                        frame => Ok(frame),
                    };
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
            Err(SyncError::Refused {
                code: RejectCode::ClockSkew,
                ..
            }) => Err(SyncError::ClockSkew(ClockSkew {
                device_ms: time_ms,
                relay_ms: self.relay_time_ms,
            })),
            Err(e) => Err(e),
        }
    }

    /// Closes the conversation politely; errors are irrelevant by then.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

/// The relay's claim that the space was deleted, as `SpaceDeleted` carries it: the proof
/// is the deleting device's signature over the deletion, not checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeletionClaim {
    /// The space it names.
    pub(crate) space: SpaceId,
    /// The device it says deleted it.
    pub(crate) device: DeviceId,
    /// The challenge the deletion was signed for: relay id…
    pub(crate) relay_id: [u8; 16],
    /// …and nonce.
    pub(crate) nonce: [u8; 32],
    /// The device's signature.
    pub(crate) signature: [u8; 64],
    /// When, by the relay's clock.
    pub(crate) deleted_at_ms: u64,
}

pub(super) fn unexpected(wanted: &'static str, got: &RelayFrame) -> SyncError {
    let name = match got {
        RelayFrame::Challenge { .. } => "Challenge",
        RelayFrame::Batch { .. } => "Batch",
        RelayFrame::Committed { .. } => "Committed",
        RelayFrame::Event { .. } => "Event",
        RelayFrame::AclChanged { .. } => "AclChanged",
        RelayFrame::Lockbox { .. } => "Lockbox",
        RelayFrame::Reject { .. } => "Reject",
        RelayFrame::Pong { .. } => "Pong",
        RelayFrame::SpaceDeleted { .. } => "SpaceDeleted",
        RelayFrame::Proposed { .. } => "Proposed",
        RelayFrame::Countersigned { .. } => "Countersigned",
        RelayFrame::Identity { .. } => "Identity",
    };
    SyncError::UnexpectedFrame { wanted, got: name }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether the relay answers a handshake (and proves a key) within `timeout`, trusting
/// the machine's roots only.
pub async fn relay_reachable(relay: &str, timeout: Duration) -> bool {
    check_relay(relay, &RelayTrust::new(None), timeout)
        .await
        .is_ok()
}

/// Connects to the relay and exchanges Hello / Challenge, sending nothing else: whether
/// it answers as a relay, and with a certificate `trust` accepts.
///
/// # Errors
/// [`SyncError::Tls`] for a certificate (or TLS) problem, [`SyncError::Unreachable`] or
/// [`SyncError::Timeout`] if it does not answer, another [`SyncError`] if it answers
/// other than a relay.
pub async fn check_relay(
    relay: &str,
    trust: &RelayTrust,
    timeout: Duration,
) -> Result<(), SyncError> {
    Link::connect(relay, trust, timeout).await?.close().await;
    Ok(())
}
