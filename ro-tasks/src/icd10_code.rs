//! Normalizing ICD-10 codes written by people and models, with ICD-10-GM qualifiers.
//!
//! [`normalize_code`] takes a string meant to be one code; [`extract_code`] finds the code in a
//! free-text model answer. Both return the code's canonical name in the embedded
//! [`CodeSet`] (with its dot) and report qualifiers separately.
//!
//! # What each input normalizes to
//!
//! | input | result | rule |
//! | --- | --- | --- |
//! | `" c34.1\u{a0}"`, `"\u{200b}C34.1"` | `C34.1` | all Unicode whitespace and zero-width characters are removed at both ends, case is folded |
//! | `"C 34 .1"`, `"C34 1"` | `C34.1` | whitespace *inside* the code is removed |
//! | `"C341"` | `C34.1` | the dot is optional, as in the package's `is_valid_item` |
//! | `"C34,1"` | `C34.1` | a comma is read as the dot (German decimal habit) |
//! | `"C34.1."` | `C34.1` | one trailing full stop (sentence punctuation) is dropped |
//! | `"C34..1"`, `"C34.1.2"` | malformed | two dots are not guessed at |
//! | `"Ｃ３４．１"` | `C34.1` | NFKC folds full-width letters, digits and dot |
//! | `"C00–C14"` (en dash) | block `C00-C14` | dashes U+2010..U+2015, U+2212 become `-` |
//! | `"C00-D49"` | unknown | a range is valid only if it is a block of the tabular list |
//! | `"С34.1"` (Cyrillic С) | malformed, non-ASCII | look-alike letters are *not* silently fixed |
//! | `"CO0"` (letter O) | malformed | look-alike digits are not fixed either |
//! | `"C50.4 L"`, `"C50.4L"`, `"C34.1 G"`, `"C79.5†"`, `"C79.5+"`, `"U07.1!"` | code + qualifiers | ICD-10-GM qualifiers after the code |
//!
//! Qualifiers (ICD-10-GM): certainty `G` (confirmed), `V` (suspected), `Z` (status post),
//! `A` (excluded); laterality `L`, `R`, `B` (both); markers `†` (or `+`), `*`, `!`. They may be
//! glued to the code or separated by spaces, in any order, each kind at most once. Where the
//! letters could also end a code, the longest valid code wins: `S72.001A` is the code with its
//! 7th character `A`, while `C34.1A` is `C34.1` with certainty `A`.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::codeset::{CodeSet, Entry, Kind};

/// Diagnostic certainty (ICD-10-GM "Zusatzkennzeichen").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    /// `G`: gesichert, confirmed.
    Confirmed,
    /// `V`: Verdacht auf, suspected.
    Suspected,
    /// `Z`: Zustand nach, status post.
    StatusPost,
    /// `A`: ausgeschlossen, excluded.
    Excluded,
}

/// Side of the body (ICD-10-GM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Laterality {
    /// `L`
    Left,
    /// `R`
    Right,
    /// `B`: beidseitig.
    Both,
}

/// Cross-reference marker of the dagger-asterisk system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    /// `†` (or ASCII `+`): etiology code.
    Dagger,
    /// `*`: manifestation code.
    Asterisk,
    /// `!`: optional secondary code.
    Exclamation,
}

/// Qualifiers found after a code. All `None` when there were none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Qualifiers {
    /// `G`, `V`, `Z` or `A`.
    pub certainty: Option<Certainty>,
    /// `L`, `R` or `B`.
    pub laterality: Option<Laterality>,
    /// `†`, `*` or `!`.
    pub marker: Option<Marker>,
}

impl Qualifiers {
    /// Whether no qualifier was given.
    pub fn is_empty(&self) -> bool {
        *self == Qualifiers::default()
    }

