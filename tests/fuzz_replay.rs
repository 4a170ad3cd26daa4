//! Replays every committed fuzz input through the same target bodies the fuzzer runs
//! (`hubmock::fuzzing`, which the self dev-dependency in Cargo.toml turns on for tests), on
//! the stable toolchain: the seeds in `fuzz/seeds/<target>/` and the crash files pinned in
//! `fuzz/regressions/<target>/`. A crash, once pinned, stays fixed. What a local fuzzing run
//! adds to `fuzz/corpus/` (ignored by git) is not replayed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hubmock::fuzzing::TARGETS;

/// The files of one input folder, sorted; `.gitkeep` and other dot files are not inputs.
fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `kind` (`seeds` or `regressions`) through its target and reports all
/// the files that panic at once, each with its target and path.
fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, target) in TARGETS {
        for file in inputs(&root.join(name)) {
            let data = std::fs::read(&file).unwrap_or_else(|err| panic!("{file:?}: {err}"));
            count += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{name}: {}\n{message}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} {kind} inputs fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    count
}

#[test]
fn every_seed_of_every_corpus_passes_its_target() {
    let count = replay("seeds");
    assert!(count > 0, "no seeds found under fuzz/seeds/");
}

#[test]
fn every_pinned_crash_stays_fixed() {
    replay("regressions");
}

#[test]
fn every_target_has_a_seed_corpus_and_a_regressions_folder() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, _) in TARGETS {
        assert!(
            !inputs(&fuzz.join("seeds").join(name)).is_empty(),
            "fuzz/seeds/{name}/ has no seeds"
        );
        assert!(
            fuzz.join("regressions").join(name).is_dir(),
            "fuzz/regressions/{name}/ is missing"
        );
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}
