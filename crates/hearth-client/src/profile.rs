//! A profile: one device's encrypted copy of the couple's space.
//!
//! Layout of the profile directory:
//! - `device.key`: the device's secrets (see `hearth_crypto::keyfile`);
//! - `profile.db`: SQLite (WAL) with the document chunks and private entries, all sealed.
//!
//! A profile exists once `profile.db` does: `create` builds the database under a temporary
//! name and renames it into place as its last step, so an interrupted `create` never leaves
//! something that looks like a profile.

use std::fs;
use std::path::{Path, PathBuf};

use hearth_crypto::{DeviceId, ProfileSecrets, Protection, SecretString, keyfile};
use hearth_doc::authorship::{People, PersonKey};
use hearth_doc::seal::{Commitment, SealKey};
use hearth_doc::{DocError, EntryId, JournalEntry, Millis, OwnKey, PersonId, SpaceDoc};
use hearth_proto::{AclBody, AclRecord};
use rusqlite::Connection;
use zeroize::Zeroizing;

use crate::Error;
use crate::store::{self, ChunkKind};

/// Incremental chunks accumulated before a write folds them into one snapshot. Loading many
/// small chunks costs more than one snapshot, and a snapshot compresses better.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// Where a profile's files live.
#[derive(Debug, Clone)]
pub struct ProfilePaths {
    /// The profile directory.
    pub home: PathBuf,
    /// The device key file.
    pub key_file: PathBuf,
    /// The SQLite database.
    pub database: PathBuf,
}

impl ProfilePaths {
    /// The files of the profile in `home`.
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_owned(),
            key_file: home.join("device.key"),
            database: home.join("profile.db"),
        }
    }
}

/// The profile directory used when neither `--home` nor `HEARTH_HOME` names one: the
/// platform's data directory (for example `~/.local/share/hearth` on Linux).
pub fn default_home() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("hearth"))
}

/// One device's profile, unlocked.
#[derive(Debug)]
pub struct Profile {
    paths: ProfilePaths,
    pub(crate) conn: Connection,
    pub(crate) secrets: ProfileSecrets,
    space_id: String,
    person_id: PersonId,
    /// The TLS settings for its relay, built on first use (see [`Profile::relay_trust`]).
    pub(crate) relay_trust: std::cell::OnceCell<crate::RelayTrust>,
    /// A creation token offered for this command, never stored (see `sync::RelayToken`).
    pub(crate) relay_token: Option<crate::sync::RelayToken>,
}

impl Profile {
    /// Whether a profile exists in `home`.
    pub fn exists(home: &Path) -> bool {
        ProfilePaths::new(home).database.exists()
    }

    /// Whether opening the profile in `home` needs a passphrase.
    ///
    /// # Errors
    /// [`Error::NoProfile`] if there is none; [`Error::Corrupt`] if its key file is missing.
    pub fn needs_passphrase(home: &Path) -> Result<bool, Error> {
        let paths = existing_paths(home)?;
        Ok(keyfile::is_passphrase_protected(&paths.key_file)?)
    }

    /// Creates a new profile in `home` for a person called `name`, starting a new space.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `home` already holds a profile or a key file (nothing is
    /// touched); [`Error::Io`] / [`Error::Database`] if writing fails (nothing is left behind
    /// that looks like a profile).
    pub fn create(
        home: &Path,
        name: &str,
        protection: Protection,
        now: Millis,
    ) -> Result<Profile, Error> {
        let secrets = ProfileSecrets::generate()?;
        // Bound to the person key the space's Genesis will give this device, so the id
        // in the entries and the container they are written into name the same person.
        let person_id = PersonId::of(&PersonKey::from_founding_device(
            *secrets.device.device_id().as_bytes(),
        ));
        let space_id = hex::encode(hearth_crypto::random_bytes::<16>()?);
        let mut doc =
            SpaceDoc::create(secrets.device.device_id().as_bytes(), &person_id, name, now)?;
        let snapshot = doc.save_snapshot();
        Profile::build(
            home,
            protection,
            secrets,
            &person_id,
            &space_id,
            Some(&snapshot),
            &[],
        )
    }

