//! Quantiles of the beta distribution: the root of `I_x(a, b) = p` (or `1 - I_x(a, b) = q`).
//!
//! The root is found by Newton's method on `ln T(v) - ln p` in `ln v`, where `T` is the tail
//! being matched and `v` is whichever of `x` and `1 - x` the first guess puts below one half.
//! In that form a tail that behaves like a power of `v` (every tail of the beta distribution,
//! far enough out) is a straight line, so the iteration converges from a rough guess in a few
//! steps; a bracket of the root guards it elsewhere. Matching the small tail itself (never `1`
//! minus the other) and solving for the small variable keeps the quantile's relative error at
//! a few units in the last place, which is what `scipy.stats.beta.ppf`/`isf` (Boost's
//! `ibeta_inv`/`ibetac_inv`) deliver too.

use super::fraction::tails;
use crate::normal::normal_ppf;

/// Newton steps before giving up (the bracket guarantees progress; a few steps are typical).
const MAX_STEPS: usize = 200;

/// `|ln(T/p)|` below which a step too small to move `v` means convergence. Between adjacent
/// doubles a steep tail changes by up to `(d ln T / d ln v) · 2⁻⁵²`, about 1e-8 for shapes
/// of 10⁸; far larger values mean the tail underflowed.
const CONVERGED: f64 = 1e-6;

/// Which tail of `Beta(a, b)` a probability is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tail {
    /// `P(X <= x) = p`.
    Lower,
    /// `P(X > x) = p`.
    Upper,
}

impl Tail {
    fn other(self) -> Self {
        match self {
            Self::Lower => Self::Upper,
            Self::Upper => Self::Lower,
        }
    }
}

/// The `x` with `tail` probability `p` under `Beta(a, b)`, for `a, b > 0` and `0 < p < 1`.
pub(super) fn quantile(a: f64, b: f64, p: f64, tail: Tail) -> f64 {
    let (lower, upper) = match tail {
        Tail::Lower => (p, 1.0 - p),
        Tail::Upper => (1.0 - p, p),
    };
    let (x0, y0) = first_guess(a, b, lower, upper);
    if x0 <= 0.5 {
        solve(a, b, p, tail, x0)
    } else {
        // x = 1 - y with y the quantile of Beta(b, a) for the other tail.
        1.0 - solve(b, a, p, tail.other(), y0)
    }
}

/// A rough `(x, 1 - x)` with `I_x(a, b) ≈ lower` and `1 - I_x(a, b) ≈ upper` (Abramowitz and
/// Stegun 26.5.22 when both parameters are at least 1; otherwise the leading power of the
/// tail the probability falls in).
fn first_guess(a: f64, b: f64, lower: f64, upper: f64) -> (f64, f64) {
    let (x, y) = if a >= 1.0 && b >= 1.0 {
        // z: the standard normal quantile with upper tail `lower`.
        let z = if lower < 0.5 {
            -normal_ppf(lower)
        } else {
            normal_ppf(upper)
        };
        let lambda = (z * z - 3.0) / 6.0;
        let ra = 1.0 / (2.0 * a - 1.0);
        let rb = 1.0 / (2.0 * b - 1.0);
        let h = 2.0 / (ra + rb);
        let w = z * (h + lambda).sqrt() / h - (rb - ra) * (lambda + 5.0 / 6.0 - 2.0 / (3.0 * h));
        // x = a / (a + b e^{2w}) and y = b e^{2w} / (a + b e^{2w}), without overflow.
        let e = (2.0 * w).exp();
        (a / (a + b * e), b / (b + a / e))
    } else {
        // I_x ≈ x^a / (a B) near 0 and 1 - I_x ≈ y^b / (b B) near 1, weighed at the mean.
        let ln_beta = libm::lgamma(a) + libm::lgamma(b) - libm::lgamma(a + b);
        let left = (-a * (b / a).ln_1p() - ln_beta).exp() / a;
        let right = (-b * (a / b).ln_1p() - ln_beta).exp() / b;
        if lower * (left + right) < left {
            let x = (((lower * a).ln() + ln_beta) / a).exp();
            (x, 1.0 - x)
        } else {
            let y = (((upper * b).ln() + ln_beta) / b).exp();
            (1.0 - y, y)
        }
    };
    let inside = |v: f64| {
        if v.is_nan() {
            0.5
        } else {
            v.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON)
        }
    };
    (inside(x), inside(y))
}

