//! A hostile partner with a modified client, against "authorship by construction".
//!
//! Bob (device PHONE) shares a space with Ana (LAPTOP, DESKTOP). Bob builds raw Automerge
//! changes and hands them to Ana's devices through `SpaceDoc::apply_screened`, signed by his
//! own device. Every test asserts the promise (docs/security.md, "The authorship rule"), so it
//! is red while the attack works and green once it does not.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::num::NonZeroU64;

use automerge::legacy::{Key, ObjectId, OpType, SortedVec};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, Change, ChangeHash, ExpandedChange, ObjId, ObjType, ROOT, ReadDoc,
    ScalarValue,
};
use hearth_doc::authorship::{People, PersonKey, person_container_key};
use hearth_doc::{
    Answers, EntryId, FeedbackDraft, JournalDraft, Millis, PersonId, ReplyKind, Screened, Seal,
    SpaceDoc, Week, weekly_deck,
};

const LAPTOP: [u8; 32] = [0xa1; 32];
const DESKTOP: [u8; 32] = [0xa2; 32];
const PHONE: [u8; 32] = [0xb1; 32];

const T0: i64 = 1_763_900_000_000;

fn at(minutes: i64) -> Millis {
    Millis(T0 + minutes * 60_000)
}

fn ana() -> PersonId {
    "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0".parse().unwrap()
}

fn ben() -> PersonId {
    "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".parse().unwrap()
}

fn ana_key() -> PersonKey {
    PersonKey::from_founding_device(LAPTOP)
}

fn bob_key_of(phone: [u8; 32]) -> PersonKey {
    PersonKey::from_founding_device(phone)
}

fn people_with(phone: [u8; 32], founder: [u8; 32]) -> People {
    [
        (LAPTOP, ana_key()),
        (DESKTOP, ana_key()),
        (phone, bob_key_of(phone)),
    ]
    .into_iter()
    .collect::<People>()
    .with_founder(founder)
}

fn people() -> People {
    people_with(PHONE, LAPTOP)
}

fn answers(pairs: &[(&str, &str)]) -> Answers {
    weekly_deck().parse_answers(pairs.iter().copied()).unwrap()
}

fn week(s: &str) -> Week {
    s.parse().unwrap()
}

/// `to` receives everything `from` holds, as sent by `sender`. Changes of other people's
/// devices in it are refused for who brought them, which is fine: they are only ever
/// relayed here, each device below gets them from their own device too.
fn sync(to: &mut SpaceDoc, from: &mut SpaceDoc, sender: &[u8; 32]) -> Screened {
    let bytes = from.changes_since(&[]);
    to.apply_screened([(sender, &bytes[..])], &HashSet::new())
        .unwrap()
}

/// Bob's own device (`phone`) and Ana's two, all in sync, in a space Ana's laptop made.
struct Space {
    laptop: SpaceDoc,
    desktop: SpaceDoc,
    phone: SpaceDoc,
    phone_id: [u8; 32],
}

impl Space {
    fn new() -> Space {
        Space::with(PHONE, people())
    }

    fn with(phone_id: [u8; 32], people: People) -> Space {
        let mut laptop = SpaceDoc::create(&LAPTOP, &ana(), "Ana", at(0)).unwrap();
        laptop.set_people(people.clone());
        let snapshot = laptop.save_snapshot();
        let mut desktop = SpaceDoc::load(&DESKTOP, &snapshot, []).unwrap();
        desktop.set_people(people.clone());
        let mut phone = SpaceDoc::load(&phone_id, &snapshot, []).unwrap();
        phone.set_people(people);
        phone.add_person(&ben(), "Ben", at(1)).unwrap();
        let mut s = Space {
            laptop,
            desktop,
            phone,
            phone_id,
        };
        s.sync_all();
        s
    }

    fn sync_all(&mut self) {
        for _ in 0..2 {
            sync(&mut self.laptop, &mut self.desktop, &DESKTOP);
            sync(&mut self.laptop, &mut self.phone, &self.phone_id);
            sync(&mut self.desktop, &mut self.laptop, &LAPTOP);
            sync(&mut self.desktop, &mut self.phone, &self.phone_id);
            sync(&mut self.phone, &mut self.laptop, &LAPTOP);
            sync(&mut self.phone, &mut self.desktop, &DESKTOP);
        }
    }

    /// A raw copy of Bob's document, to write anything with.
    fn bobs_fork(&mut self) -> AutoCommit {
        fork(&mut self.phone, self.phone_id)
    }

    fn bob_key(&self) -> PersonKey {
        bob_key_of(self.phone_id)
    }
}

