//! Snapshots need both people (issue 15): a snapshot replaces the envelopes it covers only
//! once a device of the other person countersigned it, over a real relay on a real SQLite
//! file, with real clients and real crypto.
//!
//! - honest: Sam's long history is proposed as a snapshot, Jordan's next sync countersigns
//!   it, and only then does the relay drop what it covers; a new device joins from it.
//! - the wiping snapshot attack: a hostile member device (Sam's keys, driven by the
//!   modified client of `hostile_partner.rs`) pushes validly signed snapshots of garbage,
//!   of an empty document and of a stale one, covering the head. Jordan's device refuses
//!   to countersign each and says so; the relay keeps every envelope; a new device joins
//!   with the whole history.
//! - a relay that drops the envelopes anyway (relay.db edited: the garbage snapshot stored
//!   as accepted, the envelopes deleted): a joining device refuses the snapshot and says
//!   the history is unavailable, never "Joined" as if it were all there; the devices that
//!   hold the history keep it.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use hearth_client::sync::{self, ProposalFault, SnapshotFault, SyncReport};
use hearth_client::{Profile, Protection, Whose};
use hearth_proto::InviteRole;
use hearth_testkit::TestRelay;
use hearth_testkit::couple::{appreciate, appreciations, invited, new_profile, paired};
use hearth_tests::Device;

use crate::hostile_partner::hostile::Hostile;
use crate::sync::{relay_rows, write_long_entries};

const BIN: &str = env!("CARGO_BIN_EXE_hearth-test-bin");
const T: Duration = Duration::from_secs(20);

async fn sync(profile: &mut Profile) -> SyncReport {
    sync::sync_once(profile, T).await.unwrap()
}

/// How many envelopes the relay holds.
fn envelopes(db: &Path) -> i64 {
    relay_rows(db, "SELECT COUNT(*) FROM envelopes")
}

/// The relay's head (its last seq).
fn head(db: &Path) -> u64 {
    u64::try_from(relay_rows(db, "SELECT head FROM spaces")).unwrap()
}

/// A new device of `inviter`'s person, joined over the real relay, with its join report.
async fn new_device_of(inviter: &mut Profile, home: &Path) -> sync::Joined {
    let code = sync::invite(inviter, InviteRole::OwnDevice, Duration::from_secs(3600), T)
        .await
        .unwrap();
    sync::join(home, &code, None, Protection::None, T)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_snapshot_is_dropped_in_only_after_the_partner_countersigns_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = TestRelay::at(&db);
    let mut sam = new_profile(&dir.path().join("sam"), "Sam");
    sam.sync_book_mut().start_space(&relay.url).unwrap();
    sync(&mut sam).await;
    let mut jordan = invited(&dir.path().join("jordan"), &mut sam, Some("Jordan")).await;
    appreciate(&mut jordan, "JORDAN-before Sam's long week");
    sync(&mut jordan).await;

    // Over 256 KiB: Sam's sync ends by proposing a snapshot of everything up to his cursor.
    write_long_entries(&mut sam, 250, "SAM");
    let report = sync(&mut sam).await;
    assert!(report.countersigned.is_none(), "not his own");
    let covers = relay_rows(&db, "SELECT covers_seq FROM proposals");
    assert_eq!(covers, report.cursor as i64);
    assert_eq!(relay_rows(&db, "SELECT COUNT(*) FROM snapshots"), 0);
    assert_eq!(
        envelopes(&db),
        head(&db) as i64,
        "the relay still holds every envelope"
    );
    // Sam's own devices are not asked: their countersignature could not count.
    let again = sync(&mut sam).await;
    assert!(again.countersigned.is_none() && again.not_countersigned.is_none());
    assert_eq!(envelopes(&db), head(&db) as i64);

    // Jordan's next sync reads the envelopes, judges the proposal and countersigns it.
    let report = sync(&mut jordan).await;
    assert_eq!(report.countersigned, Some(covers as u64));
    assert!(report.not_countersigned.is_none(), "{report:?}");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(relay_rows(&db, "SELECT COUNT(*) FROM proposals"), 0);
    assert_eq!(relay_rows(&db, "SELECT covers_seq FROM snapshots"), covers);
    let countersigner: Vec<u8> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT countersigner FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(countersigner, jordan.device_id().as_bytes());
    assert_eq!(
        relay_rows(
            &db,
            &format!("SELECT COUNT(*) FROM envelopes WHERE seq <= {covers}")
        ),
        0,
        "the countersigned snapshot replaced what it covers"
    );
    assert_eq!(jordan.load().unwrap().journal().len(), 250);

    // A new device of Sam's joins from the snapshot and has everything.
    let tablet = new_device_of(&mut sam, &dir.path().join("tablet")).await;
    assert!(
        tablet.report.refused_snapshot.is_none(),
        "{:?}",
        tablet.report
    );
    assert!(
        tablet.report.rejected.is_empty(),
        "{:?}",
        tablet.report.rejected
    );
    assert!(
        tablet.report.withheld.is_none(),
        "{:?}",
        tablet.report.withheld
    );
    assert_eq!(
        tablet.profile.load().unwrap().timeline(),
        sam.load().unwrap().timeline()
    );
    assert_eq!(tablet.profile.load().unwrap().journal().len(), 250);
    assert_eq!(
        appreciations(&tablet.profile),
        ["JORDAN-before Sam's long week"]
    );
    relay.stop().await.expect("the relay stops");
}

