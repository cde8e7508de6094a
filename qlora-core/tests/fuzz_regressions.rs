//! Replays the fuzz corpus kept in `tests/fuzz_corpus/quant_state/` (seeds and inputs that
//! found new coverage while fuzzing `fuzz/fuzz_targets/quant_state.rs`) through the
//! target's checks: every file must give `Ok` or a typed error, never a panic.

mod fuzz_check;

#[test]
fn quant_state_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/quant_state");
    let mut files = 0;
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| fuzz_check::quant_state(&bytes));
        loaded += r.unwrap_or_else(|_| panic!("{} panics", path.display()));
        files += 1;
    }
    assert!(files >= 4, "corpus missing in {}", dir.display());
    // The seeds hold valid NF4 weights (plain and double-quantized): some inputs must load.
    assert!(loaded >= 4, "only {loaded} weights loaded");
}
