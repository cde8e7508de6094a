//! Property tests: the fast scorer equals the plain reference and the `rougers` crate
//! (a second, independent port of rouge-score), and ROUGE's invariants hold.

use proptest::prelude::*;
use ro_metrics::{
    reference, tokenize, DefaultTokenizer, PorterStemmer, RougeScorer, RougeType, Tokenizer,
};

/// Pieces of text: a small vocabulary (many repeats, so LCS ties are common), stemmable
/// words, punctuation, line breaks and the non-ASCII characters rouge-score treats specially.
const ATOMS: &[&str] = &[
    "a ",
    "b ",
    "c ",
    "the ",
    "The ",
    "cat ",
    "cats ",
    "dog",
    "dogs. ",
    "treated ",
    "treating ",
    "fractions, ",
    "60Gy/30fx ",
    "x",
    "y",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "-",
    "é",
    "ß",
    "Größe ",
    "İ",
    "\u{212a}",
    "放射",
    "😀",
    "\t",
];

fn text(max_atoms: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), 0..max_atoms).prop_map(|v| v.concat())
}

/// One long line (more than 64 and 128 tokens at times: multi-word bit-parallel rows).
fn long_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(&["a ", "b ", "c ", "d ", "a, "][..]),
        0..300,
    )
    .prop_map(|v| v.concat())
}

fn all_types() -> Vec<RougeType> {
    let mut types: Vec<RougeType> = (1..=4)
        .map(|n| RougeType::n(n).expect("positive"))
        .collect();
    types.extend([RougeType::L, RougeType::Lsum]);
    types
}

fn assert_same_as_reference(r: &str, c: &str) -> Result<(), TestCaseError> {
    let stemmer = PorterStemmer::new();
    let types = all_types();
    for stem in [false, true] {
        let plain = |t: &str| tokenize(t, stem.then_some(&stemmer));
        let fast = RougeScorer::new(&types, stem).score(r, c);
        prop_assert_eq!(
            &fast,
            &reference::score(&types, &plain, r, c),
            "stem={}",
            stem
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_equals_reference(r in text(80), c in text(80)) {
        assert_same_as_reference(&r, &c)?;
    }

    #[test]
    fn fast_equals_reference_on_long_lines(r in long_line(), c in long_line(), cut in 0usize..300) {
        // Also with a line break somewhere in the candidate.
        assert_same_as_reference(&r, &c)?;
        let cut = c.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(c.len());
        let broken = format!("{}\n{}", &c[..cut], &c[cut..]);
        assert_same_as_reference(&r, &broken)?;
    }

    #[test]
    fn fast_tokenizer_equals_plain(s in any::<String>(), t in text(60)) {
        let stemmer = PorterStemmer::new();
        for stem in [false, true] {
            let fast = DefaultTokenizer::new(stem);
            prop_assert_eq!(fast.tokenize(&s), tokenize(&s, stem.then_some(&stemmer)));
            prop_assert_eq!(fast.tokenize(&t), tokenize(&t, stem.then_some(&stemmer)));
        }
    }

    #[test]
    fn custom_tokenizer_equals_reference(r in text(60), c in text(60)) {
        let whitespace = |t: &str| -> Vec<String> { t.split_whitespace().map(str::to_owned).collect() };
        let types = all_types();
        let fast = RougeScorer::with_tokenizer(&types, whitespace).score(&r, &c);
        prop_assert_eq!(fast, reference::score(&types, &whitespace, &r, &c));
    }

    #[test]
    fn scores_are_in_unit_interval(r in text(80), c in text(80)) {
        for (t, s) in RougeScorer::new(&all_types(), true).score(&r, &c).iter() {
            for v in [s.precision, s.recall, s.fmeasure] {
                prop_assert!((0.0..=1.0).contains(&v), "{} {}", t, v);
            }
            // The harmonic mean lies between its arguments; 2pr/(p+r) may round one ulp past
            // them (p == r), exactly as rouge-score's own arithmetic does.
            let ulp = 4.0 * f64::EPSILON;
            prop_assert!(s.fmeasure <= s.precision.max(s.recall) * (1.0 + ulp), "{} {:?}", t, s);
            prop_assert!(s.fmeasure >= s.precision.min(s.recall) * (1.0 - ulp), "{} {:?}", t, s);
        }
    }

    #[test]
    fn swapping_texts_swaps_precision_and_recall(r in text(80), c in text(80), line in long_line()) {
        let scorer = RougeScorer::new(&all_types(), true);
        let (ab, ba) = (scorer.score(&r, &c), scorer.score(&c, &r));
        for ((t, x), (_, y)) in ab.iter().zip(ba.iter()) {
            // Summary-level LCS is not symmetric across several lines; on one line it is.
            if t == RougeType::Lsum && (r.contains('\n') || c.contains('\n')) {
                continue;
            }
            prop_assert_eq!((x.precision, x.recall, x.fmeasure), (y.recall, y.precision, y.fmeasure), "{}", t);
        }
        let (ab, ba) = (scorer.score(&line, &c.replace('\n', " ")), scorer.score(&c.replace('\n', " "), &line));
        let (x, y) = (ab.get(RougeType::Lsum).expect("lsum"), ba.get(RougeType::Lsum).expect("lsum"));
        prop_assert_eq!((x.precision, x.recall), (y.recall, y.precision));
    }

    #[test]
    fn identical_texts_score_one(t in text(80)) {
        let scorer = RougeScorer::new(&RougeType::STANDARD, true);
        let tokens = DefaultTokenizer::new(true).tokenize(&t).len();
        for (rouge_type, s) in scorer.score(&t, &t).iter() {
            let has_units = match rouge_type {
                RougeType::N(n) => tokens >= usize::from(n.get()),
                _ => tokens > 0,
            };
            let expected = if has_units { 1.0 } else { 0.0 };
            prop_assert_eq!((s.precision, s.recall, s.fmeasure), (expected, expected, expected), "{}", rouge_type);
        }
    }

    #[test]
    fn equals_rougers(r in text(80), c in text(80), line in long_line()) {
        let names = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"];
        for stem in [false, true] {
            let ours = RougeScorer::from_names(names, stem).expect("valid names");
            let theirs = rougers::RougeScorer::new(names, stem).expect("valid names");
            for (a, b) in [(r.as_str(), c.as_str()), (line.as_str(), c.as_str()), (c.as_str(), line.as_str())] {
                let (x, y) = (ours.score(a, b), theirs.score(a, b));
                for name in names {
                    let s = x.get(name.parse().expect("type")).expect("requested");
                    let t = y.get(name.parse().expect("type")).expect("requested");
                    prop_assert_eq!((s.precision, s.recall, s.fmeasure), (t.precision, t.recall, t.fmeasure), "{} stem={}", name, stem);
                }
            }
        }
    }
}
