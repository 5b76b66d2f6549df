//! Everything the relay decides about one connection's frames, with no socket, store or
//! clock in sight: the version handshake, the relay's proof of its key (`Identify`), the
//! challenge-response login (as a device, or with an invite key to join), creating a
//! space, and every request after that, checked against the space's ACL so the relay can
//! enforce it without reading anything.
//!
//! [`Session`] is a state machine. [`Session::on_frame`] takes one decoded client frame and
//! the time, and returns a [`Decision`]: the [`Effect`]s to carry out in order (frames to
//! send, rejects, what to publish to the other subscribers, the ACL cache to update, a
//! close) and, where the decision needs the store, one [`Query`]. The caller runs the
//! query and hands its [`Answer`] to [`Session::resume`], which decides the rest. The
//! socket side ([`crate::connection`]) only moves bytes and runs what it is told, so every
//! rule here is tested as a plain function (see the tests below).
//!
//! Pushes are rate limited per connection with a [`governor`] limiter whose clock is
//! injected, so tests step time by hand; creating spaces and failing to log in are rate
//! limited per client address by the relay-wide [`Gate`], on the same clock, which also
//! says whether a creation needs a token.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use hearth_proto::frame::{MAX_AUTH_SKEW_MS, SUPPORTED_VERSIONS};
use hearth_proto::{
    AclBody, AclRecord, AclState, ClientFrame, Countersignature, DeviceId, Envelope, EnvelopeKind,
    InviteId, InviteRole, Limits, PROTOCOL_VERSION, ProtoError, RejectCode, RelayFrame, SpaceId,
    auth_message, check_version, decode_client, verify_delete_space, verify_signature,
};

use crate::admission::{Gate, wait_words};
use crate::app::{Chain, verify_chain};
use crate::config::Admission;
use crate::hub::Live;
use crate::identity::RelayIdentity;
use crate::reject::{Failure, Rejection, rejection};
use crate::snapshots::{CountersignRefusal, CountersignRequest};
use crate::store::{Expiry, PushOutcome, StoreError, TokenHash, TokenRefusal, Tombstone};
use crate::worker::Signed;

/// The one answer to every failed `Auth` but a skewed clock: a stranger learns nothing
/// about the space.
pub(crate) const UNAUTHORIZED: &str = "authentication failed: this device is not a member of that space, or the signature or challenge did not match; if it persists pair this device again";

const REMOVED: &str = "this device was removed from the space; stop syncing it";

/// What the device that created a space hears when it logs in after the relay removed the
/// space for want of a second device.
pub(crate) const EXPIRED: &str = "the relay removed this space because no second device joined it in time; this device was its only one, so it holds everything the relay held: create the space again (CreateSpace, on this connection)";

const INVITE_ONLY: &str = "an invite key may only fetch its lockbox (GetLockbox) and add its device (PutAcl with the AddDevice that consumes it); reconnect as the new device for anything else";

/// A websocket close: its code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

/// The close after a refusal that ends the connection, or after `DeleteSpace`.
pub(crate) const CLOSING: Close = Close {
    code: 1000,
    reason: "closing",
};

/// Who the connection authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authed {
    pub(crate) space: SpaceId,
    pub(crate) key: DeviceId,
    pub(crate) as_invite: bool,
}

/// How far the handshake has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for `Hello`.
    Hello,
    /// `Challenge` sent; waiting for `Auth` (or, first, `Identify`).
    Auth,
    /// `Identity` sent; waiting for `Auth`.
    Identified,
    /// Authenticated for creating `space` (which did not exist) and nothing else.
    Create { space: SpaceId, device: DeviceId },
    /// Authenticated; requests are served.
    Ready(Authed),
}

/// One thing for the connection to do.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Send this frame.
    Send(RelayFrame),
    /// Send this `Reject` (and count it).
    Reject(Rejection),
    /// A store failure worth telling the operator about (before its `Reject`).
    StoreTrouble(StoreTrouble),
    /// Send a close frame; the connection ends.
    Close(Close),
    /// Hand this to the other live subscribers of `space`.
    Publish { space: SpaceId, live: Live },
    /// Cache this chain for the space (unless a longer one is cached).
    Remember { space: SpaceId, chain: Arc<Chain> },
    /// Cache this chain for a space just created (replacing a deleted one's).
    RememberCreated { space: SpaceId, chain: Arc<Chain> },
    /// Drop the cached chain of a deleted space.
    Forget(SpaceId),
    /// An envelope of this many bytes was stored (a metric).
    Stored { bytes: usize },
    /// This connection's push was committed at `seq` (its subscriber has it already).
    OwnCommitted(u64),
    /// Register as the space's live subscriber and send it everything after `since_seq`
    /// (the accepted snapshot standing in for the envelopes it covers, with its
    /// countersignature, unless `snapshot` is false), then the proposal waiting for
    /// `device`'s person's countersignature, if any.
    Subscribe {
        space: SpaceId,
        since_seq: u64,
        device: DeviceId,
        snapshot: bool,
    },
}

/// A store failure the relay's operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreTrouble {
    /// The disk (or the configured database size) is full.
    DiskFull,
    /// The store could not be reached or failed.
    Unavailable(String),
}

impl StoreTrouble {
    /// The trouble `error` is for the operator, if any (a refusal such as a quota is not).
    pub(crate) fn of(error: &StoreError) -> Option<Self> {
        match error {
            StoreError::DiskFull => Some(Self::DiskFull),
            StoreError::Unavailable(_) | StoreError::Database(_) => {
                Some(Self::Unavailable(error.to_string()))
            }
            _ => None,
        }
    }
}

