//! Who may write what: the rule that keeps what each partner writes theirs.
//!
//! A space is shared by two people, each with one or more devices. Envelope signatures tell
//! a device which device sent a change, but an Automerge change can touch any part of the
//! document: without a rule over its contents, a partner's modified client could write
//! entries in the other's name, rewrite or delete the other's entries, or make changes under
//! the other's actor id and fork sync for good. This module is that rule, as pure functions
//! over a decoded change, so that it can be checked before anything is applied and tested
//! on its own.
//!
//! ## The rule
//!
//! **A change signed by device D may only touch objects created by actors of person(D).**
//!
//! * **Who is whom** ([`People`]). Every device belongs to one person, and a person is named
//!   by a [`PersonKey`]: the device that founded them in the space's signed ACL (the device
//!   that created the space, or the one that consumed the partner invite). A device added
//!   with an own-device invite belongs to the person of the device that issued the invite.
//!   This comes from the signed chain only, never from what a profile says about itself (a
//!   profile's person id is one row anyone can edit on their own machine). Removed devices
//!   keep their person, so what they wrote stays theirs.
//! * **The actor is the signer.** Each device writes under the Automerge actor id equal to
//!   its 32-byte device id. A change whose actor is not the device that signed it is
//!   refused ([`Refusal::ActorIsNotAuthor`]): otherwise a partner could write under the
//!   other's actor id, and the two sides would see two different changes with the same
//!   actor and sequence number (a fork nothing can heal).
//! * **Only one's own objects.** Every Automerge object is named by the id of the op that
//!   created it, and an op id carries its actor. So every op of an accepted change must
//!   target an object whose creating actor is a device of person(D)
//!   ([`Refusal::OutsideOwnContainer`]). The root map belongs to nobody; the one op a person
//!   may make there is creating their own container, a map at
//!   [`person_container_key`]`(person)` ([`Refusal::RootWrite`] otherwise).
//! * **Only one's own values.** An op names what it overwrites or deletes by op id (its
//!   `pred`); every such op must have been made by an actor of person(D)
//!   ([`Refusal::OverwritesOther`]). A list op names the element it inserts after, sets or
//!   deletes by the element's op id; that element must have been inserted by person(D)
//!   ([`Refusal::ForeignElement`]). Both hold trivially in one's own container today; they
//!   keep holding for objects that somehow hold the other's ops (an old layout, a bug).
//! * **Dependents fall with what they depend on** ([`screen`]). A change whose `deps` name a
//!   refused change is refused too ([`Refusal::DependsOnRefused`]), since Automerge could
//!   never apply it without the refused one. Changes that do not depend on a refused one,
//!   such as the honest partner's, are judged on their own.
//!
//! ## Why decide on the decoded change alone
//!
//! The check reads only the change: the signer, the actor ids inside the op ids, and the
//! [`People`] map. It needs no document walk, so it costs a few hash lookups per op, works
//! the same for a change arriving alone, inside a snapshot or in a joining device's initial
//! load, and never needs to apply first and undo (Automerge cannot undo). Everything it does
//! not recognise is refused, with a reason the caller can log and report once.
//!
//! What the rule does not decide: whether the signer may still write at all (a removed
//! device's later envelopes are refused by the envelope layer, from the ACL), and anything
//! about the values written (roles in a feedback thread, sealing) — those are checked on
//! read and in the CLI.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ChangeHash, ObjType};

/// A person in a space, named by the device that founded them in the signed ACL: the
/// device that created the space, or the one that consumed the partner invite.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey([u8; 32]);

impl PersonKey {
    /// The person founded by `device` (its 32-byte device id).
    pub fn from_founding_device(device: [u8; 32]) -> Self {
        Self(device)
    }

    /// The person a device with Automerge actor `actor` founds when no ACL says otherwise
    /// (a space that never met a relay): the actor itself if it is a 32-byte device id,
    /// else a hash of it.
    pub fn for_actor(actor: &[u8]) -> Self {
        match <[u8; 32]>::try_from(actor) {
            Ok(device) => Self(device),
            Err(_) => Self(*blake3::hash(actor).as_bytes()),
        }
    }

