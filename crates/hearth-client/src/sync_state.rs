//! What a profile keeps to sync: the relay it uses, the space's ACL chain, its epoch keys,
//! the outbox of envelopes the relay has not acknowledged, the relay cursor and the set of
//! envelopes already applied.
//!
//! Each step that moves data and the bookkeeping that describes it happen in one
//! transaction: sealing a push and advancing `pushed_heads` and the device counter;
//! applying an incoming envelope, recording it as seen and advancing the cursor. A crash
//! between steps therefore repeats a step (harmless: the relay dedupes pushes by counter,
//! and `seen` dedupes incoming envelopes) but never skips one.

use hearth_crypto::{EpochKey, envelope};
use hearth_doc::ChangeHash;
use hearth_proto::{DeviceId, Envelope, EnvelopeHeader, EnvelopeKind, SpaceId};
use rusqlite::{OptionalExtension, params};

use crate::store::{self, ChunkKind};
use crate::{Error, Profile};

/// An envelope named by its place on the relay: see [`Profile::landmarks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landmark {
    /// Its sequence number on the relay.
    pub seq: u64,
    /// Its author.
    pub author: DeviceId,
    /// Its author's counter for it.
    pub counter: u64,
}

impl Landmark {
    /// Compares the relay's envelope `bytes` at `seq` (the first it holds at or after the
    /// landmark's place) with the landmark: `Some(true)` if it is the same envelope in the
    /// same place, `Some(false)` if not (the relay's history differs), `None` if it is a
    /// snapshot (the relay compacted the landmark away).
    pub fn check(&self, seq: u64, bytes: &[u8]) -> Option<bool> {
        let Ok(envelope) = Envelope::decode(bytes) else {
            return Some(false);
        };
        let header = envelope.header();
        if matches!(header.kind, EnvelopeKind::Snapshot { .. }) {
            return None;
        }
        Some(seq == self.seq && header.author == self.author && header.counter == self.counter)
    }

    fn at(seq: u64, header: &EnvelopeHeader) -> Landmark {
        Landmark {
            seq,
            author: header.author,
            counter: header.counter,
        }
    }

    /// As kept in the profile's `meta`: `SEQ AUTHOR-HEX COUNTER`.
    fn encode(&self) -> String {
        format!(
            "{} {} {}",
            self.seq,
            hex::encode(self.author.as_bytes()),
            self.counter
        )
    }

    fn decode(stored: &str) -> Option<Landmark> {
        let mut parts = stored.split(' ');
        let seq = parts.next()?.parse().ok()?;
        let author = hex::decode(parts.next()?).ok()?;
        let counter = parts.next()?.parse().ok()?;
        Some(Landmark {
            seq,
            author: DeviceId::from_bytes(author.try_into().ok()?),
            counter,
        })
    }
}

fn get_landmark(conn: &rusqlite::Connection, key: &str) -> Result<Option<Landmark>, Error> {
    Ok(store::get_meta(conn, key)?.and_then(|v| Landmark::decode(&v)))
}

/// Moves the cursor forward to `seq` (never back), naming the envelope there (`header`, if
/// it decoded) as the cursor's landmark.
fn advance_cursor(
    tx: &rusqlite::Transaction<'_>,
    seq: u64,
    header: Option<&EnvelopeHeader>,
) -> Result<(), Error> {
    if seq <= meta_u64(tx, "cursor")?.unwrap_or(0) {
        return Ok(());
    }
    store::set_meta(tx, "cursor", &seq.to_string())?;
    match header {
        Some(h) => store::set_meta(tx, "cursor_mark", &Landmark::at(seq, h).encode())?,
        None => {
            tx.execute("DELETE FROM meta WHERE key = 'cursor_mark'", [])?;
        }
    }
    Ok(())
}

/// What happened to an incoming envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// Verified, decrypted and applied.
    Applied,
    /// Already applied before (same author and counter): a replay, ignored.
    Replayed,
    /// Verified, but its changes build on changes that have not arrived (the relay
    /// reordered them, or an earlier one was refused). Kept, and applied as soon as what it
    /// needs arrives.
    Waiting,
    /// Verified and taken, but it brought nothing new (this device's own envelope coming
    /// back, or changes that arrived another way).
    Known,
    /// Refused: it failed to verify, decrypt or apply. Nothing from it was applied.
    Rejected {
        /// Why, for the warning shown to the user.
        reason: String,
    },
}