    /// Add one qualifier character; `false` if it is none or its kind is already set.
    fn add(&mut self, c: char) -> bool {
        fn set<T>(slot: &mut Option<T>, v: T) -> bool {
            if slot.is_some() {
                return false;
            }
            *slot = Some(v);
            true
        }
        match c {
            'G' => set(&mut self.certainty, Certainty::Confirmed),
            'V' => set(&mut self.certainty, Certainty::Suspected),
            'Z' => set(&mut self.certainty, Certainty::StatusPost),
            'A' => set(&mut self.certainty, Certainty::Excluded),
            'L' => set(&mut self.laterality, Laterality::Left),
            'R' => set(&mut self.laterality, Laterality::Right),
            'B' => set(&mut self.laterality, Laterality::Both),
            '†' | '+' => set(&mut self.marker, Marker::Dagger),
            '*' => set(&mut self.marker, Marker::Asterisk),
            '!' => set(&mut self.marker, Marker::Exclamation),
            _ => false,
        }
    }

    fn parse(s: &str) -> Option<Qualifiers> {
        let mut q = Qualifiers::default();
        s.chars().all(|c| q.add(c)).then_some(q)
    }
}

fn is_qualifier_char(c: char) -> bool {
    matches!(
        c,
        'G' | 'V' | 'Z' | 'A' | 'L' | 'R' | 'B' | '†' | '+' | '*' | '!'
    )
}

/// A code found in the code set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedCode<'a> {
    /// The code set's node (its `code` is the canonical name with the dot).
    pub entry: &'a Entry,
    /// Qualifiers written after the code.
    pub qualifiers: Qualifiers,
}

impl NormalizedCode<'_> {
    /// The canonical name (`"C34.1"`).
    pub fn code(&self) -> &str {
        &self.entry.code
    }

    /// The first three characters of a code, `None` for chapters and blocks.
    pub fn category(&self) -> Option<&str> {
        self.entry.kind.is_code().then(|| &self.entry.code[..3])
    }
}

/// Why a string is not a code of the set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum CodeError {
    /// Nothing but whitespace.
    #[error("empty code")]
    Empty,
    /// A character outside ASCII letters, digits, `.`, `-` remained after NFKC folding
    /// (e.g. a Cyrillic look-alike letter).
    #[error("non-ASCII character {0:?} in code (look-alike letters are not fixed)")]
    NonAscii(char),
    /// Not shaped like a code or a block range.
    #[error("malformed code {0:?}")]
    Malformed(String),
    /// Shaped like a code but absent from the code set (the uppercased, dot-normalized form).
    #[error("{0} is not in the ICD-10-CM code set")]
    Unknown(String),
}

/// Fold a string for code matching: NFKC, dashes to `-`, zero-width characters dropped.
fn fold(input: &str) -> String {
    input
        .nfkc()
        .filter_map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => Some('-'),
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
            c => Some(c),
        })
        .collect()
}

/// Whether `s` looks like a code: a letter, two alphanumerics, then optionally a dot and 1-4
/// alphanumerics (the dot may be missing), or a block range `X00-X99`.
fn is_code_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some((a, z)) = s.split_once('-') {
        return a.len() == 3 && z.len() == 3 && is_code_shaped(a) && is_code_shaped(z);
    }
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() {
        return false;
    }
    if !b[2].is_ascii_alphanumeric() {
        return false;
    }
    let rest = &s[3..];
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    if s.len() > 3 && s.as_bytes()[3] == b'.' && rest.is_empty() {
        return false;
    }
    rest.len() <= 4 && rest.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// Normalize a string meant to be one ICD-10 code (see the module docs for every rule) and
