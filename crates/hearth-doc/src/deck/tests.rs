use super::*;
use crate::model::{AnswerValue, Answers};

/// The line and the whole message of the error parsing `text` gives.
fn error_at(text: &str) -> (usize, String) {
    match parse_deck("my-deck.toml", text) {
        Err(e @ DocError::Deck { line, .. }) => (line, e.to_string()),
        other => panic!("expected a deck error, got {other:?}"),
    }
}

const HEAD: &str = "id = \"ours\"\ntitle = \"Ours\"\nkind = \"checkin\"\n\n";
const FEELING: &str = "[[questions]]\nkey = \"feeling\"\nprompt = \"How are we?\"\nkind = \"scale\"\nmin = 1\nmax = 10\nrequired = true\n\n";

/// A check-in deck with `feeling` first (lines 1–12), then `rest` from line 13.
fn deck(rest: &str) -> String {
    format!("{HEAD}{FEELING}{rest}")
}

#[test]
fn every_built_in_deck_parses_and_every_check_in_deck_asks_feeling() {
    let ids: Vec<_> = builtin_decks().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["weekly-v1", "gentle-v1", "deeper-v1", "daily-v1"]);
    for d in builtin_decks() {
        assert!(!d.title.is_empty() && !d.description.is_empty(), "{}", d.id);
        for q in &d.questions {
            assert!(
                !q.prompt.is_empty() && !q.help.is_empty(),
                "{} {}",
                d.id,
                q.key
            );
        }
        if d.kind == DeckKind::Checkin {
            let feeling = d.question("feeling").expect("feeling");
            assert!(feeling.required);
            assert!(matches!(
                feeling.kind,
                QuestionKind::Scale {
                    min: 1,
                    max: 10,
                    ..
                }
            ));
        }
    }
    assert_eq!(
        builtin_deck("gentle").map(|d| d.id.as_str()),
        Some("gentle-v1")
    );
    assert_eq!(
        builtin_deck("deeper-v1").map(|d| d.kind),
        Some(DeckKind::Checkin)
    );
    assert_eq!(builtin_deck("daily").map(|d| d.kind), Some(DeckKind::Daily));
    assert!(builtin_deck("weekly-v0").is_none());
}

/// The weekly deck's keys are stored in existing documents: the TOML file must describe
/// exactly the deck hearth had in Rust code (frozen as JSON when it moved to TOML).
#[test]
fn weekly_deck_is_exactly_the_rust_deck_it_replaced() {
    let snapshot: serde_json::Value =
        serde_json::from_str(include_str!("weekly-v1.snapshot.json")).unwrap();
    let mut now = serde_json::to_value(weekly_deck()).unwrap();
    let top = now.as_object_mut().unwrap();
    assert_eq!(top.remove("kind"), Some("checkin".into()));
    top.remove("description");
    for q in top["questions"].as_array_mut().unwrap() {
        q.as_object_mut().unwrap().remove("when");
    }
    assert_eq!(now, snapshot);
    assert_eq!(weekly_deck().id, WEEKLY_DECK_ID);
}

/// What the Rust deck's `applies()` did: `raise_*` only once `raise` is small or talk.
#[test]
fn weekly_deck_asks_the_four_part_form_exactly_when_the_old_rule_did() {
    let t = weekly_deck();
    for raise in [None, Some("nothing"), Some("small"), Some("talk")] {
        let mut a = Answers::default();
        if let Some(r) = raise {
            a.insert("raise", AnswerValue::Choice(r.into()));
        }
        for q in &t.questions {
            let old = if q.key.starts_with("raise_") {
                matches!(raise, Some("small" | "talk"))
            } else {
                true
            };
            assert_eq!(t.applies(&q.key, &a), old, "{} with raise {raise:?}", q.key);
        }
    }
}

#[test]
fn a_good_deck_parses_with_its_conditions() {
    let text = deck(
        "[[questions]]\nkey = \"mood\"\nprompt = \"Pick\"\nkind = \"multi_choice\"\noptions = [{ key = \"a\", label = \"A\" }, { key = \"b\", label = \"B\" }]\n\n\
         [[questions]]\nkey = \"why\"\nprompt = \"Why b?\"\nkind = \"text\"\nrequired = true\nwhen = { question = \"mood\", is = [\"b\"] }\n",
    );
    let d = parse_deck("ours.toml", &text).unwrap();
    assert_eq!(d.id, "ours");
    assert_eq!(d.keys(), ["feeling", "mood", "why"]);
    let mut a = d.parse_answers([("feeling", "7"), ("mood", "a")]).unwrap();
    assert!(!d.applies("why", &a), "not asked, so not required either");
    a.insert("mood", AnswerValue::Choices(vec!["a".into(), "b".into()]));
    assert!(d.applies("why", &a));
    let err = d
        .parse_answers([("feeling", "7"), ("mood", "b")])
        .unwrap_err();
    assert!(matches!(err, DocError::MissingAnswers { keys } if keys == ["why"]));
}

