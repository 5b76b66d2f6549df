//! The document's chunks: a snapshot plus the increments written after it, each sealed
//! with the storage key by the profile before it reaches this table.

use rusqlite::{Connection, params};

use crate::Error;

/// What a stored document chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    /// A full save of the document.
    Snapshot = 0,
    /// Changes made after the chunks before it.
    Changes = 1,
}

impl ChunkKind {
    fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Snapshot),
            1 => Some(Self::Changes),
            _ => None,
        }
    }

    pub(crate) fn domain(self, space_id: &str) -> Vec<u8> {
        let kind = match self {
            Self::Snapshot => "snapshot",
            Self::Changes => "changes",
        };
        format!("doc/{space_id}/{kind}").into_bytes()
    }
}

/// One stored, still sealed, document chunk.
#[derive(Debug)]
pub(crate) struct StoredChunk {
    pub seq: i64,
    pub kind: ChunkKind,
    pub sealed: Vec<u8>,
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<StoredChunk>, Error> {
    let mut stmt = conn.prepare_cached("SELECT seq, kind, sealed FROM doc_chunks ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, kind, sealed) = row?;
        // An unknown kind comes from a newer hearth or damage; the caller reports it.
        let kind = ChunkKind::from_i64(kind).unwrap_or(ChunkKind::Changes);
        out.push(StoredChunk { seq, kind, sealed });
    }
    Ok(out)
}

pub(crate) fn append(conn: &Connection, kind: ChunkKind, sealed: &[u8]) -> Result<i64, Error> {
    conn.prepare_cached("INSERT INTO doc_chunks (kind, sealed) VALUES (?1, ?2)")?
        .execute(params![kind as i64, sealed])?;
    Ok(conn.last_insert_rowid())
}

/// Replaces every chunk up to and including `through` with one snapshot.
pub(crate) fn replace(conn: &Connection, through: i64, snapshot: &[u8]) -> Result<(), Error> {
    conn.execute("DELETE FROM doc_chunks WHERE seq <= ?1", [through])?;
    append(conn, ChunkKind::Snapshot, snapshot)?;
    Ok(())
}

pub(crate) fn count(conn: &Connection) -> Result<usize, Error> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM doc_chunks", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}
