//! Property tests of the agreement statistics, the proportion intervals and the beta
//! distribution: symmetries, invariances, ranges and inverses.

use proptest::prelude::*;
use ro_metrics::agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, CohenKappaOptions, FleissMethod, KappaWeights,
    LevelOfMeasurement,
};
use ro_metrics::{beta_cdf, beta_isf, beta_ppf, beta_sf, proportion_confint, ConfintMethod};

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// Two raters' grades 0..5 on the same samples.
fn two_raters() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (1usize..50).prop_flat_map(|n| {
        (
            prop::collection::vec(0u8..5, n),
            prop::collection::vec(0u8..5, n),
        )
    })
}

/// Ratings: `raters` rows of `units` values 0..6, some missing.
fn reliability_data() -> impl Strategy<Value = Vec<Vec<Option<f64>>>> {
    (2usize..5, 2usize..25).prop_flat_map(|(raters, units)| {
        prop::collection::vec(
            prop::collection::vec(prop::option::weighted(0.8, 0u8..6), units),
            raters,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .map(|r| r.into_iter().map(|v| v.map(f64::from)).collect())
                .collect()
        })
    })
}

const LEVELS: [LevelOfMeasurement; 4] = [
    LevelOfMeasurement::Nominal,
    LevelOfMeasurement::Ordinal,
    LevelOfMeasurement::Interval,
    LevelOfMeasurement::Ratio,
];

