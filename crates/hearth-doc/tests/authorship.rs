//! The authorship rule against a partner's modified client: random honest writes by two
//! people's devices (Alice with two, Bob with one), each inside their own container,
//! interleaved with hostile changes from Bob's device. Every hostile change must be refused,
//! every honest one accepted, and documents that apply exactly the accepted changes, in any
//! order, must agree, with each person's objects holding only that person's writes.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use hearth_doc::authorship::{People, PersonKey, Refusal, person_container_key, screen};
use proptest::prelude::*;

const A1: [u8; 32] = [1; 32];
const A2: [u8; 32] = [2; 32];
const B1: [u8; 32] = [3; 32];
const DEVICES: [[u8; 32]; 3] = [A1, A2, B1];

fn alice() -> PersonKey {
    PersonKey::from_founding_device(A1)
}

fn bob() -> PersonKey {
    PersonKey::from_founding_device(B1)
}

fn person_of(device: [u8; 32]) -> PersonKey {
    if device == B1 { bob() } else { alice() }
}

/// Objects deeper than this below a container get scalars instead of more nesting.
const MAX_DEPTH: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    /// A device writes inside its own person's container.
    Honest {
        device: usize,
        target: u8,
        action: u8,
        key: u8,
        value: i64,
    },
    /// A device receives every change accepted so far.
    Sync { device: usize },
    /// Bob's device, on a fork of its document, writes something it may not; then, maybe,
    /// something harmless on top of it.
    Hostile {
        kind: u8,
        target: u8,
        key: u8,
        value: i64,
        then_dependent: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, any::<u8>(), any::<u8>(), any::<u8>(), -5..5i64).prop_map(
            |(device, target, action, key, value)| Step::Honest { device, target, action, key, value }
        ),
        2 => (0..3usize).prop_map(|device| Step::Sync { device }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>(), -5..5i64, any::<bool>()).prop_map(
            |(kind, target, key, value, then_dependent)| Step::Hostile { kind, target, key, value, then_dependent }
        ),
    ]
}

/// What the screen must say about an offered change.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Accepted,
    Refused,
    ActorIsNotAuthor,
    DependsOnRefused,
    /// Passes the check but depends on a change refused only for who brought it (not for
    /// good): it waits for that change, which never comes, so it is never applied.
    Waits,
}

struct World {
    people: People,
    docs: Vec<AutoCommit>,
    offered: Vec<([u8; 32], Change, Expect)>,
    screened: usize,
    accepted: Vec<Change>,
    refused: HashSet<ChangeHash>,
    tick: i64,
}

/// Every object reachable from `obj` (itself included), with its type and depth, in a
/// stable order; `all` follows conflicting values too.
fn objects(
    doc: &AutoCommit,
    obj: ObjId,
    ty: ObjType,
    depth: usize,
    out: &mut Vec<(ObjId, ObjType, usize)>,
) {
    out.push((obj.clone(), ty, depth));
    let children: Vec<(Value<'_>, ObjId)> = match ty {
        ObjType::Map | ObjType::Table => doc
            .keys(&obj)
            .flat_map(|k| doc.get_all(&obj, k).unwrap())
            .collect(),
        ObjType::List | ObjType::Text => (0..doc.length(&obj))
            .flat_map(|i| doc.get_all(&obj, i).unwrap())
            .collect(),
    };
    for (value, id) in children {
        if let Value::Object(child) = value {
            objects(doc, id, child, depth + 1, out);
        }
    }
}

/// The objects under `person`'s container (every conflicting container, too).
fn person_objects(doc: &AutoCommit, person: &PersonKey) -> Vec<(ObjId, ObjType, usize)> {
    let mut out = Vec::new();
    for (value, id) in doc.get_all(ROOT, person_container_key(person)).unwrap() {
        if let Value::Object(ty) = value {
            objects(doc, id, ty, 0, &mut out);
        }
    }
    out
}

fn key(k: u8) -> String {
    format!("k{}", k % 4)
}

