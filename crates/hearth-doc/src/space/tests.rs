//! The story of one space: creating, writing, syncing, and every refusal along the way.

use super::*;
use crate::deck::weekly_deck;
use crate::model::{AnswerValue, Seal};
use crate::timeline::TimelineKind;

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

fn week(s: &str) -> Week {
    s.parse().unwrap()
}

const LAPTOP: [u8; 32] = [0xa1; 32];
const DESKTOP: [u8; 32] = [0xa2; 32];
const PHONE: [u8; 32] = [0xb1; 32];

/// Ana's two devices and Ben's, as the space's signed device list would say.
fn people() -> crate::authorship::People {
    let ana = PersonKey::from_founding_device(LAPTOP);
    let ben = PersonKey::from_founding_device(PHONE);
    [(LAPTOP, ana), (DESKTOP, ana), (PHONE, ben)]
        .into_iter()
        .collect::<crate::authorship::People>()
        .with_founder(LAPTOP)
}

/// Ana's laptop and desktop and Ben's phone, who know who is whom, all in sync.
fn three_devices() -> (SpaceDoc, SpaceDoc, SpaceDoc) {
    let mut laptop = SpaceDoc::create(&LAPTOP, &ana(), "Ana", at(0)).unwrap();
    laptop.set_people(people());
    let snapshot = laptop.save_snapshot();
    let mut desktop = SpaceDoc::load(&DESKTOP, &snapshot, []).unwrap();
    desktop.set_people(people());
    let mut phone = SpaceDoc::load(&PHONE, &snapshot, []).unwrap();
    phone.set_people(people());
    phone.add_person(&ben(), "Ben", at(1)).unwrap();
    sync(&mut laptop, &mut phone);
    sync(&mut desktop, &mut phone);
    (laptop, desktop, phone)
}

/// Ana's laptop and Ben's phone, both in the space and in sync.
fn couple() -> (SpaceDoc, SpaceDoc) {
    let mut laptop = SpaceDoc::create(b"ana-laptop", &ana(), "Ana", at(0)).unwrap();
    let mut phone = SpaceDoc::load(b"ben-phone", &laptop.save_snapshot(), []).unwrap();
    phone.add_person(&ben(), "Ben", at(1)).unwrap();
    sync(&mut laptop, &mut phone);
    (laptop, phone)
}

fn sync(a: &mut SpaceDoc, b: &mut SpaceDoc) {
    let from_a = a.take_unsaved();
    let from_b = b.take_unsaved();
    if let Some(bytes) = from_a {
        b.apply(&bytes).unwrap();
    }
    if let Some(bytes) = from_b {
        a.apply(&bytes).unwrap();
    }
}

fn change_count(doc: &mut SpaceDoc) -> usize {
    doc.doc.get_changes(&[]).len()
}

fn answers(pairs: &[(&str, &str)]) -> Answers {
    weekly_deck().parse_answers(pairs.iter().copied()).unwrap()
}

#[test]
fn a_new_space_holds_only_its_creators_container() {
    let mut doc = SpaceDoc::create(b"ana-laptop", &ana(), "  Ana ", at(0)).unwrap();
    assert_eq!(doc.schema(), Some(2));
    let people = doc.people();
    assert_eq!(people.len(), 1);
    assert_eq!(
        (
            people[0].id.clone(),
            people[0].name.as_str(),
            people[0].joined_at
        ),
        (ana(), "Ana", at(0))
    );
    assert!(
        doc.appreciations().is_empty() && doc.journal().is_empty() && doc.checkins().is_empty()
    );
    assert!(doc.feedback().is_empty() && doc.commitments().is_empty() && doc.timeline().is_empty());
    assert_eq!(change_count(&mut doc), 1, "creating a space is one change");
    assert_eq!(doc.actor(), b"ana-laptop");
    let keys: Vec<String> = doc.doc.keys(ROOT).collect();
    assert_eq!(
        keys,
        [crate::authorship::person_container_key(
            &PersonKey::for_actor(b"ana-laptop")
        )],
        "nothing at the root but Ana's container"
    );
}

#[test]
fn creating_a_space_needs_a_name_and_an_actor() {
    assert!(matches!(
        SpaceDoc::create(b"x", &ana(), "  ", at(0)),
        Err(DocError::Empty { what: "name" })
    ));
    assert!(matches!(
        SpaceDoc::create(b"", &ana(), "Ana", at(0)),
        Err(DocError::EmptyActor)
    ));
}

#[test]
fn every_action_is_exactly_one_change() {
    let (mut doc, _) = couple();
    let mut changes = change_count(&mut doc);
    let mut expect_one_more = |doc: &mut SpaceDoc| {
        let now = change_count(doc);
        assert_eq!(now, changes + 1);
        changes = now;
    };
    doc.add_appreciation(&ana(), "the tea", at(2)).unwrap();
    expect_one_more(&mut doc);
    let fb = doc
        .add_feedback(&ana(), &draft("o", "f", "n", "r"), at(3))
        .unwrap();
    expect_one_more(&mut doc);
    doc.add_reply(&fb, &ana(), ReplyKind::Respond, "and more", at(4))
        .unwrap();
    expect_one_more(&mut doc);
    let j = doc.add_journal(&ana(), &journal("a day"), at(5)).unwrap();
    expect_one_more(&mut doc);
    doc.edit_journal(&j, &journal("a better day"), at(6))
        .unwrap();
    expect_one_more(&mut doc);
    doc.submit_checkin(
        week("2026-W47"),
        &ana(),
        answers(&[("feeling", "7"), ("commit", "cook")]),
        at(7),
    )
    .unwrap();
    expect_one_more(&mut doc);
    let c = doc.commitments()[0].id.clone();
    doc.set_commitment_status(&c, CommitmentStatus::Done)
        .unwrap();
    expect_one_more(&mut doc);
    doc.add_person(&ana(), "Anabel", at(8)).unwrap();
    expect_one_more(&mut doc);
}

#[test]
fn a_device_writes_only_as_its_own_person() {
    let (mut laptop, _) = couple();
    let before = laptop.heads();
    let asked_as_ben = [
        laptop.add_appreciation(&ben(), "posing", at(2)).map(drop),
        laptop.add_person(&ben(), "Ben?", at(2)),
        laptop
            .add_journal(&ben(), &journal("posing"), at(2))
            .map(drop),
        laptop.submit_checkin(
            week("2026-W47"),
            &ben(),
            answers(&[("feeling", "1")]),
            at(2),
        ),
    ];
    for result in asked_as_ben {
        assert!(
            matches!(result, Err(DocError::NotYourPerson { ref own, .. }) if *own == ana()),
            "{result:?}"
        );
    }
    assert_eq!(laptop.heads(), before, "nothing was written");
}

#[test]
fn refused_actions_write_nothing() {
    let (mut doc, _) = couple();
    let _ = doc.take_unsaved();
    let before = doc.heads();
    assert!(doc.add_appreciation(&ana(), " \n", at(2)).is_err());
    assert!(
        doc.add_feedback(&ana(), &draft("o", "", "n", "r"), at(2))
            .is_err()
    );
    assert!(
        doc.add_reply(&EntryId::new(), &ana(), ReplyKind::Respond, "yes", at(2))
            .is_err()
    );
    assert!(
        doc.edit_journal(&EntryId::new(), &journal("x"), at(2))
            .is_err()
    );
    assert!(
        doc.submit_checkin(week("2026-W47"), &ana(), Answers::default(), at(2))
            .is_err()
    );
    assert!(
        doc.set_commitment_status(&EntryId::new(), CommitmentStatus::Done)
            .is_err()
    );
    assert_eq!(doc.heads(), before);
    assert!(doc.take_unsaved().is_none());
}

fn draft(observation: &str, feeling: &str, need: &str, request: &str) -> FeedbackDraft {
    FeedbackDraft {
        observation: observation.into(),
        feeling: feeling.into(),
        need: need.into(),
        request: request.into(),
    }
}

fn journal(body: &str) -> JournalDraft {
    JournalDraft {
        title: None,
        body: body.into(),
        tags: Vec::new(),
    }
}

