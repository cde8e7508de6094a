//! Treatment regimens: parsing free text into dose, fractionation, technique, target, boost
//! and concurrent therapy, and the dose-arithmetic consistency check.
//!
//! Understood formats (English and German, any case, any spacing):
//!
//! | text | total | fractions | per fraction |
//! | --- | --- | --- | --- |
//! | `60 Gy in 30 fractions`, `60Gy/30fx`, `60 Gy / 30`, `60 Gy in 30 Fraktionen` | 60 | 30 | (2) |
//! | `5 x 5 Gy`, `5×5Gy`, `30 x 2 Gy` | (25) | 5 | 5 |
//! | `2 Gy x 30` | (60) | 30 | 2 |
//! | `50,4 Gy in 28 Fx à 1,8 Gy`, `ED 1,8 Gy, GD 50,4 Gy` | 50.4 | 28 | 1.8 |
//! | `5040 cGy in 28 fractions` | 50.4 | 28 | (1.8) |
//! | `2 Gy per fraction to 60 Gy`, `2 Gy/fx` | 60 | (30) | 2 |
//! | `8 Gy single fraction` | 8 | 1 | (8) |
//! | `45 Gy in 25 fractions + 9 Gy boost in 5 fractions` | 45 | 25 | (1.8); boost 9 Gy / 5 |
//!
//! Values in brackets are derived from the other two. The text is split into clauses at `+`,
//! `;`, line breaks, "followed by", "then", "plus", "with", and German "gefolgt von",
//! "danach", "anschließend", "mit", "und"; a clause naming a boost ("boost", "SIB") describes
//! the boost, the first other clause with a dose the main course, and later non-boost clauses
//! only fill fields the main course lacks. `total_dose_gy` is the main course's dose;
//! [`Regimen::cumulative_dose_gy`] adds the boost.
//!
//! Numbers: a decimal comma between digits is a decimal point (`1,8`); `1e9` is read as a
//! number (and flagged implausible) rather than as `9`; a minus sign directly before a number
//! makes it negative (flagged, and the value dropped); numbers that overflow are dropped and
//! flagged. Nothing here panics on any input (property-tested).

use serde::{Deserialize, Serialize};

use crate::modality::Technique;

/// Dose and fractionation of one course (the main course or the boost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Course {
    /// Total dose in Gy.
    pub total_dose_gy: Option<f64>,
    /// Number of fractions.
    pub fractions: Option<u32>,
    /// Dose per fraction in Gy.
    pub dose_per_fraction_gy: Option<f64>,
}

impl Course {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.total_dose_gy.is_none()
            && self.fractions.is_none()
            && self.dose_per_fraction_gy.is_none()
    }
}

/// Result of the check dose per fraction × fractions = total dose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[derive(Default)]
pub enum Consistency {
    /// All three were stated and agree within the rounding of the stated numbers.
    Consistent,
    /// All three were stated and disagree.
    Inconsistent {
        /// Dose per fraction × fractions.
        product_gy: f64,
        /// The stated total.
        total_gy: f64,
    },
    /// Fewer than three were stated (missing ones, if possible, were derived).
    #[default]
    NotCheckable,
}

/// Something doubtful found while parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "issue", content = "value", rename_all = "snake_case")]
pub enum RegimenIssue {
    /// A negative dose was written; it was dropped.
    NegativeDose(f64),
    /// A dose outside (0, 200] Gy total or (0, 30] Gy per fraction; kept.
    ImplausibleDose(f64),
    /// A fraction count that is not a whole number in 1..=100; dropped if not whole.
    ImplausibleFractions(f64),
    /// A number too large to represent; dropped.
    NumberOutOfRange(String),
}

