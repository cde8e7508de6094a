//! A mean with its bootstrap interval, and a float that survives JSON: the numbers of the
//! demo's and the review's reports.

use ro_metrics::{paired_bootstrap, BootstrapOptions};
use ro_tasks::BOOTSTRAP_SEED;
use serde::{Serialize, Serializer};

use crate::evaluate::json::float;

/// A float that serializes as a JSON number when finite and as the strings `"NaN"`,
/// `"Infinity"` or `"-Infinity"` otherwise (plain serde_json would write `null`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        float(self.0).serialize(s)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num(v)
    }
}

/// A mean with its bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Point estimate (mean over cases).
    pub mean: Num,
    /// Lower end of the interval.
    pub low: Num,
    /// Upper end of the interval.
    pub high: Num,
}

/// The mean of `values` with its percentile-bootstrap 95% interval (seeded, as
/// [`ro_tasks::compare`]'s difference intervals).
pub fn mean_estimate(values: &[f64]) -> Estimate {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let options = BootstrapOptions {
        n_resamples: 2000,
        seed: BOOTSTRAP_SEED,
        ..BootstrapOptions::default()
    };
    let stat = |idx: &[usize]| idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len() as f64;
    match paired_bootstrap(values.len(), stat, &options) {
        Ok(ci) => Estimate {
            mean: Num(mean),
            low: Num(ci.lower),
            high: Num(ci.upper),
        },
        Err(_) => Estimate {
            mean: Num(mean),
            low: Num(f64::NAN),
            high: Num(f64::NAN),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_estimate_brackets_the_mean() {
        let e = mean_estimate(&[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(e.mean, Num(0.625));
        assert!(e.low.0 <= 0.625 && 0.625 <= e.high.0 && e.low.0 >= 0.0 && e.high.0 <= 1.0);
        assert_eq!(e, mean_estimate(&[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]));
    }
}
