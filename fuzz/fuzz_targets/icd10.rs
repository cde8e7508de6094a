//! Fuzz target `icd10`: the checks live in `ro-tasks/tests/fuzz_check/mod.rs`, shared with that
//! crate's `tests/fuzz_regressions.rs`, which replays the committed corpus in `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../ro-tasks/tests/fuzz_check/mod.rs"]
#[allow(dead_code)]
mod fuzz_check;

fuzz_target!(|data: &str| {
    fuzz_check::icd10(data);
});
