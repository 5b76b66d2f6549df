//! Changes the authorship rule refused (migration 6): their hashes, the device that brought
//! each, and whether the refusal lasts (see `hearth_doc::authorship::Refusal::lasting`).

use std::collections::HashSet;

use hearth_doc::ChangeHash;
use rusqlite::{Connection, params};

use crate::Error;

/// The hashes of every change refused for good: what `SpaceDoc::apply_screened` takes as
/// `refused`, so that changes depending on one are refused too, however late they come.
pub(crate) fn lasting(conn: &Connection) -> Result<HashSet<ChangeHash>, Error> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM refused_changes WHERE lasting = 1")?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = HashSet::new();
    for hash in rows {
        let hash = hash?;
        // The column's CHECK keeps every stored hash at 32 bytes.
        if let Ok(hash) = ChangeHash::try_from(hash.as_slice()) {
            out.insert(hash);
        }
    }
    Ok(out)
}

/// Records a refused change. Returns whether this is news: the change was not recorded
/// before, or only as refused for who brought it and is now refused for good. Only news is
/// reported, so a change arriving again (in a re-push, a snapshot) is reported once.
pub(crate) fn record(
    conn: &Connection,
    hash: &ChangeHash,
    device: &[u8; 32],
    lasting: bool,
    reason: &str,
    at_ms: u64,
) -> Result<bool, Error> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO refused_changes (hash, device, lasting, reason, refused_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hash) DO UPDATE SET
                 device = excluded.device, lasting = 1, reason = excluded.reason,
                 refused_at = excluded.refused_at
             WHERE refused_changes.lasting = 0 AND excluded.lasting = 1",
        )?
        .execute(params![
            &hash.0[..],
            &device[..],
            i64::from(lasting),
            reason,
            i64::try_from(at_ms).unwrap_or(i64::MAX)
        ])?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_change_is_news_once_and_only_lasting_ones_are_refused_again() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("profile.db"), dir.path(), true).unwrap();
        let (a, b) = (ChangeHash([1; 32]), ChangeHash([2; 32]));
        let device = [9; 32];
        assert!(record(&conn, &a, &device, true, "outside-own-container", 1).unwrap());
        assert!(!record(&conn, &a, &device, true, "outside-own-container", 2).unwrap());
        assert!(record(&conn, &b, &device, false, "actor-is-not-author", 3).unwrap());
        assert!(!record(&conn, &b, &device, false, "actor-is-not-author", 4).unwrap());
        assert_eq!(lasting(&conn).unwrap(), HashSet::from([a]));
        // Refused for good later (it now depends on a refused change): news again.
        assert!(record(&conn, &b, &device, true, "depends-on-refused", 5).unwrap());
        assert!(!record(&conn, &b, &device, false, "actor-is-not-author", 6).unwrap());
        assert_eq!(lasting(&conn).unwrap(), HashSet::from([a, b]));
    }
}