#[test]
fn partner_sees_appreciation_after_sync() {
    let (mut laptop, mut phone) = couple();
    let id = laptop
        .add_appreciation(&ana(), "  Thank you for the soup  ", at(10))
        .unwrap();
    sync(&mut laptop, &mut phone);
    let seen = phone.appreciations();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, id);
    assert_eq!(seen[0].text, "Thank you for the soup");
    assert_eq!(
        (seen[0].author.clone(), seen[0].created_at),
        (ana(), at(10))
    );
}

#[test]
fn an_empty_appreciation_is_refused() {
    let (mut doc, _) = couple();
    let err = doc.add_appreciation(&ana(), "   ", at(2)).unwrap_err();
    assert!(matches!(
        err,
        DocError::Empty {
            what: "appreciation"
        }
    ));
    assert!(err.to_string().contains("cannot be empty"));
}

#[test]
fn appreciations_are_sorted_by_time_then_id_on_both_devices() {
    let (mut laptop, mut phone) = couple();
    laptop.add_appreciation(&ana(), "second", at(20)).unwrap();
    phone.add_appreciation(&ben(), "first", at(10)).unwrap();
    laptop.add_appreciation(&ana(), "tie a", at(30)).unwrap();
    phone.add_appreciation(&ben(), "tie b", at(30)).unwrap();
    sync(&mut laptop, &mut phone);
    let texts = |d: &SpaceDoc| {
        d.appreciations()
            .into_iter()
            .map(|a| a.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&laptop), texts(&phone));
    assert_eq!(&texts(&laptop)[..2], ["first", "second"]);
    let ties = laptop.appreciations();
    assert!(ties[2].id < ties[3].id, "ties break by id");
}

#[test]
fn feedback_needs_all_four_parts_and_names_the_missing_one() {
    let (mut doc, _) = couple();
    for (d, missing) in [
        (draft("", "f", "n", "r"), "observation"),
        (draft("o", " ", "n", "r"), "feeling"),
        (draft("o", "f", "", "r"), "need"),
        (draft("o", "f", "n", "\t"), "request"),
    ] {
        let err = doc.add_feedback(&ana(), &d, at(2)).unwrap_err();
        assert!(
            matches!(err, DocError::Empty { what } if what == missing),
            "{missing}"
        );
        assert!(err.to_string().contains(missing));
    }
}

#[test]
fn listener_reflects_and_speaker_acknowledges_on_the_same_thread() {
    let (mut laptop, mut phone) = couple();
    let id = laptop
        .add_feedback(
            &ana(),
            &draft(
                "dishes stayed overnight",
                "tired",
                "rest",
                "could we do them before bed?",
            ),
            at(10),
        )
        .unwrap();
    sync(&mut laptop, &mut phone);
    phone
        .add_reply(
            &id,
            &ben(),
            ReplyKind::Reflect,
            "You were tired and needed rest",
            at(20),
        )
        .unwrap();
    laptop
        .add_reply(
            &id,
            &ana(),
            ReplyKind::Acknowledge,
            "Yes, that's it",
            at(30),
        )
        .unwrap();
    sync(&mut laptop, &mut phone);
    let threads = laptop.feedback();
    assert_eq!(threads, phone.feedback());
    let thread = &threads[0];
    assert_eq!(thread.observation, "dishes stayed overnight");
    assert_eq!(thread.request, "could we do them before bed?");
    let kinds: Vec<_> = thread
        .replies
        .iter()
        .map(|r| (r.kind, r.author.clone()))
        .collect();
    assert_eq!(
        kinds,
        [(ReplyKind::Reflect, ben()), (ReplyKind::Acknowledge, ana())]
    );
}

#[test]
fn a_reply_to_missing_feedback_or_an_empty_reply_is_refused() {
    let (mut doc, _) = couple();
    let err = doc
        .add_reply(&EntryId::new(), &ana(), ReplyKind::Respond, "sure", at(2))
        .unwrap_err();
    assert!(matches!(
        err,
        DocError::NotFound {
            what: "feedback",
            ..
        }
    ));
    let id = doc
        .add_feedback(&ana(), &draft("o", "f", "n", "r"), at(2))
        .unwrap();
    let err = doc
        .add_reply(&id, &ana(), ReplyKind::Respond, " ", at(3))
        .unwrap_err();
    assert!(matches!(err, DocError::Empty { what: "reply" }));
}

#[test]
fn the_listener_reflects_and_only_the_one_who_raised_it_says_whether_they_felt_heard() {
    let (mut doc, mut phone) = couple();
    let id = doc
        .add_feedback(&ana(), &draft("o", "f", "n", "r"), at(2))
        .unwrap();
    assert!(matches!(
        doc.add_reply(&id, &ana(), ReplyKind::Reflect, "what I hear is", at(3)),
        Err(DocError::WrongRole { .. })
    ));
    sync(&mut doc, &mut phone);
    assert!(matches!(
        phone.answer_heard(&id, &ben(), "yes", at(3)),
        Err(DocError::WrongRole { .. })
    ));
    assert!(matches!(
        phone.add_reply(&id, &ben(), ReplyKind::Acknowledge, "yes", at(3)),
        Err(DocError::WrongRole { .. })
    ));
    phone
        .add_reply(&id, &ben(), ReplyKind::Reflect, "what I hear is", at(4))
        .unwrap();
    sync(&mut doc, &mut phone);
    doc.answer_heard(&id, &ana(), "partly", at(5)).unwrap();
    // Either may still answer the request or say "I hear you".
    doc.add_reply(&id, &ana(), ReplyKind::Respond, "thank you", at(6))
        .unwrap();
    let thread = doc.feedback().into_iter().find(|f| f.id == id).unwrap();
    let kinds: Vec<_> = thread
        .replies
        .iter()
        .map(|r| (r.kind, r.author.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ReplyKind::Reflect, ben()),
            (ReplyKind::Acknowledge, ana()),
            (ReplyKind::Respond, ana())
        ]
    );
}

#[test]
fn journal_entries_are_normalised_and_edited_per_field() {
    let (mut doc, _) = couple();
    let id = doc
        .add_journal(
            &ana(),
            &JournalDraft {
                title: Some(" Sunday ".into()),
                body: "\nWe walked by the river.\n\n".into(),
                tags: vec!["#walks".into(), "walks".into()],
            },
            at(10),
        )
        .unwrap();
    let entry = &doc.journal()[0];
    assert_eq!(entry.id, id);
    assert_eq!(entry.title.as_deref(), Some("Sunday"));
    assert_eq!(entry.body, "We walked by the river.");
    assert_eq!(entry.tags, ["walks"]);
    assert_eq!(entry.edited_at, None);
    assert!(!entry.private);

    doc.edit_journal(
        &id,
        &JournalDraft {
            title: None,
            body: "We walked by the river, slowly.".into(),
            tags: vec!["walks".into(), "us".into()],
        },
        at(20),
    )
    .unwrap();
    let entry = &doc.journal()[0];
    assert_eq!(entry.title, None);
    assert_eq!(entry.body, "We walked by the river, slowly.");
    assert_eq!(entry.tags, ["walks", "us"]);
    assert_eq!(entry.edited_at, Some(at(20)));
    assert_eq!(entry.created_at, at(10));

    let before = doc.heads();
    doc.edit_journal(
        &id,
        &JournalDraft {
            title: Some("".into()),
            body: "We walked by the river, slowly.\n".into(),
            tags: vec!["walks".into(), "us".into()],
        },
        at(30),
    )
    .unwrap();
    assert_eq!(
        doc.heads(),
        before,
        "an edit that changes nothing writes nothing"
    );
}

