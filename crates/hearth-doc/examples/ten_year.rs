//! Measures what `hearth log --json` costs on a ten-year history: load the stored
//! document, build the timeline, serialise it.
//!
//! ```text
//! cargo run --release -p hearth-doc --example ten_year
//! ```

use std::time::Instant;

use hearth_doc::SpaceDoc;

#[path = "../tests/space/history.rs"]
mod history;

fn main() -> Result<(), hearth_doc::DocError> {
    let started = Instant::now();
    let mut h = history::build(10);
    println!(
        "built {:?} ({} changes) in {:.1?}",
        h.counts,
        h.counts.changes(),
        started.elapsed()
    );

    let snapshot = h.laptop.save_snapshot();
    println!(
        "snapshot: {} bytes ({:.2} MiB)",
        snapshot.len(),
        snapshot.len() as f64 / 1_048_576.0
    );

    // Between compactions the client's store holds the snapshot plus one chunk per write
    // (hearth-client compacts after 64).
    let mut chunks = Vec::new();
    for i in 0..64 {
        let when = hearth_doc::Millis(1_767_000_000_000 + i * 60_000);
        h.laptop
            .add_appreciation(&h.ana, &format!("thank you, again ({i})"), when)?;
        chunks.extend(h.laptop.take_unsaved());
    }

    let runs = 20;
    let mut chunked_ms = Vec::new();
    let mut load_ms = Vec::new();
    let mut timeline_ms = Vec::new();
    let mut json_ms = Vec::new();
    let mut items = 0;
    let mut json_len = 0;
    for _ in 0..runs {
        let t0 = Instant::now();
        let doc = SpaceDoc::load(b"ana-laptop", &snapshot, [])?;
        let t1 = Instant::now();
        let timeline = doc.timeline();
        let t2 = Instant::now();
        let json = serde_json::to_string(&timeline).expect("timeline serialises");
        let t3 = Instant::now();
        items = timeline.len();
        json_len = json.len();
        load_ms.push((t1 - t0).as_secs_f64() * 1000.0);
        timeline_ms.push((t2 - t1).as_secs_f64() * 1000.0);
        json_ms.push((t3 - t2).as_secs_f64() * 1000.0);
        let t4 = Instant::now();
        let _ = SpaceDoc::load(b"ana-laptop", &snapshot, chunks.iter().map(Vec::as_slice))?;
        chunked_ms.push(t4.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "load {:.1} ms, timeline {:.1} ms ({items} items), json {:.1} ms ({json_len} bytes); median of {runs}",
        median(&mut load_ms),
        median(&mut timeline_ms),
        median(&mut json_ms),
    );
    println!(
        "load of the snapshot plus {} one-change chunks: {:.1} ms",
        chunks.len(),
        median(&mut chunked_ms)
    );
    Ok(())
}
