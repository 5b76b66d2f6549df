//! `known_heads` (migration 9): the heads of what the relay had given or taken from this
//! device when its cursor reached a seq, kept for the newest [`KEPT`] seqs. A snapshot
//! another person proposes is countersigned only if it holds the heads recorded at the
//! largest seq it covers (see `crate::sync_book::known`).

use hearth_doc::ChangeHash;
use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

/// How many seqs' heads are kept: a few dozen syncs' worth.
pub(crate) const KEPT: i64 = 48;

fn signed(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Records `heads` as known at `seq` (replacing what was recorded there), and forgets all
/// but the newest [`KEPT`] seqs.
pub(crate) fn record(conn: &Connection, seq: u64, heads: &[ChangeHash]) -> Result<(), Error> {
    let seq = signed(seq)?;
    conn.prepare_cached("DELETE FROM known_heads WHERE seq = ?1")?
        .execute([seq])?;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO known_heads (seq, hash) VALUES (?1, ?2)")?;
    for head in heads {
        insert.execute(params![seq, head.0])?;
    }
    conn.prepare_cached(
        "DELETE FROM known_heads WHERE seq NOT IN
             (SELECT DISTINCT seq FROM known_heads ORDER BY seq DESC LIMIT ?1)",
    )?
    .execute([KEPT])?;
    Ok(())
}

/// The heads recorded at the largest seq at or below `seq`, with that seq; `None` if
/// nothing recorded applies.
pub(crate) fn at_or_below(
    conn: &Connection,
    seq: u64,
) -> Result<Option<(u64, Vec<ChangeHash>)>, Error> {
    let at: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM known_heads WHERE seq <= ?1")?
        .query_row([signed(seq)?], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(at) = at else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT hash FROM known_heads WHERE seq = ?1")?;
    let heads = stmt
        .query_map([at], |r| r.get(0).map(ChangeHash))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((u64::try_from(at).unwrap_or(0), heads)))
}

/// Forgets everything recorded: the relay's seqs no longer mean what they did.
pub(crate) fn forget_all(conn: &Connection) -> Result<(), Error> {
    conn.execute("DELETE FROM known_heads", [])?;
    Ok(())
}
