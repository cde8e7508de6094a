//! What the `task_jsonl`, `regimen` and `icd10` fuzz targets (`fuzz/fuzz_targets/`) check on
//! each input; `tests/fuzz_regressions.rs` replays the committed corpus through the same code.

use ro_tasks::{
    extract_code, normalize_code, read_examples_from, read_predictions_from, CodeLookup, CodeSet,
    Modality, Regimen, TaskKind, Technique,
};

/// JSONL bytes -> the example reader of each task and the prediction reader. Returns how
/// many readers accepted the input.
pub fn task_jsonl(data: &[u8]) -> usize {
    let mut accepted = 0;
    for task in TaskKind::ALL {
        if let Ok(examples) = read_examples_from(data, "fuzz.jsonl", task) {
            accepted += 1;
            for e in &examples {
                let _ = e.prompt(task);
            }
        }
    }
    accepted + usize::from(read_predictions_from(data, "fuzz.jsonl").is_ok())
}

/// Free text -> regimen, modality and technique parsers. Returns whether anything was
/// recognised as a regimen.
pub fn regimen(text: &str) -> bool {
    let r = Regimen::parse(text);
    let _ = r.cumulative_dose_gy();
    let _ = r.is_plausible();
    let _ = Modality::parse(text);
    let _ = text.parse::<Modality>();
    let _ = Technique::parse(text);
    !r.is_empty()
}

/// Free text -> ICD-10 normalization, extraction and lookup against the embedded code set,
/// and the text as a code-set TSV. Returns whether the text normalized to a code.
pub fn icd10(text: &str) -> bool {
    let set = CodeSet::embedded();
    let normalized = normalize_code(text, set);
    if let Ok(c) = &normalized {
        assert!(set.get(c.code()).is_some());
        let _ = c.category();
    }
    if let Ok(c) = extract_code(text, set) {
        assert!(set.get(c.code()).is_some());
    }
    let lookup = CodeLookup::of(text, set);
    assert_eq!(lookup.valid, lookup.error.is_none());
    if let Ok(custom) = CodeSet::from_tsv(text) {
        for e in custom.entries().iter().take(4) {
            let _ = normalize_code(&e.code, &custom);
        }
    }
    normalized.is_ok()
}
