//! The profile's SQLite file: schema, migrations and the rows the profile reads and writes.
//!
//! Everything here is already sealed by the time it reaches SQL; the only plaintext columns
//! are ids, kinds and sequence numbers. Migrations are append-only: a shipped one is never
//! edited, and `PRAGMA user_version` records how many have run.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::Error;

/// The newest profile format this build reads and writes.
pub(crate) const FORMAT: i64 = 4;

const MIGRATIONS: &[&str] = &[
    // 1: the offline profile.
    "CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    -- The document as a snapshot plus incremental chunks, each sealed with the storage key.
    CREATE TABLE doc_chunks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind INTEGER NOT NULL,
        sealed BLOB NOT NULL
    ) STRICT;
    -- Journal entries only their author sees; never part of the shared document.
    CREATE TABLE private_entries (
        id TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    ) STRICT;",
    // 2: sync state (docs/architecture.md, "Sync").
    "-- The space's verified ACL chain: public keys and signatures only.
    CREATE TABLE acl (
        idx INTEGER PRIMARY KEY,
        record BLOB NOT NULL
    ) STRICT;
    -- Epoch keys K[e], sealed with the storage key.
    CREATE TABLE epoch_keys (
        epoch INTEGER PRIMARY KEY,
        sealed BLOB NOT NULL
    ) STRICT;
    -- Envelopes (already encrypted and signed) the relay has not acknowledged yet.
    CREATE TABLE outbox (
        counter INTEGER PRIMARY KEY,
        envelope BLOB NOT NULL
    ) STRICT;
    -- Every envelope applied, by author and counter, so a replay is recognised.
    CREATE TABLE seen (
        device BLOB NOT NULL,
        counter INTEGER NOT NULL,
        PRIMARY KEY (device, counter)
    ) STRICT, WITHOUT ROWID;",
    // 3: envelopes that arrived before changes they build on.
    "-- Verified and decrypted envelopes whose changes wait for earlier ones that have not
    -- arrived (reordered, or the earlier one was refused); their plaintext is sealed with
    -- the storage key. Retried with every envelope applied; moved to `seen` once complete.
    CREATE TABLE parked (
        device BLOB NOT NULL,
        counter INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (device, counter)
    ) STRICT, WITHOUT ROWID;",
    // 4: keys of this device's sealed check-in answers (docs/security.md, "Sealed answers").
    "-- Each key, sealed with the storage key, by the commitment it opens. Kept until the key
    -- is released into the document; it exists nowhere else until then.
    CREATE TABLE seal_keys (
        commitment TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    ) STRICT;",
];

/// What a stored document chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    /// A full save of the document.
    Snapshot = 0,
    /// Changes made after the chunks before it.
    Changes = 1,
}

impl ChunkKind {
    fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Snapshot),
            1 => Some(Self::Changes),
            _ => None,
        }
    }

    pub(crate) fn domain(self, space_id: &str) -> Vec<u8> {
        let kind = match self {
            Self::Snapshot => "snapshot",
            Self::Changes => "changes",
        };
        format!("doc/{space_id}/{kind}").into_bytes()
    }
}

/// One stored, still sealed, document chunk.
#[derive(Debug)]
pub(crate) struct StoredChunk {
    pub seq: i64,
    pub kind: ChunkKind,
    pub sealed: Vec<u8>,
}

/// Opens (and with `create`, creates) the profile database, applying pending migrations.
pub(crate) fn open(path: &Path, home: &Path, create: bool) -> Result<Connection, Error> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let corrupt = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::Corrupt {
                home: home.to_owned(),
                reason: format!("{} is not a readable database", path.display()),
            }
        }
        _ => Error::from(e),
    };
    if create {
        // SQLite would create the file with the umask's permissions; the profile is
        // owner-only. Its -wal and -shm files inherit these permissions.
        create_private_file(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(corrupt)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if create {
        // Must precede the first table. Compaction frees most pages at once; incremental
        // vacuum gives them back to the file system afterwards.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    } else {
        // WAL lets readers run beside a writer; FULL makes every commit durable before
        // the command reports success.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Keep the WAL file from staying at its high-water mark after a compaction.
    conn.pragma_update(None, "journal_size_limit", 1024 * 1024)?;
    migrate(&mut conn, home).map_err(|e| match e {
        Error::Database(e) => corrupt(e),
        other => other,
    })?;
    Ok(conn)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Returns the pages compaction freed to the file system.
pub(crate) fn reclaim_free_pages(conn: &Connection) -> Result<(), Error> {
    // Each step of this pragma frees one page, so run it to completion.
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn migrate(conn: &mut Connection, home: &Path) -> Result<(), Error> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > FORMAT {
        return Err(Error::NewerFormat {
            home: home.to_owned(),
            got: version,
            want: FORMAT,
        });
    }
    let start = usize::try_from(version).unwrap_or(0);
    if start >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn chunks(conn: &Connection) -> Result<Vec<StoredChunk>, Error> {
    let mut stmt = conn.prepare_cached("SELECT seq, kind, sealed FROM doc_chunks ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, kind, sealed) = row?;
        // An unknown kind comes from a newer hearth or damage; the caller reports it.
        let kind = ChunkKind::from_i64(kind).unwrap_or(ChunkKind::Changes);
        out.push(StoredChunk { seq, kind, sealed });
    }
    Ok(out)
}

pub(crate) fn append_chunk(
    conn: &Connection,
    kind: ChunkKind,
    sealed: &[u8],
) -> Result<i64, Error> {
    conn.prepare_cached("INSERT INTO doc_chunks (kind, sealed) VALUES (?1, ?2)")?
        .execute(params![kind as i64, sealed])?;
    Ok(conn.last_insert_rowid())
}

/// Replaces every chunk up to and including `through` with one snapshot.
pub(crate) fn replace_chunks(
    conn: &Connection,
    through: i64,
    snapshot: &[u8],
) -> Result<(), Error> {
    conn.execute("DELETE FROM doc_chunks WHERE seq <= ?1", [through])?;
    append_chunk(conn, ChunkKind::Snapshot, snapshot)?;
    Ok(())
}

pub(crate) fn put_private(conn: &Connection, id: &str, sealed: &[u8]) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO private_entries (id, sealed) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
        params![id, sealed],
    )?;
    Ok(())
}

pub(crate) fn private_entries(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut stmt = conn.prepare_cached("SELECT id, sealed FROM private_entries ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn chunks_count(conn: &Connection) -> Result<usize, Error> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM doc_chunks", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

pub(crate) fn put_seal_key(
    conn: &Connection,
    commitment: &str,
    sealed: &[u8],
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO seal_keys (commitment, sealed) VALUES (?1, ?2)
         ON CONFLICT (commitment) DO UPDATE SET sealed = excluded.sealed",
    )?
    .execute(params![commitment, sealed])?;
    Ok(())
}

pub(crate) fn seal_keys(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT commitment, sealed FROM seal_keys ORDER BY commitment")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete_seal_key(conn: &Connection, commitment: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM seal_keys WHERE commitment = ?1")?
        .execute([commitment])?;
    Ok(())
}
