//! A couple's devices over a real relay on 127.0.0.1:0 with a real SQLite file: removing a
//! device rotates the space's key, the removed device can neither sync nor read what is
//! written afterwards, and everyone else keeps syncing on the new epoch.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use hearth_client::Protection;
use hearth_client::sync::{self, JoinError, SyncError};
use hearth_proto::{Envelope, InviteRole};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};

const T: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Every envelope the relay stores for the space, with its epoch.
fn stored_envelopes(db: &Path) -> Vec<Envelope> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT bytes FROM envelopes ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| Envelope::decode(&b.unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_can_neither_sync_nor_read_what_comes_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = TestRelay::at(&db);

    let mut laptop = new_profile(&dir.path().join("laptop"), "Sam");
    laptop.sync_book_mut().start_space(&relay.url).unwrap();
    appreciate(&mut laptop, "from the laptop, before");
    sync::sync_once(&mut laptop, T).await.unwrap();
    let mut jordan = invited(&dir.path().join("jordan"), &mut laptop, Some("jordan")).await;
    let mut phone = invited(&dir.path().join("phone"), &mut laptop, None).await;
    appreciate(&mut phone, "from the phone, before");
    sync::sync_once(&mut phone, T).await.unwrap();
    sync::sync_once(&mut laptop, T).await.unwrap();

    // The laptop sees three devices: itself, Sam's phone, Jordan's.
    let devices = laptop.sync_book().devices().unwrap();
    assert_eq!(devices.len(), 3);
    let find = |id| devices.iter().find(|d| d.id == id).unwrap();
    assert!(find(laptop.device_id()).this_device);
    assert!(find(phone.device_id()).mine && !find(phone.device_id()).this_device);
    assert!(!find(jordan.device_id()).mine);
    // Jordan sees the same devices from the other side.
    sync::sync_once(&mut jordan, T).await.unwrap();
    let theirs = jordan.sync_book().devices().unwrap();
    assert!(theirs.iter().any(|d| d.id == laptop.device_id() && !d.mine));
    assert!(
        theirs
            .iter()
            .any(|d| d.id == jordan.device_id() && d.this_device)
    );

    // An invite minted before the removal dies with the rotation (its key box holds only
    // the old key).
    let stale_code = sync::invite(&mut laptop, InviteRole::OwnDevice, DAY, T)
        .await
        .unwrap();

    // Sam's phone is lost: the laptop removes it.
    sync::remove_device(&mut laptop, phone.device_id(), T)
        .await
        .unwrap();
    let state = laptop.sync_book().acl_state().unwrap().unwrap();
    assert_eq!(state.epoch(), 1, "the removal rotated the key");
    assert!(!state.is_member(&phone.device_id()));
    assert_eq!(laptop.sync_book().devices().unwrap().len(), 2);

    appreciate(&mut laptop, "MARKER-AFTER-REMOVAL from the laptop");
    sync::sync_once(&mut laptop, T).await.unwrap();
    // Jordan was offline throughout; the new key reaches them through their lockbox.
    appreciate(
        &mut jordan,
        "MARKER-AFTER-REMOVAL from jordan, written offline",
    );
    let report = sync::sync_once(&mut jordan, T).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(jordan.sync_book().acl_state().unwrap().unwrap().epoch(), 1);
    sync::sync_once(&mut laptop, T).await.unwrap();
    let everything = vec![
        "MARKER-AFTER-REMOVAL from jordan, written offline".to_owned(),
        "MARKER-AFTER-REMOVAL from the laptop".to_owned(),
        "from the laptop, before".to_owned(),
        "from the phone, before".to_owned(),
    ];
    assert_eq!(appreciations(&laptop), everything);
    assert_eq!(appreciations(&jordan), everything);

    // The phone cannot sync any more, and is told why; what it had stays readable.
    appreciate(&mut phone, "written on the phone after its removal");
    let err = sync::sync_once(&mut phone, T).await.unwrap_err();
    assert!(matches!(err, SyncError::NotAdmitted), "{err}");
    assert!(err.to_string().contains("removed"), "{err}");
    let phone_sees = appreciations(&phone);
    assert!(phone_sees.contains(&"from the laptop, before".to_owned()));
    assert!(
        !phone_sees
            .iter()
            .any(|t| t.contains("MARKER-AFTER-REMOVAL"))
    );

    // Nor could it read the new entries if it got hold of the relay's database: every
    // envelope written since is under epoch 1, and no key the phone holds opens it.
    let space = laptop.space().unwrap();
    assert!(phone.sync_book().epoch_key(1).unwrap().is_none());
    let phone_key = phone.sync_book().epoch_key(0).unwrap().unwrap();
    let envelopes = stored_envelopes(&db);
    let newer: Vec<&Envelope> = envelopes.iter().filter(|e| e.header().epoch == 1).collect();
    assert!(newer.len() >= 2, "both partners wrote under epoch 1");
    for envelope in &envelopes {
        let opened = hearth_crypto::envelope::open(envelope, &space, 0, &phone_key);
        assert_eq!(
            opened.is_ok(),
            envelope.header().epoch == 0,
            "the phone's key opens exactly the envelopes from before its removal"
        );
    }

    // The stale invite is refused with what to do; a fresh one works, and the new device
    // gets the whole history, old epoch and new, including the removed phone's entries.
    let refused = sync::join(
        &dir.path().join("tablet-stale"),
        &stale_code,
        None,
        Protection::None,
        T,
    )
    .await;
    assert!(matches!(refused, Err(JoinError::Revoked)), "{refused:?}");
    let tablet = invited(&dir.path().join("tablet"), &mut laptop, None).await;
    assert_eq!(appreciations(&tablet), everything);
    assert_eq!(
        tablet.load().unwrap().timeline(),
        laptop.load().unwrap().timeline()
    );

    relay.stop().await.expect("the relay stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_leaves_is_rotated_out_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::at(&dir.path().join("relay.db"));
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync::sync_once(&mut sam, T).await.unwrap();
    let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("jordan")).await;
    let mut old_phone = invited(&dir.path().join("old"), &mut jordan, None).await;

    // Jordan's old phone leaves by itself: it cannot rotate (it is no longer a member), so
    // the next member to sync does.
    let itself = old_phone.device_id();
    let left = sync::remove_device(&mut old_phone, itself, T)
        .await
        .unwrap();
    assert_eq!(left.pushed, 0);
    assert!(matches!(
        sync::sync_once(&mut old_phone, T).await,
        Err(SyncError::NotAdmitted)
    ));
    appreciate(&mut sam, "after the old phone left");
    sync::sync_once(&mut sam, T).await.unwrap();
    assert_eq!(
        sam.sync_book().acl_state().unwrap().unwrap().epoch(),
        1,
        "Sam rotated"
    );
    let report = sync::sync_once(&mut jordan, T).await.unwrap();
    assert_eq!(report.received, 1);
    assert_eq!(appreciations(&jordan), vec!["after the old phone left"]);
    relay.stop().await.expect("the relay stops");
}
