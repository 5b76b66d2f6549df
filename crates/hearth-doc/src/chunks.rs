//! Checking bytes from other devices before any of them touch the document.
//!
//! Automerge's `load_incremental` applies every chunk it can parse and quietly drops the
//! rest, so a damaged batch would be half applied with no error. hearth wants the
//! opposite (docs/architecture.md, "Pitfalls"): all or nothing, with a warning. So incoming bytes are split into chunks and
//! every chunk is parsed (and its checksum checked) first; only then is anything applied.
//!
//! Chunk framing (Automerge binary format): 4 magic bytes, a 4-byte checksum (the first
//! bytes of the SHA-256 change hash), a type byte, a LEB128 length, then the data.

use std::fmt;

use automerge::{AutoCommit, Change};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const TYPE_DOCUMENT: u8 = 0;
const TYPE_CHANGE: u8 = 1;
const TYPE_COMPRESSED_CHANGE: u8 = 2;

/// Incoming data, parsed and verified, ready to apply.
#[derive(Default)]
pub(crate) struct Incoming {
    pub(crate) changes: Vec<Change>,
    pub(crate) documents: Vec<AutoCommit>,
}

/// Why incoming bytes were refused.
#[derive(Debug)]
pub(crate) struct ChunkError(String);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChunkError {}

fn refuse(why: impl Into<String>) -> ChunkError {
    ChunkError(why.into())
}

/// A refusal of incoming data for another reason than its framing.
pub(crate) fn refuse_owned(why: String) -> ChunkError {
    ChunkError(why)
}

/// Splits `bytes` into chunks and parses every one of them.
pub(crate) fn parse(bytes: &[u8]) -> Result<Incoming, ChunkError> {
    let mut incoming = Incoming {
        changes: Vec::new(),
        documents: Vec::new(),
    };
    let mut rest = bytes;
    let mut index = 0usize;
    while !rest.is_empty() {
        let (
            Framed {
                chunk_type,
                checksum,
                bytes: chunk,
            },
            after,
        ) = next_chunk(rest).map_err(|why| {
            refuse(format!(
                "chunk {index} at byte {}: {why}",
                bytes.len() - rest.len()
            ))
        })?;
        match chunk_type {
            TYPE_DOCUMENT => {
                // A snapshot is checked by loading it completely (heads verified); snapshots
                // arrive rarely (pairing, compaction), so the cost is acceptable.
                let doc = AutoCommit::load(chunk)
                    .map_err(|e| refuse(format!("chunk {index}: invalid snapshot: {e}")))?;
                incoming.documents.push(doc);
            }
            TYPE_CHANGE | TYPE_COMPRESSED_CHANGE => {
                let change = Change::try_from(chunk)
                    .map_err(|e| refuse(format!("chunk {index}: invalid change: {e}")))?;
                // `Change::try_from` rebuilds the hash from the contents but does not compare
                // it with the header, which is how corruption in transit shows up.
                if change.hash().0[..4] != checksum {
                    return Err(refuse(format!("chunk {index}: checksum does not match")));
                }
                incoming.changes.push(change);
            }
            other => {
                return Err(refuse(format!(
                    "chunk {index}: unsupported chunk type {other}; the sender may be a newer \
                     version of hearth"
                )));
            }
        }
        rest = after;
        index += 1;
    }
    Ok(incoming)
}

/// One chunk as framed: its type, its checksum and its bytes (header included).
struct Framed<'a> {
    chunk_type: u8,
    checksum: [u8; 4],
    bytes: &'a [u8],
}

/// The next chunk and what follows it.
fn next_chunk(bytes: &[u8]) -> Result<(Framed<'_>, &[u8]), &'static str> {
    let header = bytes.get(..9).ok_or("truncated header")?;
    if header[..4] != MAGIC {
        return Err("not automerge data (bad magic bytes)");
    }
    let checksum = [header[4], header[5], header[6], header[7]];
    let chunk_type = header[8];
    let (len, len_bytes) = read_uleb(&bytes[9..]).ok_or("bad length")?;
    let start = 9 + len_bytes;
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .filter(|end| *end <= bytes.len())
        .ok_or("truncated chunk")?;
    let framed = Framed {
        chunk_type,
        checksum,
        bytes: &bytes[..end],
    };
    Ok((framed, &bytes[end..]))
}

/// An unsigned LEB128 number and how many bytes it took.
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * u32::try_from(i).ok()?;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    fn two_changes() -> Vec<u8> {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1_i64).unwrap();
        doc.commit();
        doc.put(ROOT, "b", "two").unwrap();
        doc.commit();
        doc.save_after(&[])
    }

    #[test]
    fn uleb_reads_what_automerge_writes() {
        assert_eq!(read_uleb(&[0x00]), Some((0, 1)));
        assert_eq!(read_uleb(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_uleb(&[0x80]), None);
        assert_eq!(read_uleb(&[0xff; 11]), None);
    }

    #[test]
    fn valid_changes_and_snapshots_parse() {
        let bytes = two_changes();
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.changes.len(), 2);
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1_i64).unwrap();
        let snapshot = doc.save();
        let parsed = parse(&snapshot).unwrap();
        assert_eq!(parsed.documents.len(), 1);
        assert!(parse(&[]).unwrap().changes.is_empty());
    }

    #[test]
    fn damaged_bytes_are_refused_whole() {
        let bytes = two_changes();
        assert!(parse(&bytes[..bytes.len() - 1]).is_err(), "truncated");
        assert!(parse(b"hello, this is not automerge").is_err());
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        assert!(parse(&flipped).is_err(), "a flipped bit in the last change");
        let mut bad_checksum = bytes.clone();
        bad_checksum[4] ^= 0xff;
        assert!(parse(&bad_checksum).is_err(), "a wrong checksum");
        let mut trailing = bytes;
        trailing.push(0);
        assert!(parse(&trailing).is_err(), "trailing garbage");
    }
}