/// What a decision needs from the store (or the chain cache) before it can go on.
#[derive(Debug)]
pub(crate) enum Query {
    /// The space's chain; `fresh` reads the store rather than the cache. Answered with
    /// [`Answer::Chain`].
    Chain { space: SpaceId, fresh: bool },
    /// Create the space with its Genesis, spending a use of the creation token whose hash
    /// is `ticket` if given. [`Answer::Done`].
    CreateSpace {
        space: SpaceId,
        genesis: Vec<u8>,
        now_ms: u64,
        ticket: Option<TokenHash>,
    },
    /// Store an envelope whose signature the store thread checks. [`Answer::Pushed`].
    Push {
        space: SpaceId,
        device: DeviceId,
        counter: u64,
        bytes: Arc<[u8]>,
        signed: Signed,
    },
    /// Store a verified snapshot as the space's proposal. [`Answer::Done`].
    ProposeSnapshot {
        space: SpaceId,
        covers_seq: u64,
        author: DeviceId,
        bytes: Vec<u8>,
    },
    /// Judge a countersignature from `sender` against the stored chain and proposal and,
    /// if it counts, accept the proposal. [`Answer::Countersigned`].
    Countersign {
        space: SpaceId,
        sender: DeviceId,
        request: CountersignRequest,
    },
    /// Apply `record` to the stored chain at `now_ms` and append it if the chain accepts
    /// it, atomically. [`Answer::Acl`]. A record `accepted_elsewhere` (the chain of a space
    /// that moved here, uploaded by the connection that created it) is judged by every rule
    /// but the clock and the room (`AclState::replay`), as devices judge a stored chain.
    AppendAcl {
        space: SpaceId,
        record: AclRecord,
        bytes: Vec<u8>,
        now_ms: u64,
        accepted_elsewhere: bool,
    },
    /// Store a lockbox. [`Answer::Done`].
    PutLockbox {
        space: SpaceId,
        device: DeviceId,
        epoch: u32,
        blob: Vec<u8>,
    },
    /// Fetch the lockbox of `owner`. [`Answer::Lockbox`].
    GetLockbox {
        space: SpaceId,
        owner: DeviceId,
        epoch: u32,
    },
    /// Delete the space and everything in it, leaving `tombstone`. [`Answer::Done`].
    DeleteSpace {
        space: SpaceId,
        tombstone: Tombstone,
    },
    /// The tombstone of a deleted space. [`Answer::Tombstone`].
    Tombstone { space: SpaceId },
    /// What is left of a space removed because nobody joined it. [`Answer::Expiry`].
    Expiry { space: SpaceId },
}

/// The store's answer to a [`Query`].
#[derive(Debug)]
pub(crate) enum Answer {
    /// The chain, `None` if the space does not exist.
    Chain(Result<Option<Arc<Chain>>, StoreError>),
    /// A write that returns nothing.
    Done(Result<(), StoreError>),
    /// Where a push was stored.
    Pushed(Result<PushOutcome, StoreError>),
    /// The chain with the record appended, or the chain's refusal.
    Acl(Result<Result<Chain, ProtoError>, StoreError>),
    /// A lockbox, if one is stored.
    Lockbox(Result<Option<Vec<u8>>, StoreError>),
    /// The space's tombstone, if it was deleted.
    Tombstone(Result<Option<Tombstone>, StoreError>),
    /// The proposal was accepted, or the relay's refusal.
    Countersigned(Result<Result<(), CountersignRefusal>, StoreError>),
    /// The space's expiry, if it was removed because nobody joined it.
    Expiry(Result<Option<Expiry>, StoreError>),
}

/// What to do next: the effects in order, then the query if any.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) effects: Vec<Effect>,
    pub(crate) query: Option<Query>,
}

impl Decision {
    fn done() -> Self {
        Self::default()
    }

    fn send(frame: RelayFrame) -> Self {
        Self::with(Effect::Send(frame))
    }

    fn with(effect: Effect) -> Self {
        Self {
            effects: vec![effect],
            query: None,
        }
    }

    fn ask(query: Query) -> Self {
        Self {
            effects: Vec::new(),
            query: Some(query),
        }
    }

    fn reject(code: RejectCode, message: impl Into<String>) -> Self {
        Self::with(Effect::Reject(Rejection::new(code, message)))
    }

    fn refuse(rejection: Rejection) -> Self {
        Self::with(Effect::Reject(rejection))
    }

    /// Rejects and closes the connection.
    fn reject_and_close(code: RejectCode, message: impl Into<String>) -> Self {
        Self::reject(code, message).then(Effect::Close(CLOSING))
    }

    fn store_failed(error: &StoreError) -> Self {
        let mut decision = Self::done();
        decision
            .effects
            .extend(StoreTrouble::of(error).map(Effect::StoreTrouble));
        decision.then(Effect::Reject(rejection(Failure::Store(error))))
    }

    fn then(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }
}

/// What a pending query's answer is for.
#[derive(Debug)]
enum Pending {
    Auth {
        space: SpaceId,
        device: DeviceId,
        as_invite: bool,
        now_ms: u64,
    },
    /// A device login for a space that does not exist: was it deleted?
    AuthTombstone {
        space: SpaceId,
        device: DeviceId,
    },
    /// …or removed because nobody joined it?
    AuthExpiry {
        space: SpaceId,
        device: DeviceId,
    },
    Create {
        space: SpaceId,
        device: DeviceId,
        genesis: Vec<u8>,
    },
    SubscribeChain {
        space: SpaceId,
        since_seq: u64,
        snapshot: bool,
    },
    /// The envelope passed every check but the chain's.
    EnvelopeChain {
        envelope: Envelope,
        bytes: Vec<u8>,
    },
    Push {
        counter: u64,
        bytes: Arc<[u8]>,
    },
    Snapshot {
        covers_seq: u64,
        counter: u64,
        size: usize,
    },
    Countersign {
        request: CountersignRequest,
    },
    Acl {
        bytes: Vec<u8>,
    },
    LockboxChain {
        device: DeviceId,
        epoch: u32,
        blob: Vec<u8>,
    },
    Lockbox {
        epoch: u32,
        size: usize,
    },
    GetLockbox {
        epoch: u32,
    },
    DeleteChain {
        space: SpaceId,
        signature: [u8; 64],
        now_ms: u64,
    },
    Delete {
        space: SpaceId,
        tombstone: Arc<Tombstone>,
    },
    StillMember,
}

/// The per-connection push limiter, on clock `C`.
type PushLimiter<C> =
    RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One connection's protocol state; see the module docs.
#[derive(Debug)]
pub(crate) struct Session<C: Clock = MonotonicClock> {
    /// For logs only.
    id: u64,
    identity: Arc<RelayIdentity>,
    relay_id: [u8; 16],
    nonce: [u8; 32],
    limits: Limits,
    gate: Arc<Gate<C>>,
    /// The client's address, as the gate counts it.
    peer: IpAddr,
    phase: Phase,
    pushes: PushLimiter<C>,
    pending: Option<Pending>,
    /// True from the `CreateSpace` that made the space until the first request that is
    /// not a `PutAcl` (or `Ping`): the connection is uploading the chain of a space that
    /// moved here, whose records were judged, clock and room included, when they were
    /// first offered elsewhere.
    seeding: bool,
}

