//! ROUGE against rouge-score 0.1.2: exact token lists and scores on the pairs of
//! `tools/fixtures/rouge/rouge_pairs.json` (written by `gen_rouge.py` beside it).

use ro_metrics::{
    reference, tokenize, DefaultTokenizer, PorterStemmer, RougeScore, RougeScorer, RougeType,
    Scores, Tokenizer,
};
use serde_json::Value;

const FIXTURE: &str = include_str!("../../tools/fixtures/rouge/rouge_pairs.json");
const MODES: [(&str, bool); 2] = [("plain", false), ("stemmed", true)];

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

fn rouge_types(doc: &Value) -> Vec<RougeType> {
    doc["rouge_types"]
        .as_array()
        .expect("rouge_types")
        .iter()
        .map(|t| t.as_str().expect("type name").parse().expect("known type"))
        .collect()
}

fn triple(v: &Value) -> [f64; 3] {
    let a = v.as_array().expect("[p, r, f]");
    [0, 1, 2].map(|k| a[k].as_f64().expect("float"))
}

/// Agreement to 1e-12 relative (the fixtures are in fact matched bit for bit, see below).
fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-12 * theirs.abs().max(f64::MIN_POSITIVE)
}

fn check(scores: &Scores, expected: &Value, label: &str) -> usize {
    let mut exact = 0;
    for (t, s) in scores.iter() {
        let want = triple(&expected[t.to_string()]);
        let got = [s.precision, s.recall, s.fmeasure];
        for k in 0..3 {
            assert!(
                close(got[k], want[k]),
                "{label} {t}: ours {got:?}, rouge-score {want:?}"
            );
            exact += usize::from(got[k].to_bits() == want[k].to_bits());
        }
    }
    exact
}

#[test]
fn fixture_covers_the_brief() {
    let doc = fixture();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 300);
    for kind in ["edge", "random_small", "random_medium", "unicode", "letter"] {
        assert!(cases.iter().any(|c| c["kind"] == kind), "no {kind} case");
    }
    assert!(cases
        .iter()
        .any(|c| c["reference"] == "" && c["candidate"] == ""));
}

#[test]
fn token_lists_match_rouge_score() {
    let doc = fixture();
    let stemmer = PorterStemmer::new();
    for case in doc["cases"].as_array().expect("cases") {
        for (mode, stem) in MODES {
            let fast = DefaultTokenizer::new(stem);
            let plain_stemmer = stem.then_some(&stemmer);
            for side in ["reference", "candidate"] {
                let text = case[side].as_str().expect("text");
                let want: Vec<&str> = case["tokens"][mode][side]
                    .as_str()
                    .expect("tokens")
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .collect();
                assert_eq!(
                    fast.tokenize(text),
                    want,
                    "case {} {mode} {side}: {text:?}",
                    case["id"]
                );
                assert_eq!(
                    tokenize(text, plain_stemmer),
                    want,
                    "plain tokenize, case {} {mode} {side}",
                    case["id"]
                );
            }
        }
    }
}

#[test]
fn scores_match_rouge_score_bit_for_bit() {
    let doc = fixture();
    let types = rouge_types(&doc);
    let mut total = 0;
    let mut exact = 0;
    for (mode, stem) in MODES {
        let scorer = RougeScorer::new(&types, stem);
        let cases = doc["cases"].as_array().expect("cases");
        for case in cases {
            let (r, c) = (
                case["reference"].as_str().expect("r"),
                case["candidate"].as_str().expect("c"),
            );
            let label = format!("case {} ({}) {mode}", case["id"], case["kind"]);
            exact += check(&scorer.score(r, c), &case["scores"][mode], &label);
            total += 3 * types.len();
        }
        // The batch API gives the same scores in the same order.
        let pairs: Vec<(&str, &str)> = cases
            .iter()
            .map(|c| {
                (
                    c["reference"].as_str().expect("r"),
                    c["candidate"].as_str().expect("c"),
                )
            })
            .collect();
        let batch = scorer.score_batch(&pairs);
        for ((r, c), scores) in pairs.iter().zip(&batch) {
            assert_eq!(&scorer.score(r, c), scores);
        }
        // Corpus means equal numpy.mean over the pairs.
        let mean = scorer.score_corpus(&pairs).expect("non-empty corpus");
        // numpy sums pairwise, we sum in order: equal to 1e-12, not necessarily bit for bit.
        check(&mean, &doc["means"][mode], &format!("{mode} corpus mean"));
    }
    assert_eq!(exact, total, "every float equals rouge-score's bit for bit");
}

#[test]
fn plain_reference_matches_rouge_score() {
    let doc = fixture();
    let types = rouge_types(&doc);
    let stemmer = PorterStemmer::new();
    for (mode, stem) in MODES {
        let plain = move |text: &str| tokenize(text, stem.then_some(&stemmer));
        for case in doc["cases"].as_array().expect("cases") {
            let (r, c) = (
                case["reference"].as_str().expect("r"),
                case["candidate"].as_str().expect("c"),
            );
            let scores = reference::score(&types, &plain, r, c);
            check(
                &scores,
                &case["scores"][mode],
                &format!("reference, case {} {mode}", case["id"]),
            );
        }
    }
}

#[test]
fn edge_cases_by_hand() {
    let scorer = RougeScorer::new(&RougeType::STANDARD, true);
    let zero = RougeScore {
        precision: 0.0,
        recall: 0.0,
        fmeasure: 0.0,
    };
    for (r, c) in [
        ("", ""),
        ("", "text"),
        ("text", ""),
        ("!!!", "???"),
        ("放射線", "放射線"),
        ("\n\n", "a"),
    ] {
        for (t, s) in scorer.score(r, c).iter() {
            assert_eq!(s, zero, "{t} of {r:?} vs {c:?}");
        }
    }
    let s = scorer.score("the patient", "the patient");
    for (t, score) in s.iter() {
        assert_eq!(score.fmeasure, 1.0, "{t}");
    }
    // One token: no bigram at all, rouge2 is 0/1.
    let s = scorer.score("patient", "patient");
    assert_eq!(s.get(RougeType::ROUGE2).map(|s| s.fmeasure), Some(0.0));
    assert_eq!(s.get(RougeType::ROUGE1).map(|s| s.fmeasure), Some(1.0));
}

#[test]
fn unknown_rouge_types_are_typed_errors() {
    use ro_metrics::RougeError;
    assert_eq!(
        "rouge0".parse::<RougeType>(),
        Err(RougeError::NonPositiveN {
            name: "rouge0".into()
        })
    );
    for bad in [
        "rouge10",
        "rougeW",
        "ROUGE1",
        "rouge",
        "",
        "rougeLSum",
        "rouge1 ",
    ] {
        assert_eq!(
            bad.parse::<RougeType>(),
            Err(RougeError::UnknownType { name: bad.into() }),
            "{bad:?}"
        );
    }
    for n in 1..=9u8 {
        let t: RougeType = format!("rouge{n}").parse().expect("rougeN");
        assert_eq!(t, RougeType::n(n).expect("positive"));
        assert_eq!(t.to_string(), format!("rouge{n}"));
    }
    assert!(RougeScorer::from_names(["rouge1", "rougeX"], false).is_err());
    assert_eq!(Scores::mean(&[]), Err(RougeError::EmptyCorpus));
    let scorer = RougeScorer::new(&[RougeType::ROUGE1], false);
    assert_eq!(
        scorer.score_multi::<&str>(&[], "x"),
        Err(RougeError::NoReferences)
    );
}