fn nested(value: i64) -> ObjType {
    if value % 2 == 0 {
        ObjType::Map
    } else {
        ObjType::List
    }
}

/// One write into `obj`: put, delete, insert, edit or nest, by `action`.
fn write(
    doc: &mut AutoCommit,
    (obj, ty, depth): &(ObjId, ObjType, usize),
    action: u8,
    k: u8,
    value: i64,
) {
    let deep = *depth >= MAX_DEPTH;
    match ty {
        ObjType::Map | ObjType::Table => {
            let k = key(k);
            match action % 4 {
                1 if doc.get(obj, &k).unwrap().is_some() => doc.delete(obj, &k).unwrap(),
                2 | 3 if !deep => drop(doc.put_object(obj, &k, nested(value)).unwrap()),
                _ => doc.put(obj, &k, value).unwrap(),
            }
        }
        ObjType::List | ObjType::Text => {
            let len = doc.length(obj);
            let at = usize::from(k);
            match action % 4 {
                1 if len > 0 => doc.delete(obj, at % len).unwrap(),
                2 if len > 0 => doc.put(obj, at % len, value).unwrap(),
                3 if !deep => drop(
                    doc.insert_object(obj, at % (len + 1), nested(value))
                        .unwrap(),
                ),
                _ => doc.insert(obj, at % (len + 1), value).unwrap(),
            }
        }
    }
}

fn commit(doc: &mut AutoCommit) -> Change {
    doc.commit().expect("every step writes something");
    doc.get_last_local_change().unwrap()
}

impl World {
    fn new() -> Self {
        World {
            people: DEVICES.iter().map(|d| (*d, person_of(*d))).collect(),
            docs: DEVICES
                .iter()
                .map(|d| AutoCommit::new().with_actor(ActorId::from(*d)))
                .collect(),
            offered: Vec::new(),
            screened: 0,
            accepted: Vec::new(),
            refused: HashSet::new(),
            tick: 0,
        }
    }

    fn run(&mut self, step: &Step) {
        // A put of the value a key already holds makes no change: every value is new.
        self.tick += 1;
        let fresh = |value: i64| value + 10 * self.tick;
        match *step {
            Step::Honest {
                device,
                target,
                action,
                key,
                value,
            } => self.honest(device, target, action, key, fresh(value)),
            Step::Sync { device } => self.sync(device),
            Step::Hostile {
                kind,
                target,
                key,
                value,
                then_dependent,
            } => self.hostile(kind, target, key, fresh(value), then_dependent),
        }
    }

    fn honest(&mut self, device: usize, target: u8, action: u8, k: u8, value: i64) {
        let person = person_of(DEVICES[device]);
        let doc = &mut self.docs[device];
        let container = person_container_key(&person);
        let own = match doc.get(ROOT, &container).unwrap() {
            Some((Value::Object(ty), id)) => {
                let mut out = Vec::new();
                objects(doc, id, ty, 0, &mut out);
                out
            }
            _ => vec![(
                doc.put_object(ROOT, &container, ObjType::Map).unwrap(),
                ObjType::Map,
                0,
            )],
        };
        let chosen = &own[usize::from(target) % own.len()];
        write(doc, chosen, action, k, value);
        let change = commit(doc);
        self.offered
            .push((DEVICES[device], change, Expect::Accepted));
    }

    fn sync(&mut self, device: usize) {
        self.screen_pending();
        self.docs[device]
            .apply_changes(self.accepted.clone())
            .unwrap();
    }

