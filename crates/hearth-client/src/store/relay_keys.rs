//! `relay_keys` (migration 11): the relay key this device trusts at each relay address,
//! pinned at first contact and moved only by `hearth relay trust` (see `sync::trust`).
//! Public keys and addresses only.

use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

/// The key pinned for `relay`, if any.
pub(crate) fn get(conn: &Connection, relay: &str) -> Result<Option<[u8; 32]>, Error> {
    Ok(conn
        .prepare_cached("SELECT key FROM relay_keys WHERE relay = ?1")?
        .query_row([relay], |r| r.get(0))
        .optional()?)
}

/// Pins `key` for `relay` at `at_ms`, replacing what was pinned there.
pub(crate) fn pin(conn: &Connection, relay: &str, key: &[u8; 32], at_ms: u64) -> Result<(), Error> {
    let at =
        i64::try_from(at_ms).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(
        "INSERT INTO relay_keys (relay, key, pinned_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (relay) DO UPDATE SET key = excluded.key, pinned_at = excluded.pinned_at",
    )?
    .execute(params![relay, &key[..], at])?;
    Ok(())
}