/// A regimen parsed from free text.
///
/// ```
/// use ro_tasks::{Regimen, Technique, Consistency};
/// let r = Regimen::parse("50,4 Gy in 28 Fx à 1,8 Gy (VMAT) auf das Rektum mit Capecitabin");
/// assert_eq!(r.course.total_dose_gy, Some(50.4));
/// assert_eq!(r.course.fractions, Some(28));
/// assert_eq!(r.course.dose_per_fraction_gy, Some(1.8));
/// assert_eq!(r.technique, Some(Technique::Vmat));
/// assert_eq!(r.concurrent, vec!["capecitabine".to_string()]);
/// assert_eq!(r.consistency, Consistency::Consistent);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Regimen {
    /// The main course.
    pub course: Course,
    /// A sequential or integrated boost, if described.
    pub boost: Option<Course>,
    /// The technique named first.
    pub technique: Option<Technique>,
    /// The target ("prostate", "whole breast"), lower case, without articles.
    pub target: Option<String>,
    /// Concurrent systemic therapy, canonical names sorted (`"temozolomide"`,
    /// `"androgen deprivation"`, or `"chemotherapy"` when no drug is named).
    pub concurrent: Vec<String>,
    /// The dose-arithmetic check of the main course.
    pub consistency: Consistency,
    /// Doubtful values.
    pub issues: Vec<RegimenIssue>,
}

impl Regimen {
    /// Parse free text (see the module docs for the formats).
    pub fn parse(text: &str) -> Regimen {
        let mut issues = Vec::new();
        let tokens = tokenize(text, &mut issues);
        let mut main = Partial::default();
        let mut boost: Option<Partial> = None;
        for clause in tokens.split(|t| matches!(t.kind, Tok::Sep)) {
            let is_boost = clause.iter().any(|t| matches!(t.kind, Tok::Boost));
            let p = parse_clause(clause, &mut issues);
            if p.is_empty() {
                continue;
            }
            if is_boost {
                boost.get_or_insert(p);
            } else if main.is_empty() {
                main = p;
            } else {
                main.fill_from(&p);
            }
        }
        let consistency = main.consistency();
        let course = main.resolve(&mut issues);
        let boost = boost.map(|b| b.resolve(&mut issues));
        Regimen {
            course,
            boost,
            technique: Technique::parse(text),
            target: find_target(text),
            concurrent: find_concurrent(text),
            consistency,
            issues,
        }
    }

    /// Main course plus boost dose, when the main total is known.
    pub fn cumulative_dose_gy(&self) -> Option<f64> {
        let boost = self.boost.and_then(|b| b.total_dose_gy).unwrap_or(0.0);
        self.course.total_dose_gy.map(|t| t + boost)
    }

    /// Whether nothing at all was recognised (scored as unparseable).
    pub fn is_empty(&self) -> bool {
        self.course.is_empty()
            && self.boost.is_none()
            && self.technique.is_none()
            && self.target.is_none()
            && self.concurrent.is_empty()
    }

    /// No issue was raised and the arithmetic is not inconsistent.
    pub fn is_plausible(&self) -> bool {
        self.issues.is_empty() && !matches!(self.consistency, Consistency::Inconsistent { .. })
    }
}

/// A number as written: value and count of decimals (for rounding tolerance).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Num {
    value: f64,
    decimals: i32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Num(Num),
    Gy,
    CGy,
    Times,
    Slash,
    Frac,
    PerFrac,
    DpfMark,
    TotalMark,
    SingleFx,
    Boost,
    Sep,
    Word,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Tok,
}

fn word_kind(w: &str) -> Tok {
    match w {
        "gy" | "gray" => Tok::Gy,
        "cgy" => Tok::CGy,
        "x" | "mal" => Tok::Times,
        "fraction" | "fractions" | "fx" | "fxs" | "fr" | "fraktion" | "fraktionen"
        | "fractionen" => Tok::Frac,
        "daily" | "ed" | "einzeldosis" => Tok::DpfMark,
        "gd" | "gesamtdosis" | "total" | "cumulative" => Tok::TotalMark,
        "boost" | "sib" | "boostbestrahlung" | "aufsättigung" => Tok::Boost,
        "then" | "plus" | "with" | "danach" | "anschließend" | "mit" | "und" => Tok::Sep,
        "single" | "einzeitig" | "einmalig" | "once" => Tok::SingleFx,
        _ => Tok::Word,
    }
}