/// Newton's method on `F(t) = ln T(e^t) - ln p` (module documentation), from `guess`.
fn solve(a: f64, b: f64, p: f64, tail: Tail, guess: f64) -> f64 {
    // Match the tail below one half (1 - p is exact for p > 1/2): matching 0.999 where the other
    // tail is 0.001 would cost three digits of the root.
    let (p, tail) = if p > 0.5 {
        (1.0 - p, tail.other())
    } else {
        (p, tail)
    };
    let increasing = tail == Tail::Lower;
    // The root lies in (low, high); F < 0 below it when `increasing`.
    let (mut low, mut high) = (0.0f64, 1.0f64);
    let mut v = guess;
    let mut converging = false;
    for _ in 0..MAX_STEPS {
        let t = tails(a, b, v);
        let value = match tail {
            Tail::Lower => t.lower,
            Tail::Upper => t.upper,
        };
        let f = (value / p).ln();
        if f == 0.0 {
            return v;
        }
        if (f < 0.0) == increasing {
            low = v;
        } else {
            high = v;
        }
        // dF/dt = v T'(v) / T(v) = ± x^a (1-x)^b / B / ((1 - v) T).
        let slope = t.power_terms / ((1.0 - v) * value);
        let step = if increasing { -f / slope } else { f / slope };
        let next = v + v * step.exp_m1();
        if next == v && f.abs() < CONVERGED {
            // The correction is below half a unit in the last place of v.
            return v;
        }
        // (A vanishing step far from the root means the tail underflowed: bisect instead.)
        if next != v && next > low && next < high && step.is_finite() {
            if converging {
                return next;
            }
            // One more step after the correction falls below 1e-9: Newton then has ~1e-17 left.
            converging = step.abs() < 1e-9;
            v = next;
        } else {
            // Out of the bracket: bisect it (geometrically while it spans decades).
            v = if low > 0.0 && high / low > 4.0 {
                (low * high).sqrt()
            } else if low > 0.0 {
                0.5 * (low + high)
            } else {
                high / 16.0
            };
            converging = false;
        }
        if high - low <= f64::EPSILON * low {
            return v;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        // Beta(1, b): I_x = 1 - (1-x)^b, so the p quantile is 1 - (1-p)^(1/b).
        for (b, p) in [(1.0f64, 0.3f64), (7.0, 0.025), (1e4, 0.975), (0.5, 1e-8)] {
            let want = -((-p).ln_1p() / b).exp_m1();
            let got = quantile(1.0, b, p, Tail::Lower);
            assert!(
                (got / want - 1.0).abs() < 1e-14,
                "b={b} p={p}: {got} vs {want}"
            );
            // Beta(a, 1): I_x = x^a, upper tail q at x = (1-q)^(1/a).
            let want = ((-p).ln_1p() / b).exp();
            let got = quantile(b, 1.0, p, Tail::Upper);
            assert!(
                (got / want - 1.0).abs() < 1e-14,
                "a={b} q={p}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn symmetric_distribution_has_median_one_half() {
        for a in [0.5, 3.0, 40.0, 1e5] {
            let m = quantile(a, a, 0.5, Tail::Lower);
            assert!((m - 0.5).abs() < 1e-15, "a = {a}: {m}");
        }
    }

    #[test]
    fn quantile_is_within_2e_15_of_the_root() {
        let tail_at = |a, b, x, tail| {
            let t = tails(a, b, x);
            if tail == Tail::Lower {
                t.lower
            } else {
                t.upper
            }
        };
        for (a, b) in [
            (0.5, 0.5),
            (2.5, 7.0),
            (300.0, 20.0),
            (0.5, 1e6),
            (1e6, 2e6),
        ] {
            for p in [1e-10, 0.025, 0.5, 0.9] {
                for tail in [Tail::Lower, Tail::Upper] {
                    let x = quantile(a, b, p, tail);
                    let below = x * (1.0 - 2e-15);
                    let above = (x * (1.0 + 2e-15)).min(1.0);
                    let (t_below, t_above) =
                        (tail_at(a, b, below, tail), tail_at(a, b, above, tail));
                    let brackets = t_below.min(t_above) <= p && p <= t_below.max(t_above);
                    assert!(brackets, "a={a} b={b} p={p} {tail:?}: x = {x}");
                }
            }
        }
    }

    #[test]
    fn underflowing_tails_do_not_stop_the_search() {
        // The first guess lands where the tail underflows to a subnormal number; a Newton step
        // from there is too small to move x although the root is far (found by a stress run).
        let (a, b, p) = (
            35_365_190.858_605_99,
            1.399_765_065_387_469_6,
            4.631_377_406_333_589e-274,
        );
        let x = quantile(a, b, p, Tail::Lower);
        let lower = tails(a, b, x).lower;
        assert!((lower / p).ln().abs() < 1e-6, "x = {x}: tail {lower:e}");
    }
}