    fn hostile(&mut self, kind: u8, target: u8, k: u8, value: i64, then_dependent: bool) {
        let mut fork = self.docs[2].clone();
        let alices = person_objects(&fork, &alice());
        let mut expect = Expect::Refused;
        match kind % 6 {
            // Put, delete, insert or nest into one of Alice's objects.
            0..=2 if !alices.is_empty() => {
                let chosen = &alices[usize::from(target) % alices.len()];
                write(&mut fork, chosen, kind % 6 + 1, k, value);
            }
            // Write as Alice's laptop, signed by Bob's device: even inside Bob's own
            // container (under its own key, so that a dependent does not overwrite it).
            4 => {
                fork = fork.with_actor(ActorId::from(A1));
                match fork.get(ROOT, person_container_key(&bob())).unwrap() {
                    Some((Value::Object(ObjType::Map), id)) => {
                        fork.put(&id, "forged", value).unwrap()
                    }
                    _ => fork.put(ROOT, "schema", value).unwrap(),
                }
                expect = Expect::ActorIsNotAuthor;
            }
            // Overwrite at the root: the schema, Alice's container, or Bob's own as a
            // scalar or a list.
            _ => match value.rem_euclid(5) {
                0 => fork.put(ROOT, "schema", value).unwrap(),
                1 => drop(
                    fork.put_object(ROOT, person_container_key(&alice()), ObjType::Map)
                        .unwrap(),
                ),
                2 if fork
                    .get(ROOT, person_container_key(&alice()))
                    .unwrap()
                    .is_some() =>
                {
                    fork.delete(ROOT, person_container_key(&alice())).unwrap();
                }
                3 => drop(
                    fork.put_object(ROOT, person_container_key(&bob()), ObjType::List)
                        .unwrap(),
                ),
                _ => fork.put(ROOT, person_container_key(&bob()), value).unwrap(),
            },
        }
        let change = commit(&mut fork);
        self.offered.push((B1, change, expect));
        if then_dependent {
            // Something Bob may write, on top of what he may not.
            let mut fork = fork.with_actor(ActorId::from(B1));
            let mine = person_container_key(&bob());
            match fork.get(ROOT, &mine).unwrap() {
                Some((Value::Object(ObjType::Map), id)) => fork.put(&id, "k0", value).unwrap(),
                _ => drop(fork.put_object(ROOT, &mine, ObjType::Map).unwrap()),
            }
            let change = commit(&mut fork);
            let then = if expect == Expect::ActorIsNotAuthor {
                Expect::Waits
            } else {
                Expect::DependsOnRefused
            };
            self.offered.push((B1, change, then));
        }
    }

    /// Screens what was offered since the last screen, as a device would each batch.
    fn screen_pending(&mut self) {
        let pending = &self.offered[self.screened..];
        let verdicts = screen(
            &self.people,
            pending.iter().map(|(signer, change, _)| (signer, change)),
            &self.refused,
        );
        for ((signer, change, expect), verdict) in pending.iter().zip(verdicts) {
            assert_eq!(verdict.hash, change.hash());
            let ok = match (expect, &verdict.outcome) {
                (Expect::Accepted, outcome) => outcome.is_ok(),
                (Expect::Refused, outcome) => outcome.is_err(),
                (Expect::ActorIsNotAuthor, Err(Refusal::ActorIsNotAuthor { .. })) => true,
                (Expect::DependsOnRefused, Err(Refusal::DependsOnRefused { .. })) => true,
                (Expect::Waits, Ok(())) => true,
                _ => false,
            };
            assert!(
                ok,
                "a change signed by {:?} expected {expect:?}, got {:?}",
                signer[0], verdict.outcome
            );
            match verdict.outcome {
                Ok(()) if *expect == Expect::Waits => {}
                Ok(()) => self.accepted.push(change.clone()),
                Err(reason) if reason.lasting() => {
                    self.refused.insert(verdict.hash);
                }
                Err(_) => {}
            }
        }
        self.screened = self.offered.len();
    }
}

