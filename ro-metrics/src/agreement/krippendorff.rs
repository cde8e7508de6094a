//! Krippendorff's alpha, as the `krippendorff` package's
//! `alpha(reliability_data=..., value_domain=..., level_of_measurement=...)` (version 0.9).
//!
//! The reliability data has one row per rater and one column per unit; `None` is a missing
//! rating. Units rated fewer than twice are not pairable and drop out. With `o` the
//! coincidence matrix of the values raters gave the same unit (each unit's pairs weighted
//! `1/(mᵤ - 1)` for its `mᵤ` ratings), `nᵥ` its column totals, `e` the coincidences expected
//! by chance and `δ²` the level's distance between two values,
//! `α = 1 - Σ oᵥᵥ' δ²ᵥᵥ' / Σ eᵥᵥ' δ²ᵥᵥ'` (Krippendorff, *Computing Krippendorff's
//! Alpha-Reliability*, 2011). The distances:
//!
//! | level | `δ²(v, v')` |
//! | --- | --- |
//! | nominal | 0 if equal, else 1 |
//! | ordinal | `(Σ_{g=v..v'} n_g - (n_v + n_v')/2)²`, over the values in the domain's order |
//! | interval | `(v - v')²` |
//! | ratio | `((v - v') / (v + v'))²` (0 where `v + v' = 0`) |
//!
//! The value domain is the sorted distinct values that occur, or `value_domain` when given (its
//! order is the ordinal order; it may hold values nobody used). Labels (strings) can be nominal,
//! or ordinal with a `value_domain`; interval and ratio distances need numbers.
//!
//! Like the package we return NaN where the expected disagreement is zero (for instance when
//! the only values in pairable units are all the same, while another value occurs only in
//! units rated once), and we refuse, as it raises: data with at most one distinct value in the
//! domain, no unit rated at least twice, labels without a domain for a non-nominal level, and
//! values missing from a given domain. Beyond the package we refuse ragged rows, non-finite
//! numbers and repeated values in `value_domain` (which it would count twice). A JSON-ish
//! string `"nan"` is a label here, not a missing value as in the package (which converts NaN
//! to the string "nan" when the data holds strings).
//!
//! Sums are NumPy's, in NumPy's order (coincidences unit by unit, totals down the columns,
//! the final sums pairwise over the flattened matrices, ordinal ranges as `np.add.reduceat`),
//! so results equal the package's to the last bit or nearly. Time and memory grow as the
//! square of the number of distinct values (the cube for ordinal data), as in the package.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::MetricsError;
use crate::pairwise_sum::pairwise_sum;

/// Stevens' level of measurement: which distance Krippendorff's alpha uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LevelOfMeasurement {
    /// Categories without order.
    Nominal,
    /// Ordered categories: distances from the numbers of values between two ranks.
    Ordinal,
    /// Numbers with meaningful differences: squared difference.
    Interval,
    /// Numbers with a meaningful zero: squared relative difference.
    Ratio,
}

impl FromStr for LevelOfMeasurement {
    type Err = MetricsError;

    /// Parses the package's names: `"nominal"`, `"ordinal"`, `"interval"`, `"ratio"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nominal" => Ok(Self::Nominal),
            "ordinal" => Ok(Self::Ordinal),
            "interval" => Ok(Self::Interval),
            "ratio" => Ok(Self::Ratio),
            other => Err(MetricsError::InvalidArgument {
                field: "level_of_measurement",
                reason: format!(
                    "{other:?} is not one of \"nominal\", \"ordinal\", \"interval\", \"ratio\""
                ),
            }),
        }
    }
}

impl fmt::Display for LevelOfMeasurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nominal => "nominal",
            Self::Ordinal => "ordinal",
            Self::Interval => "interval",
            Self::Ratio => "ratio",
        })
    }
}

/// A value in reliability data: a number or a label.
pub trait Rating: Clone + PartialOrd {
    /// The value as a number (for interval and ratio distances); `None` for labels.
    fn as_number(&self) -> Option<f64>;
}

impl Rating for f64 {
    fn as_number(&self) -> Option<f64> {
        Some(*self)
    }
}

impl Rating for i64 {
    fn as_number(&self) -> Option<f64> {
        Some(*self as f64)
    }
}

impl Rating for String {
    fn as_number(&self) -> Option<f64> {
        None
    }
}

impl Rating for &str {
    fn as_number(&self) -> Option<f64> {
        None
    }
}

