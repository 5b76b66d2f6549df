//! Who wrote what, when reading: each entry is attributed by where it is and by the op that
//! wrote it, never by the `author` it claims.
//!
//! Since per-person containers (see `layout.rs`), an entry in `by/<person key>` is that
//! person's: validated apply ([`crate::authorship`]) let only that person's devices write
//! there. An entry of the first layout, in the shared collections at the root, is its
//! claimed author's only if the op that wrote it was made by one of that author's devices
//! (per the signed ACL, [`People`]); anything else is left out, never attributed.
//!
//! People are named two ways: by [`PersonKey`] (the device that founded them in the ACL:
//! what containers and the rule use) and by [`PersonId`] (what entries, check-ins and the
//! CLI use). [`Authors`] ties each key to exactly one id (its *canonical* id), so no one can
//! claim the other's:
//! 1. the id of a first-layout `people` entry that a device of the person created (spaces
//!    made before containers: both partners' profiles keep that id);
//! 2. else the id the person's container declares (`person`), if it is [`PersonId::of`] the
//!    key, or an id no other person is bound to;
//! 3. else [`PersonId::of`] the key.

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, Value};

use crate::authorship::{People, PersonKey};
use crate::ids::{Millis, PersonId};
use crate::layout;

/// Who wrote a stored value, as far as the document itself says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Writer {
    /// It is in this person's container.
    Container(PersonKey),
    /// It is in a first-layout collection, written by an op of this actor.
    Op(ActorId),
}

/// One person as the document shows them.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub(crate) id: PersonId,
    pub(crate) name: Option<String>,
    pub(crate) joined_at: Option<Millis>,
}

/// Each person's canonical id, and which key every id a person was ever known by belongs
/// to. Built from the document and the ACL's [`People`] at each read (it reads the root and
/// the first layout's `people` map only).
#[derive(Debug, Clone, Default)]
pub(crate) struct Authors {
    people: People,
    by_key: BTreeMap<PersonKey, Named>,
    key_of: HashMap<PersonId, PersonKey>,
}

