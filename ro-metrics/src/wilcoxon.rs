//! The Wilcoxon signed-rank test with `scipy.stats.wilcoxon` semantics (scipy 1.17).
//!
//! For paired samples `x`, `y` the test works on `d = x - y` (or on `x` alone), ranking `|d|`
//! with average ranks for ties:
//!
//! - **zero_method**: [`ZeroMethod::Wilcox`] drops zero differences; [`ZeroMethod::Pratt`]
//!   ranks them but counts them in neither rank sum (and adjusts the normal approximation,
//!   Cureton 1967); [`ZeroMethod::Zsplit`] splits their ranks half to each sum.
//! - **method**: [`WilcoxonMethod::Exact`] uses the exact null distribution of `W+` (exact
//!   only without ties or zeros; a non-integral statistic is rounded conservatively, up for
//!   the lower tail and down for the upper); [`WilcoxonMethod::Asymptotic`] the normal
//!   approximation with the tie-corrected variance and optional continuity `correction`;
//!   [`WilcoxonMethod::Auto`] picks as scipy 1.17 does: more than 50 differences →
//!   asymptotic; no ties and no zeros → exact; otherwise, with at most 13 differences, a
//!   permutation test over all `2^n` sign flips (scipy's `PermutationMethod`, exact at
//!   that size); else asymptotic.
//! - **statistic**: `min(W+, W-)` for the two-sided test, `W+` for one-sided tests.
//! - **zstatistic**: reported only when the asymptotic method was asked for explicitly
//!   (as scipy); for the two-sided test it is `-|z|`.
//! - Degenerate inputs behave as scipy: no differences give NaN statistic and p-value; any
//!   NaN difference propagates to NaN; all-zero differences give `p = 1` under the exact and
//!   permutation methods and NaN under the normal approximation (zero variance).

use std::fmt;
use std::str::FromStr;

use crate::error::MetricsError;
use crate::normal::normal_cdf;
use crate::pairwise_sum::pairwise_sum;

/// How zero differences are treated (scipy's `zero_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ZeroMethod {
    /// Drop zero differences (scipy's default).
    #[default]
    Wilcox,
    /// Rank zeros with the rest, then leave them out of both rank sums.
    Pratt,
    /// Rank zeros and split their ranks equally between the positive and negative sums.
    Zsplit,
}

/// The alternative hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Alternative {
    /// The distribution of `d` is not symmetric about zero.
    #[default]
    TwoSided,
    /// The distribution of `d` is stochastically greater than one symmetric about zero.
    Greater,
    /// The distribution of `d` is stochastically less than one symmetric about zero.
    Less,
}

/// The requested way to compute the p-value (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WilcoxonMethod {
    /// Choose as scipy does (see the module documentation).
    #[default]
    Auto,
    /// The exact null distribution of the positive rank sum.
    Exact,
    /// The normal approximation.
    Asymptotic,
}

/// The way the p-value was actually computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PValueMethod {
    /// The exact null distribution of `W+` (no ties assumed).
    Exact,
    /// The normal approximation.
    Asymptotic,
    /// All `2^n` sign flips of the differences (chosen by [`WilcoxonMethod::Auto`]).
    Permutation,
}

macro_rules! str_enum {
    ($ty:ident, $field:literal, $($text:literal => $variant:ident),+) => {
        impl FromStr for $ty {
            type Err = MetricsError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.to_ascii_lowercase().as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(MetricsError::InvalidArgument {
                        field: $field,
                        reason: format!(
                            "{s:?} is not one of {}",
                            [$(concat!("\"", $text, "\"")),+].join(", ")
                        ),
                    }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text,)+ })
            }
        }
    };
}

str_enum!(ZeroMethod, "zero_method", "wilcox" => Wilcox, "pratt" => Pratt, "zsplit" => Zsplit);
str_enum!(Alternative, "alternative", "two-sided" => TwoSided, "greater" => Greater, "less" => Less);
str_enum!(WilcoxonMethod, "method", "auto" => Auto, "exact" => Exact, "asymptotic" => Asymptotic);
str_enum!(PValueMethod, "method", "exact" => Exact, "asymptotic" => Asymptotic, "permutation" => Permutation);

/// Options of [`wilcoxon`]; `Default` is scipy's defaults (`correction = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WilcoxonOptions {
    /// Treatment of zero differences.
    pub zero_method: ZeroMethod,
    /// Continuity correction of the normal approximation (half a rank towards the mean).
    pub correction: bool,
    /// The alternative hypothesis.
    pub alternative: Alternative,
    /// How to compute the p-value.
    pub method: WilcoxonMethod,
}

