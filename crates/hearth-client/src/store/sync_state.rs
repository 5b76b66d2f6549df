//! Where this device stands with its relay, in columns of their own: the cursor and
//! counters as integers, the landmarks as rows, the heads the relay has as hashes, what was
//! applied before the relay was found rewound, and the limits the relay last announced.

use hearth_doc::ChangeHash;
use hearth_proto::{DeviceId, Limits};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::Error;
use crate::Landmark;

/// One integer of the `sync_state` row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    /// The relay sequence number of the last envelope applied or passed.
    Cursor,
    /// The counter the next envelope this device seals gets.
    Next,
    /// The newest epoch whose key this device made and wrapped for the other members.
    SharedEpoch,
    /// Bytes of envelopes moved since this device last pushed a snapshot.
    Unsnapshotted,
    /// 1 while this device owes a relay that went back in time the whole document
    /// (migration 6).
    Resend,
    /// 1 while this device owes the relay the space moved to its own person's writing
    /// (migration 12).
    Reupload,
}

impl Counter {
    fn select(self) -> &'static str {
        match self {
            Self::Cursor => "SELECT cursor FROM sync_state",
            Self::Next => "SELECT next_counter FROM sync_state",
            Self::SharedEpoch => "SELECT shared_epoch FROM sync_state",
            Self::Unsnapshotted => "SELECT unsnapshotted FROM sync_state",
            Self::Resend => "SELECT resend FROM sync_state",
            Self::Reupload => "SELECT reupload FROM sync_state",
        }
    }

    fn update(self) -> &'static str {
        match self {
            Self::Cursor => "UPDATE sync_state SET cursor = ?1",
            Self::Next => "UPDATE sync_state SET next_counter = ?1",
            Self::SharedEpoch => "UPDATE sync_state SET shared_epoch = ?1",
            Self::Unsnapshotted => "UPDATE sync_state SET unsnapshotted = ?1",
            Self::Resend => "UPDATE sync_state SET resend = ?1",
            Self::Reupload => "UPDATE sync_state SET reupload = ?1",
        }
    }
}

/// SQLite integers are signed; the columns' CHECKs keep them at zero or above.
fn unsigned(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn signed(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(crate) fn get(conn: &Connection, counter: Counter) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached(counter.select())?
        .query_row([], |r| unsigned(r, 0))?)
}

pub(crate) fn set(conn: &Connection, counter: Counter, value: u64) -> Result<(), Error> {
    conn.prepare_cached(counter.update())?
        .execute([signed(value)?])?;
    Ok(())
}

/// Records that the relay holds a snapshot of everything up to `covers_seq`: nothing is
/// unsnapshotted any more.
pub(crate) fn set_snapshot(conn: &Connection, covers_seq: u64) -> Result<(), Error> {
    conn.execute(
        "UPDATE sync_state SET snapshot_seq = ?1, unsnapshotted = 0",
        [signed(covers_seq)?],
    )?;
    Ok(())
}

/// Forgets which relay seq the last snapshot this device pushed covers, and the bytes
/// moved since: they were another relay's.
pub(crate) fn forget_snapshot(conn: &Connection) -> Result<(), Error> {
    conn.execute(
        "UPDATE sync_state SET snapshot_seq = NULL, unsnapshotted = 0",
        [],
    )?;
    Ok(())
}

pub(crate) fn last_sync_at(conn: &Connection) -> Result<Option<u64>, Error> {
    let at: Option<i64> =
        conn.query_row("SELECT last_sync_at FROM sync_state", [], |r| r.get(0))?;
    // Written only by `set_last_sync_at`, from a u64 that fitted.
    Ok(at.map(|at| u64::try_from(at).unwrap_or(0)))
}

pub(crate) fn set_last_sync_at(conn: &Connection, at_ms: u64) -> Result<(), Error> {
    conn.execute("UPDATE sync_state SET last_sync_at = ?1", [signed(at_ms)?])?;
    Ok(())
}

/// Which of this device's landmarks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// The envelope at the cursor: the last one applied.
    Cursor,
    /// The last of this device's own envelopes the relay committed.
    Own,
}

impl Mark {
    fn name(self) -> &'static str {
        match self {
            Self::Cursor => "cursor",
            Self::Own => "own",
        }
    }
}

pub(crate) fn landmark(conn: &Connection, mark: Mark) -> Result<Option<Landmark>, Error> {
    Ok(conn
        .prepare_cached("SELECT seq, author, counter FROM landmarks WHERE name = ?1")?
        .query_row([mark.name()], |r| {
            Ok(Landmark {
                seq: unsigned(r, 0)?,
                author: DeviceId::from_bytes(r.get(1)?),
                counter: unsigned(r, 2)?,
            })
        })
        .optional()?)
}

pub(crate) fn set_landmark(conn: &Connection, mark: Mark, at: &Landmark) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO landmarks (name, seq, author, counter) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET
             seq = excluded.seq, author = excluded.author, counter = excluded.counter",
    )?
    .execute(params![
        mark.name(),
        signed(at.seq)?,
        at.author.as_bytes(),
        signed(at.counter)?
    ])?;
    Ok(())
}

pub(crate) fn forget_landmark(conn: &Connection, mark: Mark) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM landmarks WHERE name = ?1")?
        .execute([mark.name()])?;
    Ok(())
}