/// Words dropped entirely (they neither carry meaning nor break a pattern).
fn is_filler(w: &str) -> bool {
    matches!(
        w,
        "in" | "of"
            | "at"
            | "to"
            | "over"
            | "über"
            | "zu"
            | "à"
            | "a"
            | "je"
            | "von"
            | "each"
            | "the"
            | "bis"
            | "auf"
            | "dose"
            | "("
            | ")"
            | ","
            | ":"
            | "="
            | "an"
    )
}

fn tokenize(text: &str, issues: &mut Vec<RegimenIssue>) -> Vec<Token> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, words: &mut Vec<String>, kind: Tok, w: String| {
        out.push(Token { kind });
        words.push(w);
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let negative = i > 0
                && matches!(chars[i - 1], '-' | '−')
                && (i < 2 || !chars[i - 2].is_alphanumeric());
            let start = i;
            let mut s = String::new();
            let mut decimals = 0i32;
            let mut seen_point = false;
            while i < chars.len() {
                let d = chars[i];
                if d.is_ascii_digit() {
                    s.push(d);
                    if seen_point {
                        decimals += 1;
                    }
                    i += 1;
                } else if (d == '.' || d == ',')
                    && !seen_point
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
                {
                    s.push('.');
                    seen_point = true;
                    i += 1;
                } else {
                    break;
                }
            }
            // Exponent: e9, e+9, e-3.
            if chars.get(i) == Some(&'e') {
                let mut j = i + 1;
                let mut exp = String::from("e");
                if matches!(chars.get(j), Some('+') | Some('-')) {
                    exp.push(chars[j]);
                    j += 1;
                }
                if chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                    while chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                        exp.push(chars[j]);
                        j += 1;
                    }
                    s.push_str(&exp);
                    i = j;
                    decimals = 0;
                }
            }
            let raw: String = chars[start..i].iter().collect();
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    let value = if negative { -v } else { v };
                    push(&mut out, &mut words, Tok::Num(Num { value, decimals }), raw);
                }
                _ => {
                    issues.push(RegimenIssue::NumberOutOfRange(
                        raw.chars().take(40).collect(),
                    ));
                    push(&mut out, &mut words, Tok::Word, raw);
                }
            }
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphabetic()) {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            if w == "von" && words.last().is_some_and(|l| l == "gefolgt") {
                out.pop();
                words.pop();
                push(&mut out, &mut words, Tok::Sep, w);
                continue;
            }
            if is_filler(&w) {
                continue;
            }
            // "per fraction", "pro fraktion", "per fx".
            let kind = word_kind(&w);
            if matches!(w.as_str(), "per" | "pro") {
                push(&mut out, &mut words, Tok::Word, w);
                continue;
            }
            if kind == Tok::Frac
                && matches!(words.last().map(String::as_str), Some("per" | "pro" | "/"))
            {
                out.pop();
                words.pop();
                push(&mut out, &mut words, Tok::PerFrac, w);
                continue;
            }
            if kind == Tok::Word && w == "by" && words.last().is_some_and(|l| l == "followed") {
                out.pop();
                words.pop();
                push(&mut out, &mut words, Tok::Sep, w);
                continue;
            }
            if kind == Tok::Word && w == "von" && words.last().is_some_and(|l| l == "gefolgt") {
                out.pop();
                words.pop();
                push(&mut out, &mut words, Tok::Sep, w);
                continue;
            }
            push(&mut out, &mut words, kind, w);
            continue;
        }
        i += 1;
        match c {
            '×' | '*' => push(&mut out, &mut words, Tok::Times, c.to_string()),
            '/' => push(&mut out, &mut words, Tok::Slash, c.to_string()),
            '+' | ';' | '\n' => push(&mut out, &mut words, Tok::Sep, c.to_string()),
            '#' => push(&mut out, &mut words, Tok::Frac, c.to_string()),
            '-' | '−' if !chars.get(i).is_some_and(|n| n.is_ascii_digit()) => {
                push(&mut out, &mut words, Tok::Word, c.to_string())
            }
            // A range "45-50": the dash separates; a sign is read with the number.
            '-' | '−' if i >= 2 && chars[i - 2].is_alphanumeric() => {
                push(&mut out, &mut words, Tok::Word, c.to_string());
            }
            _ => {}
        }
    }
    // "Slash Frac" (2 Gy/fx) is a per-fraction marker, except after "Gy / N".
    let mut merged: Vec<Token> = Vec::with_capacity(out.len());
    for t in out {
        if t.kind == Tok::Frac && merged.last().is_some_and(|l| l.kind == Tok::Slash) {
            merged.pop();
            merged.push(Token { kind: Tok::PerFrac });
        } else {
            merged.push(t);
        }
    }
    merged
}

