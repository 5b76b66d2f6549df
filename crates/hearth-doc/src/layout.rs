//! Where things live inside the Automerge document, and forgiving ways to get them out.
//!
//! The layout is a contract with every other copy of hearth, older and newer, so its key
//! names are spelled once, here (and written down in `docs/document.md`). Each person writes
//! only into their own container at the root, `by/<person key>`, which holds their name and
//! every collection they write to:
//!
//! ```text
//! by/<person key>:   map (one per person)
//!   schema: 2, person: "<person id>", name, joined_at
//!   checkins:        map  check-in id -> "{week, template, opened_by, opened_at}"
//!   submissions:     map  "<check-in id>/<person id>" -> bytes (sealed answers, `records.rs`)
//!   reveals:         list of bytes (released keys, `records.rs`)
//!   appreciations:   list of "{id, author, text, created_at}"
//!   feedback:        list of "{id, author, observation, feeling, need, request, created_at}"
//!   replies:         list of "{feedback, author, kind, text, created_at}"
//!   journal:         list of "{id, author, created_at, title?, body, tags?}"
//!   edits:           map  "<entry id>/<field>" -> value   (title, body, tags, edited_at, status)
//!   decks:           map  deck id -> the deck's TOML text, exactly as added
//! ```
//!
//! Spaces made before containers hold the same collections (and `people`, `commitments`)
//! shared at the root, as the first layout (`schema: 1`) wrote them; [`collections`] reads
//! both, and says where each object is ([`Place`]), so that readers can attribute what they
//! read (`authors.rs`).
//!
//! Each entry is **one JSON string** rather than a map of fields. Why: Automerge 0.12 spends
//! about 1 µs per operation when loading and about 5 µs per nested object when reading (a
//! list of strings reads at ~0.2 µs an item). A map per entry costs 5–8 operations and one
//! object read; a JSON string costs one operation and is read straight out of its list. On
//! the ten-year history (crate docs) that took `load` from ~135 ms to ~50 ms and `timeline`
//! from ~135 ms to ~19 ms.
//!
//! Entries that change after they are written keep their promise through `edits`: one
//! scalar per entry and field, so concurrent edits of different fields both survive and
//! edits of the same field resolve identically everywhere. New entries go to the front of
//! their list (see `space.rs`); readers sort, so list order means nothing.
//!
//! A couple's own question decks (`hearth deck add`) are kept as the TOML text the person
//! wrote, not as parsed data: that is what both devices validate with the same rules, what
//! `hearth deck show` can hand back, and it leaves the deck format free to grow. Check-ins
//! keep only the deck's id, in their `template` field.
//!
//! Readers also accept entries stored as maps of fields, the form a client that models each
//! entry as a map would write (converted to JSON on the fly). Anything unreadable is
//! skipped, entry by entry.

use std::borrow::Cow;

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value,
    ValueRef,
};
use serde::de::DeserializeOwned;

use crate::authors::Writer;
use crate::authorship::{PersonKey, person_container_key};
use crate::ids::{Millis, PersonId};

pub(crate) const SCHEMA: &str = "schema";
/// The schema of a person container (the first layout, all at the root, was 1).
pub(crate) const SCHEMA_VERSION: i64 = 2;

pub(crate) const PEOPLE: &str = "people";
pub(crate) const CHECKINS: &str = "checkins";
pub(crate) const SUBMISSIONS: &str = "submissions";
pub(crate) const APPRECIATIONS: &str = "appreciations";
pub(crate) const FEEDBACK: &str = "feedback";
pub(crate) const REPLIES: &str = "replies";
pub(crate) const JOURNAL: &str = "journal";
pub(crate) const COMMITMENTS: &str = "commitments";
pub(crate) const EDITS: &str = "edits";
pub(crate) const REVEALS: &str = "reveals";
pub(crate) const DECKS: &str = "decks";

// Fields of a person container, and of a first-layout person map.
pub(crate) const PERSON: &str = "person";
pub(crate) const NAME: &str = "name";
pub(crate) const JOINED_AT: &str = "joined_at";

// Fields that can be edited after an entry is written (the `<field>` of an edit key).
pub(crate) const TITLE: &str = "title";
pub(crate) const BODY: &str = "body";
pub(crate) const TAGS: &str = "tags";
pub(crate) const EDITED_AT: &str = "edited_at";
pub(crate) const STATUS: &str = "status";

