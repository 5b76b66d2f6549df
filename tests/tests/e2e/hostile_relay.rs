//! A malicious relay for the tests (issue 15): a websocket proxy in front of a real relay
//! that forwards every frame both ways, decoded with hearth-proto, and lets a test change
//! what passes while the clients run. The relay behind it stays honest and real (a
//! [`TestRelay`] on a real SQLite file); the proxy is the operator who tampers with the
//! traffic, which is everything a relay operator can do without the clients' keys.
//!
//! Clients use it by pointing their relay URL at [`HostileRelay::url`]. Each client
//! connection gets its own connection to the relay behind. Rules are added through the
//! proxy's methods at any time, from the test's thread, and apply to the frames that pass
//! from then on: to every connection, or ([`Scope::Device`]) only to connections that
//! logged in as one device (the key named in its `Auth`; for an invite login, the invite
//! key). What a rule did is counted ([`HostileRelay::tally`]), and so is every frame seen,
//! by direction and kind ([`HostileRelay::seen`]).
//!
//! What it can do, and in which direction (relay → client unless said):
//! - [`withhold`](HostileRelay::withhold) envelopes matching a predicate from `Batch` and
//!   `Event` frames, once (the first time each is seen) or for good; a final `Batch`
//!   whose last items are withheld names the last kept item as the head, as a relay that
//!   hides them would, so the client does not wait for more;
//! - [`reverse_batches`](HostileRelay::reverse_batches): each `Batch`'s items in reverse;
//! - [`hide_acl_after`](HostileRelay::hide_acl_after): drop the ACL records after a given
//!   chain length from `AclChanged`, in the login answer and in later ones;
//! - [`inject_batch_item`](HostileRelay::inject_batch_item) and
//!   [`inject_event`](HostileRelay::inject_event): add envelope bytes the test built;
//! - [`answer_login`](HostileRelay::answer_login): answer a login with frame bytes the test
//!   built, instead of the relay's answer;
//! - [`rewrite_snapshots`](HostileRelay::rewrite_snapshots) (client → relay): replace a
//!   `PushSnapshot`'s envelope; without the rule, snapshots pass as they are;
//! - [`replay_identity`](HostileRelay::replay_identity): answer `Hello` and `Identify`
//!   with the `Challenge` and `Identity` the relay sent on an earlier connection, as an
//!   impostor that recorded them would;
//! - [`repoint`](HostileRelay::repoint): send new connections to another relay, as an
//!   address that now leads elsewhere.
//!
//! It lives here, in the tests, and nowhere in a shipped crate. It is bound before
//! [`HostileRelay::start`] returns and runs on a thread and runtime of its own, like
//! [`TestRelay`], so it serves async tests and tests that drive the `hearth` program alike.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::ops::Not;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::{SinkExt, StreamExt};
use hearth_proto::{
    ClientFrame, DeviceId, Envelope, EnvelopeKind, RelayFrame, decode_client, decode_relay,
    encode_client, encode_relay,
};
#[cfg(doc)]
use hearth_testkit::TestRelay;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// The largest frame the proxy decodes; bigger ones pass as they are. Far above any
/// relay's limit, so every frame a real client or relay sends is decoded.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a client to the relay.
    ToRelay,
    /// From the relay to a client.
    ToClient,
}

/// Which connections a rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every connection.
    Every,
    /// Only connections that logged in as this key (a device, or an invite key).
    Device(DeviceId),
}

impl Scope {
    fn covers(self, login: Option<DeviceId>) -> bool {
        match self {
            Scope::Every => true,
            Scope::Device(device) => login == Some(device),
        }
    }
}

/// How long a rule lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The first time it can act (for [`HostileRelay::withhold`]: the first time each
    /// matching envelope is seen; the same envelope passes when it comes again).
    Once,
    /// Every time, until the rule is removed.
    ForGood,
}

/// Where an injected item goes in a `Batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before the first item, under the first item's seq.
    Front,
    /// After the last item, under the last item's seq.
    Back,
}

/// An envelope in a `Batch` or `Event`, as a predicate sees it (its header, unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The seq the relay delivers it under.
    pub seq: u64,
    /// The device the header names.
    pub author: DeviceId,
    /// The author's counter.
    pub counter: u64,
    /// The epoch the header names.
    pub epoch: u32,
    /// Whether it is a snapshot (else changes).
    pub snapshot: bool,
}

impl Item {
    /// The item for envelope `bytes` at `seq`, if they decode as an envelope.
    fn of(seq: u64, bytes: &[u8]) -> Option<Item> {
        let header = *Envelope::decode(bytes).ok()?.header();
        Some(Item {
            seq,
            author: header.author,
            counter: header.counter,
            epoch: header.epoch,
            snapshot: matches!(header.kind, EnvelopeKind::Snapshot { .. }),
        })
    }
}

