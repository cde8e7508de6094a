//! ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's `rouge-score` 0.1.2
//! (`rouge_score/rouge_scorer.py`), which reproduces `ROUGE-1.5.5.pl -e data -n 2`
//! (with `-m` when stemming).
//!
//! - `rougeN`: clipped n-gram overlap; precision = overlap / candidate n-grams, recall =
//!   overlap / reference n-grams (each denominator at least 1).
//! - `rougeL`: longest common subsequence of the two token lists; 0 when either is empty.
//! - `rougeLsum`: summary-level LCS over the `\n`-separated lines: for every reference line
//!   the union of its LCS indices against each candidate line (rouge-score's backtracking
//!   and tie-break), hits counted without exceeding either text's token counts.
//! - F-measure `2PR / (P + R)`, 0 when `P + R = 0`, computed in the same order as Python
//!   so that scores are bit-identical.
//!
//! The fast path (`engine`) interns tokens, caches stems and runs a bit-parallel LCS; the
//! plain transcription of the Python code is kept in [`reference`] and the tests check that
//! both agree.

mod engine;
mod lcs;
pub mod reference;

use std::fmt;
use std::num::NonZeroU8;
use std::str::FromStr;
use std::sync::Arc;

use rayon::prelude::*;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::tokenize::{DefaultTokenizer, Tokenizer};

/// Errors of the ROUGE scorer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RougeError {
    /// A ROUGE type name that rouge-score does not know.
    #[error("unknown ROUGE type {name:?}: expected rouge1 .. rouge9, rougeL or rougeLsum")]
    UnknownType {
        /// The name as given.
        name: String,
    },
    /// `rouge0` or `RougeType::n(0)`: rouge-score raises "rougen requires positive n".
    #[error("ROUGE-N requires a positive n, got {name:?}")]
    NonPositiveN {
        /// The name as given.
        name: String,
    },
    /// A mean over no scores at all.
    #[error("cannot average ROUGE scores over an empty corpus")]
    EmptyCorpus,
    /// Scores that do not hold the same ROUGE types, in the same order, cannot be averaged.
    #[error("scores #{index} hold ROUGE types [{found}], the first holds [{expected}]")]
    MismatchedTypes {
        /// Index of the first differing entry.
        index: usize,
        /// The types of the first entry.
        expected: String,
        /// The types of the differing entry.
        found: String,
    },
    /// `score_multi` without any reference.
    #[error("score_multi needs at least one reference text")]
    NoReferences,
}

/// A ROUGE variant, named as in rouge-score (`"rouge1"`, `"rougeL"`, `"rougeLsum"`).
///
/// ```
/// use ro_metrics::RougeType;
///
/// let t: RougeType = "rouge2".parse().unwrap();
/// assert_eq!(t, RougeType::ROUGE2);
/// assert_eq!(t.to_string(), "rouge2");
/// assert_eq!("rougeLsum".parse::<RougeType>(), Ok(RougeType::Lsum));
/// assert!("rouge0".parse::<RougeType>().is_err());
/// assert!("rougeX".parse::<RougeType>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RougeType {
    /// ROUGE-N: overlap of n-grams. Names parse for n = 1..=9 (rouge-score's
    /// `rouge[0-9]$`); [`RougeType::n`] accepts any positive n.
    N(NonZeroU8),
    /// ROUGE-L: longest common subsequence of the whole texts.
    L,
    /// ROUGE-Lsum: summary-level union LCS over `\n`-separated lines.
    Lsum,
}

impl RougeType {
    /// ROUGE-1 (unigrams).
    pub const ROUGE1: Self = Self::N(NonZeroU8::MIN);
    /// ROUGE-2 (bigrams).
    pub const ROUGE2: Self = Self::N(NonZeroU8::MIN.saturating_add(1));
    /// The four types reported in the letter-generation studies:
    /// `rouge1`, `rouge2`, `rougeL`, `rougeLsum`.
    pub const STANDARD: [Self; 4] = [Self::ROUGE1, Self::ROUGE2, Self::L, Self::Lsum];

    /// ROUGE-N for a positive `n`.
    ///
    /// ```
    /// use ro_metrics::RougeType;
    /// assert_eq!(RougeType::n(1), Ok(RougeType::ROUGE1));
    /// assert!(RougeType::n(0).is_err());
    /// ```
    pub fn n(n: u8) -> Result<Self, RougeError> {
        NonZeroU8::new(n)
            .map(Self::N)
            .ok_or_else(|| RougeError::NonPositiveN {
                name: format!("rouge{n}"),
            })
    }
}