    /// Creates a profile for a device that is joining the existing space `space` as
    /// `person`, with keys it already generated (and used to sign its AddDevice record).
    /// Its document starts empty and fills from the space's history on the first sync.
    ///
    /// # Errors
    /// As [`Profile::create`].
    pub(crate) fn create_joining(
        home: &Path,
        protection: Protection,
        secrets: ProfileSecrets,
        space: &hearth_proto::SpaceId,
        person: &PersonId,
        relay: &str,
        ca: Option<&crate::RelayCa>,
    ) -> Result<Profile, Error> {
        let space_id = hex::encode(space.as_bytes());
        let ca = ca.map(crate::RelayCa::to_pem);
        let mut meta = vec![("joining", "1"), ("relay_url", relay)];
        if let Some(pem) = &ca {
            meta.push((crate::sync_book::RELAY_CA_KEY, pem));
        }
        Profile::build(home, protection, secrets, person, &space_id, None, &meta)
    }

    fn build(
        home: &Path,
        protection: Protection,
        secrets: ProfileSecrets,
        person_id: &PersonId,
        space_id: &str,
        snapshot: Option<&[u8]>,
        extra_meta: &[(&str, &str)],
    ) -> Result<Profile, Error> {
        let paths = ProfilePaths::new(home);
        for path in [&paths.database, &paths.key_file] {
            if path.exists() {
                return Err(Error::AlreadyExists { path: path.clone() });
            }
        }
        create_private_dir(home)?;
        let device_id = secrets.device.device_id();
        let partial = home.join("profile.db.partial");
        let _ = fs::remove_file(&partial);
        let built = (|| {
            let conn = store::open(&partial, home, true)?;
            store::meta::set(&conn, "space_id", space_id)?;
            store::meta::set(&conn, "person_id", person_id.as_str())?;
            store::meta::set(&conn, "device_id", &device_id.to_string())?;
            for (key, value) in extra_meta {
                store::meta::set(&conn, key, value)?;
            }
            if let Some(snapshot) = snapshot {
                let sealed = secrets
                    .storage
                    .seal(&ChunkKind::Snapshot.domain(space_id), snapshot)?;
                store::chunks::append(&conn, ChunkKind::Snapshot, &sealed)?;
            }
            drop(conn);
            keyfile::create(&paths.key_file, &secrets, &protection)?;
            fs::rename(&partial, &paths.database).map_err(|e| io_err(&paths.database, e))
        })();
        if let Err(e) = built {
            let _ = fs::remove_file(&partial);
            if !matches!(
                e,
                Error::Crypto(hearth_crypto::CryptoError::KeyFileExists { .. })
            ) {
                let _ = fs::remove_file(&paths.key_file);
            }
            return Err(e);
        }
        sync_dir(home)?;
        tracing::info!(space = %space_id, device = %device_id.short(), "profile created");
        Profile::open_with(paths, secrets)
    }

    /// Opens the profile in `home`, unlocking its key file with `passphrase` when it has one.
    ///
    /// # Errors
    /// [`Error::NoProfile`] if there is none; [`Error::Crypto`] for a missing or wrong
    /// passphrase or a damaged key file; [`Error::Corrupt`] / [`Error::NewerFormat`] if the
    /// database cannot be used. Nothing on disk is changed by a failed open.
    pub fn open(home: &Path, passphrase: Option<&SecretString>) -> Result<Profile, Error> {
        let paths = existing_paths(home)?;
        let secrets = keyfile::read(&paths.key_file, passphrase)?;
        Profile::open_with(paths, secrets)
    }