/// What the rules did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Envelopes withheld from `Batch` and `Event` frames.
    pub withheld: usize,
    /// `Batch` frames whose items were reversed (with more than one item).
    pub reversed: usize,
    /// ACL records hidden from `AclChanged` frames.
    pub hidden_records: usize,
    /// Items and events injected.
    pub injected: usize,
    /// Logins answered by the proxy instead of the relay.
    pub answered_logins: usize,
    /// Snapshots rewritten on their way to the relay.
    pub rewritten_snapshots: usize,
    /// Challenges and identity proofs replayed from an earlier connection.
    pub replayed_identities: usize,
}

/// A rule's handle, to remove it with [`HostileRelay::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(u64);

type Predicate = Arc<dyn Fn(&Item) -> bool + Send + Sync>;
type Rewrite = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What a rule does.
enum Action {
    Withhold { times: Times, matching: Predicate },
    Reverse,
    HideAclAfter(usize),
    InjectItem { place: Place, bytes: Vec<u8> },
    InjectEvent { seq: u64, bytes: Vec<u8> },
    AnswerLogin(Vec<u8>),
    RewriteSnapshot(Rewrite),
    ReplayIdentity,
}

/// A rule: what, where, for how long.
struct Rule {
    id: u64,
    scope: Scope,
    times: Times,
    action: Action,
}