impl fmt::Display for RougeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::N(n) => write!(f, "rouge{n}"),
            Self::L => f.write_str("rougeL"),
            Self::Lsum => f.write_str("rougeLsum"),
        }
    }
}

impl FromStr for RougeType {
    type Err = RougeError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "rougeL" => Ok(Self::L),
            "rougeLsum" => Ok(Self::Lsum),
            _ => match name.strip_prefix("rouge").map(str::as_bytes) {
                Some([digit @ b'0'..=b'9']) => {
                    Self::n(digit - b'0').map_err(|_| RougeError::NonPositiveN {
                        name: name.to_owned(),
                    })
                }
                _ => Err(RougeError::UnknownType {
                    name: name.to_owned(),
                }),
            },
        }
    }
}

/// Precision, recall and F-measure of one ROUGE type (rouge-score's `scoring.Score`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RougeScore {
    /// Matches over the candidate's size.
    pub precision: f64,
    /// Matches over the reference's size.
    pub recall: f64,
    /// Harmonic mean `2PR / (P + R)`, 0 when both are 0.
    pub fmeasure: f64,
}

impl RougeScore {
    /// The score with F-measure computed from `precision` and `recall` exactly as
    /// rouge-score's `scoring.fmeasure` (`2 * p * r / (p + r)`, 0 when `p + r` is not
    /// positive).
    ///
    /// ```
    /// let s = ro_metrics::RougeScore::new(0.75, 2.0 / 3.0);
    /// assert_eq!(s.fmeasure, 0.7058823529411765);
    /// assert_eq!(ro_metrics::RougeScore::new(0.0, 0.0).fmeasure, 0.0);
    /// ```
    pub fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }

    /// The score of `matches` out of `candidate_size` and `reference_size` units.
    pub(crate) fn from_counts(
        matches: usize,
        candidate_size: usize,
        reference_size: usize,
    ) -> Self {
        Self::new(
            matches as f64 / candidate_size as f64,
            matches as f64 / reference_size as f64,
        )
    }

    /// All zeros: what rouge-score returns when a text has no tokens.
    pub(crate) const ZERO: Self = Self {
        precision: 0.0,
        recall: 0.0,
        fmeasure: 0.0,
    };
}

/// The scores of one reference/candidate pair, one [`RougeScore`] per requested [`RougeType`],
/// in the order they were requested. Serializes as a map `{"rouge1": {..}, ..}`.
///
/// ```
/// use ro_metrics::{RougeScorer, RougeType};
///
/// let scorer = RougeScorer::new(&RougeType::STANDARD, true);
/// let scores = scorer.score("The quick brown fox jumps over the lazy dog",
///                           "The quick brown dog jumps on the log.");
/// let r1 = scores.get(RougeType::ROUGE1).unwrap();
/// assert_eq!((r1.precision, r1.recall), (0.75, 2.0 / 3.0));
/// assert_eq!(scores.iter().count(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    entries: Vec<(RougeType, RougeScore)>,
}

impl Scores {
    /// The score of `rouge_type`, if it was requested.
    pub fn get(&self, rouge_type: RougeType) -> Option<RougeScore> {
        self.entries
            .iter()
            .find(|(t, _)| *t == rouge_type)
            .map(|&(_, s)| s)
    }

