//! Cohen's kappa for two raters, as `sklearn.metrics.cohen_kappa_score` (scikit-learn 1.9).
//!
//! `κ = 1 - Σ wᵢⱼ Oᵢⱼ / Σ wᵢⱼ Eᵢⱼ`, where `O` is the confusion matrix of the two raters'
//! labels (rows: `y1`, columns: `y2`), `E` the matrix expected by chance from their marginal
//! totals, and `w` the disagreement weights: 0 on the diagonal and 1 elsewhere (unweighted),
//! `|i - j|` (linear) or `(i - j)²` (quadratic), where `i`, `j` are positions in the label
//! list. The label list is `labels` when given (its order sets the weights; labels that never
//! occur add empty rows and columns, which changes weighted kappa exactly as in scikit-learn;
//! samples with a label outside it are left out), else the sorted union of both raters' labels.
//!
//! Where scikit-learn returns NaN (its `replace_undefined_by` default) so do we: when no
//! sample has both labels in the list, and when the chance disagreement `Σ wᵢⱼ Eᵢⱼ` is zero
//! (for instance when both raters used one and the same label throughout). The sums are
//! NumPy's, in NumPy's order, so results equal scikit-learn's to the last bit or nearly.

use std::fmt;
use std::str::FromStr;

use crate::confusion::confusion_matrix;
use crate::error::MetricsError;
use crate::pairwise_sum::pairwise_sum;

/// How disagreements between two ordered labels are weighted in Cohen's kappa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KappaWeights {
    /// `|i - j|`: the distance between the labels' positions.
    Linear,
    /// `(i - j)²`: the squared distance.
    Quadratic,
}

impl FromStr for KappaWeights {
    type Err = MetricsError;

    /// Parses scikit-learn's names `"linear"` and `"quadratic"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linear" => Ok(Self::Linear),
            "quadratic" => Ok(Self::Quadratic),
            other => Err(MetricsError::InvalidArgument {
                field: "weights",
                reason: format!(
                    "{other:?} is not one of \"linear\", \"quadratic\" (or none for unweighted kappa)"
                ),
            }),
        }
    }
}

impl fmt::Display for KappaWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Linear => "linear",
            Self::Quadratic => "quadratic",
        })
    }
}

/// Options of [`cohen_kappa`]; `Default` is scikit-learn's defaults (unweighted, all labels).
#[derive(Debug, Clone, PartialEq)]
pub struct CohenKappaOptions<L> {
    /// The labels to use, in order; `None`: the sorted union of the labels in `y1` and `y2`.
    pub labels: Option<Vec<L>>,
    /// Disagreement weights; `None` for unweighted kappa.
    pub weights: Option<KappaWeights>,
    /// One weight per sample (finite, not all zero).
    pub sample_weight: Option<Vec<f64>>,
}

impl<L> Default for CohenKappaOptions<L> {
    fn default() -> Self {
        Self {
            labels: None,
            weights: None,
            sample_weight: None,
        }
    }
}

