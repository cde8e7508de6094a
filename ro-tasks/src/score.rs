//! Task scorers: per-case scores and corpus metrics for each [`TaskKind`], and the paired
//! comparison of a fine-tuned run against a baseline (one-sided Wilcoxon, bootstrap CI).
//!
//! Every metric is kept per case (one number per prediction, in input order, never dropped)
//! so that two runs on the same cases can be compared pairwise.

use std::fmt::Write as _;

use ro_metrics::{
    accuracy, confusion_matrix, paired_bootstrap_mean_difference, precision_recall_fscore_support,
    wilcoxon, Alternative, Average, BootstrapOptions, PrfOptions, PrfScores, RougeScorer,
    WilcoxonOptions,
};
use serde::{Deserialize, Serialize};

use crate::{
    extract_code, CodeSet, Consistency, Error, Modality, PredictionRecord, Regimen, Result,
    TaskKind,
};

/// Label of a modality answer that names none of the four classes.
pub const UNKNOWN_MODALITY: &str = "unknown";

/// One metric over all cases: its per-case values and their mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricCases {
    /// Metric name (`"rouge1"`, `"field_accuracy"`, `"exact_match"`, ...).
    pub name: String,
    /// One value per case, in input order.
    #[serde(with = "crate::json_float")]
    pub values: Vec<f64>,
    /// Arithmetic mean of `values`.
    #[serde(with = "crate::json_float")]
    pub mean: f64,
}

impl MetricCases {
    fn new(name: &str, values: Vec<f64>) -> Self {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        Self {
            name: name.to_owned(),
            values,
            mean,
        }
    }
}

/// Corpus classification metrics of the modality task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityMetrics {
    /// Fraction of cases whose parsed prediction equals the parsed reference.
    #[serde(with = "crate::json_float")]
    pub accuracy: f64,
    /// Macro precision over the four classes (scikit-learn, `labels` = the four classes,
    /// `zero_division = "warn"`, i.e. 0 for undefined ratios).
    #[serde(with = "crate::json_float")]
    pub macro_precision: f64,
    /// Macro recall over the four classes.
    #[serde(with = "crate::json_float")]
    pub macro_recall: f64,
    /// Macro F1 over the four classes.
    #[serde(with = "crate::json_float")]
    pub macro_f1: f64,
    /// Micro-averaged precision over the four classes (an `"unknown"` answer is a false
    /// negative of its reference class and nobody's false positive).
    #[serde(with = "crate::json_float")]
    pub micro_precision: f64,
    /// Micro-averaged recall over the four classes.
    #[serde(with = "crate::json_float")]
    pub micro_recall: f64,
    /// Micro-averaged F1 over the four classes.
    #[serde(with = "crate::json_float")]
    pub micro_f1: f64,
    /// Support-weighted precision over the four classes.
    #[serde(with = "crate::json_float")]
    pub weighted_precision: f64,
    /// Support-weighted recall over the four classes.
    #[serde(with = "crate::json_float")]
    pub weighted_recall: f64,
    /// Support-weighted F1 over the four classes.
    #[serde(with = "crate::json_float")]
    pub weighted_f1: f64,
    /// Precision, recall, F1 and support of each of the four classes, in
    /// [`Modality::ALL`] order.
    pub per_class: Vec<ClassScores>,
    /// Row and column labels of `confusion`: the four classes, then `"unknown"`.
    pub labels: Vec<String>,
    /// Confusion matrix, rows = reference, columns = prediction.
    #[serde(with = "crate::json_float")]
    pub confusion: Vec<Vec<f64>>,
}

/// Precision, recall, F1 and support of one class (scikit-learn, `zero_division = "warn"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// The class.
    pub label: String,
    /// Precision.
    #[serde(with = "crate::json_float")]
    pub precision: f64,
    /// Recall.
    #[serde(with = "crate::json_float")]
    pub recall: f64,
    /// F1.
    #[serde(with = "crate::json_float")]
    pub f1: f64,
    /// Number of reference cases of the class.
    #[serde(with = "crate::json_float")]
    pub support: f64,
}

