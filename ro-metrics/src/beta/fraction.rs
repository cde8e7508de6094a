//! Both tails of the regularized incomplete beta function by its continued fraction.
//!
//! `I_v(p, q) = v^p (1-v)^q / (p B(p, q)) · 1/(1 + d₁/(1 + d₂/(1 + ...)))` with
//! `d₂ₘ₊₁ = -(p+m)(p+q+m)v / ((p+2m)(p+2m+1))` and `d₂ₘ = m(q-m)v / ((p+2m-1)(p+2m))`
//! (Abramowitz and Stegun 26.5.8). It converges quickly for `v < (p+1)/(p+q+2)`; above that
//! the same fraction gives the upper tail through `1 - I_x(a, b) = I_{1-x}(b, a)`, so the tail
//! computed directly is the one that is small far out, and neither tail loses relative
//! precision to a subtraction from 1.
//!
//! The fraction is evaluated in its even (contracted) form
//! `1/(β₁ + α₂/(β₂ + α₃/(β₃ + ...)))`, `β₁ = 1 + d₁`, `βₘ₊₁ = 1 + d₂ₘ + d₂ₘ₊₁`,
//! `αₘ₊₁ = -d₂ₘ₋₁ d₂ₘ`, with the denominators rewritten as
//!
//! ```text
//! β₁ = (1 + λ) / (p + 1),   βₘ₊₁ = (2m(p+m)(2-v) + (p-1)(1+λ)) / ((p+2m-1)(p+2m+1)),   λ = p - (p+q)v,
//! ```
//!
//! a sum of terms of one sign (for `p >= 1`) instead of `1 + d₂ₘ + d₂ₘ₊₁`, whose terms nearly
//! cancel when `v` is close to 1. With `λ` and `2 - v` formed from `x` itself (the caller's
//! exact variable), the upper tail at an `x` just above the switch point keeps its precision
//! although `1 - x` is rounded: evaluated naively in `1 - x`, it would lose a factor `1/x`
//! (1e-13 relative error at x = 4e-4). This is the rearrangement DiDonato and Morris use in
//! ACM TOMS 708 (`bfrac`).

use super::prefix::power_terms;

/// Stop when a convergent changes by at most this (relative): one unit in the last place.
const TOLERANCE: f64 = f64::EPSILON;

/// Lentz's guard against a zero denominator.
const TINY: f64 = 1e-300;

/// Upper bound on the fraction's terms; it needs about `√(p q / (p + q))` near the switch.
const MAX_TERMS: usize = 10_000_000;

/// The lower tail `I_x(a, b)`, the upper tail `1 - I_x(a, b)`, and `x^a (1-x)^b / B(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Tails {
    /// `I_x(a, b)`, the beta distribution's CDF.
    pub lower: f64,
    /// `1 - I_x(a, b)`, its survival function.
    pub upper: f64,
    /// `x^a (1-x)^b / B(a, b)`: `x (1-x)` times the density at `x`.
    pub power_terms: f64,
}

/// Both tails at `x` for `a, b > 0`, `0 <= x <= 1`.
pub(super) fn tails(a: f64, b: f64, x: f64) -> Tails {
    if x <= 0.0 {
        return Tails {
            lower: 0.0,
            upper: 1.0,
            power_terms: 0.0,
        };
    }
    if x >= 1.0 {
        return Tails {
            lower: 1.0,
            upper: 0.0,
            power_terms: 0.0,
        };
    }
    let power = power_terms(a, b, x);
    let total = a + b;
    if x < (a + 1.0) / (total + 2.0) {
        let fraction = Fraction {
            p: a,
            q: b,
            v: x,
            lambda: x.mul_add(-total, a),
            two_minus_v: 2.0 - x,
        };
        let lower = power * fraction.evaluate() / a;
        Tails {
            lower,
            upper: 1.0 - lower,
            power_terms: power,
        }
    } else {
        let fraction = Fraction {
            p: b,
            q: a,
            v: 1.0 - x,
            lambda: x.mul_add(total, -a),
            two_minus_v: 1.0 + x,
        };
        let upper = power * fraction.evaluate() / b;
        Tails {
            lower: 1.0 - upper,
            upper,
            power_terms: power,
        }
    }
}