/// Cohen's kappa between two raters' labels, as `sklearn.metrics.cohen_kappa_score`.
///
/// See the [module documentation](self) for the formula, the role of `labels` and when the
/// result is NaN.
///
/// # Errors
/// Empty or unpaired inputs, a `sample_weight` of the wrong length, with non-finite values or
/// all zero, an empty `labels`, or a `labels` none of which occurs in `y1` (scikit-learn raises
/// on all of these).
///
/// ```
/// use ro_metrics::agreement::{cohen_kappa, CohenKappaOptions, KappaWeights};
///
/// let y1 = ["negative", "positive", "negative", "neutral", "positive"];
/// let y2 = ["negative", "positive", "negative", "neutral", "negative"];
/// assert_eq!(cohen_kappa(&y1, &y2, &CohenKappaOptions::default())?, 0.6875);
///
/// // Toxicity grades 0-4 from two clinicians, quadratic weights.
/// let options = CohenKappaOptions {
///     weights: Some(KappaWeights::Quadratic),
///     ..CohenKappaOptions::default()
/// };
/// let kappa = cohen_kappa(&[0, 1, 2, 2, 3, 4], &[0, 1, 1, 2, 4, 4], &options)?;
/// assert!((kappa - 0.9166666666666666).abs() < 1e-15);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn cohen_kappa<L: Ord + Clone>(
    y1: &[L],
    y2: &[L],
    options: &CohenKappaOptions<L>,
) -> Result<f64, MetricsError> {
    let cm = confusion_matrix(
        y1,
        y2,
        options.labels.as_deref(),
        options.sample_weight.as_deref(),
    )
    .map_err(rater_names)?;
    let n = cm.len();
    let rows: Vec<&[f64]> = cm.counts.chunks(n).collect();
    // numpy: sum over axis 0 runs down the columns in row order; over axis 1, pairwise per row.
    let column_totals: Vec<f64> = (0..n)
        .map(|j| rows.iter().fold(0.0, |acc, row| acc + row[j]))
        .collect();
    let row_totals: Vec<f64> = rows.iter().map(|row| pairwise_sum(row)).collect();
    let total = pairwise_sum(&column_totals);
    if total == 0.0 {
        return Ok(f64::NAN);
    }
    let weight = |i: usize, j: usize| -> f64 {
        let distance = (j as f64 - i as f64).abs();
        match options.weights {
            None => f64::from(u8::from(i != j)),
            Some(KappaWeights::Linear) => distance,
            Some(KappaWeights::Quadratic) => distance * distance,
        }
    };
    let cells = || (0..n).flat_map(|i| (0..n).map(move |j| (i, j)));
    let observed: Vec<f64> = cells().map(|(i, j)| weight(i, j) * rows[i][j]).collect();
    // scikit-learn's outer(sum0, sum1): entry (i, j) is column total i times row total j.
    let expected: Vec<f64> = cells()
        .map(|(i, j)| weight(i, j) * (column_totals[i] * row_totals[j] / total))
        .collect();
    let chance = pairwise_sum(&expected);
    if chance == 0.0 {
        return Ok(f64::NAN);
    }
    Ok(1.0 - pairwise_sum(&observed) / chance)
}

/// The confusion matrix's errors speak of `y_true`/`y_pred`; kappa's arguments are `y1`/`y2`.
fn rater_names(e: MetricsError) -> MetricsError {
    let rename = |field: &'static str| match field {
        "y_true" => "y1",
        "y_pred" => "y2",
        other => other,
    };
    match e {
        MetricsError::LengthMismatch {
            first,
            first_len,
            second,
            second_len,
        } => MetricsError::LengthMismatch {
            first: rename(first),
            first_len,
            second: rename(second),
            second_len,
        },
        MetricsError::Empty { field } => MetricsError::Empty {
            field: rename(field),
        },
        MetricsError::InvalidArgument { field, reason } => MetricsError::InvalidArgument {
            field,
            reason: reason.replace("y_true", "`y1`"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kappa(y1: &[i32], y2: &[i32], weights: Option<KappaWeights>) -> f64 {
        let options = CohenKappaOptions {
            weights,
            ..CohenKappaOptions::default()
        };
        cohen_kappa(y1, y2, &options).unwrap()
    }

    #[test]
    fn hand_computed() {
        // O = [[2, 1], [0, 1]], p_o = 3/4, p_e = (2·3 + 2·1)/16 = 1/2, κ = 1/2.
        assert_eq!(kappa(&[0, 0, 0, 1], &[0, 0, 1, 1], None), 0.5);
        assert_eq!(
            kappa(&[0, 1, 2], &[0, 1, 2], Some(KappaWeights::Linear)),
            1.0
        );
        assert_eq!(kappa(&[0, 1, 0, 1], &[1, 0, 1, 0], None), -1.0);
    }

    #[test]
    fn undefined_is_nan() {
        assert!(kappa(&[3, 3, 3], &[3, 3, 3], None).is_nan());
        let options = CohenKappaOptions {
            labels: Some(vec![1, 2]),
            ..CohenKappaOptions::default()
        };
        // y2 never uses a listed label: no sample counts.
        assert!(cohen_kappa(&[1, 2, 2], &[5, 5, 6], &options)
            .unwrap()
            .is_nan());
    }

    #[test]
    fn errors_name_the_raters() {
        let e = cohen_kappa(&[1, 2], &[1], &CohenKappaOptions::default()).unwrap_err();
        assert!(e.to_string().contains("`y1`") && e.to_string().contains("`y2`"));
        let options = CohenKappaOptions {
            labels: Some(vec![7]),
            ..CohenKappaOptions::default()
        };
        let e = cohen_kappa(&[1, 2], &[1, 2], &options).unwrap_err();
        assert!(e.to_string().contains("`y1`"), "{e}");
        assert!("cubic".parse::<KappaWeights>().is_err());
        assert_eq!(
            "linear".parse::<KappaWeights>().unwrap().to_string(),
            "linear"
        );
    }
}