/// Values stated in one clause.
#[derive(Debug, Clone, Copy, Default)]
struct Partial {
    total: Option<Num>,
    fractions: Option<Num>,
    dpf: Option<Num>,
    single: bool,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.total.is_none() && self.fractions.is_none() && self.dpf.is_none() && !self.single
    }

    fn fill_from(&mut self, other: &Partial) {
        self.total = self.total.or(other.total);
        self.fractions = self.fractions.or(other.fractions);
        self.dpf = self.dpf.or(other.dpf);
        self.single |= other.single;
    }

    fn consistency(&self) -> Consistency {
        match (self.total, self.fractions, self.dpf) {
            (Some(t), Some(n), Some(d)) if t.value > 0.0 && n.value > 0.0 && d.value > 0.0 => {
                let product = d.value * n.value;
                let tol =
                    0.5 * 10f64.powi(-d.decimals) * n.value + 0.5 * 10f64.powi(-t.decimals) + 1e-9;
                if (product - t.value).abs() <= tol {
                    Consistency::Consistent
                } else {
                    Consistency::Inconsistent {
                        product_gy: product,
                        total_gy: t.value,
                    }
                }
            }
            _ => Consistency::NotCheckable,
        }
    }

    fn resolve(&self, issues: &mut Vec<RegimenIssue>) -> Course {
        let dose = |n: Option<Num>, max: f64, issues: &mut Vec<RegimenIssue>| -> Option<f64> {
            let v = n?.value;
            if v < 0.0 {
                issues.push(RegimenIssue::NegativeDose(v));
                return None;
            }
            if v == 0.0 || v > max {
                issues.push(RegimenIssue::ImplausibleDose(v));
            }
            Some(v)
        };
        let total = dose(self.total, 200.0, issues);
        let dpf = dose(self.dpf, 30.0, issues);
        let mut fractions = match self.fractions {
            Some(n) if n.value.fract() == 0.0 && n.value >= 1.0 && n.value <= 100.0 => {
                Some(n.value as u32)
            }
            Some(n) => {
                issues.push(RegimenIssue::ImplausibleFractions(n.value));
                None
            }
            None => None,
        };
        if fractions.is_none() && self.single {
            fractions = Some(1);
        }
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut course = Course {
            total_dose_gy: total,
            fractions,
            dose_per_fraction_gy: dpf,
        };
        match (total, fractions, dpf) {
            (Some(t), Some(n), None) => course.dose_per_fraction_gy = Some(round(t / n as f64)),
            (None, Some(n), Some(d)) => course.total_dose_gy = Some(round(d * n as f64)),
            (Some(t), None, Some(d)) if d > 0.0 => {
                let n = t / d;
                if (n - n.round()).abs() < 0.02 && n.round() >= 1.0 && n.round() <= 100.0 {
                    course.fractions = Some(n.round() as u32);
                }
            }
            (Some(t), None, None) if self.total.is_some() && self.single => {
                course.dose_per_fraction_gy = Some(t);
            }
            _ => {}
        }
        course
    }
}

