//! The tokenizer of `rouge-score` 0.1.2 (`rouge_score/tokenize.py`, `tokenizers.py`).
//!
//! rouge-score lowercases the text with Python's `str.lower()`, replaces every run of
//! characters outside `[a-z0-9]` by one space, splits on whitespace, stems tokens longer
//! than three characters with NLTK's Porter stemmer when asked to, and finally drops empty
//! tokens. So only the ASCII letters and digits survive: accented letters, umlauts, CJK and
//! emoji all act as separators (`"Größe"` gives `["gr", "e"]`). Python's `lower()` maps
//! exactly two non-ASCII characters onto ASCII letters (checked over all of Unicode with
//! CPython 3.11): `İ` (U+0130) becomes `i` followed by a combining dot, which is a
//! separator, and the Kelvin sign `K` (U+212A) becomes `k`. The fast scanner here
//! hard-codes those two, so its output does not depend on the Unicode tables of the Rust
//! toolchain; [`tokenize`] is the plain transcription of the Python function and the tests
//! check that both agree.

use crate::porter::PorterStemmer;

/// Splits a text into tokens, like rouge-score's `tokenizers.Tokenizer` base class.
///
/// [`RougeScorer`](crate::RougeScorer) uses [`DefaultTokenizer`] unless it is given another
/// one. Closures `Fn(&str) -> Vec<String>` are tokenizers too.
///
/// ```
/// use ro_metrics::{RougeScorer, RougeType, Tokenizer};
///
/// let whitespace = |text: &str| -> Vec<String> {
///     text.split_whitespace().map(str::to_owned).collect()
/// };
/// assert_eq!(whitespace.tokenize("Gy/fx 60Gy"), vec!["Gy/fx", "60Gy"]);
/// let scorer = RougeScorer::with_tokenizer(&[RougeType::ROUGE1], whitespace);
/// let scores = scorer.score("60Gy in 30fx", "60Gy");
/// assert_eq!(scores.get(RougeType::ROUGE1).map(|s| s.precision), Some(1.0));
/// ```
pub trait Tokenizer: Send + Sync {
    /// The tokens of `text`, in order.
    fn tokenize(&self, text: &str) -> Vec<String>;
}

impl<F> Tokenizer for F
where
    F: Fn(&str) -> Vec<String> + Send + Sync,
{
    fn tokenize(&self, text: &str) -> Vec<String> {
        self(text)
    }
}

/// rouge-score's `DefaultTokenizer(use_stemmer)`.
///
/// ```
/// use ro_metrics::{DefaultTokenizer, Tokenizer};
///
/// let plain = DefaultTokenizer::new(false);
/// assert_eq!(plain.tokenize("60Gy/30fx to the PTV, Größe: 3cm"),
///            vec!["60gy", "30fx", "to", "the", "ptv", "gr", "e", "3cm"]);
/// let stemmed = DefaultTokenizer::new(true);
/// assert_eq!(stemmed.tokenize("Treated with fractions"), vec!["treat", "with", "fraction"]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultTokenizer {
    stemmer: Option<PorterStemmer>,
}

impl DefaultTokenizer {
    /// The tokenizer, with NLTK's Porter stemmer on tokens longer than three characters
    /// when `use_stemmer` is true.
    ///
    /// ```
    /// assert!(ro_metrics::DefaultTokenizer::new(true).use_stemmer());
    /// ```
    pub fn new(use_stemmer: bool) -> Self {
        Self {
            stemmer: use_stemmer.then(PorterStemmer::new),
        }
    }

    /// Whether tokens are stemmed.
    ///
    /// ```
    /// assert!(!ro_metrics::DefaultTokenizer::new(false).use_stemmer());
    /// ```
    pub fn use_stemmer(&self) -> bool {
        self.stemmer.is_some()
    }

    /// The stemmer, if tokens are stemmed.
    pub(crate) fn stemmer(&self) -> Option<&PorterStemmer> {
        self.stemmer.as_ref()
    }
}