/// The scores of one run of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// The task.
    pub task: TaskKind,
    /// Case ids, in input order.
    pub ids: Vec<String>,
    /// Per-case metrics (the ones [`compare`] tests).
    pub metrics: Vec<MetricCases>,
    /// Modality task only: accuracy, macro P/R/F1 and confusion matrix.
    pub modality: Option<ModalityMetrics>,
    /// ICD-10 task only: fraction of predictions holding a valid code of the set.
    #[serde(with = "crate::json_float")]
    pub validity_rate: Option<f64>,
    /// Regimen task only: of the predictions that state total dose, fractions and dose per
    /// fraction ([`consistency_checked`](Self::consistency_checked) of them), the fraction
    /// where the three agree (see [`Consistency`]); `None` when no prediction states all
    /// three. Not a per-case metric: an answer without a dose has nothing to be consistent
    /// about, and counting it as consistent would reward empty answers.
    #[serde(with = "crate::json_float")]
    pub consistency_rate: Option<f64>,
    /// Regimen task only: how many predictions state all three numbers.
    #[serde(default)]
    pub consistency_checked: Option<usize>,
}

impl TaskScores {
    /// The per-case metric called `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricCases> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Scores `records` for `task`.
///
/// - letters: ROUGE-1/2/L/Lsum F-measure (rouge-score semantics), stemmed (`rouge1`, ...)
///   and unstemmed (`rouge1_nostem`, ...);
/// - regimen: ROUGE-1 F-measure, field accuracy (total dose, fractions, dose per fraction,
///   technique: each correct when equal to the reference's parsed field, per case the
///   fraction correct), plus the dose-arithmetic consistency rate;
/// - modality: 1/0 correct (unparseable answers are `"unknown"`, i.e. wrong), plus
///   [`ModalityMetrics`];
/// - icd10: exact match (normalized codes equal) and category match (first 3 characters),
///   plus the validity rate. Codes are taken from free text with [`extract_code`].
///
/// # Errors
/// [`Error::Pairing`] when `records` is empty, [`Error::Metric`] when a metric refuses input.
///
/// ```
/// use ro_tasks::{score_task, PredictionRecord, TaskKind};
/// let rec = |id: &str, r: &str, p: &str| PredictionRecord {
///     id: id.into(), reference: r.into(), prediction: p.into() };
/// let s = score_task(TaskKind::Icd10, &[rec("a", "C61", "Code: C61"), rec("b", "C34.1", "C34.2")])?;
/// assert_eq!(s.metric("exact_match").unwrap().mean, 0.5);
/// assert_eq!(s.metric("category_match").unwrap().mean, 1.0);
/// # Ok::<(), ro_tasks::Error>(())
/// ```
pub fn score_task(task: TaskKind, records: &[PredictionRecord]) -> Result<TaskScores> {
    if records.is_empty() {
        return Err(Error::Pairing(format!("no {task} predictions to score")));
    }
    let ids = records.iter().map(|r| r.id.clone()).collect();
    let mut scores = TaskScores {
        task,
        ids,
        metrics: Vec::new(),
        modality: None,
        validity_rate: None,
        consistency_rate: None,
        consistency_checked: None,
    };
    match task {
        TaskKind::Letters => {
            let names = ["rouge1", "rouge2", "rougeL", "rougeLsum"];
            for (stem, suffix) in [(true, ""), (false, "_nostem")] {
                let per_case = rouge_fmeasures(records, &names, stem)?;
                scores.metrics.extend(
                    names
                        .iter()
                        .zip(per_case)
                        .map(|(n, v)| MetricCases::new(&format!("{n}{suffix}"), v)),
                );
            }
        }
        TaskKind::Regimen => {
            let mut rouge = rouge_fmeasures(records, &["rouge1"], true)?;
            let rouge1 = rouge.pop().unwrap_or_default();
            let mut fields = Vec::with_capacity(records.len());
            let (mut checked, mut consistent) = (0usize, 0usize);
            for r in records {
                let reference = Regimen::parse(&r.reference);
                let predicted = Regimen::parse(&r.prediction);
                fields.push(field_accuracy(&reference, &predicted));
                match predicted.consistency {
                    Consistency::Consistent => {
                        (checked, consistent) = (checked + 1, consistent + 1)
                    }
                    Consistency::Inconsistent { .. } => checked += 1,
                    Consistency::NotCheckable => {}
                }
            }
            scores.consistency_checked = Some(checked);
            scores.consistency_rate = (checked > 0).then(|| consistent as f64 / checked as f64);
            scores.metrics = vec![
                MetricCases::new("rouge1", rouge1),
                MetricCases::new("field_accuracy", fields),
            ];
        }
        TaskKind::Modality => {
            let label = |t: &str| Modality::parse(t).map_or(UNKNOWN_MODALITY, Modality::as_str);
            let y_true: Vec<&str> = records.iter().map(|r| label(&r.reference)).collect();
            let y_pred: Vec<&str> = records.iter().map(|r| label(&r.prediction)).collect();
            let correct = y_true
                .iter()
                .zip(&y_pred)
                .map(|(t, p)| f64::from(u8::from(t == p)))
                .collect();
            scores.metrics = vec![MetricCases::new("correct", correct)];
            scores.modality = Some(modality_metrics(&y_true, &y_pred)?);
        }
        TaskKind::Icd10 => {
            let set = CodeSet::embedded();
            let mut exact = Vec::with_capacity(records.len());
            let mut category = Vec::with_capacity(records.len());
            let mut valid = 0usize;
            for r in records {
                let reference = extract_code(&r.reference, set).ok();
                let predicted = extract_code(&r.prediction, set).ok();
                valid += usize::from(predicted.is_some());
                let (e, c) = match (reference, predicted) {
                    (Some(a), Some(b)) => (
                        a.code() == b.code(),
                        a.category().is_some() && a.category() == b.category(),
                    ),
                    _ => (false, false),
                };
                exact.push(f64::from(u8::from(e)));
                category.push(f64::from(u8::from(c)));
            }
            scores.validity_rate = Some(valid as f64 / records.len() as f64);
            scores.metrics = vec![
                MetricCases::new("exact_match", exact),
                MetricCases::new("category_match", category),
            ];
        }
    }
    Ok(scores)
}

fn metric_err(e: impl std::fmt::Display) -> Error {
    Error::Metric(e.to_string())
}

/// Per-case F-measures for each named ROUGE type, with or without Porter stemming.
fn rouge_fmeasures(
    records: &[PredictionRecord],
    names: &[&str],
    stem: bool,
) -> Result<Vec<Vec<f64>>> {
    let scorer = RougeScorer::from_names(names.iter().copied(), stem).map_err(metric_err)?;
    let pairs: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.reference.as_str(), r.prediction.as_str()))
        .collect();
    let batch = scorer.score_batch(&pairs);
    Ok(scorer
        .rouge_types()
        .iter()
        .map(|&t| {
            batch
                .iter()
                .map(|s| s.get(t).map_or(0.0, |x| x.fmeasure))
                .collect()
        })
        .collect())
}

