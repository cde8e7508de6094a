//! Fuzz target `peft_config`: the checks live in `llama-model/tests/fuzz_check/mod.rs`, shared with that
//! crate's `tests/fuzz_regressions.rs`, which replays the committed corpus in `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../llama-model/tests/fuzz_check/mod.rs"]
#[allow(dead_code)]
mod fuzz_check;

fuzz_target!(|data: &[u8]| {
    fuzz_check::peft_config(data);
});
