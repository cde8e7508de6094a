//! The factor `x^a (1-x)^b / B(a, b)` in front of the incomplete beta function's continued
//! fraction, computed without the cancellation of `ln Γ` differences.
//!
//! For large `a` and `b`, `ln B(a, b)` is a difference of numbers near `a ln a`, so computing the
//! factor as `exp(a ln x + b ln y - ln B)` would lose `log10(a ln a)` digits (six at a = 10⁶).
//! Instead (as DiDonato and Morris, ACM TOMS 708, 1992, do in their `brcomp`) the large
//! powers are expanded around the mode: with `x₀ = a/(a+b)`, `y₀ = b/(a+b)`,
//!
//! ```text
//! x^a y^b / B(a,b) = √(ab / (2π(a+b))) · exp(-(a φ(x/x₀ - 1) + b φ(y/y₀ - 1))) · exp(-(Δ(a) + Δ(b) - Δ(a+b)))
//! ```
//!
//! where `φ(t) = t - ln(1+t)` and `Δ` is the remainder of Stirling's series for `ln Γ`. Every
//! term is then of the size of the result's own logarithm, so the result keeps a relative
//! error of a few units in the last place times that logarithm.

use std::f64::consts::PI;

/// Parameters at or above this use Stirling's series (its remainder `Δ` is then accurate to
/// 1e-18 with eight terms).
const LARGE: f64 = 10.0;

/// `x^a (1-x)^b / B(a, b)` for `a, b > 0` and `0 < x < 1`.
pub(super) fn power_terms(a: f64, b: f64, x: f64) -> f64 {
    let y = 1.0 - x;
    // ln x and ln(1 - x) from the exact x (1 - x is exact only for x >= 0.5).
    let ln_x = x.ln();
    let ln_y = if x < 0.5 { (-x).ln_1p() } else { y.ln() };
    if a >= LARGE && b >= LARGE {
        around_the_mode(a, b, x, ln_x, ln_y)
    } else if a < LARGE && b < LARGE {
        small_parameters(a, b, x, ln_x, ln_y)
    } else if a < LARGE {
        one_large(a, b, x, ln_y)
    } else {
        one_large(b, a, y, ln_x)
    }
}

/// Both parameters small: `Γ` itself does not overflow, so `B` is a ratio of gamma functions,
/// and the powers are taken directly (one rounding each) unless they underflow.
fn small_parameters(a: f64, b: f64, x: f64, ln_x: f64, ln_y: f64) -> f64 {
    let beta = libm::tgamma(a) * libm::tgamma(b) / libm::tgamma(a + b);
    let x_a = x.powf(a);
    // (1-x)^b from the exact 1 - x, or from ln(1 - x) where 1 - x would be rounded.
    let y_b = if x >= 0.5 {
        (1.0 - x).powf(b)
    } else {
        (b * ln_y).exp()
    };
    if x_a >= f64::MIN_POSITIVE && y_b >= f64::MIN_POSITIVE {
        x_a * y_b / beta
    } else {
        (a * ln_x + b * ln_y).exp() / beta
    }
}

/// `s` small, `l` large: `ln B(s, l) = ln Γ(s) + ln(Γ(l)/Γ(s+l))`, the second term from
/// Stirling's series without forming `ln Γ(l)` (TOMS 708 `algdiv`). `v` is the variable whose
/// power is `s` (so `1 - v` has the power `l`) and `ln_w` is `ln(1 - v)`.
fn one_large(s: f64, l: f64, v: f64, ln_w: f64) -> f64 {
    // ln(Γ(l)/Γ(s+l)) = -(s+l-1/2) ln(1+s/l) - s (ln l - 1) + Δ(l) - Δ(s+l); the s ln l joins
    // s ln v as s ln(v l), and the large l ln(1-v) meets -(s+l-1/2) ln(1+s/l) at order s.
    let log_power = s * (v * l).ln() + (l * ln_w + (s + l - 0.5) * (s / l).ln_1p() - s);
    (log_power - libm::lgamma(s) - stirling_remainder(l) + stirling_remainder(s + l)).exp()
}

/// Both parameters large: expansion around the mode (module documentation).
fn around_the_mode(a: f64, b: f64, x: f64, ln_x: f64, ln_y: f64) -> f64 {
    let total = a + b;
    // λ = a - (a+b)x = (a+b)(x₀ - x), rounded once; x/x₀ - 1 = -λ/a and y/y₀ - 1 = λ/b.
    let lambda = x.mul_add(-total, a);
    // ln(x/x₀) = ln x + ln(1 + b/a), ln(y/y₀) = ln y + ln(1 + a/b).
    let e = a * phi(-lambda / a, || ln_x + (b / a).ln_1p())
        + b * phi(lambda / b, || ln_y + (a / b).ln_1p());
    let correction = stirling_remainder(a) + stirling_remainder(b) - stirling_remainder(total);
    (a / (2.0 * PI) * (b / total)).sqrt() * (-(e + correction)).exp()
}