/// Fraction of the four regimen fields the prediction gets equal to the reference.
fn field_accuracy(reference: &Regimen, predicted: &Regimen) -> f64 {
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        (None, None) => true,
        _ => false,
    };
    let (r, p) = (&reference.course, &predicted.course);
    let hits = [
        same(r.total_dose_gy, p.total_dose_gy),
        r.fractions == p.fractions,
        same(r.dose_per_fraction_gy, p.dose_per_fraction_gy),
        reference.technique == predicted.technique,
    ];
    hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64
}

fn modality_metrics(y_true: &[&str], y_pred: &[&str]) -> Result<ModalityMetrics> {
    let classes: Vec<&str> = Modality::ALL.iter().map(|m| m.as_str()).collect();
    let acc = accuracy(y_true, y_pred, None).map_err(metric_err)?;
    let prf = |average: Option<Average>| {
        let options = PrfOptions {
            labels: Some(classes.clone()),
            average,
            ..PrfOptions::default()
        };
        precision_recall_fscore_support(y_true, y_pred, &options)
            .map(|r| r.scores)
            .map_err(metric_err)
    };
    let averaged = |average: Average| match prf(Some(average))? {
        PrfScores::Averaged {
            precision,
            recall,
            fscore,
        } => Ok((precision, recall, fscore)),
        PrfScores::PerLabel { .. } => Err(Error::Metric(format!(
            "{average:?} average returned per-label scores"
        ))),
    };
    let (macro_precision, macro_recall, macro_f1) = averaged(Average::Macro)?;
    let (micro_precision, micro_recall, micro_f1) = averaged(Average::Micro)?;
    let (weighted_precision, weighted_recall, weighted_f1) = averaged(Average::Weighted)?;
    let per_class = match prf(None)? {
        PrfScores::PerLabel {
            precision,
            recall,
            fscore,
            support,
        } => classes
            .iter()
            .enumerate()
            .map(|(i, l)| ClassScores {
                label: (*l).to_owned(),
                precision: precision[i],
                recall: recall[i],
                f1: fscore[i],
                support: support[i],
            })
            .collect(),
        PrfScores::Averaged { .. } => {
            return Err(Error::Metric("per-label scores came back averaged".into()))
        }
    };
    let mut labels = classes;
    labels.push(UNKNOWN_MODALITY);
    let cm = confusion_matrix(y_true, y_pred, Some(&labels), None).map_err(metric_err)?;
    Ok(ModalityMetrics {
        accuracy: acc,
        macro_precision,
        macro_recall,
        macro_f1,
        micro_precision,
        micro_recall,
        micro_f1,
        weighted_precision,
        weighted_recall,
        weighted_f1,
        per_class,
        labels: labels.iter().map(|s| (*s).to_owned()).collect(),
        confusion: cm.rows(),
    })
}

