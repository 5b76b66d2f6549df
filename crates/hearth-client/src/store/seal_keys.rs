//! Keys of this device's sealed check-in answers, kept (sealed with the storage key) until
//! the document releases them: until then they exist nowhere else.

use rusqlite::{Connection, params};

use crate::Error;

pub(crate) fn put(conn: &Connection, commitment: &str, sealed: &[u8]) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO seal_keys (commitment, sealed) VALUES (?1, ?2)
         ON CONFLICT (commitment) DO UPDATE SET sealed = excluded.sealed",
    )?
    .execute(params![commitment, sealed])?;
    Ok(())
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT commitment, sealed FROM seal_keys ORDER BY commitment")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete(conn: &Connection, commitment: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM seal_keys WHERE commitment = ?1")?
        .execute([commitment])?;
    Ok(())
}

/// How many keys of this device's sealed answers wait to be released.
pub(crate) fn count(conn: &Connection) -> Result<u64, Error> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM seal_keys")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
