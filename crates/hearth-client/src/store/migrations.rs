//! The profile database's schema, as an append-only list of migrations.
//!
//! `PRAGMA user_version` holds how many of them have run, so a profile at version N runs
//! migrations N+1 onwards, all in one transaction: an interrupted upgrade leaves the
//! profile as it was. This is the contract of the `rusqlite_migration` crate (one `M::up`
//! per entry, counted in `user_version`); its newest release is built against an older
//! rusqlite than the workspace's, and two copies of SQLite cannot be linked into one
//! program, so the same few lines live here until it catches up. A shipped migration is
//! never edited: a change is a new entry at the end.
//!
//! A migration may carry a conversion that runs after its SQL, for what SQL alone cannot
//! check: migration 5 moves the sync bookkeeping out of `meta`'s strings into typed
//! columns, and refuses (changing nothing) a value it cannot read rather than guess.

use hearth_doc::ChangeHash;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// Rust run after a migration's SQL, in the same transaction.
type Conversion = fn(&Transaction<'_>) -> Result<(), Failed>;

/// One step of the schema.
struct Migration {
    sql: &'static str,
    convert: Option<Conversion>,
}

const fn up(sql: &'static str) -> Migration {
    Migration { sql, convert: None }
}

/// Why a migration did not run; the caller words it with the profile's directory.
#[derive(Debug)]
pub(super) enum Failed {
    /// SQLite failed.
    Database(rusqlite::Error),
    /// The profile holds a value this migration cannot convert.
    Unreadable(String),
    /// The profile comes from a newer hearth.
    Newer {
        /// Its `user_version`.
        got: i64,
    },
}

impl From<rusqlite::Error> for Failed {
    fn from(e: rusqlite::Error) -> Self {
        Failed::Database(e)
    }
}

const MIGRATIONS: &[Migration] = &[
    // 1: the offline profile.
    up("CREATE TABLE meta (
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
    ) STRICT;"),
    // 2: sync state (docs/architecture.md, "Sync").
    up(
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
    ),
    // 3: envelopes that arrived before changes they build on.
    up(
        "-- Verified and decrypted envelopes whose changes wait for earlier ones that have not
    -- arrived (reordered, or the earlier one was refused); their plaintext is sealed with
    -- the storage key. Retried with every envelope applied; moved to `seen` once complete.
    CREATE TABLE parked (
        device BLOB NOT NULL,
        counter INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (device, counter)
    ) STRICT, WITHOUT ROWID;",
    ),
    // 4: keys of this device's sealed check-in answers (docs/security.md, "Sealed answers").
    up(
        "-- Each key, sealed with the storage key, by the commitment it opens. Kept until the key
    -- is released into the document; it exists nowhere else until then.
    CREATE TABLE seal_keys (
        commitment TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
    ) STRICT;",
    ),
    // 5: the sync bookkeeping in columns and tables of its own, out of `meta`'s strings.
    Migration {
        sql: "-- Where this device stands with its relay: one row.
    CREATE TABLE sync_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        -- The relay seq of the last envelope applied or passed.
        cursor INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
        -- The counter the next envelope this device seals gets.
        next_counter INTEGER NOT NULL DEFAULT 1 CHECK (next_counter >= 1),
        -- The newest epoch whose key this device made and wrapped for the other members.
        shared_epoch INTEGER NOT NULL DEFAULT 0 CHECK (shared_epoch BETWEEN 0 AND 4294967295),
        -- Bytes of envelopes moved since this device last pushed a snapshot.
        unsnapshotted INTEGER NOT NULL DEFAULT 0 CHECK (unsnapshotted >= 0),
        -- The relay seq the last snapshot this device pushed covers.
        snapshot_seq INTEGER CHECK (snapshot_seq >= 0),
        -- When the last sync completed (Unix time in ms).
        last_sync_at INTEGER CHECK (last_sync_at >= 0)
    ) STRICT;
    INSERT INTO sync_state (id) VALUES (1);
    -- Envelopes this device can name by their place on the relay: the one at its cursor
    -- and the last of its own the relay committed.
    CREATE TABLE landmarks (
        name TEXT PRIMARY KEY CHECK (name IN ('cursor', 'own')),
        seq INTEGER NOT NULL CHECK (seq >= 0),
        author BLOB NOT NULL CHECK (length(author) = 32),
        counter INTEGER NOT NULL CHECK (counter >= 0)
    ) STRICT;
    -- The heads of the document the relay has: the next push carries what follows them.
    CREATE TABLE pushed_heads (
        hash BLOB PRIMARY KEY CHECK (length(hash) = 32)
    ) STRICT, WITHOUT ROWID;
    -- Per author, the highest counter applied before the relay was found rewound: those
    -- may be delivered again and are not replays.
    CREATE TABLE applied_before_rewind (
        device BLOB PRIMARY KEY,
        counter INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    -- The limits the relay announced at the last login (one row; none before the first).
    CREATE TABLE relay_limits (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        max_frame_bytes INTEGER NOT NULL,
        max_envelope_bytes INTEGER NOT NULL,
        max_devices_per_space INTEGER NOT NULL,
        max_spaces INTEGER NOT NULL,
        max_bytes_per_space INTEGER NOT NULL,
        max_pushes_per_sec INTEGER NOT NULL
    ) STRICT;",
        convert: Some(sync_state_from_meta),
    },
    // 6: changes the authorship rule refused (docs/security.md, "Who may write what").
    up(
        "-- Every change an incoming envelope carried that was not applied, by its hash: the
    -- lasting ones (what the change does breaks the rule) are refused again whoever brings
    -- them, and so is every change that depends on one; the others (refused only for who
    -- brought them) are kept so each is reported once, and are accepted from their own
    -- device. `reason` is the rule's name, never content.
    CREATE TABLE refused_changes (
        hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
        -- The device whose envelope brought it (its signed author).
        device BLOB NOT NULL CHECK (length(device) = 32),
        lasting INTEGER NOT NULL CHECK (lasting IN (0, 1)),
        reason TEXT NOT NULL,
        -- When it was refused (Unix time in ms).
        refused_at INTEGER NOT NULL CHECK (refused_at >= 0)
    ) STRICT, WITHOUT ROWID;
    -- 1 while this device owes a relay that went back in time the whole document: it is
    -- sent as one snapshot, whose changes receivers judge each by its own device, rather
    -- than as change envelopes, in which the partner's changes would be refused as
    -- changes this device cannot vouch for.
    ALTER TABLE sync_state ADD COLUMN resend INTEGER NOT NULL DEFAULT 0
        CHECK (resend IN (0, 1));",
    ),
    // 7: envelopes taken past a gap in the relay's seqs (docs/security.md, "No silent gaps").
    up(
        "-- The relay numbers a space's envelopes densely; the cursor moves only over seqs taken
    -- one after another. What was taken above a gap waits here, with the envelope's place
    -- (author and counter, when it decoded), until the gap fills and the cursor runs over
    -- it; the relay delivering one of these again is not taken again.
    CREATE TABLE received_ahead (
        seq INTEGER PRIMARY KEY CHECK (seq > 0),
        author BLOB CHECK (author IS NULL OR length(author) = 32),
        counter INTEGER CHECK (counter IS NULL OR counter >= 0)
    ) STRICT;",
    ),
    // 8: the newest epoch a member's signed envelope was written under that this device's
    // chain had not reached (docs/security.md, "Cross-checks").
    up(
        "-- A validly signed envelope of a member under an epoch the relay's chain does not reach
    -- means the relay is holding back ACL records (a rotation, after a removal): this device
    -- seals nothing under an older epoch until the relay shows them. 0: none seen.
    ALTER TABLE sync_state ADD COLUMN newer_epoch INTEGER NOT NULL DEFAULT 0
        CHECK (newer_epoch >= 0);
    ALTER TABLE sync_state ADD COLUMN newer_epoch_by BLOB
        CHECK (newer_epoch_by IS NULL OR length(newer_epoch_by) = 32);",
    ),
    // 9: what this device knew at a relay seq, to judge snapshot proposals (docs/security.md,
    // "Snapshots need both people").
    up(
        "-- The heads of what the relay has (pushed_heads) right after the cursor reached `seq`
    -- with nothing taken past a gap and nothing in the outbox: every change they name came
    -- from a relay seq at or below `seq`. Before countersigning another person's snapshot
    -- covering seq N, this device requires the heads recorded at the largest seq <= N in
    -- it. The newest few dozen seqs are kept; a relay found gone back in time clears them.
    CREATE TABLE known_heads (
        seq INTEGER NOT NULL CHECK (seq > 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (seq, hash)
    ) STRICT, WITHOUT ROWID;",
    ),
    // 10: when each device was last heard from (docs/security.md, "hearth verify").
    up(
        "-- The last time (this device's clock, Unix ms) an envelope signed by each device arrived
    -- and verified: `hearth status` shows it for the other devices, the one answer to a relay
    -- that withholds a device's writing altogether. Ids and times, no content.
    CREATE TABLE heard (
        device BLOB PRIMARY KEY CHECK (length(device) = 32),
        at_ms INTEGER NOT NULL CHECK (at_ms >= 0)
    ) STRICT, WITHOUT ROWID;",
    ),
    // 11: the relay key trusted at each relay address (docs/security.md, "The relay's key").
    up(
        "-- Pinned at the first contact with a relay address (or from the invite code that led
    -- there), checked before every login, and moved only by `hearth relay trust`. Public
    -- keys and addresses, no content.
    CREATE TABLE relay_keys (
        relay TEXT PRIMARY KEY,
        key BLOB NOT NULL CHECK (length(key) = 32),
        pinned_at INTEGER NOT NULL CHECK (pinned_at >= 0)
    ) STRICT, WITHOUT ROWID;",
    ),
    // 12: the upload a relay the space moved to is owed (docs/protocol.md, "Moving a space
    // to another relay").
    up(
        "-- 1 from the move to another relay until this device's next push there, which seals
    -- every change of its own person's it holds (its devices alone vouch for them there),
    -- not only what is new since its last push to the old relay.
    ALTER TABLE sync_state ADD COLUMN reupload INTEGER NOT NULL DEFAULT 0
        CHECK (reupload IN (0, 1));",
    ),
];

/// The newest profile format this build reads and writes.
pub(crate) const FORMAT: i64 = MIGRATIONS.len() as i64;

/// Runs every migration the database has not had yet.
pub(super) fn run(conn: &mut Connection) -> Result<(), Failed> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > FORMAT {
        return Err(Failed::Newer { got: version });
    }
    let start = usize::try_from(version).unwrap_or(0);
    if start >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(migration.sql)?;
        if let Some(convert) = migration.convert {
            convert(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// The `meta` keys format 4 kept the sync bookkeeping in.
const LEGACY_KEYS: &[&str] = &[
    "cursor",
    "next_counter",
    "shared_epoch",
    "unsnapshotted",
    "snapshot_seq",
    "last_sync_at",
    "cursor_mark",
    "own_mark",
    "pushed_heads",
    "applied_before_rewind",
];

/// Migration 5's conversion: reads format 4's strings, writes them as typed rows, and
/// removes them from `meta`.
fn sync_state_from_meta(tx: &Transaction<'_>) -> Result<(), Failed> {
    let legacy = |key: &str| -> rusqlite::Result<Option<String>> {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
    };
    for (key, column) in [
        ("cursor", "cursor"),
        ("next_counter", "next_counter"),
        ("unsnapshotted", "unsnapshotted"),
        ("snapshot_seq", "snapshot_seq"),
        ("last_sync_at", "last_sync_at"),
    ] {
        if let Some(value) = legacy(key)? {
            let n = parse_integer(key, &value)?;
            tx.execute(&format!("UPDATE sync_state SET {column} = ?1"), [n])?;
        }
    }
    if let Some(value) = legacy("shared_epoch")? {
        let epoch: u32 = value
            .parse()
            .map_err(|_| unreadable("shared_epoch", &value))?;
        tx.execute("UPDATE sync_state SET shared_epoch = ?1", [epoch])?;
    }
    for (key, name) in [("cursor_mark", "cursor"), ("own_mark", "own")] {
        if let Some(value) = legacy(key)? {
            let (seq, author, counter) =
                parse_landmark(&value).ok_or_else(|| unreadable(key, &value))?;
            tx.execute(
                "INSERT INTO landmarks (name, seq, author, counter) VALUES (?1, ?2, ?3, ?4)",
                params![name, seq, author, counter],
            )?;
        }
    }
    if let Some(value) = legacy("pushed_heads")? {
        for head in value.split(',').filter(|h| !h.is_empty()) {
            let hash: ChangeHash = head
                .parse()
                .map_err(|_| unreadable("pushed_heads", &value))?;
            tx.execute(
                "INSERT OR IGNORE INTO pushed_heads (hash) VALUES (?1)",
                [hash.0],
            )?;
        }
    }
    if let Some(value) = legacy("applied_before_rewind")? {
        for entry in value.split(',').filter(|e| !e.is_empty()) {
            let (device, counter) = entry
                .split_once(':')
                .and_then(|(d, c)| Some((parse_device(d)?, c.parse::<i64>().ok()?)))
                .ok_or_else(|| unreadable("applied_before_rewind", &value))?;
            tx.execute(
                "INSERT INTO applied_before_rewind (device, counter) VALUES (?1, ?2)
                 ON CONFLICT (device) DO UPDATE SET counter = MAX(counter, excluded.counter)",
                params![device, counter],
            )?;
        }
    }
    for key in LEGACY_KEYS {
        tx.execute("DELETE FROM meta WHERE key = ?1", [key])?;
    }
    Ok(())
}

fn unreadable(key: &str, value: &str) -> Failed {
    Failed::Unreadable(format!(
        "its sync state `{key}` holds {value:?}, which this hearth cannot read, so the \
         profile was left at format 4"
    ))
}

fn parse_integer(key: &str, value: &str) -> Result<i64, Failed> {
    value
        .parse::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| unreadable(key, value))
}

fn parse_device(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Format 4's landmark: `SEQ AUTHOR-HEX COUNTER`.
fn parse_landmark(value: &str) -> Option<(i64, [u8; 32], i64)> {
    let mut parts = value.split(' ');
    let seq = parts.next()?.parse::<u64>().ok()?;
    let author = parse_device(parts.next()?)?;
    let counter = parts.next()?.parse::<u64>().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((
        i64::try_from(seq).ok()?,
        author,
        i64::try_from(counter).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at `version` with `meta` rows as format 4 wrote them.
    fn at_version(version: usize, meta: &[(&str, &str)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for (i, migration) in MIGRATIONS.iter().take(version).enumerate() {
            conn.execute_batch(migration.sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        for (key, value) in meta {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .unwrap();
        }
        conn
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    const DEVICE: &str = "dfc01f15dddd6f0a9435e96bd41c9d8baec46567b268e8e87caf3d88ebe15473";
    const HEAD_A: &str = "20612febeb536aeca028b8b70aa4f6832fcec66664cb8071d90a593ca404d84e";
    const HEAD_B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn a_format_4_profile_moves_its_sync_state_into_columns() {
        let own = format!("4 {DEVICE} 2");
        let cursor_mark = format!("9 {DEVICE} 3");
        let heads = format!("{HEAD_A},{HEAD_B}");
        let applied = format!("{DEVICE}:3");
        let mut conn = at_version(
            4,
            &[
                ("space_id", "61c6ed26fb53fe03cb97c2a5a64f0f60"),
                ("cursor", "9"),
                ("next_counter", "3"),
                ("shared_epoch", "2"),
                ("unsnapshotted", "3719"),
                ("last_sync_at", "1796218847755"),
                ("own_mark", &own),
                ("cursor_mark", &cursor_mark),
                ("pushed_heads", &heads),
                ("applied_before_rewind", &applied),
            ],
        );
        run(&mut conn).unwrap();
        assert_eq!(user_version(&conn), FORMAT);
        let row: (i64, i64, i64, i64, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT cursor, next_counter, shared_epoch, unsnapshotted, snapshot_seq,
                        last_sync_at FROM sync_state",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(row, (9, 3, 2, 3719, None, Some(1_796_218_847_755)));
        let marks: Vec<(String, i64, Vec<u8>, i64)> = conn
            .prepare("SELECT name, seq, author, counter FROM landmarks ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let device = hex::decode(DEVICE).unwrap();
        assert_eq!(
            marks,
            vec![
                ("cursor".into(), 9, device.clone(), 3),
                ("own".into(), 4, device.clone(), 2)
            ]
        );
        let heads: i64 = conn
            .query_row("SELECT COUNT(*) FROM pushed_heads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(heads, 2);
        let applied: (Vec<u8>, i64) = conn
            .query_row(
                "SELECT device, counter FROM applied_before_rewind",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(applied, (device, 3));
        let left: Vec<String> = conn
            .prepare("SELECT key FROM meta ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, vec!["space_id"], "only the identity stays in meta");
    }

    #[test]
    fn a_profile_that_never_synced_starts_from_zero() {
        let mut conn = at_version(4, &[("space_id", "00")]);
        run(&mut conn).unwrap();
        let (cursor, next): (i64, i64) = conn
            .query_row("SELECT cursor, next_counter FROM sync_state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((cursor, next), (0, 1));
        let mut fresh = Connection::open_in_memory().unwrap();
        run(&mut fresh).unwrap();
        assert_eq!(user_version(&fresh), FORMAT);
    }

    #[test]
    fn an_unreadable_old_value_is_refused_and_nothing_changes() {
        for (key, value) in [
            ("shared_epoch", "one"),
            ("shared_epoch", "4294967296"),
            ("cursor", "-1"),
            ("cursor", "18446744073709551615"),
            ("pushed_heads", "abc"),
            ("own_mark", "4 ede4 2"),
            ("cursor_mark", "4"),
            ("applied_before_rewind", "ede4:2"),
        ] {
            let mut conn = at_version(4, &[(key, value)]);
            let Err(Failed::Unreadable(reason)) = run(&mut conn) else {
                panic!("{key} = {value:?} was accepted");
            };
            assert!(reason.contains(key) && reason.contains(value), "{reason}");
            assert_eq!(user_version(&conn), 4, "{key}: left at format 4");
            let kept: String = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .unwrap();
            assert_eq!(kept, value);
        }
    }

    #[test]
    fn a_newer_format_is_refused() {
        let mut conn = at_version(MIGRATIONS.len(), &[]);
        conn.pragma_update(None, "user_version", FORMAT + 1)
            .unwrap();
        assert!(matches!(run(&mut conn), Err(Failed::Newer { got }) if got == FORMAT + 1));
    }
}