/// The key of one field of one entry in `edits`.
pub(crate) fn edit_key(entry: &str, field: &str) -> String {
    format!("{entry}/{field}")
}

/// The key of one person's submission to one check-in in `submissions`.
pub(crate) fn submission_key(checkin: &str, person: &str) -> String {
    format!("{checkin}/{person}")
}

/// Every object stored under a root key, winner first.
///
/// Normally there is exactly one. If two devices ever created the same collection
/// concurrently, Automerge keeps both as a conflict and shows only one; reading all of them
/// means no entry written into the losing one is ever hidden.
pub(crate) fn root_objects(doc: &AutoCommit, key: &str, ty: ObjType) -> Vec<ObjId> {
    objects_at(doc, &ROOT, key, ty)
}

fn objects_at(doc: &AutoCommit, obj: &ObjId, key: &str, ty: ObjType) -> Vec<ObjId> {
    let all = doc.get_all(obj, key).unwrap_or_default();
    if all.len() == 1 {
        return all
            .into_iter()
            .filter(|(v, _)| v.to_objtype() == Some(ty))
            .map(|(_, id)| id)
            .collect();
    }
    let winner = doc.get(obj, key).ok().flatten().map(|(_, id)| id);
    let mut objects: Vec<ObjId> = all
        .into_iter()
        .filter(|(v, _)| v.to_objtype() == Some(ty))
        .map(|(_, id)| id)
        .collect();
    if let Some(pos) = winner.and_then(|w| objects.iter().position(|id| *id == w)) {
        objects.swap(0, pos);
    }
    objects
}

/// Every person container at the root, by its owner, with its map objects (one, unless
/// two of the person's devices created it at once). Keys that do not spell a person key
/// are ignored.
pub(crate) fn containers(doc: &AutoCommit) -> Vec<(PersonKey, Vec<ObjId>)> {
    let mut out = Vec::new();
    for item in doc.map_range(ROOT, ..) {
        let Some(hex) = item.key.strip_prefix("by/") else {
            continue;
        };
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(hex, &mut bytes).is_err() || hex.len() != 64 {
            continue;
        }
        let key = PersonKey::from_founding_device(bytes);
        if person_container_key(&key) != item.key {
            continue;
        }
        let objects = objects_at(doc, &ROOT, &item.key, ObjType::Map);
        if !objects.is_empty() {
            out.push((key, objects));
        }
    }
    out
}

/// Where a collection's object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In this person's container.
    Container(PersonKey),
    /// At the root, in the first layout.
    Legacy,
}

/// Every object holding the collection `key` of type `ty`: each person's own, then the
/// first layout's at the root.
pub(crate) fn collections(doc: &AutoCommit, key: &str, ty: ObjType) -> Vec<(ObjId, Place)> {
    let mut out = Vec::new();
    for (person, objects) in containers(doc) {
        for container in objects {
            out.extend(
                objects_at(doc, &container, key, ty)
                    .into_iter()
                    .map(|id| (id, Place::Container(person))),
            );
        }
    }
    out.extend(
        root_objects(doc, key, ty)
            .into_iter()
            .map(|id| (id, Place::Legacy)),
    );
    out
}

/// This device's person's container, created (with its schema and the person's id) if
/// there is none yet.
pub(crate) fn own_container(
    doc: &mut AutoCommit,
    me: &PersonKey,
    person: &PersonId,
) -> Result<ObjId, AutomergeError> {
    let key = person_container_key(me);
    match doc.get(ROOT, &key)? {
        Some((v, id)) if v.to_objtype() == Some(ObjType::Map) => Ok(id),
        _ => {
            let container = doc.put_object(ROOT, &key, ObjType::Map)?;
            doc.put(&container, SCHEMA, SCHEMA_VERSION)?;
            doc.put(&container, PERSON, person.as_str())?;
            Ok(container)
        }
    }
}

/// The collection new entries go into, in this device's person's container: created if
/// the container lacks it.
pub(crate) fn collection_for_write(
    doc: &mut AutoCommit,
    me: &PersonKey,
    person: &PersonId,
    key: &str,
    ty: ObjType,
) -> Result<ObjId, AutomergeError> {
    let container = own_container(doc, me, person)?;
    match doc.get(&container, key)? {
        Some((v, id)) if v.to_objtype() == Some(ty) => Ok(id),
        _ => doc.put_object(&container, key, ty),
    }
}