impl Tokenizer for DefaultTokenizer {
    fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut buf = Vec::new();
        scan(text, &mut buf, |piece| {
            if let Piece::Token(raw) = piece {
                // `scan` yields non-empty runs of `[a-z0-9]` only, so this is valid UTF-8.
                let raw = String::from_utf8_lossy(raw);
                let token = stem_token(self.stemmer.as_ref(), &raw);
                if is_valid_token(&token) {
                    tokens.push(token);
                }
            }
        });
        tokens
    }
}

/// rouge-score's `tokenize.tokenize(text, stemmer)`, transcribed literally: lowercase,
/// replace runs of characters outside `[a-z0-9]` by a space, split, stem tokens longer
/// than three characters, keep tokens matching `^[a-z0-9]+$`.
///
/// This is the plain reference for [`DefaultTokenizer`]'s fast scanner (it uses the Rust
/// toolchain's Unicode lowercasing, where the scanner hard-codes Python's).
///
/// ```
/// use ro_metrics::{tokenize, PorterStemmer};
///
/// assert_eq!(tokenize("The  PATIENT's dose", None), vec!["the", "patient", "s", "dose"]);
/// let stemmer = PorterStemmer::new();
/// assert_eq!(tokenize("irradiated nodes", Some(&stemmer)), vec!["irradi", "node"]);
/// ```
pub fn tokenize(text: &str, stemmer: Option<&PorterStemmer>) -> Vec<String> {
    let lowered = text.to_lowercase();
    let mut replaced = String::with_capacity(lowered.len());
    let mut in_run = false;
    for c in lowered.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            replaced.push(c);
            in_run = false;
        } else if !in_run {
            replaced.push(' ');
            in_run = true;
        }
    }
    replaced
        .split(' ')
        .map(|token| stem_token(stemmer, token))
        .filter(|token| is_valid_token(token))
        .collect()
}

/// Stems `token` when a stemmer is given and the token is longer than three characters.
pub(crate) fn stem_token(stemmer: Option<&PorterStemmer>, token: &str) -> String {
    match stemmer {
        Some(stemmer) if token.chars().count() > 3 => stemmer.stem(token),
        _ => token.to_owned(),
    }
}

/// rouge-score's final filter, `^[a-z0-9]+$`.
pub(crate) fn is_valid_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// What [`scan`] finds, in text order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A raw (lowercased, unstemmed) token: a non-empty run of `[a-z0-9]`.
    Token(&'a [u8]),
    /// A `\n`: rouge-score's `rougeLsum` splits texts into sentences there.
    LineBreak,
}

/// `İ` (U+0130) in UTF-8: lowercases to `i` + U+0307 (a separator).
const CAPITAL_I_WITH_DOT: [u8; 2] = [0xC4, 0xB0];
/// `K` (U+212A KELVIN SIGN) in UTF-8: lowercases to `k`.
const KELVIN_SIGN: [u8; 3] = [0xE2, 0x84, 0xAA];

/// The fast tokenizer: one pass over the bytes of `text`, calling `on` with every raw
/// token and every line break. `buf` is scratch space, reused between calls.
pub(crate) fn scan(text: &str, buf: &mut Vec<u8>, mut on: impl FnMut(Piece<'_>)) {
    let bytes = text.as_bytes();
    buf.clear();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            buf.push(b.to_ascii_lowercase());
            i += 1;
            continue;
        }
        if b >= 0x80 {
            let rest = &bytes[i..];
            if rest.starts_with(&KELVIN_SIGN) {
                buf.push(b'k');
                i += KELVIN_SIGN.len();
                continue;
            }
            if rest.starts_with(&CAPITAL_I_WITH_DOT) {
                buf.push(b'i');
                i += CAPITAL_I_WITH_DOT.len();
                // The combining dot that follows the `i` ends the token.
                flush(buf, &mut on);
                continue;
            }
        }
        flush(buf, &mut on);
        if b == b'\n' {
            on(Piece::LineBreak);
        }
        i += 1;
    }
    flush(buf, &mut on);
}

fn flush(buf: &mut Vec<u8>, on: &mut impl FnMut(Piece<'_>)) {
    if !buf.is_empty() {
        on(Piece::Token(buf));
        buf.clear();
    }
}
