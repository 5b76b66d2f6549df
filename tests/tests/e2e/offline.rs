//! One partner, one device, no relay: a week of hearth as a person would use it, and what
//! happens when things go wrong.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use hearth_tests::{Device, files_containing, files_under};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");

fn device() -> Device {
    Device::new(BIN)
}

fn init(dev: &Device, name: &str) {
    dev.ok(["init", "--name", name, "--no-passphrase"]);
}

fn editor_script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

#[test]
fn a_week_of_hearth_on_one_device() {
    let mut dev = device();
    let out = dev.ok(["init", "--name", "Sam", "--no-passphrase"]);
    assert!(out.contains("Welcome, Sam"), "{out}");

    // Status before anything: the check-in is due.
    let status = dev.ok(["status"]);
    assert!(status.contains("Sam"), "{status}");
    assert!(status.contains("due"), "{status}");

    // The weekly check-in, scripted.
    let out = dev.ok([
        "checkin",
        "--answer",
        "feeling=8",
        "--answer",
        "feeling_word=hopeful",
        "--answer",
        "need=time,fun",
        "--answer",
        "appreciated=the soup on Tuesday",
        "--answer",
        "appreciated=listening about work",
        "--answer",
        "commit=cook on Friday",
    ]);
    assert!(out.contains("saved"), "{out}");
    assert!(out.contains("cook on Friday"), "{out}");
    let status = dev.json(["status"]);
    assert_eq!(status["checkin_due"], false);
    assert_eq!(status["open_commitments"][0]["text"], "cook on Friday");

    // Answering twice is refused and says how to see the answers.
    let again = dev.run(["checkin", "--answer", "feeling=3"]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert!(
        again.stderr.contains("already answered"),
        "{}",
        again.stderr
    );

    // An earlier week, for the trend.
    dev.ok(["checkin", "--week", "2026-W01", "--answer", "feeling=6"]);

    let show = dev.ok(["checkin", "show"]);
    assert!(show.contains("How are you feeling about us"), "{show}");
    assert!(show.contains("8 of 10"), "{show}");
    assert!(show.contains("• the soup on Tuesday"), "{show}");
    assert!(show.contains("partner has not joined"), "{show}");

    // Appreciations.
    dev.ok(["appreciate", "Thank you for fixing the bike"]);
    dev.run_with_input(["appreciate", "-"], "for the note in my bag\n");

    // Feedback, then replies.
    let fb = dev.json([
        "feedback",
        "--observation",
        "the dishes stayed in the sink overnight",
        "--feeling",
        "tired",
        "--need",
        "to share the evening chores",
        "--request",
        "could we do them together after dinner?",
    ]);
    let fb_id = fb["id"].as_str().unwrap().to_owned();
    let short = &fb_id[fb_id.len() - 8..];
    // Reflecting back is the listener's part: the one who raised it is told so.
    let run = dev.run([
        "feedback",
        "reply",
        short,
        "--reflect",
        "What I'm hearing is that evenings feel lopsided",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("only your partner can reflect back"),
        "{}",
        run.stderr
    );
    dev.ok([
        "feedback",
        "reply",
        short,
        "--heard",
        "yes",
        "--note",
        "thank you",
    ]);
    let list = dev.ok(["feedback", "list"]);
    assert!(
        list.contains("the dishes stayed in the sink overnight"),
        "{list}"
    );
    assert!(!list.contains("What I'm hearing"), "{list}");
    assert!(list.contains("felt heard?: yes — thank you"), "{list}");

    // Journal: TEXT with tags, $EDITOR, standard input, and a private entry.
    dev.ok([
        "journal",
        "add",
        "We walked to the lake.",
        "--tag",
        "walks",
        "--title",
        "Sunday",
    ]);
    let editor = editor_script(
        dev.scratch(),
        "editor.sh",
        "#!/bin/sh\nprintf 'Dinner on the balcony, first warm night.\\n# not kept\\n' >> \"$1\"\n",
    );
    dev.env("EDITOR", &editor);
    dev.ok(["journal", "add", "--tag", "dinners"]);
    let piped = dev.run_with_input(["journal", "add", "-"], "Rainy day, board games.\n");
    assert_eq!(piped.code, Some(0), "{}", piped.stderr);
    let private = dev.ok([
        "journal",
        "add",
        "Not ready to share this yet.",
        "--private",
    ]);
    assert!(private.contains("just for you"), "{private}");

    let journal = dev.ok(["journal", "list"]);
    for text in [
        "We walked to the lake.",
        "Dinner on the balcony, first warm night.",
        "Rainy day, board games.",
        "Not ready to share this yet.",
    ] {
        assert!(journal.contains(text), "missing {text:?} in\n{journal}");
    }
    assert!(
        !journal.contains("not kept"),
        "editor comment lines are dropped:\n{journal}"
    );
    assert!(journal.contains("(private)"), "{journal}");
    let walks = dev.json(["journal", "list", "--tag", "walks"]);
    assert_eq!(walks.as_array().unwrap().len(), 1);
    assert_eq!(walks[0]["title"], "Sunday");

    // The log holds everything, in order, as text and JSON.
    let log = dev.ok(["log"]);
    for text in [
        "Thank you for fixing the bike",
        "for the note in my bag",
        "the dishes stayed",
        "We walked to the lake.",
        "Not ready to share this yet.",
    ] {
        assert!(log.contains(text), "missing {text:?} in\n{log}");
    }
    let items = dev.json(["log"]);
    let items = items.as_array().unwrap();
    let kinds: BTreeSet<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    for kind in [
        "appreciation",
        "feedback",
        "reply",
        "journal",
        "checkin_submitted",
        "commitment",
    ] {
        assert!(kinds.contains(kind), "no {kind} in log kinds {kinds:?}");
    }
    let times: Vec<i64> = items.iter().map(|i| i["at"].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "log is in time order"
    );

    // Trends: both weeks, drawn.
    let trends = dev.ok(["trends"]);
    assert!(trends.contains("S"), "{trends}");
    let points = dev.json(["trends"]);
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(points[0]["week"], "2026-W01");
    assert_eq!(points[0]["feeling"]["Sam"], 6);
    assert_eq!(points[1]["feeling"]["Sam"], 8);

    // Exports.
    let export: Value = serde_json::from_str(&dev.ok(["export", "--format", "json"])).unwrap();
    assert_eq!(export["appreciations"].as_array().unwrap().len(), 2);
    assert_eq!(export["journal"].as_array().unwrap().len(), 4);
    assert_eq!(
        export["feedback"][0]["replies"].as_array().unwrap().len(),
        1,
        "the speaker's answer; their own reflection was refused"
    );
    assert_eq!(export["checkins"].as_array().unwrap().len(), 2);
    let md_path = dev.scratch().join("hearth.md");
    dev.ok([
        "export",
        "--format",
        "md",
        "--output",
        md_path.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.starts_with("# "), "{md}");
    assert!(md.contains("Thank you for fixing the bike"), "{md}");
    assert!(md.contains("Dinner on the balcony"), "{md}");
    let twice = dev.run([
        "export",
        "--format",
        "md",
        "--output",
        md_path.to_str().unwrap(),
    ]);
    assert_eq!(
        twice.code,
        Some(1),
        "an export never overwrites: {}",
        twice.stderr
    );
}

/// This week and the `n` before it, oldest first (the tests run with TZ=UTC).
fn recent_weeks(n: usize) -> Vec<String> {
    let mut week = hearth_doc::Week::from_date(hearth_doc::Millis::now().to_utc().date_naive());
    let mut weeks = vec![week.to_string()];
    for _ in 0..n {
        week = week.previous();
        weeks.insert(0, week.to_string());
    }
    weeks
}

fn open_commitments(dev: &Device) -> Vec<String> {
    dev.json(["status"])["open_commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn last_weeks_small_thing_comes_back_until_it_is_followed_up() {
    let dev = device();
    init(&dev, "Sam");
    let [two_ago, last, this] = <[String; 3]>::try_from(recent_weeks(2)).unwrap();
    let out = dev.ok([
        "checkin",
        "--week",
        &two_ago,
        "--answer",
        "feeling=7",
        "--answer",
        "commit=cook on Friday",
    ]);
    assert!(out.contains("It will come back next week"), "{out}");
    assert!(
        !out.contains("you said"),
        "nothing earlier to follow up: {out}"
    );
    assert_eq!(open_commitments(&dev), ["cook on Friday"]);

    // A scripted check-in without a follow-up is still saved, with one kind line.
    let out = dev.ok(["checkin", "--week", &last, "--answer", "feeling=6"]);
    assert!(out.contains("saved"), "{out}");
    let hints: Vec<&str> = out.lines().filter(|l| l.contains("you said")).collect();
    assert_eq!(hints.len(), 1, "{out}");
    assert!(
        hints[0].starts_with("Last week you said: cook on Friday."),
        "{out}"
    );
    assert!(
        hints[0].contains("--answer followup=done, partly or no"),
        "{out}"
    );
    assert!(
        hints[0].contains("\"not this time\" is a fine answer"),
        "{out}"
    );
    assert_eq!(open_commitments(&dev), ["cook on Friday"]);

    // This week says how it went, and that closes it.
    let out = dev.ok([
        "checkin",
        "--answer",
        "feeling=8",
        "--answer",
        "followup=done",
    ]);
    assert!(!out.contains("you said"), "{out}");
    assert!(open_commitments(&dev).is_empty());
    let log = dev.json(["log", "--kind", "commitment"]);
    assert_eq!(log[0]["text"], "cook on Friday");
    assert_eq!(log[0]["status"], "done");
    // Stored under the stable key, as the deck's option key.
    let me = dev.json(["status"])["person"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        dev.json(["checkin", "show", &this])["answers"][&me]["followup"],
        "done"
    );
}

#[test]
fn quiet_check_ins_say_nothing_but_still_show_what_is_asked_for() {
    let dev = device();
    init(&dev, "Sam");
    let [last, this] = <[String; 2]>::try_from(recent_weeks(1)).unwrap();
    let run = dev.run([
        "--quiet",
        "checkin",
        "--week",
        &last,
        "--answer",
        "feeling=7",
        "--answer",
        "commit=call your mum",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    // Not even the follow-up line, though last week's small thing is still open.
    let run = dev.run(["checkin", "--answer", "feeling=6", "-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert_eq!(open_commitments(&dev), ["call your mum"]);

    let show = dev.ok(["checkin", "show", &this, "--quiet"]);
    assert!(show.contains("6 of 10"), "{show}");
    assert_eq!(
        dev.json(["checkin", "show", &last, "-q"])["week"],
        last.as_str()
    );
    // Mistakes are still explained.
    let run = dev.run(["checkin", "--quiet", "--answer", "feeling=3"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("already answered"), "{}", run.stderr);
}

#[test]
fn markers_written_through_every_command_never_rest_in_plaintext() {
    for passphrase in [true, false] {
        let mut dev = device();
        if passphrase {
            dev.env("HEARTH_PASSPHRASE", "correct horse battery");
            dev.ok(["init", "--name", "MARKER-NAME-Q7"]);
        } else {
            init(&dev, "MARKER-NAME-Q7");
        }
        let editor = editor_script(
            dev.scratch(),
            "editor.sh",
            "#!/bin/sh\nprintf 'MARKER-EDITOR-K2\\n' >> \"$1\"\n",
        );
        dev.env("EDITOR", &editor);
        dev.ok(["appreciate", "MARKER-APPRECIATE-X1"]);
        dev.ok([
            "checkin",
            "--answer",
            "feeling=7",
            "--answer",
            "feeling_word=MARKER-CHECKIN-WORD-B3",
            "--answer",
            "connected=MARKER-CHECKIN-CONNECTED-B4",
            "--answer",
            "commit=MARKER-COMMIT-B5",
        ]);
        let fb = dev.json([
            "feedback",
            "--observation",
            "MARKER-OBSERVATION-C1",
            "--feeling",
            "MARKER-FEELING-C2",
            "--need",
            "MARKER-NEED-C3",
            "--request",
            "MARKER-REQUEST-C4",
        ]);
        let id = fb["id"].as_str().unwrap().to_owned();
        dev.ok(["feedback", "reply", &id, "--respond", "MARKER-REFLECT-D1"]);
        dev.ok([
            "journal",
            "add",
            "MARKER-JOURNAL-E1",
            "--tag",
            "markertag",
            "--title",
            "MARKER-TITLE-E2",
        ]);
        dev.ok(["journal", "add"]);
        dev.ok(["journal", "add", "MARKER-PRIVATE-F1", "--private"]);
        dev.ok(["log"]);
        dev.ok(["export", "--format", "md"]);

        let markers = [
            "MARKER-NAME-Q7",
            "MARKER-APPRECIATE-X1",
            "MARKER-CHECKIN-WORD-B3",
            "MARKER-CHECKIN-CONNECTED-B4",
            "MARKER-COMMIT-B5",
            "MARKER-OBSERVATION-C1",
            "MARKER-FEELING-C2",
            "MARKER-NEED-C3",
            "MARKER-REQUEST-C4",
            "MARKER-REFLECT-D1",
            "MARKER-JOURNAL-E1",
            "markertag",
            "MARKER-TITLE-E2",
            "MARKER-EDITOR-K2",
            "MARKER-PRIVATE-F1",
        ];
        // The markers did go in: the log shows them.
        let log = dev.ok(["log"]);
        assert!(
            log.contains("MARKER-JOURNAL-E1") && log.contains("MARKER-PRIVATE-F1"),
            "{log}"
        );
        let files = files_under(&dev.home());
        assert!(
            files.iter().any(|(p, _)| p.ends_with("profile.db")),
            "{files:?}"
        );
        for marker in markers {
            let found = files_containing(&dev.home(), marker.as_bytes());
            assert!(
                found.is_empty(),
                "{marker} in plaintext in {found:?} (passphrase: {passphrase})"
            );
        }
        // The editor's draft folder is gone.
        let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with("hearth-draft-")
                    && !files_containing(&e.path(), b"MARKER-EDITOR-K2").is_empty()
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "editor drafts left behind: {leftovers:?}"
        );
    }
}

#[test]
fn wrong_passphrase_exits_3_and_changes_nothing() {
    let mut dev = device();
    dev.env("HEARTH_PASSPHRASE", "the right one");
    dev.ok(["init", "--name", "Sam"]);
    dev.ok(["appreciate", "SECRET-APPRECIATION"]);
    let before = files_under(&dev.home());

    let mut wrong = Device::new(BIN);
    // Same profile, another passphrase.
    wrong.env("HEARTH_HOME", dev.home());
    wrong.env("HEARTH_PASSPHRASE", "the wrong one");
    for args in [
        vec!["log"],
        vec!["appreciate", "more"],
        vec!["export", "--format", "json"],
    ] {
        let run = wrong.run(&args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
        assert!(run.stderr.contains("HEARTH_PASSPHRASE"), "{}", run.stderr);
        assert!(!run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"));
        assert!(run.stdout.is_empty(), "nothing printed: {}", run.stdout);
    }
    assert_eq!(files_under(&dev.home()), before, "nothing on disk changed");
    assert!(dev.ok(["log"]).contains("SECRET-APPRECIATION"));
}

#[test]
fn without_a_terminal_or_passphrase_hearth_says_how_instead_of_waiting() {
    let dev = device();
    let run = dev.run(["init", "--name", "Sam"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("HEARTH_PASSPHRASE"), "{}", run.stderr);
    assert!(run.stderr.contains("--no-passphrase"), "{}", run.stderr);
    assert!(!dev.home().join("profile.db").exists());

    let mut with = Device::new(BIN);
    with.env("HEARTH_PASSPHRASE", "pw");
    with.ok(["init", "--name", "Sam"]);
    let mut without = Device::new(BIN);
    without.env("HEARTH_HOME", with.home());
    let run = without.run(["log"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("HEARTH_PASSPHRASE"), "{}", run.stderr);

    // A check-in without a terminal needs --answer.
    let plain = device();
    init(&plain, "Sam");
    let run = plain.run(["checkin"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("--answer"), "{}", run.stderr);
}

#[test]
fn invalid_answers_exit_1_naming_what_is_valid_and_save_nothing() {
    let dev = device();
    init(&dev, "Sam");
    let run = dev.run(["checkin", "--answer", "feeling=11"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("1") && run.stderr.contains("10"),
        "{}",
        run.stderr
    );

    let run = dev.run(["checkin", "--answer", "feeling=7", "--answer", "mood=great"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("feeling") && run.stderr.contains("need"),
        "lists keys: {}",
        run.stderr
    );

    let run = dev.run([
        "checkin",
        "--answer",
        "need=time,chocolate",
        "--answer",
        "feeling=5",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("touch"),
        "lists options: {}",
        run.stderr
    );

    let run = dev.run(["checkin", "--answer", "need=time"]);
    assert_eq!(run.code, Some(1), "feeling is required: {}", run.stderr);
    assert!(run.stderr.contains("feeling"), "{}", run.stderr);

    let run = dev.run(["checkin", "--week", "2999-W01", "--answer", "feeling=5"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    let run = dev.run(["appreciate", "   "]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);

    let run = dev.run(["feedback", "--observation", "x"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("--request"), "{}", run.stderr);

    let run = dev.run(["feedback", "reply", "zzzzzzzz", "--reflect", "hm"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    let run = dev.run(["journal", "add", "-"]);
    assert_eq!(run.code, Some(1), "empty stdin: {}", run.stderr);

    let log = dev.json(["log"]);
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(
        !kinds.contains(&"checkin_submitted") && !kinds.contains(&"appreciation"),
        "{kinds:?}"
    );
}

#[test]
fn a_failing_editor_saves_nothing() {
    let mut dev = device();
    init(&dev, "Sam");
    let editor = editor_script(
        dev.scratch(),
        "bad.sh",
        "#!/bin/sh\nprintf 'half' >> \"$1\"\nexit 3\n",
    );
    dev.env("EDITOR", &editor);
    let run = dev.run(["journal", "add"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("editor"), "{}", run.stderr);
    assert_eq!(dev.json(["journal", "list"]).as_array().unwrap().len(), 0);
}

#[test]
fn missing_damaged_or_tampered_profiles_exit_3_and_are_left_as_they_were() {
    let dev = device();
    let run = dev.run(["log"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("hearth init"), "{}", run.stderr);

    init(&dev, "Sam");
    dev.ok(["appreciate", "keep me"]);
    let db = dev.home().join("profile.db");

    // Flip one byte of a stored chunk.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let (seq, mut sealed): (i64, Vec<u8>) = conn
            .query_row(
                "SELECT seq, sealed FROM doc_chunks ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let mid = sealed.len() / 2;
        sealed[mid] ^= 0x20;
        conn.execute(
            "UPDATE doc_chunks SET sealed = ?1 WHERE seq = ?2",
            rusqlite::params![sealed, seq],
        )
        .unwrap();
    }
    let before = files_under(&dev.home());
    for args in [vec!["log"], vec!["appreciate", "more"]] {
        let run = dev.run(&args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("damaged"), "{}", run.stderr);
        assert!(run.stderr.contains("backup"), "{}", run.stderr);
    }
    assert_eq!(
        files_under(&dev.home()),
        before,
        "a failed command changes nothing"
    );

    // A database that is not a database.
    let dev = device();
    init(&dev, "Sam");
    let db = dev.home().join("profile.db");
    for f in ["profile.db-wal", "profile.db-shm"] {
        let _ = std::fs::remove_file(dev.home().join(f));
    }
    std::fs::write(&db, b"this is not sqlite at all, just bytes").unwrap();
    let run = dev.run(["status"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not sqlite at all, just bytes"
    );

    // A missing key file, then a truncated one.
    let dev = device();
    init(&dev, "Sam");
    let key_bytes = std::fs::read(key_of(&dev)).unwrap();
    std::fs::remove_file(key_of(&dev)).unwrap();
    let run = dev.run(["log"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("device.key"), "{}", run.stderr);
    std::fs::write(key_of(&dev), &key_bytes[..key_bytes.len() / 2]).unwrap();
    let run = dev.run(["log"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
}

fn key_of(dev: &Device) -> std::path::PathBuf {
    dev.home().join("device.key")
}

#[test]
fn usage_mistakes_exit_1_and_help_exits_0() {
    let dev = device();
    for args in [vec!["frobnicate"], vec!["appreciate", "--nope"], vec![]] {
        let run = dev.run(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("Usage"), "{}", run.stderr);
    }
    let help = dev.ok(["--help"]);
    for command in [
        "init",
        "checkin",
        "appreciate",
        "feedback",
        "journal",
        "log",
        "trends",
        "export",
        "status",
        "demo",
    ] {
        assert!(help.contains(command), "help lists {command}:\n{help}");
    }
    assert!(dev.ok(["checkin", "keys"]).contains("feeling"));
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_without_a_profile() {
    let dev = device();
    for (shell, marker) in [
        ("bash", "_hearth()"),
        ("zsh", "#compdef hearth"),
        ("fish", "complete -c hearth"),
    ] {
        let script = dev.ok(["completions", shell]);
        assert!(script.contains(marker), "{shell}:\n{script}");
        for command in ["checkin", "appreciate", "journal", "sync", "device"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let page = dev.ok(["man"]);
    assert!(page.contains(".TH hearth 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "the page has {section}");
    }
    assert!(page.contains("checkin") && page.contains("HEARTH_HOME"));
    let run = dev.run(["completions", "cmd"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("possible values"), "{}", run.stderr);
    // Nothing was created: no profile is needed, none is made.
    assert!(!dev.home().exists());
}

#[test]
fn init_never_overwrites_an_existing_profile() {
    let dev = device();
    init(&dev, "Sam");
    dev.ok(["appreciate", "first"]);
    let before = files_under(&dev.home());
    let run = dev.run(["init", "--name", "Other", "--no-passphrase"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(files_under(&dev.home()), before);
}

/// SIGKILL `hearth` at random moments while it writes, many times over. Every write that
/// reported success must survive whole, and the profile must still open and accept writes.
#[test]
fn sigkill_during_writes_never_loses_committed_entries() {
    let dev = device();
    init(&dev, "Sam");
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill-loop seed {seed}");
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Bring the profile near the compaction threshold (64 chunks), so kills also land
    // while chunks are folded into a snapshot.
    let mut committed = Vec::new();
    for i in 0..50 {
        let text = format!("prefill-{i:02}");
        dev.ok(["appreciate", &text]);
        committed.push((text, false));
    }
    // Calibrate: how long does one whole write take here? Kill points are then spread over
    // that span and a little beyond it, re-estimated from the writes that finish.
    let started = Instant::now();
    dev.ok(["appreciate", "calibration"]);
    // One estimate per kind of write: a private entry skips the document and is quicker.
    let mut typical = [started.elapsed(); 2];
    let mut killed = 0;
    // Enough rounds to cross the compaction threshold (64 chunks) more than once.
    for round in 0..240 {
        let text = format!("entry-{round:03}");
        let private = round % 5 == 4;
        let args: Vec<&str> = if private {
            vec!["journal", "add", &text, "--private"]
        } else {
            vec!["appreciate", &text]
        };
        let kill_at = typical[usize::from(private)].mul_f64((next() % 2500) as f64 / 1000.0);
        let started = Instant::now();
        let mut child = dev.command(&args).spawn().unwrap();
        // Poll (waitpid WNOHANG) until the process exits or its kill moment comes: a random
        // point from before the profile is opened to after the commit.
        let mut exited = None;
        while started.elapsed() < kill_at {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::yield_now();
        }
        match exited {
            Some(status) if status.success() => {
                let t = &mut typical[usize::from(private)];
                *t = (*t * 3 + started.elapsed()) / 4;
                committed.push((text, private));
            }
            Some(status) => panic!("{args:?} failed on its own: {status}"),
            None => {
                child.kill().unwrap();
                let status = child.wait().unwrap();
                if status.success() {
                    committed.push((text, private));
                } else {
                    killed += 1;
                }
            }
        }
    }
    eprintln!("{} writes committed, {killed} killed", committed.len());
    assert!(
        killed > 10,
        "the loop must actually kill writers ({killed} kills)"
    );
    assert!(
        committed.len() > 10,
        "and let some finish ({} finished)",
        committed.len()
    );

    let log = dev.json(["log"]);
    let texts: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["text"].as_str().or(i["body"].as_str()).map(str::to_owned))
        .collect();
    for (text, private) in &committed {
        let n = texts.iter().filter(|t| *t == text).count();
        assert_eq!(
            n, 1,
            "{text} (private: {private}) appears {n} times after the kills"
        );
    }
    // Still writable, and compacted at least once along the way.
    dev.ok(["appreciate", "after the storm"]);
    assert!(dev.ok(["log"]).contains("after the storm"));
    let status = dev.json(["status"]);
    let chunks = status["stored_chunks"].as_u64().unwrap();
    let shared = status["counts"]["appreciations"].as_u64().unwrap();
    assert!(shared > 70, "enough writes to need compaction: {shared}");
    assert!(
        chunks < shared,
        "compaction folded chunks: {chunks} chunks for {shared} writes"
    );
    assert!(
        chunks <= 70,
        "compaction kept the chunk count bounded: {chunks}"
    );
}

#[test]
fn the_demo_pairs_two_partners_over_a_relay_and_cleans_up_after_itself() {
    let dev = device();
    let keep = dev.scratch().join("kept-demo");
    let out = dev.ok(["demo", "--keep", keep.to_str().unwrap()]);
    for seen in [
        "Sam$ hearth init --name Sam --no-passphrase --relay ws://127.0.0.1:",
        "Welcome, Sam",
        "Jordan$ hearth join hearth1.",
        "Joined",
        "Sam: answered",
        "Sam has answered; their answers stay sealed until you have answered too",
        "You have both answered",
        "Jordan: 7 of 10",
        "Sam: 8 of 10",
        "Jordan appreciated: Thank you for fixing my bike without being asked",
        "Partner:   Jordan",
    ] {
        assert!(out.contains(seen), "the demo should show {seen:?}:\n{out}");
    }
    // The kept profiles are real ones, and agree.
    let mut sam = Device::new(BIN);
    sam.env("HEARTH_HOME", keep.join("sam"));
    let mut jordan = Device::new(BIN);
    jordan.env("HEARTH_HOME", keep.join("jordan"));
    assert_eq!(sam.json(["log"]), jordan.json(["log"]));
    // Without --keep, nothing is left behind.
    let before: Vec<_> = demo_dirs();
    dev.ok(["demo"]);
    assert_eq!(demo_dirs(), before, "the throwaway demo folder is removed");
}

fn demo_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("hearth-demo-"))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// A couple's own deck, shared with hearth-doc's tests.
const OUR_DECK: &str = include_str!("../../../crates/hearth-doc/tests/data/our-sunday.toml");

#[test]
fn an_own_deck_is_checked_by_line_then_added_listed_and_answered() {
    let dev = device();
    init(&dev, "Sam");
    let bad = dev.scratch().join("bad.toml");
    std::fs::write(&bad, OUR_DECK.replace("options = [", "#options = [")).unwrap();
    let run = dev.run(["deck", "add", bad.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("bad.toml line 16, column 8: question \"sunday\" has kind \"choice\" but no options; add options = ["),
        "{}",
        run.stderr
    );
    let ids = |dev: &Device| -> Vec<String> {
        dev.json(["deck", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&dev),
        ["weekly-v1", "gentle-v1", "deeper-v1", "daily-v1"],
        "nothing stored"
    );

    let good = dev.scratch().join("our-sunday.toml");
    std::fs::write(&good, OUR_DECK).unwrap();
    let out = dev.ok(["deck", "add", good.to_str().unwrap()]);
    assert!(
        out.contains("reaches your partner on the next sync"),
        "{out}"
    );
    assert!(ids(&dev).contains(&"our-sunday".to_owned()));
    let list = dev.ok(["deck", "list"]);
    assert!(
        list.contains("our-sunday") && list.contains("2 questions"),
        "{list}"
    );
    let show = dev.ok(["deck", "show", "our-sunday"]);
    assert!(
        show.contains("What would make Sunday lovely?") && show.contains("slow, out"),
        "{show}"
    );
    let show = dev.ok(["deck", "show", "deeper"]);
    assert!(show.contains("hesitant to share"), "{show}");

    // A clash with a different deck of the same id needs --replace.
    std::fs::write(&good, OUR_DECK.replace("A slow morning", "A lazy morning")).unwrap();
    let run = dev.run(["deck", "add", good.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("--replace"), "{}", run.stderr);
    dev.ok(["deck", "add", "--replace", good.to_str().unwrap()]);

    let keys = dev.ok(["checkin", "keys", "--deck", "our-sunday"]);
    assert!(keys.contains("sunday"), "{keys}");
    let out = dev.json([
        "checkin",
        "--deck",
        "our-sunday",
        "--answer",
        "feeling=9",
        "--answer",
        "sunday=slow",
    ]);
    assert_eq!(out["deck"], "our-sunday");
    let show = dev.ok(["checkin", "show"]);
    assert!(show.contains("Our Sunday check-in"), "{show}");
    assert!(
        show.contains("What would make Sunday lovely?") && show.contains("A lazy morning"),
        "{show}"
    );
    // An earlier week with the gentle deck; a daily deck is not a check-in.
    dev.ok([
        "checkin",
        "--week",
        "2026-W02",
        "--deck",
        "gentle",
        "--answer",
        "feeling=6",
        "--answer",
        "easier=an early night",
    ]);
    let run = dev.run([
        "checkin",
        "--week",
        "2026-W03",
        "--deck",
        "daily",
        "--answer",
        "feeling=6",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("hearth daily"), "{}", run.stderr);
    let trend = dev.json(["trends"]);
    assert!(
        trend.to_string().contains('9') && trend.to_string().contains('6'),
        "{trend}"
    );
}

#[test]
fn the_daily_question_is_kept_as_a_journal_entry_tagged_daily() {
    let dev = device();
    init(&dev, "Sam");
    dev.ok(["daily", "tired but okay", "--score", "3"]);
    let run = dev.run(["daily", "fine", "--score", "9"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("from 1 to 5"), "{}", run.stderr);
    let entries = dev.json(["journal", "list", "--tag", "daily"]);
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert_eq!(entries[0]["title"], "How are you really doing?");
    assert_eq!(entries[0]["body"], "tired but okay\n\n3 of 5");
}
