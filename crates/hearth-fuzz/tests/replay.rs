//! The fuzz targets, briefly, inside the normal test suite: every seed, every committed
//! crasher (`fuzz/regressions/<target>/`), and a fixed number of seeded mutations of the
//! seeds. A panic in any of them fails the test and names the input.

use std::path::Path;

use hearth_fuzz::{Mutator, TARGETS, Target, seeds};

/// Mutations per target per run; the long runs are `scripts/fuzz`'s job.
const MUTATIONS: usize = 400;

fn run(name: &str, target: Target, input: &[u8], what: &str) {
    let result = std::panic::catch_unwind(|| target(input));
    assert!(
        result.is_ok(),
        "target {name} panicked on {what}: {} bytes, hex {}",
        input.len(),
        input.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
}

#[test]
fn every_target_has_seeds_that_exercise_it() {
    for (name, _) in TARGETS {
        assert!(!seeds(name).is_empty(), "target {name} has no seeds");
    }
}

#[test]
fn seeds_and_committed_regressions_replay_cleanly() {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    for (name, target) in TARGETS {
        for (i, seed) in seeds(name).iter().enumerate() {
            run(name, *target, seed, &format!("seed {i}"));
        }
        let Ok(dir) = std::fs::read_dir(regressions.join(name)) else {
            continue;
        };
        for entry in dir.flatten() {
            let input = std::fs::read(entry.path()).expect("a readable regression file");
            run(name, *target, &input, &entry.path().display().to_string());
        }
    }
}

#[test]
fn seeded_mutations_of_the_seeds_never_panic() {
    for (n, (name, target)) in TARGETS.iter().enumerate() {
        let seeds = seeds(name);
        let mut mutator = Mutator::new(n as u64 + 1);
        for i in 0..MUTATIONS {
            let seed = &seeds[i % seeds.len()];
            let input = mutator.mutate(seed);
            run(name, *target, &input, &format!("mutation {i}"));
        }
    }
}
