//! The relay's durable storage, behind the [`Storage`] trait so that tests and, later,
//! other databases can stand in for SQLite.
//!
//! Promises the protocol relies on:
//! - each space has a dense sequence: envelope `n + 1` follows envelope `n`, with no gaps;
//! - a push is durable (the transaction committed, `synchronous = FULL`) before its outcome
//!   is returned, so `Committed` is only ever sent for data on disk;
//! - a duplicate push (same space, device and counter, same bytes) gets its original
//!   sequence number back and is stored once; the same counter with other bytes is refused;
//! - [`Storage::push_batch`] commits many pushes in one transaction (group commit) while
//!   judging each on its own: one push over quota does not fail its neighbours;
//! - a snapshot a member pushes is only *proposed* ([`Storage::propose_snapshot`]): it is
//!   kept beside the envelopes it covers, and the current accepted snapshot stays, until a
//!   device of the other person countersigns it; only then ([`Storage::accept_snapshot`])
//!   does it replace the envelopes it covers and the snapshot before it, so nobody can
//!   compact a space's history away on their own word (docs/protocol.md, "Snapshots").
//! - the relay's identity secret is drawn once, at the database's first start, and read
//!   back unchanged for as long as the database lives ([`Storage::relay_secret`]), so
//!   clients that pinned the relay's key never see it change across restarts;
//! - a deleted space leaves a [`Tombstone`] (who deleted it, their signature, when, and
//!   who its members were) and nothing else, and its id is never created again, so the
//!   space's other devices are told it was deleted, with the proof, instead of finding
//!   an empty relay.
//!
//! Ids are raw bytes here (16-byte space ids, 32-byte device keys); the relay's protocol
//! layer gives them types.

use std::path::Path;
use std::time::Duration;

use hearth_proto::Limits;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod admission;
mod checkpoint;

pub use admission::{Expiry, TokenHash, TokenInfo, TokenRefusal};

/// A space id as stored.
pub type SpaceKey = [u8; 16];
/// A device's public key as stored.
pub type DeviceKey = [u8; 32];

/// What the store refuses, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The space does not exist (or was deleted).
    #[error("no such space")]
    NoSuchSpace,
    /// A space with this id already exists.
    #[error("the space already exists")]
    SpaceExists,
    /// A space with this id was deleted; the id is not used again.
    #[error("the space was deleted")]
    SpaceDeleted,
    /// The request contradicts what is stored (a reused counter, a stale ACL index…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A quota would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The disk is full; nothing was stored.
    #[error("the relay's disk is full; nothing was stored")]
    DiskFull,
    /// The envelope's signature is not its author's; it was not stored.
    #[error("the envelope's signature does not verify")]
    BadSignature,
    /// A batch could not be committed; none of it was stored.
    #[error("the batch was not stored: {0}")]
    Unavailable(String),
    /// The creation token was not accepted; nothing was spent or created.
    #[error("{0}")]
    Token(TokenRefusal),
    /// The database failed.
    #[error("relay database error")]
    Database(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            StoreError::DiskFull
        } else {
            StoreError::Database(e)
        }
    }
}

/// Quotas the store enforces: the relay's announced [`Limits`] that bound storage, plus the
/// database cap. Built from them ([`StoreLimits::new`], `RelayConfig::store_limits`), so a
/// quota has one default, in [`Limits`].
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Spaces on this relay ([`Limits::max_spaces`]).
    pub max_spaces: u64,
    /// Stored bytes (envelopes, snapshot, ACL, lockboxes) per space
    /// ([`Limits::max_bytes_per_space`]).
    pub max_bytes_per_space: u64,
    /// The most the database file may grow to (SQLite's `max_page_count`); a write past it
    /// fails as on a full disk ([`StoreError::DiskFull`]). `None`: no cap.
    pub max_db_bytes: Option<u64>,
}

impl StoreLimits {
    /// The quotas for a relay announcing `limits`, its database capped at `max_db_bytes`.
    pub fn new(limits: &Limits, max_db_bytes: Option<u64>) -> Self {
        Self {
            max_spaces: u64::from(limits.max_spaces),
            max_bytes_per_space: limits.max_bytes_per_space,
            max_db_bytes,
        }
    }
}

impl Default for StoreLimits {
    /// The quotas of the default [`Limits`], with no database cap.
    fn default() -> Self {
        Self::new(&Limits::default(), None)
    }
}

/// One envelope to store.
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    /// The space it belongs to.
    pub space: &'a SpaceKey,
    /// The device that wrote it.
    pub device: &'a DeviceKey,
    /// The device's counter for it (unique per device and space).
    pub counter: u64,
    /// The envelope, stored and forwarded verbatim.
    pub bytes: &'a [u8],
}

/// Where a push landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// Its sequence number in the space.
    pub seq: u64,
    /// It had been stored before (same device, counter and bytes).
    pub duplicate: bool,
}

/// What a deleted space leaves behind: the proof that one of its members deleted it (its
/// signed `DeleteSpace`), when, and who the members were, so the relay can tell them, and
/// only them, why their space is gone. Nothing of the space's content or ACL is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The member device that deleted the space.
    pub device: DeviceKey,
    /// The relay id of the challenge its `DeleteSpace` was signed for.
    pub relay_id: [u8; 16],
    /// That challenge's nonce.
    pub nonce: [u8; 32],
    /// The device's signature over `delete_space_message(relay_id, nonce, space)`.
    pub signature: [u8; 64],
    /// When, by the relay's clock (UTC milliseconds).
    pub deleted_at_ms: u64,
    /// The space's member devices when it was deleted.
    pub members: Vec<DeviceKey>,
}

/// A snapshot waiting for its countersignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The last seq it covers.
    pub covers_seq: u64,
    /// The device that pushed it.
    pub author: DeviceKey,
    /// `hearth_proto::snapshot_hash` of its bytes, what a countersignature names.
    pub hash: [u8; 32],
    /// The envelope, as pushed.
    pub bytes: Vec<u8>,
}

/// The snapshot standing in for the envelopes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The last seq it covers.
    pub covers_seq: u64,
    /// The envelope, as pushed.
    pub bytes: Vec<u8>,
    /// The device that countersigned it and its signature; `None` for a snapshot stored
    /// before countersignatures existed (kept as it was).
    pub consent: Option<(DeviceKey, [u8; 64])>,
}

/// The relay's durable storage.
pub trait Storage: Send {
    /// WAL checkpoints completed so far, for metrics, if this store has them.
    fn checkpoints(&self) -> Option<prometheus_client::metrics::counter::Counter> {
        None
    }

