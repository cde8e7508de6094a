//! Fleiss' and Randolph's kappa for many raters, as `statsmodels.stats.inter_rater.fleiss_kappa`
//! (statsmodels 0.15).
//!
//! The input is a subjects × categories table of counts: entry `(i, j)` is how many raters put
//! subject `i` in category `j`, and every subject has the same number `n` of ratings. With
//! `Pᵢ = (Σⱼ nᵢⱼ² - n) / (n(n-1))` the agreement on subject `i` and `P̄` their mean,
//! `κ = (P̄ - Pₑ) / (1 - Pₑ)` where the chance agreement `Pₑ` is `Σⱼ pⱼ²` over the categories'
//! overall shares `pⱼ` (Fleiss, 1971) or `1/k` for `k` categories (Randolph's free-marginal
//! kappa, 2005).
//!
//! Like statsmodels we return NaN where the formula divides zero by zero: one rating per
//! subject (`n = 1`), an all-zero table, or chance agreement 1 (every rating in one category).
//! Counts may be fractional, as statsmodels allows.

use std::fmt;
use std::str::FromStr;

use crate::error::MetricsError;
use crate::pairwise_sum::pairwise_sum;

/// Which chance agreement [`fleiss_kappa`] corrects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FleissMethod {
    /// Fleiss (1971): chance from the categories' overall shares.
    #[default]
    Fleiss,
    /// Randolph (2005): chance from equally likely categories, `1/k`.
    Randolph,
}

impl FromStr for FleissMethod {
    type Err = MetricsError;

    /// Parses `"fleiss"`, and `"randolph"` or its statsmodels alias `"uniform"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fleiss" => Ok(Self::Fleiss),
            "randolph" | "uniform" => Ok(Self::Randolph),
            other => Err(MetricsError::InvalidArgument {
                field: "method",
                reason: format!("{other:?} is not one of \"fleiss\", \"randolph\""),
            }),
        }
    }
}

impl fmt::Display for FleissMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fleiss => "fleiss",
            Self::Randolph => "randolph",
        })
    }
}

/// Fleiss' (or Randolph's) kappa of a subjects × categories count table, as statsmodels'
/// `fleiss_kappa(table, method)`.
///
/// See the [module documentation](self) for the formula and when the result is NaN.
///
/// # Errors
/// An empty table or a table without categories, rows of different lengths, counts that are
/// negative or not finite, or subjects with different numbers of ratings (statsmodels fails
/// an assertion on the last).
///
/// ```
/// use ro_metrics::agreement::{fleiss_kappa, FleissMethod};
///
/// // Three radiation oncologists classify four plans as acceptable / minor / major change.
/// let table = [[3.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 1.0, 2.0]];
/// let kappa = fleiss_kappa(&table, FleissMethod::Fleiss)?;
/// assert!((kappa - 0.4666666666666665).abs() < 1e-15);
/// let free = fleiss_kappa(&table, FleissMethod::Randolph)?;
/// assert!(free > kappa);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn fleiss_kappa<R: AsRef<[f64]>>(
    table: &[R],
    method: FleissMethod,
) -> Result<f64, MetricsError> {
    let categories = check_table(table)?;
    let subjects = table.len();
    let flat: Vec<f64> = table
        .iter()
        .flat_map(|r| r.as_ref().iter().copied())
        .collect();
    let total = pairwise_sum(&flat);
    let per_subject: Vec<f64> = table.iter().map(|r| pairwise_sum(r.as_ref())).collect();
    let raters = per_subject
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if total != subjects as f64 * raters {
        return Err(MetricsError::InvalidArgument {
            field: "table",
            reason: format!(
                "every subject must have the same number of ratings (row sums range up to {raters}, \
                 but the table sums to {total} over {subjects} subjects)"
            ),
        });
    }
    let agreement: Vec<f64> = table
        .iter()
        .map(|r| {
            let squares: Vec<f64> = r.as_ref().iter().map(|&c| c * c).collect();
            (pairwise_sum(&squares) - raters) / (raters * (raters - 1.0))
        })
        .collect();
    let mean_agreement = pairwise_sum(&agreement) / subjects as f64;
    let chance = match method {
        FleissMethod::Fleiss => {
            // numpy: the column sums run down the rows in order.
            let shares: Vec<f64> = (0..categories)
                .map(|j| table.iter().fold(0.0, |acc, r| acc + r.as_ref()[j]) / total)
                .collect();
            let squares: Vec<f64> = shares.iter().map(|&p| p * p).collect();
            pairwise_sum(&squares)
        }
        FleissMethod::Randolph => 1.0 / categories as f64,
    };
    Ok((mean_agreement - chance) / (1.0 - chance))
}

