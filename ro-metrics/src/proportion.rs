//! Confidence intervals for a binomial proportion, as
//! `statsmodels.stats.proportion.proportion_confint` (statsmodels 0.15, two-sided); see
//! [`proportion_confint`] for the formulas and how closely they match.

use std::fmt;
use std::str::FromStr;

use crate::beta::{beta_isf, beta_ppf};
use crate::error::MetricsError;
use crate::normal::normal_isf;

/// How [`proportion_confint`] builds the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConfintMethod {
    /// Normal approximation (Wald), statsmodels' default.
    #[default]
    Normal,
    /// Agresti-Coull: the Wald interval around a shrunk estimate.
    AgrestiCoull,
    /// Clopper-Pearson: exact, from beta quantiles.
    Beta,
    /// Wilson score interval.
    Wilson,
    /// Jeffreys: equal-tailed Bayesian interval under the Beta(½, ½) prior.
    Jeffreys,
}

impl FromStr for ConfintMethod {
    type Err = MetricsError;

    /// Parses statsmodels' names: `"normal"`, `"agresti_coull"`, `"beta"`, `"wilson"`,
    /// `"jeffreys"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "normal" => Ok(Self::Normal),
            "agresti_coull" => Ok(Self::AgrestiCoull),
            "beta" => Ok(Self::Beta),
            "wilson" => Ok(Self::Wilson),
            "jeffreys" => Ok(Self::Jeffreys),
            other => Err(MetricsError::InvalidArgument {
                field: "method",
                reason: format!(
                    "{other:?} is not one of \"normal\", \"agresti_coull\", \"beta\", \"wilson\", \"jeffreys\""
                ),
            }),
        }
    }
}

impl fmt::Display for ConfintMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal",
            Self::AgrestiCoull => "agresti_coull",
            Self::Beta => "beta",
            Self::Wilson => "wilson",
            Self::Jeffreys => "jeffreys",
        })
    }
}

/// A two-sided confidence interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionInterval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// The two-sided `1 - alpha` confidence interval for the proportion `count / nobs`, as
/// `statsmodels.stats.proportion.proportion_confint(count, nobs, alpha, method)`.
///
/// With `q = count / nobs`, `z` the standard normal quantile at `1 - alpha/2`
/// ([`normal_isf`], scipy's `norm.isf` to the bit) and `Beta⁻¹` the beta quantile:
///
/// | method | interval |
/// | --- | --- |
/// | `normal` (Wald) | `q ± z √(q(1-q)/n)`, clipped to [0, 1] |
/// | `agresti_coull` | `q̃ ± z √(q̃(1-q̃)/ñ)`, `ñ = n + z²`, `q̃ = (count + z²/2)/ñ`, clipped |
/// | `beta` (Clopper-Pearson) | `Beta⁻¹(α/2; count, n-count+1)`, `Beta⁻¹(1-α/2; count+1, n-count)`; 0 when count = 0, 1 when count = n |
/// | `wilson` | `(q + z²/2n ± z √(q(1-q)/n + z²/4n²)) / (1 + z²/n)`, clipped |
/// | `jeffreys` | `Beta⁻¹(α/2; count+½, n-count+½)`, `Beta⁻¹(1-α/2; count+½, n-count+½)` (not set to 0 or 1) |
///
/// The arithmetic is statsmodels' operation for operation, and the normal quantile is scipy's
/// bit for bit, so the normal, Agresti-Coull and Wilson bounds equal statsmodels' (bit for bit
/// on every case of the fixtures). The beta quantiles are computed to within a few units in the last place of
/// the true value ([`beta_ppf`], [`beta_isf`]); scipy's (Boost's `ibeta_inv`) are mostly as
/// good but off by up to 1e-8 relative for some large `n` and small counts (for example the
/// upper Clopper-Pearson bound of 1 success in 10⁹ trials), where we keep the true value.
///
/// statsmodels does not check its inputs and returns NaN, out-of-range or empty intervals for
/// counts outside `[0, nobs]`, `nobs = 0` or `alpha` outside (0, 1); we refuse these. Counts
/// need not be integers (statsmodels accepts weighted counts too).
///
/// # Errors
/// A non-finite argument, `nobs <= 0`, `count` outside `[0, nobs]`, or `alpha` outside (0, 1).
///
/// ```
/// use ro_metrics::{proportion_confint, ConfintMethod};
///
/// // 42 of 50 generated letters rated clinically acceptable.
/// let ci = proportion_confint(42.0, 50.0, 0.05, ConfintMethod::Wilson)?;
/// assert!((ci.low - 0.7148578393696499).abs() < 1e-15);
/// assert!((ci.high - 0.9166257932196658).abs() < 1e-15);
/// let exact = proportion_confint(42.0, 50.0, 0.05, ConfintMethod::Beta)?;
/// assert!(exact.low < ci.low && exact.high > ci.high);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn proportion_confint(
    count: f64,
    nobs: f64,
    alpha: f64,
    method: ConfintMethod,
) -> Result<ProportionInterval, MetricsError> {
    check_arguments(count, nobs, alpha)?;
    let q = count / nobs;
    let tail = alpha / 2.0;
    let clip = |low: f64, high: f64| ProportionInterval {
        low: low.clamp(0.0, 1.0),
        high: high.clamp(0.0, 1.0),
    };
    Ok(match method {
        ConfintMethod::Normal => {
            let dist = normal_isf(tail) * (q * (1.0 - q) / nobs).sqrt();
            clip(q - dist, q + dist)
        }
        ConfintMethod::AgrestiCoull => {
            let crit = normal_isf(tail);
            let nobs_c = nobs + crit * crit;
            let q_c = (count + crit * crit / 2.0) / nobs_c;
            let dist = crit * (q_c * (1.0 - q_c) / nobs_c).sqrt();
            clip(q_c - dist, q_c + dist)
        }
        ConfintMethod::Beta => ProportionInterval {
            low: if q == 0.0 {
                0.0
            } else {
                beta_ppf(tail, count, nobs - count + 1.0)
            },
            high: if q == 1.0 {
                1.0
            } else {
                beta_isf(tail, count + 1.0, nobs - count)
            },
        },
        ConfintMethod::Wilson => {
            let crit = normal_isf(tail);
            let crit2 = crit * crit;
            let denom = 1.0 + crit2 / nobs;
            let center = (q + crit2 / (2.0 * nobs)) / denom;
            let spread = q * (1.0 - q) / nobs + crit2 / (4.0 * (nobs * nobs));
            let dist = crit * spread.sqrt() / denom;
            clip(center - dist, center + dist)
        }
        ConfintMethod::Jeffreys => {
            let (a, b) = (count + 0.5, nobs - count + 0.5);
            ProportionInterval {
                low: beta_ppf(tail, a, b),
                high: beta_isf(tail, a, b),
            }
        }
    })
}