#[test]
fn a_toml_syntax_error_names_its_line_and_column() {
    let (line, msg) = error_at(&deck("[[questions]]\nkey = \"x\nprompt = \"y\"\n"));
    assert_eq!(line, 14, "{msg}");
    assert!(msg.starts_with("my-deck.toml line 14, column "), "{msg}");
}

#[test]
fn an_unknown_field_names_its_line() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"text\"\nrequird = true\n",
    ));
    assert_eq!(line, 17, "{msg}");
    assert!(msg.contains("requird"), "{msg}");
}

#[test]
fn a_duplicate_question_key_names_the_second_one() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"feeling\"\nprompt = \"Again\"\nkind = \"text\"\n",
    ));
    assert_eq!(line, 14, "{msg}");
    assert!(msg.contains("\"feeling\" is used twice"), "{msg}");
}

#[test]
fn an_unknown_kind_names_its_line_and_the_valid_ones() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"slider\"\n",
    ));
    assert_eq!(line, 16, "{msg}");
    assert!(
        msg.contains("\"slider\"") && msg.contains("multi_choice"),
        "{msg}"
    );
    let (line, msg) = error_at("id = \"ours\"\ntitle = \"Ours\"\nkind = \"weekly\"\n");
    assert_eq!(line, 3, "{msg}");
    assert!(msg.contains("kind = \"checkin\""), "{msg}");
}

#[test]
fn a_scale_whose_min_is_not_below_max_is_refused() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"scale\"\nmin = 5\nmax = 5\n",
    ));
    assert_eq!(line, 17, "{msg}");
    assert!(msg.contains("min must be smaller than max"), "{msg}");
}

#[test]
fn a_choice_without_options_says_to_add_them() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"need\"\nprompt = \"y\"\nkind = \"choice\"\n",
    ));
    assert_eq!(line, 16, "{msg}");
    assert!(
        msg.starts_with("my-deck.toml line 16, column 8: question \"need\" has kind \"choice\" but no options; add options = ["),
        "{msg}"
    );
}

#[test]
fn a_when_naming_an_unknown_question_or_option_is_refused() {
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"text\"\nwhen = { question = \"raise\", is = [\"talk\"] }\n",
    ));
    assert_eq!(line, 17, "{msg}");
    assert!(
        msg.contains("\"raise\"") && msg.contains("earlier"),
        "{msg}"
    );
    let (line, msg) = error_at(&deck(
        "[[questions]]\nkey = \"r\"\nprompt = \"y\"\nkind = \"choice\"\noptions = [{ key = \"a\", label = \"A\" }]\n\n\
         [[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"text\"\nwhen = { question = \"r\", is = [\"b\"] }\n",
    ));
    assert_eq!(line, 23, "{msg}");
    assert!(msg.contains("\"b\", which is not an option"), "{msg}");
}

#[test]
fn a_check_in_deck_without_feeling_is_refused_and_a_daily_one_is_not() {
    let (line, msg) = error_at(&format!(
        "{HEAD}[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"text\"\n"
    ));
    assert_eq!(line, 3, "{msg}");
    assert!(msg.contains("needs the question \"feeling\""), "{msg}");
    let (line, msg) = error_at(&format!(
        "{HEAD}[[questions]]\nkey = \"feeling\"\nprompt = \"y\"\nkind = \"scale\"\nmin = 1\nmax = 5\nrequired = true\n"
    ));
    assert_eq!(line, 6, "{msg}");
    assert!(msg.contains("min = 1, max = 10"), "{msg}");
    let daily = "id = \"ours\"\ntitle = \"Ours\"\nkind = \"daily\"\n[[questions]]\nkey = \"x\"\nprompt = \"y\"\nkind = \"text\"\n";
    assert_eq!(parse_deck("d.toml", daily).unwrap().kind, DeckKind::Daily);
}

#[test]
fn bad_ids_and_missing_fields_name_their_line() {
    let (line, msg) = error_at("title = \"Ours\"\nid = \"Our Deck\"\nkind = \"checkin\"\n");
    assert_eq!(line, 2, "{msg}");
    assert!(msg.contains("lowercase"), "{msg}");
    let (_, msg) = error_at("id = \"ours\"\nkind = \"checkin\"\n");
    assert!(msg.contains("title"), "{msg}");
    let (line, msg) = error_at(&deck("[[questions]]\nkey = \"x\"\nkind = \"text\"\n"));
    assert_eq!(line, 13, "{msg}");
    assert!(msg.contains("prompt"), "{msg}");
}

#[test]
fn line_and_column_count_characters_not_bytes() {
    assert_eq!(line_column("a\n…b", 5), (2, 2));
    assert_eq!(line_column("abc", 0), (1, 1));
    assert_eq!(line_column("a\n", 99), (2, 1));
}