/// Checks the table's shape and counts; returns the number of categories.
fn check_table<R: AsRef<[f64]>>(table: &[R]) -> Result<usize, MetricsError> {
    let first = table
        .first()
        .ok_or(MetricsError::Empty { field: "table" })?;
    let categories = first.as_ref().len();
    if categories == 0 {
        return Err(MetricsError::InvalidArgument {
            field: "table",
            reason: "rows have no categories".into(),
        });
    }
    for (i, row) in table.iter().enumerate() {
        let row = row.as_ref();
        if row.len() != categories {
            return Err(MetricsError::InvalidArgument {
                field: "table",
                reason: format!(
                    "row {i} has {} categories but row 0 has {categories}",
                    row.len()
                ),
            });
        }
        if let Some((j, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                field: "table",
                index: i * categories + j,
                value,
            });
        }
        if let Some(j) = row.iter().position(|&v| v < 0.0) {
            return Err(MetricsError::InvalidArgument {
                field: "table",
                reason: format!("count {} at row {i}, column {j} is negative", row[j]),
            });
        }
    }
    Ok(categories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // Two subjects, two raters, full agreement on different categories: P̄ = 1, Pₑ = 1/2.
        let table = [[2.0, 0.0], [0.0, 2.0]];
        assert_eq!(fleiss_kappa(&table, FleissMethod::Fleiss).unwrap(), 1.0);
        // Full disagreement: P̄ = 0, Pₑ = 1/2, κ = -1.
        let table = [[1.0, 1.0], [1.0, 1.0]];
        assert_eq!(fleiss_kappa(&table, FleissMethod::Fleiss).unwrap(), -1.0);
        assert_eq!(fleiss_kappa(&table, FleissMethod::Randolph).unwrap(), -1.0);
    }

    #[test]
    fn undefined_is_nan() {
        let one_category = [[4.0, 0.0], [4.0, 0.0]];
        assert!(fleiss_kappa(&one_category, FleissMethod::Fleiss)
            .unwrap()
            .is_nan());
        let one_rater = [[1.0, 0.0], [0.0, 1.0]];
        assert!(fleiss_kappa(&one_rater, FleissMethod::Fleiss)
            .unwrap()
            .is_nan());
    }

    #[test]
    fn bad_tables() {
        let empty: [[f64; 2]; 0] = [];
        assert!(fleiss_kappa(&empty, FleissMethod::Fleiss).is_err());
        let ragged = vec![vec![1.0, 1.0], vec![2.0]];
        assert!(fleiss_kappa(&ragged, FleissMethod::Fleiss).is_err());
        let uneven = [[2.0, 1.0], [1.0, 1.0]];
        let e = fleiss_kappa(&uneven, FleissMethod::Fleiss).unwrap_err();
        assert!(e.to_string().contains("same number of ratings"), "{e}");
        assert!(fleiss_kappa(&[[-1.0, 3.0], [1.0, 1.0]], FleissMethod::Fleiss).is_err());
        assert!(fleiss_kappa(&[[f64::NAN, 2.0]], FleissMethod::Fleiss).is_err());
        assert!("cohen".parse::<FleissMethod>().is_err());
        assert_eq!(
            "uniform".parse::<FleissMethod>().unwrap(),
            FleissMethod::Randolph
        );
    }
}
