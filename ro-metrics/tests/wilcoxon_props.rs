//! Property tests of the Wilcoxon test: p-values in [0, 1], one-sided complementarity,
//! symmetry under negation, and the bootstrap's reproducibility.

use proptest::prelude::*;
use ro_metrics::{
    paired_bootstrap_mean_difference, wilcoxon_differences, Alternative, BootstrapOptions,
    PValueMethod, WilcoxonMethod, WilcoxonOptions, ZeroMethod,
};

fn opts(alternative: Alternative, method: WilcoxonMethod, zm: ZeroMethod) -> WilcoxonOptions {
    WilcoxonOptions {
        zero_method: zm,
        correction: false,
        alternative,
        method,
    }
}

proptest! {
    #[test]
    fn pvalues_are_probabilities(d in prop::collection::vec(-5i32..6, 2..70), m in 0usize..3, z in 0usize..3) {
        let d: Vec<f64> = d.into_iter().map(f64::from).collect();
        let method = [WilcoxonMethod::Auto, WilcoxonMethod::Exact, WilcoxonMethod::Asymptotic][m];
        let zm = [ZeroMethod::Wilcox, ZeroMethod::Pratt, ZeroMethod::Zsplit][z];
        for alt in [Alternative::TwoSided, Alternative::Greater, Alternative::Less] {
            let r = wilcoxon_differences(&d, &opts(alt, method, zm)).unwrap();
            prop_assert!(r.pvalue.is_nan() || (0.0..=1.0).contains(&r.pvalue), "{}", r.pvalue);
        }
    }

    #[test]
    fn one_sided_asymptotic_pvalues_are_complementary(d in prop::collection::vec(-100.0f64..100.0, 3..80)) {
        prop_assume!(d.iter().any(|&v| v != 0.0));
        let g = wilcoxon_differences(&d, &opts(Alternative::Greater, WilcoxonMethod::Asymptotic, ZeroMethod::Wilcox)).unwrap();
        let l = wilcoxon_differences(&d, &opts(Alternative::Less, WilcoxonMethod::Asymptotic, ZeroMethod::Wilcox)).unwrap();
        prop_assert!((g.pvalue + l.pvalue - 1.0).abs() < 1e-12);
    }

    #[test]
    fn exact_one_sided_pvalues_overlap_by_the_observed_point(d in prop::collection::vec(1u32..1000, 1..25), signs in prop::collection::vec(any::<bool>(), 25)) {
        // Distinct magnitudes (no ties, no zeros): P(W+ >= w) + P(W+ <= w) = 1 + P(W+ = w).
        let mut mags: Vec<u32> = d;
        mags.sort_unstable();
        mags.dedup();
        let d: Vec<f64> = mags.iter().zip(&signs).map(|(&m, &s)| if s { f64::from(m) } else { -f64::from(m) }).collect();
        let g = wilcoxon_differences(&d, &opts(Alternative::Greater, WilcoxonMethod::Auto, ZeroMethod::Wilcox)).unwrap();
        let l = wilcoxon_differences(&d, &opts(Alternative::Less, WilcoxonMethod::Auto, ZeroMethod::Wilcox)).unwrap();
        prop_assert_eq!(g.method, PValueMethod::Exact);
        prop_assert!(g.pvalue + l.pvalue >= 1.0 - 1e-12);
        // Negating the differences swaps the alternatives.
        let neg: Vec<f64> = d.iter().map(|v| -v).collect();
        let ln = wilcoxon_differences(&neg, &opts(Alternative::Less, WilcoxonMethod::Auto, ZeroMethod::Wilcox)).unwrap();
        prop_assert!((ln.pvalue - g.pvalue).abs() < 1e-12);
        let t = wilcoxon_differences(&d, &opts(Alternative::TwoSided, WilcoxonMethod::Auto, ZeroMethod::Wilcox)).unwrap();
        let tn = wilcoxon_differences(&neg, &opts(Alternative::TwoSided, WilcoxonMethod::Auto, ZeroMethod::Wilcox)).unwrap();
        prop_assert_eq!(t.pvalue, tn.pvalue);
        prop_assert_eq!(t.statistic, tn.statistic);
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_its_resamples(a in prop::collection::vec(0.0f64..1.0, 2..40), seed in any::<u64>()) {
        let b: Vec<f64> = a.iter().map(|v| v * 0.9).collect();
        let o = BootstrapOptions { n_resamples: 200, seed, ..Default::default() };
        let x = paired_bootstrap_mean_difference(&a, &b, &o).unwrap();
        let y = paired_bootstrap_mean_difference(&a, &b, &o).unwrap();
        prop_assert_eq!(x, y);
        prop_assert!(x.lower <= x.upper);
        // All differences are >= 0, so every resampled mean is too.
        prop_assert!(x.lower >= 0.0);
    }
}
