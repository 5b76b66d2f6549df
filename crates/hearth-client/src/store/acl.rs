//! The space's ACL chain as last verified (public keys and signatures only), and the epoch
//! keys this device holds, sealed with the storage key.

use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

pub(crate) fn records(conn: &Connection) -> Result<Vec<Vec<u8>>, Error> {
    let mut stmt = conn.prepare_cached("SELECT record FROM acl ORDER BY idx")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the whole chain; the caller runs it in a transaction.
pub(crate) fn replace_records(conn: &Connection, records: &[Vec<u8>]) -> Result<(), Error> {
    conn.execute("DELETE FROM acl", [])?;
    let mut insert = conn.prepare_cached("INSERT INTO acl (idx, record) VALUES (?1, ?2)")?;
    for (i, record) in records.iter().enumerate() {
        insert.execute(params![i as i64, record])?;
    }
    Ok(())
}

pub(crate) fn epoch_key(conn: &Connection, epoch: u32) -> Result<Option<Vec<u8>>, Error> {
    Ok(conn
        .prepare_cached("SELECT sealed FROM epoch_keys WHERE epoch = ?1")?
        .query_row([epoch], |r| r.get(0))
        .optional()?)
}

pub(crate) fn put_epoch_key(conn: &Connection, epoch: u32, sealed: &[u8]) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO epoch_keys (epoch, sealed) VALUES (?1, ?2)
         ON CONFLICT (epoch) DO UPDATE SET sealed = excluded.sealed",
    )?
    .execute(params![epoch, sealed])?;
    Ok(())
}
