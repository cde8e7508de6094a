//! `evaluate task`: score a task's predictions with ro-tasks' scorers and, given a baseline
//! run on the same cases, compare the two (one-sided Wilcoxon, paired bootstrap CI).
//!
//! Predictions are JSON lines `{"id","reference","prediction"}` (ro-tasks
//! `PredictionRecord`). The baseline is paired with the predictions by `id`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use ro_tasks::{
    compare, read_predictions, render_markdown, score_task, PredictionRecord, TaskKind,
};
use serde_json::json;

use super::json::write_atomically;
use super::Subcommand;

/// Arguments of `evaluate task`.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    /// The task: letters, regimen, modality or icd10.
    #[arg(long)]
    pub task: TaskKind,
    /// Predictions to score: JSON lines {"id","reference","prediction"} (the fine-tuned run
    /// when --baseline is given).
    #[arg(long, value_name = "P.jsonl")]
    pub predictions: PathBuf,
    /// Baseline predictions on the same ids (JSON lines, paired by "id"): adds, per metric,
    /// both means, a one-sided Wilcoxon test (predictions greater than baseline) and a
    /// seeded paired bootstrap 95% CI of the mean difference.
    #[arg(long, value_name = "B.jsonl")]
    pub baseline: Option<PathBuf>,
    /// JSON report (written atomically); printed to stdout when neither --output nor
    /// --markdown is given.
    #[arg(long, value_name = "report.json")]
    pub output: Option<PathBuf>,
    /// Markdown report (written atomically).
    #[arg(long, value_name = "report.md")]
    pub markdown: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<Vec<PredictionRecord>> {
    let records = read_predictions(path)
        .with_context(|| format!("cannot read predictions file {}", path.display()))?;
    if records.is_empty() {
        bail!("predictions file {} is empty", path.display());
    }
    let mut seen = HashSet::new();
    for r in &records {
        if !seen.insert(r.id.as_str()) {
            bail!("{}: id {:?} occurs more than once", path.display(), r.id);
        }
    }
    Ok(records)
}

/// Reorders `baseline` to the id order of `predictions`.
///
/// # Errors
/// An id of one file missing from the other, named with both files.
pub fn pair_by_id(
    predictions: &[PredictionRecord],
    predictions_path: &Path,
    baseline: Vec<PredictionRecord>,
    baseline_path: &Path,
) -> anyhow::Result<Vec<PredictionRecord>> {
    let mut by_id: HashMap<String, PredictionRecord> =
        baseline.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut paired = Vec::with_capacity(predictions.len());
    for p in predictions {
        let Some(b) = by_id.remove(&p.id) else {
            bail!(
                "{}: no record with id {:?} (present in {})",
                baseline_path.display(),
                p.id,
                predictions_path.display()
            );
        };
        if b.reference != p.reference {
            log::warn!("id {:?}: the two files have different references", p.id);
        }
        paired.push(b);
    }
    if let Some(extra) = by_id.keys().min() {
        bail!(
            "{}: no record with id {:?} (present in {})",
            predictions_path.display(),
            extra,
            baseline_path.display()
        );
    }
    Ok(paired)
}

/// Runs `evaluate task`.
///
/// # Errors
/// Unreadable or mismatched inputs, unwritable outputs.
pub fn run(args: &TaskArgs) -> anyhow::Result<()> {
    let predictions = read(&args.predictions)?;
    let scores = score_task(args.task, &predictions)
        .with_context(|| format!("scoring {}", args.predictions.display()))?;
    let comparison = match &args.baseline {
        None => None,
        Some(path) => {
            let baseline = pair_by_id(&predictions, &args.predictions, read(path)?, path)?;
            let base_scores = score_task(args.task, &baseline)
                .with_context(|| format!("scoring {}", path.display()))?;
            Some(compare(args.task, &base_scores, &scores)?)
        }
    };
    let report = json!({
        "task": args.task,
        "predictions": args.predictions.display().to_string(),
        "baseline": args.baseline.as_ref().map(|p| p.display().to_string()),
        "scores": scores,
        "comparison": comparison,
    });
    let text = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(path) = &args.output {
        write_atomically(path, text.as_bytes())?;
    }
    if let Some(path) = &args.markdown {
        write_atomically(
            path,
            render_markdown(&scores, comparison.as_ref()).as_bytes(),
        )?;
    }
    if args.output.is_none() && args.markdown.is_none() {
        print!("{text}");
    }
    Ok(())
}

impl Subcommand for TaskArgs {
    fn run(&self) -> anyhow::Result<()> {
        run(self)
    }
}