    pub(crate) fn open_with(
        paths: ProfilePaths,
        secrets: ProfileSecrets,
    ) -> Result<Profile, Error> {
        let conn = store::open(&paths.database, &paths.home, false)?;
        let corrupt = |reason: String| Error::Corrupt {
            home: paths.home.clone(),
            reason,
        };
        let meta = |key: &str| {
            store::meta::get(&conn, key)?
                .ok_or_else(|| corrupt(format!("its database has no {key}")))
        };
        let space_id = meta("space_id")?;
        let person_id = meta("person_id")?
            .parse::<PersonId>()
            .map_err(|e| corrupt(format!("its person id is invalid: {e}")))?;
        let device_id = meta("device_id")?;
        if device_id != secrets.device.device_id().to_string() {
            return Err(corrupt(format!(
                "{} belongs to another profile than {}",
                paths.key_file.display(),
                paths.database.display()
            )));
        }
        Ok(Profile {
            paths,
            conn,
            secrets,
            space_id,
            person_id,
            relay_trust: std::cell::OnceCell::new(),
            relay_token: None,
        })
    }

    /// Offers `token` for creating this space on its relay, should a sync find it is not
    /// there (yet, or any more) and the relay asks for one. Kept in memory only, and
    /// dropped once it has created the space.
    pub fn offer_relay_token(&mut self, token: crate::sync::RelayToken) {
        self.relay_token = Some(token);
    }

    /// Whether a token offered with [`Profile::offer_relay_token`] is still unused (the
    /// space was on the relay already, or has not reached it yet).
    pub fn relay_token_unused(&self) -> bool {
        self.relay_token.is_some()
    }

    /// The person this profile belongs to.
    pub fn person_id(&self) -> &PersonId {
        &self.person_id
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.secrets.device.device_id()
    }

    /// The space this profile holds (hex).
    pub fn space_id(&self) -> &str {
        &self.space_id
    }

    /// The space id as the protocol knows it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored id is not 16 bytes of hex.
    pub fn space(&self) -> Result<hearth_proto::SpaceId, Error> {
        self.space_id()
            .parse()
            .map_err(|_| self.corrupt("its space id is not valid".into()))
    }

    /// The profile's files.
    pub fn paths(&self) -> &ProfilePaths {
        &self.paths
    }

    /// Loads the document as it is now.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a stored chunk fails its integrity check or does not parse.
    pub fn load(&self) -> Result<SpaceDoc, Error> {
        self.load_from(&self.conn).map(|(doc, _)| doc)
    }

