//! JSONL datasets: examples for training and evaluation, and prediction files.
//!
//! Every task uses the same line shape so that researchers can bring their own data:
//!
//! ```json
//! {"id": "case-17", "input": "<report or case context>", "target": "<reference answer>", "language": "en"}
//! ```
//!
//! `language` is optional (`"en"` default, or `"de"`); other fields are ignored. An `id` may be
//! a string or an integer (`17` reads as `"17"`): ids are opaque. The target is
//! checked per task: a letter or regimen must not be empty, a modality target must be one of
//! the four labels, an ICD-10 target must normalize to a code of the embedded set. Prediction
//! files have lines `{"id", "reference", "prediction"}`; an empty prediction is allowed (it is
//! scored, as "unparseable" where the task parses).
//!
//! Errors name the file, the 1-based line and the field.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codeset::CodeSet;
use crate::error::{Error, Result};
use crate::icd10_code::normalize_code;
use crate::modality::Modality;
use crate::prompt::Prompt;
use crate::task::{Language, TaskKind};

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Unique case id (also decides the split, see [`crate::Split`]); read from a JSON
    /// string or integer.
    #[serde(deserialize_with = "opaque_id")]
    pub id: String,
    /// The report (letters) or case context (other tasks).
    pub input: String,
    /// The reference answer.
    pub target: String,
    /// Language of input and target.
    #[serde(default)]
    pub language: Language,
}

impl Example {
    /// The task prompt for this example.
    pub fn prompt(&self, task: TaskKind) -> Prompt {
        Prompt::new(task, &self.input, self.language)
    }
}

/// One model output with its reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// Case id (pairs base and fine-tuned runs); read from a JSON string or integer.
    #[serde(deserialize_with = "opaque_id")]
    pub id: String,
    /// The reference answer.
    pub reference: String,
    /// The model's text.
    pub prediction: String,
}

/// An id from a JSON string or integer (its decimal digits).
fn opaque_id<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Signed(i64),
        Unsigned(u64),
    }
    match Id::deserialize(d) {
        Ok(Id::Text(s)) => Ok(s),
        Ok(Id::Signed(n)) => Ok(n.to_string()),
        Ok(Id::Unsigned(n)) => Ok(n.to_string()),
        Err(_) => Err(serde::de::Error::custom(
            "the id must be a string or an integer",
        )),
    }
}