    /// The `(type, score)` entries in the requested order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (RougeType, RougeScore)> + '_ {
        self.entries.iter().copied()
    }

    /// The number of ROUGE types held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no ROUGE type is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The field-wise mean of precision, recall and F-measure over `all` (summed in order,
    /// then divided by the count: Python's `sum(xs) / len(xs)`; within 1e-15 relative of
    /// `numpy.mean`), as a corpus-level ROUGE report does.
    ///
    /// # Errors
    ///
    /// [`RougeError::EmptyCorpus`] for an empty slice, [`RougeError::MismatchedTypes`]
    /// when the entries do not hold the same types in the same order.
    ///
    /// ```
    /// use ro_metrics::{RougeScorer, RougeType, Scores};
    ///
    /// let scorer = RougeScorer::new(&[RougeType::ROUGE1], false);
    /// let all = [scorer.score("a b", "a b"), scorer.score("a b", "c d")];
    /// let mean = Scores::mean(&all).unwrap();
    /// assert_eq!(mean.get(RougeType::ROUGE1).unwrap().fmeasure, 0.5);
    /// assert!(Scores::mean(&[]).is_err());
    /// ```
    pub fn mean(all: &[Scores]) -> Result<Scores, RougeError> {
        let first = all.first().ok_or(RougeError::EmptyCorpus)?;
        let types = |s: &Scores| {
            s.entries
                .iter()
                .map(|(t, _)| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (index, scores) in all.iter().enumerate() {
            let same = scores.len() == first.len()
                && scores
                    .entries
                    .iter()
                    .zip(&first.entries)
                    .all(|(a, b)| a.0 == b.0);
            if !same {
                return Err(RougeError::MismatchedTypes {
                    index,
                    expected: types(first),
                    found: types(scores),
                });
            }
        }
        let count = all.len() as f64;
        let mean_of = |k: usize, field: fn(&RougeScore) -> f64| {
            all.iter().map(|s| field(&s.entries[k].1)).sum::<f64>() / count
        };
        let entries = first
            .entries
            .iter()
            .enumerate()
            .map(|(k, &(t, _))| {
                let score = RougeScore {
                    precision: mean_of(k, |s| s.precision),
                    recall: mean_of(k, |s| s.recall),
                    fmeasure: mean_of(k, |s| s.fmeasure),
                };
                (t, score)
            })
            .collect();
        Ok(Scores { entries })
    }
}

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (t, s) in &self.entries {
            map.serialize_entry(&t.to_string(), s)?;
        }
        map.end()
    }
}

/// Which tokenizer a scorer uses: the built-in one runs on the fast interning scanner.
#[derive(Clone)]
enum ScorerTokenizer {
    Default(DefaultTokenizer),
    Custom(Arc<dyn Tokenizer>),
}

/// rouge-score's `RougeScorer(rouge_types, use_stemmer)`: scores candidate texts against
/// reference texts.
///
/// `score` is cheap to call, but [`RougeScorer::score_batch`] and
/// [`RougeScorer::score_corpus`] are much faster on many pairs: they share the token
/// interner and stem cache between pairs and run on all rayon threads.
///
/// ```
/// use ro_metrics::{RougeScorer, RougeType};
///
/// let scorer = RougeScorer::from_names(["rouge1", "rouge2", "rougeL", "rougeLsum"], true)?;
/// let reference = "Dear colleague,\nwe treated the prostate with 60 Gy in 20 fractions.";
/// let candidate = "Dear colleague,\nthe prostate was treated with 60 Gy.";
/// let scores = scorer.score(reference, candidate);
/// let lsum = scores.get(RougeType::Lsum).unwrap();
/// assert!(lsum.fmeasure > 0.5 && lsum.fmeasure < 1.0);
///
/// let pairs = vec![(reference, candidate); 3];
/// let all = scorer.score_batch(&pairs);
/// assert_eq!(all[2], scores);
/// let mean = scorer.score_corpus(&pairs)?;
/// assert_eq!(mean.get(RougeType::Lsum), Some(lsum));
/// # Ok::<(), ro_metrics::RougeError>(())
/// ```
#[derive(Clone)]
pub struct RougeScorer {
    rouge_types: Vec<RougeType>,
    tokenizer: ScorerTokenizer,
}

impl fmt::Debug for RougeScorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokenizer = match &self.tokenizer {
            ScorerTokenizer::Default(t) if t.use_stemmer() => "default (Porter stemmer)",
            ScorerTokenizer::Default(_) => "default",
            ScorerTokenizer::Custom(_) => "custom",
        };
        f.debug_struct("RougeScorer")
            .field("rouge_types", &self.rouge_types)
            .field("tokenizer", &tokenizer)
            .finish()
    }
}

impl RougeScorer {
    /// A scorer with rouge-score's default tokenizer, stemming tokens longer than three
    /// characters with NLTK's Porter stemmer when `use_stemmer` is true. Repeated types
    /// are kept once (rouge-score returns a dict).
    ///
    /// ```
    /// use ro_metrics::{RougeScorer, RougeType};
    /// let scorer = RougeScorer::new(&[RougeType::ROUGE1, RougeType::L], false);
    /// assert_eq!(scorer.rouge_types(), &[RougeType::ROUGE1, RougeType::L]);
    /// ```
    pub fn new(rouge_types: &[RougeType], use_stemmer: bool) -> Self {
        Self::build(
            rouge_types,
            ScorerTokenizer::Default(DefaultTokenizer::new(use_stemmer)),
        )
    }

