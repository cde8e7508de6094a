//! `metrics.jsonl` beyond the trainer's step lines: eval-loss lines, and the truncation that
//! makes a resumed run's file equal an uninterrupted run's. Every write replaces the file
//! atomically (temporary file, then rename).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::evaluate::json::float;

/// The metrics file name in the output directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

fn read(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    qlora_core::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Appends `{"step": step, "eval_loss": loss, "eval_tokens": tokens}` (a non-finite loss as
/// the string `"NaN"`/`"Infinity"`).
pub fn append_eval(path: &Path, step: u64, loss: f64, tokens: usize) -> Result<()> {
    let mut text = read(path)?;
    let line = json!({"step": step, "eval_loss": float(loss), "eval_tokens": tokens});
    text.push_str(&format!("{line}\n"));
    write(path, &text)
}

/// Whether the file has an eval line for `step`.
pub fn has_eval(path: &Path, step: u64) -> Result<bool> {
    Ok(read(path)?.lines().any(|l| {
        serde_json::from_str::<Value>(l)
            .ok()
            .is_some_and(|v| v["step"].as_u64() == Some(step) && v.get("eval_loss").is_some())
    }))
}

/// Writes to `dest` the lines of `source` (which may be `dest` itself) whose `step` is at
/// most `step`: what a run resumed at `step` continues from. Lines that do not parse (a line
/// cut short by a crash) are dropped.
pub fn truncate_to_step(source: &Path, dest: &Path, step: u64) -> Result<()> {
    let kept: String = read(source)?
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write(dest, &kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_lines_up_to_the_step_and_drops_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(METRICS_FILE);
        std::fs::write(
            &p,
            "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":1.5}\n{\"step\":2,\"eval_loss\":1.7}\n{\"step\":3,\"loss\":1.0}\n{\"step\":4,\"lo",
        )
        .unwrap();
        truncate_to_step(&p, &p, 2).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(has_eval(&p, 2).unwrap());
        assert!(!has_eval(&p, 1).unwrap());
        append_eval(&p, 3, f64::NAN, 10).unwrap();
        let last: Value =
            serde_json::from_str(std::fs::read_to_string(&p).unwrap().lines().last().unwrap())
                .unwrap();
        assert_eq!(last["eval_loss"], "NaN");
        assert_eq!(last["eval_tokens"], 10);
    }
}