fn parse_clause(toks: &[Token], issues: &mut Vec<RegimenIssue>) -> Partial {
    let _ = issues;
    let mut p = Partial::default();
    let k: Vec<Tok> = toks.iter().map(|t| t.kind).collect();
    let num = |i: usize| match k.get(i) {
        Some(Tok::Num(n)) => Some(*n),
        _ => None,
    };
    // A dose: Num followed by Gy or cGy; returns the value in Gy and the unit's length.
    let dose = |i: usize| -> Option<Num> {
        let n = num(i)?;
        match k.get(i + 1) {
            Some(Tok::Gy) => Some(n),
            Some(Tok::CGy) => Some(Num {
                value: n.value / 100.0,
                decimals: n.decimals + 2,
            }),
            _ => None,
        }
    };
    let mut i = 0;
    let mut mark: Option<Tok> = None;
    while i < k.len() {
        // N x D Gy
        if let (Some(n), Some(Tok::Times), Some(d)) = (num(i), k.get(i + 1), dose(i + 2)) {
            p.fractions.get_or_insert(n);
            p.dpf.get_or_insert(d);
            i += 4;
            continue;
        }
        if let Some(d) = dose(i) {
            // D Gy x N
            if let (Some(Tok::Times), Some(n)) = (k.get(i + 2), num(i + 3)) {
                p.dpf.get_or_insert(d);
                p.fractions.get_or_insert(n);
                i += 4;
                continue;
            }
            // D Gy per fraction
            if k.get(i + 2) == Some(&Tok::PerFrac) {
                p.dpf.get_or_insert(d);
                i += 3;
                continue;
            }
            // D Gy / N [fx]
            if let (Some(Tok::Slash), Some(n)) = (k.get(i + 2), num(i + 3)) {
                p.total.get_or_insert(d);
                p.fractions.get_or_insert(n);
                i += 4 + usize::from(k.get(i + 4) == Some(&Tok::Frac));
                continue;
            }
            match mark.take() {
                Some(Tok::DpfMark) => {
                    p.dpf.get_or_insert(d);
                }
                Some(Tok::TotalMark) => {
                    p.total.get_or_insert(d);
                }
                _ => {
                    if p.total.is_none() {
                        p.total = Some(d);
                    } else if p.dpf.is_none() {
                        p.dpf = Some(d);
                    }
                }
            }
            i += 2;
            continue;
        }
        if let (Some(n), Some(Tok::Frac)) = (num(i), k.get(i + 1)) {
            p.fractions.get_or_insert(n);
            // N fractions of D Gy
            if let Some(d) = dose(i + 2) {
                p.dpf.get_or_insert(d);
                i += 4 + usize::from(k.get(i + 4) == Some(&Tok::PerFrac));
                continue;
            }
            i += 2;
            continue;
        }
        match k[i] {
            Tok::DpfMark | Tok::TotalMark => mark = Some(k[i]),
            Tok::SingleFx
                if k.get(i + 1) == Some(&Tok::Frac) || matches!(k.get(i + 1), Some(Tok::Word)) =>
            {
                p.single = true;
            }
            _ => {}
        }
        i += 1;
    }
    p
}

const STOP_WORDS: &[&str] = &[
    "with",
    "in",
    "using",
    "over",
    "followed",
    "plus",
    "and",
    "concurrent",
    "mit",
    "in",
    "unter",
    "bis",
    "per",
    "via",
];

fn find_target(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_matches(|c: char| !c.is_alphanumeric());
        let starts = matches!(w, "to" | "auf")
            || (matches!(w, "target" | "zielvolumen" | "ziel") && words[i].ends_with(':'));
        if starts {
            let mut j = i + 1;
            while j < words.len() && matches!(words[j], "the" | "die" | "den" | "das" | "a" | "an")
            {
                j += 1;
            }
            let mut target: Vec<String> = Vec::new();
            while j < words.len() {
                let raw = words[j];
                let clean = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
                if clean.is_empty()
                    || clean.chars().next().is_some_and(|c| c.is_ascii_digit())
                    || STOP_WORDS.contains(&clean)
                    || Technique::parse(clean).is_some()
                {
                    break;
                }
                target.push(clean.to_string());
                if raw.ends_with([',', ';', '.', ')', '(']) || target.len() >= 6 {
                    break;
                }
                j += 1;
            }
            if !target.is_empty() && !matches!(target[0].as_str(), "total" | "a" | "gesamt") {
                return Some(target.join(" "));
            }
        }
        i += 1;
    }
    None
}

