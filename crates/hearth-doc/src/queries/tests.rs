//! Reading documents that a newer version, another client or a bug wrote: odd entries cost
//! themselves, never the view.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};

use crate::layout;
use crate::model::{Answers, CommitmentStatus, ReplyKind};
use crate::{Millis, PersonId, SpaceDoc, Week};

const ANA: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
const BEN: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const ID1: &str = "0193a000-0000-7000-8000-000000000001";
const ID2: &str = "0193a000-0000-7000-8000-000000000002";
const ID3: &str = "0193a000-0000-7000-8000-000000000003";

fn ana() -> PersonId {
    ANA.parse().unwrap()
}

/// A space whose document is then written to directly, as another client would.
fn space() -> SpaceDoc {
    SpaceDoc::create(b"test", &ana(), "Ana", Millis(1)).unwrap()
}

fn raw(doc: &mut SpaceDoc, write: impl FnOnce(&mut AutoCommit)) {
    write(&mut doc.doc);
    doc.doc.commit();
}

/// The test person's collection `key` in their container, made if it is not there yet.
fn root(doc: &mut AutoCommit, key: &str) -> automerge::ObjId {
    let me = crate::authorship::PersonKey::for_actor(b"test");
    let ty = match key {
        layout::CHECKINS | layout::SUBMISSIONS | layout::EDITS | layout::DECKS => ObjType::Map,
        _ => ObjType::List,
    };
    layout::collection_for_write(doc, &me, &ana(), key, ty).unwrap()
}

fn push(doc: &mut AutoCommit, key: &str, value: impl Into<ScalarValue>) {
    let list = root(doc, key);
    let end = doc.length(&list);
    doc.insert(&list, end, value).unwrap();
}