/// look it up in `set`.
///
/// ```
/// use ro_tasks::{normalize_code, CodeSet, Laterality};
/// let set = CodeSet::embedded();
/// let c = normalize_code(" c50,4 L ", set).unwrap();
/// assert_eq!(c.code(), "C50.4");
/// assert_eq!(c.qualifiers.laterality, Some(Laterality::Left));
/// assert!(normalize_code("С34.1", set).is_err()); // Cyrillic С
/// ```
pub fn normalize_code<'a>(input: &str, set: &'a CodeSet) -> Result<NormalizedCode<'a>, CodeError> {
    let folded = fold(input);
    let mut tokens: Vec<&str> = folded.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(CodeError::Empty);
    }
    // Trailing whitespace-separated qualifier groups ("C50.4 L G").
    let mut qualifiers = Qualifiers::default();
    while tokens.len() > 1 {
        let last = tokens[tokens.len() - 1].to_uppercase();
        if !last.chars().all(is_qualifier_char) {
            break;
        }
        let mut q = qualifiers;
        if !last.chars().all(|c| q.add(c)) {
            return Err(CodeError::Malformed(input.to_string()));
        }
        qualifiers = q;
        tokens.pop();
    }
    let mut core = String::new();
    for c in tokens.concat().chars() {
        if !c.is_ascii() && !is_qualifier_char(c) {
            return Err(CodeError::NonAscii(c));
        }
        core.push(match c {
            ',' => '.',
            c => c.to_ascii_uppercase(),
        });
    }
    if core.ends_with('.') {
        core.pop();
    }
    if let Some(bad) = core
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || is_qualifier_char(c)))
    {
        return Err(CodeError::Malformed(format!("{input} (character {bad:?})")));
    }
    // Longest prefix that is a known name, with the rest glued qualifiers.
    let cut_points: Vec<usize> = core.char_indices().map(|(i, _)| i).skip(1).collect();
    for &cut in std::iter::once(&core.len()).chain(cut_points.iter().rev()) {
        let (prefix, suffix) = core.split_at(cut);
        if prefix.ends_with('.') {
            continue;
        }
        let Some(q) = (if suffix.is_empty() {
            Some(qualifiers)
        } else {
            Qualifiers::parse(suffix).and_then(|glued| merge(qualifiers, glued))
        }) else {
            continue;
        };
        // Chapter numbers ("2") are names in the package but not code-shaped: never matched.
        if let Some(entry) = lookup_shaped(prefix, set) {
            return Ok(NormalizedCode {
                entry,
                qualifiers: q,
            });
        }
    }
    let plain: String = core.trim_end_matches(is_qualifier_char).to_string();
    if is_code_shaped(&plain) {
        Err(CodeError::Unknown(dotted(&plain)))
    } else {
        Err(CodeError::Malformed(input.trim().to_string()))
    }
}

fn merge(a: Qualifiers, b: Qualifiers) -> Option<Qualifiers> {
    fn one<T: Copy>(x: Option<T>, y: Option<T>) -> Option<Option<T>> {
        match (x, y) {
            (Some(_), Some(_)) => None,
            (x, y) => Some(x.or(y)),
        }
    }
    Some(Qualifiers {
        certainty: one(a.certainty, b.certainty)?,
        laterality: one(a.laterality, b.laterality)?,
        marker: one(a.marker, b.marker)?,
    })
}

fn lookup_shaped<'a>(s: &str, set: &'a CodeSet) -> Option<&'a Entry> {
    if !is_code_shaped(s) {
        return None;
    }
    set.get(s).or_else(|| set.block(s))
}

fn dotted(s: &str) -> String {
    if s.len() > 3 && !s.contains('.') && !s.contains('-') {
        format!("{}.{}", &s[..3], &s[3..])
    } else {
        s.to_string()
    }
}

