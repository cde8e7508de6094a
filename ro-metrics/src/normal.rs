//! The standard normal distribution function and its inverse, as `scipy.special.ndtr` and
//! `scipy.special.ndtri`.

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

/// √(2π).
const SQRT_2PI: f64 = 2.5066282746310007;

/// exp(-2): below this probability (and above 1 - exp(-2)) `ndtri` uses its tail expansions.
const EXP_MINUS_2: f64 = 0.1353352832366127;

// The rational approximations of Cephes' `ndtri` (S. L. Moshier, Cephes Math Library 2.1, 1989),
// which scipy.special.ndtri evaluates (scipy/xsf `cephes/ndtri.h`). Coefficients are listed
// from the highest power down; the `Q` denominators have an implicit leading 1.

/// Centre, |p - 0.5| <= 0.5 - exp(-2): numerator in w² (w = p - 0.5).
const P0: [f64; 5] = [
    -59.96335010141079,
    98.00107541859997,
    -56.67628574690703,
    13.931260938727968,
    -1.2391658386738125,
];
/// Centre: denominator.
const Q0: [f64; 8] = [
    1.9544885833814176,
    4.676279128988815,
    86.36024213908905,
    -225.46268785411937,
    200.26021238006066,
    -82.03722561683334,
    15.90562251262117,
    -1.1833162112133,
];
/// Tail with 2 <= z < 8 (z = √(-2 ln p)): numerator in 1/z.
const P1: [f64; 9] = [
    4.0554489230596245,
    31.525109459989388,
    57.16281922464213,
    44.08050738932008,
    14.684956192885803,
    2.1866330685079025,
    -0.1402560791713545,
    -0.03504246268278482,
    -0.0008574567851546854,
];
/// Tail with 2 <= z < 8: denominator.
const Q1: [f64; 8] = [
    15.779988325646675,
    45.39076351288792,
    41.3172038254672,
    15.04253856929075,
    2.504649462083094,
    -0.14218292285478779,
    -0.03808064076915783,
    -0.0009332594808954574,
];
/// Far tail, z >= 8: numerator in 1/z.
const P2: [f64; 9] = [
    3.2377489177694603,
    6.915228890689842,
    3.9388102529247444,
    1.3330346081580755,
    0.20148538954917908,
    0.012371663481782003,
    0.00030158155350823543,
    2.6580697468673755e-06,
    6.239745391849833e-09,
];
/// Far tail, z >= 8: denominator.
const Q2: [f64; 8] = [
    6.02427039364742,
    3.6798356385616087,
    1.3770209948908132,
    0.21623699359449663,
    0.013420400608854318,
    0.00032801446468212774,
    2.8924786474538068e-06,
    6.790194080099813e-09,
];

/// Horner's rule from the highest coefficient down (Cephes `polevl`).
fn polynomial(x: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().fold(0.0, |acc, &c| acc * x + c)
}

/// Horner's rule with an implicit leading coefficient 1 (Cephes `p1evl`).
fn monic_polynomial(x: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().fold(1.0, |acc, &c| acc * x + c)
}

/// The standard normal quantile Φ⁻¹(p), as `scipy.special.ndtri` (and `scipy.stats.norm.ppf`).
///
/// Evaluates the same rational approximations as Cephes' `ndtri`, in the same order, so the
/// result is scipy's to the last bit (relative error below 5e-16 against the true quantile).
/// `p = 0` gives -∞, `p = 1` gives +∞; `p` outside [0, 1] or NaN gives NaN.
///
/// ```
/// use ro_metrics::normal_ppf;
/// assert_eq!(normal_ppf(0.5), 0.0);
/// assert_eq!(normal_ppf(0.975), 1.959963984540054);
/// assert_eq!(normal_ppf(0.0), f64::NEG_INFINITY);
/// assert!(normal_ppf(1.5).is_nan());
/// ```
pub fn normal_ppf(p: f64) -> f64 {
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let (y, upper) = if p > 1.0 - EXP_MINUS_2 {
        (1.0 - p, true)
    } else {
        (p, false)
    };
    if y > EXP_MINUS_2 {
        let w = y - 0.5;
        let w2 = w * w;
        let x = w + w * (w2 * polynomial(w2, &P0) / monic_polynomial(w2, &Q0));
        return x * SQRT_2PI;
    }
    let z = (-2.0 * y.ln()).sqrt();
    let x0 = z - z.ln() / z;
    let r = 1.0 / z;
    let x1 = if z < 8.0 {
        r * polynomial(r, &P1) / monic_polynomial(r, &Q1)
    } else {
        r * polynomial(r, &P2) / monic_polynomial(r, &Q2)
    };
    let x = x0 - x1;
    if upper {
        x
    } else {
        -x
    }
}

/// The standard normal inverse survival function Φ⁻¹(1 - q), as `scipy.stats.norm.isf`
/// (which is `-ndtri(q)`).
///
/// `-ndtri(q)` is not always `ndtri(1 - q)` to the last bit; like scipy we use the former:
///
/// ```
/// use ro_metrics::{normal_isf, normal_ppf};
/// assert_eq!(normal_isf(0.025), 1.9599639845400545); // scipy.stats.norm.isf(0.025)
/// assert_eq!(normal_ppf(0.975), 1.959963984540054); // scipy.stats.norm.ppf(0.975)
/// ```
pub fn normal_isf(q: f64) -> f64 {
    -normal_ppf(q)
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

    #[test]
    fn ppf_inverts_cdf() {
        for i in 1..200 {
            let p = f64::from(i) / 200.0;
            let x = normal_ppf(p);
            assert!((normal_cdf(x) / p - 1.0).abs() <= 1e-14, "p = {p}");
            assert_eq!(normal_isf(p), -x);
        }
        assert!(normal_ppf(f64::NAN).is_nan());
        assert!(normal_ppf(-0.1).is_nan());
    }
}