/// A document's content, with each value's author, in a form that compares across
/// documents (object ids hold document-local actor indices, so they are left out).
fn dump(doc: &AutoCommit, obj: &ObjId, ty: ObjType, out: &mut String) {
    let entries: Vec<(String, Vec<(Value<'_>, ObjId)>)> = match ty {
        ObjType::Map | ObjType::Table => doc
            .keys(obj)
            .map(|k| (k.clone(), doc.get_all(obj, k).unwrap()))
            .collect(),
        ObjType::List | ObjType::Text => (0..doc.length(obj))
            .map(|i| (i.to_string(), doc.get_all(obj, i).unwrap()))
            .collect(),
    };
    out.push('{');
    for (k, values) in entries {
        for (value, id) in values {
            out.push_str(&format!("{k}@{}:", author(&id).map_or(0, |a| a[0])));
            match value {
                Value::Object(child) => dump(doc, &id, child, out),
                Value::Scalar(s) => out.push_str(&format!("{s:?}")),
            }
            out.push(',');
        }
    }
    out.push('}');
}

fn author(id: &ObjId) -> Option<[u8; 32]> {
    match id {
        ObjId::Root => None,
        ObjId::Id(_, actor, _) => actor.to_bytes().try_into().ok(),
    }
}

/// Every value and object under `person`'s containers was written by `person`'s devices.
fn only_own_writes(doc: &AutoCommit, person: &PersonKey) -> Result<(), String> {
    for (obj, ty, _) in person_objects(doc, person) {
        let ids: Vec<ObjId> = match ty {
            ObjType::Map | ObjType::Table => doc
                .keys(&obj)
                .flat_map(|k| doc.get_all(&obj, k).unwrap())
                .map(|(_, id)| id)
                .collect(),
            ObjType::List | ObjType::Text => (0..doc.length(&obj))
                .flat_map(|i| doc.get_all(&obj, i).unwrap())
                .map(|(_, id)| id)
                .collect(),
        };
        for id in std::iter::once(obj).chain(ids) {
            let writer = author(&id).filter(|a| DEVICES.contains(a)).map(person_of);
            if writer != Some(*person) {
                return Err(format!("{id:?} under {person:?} was written by {writer:?}"));
            }
        }
    }
    Ok(())
}

/// `changes` applied one at a time in this order (Automerge holds back those whose
/// dependencies have not arrived).
fn replay(changes: impl IntoIterator<Item = Change>) -> AutoCommit {
    let mut doc = AutoCommit::new();
    for change in changes {
        doc.apply_changes([change]).unwrap();
    }
    assert!(
        doc.get_missing_deps(&[]).is_empty(),
        "every dependency arrived"
    );
    doc
}

fn shuffled<T>(mut items: Vec<T>, mut seed: u64) -> Vec<T> {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap();
        items.swap(i, j);
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hostile_changes_are_refused_and_honest_devices_converge(
        steps in prop::collection::vec(step(), 1..40),
        seed in 1..u64::MAX,
    ) {
        let mut world = World::new();
        for step in &steps {
            world.run(step);
        }
        world.screen_pending();

        let honest = world.offered.iter().filter(|(_, _, e)| *e == Expect::Accepted).count();
        prop_assert_eq!(world.accepted.len(), honest);

        let accepted = world.accepted.clone();
        let mut docs = [
            replay(accepted.clone()),
            replay(accepted.iter().rev().cloned()),
            replay(shuffled(accepted, seed)),
        ];
        let heads: Vec<_> = docs.iter_mut().map(AutoCommit::get_heads).collect();
        prop_assert_eq!(&heads[0], &heads[1]);
        prop_assert_eq!(&heads[0], &heads[2]);
        let dumps: Vec<String> = docs
            .iter()
            .map(|d| {
                let mut out = String::new();
                dump(d, &ROOT, ObjType::Map, &mut out);
                out
            })
            .collect();
        prop_assert_eq!(&dumps[0], &dumps[1]);
        prop_assert_eq!(&dumps[0], &dumps[2]);

        // Each honest device, once it has everything accepted, is at the same place.
        for device in 0..3 {
            world.sync(device);
            prop_assert_eq!(world.docs[device].get_heads(), heads[0].clone());
        }

        let root_keys: Vec<String> = docs[0].keys(ROOT).collect();
        let containers = [person_container_key(&alice()), person_container_key(&bob())];
        prop_assert!(root_keys.iter().all(|k| containers.contains(k)), "root: {:?}", root_keys);
        prop_assert_eq!(only_own_writes(&docs[0], &alice()), Ok(()));
        prop_assert_eq!(only_own_writes(&docs[0], &bob()), Ok(()));
    }
}
