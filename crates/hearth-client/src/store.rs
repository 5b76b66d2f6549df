//! The profile's SQLite file: how it is opened, its schema and migrations, and every
//! statement the crate runs on it, one submodule per group of tables. Nothing outside this
//! module writes SQL.
//!
//! Everything here is already sealed by the time it reaches SQL; the only plaintext columns
//! are ids, kinds, sequence numbers and counters. Migrations are append-only: a shipped one
//! is never edited, and `PRAGMA user_version` records how many have run.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Error;

pub(crate) mod acl;
pub(crate) mod chunks;
pub(crate) mod envelopes;
pub(crate) mod known_heads;
pub(crate) mod meta;
mod migrations;
pub(crate) mod private;
pub(crate) mod refused;
pub(crate) mod relay_keys;
pub(crate) mod seal_keys;
pub(crate) mod sync_state;

pub(crate) use chunks::ChunkKind;
use migrations::FORMAT;

/// Opens (and with `create`, creates) the profile database, applying pending migrations.
pub(crate) fn open(path: &Path, home: &Path, create: bool) -> Result<Connection, Error> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let corrupt = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::Corrupt {
                home: home.to_owned(),
                reason: format!("{} is not a readable database", path.display()),
            }
        }
        _ => Error::from(e),
    };
    if create {
        // SQLite would create the file with the umask's permissions; the profile is
        // owner-only. Its -wal and -shm files inherit these permissions.
        create_private_file(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(corrupt)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if create {
        // Must precede the first table. Compaction frees most pages at once; incremental
        // vacuum gives them back to the file system afterwards.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    } else {
        // WAL lets readers run beside a writer; FULL makes every commit durable before
        // the command reports success.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Keep the WAL file from staying at its high-water mark after a compaction.
    conn.pragma_update(None, "journal_size_limit", 1024 * 1024)?;
    migrations::run(&mut conn).map_err(|e| match e {
        migrations::Failed::Database(e) => corrupt(e),
        migrations::Failed::Unreadable(reason) => Error::Corrupt {
            home: home.to_owned(),
            reason,
        },
        migrations::Failed::Newer { got } => Error::NewerFormat {
            home: home.to_owned(),
            got,
            want: FORMAT,
        },
    })?;
    Ok(conn)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Starts a write transaction. `BEGIN IMMEDIATE` takes the database's write lock up front,
/// so what is read inside it is the base every concurrent writer waits on.
pub(crate) fn begin_write(conn: &Connection) -> Result<rusqlite::Transaction<'_>, Error> {
    Ok(rusqlite::Transaction::new_unchecked(
        conn,
        rusqlite::TransactionBehavior::Immediate,
    )?)
}

/// Returns the pages compaction freed to the file system.
pub(crate) fn reclaim_free_pages(conn: &Connection) -> Result<(), Error> {
    // Each step of this pragma frees one page, so run it to completion.
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::Profile;
    use crate::store::sync_state::Counter;

    const SAM: &str = "ede4ced5e251802e95c25502be5241ad50914acbaee76192ada35afbe9198c36";
    const JORDAN: &str = "dfc01f15dddd6f0a9435e96bd41c9d8baec46567b268e8e87caf3d88ebe15473";

    /// A copy of the profile format 4 wrote (see the fixture's README), to open and migrate.
    fn format_4_profile(dir: &Path) -> PathBuf {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format4");
        let home = dir.join("sam");
        std::fs::create_dir(&home).unwrap();
        for file in ["device.key", "profile.db"] {
            std::fs::copy(fixture.join(file), home.join(file)).unwrap();
        }
        home
    }

    fn device(hex: &str) -> hearth_proto::DeviceId {
        hex.parse().unwrap()
    }

    #[test]
    fn a_profile_written_by_format_4_opens_with_its_entries_and_sync_state() {
        let dir = tempfile::tempdir().unwrap();
        let home = format_4_profile(dir.path());
        let profile = Profile::open(&home, None).unwrap();
        let version: i64 = profile
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, FORMAT);

        let mut doc = profile.load().unwrap();
        let mut texts: Vec<String> = doc.appreciations().into_iter().map(|a| a.text).collect();
        texts.sort();
        assert_eq!(
            texts,
            [
                "and for the tea",
                "thank you for letting the laptop go",
                "thank you for the soup",
                "thank you for the walk"
            ]
        );
        let private = profile.private_journal().unwrap();
        assert_eq!(private.len(), 1);
        assert_eq!(private[0].body, "a private thought");

        assert_eq!(
            profile.sync_book().relay().unwrap().as_deref(),
            Some("ws://127.0.0.1:47391/v1/sync")
        );
        assert_eq!(profile.sync_book().cursor().unwrap(), 5);
        assert_eq!(profile.sync_book().last_counter().unwrap(), 2);
        assert_eq!(profile.sync_book().shared_epoch().unwrap(), 1);
        assert_eq!(profile.sync_book().unsnapshotted().unwrap(), 3719);
        assert_eq!(
            profile.sync_book().last_sync().unwrap(),
            Some(1_796_218_847_755)
        );
        assert_eq!(
            profile.sync_book().landmarks().unwrap(),
            [
                crate::Landmark {
                    seq: 4,
                    author: device(SAM),
                    counter: 2
                },
                crate::Landmark {
                    seq: 5,
                    author: device(JORDAN),
                    counter: 3
                },
            ]
        );
        let heads: Vec<String> = sync_state::pushed_heads(&profile.conn)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            heads,
            ["20612febeb536aeca028b8b70aa4f6832fcec66664cb8071d90a593ca404d84e"]
        );
        assert_eq!(
            profile.sync_book().pending(&mut doc).unwrap(),
            0,
            "everything was pushed"
        );
        for (who, counter, again) in [(JORDAN, 3, true), (JORDAN, 4, false), (SAM, 2, true)] {
            let author = device(who);
            assert_eq!(
                sync_state::applied_before_rewind(&profile.conn, author.as_bytes(), counter)
                    .unwrap(),
                again,
                "{who} {counter}"
            );
        }
        let state = profile.sync_book().acl_state().unwrap().unwrap();
        assert_eq!(state.epoch(), 1);
        assert_eq!(profile.sync_book().devices().unwrap().len(), 2);
        assert!(profile.sync_book().epoch_key(1).unwrap().is_some());
        assert_eq!(profile.sync_book().waiting().unwrap(), 0);
        assert!(profile.sync_book().outbox().unwrap().is_empty());

        drop(profile);
        let again = Profile::open(&home, None).unwrap();
        assert_eq!(sync_state::get(&again.conn, Counter::Cursor).unwrap(), 5);
    }

    #[test]
    fn a_format_4_profile_with_an_unreadable_value_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let home = format_4_profile(dir.path());
        let db = home.join("profile.db");
        Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE meta SET value = 'one' WHERE key = 'shared_epoch'",
                [],
            )
            .unwrap();
        let err = Profile::open(&home, None).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("shared_epoch"), "{err}");
        assert!(err.to_string().contains("\"one\""), "{err}");
        let conn = Connection::open(&db).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4, "nothing was migrated");
    }
}