fn read_lines<T: for<'de> Deserialize<'de>>(
    reader: impl BufRead,
    path: &Path,
    mut check: impl FnMut(&T, usize) -> Result<()>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let item: T = serde_json::from_str(&line).map_err(|e| Error::Jsonl {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        check(&item, i + 1)?;
        out.push(item);
    }
    Ok(out)
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Check that an example's target fits the task.
fn check_example(task: TaskKind, e: &Example, path: &Path, line: usize) -> Result<()> {
    let field = |field: &'static str, message: String| Error::Field {
        path: path.to_path_buf(),
        line,
        field,
        message,
    };
    if e.id.trim().is_empty() {
        return Err(field("id", "empty id".into()));
    }
    if e.input.trim().is_empty() {
        return Err(field("input", "empty input".into()));
    }
    match task {
        TaskKind::Letters | TaskKind::Regimen if e.target.trim().is_empty() => {
            Err(field("target", "empty target".into()))
        }
        TaskKind::Modality => e
            .target
            .parse::<Modality>()
            .map(|_| ())
            .map_err(|m| field("target", m)),
        TaskKind::Icd10 => normalize_code(&e.target, CodeSet::embedded())
            .map(|_| ())
            .map_err(|err| field("target", err.to_string())),
        _ => Ok(()),
    }
}

/// Read and check examples of `task` from a JSONL reader (`path` names it in errors).
///
/// ```
/// use ro_tasks::{read_examples_from, TaskKind};
/// let text = r#"{"id":"1","input":"Prostate cancer","target":"C61"}"#;
/// let ex = read_examples_from(text.as_bytes(), "mem.jsonl", TaskKind::Icd10).unwrap();
/// assert_eq!(ex[0].target, "C61");
/// let bad = r#"{"id":"1","input":"x","target":"photons please"}"#;
/// let err = read_examples_from(bad.as_bytes(), "mem.jsonl", TaskKind::Modality).unwrap_err();
/// assert!(err.to_string().starts_with("mem.jsonl:1: field `target`"));
/// ```
pub fn read_examples_from(
    reader: impl BufRead,
    path: impl Into<PathBuf>,
    task: TaskKind,
) -> Result<Vec<Example>> {
    let path = path.into();
    read_lines(reader, &path, |e: &Example, line| {
        check_example(task, e, &path, line)
    })
}

/// Read and check examples of `task` from a JSONL file.
pub fn read_examples(path: impl AsRef<Path>, task: TaskKind) -> Result<Vec<Example>> {
    let path = path.as_ref();
    read_examples_from(open(path)?, path, task)
}

/// Read a predictions file (`{"id","reference","prediction"}` per line).
pub fn read_predictions(path: impl AsRef<Path>) -> Result<Vec<PredictionRecord>> {
    let path = path.as_ref();
    read_predictions_from(open(path)?, path)
}

/// Read predictions from a reader (`path` names it in errors). Ids must be unique.
pub fn read_predictions_from(
    reader: impl BufRead,
    path: impl Into<PathBuf>,
) -> Result<Vec<PredictionRecord>> {
    let path = path.into();
    let mut seen = std::collections::HashSet::new();
    read_lines(reader, &path, |p: &PredictionRecord, line| {
        if !seen.insert(p.id.clone()) {
            return Err(Error::Field {
                path: path.clone(),
                line,
                field: "id",
                message: format!("duplicate id {:?}", p.id),
            });
        }
        Ok(())
    })
}

/// Write items as JSONL, atomically (temporary file in the same directory, then rename).
pub fn write_jsonl<T: Serialize>(path: impl AsRef<Path>, items: &[T]) -> Result<()> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        for item in items {
            let line = serde_json::to_string(item).map_err(|e| Error::Jsonl {
                path: path.to_path_buf(),
                line: 0,
                message: e.to_string(),
            })?;
            writeln!(w, "{line}").map_err(io)?;
        }
        w.flush().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_field() {
        let text =
            "{\"id\":\"a\",\"input\":\"x\",\"target\":\"C61\"}\n\n{\"id\":\"b\",\"input\":\"x\"}\n";
        let err = read_examples_from(text.as_bytes(), "f.jsonl", TaskKind::Icd10).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("f.jsonl:3:") && msg.contains("target"),
            "{msg}"
        );
        let err =
            read_examples_from("{not json".as_bytes(), "f.jsonl", TaskKind::Letters).unwrap_err();
        assert!(err.to_string().starts_with("f.jsonl:1:"));
        let dup = "{\"id\":\"a\",\"reference\":\"x\",\"prediction\":\"\"}\n{\"id\":\"a\",\"reference\":\"x\",\"prediction\":\"y\"}";
        let err = read_predictions_from(dup.as_bytes(), "p.jsonl").unwrap_err();
        assert!(err.to_string().contains("p.jsonl:2: field `id`"));
        let float = "{\"id\":1.5,\"reference\":\"x\",\"prediction\":\"\"}";
        let err = read_predictions_from(float.as_bytes(), "p.jsonl").unwrap_err();
        assert!(err.to_string().contains("string or an integer"), "{err}");
    }

    #[test]
    fn integer_ids_are_read_as_their_digits() {
        let text = "{\"id\":17,\"reference\":\"a\",\"prediction\":\"b\"}\n{\"id\":\"17b\",\"reference\":\"a\",\"prediction\":\"b\"}\n{\"id\":-3,\"reference\":\"a\",\"prediction\":\"b\"}";
        let p = read_predictions_from(text.as_bytes(), "p.jsonl").unwrap();
        let ids: Vec<&str> = p.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["17", "17b", "-3"]);
        let ex = read_examples_from(
            "{\"id\":18446744073709551615,\"input\":\"x\",\"target\":\"y\"}".as_bytes(),
            "e.jsonl",
            TaskKind::Letters,
        )
        .unwrap();
        assert_eq!(ex[0].id, "18446744073709551615");
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let ex = vec![Example {
            id: "1".into(),
            input: "Mammakarzinom links".into(),
            target: "C50.912".into(),
            language: Language::De,
        }];
        write_jsonl(&path, &ex).unwrap();
        assert_eq!(read_examples(&path, TaskKind::Icd10).unwrap(), ex);
    }
}