/// The continued fraction of `I_v(p, q)` with the quantities that must not be formed from a
/// rounded `v`.
struct Fraction {
    p: f64,
    q: f64,
    v: f64,
    /// `p - (p+q) v`, accurate.
    lambda: f64,
    /// `2 - v`, accurate.
    two_minus_v: f64,
}

impl Fraction {
    /// `1/(β₁ + α₂/(β₂ + ...))` by the modified Lentz method (module documentation).
    fn evaluate(&self) -> f64 {
        let Self {
            p,
            q,
            v,
            lambda,
            two_minus_v,
        } = *self;
        let guard = |t: f64| if t.abs() < TINY { TINY } else { t };
        // Lentz on g = β₁ + α₂/(β₂ + ...); the fraction is 1/g.
        let mut g = guard((1.0 + lambda) / (p + 1.0));
        let mut c = g;
        let mut d = 0.0;
        for m in 1..=MAX_TERMS {
            let m = m as f64;
            let alpha = m * (q - m) * (p + m - 1.0) * (p + q + m - 1.0) * (v * v)
                / ((p + 2.0 * m) * (p + 2.0 * m - 2.0) * (p + 2.0 * m - 1.0).powi(2));
            let beta = (2.0 * m * (p + m) * two_minus_v + (p - 1.0) * (1.0 + lambda))
                / ((p + 2.0 * m - 1.0) * (p + 2.0 * m + 1.0));
            d = 1.0 / guard(beta + alpha * d);
            c = guard(beta + alpha / c);
            let step = c * d;
            g *= step;
            if (step - 1.0).abs() <= TOLERANCE {
                break;
            }
        }
        1.0 / g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fraction as Abramowitz and Stegun write it, `1/(1 + d₁/(1 + d₂/(1 + ...)))`,
    /// evaluated from the bottom up: the plain reference for the contracted form.
    fn plain_fraction(p: f64, q: f64, v: f64) -> f64 {
        let d = |k: usize| {
            let m = (k / 2) as f64;
            if k % 2 == 1 {
                -(p + m) * (p + q + m) * v / ((p + 2.0 * m) * (p + 2.0 * m + 1.0))
            } else {
                m * (q - m) * v / ((p + 2.0 * m - 1.0) * (p + 2.0 * m))
            }
        };
        let tail = (1..=4000).rev().fold(1.0, |acc, k| 1.0 + d(k) / acc);
        1.0 / tail
    }

    #[test]
    fn contracted_fraction_equals_the_plain_one() {
        for (p, q) in [
            (0.5, 0.5),
            (0.7, 30.0),
            (3.5, 1.0),
            (2.0, 5.0),
            (40.0, 60.0),
            (1e3, 9.0),
        ] {
            for v in [1e-6, 0.01, 0.1, 0.3] {
                if v >= (p + 1.0) / (p + q + 2.0) {
                    continue;
                }
                let contracted = Fraction {
                    p,
                    q,
                    v,
                    lambda: p - (p + q) * v,
                    two_minus_v: 2.0 - v,
                }
                .evaluate();
                let plain = plain_fraction(p, q, v);
                assert!(
                    (contracted / plain - 1.0).abs() < 1e-13,
                    "p={p} q={q} v={v}: {contracted} vs {plain}"
                );
            }
        }
    }

    #[test]
    fn closed_forms() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1-x)^b.
        for x in [1e-12, 0.1, 0.5, 0.9, 0.998] {
            let t = tails(1.0, 1.0, x);
            assert!((t.lower / x - 1.0).abs() < 1e-15, "x = {x}");
            let t = tails(3.5, 1.0, x);
            assert!((t.lower / x.powf(3.5) - 1.0).abs() < 1e-14, "x = {x}");
            let t = tails(1.0, 40.0, x);
            let upper = (40.0 * (-x).ln_1p()).exp();
            assert!((t.upper / upper - 1.0).abs() < 1e-13, "x = {x}");
        }
    }

    #[test]
    fn tails_sum_to_one_and_swap() {
        // x and 1 - x both exact.
        for (a, b, x) in [
            (2.0, 5.0, 0.3125),
            (50.0, 60.0, 0.5),
            (0.5, 1e5, 0.5f64.powi(18)),
        ] {
            let t = tails(a, b, x);
            assert!((t.lower + t.upper - 1.0).abs() < 1e-15);
            let s = tails(b, a, 1.0 - x);
            assert!((t.lower / s.upper - 1.0).abs() < 1e-12, "a={a} b={b} x={x}");
        }
    }
}
