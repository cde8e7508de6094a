//! The confusion matrix, as `sklearn.metrics.confusion_matrix`.

use std::collections::BTreeMap;

use crate::classification::{check_targets, unique_labels};
use crate::error::MetricsError;

/// A square matrix of (weighted) counts: row = true label, column = predicted label.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix<L> {
    /// Row and column labels, in order.
    pub labels: Vec<L>,
    /// `labels.len() * labels.len()` counts, row-major.
    pub counts: Vec<f64>,
}

impl<L> ConfusionMatrix<L> {
    /// Number of labels (rows and columns).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the matrix has no labels (never true for one built by [`confusion_matrix`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The (weighted) count of samples with true label number `row` predicted as number `col`.
    ///
    /// # Panics
    /// If `row` or `col` is not below [`len`](Self::len).
    pub fn get(&self, row: usize, col: usize) -> f64 {
        let n = self.labels.len();
        assert!(
            row < n && col < n,
            "index ({row}, {col}) out of a {n}x{n} matrix"
        );
        self.counts[row * n + col]
    }

    /// The matrix as rows.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        let n = self.labels.len().max(1);
        self.counts.chunks(n).map(<[f64]>::to_vec).collect()
    }
}

/// Counts of each (true, predicted) label pair, as `sklearn.metrics.confusion_matrix`.
///
/// `labels` selects and orders the rows and columns (default: the sorted union of the labels
/// in `y_true` and `y_pred`); samples whose true or predicted label is not among them are
/// left out. With `sample_weight`, entries are sums of weights.
///
/// # Errors
/// Empty or unpaired inputs, bad weights, an empty `labels`, or `labels` none of which occurs
/// in `y_true` (scikit-learn refuses these too).
///
/// ```
/// let cm = ro_metrics::confusion_matrix(&[2, 0, 2, 2, 0, 1], &[0, 0, 2, 2, 0, 2], None, None)?;
/// assert_eq!(cm.rows(), vec![vec![2.0, 0.0, 0.0], vec![0.0, 0.0, 1.0], vec![1.0, 0.0, 2.0]]);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn confusion_matrix<L: Ord + Clone>(
    y_true: &[L],
    y_pred: &[L],
    labels: Option<&[L]>,
    sample_weight: Option<&[f64]>,
) -> Result<ConfusionMatrix<L>, MetricsError> {
    check_targets(y_true, y_pred, sample_weight)?;
    let labels = match labels {
        None => unique_labels(y_true, y_pred),
        Some(l) => {
            if l.is_empty() {
                return Err(MetricsError::InvalidArgument {
                    field: "labels",
                    reason: "should contain at least one label".into(),
                });
            }
            if !y_true.iter().any(|t| l.contains(t)) {
                return Err(MetricsError::InvalidArgument {
                    field: "labels",
                    reason: "at least one label specified must be in y_true".into(),
                });
            }
            l.to_vec()
        }
    };
    // As scikit-learn's dict comprehension: a repeated label maps to its last position.
    let index: BTreeMap<&L, usize> = labels.iter().enumerate().map(|(i, l)| (l, i)).collect();
    let n = labels.len();
    let mut counts = vec![0.0; n * n];
    for (k, (t, p)) in y_true.iter().zip(y_pred).enumerate() {
        if let (Some(&i), Some(&j)) = (index.get(t), index.get(p)) {
            counts[i * n + j] += sample_weight.map_or(1.0, |w| w[k]);
        }
    }
    Ok(ConfusionMatrix { labels, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_subset_drops_samples() {
        let cm = confusion_matrix(
            &["cat", "ant", "cat", "cat", "ant", "bird"],
            &["ant", "ant", "cat", "cat", "ant", "cat"],
            Some(&["ant", "bird", "cat"]),
            None,
        )
        .unwrap();
        assert_eq!(cm.get(2, 0), 1.0);
        let cm = confusion_matrix(&[1, 2, 3], &[1, 3, 3], Some(&[3, 1]), None).unwrap();
        assert_eq!(cm.rows(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(confusion_matrix(&[1, 2], &[1, 2], Some(&[7]), None).is_err());
        assert!(confusion_matrix(&[1, 2], &[1, 2], Some(&[]), None).is_err());
    }

    #[test]
    fn weighted_counts() {
        let cm = confusion_matrix(&[0, 0, 1], &[0, 1, 1], None, Some(&[0.5, 2.0, 1.5])).unwrap();
        assert_eq!(cm.counts, vec![0.5, 2.0, 0.0, 1.5]);
    }
}
