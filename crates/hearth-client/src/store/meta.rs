//! The profile's identity as key/value strings: its space, person and device ids, whether
//! it joined an existing space, and its relay's address. Sync bookkeeping has tables of
//! its own (see `sync_state`).

use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