#[test]
fn journal_errors_name_the_problem() {
    let (mut doc, _) = couple();
    let err = doc
        .add_journal(&ana(), &journal("\n \n"), at(2))
        .unwrap_err();
    assert!(matches!(
        err,
        DocError::Empty {
            what: "journal entry"
        }
    ));
    let id = doc.add_journal(&ana(), &journal("x"), at(2)).unwrap();
    assert!(matches!(
        doc.edit_journal(&id, &journal(""), at(3)),
        Err(DocError::Empty { .. })
    ));
    let err = doc
        .edit_journal(&EntryId::new(), &journal("y"), at(3))
        .unwrap_err();
    assert!(matches!(
        err,
        DocError::NotFound {
            what: "journal entry",
            ..
        }
    ));
}

#[test]
fn two_devices_editing_different_fields_at_once_both_keep_their_edit() {
    let (mut laptop, mut phone, mut ben) = three_devices();
    let id = laptop
        .add_journal(&ana(), &journal("first draft"), at(10))
        .unwrap();
    sync(&mut laptop, &mut phone);
    assert!(
        matches!(
            ben.edit_journal(&id, &journal("Ben's"), at(11)),
            Err(DocError::NotFound { .. })
        ),
        "not synced to Ben yet"
    );
    sync(&mut phone, &mut ben);
    assert!(matches!(
        ben.edit_journal(&id, &journal("Ben's version"), at(11)),
        Err(DocError::WrongRole {
            who: "the one who wrote it",
            ..
        })
    ));
    laptop
        .edit_journal(
            &id,
            &JournalDraft {
                title: Some("Our trip".into()),
                body: "first draft".into(),
                tags: vec![],
            },
            at(20),
        )
        .unwrap();
    phone
        .edit_journal(
            &id,
            &JournalDraft {
                title: None,
                body: "first draft, written on the desktop".into(),
                tags: vec![],
            },
            at(21),
        )
        .unwrap();
    sync(&mut laptop, &mut phone);
    let entry = &laptop.journal()[0];
    assert_eq!(laptop.journal(), phone.journal());
    assert_eq!(entry.title.as_deref(), Some("Our trip"));
    assert_eq!(entry.body, "first draft, written on the desktop");
}

#[test]
fn two_devices_editing_the_same_field_at_once_see_the_same_winner() {
    let (mut laptop, mut phone, _) = three_devices();
    let id = laptop.add_journal(&ana(), &journal("v1"), at(10)).unwrap();
    sync(&mut laptop, &mut phone);
    laptop
        .edit_journal(&id, &journal("Ana's v2"), at(20))
        .unwrap();
    phone
        .edit_journal(&id, &journal("the desktop's v2"), at(20))
        .unwrap();
    sync(&mut laptop, &mut phone);
    assert_eq!(laptop.heads(), phone.heads());
    let body = laptop.journal()[0].body.clone();
    assert_eq!(body, phone.journal()[0].body);
    assert!(body == "Ana's v2" || body == "the desktop's v2");
}

#[test]
fn a_check_in_records_answers_and_turns_commit_into_a_commitment() {
    let (mut doc, _) = couple();
    let w = week("2026-W47");
    let a = answers(&[
        ("feeling", "8"),
        ("need", "time,touch"),
        ("raise", "nothing"),
        ("commit", " Cook dinner on Thursday "),
    ]);
    doc.submit_checkin(w, &ana(), a.clone(), at(10)).unwrap();
    let c = doc.checkin(w).unwrap();
    assert_eq!(c.deck, "weekly-v1");
    let s = &c.submissions[&ana()];
    assert_eq!(
        s.answers.as_ref(),
        Some(&a),
        "the device that sealed the answers reads them back with their exact kinds"
    );
    assert_eq!(s.seal, Seal::Sealed);
    assert_eq!(s.submitted_at, at(10));
    assert!(c.submitted_by(&ana()) && !c.submitted_by(&ben()));
    assert!(!c.revealed(&doc.people()));
    let commitments = doc.commitments();
    assert_eq!(commitments.len(), 1);
    assert_eq!(commitments[0].text, "Cook dinner on Thursday");
    assert_eq!(
        (commitments[0].week, commitments[0].status),
        (w, CommitmentStatus::Open)
    );
    assert_eq!(doc.open_commitments(&ana()), commitments);
    assert!(doc.open_commitments(&ben()).is_empty());
    assert!(doc.checkin(w.next()).is_none());
}

#[test]
fn a_second_check_in_for_the_same_week_is_refused() {
    let (mut doc, _) = couple();
    let w = week("2026-W47");
    doc.submit_checkin(w, &ana(), answers(&[("feeling", "6")]), at(10))
        .unwrap();
    let err = doc
        .submit_checkin(w, &ana(), answers(&[("feeling", "9")]), at(11))
        .unwrap_err();
    assert!(
        matches!(&err, DocError::AlreadySubmitted { week, person } if *week == w && *person == ana())
    );
    assert!(err.to_string().contains("2026-W47"));
    doc.submit_checkin(w.next(), &ana(), answers(&[("feeling", "9")]), at(12))
        .unwrap();
}

#[test]
fn check_in_answers_are_validated_against_the_deck() {
    let (mut doc, _) = couple();
    let w = week("2026-W47");
    let mut bad = Answers::default();
    bad.insert("feeling", AnswerValue::Scale(11));
    assert!(matches!(
        doc.submit_checkin(w, &ana(), bad, at(1)),
        Err(DocError::InvalidAnswer { .. })
    ));
    let mut unknown = answers(&[("feeling", "5")]);
    unknown.insert("mood", AnswerValue::Text("ok".into()));
    assert!(matches!(
        doc.submit_checkin(w, &ana(), unknown, at(1)),
        Err(DocError::UnknownQuestion { .. })
    ));
    assert!(matches!(
        doc.submit_checkin(w, &ana(), Answers::default(), at(1)),
        Err(DocError::MissingAnswers { .. })
    ));
}

#[test]
fn answers_are_revealed_once_both_partners_submitted() {
    let (mut laptop, mut phone) = couple();
    let w = week("2026-W47");
    laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "7")]), at(10))
        .unwrap();
    sync(&mut laptop, &mut phone);
    assert!(!phone.checkin(w).unwrap().revealed(&phone.people()));
    phone
        .submit_checkin(w, &ben(), answers(&[("feeling", "5")]), at(20))
        .unwrap();
    sync(&mut laptop, &mut phone);
    // Ben's key went out with his answers, since Ana's were sealed already; Ana's laptop
    // releases hers on seeing his.
    let c = laptop.checkin(w).unwrap();
    assert_eq!(c.submissions[&ben()].seal, Seal::Open);
    assert_eq!(c.submissions[&ana()].seal, Seal::Sealed);
    assert!(!c.revealed(&laptop.people()));
    assert_eq!(laptop.release_due_keys(&ana(), at(30)).unwrap(), [w]);
    assert!(laptop.release_due_keys(&ana(), at(31)).unwrap().is_empty());
    sync(&mut laptop, &mut phone);
    let c = laptop.checkin(w).unwrap();
    assert!(c.revealed(&laptop.people()));
    assert_eq!(c, phone.checkin(w).unwrap());
    let trend = laptop.trend();
    assert_eq!(trend.len(), 1);
    assert_eq!(trend[0].feeling[&ana()], 7);
    assert_eq!(trend[0].feeling[&ben()], 5);
}