/// The one-sided Wilcoxon signed-rank test of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WilcoxonSummary {
    /// scipy's statistic (W+ of finetuned − baseline).
    #[serde(with = "crate::json_float")]
    pub statistic: f64,
    /// p-value for "fine-tuned is greater".
    #[serde(with = "crate::json_float")]
    pub pvalue: f64,
}

/// The bootstrap interval of the mean difference (fine-tuned − baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DifferenceInterval {
    /// Mean difference on the original sample.
    #[serde(with = "crate::json_float")]
    pub estimate: f64,
    /// Lower end.
    #[serde(with = "crate::json_float")]
    pub lower: f64,
    /// Upper end.
    #[serde(with = "crate::json_float")]
    pub upper: f64,
    /// Confidence level (0.95).
    #[serde(with = "crate::json_float")]
    pub confidence_level: f64,
    /// Number of resamples.
    pub n_resamples: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

/// Baseline vs fine-tuned on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// Metric name.
    pub metric: String,
    /// Number of paired cases.
    pub n: usize,
    /// Mean of the baseline.
    #[serde(with = "crate::json_float")]
    pub baseline_mean: f64,
    /// Mean of the fine-tuned run.
    #[serde(with = "crate::json_float")]
    pub finetuned_mean: f64,
    /// One-sided Wilcoxon test (x = fine-tuned, y = baseline, alternative greater, scipy
    /// defaults); `None` when the test cannot be computed (see `wilcoxon_note`). All-zero
    /// differences give scipy's statistic 0, p-value 1.
    pub wilcoxon: Option<WilcoxonSummary>,
    /// Why `wilcoxon` is absent.
    pub wilcoxon_note: Option<String>,
    /// Paired bootstrap 95 % interval of the mean difference; `None` when not computable.
    pub bootstrap: Option<DifferenceInterval>,
}

