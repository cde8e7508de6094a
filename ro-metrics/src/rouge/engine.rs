//! The fast path of [`RougeScorer`]: tokens are interned to integer ids as they are
//! scanned (so each distinct raw token is stemmed once per workspace), each pair is
//! renumbered to dense local ids, n-grams are counted with arrays and sorted keys, and
//! LCS runs bit-parallel ([`super::lcs`]). [`super::reference`] is the plain version.

use std::mem;

use rustc_hash::FxHashMap;

use super::lcs::{self, MatchMasks};
use super::{RougeScore, RougeScorer, RougeType, ScorerTokenizer, Scores};
use crate::porter::PorterStemmer;
use crate::tokenize::{is_valid_token, scan, stem_token, Piece, Tokenizer};

/// Id of a raw token whose stem is not a valid token (rouge-score drops it).
const DROPPED: u32 = u32::MAX;

/// Maps token strings to ids, and raw tokens to the ids of their stems.
#[derive(Debug, Default)]
struct Interner {
    /// Final token (after stemming) -> id.
    tokens: FxHashMap<Box<[u8]>, u32>,
    /// Raw token -> id of its stem, or [`DROPPED`]. Only used when stemming.
    stems: FxHashMap<Box<[u8]>, u32>,
}

impl Interner {
    fn len(&self) -> usize {
        self.tokens.len()
    }

    fn token_id(&mut self, token: &[u8]) -> u32 {
        if let Some(&id) = self.tokens.get(token) {
            return id;
        }
        // Fewer than u32::MAX distinct tokens fit in memory long before the ids run out.
        let id = self.tokens.len() as u32;
        self.tokens.insert(token.into(), id);
        id
    }

    /// The id of the token a raw `[a-z0-9]+` token becomes, stemmed when `stemmer` is set.
    fn raw_id(&mut self, raw: &[u8], stemmer: Option<&PorterStemmer>) -> u32 {
        let Some(stemmer) = stemmer else {
            return self.token_id(raw);
        };
        if raw.len() <= 3 {
            return self.token_id(raw);
        }
        if let Some(&id) = self.stems.get(raw) {
            return id;
        }
        let id = match std::str::from_utf8(raw) {
            Ok(raw) => {
                let stem = stem_token(Some(stemmer), raw);
                if is_valid_token(&stem) {
                    self.token_id(stem.as_bytes())
                } else {
                    DROPPED
                }
            }
            Err(_) => DROPPED,
        };
        self.stems.insert(raw.into(), id);
        id
    }
}

/// One tokenized text: ids for n-grams and ROUGE-L, and its non-empty lines for ROUGE-Lsum.
#[derive(Debug, Default)]
struct Doc {
    tokens: Vec<u32>,
    /// Tokens of the lines when the tokenizer is run per line (custom tokenizers); empty
    /// and unused otherwise, because the default tokenizer's lines concatenate to `tokens`.
    line_tokens: Vec<u32>,
    separate_lines: bool,
    /// The end of every line with at least one token, in the line token list.
    line_ends: Vec<usize>,
}

impl Doc {
    fn clear(&mut self) {
        self.tokens.clear();
        self.line_tokens.clear();
        self.separate_lines = false;
        self.line_ends.clear();
    }

    fn lines_tokens(&self) -> &[u32] {
        if self.separate_lines {
            &self.line_tokens
        } else {
            &self.tokens
        }
    }

    /// Closes the current line (empty lines are skipped: they add nothing to ROUGE-Lsum).
    fn end_line(&mut self) {
        let end = self.lines_tokens().len();
        if end > self.line_ends.last().copied().unwrap_or(0) {
            self.line_ends.push(end);
        }
    }

    /// The token ranges of the non-empty lines.
    fn lines(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let starts = std::iter::once(0).chain(self.line_ends.iter().copied());
        starts.zip(self.line_ends.iter().copied())
    }

    fn fill_default(
        &mut self,
        text: &str,
        interner: &mut Interner,
        stemmer: Option<&PorterStemmer>,
        buf: &mut Vec<u8>,
    ) {
        self.clear();
        scan(text, buf, |piece| match piece {
            Piece::Token(raw) => {
                let id = interner.raw_id(raw, stemmer);
                if id != DROPPED {
                    self.tokens.push(id);
                }
            }
            Piece::LineBreak => self.end_line(),
        });
        self.end_line();
    }

