//! Replays the fuzz corpora kept in `tests/fuzz_corpus/{task_jsonl,regimen,icd10}/` (seeds
//! and inputs that found new coverage while fuzzing) through the targets' checks: every
//! file must give `Ok` or a typed error, never a panic.

mod fuzz_check;

use std::path::Path;

/// Runs `check` on every file of the corpus `name`; returns (files, accepted).
fn replay(name: &str, check: impl Fn(&[u8]) -> bool + std::panic::RefUnwindSafe) -> (usize, usize) {
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

/// The text targets take `&str`: libFuzzer skips inputs that are not UTF-8, and so do we.
fn text(check: fn(&str) -> bool) -> impl Fn(&[u8]) -> bool + std::panic::RefUnwindSafe {
    move |b| std::str::from_utf8(b).is_ok_and(check)
}

#[test]
fn task_jsonl_corpus() {
    let (files, accepted) = replay("task_jsonl", |b| fuzz_check::task_jsonl(b) > 0);
    assert!(files >= 2);
    assert!(accepted >= 2, "{accepted} of {files}");
}

#[test]
fn regimen_corpus() {
    let (files, accepted) = replay("regimen", text(fuzz_check::regimen));
    assert!(files >= 6);
    assert!(accepted >= 6, "{accepted} of {files}");
}

#[test]
fn icd10_corpus() {
    let (files, accepted) = replay("icd10", text(fuzz_check::icd10));
    assert!(files >= 8);
    assert!(accepted >= 3, "{accepted} of {files}");
}