    /// The founding device's id.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonKey({})", hex::encode(&self.0[..4]))
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The root key of `person`'s own container: `by/<hex of the person key>`. The one key of
/// the root map that person may write, and only to create their container there.
pub fn person_container_key(person: &PersonKey) -> String {
    format!("by/{person}")
}

/// Which person each device of a space belongs to, as the signed ACL says.
///
/// Built from plain `(device id, person)` pairs so that this crate need not know the ACL's
/// format; the client derives the pairs from a verified chain. Include removed devices:
/// their old objects stay their person's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct People {
    devices: HashMap<[u8; 32], PersonKey>,
    /// The device that created the space (its Genesis record), if known.
    founder: Option<[u8; 32]>,
}

impl People {
    /// The same people, with `device` named as the one that created the space: in a space
    /// of the first layout it made the shared collections at the root (see [`Legacy`]).
    #[must_use]
    pub fn with_founder(mut self, device: [u8; 32]) -> Self {
        self.founder = Some(device);
        self
    }

    /// The device that created the space, if known.
    pub fn founder(&self) -> Option<&[u8; 32]> {
        self.founder.as_ref()
    }

    /// Every known device with its person.
    pub fn devices(&self) -> impl Iterator<Item = (&[u8; 32], &PersonKey)> {
        self.devices.iter()
    }

    /// The person `device` belongs to, if the ACL knows the device.
    pub fn person(&self, device: &[u8]) -> Option<PersonKey> {
        let device: &[u8; 32] = device.try_into().ok()?;
        self.devices.get(device).copied()
    }

    /// How many devices are known.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is known.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    fn owner(&self, actor: &ActorId) -> Option<PersonKey> {
        self.person(actor.to_bytes())
    }
}

impl FromIterator<([u8; 32], PersonKey)> for People {
    fn from_iter<I: IntoIterator<Item = ([u8; 32], PersonKey)>>(iter: I) -> Self {
        Self {
            devices: iter.into_iter().collect(),
            founder: None,
        }
    }
}

/// Why a change was refused. `owner` is the person whose op or object was touched, `None`
/// for an actor no device of the ACL has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The change's Automerge actor is not a device of the person whose device sent it:
    /// it came through someone who cannot vouch for it. Not remembered (see
    /// [`Refusal::lasting`]): the change may still arrive from its own device.
    ActorIsNotAuthor {
        /// The actor id the change carries.
        actor: Vec<u8>,
    },
    /// The signing device (or, inside a snapshot, the change's actor) is not in the ACL,
    /// so it belongs to no person. Not remembered: the ACL may not have reached this
    /// device yet.
    UnknownDevice,
    /// An op targets an object another person's device created.
    OutsideOwnContainer {
        /// Who created the object.
        owner: Option<PersonKey>,
    },
    /// An op writes to the root map other than by creating the signer's own container.
    RootWrite {
        /// The root key written (list positions at the root are shown as `#<counter>`).
        key: String,
    },
    /// An op overwrites or deletes a value another person's device wrote.
    OverwritesOther {
        /// Who wrote the value.
        owner: Option<PersonKey>,
    },
    /// A list op inserts after, sets or deletes an element another person inserted.
    ForeignElement {
        /// Who inserted the element.
        owner: Option<PersonKey>,
    },
    /// The change depends on a change that was refused.
    DependsOnRefused {
        /// The refused change it depends on.
        on: ChangeHash,
    },
    /// The change's ops could not be decoded (they name an actor the change does not list).
    Undecodable,
    /// The change is not something an Automerge document could have made: an op on an
    /// object that does not exist, a key of the wrong kind for its object, an op that
    /// names a later op as what it overwrites, counters that run backwards.
    Malformed {
        /// What is wrong with it.
        what: &'static str,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = |owner: &Option<PersonKey>| match owner {
            Some(p) => format!("person {}", hex::encode(&p.0[..4])),
            None => "a device outside the space".to_owned(),
        };
        match self {
            Self::ActorIsNotAuthor { actor } => write!(
                f,
                "it is written under device {}, which is not one of the sender's own",
                hex::encode(&actor[..actor.len().min(4)])
            ),
            Self::UnknownDevice => f.write_str("its device is not in the space's ACL"),
            Self::OutsideOwnContainer { owner } => {
                write!(f, "it writes into an object of {}", who(owner))
            }
            Self::RootWrite { key } => write!(f, "it writes the root key {key:?}"),
            Self::OverwritesOther { owner } => {
                write!(f, "it overwrites or deletes a value of {}", who(owner))
            }
            Self::ForeignElement { owner } => {
                write!(f, "it edits next to a list element of {}", who(owner))
            }
            Self::DependsOnRefused { on } => write!(f, "it depends on refused change {on}"),
            Self::Undecodable => f.write_str("its operations do not decode"),
            Self::Malformed { what } => write!(f, "it is malformed: {what}"),
        }
    }
}