/// The heads of the document the relay has been given (or delivered), in no order.
pub(crate) fn pushed_heads(conn: &Connection) -> Result<Vec<ChangeHash>, Error> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM pushed_heads")?;
    let rows = stmt.query_map([], |r| r.get(0).map(ChangeHash))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn set_pushed_heads(conn: &Connection, heads: &[ChangeHash]) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM pushed_heads")?
        .execute([])?;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO pushed_heads (hash) VALUES (?1)")?;
    for head in heads {
        insert.execute([head.0])?;
    }
    Ok(())
}

/// Keeps, per author, the highest counter applied so far: what the relay may deliver again
/// once this device has rewound to read its history anew.
pub(crate) fn remember_applied_before_rewind(conn: &Connection) -> Result<(), Error> {
    conn.execute("DELETE FROM applied_before_rewind", [])?;
    conn.execute(
        "INSERT INTO applied_before_rewind (device, counter)
         SELECT device, MAX(counter) FROM seen GROUP BY device",
        [],
    )?;
    Ok(())
}

/// Whether `author`'s envelope `counter` was applied before the last rewind.
pub(crate) fn applied_before_rewind(
    conn: &Connection,
    author: &[u8],
    counter: i64,
) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM applied_before_rewind
                            WHERE device = ?1 AND counter >= ?2)",
        )?
        .query_row(params![author, counter], |r| r.get(0))?)
}

/// The limits the relay announced at the last login; `None` before the first.
pub(crate) fn relay_limits(conn: &Connection) -> Result<Option<Limits>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT max_frame_bytes, max_envelope_bytes, max_devices_per_space, max_spaces,
                    max_bytes_per_space, max_pushes_per_sec
             FROM relay_limits",
        )?
        .query_row([], |r| {
            Ok(Limits {
                max_frame_bytes: r.get(0)?,
                max_envelope_bytes: r.get(1)?,
                max_devices_per_space: r.get(2)?,
                max_spaces: r.get(3)?,
                max_bytes_per_space: unsigned(r, 4)?,
                max_pushes_per_sec: r.get(5)?,
            })
        })
        .optional()?)
}

pub(crate) fn set_relay_limits(conn: &Connection, limits: &Limits) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO relay_limits (id, max_frame_bytes, max_envelope_bytes,
             max_devices_per_space, max_spaces, max_bytes_per_space, max_pushes_per_sec)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET
             max_frame_bytes = excluded.max_frame_bytes,
             max_envelope_bytes = excluded.max_envelope_bytes,
             max_devices_per_space = excluded.max_devices_per_space,
             max_spaces = excluded.max_spaces,
             max_bytes_per_space = excluded.max_bytes_per_space,
             max_pushes_per_sec = excluded.max_pushes_per_sec",
    )?
    .execute(params![
        limits.max_frame_bytes,
        limits.max_envelope_bytes,
        limits.max_devices_per_space,
        limits.max_spaces,
        // A relay may announce any u64 ("no limit" as u64::MAX); past i64::MAX it is as good
        // as unlimited, and refusing it would stop every sync at login.
        i64::try_from(limits.max_bytes_per_space).unwrap_or(i64::MAX),
        limits.max_pushes_per_sec
    ])?;
    Ok(())
}

/// The seqs taken above the cursor (migration 7), with the envelope each held.
pub(crate) fn ahead(conn: &Connection) -> Result<crate::sync_book::Ahead, Error> {
    let mut stmt = conn.prepare_cached("SELECT seq, author, counter FROM received_ahead")?;
    let rows = stmt.query_map([], |r| {
        let seq = unsigned(r, 0)?;
        let author: Option<[u8; 32]> = r.get(1)?;
        let counter: Option<i64> = r.get(2)?;
        let mark = match (author, counter) {
            (Some(author), Some(counter)) => Some(Landmark {
                seq,
                author: DeviceId::from_bytes(author),
                counter: u64::try_from(counter).unwrap_or(0),
            }),
            _ => None,
        };
        Ok((seq, mark))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the seqs taken above the cursor with `ahead`.
pub(crate) fn set_ahead(conn: &Connection, ahead: &crate::sync_book::Ahead) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM received_ahead")?
        .execute([])?;
    let mut insert = conn
        .prepare_cached("INSERT INTO received_ahead (seq, author, counter) VALUES (?1, ?2, ?3)")?;
    for (seq, mark) in ahead {
        insert.execute(params![
            signed(*seq)?,
            mark.map(|m| *m.author.as_bytes()),
            mark.map(|m| signed(m.counter)).transpose()?
        ])?;
    }
    Ok(())
}

/// The newest epoch a member's signed envelope named, and its author (migration 8).
pub(crate) fn newer_epoch(conn: &Connection) -> Result<Option<(DeviceId, u32)>, Error> {
    let (epoch, by): (i64, Option<[u8; 32]>) = conn.query_row(
        "SELECT newer_epoch, newer_epoch_by FROM sync_state",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match (u32::try_from(epoch), by) {
        (Ok(epoch), Some(by)) if epoch > 0 => Some((DeviceId::from_bytes(by), epoch)),
        _ => None,
    })
}

/// Records that `by`'s signed envelope named `epoch`, if it is newer than the one recorded.
pub(crate) fn saw_newer_epoch(conn: &Connection, by: &DeviceId, epoch: u32) -> Result<(), Error> {
    conn.execute(
        "UPDATE sync_state SET newer_epoch = ?1, newer_epoch_by = ?2 WHERE newer_epoch < ?1",
        params![i64::from(epoch), by.as_bytes()],
    )?;
    Ok(())
}
