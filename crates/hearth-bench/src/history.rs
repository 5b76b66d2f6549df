//! A ten-year history, shaped like the peer benchmark's initial-sync workload and the
//! offline issue's target: 520 weekly check-ins answered by both partners, 3,650 journal
//! entries of ~300 characters, 2,000 appreciations and 200 feedback threads with replies.
//! One change per record, written by two devices that exchange changes every week, as two
//! partners syncing would.

use hearth_doc::{
    AnswerValue, Answers, DocError, FeedbackDraft, JournalDraft, Millis, PersonId, ReplyKind,
    SpaceDoc, Week,
};

/// How much history to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Weeks of check-ins (both partners answer each week).
    pub weeks: u32,
    /// Journal entries.
    pub journal: u32,
    /// Appreciations.
    pub appreciations: u32,
    /// Feedback threads (each with a reflection and an acknowledgement).
    pub feedback: u32,
}

impl Shape {
    /// Ten years of a couple who use hearth every week.
    pub const TEN_YEARS: Shape = Shape {
        weeks: 520,
        journal: 3650,
        appreciations: 2000,
        feedback: 200,
    };

    /// The peer benchmark's initial-sync history: 3,650 journal entries of ~300
    /// characters, 520 check-ins of 6 answers (both partners, 260 weeks) and 5,830
    /// appreciations: 10,000 records.
    pub const PEER: Shape = Shape {
        weeks: 260,
        journal: 3650,
        appreciations: 5830,
        feedback: 0,
    };

    /// How many records this shape writes (replies counted with their threads).
    pub fn records(&self) -> u32 {
        self.weeks * 2 + self.journal + self.appreciations + self.feedback * 3
    }
}

const WORDS: &[&str] = &[
    "we",
    "walked",
    "to",
    "the",
    "lake",
    "and",
    "talked",
    "about",
    "work",
    "dinner",
    "was",
    "warm",
    "quiet",
    "evening",
    "together",
    "laughed",
    "at",
    "old",
    "photos",
    "rain",
    "kept",
    "us",
    "inside",
    "so",
    "cooked",
    "soup",
    "planned",
    "a",
    "trip",
    "north",
    "felt",
    "close",
    "tired",
    "but",
    "happy",
    "your",
    "mother",
    "called",
    "garden",
    "needs",
    "water",
    "long",
    "week",
    "small",
    "kindness",
    "noticed",
    "thank",
    "you",
    "for",
    "listening",
    "coffee",
    "morning",
    "bike",
    "ride",
    "market",
    "friends",
    "came",
    "over",
    "music",
    "late",
    "night",
];

/// A small deterministic generator, so every run builds the same history.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// Next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Words of prose, about `chars` characters long.
    pub fn prose(&mut self, chars: usize) -> String {
        let mut s = String::with_capacity(chars + 16);
        while s.len() < chars {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
        }
        s.push('.');
        s
    }
}

const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;

