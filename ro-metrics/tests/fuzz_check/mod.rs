//! What the `rouge_tokenizer` fuzz target (`fuzz/fuzz_targets/rouge_tokenizer.rs`) checks on
//! each input; `tests/fuzz_regressions.rs` replays the committed corpus through the same code.

use ro_metrics::{tokenize, DefaultTokenizer, PorterStemmer, RougeScorer, RougeType, Tokenizer};

/// Text -> rouge-score's tokenizer: the fast scanner equals the literal transcription (on
/// ASCII, where both lowercase alike), with and without the Porter stemmer; ROUGE of the
/// text's two halves is in [0, 1]. Returns the number of (unstemmed) tokens.
pub fn rouge_tokenizer(text: &str) -> usize {
    let stemmer = PorterStemmer::new();
    let mut count = 0;
    for stem in [false, true] {
        let fast = DefaultTokenizer::new(stem).tokenize(text);
        if text.is_ascii() {
            assert_eq!(
                fast,
                tokenize(text, stem.then_some(&stemmer)),
                "stem = {stem}"
            );
        }
        if !stem {
            count = fast.len();
        }
    }
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(0);
    let (a, b) = text.split_at(mid);
    let scorer = RougeScorer::new(&RougeType::STANDARD, true);
    for (_, s) in scorer.score(a, b).iter() {
        for v in [s.precision, s.recall, s.fmeasure] {
            assert!((0.0..=1.0).contains(&v), "{v}");
        }
    }
    count
}
