use std::time::Instant;
use automerge::{AutoCommit, ReadDoc, ObjType, ValueRef, ROOT};
use hearth_doc::SpaceDoc;

#[path = "../tests/space/history.rs"]
mod history;

fn t<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let s = Instant::now();
    let v = f();
    println!("{label:40} {:8.2} ms", s.elapsed().as_secs_f64() * 1000.0);
    v
}

fn main() {
    let path = "/tmp/ten_year.am";
    let snapshot = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => {
            let mut h = history::build(10);
            let s = h.laptop.save_snapshot();
            std::fs::write(path, &s).unwrap();
            s
        }
    };
    for _ in 0..2 {
        t("AutoCommit::load", || AutoCommit::load(&snapshot).unwrap());
        t("AutoCommit::load_unverified", || AutoCommit::load_unverified_heads(&snapshot).unwrap());
        let doc = t("SpaceDoc::load", || SpaceDoc::load(b"x", &snapshot, []).unwrap());
        t("people", || doc.people().len());
        t("appreciations", || doc.appreciations().len());
        t("feedback", || doc.feedback().len());
        t("journal", || doc.journal().len());
        t("commitments", || doc.commitments().len());
        t("checkins", || doc.checkins().len());
        t("timeline", || doc.timeline().len());
        let am = AutoCommit::load_unverified_heads(&snapshot).unwrap();
        t("hydrate root", || am.hydrate(ROOT, None).unwrap());
        t("doc.iter count", || am.iter().count());
        let (_, journal) = am.get(ROOT, "journal").unwrap().unwrap();
        t("journal list_range ids", || am.list_range(&journal, ..).map(|i| i.id()).count());
        let ids: Vec<_> = am.list_range(&journal, ..).map(|i| i.id()).collect();
        t("journal map_range each", || ids.iter().map(|id| am.map_range(id, ..).count()).sum::<usize>());
        t("journal get body each", || ids.iter().filter(|id| am.get(*id, "body").unwrap().is_some()).count());
        t("journal hydrate", || am.hydrate(&journal, None).unwrap());
        t("journal values", || am.values(&journal).count());
        let _ = (ObjType::Map, ValueRef::Object(ObjType::Map));
    }
}
