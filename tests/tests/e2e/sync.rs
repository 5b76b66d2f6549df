//! Two partners over a real relay on 127.0.0.1:0 with a real SQLite file: pairing by
//! invite, offline changes on both sides, and what the relay keeps on disk.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use hearth_client::Protection;
use hearth_client::sync::{self, JoinError};
use hearth_proto::InviteRole;
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};
use hearth_tests::files_containing;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_pair_by_invite_and_converge_and_the_relay_sees_only_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::at(&dir.path().join("relay.db"));

    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    appreciate(&mut sam, "MARKER-SAM-BEFORE-PAIRING");
    let first = sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(first.pushed, 1);

    let code = sync::invite(&mut sam, InviteRole::Partner, Duration::from_secs(3600), T)
        .await
        .unwrap();
    // Sam goes offline; Jordan joins anyway.
    let joined = sync::join(
        &dir.path().join("jordan"),
        &code,
        Some("Jordan"),
        Protection::None,
        T,
    )
    .await
    .unwrap();
    assert!(joined.as_partner);
    let mut jordan = joined.profile;
    assert_eq!(appreciations(&jordan), vec!["MARKER-SAM-BEFORE-PAIRING"]);

    // Both write while apart, then sync.
    appreciate(&mut sam, "MARKER-SAM-OFFLINE");
    appreciate(&mut jordan, "MARKER-JORDAN-OFFLINE");
    sync::sync_once(&mut jordan, T).await.unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    sync::sync_once(&mut jordan, T).await.unwrap();
    let expected = vec![
        "MARKER-JORDAN-OFFLINE".to_owned(),
        "MARKER-SAM-BEFORE-PAIRING".to_owned(),
        "MARKER-SAM-OFFLINE".to_owned(),
    ];
    assert_eq!(appreciations(&sam), expected);
    assert_eq!(appreciations(&jordan), expected);
    let names: Vec<String> = sam
        .load()
        .unwrap()
        .people()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Jordan".to_owned()) && names.contains(&"Sam".to_owned()));
    // Same timeline, ids and all, on both sides.
    assert_eq!(
        sam.load().unwrap().timeline(),
        jordan.load().unwrap().timeline()
    );

    // The invite was one-time.
    let again = sync::join(
        &dir.path().join("eve"),
        &code,
        Some("Eve"),
        Protection::None,
        T,
    )
    .await;
    assert!(matches!(again, Err(JoinError::Used)), "{again:?}");
    assert!(!dir.path().join("eve").join("profile.db").exists());

    relay.stop().await.expect("the relay stops");
    for marker in [
        "MARKER-SAM-BEFORE-PAIRING",
        "MARKER-SAM-OFFLINE",
        "MARKER-JORDAN-OFFLINE",
        "Jordan",
    ] {
        let found: Vec<_> = files_containing(dir.path(), marker.as_bytes())
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("relay.db"))
            })
            .collect();
        assert!(found.is_empty(), "{marker} in plaintext in {found:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_keeps_changes_local_for_later() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind, note it, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut()
        .start_space(&format!("ws://{addr}/v1/sync"))
        .unwrap();
    appreciate(&mut sam, "kept");
    let err = sync::sync_once(&mut sam, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, sync::SyncError::Unreachable { .. }), "{err}");
    // Sealed only once the relay says which key epoch is current; until then it waits
    // in the document, counted as pending.
    let mut doc = sam.load().unwrap();
    assert_eq!(
        sam.sync_book().pending(&mut doc).unwrap(),
        1,
        "waiting to be sent"
    );
    assert_eq!(appreciations(&sam), vec!["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_of_the_same_person_receives_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::at(&dir.path().join("relay.db"));
    let mut phone = new_profile(&dir.path().join("phone"), "Sam");
    phone.sync_book_mut().start_space(&relay.url).unwrap();
    for i in 0..20 {
        appreciate(&mut phone, &format!("old entry {i:02}"));
    }
    sync::sync_once(&mut phone, T).await.unwrap();

    let code = sync::invite(
        &mut phone,
        InviteRole::OwnDevice,
        Duration::from_secs(600),
        T,
    )
    .await
    .unwrap();
    // No name needed: it is Sam again.
    let joined = sync::join(&dir.path().join("laptop"), &code, None, Protection::None, T)
        .await
        .unwrap();
    assert!(!joined.as_partner);
    let mut laptop = joined.profile;
    assert_eq!(laptop.person_id(), phone.person_id(), "the same person");
    assert_ne!(laptop.device_id(), phone.device_id(), "a device of its own");
    assert_eq!(appreciations(&laptop), appreciations(&phone));
    assert_eq!(appreciations(&laptop).len(), 20);

    appreciate(&mut laptop, "from the laptop");
    sync::sync_once(&mut laptop, T).await.unwrap();
    sync::sync_once(&mut phone, T).await.unwrap();
    let doc = phone.load().unwrap();
    let entry = doc
        .appreciations()
        .into_iter()
        .find(|a| a.text == "from the laptop")
        .unwrap();
    assert_eq!(
        &entry.author,
        phone.person_id(),
        "written by Sam, from another device"
    );
    assert_eq!(doc.people().len(), 1, "still one person in the space");
    relay.stop().await.expect("the relay stops");
}

/// Journal entries of ~2,000 characters that do not compress, enough to pass the
/// snapshot threshold.
pub(crate) fn write_long_entries(profile: &mut hearth_client::Profile, n: usize, tag: &str) {
    let me = profile.person_id().clone();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        let noise: String = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let draft = hearth_doc::JournalDraft {
            body: format!("{tag} {i:03} a quiet evening together {noise}"),
            ..Default::default()
        };
        profile
            .write(|doc| {
                doc.add_journal(&me, &draft, hearth_doc::Millis::now())
                    .map(drop)
            })
            .unwrap();
    }
}

