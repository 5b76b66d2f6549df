//! Envelopes on their way: the outbox of this device's sealed envelopes the relay has not
//! committed yet, the set of envelopes applied (by author and counter, so a replay is
//! recognised), and the parked ones that wait for earlier changes.

use rusqlite::{Connection, params};

use crate::Error;

pub(crate) fn outbox(conn: &Connection) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let mut stmt = conn.prepare_cached("SELECT counter, envelope FROM outbox ORDER BY counter")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn outbox_count(conn: &Connection) -> Result<usize, Error> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) fn put_outbox(conn: &Connection, counter: u64, envelope: &[u8]) -> Result<(), Error> {
    conn.prepare_cached("INSERT INTO outbox (counter, envelope) VALUES (?1, ?2)")?
        .execute(params![counter as i64, envelope])?;
    Ok(())
}

pub(crate) fn remove_outbox(conn: &Connection, counter: u64) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM outbox WHERE counter = ?1")?
        .execute([counter as i64])?;
    Ok(())
}

pub(crate) fn is_seen(conn: &Connection, author: &[u8], counter: i64) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM seen WHERE device = ?1 AND counter = ?2)")?
        .query_row(params![author, counter], |r| r.get(0))?)
}

/// Records an envelope as applied; one already recorded is left as it is.
pub(crate) fn mark_seen(conn: &Connection, author: &[u8], counter: i64) -> Result<(), Error> {
    conn.prepare_cached("INSERT OR IGNORE INTO seen (device, counter) VALUES (?1, ?2)")?
        .execute(params![author, counter])?;
    Ok(())
}

/// The highest counter of `device` this profile holds, applied or parked.
pub(crate) fn highest_held(conn: &Connection, device: &[u8]) -> Result<Option<i64>, Error> {
    Ok(conn.query_row(
        "SELECT MAX(counter) FROM (SELECT counter FROM seen WHERE device = ?1 \
         UNION ALL SELECT counter FROM parked WHERE device = ?1)",
        [device],
        |r| r.get(0),
    )?)
}

/// A parked envelope: its author's device id and its sealed plaintext.
pub(crate) type Parked = (Vec<u8>, Vec<u8>);

/// Every parked envelope's plaintext (sealed) with its author, who vouches for its changes
/// when they are screened again.
pub(crate) fn parked(conn: &Connection) -> Result<Vec<Parked>, Error> {
    let mut stmt = conn.prepare_cached("SELECT device, sealed FROM parked")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn parked_count(conn: &Connection) -> Result<usize, Error> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM parked", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) fn park(
    conn: &Connection,
    author: &[u8],
    counter: i64,
    sealed: &[u8],
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO parked (device, counter, sealed) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![author, counter, sealed])?;
    Ok(())
}

/// Every parked envelope was applied: they count as seen now.
pub(crate) fn unpark_all_as_seen(conn: &Connection) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO seen (device, counter) SELECT device, counter FROM parked",
        [],
    )?;
    conn.execute("DELETE FROM parked", [])?;
    Ok(())
}

/// Records that a verified envelope of `device` arrived at `at_ms` (migration 10).
pub(crate) fn heard(conn: &Connection, device: &[u8], at_ms: u64) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO heard (device, at_ms) VALUES (?1, ?2)
         ON CONFLICT (device) DO UPDATE SET at_ms = MAX(at_ms, excluded.at_ms)",
    )?
    .execute(params![device, i64::try_from(at_ms).unwrap_or(i64::MAX)])?;
    Ok(())
}

/// When each device was last heard from, by device id.
pub(crate) fn last_heard(conn: &Connection) -> Result<Vec<([u8; 32], u64)>, Error> {
    let mut stmt = conn.prepare_cached("SELECT device, at_ms FROM heard")?;
    let rows = stmt.query_map([], |r| {
        let at: i64 = r.get(1)?;
        Ok((r.get::<_, [u8; 32]>(0)?, u64::try_from(at).unwrap_or(0)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
