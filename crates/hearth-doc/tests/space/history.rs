//! A synthetic ten-year history, shared by the `ten_year` test and the `ten_year` example.
//!
//! Two partners on two devices write about as much as a couple who use hearth every day
//! would in ten years, syncing now and then, through the public API only: this is the
//! document `hearth log --json` must read in well under 100 ms.

#![allow(dead_code)] // the example and the test each use a different part

use hearth_doc::{
    FeedbackDraft, JournalDraft, Millis, PersonId, ReplyKind, SpaceDoc, Week, weekly_deck,
};

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub weeks: usize,
    pub submissions: usize,
    pub journal: usize,
    pub appreciations: usize,
    pub feedback: usize,
    pub replies: usize,
    pub commitments: usize,
}

impl Counts {
    /// Changes written: one per record, plus the two that created and joined the space.
    pub fn changes(&self) -> usize {
        2 + self.submissions + self.journal + self.appreciations + self.feedback + self.replies
    }
}

pub struct History {
    pub laptop: SpaceDoc,
    pub phone: SpaceDoc,
    pub ana: PersonId,
    pub ben: PersonId,
    pub counts: Counts,
}

/// A tiny deterministic generator, so every run writes the same words.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next()).unwrap_or(0) % from.len();
        from[i]
    }

    fn sentence(&mut self, min_chars: usize) -> String {
        const WORDS: &[&str] = &[
            "we", "walked", "along", "the", "river", "and", "talked", "about", "work", "tea",
            "quiet", "morning", "laughed", "cooked", "together", "tired", "but", "close", "rain",
            "sunday", "garden", "slow", "kind", "letter", "music", "kitchen", "late", "train",
            "home", "friends", "dinner", "soft", "light", "plans", "weekend",
        ];
        let mut s = String::with_capacity(min_chars + 16);
        while s.len() < min_chars {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(self.pick(WORDS));
        }
        s
    }
}

const DAY: i64 = 86_400_000;

/// How often the two devices meet. Every week in real life, but each sync costs the same
/// fixed work in a debug build whatever it carries, so the test syncs monthly.
const SYNC_EVERY_WEEKS: usize = 4;