/// The outcome of [`wilcoxon`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WilcoxonResult {
    /// scipy's `statistic`: `min(W+, W-)` two-sided, else `W+`.
    pub statistic: f64,
    /// The p-value.
    pub pvalue: f64,
    /// scipy's `zstatistic`: present only when [`WilcoxonMethod::Asymptotic`] was requested.
    pub zstatistic: Option<f64>,
    /// How the p-value was computed.
    pub method: PValueMethod,
    /// Sum of the ranks of the positive differences (with half the zero ranks under zsplit).
    pub r_plus: f64,
    /// Sum of the ranks of the negative differences (with half the zero ranks under zsplit).
    pub r_minus: f64,
    /// Number of differences ranked (zeros excluded under [`ZeroMethod::Wilcox`]).
    pub n_ranked: usize,
}

/// Rank sums and normal-approximation moments of a set of differences.
#[derive(Debug, Clone, Copy)]
struct SignedRankStatistic {
    r_plus: f64,
    r_minus: f64,
    se: f64,
    z: f64,
    count: usize,
    has_ties: bool,
}

/// Average ranks of `abs` (1-based), `None` entries left unranked; plus tie-group sizes.
///
/// Mirrors scipy's `_rankdata(..., 'average', return_ties=True)`: excluded entries behave as
/// NaN, sorting last, each in a group of its own.
fn average_ranks(abs: &[Option<f64>]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..abs.len()).filter(|&i| abs[i].is_some()).collect();
    // Stable sort, so equal values keep input order (ranks are equal anyway).
    order.sort_by(|&a, &b| {
        abs[a]
            .partial_cmp(&abs[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ranks = vec![0.0; abs.len()];
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && abs[order[end]] == abs[order[start]] {
            end += 1;
        }
        let size = end - start;
        // ordinal rank of the first + (count - 1) / 2, as scipy computes it
        let rank = (start + 1) as f64 + (size as f64 - 1.0) / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        groups.push(size);
        start = end;
    }
    (ranks, groups)
}

/// scipy's `_wilcoxon_statistic`.
fn signed_rank_statistic(d: &[f64], zero_method: ZeroMethod) -> SignedRankStatistic {
    let abs: Vec<Option<f64>> = d
        .iter()
        .map(|&v| (zero_method != ZeroMethod::Wilcox || v != 0.0).then_some(v.abs()))
        .collect();
    let count = abs.iter().filter(|a| a.is_some()).count();
    let (ranks, mut groups) = average_ranks(&abs);
    let masked_sum = |keep: &dyn Fn(f64) -> bool| {
        let terms: Vec<f64> = d
            .iter()
            .zip(&ranks)
            .map(|(&v, &r)| if keep(v) { r } else { 0.0 })
            .collect();
        pairwise_sum(&terms)
    };
    let mut r_plus = masked_sum(&|v| v > 0.0);
    let mut r_minus = masked_sum(&|v| v < 0.0);
    let has_ties = groups.iter().any(|&g| g > 1);
    if zero_method == ZeroMethod::Zsplit {
        let half_zero = masked_sum(&|v| v == 0.0) / 2.0;
        r_plus += half_zero;
        r_minus += half_zero;
    }
    let n = count as f64;
    let mut mn = n * (n + 1.0) * 0.25;
    let mut se = n * (n + 1.0) * (2.0 * n + 1.0);
    if zero_method == ZeroMethod::Pratt {
        let n_zero = d.iter().filter(|&&v| v == 0.0).count();
        let nz = n_zero as f64;
        mn -= nz * (nz + 1.0) * 0.25;
        se -= nz * (nz + 1.0) * (2.0 * nz + 1.0);
        // Zeros (the smallest |d|, so the first group) stay out of the tie correction.
        if n_zero > 0 {
            if let Some(first) = groups.first_mut() {
                *first = 0;
            }
        }
    }
    let tie_correct: f64 = groups
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let se = ((se - tie_correct / 2.0) / 24.0).sqrt();
    let z = (r_plus - mn) / se;
    SignedRankStatistic {
        r_plus,
        r_minus,
        se,
        z,
        count,
        has_ties,
    }
}

/// The exact null distribution of `W+` for `n` untied, non-zero differences.
///
/// Entry `k` is `P(W+ = k)`, for `k = 0..=n(n+1)/2`. Built by the same halving recursion as
/// scipy's `_get_wilcoxon_distr`, so the probabilities are bit-identical to scipy's.
/// Takes O(n³) time; n = 1000 takes a fraction of a second.
///
/// ```
/// let pmf = ro_metrics::signed_rank_pmf(3);
/// assert_eq!(pmf, vec![0.125, 0.125, 0.125, 0.25, 0.125, 0.125, 0.125]);
/// ```
pub fn signed_rank_pmf(n: usize) -> Vec<f64> {
    let total = n * (n + 1) / 2 + 1;
    let mut c = vec![0.0f64; total];
    c[0] = 1.0;
    let mut m = 1; // length of the distribution for k - 1
    for k in 1..=n {
        let new_len = k * (k + 1) / 2 + 1;
        // c_new[j] = c[j] * 0.5 (j < m) + c[j - k] * 0.5 (j >= k); downwards keeps c[j - k].
        for j in (0..new_len).rev() {
            let low = if j < m { c[j] * 0.5 } else { 0.0 };
            c[j] = if j >= k { low + c[j - k] * 0.5 } else { low };
        }
        m = new_len;
    }
    c
}

/// scipy's `WilcoxonDistribution.cdf`.
fn exact_cdf(pmf: &[f64], k: i64, mean: f64) -> f64 {
    let upto = |k: i64| -> f64 {
        // pmfs[:k + 1].sum()
        let end = usize::try_from(k + 1).unwrap_or(0).min(pmf.len());
        pairwise_sum(&pmf[..end])
    };
    let from = |k: i64| -> f64 {
        // pmfs[k:].sum()
        let start = usize::try_from(k).unwrap_or(0).min(pmf.len());
        pairwise_sum(&pmf[start..])
    };
    if k as f64 <= mean {
        upto(k)
    } else {
        1.0 - from(k + 1)
    }
}

/// scipy's `WilcoxonDistribution.sf`.
fn exact_sf(pmf: &[f64], k: i64, mean: f64) -> f64 {
    let start = usize::try_from(k).unwrap_or(0).min(pmf.len());
    if k as f64 <= mean {
        pairwise_sum(&pmf[start..])
    } else {
        let end = usize::try_from(k).unwrap_or(0).min(pmf.len());
        1.0 - pairwise_sum(&pmf[..end])
    }
}

fn exact_pvalue(r_plus: f64, count: usize, alternative: Alternative) -> f64 {
    let pmf = signed_rank_pmf(count);
    let n = count as f64;
    let mean = n * (n + 1.0) / 4.0;
    let cdf = || exact_cdf(&pmf, r_plus.ceil() as i64, mean);
    let sf = || exact_sf(&pmf, r_plus.floor() as i64, mean);
    match alternative {
        Alternative::Less => cdf(),
        Alternative::Greater => sf(),
        Alternative::TwoSided => (2.0 * sf().min(cdf())).clamp(0.0, 1.0),
    }
}

/// p-value of scipy's permutation test over all `2^n` sign flips of `d`.
fn permutation_pvalue(
    d: &[f64],
    zero_method: ZeroMethod,
    observed: f64,
    alternative: Alternative,
) -> f64 {
    let abs: Vec<Option<f64>> = d
        .iter()
        .map(|&v| (zero_method != ZeroMethod::Wilcox || v != 0.0).then_some(v.abs()))
        .collect();
    let (ranks, _) = average_ranks(&abs);
    // Ranks are multiples of 1/2: count subset sums of doubled ranks exactly. A zero
    // difference never turns positive, so it doubles every count.
    let doubled: Vec<usize> = ranks.iter().map(|r| (r * 2.0).round() as usize).collect();
    let max: usize = doubled.iter().sum();
    let mut counts = vec![0u64; max + 1];
    counts[0] = 1;
    for (&v, &r2) in d.iter().zip(&doubled) {
        if v == 0.0 {
            for c in counts.iter_mut() {
                *c *= 2;
            }
        } else {
            for s in (0..=max).rev() {
                if s >= r2 {
                    counts[s] += counts[s - r2];
                }
            }
        }
    }
    let zero_half = if zero_method == ZeroMethod::Zsplit {
        let terms: Vec<f64> = d
            .iter()
            .zip(&ranks)
            .map(|(&v, &r)| if v == 0.0 { r } else { 0.0 })
            .collect();
        pairwise_sum(&terms) / 2.0
    } else {
        0.0
    };
    let n_max = (1u64 << d.len()) as f64;
    let gamma = (100.0 * f64::EPSILON * observed).abs();
    let (mut less, mut greater) = (0u64, 0u64);
    for (s, &c) in counts.iter().enumerate() {
        let value = s as f64 / 2.0 + zero_half;
        if value <= observed + gamma {
            less += c;
        }
        if value >= observed - gamma {
            greater += c;
        }
    }
    let p_less = less as f64 / n_max;
    let p_greater = greater as f64 / n_max;
    let p = match alternative {
        Alternative::Less => p_less,
        Alternative::Greater => p_greater,
        Alternative::TwoSided => p_less.min(p_greater) * 2.0,
    };
    p.clamp(0.0, 1.0)
}

/// The largest sample that [`WilcoxonMethod::Auto`] sends to the permutation test.
const MAX_PERMUTATION_N: usize = 13;
/// Above this sample size [`WilcoxonMethod::Auto`] always uses the normal approximation.
const MAX_AUTO_EXACT_N: usize = 50;

/// The Wilcoxon signed-rank test of `x - y` (or of `x` when `y` is `None`).
///
/// Same statistic, p-value and z-statistic as `scipy.stats.wilcoxon(x, y, zero_method,
/// correction, alternative, method)` in scipy 1.17; see the [module documentation](self).
///
/// # Errors
/// `x` and `y` of different lengths; fewer than two differences when
/// [`WilcoxonMethod::Auto`] picks the permutation test (scipy's `permutation_test` refuses
/// those too).
///
/// ```
/// use ro_metrics::{wilcoxon, Alternative, WilcoxonOptions, PValueMethod};
///
/// let base = [0.31, 0.42, 0.28, 0.35, 0.40, 0.22, 0.38];
/// let tuned = [0.45, 0.47, 0.31, 0.52, 0.39, 0.41, 0.50];
/// let opts = WilcoxonOptions { alternative: Alternative::Greater, ..Default::default() };
/// let r = wilcoxon(&tuned, Some(&base), &opts)?;
/// assert_eq!(r.method, PValueMethod::Exact);
/// assert_eq!(r.statistic, 27.0); // W+ = 28 - 1: only the pair 0.39 < 0.40 went down
/// assert_eq!(r.pvalue, 2.0 / 128.0);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn wilcoxon(
    x: &[f64],
    y: Option<&[f64]>,
    options: &WilcoxonOptions,
) -> Result<WilcoxonResult, MetricsError> {
    let d: Vec<f64> = match y {
        None => x.to_vec(),
        Some(y) => {
            if x.len() != y.len() {
                return Err(MetricsError::LengthMismatch {
                    first: "x",
                    first_len: x.len(),
                    second: "y",
                    second_len: y.len(),
                });
            }
            x.iter().zip(y).map(|(a, b)| a - b).collect()
        }
    };
    wilcoxon_differences(&d, options)
}

/// The Wilcoxon signed-rank test of the differences `d`.
///
/// # Errors
/// Fewer than two differences when [`WilcoxonMethod::Auto`] picks the permutation test.
///
/// ```
/// let r = ro_metrics::wilcoxon_differences(&[0.0, 0.0], &Default::default())?;
/// assert_eq!((r.statistic, r.pvalue), (0.0, 1.0));
/// assert!(ro_metrics::wilcoxon_differences(&[0.0], &Default::default()).is_err());
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn wilcoxon_differences(
    d: &[f64],
    options: &WilcoxonOptions,
) -> Result<WilcoxonResult, MetricsError> {
    let requested = options.method;
    let output_z = requested == WilcoxonMethod::Asymptotic;
    let n = d.len();
    let n_zero = d.iter().filter(|&&v| v == 0.0).count();
    let mut method = requested;
    if method == WilcoxonMethod::Auto && n > MAX_AUTO_EXACT_N {
        method = WilcoxonMethod::Asymptotic;
    }
    let stat = signed_rank_statistic(d, options.zero_method);
    let resolved = match method {
        WilcoxonMethod::Exact => PValueMethod::Exact,
        WilcoxonMethod::Asymptotic => PValueMethod::Asymptotic,
        WilcoxonMethod::Auto => {
            if !(stat.has_ties || n_zero > 0) {
                PValueMethod::Exact
            } else if n <= MAX_PERMUTATION_N {
                PValueMethod::Permutation
            } else {
                PValueMethod::Asymptotic
            }
        }
    };
    let nan_result = || WilcoxonResult {
        statistic: f64::NAN,
        pvalue: f64::NAN,
        zstatistic: output_z.then_some(f64::NAN),
        method: resolved,
        r_plus: f64::NAN,
        r_minus: f64::NAN,
        n_ranked: stat.count,
    };
    // scipy: empty input gives NaN; NaN anywhere propagates (nan_policy='propagate').
    if n == 0 || d.iter().any(|v| v.is_nan()) {
        return Ok(nan_result());
    }
    if resolved == PValueMethod::Permutation && n < 2 {
        return Err(MetricsError::InvalidArgument {
            field: "x",
            reason: "method \"auto\" chose the permutation test (zeros or ties), which needs \
                     at least two differences"
                .into(),
        });
    }
    let alternative = options.alternative;
    let mut z = stat.z;
    let pvalue = match resolved {
        PValueMethod::Asymptotic => {
            if options.correction {
                let sign = match alternative {
                    Alternative::Greater => 1.0,
                    Alternative::Less => -1.0,
                    Alternative::TwoSided => numpy_sign(z),
                };
                z -= sign * 0.5 / stat.se;
            }
            match alternative {
                Alternative::Less => normal_cdf(z),
                Alternative::Greater => normal_cdf(-z),
                Alternative::TwoSided => 2.0 * normal_cdf(-z.abs()),
            }
        }
        PValueMethod::Exact => exact_pvalue(stat.r_plus, stat.count, alternative),
        PValueMethod::Permutation => {
            permutation_pvalue(d, options.zero_method, stat.r_plus, alternative)
        }
    };
    let statistic = match alternative {
        Alternative::TwoSided => numpy_minimum(stat.r_plus, stat.r_minus),
        _ => stat.r_plus,
    };
    let reported_z = if alternative == Alternative::TwoSided && resolved == PValueMethod::Asymptotic
    {
        -z.abs()
    } else {
        z
    };
    Ok(WilcoxonResult {
        statistic,
        pvalue,
        zstatistic: output_z.then_some(reported_z),
        method: resolved,
        r_plus: stat.r_plus,
        r_minus: stat.r_minus,
        n_ranked: stat.count,
    })
}

/// `np.sign`: -1, 0 or 1, NaN for NaN.
fn numpy_sign(v: f64) -> f64 {
    if v.is_nan() {
        f64::NAN
    } else if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `np.minimum`: NaN if either is NaN.
fn numpy_minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain reference: enumerate all sign vectors and compute W+ directly.
    fn brute_force_pmf(n: usize) -> Vec<f64> {
        let total = n * (n + 1) / 2;
        let mut counts = vec![0u64; total + 1];
        for mask in 0u32..(1 << n) {
            let s: usize = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| i + 1).sum();
            counts[s] += 1;
        }
        counts
            .iter()
            .map(|&c| c as f64 / f64::from(1u32 << n))
            .collect()
    }

    #[test]
    fn pmf_matches_enumeration() {
        for n in 0..=12 {
            assert_eq!(signed_rank_pmf(n), brute_force_pmf(n), "n = {n}");
        }
    }

    #[test]
    fn ranks_average_ties() {
        let abs = [Some(3.0), Some(1.0), None, Some(3.0), Some(2.0)];
        let (r, g) = average_ranks(&abs);
        assert_eq!(r, vec![3.5, 1.0, 0.0, 3.5, 2.0]);
        assert_eq!(g, vec![1, 1, 2]);
    }

    #[test]
    fn degenerate_inputs() {
        let asym = WilcoxonOptions {
            method: WilcoxonMethod::Asymptotic,
            ..Default::default()
        };
        let r = wilcoxon_differences(&[], &Default::default()).unwrap();
        assert!(r.statistic.is_nan() && r.pvalue.is_nan() && r.zstatistic.is_none());
        let r = wilcoxon_differences(&[0.0, 0.0, 0.0], &asym).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert!(r.pvalue.is_nan());
        let r = wilcoxon_differences(&[1.0, f64::NAN], &asym).unwrap();
        assert!(r.pvalue.is_nan() && r.zstatistic.is_some_and(f64::is_nan));
        assert!(wilcoxon(&[1.0], Some(&[1.0, 2.0]), &asym).is_err());
        assert_eq!(
            "Two-Sided".parse::<Alternative>().unwrap(),
            Alternative::TwoSided
        );
        assert!("both".parse::<Alternative>().is_err());
    }
}
