#![allow(dead_code)] // each test crate uses its own subset

//! Inputs and helpers of the `review` tests: synthetic letters cases (ro-tasks' generator),
//! two models' predictions (one holding HTML that must stay text), running the binary, and
//! filling in the packets as raters would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ro_examples::review::csv::{parse_records, write_record};
use ro_tasks::{generate_cases, write_jsonl, PredictionRecord, SynthConfig, TaskKind};
use serde_json::{json, Value};

/// A model output that would run script if it were not escaped.
pub const INJECTION: &str =
    "Dear colleague,\n</div><script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">\nBest regards";

/// Input files of an export.
pub struct Inputs {
    /// Holds them.
    pub dir: tempfile::TempDir,
    /// The cases (letters task).
    pub cases: PathBuf,
    /// `--predictions` arguments: `base=...`, `fine-tuned=...`.
    pub predictions: Vec<String>,
}

/// `n` synthetic letters cases; "base" answers with the report's first line, "fine-tuned"
/// with the reference letter less its closing line; the base answer of the first case is
/// [`INJECTION`].
pub fn inputs(n: usize) -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<_> = generate_cases(&SynthConfig::default(), n)
        .iter()
        .map(|c| c.example(TaskKind::Letters))
        .collect();
    let cases_path = dir.path().join("letters_test.jsonl");
    write_jsonl(&cases_path, &cases).unwrap();
    let mut predictions = Vec::new();
    for name in ["base", "fine-tuned"] {
        let records: Vec<PredictionRecord> = cases
            .iter()
            .enumerate()
            .map(|(i, e)| PredictionRecord {
                id: e.id.clone(),
                reference: e.target.clone(),
                prediction: match (name, i) {
                    ("base", 0) => INJECTION.to_string(),
                    ("base", _) => e.input.lines().next().unwrap_or_default().to_string(),
                    // The reference letter without its closing line.
                    _ => e
                        .target
                        .trim_end()
                        .rsplit_once('\n')
                        .map_or(e.target.clone(), |(a, _)| a.to_string()),
                },
            })
            .collect();
        let path = dir.path().join(format!("{name}.jsonl"));
        write_jsonl(&path, &records).unwrap();
        predictions.push(format!("{name}={}", path.display()));
    }
    Inputs {
        dir,
        cases: cases_path,
        predictions,
    }
}

/// The `review` binary.
pub fn review() -> Command {
    Command::new(env!("CARGO_BIN_EXE_review"))
}

/// Runs `review export` of `inputs` into `out` with the reference as a candidate.
pub fn export(inputs: &Inputs, out: &Path, raters: &str, n_cases: usize) -> Output {
    let mut cmd = review();
    cmd.args(["export", "--task", "letters", "--with-reference", "--cases"])
        .arg(&inputs.cases)
        .args([
            "--n-cases",
            &n_cases.to_string(),
            "--raters",
            raters,
            "--out",
        ])
        .arg(out);
    for p in &inputs.predictions {
        cmd.args(["--predictions", p]);
    }
    cmd.output().unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts failure and returns stderr.
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The key file of an export.
pub fn key(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("key.json")).unwrap()).unwrap()
}

/// The default config's questions, in order.
pub const QUESTIONS: [&str; 6] = [
    "correctness",
    "comprehensiveness",
    "style",
    "practicality",
    "acceptable",
    "comments",
];

/// A deterministic answer for a question of a case's candidate: scale points and choice
/// values cycle with the positions; a comment on candidate A only.
pub fn answer(case: usize, label: &str, question: &str) -> Option<String> {
    let l = (label.as_bytes()[0] - b'A') as usize;
    let q = ["correctness", "comprehensiveness", "style", "practicality"]
        .iter()
        .position(|x| *x == question);
    match (question, q) {
        (_, Some(q)) => Some(((case + l + q) % 4 + 1).to_string()),
        ("acceptable", _) => Some(["yes", "minor", "no"][(case + l) % 3].to_string()),
        ("comments", _) if l == 0 => {
            Some(format!("Case {case}: zu lang, \"Dosis\" fehlt; <b>ok</b>"))
        }
        _ => None,
    }
}

/// Fills a CSV packet with `answer` (by case position and label), as a spreadsheet saves it
/// (`;`-separated when `semicolons`, as German Excel does).
pub fn fill_csv(packet: &Path, filled: &Path, semicolons: bool) {
    let rows = parse_records(&std::fs::read_to_string(packet).unwrap(), ',').unwrap();
    let header = &rows[0];
    let sep = if semicolons { ';' } else { ',' };
    let mut out = String::new();
    write_record(&mut out, header, sep);
    let mut cases: Vec<String> = Vec::new();
    for row in &rows[1..] {
        let case = row[2].clone();
        if !cases.contains(&case) {
            cases.push(case);
        }
        let pos = cases.len() - 1;
        let label = &row[3];
        let cells: Vec<String> = header
            .iter()
            .zip(row)
            .map(|(h, v)| match h.split_once(" (") {
                Some((q, _)) => answer(pos, label, q).unwrap_or_default(),
                None => v.clone(),
            })
            .collect();
        write_record(&mut out, &cells, sep);
    }
    std::fs::write(filled, out).unwrap();
}

/// Sets cell `column` of data row `row` (0-based, header excluded) of a CSV file.
pub fn set_csv_cell(path: &Path, row: usize, column: usize, value: &str) {
    let mut rows = parse_records(&std::fs::read_to_string(path).unwrap(), ',').unwrap();
    rows[row + 1][column] = value.to_string();
    let mut out = String::new();
    for r in &rows {
        write_record(&mut out, r, ',');
    }
    std::fs::write(path, out).unwrap();
}

/// A JSON ratings file as the HTML packet saves it, with `answer` for every candidate.
pub fn ratings_json(key: &Value, rater: &str) -> Value {
    let mut answers = Vec::new();
    for (pos, case) in key["cases"].as_array().unwrap().iter().enumerate() {
        for c in case["candidates"].as_array().unwrap() {
            let label = c["label"].as_str().unwrap();
            for q in QUESTIONS {
                if let Some(a) = answer(pos, label, q) {
                    let value = a.parse::<i64>().map_or(json!(a), |n| json!(n));
                    answers.push(json!({"case": case["id"], "candidate": label, "question": q, "value": value}));
                }
            }
        }
    }
    json!({"format": "ro-qlora-review-ratings", "version": 1, "packet": key["packet"],
           "rater": rater, "saved_at": "2026-12-05T10:00:00.000Z", "answers": answers})
}

/// Checks imported ratings against [`answer`]: every line un-blinded as the key says, every
/// value the one entered.
pub fn check_imported(jsonl: &str, key: &Value, raters: &[&str]) {
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cases = key["cases"].as_array().unwrap();
    let candidates: usize = cases
        .iter()
        .map(|c| c["candidates"].as_array().unwrap().len())
        .sum();
    // 5 required answers per candidate plus a comment on each case's candidate A.
    assert_eq!(lines.len(), raters.len() * (candidates * 5 + cases.len()));
    for l in &lines {
        assert!(raters.contains(&l["rater"].as_str().unwrap()), "{l}");
        let pos = cases.iter().position(|c| c["id"] == l["case"]).unwrap();
        let cand = cases[pos]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == l["candidate"])
            .unwrap();
        assert_eq!(l["model"], cand["model"], "{l}");
        let want = answer(
            pos,
            l["candidate"].as_str().unwrap(),
            l["question"].as_str().unwrap(),
        )
        .unwrap();
        let got = match &l["value"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => panic!("{other}"),
        };
        assert_eq!(got, want, "{l}");
    }
}