/// Krippendorff's alpha of `reliability_data` (rows: raters, columns: units; `None`: missing).
///
/// See the [module documentation](self) for the distances, the value domain and when the
/// result is NaN.
///
/// # Errors
/// Empty data or rows of different lengths; a non-finite number; fewer than two values in the
/// domain; no unit with two or more ratings; labels with a non-nominal level and no
/// `value_domain`, or with an interval or ratio level; a rating missing from `value_domain` or
/// a value repeated in it.
///
/// ```
/// use ro_metrics::agreement::{krippendorff_alpha, LevelOfMeasurement};
///
/// // Krippendorff (2011): 3 raters, 15 units, missing ratings.
/// let n = None;
/// let data = [
///     [n, n, n, n, n, Some(3.0), Some(4.0), Some(1.0), Some(2.0), Some(1.0), Some(1.0), Some(3.0), Some(3.0), n, Some(3.0)],
///     [Some(1.0), n, Some(2.0), Some(1.0), Some(3.0), Some(3.0), Some(4.0), Some(3.0), n, n, n, n, n, n, n],
///     [n, n, Some(2.0), Some(1.0), Some(3.0), Some(4.0), Some(4.0), n, Some(2.0), Some(1.0), Some(1.0), Some(3.0), Some(3.0), n, Some(4.0)],
/// ];
/// let nominal = krippendorff_alpha(&data, LevelOfMeasurement::Nominal, None)?;
/// assert!((nominal - 0.691358).abs() < 1e-6);
/// let interval = krippendorff_alpha(&data, LevelOfMeasurement::Interval, None)?;
/// assert!((interval - 0.810845).abs() < 1e-6);
///
/// // Labels: nominal as they are, ordinal with their order.
/// let grades = [[Some("mild"), Some("severe"), None], [Some("mild"), Some("moderate"), Some("mild")]];
/// let order = ["mild", "moderate", "severe"];
/// let ordinal = krippendorff_alpha(&grades, LevelOfMeasurement::Ordinal, Some(&order))?;
/// assert!(ordinal < 1.0);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn krippendorff_alpha<V: Rating, R: AsRef<[Option<V>]>>(
    reliability_data: &[R],
    level: LevelOfMeasurement,
    value_domain: Option<&[V]>,
) -> Result<f64, MetricsError> {
    let units = check_data(reliability_data)?;
    let domain = Domain::new(reliability_data, level, value_domain)?;
    if domain.values.len() <= 1 {
        return Err(MetricsError::InvalidArgument {
            field: "reliability_data",
            reason: "there has to be more than one value in the domain".into(),
        });
    }
    let coincidences = coincidences(reliability_data, units, &domain)?;
    let v = domain.values.len();
    // n_v: column totals, each summed down the rows in order (numpy's axis-0 sum).
    let totals: Vec<f64> = (0..v)
        .map(|b| (0..v).fold(0.0, |acc, a| acc + coincidences[a * v + b]))
        .collect();
    let distances = distances(&domain, level, &totals)?;
    let scale = pairwise_sum(&totals) - 1.0;
    let observed: Vec<f64> = coincidences
        .iter()
        .zip(&distances)
        .map(|(o, d)| o * d)
        .collect();
    let expected: Vec<f64> = (0..v * v)
        .map(|k| {
            let (a, b) = (k / v, k % v);
            let diagonal = if a == b { totals[a] } else { 0.0 };
            (totals[a] * totals[b] - diagonal) / scale * distances[k]
        })
        .collect();
    Ok(1.0 - pairwise_sum(&observed) / pairwise_sum(&expected))
}

/// Checks that there is data, that rows have one length and that numbers are finite; returns
/// the number of units.
fn check_data<V: Rating, R: AsRef<[Option<V>]>>(data: &[R]) -> Result<usize, MetricsError> {
    let first = data.first().ok_or(MetricsError::Empty {
        field: "reliability_data",
    })?;
    let units = first.as_ref().len();
    for (r, row) in data.iter().enumerate() {
        let row = row.as_ref();
        if row.len() != units {
            return Err(MetricsError::InvalidArgument {
                field: "reliability_data",
                reason: format!(
                    "rater {r} rated {} units but rater 0 rated {units}",
                    row.len()
                ),
            });
        }
        for (u, value) in row.iter().enumerate() {
            if let Some(x) = value.as_ref().and_then(Rating::as_number) {
                if !x.is_finite() {
                    return Err(MetricsError::NonFinite {
                        field: "reliability_data",
                        index: r * units + u,
                        value: x,
                    });
                }
            }
        }
    }
    Ok(units)
}

