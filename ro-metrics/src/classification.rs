//! Accuracy and precision/recall/F-beta/support with scikit-learn's semantics.
//!
//! [`precision_recall_fscore_support`] reproduces
//! `sklearn.metrics.precision_recall_fscore_support` (scikit-learn 1.9) for single-label
//! (binary or multiclass) targets:
//!
//! - **labels**: the labels to report, in the given order; when absent, the sorted union of
//!   the labels in `y_true` and `y_pred`. A label that only ever appears in the predictions
//!   (an unparseable answer mapped to `"unknown"`, say) counts as a false positive for that
//!   label and a false negative for the true one, exactly as in scikit-learn; it is reported
//!   with support 0 when it is among the labels. Labels given but absent from the data get
//!   zero counts. Samples whose labels are not selected still count as false positives and
//!   false negatives of the selected labels they are confused with.
//! - **average**: `None` gives one value per label; [`Average::Micro`] sums the counts over
//!   the selected labels first (so with a subset of labels it is not the accuracy);
//!   [`Average::Macro`] is the unweighted mean over labels; [`Average::Weighted`] weights
//!   by support, and falls back to the unweighted mean when every support is zero.
//!   Averages skip NaN scores (from `zero_division = NaN`) and are NaN if all are.
//! - **zero_division**: the value of a ratio whose denominator is zero. [`ZeroDivision::Warn`]
//!   gives 0 and records an [`UndefinedMetricWarning`] with scikit-learn's message.
//! - **F-beta** is computed from counts, `(1 + β²)·tp / ((1 + β²)·tp + β²·fn + fp)`, so it is
//!   0 (not undefined) when precision and recall are both 0 but some sample is true or
//!   predicted for the label; β = 0 gives precision and β = ∞ recall.
//! - **sample_weight** weighs each sample; supports become weighted sums.
//!
//! Sums use NumPy's pairwise summation so that results agree with scikit-learn bit for bit.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::MetricsError;
use crate::pairwise_sum::pairwise_sum;

/// How per-label scores are combined into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Average {
    /// Sum true positives, predictions and supports over the labels, then divide.
    Micro,
    /// Unweighted mean of the per-label scores.
    Macro,
    /// Mean of the per-label scores weighted by their support.
    Weighted,
}

impl FromStr for Average {
    type Err = MetricsError;

    /// Parses scikit-learn's names: `"micro"`, `"macro"`, `"weighted"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "micro" => Ok(Self::Micro),
            "macro" => Ok(Self::Macro),
            "weighted" => Ok(Self::Weighted),
            other => Err(MetricsError::InvalidArgument {
                field: "average",
                reason: format!(
                    "{other:?} is not one of \"micro\", \"macro\", \"weighted\" (or none for per-label scores)"
                ),
            }),
        }
    }
}

impl fmt::Display for Average {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Micro => "micro",
            Self::Macro => "macro",
            Self::Weighted => "weighted",
        })
    }
}

/// The value a score takes when its denominator is zero (scikit-learn's `zero_division`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ZeroDivision {
    /// 0, and an [`UndefinedMetricWarning`] in the result (scikit-learn's default).
    #[default]
    Warn,
    /// 0, silently.
    Zero,
    /// 1, silently.
    One,
    /// NaN, silently; averages then skip the label.
    NaN,
}

impl ZeroDivision {
    /// The number that replaces an undefined ratio.
    pub fn value(self) -> f64 {
        match self {
            Self::Warn | Self::Zero => 0.0,
            Self::One => 1.0,
            Self::NaN => f64::NAN,
        }
    }
}

impl FromStr for ZeroDivision {
    type Err = MetricsError;

    /// Parses `"warn"`, `"0"`, `"1"`, `"nan"` (also `"0.0"`, `"1.0"`, `"NaN"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warn" => Ok(Self::Warn),
            "0" | "0.0" => Ok(Self::Zero),
            "1" | "1.0" => Ok(Self::One),
            "nan" | "NaN" => Ok(Self::NaN),
            other => Err(MetricsError::InvalidArgument {
                field: "zero_division",
                reason: format!("{other:?} is not one of \"warn\", 0, 1, \"nan\""),
            }),
        }
    }
}

impl fmt::Display for ZeroDivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warn => "warn",
            Self::Zero => "0",
            Self::One => "1",
            Self::NaN => "nan",
        })
    }
}

