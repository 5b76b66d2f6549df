//! The store's side of admission control: creation tokens (kept as hashes, spent in the
//! transaction that creates a space), and spaces nobody joined, removed after a while with
//! an [`Expiry`] left for the one device that created them. Kept apart from the envelope
//! storage because none of it touches a space's content; `SqliteStore`'s token methods
//! here are what `hearth-relay token …` runs.

use hearth_proto::{AclBody, AclRecord};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DeviceKey, SpaceKey, SqliteStore, StoreError, fixed};

/// A creation token as the store keeps it: its hash (see `crate::tokens`), never the
/// token itself.
pub type TokenHash = [u8; 32];

/// Why a creation token did not create a space. Nothing was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// No token with this hash: mistyped, revoked, forgotten after expiring, or minted by
    /// another relay.
    #[error("this relay does not know that creation token")]
    Unknown,
    /// The token's time is up.
    #[error("the creation token expired")]
    Expired {
        /// When, by the relay's clock (UTC milliseconds).
        at_ms: u64,
    },
    /// Every use of the token was spent.
    #[error("the creation token has been used up")]
    Used,
}

/// What is left of a space the relay removed because no second device joined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The device its Genesis named: the only device that was ever in it.
    pub device: DeviceKey,
    /// When it was removed, by the relay's clock (UTC milliseconds).
    pub expired_at_ms: u64,
}

/// A creation token as `hearth-relay token list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its number, for `token revoke`.
    pub id: i64,
    /// Spaces it may still create.
    pub uses_left: u32,
    /// When it stops working (UTC milliseconds).
    pub expires_at_ms: u64,
    /// When it was minted (UTC milliseconds).
    pub created_at_ms: u64,
}

fn sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn ms(sql: i64) -> u64 {
    u64::try_from(sql).unwrap_or(0)
}