/// Drugs and their canonical names (lower-case stems matched at word starts).
const DRUGS: &[(&str, &str)] = &[
    ("temozolomid", "temozolomide"),
    ("cisplatin", "cisplatin"),
    ("carboplatin", "carboplatin"),
    ("capecitabin", "capecitabine"),
    ("5-fu", "fluorouracil"),
    ("5fu", "fluorouracil"),
    ("fluorouracil", "fluorouracil"),
    ("mitomycin", "mitomycin"),
    ("cetuximab", "cetuximab"),
    ("paclitaxel", "paclitaxel"),
    ("docetaxel", "docetaxel"),
    ("etoposid", "etoposide"),
    ("adt", "androgen deprivation"),
    ("androgen deprivation", "androgen deprivation"),
    ("androgendeprivation", "androgen deprivation"),
    ("antiandrogen", "androgen deprivation"),
    ("hormone therapy", "androgen deprivation"),
    ("hormontherapie", "androgen deprivation"),
];

fn find_concurrent(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let negated = |pos: usize| {
        let before: Vec<&str> = lower[..pos].split_whitespace().rev().take(3).collect();
        before
            .iter()
            .any(|w| matches!(*w, "no" | "without" | "ohne" | "keine" | "kein" | "nicht"))
    };
    let at_word_start = |pos: usize| {
        lower[..pos]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    };
    let mut found: Vec<String> = Vec::new();
    for &(stem, name) in DRUGS {
        let mut from = 0;
        while let Some(off) = lower[from..].find(stem) {
            let pos = from + off;
            if at_word_start(pos) && !negated(pos) {
                if !found.iter().any(|f| f == name) {
                    found.push(name.to_string());
                }
                break;
            }
            from = pos + stem.len();
        }
    }
    if found.is_empty() {
        for stem in ["chemo", "radiochemo"] {
            if let Some(pos) = lower.find(stem) {
                if at_word_start(pos) && !negated(pos) {
                    found.push("chemotherapy".to_string());
                    break;
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str) -> (Option<f64>, Option<u32>, Option<f64>) {
        let r = Regimen::parse(text).course;
        (r.total_dose_gy, r.fractions, r.dose_per_fraction_gy)
    }

    #[test]
    fn formats() {
        type Want = (Option<f64>, Option<u32>, Option<f64>);
        let cases: &[(&str, Want)] = &[
            ("60 Gy in 30 fractions", (Some(60.0), Some(30), Some(2.0))),
            ("60Gy/30fx", (Some(60.0), Some(30), Some(2.0))),
            ("60 Gy / 30", (Some(60.0), Some(30), Some(2.0))),
            ("60 Gy in 30 Fraktionen", (Some(60.0), Some(30), Some(2.0))),
            ("5 x 5 Gy", (Some(25.0), Some(5), Some(5.0))),
            ("5x5Gy", (Some(25.0), Some(5), Some(5.0))),
            ("5 × 5 Gy", (Some(25.0), Some(5), Some(5.0))),
            ("2 Gy x 30", (Some(60.0), Some(30), Some(2.0))),
            ("30 x 2 Gy", (Some(60.0), Some(30), Some(2.0))),
            ("1,8 Gy x 28", (Some(50.4), Some(28), Some(1.8))),
            (
                "50,4 Gy in 28 Fx à 1,8 Gy",
                (Some(50.4), Some(28), Some(1.8)),
            ),
            ("ED 1,8 Gy, GD 50,4 Gy", (Some(50.4), Some(28), Some(1.8))),
            (
                "5040 cGy in 28 fractions",
                (Some(50.4), Some(28), Some(1.8)),
            ),
            (
                "2 Gy per fraction to 60 Gy",
                (Some(60.0), Some(30), Some(2.0)),
            ),
            (
                "2 Gy/fx to a total dose of 60 Gy",
                (Some(60.0), Some(30), Some(2.0)),
            ),
            ("8 Gy single fraction", (Some(8.0), Some(1), Some(8.0))),
            (
                "40.05 Gy in 15 fractions",
                (Some(40.05), Some(15), Some(2.67)),
            ),
            (
                "54 Gy in 3 fractions SBRT",
                (Some(54.0), Some(3), Some(18.0)),
            ),
            ("30 fractions of 2 Gy", (Some(60.0), Some(30), Some(2.0))),
            ("", (None, None, None)),
            ("no radiotherapy", (None, None, None)),
        ];
        for (text, want) in cases {
            assert_eq!(c(text), *want, "{text}");
        }
    }

    #[test]
    fn boost_is_separate() {
        let r = Regimen::parse("45 Gy + 9 Gy boost");
        assert_eq!(r.course.total_dose_gy, Some(45.0));
        assert_eq!(r.boost.unwrap().total_dose_gy, Some(9.0));
        assert_eq!(r.cumulative_dose_gy(), Some(54.0));
        let r = Regimen::parse(
            "50 Gy in 25 fractions to the whole breast with a boost of 16 Gy in 8 fractions",
        );
        assert_eq!(r.course.fractions, Some(25));
        let b = r.boost.unwrap();
        assert_eq!((b.total_dose_gy, b.fractions), (Some(16.0), Some(8)));
        assert_eq!(r.target.as_deref(), Some("whole breast"));
    }

    #[test]
    fn consistency_uses_stated_rounding() {
        let r = Regimen::parse("40.05 Gy in 15 fractions of 2.67 Gy");
        assert_eq!(r.consistency, Consistency::Consistent);
        let r = Regimen::parse("60 Gy in 30 fractions of 3 Gy");
        assert!(matches!(r.consistency, Consistency::Inconsistent { .. }));
        assert!(!r.is_plausible());
        let r = Regimen::parse("60 Gy in 30 fractions");
        assert_eq!(r.consistency, Consistency::NotCheckable);
    }

    #[test]
    fn absurd_values_are_flagged_not_panicking() {
        let r = Regimen::parse("-60 Gy in 30 fractions");
        assert_eq!(r.course.total_dose_gy, None);
        assert!(r.issues.contains(&RegimenIssue::NegativeDose(-60.0)));
        let r = Regimen::parse("1e9 Gy");
        assert_eq!(r.course.total_dose_gy, Some(1e9));
        assert!(r.issues.contains(&RegimenIssue::ImplausibleDose(1e9)));
        let r = Regimen::parse("1e999 Gy in 2.5 fractions");
        assert_eq!(r.course.total_dose_gy, None);
        assert!(!r.is_plausible());
        let r = Regimen::parse("45-50 Gy");
        assert_eq!(r.course.total_dose_gy, Some(50.0));
    }

    #[test]
    fn technique_target_and_drugs() {
        let r = Regimen::parse(
            "60 Gy in 30 fractions to the tumour bed with concurrent temozolomide, IMRT",
        );
        assert_eq!(r.technique, Some(Technique::Imrt));
        assert_eq!(r.target.as_deref(), Some("tumour bed"));
        assert_eq!(r.concurrent, vec!["temozolomide"]);
        let r = Regimen::parse("78 Gy in 39 fractions to the prostate plus ADT");
        assert_eq!(r.concurrent, vec!["androgen deprivation"]);
        let r = Regimen::parse("8 Gy single fraction, no chemotherapy");
        assert!(r.concurrent.is_empty());
        assert!(Regimen::parse("").is_empty());
    }
}