#[test]
fn no_key_is_released_against_partner_answers_that_carry_no_commitment() {
    let (mut laptop, mut phone) = couple();
    let w = week("2026-W47");
    laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "7")]), at(10))
        .unwrap();
    sync(&mut laptop, &mut phone);
    // Ben's modified client writes answers in the format from before sealing: readable,
    // bound to nothing, so he could change them after reading Ana's.
    let checkin_id = "ben-opens-the-week";
    let (me, person) = phone.me().unwrap();
    phone
        .change(|doc| {
            let checkins =
                layout::collection_for_write(doc, &me, &person, layout::CHECKINS, ObjType::Map)?;
            doc.put(&checkins, checkin_id, r#"{"week":"2026-W47"}"#)?;
            let submissions =
                layout::collection_for_write(doc, &me, &person, layout::SUBMISSIONS, ObjType::Map)?;
            doc.put(
                &submissions,
                layout::submission_key(checkin_id, ben().as_str()),
                r#"{"submitted_at":20,"answers":{"feeling":5}}"#,
            )?;
            Ok(())
        })
        .unwrap();
    sync(&mut laptop, &mut phone);
    assert_eq!(
        laptop.checkin(w).unwrap().submissions[&ben()].seal,
        Seal::Unsealed,
        "the old format is still read"
    );
    assert!(
        laptop.release_due_keys(&ana(), at(30)).unwrap().is_empty(),
        "but it is never the basis of a release"
    );
    sync(&mut laptop, &mut phone);
    assert_eq!(
        phone.checkin(w).unwrap().submissions[&ana()].seal,
        Seal::Sealed
    );

    // Nor when Ben's unsealed answers are there first and Ana answers after them.
    let w2 = week("2026-W48");
    phone
        .change(|doc| {
            let checkins =
                layout::collection_for_write(doc, &me, &person, layout::CHECKINS, ObjType::Map)?;
            doc.put(&checkins, "ben-opens-w48", r#"{"week":"2026-W48"}"#)?;
            let submissions =
                layout::collection_for_write(doc, &me, &person, layout::SUBMISSIONS, ObjType::Map)?;
            doc.put(
                &submissions,
                layout::submission_key("ben-opens-w48", ben().as_str()),
                r#"{"submitted_at":20,"answers":{"feeling":5}}"#,
            )?;
            Ok(())
        })
        .unwrap();
    sync(&mut laptop, &mut phone);
    laptop
        .submit_checkin(w2, &ana(), answers(&[("feeling", "6")]), at(40))
        .unwrap();
    sync(&mut laptop, &mut phone);
    assert_eq!(
        phone.checkin(w2).unwrap().submissions[&ana()].seal,
        Seal::Sealed,
        "submitting after the partner's unsealed answers releases nothing"
    );
}

#[test]
fn check_ins_opened_offline_on_both_devices_for_the_same_week_merge() {
    let (mut laptop, mut phone) = couple();
    let w = week("2026-W47");
    laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "8")]), at(10))
        .unwrap();
    phone
        .submit_checkin(w, &ben(), answers(&[("feeling", "4")]), at(11))
        .unwrap();
    sync(&mut laptop, &mut phone);
    // Neither saw the other's sealed answers when submitting: both release on seeing them.
    assert_eq!(laptop.release_due_keys(&ana(), at(12)).unwrap(), [w]);
    assert_eq!(phone.release_due_keys(&ben(), at(12)).unwrap(), [w]);
    sync(&mut laptop, &mut phone);
    assert_eq!(
        checkins::raw_checkins(&laptop.doc, &laptop.authors(), false, Some(w)).len(),
        2,
        "two check-ins were opened, one on each device"
    );
    for doc in [&laptop, &phone] {
        let all = doc.checkins();
        assert_eq!(all.len(), 1, "but they read as one week");
        assert_eq!(all[0].submissions.len(), 2);
        assert!(all[0].revealed(&doc.people()));
    }
    assert_eq!(laptop.checkins(), phone.checkins());
    assert!(matches!(
        phone.submit_checkin(w, &ben(), answers(&[("feeling", "5")]), at(12)),
        Err(DocError::AlreadySubmitted { .. })
    ));
}

#[test]
fn one_person_submitting_on_two_offline_devices_keeps_the_earlier_answers() {
    let (mut laptop, mut phone, _) = three_devices();
    let w = week("2026-W47");
    // Ana answers on her laptop and, forgetting, again on her desktop.
    laptop
        .submit_checkin(w, &ana(), answers(&[("feeling", "8")]), at(10))
        .unwrap();
    phone
        .submit_checkin(w, &ana(), answers(&[("feeling", "3")]), at(20))
        .unwrap();
    sync(&mut laptop, &mut phone);
    let c = laptop.checkin(w).unwrap();
    let on_phone = phone.checkin(w).unwrap();
    assert_eq!(c.submissions[&ana()].submitted_at, at(10));
    assert_eq!(on_phone.submissions[&ana()].submitted_at, at(10));
    assert_eq!(
        c.submissions[&ana()]
            .answers
            .as_ref()
            .unwrap()
            .scale("feeling"),
        Some(8)
    );
    assert_eq!(
        on_phone.submissions[&ana()].answers,
        None,
        "the key to sealed answers stays on the device that sealed them"
    );
}

#[test]
fn followup_closes_earlier_open_commitments_of_that_person_only() {
    let (mut doc, mut phone) = couple();
    let w1 = week("2026-W46");
    let w2 = week("2026-W47");
    doc.submit_checkin(
        w1,
        &ana(),
        answers(&[("feeling", "7"), ("commit", "call mum together")]),
        at(1),
    )
    .unwrap();
    sync(&mut doc, &mut phone);
    phone
        .submit_checkin(
            w1,
            &ben(),
            answers(&[("feeling", "7"), ("commit", "plan a walk")]),
            at(2),
        )
        .unwrap();
    sync(&mut doc, &mut phone);
    assert_eq!(doc.release_due_keys(&ana(), at(2)).unwrap(), [w1]);
    doc.submit_checkin(
        w2,
        &ana(),
        answers(&[
            ("feeling", "8"),
            ("followup", "partly"),
            ("commit", "bake bread"),
        ]),
        at(3),
    )
    .unwrap();
    let status = |doc: &SpaceDoc, text: &str| {
        doc.commitments()
            .into_iter()
            .find(|c| c.text == text)
            .unwrap()
            .status
    };
    assert_eq!(status(&doc, "call mum together"), CommitmentStatus::Partly);
    assert_eq!(
        status(&doc, "plan a walk"),
        CommitmentStatus::Open,
        "Ben's is his to follow up"
    );
    assert_eq!(
        status(&doc, "bake bread"),
        CommitmentStatus::Open,
        "this week's is new"
    );
    sync(&mut doc, &mut phone);
    phone
        .submit_checkin(
            w2,
            &ben(),
            answers(&[("feeling", "6"), ("followup", "no")]),
            at(4),
        )
        .unwrap();
    sync(&mut doc, &mut phone);
    assert_eq!(status(&doc, "plan a walk"), CommitmentStatus::Dropped);
    let w3 = w2.next();
    doc.submit_checkin(
        w3,
        &ana(),
        answers(&[("feeling", "9"), ("followup", "done")]),
        at(5),
    )
    .unwrap();
    assert_eq!(status(&doc, "bake bread"), CommitmentStatus::Done);
    assert_eq!(
        status(&doc, "call mum together"),
        CommitmentStatus::Partly,
        "already followed up"
    );
    // Ben cannot set the status of Ana's commitment.
    sync(&mut doc, &mut phone);
    let anas = doc
        .commitments()
        .into_iter()
        .find(|c| c.text == "call mum together")
        .unwrap();
    assert!(matches!(
        phone.set_commitment_status(&anas.id, CommitmentStatus::Done),
        Err(DocError::WrongRole { .. })
    ));
}

#[test]
fn commitment_status_can_be_set_directly() {
    let (mut doc, _) = couple();
    doc.submit_checkin(
        week("2026-W47"),
        &ana(),
        answers(&[("feeling", "7"), ("commit", "tea")]),
        at(1),
    )
    .unwrap();
    let id = doc.commitments()[0].id.clone();
    doc.set_commitment_status(&id, CommitmentStatus::Done)
        .unwrap();
    assert_eq!(doc.commitments()[0].status, CommitmentStatus::Done);
    let before = doc.heads();
    doc.set_commitment_status(&id, CommitmentStatus::Done)
        .unwrap();
    assert_eq!(doc.heads(), before, "the same status writes nothing");
    assert!(doc.open_commitments(&ana()).is_empty());
    assert!(matches!(
        doc.set_commitment_status(&EntryId::new(), CommitmentStatus::Done),
        Err(DocError::NotFound {
            what: "commitment",
            ..
        })
    ));
}