/// Which score an [`UndefinedMetricWarning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Score {
    /// Precision: no predicted samples.
    Precision,
    /// Recall: no true samples.
    Recall,
    /// F-score: neither true nor predicted samples.
    FScore,
}

/// A score was undefined (zero denominator) and set to 0 under [`ZeroDivision::Warn`].
///
/// `message` is scikit-learn's `UndefinedMetricWarning` text, word for word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefinedMetricWarning {
    /// The score concerned.
    pub score: Score,
    /// Positions (in the reported labels; `[0]` for micro averages) whose score was undefined.
    pub positions: Vec<usize>,
    /// The warning text scikit-learn prints.
    pub message: String,
}

/// Options of [`precision_recall_fscore_support`]; `Default` is scikit-learn's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PrfOptions<L> {
    /// Labels to report, in this order; `None`: the sorted union of true and predicted labels.
    pub labels: Option<Vec<L>>,
    /// `None` for per-label scores, else how to average them.
    pub average: Option<Average>,
    /// What an undefined ratio becomes.
    pub zero_division: ZeroDivision,
    /// Weight of recall relative to precision (≥ 0; may be `f64::INFINITY`).
    pub beta: f64,
    /// One weight per sample (finite; may be negative as in scikit-learn).
    pub sample_weight: Option<Vec<f64>>,
}

impl<L> Default for PrfOptions<L> {
    fn default() -> Self {
        Self {
            labels: None,
            average: None,
            zero_division: ZeroDivision::Warn,
            beta: 1.0,
            sample_weight: None,
        }
    }
}

/// The scores, per label or averaged.
#[derive(Debug, Clone, PartialEq)]
pub enum PrfScores {
    /// One value per reported label (`average = None`).
    PerLabel {
        /// Precision of each label.
        precision: Vec<f64>,
        /// Recall of each label.
        recall: Vec<f64>,
        /// F-beta score of each label.
        fscore: Vec<f64>,
        /// Number (or weighted sum) of true samples of each label.
        support: Vec<f64>,
    },
    /// One value each (`average` given); scikit-learn returns no support then.
    Averaged {
        /// Averaged precision.
        precision: f64,
        /// Averaged recall.
        recall: f64,
        /// Averaged F-beta score.
        fscore: f64,
    },
}

/// The result of [`precision_recall_fscore_support`].
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionRecallFscore<L> {
    /// The labels the scores are over, in the order of the per-label vectors.
    pub labels: Vec<L>,
    /// The scores.
    pub scores: PrfScores,
    /// Scores that were undefined and set to 0 (only under [`ZeroDivision::Warn`]).
    pub warnings: Vec<UndefinedMetricWarning>,
}

/// Checks that `y_true` and `y_pred` are non-empty and paired, and the weights valid.
pub(crate) fn check_targets<L>(
    y_true: &[L],
    y_pred: &[L],
    sample_weight: Option<&[f64]>,
) -> Result<(), MetricsError> {
    if y_true.len() != y_pred.len() {
        return Err(MetricsError::LengthMismatch {
            first: "y_true",
            first_len: y_true.len(),
            second: "y_pred",
            second_len: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(MetricsError::Empty { field: "y_true" });
    }
    if let Some(w) = sample_weight {
        if w.len() != y_true.len() {
            return Err(MetricsError::LengthMismatch {
                first: "sample_weight",
                first_len: w.len(),
                second: "y_true",
                second_len: y_true.len(),
            });
        }
        if let Some((index, &value)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                field: "sample_weight",
                index,
                value,
            });
        }
        if w.iter().all(|&v| v == 0.0) {
            return Err(MetricsError::InvalidArgument {
                field: "sample_weight",
                reason: "must contain at least one non-zero number".into(),
            });
        }
    }
    Ok(())
}

/// The sorted union of the labels in `y_true` and `y_pred` (scikit-learn's `unique_labels`).
///
/// ```
/// assert_eq!(ro_metrics::unique_labels(&["b", "a"], &["c", "a"]), vec!["a", "b", "c"]);
/// ```
pub fn unique_labels<L: Ord + Clone>(y_true: &[L], y_pred: &[L]) -> Vec<L> {
    let mut all: Vec<L> = y_true.iter().chain(y_pred).cloned().collect();
    all.sort();
    all.dedup();
    all
}