    /// Creates a space with its first ACL record, spending one use of the creation token
    /// whose hash is `ticket`, if given, in the same transaction (a creation that fails
    /// spends nothing). An expired space's id may be created again (by its creator: the
    /// caller checks the Genesis), which clears its [`Expiry`].
    ///
    /// # Errors
    /// [`StoreError::Token`] (the ticket is unknown, expired or used up),
    /// [`StoreError::SpaceExists`], [`StoreError::SpaceDeleted`] (the id was used and
    /// deleted), [`StoreError::QuotaExceeded`] (too many spaces).
    fn create_space(
        &mut self,
        space: &SpaceKey,
        genesis: &[u8],
        now_ms: u64,
        ticket: Option<&TokenHash>,
    ) -> Result<(), StoreError>;
    /// Whether the space exists.
    ///
    /// # Errors
    /// A database error.
    fn space_exists(&self, space: &SpaceKey) -> Result<bool, StoreError>;
    /// Appends ACL record number `index` (0-based); `index` must be the current length, so
    /// two concurrent appends cannot both win.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`], [`StoreError::Conflict`] for a stale index, quota errors.
    fn append_acl(&mut self, space: &SpaceKey, index: u64, record: &[u8])
    -> Result<(), StoreError>;
    /// The space's ACL records, in order.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn acl(&self, space: &SpaceKey) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stores (or replaces) the lockbox of `epoch` for `device`.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`], quota errors.
    fn put_lockbox(
        &mut self,
        space: &SpaceKey,
        device: &DeviceKey,
        epoch: u32,
        blob: &[u8],
    ) -> Result<(), StoreError>;
    /// The lockbox of `epoch` for `device`, if any.
    ///
    /// # Errors
    /// A database error.
    fn lockbox(
        &self,
        space: &SpaceKey,
        device: &DeviceKey,
        epoch: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a batch of pushes in one transaction; one outcome per push, in order.
    fn push_batch(&mut self, pushes: &[Push<'_>]) -> Vec<Result<PushOutcome, StoreError>>;
    /// Envelopes after `after_seq`, in order, at most `max_items` and about `max_bytes`
    /// (always at least one if there is one).
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn since(
        &self,
        space: &SpaceKey,
        after_seq: u64,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The newest sequence number in the space (0 if none).
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn head(&self, space: &SpaceKey) -> Result<u64, StoreError>;
    /// Stores `bytes`, a snapshot by `author` covering every envelope up to `covers_seq`,
    /// as the space's proposal (replacing an earlier proposal), beside the envelopes it
    /// covers: nothing is dropped until [`Storage::accept_snapshot`].
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if `covers_seq` is beyond the head or behind the accepted
    /// snapshot; quota errors.
    fn propose_snapshot(
        &mut self,
        space: &SpaceKey,
        covers_seq: u64,
        author: &DeviceKey,
        bytes: &[u8],
    ) -> Result<(), StoreError>;
    /// The snapshot waiting for a countersignature, if any.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn proposal(&self, space: &SpaceKey) -> Result<Option<Proposal>, StoreError>;
    /// Makes the proposal covering `covers_seq` whose hash is `hash` the accepted snapshot,
    /// with `countersigner`'s `signature` beside it, and drops the envelopes it covers and
    /// the snapshot it replaces, in one transaction. The caller has judged the
    /// countersignature.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if no such proposal waits (none, or another one).
    fn accept_snapshot(
        &mut self,
        space: &SpaceKey,
        covers_seq: u64,
        hash: &[u8; 32],
        countersigner: &DeviceKey,
        signature: &[u8; 64],
    ) -> Result<(), StoreError>;
    /// The accepted snapshot, if any.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn snapshot(&self, space: &SpaceKey) -> Result<Option<Accepted>, StoreError>;
    /// Deletes the space and everything in it, leaving `tombstone` in the same
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn delete_space(&mut self, space: &SpaceKey, tombstone: &Tombstone) -> Result<(), StoreError>;
    /// The tombstone of a deleted space, if this id was deleted.
    ///
    /// # Errors
    /// A database error.
    fn tombstone(&self, space: &SpaceKey) -> Result<Option<Tombstone>, StoreError>;
    /// Bytes the space uses.
    ///
    /// # Errors
    /// [`StoreError::NoSuchSpace`].
    fn usage(&self, space: &SpaceKey) -> Result<u64, StoreError>;
    /// Removes, with everything in them, up to `max` spaces created before
    /// `created_before_ms` that no second device ever joined, and leaves an [`Expiry`]
    /// (their creator, `now_ms`) for each; returns their ids.
    ///
    /// # Errors
    /// A database error; nothing is removed then.
    fn expire_unjoined(
        &mut self,
        created_before_ms: u64,
        now_ms: u64,
        max: usize,
    ) -> Result<Vec<SpaceKey>, StoreError>;
    /// The expiry of a space removed because nobody joined it, if this id's was.
    ///
    /// # Errors
    /// A database error.
    fn expiry(&self, space: &SpaceKey) -> Result<Option<Expiry>, StoreError>;
    /// Forgets creation tokens that expired before `expired_before_ms`; returns how many.
    ///
    /// # Errors
    /// A database error.
    fn forget_tokens(&mut self, expired_before_ms: u64) -> Result<u64, StoreError>;
    /// The relay's identity secret (an Ed25519 secret key): the one stored, or `fresh`,
    /// stored now with `now_ms`, if the database has none yet (its first start).
    ///
    /// # Errors
    /// A database error.
    fn relay_secret(&mut self, fresh: &[u8; 32], now_ms: u64) -> Result<[u8; 32], StoreError>;
}

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE spaces (
        space BLOB PRIMARY KEY,
        created_at INTEGER NOT NULL,
        head INTEGER NOT NULL DEFAULT 0,
        bytes_used INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE acl (
        space BLOB NOT NULL REFERENCES spaces(space) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (space, idx)
    ) STRICT;
    CREATE TABLE lockboxes (
        space BLOB NOT NULL REFERENCES spaces(space) ON DELETE CASCADE,
        device BLOB NOT NULL,
        epoch INTEGER NOT NULL,
        blob BLOB NOT NULL,
        PRIMARY KEY (space, device, epoch)
    ) STRICT;
    CREATE TABLE envelopes (
        space BLOB NOT NULL REFERENCES spaces(space) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        device BLOB NOT NULL,
        counter INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (space, seq),
        UNIQUE (space, device, counter)
    ) STRICT;
    CREATE TABLE snapshots (
        space BLOB PRIMARY KEY REFERENCES spaces(space) ON DELETE CASCADE,
        covers_seq INTEGER NOT NULL,
        bytes BLOB NOT NULL
    ) STRICT;
",
    "
    CREATE TABLE tombstones (
        space BLOB PRIMARY KEY,
        device BLOB NOT NULL,
        relay_id BLOB NOT NULL,
        nonce BLOB NOT NULL,
        signature BLOB NOT NULL,
        deleted_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE tombstone_members (
        space BLOB NOT NULL REFERENCES tombstones(space) ON DELETE CASCADE,
        device BLOB NOT NULL,
        PRIMARY KEY (space, device)
    ) STRICT;
",
    "
    -- A snapshot a member pushed, kept beside the envelopes it covers until a device of
    -- the other person countersigns it (one per space: a newer one replaces it).
    CREATE TABLE proposals (
        space BLOB PRIMARY KEY REFERENCES spaces(space) ON DELETE CASCADE,
        covers_seq INTEGER NOT NULL,
        author BLOB NOT NULL,
        hash BLOB NOT NULL,
        bytes BLOB NOT NULL
    ) STRICT;
    -- Who countersigned the accepted snapshot; NULL for one stored before consent.
    ALTER TABLE snapshots ADD COLUMN countersigner BLOB;
    ALTER TABLE snapshots ADD COLUMN countersignature BLOB;
",
    "
    -- Creation tokens the operator minted (`hearth-relay token create`): only a hash of
    -- each is kept, never the token.
    CREATE TABLE creation_tokens (
        id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        uses_left INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    -- 1 once a second device joined the space (an AddDevice record); until then it
    -- expires after `unjoined_space_ttl`. A space from before this column counts as
    -- joined if its chain holds more than its Genesis, so an upgrade removes nobody's
    -- space that might be waiting for a partner.
    ALTER TABLE spaces ADD COLUMN joined INTEGER NOT NULL DEFAULT 0;
    UPDATE spaces SET joined = 1
        WHERE (SELECT COUNT(*) FROM acl WHERE acl.space = spaces.space) > 1;
    CREATE INDEX spaces_unjoined ON spaces (created_at) WHERE joined = 0;
    -- Spaces removed because nobody joined them: only the device their Genesis named is
    -- told so, and only it may create the id again.
    CREATE TABLE expired_spaces (
        space BLOB PRIMARY KEY,
        device BLOB NOT NULL,
        expired_at INTEGER NOT NULL
    ) STRICT;
",
    "
    -- The relay's Ed25519 identity key, drawn at the first start: clients pin its public
    -- key and the relay proves it holds it on every connection (docs/protocol.md,
    -- \"Relay identity\"). One row, kept for as long as the database lives.
    CREATE TABLE relay_identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret BLOB NOT NULL CHECK (length(secret) = 32),
        created_at INTEGER NOT NULL
    ) STRICT;
",
];

/// [`Storage`] in one SQLite file (WAL, `synchronous = FULL`), checkpointed by a thread
/// of its own (the `checkpoint` module), never inside a commit.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    limits: StoreLimits,
    checkpointer: checkpoint::Checkpointer,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.stop(&mut self.conn);
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    ///
    /// # Errors
    /// A database error, or [`StoreError::Conflict`] if the file was written by a newer relay.
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        create_private(path);
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        if let Some(bytes) = limits.max_db_bytes {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (bytes / page.max(512) as u64).max(1);
            // SQLite keeps it at least the current size.
            conn.pragma_update(
                None,
                "max_page_count",
                i64::try_from(pages).unwrap_or(i64::MAX),
            )?;
        }
        let checkpointer = checkpoint::Checkpointer::start(&mut conn, path)?;
        Ok(Self {
            conn,
            limits,
            checkpointer,
        })
    }

    fn space_row(&self, space: &SpaceKey) -> Result<(u64, u64), StoreError> {
        self.conn
            .prepare_cached("SELECT head, bytes_used FROM spaces WHERE space = ?1")?
            .query_row([&space[..]], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()?
            .ok_or(StoreError::NoSuchSpace)
    }

    fn check_quota(&self, used: u64, adding: u64) -> Result<(), StoreError> {
        if used.saturating_add(adding) > self.limits.max_bytes_per_space {
            return Err(StoreError::QuotaExceeded(format!(
                "a space may hold {} bytes; it holds {used}",
                self.limits.max_bytes_per_space
            )));
        }
        Ok(())
    }

    fn push_one(
        conn: &Connection,
        limits: &StoreLimits,
        push: &Push<'_>,
    ) -> Result<PushOutcome, StoreError> {
        let existing: Option<(i64, Vec<u8>)> = conn
            .prepare_cached("SELECT seq, bytes FROM envelopes WHERE space = ?1 AND device = ?2 AND counter = ?3")?
            .query_row(params![&push.space[..], &push.device[..], push.counter as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((seq, bytes)) = existing {
            if bytes == push.bytes {
                return Ok(PushOutcome {
                    seq: seq as u64,
                    duplicate: true,
                });
            }
            return Err(StoreError::Conflict(format!(
                "counter {} was already used for different data",
                push.counter
            )));
        }
        let (head, used): (i64, i64) = conn
            .prepare_cached("SELECT head, bytes_used FROM spaces WHERE space = ?1")?
            .query_row([&push.space[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or(StoreError::NoSuchSpace)?;
        let size = push.bytes.len() as u64;
        if (used as u64).saturating_add(size) > limits.max_bytes_per_space {
            return Err(StoreError::QuotaExceeded(format!(
                "a space may hold {} bytes; it holds {used}",
                limits.max_bytes_per_space
            )));
        }
        let seq = head + 1;
        conn.prepare_cached("INSERT INTO envelopes (space, seq, device, counter, bytes) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![&push.space[..], seq, &push.device[..], push.counter as i64, push.bytes])?;
        conn.prepare_cached(
            "UPDATE spaces SET head = ?2, bytes_used = bytes_used + ?3 WHERE space = ?1",
        )?
        .execute(params![&push.space[..], seq, size as i64])?;
        Ok(PushOutcome {
            seq: seq as u64,
            duplicate: false,
        })
    }

    fn add_usage(&self, space: &SpaceKey, delta: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE spaces SET bytes_used = MAX(0, bytes_used + ?2) WHERE space = ?1",
            )?
            .execute(params![&space[..], delta])?;
        Ok(())
    }
}

/// Creates the database file owner-only (0600) if it does not exist yet: it holds the
/// relay's identity key. SQLite gives its `-wal` and `-shm` files the same permissions.
/// An existing file keeps the permissions its operator gave it.
fn create_private(path: &Path) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // For a path that cannot be created (a missing directory, a permission), SQLite's own
    // error below says what is wrong.
    if options.open(path).is_err() {
        restrict_existing(path);
    }
}

/// A database made before the relay kept its key in it may be readable by others (and its
/// `-wal`/`-shm` beside it, whose mode SQLite copies from it): the key must not be, so
/// such files are made owner-only, and the operator is told.
fn restrict_existing(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 == 0 {
                continue;
            }
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    was = format!("{:o}", mode & 0o777),
                    "made the database owner-only: it holds the relay's key"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "the database is readable by other users and holds the relay's key; make it owner-only (chmod 600)"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Puts the database in WAL mode. Switching a new database's journal needs it to itself,
/// and SQLite answers "database is locked" at once, without waiting the busy timeout, when
/// another process opens it at the same moment (the relay starting while its operator runs
/// `hearth-relay fingerprint`): so this waits, for up to the busy timeout.
fn use_wal(conn: &Connection) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return Ok(other?),
        }
    }
}

/// The same runner as the client's (`rusqlite_migration`'s contract: `user_version` counts
/// the migrations applied; its release needs an older rusqlite than the workspace's, see
/// docs/architecture.md).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // The version is read under the write lock: two processes opening a new database at
    // once (the relay starting, `hearth-relay token …` or `hearth-relay fingerprint`) must
    // not both migrate it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Conflict(format!(
            "the database has schema version {version}; this relay knows up to {}",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

impl Storage for SqliteStore {
    fn checkpoints(&self) -> Option<prometheus_client::metrics::counter::Counter> {
        Some(self.checkpointer.completed())
    }

    fn create_space(
        &mut self,
        space: &SpaceKey,
        genesis: &[u8],
        now_ms: u64,
        ticket: Option<&TokenHash>,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Spent first, so a stranger without a token learns nothing more; dropped with
        // the transaction if anything below refuses.
        if let Some(ticket) = ticket {
            admission::spend_token(&tx, ticket, now_ms)?;
        }
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM spaces WHERE space = ?1)",
            [&space[..]],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::SpaceExists);
        }
        let deleted: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM tombstones WHERE space = ?1)",
            [&space[..]],
            |r| r.get(0),
        )?;
        if deleted {
            return Err(StoreError::SpaceDeleted);
        }
        let count: i64 = tx.query_row("SELECT COUNT(*) FROM spaces", [], |r| r.get(0))?;
        if count as u64 >= self.limits.max_spaces {
            return Err(StoreError::QuotaExceeded(format!(
                "this relay holds its limit of {} spaces",
                self.limits.max_spaces
            )));
        }
        tx.execute(
            "INSERT INTO spaces (space, created_at, bytes_used) VALUES (?1, ?2, ?3)",
            params![&space[..], now_ms as i64, genesis.len() as i64],
        )?;
        tx.execute(
            "INSERT INTO acl (space, idx, record) VALUES (?1, 0, ?2)",
            params![&space[..], genesis],
        )?;
        tx.execute("DELETE FROM expired_spaces WHERE space = ?1", [&space[..]])?;
        tx.commit()?;
        Ok(())
    }

    fn space_exists(&self, space: &SpaceKey) -> Result<bool, StoreError> {
        match self.space_row(space) {
            Ok(_) => Ok(true),
            Err(StoreError::NoSuchSpace) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn append_acl(
        &mut self,
        space: &SpaceKey,
        index: u64,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let (_, used) = self.space_row(space)?;
        self.check_quota(used, record.len() as u64)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let len: i64 = tx.query_row(
            "SELECT COUNT(*) FROM acl WHERE space = ?1",
            [&space[..]],
            |r| r.get(0),
        )?;
        if index != len as u64 {
            return Err(StoreError::Conflict(format!(
                "the ACL has {len} records; record {index} cannot be appended"
            )));
        }
        tx.execute(
            "INSERT INTO acl (space, idx, record) VALUES (?1, ?2, ?3)",
            params![&space[..], index as i64, record],
        )?;
        tx.execute(
            "UPDATE spaces SET bytes_used = bytes_used + ?2 WHERE space = ?1",
            params![&space[..], record.len() as i64],
        )?;
        if admission::joins(record) {
            tx.execute(
                "UPDATE spaces SET joined = 1 WHERE space = ?1",
                [&space[..]],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn acl(&self, space: &SpaceKey) -> Result<Vec<Vec<u8>>, StoreError> {
        self.space_row(space)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM acl WHERE space = ?1 ORDER BY idx")?;
        let rows = stmt.query_map([&space[..]], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_lockbox(
        &mut self,
        space: &SpaceKey,
        device: &DeviceKey,
        epoch: u32,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        let (_, used) = self.space_row(space)?;
        let old = self
            .lockbox(space, device, epoch)?
            .map_or(0, |b| b.len() as i64);
        self.check_quota(used, (blob.len() as i64 - old).max(0) as u64)?;
        self.conn.execute(
            "INSERT INTO lockboxes (space, device, epoch, blob) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (space, device, epoch) DO UPDATE SET blob = excluded.blob",
            params![&space[..], &device[..], epoch, blob],
        )?;
        self.add_usage(space, blob.len() as i64 - old)
    }

    fn lockbox(
        &self,
        space: &SpaceKey,
        device: &DeviceKey,
        epoch: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT blob FROM lockboxes WHERE space = ?1 AND device = ?2 AND epoch = ?3",
            )?
            .query_row(params![&space[..], &device[..], epoch], |r| r.get(0))
            .optional()?)
    }

    fn push_batch(&mut self, pushes: &[Push<'_>]) -> Vec<Result<PushOutcome, StoreError>> {
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::from(e);
                return pushes.iter().map(|_| Err(clone_err(&e))).collect();
            }
        };
        let outcomes: Vec<_> = pushes
            .iter()
            .map(|p| Self::push_one(&tx, &self.limits, p))
            .collect();
        match tx.commit() {
            Ok(()) => outcomes,
            // Nothing of the batch is on disk: every push in it failed, whatever it was judged.
            Err(e) => {
                // A full disk during a push makes SQLite roll the whole transaction back, and
                // the commit then fails for want of one: the cause is the full disk.
                let full = outcomes
                    .iter()
                    .any(|o| matches!(o, Err(StoreError::DiskFull)));
                let e = if full {
                    StoreError::DiskFull
                } else {
                    StoreError::from(e)
                };
                pushes.iter().map(|_| Err(clone_err(&e))).collect()
            }
        }
    }

    fn since(
        &self,
        space: &SpaceKey,
        after_seq: u64,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.space_row(space)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, bytes FROM envelopes WHERE space = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![&space[..], after_seq as i64, max_items as i64],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
        )?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for row in rows {
            let (seq, envelope) = row?;
            if !out.is_empty() && bytes + envelope.len() > max_bytes {
                break;
            }
            bytes += envelope.len();
            out.push((seq, envelope));
        }
        Ok(out)
    }

    fn head(&self, space: &SpaceKey) -> Result<u64, StoreError> {
        Ok(self.space_row(space)?.0)
    }

    fn propose_snapshot(
        &mut self,
        space: &SpaceKey,
        covers_seq: u64,
        author: &DeviceKey,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let (head, used) = self.space_row(space)?;
        if covers_seq > head {
            return Err(StoreError::Conflict(format!(
                "a snapshot cannot cover seq {covers_seq}: the space ends at {head}"
            )));
        }
        if let Some(accepted) = self.snapshot(space)?
            && accepted.covers_seq > covers_seq
        {
            return Err(StoreError::Conflict(format!(
                "a snapshot covering seq {} is already stored",
                accepted.covers_seq
            )));
        }
        let old = self.proposal(space)?.map_or(0, |p| p.bytes.len() as u64);
        self.check_quota(used.saturating_sub(old), bytes.len() as u64)?;
        let hash = hearth_proto::snapshot_hash(bytes);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO proposals (space, covers_seq, author, hash, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (space) DO UPDATE SET covers_seq = excluded.covers_seq,
                 author = excluded.author, hash = excluded.hash, bytes = excluded.bytes",
            params![&space[..], covers_seq as i64, &author[..], &hash[..], bytes],
        )?;
        tx.execute(
            "UPDATE spaces SET bytes_used = MAX(0, bytes_used + ?2) WHERE space = ?1",
            params![&space[..], bytes.len() as i64 - old as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn proposal(&self, space: &SpaceKey) -> Result<Option<Proposal>, StoreError> {
        self.space_row(space)?;
        Ok(self
            .conn
            .prepare_cached(
                "SELECT covers_seq, author, hash, bytes FROM proposals WHERE space = ?1",
            )?
            .query_row([&space[..]], |r| {
                Ok(Proposal {
                    covers_seq: r.get::<_, i64>(0)? as u64,
                    author: r.get(1)?,
                    hash: r.get(2)?,
                    bytes: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn accept_snapshot(
        &mut self,
        space: &SpaceKey,
        covers_seq: u64,
        hash: &[u8; 32],
        countersigner: &DeviceKey,
        signature: &[u8; 64],
    ) -> Result<(), StoreError> {
        let proposal = self.proposal(space)?;
        let Some(proposal) = proposal.filter(|p| p.covers_seq == covers_seq && p.hash == *hash)
        else {
            return Err(StoreError::Conflict(format!(
                "no snapshot covering seq {covers_seq} with that hash waits for a countersignature"
            )));
        };
        let old = self.snapshot(space)?.map_or(0, |s| s.bytes.len() as i64);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dropped: i64 = tx.query_row(
            "SELECT COALESCE(SUM(length(bytes)), 0) FROM envelopes WHERE space = ?1 AND seq <= ?2",
            params![&space[..], covers_seq as i64],
            |r| r.get(0),
        )?;
        // What goes first, so that a nearly full database reuses its pages.
        tx.execute(
            "DELETE FROM envelopes WHERE space = ?1 AND seq <= ?2",
            params![&space[..], covers_seq as i64],
        )?;
        tx.execute("DELETE FROM proposals WHERE space = ?1", [&space[..]])?;
        tx.execute("DELETE FROM snapshots WHERE space = ?1", [&space[..]])?;
        tx.execute(
            "INSERT INTO snapshots (space, covers_seq, bytes, countersigner, countersignature)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &space[..],
                covers_seq as i64,
                &proposal.bytes,
                &countersigner[..],
                &signature[..]
            ],
        )?;
        // The proposal's bytes are already counted; the envelopes and the old snapshot go.
        tx.execute(
            "UPDATE spaces SET bytes_used = MAX(0, bytes_used - ?2) WHERE space = ?1",
            params![&space[..], dropped + old],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn snapshot(&self, space: &SpaceKey) -> Result<Option<Accepted>, StoreError> {
        self.space_row(space)?;
        Ok(self
            .conn
            .prepare_cached(
                "SELECT covers_seq, bytes, countersigner, countersignature FROM snapshots
                 WHERE space = ?1",
            )?
            .query_row([&space[..]], |r| {
                let device: Option<DeviceKey> = r.get(2)?;
                let signature: Option<[u8; 64]> = r.get(3)?;
                Ok(Accepted {
                    covers_seq: r.get::<_, i64>(0)? as u64,
                    bytes: r.get(1)?,
                    consent: device.zip(signature),
                })
            })
            .optional()?)
    }

    fn delete_space(&mut self, space: &SpaceKey, tombstone: &Tombstone) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM spaces WHERE space = ?1", [&space[..]])?;
        if n == 0 {
            return Err(StoreError::NoSuchSpace);
        }
        tx.execute(
            "INSERT INTO tombstones (space, device, relay_id, nonce, signature, deleted_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &space[..],
                &tombstone.device[..],
                &tombstone.relay_id[..],
                &tombstone.nonce[..],
                &tombstone.signature[..],
                i64::try_from(tombstone.deleted_at_ms).unwrap_or(i64::MAX),
            ],
        )?;
        for member in &tombstone.members {
            tx.execute(
                "INSERT OR IGNORE INTO tombstone_members (space, device) VALUES (?1, ?2)",
                params![&space[..], &member[..]],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn tombstone(&self, space: &SpaceKey) -> Result<Option<Tombstone>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT device, relay_id, nonce, signature, deleted_at FROM tombstones \
                 WHERE space = ?1",
            )?
            .query_row([&space[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
        let Some((device, relay_id, nonce, signature, deleted_at)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device FROM tombstone_members WHERE space = ?1")?;
        let members = stmt
            .query_map([&space[..]], |r| r.get::<_, Vec<u8>>(0))?
            .map(|m| fixed(m?))
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(Tombstone {
            device: fixed(device)?,
            relay_id: fixed(relay_id)?,
            nonce: fixed(nonce)?,
            signature: fixed(signature)?,
            deleted_at_ms: u64::try_from(deleted_at).unwrap_or(0),
            members,
        }))
    }

    fn usage(&self, space: &SpaceKey) -> Result<u64, StoreError> {
        Ok(self.space_row(space)?.1)
    }

    fn expire_unjoined(
        &mut self,
        created_before_ms: u64,
        now_ms: u64,
        max: usize,
    ) -> Result<Vec<SpaceKey>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let expired = admission::expire_unjoined(&tx, created_before_ms, now_ms, max)?;
        tx.commit()?;
        Ok(expired)
    }

    fn expiry(&self, space: &SpaceKey) -> Result<Option<Expiry>, StoreError> {
        admission::expiry(&self.conn, space)
    }

    fn forget_tokens(&mut self, expired_before_ms: u64) -> Result<u64, StoreError> {
        admission::forget_tokens(&self.conn, expired_before_ms)
    }

    fn relay_secret(&mut self, fresh: &[u8; 32], now_ms: u64) -> Result<[u8; 32], StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO relay_identity (id, secret, created_at) VALUES (1, ?1, ?2)",
            params![&fresh[..], i64::try_from(now_ms).unwrap_or(i64::MAX)],
        )?;
        let secret: Vec<u8> =
            tx.query_row("SELECT secret FROM relay_identity WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        tx.commit()?;
        fixed(secret)
    }
}

/// A stored blob as the fixed-size array it was written from; another size means the
/// database was damaged or edited.
fn fixed<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        StoreError::Database(rusqlite::Error::InvalidColumnType(
            0,
            format!("a {len}-byte value where {N} bytes belong"),
            rusqlite::types::Type::Blob,
        ))
    })
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull => StoreError::DiskFull,
        other => StoreError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SpaceKey = [1; 16];
    const B: SpaceKey = [2; 16];
    const PHONE: DeviceKey = [7; 32];
    const LAPTOP: DeviceKey = [8; 32];

    fn store(limits: StoreLimits) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("relay.db"), limits).unwrap();
        (dir, store)
    }

    fn push<'a>(
        space: &'a SpaceKey,
        device: &'a DeviceKey,
        counter: u64,
        bytes: &'a [u8],
    ) -> Push<'a> {
        Push {
            space,
            device,
            counter,
            bytes,
        }
    }

    fn one(store: &mut SqliteStore, p: Push<'_>) -> Result<PushOutcome, StoreError> {
        store.push_batch(&[p]).pop().unwrap()
    }

    #[test]
    fn each_space_has_its_own_dense_sequence() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"genesis-a", 1, None).unwrap();
        s.create_space(&B, b"genesis-b", 1, None).unwrap();
        assert_eq!(one(&mut s, push(&A, &PHONE, 1, b"a1")).unwrap().seq, 1);
        assert_eq!(one(&mut s, push(&B, &PHONE, 1, b"b1")).unwrap().seq, 1);
        assert_eq!(one(&mut s, push(&A, &LAPTOP, 1, b"a2")).unwrap().seq, 2);
        assert_eq!(one(&mut s, push(&A, &PHONE, 2, b"a3")).unwrap().seq, 3);
        assert_eq!(s.head(&A).unwrap(), 3);
        let all: Vec<u64> = s
            .since(&A, 0, 100, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(q, _)| q)
            .collect();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(
            s.since(&A, 1, 100, usize::MAX).unwrap()[0],
            (2, b"a2".to_vec())
        );
    }

    #[test]
    fn a_full_database_refuses_with_disk_full_and_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        // Room for the empty schema (about 20 pages since migration 4) and some envelopes.
        let capped = StoreLimits {
            max_db_bytes: Some(160 * 1024),
            ..StoreLimits::default()
        };
        let mut s = SqliteStore::open(&path, capped).unwrap();
        s.create_space(&A, b"g", 1, None).unwrap();
        // SQLite's own "database or disk is full" at the cap: what ENOSPC gives too.
        let mut stored = 0u64;
        let err = loop {
            let bytes = vec![stored as u8; 3000];
            match one(&mut s, push(&A, &PHONE, stored + 1, &bytes)) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 1000, "the cap never bit");
        };
        assert!(matches!(err, StoreError::DiskFull), "{err}");
        assert!(stored > 10, "{stored}");
        // Nothing half-written: the head and every envelope before the refusal stand, and
        // reading still works.
        assert_eq!(s.head(&A).unwrap(), stored);
        assert_eq!(
            s.since(&A, 0, 10_000, usize::MAX).unwrap().len() as u64,
            stored
        );
        assert!(matches!(
            one(&mut s, push(&A, &PHONE, stored + 1, &[1; 3000])),
            Err(StoreError::DiskFull)
        ));
        drop(s);
        // With room again, the same push is stored where it belongs.
        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        let outcome = one(&mut s, push(&A, &PHONE, stored + 1, &[1; 3000])).unwrap();
        assert_eq!(outcome.seq, stored + 1);
    }

    #[test]
    fn a_duplicate_push_gets_its_original_seq_and_is_stored_once() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        one(&mut s, push(&A, &PHONE, 1, b"first")).unwrap();
        one(&mut s, push(&A, &PHONE, 2, b"second")).unwrap();
        let again = one(&mut s, push(&A, &PHONE, 1, b"first")).unwrap();
        assert_eq!(
            again,
            PushOutcome {
                seq: 1,
                duplicate: true
            }
        );
        assert_eq!(s.head(&A).unwrap(), 2);
        assert_eq!(s.since(&A, 0, 100, usize::MAX).unwrap().len(), 2);
        // The same counter with other bytes is refused, and nothing changes.
        assert!(matches!(
            one(&mut s, push(&A, &PHONE, 1, b"forged")),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.since(&A, 0, 100, usize::MAX).unwrap()[0].1, b"first");
    }

    #[test]
    fn a_batch_judges_each_push_on_its_own() {
        let (_d, mut s) = store(StoreLimits {
            max_spaces: 10,
            max_bytes_per_space: 100,
            max_db_bytes: None,
        });
        s.create_space(&A, b"g", 1, None).unwrap();
        let big = vec![0u8; 200];
        let out = s.push_batch(&[
            push(&A, &PHONE, 1, b"ok"),
            push(&A, &PHONE, 2, &big),
            push(&B, &PHONE, 1, b"no space"),
            push(&A, &LAPTOP, 1, b"also ok"),
        ]);
        assert_eq!(out[0].as_ref().unwrap().seq, 1);
        assert!(matches!(out[1], Err(StoreError::QuotaExceeded(_))));
        assert!(matches!(out[2], Err(StoreError::NoSuchSpace)));
        assert_eq!(
            out[3].as_ref().unwrap().seq,
            2,
            "no gap where the refused push was"
        );
    }

    #[test]
    fn a_new_database_opened_twice_at_once_is_migrated_once() {
        // The relay starting and `hearth-relay token create` run on a new file together.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path, StoreLimits::default()).map(drop)
                })
            })
            .collect();
        for handle in opened {
            handle.join().unwrap().unwrap();
        }
    }