impl Refusal {
    /// Whether the change is refused for good, whoever brings it: what it does breaks the
    /// rule. Its hash is then remembered so that changes depending on it are refused too
    /// ([`screen`]'s `refused`). A change refused only for who brought it
    /// ([`Refusal::ActorIsNotAuthor`], [`Refusal::UnknownDevice`]) is not: its own device
    /// may still send it, and changes built on it wait for it as for any change that has
    /// not arrived.
    pub fn lasting(&self) -> bool {
        !matches!(self, Self::ActorIsNotAuthor { .. } | Self::UnknownDevice)
    }
}

/// The root keys of the first layout (`schema: 1`), where both partners wrote into the
/// same lists and maps. Spaces made before per-person containers keep them; see
/// [`Legacy`].
pub const LEGACY_ROOT_KEYS: [&str; 13] = [
    "schema",
    "people",
    "checkins",
    "submissions",
    "appreciations",
    "feedback",
    "replies",
    "journal",
    "commitments",
    "edits",
    "reveals",
    "decks",
    // A key some early builds wrote and readers never used; accepted so that old
    // histories still screen.
    "templates",
];

/// The objects of the first layout: the shared collections under [`LEGACY_ROOT_KEYS`],
/// named by the op that created each (counter, actor).
///
/// Both partners wrote into them before the upgrade, and a partner still on an older
/// release writes into them after it, so they take *additions* from anyone: inserting at
/// the head of a list or after one's own element, putting a key nobody wrote, overwriting or
/// deleting one's own values. Nothing there can be changed or removed by the other person.
/// Readers attribute what is in them by the actor of the op that wrote it, never by what it
/// says about its author (see `docs/security.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Legacy {
    objects: HashSet<(u64, ActorId)>,
}

impl Legacy {
    /// The legacy objects among `(counter, actor)` op ids of root objects.
    pub fn from_ids(ids: impl IntoIterator<Item = (u64, ActorId)>) -> Self {
        Self {
            objects: ids.into_iter().collect(),
        }
    }

    fn contains(&self, id: &OpId) -> bool {
        self.objects.contains(&(id.counter(), id.actor().clone()))
    }

    /// Adds the legacy collections `change` creates at the root, so that later changes in
    /// the same batch may write into them.
    fn learn(&mut self, change: &Change) {
        let Ok(expanded) = catch_unwind(AssertUnwindSafe(|| change.decode())) else {
            return;
        };
        for (counter, op) in (change.start_op().get()..).zip(&expanded.operations) {
            if matches!(op.obj, ObjectId::Root)
                && matches!(op.action, OpType::Make(_))
                && matches!(&op.key, Key::Map(k) if LEGACY_ROOT_KEYS.contains(&k.as_str()))
            {
                self.objects.insert((counter, change.actor_id().clone()));
            }
        }
    }
}

/// Whether `change`, signed by device `signer`, may be applied: `Ok` if every op stays
/// within objects of the signer's person (see the module docs), else the first reason.
/// Knows no legacy objects: see [`check_change_in`].
///
/// # Errors
///
/// The [`Refusal`] for the first rule the change breaks.
pub fn check_change(people: &People, signer: &[u8; 32], change: &Change) -> Result<(), Refusal> {
    check_change_in(people, &Legacy::default(), signer, change)
}