#[test]
fn a_partner_who_takes_your_name_never_reads_as_you() {
    let (mut laptop, mut phone) = couple();
    phone.add_person(&ben(), " ana ", at(2)).unwrap();
    phone
        .add_appreciation(&ben(), "from the one now called Ana", at(3))
        .unwrap();
    sync(&mut laptop, &mut phone);
    let names: Vec<(PersonId, String)> = laptop
        .people()
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    assert_eq!(
        names,
        [
            (ana(), "Ana".to_owned()),
            (ben(), "ana (partner)".to_owned())
        ],
        "on Ana's device"
    );
    let on_phone: Vec<String> = phone.people().into_iter().map(|p| p.name).collect();
    assert_eq!(on_phone, ["Ana (partner)", "ana"], "and on his own");
    let a = &laptop.appreciations()[0];
    assert_eq!(a.author, ben(), "the entry is his, by id");
}

#[test]
fn adding_a_person_twice_renames_them_and_keeps_when_they_joined() {
    let (_, mut doc) = couple();
    doc.add_person(&ben(), "Benjamin", at(99)).unwrap();
    let ben_now = doc.person(&ben()).unwrap();
    assert_eq!(
        (ben_now.name.as_str(), ben_now.joined_at),
        ("Benjamin", at(1))
    );
    let before = doc.heads();
    doc.add_person(&ben(), "Benjamin", at(100)).unwrap();
    assert_eq!(doc.heads(), before);
    assert!(matches!(
        doc.add_person(&ben(), " ", at(1)),
        Err(DocError::Empty { what: "name" })
    ));
    assert_eq!(
        doc.people()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["Ana", "Benjamin"]
    );
}

#[test]
fn find_entry_takes_full_ids_and_unique_suffixes() {
    let (mut doc, _) = couple();
    let a = doc.add_appreciation(&ana(), "thanks", at(1)).unwrap();
    let j = doc.add_journal(&ana(), &journal("notes"), at(2)).unwrap();
    assert_eq!(doc.find_entry(a.as_str()).unwrap(), a);
    assert_eq!(doc.find_entry(&a.as_str().to_uppercase()).unwrap(), a);
    assert_eq!(doc.find_entry(j.short()).unwrap(), j);
    assert_eq!(
        doc.find_entry(&format!(" {} ", &j.short()[2..])).unwrap(),
        j
    );
    assert!(matches!(
        doc.find_entry("abc"),
        Err(DocError::HandleTooShort { .. })
    ));
    let missing = EntryId::new();
    assert!(matches!(
        doc.find_entry(missing.as_str()),
        Err(DocError::NotFound { .. })
    ));
}

#[test]
fn an_ambiguous_handle_lists_every_match() {
    let (mut doc, _) = couple();
    // Two ids that share their last 4 characters, written the way this crate writes them.
    let ids: Vec<EntryId> = [
        "0193a000-0000-7000-8000-00000000beef",
        "0193a000-0000-7000-8000-00000001beef",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let (me, person) = doc.me().unwrap();
    for id in &ids {
        let record = crate::records::AppreciationRecord {
            id: id.clone(),
            author: ana(),
            text: "x".into(),
            created_at: at(1),
        };
        doc.change(|d| append(d, (&me, &person), layout::APPRECIATIONS, &record))
            .unwrap();
    }
    let err = doc.find_entry("beef").unwrap_err();
    match &err {
        DocError::Ambiguous { candidates, .. } => assert_eq!(candidates, &ids),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert!(err.to_string().contains("matches 2 entries"));
    assert_eq!(doc.find_entry("1beef").unwrap(), ids[1]);
}

#[test]
fn the_timeline_holds_everything_in_time_order_and_reads_well_as_json() {
    let (mut laptop, mut phone) = couple();
    let a = laptop
        .add_appreciation(&ana(), "thank you", at(10))
        .unwrap();
    let f = phone
        .add_feedback(&ben(), &draft("o", "f", "n", "r"), at(20))
        .unwrap();
    sync(&mut laptop, &mut phone);
    laptop
        .add_reply(&f, &ana(), ReplyKind::Reflect, "I hear", at(30))
        .unwrap();
    laptop
        .add_journal(&ana(), &journal("dear diary"), at(40))
        .unwrap();
    laptop
        .submit_checkin(
            week("2026-W47"),
            &ana(),
            answers(&[("feeling", "9"), ("commit", "tea")]),
            at(50),
        )
        .unwrap();
    sync(&mut laptop, &mut phone);
    let timeline = laptop.timeline();
    assert_eq!(
        phone.timeline()[..],
        timeline[..5],
        "Ben's device cannot read the commitment in Ana's sealed answers"
    );
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|i| match i.kind {
            TimelineKind::Appreciation { .. } => "appreciation",
            TimelineKind::Feedback { .. } => "feedback",
            TimelineKind::Reply { .. } => "reply",
            TimelineKind::Journal { .. } => "journal",
            TimelineKind::CheckinSubmitted { .. } => "checkin_submitted",
            TimelineKind::Commitment { .. } => "commitment",
        })
        .collect();
    assert_eq!(
        kinds[..5],
        [
            "appreciation",
            "feedback",
            "reply",
            "journal",
            "checkin_submitted"
        ]
    );
    assert_eq!(kinds.len(), 6);
    assert!(timeline.windows(2).all(|w| w[0].at <= w[1].at));

    let json = serde_json::to_value(&timeline[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"at": T0 + 600_000, "author": ana().to_string(), "kind": "appreciation", "id": a.to_string(), "text": "thank you"})
    );
    let reply = serde_json::to_value(&timeline[2]).unwrap();
    assert_eq!(reply["kind"], "reply");
    assert_eq!(reply["reply_kind"], "reflect");
    assert_eq!(reply["feedback"], f.to_string());
    let checkin = serde_json::to_value(&timeline[4]).unwrap();
    assert_eq!(checkin["kind"], "checkin_submitted");
    assert_eq!(checkin["week"], "2026-W47");
    let back: Vec<crate::TimelineItem> =
        serde_json::from_str(&serde_json::to_string(&timeline).unwrap()).unwrap();
    assert_eq!(back, timeline);
    assert_eq!(timeline[2].id(), Some(&f));
    assert_eq!(timeline[4].id(), None);
}

#[test]
fn load_restores_a_snapshot_plus_chunks_and_counts_it_as_saved() {
    let mut doc = SpaceDoc::create(b"ana-laptop", &ana(), "Ana", at(0)).unwrap();
    let snapshot = doc.save_snapshot();
    doc.add_appreciation(&ana(), "one", at(1)).unwrap();
    let chunk1 = doc.take_unsaved().unwrap();
    doc.add_journal(&ana(), &journal("two"), at(2)).unwrap();
    doc.add_appreciation(&ana(), "three", at(3)).unwrap();
    let chunk2 = doc.take_unsaved().unwrap();
    assert!(doc.take_unsaved().is_none(), "nothing new since");

    let mut again = SpaceDoc::load(b"ana-laptop", &snapshot, [chunk1.as_slice(), &chunk2]).unwrap();
    assert_eq!(again.heads(), doc.heads());
    assert_eq!(again.timeline(), doc.timeline());
    assert!(
        again.take_unsaved().is_none(),
        "loaded state counts as saved"
    );
    again.add_appreciation(&ana(), "four", at(4)).unwrap();
    let chunk3 = again.take_unsaved().unwrap();
    assert!(
        chunk3.len() < chunk1.len() + chunk2.len(),
        "only the new change, not the history"
    );

    // The whole history as chunks, with an empty snapshot, loads too.
    let mut fresh = SpaceDoc::create(b"dev", &ana(), "Ana", at(0)).unwrap();
    let all = fresh.take_unsaved().unwrap();
    let loaded = SpaceDoc::load(b"dev", &[], [all.as_slice()]).unwrap();
    assert_eq!(loaded.people(), fresh.people());
}

