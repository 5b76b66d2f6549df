//! Two devices write at random and exchange what they wrote in random order, as chunks or
//! as snapshots, delivered late, twice or out of order: they always end up identical.

use hearth_doc::{
    CommitmentStatus, FeedbackDraft, JournalDraft, Millis, PersonId, ReplyKind, SpaceDoc, Week,
    weekly_deck,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Device `device` writes something, as its person.
    Write { device: usize, op: Op },
    /// A device hands its unsaved changes to the network.
    SendChunk { device: usize },
    /// A device sends a full snapshot instead.
    SendSnapshot { device: usize },
    /// One message in flight is delivered (chosen by `pick`); it may stay queued to be
    /// delivered again later, as a relay retrying would.
    Deliver { pick: usize, keep: bool },
}

#[derive(Debug, Clone)]
enum Op {
    Appreciate(u8),
    JournalAdd(u8),
    JournalEdit {
        pick: usize,
        body: u8,
        title: Option<u8>,
        tags: u8,
    },
    Feedback(u8),
    Reply {
        pick: usize,
        kind: usize,
        text: u8,
    },
    Checkin {
        week: u8,
        feeling: u8,
        commit: bool,
        followup: Option<usize>,
    },
    Status {
        pick: usize,
        status: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::Appreciate),
        any::<u8>().prop_map(Op::JournalAdd),
        (any::<usize>(), 0..4u8, proptest::option::of(0..3u8), 0..3u8).prop_map(
            |(pick, body, title, tags)| Op::JournalEdit {
                pick,
                body,
                title,
                tags
            }
        ),
        any::<u8>().prop_map(Op::Feedback),
        (any::<usize>(), 0..3usize, any::<u8>()).prop_map(|(pick, kind, text)| Op::Reply {
            pick,
            kind,
            text
        }),
        (
            0..3u8,
            1..=10u8,
            any::<bool>(),
            proptest::option::of(0..3usize)
        )
            .prop_map(|(week, feeling, commit, followup)| Op::Checkin {
                week,
                feeling,
                commit,
                followup
            }),
        (any::<usize>(), 0..4usize).prop_map(|(pick, status)| Op::Status { pick, status }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..2usize, op()).prop_map(|(device, op)| Step::Write { device, op }),
        2 => (0..2usize).prop_map(|device| Step::SendChunk { device }),
        1 => (0..2usize).prop_map(|device| Step::SendSnapshot { device }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, keep)| Step::Deliver { pick, keep }),
    ]
}

struct World {
    devices: [SpaceDoc; 2],
    people: [PersonId; 2],
    /// Messages in flight: (to device, bytes).
    network: Vec<(usize, Vec<u8>)>,
    clock: i64,
}

impl World {
    fn new() -> World {
        let people: [PersonId; 2] = [
            "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0".parse().expect("id"),
            "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".parse().expect("id"),
        ];
        let mut laptop = SpaceDoc::create(b"laptop", &people[0], "Ana", Millis(0)).expect("create");
        let mut phone = SpaceDoc::load(b"phone", &laptop.save_snapshot(), []).expect("join");
        phone.add_person(&people[1], "Ben", Millis(1)).expect("add");
        World {
            devices: [laptop, phone],
            people,
            network: Vec::new(),
            clock: 10,
        }
    }

    fn tick(&mut self) -> Millis {
        // Some writes share a millisecond, to exercise the tie-breaks.
        self.clock += i64::from(self.clock % 3 != 0);
        Millis(self.clock)
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Write { device, op } => {
                let now = self.tick();
                let who = self.people[*device].clone();
                write(&mut self.devices[*device], &who, op, now);
            }
            Step::SendChunk { device } => {
                if let Some(bytes) = self.devices[*device].take_unsaved() {
                    self.network.push((1 - device, bytes));
                }
            }
            Step::SendSnapshot { device } => {
                let bytes = self.devices[*device].save_snapshot();
                self.network.push((1 - device, bytes));
            }
            Step::Deliver { pick, keep } => {
                if self.network.is_empty() {
                    return;
                }
                let i = pick % self.network.len();
                let (to, bytes) = if *keep {
                    self.network[i].clone()
                } else {
                    self.network.remove(i)
                };
                self.devices[to]
                    .apply(&bytes)
                    .expect("valid bytes always apply");
            }
        }
    }

    /// Everything still unsent goes out, and everything in flight arrives.
    fn settle(&mut self) {
        for _ in 0..2 {
            for device in 0..2 {
                self.run(&Step::SendChunk { device });
            }
            while !self.network.is_empty() {
                self.run(&Step::Deliver {
                    pick: 0,
                    keep: false,
                });
            }
        }
    }
}