fn fork(doc: &mut SpaceDoc, actor: [u8; 32]) -> AutoCommit {
    AutoCommit::load(&doc.save_snapshot())
        .unwrap()
        .with_actor(ActorId::from(actor))
}

/// The one change `write` makes on `doc`.
fn raw(doc: &mut AutoCommit, write: impl FnOnce(&mut AutoCommit)) -> Change {
    write(doc);
    doc.commit().expect("the write made a change");
    doc.get_last_local_change().unwrap()
}

/// The change rebuilt after `edit` (a hand-crafted change).
fn craft(change: &Change, edit: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut e = change.decode();
    edit(&mut e);
    e.hash = None;
    Change::from(e)
}

fn bytes_of(changes: &mut [Change]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in changes {
        out.extend_from_slice(&c.bytes());
    }
    out
}

/// Bob's device sends `changes` to `to` in one envelope.
fn offer(to: &mut SpaceDoc, signer: &[u8; 32], changes: &mut [Change]) -> Screened {
    let bytes = bytes_of(changes);
    to.apply_screened([(signer, &bytes[..])], &HashSet::new())
        .unwrap()
}

fn offer_remembering(
    to: &mut SpaceDoc,
    signer: &[u8; 32],
    changes: &mut [Change],
    refused: &mut HashSet<ChangeHash>,
) -> Screened {
    let bytes = bytes_of(changes);
    let out = to.apply_screened([(signer, &bytes[..])], refused).unwrap();
    refused.extend(
        out.refused
            .iter()
            .filter(|r| r.reason.lasting())
            .map(|r| r.hash),
    );
    out
}

fn container(doc: &AutoCommit, key: &PersonKey) -> ObjId {
    doc.get(ROOT, person_container_key(key)).unwrap().unwrap().1
}

/// The collection `name` in `obj`, made if missing.
fn collection(doc: &mut AutoCommit, obj: &ObjId, name: &str, ty: ObjType) -> ObjId {
    match doc.get(obj, name).unwrap() {
        Some((v, id)) if v.to_objtype() == Some(ty) => id,
        _ => doc.put_object(obj, name, ty).unwrap(),
    }
}

fn appreciation_json(id: &str, author: &PersonId, text: &str, when: Millis) -> String {
    format!(
        r#"{{"id":"{id}","author":"{}","text":"{text}","created_at":{}}}"#,
        author.as_str(),
        when.0
    )
}

fn ana_texts(doc: &SpaceDoc) -> Vec<String> {
    doc.appreciations()
        .into_iter()
        .filter(|a| a.author == ana())
        .map(|a| a.text)
        .collect()
}