/// [`check_change`] in a space that may hold the first layout's shared collections
/// (`legacy`), which take additions from anyone (see [`Legacy`]).
///
/// # Errors
///
/// The [`Refusal`] for the first rule the change breaks.
pub fn check_change_in(
    people: &People,
    legacy: &Legacy,
    signer: &[u8; 32],
    change: &Change,
) -> Result<(), Refusal> {
    let me = people.person(signer).ok_or(Refusal::UnknownDevice)?;
    // The actor must be one of the sender's own person's devices: a person's devices may
    // carry each other's changes (after a relay lost its history each device pushes what
    // it holds), but nobody can vouch for the other person's.
    if people.owner(change.actor_id()) != Some(me) {
        return Err(Refusal::ActorIsNotAuthor {
            actor: change.actor_id().to_bytes().to_vec(),
        });
    }
    // automerge 0.12 unwraps an op's actor index into the change's actor table when
    // expanding, without checking it was in range; `Change::from_bytes` does not check it
    // either, so hostile bytes could panic here.
    let expanded =
        catch_unwind(AssertUnwindSafe(|| change.decode())).map_err(|_| Refusal::Undecodable)?;
    let mine = |id: &OpId| people.owner(id.actor()) == Some(me);
    let owner = |id: &OpId| people.owner(id.actor());
    let own_container = person_container_key(&me);
    // The first layout's collections are made at the root by the device that created the
    // space, and by anyone once the space has them (an old release fills in one it lacks).
    // The founder only in the space's very first change: later, a root `people` map or
    // list would let them bind the partner's id to themselves.
    let may_make_legacy = !legacy.objects.is_empty()
        || (people.founder() == Some(signer) && change.deps().is_empty());
    for op in &expanded.operations {
        match &op.obj {
            ObjectId::Root => {
                let creates_own_container = matches!(op.action, OpType::Make(ObjType::Map))
                    && !op.insert
                    && matches!(&op.key, Key::Map(k) if k.as_str() == own_container);
                // The first layout's collections and schema, as old releases create them.
                let legacy_root = may_make_legacy
                    && !op.insert
                    && matches!(&op.key, Key::Map(k) if LEGACY_ROOT_KEYS.contains(&k.as_str()))
                    && matches!(op.action, OpType::Make(_) | OpType::Put(_));
                if !creates_own_container && !legacy_root {
                    return Err(Refusal::RootWrite {
                        key: match &op.key {
                            Key::Map(k) => k.to_string(),
                            Key::Seq(ElementId::Head) => "#head".to_owned(),
                            Key::Seq(ElementId::Id(id)) => format!("#{}", id.counter()),
                        },
                    });
                }
            }
            ObjectId::Id(obj) if !mine(obj) && !legacy.contains(obj) => {
                return Err(Refusal::OutsideOwnContainer { owner: owner(obj) });
            }
            ObjectId::Id(_) => {}
        }
        if let Key::Seq(ElementId::Id(element)) = &op.key
            && !mine(element)
        {
            return Err(Refusal::ForeignElement {
                owner: owner(element),
            });
        }
        if let Some(pred) = op.pred.iter().find(|p| !mine(p)) {
            return Err(Refusal::OverwritesOther { owner: owner(pred) });
        }
    }
    Ok(())
}

/// What [`screen`] decided about one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The change's hash.
    pub hash: ChangeHash,
    /// `Ok` to apply it, or why not.
    pub outcome: Result<(), Refusal>,
}

/// Judges a batch of `(signer, change)` pairs: each by [`check_change`], then every change
/// that depends, directly or through others in the batch, on a refused one (in `refused`,
/// the hashes refused before, or in this batch) is refused with
/// [`Refusal::DependsOnRefused`]. Returns one verdict per change, in order.
///
/// The caller keeps every hash refused for good ([`Refusal::lasting`]) in `refused` for
/// the next batch, so a change that arrives long after the one it depends on is still
/// caught.
pub fn screen<'a>(
    people: &People,
    changes: impl IntoIterator<Item = (&'a [u8; 32], &'a Change)>,
    refused: &HashSet<ChangeHash>,
) -> Vec<Verdict> {
    screen_in(people, &Legacy::default(), changes, refused)
}