/// Fraction (or weighted fraction) of samples whose prediction equals the truth.
///
/// Same as `sklearn.metrics.accuracy_score(y_true, y_pred, sample_weight=...)`.
///
/// # Errors
/// Empty or unpaired inputs, non-finite weights, or weights summing to zero.
///
/// ```
/// let acc = ro_metrics::accuracy(&[1, 2, 3, 4], &[1, 2, 0, 4], None)?;
/// assert_eq!(acc, 0.75);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn accuracy<L: PartialEq>(
    y_true: &[L],
    y_pred: &[L],
    sample_weight: Option<&[f64]>,
) -> Result<f64, MetricsError> {
    check_targets(y_true, y_pred, sample_weight)?;
    let correct = y_true.iter().zip(y_pred).map(|(t, p)| t == p);
    match sample_weight {
        None => {
            let hits = correct.filter(|&c| c).count();
            Ok(hits as f64 / y_true.len() as f64)
        }
        Some(w) => {
            // numpy.average: sum(a * w) / sum(w), both summed pairwise.
            let scale = pairwise_sum(w);
            if scale == 0.0 {
                return Err(MetricsError::ZeroWeights {
                    field: "sample_weight",
                });
            }
            let products: Vec<f64> = correct
                .zip(w)
                .map(|(c, &wi)| if c { wi } else { 0.0 })
                .collect();
            Ok(pairwise_sum(&products) / scale)
        }
    }
}

/// Per-label true-positive, predicted and true sums over the selected labels.
struct LabelCounts {
    tp: Vec<f64>,
    pred: Vec<f64>,
    truth: Vec<f64>,
}

fn count_labels<L: Ord>(
    y_true: &[L],
    y_pred: &[L],
    selected: &[L],
    sample_weight: Option<&[f64]>,
) -> LabelCounts {
    // Index every selected label; samples with other labels contribute to nothing selected.
    let mut index: BTreeMap<&L, usize> = BTreeMap::new();
    for (i, l) in selected.iter().enumerate() {
        // With duplicates in `labels`, scikit-learn reports the same counts for each copy.
        index.entry(l).or_insert(i);
    }
    let n = selected.len();
    let mut tp = vec![0.0; n];
    let mut pred = vec![0.0; n];
    let mut truth = vec![0.0; n];
    // np.bincount accumulates weights in sample order; do the same.
    for (k, (t, p)) in y_true.iter().zip(y_pred).enumerate() {
        let w = sample_weight.map_or(1.0, |w| w[k]);
        let ti = index.get(t).copied();
        let pi = index.get(p).copied();
        if let Some(i) = ti {
            truth[i] += w;
            if t == p {
                tp[i] += w;
            }
        }
        if let Some(i) = pi {
            pred[i] += w;
        }
    }
    // Copy counts to duplicate labels.
    for (i, l) in selected.iter().enumerate() {
        if let Some(&first) = index.get(l) {
            if first != i {
                tp[i] = tp[first];
                pred[i] = pred[first];
                truth[i] = truth[first];
            }
        }
    }
    LabelCounts { tp, pred, truth }
}

/// sklearn's `_prf_divide`: element-wise ratio, undefined entries replaced.
fn prf_divide(
    numerator: &[f64],
    denominator: &[f64],
    score: Score,
    average: Option<Average>,
    zero_division: ZeroDivision,
    warnings: &mut Vec<UndefinedMetricWarning>,
) -> Vec<f64> {
    let mut positions = Vec::new();
    let result = numerator
        .iter()
        .zip(denominator)
        .enumerate()
        .map(|(i, (&num, &den))| {
            if den == 0.0 {
                positions.push(i);
                zero_division.value()
            } else {
                num / den
            }
        })
        .collect::<Vec<_>>();
    if !positions.is_empty() && zero_division == ZeroDivision::Warn {
        warnings.push(undefined_warning(score, positions, result.len(), average));
    }
    result
}

/// sklearn's `_warn_prf` message.
fn undefined_warning(
    score: Score,
    positions: Vec<usize>,
    result_size: usize,
    _average: Option<Average>,
) -> UndefinedMetricWarning {
    let (start, modifier) = match score {
        Score::Precision => ("Precision is", "predicted"),
        Score::Recall => ("Recall is", "true"),
        Score::FScore => ("F-score is", "true nor predicted"),
    };
    let place = if result_size == 1 {
        "due to".to_string()
    } else {
        "in labels with".to_string()
    };
    UndefinedMetricWarning {
        score,
        positions,
        message: format!(
            "{start} ill-defined and being set to 0.0 {place} no {modifier} samples. \
             Use `zero_division` parameter to control this behavior."
        ),
    }
}

