//! What a demo run produces, as plain data: the input of the report, the plots and
//! metrics.json.
//!
//! Everything here is deterministic for a given seed; wall-clock timings and memory live in
//! [`RunStats`], which goes to report.md only.

use serde::Serialize;

use super::config::RunConfig;
pub use crate::reporting::{Estimate, Num};

/// One point of a loss curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossPoint {
    /// Optimizer step (1-based).
    pub step: usize,
    /// Mean loss (nats per target token).
    pub loss: Num,
}

/// Training and validation losses of one training stage.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LossCurves {
    /// Training loss per step.
    pub train: Vec<LossPoint>,
    /// Validation loss at evaluation points.
    pub val: Vec<LossPoint>,
}

/// Base vs fine-tuned on one metric of one task, paired over the same test cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// Task name (`letters`, `regimen`, `modality`, `icd10`).
    pub task: String,
    /// Metric name (`rouge1`, `field_accuracy`, `accuracy`, ...).
    pub metric: String,
    /// Number of paired cases.
    pub n: usize,
    /// Base model.
    pub base: Estimate,
    /// Fine-tuned model.
    pub finetuned: Estimate,
    /// Fine-tuned minus base (paired bootstrap interval).
    pub difference: Estimate,
    /// One-sided Wilcoxon signed-rank p-value, alternative "fine-tuned > base"
    /// (NaN when every paired difference is zero).
    pub wilcoxon_p: Num,
}

/// A labelled confusion matrix (rows: truth, columns: prediction).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    /// Which model.
    pub model: String,
    /// Class labels, in row/column order.
    pub labels: Vec<String>,
    /// Counts, `counts[true][pred]`.
    pub counts: Vec<Vec<u64>>,
}

/// Per-class precision, recall and F1 of a classification task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    /// Which model.
    pub model: String,
    /// Class labels.
    pub labels: Vec<String>,
    /// Precision per label.
    pub precision: Vec<Num>,
    /// Recall per label.
    pub recall: Vec<Num>,
    /// F1 per label.
    pub f1: Vec<Num>,
    /// Support per label.
    pub support: Vec<u64>,
    /// Macro-averaged F1.
    pub macro_f1: Num,
}

/// A rate over the answers of one model that a check applies to (not a per-case metric, so
/// not tested for a difference): the regimen answers' dose arithmetic, the ICD-10 answers'
/// code validity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerCheck {
    /// Task name.
    pub task: String,
    /// What is checked (`consistency`, `validity`).
    pub check: String,
    /// `base` or `fine-tuned`.
    pub model: String,
    /// Answers the check applies to.
    pub checked: usize,
    /// Of those, the fraction that pass (null when none was checked).
    pub rate: Option<Num>,
}

/// One test case answered by both models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleOutput {
    /// Task name.
    pub task: String,
    /// Case id.
    pub id: String,
    /// The prompt's input (case description), possibly shortened for the report.
    pub input: String,
    /// Reference answer.
    pub reference: String,
    /// Base model's answer.
    pub base: String,
    /// Fine-tuned model's answer.
    pub finetuned: String,
}

/// Sizes of the generated dataset.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DataSizes {
    /// `(task, train, val, test)` counts.
    pub per_task: Vec<(String, usize, usize, usize)>,
    /// Characters of pre-training text.
    pub pretrain_chars: usize,
    /// Tokens of pre-training text.
    pub pretrain_tokens: usize,
}

/// The model that was fine-tuned.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ModelSummary {
    /// Parameters of the base model.
    pub parameters: usize,
    /// Trainable LoRA parameters.
    pub trainable_parameters: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Attention heads / key-value heads.
    pub heads: (usize, usize),
    /// Bytes of the NF4 base (codes, absmax and double-quantization state).
    pub nf4_bytes: usize,
    /// Bytes of the same weights in f32.
    pub f32_bytes: usize,
}

/// Everything deterministic a run produced: the content of metrics.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoSummary {
    /// Resolved settings.
    pub config: RunConfig,
    /// Dataset sizes.
    pub data: DataSizes,
    /// The model.
    pub model: ModelSummary,
    /// Pre-training losses (empty with a pretrained --model).
    pub pretrain: LossCurves,
    /// Fine-tuning losses.
    pub finetune: LossCurves,
    /// Base vs fine-tuned, per task and metric.
    pub comparisons: Vec<MetricComparison>,
    /// Confusion matrices of the modality task.
    pub confusion: Vec<Confusion>,
    /// Per-class scores of the modality task.
    pub class_scores: Vec<ClassScores>,
    /// Rates of the answer checks, per task and model.
    pub answer_checks: Vec<AnswerCheck>,
    /// Example outputs (three per task).
    pub examples: Vec<ExampleOutput>,
    /// The clinician review packet of some letters (none when no letters were evaluated).
    pub review: Option<super::review::ReviewSummary>,
}

/// Wall-clock time of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTime {
    /// Stage name.
    pub stage: String,
    /// Seconds.
    pub seconds: f64,
    /// One-line summary printed at the end of the stage.
    pub summary: String,
}

/// Machine-dependent facts of a run (report.md only, never metrics.json).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunStats {
    /// Stages in order.
    pub stages: Vec<StageTime>,
    /// Peak resident memory of the process in bytes, if the OS tells.
    pub peak_rss_bytes: Option<u64>,
    /// Training throughput (tokens per second) of pre-training and fine-tuning.
    pub tokens_per_second: Vec<(String, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_become_strings() {
        let v = serde_json::to_string(&[
            Num(1.5),
            Num(f64::NAN),
            Num(f64::INFINITY),
            Num(f64::NEG_INFINITY),
            Num(-0.0),
        ])
        .unwrap();
        assert_eq!(v, r#"[1.5,"NaN","Infinity","-Infinity",-0.0]"#);
    }
}
