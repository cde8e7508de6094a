//! Fuzz target `rouge_tokenizer`: the checks live in `ro-metrics/tests/fuzz_check/mod.rs`, shared with that
//! crate's `tests/fuzz_regressions.rs`, which replays the committed corpus in `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../ro-metrics/tests/fuzz_check/mod.rs"]
#[allow(dead_code)]
mod fuzz_check;

fuzz_target!(|data: &str| {
    fuzz_check::rouge_tokenizer(data);
});