/// The value domain in its order, with a sorted index for lookups.
struct Domain<V> {
    /// The values, in the domain's order (the ordinal order).
    values: Vec<V>,
    /// Positions into `values`, sorted by value.
    sorted: Vec<usize>,
}

impl<V: Rating> Domain<V> {
    fn new<R: AsRef<[Option<V>]>>(
        data: &[R],
        level: LevelOfMeasurement,
        given: Option<&[V]>,
    ) -> Result<Self, MetricsError> {
        let observed = || data.iter().flat_map(|r| r.as_ref().iter().flatten());
        let needs_numbers = matches!(
            level,
            LevelOfMeasurement::Interval | LevelOfMeasurement::Ratio
        );
        let values = match given {
            Some(domain) => {
                if needs_numbers && has_labels(domain) {
                    return Err(domain_error(format!(
                        "{level} distances need numbers, and the domain holds labels"
                    )));
                }
                if let Some((index, value)) = domain
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.as_number().map(|x| (i, x)))
                    .find(|(_, x)| !x.is_finite())
                {
                    return Err(MetricsError::NonFinite {
                        field: "value_domain",
                        index,
                        value,
                    });
                }
                domain.to_vec()
            }
            None => {
                if level != LevelOfMeasurement::Nominal && has_labels(observed()) {
                    return Err(MetricsError::InvalidArgument {
                        field: "reliability_data",
                        reason: format!(
                            "labels need an ordered `value_domain` for {level} data (or level nominal)"
                        ),
                    });
                }
                let mut values: Vec<V> = observed().cloned().collect();
                values.sort_by(total_order);
                values.dedup_by(|a, b| total_order(a, b) == Ordering::Equal);
                values
            }
        };
        let mut sorted: Vec<usize> = (0..values.len()).collect();
        sorted.sort_by(|&i, &j| total_order(&values[i], &values[j]));
        if sorted
            .windows(2)
            .any(|w| total_order(&values[w[0]], &values[w[1]]) == Ordering::Equal)
        {
            return Err(domain_error("a value occurs twice".into()));
        }
        Ok(Self { values, sorted })
    }

    /// The position of `value` in the domain.
    fn index(&self, value: &V) -> Option<usize> {
        self.sorted
            .binary_search_by(|&i| total_order(&self.values[i], value))
            .ok()
            .map(|k| self.sorted[k])
    }
}

fn has_labels<'a, V: Rating + 'a>(values: impl IntoIterator<Item = &'a V>) -> bool {
    values.into_iter().any(|v| v.as_number().is_none())
}

fn domain_error(reason: String) -> MetricsError {
    MetricsError::InvalidArgument {
        field: "value_domain",
        reason,
    }
}