#[test]
fn loading_damaged_or_missing_data_is_refused() {
    let mut doc = SpaceDoc::create(b"ana-laptop", &ana(), "Ana", at(0)).unwrap();
    let snapshot = doc.save_snapshot();
    let mut damaged = snapshot.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    assert!(matches!(
        SpaceDoc::load(b"x", &damaged, []),
        Err(DocError::Load { .. })
    ));
    assert!(matches!(
        SpaceDoc::load(b"x", &snapshot, [&b"junk"[..]]),
        Err(DocError::Load { .. })
    ));
    assert!(matches!(
        SpaceDoc::load(b"x", &[], []),
        Err(DocError::NoData)
    ));
    assert!(matches!(
        SpaceDoc::load(b"", &snapshot, []),
        Err(DocError::EmptyActor)
    ));
    let err = SpaceDoc::load(b"x", &damaged, []).unwrap_err();
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept for the log"
    );
}

#[test]
fn apply_reports_whether_anything_new_arrived() {
    let (mut laptop, mut phone) = couple();
    laptop.add_appreciation(&ana(), "hello", at(5)).unwrap();
    let chunk = laptop.take_unsaved().unwrap();
    assert!(phone.apply(&chunk).unwrap());
    assert!(
        !phone.apply(&chunk).unwrap(),
        "the same changes again are nothing new"
    );
    assert!(!phone.apply(&[]).unwrap());
    // New to the phone's store as well.
    let stored = phone.take_unsaved().unwrap();
    let mut reloaded = SpaceDoc::load(b"ben-phone", &phone.save_snapshot(), []).unwrap();
    assert_eq!(reloaded.appreciations().len(), 1);
    assert!(!stored.is_empty());
    assert_eq!(reloaded.heads(), phone.heads());
}

#[test]
fn a_snapshot_from_the_partner_applies_like_changes() {
    let (mut laptop, mut phone) = couple();
    laptop.add_appreciation(&ana(), "a", at(5)).unwrap();
    phone.add_appreciation(&ben(), "b", at(6)).unwrap();
    let snapshot = laptop.save_snapshot();
    assert!(phone.apply(&snapshot).unwrap());
    assert_eq!(phone.appreciations().len(), 2);
    assert!(
        phone.take_unsaved().is_some(),
        "the laptop's change is new to the phone's store"
    );
}

#[test]
fn damaged_changes_are_refused_and_nothing_is_applied() {
    let (mut laptop, mut phone) = couple();
    laptop.add_appreciation(&ana(), "first", at(5)).unwrap();
    laptop.add_appreciation(&ana(), "second", at(6)).unwrap();
    let mut chunk = laptop.take_unsaved().unwrap();
    let before = phone.heads();
    let last = chunk.len() - 1;
    chunk[last] ^= 0x55;
    let err = phone.apply(&chunk).unwrap_err();
    assert!(matches!(err, DocError::Apply { .. }));
    assert!(err.to_string().contains("nothing was applied"));
    assert_eq!(phone.heads(), before, "not even the first, valid change");
    assert!(phone.appreciations().is_empty());
    assert!(phone.apply(b"\x85\x6f\x4a\x83 not really").is_err());
}

#[test]
fn changes_that_arrive_before_their_dependencies_wait_for_them() {
    let (mut laptop, mut phone) = couple();
    laptop.add_appreciation(&ana(), "one", at(5)).unwrap();
    let first = laptop.take_unsaved().unwrap();
    laptop.add_appreciation(&ana(), "two", at(6)).unwrap();
    let second = laptop.take_unsaved().unwrap();
    assert!(!phone.apply(&second).unwrap(), "nothing visible yet");
    assert!(!phone.missing_deps().is_empty());
    assert!(phone.apply(&first).unwrap());
    assert!(phone.missing_deps().is_empty());
    assert_eq!(phone.appreciations().len(), 2);
    assert_eq!(phone.heads(), laptop.heads());
}

#[test]
fn a_batch_of_messages_applies_all_or_nothing() {
    let (mut laptop, mut phone) = couple();
    let mut messages = Vec::new();
    for i in 0..3 {
        laptop
            .add_appreciation(&ana(), &format!("thanks {i}"), at(10 + i))
            .unwrap();
        messages.push(laptop.take_unsaved().unwrap());
    }
    // Out of order within the batch is fine.
    messages.swap(0, 2);
    let mut damaged = messages.clone();
    damaged.push(b"not automerge".to_vec());
    let before = phone.heads();
    assert!(matches!(
        phone.apply_all(damaged.iter().map(Vec::as_slice)),
        Err(DocError::Apply { .. })
    ));
    assert_eq!(phone.heads(), before);
    assert!(phone.apply_all(messages.iter().map(Vec::as_slice)).unwrap());
    assert_eq!(phone.appreciations().len(), 3);
    assert_eq!(phone.heads(), laptop.heads());
    assert!(!phone.apply_all(messages.iter().map(Vec::as_slice)).unwrap());
}

// Sealed answers: an early peek, answers changed after seeing the partner's, a key that
// opens nothing, and a key held back. `docs/security.md`, "Sealed check-in answers".

const SECRET: &str = "the lake at dawn, just the two of us";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Ana answers 2026-W47 first, with `SECRET`; Ben answers after receiving her sealed
/// answers, so his key goes out with his; both devices hold everything. Ana's key is not
/// released yet.
fn ben_answered_after_ana() -> (SpaceDoc, SpaceDoc, Week) {
    let (mut laptop, mut phone) = couple();
    let w = week("2026-W47");
    let mine = answers(&[
        ("feeling", "3"),
        ("connected", SECRET),
        ("commit", "say sorry first"),
    ]);
    laptop.submit_checkin(w, &ana(), mine, at(10)).unwrap();
    sync(&mut laptop, &mut phone);
    phone
        .submit_checkin(w, &ben(), answers(&[("feeling", "8")]), at(20))
        .unwrap();
    sync(&mut laptop, &mut phone);
    (laptop, phone, w)
}