impl Profile {
    /// The space id as the protocol knows it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored id is not 16 bytes of hex.
    pub fn space(&self) -> Result<SpaceId, Error> {
        self.space_id()
            .parse()
            .map_err(|_| self.corrupt("its space id is not valid".into()))
    }

    /// The relay this profile syncs with, if one is set.
    ///
    /// # Errors
    /// A database error.
    pub fn relay(&self) -> Result<Option<String>, Error> {
        store::get_meta(&self.conn, "relay_url")
    }

    /// Sets the relay this profile syncs with.
    ///
    /// # Errors
    /// A database error.
    pub fn set_relay(&mut self, url: &str) -> Result<(), Error> {
        store::set_meta(&self.conn, "relay_url", url)
    }

    /// The space's ACL chain as last verified, in order.
    ///
    /// # Errors
    /// A database error.
    pub fn acl_records(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM acl ORDER BY idx")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the stored ACL chain with `records`, which the caller has verified.
    ///
    /// # Errors
    /// A database error; the old chain is kept then.
    pub fn replace_acl(&mut self, records: &[Vec<u8>]) -> Result<(), Error> {
        let tx = self.begin_write()?;
        tx.execute("DELETE FROM acl", [])?;
        for (i, record) in records.iter().enumerate() {
            tx.execute(
                "INSERT INTO acl (idx, record) VALUES (?1, ?2)",
                params![i as i64, record],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn epoch_domain(&self, epoch: u32) -> Vec<u8> {
        format!("epoch/{}/{epoch}", self.space_id()).into_bytes()
    }

    /// The content key of `epoch`, if this device holds it.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored key fails its integrity check.
    pub fn epoch_key(&self, epoch: u32) -> Result<Option<EpochKey>, Error> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM epoch_keys WHERE epoch = ?1",
                [epoch],
                |r| r.get(0),
            )
            .optional()?;
        sealed
            .map(|s| {
                self.secrets
                    .storage
                    .open_epoch_key(&self.epoch_domain(epoch), &s)
                    .map_err(|e| {
                        self.corrupt(format!("the key of epoch {epoch} is unreadable: {e}"))
                    })
            })
            .transpose()
    }

    /// Keeps the content key of `epoch`, sealed.
    ///
    /// # Errors
    /// A database error.
    pub fn put_epoch_key(&mut self, epoch: u32, key: &EpochKey) -> Result<(), Error> {
        let sealed = self
            .secrets
            .storage
            .seal_epoch_key(&self.epoch_domain(epoch), key)?;
        self.conn.execute(
            "INSERT INTO epoch_keys (epoch, sealed) VALUES (?1, ?2)
             ON CONFLICT (epoch) DO UPDATE SET sealed = excluded.sealed",
            params![epoch, sealed],
        )?;
        Ok(())
    }

    /// The newest epoch whose key this device made and has wrapped for the other members
    /// (0 before any).
    ///
    /// # Errors
    /// A database error.
    pub fn shared_epoch(&self) -> Result<u32, Error> {
        Ok(store::get_meta(&self.conn, "shared_epoch")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Records that the key of `epoch` is wrapped for every other member.
    ///
    /// # Errors
    /// A database error.
    pub fn set_shared_epoch(&mut self, epoch: u32) -> Result<(), Error> {
        store::set_meta(&self.conn, "shared_epoch", &epoch.to_string())
    }

    /// The relay sequence number of the last envelope applied (0 before the first).
    ///
    /// # Errors
    /// A database error.
    pub fn cursor(&self) -> Result<u64, Error> {
        Ok(meta_u64(&self.conn, "cursor")?.unwrap_or(0))
    }

    /// The counter of the last envelope this device sealed (0 before the first): once its
    /// outbox is empty, the relay has committed every counter from 1 to this.
    ///
    /// # Errors
    /// A database error.
    pub fn last_counter(&self) -> Result<u64, Error> {
        Ok(meta_u64(&self.conn, "next_counter")?.map_or(0, |next| next.saturating_sub(1)))
    }

    /// Seals every change the relay has not been given yet into envelopes of `epoch` (as
    /// few as fit the envelope limit), adds them to the outbox and returns the first one's
    /// counter; `None` if there is nothing new.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the key of `epoch` is missing or the stored heads are invalid.
    pub fn stage_outgoing(&mut self, epoch: u32) -> Result<Option<u64>, Error> {
        self.stage_outgoing_within(epoch, &hearth_proto::Limits::default())
    }

    /// [`stage_outgoing`](Self::stage_outgoing) with envelopes sized for the `limits` a relay
    /// announced.
    ///
    /// # Errors
    /// As [`stage_outgoing`](Self::stage_outgoing).
    pub fn stage_outgoing_within(
        &mut self,
        epoch: u32,
        limits: &hearth_proto::Limits,
    ) -> Result<Option<u64>, Error> {
        let key = self
            .epoch_key(epoch)?
            .ok_or_else(|| self.corrupt(format!("it has no key for epoch {epoch}")))?;
        let space = self.space()?;
        let tx = self.begin_write()?;
        let (mut doc, _) = self.load_from(&tx)?;
        let pushed = parse_heads(store::get_meta(&tx, "pushed_heads")?.as_deref())
            .map_err(|e| self.corrupt(e))?;
        // Room for the envelope's header, nonce, tag and signature.
        let budget = limits.envelope_bytes().saturating_sub(1024);
        let batches = doc.changes_since_batched(&pushed, budget)?;
        if batches.is_empty() {
            return Ok(None);
        }
        let first = meta_u64(&tx, "next_counter")?.unwrap_or(1);
        let mut counter = first;
        for changes in &batches {
            let header = EnvelopeHeader {
                kind: EnvelopeKind::Changes,
                space,
                epoch,
                author: self.device_id(),
                counter,
            };
            let sealed = envelope::seal(&self.secrets.device, &key, header, changes)?;
            tx.execute(
                "INSERT INTO outbox (counter, envelope) VALUES (?1, ?2)",
                params![counter as i64, sealed.encode()],
            )?;
            counter += 1;
        }
        let heads: Vec<String> = doc.heads().iter().map(ToString::to_string).collect();
        store::set_meta(&tx, "pushed_heads", &heads.join(","))?;
        store::set_meta(&tx, "next_counter", &counter.to_string())?;
        tx.commit()?;
        Ok(Some(first))
    }

    /// The relay no longer holds the history this device received: its head is below this
    /// device's [`landmarks`](Self::landmarks), or another envelope sits where one of them
    /// was. It was restored from an older backup (or a copy of its files) or lost its
    /// database, and may have taken new writes since. Rewinds the cursor to the start, so
    /// the next sync reads the relay's whole history again (what this device already has is
    /// recognised and skipped), and marks everything as not yet pushed, so it seals
    /// the whole document this device holds (its own changes and everyone else's) and
    /// pushes it again: the relay gets back what it lost, and every device converges.
    /// Envelopes still in the outbox stay there and go out as well.
    ///
    /// From then on, the relay delivering again an envelope this device had already applied
    /// is expected, not reported as a replay: reading the history again brings them all, and
    /// a device whose `Committed` the restore lost pushes them once more.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub fn relay_rewound(&mut self) -> Result<(), Error> {
        let tx = self.begin_write()?;
        store::set_meta(&tx, "cursor", "0")?;
        store::set_meta(&tx, "pushed_heads", "")?;
        // Per author, the highest counter applied so far: what may come again.
        let mut stmt = tx.prepare("SELECT device, MAX(counter) FROM seen GROUP BY device")?;
        let applied = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?
            .map(|row| row.map(|(device, counter)| format!("{}:{counter}", hex::encode(device))))
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        store::set_meta(&tx, "applied_before_rewind", &applied.join(","))?;
        tx.execute(
            "DELETE FROM meta WHERE key IN ('cursor_mark', 'own_mark')",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Moves the cursor past `seq`, an envelope refused before it was opened (`header`, if
    /// it decoded), so it is not read and reported again.
    ///
    /// # Errors
    /// A database error.
    pub fn pass(&mut self, seq: u64, header: Option<&EnvelopeHeader>) -> Result<(), Error> {
        let tx = self.begin_write()?;
        advance_cursor(&tx, seq, header)?;
        tx.commit()?;
        Ok(())
    }

    /// How far back (in relay sequence numbers) a sync re-reads to check this device's own
    /// last committed envelope: beyond it, the check is skipped rather than re-reading more.
    pub const OWN_LANDMARK_REACH: u64 = 32;

    /// The envelopes this device can name by their place on the relay, in order: the one at
    /// its cursor (the last it applied) and the last of its own the relay committed (if it
    /// is at most [`OWN_LANDMARK_REACH`](Self::OWN_LANDMARK_REACH) behind the cursor). An
    /// honest relay still holds them there; [`crate::sync`] checks that on every sync, to
    /// notice a relay restored from a backup even after it took new writes. The own one
    /// matters most: only this device can ever push its envelopes, and once committed it
    /// never pushes one again, so nothing but the original can sit in its place; a partner
    /// re-pushing an envelope whose `Committed` the restore lost could land it at the very
    /// seq this device had it at.
    ///
    /// # Errors
    /// A database error.
    pub fn landmarks(&self) -> Result<Vec<Landmark>, Error> {
        let cursor = self.cursor()?;
        // Only while it still names the cursor's place.
        let received = get_landmark(&self.conn, "cursor_mark")?.filter(|m| m.seq == cursor);
        let own = get_landmark(&self.conn, "own_mark")?
            .filter(|m| m.seq + Self::OWN_LANDMARK_REACH >= cursor);
        let mut marks: Vec<Landmark> = received.into_iter().chain(own).collect();
        marks.sort_by_key(|m| m.seq);
        marks.dedup_by_key(|m| m.seq);
        Ok(marks)
    }

    /// Bytes of envelopes sent or received since this device last pushed a snapshot.
    ///
    /// # Errors
    /// A database error.
    pub fn unsnapshotted(&self) -> Result<u64, Error> {
        Ok(meta_u64(&self.conn, "unsnapshotted")?.unwrap_or(0))
    }

    /// Adds `bytes` to [`unsnapshotted`](Self::unsnapshotted).
    ///
    /// # Errors
    /// A database error.
    pub fn add_unsnapshotted(&mut self, bytes: u64) -> Result<(), Error> {
        let total = self.unsnapshotted()?.saturating_add(bytes);
        store::set_meta(&self.conn, "unsnapshotted", &total.to_string())
    }

    /// Seals the whole document as a snapshot envelope of `epoch` standing in for every
    /// envelope up to relay seq `covers_seq`, using up one device counter; `None` if it
    /// would be larger than `max_bytes`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the key of `epoch` is missing.
    pub fn seal_snapshot(
        &mut self,
        epoch: u32,
        covers_seq: u64,
        max_bytes: usize,
    ) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let key = self
            .epoch_key(epoch)?
            .ok_or_else(|| self.corrupt(format!("it has no key for epoch {epoch}")))?;
        let space = self.space()?;
        let tx = self.begin_write()?;
        let (mut doc, _) = self.load_from(&tx)?;
        let whole = doc.save_snapshot();
        if whole.len() + 1024 > max_bytes {
            return Ok(None);
        }
        let counter = meta_u64(&tx, "next_counter")?.unwrap_or(1);
        let header = EnvelopeHeader {
            kind: EnvelopeKind::Snapshot { covers_seq },
            space,
            epoch,
            author: self.device_id(),
            counter,
        };
        let sealed = envelope::seal(&self.secrets.device, &key, header, &whole)?;
        store::set_meta(&tx, "next_counter", &(counter + 1).to_string())?;
        // Its own snapshot counts as seen, like its own changes coming back.
        tx.execute(
            "INSERT OR IGNORE INTO seen (device, counter) VALUES (?1, ?2)",
            params![&self.device_id().as_bytes()[..], counter as i64],
        )?;
        tx.commit()?;
        Ok(Some((counter, sealed.encode())))
    }

    /// Records that the relay holds a snapshot of everything up to `covers_seq`.
    ///
    /// # Errors
    /// A database error.
    pub fn snapshot_pushed(&mut self, covers_seq: u64) -> Result<(), Error> {
        store::set_meta(&self.conn, "snapshot_seq", &covers_seq.to_string())?;
        store::set_meta(&self.conn, "unsnapshotted", "0")
    }

    /// Records a completed sync.
    ///
    /// # Errors
    /// A database error.
    pub fn mark_synced(&mut self, at_ms: u64) -> Result<(), Error> {
        store::set_meta(&self.conn, "last_sync_at", &at_ms.to_string())
    }

    /// When the last sync completed (UTC milliseconds).
    ///
    /// # Errors
    /// A database error.
    pub fn last_sync(&self) -> Result<Option<u64>, Error> {
        meta_u64(&self.conn, "last_sync_at")
    }

    /// How many local changes the relay does not have yet: sealed envelopes waiting in the
    /// outbox, plus one if `doc` holds changes not sealed yet.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored heads are invalid.
    pub fn pending(&self, doc: &mut hearth_doc::SpaceDoc) -> Result<usize, Error> {
        let pushed = parse_heads(store::get_meta(&self.conn, "pushed_heads")?.as_deref())
            .map_err(|e| self.corrupt(e))?;
        let unsealed = usize::from(!doc.changes_since(&pushed).is_empty());
        Ok(self.outbox()?.len() + unsealed)
    }

    /// The envelopes waiting for the relay's `Committed`, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT counter, envelope FROM outbox ORDER BY counter")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The relay committed the envelope with `counter` as `seq`.
    ///
    /// # Errors
    /// A database error.
    pub fn acknowledge(&mut self, counter: u64, seq: u64) -> Result<(), Error> {
        let tx = self.begin_write()?;
        tx.execute("DELETE FROM outbox WHERE counter = ?1", [counter as i64])?;
        if get_landmark(&tx, "own_mark")?.is_none_or(|own| seq > own.seq) {
            let own = Landmark {
                seq,
                author: self.device_id(),
                counter,
            };
            store::set_meta(&tx, "own_mark", &own.encode())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies the envelope the relay delivered as `seq`, sealed under `key` (its epoch's),
    /// atomically with recording it as seen and advancing the cursor. The caller has
    /// checked the author against the ACL. An envelope that fails is recorded as passed
    /// (so syncing goes on) and nothing from it is applied. One whose changes build on
    /// changes not here yet is kept, sealed, and applied with the envelope that completes
    /// it.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub fn apply_incoming(
        &mut self,
        seq: u64,
        envelope: &Envelope,
        key: &EpochKey,
    ) -> Result<Incoming, Error> {
        let mut outcomes = self.apply_incoming_all(&[(seq, envelope.clone(), key.clone())])?;
        Ok(outcomes.pop().unwrap_or(Incoming::Known))
    }

    /// [`apply_incoming`](Self::apply_incoming) for several envelopes (`(seq, envelope,
    /// key)`, in the relay's order) in one transaction over one load of the document: a
    /// batch from the relay costs one load and one write, not one per envelope.
    ///
    /// # Errors
    /// A database error; nothing changed then.
    pub fn apply_incoming_all(
        &mut self,
        items: &[(u64, Envelope, EpochKey)],
    ) -> Result<Vec<Incoming>, Error> {
        let space = self.space()?;
        let tx = self.begin_write()?;
        let (mut doc, _) = self.load_from(&tx)?;
        let before = doc.heads();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut last_seq = 0;
        let mut last_mark = None;
        let before_rewind = store::get_meta(&tx, "applied_before_rewind")?.unwrap_or_default();
        let expected_again = |author: &[u8], counter: i64| {
            let author = hex::encode(author);
            before_rewind.split(',').any(|entry| {
                entry.split_once(':').is_some_and(|(a, c)| {
                    a == author && c.parse::<i64>().is_ok_and(|c| counter <= c)
                })
            })
        };
        for (seq, envelope, key) in items {
            if *seq >= last_seq {
                last_seq = *seq;
                last_mark = Some(*envelope.header());
            }
            let header = *envelope.header();
            let author = &header.author.as_bytes()[..];
            let counter = header.counter as i64;
            // Verified first, so a damaged copy of an envelope applied before is reported
            // as damaged, not as a replay.
            let outcome = match envelope::open(envelope, &space, header.epoch, key) {
                Err(e) => Incoming::Rejected {
                    reason: e.to_string(),
                },
                Ok(plaintext) => {
                    let seen: bool = tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM seen WHERE device = ?1 AND counter = ?2)",
                        params![author, counter],
                        |r| r.get(0),
                    )?;
                    if seen && expected_again(author, counter) {
                        // Read or pushed again after the relay was found restored: expected.
                        Incoming::Known
                    } else if seen {
                        Incoming::Replayed
                    } else {
                        self.apply_verified(&tx, &mut doc, author, counter, &plaintext)?
                    }
                }
            };
            outcomes.push(outcome);
        }
        // The relay has what it delivered: count those changes as pushed, so the next push
        // carries only this device's own.
        let after = doc.heads();
        let changed = after != before;
        if changed {
            let stored = store::get_meta(&tx, "pushed_heads")?;
            let mut pushed = parse_heads(stored.as_deref()).map_err(|e| self.corrupt(e))?;
            pushed.extend(after.iter().filter(|h| !before.contains(h)).copied());
            if doc.changes_since(&pushed).is_empty() {
                pushed = after;
            }
            let joined: Vec<String> = pushed.iter().map(ToString::to_string).collect();
            store::set_meta(&tx, "pushed_heads", &joined.join(","))?;
        }
        // The partner's sealed answers may be here now: release this person's keys for those
        // weeks. That change is this device's own, so it is left out of `pushed_heads`.
        if changed {
            self.settle_keys(&tx, &mut doc)?;
        }
        if let Some(bytes) = doc.take_unsaved() {
            let sealed = self
                .secrets
                .storage
                .seal(&ChunkKind::Changes.domain(self.space_id()), &bytes)?;
            store::append_chunk(&tx, ChunkKind::Changes, &sealed)?;
        }
        advance_cursor(&tx, last_seq, last_mark.as_ref())?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// How many envelopes wait for earlier changes that have not arrived.
    ///
    /// # Errors
    /// A database error.
    pub fn waiting(&self) -> Result<usize, Error> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM parked", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn parked_domain(&self) -> Vec<u8> {
        format!("parked/{}", self.space_id()).into_bytes()
    }

    /// Applies a verified envelope's plaintext to `doc`, together with every parked one,
    /// and records it as seen (or parked) in `tx`. Saving `doc` is the caller's.
    fn apply_verified(
        &self,
        tx: &rusqlite::Transaction<'_>,
        doc: &mut hearth_doc::SpaceDoc,
        author: &[u8],
        counter: i64,
        plaintext: &[u8],
    ) -> Result<Incoming, Error> {
        let before = doc.heads();
        if let Err(e) = doc.apply(plaintext) {
            return Ok(Incoming::Rejected {
                reason: e.to_string(),
            });
        }
        // Earlier arrivals that waited for changes this one may bring. Automerge holds
        // back what it cannot apply yet, in memory only, so they are applied again from
        // their sealed copies; after that the document waits exactly for what is missing.
        let parked: Vec<Vec<u8>> = {
            let mut stmt = tx.prepare_cached("SELECT sealed FROM parked")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !parked.is_empty() {
            let domain = self.parked_domain();
            let opened = parked
                .iter()
                .map(|sealed| self.secrets.storage.open(&domain, sealed))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.corrupt(format!("a waiting envelope is unreadable: {e}")))?;
            doc.apply_all(opened.iter().map(|p| p.as_slice()))?;
        }
        if doc.waiting() {
            let sealed = self
                .secrets
                .storage
                .seal(&self.parked_domain(), plaintext)?;
            tx.execute(
                "INSERT INTO parked (device, counter, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![author, counter, sealed],
            )?;
            return Ok(Incoming::Waiting);
        }
        // Everything is complete now: the parked envelopes count as applied too.
        if !parked.is_empty() {
            tx.execute(
                "INSERT OR IGNORE INTO seen (device, counter) SELECT device, counter FROM parked",
                [],
            )?;
            tx.execute("DELETE FROM parked", [])?;
        }
        tx.execute(
            "INSERT INTO seen (device, counter) VALUES (?1, ?2)",
            params![author, counter],
        )?;
        Ok(if doc.heads() == before {
            Incoming::Known
        } else {
            Incoming::Applied
        })
    }
}

fn meta_u64(conn: &rusqlite::Connection, key: &str) -> Result<Option<u64>, Error> {
    Ok(store::get_meta(conn, key)?.and_then(|v| v.parse().ok()))
}

fn parse_heads(stored: Option<&str>) -> Result<Vec<ChangeHash>, String> {
    match stored {
        None | Some("") => Ok(Vec::new()),
        Some(s) => s
            .split(',')
            .map(|h| {
                h.parse::<ChangeHash>()
                    .map_err(|_| format!("its pushed heads are invalid: {h:?}"))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_crypto::Protection;
    use hearth_doc::Millis;

    fn profile(dir: &std::path::Path, name: &str) -> Profile {
        Profile::create(&dir.join(name), name, Protection::None, Millis(1)).unwrap()
    }

    fn appreciate(p: &mut Profile, text: &str) {
        let me = p.person_id().clone();
        p.write(|doc| doc.add_appreciation(&me, text, Millis::now()))
            .unwrap();
    }

    /// A copy of a profile's directory: the same space and document, as a second device
    /// would hold after pairing (pairing itself is the sync engine's job).
    fn copy_profile(from: &std::path::Path, to: &std::path::Path) -> Profile {
        std::fs::create_dir_all(to).unwrap();
        for f in ["device.key", "profile.db"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
        Profile::open(to, None).unwrap()
    }

    #[test]
    fn staged_changes_open_on_another_device_and_replays_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));

        appreciate(&mut a, "thank you for the walk");
        let counter = a.stage_outgoing(0).unwrap().unwrap();
        assert_eq!(counter, 1);
        assert_eq!(a.stage_outgoing(0).unwrap(), None, "nothing new to push");
        let outbox = a.outbox().unwrap();
        assert_eq!(outbox.len(), 1);
        assert!(
            !outbox[0].1.windows(10).any(|w| w == b"thank you "),
            "ciphertext only"
        );

        let env = Envelope::decode(&outbox[0].1).unwrap();
        assert_eq!(b.apply_incoming(1, &env, &key).unwrap(), Incoming::Applied);
        let texts: Vec<String> = b
            .load()
            .unwrap()
            .appreciations()
            .into_iter()
            .map(|x| x.text)
            .collect();
        assert_eq!(texts, vec!["thank you for the walk"]);
        assert_eq!(b.cursor().unwrap(), 1);
        // The same envelope again, even under a new seq: a replay, applied once.
        assert_eq!(b.apply_incoming(2, &env, &key).unwrap(), Incoming::Replayed);
        assert_eq!(b.cursor().unwrap(), 2);
        assert_eq!(b.load().unwrap().appreciations().len(), 1);

        a.acknowledge(counter, 1).unwrap();
        assert!(a.outbox().unwrap().is_empty());
        appreciate(&mut a, "and for dinner");
        assert_eq!(
            a.stage_outgoing(0).unwrap(),
            Some(2),
            "counters keep rising"
        );
        let env = Envelope::decode(&a.outbox().unwrap()[0].1).unwrap();
        assert_eq!(b.apply_incoming(3, &env, &key).unwrap(), Incoming::Applied);
        assert_eq!(
            b.load().unwrap().appreciations().len(),
            2,
            "only the new change was sent"
        );
    }

    #[test]
    fn after_a_rewind_what_was_applied_before_may_come_again_but_later_replays_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));
        let mut sealed = |text: &str| {
            appreciate(&mut a, text);
            a.stage_outgoing(0).unwrap();
            let (counter, bytes) = a.outbox().unwrap().pop().unwrap();
            a.acknowledge(counter, counter).unwrap();
            Envelope::decode(&bytes).unwrap()
        };
        let first = sealed("before the restore");
        assert_eq!(
            b.apply_incoming(1, &first, &key).unwrap(),
            Incoming::Applied
        );

        // The relay was found restored: B reads everything again, and A pushes again what
        // the restore lost. Neither is a replay worth a warning.
        b.relay_rewound().unwrap();
        assert_eq!(b.cursor().unwrap(), 0);
        assert_eq!(b.apply_incoming(1, &first, &key).unwrap(), Incoming::Known);
        assert_eq!(b.apply_incoming(7, &first, &key).unwrap(), Incoming::Known);

        // What arrives after the rewind is judged as ever.
        let second = sealed("after the restore");
        assert_eq!(
            b.apply_incoming(8, &second, &key).unwrap(),
            Incoming::Applied
        );
        assert_eq!(
            b.apply_incoming(9, &second, &key).unwrap(),
            Incoming::Replayed
        );
        assert_eq!(b.load().unwrap().appreciations().len(), 2);
    }

    #[test]
    fn a_tampered_or_foreign_envelope_applies_nothing_and_syncing_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.put_epoch_key(0, &key).unwrap();
        appreciate(&mut a, "hello");
        a.stage_outgoing(0).unwrap();
        let mut bytes = a.outbox().unwrap()[0].1.clone();
        let before = a.chunk_count().unwrap();
        // Another space's profile refuses it.
        let mut c = profile(dir.path(), "c");
        let env = Envelope::decode(&bytes).unwrap();
        assert!(matches!(
            c.apply_incoming(5, &env, &key).unwrap(),
            Incoming::Rejected { .. }
        ));
        assert_eq!(c.cursor().unwrap(), 5, "the cursor passes it");
        // A flipped ciphertext byte fails the signature.
        let mid = bytes.len() - 80;
        bytes[mid] ^= 1;
        if let Ok(bad) = Envelope::decode(&bytes) {
            assert!(matches!(
                a.apply_incoming(6, &bad, &key).unwrap(),
                Incoming::Rejected { .. }
            ));
        }
        assert_eq!(a.chunk_count().unwrap(), before);
    }

    #[test]
    fn an_envelope_that_arrives_before_what_it_builds_on_waits_and_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        let key = EpochKey::generate().unwrap();
        a.put_epoch_key(0, &key).unwrap();
        let mut b = copy_profile(&dir.path().join("a"), &dir.path().join("b"));
        appreciate(&mut a, "first");
        a.stage_outgoing(0).unwrap();
        appreciate(&mut a, "second, which builds on the first");
        a.stage_outgoing(0).unwrap();
        let outbox = a.outbox().unwrap();
        let first = Envelope::decode(&outbox[0].1).unwrap();
        let second = Envelope::decode(&outbox[1].1).unwrap();

        // The relay hands them over the wrong way round.
        assert_eq!(
            b.apply_incoming(1, &second, &key).unwrap(),
            Incoming::Waiting
        );
        assert_eq!(b.waiting().unwrap(), 1);
        assert!(b.load().unwrap().appreciations().is_empty());
        drop(b);
        // Kept across a restart, sealed.
        let mut b = Profile::open(&dir.path().join("b"), None).unwrap();
        assert_eq!(
            b.apply_incoming(2, &first, &key).unwrap(),
            Incoming::Applied
        );
        assert_eq!(b.waiting().unwrap(), 0);
        assert_eq!(b.load().unwrap().appreciations().len(), 2);
        // Both count as seen now.
        assert_eq!(
            b.apply_incoming(3, &second, &key).unwrap(),
            Incoming::Replayed
        );
        drop(b);
        for file in std::fs::read_dir(dir.path().join("b")).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(6).any(|w| w == b"second"),
                "parked plaintext is sealed"
            );
        }
    }

    #[test]
    fn sync_state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = profile(dir.path(), "a");
        a.set_relay("ws://127.0.0.1:7878/v1/sync").unwrap();
        a.replace_acl(&[b"genesis".to_vec(), b"invite".to_vec()])
            .unwrap();
        let key = EpochKey::generate().unwrap();
        a.put_epoch_key(3, &key).unwrap();
        drop(a);
        let a = Profile::open(&dir.path().join("a"), None).unwrap();
        assert_eq!(
            a.relay().unwrap().as_deref(),
            Some("ws://127.0.0.1:7878/v1/sync")
        );
        assert_eq!(a.acl_records().unwrap().len(), 2);
        assert!(a.epoch_key(3).unwrap().is_some());
        assert!(a.epoch_key(4).unwrap().is_none());
    }
}