fn ids(doc: &SpaceDoc) -> Vec<PersonId> {
    let mut ids: Vec<PersonId> = doc.people().into_iter().map(|p| p.id).collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------
// What holds
// ---------------------------------------------------------------------------------------

#[test]
fn writes_into_anas_container_or_the_root_are_refused_and_her_views_stay() {
    let mut s = Space::new();
    s.laptop
        .add_appreciation(&ana(), "Ana's own", at(5))
        .unwrap();
    s.sync_all();
    let before = s.desktop.appreciations();
    let mut bob = s.bobs_fork();
    let anas = container(&bob, &ana_key());
    let mut tries: Vec<(&str, Change)> = Vec::new();
    let mut b = bob.clone();
    tries.push((
        "put into Ana's container",
        raw(&mut b, |d| {
            d.put(&anas, "name", "Not Ana").unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "insert into Ana's list",
        raw(&mut b, |d| {
            let list = d.get(&anas, "appreciations").unwrap().unwrap().1;
            d.insert(
                &list,
                0,
                appreciation_json(&EntryId::new().to_string(), &ana(), "forged", at(6)),
            )
            .unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "delete Ana's entry",
        raw(&mut b, |d| {
            let list = d.get(&anas, "appreciations").unwrap().unwrap().1;
            d.delete(&list, 0).unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "delete Ana's container",
        raw(&mut b, |d| {
            d.delete(ROOT, person_container_key(&ana_key())).unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "second container at Ana's key",
        raw(&mut b, |d| {
            let c = d
                .put_object(ROOT, person_container_key(&ana_key()), ObjType::Map)
                .unwrap();
            d.put(&c, "person", ana().as_str()).unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "root legacy collection (not founder, no legacy)",
        raw(&mut b, |d| {
            let l = d.put_object(ROOT, "appreciations", ObjType::List).unwrap();
            d.insert(
                &l,
                0,
                appreciation_json(&EntryId::new().to_string(), &ana(), "forged", at(6)),
            )
            .unwrap();
        }),
    ));
    let mut b = bob.clone();
    tries.push((
        "root people map",
        raw(&mut b, |d| {
            let p = d.put_object(ROOT, "people", ObjType::Map).unwrap();
            d.put(&p, ana().as_str(), "x").unwrap();
        }),
    ));
    let mut b = bob.clone().with_actor(ActorId::from(LAPTOP));
    tries.push((
        "under Ana's actor",
        raw(&mut b, |d| {
            let list = d.get(&anas, "appreciations").unwrap().unwrap().1;
            d.insert(
                &list,
                0,
                appreciation_json(&EntryId::new().to_string(), &ana(), "forged", at(6)),
            )
            .unwrap();
        }),
    ));
    for (what, change) in tries {
        let out = offer(&mut s.desktop, &PHONE, &mut [change]);
        assert_eq!(out.refused.len(), 1, "{what}: {out:?}");
    }
    assert_eq!(s.desktop.appreciations(), before);
    // Bob's own honest writes still arrive.
    let honest = raw(&mut bob, |d| {
        let mine = container(d, &bob_key_of(PHONE));
        let l = collection(d, &mine, "appreciations", ObjType::List);
        d.insert(
            &l,
            0,
            appreciation_json(&EntryId::new().to_string(), &ben(), "Bob's own", at(7)),
        )
        .unwrap();
    });
    let out = offer(&mut s.desktop, &PHONE, &mut [honest]);
    assert!(out.refused.is_empty(), "{out:?}");
    assert!(
        s.desktop
            .appreciations()
            .iter()
            .any(|a| a.text == "Bob's own" && a.author == ben())
    );
}

#[test]
fn changes_under_unknown_or_short_actors_inside_a_snapshot_are_refused() {
    let mut s = Space::new();
    let before = s.laptop.appreciations();
    for actor in [b"short".to_vec(), vec![0x77; 32]] {
        let mut other = fork(&mut s.phone, PHONE).with_actor(ActorId::from(actor.clone()));
        raw(&mut other, |d| {
            let key = person_container_key(&PersonKey::for_actor(&actor));
            let c = d.put_object(ROOT, key, ObjType::Map).unwrap();
            d.put(&c, "person", ana().as_str()).unwrap();
        });
        let snapshot = other.save();
        let out = s
            .laptop
            .apply_screened([(&PHONE, &snapshot[..])], &HashSet::new())
            .unwrap();
        assert!(!out.refused.is_empty());
    }
    assert_eq!(s.laptop.appreciations(), before);
    assert_eq!(ids(&s.laptop), [ana(), ben()]);
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

/// docs/security.md says a forged change under Ana's actor inside a snapshot is a risk only
/// for a device that *joins* from it ("Your existing devices never apply it over your real
/// history"). But a change that *extends* her history (her actor, next seq) is applied by
/// her existing devices too: `apply_screened` judges snapshot changes by their own actor,
/// never by the device that sent the snapshot.
#[test]
fn a_snapshot_from_bob_cannot_extend_anas_history_on_her_existing_devices() {
    let mut s = Space::new();
    s.laptop
        .add_appreciation(&ana(), "Ana's own", at(5))
        .unwrap();
    s.sync_all();
    let mut posing = fork(&mut s.phone, LAPTOP);
    raw(&mut posing, |d| {
        let anas = container(d, &ana_key());
        let list = d.get(&anas, "appreciations").unwrap().unwrap().1;
        d.insert(
            &list,
            0,
            appreciation_json(&EntryId::new().to_string(), &ana(), "forged by Bob", at(6)),
        )
        .unwrap();
    });
    let snapshot = posing.save();
    for victim in [&mut s.desktop, &mut s.laptop] {
        victim
            .apply_screened([(&PHONE, &snapshot[..])], &HashSet::new())
            .unwrap();
        assert_eq!(
            ana_texts(victim),
            ["Ana's own"],
            "Bob's snapshot wrote as Ana"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Person ids
// ---------------------------------------------------------------------------------------

/// Bob's container declares Ana's person id (`person` field). `Authors::read` accepts a
/// declared id if no *first-layout* entry binds it and it is not `PersonId::of` another
/// key; it never checks that another *container* already declares it.
#[test]
fn bob_cannot_take_anas_person_id_through_his_containers_person_field() {
    let mut s = Space::new();
    s.laptop
        .add_appreciation(&ana(), "Ana's own", at(5))
        .unwrap();
    s.sync_all();
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let change = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        d.put(&mine, "person", ana().as_str()).unwrap();
        let l = collection(d, &mine, "appreciations", ObjType::List);
        d.insert(
            &l,
            0,
            appreciation_json(&EntryId::new().to_string(), &ana(), "forged by Bob", at(6)),
        )
        .unwrap();
    });
    let out = offer(&mut s.desktop, &PHONE, &mut [change]);
    assert!(out.refused.is_empty(), "his own container: accepted");
    let now = ids(&s.desktop);
    assert_eq!(now.len(), 2, "two people: {now:?}");
    assert!(now.contains(&ana()), "Ana keeps her id: {now:?}");
    assert_eq!(
        now.iter().filter(|id| **id == ana()).count(),
        1,
        "and Bob does not share it: {now:?}"
    );
    assert_eq!(
        ana_texts(&s.desktop),
        ["Ana's own"],
        "nothing of Bob's reads as Ana's"
    );
}

#[test]
fn bob_cannot_edit_anas_journal_entry_by_claiming_her_id() {
    let mut s = Space::new();
    let draft = JournalDraft {
        title: Some("Ours".into()),
        body: "Ana's words".into(),
        tags: vec![],
    };
    let entry = s.laptop.add_journal(&ana(), &draft, at(5)).unwrap();
    s.sync_all();
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let change = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        d.put(&mine, "person", ana().as_str()).unwrap();
        let edits = collection(d, &mine, "edits", ObjType::Map);
        d.put(&edits, format!("{}/body", entry.as_str()), "Bob's words")
            .unwrap();
    });
    offer(&mut s.desktop, &PHONE, &mut [change]);
    let journal = s.desktop.journal();
    let anas = journal.iter().find(|j| j.id == entry).unwrap();
    assert_eq!(anas.body, "Ana's words");
    assert_eq!(anas.author, ana());
}

/// Bob claims Ana's id in his container, then tries his stock client's check-in "as Ana"
/// before she answers: it is refused, and Ana answers her week.
#[test]
fn bob_cannot_submit_anas_check_in_by_claiming_her_id() {
    let mut s = Space::new();
    let w = week("2026-W47");
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let mut claim = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        d.put(&mine, "person", ana().as_str()).unwrap();
    });
    let out = offer(&mut s.phone, &PHONE, std::slice::from_mut(&mut claim));
    assert!(out.refused.is_empty());
    assert_ne!(
        s.phone.own_person(),
        ana(),
        "Bob's stock client does not write as Ana"
    );
    assert!(matches!(
        s.phone
            .submit_checkin(w, &ana(), answers(&[("feeling", "1")]), at(1)),
        Err(hearth_doc::DocError::NotYourPerson { .. })
    ));
    s.sync_all();
    let submitted = s
        .laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "7")]), at(100));
    assert!(
        submitted.is_ok(),
        "Ana cannot answer her week: {submitted:?}"
    );
    let c = s.laptop.checkin(w).unwrap();
    let anas = &c.submissions[&ana()];
    assert_eq!(
        anas.answers.as_ref().and_then(|a| a.scale("feeling")),
        Some(7),
        "Ana reads her own answers"
    );
}

/// In a space Bob made (he is the founder), `may_make_legacy` lets him create first-layout
/// root collections even though the space never had any: a root `people` map naming Ana's
/// id under his op binds her id to him (legacy entries win in `Authors::read`).
#[test]
fn as_founder_bob_cannot_take_anas_id_with_a_root_people_map_in_a_container_space() {
    let people = people_with(PHONE, PHONE);
    let mut s = Space::with(PHONE, people);
    s.laptop
        .add_appreciation(&ana(), "Ana's own", at(5))
        .unwrap();
    s.sync_all();
    let mut bob = s.bobs_fork();
    let change = raw(&mut bob, |d| {
        d.put(ROOT, "schema", 1).unwrap();
        let p = d.put_object(ROOT, "people", ObjType::Map).unwrap();
        let entry = d.put_object(&p, ana().as_str(), ObjType::Map).unwrap();
        d.put(&entry, "name", "Ana").unwrap();
    });
    let out = offer(&mut s.laptop, &PHONE, &mut [change]);
    // Whether or not the rule lets the root write through, Ana keeps her id and entries.
    let _ = out;
    assert_eq!(
        s.laptop.own_person(),
        ana(),
        "Ana's laptop still writes as Ana"
    );
    assert_eq!(ids(&s.laptop), [ana(), ben()]);
    assert_eq!(ana_texts(&s.laptop), ["Ana's own"]);
    assert!(
        s.laptop.add_appreciation(&ana(), "still me", at(8)).is_ok(),
        "Ana can still write as herself"
    );
}

// ---------------------------------------------------------------------------------------
// A space of the first layout (shared root collections)
// ---------------------------------------------------------------------------------------

/// A first-layout space made by Ana's laptop: `people` with Ana's and Ben's entries (Ben's
/// written by his phone), one appreciation each, all at the root. Each device on this
/// release, with the ACL.
fn legacy_space() -> (SpaceDoc, SpaceDoc, SpaceDoc) {
    let mut genesis = AutoCommit::new().with_actor(ActorId::from(LAPTOP));
    raw(&mut genesis, |d| {
        d.put(ROOT, "schema", 1).unwrap();
        let p = d.put_object(ROOT, "people", ObjType::Map).unwrap();
        let a = d.put_object(&p, ana().as_str(), ObjType::Map).unwrap();
        d.put(&a, "name", "Ana").unwrap();
        d.put(&a, "joined_at", ScalarValue::Timestamp(at(0).0))
            .unwrap();
        for key in ["appreciations", "feedback", "replies", "journal", "reveals"] {
            d.put_object(ROOT, key, ObjType::List).unwrap();
        }
        for key in ["checkins", "submissions", "edits", "decks"] {
            d.put_object(ROOT, key, ObjType::Map).unwrap();
        }
        let l = d.get(ROOT, "appreciations").unwrap().unwrap().1;
        d.insert(
            &l,
            0,
            appreciation_json(&EntryId::new().to_string(), &ana(), "Ana's old one", at(2)),
        )
        .unwrap();
    });
    let mut phone_raw = genesis.fork().with_actor(ActorId::from(PHONE));
    raw(&mut phone_raw, |d| {
        let p = d.get(ROOT, "people").unwrap().unwrap().1;
        let b = d.put_object(&p, ben().as_str(), ObjType::Map).unwrap();
        d.put(&b, "name", "Ben").unwrap();
        d.put(&b, "joined_at", ScalarValue::Timestamp(at(1).0))
            .unwrap();
    });
    genesis.merge(&mut phone_raw).unwrap();
    let snapshot = genesis.save();
    let open = |device: [u8; 32]| {
        let mut d = SpaceDoc::load(&device, &snapshot, []).unwrap();
        d.set_people(people());
        d
    };
    (open(LAPTOP), open(DESKTOP), open(PHONE))
}

#[test]
fn a_legacy_space_opens_with_both_people_and_anas_old_entry() {
    let (laptop, _, _) = legacy_space();
    assert_eq!(ids(&laptop), [ana(), ben()]);
    assert_eq!(ana_texts(&laptop), ["Ana's old one"]);
}

/// Bob puts `people/<Ana's id>` with no `pred` (hand-crafted; or from a fork that never saw
/// her entry): a conflict with Ana's own entry, which his op wins (higher counter). The rule
/// allows it (a put with no pred into a legacy map is an "addition"); `Authors::read` reads
/// only the winner of the `people` map, binding Ana's id to Bob.
#[test]
fn in_a_legacy_space_bob_cannot_take_anas_id_by_a_conflicting_people_entry() {
    let (mut laptop, _, mut phone) = legacy_space();
    let mut bob = fork(&mut phone, PHONE);
    let honest = raw(&mut bob, |d| {
        let p = d.get(ROOT, "people").unwrap().unwrap().1;
        let e = d.put_object(&p, ana().as_str(), ObjType::Map).unwrap();
        d.put(&e, "name", "Not Ana").unwrap();
    });
    // The same change without the pred that names Ana's op: a concurrent put.
    let concurrent = craft(&honest, |e| {
        for op in &mut e.operations {
            op.pred = SortedVec::new();
        }
    });
    let out = offer(&mut laptop, &PHONE, &mut [concurrent]);
    let _ = out;
    assert_eq!(
        laptop.own_person(),
        ana(),
        "Ana's laptop still writes as Ana"
    );
    assert_eq!(ids(&laptop), [ana(), ben()], "Ana keeps her id");
    assert_eq!(ana_texts(&laptop), ["Ana's old one"], "and her old entries");
    assert!(laptop.add_appreciation(&ana(), "still me", at(8)).is_ok());
}

/// Poisoning by delivery order. A device that has not yet got the change making a
/// first-layout collection judges Bob's addition to it against a `Legacy` that lacks it:
/// `OutsideOwnContainer`, *lasting*. Ana's laptop, which had the collection, accepted the
/// same change and builds on it; her desktop then refuses every later laptop change for
/// good (`DependsOnRefused`).
#[test]
fn bobs_legacy_addition_arriving_early_does_not_poison_anas_later_changes() {
    let (mut laptop, _, mut phone) = legacy_space();
    // Ana's new desktop, joining: nothing yet.
    let mut desktop = SpaceDoc::replica(&DESKTOP).unwrap();
    desktop.set_people(people());
    let mut bob = fork(&mut phone, PHONE);
    let addition = raw(&mut bob, |d| {
        let l = d.get(ROOT, "appreciations").unwrap().unwrap().1;
        d.insert(
            &l,
            0,
            appreciation_json(
                &EntryId::new().to_string(),
                &ben(),
                "Bob's old-style one",
                at(3),
            ),
        )
        .unwrap();
    });
    let mut refused_on_desktop = HashSet::new();
    // Bob sends it to the laptop (accepted: an addition) and, early, to the desktop.
    let out = offer(&mut laptop, &PHONE, &mut [addition.clone()]);
    assert!(out.refused.is_empty(), "{out:?}");
    offer_remembering(
        &mut desktop,
        &PHONE,
        &mut [addition],
        &mut refused_on_desktop,
    );
    // Ana writes on her laptop, on top of Bob's accepted change.
    laptop
        .add_appreciation(&ana(), "Ana's new one", at(10))
        .unwrap();
    // The desktop gets the laptop's whole history from the laptop.
    let bytes = laptop.changes_since(&[]);
    let out = desktop
        .apply_screened([(&LAPTOP, &bytes[..])], &refused_on_desktop)
        .unwrap();
    let ana_refused: Vec<_> = out
        .refused
        .iter()
        .filter(|r| r.actor == LAPTOP.to_vec())
        .collect();
    assert!(
        ana_refused.is_empty(),
        "Ana's own changes refused: {ana_refused:?}"
    );
    // Bob's own changes come from Bob's device (the laptop cannot vouch for them).
    let bytes = phone.changes_since(&[]);
    let out = desktop
        .apply_screened([(&PHONE, &bytes[..])], &refused_on_desktop)
        .unwrap();
    assert!(
        out.refused.iter().all(|r| !r.reason.lasting()),
        "nothing refused for good: {out:?}"
    );
    assert!(!desktop.waiting(), "nothing left waiting");
    assert!(ana_texts(&desktop).contains(&"Ana's new one".to_owned()));
}

// ---------------------------------------------------------------------------------------
// Feedback
// ---------------------------------------------------------------------------------------

/// Bob writes a feedback entry in his container under the id of Ana's. Replies are handed
/// to the first feedback with that id in list order (containers by key): if Bob's key
/// sorts first, his copy takes every reply, and Ana's "felt heard" (which does not fit his
/// copy's roles) disappears.
#[test]
fn a_copy_of_anas_feedback_id_does_not_take_her_replies() {
    // Bob's device as given, and one whose id sorts before Ana's.
    for phone_id in [PHONE, [0x0b; 32]] {
        let mut s = Space::with(phone_id, people_with(phone_id, LAPTOP));
        let draft = FeedbackDraft {
            observation: "o".into(),
            feeling: "f".into(),
            need: "n".into(),
            request: "r".into(),
        };
        let fb = s.laptop.add_feedback(&ana(), &draft, at(5)).unwrap();
        s.sync_all();
        s.phone
            .add_reply(&fb, &ben(), ReplyKind::Reflect, "I heard", at(6))
            .unwrap();
        s.sync_all();
        s.laptop.answer_heard(&fb, &ana(), "yes", at(7)).unwrap();
        s.sync_all();
        let before = s.desktop.feedback();
        assert_eq!(before[0].replies.len(), 2);
        let mut bob = s.bobs_fork();
        let bob_key = s.bob_key();
        let change = raw(&mut bob, |d| {
            let mine = container(d, &bob_key);
            let l = collection(d, &mine, "feedback", ObjType::List);
            let copy = format!(
                r#"{{"id":"{}","author":"{}","observation":"x","feeling":"x","need":"x","request":"x","created_at":{}}}"#,
                fb.as_str(),
                ben().as_str(),
                at(4).0
            );
            d.insert(&l, 0, copy).unwrap();
        });
        offer(&mut s.desktop, &phone_id, &mut [change]);
        let after = s.desktop.feedback();
        let anas = after
            .iter()
            .find(|f| f.id == fb && f.author == ana())
            .unwrap();
        assert_eq!(
            anas.replies, before[0].replies,
            "Ana's thread keeps its replies (Bob's device {:02x})",
            phone_id[0]
        );
    }
}

// ---------------------------------------------------------------------------------------
// Sealed check-ins
// ---------------------------------------------------------------------------------------

/// Bob releases his (valid) key naming, as the commitment he saw, one Ana never made.
/// `choose` then reads Ana's only submission as `Replaced` on every device, her own
/// included: her answers disappear from her view, she is shown as having swapped, and her
/// device never releases her key.
#[test]
fn bobs_release_naming_a_commitment_ana_never_made_does_not_hide_her_answers() {
    let mut s = Space::new();
    let w = week("2026-W47");
    // Bob answers first (nothing to release against yet), then Ana.
    s.phone
        .submit_checkin(w, &ben(), answers(&[("feeling", "5")]), at(10))
        .unwrap();
    let bobs_key = s.phone.take_new_keys().pop().unwrap();
    s.sync_all();
    s.laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "7")]), at(20))
        .unwrap();
    s.sync_all();
    // Bob's modified client releases his key with a made-up `seen`.
    let mut record = vec![1u8];
    for text in [w.to_string(), ben().as_str().to_owned()] {
        record.push(u8::try_from(text.len()).unwrap());
        record.extend_from_slice(text.as_bytes());
    }
    record.extend_from_slice(bobs_key.commitment.as_bytes());
    record.extend_from_slice(bobs_key.key.as_bytes());
    record.push(1);
    record.extend_from_slice(&[0x42; 32]);
    record.extend_from_slice(&at(30).0.to_be_bytes());
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let change = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        let l = collection(d, &mine, "reveals", ObjType::List);
        d.insert(&l, 0, ScalarValue::Bytes(record.clone())).unwrap();
    });
    let out = offer(&mut s.laptop, &PHONE, &mut [change.clone()]);
    assert!(out.refused.is_empty());
    let c = s.laptop.checkin(w).unwrap();
    assert_eq!(c.submissions[&ben()].seal, Seal::Open, "Bob's key is valid");
    // A documented limit (docs/security.md, "Sealed check-in answers"): a false `seen`
    // makes Ana's answers read as replaced, visibly, on both sides. It cannot show other
    // answers as hers, and her own device still reads what she answered.
    let anas = &c.submissions[&ana()];
    assert_eq!(anas.seal, Seal::Replaced);
    assert_eq!(
        anas.answers.as_ref().and_then(|a| a.scale("feeling")),
        Some(7),
        "Ana reads her own answers"
    );
    offer(&mut s.desktop, &PHONE, &mut [change]);
    let on_desktop = s.desktop.checkin(w).unwrap();
    assert_eq!(on_desktop.submissions[&ana()].seal, Seal::Replaced);
    assert_eq!(
        on_desktop.submissions[&ana()].answers,
        None,
        "nobody else does"
    );
}

