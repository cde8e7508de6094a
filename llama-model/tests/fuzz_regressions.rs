//! Replays the fuzz corpora kept in `tests/fuzz_corpus/{llama_config,peft_config}/` (seeds
//! and inputs that found new coverage while fuzzing) through the targets' checks: every
//! file must give `Ok` or a typed error, never a panic.

mod fuzz_check;

use std::path::Path;

/// Runs `check` on every file of the corpus `name`; returns (files, accepted).
fn replay(name: &str, check: fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(name);
    let (mut files, mut accepted) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let ok = std::panic::catch_unwind(|| check(&bytes))
            .unwrap_or_else(|_| panic!("{} panics", path.display()));
        files += 1;
        accepted += usize::from(ok);
    }
    (files, accepted)
}

#[test]
fn llama_config_corpus() {
    let (files, accepted) = replay("llama_config", fuzz_check::llama_config);
    assert!(files >= 8);
    // The seeds are the committed fixture configs, which resolve.
    assert!(accepted >= 8, "{accepted} of {files}");
}

#[test]
fn peft_config_corpus() {
    let (files, accepted) = replay("peft_config", fuzz_check::peft_config);
    assert!(files >= 2);
    assert!(accepted >= 2, "{accepted} of {files}");
}
