//! A rater's answers as read from a ratings file, before they are checked against the key.
//!
//! Two file forms carry them: the JSON file the HTML packet saves,
//!
//! ```json
//! {"format": "ro-qlora-review-ratings", "version": 1, "packet": "rv-…", "rater": "ann",
//!  "saved_at": "2026-12-05T10:00:00.000Z",
//!  "answers": [{"case": "c7", "candidate": "B", "question": "correctness", "value": 3}, …]}
//! ```
//!
//! and the packet's CSV filled in (see [`super::csv`]). [`read_ratings_file`] tells them apart
//! by content (a JSON object starts with `{`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The `format` field of a JSON ratings file.
pub const RATINGS_FORMAT: &str = "ro-qlora-review-ratings";
/// Its version.
pub const RATINGS_VERSION: u32 = 1;

/// One answer as written by the rater.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAnswer {
    /// Case id.
    pub case: String,
    /// Candidate label (`A`, `B`, ...).
    pub candidate: String,
    /// Question id.
    pub question: String,
    /// What was entered: a JSON number or string (CSV cells are strings).
    pub value: serde_json::Value,
    /// Where in the file it is (`answers[3]`, `row 5`), for messages.
    pub place: String,
}

/// Everything one ratings file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RaterAnswers {
    /// The file.
    pub path: PathBuf,
    /// The packet id the file claims.
    pub packet: String,
    /// The rater the file claims.
    pub rater: String,
    /// The answers, in file order (empty answers left out).
    pub answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    format: String,
    version: u32,
    packet: String,
    rater: String,
    #[serde(default)]
    #[allow(dead_code)] // read for completeness; the import does not use it
    saved_at: Option<String>,
    answers: Vec<JsonAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAnswer {
    case: String,
    candidate: String,
    question: String,
    value: serde_json::Value,
}

/// Reads a JSON ratings file's text.
///
/// # Errors
/// Invalid JSON, a missing or unknown field, or another format or version.
pub fn parse_json(path: &Path, text: &str) -> Result<RaterAnswers> {
    let file: JsonFile = serde_json::from_str(text)
        .with_context(|| format!("{}: not a ratings file saved by a packet", path.display()))?;
    if file.format != RATINGS_FORMAT || file.version != RATINGS_VERSION {
        bail!(
            "{}: format {:?} version {}, expected {RATINGS_FORMAT:?} version {RATINGS_VERSION}",
            path.display(),
            file.format,
            file.version
        );
    }
    let answers = file
        .answers
        .into_iter()
        .enumerate()
        .filter(|(_, a)| a.value.as_str() != Some(""))
        .map(|(i, a)| RawAnswer {
            case: a.case,
            candidate: a.candidate,
            question: a.question,
            value: a.value,
            place: format!("answers[{i}]"),
        })
        .collect();
    Ok(RaterAnswers {
        path: path.to_path_buf(),
        packet: file.packet,
        rater: file.rater,
        answers,
    })
}

/// Reads a ratings file, JSON (saved by the HTML packet) or CSV (the packet's spreadsheet).
///
/// # Errors
/// An unreadable file, text that is not UTF-8, or content that is neither form.
pub fn read_ratings_file(path: &Path) -> Result<RaterAnswers> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read ratings file {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 (byte {}); in Excel save as \"CSV UTF-8\", in LibreOffice choose the \
             character set \"Unicode (UTF-8)\"",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim_start().starts_with('{') {
        parse_json(path, text)
    } else {
        super::csv::parse(path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_files_are_read_and_checked() {
        let p = Path::new("r.json");
        let a = parse_json(
            p,
            r#"{"format":"ro-qlora-review-ratings","version":1,"packet":"rv-1","rater":"ann",
                "saved_at":"x","answers":[{"case":"c","candidate":"A","question":"q","value":3},
                {"case":"c","candidate":"A","question":"note","value":""}]}"#,
        )
        .unwrap();
        assert_eq!((a.packet.as_str(), a.rater.as_str()), ("rv-1", "ann"));
        assert_eq!(a.answers.len(), 1, "empty answers are left out");
        assert_eq!(a.answers[0].value, serde_json::json!(3));
        let e = parse_json(
            p,
            r#"{"format":"x","version":1,"packet":"","rater":"","answers":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("r.json: format \"x\""), "{e}");
        let e = parse_json(p, "{}").unwrap_err();
        assert!(format!("{e:#}").contains("missing field"), "{e:#}");
    }

    #[test]
    fn non_utf8_files_say_how_to_save_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ann.csv");
        std::fs::write(&p, b"packet,rater\r\nrv-1,J\xf6rg\r\n").unwrap();
        let e = read_ratings_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("ann.csv: not UTF-8") && e.contains("CSV UTF-8"),
            "{e}"
        );
    }
}
