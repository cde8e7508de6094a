//! Replays the fuzz corpus kept in `tests/fuzz_corpus/rouge_tokenizer/` (seeds and inputs
//! that found new coverage while fuzzing `fuzz/fuzz_targets/rouge_tokenizer.rs`) through
//! the target's checks: no panic, fast tokenizer equal to the reference.

mod fuzz_check;

#[test]
fn rouge_tokenizer_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/rouge_tokenizer");
    let (mut files, mut tokens) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // libFuzzer skips inputs that are not UTF-8 for `&str` targets, and so do we.
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        tokens += std::panic::catch_unwind(|| fuzz_check::rouge_tokenizer(text))
            .unwrap_or_else(|_| panic!("{} panics", path.display()));
        files += 1;
    }
    assert!(files >= 4, "corpus missing in {}", dir.display());
    assert!(tokens > 0);
}