/// Sam and Jordan paired over a relay on `dir/relay.db`, each with a profile the `hearth`
/// program runs on, a few entries from each, all synced.
struct Couple {
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    relay: Option<TestRelay>,
    sam: Device,
    jordan: Device,
}

impl Couple {
    async fn new() -> Couple {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("relay.db");
        let relay = TestRelay::at(&db);
        let (sam, jordan) = (Device::new(BIN), Device::new(BIN));
        paired(&sam.home(), "Sam", &jordan.home(), "Jordan", &relay.url).await;
        for i in 0..3 {
            sam.ok(["appreciate", &format!("SAM-{i}")]);
            sam.ok(["sync"]);
            jordan.ok(["appreciate", &format!("JORDAN-{i}")]);
            jordan.ok(["sync"]);
        }
        sam.ok(["sync"]);
        Couple {
            dir,
            db,
            relay: Some(relay),
            sam,
            jordan,
        }
    }

    fn profile(dev: &Device) -> Profile {
        Profile::open(&dev.home(), None).unwrap()
    }

    /// Everyone's appreciations, as both devices hold them now.
    fn everything(&self) -> Vec<String> {
        let all = appreciations(&Couple::profile(&self.sam));
        assert_eq!(all, appreciations(&Couple::profile(&self.jordan)));
        assert_eq!(all.len(), 6);
        all
    }

    /// Stops the relay, runs `edit` on its database, starts it again on the same file and
    /// points both devices at it.
    async fn edit_relay(&mut self, edit: impl FnOnce(&rusqlite::Connection)) {
        if let Some(relay) = self.relay.take() {
            relay.stop().await.unwrap();
        }
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        edit(&conn);
        drop(conn);
        let relay = TestRelay::at(&self.db);
        for dev in [&self.sam, &self.jordan] {
            Couple::profile(dev)
                .sync_book_mut()
                .set_relay(&relay.url)
                .unwrap();
        }
        self.relay = Some(relay);
    }

