//! What the relay can tell from envelope sizes, over a real relay: every small write is
//! padded to the same size, so a check-in's automatic key release looks like any one-line
//! appreciation on the wire; and a release the sync makes rides in the same envelope as the
//! writing the device had not pushed yet.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use hearth_client::{Profile, sync};
use hearth_doc::{Millis, Seal, Week, weekly_deck};
use hearth_proto::Envelope;
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, invited, new_profile};

const T: Duration = Duration::from_secs(20);

/// Every envelope the relay stores, in its order.
fn stored_envelopes(db: &Path) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT bytes FROM envelopes ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The stored envelopes `profile`'s device wrote, as the relay holds them.
fn written_by(db: &Path, profile: &Profile) -> Vec<Vec<u8>> {
    stored_envelopes(db)
        .into_iter()
        .filter(|b| Envelope::decode(b).unwrap().header().author == profile.device_id())
        .collect()
}

/// The plaintext of an envelope of this space (epoch 0), padding taken off.
fn opened(profile: &Profile, bytes: &[u8]) -> Vec<u8> {
    let key = profile.sync_book().epoch_key(0).unwrap().unwrap();
    let envelope = Envelope::decode(bytes).unwrap();
    let plain =
        hearth_crypto::envelope::open(&envelope, &profile.space().unwrap(), 0, &key).unwrap();
    plain.to_vec()
}

fn submit(profile: &mut Profile, week: Week, feeling: &str) {
    let me = profile.person_id().clone();
    let answers = weekly_deck().parse_answers([("feeling", feeling)]).unwrap();
    profile
        .write(|doc| doc.submit_checkin(week, &me, answers, Millis::now()))
        .unwrap();
}

/// How `of`'s answers for `week` read on `on`.
fn seal_of(on: &Profile, of: &Profile, week: Week) -> Seal {
    on.load().unwrap().checkin(week).unwrap().submissions[of.person_id()].seal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_release_rides_with_the_writing_and_alone_it_is_the_size_of_any_small_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = TestRelay::at(&db);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
    let week: Week = "2026-W40".parse().unwrap();

    // Sam answers first; Jordan answers and writes an appreciation offline, before it has
    // Sam's answers, so it has nothing to release yet.
    submit(&mut sam, week, "7");
    sync::sync_once(&mut sam, T).await.unwrap();
    submit(&mut jordan, week, "5");
    appreciate(&mut jordan, "thank you for the soup");
    assert!(jordan.sync_book().outbox().unwrap().is_empty());

    // Its sync brings Sam's answers, so it releases its key: the release, its answers and
    // the appreciation go out in one envelope.
    let before = written_by(&db, &jordan).len();
    let report = sync::sync_once(&mut jordan, T).await.unwrap();
    assert_eq!(report.pushed, 1, "{report:?}");
    assert_eq!(written_by(&db, &jordan).len(), before + 1);
    sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(
        seal_of(&sam, &jordan, week),
        Seal::Open,
        "Jordan's key came in that one envelope"
    );

    // Sam's sync brought Jordan's answers and key, so Sam released its own key: with
    // nothing else to send, alone. Then Sam writes one line.
    let release = written_by(&db, &sam).pop().unwrap();
    sync::sync_once(&mut jordan, T).await.unwrap();
    assert_eq!(seal_of(&jordan, &sam, week), Seal::Open);
    appreciate(&mut sam, "you made Sunday slow");
    let report = sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(report.pushed, 1);
    let line = written_by(&db, &sam).pop().unwrap();
    assert_ne!(release, line);

    // Inside they differ in size; on the wire they are the same size.
    let (inner_release, inner_line) = (opened(&sam, &release), opened(&sam, &line));
    assert_ne!(inner_release.len(), inner_line.len());
    assert!(inner_release.len() < 1000 && inner_line.len() < 1000);
    assert_eq!(release.len(), line.len());
    assert_eq!(
        Some(release.len()),
        hearth_crypto::envelope::sealed_len(hearth_proto::EnvelopeKind::Changes, 0),
        "the size of every small write"
    );
    relay.stop().await.unwrap();
}