/// Who wrote a value found in `place`: the container's owner, or the op's actor.
fn writer(place: Place, id: impl FnOnce() -> ObjId) -> Option<Writer> {
    match place {
        Place::Container(key) => Some(Writer::Container(key)),
        Place::Legacy => match id() {
            ObjId::Id(_, actor, _) => Some(Writer::Op(actor)),
            ObjId::Root => None,
        },
    }
}

/// A stored entry with who wrote it.
pub(crate) struct Item<'a> {
    pub(crate) stored: Stored<'a>,
    pub(crate) writer: Writer,
}

/// One stored entry: the JSON text as written, or a map rebuilt as JSON.
pub(crate) enum Stored<'a> {
    Text(Cow<'a, str>),
    Value(serde_json::Value),
    /// A binary record (sealed check-in answers and released keys).
    Bytes(Cow<'a, [u8]>),
}

impl Stored<'_> {
    /// The entry as `T`, or `None` if it does not have `T`'s shape.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Option<T> {
        match self {
            Stored::Text(text) => serde_json::from_str(text).ok(),
            Stored::Value(value) => T::deserialize(value).ok(),
            Stored::Bytes(_) => None,
        }
    }

    /// Whether the stored text mentions `needle`; maps always might. A cheap filter before
    /// decoding when looking for one entry among thousands.
    pub(crate) fn may_contain(&self, needle: &str) -> bool {
        match self {
            Stored::Text(text) => text.contains(needle),
            Stored::Value(_) => true,
            Stored::Bytes(bytes) => bytes
                .windows(needle.len().max(1))
                .any(|w| w == needle.as_bytes()),
        }
    }
}

fn stored<'a>(
    doc: &'a AutoCommit,
    value: ValueRef<'a>,
    id: impl FnOnce() -> ObjId,
) -> Option<Stored<'a>> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(text)) => Some(Stored::Text(text)),
        ValueRef::Scalar(ScalarValueRef::Bytes(bytes)) => Some(Stored::Bytes(bytes)),
        ValueRef::Object(ObjType::Map) => {
            Some(Stored::Value(object_json(doc, &id(), ObjType::Map, 0)))
        }
        _ => None,
    }
}

/// Like [`map_entries`], but where devices wrote one key concurrently (an Automerge
/// conflict) every value is returned, not only the winner: a sealed check-in that lost such
/// a conflict is still the one a partner may have committed against.
pub(crate) fn map_entries_all<'a>(doc: &'a AutoCommit, key: &str) -> Vec<(Cow<'a, str>, Item<'a>)> {
    let mut out = Vec::new();
    for (map, place) in collections(doc, key, ObjType::Map) {
        for item in doc.map_range(&map, ..) {
            if !item.conflict {
                let id = item.id();
                let Some(writer) = writer(place, || id.clone()) else {
                    continue;
                };
                if let Some(stored) = stored(doc, item.value, || id) {
                    out.push((item.key, Item { stored, writer }));
                }
                continue;
            }
            for (value, id) in doc.get_all(&map, item.key.as_ref()).unwrap_or_default() {
                let Some(writer) = writer(place, || id.clone()) else {
                    continue;
                };
                let stored = match value {
                    Value::Scalar(scalar) => match scalar.as_ref() {
                        ScalarValue::Str(text) => Stored::Text(Cow::Owned(text.to_string())),
                        ScalarValue::Bytes(bytes) => Stored::Bytes(Cow::Owned(bytes.clone())),
                        _ => continue,
                    },
                    Value::Object(ObjType::Map) => {
                        Stored::Value(object_json(doc, &id, ObjType::Map, 0))
                    }
                    Value::Object(_) => continue,
                };
                out.push((item.key.clone(), Item { stored, writer }));
            }
        }
    }
    out
}

/// The entries of every list `key` (each person's, then the first layout's), in list
/// order, with who wrote each.
pub(crate) fn list_entries<'a>(doc: &'a AutoCommit, key: &str) -> Vec<Item<'a>> {
    let mut out = Vec::new();
    for (list, place) in collections(doc, key, ObjType::List) {
        out.extend(doc.list_range(&list, ..).filter_map(|item| {
            let id = item.id();
            let writer = writer(place, || id.clone())?;
            Some(Item {
                stored: stored(doc, item.value, || id)?,
                writer,
            })
        }));
    }
    out
}