#[test]
fn odd_list_entries_are_skipped_one_by_one() {
    let mut doc = space();
    raw(&mut doc, |d| {
        let good = format!(
            r#"{{"id":"{ID1}","author":"{ANA}","text":"kept","created_at":5,"mood":"unknown field"}}"#
        );
        push(d, layout::APPRECIATIONS, good.as_str());
        push(d, layout::APPRECIATIONS, "not json at all");
        push(d, layout::APPRECIATIONS, 42_i64);
        push(
            d,
            layout::APPRECIATIONS,
            format!(r#"{{"id":"{ID2}","author":"{ANA}","text":7,"created_at":5}}"#),
        );
        push(
            d,
            layout::APPRECIATIONS,
            format!(r#"{{"id":"{ID3}","author":"not a person","text":"x","created_at":5}}"#),
        );
        push(d, layout::APPRECIATIONS, r#"["a","list"]"#);
        let list = root(d, layout::APPRECIATIONS);
        let end = d.length(&list);
        d.insert_object(&list, end, ObjType::List).unwrap();
        d.insert_object(&list, end + 1, ObjType::Text).unwrap();
    });
    let seen = doc.appreciations();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].text, "kept");
    assert_eq!(doc.timeline().len(), 1);
    assert_eq!(doc.find_entry(&ID1[30..]).unwrap().as_str(), ID1);
}

#[test]
fn entries_written_as_maps_of_fields_are_read_too() {
    // The map-of-fields form, as a client that models each entry as a map would write it.
    let mut doc = space();
    raw(&mut doc, |d| {
        let list = root(d, layout::JOURNAL);
        let entry = d.insert_object(&list, 0, ObjType::Map).unwrap();
        d.put(&entry, "id", ID1).unwrap();
        d.put(&entry, "author", ANA).unwrap();
        d.put(&entry, "created_at", ScalarValue::Timestamp(10))
            .unwrap();
        d.put(&entry, "title", ScalarValue::Null).unwrap();
        d.put(&entry, "body", "from a map").unwrap();
        let tags = d.put_object(&entry, "tags", ObjType::List).unwrap();
        d.insert(&tags, 0, "us").unwrap();
        d.insert(&tags, 1, 3_i64).unwrap();
        d.put(&entry, "edited_at", 20.0_f64).unwrap();

        let list = root(d, layout::FEEDBACK);
        let fb = d.insert_object(&list, 0, ObjType::Map).unwrap();
        d.put(&fb, "id", ID2).unwrap();
        d.put(&fb, "author", ANA).unwrap();
        d.put(&fb, "created_at", 30_u64).unwrap();
        d.put(&fb, "observation", "seen").unwrap();
        let request = d.put_object(&fb, "request", ObjType::Text).unwrap();
        d.splice_text(&request, 0, 0, "asked as text").unwrap();
        let replies = d.put_object(&fb, "replies", ObjType::List).unwrap();
        // Nested replies have no op of their own: they count as the entry's writer's, so
        // only a kind of reply the one who raised it may give is kept.
        let r = d.insert_object(&replies, 0, ObjType::Map).unwrap();
        d.put(&r, "author", BEN).unwrap();
        d.put(&r, "kind", "respond").unwrap();
        d.put(&r, "text", "I hear").unwrap();
        let own = d.insert_object(&replies, 1, ObjType::Map).unwrap();
        d.put(&own, "author", ANA).unwrap();
        d.put(&own, "kind", "reflect").unwrap();
        d.put(&own, "text", "reflecting my own").unwrap();
        d.put(&own, "created_at", ScalarValue::Timestamp(41))
            .unwrap();
        d.put(&r, "created_at", ScalarValue::Timestamp(40)).unwrap();
        let bad = d.insert_object(&replies, 2, ObjType::Map).unwrap();
        d.put(&bad, "kind", "shout").unwrap();
    });
    let journal = doc.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].body, "from a map");
    assert_eq!(journal[0].title, None);
    assert_eq!(
        journal[0].tags,
        ["us"],
        "the tag that is not a string is dropped"
    );
    assert_eq!(journal[0].edited_at, Some(Millis(20)));
    let feedback = doc.feedback();
    assert_eq!(feedback.len(), 1);
    assert_eq!(feedback[0].observation, "seen");
    assert_eq!(feedback[0].feeling, "", "a missing part reads as empty");
    assert_eq!(feedback[0].request, "asked as text");
    assert_eq!(feedback[0].replies.len(), 1, "{:?}", feedback[0].replies);
    assert_eq!(feedback[0].replies[0].kind, ReplyKind::Respond);
    assert_eq!(
        feedback[0].replies[0].author,
        ana(),
        "the writer's, not who it names"
    );
    // And the map-form entries can be edited and replied to through the API.
    let id = doc.find_entry(ID1).unwrap();
    doc.edit_journal(
        &id,
        &crate::JournalDraft {
            title: Some("T".into()),
            body: "edited".into(),
            tags: vec![],
        },
        Millis(50),
    )
    .unwrap();
    assert_eq!(doc.journal()[0].body, "edited");
    let fb = doc.find_entry(ID2).unwrap();
    doc.add_reply(&fb, &ana(), ReplyKind::Acknowledge, "yes", Millis(60))
        .unwrap();
    assert_eq!(doc.feedback()[0].replies.len(), 2);
}