    fn fill_custom(
        &mut self,
        text: &str,
        interner: &mut Interner,
        tokenizer: &dyn Tokenizer,
        whole: bool,
        lines: bool,
    ) {
        self.clear();
        if whole {
            for token in tokenizer.tokenize(text) {
                self.tokens.push(interner.token_id(token.as_bytes()));
            }
        }
        if lines {
            self.separate_lines = true;
            for line in text.split('\n').filter(|line| !line.is_empty()) {
                for token in tokenizer.tokenize(line) {
                    self.line_tokens.push(interner.token_id(token.as_bytes()));
                }
                self.end_line();
            }
        }
    }
}

/// Renumbers the ids of one pair densely from 0, so per-pair arrays stay small.
#[derive(Debug, Default)]
struct LocalIds {
    local: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
    count: u32,
}

impl LocalIds {
    fn start(&mut self, global_count: usize) {
        if self.local.len() < global_count {
            self.local.resize(global_count, 0);
            self.stamp.resize(global_count, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.count = 0;
    }

    fn renumber(&mut self, ids: &mut [u32]) {
        for id in ids {
            let g = *id as usize;
            if self.stamp[g] != self.generation {
                self.stamp[g] = self.generation;
                self.local[g] = self.count;
                self.count += 1;
            }
            *id = self.local[g];
        }
    }
}

/// Reusable buffers and caches for scoring pairs; one per thread.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    interner: Interner,
    buf: Vec<u8>,
    reference: Doc,
    candidate: Doc,
    local: LocalIds,
    counts_r: Vec<u32>,
    counts_c: Vec<u32>,
    keys_r: Vec<u64>,
    keys_c: Vec<u64>,
    masks: MatchMasks,
    rows: Vec<u64>,
    marks: Vec<bool>,
}

impl Workspace {
    pub(super) fn score(
        &mut self,
        scorer: &RougeScorer,
        reference: &str,
        candidate: &str,
    ) -> Scores {
        self.tokenize(scorer, reference, candidate);
        let entries = scorer
            .rouge_types
            .iter()
            .map(|&t| {
                let score = match t {
                    RougeType::N(n) => self.rouge_n(usize::from(n.get())),
                    RougeType::L => self.rouge_l(),
                    RougeType::Lsum => self.rouge_lsum(),
                };
                (t, score)
            })
            .collect();
        Scores { entries }
    }

    fn tokenize(&mut self, scorer: &RougeScorer, reference: &str, candidate: &str) {
        let mut buf = mem::take(&mut self.buf);
        match &scorer.tokenizer {
            ScorerTokenizer::Default(tokenizer) => {
                let stemmer = tokenizer.stemmer();
                self.reference
                    .fill_default(reference, &mut self.interner, stemmer, &mut buf);
                self.candidate
                    .fill_default(candidate, &mut self.interner, stemmer, &mut buf);
            }
            ScorerTokenizer::Custom(tokenizer) => {
                let lines = scorer.rouge_types.contains(&RougeType::Lsum);
                let whole = scorer.rouge_types.iter().any(|&t| t != RougeType::Lsum);
                let tokenizer = tokenizer.as_ref();
                self.reference
                    .fill_custom(reference, &mut self.interner, tokenizer, whole, lines);
                self.candidate
                    .fill_custom(candidate, &mut self.interner, tokenizer, whole, lines);
            }
        }
        self.buf = buf;
        self.local.start(self.interner.len());
        for doc in [&mut self.reference, &mut self.candidate] {
            self.local.renumber(&mut doc.tokens);
            self.local.renumber(&mut doc.line_tokens);
        }
        let alphabet = self.local.count as usize;
        if self.counts_r.len() < alphabet {
            self.counts_r.resize(alphabet, 0);
            self.counts_c.resize(alphabet, 0);
        }
    }

    fn alphabet(&self) -> usize {
        self.local.count as usize
    }

