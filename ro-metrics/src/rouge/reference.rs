//! The plain reference: `rouge_scorer.py`'s scoring functions transcribed line by line
//! (`_create_ngrams`, `_score_ngrams`, `_lcs_table`, `_backtrack_norec`,
//! `_summary_level_lcs`, `_union_lcs`), on token strings, with full dynamic-programming
//! tables and hash-map counters. It is slow and obviously faithful; the tests check the
//! fast [`RougeScorer`](crate::RougeScorer) against it.

use std::collections::{BTreeSet, HashMap};

use super::{RougeScore, RougeType, Scores};
use crate::tokenize::Tokenizer;

/// rouge-score's `RougeScorer(rouge_types, tokenizer=tokenizer).score(target, prediction)`.
///
/// ```
/// use ro_metrics::{reference, DefaultTokenizer, RougeScorer, RougeType};
///
/// let types = RougeType::STANDARD;
/// let (r, c) = ("the cat sat\non the mat", "the cat\nsat on a mat");
/// let slow = reference::score(&types, &DefaultTokenizer::new(true), r, c);
/// assert_eq!(slow, RougeScorer::new(&types, true).score(r, c));
/// ```
pub fn score(
    rouge_types: &[RougeType],
    tokenizer: &dyn Tokenizer,
    target: &str,
    prediction: &str,
) -> Scores {
    let target_tokens = tokenizer.tokenize(target);
    let prediction_tokens = tokenizer.tokenize(prediction);
    let mut entries: Vec<(RougeType, RougeScore)> = Vec::new();
    for &rouge_type in rouge_types {
        if entries.iter().any(|(t, _)| *t == rouge_type) {
            continue;
        }
        let score = match rouge_type {
            RougeType::L => score_lcs(&target_tokens, &prediction_tokens),
            RougeType::Lsum => {
                let target_sents: Vec<Vec<String>> =
                    sentences(target).map(|s| tokenizer.tokenize(s)).collect();
                let prediction_sents: Vec<Vec<String>> = sentences(prediction)
                    .map(|s| tokenizer.tokenize(s))
                    .collect();
                summary_level_lcs(&target_sents, &prediction_sents)
            }
            RougeType::N(n) => {
                let n = usize::from(n.get());
                score_ngrams(
                    &create_ngrams(&target_tokens, n),
                    &create_ngrams(&prediction_tokens, n),
                )
            }
        };
        entries.push((rouge_type, score));
    }
    Scores { entries }
}

/// `get_sents` without `split_summaries`: the non-empty `\n`-separated lines.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').filter(|s| !s.is_empty())
}

/// `_create_ngrams`: a counter of the n-grams of `tokens`.
pub fn create_ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut ngrams = HashMap::new();
    if tokens.len() >= n {
        for i in 0..tokens.len() - n + 1 {
            *ngrams.entry(&tokens[i..i + n]).or_insert(0) += 1;
        }
    }
    ngrams
}

/// `_score_ngrams`: clipped overlap of two n-gram counters.
pub fn score_ngrams(
    target: &HashMap<&[String], usize>,
    prediction: &HashMap<&[String], usize>,
) -> RougeScore {
    let mut intersection = 0;
    for (ngram, &count) in target {
        intersection += count.min(prediction.get(ngram).copied().unwrap_or(0));
    }
    let target_count: usize = target.values().sum();
    let prediction_count: usize = prediction.values().sum();
    RougeScore::from_counts(intersection, prediction_count.max(1), target_count.max(1))
}

/// `_score_lcs`: ROUGE-L of two token lists.
pub fn score_lcs(target: &[String], prediction: &[String]) -> RougeScore {
    if target.is_empty() || prediction.is_empty() {
        return RougeScore::ZERO;
    }
    let table = lcs_table(target, prediction);
    let lcs = table[target.len()][prediction.len()];
    RougeScore::from_counts(lcs, prediction.len(), target.len())
}

/// `_lcs_table`: the full `(|ref|+1) x (|can|+1)` LCS length table.
pub fn lcs_table<T: PartialEq>(reference: &[T], candidate: &[T]) -> Vec<Vec<usize>> {
    let (rows, cols) = (reference.len(), candidate.len());
    let mut table = vec![vec![0; cols + 1]; rows + 1];
    for i in 1..=rows {
        for j in 1..=cols {
            table[i][j] = if reference[i - 1] == candidate[j - 1] {
                table[i - 1][j - 1] + 1
            } else {
                table[i - 1][j].max(table[i][j - 1])
            };
        }
    }
    table
}

/// `lcs_ind` (`_lcs_table` + `_backtrack_norec`): the indices into `reference` of one
/// longest common subsequence, chosen by rouge-score's tie-break (match first, then move
/// left only when the cell on the left is strictly larger than the one above).
pub fn lcs_indices<T: PartialEq>(reference: &[T], candidate: &[T]) -> Vec<usize> {
    let t = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut lcs = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            lcs.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    lcs.reverse();
    lcs
}

/// `_summary_level_lcs`: ROUGE-Lsum of tokenized reference and candidate sentences.
pub fn summary_level_lcs(reference: &[Vec<String>], candidate: &[Vec<String>]) -> RougeScore {
    if reference.is_empty() || candidate.is_empty() {
        return RougeScore::ZERO;
    }
    let m: usize = reference.iter().map(Vec::len).sum();
    let n: usize = candidate.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return RougeScore::ZERO;
    }
    let mut counts_r: HashMap<&str, usize> = HashMap::new();
    let mut counts_c: HashMap<&str, usize> = HashMap::new();
    for token in reference.iter().flatten() {
        *counts_r.entry(token).or_insert(0) += 1;
    }
    for token in candidate.iter().flatten() {
        *counts_c.entry(token).or_insert(0) += 1;
    }
    let mut hits = 0;
    for r in reference {
        // `_union_lcs` / `_find_union`: the sorted union of the LCS indices of `r`
        // against every candidate sentence.
        let union: BTreeSet<usize> = candidate.iter().flat_map(|c| lcs_indices(r, c)).collect();
        for i in union {
            let token = r[i].as_str();
            let (Some(cc), Some(cr)) = (counts_c.get_mut(token), counts_r.get_mut(token)) else {
                continue;
            };
            if *cc > 0 && *cr > 0 {
                hits += 1;
                *cc -= 1;
                *cr -= 1;
            }
        }
    }
    RougeScore::from_counts(hits, n, m)
}
