//! Where things live inside the Automerge document, and forgiving readers for them.
//!
//! The layout (DESIGN.md §3) is a contract with every other copy of hearth, including
//! newer and older ones, so the key names are spelled once, here. Reading is deliberately
//! lenient: a value of the wrong type reads as missing, so one odd entry written by a
//! future version (or a bug) costs that entry, never the whole view.

use std::borrow::Cow;
use std::str::FromStr;

use automerge::iter::MapRangeItem;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef, ROOT};

use crate::ids::Millis;

pub(crate) const SCHEMA: &str = "schema";
pub(crate) const SCHEMA_VERSION: i64 = 1;

pub(crate) const PEOPLE: &str = "people";
pub(crate) const CHECKINS: &str = "checkins";
pub(crate) const APPRECIATIONS: &str = "appreciations";
pub(crate) const FEEDBACK: &str = "feedback";
pub(crate) const JOURNAL: &str = "journal";
pub(crate) const COMMITMENTS: &str = "commitments";

/// The root collections and their types, in the order `create` makes them.
pub(crate) const COLLECTIONS: [(&str, ObjType); 6] = [
    (PEOPLE, ObjType::Map),
    (CHECKINS, ObjType::Map),
    (APPRECIATIONS, ObjType::List),
    (FEEDBACK, ObjType::List),
    (JOURNAL, ObjType::List),
    (COMMITMENTS, ObjType::List),
];

// Field names inside entries.
pub(crate) const ID: &str = "id";
pub(crate) const AUTHOR: &str = "author";
pub(crate) const TEXT: &str = "text";
pub(crate) const CREATED_AT: &str = "created_at";
pub(crate) const NAME: &str = "name";
pub(crate) const JOINED_AT: &str = "joined_at";
pub(crate) const OBSERVATION: &str = "observation";
pub(crate) const FEELING: &str = "feeling";
pub(crate) const NEED: &str = "need";
pub(crate) const REQUEST: &str = "request";
pub(crate) const REPLIES: &str = "replies";
pub(crate) const KIND: &str = "kind";
pub(crate) const TITLE: &str = "title";
pub(crate) const BODY: &str = "body";
pub(crate) const TAGS: &str = "tags";
pub(crate) const EDITED_AT: &str = "edited_at";
pub(crate) const WEEK: &str = "week";
pub(crate) const STATUS: &str = "status";
pub(crate) const TEMPLATE: &str = "template";
pub(crate) const OPENED_BY: &str = "opened_by";
pub(crate) const OPENED_AT: &str = "opened_at";
pub(crate) const ANSWERS: &str = "answers";
pub(crate) const SUBMITTED_AT: &str = "submitted_at";

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
    if let Some(w) = winner {
        if let Some(pos) = objects.iter().position(|id| *id == w) {
            objects.swap(0, pos);
        }
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

/// The maps of a list, in list order; other values are skipped.
pub(crate) fn list_maps(doc: &AutoCommit, list: &ObjId) -> Vec<ObjId> {
    doc.list_range(list, ..)
        .filter(|item| matches!(item.value, ValueRef::Object(ObjType::Map)))
        .map(|item| item.id())
        .collect()
}

/// One map read in a single pass; lookups are a short linear scan, which beats a hash map
/// for the handful of fields an entry has.
pub(crate) struct Fields<'a> {
    doc: &'a AutoCommit,
    items: Vec<MapRangeItem<'a>>,
}

impl<'a> Fields<'a> {
    pub(crate) fn read(doc: &'a AutoCommit, obj: &ObjId) -> Fields<'a> {
        Fields {
            doc,
            items: doc.map_range(obj, ..).collect(),
        }
    }

    fn item(&self, key: &str) -> Option<&MapRangeItem<'a>> {
        self.items.iter().find(|i| i.key == key)
    }

    /// A string field. An Automerge Text object is read as its text, so a client that
    /// chose collaborative text for a field still reads here.
    pub(crate) fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        let item = self.item(key)?;
        match &item.value {
            ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(Cow::Borrowed(s.as_ref())),
            ValueRef::Object(ObjType::Text) => self.doc.text(item.id()).ok().map(Cow::Owned),
            _ => None,
        }
    }

    pub(crate) fn owned(&self, key: &str) -> Option<String> {
        self.string(key).map(Cow::into_owned)
    }

    pub(crate) fn parse<T: FromStr>(&self, key: &str) -> Option<T> {
        self.string(key)?.parse().ok()
    }

    pub(crate) fn millis(&self, key: &str) -> Option<Millis> {
        scalar_millis(&self.item(key)?.value)
    }

    pub(crate) fn object(&self, key: &str, ty: ObjType) -> Option<ObjId> {
        let item = self.item(key)?;
        (item.value == ValueRef::Object(ty)).then(|| item.id())
    }
}

/// Times are written as Automerge timestamps; plain integers (and whole floats, which is
/// what a JavaScript client writes for a number) are accepted too.
pub(crate) fn scalar_millis(value: &ValueRef<'_>) -> Option<Millis> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Timestamp(n) | ScalarValueRef::Int(n)) => Some(Millis(*n)),
        ValueRef::Scalar(ScalarValueRef::Uint(n)) => i64::try_from(*n).ok().map(Millis),
        ValueRef::Scalar(ScalarValueRef::F64(f)) if f.is_finite() && f.fract() == 0.0 => {
            // Whole and finite: the cast saturates at the i64 range, which is fine for a time.
            #[allow(clippy::cast_possible_truncation)]
            Some(Millis(*f as i64))
        }
        _ => None,
    }
}

/// The strings of a list, skipping anything else.
pub(crate) fn string_list(doc: &AutoCommit, list: &ObjId) -> Vec<String> {
    doc.list_range(list, ..)
        .filter_map(|item| match item.value {
            ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.into_owned()),
            _ => None,
        })
        .collect()
}

pub(crate) fn timestamp(at: Millis) -> automerge::ScalarValue {
    automerge::ScalarValue::Timestamp(at.0)
}
