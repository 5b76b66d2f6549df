//! Where things live inside the Automerge document, and forgiving ways to get them out.
//!
//! The layout is a contract with every other copy of hearth, older and newer, so its key
//! names are spelled once, here. It keeps the promises of `docs/document.md` (lists that
//! merge concurrent appends, check-ins under random ids grouped by week, answers as one
//! JSON value, plain-string bodies, last-writer-wins per edited field) but stores each
//! entry as **one JSON string** instead of a map of fields:
//!
//! ```text
//! schema: 1
//! people:        map  person id -> map { name, joined_at }
//! checkins:      map  check-in id -> "{week, template, opened_by, opened_at}"
//! submissions:   map  "<check-in id>/<person id>" -> bytes (sealed answers, `records.rs`)
//! reveals:       list of bytes (released keys, `records.rs`)
//! appreciations: list of "{id, author, text, created_at}"
//! feedback:      list of "{id, author, observation, feeling, need, request, created_at}"
//! replies:       list of "{feedback, author, kind, text, created_at}"
//! journal:       list of "{id, author, created_at, title?, body, tags?}"
//! commitments:   list of "{id, author, text, week, status, created_at}"
//! edits:         map  "<entry id>/<field>" -> value   (title, body, tags, edited_at, status)
//! decks:         map  deck id -> the deck's TOML text, exactly as added
//! ```
//!
//! Why: Automerge 0.12 spends about 1 µs per operation when loading and about 5 µs per
//! nested object when reading (a list of strings reads at ~0.2 µs an item). A map per entry
//! costs 5–8 operations and one object read; a JSON string costs one operation and is read
//! straight out of its list. On the ten-year history (crate docs) that took `load` from
//! ~135 ms to ~50 ms and `timeline` from ~135 ms to ~19 ms.
//!
//! Entries that change after they are written keep their promise through `edits`: one
//! scalar per entry and field, so concurrent edits of different fields both survive and
//! edits of the same field resolve identically everywhere. New entries go to the front of
//! their list (see `space.rs`); readers sort, so list order means nothing.
//!
//! A couple's own question decks (`hearth deck add`) are kept as the TOML text the person
//! wrote, not as parsed data: that is what both devices validate with the same rules, what
//! `hearth deck show` can hand back, and it leaves the deck format free to grow. Adding a
//! deck again with the same id replaces it (last writer wins, like any field); check-ins
//! keep only the deck's id, in their `template` field. Spaces created before decks existed
//! lack the map until the first deck is added.
//!
//! Readers also accept entries stored as maps of fields, the form a client that models each entry as a map would write
//! (converted to JSON on the fly), so a client that writes that form still reads here.
//! Anything unreadable is skipped, entry by entry.

use std::borrow::Cow;
use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value,
    ValueRef,
};
use serde::de::DeserializeOwned;

use crate::ids::Millis;

pub(crate) const SCHEMA: &str = "schema";
pub(crate) const SCHEMA_VERSION: i64 = 1;

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

/// The root collections and their types, in the order `create` makes them.
pub(crate) const COLLECTIONS: [(&str, ObjType); 11] = [
    (PEOPLE, ObjType::Map),
    (CHECKINS, ObjType::Map),
    (SUBMISSIONS, ObjType::Map),
    (APPRECIATIONS, ObjType::List),
    (FEEDBACK, ObjType::List),
    (REPLIES, ObjType::List),
    (JOURNAL, ObjType::List),
    (COMMITMENTS, ObjType::List),
    (EDITS, ObjType::Map),
    (REVEALS, ObjType::List),
    (DECKS, ObjType::Map),
];

// Fields of a person map.
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
    let all = doc.get_all(ROOT, key).unwrap_or_default();
    let winner = doc.get(ROOT, key).ok().flatten().map(|(_, id)| id);
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

/// The collection new entries go into, created if an odd document lacks it.
pub(crate) fn root_for_write(
    doc: &mut AutoCommit,
    key: &str,
    ty: ObjType,
) -> Result<ObjId, AutomergeError> {
    match doc.get(ROOT, key)? {
        Some((v, id)) if v.to_objtype() == Some(ty) => Ok(id),
        _ => doc.put_object(ROOT, key, ty),
    }
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
pub(crate) fn map_entries_all<'a>(
    doc: &'a AutoCommit,
    key: &str,
) -> Vec<(Cow<'a, str>, Stored<'a>)> {
    let mut out = Vec::new();
    for map in root_objects(doc, key, ObjType::Map) {
        for item in doc.map_range(&map, ..) {
            if !item.conflict {
                let id = item.id();
                if let Some(s) = stored(doc, item.value, || id) {
                    out.push((item.key, s));
                }
                continue;
            }
            for (value, id) in doc.get_all(&map, item.key.as_ref()).unwrap_or_default() {
                let s = match value {
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
                out.push((item.key.clone(), s));
            }
        }
    }
    out
}

/// The entries of the root list(s) `key`, in list order.
pub(crate) fn list_entries<'a>(doc: &'a AutoCommit, key: &str) -> Vec<Stored<'a>> {
    let mut out = Vec::new();
    for list in root_objects(doc, key, ObjType::List) {
        out.extend(doc.list_range(&list, ..).filter_map(|item| {
            let id = item.id();
            stored(doc, item.value, || id)
        }));
    }
    out
}

/// The entries of the root map(s) `key`, with their keys. Where two maps hold the same
/// key (a conflict at the root), the winner's entry comes first.
pub(crate) fn map_entries<'a>(doc: &'a AutoCommit, key: &str) -> Vec<(Cow<'a, str>, Stored<'a>)> {
    let mut out = Vec::new();
    for map in root_objects(doc, key, ObjType::Map) {
        out.extend(doc.map_range(&map, ..).filter_map(|item| {
            let id = item.id();
            Some((item.key, stored(doc, item.value, || id)?))
        }));
    }
    out
}

/// The scalars of the root map(s) `key`, keyed; nested objects are skipped.
pub(crate) fn map_scalars<'a>(
    doc: &'a AutoCommit,
    key: &str,
) -> HashMap<Cow<'a, str>, ScalarValueRef<'a>> {
    let mut out = HashMap::new();
    for map in root_objects(doc, key, ObjType::Map) {
        for item in doc.map_range(&map, ..) {
            if let ValueRef::Scalar(value) = item.value {
                out.entry(item.key).or_insert(value);
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