/// sklearn's `_nanaverage`: mean (weighted or not) skipping NaN entries.
pub(crate) fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    if values.is_empty() || values.iter().all(|v| v.is_nan()) {
        return f64::NAN;
    }
    match weights {
        None => {
            // numpy.nanmean: NaNs replaced by 0 in place, pairwise sum, divide by the count.
            let zeroed: Vec<f64> = values
                .iter()
                .map(|&v| if v.is_nan() { 0.0 } else { v })
                .collect();
            let count = values.iter().filter(|v| !v.is_nan()).count();
            pairwise_sum(&zeroed) / count as f64
        }
        Some(w) => {
            let (kept, kept_w): (Vec<f64>, Vec<f64>) = values
                .iter()
                .zip(w)
                .filter(|(v, _)| !v.is_nan())
                .map(|(&v, &wi)| (v, wi))
                .unzip();
            let scale = pairwise_sum(&kept_w);
            if scale == 0.0 {
                // numpy.average raises ZeroDivisionError; sklearn then ignores the weights.
                pairwise_sum(&kept) / kept.len() as f64
            } else {
                let products: Vec<f64> = kept.iter().zip(&kept_w).map(|(a, b)| a * b).collect();
                pairwise_sum(&products) / scale
            }
        }
    }
}

/// Precision, recall, F-beta and support, as `sklearn.metrics.precision_recall_fscore_support`.
///
/// See the [module documentation](self) for the exact semantics of each option.
///
/// # Errors
/// Empty or unpaired inputs, a `sample_weight` of the wrong length or with non-finite values,
/// or a negative or NaN `beta`.
///
/// ```
/// use ro_metrics::{precision_recall_fscore_support, Average, PrfOptions, PrfScores};
///
/// let y_true = ["photon", "proton", "photon", "electron"];
/// let y_pred = ["photon", "photon", "photon", "unknown"];
/// let opts = PrfOptions { average: Some(Average::Macro), ..PrfOptions::default() };
/// let r = precision_recall_fscore_support(&y_true, &y_pred, &opts)?;
/// assert_eq!(r.labels, ["electron", "photon", "proton", "unknown"]);
/// let PrfScores::Averaged { precision, recall, .. } = r.scores else { unreachable!() };
/// assert!((precision - (2.0 / 3.0) / 4.0).abs() < 1e-15);
/// assert_eq!(recall, 0.25);
/// assert_eq!(r.warnings.len(), 2); // precision and recall ill-defined for some labels
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn precision_recall_fscore_support<L: Ord + Clone>(
    y_true: &[L],
    y_pred: &[L],
    options: &PrfOptions<L>,
) -> Result<PrecisionRecallFscore<L>, MetricsError> {
    let weights = options.sample_weight.as_deref();
    check_targets(y_true, y_pred, weights)?;
    let beta = options.beta;
    if beta.is_nan() || beta < 0.0 {
        return Err(MetricsError::InvalidArgument {
            field: "beta",
            reason: format!("must be a number >= 0, got {beta}"),
        });
    }
    let labels = match &options.labels {
        Some(l) => l.clone(),
        None => unique_labels(y_true, y_pred),
    };
    let LabelCounts {
        mut tp,
        mut pred,
        mut truth,
    } = count_labels(y_true, y_pred, &labels, weights);
    let average = options.average;
    if average == Some(Average::Micro) {
        tp = vec![pairwise_sum(&tp)];
        pred = vec![pairwise_sum(&pred)];
        truth = vec![pairwise_sum(&truth)];
    }
    let zd = options.zero_division;
    let mut warnings = Vec::new();
    let precision = prf_divide(&tp, &pred, Score::Precision, average, zd, &mut warnings);
    let recall = prf_divide(&tp, &truth, Score::Recall, average, zd, &mut warnings);
    let fscore = if beta == f64::INFINITY {
        recall.clone()
    } else if beta == 0.0 {
        precision.clone()
    } else {
        let beta2 = beta * beta;
        let num: Vec<f64> = tp.iter().map(|&t| (1.0 + beta2) * t).collect();
        let den: Vec<f64> = truth
            .iter()
            .zip(&pred)
            .map(|(&t, &p)| beta2 * t + p)
            .collect();
        prf_divide(&num, &den, Score::FScore, average, zd, &mut warnings)
    };
    let scores = match average {
        None => PrfScores::PerLabel {
            precision,
            recall,
            fscore,
            support: truth,
        },
        Some(avg) => {
            let w = (avg == Average::Weighted).then_some(truth.as_slice());
            PrfScores::Averaged {
                precision: nan_average(&precision, w),
                recall: nan_average(&recall, w),
                fscore: nan_average(&fscore, w),
            }
        }
    };
    Ok(PrecisionRecallFscore {
        labels,
        scores,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn averaged(r: &PrecisionRecallFscore<&str>) -> (f64, f64, f64) {
        match r.scores {
            PrfScores::Averaged {
                precision,
                recall,
                fscore,
            } => (precision, recall, fscore),
            PrfScores::PerLabel { .. } => panic!("expected averaged scores"),
        }
    }

    #[test]
    fn hand_computed_per_label() {
        let t = ["a", "a", "b", "c"];
        let p = ["a", "b", "b", "b"];
        let r = precision_recall_fscore_support(&t, &p, &PrfOptions::default()).unwrap();
        let PrfScores::PerLabel {
            precision,
            recall,
            fscore,
            support,
        } = r.scores
        else {
            panic!("per label expected")
        };
        assert_eq!(precision, vec![1.0, 1.0 / 3.0, 0.0]);
        assert_eq!(recall, vec![0.5, 1.0, 0.0]);
        assert_eq!(fscore[0], 2.0 / 3.0);
        assert_eq!(fscore[1], 0.5);
        assert_eq!(fscore[2], 0.0);
        assert_eq!(support, vec![2.0, 1.0, 1.0]);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].score, Score::Precision);
        assert_eq!(r.warnings[0].positions, vec![2]);
    }

    #[test]
    fn micro_over_all_labels_is_accuracy() {
        let t = ["a", "a", "b", "c", "c"];
        let p = ["a", "b", "b", "b", "c"];
        let opts = PrfOptions {
            average: Some(Average::Micro),
            ..PrfOptions::default()
        };
        let r = precision_recall_fscore_support(&t, &p, &opts).unwrap();
        let (pr, re, f) = averaged(&r);
        assert_eq!(pr, 0.6);
        assert_eq!(re, 0.6);
        assert_eq!(f, 0.6);
        assert_eq!(accuracy(&t, &p, None).unwrap(), 0.6);
    }

    #[test]
    fn zero_division_values() {
        let t = ["a", "a"];
        let p = ["a", "a"];
        for (zd, expect) in [
            (ZeroDivision::Zero, 0.0),
            (ZeroDivision::One, 1.0),
            (ZeroDivision::Warn, 0.0),
        ] {
            let opts = PrfOptions {
                labels: Some(vec!["a", "z"]),
                zero_division: zd,
                ..PrfOptions::default()
            };
            let r = precision_recall_fscore_support(&t, &p, &opts).unwrap();
            let PrfScores::PerLabel { precision, .. } = r.scores else {
                panic!()
            };
            assert_eq!(precision, vec![1.0, expect]);
            assert_eq!(r.warnings.is_empty(), zd != ZeroDivision::Warn);
        }
        let opts = PrfOptions {
            labels: Some(vec!["a", "z"]),
            zero_division: ZeroDivision::NaN,
            average: Some(Average::Macro),
            ..PrfOptions::default()
        };
        let r = precision_recall_fscore_support(&t, &p, &opts).unwrap();
        // The NaN of "z" is skipped by the average.
        assert_eq!(averaged(&r), (1.0, 1.0, 1.0));
    }

    #[test]
    fn errors() {
        let e = precision_recall_fscore_support::<i32>(&[], &[], &PrfOptions::default());
        assert_eq!(e.unwrap_err(), MetricsError::Empty { field: "y_true" });
        let e = accuracy(&[1, 2], &[1], None).unwrap_err();
        assert!(matches!(e, MetricsError::LengthMismatch { .. }));
        let e = accuracy(&[1, 2], &[1, 2], Some(&[1.0, -1.0])).unwrap_err();
        assert_eq!(
            e,
            MetricsError::ZeroWeights {
                field: "sample_weight"
            }
        );
        let opts = PrfOptions {
            beta: -1.0,
            ..PrfOptions::default()
        };
        assert!(precision_recall_fscore_support(&[1], &[1], &opts).is_err());
        assert!("median".parse::<Average>().is_err());
        assert_eq!("nan".parse::<ZeroDivision>().unwrap(), ZeroDivision::NaN);
    }
}
