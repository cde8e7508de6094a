//! `evaluate icd10`: validate and describe ICD-10 codes with ro-tasks' embedded ICD-10-CM
//! (April 2026) code set.
//!
//! In: `{"input": ".."}` (one code as written, e.g. `" c50,4 L"`); out: `{"valid", "code",
//! "kind", "billable", "description", "qualifiers", "error"}` as [`ro_tasks::CodeLookup`];
//! normalization rules are documented in ro-tasks (`normalize_code`).

use clap::Args;
use ro_tasks::{CodeLookup, CodeSet};
use serde_json::Value;

use super::json::{required_str, run_jsonl, Fields, LineScorer};
use super::{report, IoArgs, Subcommand};

/// Arguments of `evaluate icd10`.
#[derive(Debug, Clone, Args)]
pub struct Icd10Args {
    /// Input and output files.
    #[command(flatten)]
    pub io: IoArgs,
}

/// Scores one line: normalizes and looks up `input`.
pub struct Icd10Scorer;

impl LineScorer for Icd10Scorer {
    fn input_fields(&self) -> &[&'static str] {
        &["input"]
    }

    fn score(&self, line: &Fields) -> Result<Fields, String> {
        let input = required_str(line, "input")?;
        let lookup = CodeLookup::of(input, CodeSet::embedded());
        match serde_json::to_value(lookup) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("internal: lookup is not an object".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Subcommand for Icd10Args {
    fn run(&self) -> anyhow::Result<()> {
        run_jsonl(&self.io, &Icd10Scorer).map(report)
    }
}
