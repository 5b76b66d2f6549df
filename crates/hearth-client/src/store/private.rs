//! The private journal: entries only their author sees, sealed per entry id, never part
//! of the shared document.

use rusqlite::{Connection, params};

use crate::Error;

pub(crate) fn put(conn: &Connection, id: &str, sealed: &[u8]) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO private_entries (id, sealed) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
        params![id, sealed],
    )?;
    Ok(())
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut stmt = conn.prepare_cached("SELECT id, sealed FROM private_entries ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