/// [`screen`] in a space that may hold the first layout's collections (`legacy`, which
/// grows by the ones the batch itself creates).
pub fn screen_in<'a>(
    people: &People,
    legacy: &Legacy,
    changes: impl IntoIterator<Item = (&'a [u8; 32], &'a Change)>,
    refused: &HashSet<ChangeHash>,
) -> Vec<Verdict> {
    let mut legacy = legacy.clone();
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut dependents: HashMap<ChangeHash, Vec<usize>> = HashMap::new();
    for (i, (signer, change)) in changes.into_iter().enumerate() {
        for dep in change.deps() {
            dependents.entry(*dep).or_default().push(i);
        }
        let outcome = check_change_in(people, &legacy, signer, change);
        if outcome.is_ok() {
            legacy.learn(change);
        }
        verdicts.push(Verdict {
            hash: change.hash(),
            outcome,
        });
    }
    let mut fallen: VecDeque<ChangeHash> = refused
        .iter()
        .copied()
        .chain(
            verdicts
                .iter()
                .filter(|v| v.outcome.as_ref().is_err_and(Refusal::lasting))
                .map(|v| v.hash),
        )
        .collect();
    while let Some(on) = fallen.pop_front() {
        for &i in dependents.get(&on).into_iter().flatten() {
            let verdict = &mut verdicts[i];
            if verdict.outcome.is_ok() {
                verdict.outcome = Err(Refusal::DependsOnRefused { on });
                fallen.push_back(verdict.hash);
            }
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ReadDoc};

    const A1: [u8; 32] = [1; 32];
    const A2: [u8; 32] = [2; 32];
    const B1: [u8; 32] = [3; 32];

    fn alice() -> PersonKey {
        PersonKey::from_founding_device(A1)
    }

    fn bob() -> PersonKey {
        PersonKey::from_founding_device(B1)
    }

    fn people() -> People {
        [(A1, alice()), (A2, alice()), (B1, bob())]
            .into_iter()
            .collect()
    }

    fn device(id: [u8; 32]) -> AutoCommit {
        AutoCommit::new().with_actor(ActorId::from(id))
    }

    /// The change `write` makes on `doc`, as one change.
    fn change(
        doc: &mut AutoCommit,
        write: impl FnOnce(&mut AutoCommit) -> Result<(), automerge::AutomergeError>,
    ) -> Change {
        write(doc).unwrap();
        doc.commit().expect("the write made a change");
        doc.get_last_local_change().unwrap()
    }

    fn sync(to: &mut AutoCommit, from: &mut AutoCommit) {
        to.merge(from).unwrap();
    }

    /// Alice's laptop with her container holding a map `notes` and a list `items` with one
    /// element, and Bob's phone holding a copy of it.
    fn alice_and_bob() -> (AutoCommit, AutoCommit, Change) {
        let mut laptop = device(A1);
        let made = change(&mut laptop, |d| {
            let mine = d.put_object(ROOT, person_container_key(&alice()), ObjType::Map)?;
            d.put_object(&mine, "notes", ObjType::Map)?;
            let items = d.put_object(&mine, "items", ObjType::List)?;
            d.insert(&items, 0, "first")?;
            Ok(())
        });
        let mut phone = device(B1);
        sync(&mut phone, &mut laptop);
        (laptop, phone, made)
    }

    fn alices(doc: &AutoCommit, field: &str) -> automerge::ObjId {
        let container = doc
            .get(ROOT, person_container_key(&alice()))
            .unwrap()
            .unwrap()
            .1;
        doc.get(&container, field).unwrap().unwrap().1
    }

    #[test]
    fn writing_anywhere_inside_ones_own_container_is_accepted_from_any_own_device() {
        let (mut laptop, _, made) = alice_and_bob();
        assert_eq!(check_change(&people(), &A1, &made), Ok(()));

        let mut desktop = device(A2);
        sync(&mut desktop, &mut laptop);
        let notes = alices(&desktop, "notes");
        let items = alices(&desktop, "items");
        let edits = change(&mut desktop, |d| {
            d.put(&notes, "title", "from the desktop")?;
            let nested = d.put_object(&notes, "tags", ObjType::List)?;
            d.insert(&nested, 0, "home")?;
            d.insert(&items, 1, "second")?;
            d.put(&items, 0, "first, edited")?;
            d.delete(&items, 1)?;
            Ok(())
        });
        assert_eq!(check_change(&people(), &A2, &edits), Ok(()));
    }

    #[test]
    fn a_change_under_another_actor_than_its_signer_is_refused() {
        let (_, phone, _) = alice_and_bob();
        let mut posing = phone.with_actor(ActorId::from(A1));
        let forged = change(&mut posing, |d| {
            d.put_object(ROOT, person_container_key(&bob()), ObjType::Map)?;
            Ok(())
        });
        assert_eq!(
            check_change(&people(), &B1, &forged),
            Err(Refusal::ActorIsNotAuthor { actor: A1.to_vec() })
        );
    }

    #[test]
    fn a_change_from_a_device_outside_the_acl_is_refused() {
        let stranger = [9; 32];
        let mut doc = device(stranger);
        let made = change(&mut doc, |d| {
            let key = person_container_key(&PersonKey::from_founding_device(stranger));
            d.put_object(ROOT, key, ObjType::Map)?;
            Ok(())
        });
        assert_eq!(
            check_change(&people(), &stranger, &made),
            Err(Refusal::UnknownDevice)
        );
    }

    #[test]
    fn writing_into_the_partners_objects_is_refused() {
        let (_, mut phone, _) = alice_and_bob();
        let notes = alices(&phone, "notes");
        let items = alices(&phone, "items");
        let refused = Err(Refusal::OutsideOwnContainer {
            owner: Some(alice()),
        });
        let put = change(&mut phone, |d| d.put(&notes, "title", "written by Bob"));
        assert_eq!(check_change(&people(), &B1, &put), refused);
        let insert = change(&mut phone, |d| d.insert(&items, 0, "also Bob"));
        assert_eq!(check_change(&people(), &B1, &insert), refused);
        let delete = change(&mut phone, |d| d.delete(&items, 0));
        assert_eq!(check_change(&people(), &B1, &delete), refused);
    }

    #[test]
    fn writing_the_root_other_than_creating_ones_own_container_is_refused() {
        let (_, phone, _) = alice_and_bob();
        type Write = Box<dyn Fn(&mut AutoCommit) -> Result<(), automerge::AutomergeError>>;
        let cases: [(&str, Write); 4] = [
            (
                "schema",
                Box::new(|d: &mut AutoCommit| d.put(ROOT, "schema", 2)),
            ),
            (
                "the partner's container key",
                Box::new(|d: &mut AutoCommit| {
                    d.put_object(ROOT, person_container_key(&alice()), ObjType::Map)
                        .map(drop)
                }),
            ),
            (
                "deleting the partner's container",
                Box::new(|d: &mut AutoCommit| d.delete(ROOT, person_container_key(&alice()))),
            ),
            (
                "one's own key as a list",
                Box::new(|d: &mut AutoCommit| {
                    d.put_object(ROOT, person_container_key(&bob()), ObjType::List)
                        .map(drop)
                }),
            ),
        ];
        for (what, write) in cases {
            let mut fork = phone.clone();
            let made = change(&mut fork, |d| write(d));
            assert!(
                matches!(
                    check_change(&people(), &B1, &made),
                    Err(Refusal::RootWrite { .. })
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn overwriting_a_value_the_partner_wrote_is_refused_even_in_ones_own_container() {
        // Alice's unchecked write into Bob's container, as an old layout or a bug could
        // have left: Bob may not overwrite or delete it either.
        let mut phone = device(B1);
        change(&mut phone, |d| {
            let mine = d.put_object(ROOT, person_container_key(&bob()), ObjType::Map)?;
            d.put(&mine, "name", "Bob")?;
            Ok(())
        });
        let mut laptop = device(A1);
        sync(&mut laptop, &mut phone);
        let bobs = laptop
            .get(ROOT, person_container_key(&bob()))
            .unwrap()
            .unwrap()
            .1;
        change(&mut laptop, |d| d.put(&bobs, "name", "Bobby"));
        sync(&mut phone, &mut laptop);
        let overwrite = change(&mut phone, |d| d.put(&bobs, "name", "Bob again"));
        assert_eq!(
            check_change(&people(), &B1, &overwrite),
            Err(Refusal::OverwritesOther {
                owner: Some(alice())
            })
        );
    }

    #[test]
    fn recreating_a_container_over_the_partners_root_write_is_refused() {
        let mut phone = device(B1);
        change(&mut phone, |d| {
            d.put(ROOT, person_container_key(&alice()), "taken")
        });
        let mut laptop = device(A1);
        sync(&mut laptop, &mut phone);
        let made = change(&mut laptop, |d| {
            d.put_object(ROOT, person_container_key(&alice()), ObjType::Map)
                .map(drop)
        });
        assert_eq!(
            check_change(&people(), &A1, &made),
            Err(Refusal::OverwritesOther { owner: Some(bob()) })
        );
    }

    #[test]
    fn inserting_after_an_element_the_partner_inserted_is_refused() {
        let mut phone = device(B1);
        change(&mut phone, |d| {
            let mine = d.put_object(ROOT, person_container_key(&bob()), ObjType::Map)?;
            d.put_object(&mine, "items", ObjType::List)?;
            Ok(())
        });
        let mut laptop = device(A1);
        sync(&mut laptop, &mut phone);
        let bobs = laptop
            .get(ROOT, person_container_key(&bob()))
            .unwrap()
            .unwrap()
            .1;
        let items = laptop.get(&bobs, "items").unwrap().unwrap().1;
        change(&mut laptop, |d| d.insert(&items, 0, "Alice's, unchecked"));
        sync(&mut phone, &mut laptop);
        let after = change(&mut phone, |d| d.insert(&items, 1, "Bob's"));
        assert_eq!(
            check_change(&people(), &B1, &after),
            Err(Refusal::ForeignElement {
                owner: Some(alice())
            })
        );
    }

    #[test]
    fn a_change_depending_on_a_refused_one_is_refused_and_the_partners_are_not() {
        let (mut laptop, mut phone, made) = alice_and_bob();
        let notes = alices(&phone, "notes");
        let hostile = change(&mut phone, |d| d.put(&notes, "title", "Bob's"));
        let dependent = change(&mut phone, |d| {
            d.put_object(ROOT, person_container_key(&bob()), ObjType::Map)
                .map(drop)
        });
        let next = change(&mut phone, |d| {
            let mine = d.get(ROOT, person_container_key(&bob()))?.unwrap().1;
            d.put(&mine, "name", "Bob")
        });
        let honest = change(&mut laptop, |d| d.put(&notes, "title", "Alice's"));

        let batch = [
            (&A1, &made),
            (&B1, &hostile),
            (&B1, &next),
            (&B1, &dependent),
            (&A1, &honest),
        ];
        let outcomes: Vec<_> = screen(&people(), batch, &HashSet::new())
            .into_iter()
            .map(|v| v.outcome)
            .collect();
        assert_eq!(outcomes[0], Ok(()));
        assert!(matches!(
            outcomes[1],
            Err(Refusal::OutsideOwnContainer { .. })
        ));
        assert_eq!(
            outcomes[2],
            Err(Refusal::DependsOnRefused {
                on: dependent.hash()
            }),
            "through a dependent later in the batch"
        );
        assert_eq!(
            outcomes[3],
            Err(Refusal::DependsOnRefused { on: hostile.hash() })
        );
        assert_eq!(outcomes[4], Ok(()), "the partner's change stands");

        let earlier = HashSet::from([hostile.hash()]);
        let later = screen(&people(), [(&B1, &dependent)], &earlier);
        assert_eq!(
            later[0].outcome,
            Err(Refusal::DependsOnRefused { on: hostile.hash() }),
            "refused in an earlier batch"
        );
    }

    #[test]
    fn a_container_key_spells_the_whole_person_key() {
        let key = person_container_key(&PersonKey::from_founding_device([0xab; 32]));
        assert_eq!(key, format!("by/{}", "ab".repeat(32)));
    }
}