#[test]
fn bob_cannot_read_anas_sealed_answers_before_she_releases() {
    let mut s = Space::new();
    let w = week("2026-W47");
    s.laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "7")]), at(20))
        .unwrap();
    s.sync_all();
    let c = s.phone.checkin(w).unwrap();
    assert_eq!(c.submissions[&ana()].seal, Seal::Sealed);
    assert!(c.submissions[&ana()].answers.is_none());
    // A release by Bob naming Ana is not hers.
    let mut record = vec![1u8];
    for text in [w.to_string(), ana().as_str().to_owned()] {
        record.push(u8::try_from(text.len()).unwrap());
        record.extend_from_slice(text.as_bytes());
    }
    record.extend_from_slice(&[0x11; 32]);
    record.extend_from_slice(&[0x22; 32]);
    record.push(0);
    record.extend_from_slice(&at(30).0.to_be_bytes());
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let change = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        let l = collection(d, &mine, "reveals", ObjType::List);
        d.insert(&l, 0, ScalarValue::Bytes(record.clone())).unwrap();
    });
    offer(&mut s.laptop, &PHONE, &mut [change]);
    let c = s.laptop.checkin(w).unwrap();
    assert_ne!(c.submissions[&ana()].seal, Seal::Mismatch);
    assert_ne!(c.submissions[&ana()].seal, Seal::Replaced);
}