#[test]
fn check_ins_written_as_nested_maps_merge_with_ours() {
    let mut doc = space();
    let week: Week = "2026-W47".parse().unwrap();
    raw(&mut doc, |d| {
        let checkins = root(d, layout::CHECKINS);
        let c = d
            .put_object(&checkins, "their-checkin", ObjType::Map)
            .unwrap();
        d.put(&c, "week", "2026-W47").unwrap();
        d.put(&c, "template", "weekly-v1").unwrap();
        d.put(&c, "opened_at", ScalarValue::Timestamp(5)).unwrap();
        d.put(&c, "future_field", true).unwrap();
        let answers = d.put_object(&c, "answers", ObjType::Map).unwrap();
        let ana = d.put_object(&answers, ANA, ObjType::Map).unwrap();
        d.put(&ana, "submitted_at", ScalarValue::Timestamp(6))
            .unwrap();
        d.put(
            &ana,
            "answers",
            r#"{"feeling":4,"raise":"small","odd":{"x":1}}"#,
        )
        .unwrap();
        // Answers in Ana's container naming Ben are not Ben's (nor Ana's).
        let ben = d.put_object(&answers, BEN, ObjType::Map).unwrap();
        d.put(&ben, "submitted_at", ScalarValue::Timestamp(6))
            .unwrap();
        d.put(&ben, "answers", r#"{"feeling":1}"#).unwrap();
        let broken = d
            .put_object(&answers, "not-a-person", ObjType::Map)
            .unwrap();
        d.put(&broken, "submitted_at", 7_i64).unwrap();
        // A check-in without a week, and one that is not a map, are skipped.
        let no_week = d.put_object(&checkins, "no-week", ObjType::Map).unwrap();
        d.put(&no_week, "template", "weekly-v1").unwrap();
        d.put(&checkins, "scalar", 3_i64).unwrap();
    });
    let c = doc.checkin(week).unwrap();
    let ben = ana();
    assert_eq!(c.submissions.len(), 1);
    assert_eq!(
        c.submissions[&ben]
            .answers
            .as_ref()
            .unwrap()
            .scale("feeling"),
        Some(4)
    );
    assert_eq!(
        c.submissions[&ben].answers.as_ref().unwrap().get("raise"),
        Some(&crate::AnswerValue::Choice("small".into())),
        "kinds are restored from the deck"
    );
    assert!(
        c.submissions[&ben]
            .answers
            .as_ref()
            .unwrap()
            .get("odd")
            .is_none()
    );
    // The nested form counts as Ana's submission for the week.
    assert_eq!(doc.checkins().len(), 1);
    assert!(matches!(
        doc.submit_checkin(
            week,
            &ben,
            crate::weekly_deck()
                .parse_answers([("feeling", "1")])
                .unwrap(),
            Millis(11)
        ),
        Err(crate::DocError::AlreadySubmitted { .. })
    ));
}

#[test]
fn a_submission_with_unreadable_answers_still_counts_as_submitted() {
    let mut doc = space();
    raw(&mut doc, |d| {
        let checkins = root(d, layout::CHECKINS);
        d.put(&checkins, "c1", r#"{"week":"2026-W47"}"#).unwrap();
        let subs = root(d, layout::SUBMISSIONS);
        d.put(
            &subs,
            format!("c1/{ANA}"),
            r#"{"submitted_at":9,"answers":"sealed:AAAA"}"#,
        )
        .unwrap();
        d.put(&checkins, "c2", r#"{"week":"2026-W47"}"#).unwrap();
        d.put(&subs, format!("c2/{ANA}"), r#"{"answers":{}}"#)
            .unwrap();
        d.put(
            &subs,
            format!("unknown-checkin/{ANA}"),
            r#"{"submitted_at":9}"#,
        )
        .unwrap();
        d.put(&subs, "no-slash", r#"{"submitted_at":9}"#).unwrap();
    });
    let c = doc.checkin("2026-W47".parse().unwrap()).unwrap();
    assert_eq!(
        c.deck, "weekly-v1",
        "a check-in stored without its deck id reads as the weekly deck"
    );
    assert_eq!(
        c.submissions.len(),
        1,
        "a submission without a time is unreadable"
    );
    assert!(
        c.submissions[&ana()]
            .answers
            .as_ref()
            .is_some_and(Answers::is_empty)
    );
}

#[test]
fn odd_edits_are_ignored_and_unknown_statuses_hide_their_commitment() {
    let mut doc = space();
    let answers = crate::weekly_deck()
        .parse_answers([("feeling", "7"), ("commit", "walk")])
        .unwrap();
    doc.submit_checkin("2026-W47".parse().unwrap(), &ana(), answers, Millis(5))
        .unwrap();
    let journal = doc
        .add_journal(
            &ana(),
            &crate::JournalDraft {
                title: Some("T".into()),
                body: "b".into(),
                tags: vec![],
            },
            Millis(6),
        )
        .unwrap();
    let commitment = doc.commitments()[0].id.clone();
    raw(&mut doc, |d| {
        let edits = root(d, layout::EDITS);
        d.put(&edits, layout::edit_key(journal.as_str(), "body"), 12_i64)
            .unwrap();
        d.put(
            &edits,
            layout::edit_key(journal.as_str(), "tags"),
            "not a json list",
        )
        .unwrap();
        d.put(
            &edits,
            layout::edit_key(journal.as_str(), "edited_at"),
            "later",
        )
        .unwrap();
        d.put(&edits, layout::edit_key(journal.as_str(), "colour"), "blue")
            .unwrap();
        d.put(&edits, "no slash at all", 1_i64).unwrap();
        d.put_object(
            &edits,
            layout::edit_key(journal.as_str(), "title"),
            ObjType::Map,
        )
        .unwrap();
    });
    let entry = &doc.journal()[0];
    assert_eq!(
        (entry.title.as_deref(), entry.body.as_str(), entry.edited_at),
        (Some("T"), "b", None)
    );
    assert_eq!(doc.commitments()[0].status, CommitmentStatus::Open);
    raw(&mut doc, |d| {
        let edits = root(d, layout::EDITS);
        d.put(
            &edits,
            layout::edit_key(commitment.as_str(), "status"),
            "postponed",
        )
        .unwrap();
    });
    assert!(
        doc.commitments().is_empty(),
        "a status from a newer version is not guessed at"
    );
}

#[test]
fn people_are_kept_even_when_their_record_is_damaged() {
    let mut doc = space();
    raw(&mut doc, |d| {
        let me = crate::authorship::PersonKey::for_actor(b"test");
        let mine = layout::own_container(d, &me, &ana()).unwrap();
        d.put(&mine, layout::NAME, 5_i64).unwrap();
        d.put(&mine, layout::JOINED_AT, "yesterday").unwrap();
        // A first-layout `people` map from a device the ACL does not know names nobody.
        let people = d.put_object(ROOT, layout::PEOPLE, ObjType::Map).unwrap();
        d.put(&people, BEN, true).unwrap();
    });
    let people = doc.people();
    assert_eq!(people.len(), 1);
    assert_eq!(people[0].id, ana());
    assert_eq!(people[0].name, "");
    assert_eq!(people[0].joined_at, Millis(0));
}

#[test]
fn a_collection_of_the_wrong_type_reads_as_empty_and_is_replaced_on_write() {
    let mut doc = space();
    raw(&mut doc, |d| {
        d.put(ROOT, layout::JOURNAL, "oops").unwrap();
        d.put(ROOT, layout::CHECKINS, 3_i64).unwrap();
        d.put(ROOT, "a_future_collection", "ignored").unwrap();
    });
    assert!(doc.journal().is_empty());
    assert!(doc.checkins().is_empty());
    doc.add_journal(
        &ana(),
        &crate::JournalDraft {
            title: None,
            body: "still works".into(),
            tags: vec![],
        },
        Millis(2),
    )
    .unwrap();
    assert_eq!(doc.journal().len(), 1);
    let answers = crate::weekly_deck()
        .parse_answers([("feeling", "5")])
        .unwrap();
    doc.submit_checkin("2026-W47".parse().unwrap(), &ana(), answers, Millis(3))
        .unwrap();
    assert_eq!(doc.checkins().len(), 1);
    assert_eq!(doc.timeline().len(), 2);
}

#[test]
fn collections_created_twice_concurrently_both_stay_visible() {
    // Two devices that each created the space (a bug, or a restore gone wrong) and then
    // synced: Automerge keeps both `appreciations` lists as a conflict.
    let mut a = SpaceDoc::create(b"one", &ana(), "Ana", Millis(1)).unwrap();
    let mut b = SpaceDoc::create(b"two", &BEN.parse().unwrap(), "Ben", Millis(2)).unwrap();
    a.add_appreciation(&ana(), "from one", Millis(3)).unwrap();
    b.add_appreciation(&BEN.parse().unwrap(), "from two", Millis(4))
        .unwrap();
    let from_b = b.take_unsaved().unwrap();
    let from_a = a.take_unsaved().unwrap();
    a.apply(&from_b).unwrap();
    b.apply(&from_a).unwrap();
    for doc in [&a, &b] {
        let texts: Vec<_> = doc.appreciations().into_iter().map(|x| x.text).collect();
        assert_eq!(texts, ["from one", "from two"]);
        assert_eq!(doc.people().len(), 2);
    }
    assert_eq!(a.timeline(), b.timeline());
}

#[test]
fn a_duplicated_entry_is_shown_once() {
    let mut doc = space();
    let record = format!(r#"{{"id":"{ID1}","author":"{ANA}","text":"twice","created_at":5}}"#);
    raw(&mut doc, |d| {
        push(d, layout::APPRECIATIONS, record.as_str());
        push(d, layout::APPRECIATIONS, record.as_str());
    });
    assert_eq!(doc.appreciations().len(), 1);
    assert_eq!(doc.find_entry(ID1).unwrap().as_str(), ID1);
}
