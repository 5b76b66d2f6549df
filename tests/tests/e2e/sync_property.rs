//! A property over random interleavings: Sam and Jordan (and, in some runs, a second device
//! of Sam's) write appreciations and sync in any order over one real relay on a real
//! SQLite file; once everyone has synced until the relay has nothing new for anyone, every
//! device holds the same log, with every text written exactly once.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hearth_client::sync::{self, SyncReport};
use hearth_client::{Profile, Protection};
use hearth_doc::Appreciation;
use hearth_proto::InviteRole;
use hearth_relay::LocalRelay;
use hearth_testkit::couple::{appreciate, new_profile};
use proptest::prelude::*;

const T: Duration = Duration::from_secs(20);
/// Rounds of "everyone syncs" allowed before the log must have settled.
const SETTLE_ROUNDS: usize = 6;

#[derive(Debug, Clone, Copy)]
enum Op {
    SamWrites,
    JordanWrites,
    SamSyncs,
    JordanSyncs,
    /// Sam's laptop joins (Sam invites it); once it has, this op is a laptop sync.
    LaptopJoinsOrSyncs,
    /// The laptop writes (nothing if it has not joined yet).
    LaptopWrites,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::SamWrites),
        3 => Just(Op::JordanWrites),
        3 => Just(Op::SamSyncs),
        3 => Just(Op::JordanSyncs),
        1 => Just(Op::LaptopJoinsOrSyncs),
        1 => Just(Op::LaptopWrites),
    ]
}

/// Every appreciation, keyed by entry id (id, author, text and time all compared).
fn log(profile: &Profile) -> BTreeMap<String, Appreciation> {
    profile
        .load()
        .unwrap()
        .appreciations()
        .into_iter()
        .map(|a| (a.id.to_string(), a))
        .collect()
}

fn honest(report: &SyncReport, who: &str) {
    assert!(
        report.rejected.is_empty(),
        "an honest relay made {who} refuse envelopes: {:?}",
        report.rejected
    );
}

struct World {
    sam: Profile,
    jordan: Profile,
    laptop: Option<Profile>,
    written: Vec<String>,
    next: usize,
}

impl World {
    fn text(&mut self, who: &str) -> String {
        self.next += 1;
        let text = format!("{who} thanks you, #{:03}", self.next);
        self.written.push(text.clone());
        text
    }
}

async fn run(dir: &Path, relay: &str, sam_before: usize, ops: &[Op]) {
    let mut sam = new_profile(&dir.join("sam"), "Sam");
    sam.sync_book_mut().start_space(relay).unwrap();
    let mut world_written = Vec::new();
    for i in 0..sam_before {
        let text = format!("Sam, before pairing, #{i}");
        appreciate(&mut sam, &text);
        world_written.push(text);
    }
    let code = sync::invite(&mut sam, InviteRole::Partner, Duration::from_secs(3600), T)
        .await
        .unwrap();
    let joined = sync::join(
        &dir.join("jordan"),
        &code,
        Some("Jordan"),
        Protection::None,
        T,
    )
    .await
    .unwrap();
    honest(&joined.report, "Jordan");
    let mut w = World {
        sam,
        jordan: joined.profile,
        laptop: None,
        written: world_written,
        next: 0,
    };

    for op in ops {
        match op {
            Op::SamWrites => {
                let text = w.text("Sam");
                appreciate(&mut w.sam, &text);
            }
            Op::JordanWrites => {
                let text = w.text("Jordan");
                appreciate(&mut w.jordan, &text);
            }
            Op::SamSyncs => honest(&sync::sync_once(&mut w.sam, T).await.unwrap(), "Sam"),
            Op::JordanSyncs => honest(&sync::sync_once(&mut w.jordan, T).await.unwrap(), "Jordan"),
            Op::LaptopJoinsOrSyncs => match w.laptop.as_mut() {
                Some(laptop) => honest(&sync::sync_once(laptop, T).await.unwrap(), "the laptop"),
                None => {
                    let code = sync::invite(
                        &mut w.sam,
                        InviteRole::OwnDevice,
                        Duration::from_secs(600),
                        T,
                    )
                    .await
                    .unwrap();
                    let joined = sync::join(&dir.join("laptop"), &code, None, Protection::None, T)
                        .await
                        .unwrap();
                    honest(&joined.report, "the laptop");
                    assert_eq!(joined.profile.person_id(), w.sam.person_id());
                    w.laptop = Some(joined.profile);
                }
            },
            Op::LaptopWrites => {
                if w.laptop.is_some() {
                    let text = w.text("Sam's laptop");
                    appreciate(w.laptop.as_mut().unwrap(), &text);
                }
            }
        }
    }

    // Everyone syncs until a whole round moves nothing.
    let mut quiet = false;
    for _ in 0..SETTLE_ROUNDS {
        let mut moved = 0;
        let mut devices: Vec<(&str, &mut Profile)> =
            vec![("Sam", &mut w.sam), ("Jordan", &mut w.jordan)];
        if let Some(laptop) = w.laptop.as_mut() {
            devices.push(("the laptop", laptop));
        }
        for (who, device) in devices {
            let report = sync::sync_once(device, T).await.unwrap();
            honest(&report, who);
            moved += report.pushed + report.received;
        }
        if moved == 0 {
            quiet = true;
            break;
        }
    }
    assert!(
        quiet,
        "still moving after {SETTLE_ROUNDS} rounds of syncing"
    );

    let sam_log = log(&w.sam);
    assert_eq!(
        sam_log,
        log(&w.jordan),
        "Sam and Jordan hold different logs"
    );
    if let Some(laptop) = &w.laptop {
        assert_eq!(sam_log, log(laptop), "Sam's devices hold different logs");
        assert_eq!(
            w.sam.load().unwrap().timeline(),
            laptop.load().unwrap().timeline()
        );
    }
    assert_eq!(
        w.sam.load().unwrap().timeline(),
        w.jordan.load().unwrap().timeline()
    );
    let mut texts: Vec<&str> = sam_log.values().map(|a| a.text.as_str()).collect();
    texts.sort_unstable();
    let mut written: Vec<&str> = w.written.iter().map(String::as_str).collect();
    written.sort_unstable();
    assert_eq!(
        texts, written,
        "every text written exactly once, and nothing else"
    );
    // Each entry is attributed to the person whose device wrote it.
    for a in sam_log.values() {
        let author = if a.text.starts_with("Jordan") {
            w.jordan.person_id()
        } else {
            w.sam.person_id()
        };
        assert_eq!(&a.author, author, "{:?}", a.text);
    }
    assert_eq!(w.sam.load().unwrap().people().len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_interleaving_of_writes_and_syncs_converges_to_one_log(
        sam_before in 0usize..3,
        ops in proptest::collection::vec(op(), 0..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // The relay runs its own runtime on its own thread: start it (and later drop it)
        // on this test thread, not on a worker of the clients' runtime.
        let relay = LocalRelay::start(dir.path().join("relay.db")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(dir.path(), relay.url(), sam_before, &ops));
        drop(runtime);
        drop(relay);
    }
}
