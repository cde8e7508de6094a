//! NLTK's Porter stemmer (`nltk.stem.porter.PorterStemmer`) in its default
//! `NLTK_EXTENSIONS` mode, the stemmer `rouge-score` uses with `use_stemmer=True`.
//!
//! This is a line-by-line port of NLTK 3.x's `porter.py`: the same steps, the same rule
//! lists in the same order, the same "first matching suffix decides" semantics of
//! `_apply_rule_list` and the same NLTK deviations from the 1980 paper (the irregular-forms
//! pool, `ies`/`ied` on four-letter words, the `y -> i` condition, `alli` first, `fulli`,
//! `logi`, and the two-letter `*o` condition). It works on Unicode scalar values like
//! Python's `str`, so any word is accepted, but ROUGE only ever passes `[a-z0-9]` tokens.
//!
//! The tests compare it word for word with NLTK on a large English and clinical word list
//! (`tools/fixtures/rouge/porter_words.tsv.gz`).

/// NLTK's table of irregular forms (`PorterStemmer.pool` in `NLTK_EXTENSIONS` mode):
/// each listed form stems to the word on the right, bypassing the rules.
const IRREGULAR_FORMS: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

/// The Porter stemmer exactly as NLTK's `PorterStemmer()` (mode `NLTK_EXTENSIONS`).
///
/// # Example
///
/// ```
/// use ro_metrics::PorterStemmer;
///
/// let stemmer = PorterStemmer::new();
/// assert_eq!(stemmer.stem("radiotherapy"), "radiotherapi");
/// assert_eq!(stemmer.stem("fractions"), "fraction");
/// assert_eq!(stemmer.stem("Dying"), "die");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PorterStemmer {
    _private: (),
}

/// When a suffix-removal rule may fire, given the stem left after removing the suffix
/// (and, for two NLTK rules, the whole word the rule list was applied to).
#[derive(Debug, Clone, Copy)]
enum Cond {
    /// Unconditional.
    Always,
    /// `m(stem) > 0`.
    MeasureGt0,
    /// `m(stem) > 1`.
    MeasureGt1,
    /// `m(stem) > 1` and the stem ends in `s` or `t` (step 4's `ion`).
    Ion,
    /// NLTK's `logi -> log`: `m(word[:-3]) > 0`.
    Logi,
    /// Step 5b's `ll -> l`: `m(word[:-1]) > 1`.
    DoubleL,
}

type Word = Vec<char>;

impl PorterStemmer {
    /// A stemmer in NLTK's default mode.
    ///
    /// ```
    /// let stemmer = ro_metrics::PorterStemmer::new();
    /// assert_eq!(stemmer.stem("caresses"), "caress");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Stems one word as NLTK's `PorterStemmer().stem(word)` does: the word is lowercased
    /// first (`to_lowercase=True`), irregular forms come from NLTK's pool, and words of at
    /// most two characters are returned lowercased but otherwise unchanged.
    ///
    /// ```
    /// let stemmer = ro_metrics::PorterStemmer::new();
    /// assert_eq!(stemmer.stem("generalizations"), "gener");
    /// assert_eq!(stemmer.stem("flies"), "fli");
    /// assert_eq!(stemmer.stem("dies"), "die");
    /// ```
    pub fn stem(&self, word: &str) -> String {
        let lowered = word.to_lowercase();
        if let Some((_, stem)) = IRREGULAR_FORMS.iter().find(|(form, _)| *form == lowered) {
            return (*stem).to_string();
        }
        // NLTK tests the length of the word as given, before lowercasing.
        if word.chars().count() <= 2 {
            return lowered;
        }
        let mut w: Word = lowered.chars().collect();
        w = step1a(w);
        w = step1b(w);
        w = step1c(w);
        w = step2(w);
        w = step3(w);
        w = step4(w);
        w = step5a(w);
        w = step5b(w);
        w.into_iter().collect()
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// `_is_consonant`: a letter other than a vowel, and `y` only when preceded by a vowel
/// (a run of `y`s alternates, a leading `y` is a consonant).
fn is_consonant(word: &[char], mut i: usize) -> bool {
    if is_vowel(word[i]) {
        return false;
    }
    if word[i] == 'y' {
        let mut negate = false;
        while i > 0 && word[i] == 'y' {
            negate = !negate;
            i -= 1;
        }
        return is_vowel(word[i]) == negate;
    }
    true
}

/// `_consonant_flags`: `true` for every consonant, in one pass.
fn consonant_flags(word: &[char]) -> impl Iterator<Item = bool> + '_ {
    let mut previous = false;
    word.iter().enumerate().map(move |(i, &c)| {
        let flag = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !previous
        } else {
            true
        };
        previous = flag;
        flag
    })
}

