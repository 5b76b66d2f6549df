//! A relay restored from an older backup: the devices notice that it went back in time,
//! send it everything they hold again, and converge, with nothing lost and no manual step.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_client::Profile;
use hearth_client::sync::{self, SyncReport};
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile};

const T: Duration = Duration::from_secs(20);

async fn sync(profile: &mut Profile) -> SyncReport {
    sync::sync_once(profile, T).await.unwrap()
}

/// An online backup of the relay's database, as docs/operations.md describes
/// (`VACUUM INTO`, consistent while the relay runs).
fn backup(db: &Path, to: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Puts `backup` in place of `db`, as an operator restoring it would.
fn restore(backup: &Path, db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let side = db.with_file_name(format!(
            "{}{suffix}",
            db.file_name().unwrap().to_str().unwrap()
        ));
        let _ = std::fs::remove_file(side);
    }
    std::fs::copy(backup, db).unwrap();
}

fn envelopes(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM envelopes", [], |r| r.get(0))
        .unwrap()
}

fn snapshots(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
        .unwrap()
}

/// A relay on `dir/relay.db`; Sam starts a space on it and Jordan joins as a partner.
async fn couple(dir: &Path) -> (TestRelay, Profile, Profile) {
    let relay = TestRelay::at(&dir.join("relay.db"));
    let mut sam = new_profile(&dir.join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    let jordan = invited(&dir.join("jordan"), &mut sam, Some("Jordan")).await;
    (relay, sam, jordan)
}

/// Stops `relay`, restores `saved` over `db`, starts it again and points `devices` at it.
async fn restart_from(
    relay: TestRelay,
    saved: &Path,
    db: &Path,
    devices: &mut [&mut Profile],
) -> TestRelay {
    relay.stop().await.expect("the relay stops");
    restore(saved, db);
    let relay = TestRelay::at(db);
    for device in devices {
        device.sync_book_mut().set_relay(&relay.url).unwrap();
    }
    relay
}

/// Sam and Jordan paired on a relay in a temporary folder, both synced, then an online
/// backup of the relay.
struct Backed {
    dir: tempfile::TempDir,
    db: PathBuf,
    saved: PathBuf,
    relay: TestRelay,
    sam: Profile,
    jordan: Profile,
}

async fn backed_up() -> Backed {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let saved = dir.path().join("backup.db");
    let (relay, mut sam, mut jordan) = couple(dir.path()).await;
    sync(&mut sam).await;
    sync(&mut jordan).await;
    backup(&db, &saved);
    Backed {
        dir,
        db,
        saved,
        relay,
        sam,
        jordan,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_from_an_older_backup_the_devices_resend_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let saved = dir.path().join("backup.db");
    let (relay, mut sam, mut jordan) = couple(dir.path()).await;
    appreciate(&mut sam, "before the backup");
    sync(&mut sam).await;
    sync(&mut jordan).await;

    backup(&db, &saved);

    // Written, committed and delivered after the backup: the restore loses these on the
    // relay. Sam's second entry never reached Jordan before the restore.
    appreciate(&mut jordan, "after the backup, from Jordan");
    sync(&mut jordan).await;
    appreciate(&mut sam, "after the backup, from Sam");
    let report = sync(&mut sam).await;
    assert_eq!(report.received, 1);
    appreciate(&mut sam, "after the backup, Sam again");
    sync(&mut sam).await;
    let before_restore = appreciations(&sam);
    assert_eq!(before_restore.len(), 4);

    let relay = restart_from(relay, &saved, &db, &mut [&mut sam, &mut jordan]).await;

    // Each device finds the relay behind its cursor, says so, and sends everything again.
    let report = sync(&mut jordan).await;
    let (head, cursor) = report.relay_behind.expect("Jordan notices the restore");
    assert!(head < cursor, "relay head {head}, Jordan's cursor {cursor}");
    let report = sync(&mut sam).await;
    assert!(report.relay_behind.is_some(), "Sam notices the restore");
    // A second round needs no repair and brings the last of it across.
    let report = sync(&mut jordan).await;
    assert_eq!(report.relay_behind, None);
    let report = sync(&mut sam).await;
    assert_eq!(report.relay_behind, None);

    assert_eq!(appreciations(&sam), before_restore, "Sam lost nothing");
    assert_eq!(
        appreciations(&jordan),
        before_restore,
        "Jordan has everything, including what never reached him before the restore"
    );
    assert_eq!(
        sam.load().unwrap().heads(),
        jordan.load().unwrap().heads(),
        "one history on both devices"
    );

    // A device joining now gets the whole history from the restored relay alone.
    let mut phone = invited(&dir.path().join("phone"), &mut sam, None).await;
    sync(&mut phone).await;
    assert_eq!(appreciations(&phone), before_restore);
    // What the devices sent back ends in a snapshot proposal (each change in it judged by
    // its own device), which replaces the envelopes it covers once the other person's
    // device countersigns it.
    assert!(envelopes(&db) + snapshots(&db) > 0);
    relay.stop().await.expect("the relay stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_lost_everything_but_the_space_is_refilled_by_one_sync_of_each_person() {
    // The backup is taken right after pairing: the relay's head is then at most a few
    // envelopes, far behind both cursors after a day of writing.
    let Backed {
        dir,
        db,
        saved,
        relay,
        mut sam,
        mut jordan,
    } = backed_up().await;
    for i in 0..20 {
        appreciate(&mut sam, &format!("Sam {i}"));
        appreciate(&mut jordan, &format!("Jordan {i}"));
        sync(&mut sam).await;
        sync(&mut jordan).await;
    }
    sync(&mut sam).await;
    let all = appreciations(&sam);
    assert_eq!(all.len(), 40);
    assert_eq!(appreciations(&jordan), all);

    let relay = restart_from(relay, &saved, &db, &mut [&mut sam, &mut jordan]).await;

    // Sam syncs first and sends back everything he holds, Jordan's writing too, and the
    // whole document as a snapshot. That snapshot is only proposed: the relay keeps every
    // envelope, since nobody of Jordan's has countersigned it.
    assert!(sync(&mut sam).await.relay_behind.is_some());
    assert_eq!(snapshots(&db), 0, "nothing replaced on Sam's word alone");
    // Jordan's device comes back and sends back what it holds: its own writing, which only
    // its own signature vouches for to Sam's other devices.
    assert!(sync(&mut jordan).await.relay_behind.is_some());
    // A new device of Sam's then gets everything from the envelopes.
    let mut sam_phone = invited(&dir.path().join("sam-phone"), &mut sam, None).await;
    let report = sync(&mut sam_phone).await;
    assert!(report.refused_snapshot.is_none(), "{report:?}");
    assert_eq!(appreciations(&sam_phone), all);
    assert_eq!(report.waiting, 0);
    relay.stop().await.expect("the relay stops");
}

/// Found by `hearth-bench soak` (relay restarted from a copy of its files, 1,000 pairs):
/// devices that reconnected first refilled the restored relay past the cursors of the
/// devices that came later, so those saw a head ahead of their cursor and took the relay's
/// word for it. They never sent what the relay had lost, and skipped what now sat at the
/// sequence numbers they had already passed: the pair never converged. A device now checks
/// that the relay still holds the last envelope it saw (or committed) in the same place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_returns_after_the_restored_relay_moved_past_its_cursor_still_converges() {
    let Backed {
        dir: _dir,
        db,
        saved,
        relay,
        mut sam,
        mut jordan,
    } = backed_up().await;

    // After the backup: Sam writes, Jordan receives it and writes back. Both are committed
    // on the relay, and both are lost with the restore.
    appreciate(&mut sam, "after the backup, from Sam");
    sync(&mut sam).await;
    appreciate(&mut jordan, "after the backup, from Jordan");
    let report = sync(&mut jordan).await;
    assert_eq!(report.received, 1);
    let jordan_cursor = jordan.sync_book().cursor().unwrap();
    assert!(!jordan.sync_book().landmarks().unwrap().is_empty());

    let relay = restart_from(relay, &saved, &db, &mut [&mut sam, &mut jordan]).await;

    // Sam comes back first, notices, refills the relay and keeps writing: its head passes
    // Jordan's cursor before Jordan syncs again.
    assert!(sync(&mut sam).await.relay_behind.is_some());
    for i in 0..4 {
        appreciate(&mut sam, &format!("Sam, after the restore, {i}"));
        sync(&mut sam).await;
    }
    assert!(
        envelopes(&db) as u64 >= jordan_cursor,
        "the relay's head has passed Jordan's cursor"
    );

    // Jordan notices all the same: another envelope sits where his last one was.
    let report = sync(&mut jordan).await;
    assert!(report.relay_behind.is_some(), "Jordan notices the restore");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    sync(&mut sam).await;
    let all = appreciations(&sam);
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(all.contains(&"after the backup, from Jordan".to_owned()));
    assert_eq!(appreciations(&jordan), all);
    assert_eq!(sam.load().unwrap().heads(), jordan.load().unwrap().heads());
    // And it settles: the next round finds nothing amiss.
    assert_eq!(sync(&mut jordan).await.relay_behind, None);
    assert_eq!(sync(&mut sam).await.relay_behind, None);
    relay.stop().await.expect("the relay stops");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Found by `hearth-bench soak` too: after a restore, a partner whose `Committed` the
/// restore lost pushes that envelope again, and it can land at the very seq where the
/// other device had received it. Checking only the envelope at the cursor was then
/// fooled, and the other device's own envelope, lost by the restore, was never resent. Its
/// own last committed envelope is checked as well: nobody else can ever put it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_envelope_pushed_again_into_the_same_place_does_not_hide_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let saved = dir.path().join("backup.db");
    let (relay, mut sam, mut jordan) = couple(dir.path()).await;
    let mut phone = invited(&dir.path().join("phone"), &mut sam, None).await;
    for p in [&mut sam, &mut jordan, &mut phone] {
        sync(p).await;
    }
    backup(&db, &saved);

    // Jordan's entry, then Sam's, both committed after the backup.
    appreciate(&mut jordan, "Jordan, lost by the restore");
    sync(&mut jordan).await;
    appreciate(&mut sam, "Sam, pushed twice");
    let epoch = sam.sync_book().acl_state().unwrap().unwrap().epoch();
    sam.sync_book_mut().stage_outgoing(epoch).unwrap();
    // Sam's device as it was before it heard `Committed` (a crash right after the push).
    let sam_home = dir.path().join("sam");
    drop(sam);
    copy_dir(&sam_home, &dir.path().join("sam-before-ack"));
    let mut sam = Profile::open(&sam_home, None).unwrap();
    sync(&mut sam).await;
    let report = sync(&mut jordan).await;
    assert_eq!(report.received, 1);
    let jordan_cursor = jordan.sync_book().cursor().unwrap();

    let relay = restart_from(relay, &saved, &db, &mut [&mut jordan, &mut phone]).await;
    drop(sam);
    std::fs::remove_dir_all(&sam_home).unwrap();
    copy_dir(&dir.path().join("sam-before-ack"), &sam_home);
    let mut sam = Profile::open(&sam_home, None).unwrap();
    sam.sync_book_mut().set_relay(&relay.url).unwrap();

    // The phone writes first, then Sam's device pushes its envelope again: it lands where
    // Jordan had it.
    appreciate(&mut phone, "the phone, after the restore");
    sync(&mut phone).await;
    sync(&mut sam).await;
    assert_eq!(envelopes(&db) as u64, jordan_cursor);

    let report = sync(&mut jordan).await;
    assert!(report.relay_behind.is_some(), "Jordan notices the restore");
    for p in [&mut sam, &mut phone, &mut jordan] {
        sync(p).await;
    }
    sync(&mut sam).await;
    let all = appreciations(&sam);
    assert!(
        all.contains(&"Jordan, lost by the restore".to_owned()),
        "{all:?}"
    );
    assert!(all.contains(&"Sam, pushed twice".to_owned()));
    assert!(all.contains(&"the phone, after the restore".to_owned()));
    assert_eq!(appreciations(&jordan), all);
    assert_eq!(appreciations(&phone), all);
    relay.stop().await.expect("the relay stops");
}