/// The entries of every map `key` (each person's, then the first layout's), with their
/// keys and who wrote each (the winner of a conflict only).
pub(crate) fn map_entries<'a>(doc: &'a AutoCommit, key: &str) -> Vec<(Cow<'a, str>, Item<'a>)> {
    let mut out = Vec::new();
    for (map, place) in collections(doc, key, ObjType::Map) {
        out.extend(doc.map_range(&map, ..).filter_map(|item| {
            let writer = writer(place, || item.id())?;
            let id = item.id();
            Some((
                item.key,
                Item {
                    stored: stored(doc, item.value, || id)?,
                    writer,
                },
            ))
        }));
    }
    out
}

/// The scalars of every map `key`, keyed, with who wrote each; nested objects are
/// skipped. In the first layout, every value of a conflict is listed (the winner last), so
/// a reader can take the latest one its author wrote.
pub(crate) fn map_scalars<'a>(
    doc: &'a AutoCommit,
    key: &str,
) -> Vec<(Cow<'a, str>, ScalarValueRef<'a>, Writer)> {
    let mut out = Vec::new();
    for (map, place) in collections(doc, key, ObjType::Map) {
        for item in doc.map_range(&map, ..) {
            if item.conflict && place == Place::Legacy {
                for (value, id) in doc.get_all(&map, item.key.as_ref()).unwrap_or_default() {
                    if let (Value::Scalar(s), Some(w)) = (value, writer(place, || id)) {
                        out.push((item.key.clone(), ScalarValueRef::from(s.into_owned()), w));
                    }
                }
                continue;
            }
            let Some(w) = writer(place, || item.id()) else {
                continue;
            };
            if let ValueRef::Scalar(value) = item.value {
                out.push((item.key, value, w));
            }
        }
    }
    out
}

/// Nested objects deeper than this are ignored: entries are shallow, and a hostile
/// document must not make a reader recurse without end.
const MAX_DEPTH: usize = 4;

/// An Automerge object as JSON: maps become objects, lists arrays, text strings.
pub(crate) fn object_json(
    doc: &AutoCommit,
    obj: &ObjId,
    ty: ObjType,
    depth: usize,
) -> serde_json::Value {
    let nested = |value: &ValueRef<'_>, id: ObjId| match value {
        ValueRef::Scalar(s) => scalar_json(s),
        ValueRef::Object(ty) if depth < MAX_DEPTH => object_json(doc, &id, *ty, depth + 1),
        ValueRef::Object(_) => serde_json::Value::Null,
    };
    match ty {
        ObjType::Map | ObjType::Table => serde_json::Value::Object(
            doc.map_range(obj, ..)
                .map(|item| {
                    let value = nested(&item.value, item.id());
                    (item.key.into_owned(), value)
                })
                .collect(),
        ),
        ObjType::List => serde_json::Value::Array(
            doc.list_range(obj, ..)
                .map(|item| nested(&item.value, item.id()))
                .collect(),
        ),
        ObjType::Text => doc
            .text(obj)
            .map(serde_json::Value::String)
            .unwrap_or(serde_json::Value::Null),
    }
}

/// A scalar as JSON. Times become their milliseconds, which is how records store them.
pub(crate) fn scalar_json(value: &ScalarValueRef<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        ScalarValueRef::Str(s) => Value::String(s.to_string()),
        ScalarValueRef::Int(n) | ScalarValueRef::Timestamp(n) | ScalarValueRef::Counter(n) => {
            Value::from(*n)
        }
        ScalarValueRef::Uint(n) => Value::from(*n),
        ScalarValueRef::F64(f) => {
            // JavaScript clients write every number as a float; a whole one is an integer.
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Value::from(*f as i64)
            } else {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
        }
        ScalarValueRef::Boolean(b) => Value::Bool(*b),
        ScalarValueRef::Bytes(_) | ScalarValueRef::Unknown { .. } | ScalarValueRef::Null => {
            Value::Null
        }
    }
}

/// A time stored as an Automerge scalar (timestamp, integer or whole float).
pub(crate) fn scalar_millis(value: &ScalarValueRef<'_>) -> Option<Millis> {
    scalar_json(value).as_i64().map(Millis)
}

/// A string stored as an Automerge scalar.
pub(crate) fn scalar_str<'v>(value: &'v ScalarValueRef<'_>) -> Option<&'v str> {
    match value {
        ScalarValueRef::Str(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn timestamp(at: Millis) -> automerge::ScalarValue {
    automerge::ScalarValue::Timestamp(at.0)
}