/// Find the ICD-10 code in a free-text model answer ("The code is C34.1 (malignant neoplasm
/// of upper lobe)."): the whole answer if it is one code, else the first code-shaped word that
/// is in the set, else `Err` with the first code-shaped word ([`CodeError::Unknown`]) or
/// [`CodeError::Malformed`]/[`CodeError::Empty`] when there is none.
///
/// ```
/// use ro_tasks::{extract_code, CodeSet};
/// let set = CodeSet::embedded();
/// let c = extract_code("ICD-10: c61 (prostate)", set).unwrap();
/// assert_eq!(c.code(), "C61");
/// assert!(extract_code("no idea", set).is_err());
/// ```
pub fn extract_code<'a>(text: &str, set: &'a CodeSet) -> Result<NormalizedCode<'a>, CodeError> {
    match normalize_code(text, set) {
        Ok(code) => return Ok(code),
        Err(CodeError::Empty) => return Err(CodeError::Empty),
        Err(_) => {}
    }
    let folded = fold(text);
    let chars: Vec<(usize, char)> = folded.char_indices().collect();
    let mut first_shaped: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let word_start = i == 0 || !chars[i - 1].1.is_alphanumeric();
        if !(word_start && c.is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        // The word: ASCII alphanumerics with at most one inner '.' or ','.
        let mut j = i + 1;
        let mut seen_sep = false;
        while j < chars.len() {
            let d = chars[j].1;
            if d.is_ascii_alphanumeric() {
                j += 1;
            } else if (d == '.' || d == ',')
                && !seen_sep
                && chars
                    .get(j + 1)
                    .is_some_and(|n| n.1.is_ascii_alphanumeric())
            {
                seen_sep = true;
                j += 1;
            } else {
                break;
            }
        }
        if chars.get(j).is_some_and(|n| n.1.is_alphanumeric()) {
            // Runs into a non-ASCII letter: not a code word.
            i = j;
            continue;
        }
        let end = chars.get(j).map_or(folded.len(), |n| n.0);
        // Glued markers directly after the word (C79.5†).
        let mut k = j;
        while chars
            .get(k)
            .is_some_and(|n| matches!(n.1, '†' | '*' | '!' | '+'))
        {
            k += 1;
        }
        let end_with_markers = chars.get(k).map_or(folded.len(), |n| n.0);
        let word = folded[start..end].to_ascii_uppercase().replace(',', ".");
        if is_code_shaped(&word) {
            let with_markers = normalize_code(&folded[start..end_with_markers], set);
            if let Ok(code) = with_markers.or_else(|_| normalize_code(&folded[start..end], set)) {
                return Ok(code);
            }
            first_shaped.get_or_insert(dotted(&word));
        }
        i = j.max(i + 1);
    }
    match first_shaped {
        Some(word) => Err(CodeError::Unknown(word)),
        None => Err(CodeError::Malformed(text.trim().chars().take(80).collect())),
    }
}

/// The answer of `evaluate icd10` for one input string: validity, canonical code, kind,
/// billable flag, description and qualifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeLookup {
    /// Whether the input normalized to a node of the code set.
    pub valid: bool,
    /// The canonical name (`"C34.1"`), `null` when invalid.
    pub code: Option<String>,
    /// `"chapter"`, `"block"`, `"category"`, `"subcategory"`, `"extended_subcategory"`.
    pub kind: Option<Kind>,
    /// A billable leaf code.
    pub billable: bool,
    /// The tabular list's description.
    pub description: Option<String>,
    /// ICD-10-GM qualifiers found after the code.
    pub qualifiers: Qualifiers,
    /// Why the input is not valid.
    pub error: Option<String>,
}

impl CodeLookup {
    /// Normalize `input` as one code ([`normalize_code`]) and describe it.
    ///
    /// ```
    /// let out = ro_tasks::CodeLookup::of("z51.0", ro_tasks::CodeSet::embedded());
    /// assert!(out.valid && out.billable);
    /// assert_eq!(out.description.as_deref(), Some("Encounter for antineoplastic radiation therapy"));
    /// ```
    pub fn of(input: &str, set: &CodeSet) -> CodeLookup {
        match normalize_code(input, set) {
            Ok(c) => CodeLookup {
                valid: true,
                code: Some(c.entry.code.clone()),
                kind: Some(c.entry.kind),
                billable: c.entry.billable(),
                description: Some(c.entry.description.clone()),
                qualifiers: c.qualifiers,
                error: None,
            },
            Err(e) => CodeLookup {
                valid: false,
                code: None,
                kind: None,
                billable: false,
                description: None,
                qualifiers: Qualifiers::default(),
                error: Some(e.to_string()),
            },
        }
    }
}