fn write(doc: &mut SpaceDoc, who: &PersonId, op: &Op, now: Millis) {
    const WORDS: [&str; 4] = ["tea", "the walk", "patience", "music"];
    let word = |n: u8| WORDS[usize::from(n) % WORDS.len()];
    match op {
        Op::Appreciate(n) => {
            doc.add_appreciation(who, &format!("thanks for {} #{n}", word(*n)), now)
                .expect("appreciate");
        }
        Op::JournalAdd(n) => {
            let draft = JournalDraft {
                title: None,
                body: format!("today: {}", word(*n)),
                tags: vec![],
            };
            doc.add_journal(who, &draft, now).expect("journal");
        }
        Op::JournalEdit {
            pick,
            body,
            title,
            tags,
        } => {
            // Only the one who wrote an entry edits it.
            let entries: Vec<_> = doc
                .journal()
                .into_iter()
                .filter(|j| j.author == *who)
                .collect();
            if entries.is_empty() {
                return;
            }
            let id = entries[pick % entries.len()].id.clone();
            let draft = JournalDraft {
                title: title.map(|t| format!("title {t}")),
                body: format!("edited: {}", word(*body)),
                tags: (0..*tags).map(|t| format!("tag{t}")).collect(),
            };
            doc.edit_journal(&id, &draft, now).expect("edit");
        }
        Op::Feedback(n) => {
            let draft = FeedbackDraft {
                observation: format!("when {}", word(*n)),
                feeling: "unsure".into(),
                need: "clarity".into(),
                request: "could we talk?".into(),
            };
            doc.add_feedback(who, &draft, now).expect("feedback");
        }
        Op::Reply { pick, kind, text } => {
            let threads = doc.feedback();
            if threads.is_empty() {
                return;
            }
            let thread = &threads[pick % threads.len()];
            let kind = ReplyKind::ALL[*kind];
            if (kind == ReplyKind::Reflect) == (thread.author == *who) && kind != ReplyKind::Respond
            {
                // The listener reflects; the one who raised it says whether they felt heard.
                return;
            }
            let id = thread.id.clone();
            doc.add_reply(&id, who, kind, word(*text), now)
                .expect("reply");
        }
        Op::Checkin {
            week,
            feeling,
            commit,
            followup,
        } => {
            let week: Week = format!("2026-W{}", 45 + week).parse().expect("week");
            let feeling = feeling.to_string();
            let mut pairs = vec![("feeling", feeling.as_str())];
            if *commit {
                pairs.push(("commit", "one small thing"));
            }
            if let Some(f) = followup {
                pairs.push(("followup", ["done", "partly", "no"][*f]));
            }
            let answers = weekly_deck().parse_answers(pairs).expect("answers");
            match doc.submit_checkin(week, who, answers, now) {
                Ok(()) | Err(hearth_doc::DocError::AlreadySubmitted { .. }) => {}
                Err(e) => panic!("check-in failed: {e}"),
            }
        }
        Op::Status { pick, status } => {
            let all: Vec<_> = doc
                .commitments()
                .into_iter()
                .filter(|c| c.author == *who)
                .collect();
            if all.is_empty() {
                return;
            }
            let id = all[pick % all.len()].id.clone();
            doc.set_commitment_status(&id, CommitmentStatus::ALL[*status])
                .expect("status");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn two_devices_always_converge(steps in proptest::collection::vec(step(), 1..40)) {
        let mut world = World::new();
        for step in &steps {
            world.run(step);
        }
        world.settle();
        // The client releases due keys after every sync; twice covers a key that became
        // due only through another release.
        for _ in 0..2 {
            for device in &mut world.devices {
                crate::history::release_due(device);
            }
            world.settle();
        }
        let [a, b] = &mut world.devices;
        prop_assert_eq!(a.heads(), b.heads());
        prop_assert!(a.missing_deps().is_empty() && b.missing_deps().is_empty());
        prop_assert_eq!(a.people(), b.people());
        prop_assert_eq!(a.appreciations(), b.appreciations());
        prop_assert_eq!(a.journal(), b.journal());
        prop_assert_eq!(a.feedback(), b.feedback());
        // Each device may still read its own sealed answers of weeks nobody else answered;
        // what both may read is the same everywhere, and reloads to the same state.
        let shared = |d: &mut SpaceDoc| SpaceDoc::load(b"reader", &d.save_snapshot(), []).expect("reload");
        let (sa, sb) = (shared(a), shared(b));
        prop_assert_eq!(sa.checkins(), sb.checkins());
        prop_assert_eq!(sa.commitments(), sb.commitments());
        prop_assert_eq!(sa.trend(), sb.trend());
        prop_assert_eq!(sa.timeline(), sb.timeline());
        // Every week both answered is open to both: no key was lost or held back.
        let people = sa.people();
        for c in sa.checkins() {
            if c.submissions.len() == 2 {
                prop_assert!(c.revealed(&people), "{:?}", c);
            }
        }
    }
}