/// `_measure`: the number of vowel-to-consonant transitions `m` in `[C](VC){m}[V]`.
fn measure(stem: &[char]) -> usize {
    let mut count = 0;
    let mut previous_vowel = false;
    for consonant in consonant_flags(stem) {
        if consonant && previous_vowel {
            count += 1;
        }
        previous_vowel = !consonant;
    }
    count
}

/// `_contains_vowel`.
fn contains_vowel(stem: &[char]) -> bool {
    consonant_flags(stem).any(|consonant| !consonant)
}

/// `_ends_double_consonant` (condition `*d`).
fn ends_double_consonant(word: &[char]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

/// `_ends_cvc` (condition `*o`), with NLTK's extension to two-letter words.
fn ends_cvc(word: &[char]) -> bool {
    let n = word.len();
    (n >= 3
        && is_consonant(word, n - 3)
        && !is_consonant(word, n - 2)
        && is_consonant(word, n - 1)
        && !matches!(word[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    word.len() >= n && word[word.len() - n..].iter().copied().eq(suffix.chars())
}

/// `word` without its last `n` characters (`word[:-n]`, or the whole word when `n == 0`).
fn strip(word: &[char], n: usize) -> &[char] {
    &word[..word.len() - n]
}

fn concat(stem: &[char], replacement: &str) -> Word {
    stem.iter().copied().chain(replacement.chars()).collect()
}

fn holds(cond: Cond, stem: &[char], word: &[char]) -> bool {
    match cond {
        Cond::Always => true,
        Cond::MeasureGt0 => measure(stem) > 0,
        Cond::MeasureGt1 => measure(stem) > 1,
        Cond::Ion => measure(stem) > 1 && matches!(stem.last(), Some('s' | 't')),
        Cond::Logi => measure(strip(word, 3)) > 0,
        Cond::DoubleL => measure(strip(word, 1)) > 1,
    }
}

/// `_apply_rule_list`: the first rule whose suffix matches decides; if its condition fails
/// the word is returned unchanged and no later rule is tried.
fn apply_rules(word: Word, rules: &[(&str, &str, Cond)]) -> Word {
    for &(suffix, replacement, cond) in rules {
        if ends_with(&word, suffix) {
            let stem = strip(&word, suffix.chars().count());
            return if holds(cond, stem, &word) {
                concat(stem, replacement)
            } else {
                word
            };
        }
    }
    word
}

fn step1a(word: Word) -> Word {
    if word.len() == 4 && ends_with(&word, "ies") {
        return concat(strip(&word, 3), "ie");
    }
    apply_rules(
        word,
        &[
            ("sses", "ss", Cond::Always),
            ("ies", "i", Cond::Always),
            ("ss", "ss", Cond::Always),
            ("s", "", Cond::Always),
        ],
    )
}

fn step1b(word: Word) -> Word {
    if ends_with(&word, "ied") {
        let replacement = if word.len() == 4 { "ie" } else { "i" };
        return concat(strip(&word, 3), replacement);
    }
    if ends_with(&word, "eed") {
        let stem = strip(&word, 3);
        return if measure(stem) > 0 {
            concat(stem, "ee")
        } else {
            word
        };
    }
    let mut intermediate = None;
    for suffix in ["ed", "ing"] {
        if ends_with(&word, suffix) {
            let stem = strip(&word, suffix.len());
            if contains_vowel(stem) {
                intermediate = Some(stem.to_vec());
                break;
            }
        }
    }
    let Some(stem) = intermediate else {
        return word;
    };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(&stem, suffix) {
            return concat(strip(&stem, 2), replacement);
        }
    }
    // (*d and not (*L or *S or *Z)) -> single letter. `stem` is never empty here: it
    // contains a vowel.
    if ends_double_consonant(&stem) {
        let last = stem[stem.len() - 1];
        return if matches!(last, 'l' | 's' | 'z') {
            stem
        } else {
            let mut single = strip(&stem, 2).to_vec();
            single.push(last);
            single
        };
    }
    // (m=1 and *o) -> E
    if measure(&stem) == 1 && ends_cvc(&stem) {
        concat(&stem, "e")
    } else {
        stem
    }
}

fn step1c(word: Word) -> Word {
    if ends_with(&word, "y") {
        let stem = strip(&word, 1);
        return if stem.len() > 1 && is_consonant(stem, stem.len() - 1) {
            concat(stem, "i")
        } else {
            word
        };
    }
    word
}

fn step2(word: Word) -> Word {
    if ends_with(&word, "alli") && measure(strip(&word, 4)) > 0 {
        return step2(concat(strip(&word, 4), "al"));
    }
    use Cond::MeasureGt0 as M;
    apply_rules(
        word,
        &[
            ("ational", "ate", M),
            ("tional", "tion", M),
            ("enci", "ence", M),
            ("anci", "ance", M),
            ("izer", "ize", M),
            ("bli", "ble", M),
            ("alli", "al", M),
            ("entli", "ent", M),
            ("eli", "e", M),
            ("ousli", "ous", M),
            ("ization", "ize", M),
            ("ation", "ate", M),
            ("ator", "ate", M),
            ("alism", "al", M),
            ("iveness", "ive", M),
            ("fulness", "ful", M),
            ("ousness", "ous", M),
            ("aliti", "al", M),
            ("iviti", "ive", M),
            ("biliti", "ble", M),
            ("fulli", "ful", M),
            ("logi", "log", Cond::Logi),
        ],
    )
}

fn step3(word: Word) -> Word {
    use Cond::MeasureGt0 as M;
    apply_rules(
        word,
        &[
            ("icate", "ic", M),
            ("ative", "", M),
            ("alize", "al", M),
            ("iciti", "ic", M),
            ("ical", "ic", M),
            ("ful", "", M),
            ("ness", "", M),
        ],
    )
}

fn step4(word: Word) -> Word {
    use Cond::MeasureGt1 as M;
    apply_rules(
        word,
        &[
            ("al", "", M),
            ("ance", "", M),
            ("ence", "", M),
            ("er", "", M),
            ("ic", "", M),
            ("able", "", M),
            ("ible", "", M),
            ("ant", "", M),
            ("ement", "", M),
            ("ment", "", M),
            ("ent", "", M),
            ("ion", "", Cond::Ion),
            ("ou", "", M),
            ("ism", "", M),
            ("ate", "", M),
            ("iti", "", M),
            ("ous", "", M),
            ("ive", "", M),
            ("ize", "", M),
        ],
    )
}

fn step5a(word: Word) -> Word {
    if ends_with(&word, "e") {
        let stem = strip(&word, 1);
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    word
}

fn step5b(word: Word) -> Word {
    apply_rules(word, &[("ll", "l", Cond::DoubleL)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_examples() {
        let s = PorterStemmer::new();
        for (word, stem) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("electrical", "electr"),
            ("controll", "control"),
            ("roll", "roll"),
            ("yyyy", "yyyi"),
        ] {
            assert_eq!(s.stem(word), stem, "{word}");
        }
    }

    #[test]
    fn y_consonant_alternates() {
        let w: Vec<char> = "syyy".chars().collect();
        let flags: Vec<bool> = consonant_flags(&w).collect();
        assert_eq!(flags, vec![true, false, true, false]);
        for (i, &flag) in flags.iter().enumerate() {
            assert_eq!(is_consonant(&w, i), flag);
        }
    }
}