// ---------------------------------------------------------------------------------------
// Odd changes: denial of service
// ---------------------------------------------------------------------------------------

/// A change of Bob's with a `start_op` near `u64::MAX`. Nothing stops it (its ops are in
/// his own container); afterwards Ana's device must still read and write.
#[test]
fn a_change_with_a_huge_start_op_does_not_break_anas_device() {
    for start in [u64::MAX / 2, u64::MAX - 1] {
        let mut s = Space::new();
        let mut bob = s.bobs_fork();
        let bob_key = s.bob_key();
        let honest = raw(&mut bob, |d| {
            let mine = container(d, &bob_key);
            d.put(&mine, "name", "Ben!").unwrap();
            d.put(&mine, "joined_at", 5).unwrap();
        });
        let huge = craft(&honest, |e| e.start_op = NonZeroU64::new(start).unwrap());
        let mut bytes = bytes_of(&mut [huge]);
        let laptop = &mut s.laptop;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = laptop.apply_screened([(&PHONE, &bytes[..])], &HashSet::new());
            let _ = laptop.people();
            laptop.add_appreciation(&ana(), "after", at(9)).map(drop)
        }));
        assert!(
            matches!(result, Ok(Ok(()))),
            "start_op {start}: Ana's device after Bob's change: {result:?}"
        );
        bytes.clear();
    }
}