/// What the proxy's connections share with the test: the rules, and what they saw.
#[derive(Default)]
struct Shared {
    next_id: u64,
    rules: Vec<Rule>,
    seen: HashMap<(Direction, &'static str), usize>,
    tally: Tally,
    /// Envelopes withheld once already (their bytes): they pass from now on.
    withheld_once: HashSet<Vec<u8>>,
    /// The relay new connections go to, once repointed.
    upstream: Option<String>,
    /// The last `Challenge` and `Identity` a connection got from the relay, as sent.
    recorded_identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl Shared {
    /// Removes the rules with these ids (rules of [`Times::Once`] that acted).
    fn spend(&mut self, spent: &[u64]) {
        self.rules.retain(|r| !spent.contains(&r.id));
    }
}

/// The proxy. Dropping it stops it (and ends its connections).
pub struct HostileRelay {
    /// The URL clients use instead of the relay's: `ws://127.0.0.1:PORT/v1/sync`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for HostileRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileRelay")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HostileRelay {
    /// Starts a proxy on a free port of 127.0.0.1 in front of the relay at `upstream`
    /// (a `ws://` URL, e.g. a [`TestRelay`]'s). It accepts connections as soon as this
    /// returns.
    pub fn start(upstream: &str) -> HostileRelay {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let upstream = upstream.to_owned();
        let serving = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("hostile-relay".into())
            .spawn(move || serve(listener, upstream, serving, stopped))
            .unwrap();
        HostileRelay {
            url: format!("ws://{addr}/v1/sync"),
            shared,
            stop: Some(stop),
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, scope: Scope, times: Times, action: Action) -> RuleId {
        let mut shared = self.shared();
        shared.next_id += 1;
        let id = shared.next_id;
        shared.rules.push(Rule {
            id,
            scope,
            times,
            action,
        });
        RuleId(id)
    }

    /// Withholds from `Batch` and `Event` frames every envelope `matching` says yes to:
    /// the first time each is seen ([`Times::Once`]) or every time ([`Times::ForGood`]).
    /// An `Event` whose envelope is withheld is not sent at all.
    pub fn withhold(
        &self,
        scope: Scope,
        times: Times,
        matching: impl Fn(&Item) -> bool + Send + Sync + 'static,
    ) -> RuleId {
        let matching = Arc::new(matching);
        self.add(scope, Times::ForGood, Action::Withhold { times, matching })
    }

    /// Sends each `Batch`'s items in reverse order.
    pub fn reverse_batches(&self, scope: Scope) -> RuleId {
        self.add(scope, Times::ForGood, Action::Reverse)
    }

    /// Hides every ACL record after the first `len` of the chain: the login answer holds
    /// at most `len` records, and a later `AclChanged` loses the records past them (it is
    /// still sent, with the rest, so a client waiting for it is answered).
    pub fn hide_acl_after(&self, scope: Scope, len: usize) -> RuleId {
        self.add(scope, Times::ForGood, Action::HideAclAfter(len))
    }

    /// Adds `envelope` (any bytes) as an item of the next `Batch` ([`Times::Once`]) or of
    /// every one, at `place`, under the seq of the item it goes next to (the head if the
    /// batch is empty), so the client's cursor skips nothing the relay holds.
    pub fn inject_batch_item(
        &self,
        scope: Scope,
        times: Times,
        place: Place,
        envelope: Vec<u8>,
    ) -> RuleId {
        self.add(
            scope,
            times,
            Action::InjectItem {
                place,
                bytes: envelope,
            },
        )
    }

    /// Sends `Event { seq, envelope }` just before the next `Batch` or `Event` the relay
    /// sends (so the client reads it while subscribed), once or every time.
    pub fn inject_event(&self, scope: Scope, times: Times, seq: u64, envelope: Vec<u8>) -> RuleId {
        self.add(
            scope,
            times,
            Action::InjectEvent {
                seq,
                bytes: envelope,
            },
        )
    }

    /// Answers the next login ([`Times::Once`]) or every one with `frame` (the bytes of a
    /// relay frame, or anything else) instead of the relay's answer, which is dropped.
    pub fn answer_login(&self, scope: Scope, times: Times, frame: Vec<u8>) -> RuleId {
        self.add(scope, times, Action::AnswerLogin(frame))
    }

    /// Replaces the envelope of every `PushSnapshot` on its way to the relay with what
    /// `rewrite` makes of it.
    pub fn rewrite_snapshots(
        &self,
        scope: Scope,
        rewrite: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> RuleId {
        self.add(
            scope,
            Times::ForGood,
            Action::RewriteSnapshot(Arc::new(rewrite)),
        )
    }

    /// From now on answers every connection's `Hello` and `Identify` with the `Challenge`
    /// and `Identity` the relay sent the last connection before (the relay's own answers
    /// are dropped), as an impostor replaying what it recorded would.
    ///
    /// # Panics
    /// If no connection got both yet.
    pub fn replay_identity(&self) -> RuleId {
        assert!(
            self.shared().recorded_identity.is_some(),
            "no identity proof recorded yet"
        );
        self.add(Scope::Every, Times::ForGood, Action::ReplayIdentity)
    }

    /// Sends the connections opened from now on to the relay at `upstream` instead.
    pub fn repoint(&self, upstream: &str) {
        self.shared().upstream = Some(upstream.to_owned());
    }

    /// Removes a rule (nothing happens if it is gone already).
    pub fn remove(&self, rule: RuleId) {
        self.shared().spend(&[rule.0]);
    }

    /// Removes every rule: from now on the proxy forwards frames as they are.
    pub fn clear(&self) {
        self.shared().rules.clear();
    }

    /// What the rules did so far.
    pub fn tally(&self) -> Tally {
        self.shared().tally
    }

    /// How many frames of `kind` (the frame's variant name, e.g. `"Batch"`) went
    /// `direction`, counted as they came in, before any rule.
    ///
    /// # Panics
    /// If `kind` names no frame of that direction (a typo in a test).
    pub fn seen(&self, direction: Direction, kind: &str) -> usize {
        let known = match direction {
            Direction::ToRelay => CLIENT_KINDS,
            Direction::ToClient => RELAY_KINDS,
        };
        assert!(
            known.contains(&kind),
            "no {direction:?} frame is called {kind}"
        );
        self.shared()
            .seen
            .iter()
            .filter(|((d, k), _)| *d == direction && *k == kind)
            .map(|(_, n)| *n)
            .sum()
    }
}

impl Drop for HostileRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

const CLIENT_KINDS: &[&str] = &[
    "Hello",
    "Identify",
    "Auth",
    "Subscribe",
    "Push",
    "PushSnapshot",
    "PutAcl",
    "PutLockbox",
    "GetLockbox",
    "DeleteSpace",
    "Ping",
    "CreateSpace",
    "unreadable",
];

const RELAY_KINDS: &[&str] = &[
    "Challenge",
    "Batch",
    "Committed",
    "Event",
    "AclChanged",
    "Lockbox",
    "Reject",
    "Pong",
    "SpaceDeleted",
    "Identity",
    "unreadable",
];

fn client_kind(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Hello { .. } => "Hello",
        ClientFrame::Auth { .. } => "Auth",
        ClientFrame::Subscribe { .. } => "Subscribe",
        ClientFrame::Push { .. } => "Push",
        ClientFrame::PushSnapshot { .. } => "PushSnapshot",
        ClientFrame::PutAcl { .. } => "PutAcl",
        ClientFrame::PutLockbox { .. } => "PutLockbox",
        ClientFrame::GetLockbox { .. } => "GetLockbox",
        ClientFrame::DeleteSpace { .. } => "DeleteSpace",
        ClientFrame::Ping { .. } => "Ping",
        ClientFrame::CreateSpace { .. } => "CreateSpace",
        ClientFrame::Countersign { .. } => "Countersign",
        ClientFrame::SubscribeEnvelopes { .. } => "SubscribeEnvelopes",
        ClientFrame::Identify { .. } => "Identify",
    }
}

fn relay_kind(frame: &RelayFrame) -> &'static str {
    match frame {
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
    }
}

/// Runs the proxy on `listener` until `stopped` fires, on a runtime of its own.
fn serve(
    listener: std::net::TcpListener,
    upstream: String,
    shared: Arc<Mutex<Shared>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(relay_one(stream, upstream.clone(), Arc::clone(&shared)));
                }
                _ = &mut stopped => return,
            }
        }
    });
}

