//! JSON Lines plumbing shared by the `evaluate` subcommands.
//!
//! Each input line is one JSON object. A [`LineScorer`] turns the fields it consumes into
//! output fields; every other input field (such as `id`) is copied through unchanged. A line
//! that cannot be scored becomes `{"error": "line N: ..."}` plus the copied fields, and the run
//! goes on. Non-finite floats are written (and accepted) as the strings `"NaN"`, `"Infinity"`
//! and `"-Infinity"`.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use super::IoArgs;

/// Output fields of one scored line.
pub type Fields = Map<String, Value>;

/// Scores one input object.
pub trait LineScorer {
    /// Names of the input fields this scorer consumes (they are not copied through).
    fn input_fields(&self) -> &[&'static str];

    /// Whether `field` of `line` is consumed (not copied through). By default: whether it is one
    /// of [`input_fields`](Self::input_fields); a scorer whose fields depend on the line (such
    /// as `agreement`, by its `statistic`) narrows it.
    fn consumes(&self, line: &Fields, field: &str) -> bool {
        let _ = line;
        self.input_fields().contains(&field)
    }

    /// Computes the output fields, or a message saying what is wrong with the line.
    fn score(&self, line: &Fields) -> Result<Fields, String>;
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Lines read.
    pub lines: usize,
    /// Lines answered with an error object.
    pub errors: usize,
}

/// A float as JSON: a number when finite, else `"NaN"`, `"Infinity"` or `"-Infinity"`.
pub fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v == f64::INFINITY {
        Value::from("Infinity")
    } else if v == f64::NEG_INFINITY {
        Value::from("-Infinity")
    } else {
        Value::from(v)
    }
}

/// Floats as a JSON array (see [`float`]).
pub fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().copied().map(float).collect())
}

/// Reads a number, also accepting `"NaN"`, `"Infinity"`, `"-Infinity"` (and `"inf"`, `"-inf"`).
pub fn as_f64(v: &Value, field: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("`{field}`: {n} is not representable as a float")),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(format!(
                "`{field}`: expected a number, got the string {other:?}"
            )),
        },
        other => Err(format!("`{field}`: expected a number, got {}", kind(other))),
    }
}

/// Reads an array of numbers (see [`as_f64`]).
pub fn as_f64_array(v: &Value, field: &str) -> Result<Vec<f64>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("`{field}`: expected an array of numbers, got {}", kind(v)))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| as_f64(x, &format!("{field}[{i}]")))
        .collect()
}

/// A required field.
pub fn required<'a>(line: &'a Fields, field: &str) -> Result<&'a Value, String> {
    line.get(field)
        .ok_or_else(|| format!("missing field `{field}`"))
}

/// An optional field; JSON `null` counts as absent.
pub fn optional<'a>(line: &'a Fields, field: &str) -> Option<&'a Value> {
    line.get(field).filter(|v| !v.is_null())
}

/// An optional string field.
pub fn optional_str<'a>(line: &'a Fields, field: &str) -> Result<Option<&'a str>, String> {
    match optional(line, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{field}`: expected a string, got {}", kind(other))),
    }
}

/// A required string field.
pub fn required_str<'a>(line: &'a Fields, field: &str) -> Result<&'a str, String> {
    match required(line, field)? {
        Value::String(s) => Ok(s),
        other => Err(format!("`{field}`: expected a string, got {}", kind(other))),
    }
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses one line into a JSON object.
fn parse_object(bytes: &[u8]) -> Result<Fields, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return Err("empty line (expected a JSON object)".into());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("expected a JSON object, got {}", kind(&other))),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// Scores one raw line: the output object (result or error) with the copied-through fields.
pub fn score_line(number: usize, bytes: &[u8], scorer: &dyn LineScorer) -> (Fields, bool) {
    let parsed = parse_object(bytes);
    let mut out = Fields::new();
    let result = parsed.and_then(|obj| {
        for (k, v) in &obj {
            if !scorer.consumes(&obj, k) {
                out.insert(k.clone(), v.clone());
            }
        }
        scorer.score(&obj)
    });
    match result {
        Ok(fields) => {
            out.extend(fields);
            (out, true)
        }
        Err(msg) => {
            out.insert("error".into(), Value::from(format!("line {number}: {msg}")));
            (out, false)
        }
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("output path {} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write output file {}", path.display()));
    }
    Ok(())
}

/// Reads `--input`, scores each line, writes one output line per input line.
///
/// Output goes to `--output` (atomically) or to stdout.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run_jsonl(io: &IoArgs, scorer: &dyn LineScorer) -> anyhow::Result<RunSummary> {
    let input = fs::read(&io.input)
        .with_context(|| format!("cannot read input file {}", io.input.display()))?;
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        bail!(
            "input file {} is empty (expected JSON lines)",
            io.input.display()
        );
    }
    let bar = ProgressBar::new(lines.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} lines {elapsed}") {
        bar.set_style(style);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut errors = 0;
    for (i, line) in lines.iter().enumerate() {
        let (obj, ok) = score_line(i + 1, line, scorer);
        if !ok {
            errors += 1;
            if let Some(Value::String(msg)) = obj.get("error") {
                log::warn!("{}: {msg}", io.input.display());
            }
        }
        serde_json::to_writer(&mut out, &Value::Object(obj))?;
        out.push(b'\n');
        bar.inc(1);
    }
    bar.finish_and_clear();
    match &io.output {
        Some(path) => write_atomically(path, &out)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out).context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")?;
        }
    }
    Ok(RunSummary {
        lines: lines.len(),
        errors,
    })
}
