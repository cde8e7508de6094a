//! Paired bootstrap confidence intervals for the difference of a metric between two systems.
//!
//! # Method
//!
//! Both systems were scored on the same `n` items. One bootstrap resample draws `n` item
//! indices uniformly with replacement; the statistic (typically "metric of system A minus
//! metric of system B", for any corpus-level metric such as mean ROUGE-L or macro F1) is
//! evaluated on that resample, keeping the pairing of the two systems' outputs per item.
//! After `n_resamples` resamples, the interval is the percentile interval: the
//! `(1 - level)/2` and `(1 + level)/2` quantiles of the resampled statistics, interpolated
//! linearly as `numpy.percentile` (method `"linear"`) does. Resampled statistics that are NaN
//! are dropped and counted.
//!
//! # Reproducibility
//!
//! Resample `b` draws its indices from `ChaCha8Rng::seed_from_u64(seed)` on stream `b`, so
//! the result depends only on the seed, not on the number of threads (resamples run in
//! parallel with rayon).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::MetricsError;

/// Options of [`paired_bootstrap`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapOptions {
    /// Number of bootstrap resamples (≥ 1); default 10 000.
    pub n_resamples: usize,
    /// Confidence level of the interval, in (0, 1); default 0.95.
    pub confidence_level: f64,
    /// Seed of the random number generator; default 0.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            n_resamples: 10_000,
            confidence_level: 0.95,
            seed: 0,
        }
    }
}

/// A percentile bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapInterval {
    /// The statistic on the original sample (all items once, in order).
    pub estimate: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
    /// Standard deviation (ddof = 1) of the resampled statistics.
    pub standard_error: f64,
    /// The confidence level used.
    pub confidence_level: f64,
    /// Resamples whose statistic was a number.
    pub n_resamples: usize,
    /// Resamples dropped because their statistic was NaN.
    pub n_dropped: usize,
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted, NaN-free `values`, as `numpy.quantile(..., method="linear")`.
///
/// ```
/// assert_eq!(ro_metrics::quantile_linear(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
/// ```
///
/// # Panics
/// If `values` is empty.
pub fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of an empty sample");
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor();
    let i = lo as usize;
    let t = h - lo;
    let a = sorted[i];
    let b = sorted[(i + 1).min(sorted.len() - 1)];
    // numpy's _lerp: a + (b - a) t, computed from the nearer end for t >= 0.5.
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Draws the item indices of bootstrap resample number `b`.
///
/// Exposed so that callers can reproduce a resample exactly.
///
/// ```
/// let idx = ro_metrics::bootstrap_indices(5, 42, 0);
/// assert_eq!(idx.len(), 5);
/// assert_eq!(idx, ro_metrics::bootstrap_indices(5, 42, 0));
/// assert!(idx.iter().all(|&i| i < 5));
/// ```
pub fn bootstrap_indices(n: usize, seed: u64, b: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(b);
    (0..n).map(|_| rng.random_range(0..n)).collect()
}

/// Paired bootstrap interval of a statistic of `n` paired items.
///
/// `statistic` receives the item indices of a resample (with repetitions) and returns the
/// statistic on it, usually `metric(A on those items) - metric(B on those items)`.
///
/// # Errors
/// `n == 0`, `n_resamples == 0`, a confidence level outside (0, 1), or every resample NaN.
///
/// ```
/// use ro_metrics::{paired_bootstrap, BootstrapOptions};
///
/// let a = [0.9, 0.8, 0.85, 0.7, 0.95, 0.6];
/// let b = [0.7, 0.75, 0.8, 0.65, 0.9, 0.62];
/// let mean_diff = |idx: &[usize]| {
///     idx.iter().map(|&i| a[i] - b[i]).sum::<f64>() / idx.len() as f64
/// };
/// let opts = BootstrapOptions { n_resamples: 2000, seed: 7, ..Default::default() };
/// let ci = paired_bootstrap(a.len(), mean_diff, &opts)?;
/// assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper);
/// assert_eq!(ci, paired_bootstrap(a.len(), mean_diff, &opts)?); // reproducible
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn paired_bootstrap<F>(
    n: usize,
    statistic: F,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, MetricsError>
where
    F: Fn(&[usize]) -> f64 + Sync,
{
    if n == 0 {
        return Err(MetricsError::Empty { field: "items" });
    }
    if options.n_resamples == 0 {
        return Err(MetricsError::InvalidArgument {
            field: "n_resamples",
            reason: "must be at least 1".into(),
        });
    }
    let level = options.confidence_level;
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricsError::InvalidArgument {
            field: "confidence_level",
            reason: format!("must be strictly between 0 and 1, got {level}"),
        });
    }
    let identity: Vec<usize> = (0..n).collect();
    let estimate = statistic(&identity);
    let mut stats: Vec<f64> = (0..options.n_resamples as u64)
        .into_par_iter()
        .map(|b| statistic(&bootstrap_indices(n, options.seed, b)))
        .collect();
    let total = stats.len();
    stats.retain(|v| !v.is_nan());
    let n_dropped = total - stats.len();
    if stats.is_empty() {
        return Err(MetricsError::InvalidArgument {
            field: "statistic",
            reason: "was NaN on every resample".into(),
        });
    }
    stats.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let lower = quantile_linear(&stats, alpha);
    let upper = quantile_linear(&stats, 1.0 - alpha);
    let m = stats.len() as f64;
    let mean = stats.iter().sum::<f64>() / m;
    let standard_error = if stats.len() > 1 {
        (stats.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt()
    } else {
        0.0
    };
    Ok(BootstrapInterval {
        estimate,
        lower,
        upper,
        standard_error,
        confidence_level: level,
        n_resamples: stats.len(),
        n_dropped,
    })
}

/// Paired bootstrap interval of `mean(a) - mean(b)` for per-item scores of two systems.
///
/// # Errors
/// As [`paired_bootstrap`], plus `a` and `b` of different lengths.
///
/// ```
/// let ci = ro_metrics::paired_bootstrap_mean_difference(
///     &[0.5, 0.6, 0.7], &[0.4, 0.4, 0.6], &Default::default())?;
/// assert!((ci.estimate - 0.1333333333333333).abs() < 1e-12);
/// # Ok::<(), ro_metrics::MetricsError>(())
/// ```
pub fn paired_bootstrap_mean_difference(
    a: &[f64],
    b: &[f64],
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::LengthMismatch {
            first: "a",
            first_len: a.len(),
            second: "b",
            second_len: b.len(),
        });
    }
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    paired_bootstrap(
        diff.len(),
        |idx| idx.iter().map(|&i| diff[i]).sum::<f64>() / idx.len() as f64,
        options,
    )
}