impl Authors {
    pub(crate) fn read(doc: &AutoCommit, people: &People) -> Authors {
        // First-layout `people` entries: each id is bound to the person whose device wrote
        // it *first* (every value of a conflict is looked at, so a partner's later write of
        // the same key cannot take it; op counters run forward, which validated apply
        // checks). Each person's own id is the earliest one bound to them.
        #[allow(clippy::type_complexity)]
        let mut first: HashMap<
            PersonId,
            ((u64, ActorId), PersonKey, ObjId, Value<'static>),
        > = HashMap::new();
        for map in layout::root_objects(doc, layout::PEOPLE, ObjType::Map) {
            for key in doc.keys(&map) {
                let Ok(id) = key.parse::<PersonId>() else {
                    continue;
                };
                for (value, value_id) in doc.get_all(&map, key.as_str()).unwrap_or_default() {
                    let ObjId::Id(counter, actor, _) = &value_id else {
                        continue;
                    };
                    let Some(person) = people.person(actor.to_bytes()) else {
                        continue;
                    };
                    let order = (*counter, actor.clone());
                    match first.get(&id) {
                        Some((earlier, ..)) if *earlier <= order => {}
                        _ => {
                            first.insert(
                                id.clone(),
                                (order, person, value_id.clone(), value.to_owned()),
                            );
                        }
                    }
                }
            }
        }
        let mut legacy: BTreeMap<PersonKey, ((u64, ActorId), Named)> = BTreeMap::new();
        let mut key_of: HashMap<PersonId, PersonKey> = HashMap::new();
        for (id, (order, key, value_id, value)) in first {
            key_of.insert(id.clone(), key);
            if legacy
                .get(&key)
                .is_some_and(|(earlier, _)| *earlier <= order)
            {
                continue;
            }
            let (name, joined_at) = legacy_person(doc, people, key, &value_id, &value);
            legacy.insert(
                key,
                (
                    order,
                    Named {
                        id,
                        name,
                        joined_at,
                    },
                ),
            );
        }
        let containers = layout::containers(doc);
        let mut by_key: BTreeMap<PersonKey, Named> = BTreeMap::new();
        let known: Vec<PersonKey> = containers
            .iter()
            .map(|(k, _)| *k)
            .chain(people.devices().map(|(_, k)| *k))
            .chain(legacy.keys().copied())
            .collect();
        // Who declared each id first (op counters run forward, which validated apply
        // checks): a later claim of someone's id in another container does not take it.
        let mut declared_first: HashMap<PersonId, ((u64, ActorId), PersonKey)> = HashMap::new();
        for (key, objects) in &containers {
            for obj in objects {
                let Ok(Some((Value::Scalar(value), ObjId::Id(counter, actor, _)))) =
                    doc.get(obj, layout::PERSON)
                else {
                    continue;
                };
                let automerge::ScalarValue::Str(text) = value.as_ref() else {
                    continue;
                };
                let Ok(id) = text.parse::<PersonId>() else {
                    continue;
                };
                let order = (counter, actor);
                match declared_first.get(&id) {
                    Some((earlier, _)) if *earlier <= order => {}
                    _ => {
                        declared_first.insert(id, (order, *key));
                    }
                }
            }
        }
        let declared_once =
            |id: &PersonId, key: &PersonKey| declared_first.get(id).is_some_and(|(_, k)| k == key);
        for (key, objects) in &containers {
            let declared = objects
                .iter()
                .find_map(|obj| scalar_text(doc, obj, layout::PERSON))
                .and_then(|s| s.parse::<PersonId>().ok());
            let name = objects
                .iter()
                .find_map(|obj| scalar_text(doc, obj, layout::NAME));
            let joined_at = objects.iter().find_map(|obj| {
                match doc.get(obj, layout::JOINED_AT).ok().flatten() {
                    Some((Value::Scalar(s), _)) => millis(&s),
                    _ => None,
                }
            });
            let id = match legacy.get(key) {
                Some((_, named)) => named.id.clone(),
                None => match declared {
                    Some(d)
                        if d == PersonId::of(key)
                            || (key_of.get(&d).is_none_or(|k| k == key)
                                && declared_once(&d, key)
                                && known.iter().all(|k| k == key || PersonId::of(k) != d)) =>
                    {
                        d
                    }
                    _ => PersonId::of(key),
                },
            };
            by_key.insert(
                *key,
                Named {
                    id,
                    name,
                    joined_at,
                },
            );
        }
        for (key, (_, named)) in legacy {
            let entry = by_key.entry(key).or_insert_with(|| named.clone());
            entry.name = entry.name.take().or(named.name);
            entry.joined_at = entry.joined_at.or(named.joined_at);
        }
        for (key, named) in &by_key {
            key_of.insert(named.id.clone(), *key);
            key_of.entry(PersonId::of(key)).or_insert(*key);
        }
        Authors {
            people: people.clone(),
            by_key,
            key_of,
        }
    }

    /// Everyone the document shows, by key.
    pub(crate) fn everyone(&self) -> impl Iterator<Item = (&PersonKey, &Named)> {
        self.by_key.iter()
    }

    /// Whether the document names `key` already (a container, or a first-layout entry).
    pub(crate) fn knows(&self, key: &PersonKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// The canonical id of `key`.
    pub(crate) fn id_of(&self, key: &PersonKey) -> PersonId {
        self.by_key
            .get(key)
            .map_or_else(|| PersonId::of(key), |n| n.id.clone())
    }

    /// The person an id belongs to, if any.
    pub(crate) fn key_of(&self, id: &PersonId) -> Option<PersonKey> {
        self.key_of.get(id).copied()
    }

    /// The person a writer is: a container's owner, or the person of an op's actor.
    pub(crate) fn person(&self, writer: &Writer) -> Option<PersonKey> {
        match writer {
            Writer::Container(key) => Some(*key),
            Writer::Op(actor) => self.people.person(actor.to_bytes()),
        }
    }

    /// The author of an entry `writer` wrote claiming `claimed`: in a container, its
    /// owner (whatever the entry says); in the first layout, `claimed` if the op was made
    /// by a device of that person, else nobody.
    pub(crate) fn attribute(&self, writer: &Writer, claimed: &PersonId) -> Option<PersonId> {
        match writer {
            Writer::Container(key) => Some(self.id_of(key)),
            Writer::Op(_) => {
                let by = self.person(writer)?;
                (self.key_of(claimed)? == by).then(|| self.id_of(&by))
            }
        }
    }
}

/// A first-layout person entry's name and `joined_at`, each only as written by a device of
/// that person (a partner's rename of you is not your name).
fn legacy_person(
    doc: &AutoCommit,
    people: &People,
    key: PersonKey,
    obj: &ObjId,
    value: &Value<'_>,
) -> (Option<String>, Option<Millis>) {
    match value {
        Value::Object(ObjType::Map) => {
            let own = |field: &str| {
                doc.get_all(obj, field)
                    .unwrap_or_default()
                    .into_iter()
                    .rev()
                    .find(|(_, id)| match id {
                        ObjId::Id(_, actor, _) => people.person(actor.to_bytes()) == Some(key),
                        ObjId::Root => false,
                    })
                    .and_then(|(v, _)| match v {
                        Value::Scalar(s) => Some(s.into_owned()),
                        Value::Object(_) => None,
                    })
            };
            let name = own(layout::NAME).and_then(|s| match s {
                automerge::ScalarValue::Str(t) => Some(t.to_string()),
                _ => None,
            });
            let joined_at = own(layout::JOINED_AT).and_then(|s| millis(&s));
            (name, joined_at)
        }
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(text) => {
                serde_json::from_str::<crate::records::PersonRecord>(text)
                    .map(|r| (r.name, r.joined_at))
                    .unwrap_or((None, None))
            }
            _ => (None, None),
        },
        _ => (None, None),
    }
}

fn scalar_text(doc: &AutoCommit, obj: &ObjId, field: &str) -> Option<String> {
    match doc.get(obj, field).ok().flatten()? {
        (Value::Scalar(s), _) => match s.as_ref() {
            automerge::ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// A time stored as a scalar (timestamp, integer or whole float).
fn millis(value: &automerge::ScalarValue) -> Option<Millis> {
    use automerge::ScalarValue as S;
    match value {
        S::Timestamp(n) | S::Int(n) => Some(Millis(*n)),
        S::Uint(n) => i64::try_from(*n).ok().map(Millis),
        #[allow(clippy::cast_possible_truncation)]
        S::F64(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Some(Millis(*f as i64))
        }
        _ => None,
    }
}