/// What a modified client could write on Ana's laptop: new sealed answers for her, under
/// the same submission key, and (if `release`) their key, naming Ben's answers as seen.
fn swap_anas_answers(laptop: &mut SpaceDoc, w: Week, new: &Answers, release: bool) {
    let checkin_id = checkins::raw_checkins(&laptop.doc, &laptop.authors(), false, Some(w))
        .into_iter()
        .find(|c| c.submissions.contains_key(&ana()))
        .unwrap()
        .id;
    let bens = laptop.checkin(w).unwrap();
    assert_eq!(bens.submissions[&ben()].seal, Seal::Open);
    let seen = checkins::merge(checkins::raw_checkins(
        &laptop.doc,
        &laptop.authors(),
        true,
        Some(w),
    ))[0]
        .submissions[&ben()][0]
        .commitment();
    let (key, sealed) = answers::seal(
        &w.to_string(),
        ana().as_str(),
        &serde_json::to_vec(new).unwrap(),
    )
    .unwrap();
    let reveal = RevealRecord {
        week: w,
        person: ana(),
        commitment: sealed.commitment,
        key,
        seen,
        released_at: at(41),
    };
    let record = SealedSubmission {
        submitted_at: at(40),
        sealed,
    };
    let (me, person) = laptop.me().unwrap();
    laptop
        .change(|doc| {
            let submissions =
                layout::collection_for_write(doc, &me, &person, layout::SUBMISSIONS, ObjType::Map)?;
            doc.put(
                &submissions,
                layout::submission_key(&checkin_id, ana().as_str()),
                ScalarValue::Bytes(record.encode()),
            )?;
            if release {
                append_bytes(doc, (&me, &person), layout::REVEALS, reveal.encode())?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn an_early_peek_at_the_partners_document_reveals_nothing_sealed() {
    let (mut laptop, mut phone) = couple();
    let w = week("2026-W47");
    let mine = answers(&[
        ("feeling", "3"),
        ("connected", SECRET),
        ("commit", "say sorry first"),
    ]);
    laptop.submit_checkin(w, &ana(), mine, at(10)).unwrap();
    sync(&mut laptop, &mut phone);

    // Ben's device holds every byte the relay carried, and reads nothing of Ana's answers:
    // not through a query, not in the document's uncompressed bytes.
    let c = phone.checkin(w).unwrap();
    let s = &c.submissions[&ana()];
    assert_eq!((s.seal, s.answers.as_ref()), (Seal::Sealed, None));
    assert!(phone.trend().is_empty() && phone.commitments().is_empty());
    assert!(
        !phone
            .timeline()
            .iter()
            .any(|i| matches!(i.kind, TimelineKind::Commitment { .. }))
    );
    for doc in [&mut laptop, &mut phone] {
        let bytes = doc.doc.save_nocompress();
        for needle in [SECRET, "say sorry first", "\"feeling\":3"] {
            assert!(!contains(&bytes, needle), "{needle:?} is in the document");
        }
    }
    // Ana's laptop reads her answers with the key only it holds.
    let own = laptop.checkin(w).unwrap();
    let own = own.submissions[&ana()].answers.as_ref().unwrap();
    assert_eq!(own.text("connected"), Some(SECRET));

    // Ben answers: still nothing of Ana's until her device has seen his and released.
    phone
        .submit_checkin(w, &ben(), answers(&[("feeling", "8")]), at(20))
        .unwrap();
    assert_eq!(phone.checkin(w).unwrap().submissions[&ana()].answers, None);
    sync(&mut laptop, &mut phone);
    assert_eq!(laptop.release_due_keys(&ana(), at(30)).unwrap(), [w]);
    sync(&mut laptop, &mut phone);
    let c = phone.checkin(w).unwrap();
    assert!(c.revealed(&phone.people()));
    let opened = c.submissions[&ana()].answers.as_ref().unwrap();
    assert_eq!(opened.text("connected"), Some(SECRET));
    assert_eq!(c.submissions[&ana()].released_at, Some(at(30)));
    assert_eq!(phone.commitments()[0].text, "say sorry first");
    assert_eq!(phone.trend()[0].feeling[&ana()], 3);
}

#[test]
fn answers_changed_after_seeing_the_partners_are_never_shown() {
    let (mut laptop, mut phone, w) = ben_answered_after_ana();
    // Ana's laptop can read Ben's answers now (his key came with them). A modified client
    // replaces her sealed answers and releases the new ones' key.
    let rosier = answers(&[("feeling", "10"), ("connected", "every single day")]);
    swap_anas_answers(&mut laptop, w, &rosier, true);
    sync(&mut laptop, &mut phone);
    for doc in [&laptop, &phone] {
        let c = doc.checkin(w).unwrap();
        let s = &c.submissions[&ana()];
        assert_eq!((s.seal, s.answers.as_ref()), (Seal::Replaced, None));
        assert!(!c.revealed(&doc.people()));
        assert!(!doc.trend()[0].feeling.contains_key(&ana()));
    }
    // Releasing the original key afterwards does not bring the swap back to life either:
    // Ben committed against the original, which is gone from the document.
    assert!(laptop.release_due_keys(&ana(), at(50)).unwrap().is_empty());
}

#[test]
fn answers_swapped_even_without_a_key_are_reported_as_replaced() {
    let (mut laptop, mut phone, w) = ben_answered_after_ana();
    swap_anas_answers(&mut laptop, w, &answers(&[("feeling", "10")]), false);
    sync(&mut laptop, &mut phone);
    // Ben's released key names the sealed answers he saw; they are gone.
    let s = &phone.checkin(w).unwrap().submissions[&ana()];
    assert_eq!((s.seal, s.answers.as_ref()), (Seal::Replaced, None));
}

#[test]
fn answers_deleted_after_the_partners_were_opened_read_as_replaced_everywhere() {
    let (mut laptop, mut phone, w) = ben_answered_after_ana();
    assert_eq!(
        phone.checkin(w).unwrap().submissions[&ben()].seal,
        Seal::Open,
        "Ben's key is out (Ana's not yet): Ana can read Ben's answers"
    );
    // Ana's modified client removes her submission (her own value: the rule allows it).
    let (me, person) = laptop.me().unwrap();
    let subs = layout::collection_for_write(
        &mut laptop.doc,
        &me,
        &person,
        layout::SUBMISSIONS,
        ObjType::Map,
    )
    .unwrap();
    let keys: Vec<String> = laptop.doc.keys(&subs).collect();
    for key in keys {
        laptop.doc.delete(&subs, key.as_str()).unwrap();
    }
    laptop.doc.commit();
    sync(&mut laptop, &mut phone);
    for (device, doc) in [("Ben's phone", &phone), ("Ana's laptop", &laptop)] {
        let c = doc.checkin(w).unwrap();
        let s = &c.submissions[&ana()];
        assert_eq!(
            (s.seal, s.answers.as_ref()),
            (Seal::Replaced, None),
            "{device}: removed after Ben's key named them, never 'not answered'"
        );
        assert!(!c.revealed(&doc.people()), "{device}");
    }
}

#[test]
fn a_released_key_that_opens_nothing_is_reported_not_trusted() {
    let (mut laptop, mut phone, w) = ben_answered_after_ana();
    let checkin = checkins::merge(checkins::raw_checkins(
        &laptop.doc,
        &laptop.authors(),
        true,
        Some(w),
    ));
    let [c] = &checkin[..] else {
        panic!("one week")
    };
    let mine = c.submissions[&ana()][0].commitment().unwrap();
    let wrong = RevealRecord {
        week: w,
        person: ana(),
        commitment: mine,
        key: SealKey::from_bytes([7u8; 32]),
        seen: c.submissions[&ben()][0].commitment(),
        released_at: at(30),
    };
    let (me, person) = laptop.me().unwrap();
    laptop
        .change(|doc| append_bytes(doc, (&me, &person), layout::REVEALS, wrong.encode()))
        .unwrap();
    sync(&mut laptop, &mut phone);
    let s = &phone.checkin(w).unwrap().submissions[&ana()];
    assert_eq!((s.seal, s.answers.as_ref()), (Seal::Mismatch, None));
    // The honest key, released after, opens them.
    assert_eq!(laptop.release_due_keys(&ana(), at(31)).unwrap(), [w]);
    sync(&mut laptop, &mut phone);
    let c = phone.checkin(w).unwrap();
    assert_eq!(c.submissions[&ana()].seal, Seal::Open);
    assert!(c.revealed(&phone.people()));
}

#[test]
fn a_withheld_key_keeps_the_answers_sealed_and_shows_since_when_they_were_owed() {
    let (laptop, phone, w) = ben_answered_after_ana();
    // Ana's device never releases: a modified client, or one that never syncs again.
    for doc in [&laptop, &phone] {
        let c = doc.checkin(w).unwrap();
        let (a, b) = (&c.submissions[&ana()], &c.submissions[&ben()]);
        assert_eq!((b.seal, b.released_at), (Seal::Open, Some(at(20))));
        assert_eq!(a.seal, Seal::Sealed);
        assert!(!c.revealed(&doc.people()));
    }
    // The limit of any two-party exchange: whoever answered first reads the other's
    // answers before releasing their own. It is visible: Ben's were open since at(20).
    let on_laptop = laptop.checkin(w).unwrap();
    assert_eq!(
        on_laptop.submissions[&ben()]
            .answers
            .as_ref()
            .unwrap()
            .scale("feeling"),
        Some(8)
    );
    assert_eq!(phone.checkin(w).unwrap().submissions[&ana()].answers, None);
}

#[test]
fn released_keys_are_reported_so_the_client_can_forget_them() {
    let (mut laptop, mut phone, w) = ben_answered_after_ana();
    assert!(laptop.released_own_keys().is_empty());
    let new = laptop.take_new_keys();
    assert_eq!(new.len(), 1, "the key Ana's submission made");
    assert_eq!(new[0].week, w);
    assert!(laptop.take_new_keys().is_empty());
    laptop.release_due_keys(&ana(), at(30)).unwrap();
    assert_eq!(laptop.released_own_keys(), [new[0].commitment]);
    sync(&mut laptop, &mut phone);
    // A device given only its keys (as the client does on every load) reads its answers.
    let mut reloaded = SpaceDoc::load(b"ben-phone", &phone.save_snapshot(), []).unwrap();
    assert_eq!(
        reloaded.checkin(w).unwrap().submissions[&ben()].seal,
        Seal::Open
    );
    reloaded.add_own_keys(phone.take_new_keys());
    assert!(reloaded.released_own_keys().len() == 1);
}

#[test]
fn sealed_answers_with_an_odd_value_still_open_the_rest() {
    let w = week("2026-W47");
    let odd = br#"{"feeling":8,"connected":"the lake","mystery":{"nested":true}}"#;
    let (key, sealed) = answers::seal(&w.to_string(), ana().as_str(), odd).unwrap();
    let own = OwnKey {
        week: w,
        commitment: sealed.commitment,
        key,
    };
    let c = checkins::WeekCheckin {
        week: w,
        deck: "weekly-v1".into(),
        submissions: [(
            ana(),
            vec![checkins::RawSubmission {
                submitted_at: at(1),
                body: checkins::Body::Sealed(sealed),
            }],
        )]
        .into_iter()
        .collect(),
    };
    let keys = [(own.commitment, own)].into_iter().collect();
    let weekly = weekly_deck();
    let settled = checkins::settle(&c, Some(&weekly), &[], &keys, &[]);
    let answers = settled.submissions[&ana()].answers.as_ref().unwrap();
    assert_eq!(answers.scale("feeling"), Some(8));
    assert_eq!(answers.text("connected"), Some("the lake"));
    assert!(answers.get("mystery").is_none());
}

/// A couple's own deck, shared with the CLI tests.
const OUR_DECK: &str = include_str!("../../tests/data/our-sunday.toml");

#[test]
fn a_deck_added_on_one_device_reaches_the_partner_and_seals_a_check_in_for_both() {
    let (mut laptop, mut phone) = couple();
    let (deck, written) = laptop.add_deck("our-sunday.toml", OUR_DECK, false).unwrap();
    assert!(written);
    assert_eq!(deck.id, "our-sunday");
    assert!(phone.deck("our-sunday").is_none(), "not synced yet");
    sync(&mut laptop, &mut phone);
    assert_eq!(phone.deck("our-sunday"), Some(deck.clone()));
    assert_eq!(phone.own_decks(), std::slice::from_ref(&deck));

    let w = week("2026-W48");
    let mine = deck
        .parse_answers([("feeling", "8"), ("sunday", "slow")])
        .unwrap();
    laptop
        .submit_checkin_with(w, &ana(), Some("our-sunday"), mine, at(10))
        .unwrap();
    sync(&mut laptop, &mut phone);
    // Ben is asked the same deck, whatever he asks for.
    assert_eq!(phone.checkin_deck(w, None).unwrap().id, "our-sunday");
    assert!(matches!(
        phone.checkin_deck(w, Some("gentle")),
        Err(DocError::DeckMismatch { deck, asked, .. }) if deck == "our-sunday" && asked == "gentle-v1"
    ));
    let c = phone.checkin(w).unwrap();
    assert_eq!(c.deck, "our-sunday");
    assert_eq!(c.submissions[&ana()].seal, Seal::Sealed);
    assert!(c.submissions[&ana()].answers.is_none(), "sealed to Ben");

    let his = deck
        .parse_answers([("feeling", "6"), ("sunday", "out")])
        .unwrap();
    phone.submit_checkin(w, &ben(), his, at(20)).unwrap();
    sync(&mut laptop, &mut phone);
    assert_eq!(laptop.release_due_keys(&ana(), at(30)).unwrap(), [w]);
    sync(&mut laptop, &mut phone);
    for doc in [&laptop, &phone] {
        let c = doc.checkin(w).unwrap();
        assert!(c.revealed(&doc.people()));
        let ana_answers = c.submissions[&ana()].answers.as_ref().unwrap();
        assert_eq!(
            ana_answers.get("sunday"),
            Some(&AnswerValue::Choice("slow".into()))
        );
        let ben_answers = c.submissions[&ben()].answers.as_ref().unwrap();
        assert_eq!(
            ben_answers.get("sunday"),
            Some(&AnswerValue::Choice("out".into()))
        );
    }
    assert_eq!(
        laptop.trend()[0].feeling[&ben()],
        6,
        "trends cover every deck"
    );
}

#[test]
fn adding_decks_refuses_bad_files_built_in_ids_and_silent_replacement() {
    let (mut doc, _) = couple();
    let changes = change_count(&mut doc);
    let bad = OUR_DECK.replace("kind = \"choice\"", "kind = \"choise\"");
    let err = doc.add_deck("bad.toml", &bad, false).unwrap_err();
    assert!(matches!(&err, DocError::Deck { line: 16, .. }), "{err}");
    let weekly = OUR_DECK.replace("our-sunday", "gentle");
    assert!(matches!(
        doc.add_deck("g.toml", &weekly, false),
        Err(DocError::BuiltinDeckId { .. })
    ));
    assert_eq!(change_count(&mut doc), changes, "nothing written");

    doc.add_deck("ours.toml", OUR_DECK, false).unwrap();
    assert!(
        !doc.add_deck("ours.toml", OUR_DECK, false).unwrap().1,
        "same text: no-op"
    );
    let changed = OUR_DECK.replace("A slow morning", "A lazy morning");
    assert!(matches!(
        doc.add_deck("ours.toml", &changed, false),
        Err(DocError::DeckExists { .. })
    ));
    let (deck, written) = doc.add_deck("ours.toml", &changed, true).unwrap();
    assert!(written);
    assert_eq!(doc.deck("our-sunday"), Some(deck));
    assert!(matches!(
        doc.checkin_deck(week("2026-W48"), Some("daily")),
        Err(DocError::NotACheckinDeck { .. })
    ));
    assert!(matches!(
        doc.checkin_deck(week("2026-W48"), Some("nope")),
        Err(DocError::UnknownDeck { .. })
    ));
}

#[test]
fn a_check_in_whose_deck_is_unknown_still_shows_its_answers_by_key() {
    let (mut laptop, mut phone) = couple();
    laptop.add_deck("ours.toml", OUR_DECK, false).unwrap();
    let w = week("2026-W48");
    let deck = laptop.deck("our-sunday").unwrap();
    let mine = deck
        .parse_answers([("feeling", "8"), ("sunday", "slow")])
        .unwrap();
    laptop
        .submit_checkin_with(w, &ana(), Some("our-sunday"), mine, at(10))
        .unwrap();
    // The deck entry vanishes (as if written by a newer hearth this one cannot read).
    let (me, person) = laptop.me().unwrap();
    let decks =
        layout::collection_for_write(&mut laptop.doc, &me, &person, layout::DECKS, ObjType::Map)
            .unwrap();
    laptop
        .doc
        .put(&decks, "our-sunday", "id = 'our-sunday'\nfuture = 1\n")
        .unwrap();
    laptop.doc.commit();
    sync(&mut laptop, &mut phone);
    assert!(phone.deck("our-sunday").is_none());
    let c = laptop.checkin(w).unwrap();
    let answers = c.submissions[&ana()].answers.as_ref().unwrap();
    assert_eq!(answers.scale("feeling"), Some(8));
    assert_eq!(
        answers.text("sunday"),
        Some("slow"),
        "shown by key, as stored"
    );
}

#[test]
fn a_document_says_which_changes_it_holds_and_which_are_under_whose_actor() {
    let (mut laptop, _desktop, mut phone) = three_devices();
    let shared = laptop.heads();
    laptop
        .add_appreciation(&ana(), "only on the laptop", at(5))
        .unwrap();
    let newer = laptop.heads();
    assert!(laptop.has_changes(&shared) && laptop.has_changes(&newer));
    assert!(phone.has_changes(&shared));
    assert!(
        !phone.has_changes(&newer),
        "the laptop's new change is not there"
    );
    assert!(phone.has_changes(&[]));
    let on_laptop = laptop.changes_under(|actor| actor == LAPTOP);
    assert!(on_laptop.contains(&newer[0]));
    assert!(phone.changes_under(|actor| actor == LAPTOP).len() < on_laptop.len());
    assert!(laptop.changes_under(|actor| actor == DESKTOP).is_empty());
    assert_eq!(
        phone.changes_under(|actor| actor == PHONE).len(),
        1,
        "Ben's name"
    );
}