impl<C: Clock> Session<C> {
    /// A session of the relay with `identity`, for a client at `peer`, that will challenge
    /// with `nonce`, limiting pushes on `clock` and admitting through `gate`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        identity: Arc<RelayIdentity>,
        nonce: [u8; 32],
        limits: Limits,
        gate: Arc<Gate<C>>,
        peer: IpAddr,
        clock: C,
    ) -> Self {
        let rate = NonZeroU32::new(limits.max_pushes_per_sec).unwrap_or(NonZeroU32::MIN);
        Self {
            id,
            relay_id: identity.relay_id(),
            identity,
            nonce,
            limits,
            gate,
            peer,
            phase: Phase::Hello,
            pushes: RateLimiter::direct_with_clock(Quota::per_second(rate), clock),
            pending: None,
            seeding: false,
        }
    }

    /// How far the handshake has come.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Decides about the bytes of one binary websocket message.
    pub(crate) fn on_bytes(&mut self, bytes: &[u8], now_ms: u64) -> Decision {
        match decode_client(bytes, self.limits.frame_bytes()) {
            Ok(frame) => self.on_frame(frame, now_ms),
            Err(error) => {
                Decision::refuse(rejection(Failure::Frame(&error))).then(Effect::Close(CLOSING))
            }
        }
    }

    /// Decides about one client frame received at `now_ms` (UTC milliseconds).
    pub(crate) fn on_frame(&mut self, frame: ClientFrame, now_ms: u64) -> Decision {
        self.pending = None;
        match (self.phase, frame) {
            (Phase::Hello, ClientFrame::Hello { version, client }) => self.hello(version, &client),
            (Phase::Auth, ClientFrame::Identify { nonce }) => self.identify(&nonce, now_ms),
            (
                Phase::Auth | Phase::Identified,
                ClientFrame::Auth {
                    device,
                    space,
                    time_ms,
                    signature,
                    as_invite,
                },
            ) => self.auth(device, space, time_ms, &signature, as_invite, now_ms),
            (Phase::Create { space, device }, ClientFrame::CreateSpace { genesis, token }) => {
                self.create(space, device, genesis, token.as_deref(), now_ms)
            }
            (Phase::Create { .. } | Phase::Ready(_), ClientFrame::Ping { nonce }) => {
                Decision::send(RelayFrame::Pong { nonce })
            }
            (Phase::Create { .. }, _) => {
                Decision::reject_and_close(RejectCode::Unauthorized, UNAUTHORIZED)
            }
            (Phase::Ready(authed), frame) => self.request(authed, frame, now_ms),
            (Phase::Hello, _) => Decision::reject_and_close(
                RejectCode::BadFrame,
                "the first frame must be Hello; reconnect and start with Hello",
            ),
            (Phase::Auth, _) => Decision::reject_and_close(
                RejectCode::BadFrame,
                "after Challenge the next frame must be Identify or Auth; reconnect and authenticate",
            ),
            (Phase::Identified, _) => Decision::reject_and_close(
                RejectCode::BadFrame,
                "after Identity the next frame must be Auth; reconnect and authenticate",
            ),
        }
    }

    /// Decides the rest of a frame once its [`Query`] is answered.
    pub(crate) fn resume(&mut self, answer: Answer) -> Decision {
        match (self.pending.take(), answer) {
            (
                Some(Pending::Auth {
                    space,
                    device,
                    as_invite,
                    now_ms,
                }),
                Answer::Chain(chain),
            ) => self.authenticated(space, device, as_invite, now_ms, chain),
            (
                Some(Pending::Create {
                    space,
                    device,
                    genesis,
                }),
                Answer::Done(stored),
            ) => self.created(space, device, genesis, stored),
            (
                Some(Pending::SubscribeChain {
                    space,
                    since_seq,
                    snapshot,
                }),
                Answer::Chain(chain),
            ) => match (self.member_chain(chain), self.phase) {
                (Err(e), _) => Decision::store_failed(&e),
                (Ok(Some(_)), Phase::Ready(authed)) => Decision::with(Effect::Subscribe {
                    space,
                    since_seq,
                    device: authed.key,
                    snapshot,
                }),
                (Ok(_), _) => Decision::reject_and_close(RejectCode::NotMember, REMOVED),
            },
            (Some(Pending::EnvelopeChain { envelope, bytes }), Answer::Chain(chain)) => {
                self.envelope_admitted(envelope, bytes, chain)
            }
            (Some(Pending::Push { counter, bytes }), Answer::Pushed(outcome)) => {
                self.pushed(counter, bytes, outcome)
            }
            (
                Some(Pending::Snapshot {
                    covers_seq,
                    counter,
                    size,
                }),
                Answer::Done(stored),
            ) => match stored {
                Err(e) => Decision::store_failed(&e),
                Ok(()) => {
                    tracing::info!(
                        connection = self.id,
                        covers_seq,
                        bytes = size,
                        "snapshot proposed; it waits for the other person's countersignature"
                    );
                    Decision::send(RelayFrame::Committed {
                        seq: covers_seq,
                        counter,
                    })
                }
            },
            (Some(Pending::Countersign { request }), Answer::Countersigned(judged)) => {
                self.countersigned(request, judged)
            }
            (Some(Pending::Acl { bytes }), Answer::Acl(appended)) => {
                self.acl_appended(bytes, appended)
            }
            (
                Some(Pending::LockboxChain {
                    device,
                    epoch,
                    blob,
                }),
                Answer::Chain(chain),
            ) => self.lockbox_admitted(device, epoch, blob, chain),
            (Some(Pending::Lockbox { epoch, size }), Answer::Done(stored)) => match stored {
                Err(e) => Decision::store_failed(&e),
                Ok(()) => {
                    tracing::debug!(connection = self.id, epoch, bytes = size, "lockbox stored");
                    Decision::done()
                }
            },
            (Some(Pending::GetLockbox { epoch }), Answer::Lockbox(found)) => match found {
                Ok(Some(blob)) => Decision::send(RelayFrame::Lockbox { epoch, blob }),
                Ok(None) => Decision::reject(
                    RejectCode::Conflict,
                    format!(
                        "no lockbox for epoch {epoch} is stored for this key yet; a member device uploads it when it next syncs; retry later"
                    ),
                ),
                Err(e) => Decision::store_failed(&e),
            },
            (Some(Pending::AuthTombstone { space, device }), Answer::Tombstone(tombstone)) => {
                self.deleted_or_new(space, device, tombstone)
            }
            (Some(Pending::AuthExpiry { space, device }), Answer::Expiry(expiry)) => {
                self.expired_or_new(space, device, expiry)
            }
            (
                Some(Pending::DeleteChain {
                    space,
                    signature,
                    now_ms,
                }),
                Answer::Chain(chain),
            ) => match self.member_chain(chain) {
                Err(e) => Decision::store_failed(&e),
                Ok(None) => Decision::reject(RejectCode::NotMember, REMOVED),
                Ok(Some(chain)) => {
                    let Phase::Ready(authed) = self.phase else {
                        return Decision::done();
                    };
                    let mut members: Vec<_> =
                        chain.state.members().map(|d| *d.as_bytes()).collect();
                    members.sort_unstable();
                    let tombstone = Tombstone {
                        device: *authed.key.as_bytes(),
                        relay_id: self.relay_id,
                        nonce: self.nonce,
                        signature,
                        deleted_at_ms: now_ms,
                        members,
                    };
                    self.pending = Some(Pending::Delete {
                        space,
                        tombstone: Arc::new(tombstone.clone()),
                    });
                    Decision::ask(Query::DeleteSpace { space, tombstone })
                }
            },
            (Some(Pending::Delete { space, tombstone }), Answer::Done(deleted)) => match deleted {
                Err(e) => Decision::store_failed(&e),
                Ok(()) => {
                    tracing::info!(connection = self.id, space = %space.short(), "space deleted");
                    Decision::with(Effect::Forget(space))
                        .then(Effect::Publish {
                            space,
                            live: Live::Deleted(tombstone),
                        })
                        .then(Effect::Send(RelayFrame::AclChanged {
                            records: Vec::new(),
                        }))
                        .then(Effect::Close(CLOSING))
                }
            },
            (Some(Pending::StillMember), Answer::Chain(chain)) => match (self.phase, chain) {
                (Phase::Ready(authed), Ok(Some(chain))) if !chain.state.is_member(&authed.key) => {
                    Decision::reject_and_close(RejectCode::NotMember, REMOVED)
                }
                _ => Decision::done(),
            },
            (pending, answer) => {
                tracing::error!(
                    connection = self.id,
                    ?pending,
                    ?answer,
                    "an answer to no question"
                );
                Decision::reject_and_close(
                    RejectCode::Internal,
                    "the relay lost track of this request; reconnect and retry",
                )
            }
        }
    }

    /// Another device appended an ACL record: pass it on, and disconnect this device if
    /// the record removed it.
    pub(crate) fn on_acl_changed(&mut self, record: &[u8]) -> Decision {
        let send = Effect::Send(RelayFrame::AclChanged {
            records: vec![record.to_vec()],
        });
        match self.phase {
            Phase::Ready(authed) if !authed.as_invite => {
                self.pending = Some(Pending::StillMember);
                Decision {
                    effects: vec![send],
                    query: Some(Query::Chain {
                        space: authed.space,
                        fresh: false,
                    }),
                }
            }
            _ => Decision::with(send),
        }
    }

    /// Another device deleted the space: this connection's device hears it with the
    /// proof, and the connection closes.
    pub(crate) fn on_space_deleted(&self, tombstone: &Tombstone) -> Decision {
        match self.phase {
            Phase::Ready(authed) => {
                Decision::send(deleted_frame(authed.space, tombstone)).then(Effect::Close(CLOSING))
            }
            _ => Decision::with(Effect::Close(CLOSING)),
        }
    }

    /// The relay removed the space because nobody joined it: its one device hears so, as
    /// it would at its next login, and the connection closes.
    pub(crate) fn on_space_expired(&self) -> Decision {
        Decision::reject(RejectCode::SpaceExpired, EXPIRED).then(Effect::Close(CLOSING))
    }

    /// The hub dropped this subscriber because its queue was full.
    pub(crate) fn on_fell_behind(&self) -> Decision {
        Decision::reject(
            RejectCode::RateLimited,
            "this connection fell behind the live stream; reconnect and Subscribe from your last seq",
        )
        .then(Effect::Close(Close {
            code: 1008,
            reason: "fell behind",
        }))
    }

    /// The websocket refused a message over the frame limit before it was read.
    pub(crate) fn on_oversized_message(&self) -> Decision {
        let max = self.limits.max_frame_bytes;
        Decision::reject(
            RejectCode::TooLarge,
            format!("a frame is over this relay's limit of {max} bytes; split the batch into smaller envelopes"),
        )
        .then(Effect::Close(Close {
            code: 1009,
            reason: "frame too large",
        }))
    }

    /// A text websocket message: not something a hearth client sends.
    pub(crate) fn on_text_message(&self) -> Decision {
        Decision::reject_and_close(
            RejectCode::BadFrame,
            "frames are binary websocket messages; reconnect with a hearth client",
        )
    }

    fn hello(&mut self, version: u16, client: &str) -> Decision {
        if check_version(version).is_err() {
            tracing::info!(
                connection = self.id,
                version,
                "unsupported protocol version"
            );
            return Decision::reject_and_close(
                RejectCode::UnsupportedVersion,
                format!(
                    "this relay speaks protocol version {PROTOCOL_VERSION} (supported: {SUPPORTED_VERSIONS:?}); your client speaks version {version}; upgrade whichever side is older"
                ),
            );
        }
        tracing::debug!(connection = self.id, client_len = client.len(), "hello");
        self.phase = Phase::Auth;
        Decision::send(RelayFrame::Challenge {
            relay_id: self.relay_id,
            nonce: self.nonce,
            limits: self.limits,
            versions: SUPPORTED_VERSIONS.to_vec(),
        })
    }

    /// The relay proves it holds its key, over the client's nonce, this connection's
    /// challenge and the relay's clock (which a client refused for its clock compares).
    fn identify(&mut self, client_nonce: &[u8; 32], now_ms: u64) -> Decision {
        self.phase = Phase::Identified;
        Decision::send(RelayFrame::Identity {
            key: *self.identity.public_key(),
            time_ms: now_ms,
            signature: self.identity.prove(client_nonce, &self.nonce, now_ms),
        })
    }

    fn auth(
        &mut self,
        device: DeviceId,
        space: SpaceId,
        time_ms: u64,
        signature: &[u8; 64],
        as_invite: bool,
        now_ms: u64,
    ) -> Decision {
        // First, and whoever asks: the relay's clock is no secret (`Identity` carries it),
        // so naming the skew tells nobody anything about the space.
        if let Some(skew) = clock_skew(time_ms, now_ms) {
            tracing::info!(
                connection = self.id,
                skew_ms = skew,
                "login refused: the client's clock is off"
            );
            return Decision::reject_and_close(
                RejectCode::ClockSkew,
                skew_message(time_ms, now_ms),
            );
        }
        let message = auth_message(
            &self.relay_id,
            &self.nonce,
            time_ms,
            &space,
            &device,
            as_invite,
        );
        if verify_signature(device.as_bytes(), &message, signature).is_err() {
            return self.unauthorized(space, device);
        }
        self.pending = Some(Pending::Auth {
            space,
            device,
            as_invite,
            now_ms,
        });
        Decision::ask(Query::Chain { space, fresh: true })
    }

    fn authenticated(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        as_invite: bool,
        now_ms: u64,
        chain: Result<Option<Arc<Chain>>, StoreError>,
    ) -> Decision {
        let chain = match chain {
            Ok(Some(chain)) => chain,
            Ok(None) if !as_invite => {
                self.pending = Some(Pending::AuthTombstone { space, device });
                return Decision::ask(Query::Tombstone { space });
            }
            Ok(None) => return self.unauthorized(space, device),
            Err(e) => return Decision::store_failed(&e).then(Effect::Close(CLOSING)),
        };
        if as_invite {
            let invite = InviteId::from_bytes(*device.as_bytes());
            let Some(info) = chain.state.invite(&invite) else {
                return self.unauthorized(space, device);
            };
            if info.revoked {
                return Decision::reject_and_close(
                    RejectCode::InviteRevoked,
                    "this invite was cancelled when the space's devices changed; ask for a new invite",
                );
            }
            if info.used_by.is_some()
                || (info.role == InviteRole::Partner && chain.state.partner_joined())
            {
                return Decision::reject_and_close(
                    RejectCode::InviteUsed,
                    ProtoError::InviteUsed.to_string(),
                );
            }
            if now_ms >= info.expires_at_ms {
                let expired = ProtoError::InviteExpired {
                    expires_at_ms: info.expires_at_ms,
                };
                return Decision::reject_and_close(RejectCode::InviteExpired, expired.to_string());
            }
        } else if !chain.state.is_member(&device) {
            return self.unauthorized(space, device);
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
        Decision::send(RelayFrame::AclChanged {
            records: chain.records.clone(),
        })
    }

    /// A device's login for a space that does not exist: its member hears the space was
    /// deleted, with the proof; anyone else gets the same answer as for an existing space
    /// they are not in; and a space that never existed may be created.
    fn deleted_or_new(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        tombstone: Result<Option<Tombstone>, StoreError>,
    ) -> Decision {
        match tombstone {
            Err(e) => Decision::store_failed(&e).then(Effect::Close(CLOSING)),
            Ok(Some(tombstone)) if tombstone.members.contains(device.as_bytes()) => {
                tracing::info!(connection = self.id, space = %space.short(), device = %device.short(), "told a member its space was deleted");
                Decision::send(deleted_frame(space, &tombstone)).then(Effect::Close(CLOSING))
            }
            Ok(Some(_)) => self.unauthorized(space, device),
            Ok(None) => {
                self.pending = Some(Pending::AuthExpiry { space, device });
                Decision::ask(Query::Expiry { space })
            }
        }
    }

    /// A device's login for a space that was never deleted: if the relay removed it
    /// because nobody joined it, the device its Genesis named hears so and may create it
    /// again (on this connection), and anyone else gets the stranger's answer; a space
    /// that never existed may be created.
    fn expired_or_new(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        expiry: Result<Option<Expiry>, StoreError>,
    ) -> Decision {
        match expiry {
            Err(e) => Decision::store_failed(&e).then(Effect::Close(CLOSING)),
            Ok(Some(expiry)) if expiry.device == *device.as_bytes() => {
                tracing::info!(connection = self.id, space = %space.short(), device = %device.short(), "told a space's creator its space expired");
                self.phase = Phase::Create { space, device };
                Decision::reject(RejectCode::SpaceExpired, EXPIRED)
            }
            Ok(Some(_)) => self.unauthorized(space, device),
            Ok(None) => {
                tracing::debug!(connection = self.id, space = %space.short(), "authenticated to create a space");
                self.phase = Phase::Create { space, device };
                Decision::send(RelayFrame::AclChanged {
                    records: Vec::new(),
                })
            }
        }
    }

    /// A failed login: the stranger's answer, unless this address failed too often
    /// lately, which is told to wait (and costs the relay no more than that).
    fn unauthorized(&self, space: SpaceId, device: DeviceId) -> Decision {
        if let Err(wait) = self.gate.failed_login(self.peer) {
            tracing::warn!(connection = self.id, peer = %self.peer, "too many failed logins from one address; answering RateLimited");
            return Decision::reject_and_close(
                RejectCode::RateLimited,
                format!(
                    "too many failed logins from your address; retry in {}. If this device's logins keep failing, check its clock, and whether it is still in the space",
                    wait_words(wait)
                ),
            );
        }
        tracing::info!(
            connection = self.id,
            space = %space.short(),
            device = %device.short(),
            "authentication refused"
        );
        Decision::reject_and_close(RejectCode::Unauthorized, UNAUTHORIZED)
    }

    fn create(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        genesis: Vec<u8>,
        token: Option<&str>,
        now_ms: u64,
    ) -> Decision {
        if let Err(wait) = self.gate.creation(self.peer) {
            tracing::warn!(connection = self.id, peer = %self.peer, "too many spaces created from one address; answering RateLimited");
            return Decision::reject(
                RejectCode::RateLimited,
                format!(
                    "too many new spaces from your address in the last hour; retry in {}; nothing was created",
                    wait_words(wait)
                ),
            );
        }
        let ticket = match (self.gate.mode(), token) {
            (Admission::Open, _) => None,
            (Admission::Token, None) => {
                tracing::info!(connection = self.id, space = %space.short(), "creation refused: no token");
                return Decision::reject(
                    RejectCode::TokenRequired,
                    "this relay creates spaces only with a creation token from its operator; ask the relay's operator for one and create the space with it",
                );
            }
            (Admission::Token, Some(token)) if !hearth_proto::is_creation_token(token) => {
                return self.token_refused(TokenRefusal::Unknown);
            }
            (Admission::Token, Some(token)) => Some(crate::tokens::hash(token)),
        };
        let record = match AclRecord::decode(&genesis) {
            Ok(record) => record,
            Err(e) => return Decision::refuse(rejection(Failure::GenesisUnreadable(&e))),
        };
        // Any device may bring a space's Genesis: the device that moves a space here need
        // not be its founder. One that is not the Genesis device is a member only once
        // the chain it uploads next says so; until then it can do nothing but that.
        let names_this = matches!(
            record.body,
            AclBody::Genesis { space: s, .. } if s == space
        );
        if !names_this {
            return Decision::reject(
                RejectCode::Invalid,
                "CreateSpace needs a Genesis record naming the authenticated space; send the Genesis of the space you logged in for",
            );
        }
        if let Err(e) = AclState::from_records(std::slice::from_ref(&record), &self.limits) {
            return Decision::refuse(rejection(Failure::GenesisRefused(&e)));
        }
        self.pending = Some(Pending::Create {
            space,
            device,
            genesis: genesis.clone(),
        });
        Decision::ask(Query::CreateSpace {
            space,
            genesis,
            now_ms,
            ticket,
        })
    }

    fn token_refused(&self, refusal: TokenRefusal) -> Decision {
        tracing::info!(
            connection = self.id,
            ?refusal,
            "creation refused: token not accepted"
        );
        Decision::refuse(rejection(Failure::Store(&StoreError::Token(refusal))))
    }

    fn created(
        &mut self,
        space: SpaceId,
        device: DeviceId,
        genesis: Vec<u8>,
        stored: Result<(), StoreError>,
    ) -> Decision {
        match stored {
            Err(StoreError::Token(refusal)) => return self.token_refused(refusal),
            Err(e) => return Decision::store_failed(&e),
            Ok(()) => {}
        }
        tracing::info!(connection = self.id, space = %space.short(), bytes = genesis.len(), "space created");
        self.seeding = true;
        let mut decision = Decision::done();
        if let Ok(chain) = verify_chain(vec![genesis.clone()], &self.limits) {
            decision.effects.push(Effect::RememberCreated {
                space,
                chain: Arc::new(chain),
            });
        }
        self.phase = Phase::Ready(Authed {
            space,
            key: device,
            as_invite: false,
        });
        decision.then(Effect::Send(RelayFrame::AclChanged {
            records: vec![genesis],
        }))
    }

    fn request(&mut self, authed: Authed, frame: ClientFrame, now_ms: u64) -> Decision {
        if !matches!(frame, ClientFrame::PutAcl { .. } | ClientFrame::Ping { .. }) {
            self.seeding = false;
        }
        match frame {
            ClientFrame::Hello { .. }
            | ClientFrame::Identify { .. }
            | ClientFrame::Auth { .. }
            | ClientFrame::CreateSpace { .. } => Decision::reject_and_close(
                RejectCode::BadFrame,
                "this connection is already authenticated; reconnect to start over",
            ),
            ClientFrame::Ping { nonce } => Decision::send(RelayFrame::Pong { nonce }),
            ClientFrame::GetLockbox { epoch } => {
                self.pending = Some(Pending::GetLockbox { epoch });
                Decision::ask(Query::GetLockbox {
                    space: authed.space,
                    owner: authed.key,
                    epoch,
                })
            }
            ClientFrame::PutAcl { record } => self.put_acl(authed, record, now_ms),
            _ if authed.as_invite => Decision::reject(RejectCode::Invalid, INVITE_ONLY),
            ClientFrame::Subscribe { space, since_seq } => {
                self.subscribe(authed, space, since_seq, true)
            }
            ClientFrame::SubscribeEnvelopes { space, since_seq } => {
                self.subscribe(authed, space, since_seq, false)
            }
            ClientFrame::Countersign {
                covers_seq,
                snapshot,
                device,
                signature,
            } => {
                if self.pushes.check().is_err() {
                    return Decision::reject(
                        RejectCode::RateLimited,
                        "too many requests per second; back off and retry later",
                    );
                }
                let request = CountersignRequest {
                    covers_seq,
                    snapshot,
                    consent: Countersignature { device, signature },
                };
                self.pending = Some(Pending::Countersign { request });
                Decision::ask(Query::Countersign {
                    space: authed.space,
                    sender: authed.key,
                    request,
                })
            }
            ClientFrame::Push { envelope } => {
                if self.pushes.check().is_err() {
                    let rate = self.limits.max_pushes_per_sec;
                    return Decision::reject(
                        RejectCode::RateLimited,
                        format!("more than {rate} pushes per second; back off and retry later"),
                    );
                }
                self.envelope(authed, envelope, false)
            }
            ClientFrame::PushSnapshot { envelope } => {
                if self.pushes.check().is_err() {
                    return Decision::reject(
                        RejectCode::RateLimited,
                        "too many pushes per second; back off and retry later",
                    );
                }
                self.envelope(authed, envelope, true)
            }
            ClientFrame::PutLockbox {
                device,
                epoch,
                blob,
            } => {
                let max = self.limits.envelope_bytes();
                if blob.len() > max {
                    return Decision::reject(
                        RejectCode::TooLarge,
                        format!(
                            "a lockbox of {} bytes is over the limit of {max}",
                            blob.len()
                        ),
                    );
                }
                self.pending = Some(Pending::LockboxChain {
                    device,
                    epoch,
                    blob,
                });
                Decision::ask(Query::Chain {
                    space: authed.space,
                    fresh: false,
                })
            }
            ClientFrame::DeleteSpace { space, signature } => {
                if space != authed.space
                    || verify_delete_space(
                        &self.relay_id,
                        &self.nonce,
                        &space,
                        &authed.key,
                        &signature,
                    )
                    .is_err()
                {
                    return Decision::reject(
                        RejectCode::Invalid,
                        "DeleteSpace must name the authenticated space and be signed by this device over this connection's challenge",
                    );
                }
                self.pending = Some(Pending::DeleteChain {
                    space,
                    signature,
                    now_ms,
                });
                Decision::ask(Query::Chain {
                    space,
                    fresh: false,
                })
            }
        }
    }

    /// A `Subscribe` (or, without `snapshot`, a `SubscribeEnvelopes`) for `space`: it must
    /// be the authenticated one, and the device still a member.
    fn subscribe(
        &mut self,
        authed: Authed,
        space: SpaceId,
        since_seq: u64,
        snapshot: bool,
    ) -> Decision {
        if space != authed.space {
            return Decision::reject(
                RejectCode::Invalid,
                "Subscribe must name the space this connection authenticated for; reconnect and authenticate for that space",
            );
        }
        self.pending = Some(Pending::SubscribeChain {
            space,
            since_seq,
            snapshot,
        });
        Decision::ask(Query::Chain {
            space,
            fresh: false,
        })
    }

    /// The store's word on a `Countersign`: the countersignature is answered back once the
    /// proposal is the accepted snapshot; a refusal drops nothing.
    fn countersigned(
        &mut self,
        request: CountersignRequest,
        judged: Result<Result<(), CountersignRefusal>, StoreError>,
    ) -> Decision {
        match judged {
            Err(e) => Decision::store_failed(&e),
            Ok(Err(refusal)) => {
                tracing::info!(
                    connection = self.id,
                    covers_seq = request.covers_seq,
                    device = %request.consent.device.short(),
                    ?refusal,
                    "countersignature refused"
                );
                Decision::refuse(rejection(Failure::Countersign(&refusal)))
            }
            Ok(Ok(())) => {
                tracing::info!(
                    connection = self.id,
                    covers_seq = request.covers_seq,
                    device = %request.consent.device.short(),
                    "snapshot countersigned; the envelopes it covers were dropped"
                );
                Decision::send(RelayFrame::Countersigned {
                    covers_seq: request.covers_seq,
                    device: request.consent.device,
                    signature: request.consent.signature,
                })
            }
        }
    }

    /// The chain of the authenticated space if this device is still in it (`None` if it
    /// is not); a space that no longer exists is [`StoreError::NoSuchSpace`].
    fn member_chain(
        &self,
        chain: Result<Option<Arc<Chain>>, StoreError>,
    ) -> Result<Option<Arc<Chain>>, StoreError> {
        let chain = chain?.ok_or(StoreError::NoSuchSpace)?;
        match self.phase {
            Phase::Ready(authed) if chain.state.is_member(&authed.key) => Ok(Some(chain)),
            _ => Ok(None),
        }
    }

    /// For a request that needs this device to still be a member: its login and the
    /// space's chain, or the decision that ends the request (the store failed, or the
    /// device was removed meanwhile).
    fn admitted(
        &self,
        chain: Result<Option<Arc<Chain>>, StoreError>,
    ) -> Result<(Authed, Arc<Chain>), Box<Decision>> {
        let Phase::Ready(authed) = self.phase else {
            return Err(Box::new(Decision::done()));
        };
        match self.member_chain(chain) {
            Err(e) => Err(Box::new(Decision::store_failed(&e))),
            Ok(None) => Err(Box::new(Decision::reject(RejectCode::NotMember, REMOVED))),
            Ok(Some(chain)) => Ok((authed, chain)),
        }
    }

    /// Checks a pushed envelope, all but its signature and the chain: a push's signature is
    /// checked by the store thread, in a batch with the others waiting (see worker.rs); a
    /// snapshot's once the chain has admitted it.
    fn envelope(&mut self, authed: Authed, bytes: Vec<u8>, snapshot: bool) -> Decision {
        let max = self.limits.envelope_bytes();
        if bytes.len() > max {
            return Decision::reject(
                RejectCode::TooLarge,
                format!(
                    "an envelope of {} bytes is over this relay's limit of {max}; split the batch into smaller envelopes",
                    bytes.len()
                ),
            );
        }
        let envelope = match Envelope::decode(&bytes) {
            Ok(envelope) => envelope,
            Err(e) => return self.refuse_envelope(&e, bytes.len()),
        };
        let header = envelope.header();
        let kind_ok = matches!(
            (header.kind, snapshot),
            (EnvelopeKind::Changes, false) | (EnvelopeKind::Snapshot { .. }, true)
        );
        if !kind_ok {
            return Decision::reject(
                RejectCode::Invalid,
                "wrong envelope kind: send changes with Push and snapshots with PushSnapshot",
            );
        }
        if header.space != authed.space {
            return Decision::reject(
                RejectCode::Invalid,
                "the envelope names another space than this connection authenticated for; push it on a connection authenticated for its space",
            );
        }
        if header.author != authed.key {
            return Decision::reject(
                RejectCode::NotMember,
                "the envelope's author is not the device this connection authenticated as; push only your own envelopes",
            );
        }
        self.pending = Some(Pending::EnvelopeChain { envelope, bytes });
        Decision::ask(Query::Chain {
            space: authed.space,
            fresh: false,
        })
    }

    fn refuse_envelope(&self, error: &ProtoError, bytes: usize) -> Decision {
        tracing::info!(connection = self.id, bytes, "envelope refused");
        Decision::refuse(rejection(Failure::Envelope(error)))
    }

    /// The chain's word on a checked envelope; then on to the store.
    fn envelope_admitted(
        &mut self,
        envelope: Envelope,
        bytes: Vec<u8>,
        chain: Result<Option<Arc<Chain>>, StoreError>,
    ) -> Decision {
        let (authed, chain) = match self.admitted(chain) {
            Ok(admitted) => admitted,
            Err(decision) => return *decision,
        };
        let header = *envelope.header();
        if header.epoch > chain.state.epoch() {
            return Decision::reject(
                RejectCode::Invalid,
                format!(
                    "the envelope names epoch {}, but the space is at epoch {}; fetch the ACL",
                    header.epoch,
                    chain.state.epoch()
                ),
            );
        }
        match header.kind {
            EnvelopeKind::Changes => {
                let signed = Signed {
                    message: Envelope::signed_message(
                        &header,
                        envelope.nonce(),
                        envelope.ciphertext(),
                    ),
                    signature: *envelope.signature(),
                };
                drop(envelope);
                let bytes: Arc<[u8]> = Arc::from(bytes);
                self.pending = Some(Pending::Push {
                    counter: header.counter,
                    bytes: Arc::clone(&bytes),
                });
                Decision::ask(Query::Push {
                    space: authed.space,
                    device: authed.key,
                    counter: header.counter,
                    bytes,
                    signed,
                })
            }
            EnvelopeKind::Snapshot { covers_seq } => {
                if let Err(e) = envelope.verify() {
                    return self.refuse_envelope(&e, bytes.len());
                }
                self.pending = Some(Pending::Snapshot {
                    covers_seq,
                    counter: header.counter,
                    size: bytes.len(),
                });
                Decision::ask(Query::ProposeSnapshot {
                    space: authed.space,
                    covers_seq,
                    author: authed.key,
                    bytes,
                })
            }
        }
    }

    fn pushed(
        &mut self,
        counter: u64,
        bytes: Arc<[u8]>,
        outcome: Result<PushOutcome, StoreError>,
    ) -> Decision {
        let Phase::Ready(authed) = self.phase else {
            return Decision::done();
        };
        let size = bytes.len();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(StoreError::BadSignature) => {
                return self.refuse_envelope(&ProtoError::BadSignature, size);
            }
            Err(e) => return Decision::store_failed(&e),
        };
        tracing::debug!(
            connection = self.id,
            seq = outcome.seq,
            counter,
            bytes = size,
            duplicate = outcome.duplicate,
            "push committed"
        );
        let mut decision = Decision::done();
        if !outcome.duplicate {
            decision = decision
                .then(Effect::Stored { bytes: size })
                .then(Effect::Publish {
                    space: authed.space,
                    // The connection stamps it with its frame's arrival when it publishes.
                    live: Live::Event {
                        seq: outcome.seq,
                        envelope: bytes,
                        received: crate::metrics::Stamp::default(),
                    },
                })
                .then(Effect::OwnCommitted(outcome.seq));
        }
        decision.then(Effect::Send(RelayFrame::Committed {
            seq: outcome.seq,
            counter,
        }))
    }

    fn put_acl(&mut self, authed: Authed, bytes: Vec<u8>, now_ms: u64) -> Decision {
        let record = match AclRecord::decode(&bytes) {
            Ok(record) => record,
            Err(e) => return Decision::refuse(rejection(Failure::AclUnreadable(&e))),
        };
        if authed.as_invite {
            let consumes_this = matches!(
                record.body,
                AclBody::AddDevice { invite, .. } if invite.as_bytes() == authed.key.as_bytes()
            );
            if !consumes_this {
                return Decision::reject(RejectCode::Invalid, INVITE_ONLY);
            }
        }
        self.pending = Some(Pending::Acl {
            bytes: bytes.clone(),
        });
        Decision::ask(Query::AppendAcl {
            space: authed.space,
            record,
            bytes,
            now_ms,
            accepted_elsewhere: self.seeding,
        })
    }

    fn acl_appended(
        &mut self,
        bytes: Vec<u8>,
        appended: Result<Result<Chain, ProtoError>, StoreError>,
    ) -> Decision {
        let Phase::Ready(authed) = self.phase else {
            return Decision::done();
        };
        let chain = match appended {
            Ok(Ok(chain)) => chain,
            Ok(Err(refused)) => return Decision::refuse(rejection(Failure::AclRefused(&refused))),
            Err(e) => return Decision::store_failed(&e),
        };
        tracing::info!(
            connection = self.id,
            space = %authed.space.short(),
            index = chain.records.len() - 1,
            "acl record appended"
        );
        Decision::with(Effect::Remember {
            space: authed.space,
            chain: Arc::new(chain),
        })
        .then(Effect::Publish {
            space: authed.space,
            live: Live::Acl(Arc::from(bytes.clone())),
        })
        .then(Effect::Send(RelayFrame::AclChanged {
            records: vec![bytes],
        }))
    }

    fn lockbox_admitted(
        &mut self,
        device: DeviceId,
        epoch: u32,
        blob: Vec<u8>,
        chain: Result<Option<Arc<Chain>>, StoreError>,
    ) -> Decision {
        let (authed, chain) = match self.admitted(chain) {
            Ok(admitted) => admitted,
            Err(decision) => return *decision,
        };
        if epoch > chain.state.epoch() {
            // Keys are wrapped only once the ACL has moved to their epoch, so two devices
            // racing to rotate cannot leave one's lockboxes under the other's record.
            return Decision::reject(
                RejectCode::Invalid,
                format!(
                    "a lockbox for epoch {epoch}, but the space is at epoch {}; append the RotateEpoch record first",
                    chain.state.epoch()
                ),
            );
        }
        let known = chain.state.is_member(&device)
            || chain
                .state
                .invite(&InviteId::from_bytes(*device.as_bytes()))
                .is_some();
        if !known {
            return Decision::reject(
                RejectCode::Invalid,
                "a lockbox must be for a member device or an invite key in the ACL; upload the ACL record first",
            );
        }
        self.pending = Some(Pending::Lockbox {
            epoch,
            size: blob.len(),
        });
        Decision::ask(Query::PutLockbox {
            space: authed.space,
            device,
            epoch,
            blob,
        })
    }
}

