//! Stage 7: a clinician review packet, so that a newcomer sees the whole workflow. A few
//! letters test cases, each with the base model's letter, the fine-tuned model's and the
//! reference letter, blinded in random order ([`crate::review`]):
//!
//! ```text
//! OUT/predictions/letters_base.jsonl, letters_finetuned.jsonl   what `review export` reads
//! OUT/review/key.json                                            the un-blinding key
//! OUT/review/packets/packet-rater-1.html, .csv (and rater-2)     what raters fill in
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use ro_tasks::write_jsonl;
use serde::Serialize;

use super::evaluation::EvalTask;
use crate::review::blind::{BlindInput, BlindOptions, ModelOutputs};
use crate::review::config::ReviewConfig;
use crate::review::export::export;

/// Cases in the demo's packet (fewer when fewer letters were evaluated).
pub const REVIEW_CASES: usize = 5;

/// The demo's raters.
pub const REVIEW_RATERS: [&str; 2] = ["rater-1", "rater-2"];

/// What the review stage wrote (paths relative to the output directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewSummary {
    /// The packet id.
    pub packet: String,
    /// Cases in the packet.
    pub cases: usize,
    /// The blinded candidates' models.
    pub models: Vec<String>,
    /// The key file.
    pub key: String,
    /// The packets, HTML then CSV per rater.
    pub packets: Vec<String>,
}

/// Writes the letters predictions and a review packet of them into `out`.
///
/// # Errors
/// Files that cannot be written.
pub fn write_review(
    out: &Path,
    letters: &EvalTask,
    base: &[String],
    tuned: &[String],
    seed: u64,
) -> Result<ReviewSummary> {
    let mut models = Vec::new();
    for (name, file, answers) in [
        ("base", "letters_base.jsonl", base),
        ("fine-tuned", "letters_finetuned.jsonl", tuned),
    ] {
        let records = letters.records(answers);
        let path = out.join("predictions").join(file);
        std::fs::create_dir_all(out.join("predictions"))
            .with_context(|| format!("creating {}", out.join("predictions").display()))?;
        write_jsonl(&path, &records).with_context(|| format!("writing {}", path.display()))?;
        models.push(ModelOutputs {
            name: name.into(),
            source: path.display().to_string(),
            records,
        });
    }
    let input = BlindInput {
        task: letters.task,
        cases: letters.cases.clone(),
        cases_source: "the evaluated letters cases".into(),
        models,
        with_reference: true,
    };
    let options = BlindOptions {
        n_cases: REVIEW_CASES.min(letters.cases.len()),
        seed,
        raters: REVIEW_RATERS.iter().map(|r| r.to_string()).collect(),
    };
    let dir = out.join("review");
    // The demo rewrites everything in OUT, the key of an earlier run included.
    let (packet, files) = export(&input, &options, &ReviewConfig::default(), &dir, true)?;
    let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).display().to_string();
    Ok(ReviewSummary {
        packet: packet.key.packet.clone(),
        cases: packet.cases.len(),
        models: packet.key.models.clone(),
        key: rel(&files.key),
        packets: files
            .html
            .iter()
            .zip(&files.csv)
            .flat_map(|(h, c)| [rel(h), rel(c)])
            .collect(),
    })
}