    pub(crate) fn load_from(&self, conn: &Connection) -> Result<(SpaceDoc, i64), Error> {
        let chunks = store::chunks::all(conn)?;
        let last_seq = chunks.last().map_or(0, |c| c.seq);
        let mut plain = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            let bytes = self
                .secrets
                .storage
                .open(&chunk.kind.domain(&self.space_id), &chunk.sealed)
                .map_err(|e| {
                    self.corrupt(format!("document chunk {} is unreadable: {e}", chunk.seq))
                })?;
            plain.push(bytes);
        }
        let Some((first, rest)) = plain.split_first() else {
            // A device that joined keeps no document until the space's history arrives.
            if store::meta::get(conn, "joining")?.is_some() {
                let mut doc = SpaceDoc::replica(self.device_id().as_bytes())?;
                // The space's history arrives into this one: it is screened like any.
                doc.set_people(self.people(conn)?);
                return Ok((doc, last_seq));
            }
            return Err(self.corrupt("it holds no document".into()));
        };
        let mut doc = SpaceDoc::load(
            self.device_id().as_bytes(),
            first,
            rest.iter().map(|c| c.as_slice()),
        )
        .map_err(|e| self.corrupt(format!("its document does not load: {e}")))?;
        doc.add_own_keys(self.own_keys(conn)?);
        doc.set_people(self.people(conn)?);
        Ok((doc, last_seq))
    }

    /// Who is whom in this space, from the ACL chain stored here (the authorship rule's
    /// view, `hearth_doc::authorship`): never from the `person_id` row, which anyone can
    /// edit on their own machine.
    ///
    /// The chain was verified before it was stored (`SyncBook::replace_acl` takes only a
    /// `VerifiedChain`), and the file is this device's own, so the records are only
    /// decoded here, not verified again: this runs on every load, that is on every
    /// command. A space that never met a relay has no chain; this device is then the
    /// only one, founding its own person and the space.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a stored record does not decode or the chain has no Genesis.
    pub(crate) fn people(&self, conn: &Connection) -> Result<People, Error> {
        let stored = store::acl::records(conn)?;
        if stored.is_empty() {
            let own = *self.device_id().as_bytes();
            return Ok(std::iter::once((own, PersonKey::from_founding_device(own)))
                .collect::<People>()
                .with_founder(own));
        }
        let records = stored
            .iter()
            .map(|r| AclRecord::decode(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(format!("its ACL record does not decode: {e}")))?;
        let Some(AclBody::Genesis { device, .. }) = records.first().map(|r| &r.body) else {
            return Err(self.corrupt("its ACL chain does not start with a Genesis".into()));
        };
        let founder = *device.as_bytes();
        Ok(crate::sync_book::people_of(&records).with_founder(founder))
    }

    /// The keys of this device's sealed check-in answers that are not released yet.
    fn own_keys(&self, conn: &Connection) -> Result<Vec<OwnKey>, Error> {
        let mut out = Vec::new();
        for (commitment, sealed) in store::seal_keys::all(conn)? {
            let plain = Zeroizing::new(
                self.secrets
                    .storage
                    .open(&seal_key_domain(&commitment), &sealed)
                    .map_err(|e| {
                        self.corrupt(format!("check-in key {commitment} is unreadable: {e}"))
                    })?,
            );
            let parsed = Commitment::parse(&commitment).ok().and_then(|c| {
                let (key, week) = plain.split_first_chunk::<32>()?;
                let week = std::str::from_utf8(week).ok()?.parse().ok()?;
                Some(OwnKey {
                    week,
                    commitment: c,
                    key: SealKey::from_bytes(*key),
                })
            });
            out.push(parsed.ok_or_else(|| {
                self.corrupt(format!("check-in key {commitment} does not parse"))
            })?);
        }
        Ok(out)
    }

    /// After `doc` changed inside `tx`: releases the keys of this person's sealed answers
    /// that became due (the partner's sealed answers are here now), keeps the keys sealing
    /// made, and forgets the ones now out in the document. Keys are stored in the same
    /// transaction as the change that sealed with them, so neither exists without the
    /// other.
    pub(crate) fn settle_keys(&self, tx: &Connection, doc: &mut SpaceDoc) -> Result<(), Error> {
        let now = Millis(i64::try_from(crate::sync::now_ms()).unwrap_or(i64::MAX));
        let released = doc.release_due_keys(&self.person_id, now)?;
        if !released.is_empty() {
            tracing::debug!(weeks = released.len(), "released check-in keys");
        }
        for own in doc.take_new_keys() {
            let commitment = own.commitment.to_string();
            let mut plain = Zeroizing::new(Vec::with_capacity(40));
            plain.extend_from_slice(own.key.as_bytes());
            plain.extend_from_slice(own.week.to_string().as_bytes());
            let sealed = self
                .secrets
                .storage
                .seal(&seal_key_domain(&commitment), &plain)?;
            store::seal_keys::put(tx, &commitment, &sealed)?;
        }
        for commitment in doc.released_own_keys() {
            store::seal_keys::delete(tx, &commitment.to_string())?;
        }
        Ok(())
    }

    /// Runs `change` on the document and stores what it changed, atomically: either the
    /// whole change is durable when this returns `Ok`, or nothing was written.
    ///
    /// Writers are serialised (SQLite `BEGIN IMMEDIATE`), so two commands run at once on one
    /// profile never build changes on the same base.
    ///
    /// # Errors
    /// Whatever `change` returns (nothing is written), [`Error::DiskFull`], or a load error.
    pub fn write<T>(
        &mut self,
        change: impl FnOnce(&mut SpaceDoc) -> Result<T, DocError>,
    ) -> Result<T, Error> {
        let tx = self.begin_write()?;
        let (mut doc, _) = self.load_from(&tx)?;
        let out = change(&mut doc)?;
        self.settle_keys(&tx, &mut doc)?;
        let mut compact = false;
        if let Some(bytes) = doc.take_unsaved() {
            let sealed = self
                .secrets
                .storage
                .seal(&ChunkKind::Changes.domain(&self.space_id), &bytes)?;
            store::chunks::append(&tx, ChunkKind::Changes, &sealed)?;
            compact = store::chunks::count(&tx)? > COMPACT_AFTER_CHUNKS;
        }
        tx.commit()?;
        if compact {
            // The write above is already durable; a failed compaction only costs speed.
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "compaction failed; the profile is intact");
            }
        }
        Ok(out)
    }

    /// Folds every stored chunk into one snapshot.
    ///
    /// # Errors
    /// A load or database error; the stored chunks are unchanged then.
    pub fn compact(&mut self) -> Result<(), Error> {
        let tx = self.begin_write()?;
        let (mut doc, through) = self.load_from(&tx)?;
        let snapshot = doc.save_snapshot();
        let sealed = self
            .secrets
            .storage
            .seal(&ChunkKind::Snapshot.domain(&self.space_id), &snapshot)?;
        store::chunks::replace(&tx, through, &sealed)?;
        tx.commit()?;
        store::reclaim_free_pages(&self.conn)?;
        tracing::debug!(bytes = snapshot.len(), "profile compacted");
        Ok(())
    }

    /// Keeps a private journal entry: sealed in this profile, never in the shared document.
    ///
    /// # Errors
    /// [`Error::DiskFull`] or another database error; nothing is written then.
    pub fn add_private_journal(&mut self, entry: &JournalEntry) -> Result<(), Error> {
        let json = serde_json::to_vec(entry).map_err(|e| self.corrupt(e.to_string()))?;
        let sealed = self
            .secrets
            .storage
            .seal(&private_domain(&entry.id), &json)?;
        store::private::put(&self.conn, entry.id.as_str(), &sealed)
    }

    /// This profile's private journal entries, oldest first.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if an entry fails its integrity check.
    pub fn private_journal(&self) -> Result<Vec<JournalEntry>, Error> {
        let mut out = Vec::new();
        for (id, sealed) in store::private::all(&self.conn)? {
            let entry_id: EntryId = id
                .parse()
                .map_err(|_| self.corrupt(format!("private entry id {id:?} is invalid")))?;
            let json = self
                .secrets
                .storage
                .open(&private_domain(&entry_id), &sealed)
                .map_err(|e| self.corrupt(format!("private entry {id} is unreadable: {e}")))?;
            let entry: JournalEntry = serde_json::from_slice(&json)
                .map_err(|e| self.corrupt(format!("private entry {id} does not parse: {e}")))?;
            out.push(entry);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// How many document chunks the profile holds (a snapshot plus increments).
    ///
    /// # Errors
    /// A database error.
    pub fn chunk_count(&self) -> Result<usize, Error> {
        store::chunks::count(&self.conn)
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the database's write lock up
    /// front, so the document loaded inside it is the base every concurrent writer waits on.
    pub(crate) fn begin_write(&self) -> Result<rusqlite::Transaction<'_>, Error> {
        store::begin_write(&self.conn)
    }

    pub(crate) fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            home: self.paths.home.clone(),
            reason,
        }
    }
}