/// What the proxy knows about one client connection.
#[derive(Debug, Default)]
struct Conn {
    /// The key its `Auth` named.
    login: Option<DeviceId>,
    /// `Auth` was forwarded and the relay has not answered yet.
    awaiting_login: bool,
    /// ACL records the relay sent it so far (the chain's length as it was told).
    acl_records: usize,
    /// The `Challenge` the relay sent it, as sent.
    challenge: Option<Vec<u8>>,
}

/// Carries one client connection to a connection of its own to the relay, frame by frame,
/// through the rules.
async fn relay_one(stream: TcpStream, upstream: String, shared: Arc<Mutex<Shared>>) {
    let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let repointed = shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .upstream
        .clone();
    let upstream = repointed.unwrap_or(upstream);
    let Ok((relay, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_relay, mut from_relay) = relay.split();
    let mut conn = Conn::default();
    loop {
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    let out = from_the_client(&shared, &mut conn, &bytes);
                    if to_relay.send(Message::Binary(out.into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if to_relay.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            message = from_relay.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    for out in from_the_relay(&shared, &mut conn, &bytes) {
                        if to_client.send(Message::Binary(out.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if to_client.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    let _ = to_client.close().await;
    let _ = to_relay.close().await;
}

/// A frame from the client, as it goes on to the relay.
fn from_the_client(shared: &Mutex<Shared>, conn: &mut Conn, bytes: &[u8]) -> Vec<u8> {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let Ok(frame) = decode_client(bytes, MAX_FRAME) else {
        *shared
            .seen
            .entry((Direction::ToRelay, "unreadable"))
            .or_default() += 1;
        return bytes.to_vec();
    };
    *shared
        .seen
        .entry((Direction::ToRelay, client_kind(&frame)))
        .or_default() += 1;
    match frame {
        ClientFrame::Auth { device, .. } => {
            conn.login = Some(device);
            conn.awaiting_login = true;
            bytes.to_vec()
        }
        ClientFrame::PushSnapshot { envelope } => {
            let rewrite = shared.rules.iter().find_map(|r| match &r.action {
                Action::RewriteSnapshot(f) if r.scope.covers(conn.login) => Some(Arc::clone(f)),
                _ => None,
            });
            match rewrite {
                Some(rewrite) => {
                    shared.tally.rewritten_snapshots += 1;
                    let envelope = rewrite(&envelope);
                    encode_client(&ClientFrame::PushSnapshot { envelope }, MAX_FRAME).unwrap()
                }
                None => bytes.to_vec(),
            }
        }
        _ => bytes.to_vec(),
    }
}

/// A frame from the relay, as it goes on to the client: none, itself, or changed, with
/// what the rules add before it.
fn from_the_relay(shared: &Mutex<Shared>, conn: &mut Conn, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let shared = &mut *shared;
    let login_answer = std::mem::take(&mut conn.awaiting_login);
    let Ok(frame) = decode_relay(bytes, MAX_FRAME) else {
        *shared
            .seen
            .entry((Direction::ToClient, "unreadable"))
            .or_default() += 1;
        return vec![bytes.to_vec()];
    };
    *shared
        .seen
        .entry((Direction::ToClient, relay_kind(&frame)))
        .or_default() += 1;
    let mut spent = Vec::new();
    let mut out = Vec::new();
    if login_answer {
        let answer = shared
            .rules
            .iter()
            .find(|r| matches!(r.action, Action::AnswerLogin(_)) && r.scope.covers(conn.login));
        if let Some(Rule {
            id,
            times,
            action: Action::AnswerLogin(answer),
            ..
        }) = answer
        {
            if *times == Times::Once {
                spent.push(*id);
            }
            out.push(answer.clone());
            shared.tally.answered_logins += 1;
            shared.spend(&spent);
            return out;
        }
    }
    let replaying = shared
        .rules
        .iter()
        .any(|r| matches!(r.action, Action::ReplayIdentity));
    let frame = match frame {
        RelayFrame::Challenge { .. } | RelayFrame::Identity { .. } if replaying => {
            let (challenge, identity) = shared
                .recorded_identity
                .clone()
                .expect("replay_identity checked that one was recorded");
            let replayed = if matches!(frame, RelayFrame::Challenge { .. }) {
                challenge
            } else {
                shared.tally.replayed_identities += 1;
                identity
            };
            return vec![replayed];
        }
        RelayFrame::Challenge { .. } => {
            conn.challenge = Some(bytes.to_vec());
            Some(frame)
        }
        RelayFrame::Identity { .. } => {
            if let Some(challenge) = conn.challenge.clone() {
                shared.recorded_identity = Some((challenge, bytes.to_vec()));
            }
            Some(frame)
        }
        RelayFrame::Batch { items, head } => {
            out.extend(injected_events(shared, conn, &mut spent));
            let (items, head) = batch(shared, conn, items, head, &mut spent);
            Some(RelayFrame::Batch { items, head })
        }
        RelayFrame::Event { seq, envelope } => {
            out.extend(injected_events(shared, conn, &mut spent));
            withheld(shared, conn, seq, &envelope)
                .not()
                .then_some(RelayFrame::Event { seq, envelope })
        }
        RelayFrame::AclChanged { records } => Some(RelayFrame::AclChanged {
            records: acl(shared, conn, records),
        }),
        other => Some(other),
    };
    shared.spend(&spent);
    out.extend(frame.map(|f| encode_relay(&f, MAX_FRAME).unwrap()));
    out
}

/// The `Event` frames the rules inject now, before a `Batch` or `Event`.
fn injected_events(shared: &mut Shared, conn: &Conn, spent: &mut Vec<u64>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for rule in &shared.rules {
        if let Action::InjectEvent { seq, bytes } = &rule.action
            && rule.scope.covers(conn.login)
        {
            let event = RelayFrame::Event {
                seq: *seq,
                envelope: bytes.clone(),
            };
            out.push(encode_relay(&event, MAX_FRAME).unwrap());
            if rule.times == Times::Once {
                spent.push(rule.id);
            }
        }
    }
    shared.tally.injected += out.len();
    out
}

/// Whether the rules withhold the envelope `bytes` at `seq` (and count it if so).
fn withheld(shared: &mut Shared, conn: &Conn, seq: u64, bytes: &[u8]) -> bool {
    let Some(item) = Item::of(seq, bytes) else {
        return false;
    };
    let mut once = false;
    let mut for_good = false;
    for rule in &shared.rules {
        if let Action::Withhold { times, matching } = &rule.action
            && rule.scope.covers(conn.login)
            && matching(&item)
        {
            match times {
                Times::Once => once = true,
                Times::ForGood => for_good = true,
            }
        }
    }
    let withhold = for_good || (once && shared.withheld_once.insert(bytes.to_vec()));
    if withhold {
        shared.tally.withheld += 1;
    }
    withhold
}

/// A `Batch`'s items and head as the rules make them.
fn batch(
    shared: &mut Shared,
    conn: &Conn,
    items: Vec<(u64, Vec<u8>)>,
    head: u64,
    spent: &mut Vec<u64>,
) -> (Vec<(u64, Vec<u8>)>, u64) {
    let last = items.last().map(|(seq, _)| *seq);
    let mut kept: Vec<(u64, Vec<u8>)> = items
        .into_iter()
        .filter(|(seq, bytes)| !withheld(shared, conn, *seq, bytes))
        .collect();
    // The last page of what the relay holds: it stays the last page.
    let head = match (last, kept.last()) {
        (Some(last), Some((kept_last, _))) if last >= head => *kept_last,
        _ => head,
    };
    let scoped = |action: fn(&Action) -> bool| {
        shared
            .rules
            .iter()
            .filter(move |r| action(&r.action) && r.scope.covers(conn.login))
    };
    if scoped(|a| matches!(a, Action::Reverse)).next().is_some() {
        if kept.len() > 1 {
            shared.tally.reversed += 1;
        }
        kept.reverse();
    }
    let mut injected = 0;
    for rule in scoped(|a| matches!(a, Action::InjectItem { .. })) {
        let Action::InjectItem { place, bytes } = &rule.action else {
            continue;
        };
        match place {
            Place::Front => {
                let seq = kept.first().map_or(head, |(seq, _)| *seq);
                kept.insert(0, (seq, bytes.clone()));
            }
            Place::Back => {
                let seq = kept.last().map_or(head, |(seq, _)| *seq);
                kept.push((seq, bytes.clone()));
            }
        }
        injected += 1;
        if rule.times == Times::Once {
            spent.push(rule.id);
        }
    }
    shared.tally.injected += injected;
    (kept, head)
}

/// An `AclChanged`'s records as the rules leave them.
fn acl(shared: &mut Shared, conn: &mut Conn, records: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let first = conn.acl_records;
    conn.acl_records += records.len();
    let shown = shared
        .rules
        .iter()
        .filter_map(|r| match r.action {
            Action::HideAclAfter(len) if r.scope.covers(conn.login) => Some(len),
            _ => None,
        })
        .min();
    let Some(shown) = shown else {
        return records;
    };
    let kept: Vec<Vec<u8>> = records
        .into_iter()
        .enumerate()
        .filter(|(i, _)| first + i < shown)
        .map(|(_, r)| r)
        .collect();
    shared.tally.hidden_records += conn.acl_records - first - kept.len();
    kept
}

/// A client that speaks the protocol by hand, with a real device's keys: what a modified
/// client of a member sends that the stock one never would (a `DeleteSpace`, a snapshot
/// with anything inside), through the proxy or straight to a relay.
pub struct Raw {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    /// The relay id of the `Challenge` this connection got.
    pub relay_id: [u8; 16],
    /// The nonce of that `Challenge`.
    pub nonce: [u8; 32],
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw").finish_non_exhaustive()
    }
}

impl Raw {
    /// How long a raw client waits for the relay before the test fails.
    pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

    /// Connects to `url`, says Hello and logs in as `device` for `space`; returns the
    /// connection and the relay's answer to the login.
    pub async fn logged_in(
        url: &str,
        device: &hearth_crypto::DeviceKeys,
        space: hearth_proto::SpaceId,
    ) -> (Raw, RelayFrame) {
        let (ws, _) = tokio::time::timeout(Self::WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        let mut raw = Raw {
            ws,
            relay_id: [0; 16],
            nonce: [0; 32],
        };
        raw.send(&ClientFrame::Hello {
            version: hearth_proto::PROTOCOL_VERSION,
            client: "a modified client".into(),
        })
        .await;
        let Some(RelayFrame::Challenge {
            relay_id, nonce, ..
        }) = raw.next().await
        else {
            panic!("expected a Challenge");
        };
        raw.relay_id = relay_id;
        raw.nonce = nonce;
        let time_ms = hearth_testkit::now_ms();
        let (_, signature) =
            hearth_crypto::sign_login(device, &relay_id, &nonce, time_ms, &space, false);
        raw.send(&ClientFrame::Auth {
            device: device.device_id(),
            space,
            time_ms,
            signature,
            as_invite: false,
        })
        .await;
        let answer = raw.next().await.expect("an answer to the login");
        (raw, answer)
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        let bytes = encode_client(frame, MAX_FRAME).unwrap();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next frame, or `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<RelayFrame> {
        loop {
            let message = tokio::time::timeout(Self::WAIT, self.ws.next())
                .await
                .expect("the relay answers in time");
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    return Some(decode_relay(&bytes, MAX_FRAME).unwrap());
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Sam and Jordan, paired through the proxy in front of a real relay, both synced: the
/// set-up of the tests that attack a couple through the proxy.
pub struct Pair {
    /// Where the relay's database and both profiles live.
    pub dir: tempfile::TempDir,
    /// The honest relay behind the proxy (its database is `dir/relay.db`).
    pub relay: hearth_testkit::TestRelay,
    /// The proxy both devices sync through.
    pub proxy: HostileRelay,
    /// Sam's device, which created the space.
    pub sam: hearth_client::Profile,
    /// Jordan's device, Sam's partner.
    pub jordan: hearth_client::Profile,
}

impl Pair {
    /// Pairs the two over a new relay and proxy, and syncs each once.
    pub async fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let relay = hearth_testkit::TestRelay::at(&dir.path().join("relay.db"));
        let proxy = HostileRelay::start(&relay.url);
        let (sam, jordan) = (dir.path().join("sam"), dir.path().join("jordan"));
        hearth_testkit::couple::paired(&sam, "Sam", &jordan, "Jordan", &proxy.url).await;
        let mut sam = hearth_client::Profile::open(&sam, None).unwrap();
        let mut jordan = hearth_client::Profile::open(&jordan, None).unwrap();
        for p in [&mut sam, &mut jordan] {
            hearth_client::sync::sync_once(p, Raw::WAIT).await.unwrap();
        }
        Pair {
            dir,
            relay,
            proxy,
            sam,
            jordan,
        }
    }

    /// A path for something else of the test's (a third device, a copy).
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Sam writes `text` and syncs it.
    pub async fn sam_writes(&mut self, text: &str) {
        hearth_testkit::couple::appreciate(&mut self.sam, text);
        hearth_client::sync::sync_once(&mut self.sam, Raw::WAIT)
            .await
            .unwrap();
    }
}

/// The proxy's own tests: each rule acts, seen from a real client through a real relay.
mod tests {
    use std::time::Duration;

    use hearth_client::Profile;
    use hearth_client::sync::{self, SyncError};
    use hearth_proto::{EnvelopeHeader, RejectCode, SpaceId};
    use hearth_testkit::couple::{appreciations, invited};

    use super::*;

    const T: Duration = Duration::from_secs(20);

    fn has(profile: &Profile, text: &str) -> bool {
        appreciations(profile).iter().any(|t| t == text)
    }

    /// A well-formed envelope signed by `author` (any key) for `space`, with garbage for
    /// ciphertext.
    fn signed_by(author: &hearth_crypto::DeviceKeys, space: SpaceId, counter: u64) -> Vec<u8> {
        let key = hearth_crypto::EpochKey::generate().unwrap();
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Changes,
            space,
            epoch: 0,
            author: author.device_id(),
            counter,
        };
        hearth_crypto::envelope::seal(author, &key, header, b"not a change")
            .unwrap()
            .encode()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn withholding_once_hides_an_envelope_from_one_sync_and_the_next_brings_it() {
        let mut p = Pair::new().await;
        let sam = p.sam.device_id();
        let batches_before = p.proxy.seen(Direction::ToClient, "Batch");
        p.sam_writes("SAM-ONE").await;
        p.sam_writes("SAM-TWO").await;
        let cursor = p.jordan.sync_book().cursor().unwrap();
        p.proxy.withhold(
            Scope::Device(p.jordan.device_id()),
            Times::Once,
            move |item| item.author == sam && item.seq > cursor,
        );

        let first = sync::sync_once(&mut p.jordan, T).await.unwrap();
        assert_eq!(p.proxy.tally().withheld, 2);
        assert!(!has(&p.jordan, "SAM-ONE") && !has(&p.jordan, "SAM-TWO"));
        assert_eq!(first.received, 0);
        assert_eq!(p.jordan.sync_book().cursor().unwrap(), cursor, "{first:?}");

        let second = sync::sync_once(&mut p.jordan, T).await.unwrap();
        assert_eq!(p.proxy.tally().withheld, 2, "each is withheld once");
        assert!(has(&p.jordan, "SAM-ONE") && has(&p.jordan, "SAM-TWO"));
        assert_eq!(second.received, 2);
        assert!(p.proxy.seen(Direction::ToClient, "Batch") >= batches_before + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn withholding_for_good_keeps_an_envelope_away_and_what_builds_on_it_waits() {
        let mut p = Pair::new().await;
        let sam = p.sam.device_id();
        p.sam_writes("SAM-ONE").await;
        let one = p.sam.sync_book().cursor().unwrap();
        p.sam_writes("SAM-TWO").await;
        p.proxy.withhold(Scope::Every, Times::ForGood, move |item| {
            item.author == sam && item.seq == one
        });
        for _ in 0..2 {
            let report = sync::sync_once(&mut p.jordan, T).await.unwrap();
            assert_eq!(report.waiting, 1, "SAM-TWO builds on SAM-ONE: {report:?}");
        }
        assert!(!has(&p.jordan, "SAM-ONE") && !has(&p.jordan, "SAM-TWO"));
        assert!(p.proxy.tally().withheld >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_reaches_the_client_with_its_items_reversed() {
        let mut p = Pair::new().await;
        for text in ["SAM-1", "SAM-2", "SAM-3"] {
            p.sam_writes(text).await;
        }
        let jordan = hearth_crypto::keyfile::read(&p.jordan.paths().key_file, None).unwrap();
        let space = p.jordan.space().unwrap();
        let subscribed = |url: String| {
            let device = &jordan.device;
            async move {
                let (mut raw, _) = Raw::logged_in(&url, device, space).await;
                raw.send(&ClientFrame::Subscribe {
                    space,
                    since_seq: 0,
                })
                .await;
                match raw.next().await {
                    Some(RelayFrame::Batch { items, head }) => (
                        items.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>(),
                        head,
                    ),
                    other => panic!("expected a Batch, got {other:?}"),
                }
            }
        };
        let (honest, head) = subscribed(p.proxy.url.clone()).await;
        assert!(honest.len() >= 3 && honest.is_sorted(), "{honest:?}");
        p.proxy
            .reverse_batches(Scope::Device(jordan.device.device_id()));
        let (reversed, same_head) = subscribed(p.proxy.url.clone()).await;
        assert_eq!(same_head, head);
        assert_eq!(reversed, honest.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(p.proxy.tally().reversed, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hidden_acl_records_stay_unknown_to_the_client_until_they_are_shown() {
        let mut p = Pair::new().await;
        let known = p.jordan.sync_book().acl_records().unwrap().len();
        p.proxy
            .hide_acl_after(Scope::Device(p.jordan.device_id()), known);
        // Sam adds a laptop: an Invite and an AddDevice record.
        let mut laptop = invited(&p.path("laptop"), &mut p.sam, None).await;
        sync::sync_once(&mut laptop, T).await.unwrap();
        let all = laptop.sync_book().acl_records().unwrap().len();
        assert_eq!(all, known + 2);

        sync::sync_once(&mut p.jordan, T).await.unwrap();
        assert_eq!(p.jordan.sync_book().acl_records().unwrap().len(), known);
        assert!(p.proxy.tally().hidden_records >= 2);

        p.proxy.clear();
        sync::sync_once(&mut p.jordan, T).await.unwrap();
        assert_eq!(p.jordan.sync_book().acl_records().unwrap().len(), all);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn injected_items_and_events_reach_the_client_which_refuses_them_naming_the_device() {
        let mut p = Pair::new().await;
        let stranger = hearth_crypto::DeviceKeys::generate().unwrap();
        let space = p.sam.space().unwrap();
        let code = sync::invite(&mut p.sam, hearth_proto::InviteRole::OwnDevice, T, T)
            .await
            .unwrap();
        // Sam's laptop joins through the proxy: its first pull gets a forged item in front
        // of the history (under the first item's seq), and a forged event before it, under
        // a seq of its own (one under a seq already taken would be ignored).
        p.proxy.inject_batch_item(
            Scope::Every,
            Times::Once,
            Place::Front,
            signed_by(&stranger, space, 1),
        );
        p.proxy.inject_event(
            Scope::Every,
            Times::Once,
            999,
            signed_by(&stranger, space, 2),
        );
        let joined = sync::join(
            &p.path("laptop"),
            &code,
            None,
            hearth_client::Protection::None,
            T,
        )
        .await
        .unwrap();
        assert_eq!(p.proxy.tally().injected, 2);
        let rejected = &joined.report.rejected;
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        for refused in rejected {
            assert_eq!(refused.device, Some(stranger.device_id()));
            assert!(
                refused.reason.contains("not a member"),
                "{}",
                refused.reason
            );
        }
        let mut laptop = joined.profile;
        assert_eq!(appreciations(&laptop), appreciations(&p.sam));
        let again = sync::sync_once(&mut laptop, T).await.unwrap();
        assert!(
            again.rejected.is_empty(),
            "injected once: {:?}",
            again.rejected
        );

        // For good, after what is new: every sync that brings something gets it too.
        let rule = p.proxy.inject_batch_item(
            Scope::Device(laptop.device_id()),
            Times::ForGood,
            Place::Back,
            signed_by(&stranger, space, 3),
        );
        for text in ["SAM-A", "SAM-B"] {
            p.sam_writes(text).await;
            let report = sync::sync_once(&mut laptop, T).await.unwrap();
            assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
            assert!(has(&laptop, text), "{text}");
        }
        p.proxy.remove(rule);
        p.sam_writes("SAM-C").await;
        let clean = sync::sync_once(&mut laptop, T).await.unwrap();
        assert!(clean.rejected.is_empty(), "{:?}", clean.rejected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_answered_by_the_proxy_never_reaches_the_relays_answer() {
        let mut p = Pair::new().await;
        let refusal = RelayFrame::Reject {
            code: RejectCode::StorageUnavailable,
            message: "said by the proxy".into(),
        };
        let rule = p.proxy.answer_login(
            Scope::Device(p.jordan.device_id()),
            Times::ForGood,
            encode_relay(&refusal, MAX_FRAME).unwrap(),
        );
        for _ in 0..2 {
            let err = sync::sync_once(&mut p.jordan, T).await.unwrap_err();
            assert!(
                matches!(&err, SyncError::Refused { message, .. } if message == "said by the proxy"),
                "{err}"
            );
        }
        assert_eq!(p.proxy.tally().answered_logins, 2);
        // Sam's logins are his relay's.
        p.sam_writes("SAM-STILL-SYNCS").await;
        p.proxy.remove(rule);
        sync::sync_once(&mut p.jordan, T).await.unwrap();
        assert!(has(&p.jordan, "SAM-STILL-SYNCS"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_passes_as_it_is_unless_a_rule_rewrites_it() {
        let p = Pair::new().await;
        let secrets = hearth_crypto::keyfile::read(&p.sam.paths().key_file, None).unwrap();
        let space = p.sam.space().unwrap();
        let key = p.sam.sync_book().epoch_key(0).unwrap().unwrap();
        let covers_seq = p.sam.sync_book().cursor().unwrap();
        let snapshot = |counter: u64| {
            let header = EnvelopeHeader {
                kind: EnvelopeKind::Snapshot { covers_seq },
                space,
                epoch: 0,
                author: secrets.device.device_id(),
                counter,
            };
            hearth_crypto::envelope::seal(&secrets.device, &key, header, b"garbage, not a document")
                .unwrap()
                .encode()
        };
        let push = |envelope: Vec<u8>| {
            let url = p.proxy.url.clone();
            let device = &secrets.device;
            async move {
                let (mut raw, _) = Raw::logged_in(&url, device, space).await;
                raw.send(&ClientFrame::PushSnapshot { envelope }).await;
                raw.next().await.unwrap()
            }
        };
        // As it is: a member's signed snapshot, whatever is inside, is the relay's to take.
        let taken = push(snapshot(1000)).await;
        assert!(
            matches!(taken, RelayFrame::Committed { counter: 1000, .. }),
            "{taken:?}"
        );

        p.proxy
            .rewrite_snapshots(Scope::Every, |_| b"not an envelope".to_vec());
        let refused = push(snapshot(1001)).await;
        assert!(
            matches!(
                refused,
                RelayFrame::Reject {
                    code: RejectCode::Invalid,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(p.proxy.tally().rewritten_snapshots, 1);
        assert_eq!(p.proxy.seen(Direction::ToRelay, "PushSnapshot"), 2);
    }
}