/// Values are checked finite (numbers) or are labels, so they are totally ordered.
fn total_order<V: PartialOrd>(a: &V, b: &V) -> Ordering {
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

/// The coincidence matrix (row-major, `v × v`), accumulated unit by unit as the package does.
fn coincidences<V: Rating, R: AsRef<[Option<V>]>>(
    data: &[R],
    units: usize,
    domain: &Domain<V>,
) -> Result<Vec<f64>, MetricsError> {
    let v = domain.values.len();
    let mut o = vec![0.0; v * v];
    let mut pairable = false;
    let mut counts: Vec<(usize, f64)> = Vec::new();
    for u in 0..units {
        counts.clear();
        for row in data {
            if let Some(value) = &row.as_ref()[u] {
                let i = domain.index(value).ok_or_else(|| {
                    domain_error(format!("rating in unit {u} is not in the value domain"))
                })?;
                match counts.iter_mut().find(|(j, _)| *j == i) {
                    Some((_, c)) => *c += 1.0,
                    None => counts.push((i, 1.0)),
                }
            }
        }
        let ratings: f64 = counts.iter().map(|(_, c)| c).sum();
        if ratings < 2.0 {
            continue; // adds exact zeros in the package
        }
        pairable = true;
        for &(a, ca) in &counts {
            for &(b, cb) in &counts {
                let pairs = if a == b { ca * cb - ca } else { ca * cb };
                o[a * v + b] += pairs / (ratings - 1.0);
            }
        }
    }
    if !pairable {
        return Err(MetricsError::InvalidArgument {
            field: "reliability_data",
            reason: "there has to be at least one unit rated by at least two raters".into(),
        });
    }
    Ok(o)
}

/// The squared distances `δ²` (row-major, `v × v`) of the level.
fn distances<V: Rating>(
    domain: &Domain<V>,
    level: LevelOfMeasurement,
    totals: &[f64],
) -> Result<Vec<f64>, MetricsError> {
    let v = domain.values.len();
    let numbers = || -> Result<Vec<f64>, MetricsError> {
        domain
            .values
            .iter()
            .map(|x| {
                x.as_number().ok_or_else(|| MetricsError::InvalidArgument {
                    field: "reliability_data",
                    reason: format!("{level} distances need numbers, not labels"),
                })
            })
            .collect()
    };
    let cells = (0..v).flat_map(|a| (0..v).map(move |b| (a, b)));
    Ok(match level {
        LevelOfMeasurement::Nominal => cells.map(|(a, b)| f64::from(u8::from(a != b))).collect(),
        LevelOfMeasurement::Ordinal => cells
            .map(|(a, b)| {
                let (low, high) = (a.min(b), a.max(b));
                // np.add.reduceat: the first value, then the rest summed pairwise.
                let between = totals[low] + pairwise_sum(&totals[low + 1..=high]);
                let d = between - (totals[low] + totals[high]) / 2.0;
                d * d
            })
            .collect(),
        LevelOfMeasurement::Interval => {
            let x = numbers()?;
            cells
                .map(|(a, b)| {
                    let d = x[a] - x[b];
                    d * d
                })
                .collect()
        }
        LevelOfMeasurement::Ratio => {
            let x = numbers()?;
            cells
                .map(|(a, b)| {
                    let sum = x[a] + x[b];
                    let d = if sum == 0.0 { 0.0 } else { (x[a] - x[b]) / sum };
                    d * d
                })
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(rows: &[&[f64]]) -> Vec<Vec<Option<f64>>> {
        rows.iter()
            .map(|r| r.iter().map(|&x| (!x.is_nan()).then_some(x)).collect())
            .collect()
    }

    #[test]
    fn perfect_agreement_is_one() {
        let data = some(&[&[1.0, 2.0, 3.0, f64::NAN], &[1.0, 2.0, 3.0, 2.0]]);
        for level in ["nominal", "ordinal", "interval", "ratio"] {
            let level = level.parse().unwrap();
            assert_eq!(krippendorff_alpha(&data, level, None).unwrap(), 1.0);
        }
    }

    #[test]
    fn hand_computed_nominal() {
        // Two raters, units (a,a), (a,b), (b,b): o = [[2,1],[1,2]], n = (3, 3), N = 6,
        // D_o = 2/6, D_e = 2·3·3/(6·5) = 0.6, α = 1 - (1/3)/0.6 = 4/9.
        let data = [
            [Some("a"), Some("a"), Some("b")],
            [Some("a"), Some("b"), Some("b")],
        ];
        let alpha = krippendorff_alpha(&data, LevelOfMeasurement::Nominal, None).unwrap();
        assert!((alpha - 4.0 / 9.0).abs() < 1e-15);
    }

    #[test]
    fn undefined_is_nan_and_refusals_are_errors() {
        // Value 2 occurs only in a unit rated once: no expected disagreement among pairable units.
        let data = some(&[&[1.0, 1.0, 2.0], &[1.0, 1.0, f64::NAN]]);
        let alpha = krippendorff_alpha(&data, LevelOfMeasurement::Nominal, None).unwrap();
        assert!(alpha.is_nan());
        let nominal = LevelOfMeasurement::Nominal;
        let same = some(&[&[2.0, 2.0], &[2.0, 2.0]]);
        assert!(krippendorff_alpha(&same, nominal, None).is_err());
        let once = some(&[&[1.0, f64::NAN], &[f64::NAN, 2.0]]);
        assert!(krippendorff_alpha(&once, nominal, None).is_err());
        let ragged = vec![vec![Some(1.0), Some(2.0)], vec![Some(1.0)]];
        assert!(krippendorff_alpha(&ragged, nominal, None).is_err());
        let infinite = [[Some(f64::INFINITY), Some(1.0)], [Some(1.0), Some(1.0)]];
        assert!(krippendorff_alpha(&infinite, nominal, None).is_err());
        let labels = [[Some("a"), Some("b")], [Some("a"), Some("a")]];
        assert!(krippendorff_alpha(&labels, LevelOfMeasurement::Ordinal, None).is_err());
        let domain = ["b", "a"];
        let ratio = LevelOfMeasurement::Ratio;
        assert!(krippendorff_alpha(&labels, ratio, Some(&domain)).is_err());
        let twice = ["a", "b", "a"];
        assert!(krippendorff_alpha(&labels, nominal, Some(&twice)).is_err());
        let missing = ["a", "c"];
        assert!(krippendorff_alpha(&labels, nominal, Some(&missing)).is_err());
    }
}