fn seal_key_domain(commitment: &str) -> Vec<u8> {
    format!("seal-key/{commitment}").into_bytes()
}

fn private_domain(id: &EntryId) -> Vec<u8> {
    format!("private/{}", id.as_str()).into_bytes()
}

/// The paths of the profile in `home`, once both of its files are known to be there.
pub(crate) fn existing_paths(home: &Path) -> Result<ProfilePaths, Error> {
    let paths = ProfilePaths::new(home);
    if !paths.database.exists() {
        return Err(Error::NoProfile {
            home: home.to_owned(),
        });
    }
    if !paths.key_file.exists() {
        return Err(Error::Corrupt {
            home: paths.home.clone(),
            reason: format!("its key file {} is missing", paths.key_file.display()),
        });
    }
    Ok(paths)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io_err(dir, e))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_doc::JournalDraft;

    fn new_profile(dir: &Path) -> Profile {
        Profile::create(dir, "Sam", Protection::None, Millis(1_700_000_000_000)).unwrap()
    }

    fn appreciate(profile: &mut Profile, text: &str) {
        let me = profile.person_id().clone();
        profile
            .write(|doc| doc.add_appreciation(&me, text, Millis::now()))
            .unwrap();
    }

    fn texts(profile: &Profile) -> Vec<String> {
        let mut t: Vec<String> = profile
            .load()
            .unwrap()
            .appreciations()
            .into_iter()
            .map(|a| a.text)
            .collect();
        t.sort();
        t
    }

    #[test]
    fn two_handles_writing_in_turn_build_on_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("p");
        let mut a = new_profile(&home);
        let mut b = Profile::open(&home, None).unwrap();
        for i in 0..5 {
            appreciate(&mut a, &format!("a{i}"));
            appreciate(&mut b, &format!("b{i}"));
        }
        let expected: Vec<String> = (0..5)
            .flat_map(|i| [format!("a{i}"), format!("b{i}")])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(texts(&a), expected);
        assert_eq!(texts(&b), expected);
    }

    #[test]
    fn compaction_keeps_everything_in_one_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("p");
        let mut p = new_profile(&home);
        for i in 0..COMPACT_AFTER_CHUNKS + 5 {
            appreciate(&mut p, &format!("thanks {i:03}"));
        }
        assert!(p.chunk_count().unwrap() < COMPACT_AFTER_CHUNKS);
        assert_eq!(texts(&p).len(), COMPACT_AFTER_CHUNKS + 5);
        p.compact().unwrap();
        assert_eq!(p.chunk_count().unwrap(), 1);
        let reopened = Profile::open(&home, None).unwrap();
        assert_eq!(texts(&reopened).len(), COMPACT_AFTER_CHUNKS + 5);
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("p");
        let mut p = new_profile(&home);
        let before = p.chunk_count().unwrap();
        let me = p.person_id().clone();
        let err = p.write(|doc| doc.add_appreciation(&me, "   ", Millis::now()));
        assert!(matches!(err, Err(Error::Doc(_))));
        assert_eq!(p.chunk_count().unwrap(), before);
    }

    #[test]
    fn a_key_file_from_another_profile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        new_profile(&one);
        new_profile(&two);
        fs::copy(two.join("device.key"), one.join("device.key")).unwrap();
        let err = Profile::open(&one, None).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("another profile"), "{err}");
    }

    #[test]
    fn private_entries_cannot_be_swapped_between_ids() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("p");
        let mut p = new_profile(&home);
        let me = p.person_id().clone();
        for body in ["first secret", "second secret"] {
            let draft = JournalDraft {
                title: None,
                body: body.into(),
                tags: vec![],
            };
            p.add_private_journal(&JournalEntry::new_private(me.clone(), draft, Millis::now()))
                .unwrap();
        }
        assert_eq!(p.private_journal().unwrap().len(), 2);
        // Move one sealed entry under the other's id: it must not open.
        p.conn
            .execute(
                "UPDATE private_entries SET sealed = (SELECT sealed FROM private_entries ORDER BY id LIMIT 1)
                 WHERE id = (SELECT id FROM private_entries ORDER BY id DESC LIMIT 1)",
                [],
            )
            .unwrap();
        assert!(matches!(p.private_journal(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn create_refuses_an_existing_profile_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("p");
        let mut p = new_profile(&home);
        appreciate(&mut p, "keep");
        drop(p);
        let err = Profile::create(&home, "Other", Protection::None, Millis::now()).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }));
        assert_eq!(texts(&Profile::open(&home, None).unwrap()), vec!["keep"]);
    }
}
