//! A couple who used hearth for ten years: the document stays small and reloads intact.
//! (Timings are measured by `cargo run --release --example ten_year`, not asserted here.)

use hearth_doc::SpaceDoc;

use crate::history;

#[test]
fn ten_years_of_history_save_and_reload_intact() {
    let mut h = history::build(10);
    let c = h.counts;
    assert_eq!(
        (
            c.weeks,
            c.submissions,
            c.journal,
            c.appreciations,
            c.feedback
        ),
        (520, 1040, 3650, 2000, 200)
    );

    let snapshot = h.laptop.save_snapshot();
    assert!(
        snapshot.len() < 2 * 1024 * 1024,
        "snapshot is {} bytes",
        snapshot.len()
    );

    let mut reloaded = SpaceDoc::load(b"ana-laptop", &snapshot, []).expect("reload");
    assert_eq!(
        reloaded.heads(),
        h.phone.heads(),
        "both devices hold the same history"
    );
    assert_eq!(reloaded.people().len(), 2);
    assert_eq!(reloaded.appreciations().len(), c.appreciations);
    assert_eq!(reloaded.journal().len(), c.journal);
    let feedback = reloaded.feedback();
    assert_eq!(feedback.len(), c.feedback);
    assert_eq!(
        feedback.iter().map(|f| f.replies.len()).sum::<usize>(),
        c.replies
    );
    let checkins = reloaded.checkins();
    assert_eq!(checkins.len(), c.weeks);
    assert!(checkins.iter().all(|w| w.revealed(&reloaded.people())));
    assert_eq!(reloaded.trend().len(), c.weeks);
    let commitments = reloaded.commitments();
    assert_eq!(commitments.len(), c.commitments);
    // Every commitment but the last week's two has been followed up.
    assert_eq!(
        commitments
            .iter()
            .filter(|x| x.status == hearth_doc::CommitmentStatus::Open)
            .count(),
        2
    );
    let timeline = reloaded.timeline();
    assert_eq!(
        timeline.len(),
        c.appreciations + c.feedback + c.replies + c.journal + c.submissions + c.commitments
    );
    assert_eq!(timeline, h.phone.timeline());
    assert!(timeline.windows(2).all(|w| w[0].at <= w[1].at));
}