    /// A scorer from rouge-score's type names (`"rouge1"`..`"rouge9"`, `"rougeL"`,
    /// `"rougeLsum"`).
    ///
    /// # Errors
    ///
    /// [`RougeError::UnknownType`] or [`RougeError::NonPositiveN`] for a bad name.
    ///
    /// ```
    /// use ro_metrics::{RougeError, RougeScorer};
    /// assert!(RougeScorer::from_names(["rouge1", "rougeLsum"], false).is_ok());
    /// assert_eq!(
    ///     RougeScorer::from_names(["rougeW"], false).unwrap_err(),
    ///     RougeError::UnknownType { name: "rougeW".into() }
    /// );
    /// ```
    pub fn from_names<I, S>(names: I, use_stemmer: bool) -> Result<Self, RougeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let types = names
            .into_iter()
            .map(|name| name.as_ref().parse())
            .collect::<Result<Vec<RougeType>, _>>()?;
        Ok(Self::new(&types, use_stemmer))
    }

    /// A scorer with a custom tokenizer (rouge-score's `tokenizer=` argument). For
    /// `rougeLsum` the tokenizer is called on each non-empty line separately.
    pub fn with_tokenizer(rouge_types: &[RougeType], tokenizer: impl Tokenizer + 'static) -> Self {
        Self::build(rouge_types, ScorerTokenizer::Custom(Arc::new(tokenizer)))
    }

    fn build(rouge_types: &[RougeType], tokenizer: ScorerTokenizer) -> Self {
        let mut unique = Vec::with_capacity(rouge_types.len());
        for &t in rouge_types {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        Self {
            rouge_types: unique,
            tokenizer,
        }
    }

    /// The ROUGE types this scorer computes, in order.
    pub fn rouge_types(&self) -> &[RougeType] {
        &self.rouge_types
    }

    /// The scores of `candidate` (rouge-score's `prediction`) against `reference`
    /// (rouge-score's `target`).
    pub fn score(&self, reference: &str, candidate: &str) -> Scores {
        engine::Workspace::default().score(self, reference, candidate)
    }

    /// rouge-score's `score_multi`: for each type, the score against the reference with
    /// the highest F-measure (the first one on ties).
    ///
    /// # Errors
    ///
    /// [`RougeError::NoReferences`] when `references` is empty.
    ///
    /// ```
    /// use ro_metrics::{RougeScorer, RougeType};
    /// let scorer = RougeScorer::new(&[RougeType::ROUGE1], false);
    /// let best = scorer.score_multi(&["a b c", "a x y"], "a b").unwrap();
    /// assert_eq!(best.get(RougeType::ROUGE1).unwrap().precision, 1.0);
    /// ```
    pub fn score_multi<S: AsRef<str>>(
        &self,
        references: &[S],
        candidate: &str,
    ) -> Result<Scores, RougeError> {
        let mut workspace = engine::Workspace::default();
        let all: Vec<Scores> = references
            .iter()
            .map(|r| workspace.score(self, r.as_ref(), candidate))
            .collect();
        let first = all.first().ok_or(RougeError::NoReferences)?;
        let entries = first
            .iter()
            .enumerate()
            .map(|(k, (t, _))| {
                let mut best = first.entries[k].1;
                for scores in &all[1..] {
                    let s = scores.entries[k].1;
                    if s.fmeasure > best.fmeasure {
                        best = s;
                    }
                }
                (t, best)
            })
            .collect();
        Ok(Scores { entries })
    }

    /// The scores of many `(reference, candidate)` pairs, in order, computed in parallel
    /// on the rayon thread pool (set `RAYON_NUM_THREADS` or use a custom pool to limit
    /// it). Each worker keeps its own token interner and stem cache.
    pub fn score_batch<R, C>(&self, pairs: &[(R, C)]) -> Vec<Scores>
    where
        R: AsRef<str> + Sync,
        C: AsRef<str> + Sync,
    {
        pairs
            .par_iter()
            .with_min_len(32)
            .map_init(engine::Workspace::default, |workspace, (r, c)| {
                workspace.score(self, r.as_ref(), c.as_ref())
            })
            .collect()
    }

    /// The corpus-level ROUGE report: the mean of each type's precision, recall and
    /// F-measure over all pairs ([`Scores::mean`] of [`RougeScorer::score_batch`]).
    ///
    /// # Errors
    ///
    /// [`RougeError::EmptyCorpus`] when `pairs` is empty.
    pub fn score_corpus<R, C>(&self, pairs: &[(R, C)]) -> Result<Scores, RougeError>
    where
        R: AsRef<str> + Sync,
        C: AsRef<str> + Sync,
    {
        Scores::mean(&self.score_batch(pairs))
    }
}
