//! Writes every fuzz target's seed inputs into `DIR/<target>/`, as a starting corpus.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: hearth-fuzz-seeds DIR   (writes DIR/<target>/seed-N for every target)");
        return ExitCode::from(1);
    };
    for (name, _) in hearth_fuzz::TARGETS {
        let target = dir.join(name);
        if let Err(e) = std::fs::create_dir_all(&target) {
            eprintln!("cannot create {}: {e}", target.display());
            return ExitCode::from(1);
        }
        for (i, seed) in hearth_fuzz::seeds(name).iter().enumerate() {
            let path = target.join(format!("seed-{i}"));
            if let Err(e) = std::fs::write(&path, seed) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