    async fn stop(mut self) {
        if let Some(relay) = self.relay.take() {
            relay.stop().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiping_snapshot_from_a_member_is_not_countersigned_and_the_history_stays() {
    let c = Couple::new().await;
    let all = c.everything();
    let held = envelopes(&c.db);
    let hostile = Hostile::of(&c.sam.home());

    // Garbage, sealed and signed by Sam's device under the space's key, covering the head.
    hostile
        .push_snapshot(b"not a document at all, just bytes", head(&c.db))
        .await;
    assert_eq!(relay_rows(&c.db, "SELECT COUNT(*) FROM proposals"), 1);
    assert_eq!(envelopes(&c.db), held, "a proposal drops nothing");
    // Jordan's `hearth sync` refuses to countersign it and says so.
    let run = c.jordan.run(["sync"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sam_device = Couple::profile(&c.sam).device_id().short();
    assert!(
        run.stderr.contains(&format!(
            "warning: your partner's device {sam_device} proposed a snapshot that is not a \
             well-formed document"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("it was not countersigned, and the relay keeps the history as it is"),
        "{}",
        run.stderr
    );
    assert_eq!(relay_rows(&c.db, "SELECT COUNT(*) FROM snapshots"), 0);

    // An empty document, then a real but stale one (Sam's space as it was at its very
    // start): refused too, each saying why.
    let empty = automerge::AutoCommit::new().save();
    let mut stale = hostile.doc(*hostile.device().as_bytes());
    let first = stale.get_changes(&[]).into_iter().next().unwrap().hash();
    let mut stale = stale.fork_at(&[first]).unwrap();
    for (document, want) in [
        (empty, "not a well-formed document"),
        (stale.save(), "leaves out changes this device has"),
    ] {
        hostile.push_snapshot(&document, head(&c.db)).await;
        let report = sync(&mut Couple::profile(&c.jordan)).await;
        let refused = report.not_countersigned.expect("refused");
        assert_eq!(refused.device, hostile.device());
        assert_eq!(refused.covers_seq, head(&c.db));
        assert!(
            refused.fault.to_string().contains(want),
            "{}",
            refused.fault
        );
        assert!(report.countersigned.is_none());
    }
    assert!(matches!(
        sync(&mut Couple::profile(&c.jordan))
            .await
            .not_countersigned
            .map(|n| n.fault),
        Some(ProposalFault::LeavesOut { .. })
    ));

    // The relay keeps every envelope; Sam's own devices were never asked.
    assert_eq!(envelopes(&c.db), held);
    assert_eq!(relay_rows(&c.db, "SELECT COUNT(*) FROM snapshots"), 0);
    let report = sync(&mut Couple::profile(&c.sam)).await;
    assert!(report.not_countersigned.is_none() && report.countersigned.is_none());

    // A new device of Jordan's joins with the whole history.
    let mut jordan = Couple::profile(&c.jordan);
    let phone = new_device_of(&mut jordan, &c.dir.path().join("jordan-phone")).await;
    assert!(
        phone.report.refused_snapshot.is_none(),
        "{:?}",
        phone.report
    );
    assert!(
        phone.report.withheld.is_none(),
        "{:?}",
        phone.report.withheld
    );
    assert_eq!(appreciations(&phone.profile), all);
    assert_eq!(appreciations(&Couple::profile(&c.jordan)), all);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_the_history_for_a_wiping_snapshot_anyway_is_caught_by_a_joining_device()
{
    let mut c = Couple::new().await;
    let all = c.everything();
    let hostile = Hostile::of(&c.sam.home());
    let covers = head(&c.db);
    hostile
        .push_snapshot(b"not a document at all, just bytes", covers)
        .await;
    // The relay takes the proposal as accepted without anyone's countersignature, and
    // drops every envelope it claims to cover.
    c.edit_relay(|conn| {
        conn.execute(
            "INSERT INTO snapshots (space, covers_seq, bytes)
             SELECT space, covers_seq, bytes FROM proposals",
            [],
        )
        .unwrap();
        conn.execute("DELETE FROM proposals", []).unwrap();
        conn.execute(
            "DELETE FROM envelopes WHERE seq <= ?1",
            [i64::try_from(covers).unwrap()],
        )
        .unwrap();
    })
    .await;
    assert_eq!(envelopes(&c.db), 0);
    // Jordan invites a new device of his (the ACL and lockboxes are served as ever).
    let mut jordan = Couple::profile(&c.jordan);
    let code = sync::invite(
        &mut jordan,
        InviteRole::OwnDevice,
        Duration::from_secs(3600),
        T,
    )
    .await
    .unwrap();
    drop(jordan);

    // `hearth join` refuses the snapshot loudly, says the history is unavailable and whose
    // snapshot it refused, and does not claim to have joined the space whole.
    let phone = Device::new(BIN);
    let run = phone.run(["join", &code.to_string(), "--no-passphrase"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sam_device = hostile.device().short();
    assert!(
        run.stderr.contains(&format!(
            "warning: the relay's history up to update {covers} is unavailable: in its place \
             the relay handed over a snapshot by your partner's device {sam_device}, which \
             this device refused (the relay shows no countersignature by the other person for \
             it)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("but without its history up to update {covers}"))
            || run
                .stderr
                .contains(&format!("but without its history up to update {covers}")),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let joined = Couple::profile(&phone);
    assert!(
        appreciations(&joined).is_empty(),
        "it took nothing from the snapshot"
    );

    // Asked again through the library, the same refusal, with the history it lacks.
    let mut joined = joined;
    let report = sync(&mut joined).await;
    let refused = report.refused_snapshot.expect("refused again, loudly");
    assert_eq!(refused.covers_seq, covers);
    assert_eq!(refused.person, Whose::Partners);
    assert_eq!(refused.fault, SnapshotFault::NotCountersigned);
    let missing = refused.unavailable.expect("the history is unavailable");
    assert_eq!(missing.from_seq, 1);

    // The devices that hold the history keep it, and keep syncing.
    for dev in [&c.sam, &c.jordan] {
        let report = sync(&mut Couple::profile(dev)).await;
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(appreciations(&Couple::profile(dev)), all);
    }
    c.stop().await;
}