    #[test]
    fn committed_pushes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        {
            let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
            s.create_space(&A, b"g", 1, None).unwrap();
            for i in 1..=10u64 {
                one(&mut s, push(&A, &PHONE, i, format!("e{i}").as_bytes())).unwrap();
            }
        }
        let s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        assert_eq!(s.head(&A).unwrap(), 10);
        assert_eq!(
            s.since(&A, 9, 10, usize::MAX).unwrap(),
            vec![(10, b"e10".to_vec())]
        );
    }

    #[test]
    fn since_pages_by_count_and_bytes() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        for i in 1..=5u64 {
            one(&mut s, push(&A, &PHONE, i, &[i as u8; 10])).unwrap();
        }
        assert_eq!(s.since(&A, 0, 2, usize::MAX).unwrap().len(), 2);
        assert_eq!(s.since(&A, 0, 100, 25).unwrap().len(), 2);
        assert_eq!(
            s.since(&A, 0, 100, 1).unwrap().len(),
            1,
            "always at least one"
        );
        assert!(s.since(&A, 5, 100, usize::MAX).unwrap().is_empty());
    }

    fn seqs(s: &SqliteStore, space: &SpaceKey) -> Vec<u64> {
        s.since(space, 0, 100, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(q, _)| q)
            .collect()
    }

    #[test]
    fn a_proposed_snapshot_drops_nothing_until_it_is_accepted() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        for i in 1..=4u64 {
            one(&mut s, push(&A, &PHONE, i, &[0; 100])).unwrap();
        }
        let before = s.usage(&A).unwrap();
        assert!(matches!(
            s.propose_snapshot(&A, 5, &PHONE, b"snap"),
            Err(StoreError::Conflict(_))
        ));
        s.propose_snapshot(&A, 3, &PHONE, b"snapshot-through-3")
            .unwrap();
        assert_eq!(seqs(&s, &A), [1, 2, 3, 4], "every envelope stays");
        assert_eq!(s.snapshot(&A).unwrap(), None, "nothing accepted yet");
        let proposal = s.proposal(&A).unwrap().unwrap();
        assert_eq!(
            proposal,
            Proposal {
                covers_seq: 3,
                author: PHONE,
                hash: hearth_proto::snapshot_hash(b"snapshot-through-3"),
                bytes: b"snapshot-through-3".to_vec(),
            }
        );
        assert_eq!(s.usage(&A).unwrap(), before + 18, "the proposal counts");
        // A newer proposal replaces it, and only its bytes count.
        s.propose_snapshot(&A, 4, &LAPTOP, b"through-4").unwrap();
        assert_eq!(s.proposal(&A).unwrap().unwrap().covers_seq, 4);
        assert_eq!(s.usage(&A).unwrap(), before + 9);
        // Accepting needs the very proposal waiting.
        let wrong = hearth_proto::snapshot_hash(b"snapshot-through-3");
        assert!(matches!(
            s.accept_snapshot(&A, 4, &wrong, &LAPTOP, &[1; 64]),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.accept_snapshot(
                &A,
                3,
                &hearth_proto::snapshot_hash(b"through-4"),
                &PHONE,
                &[1; 64]
            ),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(seqs(&s, &A), [1, 2, 3, 4]);
    }

    #[test]
    fn an_accepted_snapshot_replaces_what_it_covers_and_the_snapshot_before_it() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        for i in 1..=4u64 {
            one(&mut s, push(&A, &PHONE, i, &[0; 100])).unwrap();
        }
        let before = s.usage(&A).unwrap();
        s.propose_snapshot(&A, 2, &PHONE, b"through-2").unwrap();
        let hash = hearth_proto::snapshot_hash(b"through-2");
        s.accept_snapshot(&A, 2, &hash, &LAPTOP, &[9; 64]).unwrap();
        assert_eq!(
            s.snapshot(&A).unwrap(),
            Some(Accepted {
                covers_seq: 2,
                bytes: b"through-2".to_vec(),
                consent: Some((LAPTOP, [9; 64])),
            })
        );
        assert_eq!(s.proposal(&A).unwrap(), None);
        assert_eq!(seqs(&s, &A), [3, 4]);
        assert_eq!(s.usage(&A).unwrap(), before - 200 + 9);
        // A proposal behind the accepted snapshot is refused; one past it waits beside it.
        assert!(matches!(
            s.propose_snapshot(&A, 1, &PHONE, b"older"),
            Err(StoreError::Conflict(_))
        ));
        s.propose_snapshot(&A, 3, &PHONE, b"through-3").unwrap();
        assert_eq!(
            s.snapshot(&A).unwrap().unwrap().covers_seq,
            2,
            "kept until then"
        );
        s.accept_snapshot(
            &A,
            3,
            &hearth_proto::snapshot_hash(b"through-3"),
            &LAPTOP,
            &[8; 64],
        )
        .unwrap();
        assert_eq!(s.snapshot(&A).unwrap().unwrap().bytes, b"through-3");
        assert_eq!(seqs(&s, &A), [4]);
        assert_eq!(s.usage(&A).unwrap(), before - 300 + 9);
        // New pushes continue the sequence.
        assert_eq!(one(&mut s, push(&A, &PHONE, 5, b"x")).unwrap().seq, 5);
    }

    #[test]
    fn a_snapshot_stored_before_consent_reads_back_without_a_countersignature() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        one(&mut s, push(&A, &PHONE, 1, b"e")).unwrap();
        // What the relay wrote before migration 2 gave snapshots their consent columns.
        s.conn
            .execute(
                "INSERT INTO snapshots (space, covers_seq, bytes) VALUES (?1, 1, ?2)",
                params![&A[..], b"old".to_vec()],
            )
            .unwrap();
        assert_eq!(
            s.snapshot(&A).unwrap(),
            Some(Accepted {
                covers_seq: 1,
                bytes: b"old".to_vec(),
                consent: None,
            })
        );
    }

    #[test]
    fn acl_appends_are_ordered_and_never_both_win() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"genesis", 1, None).unwrap();
        assert!(matches!(
            s.create_space(&A, b"again", 2, None),
            Err(StoreError::SpaceExists)
        ));
        s.append_acl(&A, 1, b"invite").unwrap();
        assert!(matches!(
            s.append_acl(&A, 1, b"rival"),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.append_acl(&A, 5, b"gap"),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.acl(&A).unwrap(),
            vec![b"genesis".to_vec(), b"invite".to_vec()]
        );
        assert!(matches!(s.acl(&B), Err(StoreError::NoSuchSpace)));
    }

    #[test]
    fn lockboxes_are_per_device_and_epoch() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        s.put_lockbox(&A, &PHONE, 0, b"box-0").unwrap();
        s.put_lockbox(&A, &PHONE, 1, b"box-1").unwrap();
        s.put_lockbox(&A, &PHONE, 1, b"box-1b").unwrap();
        assert_eq!(s.lockbox(&A, &PHONE, 0).unwrap().unwrap(), b"box-0");
        assert_eq!(s.lockbox(&A, &PHONE, 1).unwrap().unwrap(), b"box-1b");
        assert_eq!(s.lockbox(&A, &LAPTOP, 1).unwrap(), None);
    }

    #[test]
    fn quotas_on_spaces_are_enforced() {
        let (_d, mut s) = store(StoreLimits {
            max_spaces: 1,
            max_bytes_per_space: 1000,
            max_db_bytes: None,
        });
        s.create_space(&A, b"g", 1, None).unwrap();
        assert!(matches!(
            s.create_space(&B, b"g", 1, None),
            Err(StoreError::QuotaExceeded(_))
        ));
        s.delete_space(&A, &tombstone()).unwrap();
        assert!(!s.space_exists(&A).unwrap());
        s.create_space(&B, b"g", 1, None).unwrap();
        assert!(matches!(
            s.delete_space(&A, &tombstone()),
            Err(StoreError::NoSuchSpace)
        ));
    }

    /// The phone's deletion of a space whose members were the phone and the laptop.
    fn tombstone() -> Tombstone {
        Tombstone {
            device: PHONE,
            relay_id: [3; 16],
            nonce: [4; 32],
            signature: [5; 64],
            deleted_at_ms: 1_800_000_000_000,
            members: vec![PHONE, LAPTOP],
        }
    }

    #[test]
    fn deleting_a_space_removes_everything_in_it() {
        let (_d, mut s) = store(StoreLimits::default());
        s.create_space(&A, b"g", 1, None).unwrap();
        one(&mut s, push(&A, &PHONE, 1, b"e")).unwrap();
        s.put_lockbox(&A, &PHONE, 0, b"box").unwrap();
        s.propose_snapshot(&A, 1, &PHONE, b"snap").unwrap();
        s.delete_space(&A, &tombstone()).unwrap();
        for table in [
            "spaces",
            "acl",
            "lockboxes",
            "envelopes",
            "snapshots",
            "proposals",
        ] {
            let n: i64 = s
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
        assert!(matches!(s.acl(&A), Err(StoreError::NoSuchSpace)));
    }

    #[test]
    fn a_deleted_space_leaves_its_tombstone_and_its_id_is_never_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        s.create_space(&A, b"g", 1, None).unwrap();
        s.create_space(&B, b"g", 1, None).unwrap();
        assert_eq!(s.tombstone(&A).unwrap(), None);
        s.delete_space(&A, &tombstone()).unwrap();
        drop(s);
        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        let mut kept = s.tombstone(&A).unwrap().unwrap();
        kept.members.sort_unstable();
        assert_eq!(kept, tombstone());
        assert!(matches!(
            s.create_space(&A, b"g", 2, None),
            Err(StoreError::SpaceDeleted)
        ));
        assert!(!s.space_exists(&A).unwrap());
        // Other spaces are untouched.
        assert_eq!(s.tombstone(&B).unwrap(), None);
        assert_eq!(s.acl(&B).unwrap(), vec![b"g".to_vec()]);
    }

    #[test]
    fn two_processes_opening_a_new_database_at_once_migrate_it_once_and_share_one_secret() {
        // The relay starting while its operator runs `hearth-relay fingerprint`.
        for round in 0..20u8 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("relay.db");
            let start = std::sync::Arc::new(std::sync::Barrier::new(2));
            let openers: Vec<_> = [1u8, 2]
                .into_iter()
                .map(|seed| {
                    let (path, start) = (path.clone(), std::sync::Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
                        s.relay_secret(&[seed; 32], 0).unwrap()
                    })
                })
                .collect();
            let secrets: Vec<[u8; 32]> = openers.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(secrets[0], secrets[1], "round {round}");
        }
    }

    #[test]
    fn the_relay_secret_is_drawn_once_and_kept_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let first = {
            let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
            let first = s.relay_secret(&[1; 32], 5).unwrap();
            assert_eq!(
                s.relay_secret(&[2; 32], 6).unwrap(),
                first,
                "kept, not redrawn"
            );
            first
        };
        assert_eq!(first, [1; 32]);
        let mut again = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        assert_eq!(again.relay_secret(&[3; 32], 7).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "a new database is owner-only: {mode:o}");
        }
    }

    /// A database (and its WAL) from before the relay kept its key there, readable by
    /// everyone, is made owner-only when the relay opens it, before the key goes in.
    #[cfg(unix)]
    #[test]
    fn a_world_readable_database_from_before_the_key_is_made_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let wal = dir.path().join("relay.db-wal");
        std::fs::write(&wal, b"").unwrap();
        for file in [&path, &wal] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut store = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        store.relay_secret(&[9; 32], 1).unwrap();
        for file in [&path, &wal] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", file.display());
        }
    }

    #[test]
    fn a_database_from_before_tombstones_is_migrated_and_keeps_its_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO spaces (space, created_at) VALUES (?1, 1)",
                [&A[..]],
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert!(s.space_exists(&A).unwrap());
        s.delete_space(&A, &tombstone()).unwrap();
        assert!(s.tombstone(&A).unwrap().is_some());
    }
}