const METHODS: [ConfintMethod; 5] = [
    ConfintMethod::Normal,
    ConfintMethod::AgrestiCoull,
    ConfintMethod::Beta,
    ConfintMethod::Wilson,
    ConfintMethod::Jeffreys,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cohen_kappa_is_symmetric_and_at_most_one((y1, y2) in two_raters(), w in 0usize..3) {
        let weights = [None, Some(KappaWeights::Linear), Some(KappaWeights::Quadratic)][w];
        let options = CohenKappaOptions { weights, ..CohenKappaOptions::default() };
        let a = cohen_kappa(&y1, &y2, &options).unwrap();
        let b = cohen_kappa(&y2, &y1, &options).unwrap();
        prop_assert!(close(a, b, 1e-12), "{a} vs {b}");
        prop_assert!(a.is_nan() || a <= 1.0 + 1e-15, "{a}");
        let same = cohen_kappa(&y1, &y1, &options).unwrap();
        prop_assert!(same.is_nan() || same == 1.0, "{same}");
    }

    #[test]
    fn fleiss_kappa_ignores_subject_and_category_order(
        (rows, raters) in (1usize..15, 2usize..7).prop_flat_map(|(subjects, raters)| {
            (prop::collection::vec(prop::collection::vec(0usize..4, raters), subjects), Just(raters))
        }),
        rotate in 0usize..4,
    ) {
        // Each subject: `raters` ratings into 4 categories, as a count table.
        let table: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| (0..4).map(|c| r.iter().filter(|&&x| x == c).count() as f64).collect())
            .collect();
        prop_assert_eq!(table[0].iter().sum::<f64>(), raters as f64);
        let mut reordered: Vec<Vec<f64>> = table.iter().rev().cloned().collect();
        for row in &mut reordered {
            row.rotate_left(rotate);
        }
        for method in [FleissMethod::Fleiss, FleissMethod::Randolph] {
            let a = fleiss_kappa(&table, method).unwrap();
            let b = fleiss_kappa(&reordered, method).unwrap();
            prop_assert!(close(a, b, 1e-12), "{method}: {a} vs {b}");
            prop_assert!(a.is_nan() || a <= 1.0 + 1e-15);
        }
        // Randolph's chance agreement 1/k never exceeds Fleiss' Σp² (Warrens 2010).
        let fleiss = fleiss_kappa(&table, FleissMethod::Fleiss).unwrap();
        let randolph = fleiss_kappa(&table, FleissMethod::Randolph).unwrap();
        prop_assert!(fleiss.is_nan() || randolph >= fleiss - 1e-12, "{randolph} < {fleiss}");
    }

    #[test]
    fn krippendorff_alpha_ignores_rater_order(data in reliability_data(), level in 0usize..4) {
        let level = LEVELS[level];
        let a = krippendorff_alpha(&data, level, None);
        let reversed: Vec<_> = data.iter().rev().cloned().collect();
        let b = krippendorff_alpha(&reversed, level, None);
        match (a, b) {
            // Per-unit counts do not depend on rater order, so the result is the same bits.
            (Ok(a), Ok(b)) => prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
        }
    }

    #[test]
    fn krippendorff_alpha_of_numbers_equals_alpha_of_their_labels(data in reliability_data()) {
        // Labels that sort like the numbers: the same domain order, the same alpha.
        let labels: Vec<Vec<Option<String>>> = data
            .iter()
            .map(|r| r.iter().map(|v| v.map(|x| format!("grade {x}"))).collect())
            .collect();
        let domain: Vec<String> = (0..6).map(|x| format!("grade {x}")).collect();
        let numeric_domain: Vec<f64> = (0..6).map(f64::from).collect();
        for level in [LevelOfMeasurement::Nominal, LevelOfMeasurement::Ordinal] {
            let numbers = krippendorff_alpha(&data, level, Some(&numeric_domain));
            let named = krippendorff_alpha(&labels, level, Some(&domain));
            match (numbers, named) {
                (Ok(a), Ok(b)) => prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{a} vs {b}"),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{level}: {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn intervals_are_ordered_and_contain_the_estimate_where_theory_says_so(
        nobs in 1u32..5000,
        share in 0.0f64..=1.0,
        alpha in 0.001f64..0.5,
    ) {
        let nobs = f64::from(nobs);
        let count = (share * nobs).round();
        let q = count / nobs;
        // Rounding: statsmodels' Wilson bound for count = nobs is 1 - 1e-16 at some n.
        let slack = 4.0 * f64::EPSILON;
        for method in METHODS {
            let ci = proportion_confint(count, nobs, alpha, method).unwrap();
            prop_assert!(0.0 <= ci.low && ci.low <= ci.high && ci.high <= 1.0, "{method}: {ci:?}");
            // Wald, Wilson and Clopper-Pearson always contain the sample proportion.
            if matches!(method, ConfintMethod::Normal | ConfintMethod::Wilson | ConfintMethod::Beta) {
                prop_assert!(ci.low <= q + slack && q <= ci.high + slack, "{method}: {q} not in {ci:?}");
            }
            // A smaller alpha widens the interval.
            let wider = proportion_confint(count, nobs, alpha / 2.0, method).unwrap();
            prop_assert!(
                wider.low <= ci.low + slack && wider.high >= ci.high - slack,
                "{method}: {wider:?} vs {ci:?}"
            );
        }
    }

    #[test]
    fn beta_quantiles_invert_the_distribution(
        a in prop_oneof![0.2f64..5.0, 5.0f64..500.0, 500.0f64..1e6],
        b in prop_oneof![0.2f64..5.0, 5.0f64..500.0, 500.0f64..1e6],
        p in prop_oneof![1e-12f64..1e-3, 1e-3f64..0.999],
    ) {
        // Near 1 a double resolves 1 - x only to 1e-16, so the tails there are checked mirrored.
        let resolved = |x: f64| x > 1e-300 && x < 1.0 - 1e-6;
        let x = beta_ppf(p, a, b);
        prop_assert!((0.0..=1.0).contains(&x));
        if resolved(x) {
            prop_assert!(close(beta_cdf(x, a, b), p, 1e-9), "cdf(ppf({p})) = {}", beta_cdf(x, a, b));
        }
        let y = beta_isf(p, a, b);
        if resolved(y) {
            prop_assert!(close(beta_sf(y, a, b), p, 1e-9), "sf(isf({p})) = {}", beta_sf(y, a, b));
        }
        // The lower quantile of p is the upper quantile of 1 - p (both exact in binary).
        let q = 1.0 - p;
        let lower = beta_ppf(1.0 - q, a, b);
        prop_assert!(close(beta_isf(q, a, b), lower, 1e-12) || lower < 1e-290);
        // Swapping the shapes mirrors the distribution.
        prop_assert!(close(beta_ppf(p, b, a), 1.0 - y, 1e-12) || !(1e-12..=1.0 - 1e-12).contains(&y));
    }

    #[test]
    fn beta_quantiles_converge_for_extreme_shapes_and_tails(
        log_a in -3.0f64..9.0,
        log_b in -3.0f64..9.0,
        p in prop_oneof![(-300.0f64..-0.3).prop_map(|e| 10f64.powf(e)), 1e-3f64..0.999],
    ) {
        let (a, b) = (10f64.powf(log_a), 10f64.powf(log_b));
        for (x, tail) in [(beta_ppf(p, a, b), beta_cdf as fn(f64, f64, f64) -> f64), (beta_isf(p, a, b), beta_sf)] {
            prop_assert!((0.0..=1.0).contains(&x), "a={a} b={b} p={p}: {x}");
            // Where a double resolves the root, the tail there is p up to the step between
            // adjacent doubles (steep for shapes of 10⁹).
            if x > 1e-290 && x < 1.0 - 1e-6 {
                let t = tail(x, a, b);
                prop_assert!((t / p).ln().abs() < 1e-6, "a={a} b={b} p={p}: x={x}, tail {t}");
            }
        }
    }
}