/// Builds `years` of history (52 weeks a year). Ten years gives 520 weekly check-ins
/// answered by both, 3,650 journal entries of ~300 characters, 2,000 appreciations and 200
/// feedback threads with two replies each.
pub fn build(years: usize) -> History {
    let ana: PersonId = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
        .parse()
        .expect("valid id");
    let ben: PersonId = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
        .parse()
        .expect("valid id");
    let start = Millis(1_451_606_400_000); // 2016-01-01
    let mut laptop = SpaceDoc::create(b"ana-laptop", &ana, "Ana", start).expect("create");
    let snapshot = laptop.save_snapshot();
    let mut phone = SpaceDoc::load(b"ben-phone", &snapshot, []).expect("join");
    phone
        .add_person(&ben, "Ben", Millis(start.0 + 1000))
        .expect("add ben");

    let weekly = weekly_deck();
    let mut words = Words(7);
    let mut counts = Counts::default();
    let days = years * 365;
    let weeks = years * 52;
    let appreciations_total = years * 200;
    let feedback_total = years * 20;
    let mut first_week = None;
    let mut pending_replies = Vec::new();

    for day in 0..days {
        let at = |offset: i64| Millis(start.0 + i64::try_from(day).expect("small") * DAY + offset);
        let (writer, me) = if day % 2 == 0 {
            (&mut laptop, &ana)
        } else {
            (&mut phone, &ben)
        };

        let body = words.sentence(300);
        let title = (day % 3 == 0).then(|| words.sentence(20));
        let tags = if day % 5 == 0 {
            vec!["us".to_owned()]
        } else {
            Vec::new()
        };
        writer
            .add_journal(me, &JournalDraft { title, body, tags }, at(20 * 3_600_000))
            .expect("journal");
        counts.journal += 1;

        // Spread appreciations and feedback evenly over the days.
        if (day + 1) * appreciations_total / days > day * appreciations_total / days {
            let text = words.sentence(60);
            writer
                .add_appreciation(me, &text, at(9 * 3_600_000))
                .expect("appreciation");
            counts.appreciations += 1;
        }
        if (day + 1) * feedback_total / days > day * feedback_total / days {
            let draft = FeedbackDraft {
                observation: words.sentence(80),
                feeling: words.sentence(15),
                need: words.sentence(30),
                request: words.sentence(60),
            };
            let id = writer
                .add_feedback(me, &draft, at(19 * 3_600_000))
                .expect("feedback");
            counts.feedback += 1;
            // The partner reflects back and the author acknowledges, once the next sync has
            // carried the feedback over.
            pending_replies.push((id, day % 2 == 0, at(DAY)));
        }

        if day % 7 == 6 && counts.weeks < weeks {
            let week = Week::from_date(at(0).to_utc().date_naive());
            first_week.get_or_insert(week);
            for (doc, who, offset) in [(&mut laptop, &ana, 0), (&mut phone, &ben, 3_600_000)] {
                let feeling = (3 + words.next() % 8).to_string();
                let commit = words.sentence(40);
                let connected = words.sentence(60);
                let mut pairs = vec![
                    ("feeling", feeling.as_str()),
                    ("need", "time,fun"),
                    ("connected", connected.as_str()),
                    ("raise", "nothing"),
                    ("commit", commit.as_str()),
                ];
                if Some(week) != first_week {
                    pairs.push((
                        "followup",
                        if words.next().is_multiple_of(3) {
                            "partly"
                        } else {
                            "done"
                        },
                    ));
                }
                let answers = weekly.parse_answers(pairs).expect("answers");
                doc.submit_checkin(week, who, answers, at(10 * 3_600_000 + offset))
                    .expect("check-in");
                counts.submissions += 1;
                counts.commitments += 1;
            }
            counts.weeks += 1;
            if counts.weeks % SYNC_EVERY_WEEKS != 0 {
                continue;
            }
            sync(&mut laptop, &mut phone);
            for (id, ana_wrote_it, at) in pending_replies.drain(..) {
                let (author_doc, author, listener_doc, listener) = if ana_wrote_it {
                    (&mut laptop, &ana, &mut phone, &ben)
                } else {
                    (&mut phone, &ben, &mut laptop, &ana)
                };
                let text = words.sentence(80);
                listener_doc
                    .add_reply(&id, listener, ReplyKind::Reflect, &text, at)
                    .expect("reflect");
                let text = words.sentence(40);
                author_doc
                    .add_reply(
                        &id,
                        author,
                        ReplyKind::Acknowledge,
                        &text,
                        Millis(at.0 + 3_600_000),
                    )
                    .expect("acknowledge");
                counts.replies += 2;
            }
        }
    }
    sync(&mut laptop, &mut phone);
    History {
        laptop,
        phone,
        ana,
        ben,
        counts,
    }
}

/// Both devices hand each other what they have not saved, as they would through the relay,
/// then release the keys of sealed check-ins that became due, as the client does after a
/// sync, and hand those over too.
pub fn sync(a: &mut SpaceDoc, b: &mut SpaceDoc) {
    exchange(a, b);
    release_due(a);
    release_due(b);
    exchange(a, b);
}

/// Releases every due key this device holds (its own person's).
pub fn release_due(doc: &mut SpaceDoc) {
    let me = doc.own_person();
    doc.release_due_keys(&me, Millis(0)).expect("release");
}

fn exchange(a: &mut SpaceDoc, b: &mut SpaceDoc) {
    let from_a = a.take_unsaved();
    let from_b = b.take_unsaved();
    if let Some(bytes) = from_a {
        b.apply(&bytes).expect("apply to b");
    }
    if let Some(bytes) = from_b {
        a.apply(&bytes).expect("apply to a");
    }
    // What just arrived is new to each device's store too; keep the next round small.
    let _ = a.take_unsaved();
    let _ = b.take_unsaved();
}