/// `φ(t) = t - ln(1 + t)` for `t > -1`, with `ln_ratio()` giving `ln(1 + t)` computed from the
/// original variables (used when `1 + t` is far from 1, where forming `1 + t` would lose digits).
fn phi(t: f64, ln_ratio: impl Fn() -> f64) -> f64 {
    if t.abs() <= 0.5 {
        phi_near_zero(t)
    } else if t < 0.0 {
        t - ln_ratio()
    } else {
        t - t.ln_1p()
    }
}

/// `φ(t)` for `|t| <= 1/2` by `ln(1+t) = 2 artanh(u)`, `u = t/(2+t)`:
/// `φ = 2u²/(1-u) - 2(u³/3 + u⁵/5 + ...)`, whose terms shrink by `u² <= 1/9`.
fn phi_near_zero(t: f64) -> f64 {
    let u = t / (2.0 + t);
    let u2 = u * u;
    let mut power = u * u2;
    let mut series = 0.0;
    let mut k = 3.0;
    loop {
        let term = power / k;
        series += term;
        if term.abs() <= 1e-17 * series.abs() {
            break;
        }
        power *= u2;
        k += 2.0;
    }
    2.0 * u2 / (1.0 - u) - 2.0 * series
}

/// `Δ(z) = ln Γ(z) - ((z - 1/2) ln z - z + ln √(2π))` for `z >= 10`, by Stirling's series
/// `Σ B₂ₖ / (2k(2k-1) z^(2k-1))` to `k = 8` (next term below 2e-18 at z = 10).
pub(super) fn stirling_remainder(z: f64) -> f64 {
    // B₂ₖ / (2k(2k-1)) for k = 1..8, highest power first for Horner's rule in 1/z².
    const C: [f64; 8] = [
        -3617.0 / 122_400.0,
        1.0 / 156.0,
        -691.0 / 360_360.0,
        1.0 / 1188.0,
        -1.0 / 1680.0,
        1.0 / 1260.0,
        -1.0 / 360.0,
        1.0 / 12.0,
    ];
    let r = 1.0 / z;
    let r2 = r * r;
    C.iter().fold(0.0, |acc, &c| acc * r2 + c) * r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x^a y^b / B(a, b) with B from ln Γ (fine for small parameters).
    fn naive(a: f64, b: f64, x: f64) -> f64 {
        let ln_b = libm::lgamma(a) + libm::lgamma(b) - libm::lgamma(a + b);
        (a * x.ln() + b * (1.0 - x).ln() - ln_b).exp()
    }

    #[test]
    fn stirling_remainder_matches_lgamma() {
        for z in [10.0, 12.5, 30.0, 100.0, 1e4] {
            let direct = libm::lgamma(z) - ((z - 0.5) * f64::ln(z) - z + 0.5 * f64::ln(2.0 * PI));
            // ln Γ(z) itself is ~z ln z, so compare to its absolute precision.
            let tolerance = 4.0 * f64::EPSILON * libm::lgamma(z);
            assert!(
                (stirling_remainder(z) - direct).abs() <= tolerance,
                "z = {z}"
            );
        }
    }

    #[test]
    fn phi_series_matches_its_definition() {
        // Where t - ln(1+t) loses few digits, it is the reference.
        for t in [-0.5, -0.3, 0.2, 0.5] {
            let direct = t - f64::ln_1p(t);
            assert!(
                (phi_near_zero(t) - direct).abs() <= 1e-14 * direct,
                "t = {t}"
            );
        }
        // Near 0 the Taylor series t²/2 - t³/3 + t⁴/4 - ... is exact to double precision.
        for t in [-1e-4f64, 1e-6, 3e-5] {
            let taylor: f64 = (2..9).map(|k| (-t).powi(k) / f64::from(k)).sum();
            let error = (phi_near_zero(t) / taylor - 1.0).abs();
            assert!(error <= 4.0 * f64::EPSILON, "t = {t}: {error}");
        }
        assert_eq!(phi_near_zero(0.0), 0.0);
    }

    #[test]
    fn all_branches_agree_with_the_naive_formula_where_it_is_accurate() {
        for (a, b, x) in [
            (0.5, 0.5, 0.3),
            (2.0, 3.0, 0.4),
            (12.0, 3.0, 0.8),
            (3.0, 12.0, 0.1),
            (15.5, 20.0, 0.45),
            (10.0, 10.0, 0.02),
            (40.0, 11.0, 0.99),
        ] {
            let got = power_terms(a, b, x);
            let want = naive(a, b, x);
            assert!(
                (got / want - 1.0).abs() < 1e-12,
                "a={a} b={b} x={x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn symmetric_in_swapping_the_parameters_and_the_variable() {
        // x and 1 - x both exact.
        for (a, b, x) in [
            (3.0, 1e6, 0.5f64.powi(19)),
            (1e5, 2e5, 0.3330078125),
            (0.5, 20.0, 0.75),
        ] {
            let p = power_terms(a, b, x);
            let q = power_terms(b, a, 1.0 - x);
            assert!((p / q - 1.0).abs() < 1e-12, "a={a} b={b} x={x}: {p} vs {q}");
        }
    }
}
