//! The standard normal distribution function, as `scipy.special.ndtr`.

use std::f64::consts::FRAC_1_SQRT_2;

/// The standard normal CDF Φ(a), computed as scipy (cephes `ndtr`) does.
///
/// Near zero it uses `0.5 + 0.5·erf(a/√2)`; elsewhere `0.5·erfc(|a|/√2)` (reflected for positive
/// `a`), so that the lower tail keeps full relative precision down to about `a = -38`.
/// `erf`/`erfc` come from `libm` (a port of musl's, accurate to about one ulp).
///
/// ```
/// use ro_metrics::normal_cdf;
/// assert_eq!(normal_cdf(0.0), 0.5);
/// assert!((normal_cdf(-1.959963984540054) - 0.025).abs() < 1e-15);
/// assert!((normal_cdf(-10.0) / 7.61985302416047e-24 - 1.0).abs() < 1e-14);
/// ```
pub fn normal_cdf(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a * FRAC_1_SQRT_2;
    let z = x.abs();
    if z < FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(x)
    } else {
        let y = 0.5 * libm::erfc(z);
        if x > 0.0 {
            1.0 - y
        } else {
            y
        }
    }
}

/// The standard normal survival function `1 - Φ(a)`, as scipy's `ndtr(-a)`.
///
/// ```
/// assert_eq!(ro_metrics::normal_sf(1.0), ro_metrics::normal_cdf(-1.0));
/// ```
pub fn normal_sf(a: f64) -> f64 {
    normal_cdf(-a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_monotone() {
        let mut prev = 0.0;
        for i in -400..=400 {
            let x = f64::from(i) / 40.0;
            let p = normal_cdf(x);
            assert!(p >= prev, "not monotone at {x}");
            prev = p;
            assert!((p + normal_cdf(-x) - 1.0).abs() < 1e-15);
        }
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }
}