    /// `_create_ngrams` + `_score_ngrams`.
    fn rouge_n(&mut self, n: usize) -> RougeScore {
        let (r, c) = (&self.reference.tokens, &self.candidate.tokens);
        let count = |len: usize| (len + 1).saturating_sub(n);
        let overlap = if count(r.len()) == 0 || count(c.len()) == 0 {
            0
        } else if n == 1 {
            unigram_overlap(r, c, &mut self.counts_c)
        } else if n == 2 {
            let pack = |w: &[u32]| (u64::from(w[0]) << 32) | u64::from(w[1]);
            self.keys_r.clear();
            self.keys_r.extend(r.windows(2).map(pack));
            self.keys_c.clear();
            self.keys_c.extend(c.windows(2).map(pack));
            self.keys_r.sort_unstable();
            self.keys_c.sort_unstable();
            sorted_overlap(&self.keys_r, &self.keys_c)
        } else {
            let mut grams_r: Vec<&[u32]> = r.windows(n).collect();
            let mut grams_c: Vec<&[u32]> = c.windows(n).collect();
            grams_r.sort_unstable();
            grams_c.sort_unstable();
            sorted_overlap(&grams_r, &grams_c)
        };
        RougeScore::from_counts(overlap, count(c.len()).max(1), count(r.len()).max(1))
    }

    /// `_score_lcs`.
    fn rouge_l(&mut self) -> RougeScore {
        let (r, c) = (&self.reference.tokens, &self.candidate.tokens);
        if r.is_empty() || c.is_empty() {
            return RougeScore::ZERO;
        }
        let alphabet = self.alphabet();
        self.masks.build(c, alphabet);
        let lcs = lcs::lcs_length(r, &self.masks, &mut self.rows);
        self.masks.clear(c);
        RougeScore::from_counts(lcs, c.len(), r.len())
    }

    /// `_summary_level_lcs`.
    fn rouge_lsum(&mut self) -> RougeScore {
        let alphabet = self.alphabet();
        let (reference, candidate) = (&self.reference, &self.candidate);
        let (r, c) = (reference.lines_tokens(), candidate.lines_tokens());
        if r.is_empty() || c.is_empty() {
            return RougeScore::ZERO;
        }
        self.marks.clear();
        self.marks.resize(r.len(), false);
        for (c_start, c_end) in candidate.lines() {
            let sentence = &c[c_start..c_end];
            self.masks.build(sentence, alphabet);
            for (r_start, r_end) in reference.lines() {
                let marks = &mut self.marks[r_start..r_end];
                lcs::lcs_indices(
                    &r[r_start..r_end],
                    sentence,
                    &self.masks,
                    &mut self.rows,
                    |i| marks[i] = true,
                );
            }
            self.masks.clear(sentence);
        }
        let (counts_r, counts_c) = (&mut self.counts_r, &mut self.counts_c);
        for &t in r {
            counts_r[t as usize] += 1;
        }
        for &t in c {
            counts_c[t as usize] += 1;
        }
        let mut hits = 0;
        for (&t, &marked) in r.iter().zip(&self.marks) {
            let t = t as usize;
            if marked && counts_c[t] > 0 && counts_r[t] > 0 {
                hits += 1;
                counts_c[t] -= 1;
                counts_r[t] -= 1;
            }
        }
        for &t in r {
            counts_r[t as usize] = 0;
        }
        for &t in c {
            counts_c[t as usize] = 0;
        }
        RougeScore::from_counts(hits, c.len(), r.len())
    }
}

/// The clipped unigram overlap `sum_t min(count_r(t), count_c(t))`. `counts` is all-zero
/// scratch indexed by token id and is left all-zero.
fn unigram_overlap(r: &[u32], c: &[u32], counts: &mut [u32]) -> usize {
    for &t in c {
        counts[t as usize] += 1;
    }
    let mut overlap = 0;
    for &t in r {
        let k = &mut counts[t as usize];
        if *k > 0 {
            overlap += 1;
            *k -= 1;
        }
    }
    for &t in c {
        counts[t as usize] = 0;
    }
    overlap
}

/// The size of the multiset intersection of two sorted lists.
fn sorted_overlap<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut overlap) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                overlap += 1;
                i += 1;
                j += 1;
            }
        }
    }
    overlap
}
