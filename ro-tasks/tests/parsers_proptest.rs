//! The parsers never panic on arbitrary text (any script), and results respect invariants.

use proptest::prelude::*;
use ro_tasks::{extract_code, normalize_code, CodeSet, Modality, Regimen, Technique};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn regimen_parser_is_total(text in "\\PC{0,80}") {
        let r = Regimen::parse(&text);
        if let Some(t) = r.course.total_dose_gy { prop_assert!(t.is_finite() && t >= 0.0); }
        if let Some(d) = r.course.dose_per_fraction_gy { prop_assert!(d.is_finite() && d >= 0.0); }
        if let Some(n) = r.course.fractions { prop_assert!((1..=100).contains(&n)); }
    }

    #[test]
    fn regimen_numbers(total in 1u32..100, n in 1u32..50, sep in prop::sample::select(vec![" Gy in ", "Gy/", " Gy / ", " Gy, "])) {
        let text = format!("{total}{sep}{n} fractions");
        let r = Regimen::parse(&text);
        prop_assert_eq!(r.course.total_dose_gy, Some(f64::from(total)));
        prop_assert_eq!(r.course.fractions, Some(n));
    }

    #[test]
    fn code_normalization_is_total(text in "\\PC{0,24}") {
        let set = CodeSet::embedded();
        if let Ok(c) = normalize_code(&text, set) {
            // A normalized code is a fixed point.
            prop_assert_eq!(normalize_code(c.code(), set).map(|x| x.code().to_string()), Ok(c.code().to_string()));
        }
        let _ = extract_code(&text, set);
        let _ = Modality::parse(&text);
        let _ = Technique::parse(&text);
    }
}