fn check_arguments(count: f64, nobs: f64, alpha: f64) -> Result<(), MetricsError> {
    for (field, value) in [("count", count), ("nobs", nobs), ("alpha", alpha)] {
        if !value.is_finite() {
            return Err(MetricsError::NonFinite {
                field,
                index: 0,
                value,
            });
        }
    }
    let invalid =
        |field: &'static str, reason: String| Err(MetricsError::InvalidArgument { field, reason });
    if nobs <= 0.0 {
        return invalid("nobs", format!("must be positive, got {nobs}"));
    }
    if !(0.0..=nobs).contains(&count) {
        return invalid(
            "count",
            format!("must be in [0, nobs = {nobs}], got {count}"),
        );
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return invalid("alpha", format!("must be in (0, 1), got {alpha}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ConfintMethod; 5] = [
        ConfintMethod::Normal,
        ConfintMethod::AgrestiCoull,
        ConfintMethod::Beta,
        ConfintMethod::Wilson,
        ConfintMethod::Jeffreys,
    ];

    #[test]
    fn names_round_trip() {
        for m in ALL {
            assert_eq!(m.to_string().parse::<ConfintMethod>().unwrap(), m);
        }
        assert!("exact".parse::<ConfintMethod>().is_err());
    }

    #[test]
    fn boundary_counts() {
        let ci = proportion_confint(0.0, 10.0, 0.05, ConfintMethod::Beta).unwrap();
        assert_eq!(ci.low, 0.0);
        // Clopper-Pearson upper bound for 0 of n: 1 - (α/2)^(1/n).
        assert!((ci.high - (1.0 - 0.025f64.powf(0.1))).abs() < 1e-15);
        let ci = proportion_confint(10.0, 10.0, 0.05, ConfintMethod::Normal).unwrap();
        assert_eq!((ci.low, ci.high), (1.0, 1.0));
    }

    #[test]
    fn refuses_what_statsmodels_does_not_define() {
        for (count, nobs, alpha) in [
            (11.0, 10.0, 0.05),
            (-1.0, 10.0, 0.05),
            (0.0, 0.0, 0.05),
            (3.0, 10.0, 0.0),
            (3.0, 10.0, 1.0),
            (f64::NAN, 10.0, 0.05),
        ] {
            for m in ALL {
                assert!(proportion_confint(count, nobs, alpha, m).is_err());
            }
        }
    }
}