/// A paired comparison of two runs of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The task.
    pub task: TaskKind,
    /// One entry per per-case metric, in the task's metric order.
    pub metrics: Vec<MetricComparison>,
}

/// Seed of the bootstrap in [`compare`].
pub const BOOTSTRAP_SEED: u64 = 0;

/// Compares per-case scores of a fine-tuned run with a baseline on the same cases.
///
/// # Errors
/// [`Error::Pairing`] when the two runs are of different tasks or do not hold the same case
/// ids in the same order.
///
/// ```
/// use ro_tasks::{compare, score_task, PredictionRecord, TaskKind};
/// let rec = |id: &str, p: &str| PredictionRecord {
///     id: id.into(), reference: "photon".into(), prediction: p.into() };
/// let base = score_task(TaskKind::Modality, &[rec("a", "proton"), rec("b", "photon")])?;
/// let tuned = score_task(TaskKind::Modality, &[rec("a", "photon"), rec("b", "photon")])?;
/// let c = compare(TaskKind::Modality, &base, &tuned)?;
/// assert_eq!((c.metrics[0].baseline_mean, c.metrics[0].finetuned_mean), (0.5, 1.0));
/// # Ok::<(), ro_tasks::Error>(())
/// ```
pub fn compare(
    task: TaskKind,
    baseline: &TaskScores,
    finetuned: &TaskScores,
) -> Result<Comparison> {
    for (name, s) in [("baseline", baseline), ("fine-tuned", finetuned)] {
        if s.task != task {
            return Err(Error::Pairing(format!(
                "{name} scores are for task {}, expected {task}",
                s.task
            )));
        }
    }
    if baseline.ids.len() != finetuned.ids.len() {
        return Err(Error::Pairing(format!(
            "baseline has {} cases, fine-tuned has {}",
            baseline.ids.len(),
            finetuned.ids.len()
        )));
    }
    if let Some((i, (a, b))) = baseline
        .ids
        .iter()
        .zip(&finetuned.ids)
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        return Err(Error::Pairing(format!(
            "case {}: baseline id {a:?} but fine-tuned id {b:?}",
            i + 1
        )));
    }
    let w_opts = WilcoxonOptions {
        alternative: Alternative::Greater,
        ..WilcoxonOptions::default()
    };
    let b_opts = BootstrapOptions {
        seed: BOOTSTRAP_SEED,
        ..BootstrapOptions::default()
    };
    let mut metrics = Vec::new();
    for f in &finetuned.metrics {
        let Some(b) = baseline.metric(&f.name) else {
            continue;
        };
        let (wilcoxon, wilcoxon_note) = match wilcoxon(&f.values, Some(&b.values), &w_opts) {
            Ok(r) => (
                Some(WilcoxonSummary {
                    statistic: r.statistic,
                    pvalue: r.pvalue,
                }),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let bootstrap = paired_bootstrap_mean_difference(&f.values, &b.values, &b_opts)
            .ok()
            .map(|ci| DifferenceInterval {
                estimate: ci.estimate,
                lower: ci.lower,
                upper: ci.upper,
                confidence_level: ci.confidence_level,
                n_resamples: b_opts.n_resamples,
                seed: b_opts.seed,
            });
        metrics.push(MetricComparison {
            metric: f.name.clone(),
            n: f.values.len(),
            baseline_mean: b.mean,
            finetuned_mean: f.mean,
            wilcoxon,
            wilcoxon_note,
            bootstrap,
        });
    }
    Ok(Comparison { task, metrics })
}

fn num(x: f64) -> String {
    format!("{x:.4}")
}

/// Renders scores (and, when given, a comparison) as a Markdown report.
///
/// ```
/// use ro_tasks::{render_markdown, score_task, PredictionRecord, TaskKind};
/// let r = PredictionRecord { id: "a".into(), reference: "C61".into(), prediction: "C61".into() };
/// let md = render_markdown(&score_task(TaskKind::Icd10, &[r])?, None);
/// assert!(md.contains("| exact_match | 1.0000 |"));
/// # Ok::<(), ro_tasks::Error>(())
/// ```
pub fn render_markdown(scores: &TaskScores, comparison: Option<&Comparison>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Task `{}` ({} cases)\n", scores.task, scores.ids.len());
    s.push_str("| metric | mean |\n|---|---|\n");
    for m in &scores.metrics {
        let _ = writeln!(s, "| {} | {} |", m.name, num(m.mean));
    }
    if let Some(v) = scores.validity_rate {
        let _ = writeln!(s, "| validity_rate | {} |", num(v));
    }
    if let Some(n) = scores.consistency_checked {
        let rate = scores
            .consistency_rate
            .map_or_else(|| "n/a".to_string(), num);
        let _ = writeln!(s, "| consistency_rate (of {n} with a full dose) | {rate} |");
    }
    if let Some(m) = &scores.modality {
        for (name, v) in [
            ("accuracy", m.accuracy),
            ("macro_precision", m.macro_precision),
            ("macro_recall", m.macro_recall),
            ("macro_f1", m.macro_f1),
            ("micro_precision", m.micro_precision),
            ("micro_recall", m.micro_recall),
            ("micro_f1", m.micro_f1),
            ("weighted_precision", m.weighted_precision),
            ("weighted_recall", m.weighted_recall),
            ("weighted_f1", m.weighted_f1),
        ] {
            let _ = writeln!(s, "| {name} | {} |", num(v));
        }
        s.push_str("\n## Per class\n\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n");
        for c in &m.per_class {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                c.label,
                num(c.precision),
                num(c.recall),
                num(c.f1),
                c.support
            );
        }
        s.push_str("\n## Confusion matrix (rows: reference, columns: prediction)\n\n| |");
        for l in &m.labels {
            let _ = write!(s, " {l} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(m.labels.len()));
        s.push('\n');
        for (l, row) in m.labels.iter().zip(&m.confusion) {
            let _ = write!(s, "| {l} |");
            for c in row {
                let _ = write!(s, " {c} |");
            }
            s.push('\n');
        }
    }
    if let Some(c) = comparison {
        s.push_str(
            "\n## Fine-tuned vs baseline\n\n| metric | n | baseline | fine-tuned | Δ mean | 95% CI | Wilcoxon W | p (greater) |\n|---|---|---|---|---|---|---|---|\n",
        );
        for m in &c.metrics {
            let delta = m.finetuned_mean - m.baseline_mean;
            let ci = m.bootstrap.map_or_else(
                || "n/a".to_owned(),
                |b| format!("[{}, {}]", num(b.lower), num(b.upper)),
            );
            let (w, p) = m.wilcoxon.map_or_else(
                || ("n/a".to_owned(), "n/a".to_owned()),
                |w| (format!("{}", w.statistic), format!("{:.4e}", w.pvalue)),
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {ci} | {w} | {p} |",
                m.metric,
                m.n,
                num(m.baseline_mean),
                num(m.finetuned_mean),
                num(delta)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, reference: &str, prediction: &str) -> PredictionRecord {
        PredictionRecord {
            id: id.into(),
            reference: reference.into(),
            prediction: prediction.into(),
        }
    }

    #[test]
    fn modality_three_cases_accuracy_two_thirds() {
        let recs = [
            rec("1", "photon", "Photon therapy (VMAT)"),
            rec("2", "proton", "proton"),
            rec("3", "electron", "I cannot tell"),
        ];
        let s = score_task(TaskKind::Modality, &recs).unwrap();
        assert_eq!(s.metric("correct").unwrap().values, [1.0, 1.0, 0.0]);
        let m = s.modality.unwrap();
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-15);
        // Per class (photon, proton, electron, brachy): P = 1,1,0,0; R = 1,1,0,0.
        assert_eq!(m.macro_precision, 0.5);
        assert_eq!(m.macro_recall, 0.5);
        assert_eq!(m.macro_f1, 0.5);
        // Micro: TP 2, FP 0 ("unknown" is nobody's false positive), FN 1.
        assert_eq!(m.micro_precision, 1.0);
        assert!((m.micro_recall - 2.0 / 3.0).abs() < 1e-15);
        assert!((m.micro_f1 - 0.8).abs() < 1e-15);
        // Weighted by support (1, 1, 1, 0): P = R = F = 2/3.
        for v in [m.weighted_precision, m.weighted_recall, m.weighted_f1] {
            assert!((v - 2.0 / 3.0).abs() < 1e-15, "{v}");
        }
        let electron = &m.per_class[2];
        assert_eq!(electron.label, "electron");
        assert_eq!(
            (
                electron.precision,
                electron.recall,
                electron.f1,
                electron.support
            ),
            (0.0, 0.0, 0.0, 1.0)
        );
        assert_eq!(m.per_class[3].support, 0.0);
        assert_eq!(m.labels.last().unwrap(), "unknown");
        // electron row: predicted unknown (column 4).
        assert_eq!(m.confusion[2], [0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(m.confusion[0], [1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn icd10_perfect_set_is_one() {
        let recs = [
            rec("a", "C61", "C61"),
            rec("b", "C34.1", "The code is C34.1."),
        ];
        let s = score_task(TaskKind::Icd10, &recs).unwrap();
        assert_eq!(s.metric("exact_match").unwrap().mean, 1.0);
        assert_eq!(s.metric("category_match").unwrap().mean, 1.0);
        assert_eq!(s.validity_rate, Some(1.0));
    }

    #[test]
    fn icd10_invalid_prediction_counts_as_wrong() {
        let recs = [rec("a", "C61", "no idea"), rec("b", "C34.1", "C34.9")];
        let s = score_task(TaskKind::Icd10, &recs).unwrap();
        assert_eq!(s.metric("exact_match").unwrap().values, [0.0, 0.0]);
        assert_eq!(s.metric("category_match").unwrap().values, [0.0, 1.0]);
        assert_eq!(s.validity_rate, Some(0.5));
    }

    #[test]
    fn identical_letters_score_one() {
        let t = "Dear colleague,\nwe treated your patient with 60 Gy.\nKind regards";
        let s = score_task(
            TaskKind::Letters,
            &[rec("a", t, t), rec("b", "one two", "one two")],
        )
        .unwrap();
        let names: Vec<&str> = s.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rouge1",
                "rouge2",
                "rougeL",
                "rougeLsum",
                "rouge1_nostem",
                "rouge2_nostem",
                "rougeL_nostem",
                "rougeLsum_nostem"
            ]
        );
        for m in &s.metrics {
            assert_eq!(m.mean, 1.0, "{}", m.name);
        }
    }

    #[test]
    fn letters_partial_overlap_hand_computed() {
        // ref "the cat sat", cand "the cat": R1 P=1, R=2/3, F=0.8; R2 P=1, R=1/2, F=2/3.
        let s = score_task(TaskKind::Letters, &[rec("a", "the cat sat", "the cat")]).unwrap();
        assert!((s.metric("rouge1").unwrap().mean - 0.8).abs() < 1e-12);
        assert!((s.metric("rouge2").unwrap().mean - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.metric("rougeL").unwrap().mean - 0.8).abs() < 1e-12);
    }

    #[test]
    fn letters_stemmed_and_unstemmed_differ_on_inflections() {
        // "treated" and "treating" both stem to "treat"; unstemmed they differ.
        let s = score_task(
            TaskKind::Letters,
            &[rec("a", "patient treated", "patient treating")],
        )
        .unwrap();
        assert_eq!(s.metric("rouge1").unwrap().mean, 1.0);
        assert_eq!(s.metric("rouge1_nostem").unwrap().mean, 0.5);
    }

    #[test]
    fn regimen_field_accuracy() {
        let reference = "60 Gy in 30 fractions of 2 Gy, IMRT";
        let s = score_task(
            TaskKind::Regimen,
            &[
                rec("a", reference, reference),
                rec("b", reference, "66 Gy in 33 fractions of 2 Gy, IMRT"),
            ],
        )
        .unwrap();
        let f = s.metric("field_accuracy").unwrap();
        // Second case: total and fractions wrong, dose per fraction and technique right.
        assert_eq!(f.values, [1.0, 0.5]);
        assert_eq!(s.metric("rouge1").unwrap().values[0], 1.0);
        assert_eq!(s.consistency_rate, Some(1.0));
        assert_eq!(s.consistency_checked, Some(2));
    }

    #[test]
    fn regimen_inconsistent_prediction_lowers_consistency() {
        let reference = "60 Gy in 30 fractions of 2 Gy";
        let s = score_task(
            TaskKind::Regimen,
            &[
                rec("a", reference, "60 Gy in 20 fractions of 2 Gy"),
                rec("b", reference, "60 Gy in 30 fractions of 2 Gy"),
                rec("c", reference, "IMRT"),
                rec("d", reference, ""),
            ],
        )
        .unwrap();
        // Of the two answers that state all three numbers, one adds up; the others do not
        // count either way (an empty answer is not "consistent").
        assert_eq!(s.consistency_checked, Some(2));
        assert_eq!(s.consistency_rate, Some(0.5));
        assert!(s.metric("consistency").is_none());
        let none = score_task(TaskKind::Regimen, &[rec("a", reference, "IMRT")]).unwrap();
        assert_eq!(
            (none.consistency_checked, none.consistency_rate),
            (Some(0), None)
        );
        assert!(render_markdown(&none, None)
            .contains("| consistency_rate (of 0 with a full dose) | n/a |"));
    }

    #[test]
    fn compare_all_zero_differences_is_graceful() {
        let recs = [rec("a", "C61", "C61"), rec("b", "C34.1", "C34.1")];
        let s = score_task(TaskKind::Icd10, &recs).unwrap();
        let c = compare(TaskKind::Icd10, &s, &s).unwrap();
        let w = c.metrics[0].wilcoxon.unwrap();
        assert_eq!((w.statistic, w.pvalue), (0.0, 1.0));
        let b = c.metrics[0].bootstrap.unwrap();
        assert_eq!((b.estimate, b.lower, b.upper), (0.0, 0.0, 0.0));
        assert!(render_markdown(&s, Some(&c)).contains("| exact_match | 2 | 1.0000 | 1.0000 |"));
    }

    #[test]
    fn compare_exact_one_sided_pvalue() {
        // Fine-tuned right on 3 cases the baseline got wrong: d = [1, 1, 1], exact p = 1/8.
        let refs = ["photon", "proton", "electron"];
        let base: Vec<_> = refs.iter().map(|r| rec(r, r, "brachytherapy")).collect();
        let tuned: Vec<_> = refs.iter().map(|r| rec(r, r, r)).collect();
        let b = score_task(TaskKind::Modality, &base).unwrap();
        let t = score_task(TaskKind::Modality, &tuned).unwrap();
        let c = compare(TaskKind::Modality, &b, &t).unwrap();
        let w = c.metrics[0].wilcoxon.unwrap();
        assert_eq!(w.statistic, 6.0);
        assert_eq!(w.pvalue, 0.125);
        assert_eq!(c.metrics[0].bootstrap.unwrap().estimate, 1.0);
    }

    #[test]
    fn compare_rejects_mismatched_ids() {
        let a = score_task(TaskKind::Icd10, &[rec("a", "C61", "C61")]).unwrap();
        let b = score_task(TaskKind::Icd10, &[rec("b", "C61", "C61")]).unwrap();
        let e = compare(TaskKind::Icd10, &a, &b).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("\"b\""), "{e}");
        assert!(compare(TaskKind::Letters, &a, &a).is_err());
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(score_task(TaskKind::Letters, &[]).is_err());
    }
}