/// How far (in ms, either way) a login's `time_ms` is from the relay's `now_ms`, if
/// further than [`MAX_AUTH_SKEW_MS`].
fn clock_skew(time_ms: u64, now_ms: u64) -> Option<u64> {
    let skew = time_ms.abs_diff(now_ms);
    (skew > MAX_AUTH_SKEW_MS).then_some(skew)
}

/// What a login refused for its clock is told: which way and how far, in whole seconds.
fn skew_message(time_ms: u64, now_ms: u64) -> String {
    let way = if time_ms > now_ms {
        "ahead of"
    } else {
        "behind"
    };
    let seconds = time_ms.abs_diff(now_ms) / 1000;
    let allowed = MAX_AUTH_SKEW_MS / 1000;
    format!(
        "your clock is {seconds} s {way} the relay's (at most {allowed} s are allowed; the relay's time was in its Identity, {now_ms} ms since 1970 UTC); set this device's clock and log in again"
    )
}

/// The frame that tells a member device its space `space` was deleted, with the proof
/// the tombstone keeps.
fn deleted_frame(space: SpaceId, tombstone: &Tombstone) -> RelayFrame {
    RelayFrame::SpaceDeleted {
        space,
        device: DeviceId::from_bytes(tombstone.device),
        relay_id: tombstone.relay_id,
        nonce: tombstone.nonce,
        signature: tombstone.signature,
        deleted_at_ms: tombstone.deleted_at_ms,
    }
}

#[cfg(test)]
mod tests;