/// Spends one use of the token whose hash is `ticket`, inside the caller's transaction.
pub(super) fn spend_token(
    conn: &Connection,
    ticket: &TokenHash,
    now_ms: u64,
) -> Result<(), StoreError> {
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT id, uses_left, expires_at FROM creation_tokens WHERE hash = ?1")?
        .query_row([&ticket[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((id, uses_left, expires_at)) = row else {
        return Err(StoreError::Token(TokenRefusal::Unknown));
    };
    if ms(expires_at) <= now_ms {
        return Err(StoreError::Token(TokenRefusal::Expired {
            at_ms: ms(expires_at),
        }));
    }
    if uses_left <= 0 {
        return Err(StoreError::Token(TokenRefusal::Used));
    }
    conn.prepare_cached("UPDATE creation_tokens SET uses_left = uses_left - 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Whether appending `record` brings a second device into its space.
pub(super) fn joins(record: &[u8]) -> bool {
    AclRecord::decode(record).is_ok_and(|r| matches!(r.body, AclBody::AddDevice { .. }))
}

/// The device a stored Genesis record names, if it decodes as one.
fn creator(genesis: &[u8]) -> Option<DeviceKey> {
    match AclRecord::decode(genesis).ok()?.body {
        AclBody::Genesis { device, .. } => Some(*device.as_bytes()),
        _ => None,
    }
}

/// Removes up to `max` unjoined spaces created before `created_before_ms`, inside the
/// caller's transaction; see `Storage::expire_unjoined`.
pub(super) fn expire_unjoined(
    conn: &Connection,
    created_before_ms: u64,
    now_ms: u64,
    max: usize,
) -> Result<Vec<SpaceKey>, StoreError> {
    let due: Vec<(Vec<u8>, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT spaces.space, acl.record FROM spaces \
             LEFT JOIN acl ON acl.space = spaces.space AND acl.idx = 0 \
             WHERE spaces.joined = 0 AND spaces.created_at < ?1 \
             ORDER BY spaces.created_at LIMIT ?2",
        )?
        .query_map(
            params![
                sql_ms(created_before_ms),
                i64::try_from(max).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut expired = Vec::with_capacity(due.len());
    for (space, genesis) in due {
        let space: SpaceKey = fixed(space)?;
        conn.prepare_cached("DELETE FROM spaces WHERE space = ?1")?
            .execute([&space[..]])?;
        // A Genesis that no longer decodes (a damaged row) names nobody to tell.
        if let Some(device) = genesis.as_deref().and_then(creator) {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO expired_spaces (space, device, expired_at) \
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&space[..], &device[..], sql_ms(now_ms)])?;
        }
        expired.push(space);
    }
    Ok(expired)
}

pub(super) fn expiry(conn: &Connection, space: &SpaceKey) -> Result<Option<Expiry>, StoreError> {
    let row: Option<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT device, expired_at FROM expired_spaces WHERE space = ?1")?
        .query_row([&space[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(device, at)| {
        Ok(Expiry {
            device: fixed(device)?,
            expired_at_ms: ms(at),
        })
    })
    .transpose()
}

pub(super) fn forget_tokens(conn: &Connection, expired_before_ms: u64) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM creation_tokens WHERE expires_at < ?1")?
        .execute([sql_ms(expired_before_ms)])?;
    Ok(n as u64)
}

impl SqliteStore {
    /// Keeps a new creation token (its hash) that may create `uses` spaces until
    /// `expires_at_ms`; returns its id.
    ///
    /// # Errors
    /// A database error; [`StoreError::Conflict`] if the same hash is stored already
    /// (which random tokens never are).
    pub fn add_token(
        &mut self,
        hash: &TokenHash,
        uses: u32,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StoreError> {
        let added = self.conn.execute(
            "INSERT INTO creation_tokens (hash, uses_left, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![&hash[..], uses, sql_ms(expires_at_ms), sql_ms(now_ms)],
        );
        match added {
            Ok(_) => Ok(self.conn.last_insert_rowid()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(StoreError::Conflict("that token is stored already".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every creation token the store keeps, oldest first (used-up and expired ones too,
    /// until they are forgotten).
    ///
    /// # Errors
    /// A database error.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, uses_left, expires_at, created_at FROM creation_tokens ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenInfo {
                id: r.get(0)?,
                uses_left: u32::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                expires_at_ms: ms(r.get(2)?),
                created_at_ms: ms(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes the token numbered `id`; returns whether there was one. A device that
    /// offers it afterwards is told the relay does not know it.
    ///
    /// # Errors
    /// A database error.
    pub fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM creation_tokens WHERE id = ?1", [id])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use hearth_proto::test_support::{device, invite, key, signed_acl};
    use hearth_proto::{InviteRole, SpaceId};

    use super::*;
    use crate::store::{Storage, StoreLimits};

    const SPACE: SpaceKey = [5; 16];
    const T0: u64 = 1_800_000_000_000;
    const DAY: u64 = 24 * 3600 * 1000;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("relay.db"), StoreLimits::default()).unwrap();
        (dir, s)
    }

    fn genesis(space: SpaceKey, by: u8) -> AclRecord {
        signed_acl(
            [0; 32],
            AclBody::Genesis {
                space: SpaceId::from_bytes(space),
                device: device(&key(by)),
                recipient: [7; 32],
                epoch: 0,
                key_check: [8; 32],
            },
            &[&key(by)],
        )
    }

    /// A space created by device 1 at `at`, with an invite appended (nobody joined).
    fn invited_space(s: &mut SqliteStore, space: SpaceKey, at: u64) -> AclRecord {
        let genesis = genesis(space, 1);
        s.create_space(&space, &genesis.encode(), at, None).unwrap();
        let invite = signed_acl(
            genesis.hash(),
            AclBody::Invite {
                invite: invite(&key(100)),
                expires_at_ms: at + DAY,
                role: InviteRole::Partner,
                by: device(&key(1)),
            },
            &[&key(1)],
        );
        s.append_acl(&space, 1, &invite.encode()).unwrap();
        invite
    }

    fn joined(s: &mut SqliteStore, space: SpaceKey, after: &AclRecord) {
        let add = signed_acl(
            after.hash(),
            AclBody::AddDevice {
                device: device(&key(2)),
                recipient: [7; 32],
                invite: invite(&key(100)),
            },
            &[&key(2), &key(100)],
        );
        s.append_acl(&space, 2, &add.encode()).unwrap();
    }

    #[test]
    fn a_token_is_spent_once_per_use_and_only_by_a_creation_that_succeeds() {
        let (_d, mut s) = store();
        let hash = [1; 32];
        let id = s.add_token(&hash, 2, T0 + DAY, T0).unwrap();
        s.create_space(&[1; 16], b"g", T0, Some(&hash)).unwrap();
        // A creation the store refuses (the id exists) spends nothing.
        assert!(matches!(
            s.create_space(&[1; 16], b"g", T0, Some(&hash)),
            Err(StoreError::SpaceExists)
        ));
        assert_eq!(s.tokens().unwrap()[0].uses_left, 1);
        s.create_space(&[2; 16], b"g", T0, Some(&hash)).unwrap();
        assert!(matches!(
            s.create_space(&[3; 16], b"g", T0, Some(&hash)),
            Err(StoreError::Token(TokenRefusal::Used))
        ));
        assert!(!s.space_exists(&[3; 16]).unwrap());
        assert_eq!(
            s.tokens().unwrap(),
            vec![TokenInfo {
                id,
                uses_left: 0,
                expires_at_ms: T0 + DAY,
                created_at_ms: T0,
            }]
        );
    }

    #[test]
    fn an_expired_unknown_or_revoked_token_creates_nothing() {
        let (_d, mut s) = store();
        let id = s.add_token(&[1; 32], 5, T0 + DAY, T0).unwrap();
        assert!(matches!(
            s.create_space(&SPACE, b"g", T0 + DAY, Some(&[1; 32])),
            Err(StoreError::Token(TokenRefusal::Expired { at_ms })) if at_ms == T0 + DAY
        ));
        assert!(matches!(
            s.create_space(&SPACE, b"g", T0, Some(&[2; 32])),
            Err(StoreError::Token(TokenRefusal::Unknown))
        ));
        assert!(s.revoke_token(id).unwrap());
        assert!(!s.revoke_token(id).unwrap(), "revoked already");
        assert!(matches!(
            s.create_space(&SPACE, b"g", T0, Some(&[1; 32])),
            Err(StoreError::Token(TokenRefusal::Unknown))
        ));
        assert!(!s.space_exists(&SPACE).unwrap());
    }

    #[test]
    fn tokens_are_forgotten_only_once_expired_before_the_cut() {
        let (_d, mut s) = store();
        s.add_token(&[1; 32], 1, T0, T0 - DAY).unwrap();
        s.add_token(&[2; 32], 1, T0 + DAY, T0).unwrap();
        assert_eq!(s.forget_tokens(T0 + 1).unwrap(), 1);
        assert_eq!(s.tokens().unwrap().len(), 1);
        assert!(matches!(
            s.add_token(&[2; 32], 1, T0, T0),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn a_space_nobody_joined_expires_and_leaves_its_creator_named() {
        let (_d, mut s) = store();
        invited_space(&mut s, SPACE, T0);
        let later = T0 + DAY;
        assert!(
            s.expire_unjoined(T0, later, 100).unwrap().is_empty(),
            "not older than the cut"
        );
        assert_eq!(s.expire_unjoined(T0 + 1, later, 100).unwrap(), vec![SPACE]);
        assert!(!s.space_exists(&SPACE).unwrap());
        assert_eq!(
            s.expiry(&SPACE).unwrap(),
            Some(Expiry {
                device: *device(&key(1)).as_bytes(),
                expired_at_ms: later,
            })
        );
        assert_eq!(s.tombstone(&SPACE).unwrap(), None, "not a deletion");
        // Its creator may create it again, which clears the expiry.
        s.create_space(&SPACE, &genesis(SPACE, 1).encode(), later, None)
            .unwrap();
        assert_eq!(s.expiry(&SPACE).unwrap(), None);
        assert_eq!(s.acl(&SPACE).unwrap().len(), 1);
    }

    #[test]
    fn a_space_a_second_device_joined_never_expires() {
        let (_d, mut s) = store();
        let invite = invited_space(&mut s, SPACE, T0);
        joined(&mut s, SPACE, &invite);
        assert!(s.expire_unjoined(u64::MAX, T0, 100).unwrap().is_empty());
        assert!(s.space_exists(&SPACE).unwrap());
    }

    #[test]
    fn expiry_goes_oldest_first_a_batch_at_a_time() {
        let (_d, mut s) = store();
        for i in 0..5u8 {
            invited_space(&mut s, [i; 16], T0 + u64::from(i));
        }
        assert_eq!(
            s.expire_unjoined(u64::MAX, T0, 2).unwrap(),
            vec![[0; 16], [1; 16]]
        );
        assert_eq!(s.expire_unjoined(u64::MAX, T0, 10).unwrap().len(), 3);
    }

    #[test]
    fn spaces_from_before_expiry_count_as_joined_unless_they_hold_only_their_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &crate::store::MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            for (space, records) in [([1u8; 16], 1), ([2u8; 16], 2)] {
                conn.execute(
                    "INSERT INTO spaces (space, created_at) VALUES (?1, 1)",
                    [&space[..]],
                )
                .unwrap();
                for idx in 0..records {
                    let record = genesis(space, 1).encode();
                    conn.execute(
                        "INSERT INTO acl (space, idx, record) VALUES (?1, ?2, ?3)",
                        params![&space[..], idx, record],
                    )
                    .unwrap();
                }
            }
        }
        let mut s = SqliteStore::open(&path, StoreLimits::default()).unwrap();
        assert_eq!(s.expire_unjoined(u64::MAX, T0, 10).unwrap(), vec![[1; 16]]);
        assert!(s.space_exists(&[2; 16]).unwrap());
    }
}