/// Changes of Bob's that pass the rule (every op names his own actor) but make no sense to
/// Automerge: an op on an object that does not exist, a list op on a map, a map op on a
/// list, an insert into a map, a pred that was never made. Ana's device must not panic, and
/// must keep reading, writing and syncing with her desktop.
#[test]
fn nonsense_ops_of_bobs_own_do_not_break_anas_device() {
    type Edit = Box<dyn Fn(&mut ExpandedChange)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "object that does not exist",
            Box::new(|e: &mut ExpandedChange| {
                let a = e.actor_id.clone();
                e.operations[0].obj = ObjectId::Id(automerge::legacy::OpId::new(999_999, &a));
            }),
        ),
        (
            "map key on a list",
            Box::new(|e: &mut ExpandedChange| {
                e.operations[1].key = Key::Map("x".into());
            }),
        ),
        (
            "list element on a map",
            Box::new(|e: &mut ExpandedChange| {
                let a = e.actor_id.clone();
                e.operations[0].key = Key::Seq(automerge::legacy::ElementId::Id(
                    automerge::legacy::OpId::new(3, &a),
                ));
            }),
        ),
        (
            "insert into a map",
            Box::new(|e: &mut ExpandedChange| {
                e.operations[0].insert = true;
            }),
        ),
        (
            "pred never made",
            Box::new(|e: &mut ExpandedChange| {
                let a = e.actor_id.clone();
                e.operations[0].pred = vec![automerge::legacy::OpId::new(888_888, &a)].into();
            }),
        ),
        (
            "increment of a string",
            Box::new(|e: &mut ExpandedChange| {
                e.operations[0].action = OpType::Increment(1);
            }),
        ),
    ];
    let mut broken = Vec::new();
    for (what, edit) in cases {
        let mut s = Space::new();
        let mut bob = s.bobs_fork();
        let bob_key = s.bob_key();
        // First his list, honestly, everywhere.
        let made = raw(&mut bob, |d| {
            let mine = container(d, &bob_key);
            collection(d, &mine, "appreciations", ObjType::List);
        });
        for to in [&mut s.laptop, &mut s.desktop] {
            assert!(offer(to, &PHONE, &mut [made.clone()]).refused.is_empty());
        }
        // op 0: a put into Bob's container; op 1: an insert into his list.
        let honest = raw(&mut bob, |d| {
            let mine = container(d, &bob_key);
            let l = collection(d, &mine, "appreciations", ObjType::List);
            d.put(&mine, "name", "Ben!").unwrap();
            d.insert(
                &l,
                0,
                appreciation_json(&EntryId::new().to_string(), &ben(), "b", at(3)),
            )
            .unwrap();
        });
        let odd = craft(&honest, |e| edit(e));
        let bytes = bytes_of(&mut [odd]);
        let (laptop, desktop) = (&mut s.laptop, &mut s.desktop);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = laptop.apply_screened([(&PHONE, &bytes[..])], &HashSet::new());
            let _ = desktop.apply_screened([(&PHONE, &bytes[..])], &HashSet::new());
            let _ = (laptop.people(), laptop.appreciations(), laptop.timeline());
            laptop.add_appreciation(&ana(), "after", at(9))?;
            let out = sync(desktop, laptop, &LAPTOP);
            Ok::<_, hearth_doc::DocError>((out, ana_texts(desktop)))
        }));
        match result {
            Ok(Ok((_, texts))) if texts.contains(&"after".to_owned()) => {}
            Ok(other) => broken.push(format!("{what}: {other:?}")),
            Err(panic) => broken.push(format!(
                "{what}: panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            )),
        }
    }
    assert!(
        broken.is_empty(),
        "Ana's device after Bob's change:\n{}",
        broken.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------

/// Bob writes an entry whose id ends like Ana's (the 8-character handle the CLI shows):
/// `find_entry` with Ana's handle becomes ambiguous. Minor (the full id still works).
#[test]
fn bob_cannot_make_anas_handle_ambiguous() {
    let mut s = Space::new();
    let id = s
        .laptop
        .add_appreciation(&ana(), "Ana's own", at(5))
        .unwrap();
    s.sync_all();
    let mut lookalike = id.as_str().to_owned();
    lookalike.replace_range(0..8, "00000000");
    let mut bob = s.bobs_fork();
    let bob_key = s.bob_key();
    let change = raw(&mut bob, |d| {
        let mine = container(d, &bob_key);
        let l = collection(d, &mine, "appreciations", ObjType::List);
        d.insert(
            &l,
            0,
            appreciation_json(&lookalike, &ben(), "lookalike", at(6)),
        )
        .unwrap();
    });
    offer(&mut s.laptop, &PHONE, &mut [change]);
    assert_eq!(s.laptop.find_entry(id.short()).ok(), Some(id));
}
