use automerge::{AutoCommit, ReadDoc};
fn main() {
    let snapshot = std::fs::read("/tmp/ten_year.am").unwrap();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let doc = AutoCommit::load(&snapshot).unwrap();
    println!("{:?}", doc.stats());
    let s = std::time::Instant::now();
    for _ in 0..20 {
        if mode == "unverified" {
            AutoCommit::load_unverified_heads(&snapshot).unwrap();
        } else {
            AutoCommit::load(&snapshot).unwrap();
        }
    }
    println!("{:.1} ms", s.elapsed().as_secs_f64() * 50.0);
}
