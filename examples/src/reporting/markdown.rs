//! Markdown table cells and number formats shared by the demo's and the review's reports.

use super::Num;

/// A number with three decimals (`NaN`, `inf` as such).
pub fn fmt(v: Num) -> String {
    if v.0.is_finite() {
        format!("{:.3}", v.0)
    } else {
        format!("{}", v.0)
    }
}

/// A p-value: three decimals, scientific below 0.001, `n/a` when not finite.
pub fn fmt_p(v: Num) -> String {
    match v.0 {
        p if !p.is_finite() => "n/a".into(),
        p if p < 1e-3 => format!("{p:.1e}"),
        p => format!("{p:.3}"),
    }
}

/// Replaces characters that would break a Markdown table cell (line breaks, `|`) and cuts
/// the text to `max_chars` characters.
pub fn cell(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' => ' ',
            '|' => '/',
            c => c,
        })
        .collect();
    if flat.chars().count() > max_chars {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