/// Writes `shape` into two devices' documents, ending at `end`: `a` (already holding its
/// author `person_a`) and `b`, a device of the partner `person_b` ("Jordan"). Each writes
/// only as its own person; both exchange changes every week; at the end `a` holds
/// everything.
///
/// # Errors
/// A document error, which would be a bug in the generator or the document.
pub fn generate(
    a: &mut SpaceDoc,
    person_a: &PersonId,
    b: &mut SpaceDoc,
    person_b: &PersonId,
    shape: Shape,
    end: Millis,
) -> Result<(), DocError> {
    let mut rng = Rng::new(0x5eed_4ea7);
    let person_b = person_b.clone();
    let start = Millis(end.0 - i64::from(shape.weeks) * WEEK);
    exchange(&mut *a, &mut *b)?;
    b.add_person(&person_b, "Jordan", start)?;

    let weeks = i64::from(shape.weeks.max(1));
    let per_week = |total: u32, w: i64| -> u32 {
        // Spread `total` records evenly over the weeks.
        let before = (i64::from(total) * w / weeks) as u32;
        let after = (i64::from(total) * (w + 1) / weeks) as u32;
        after - before
    };
    for w in 0..weeks {
        let week_start = start.0 + w * WEEK;
        let at = |rng: &mut Rng| Millis(week_start + rng.below(WEEK as u64) as i64);
        let week = Week::from_date(
            chrono::DateTime::from_timestamp_millis(week_start)
                .unwrap_or_default()
                .date_naive(),
        );
        for i in 0..per_week(shape.journal, w) {
            let (doc, who) = if i % 2 == 0 {
                (&mut *a, person_a)
            } else {
                (&mut *b, &person_b)
            };
            let draft = JournalDraft {
                title: (rng.below(3) == 0).then(|| rng.prose(20)),
                body: rng.prose(300),
                tags: vec![WORDS[rng.below(WORDS.len() as u64) as usize].to_owned()],
            };
            let t = at(&mut rng);
            doc.add_journal(who, &draft, t)?;
        }
        for i in 0..per_week(shape.appreciations, w) {
            let (doc, who) = if i % 2 == 0 {
                (&mut *a, person_a)
            } else {
                (&mut *b, &person_b)
            };
            let text = rng.prose(60);
            let t = at(&mut rng);
            doc.add_appreciation(who, &text, t)?;
        }
        let mut raised = Vec::new();
        for _ in 0..per_week(shape.feedback, w) {
            let draft = FeedbackDraft {
                observation: rng.prose(60),
                feeling: rng.prose(10),
                need: rng.prose(30),
                request: rng.prose(50),
            };
            let t = at(&mut rng);
            raised.push((a.add_feedback(person_a, &draft, t)?, t));
        }
        if !raised.is_empty() {
            // The listener reflects on their own device; the one who raised it answers.
            exchange(&mut *a, &mut *b)?;
            for (id, t) in &raised {
                let reflection = rng.prose(80);
                b.add_reply(
                    id,
                    &person_b,
                    ReplyKind::Reflect,
                    &reflection,
                    Millis(t.0 + 1000),
                )?;
            }
            exchange(&mut *a, &mut *b)?;
            for (id, t) in &raised {
                a.add_reply(
                    id,
                    person_a,
                    ReplyKind::Acknowledge,
                    "yes",
                    Millis(t.0 + 2000),
                )?;
            }
        }
        for (doc, who) in [(&mut *a, person_a), (&mut *b, &person_b)] {
            let mut answers = Answers::default();
            answers.insert("feeling", AnswerValue::Scale(3 + rng.below(8) as u8));
            answers.insert("feeling_word", AnswerValue::Text(rng.prose(8)));
            answers.insert("doing", AnswerValue::Scale(1 + rng.below(5) as u8));
            answers.insert(
                "need",
                AnswerValue::Choices(vec!["time".into(), "fun".into()]),
            );
            answers.insert("connected", AnswerValue::Text(rng.prose(80)));
            answers.insert("together", AnswerValue::Choice("walk".into()));
            let t = Millis(week_start + 6 * DAY + rng.below(DAY as u64) as i64);
            doc.submit_checkin(week, who, answers, t)?;
        }
        // The weekly sync between the two devices, and the sealed answers' keys each
        // releases on seeing the other's.
        exchange(&mut *a, &mut *b)?;
        a.release_due_keys(person_a, Millis(week_start + 7 * DAY))?;
        b.release_due_keys(&person_b, Millis(week_start + 7 * DAY))?;
        exchange(&mut *a, &mut *b)?;
    }
    Ok(())
}

/// Who is whom in a couple of two devices, `a` (which created the space) and `b`, as the
/// space's ACL would say.
pub fn couple(a: [u8; 32], b: [u8; 32]) -> hearth_doc::authorship::People {
    use hearth_doc::authorship::{People, PersonKey};
    [
        (a, PersonKey::from_founding_device(a)),
        (b, PersonKey::from_founding_device(b)),
    ]
    .into_iter()
    .collect::<People>()
    .with_founder(a)
}

/// A partner for `profile`'s space, joined for real over its relay into `home`.
///
/// # Errors
/// An invite or join that fails.
pub async fn paired_partner(
    profile: &mut hearth_client::Profile,
    home: &std::path::Path,
    timeout: std::time::Duration,
) -> anyhow::Result<hearth_client::Profile> {
    use hearth_client::{Protection, sync};
    let code = sync::invite(
        profile,
        hearth_proto::InviteRole::Partner,
        std::time::Duration::from_secs(3600),
        timeout,
    )
    .await?;
    Ok(
        sync::join(home, &code, Some("Jordan"), Protection::None, timeout)
            .await?
            .profile,
    )
}

/// [`generate`] for a real couple: `a`'s profile and its joined `partner`. Returns the
/// whole history (what `a` ends with) and what the partner's device holds.
///
/// # Errors
/// A document or profile error.
pub fn generate_for(
    a: &hearth_client::Profile,
    partner: &hearth_client::Profile,
    shape: Shape,
    end: Millis,
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut doc = a.load()?;
    let mut b = partner.load()?;
    generate(
        &mut doc,
        a.person_id(),
        &mut b,
        partner.person_id(),
        shape,
        end,
    )?;
    Ok((doc.save_snapshot(), b.save_snapshot()))
}

/// Each device applies what the other has not saved yet.
fn exchange(a: &mut SpaceDoc, b: &mut SpaceDoc) -> Result<(), hearth_doc::DocError> {
    if let Some(bytes) = b.take_unsaved() {
        a.apply(&bytes)?;
    }
    if let Some(bytes) = a.take_unsaved() {
        b.apply(&bytes)?;
    }
    Ok(())
}