/// One number the relay's database answers `sql` with.
pub(crate) fn relay_rows(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_stands_in_for_a_long_history_and_everyone_still_converges() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = TestRelay::at(&db);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;

    // Sam writes a long history while Jordan is away: over 256 KiB, so Sam's sync ends by
    // proposing a snapshot. The relay keeps it beside the envelopes it covers until a
    // device of Jordan's countersigns it.
    write_long_entries(&mut sam, 250, "SAM");
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert!(report.pushed > 0);
    assert_eq!(relay_rows(&db, "SELECT COUNT(*) FROM proposals"), 1);
    assert_eq!(relay_rows(&db, "SELECT COUNT(*) FROM snapshots"), 0);
    let covers = relay_rows(&db, "SELECT covers_seq FROM proposals");
    assert!(covers >= report.cursor as i64);
    assert_eq!(
        relay_rows(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE seq <= {covers}")
        ),
        covers,
        "nothing is dropped on Sam's word alone"
    );
    assert!(
        files_containing(dir.path(), b"a quiet evening together")
            .iter()
            .all(|p| !p.starts_with(&db) && !p.to_string_lossy().contains("relay.db")),
        "the snapshot is ciphertext too"
    );

    // Jordan's cursor is behind the snapshot: he reads the envelopes, finds everything he
    // knew in the proposal, and countersigns it; only then does the relay drop what it
    // covers.
    appreciate(&mut jordan, "written by Jordan meanwhile");
    let got = sync::sync_once(&mut jordan, T).await.unwrap();
    assert!(got.rejected.is_empty(), "{:?}", got.rejected);
    assert_eq!(got.countersigned, Some(covers as u64));
    assert!(
        got.not_countersigned.is_none(),
        "{:?}",
        got.not_countersigned
    );
    assert_eq!(relay_rows(&db, "SELECT COUNT(*) FROM snapshots"), 1);
    assert_eq!(
        relay_rows(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE seq <= {covers}")
        ),
        0,
        "the countersigned snapshot replaced what it covers"
    );
    sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(jordan.load().unwrap().journal().len(), 250);
    assert_eq!(
        sam.load().unwrap().timeline(),
        jordan.load().unwrap().timeline()
    );

    // A new device of Sam's loads the snapshot and then what came after it.
    let code = sync::invite(
        &mut sam,
        InviteRole::OwnDevice,
        Duration::from_secs(3600),
        T,
    )
    .await
    .unwrap();
    let tablet = sync::join(&dir.path().join("tablet"), &code, None, Protection::None, T)
        .await
        .unwrap();
    assert!(
        tablet.report.rejected.is_empty(),
        "{:?}",
        tablet.report.rejected
    );
    assert!(
        tablet.report.refused_snapshot.is_none(),
        "{:?}",
        tablet.report.refused_snapshot
    );
    assert_eq!(
        tablet.profile.load().unwrap().timeline(),
        sam.load().unwrap().timeline()
    );
    assert_eq!(
        appreciations(&tablet.profile),
        vec!["written by Jordan meanwhile"]
    );
    relay.stop().await.expect("the relay stops");
}
