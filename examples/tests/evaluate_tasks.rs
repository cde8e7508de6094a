//! `evaluate icd10` end to end: one output line per input line, fields copied through,
//! bad lines as errors.

use std::process::Command;

#[test]
fn icd10_subcommand_validates_codes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"id\":1,\"input\":\" c50,4 L\"}\n",
            "{\"id\":2,\"input\":\"С34.1\"}\n",
            "{\"id\":3}\n",
            "{\"id\":4,\"input\":\"Z51.0\"}\n",
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_evaluate"))
        .args(["icd10", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["code"], "C50.4");
    assert_eq!(lines[0]["kind"], "subcategory");
    assert_eq!(lines[0]["billable"], false);
    assert_eq!(lines[0]["qualifiers"]["laterality"], "left");
    assert_eq!(lines[1]["valid"], false);
    assert!(lines[1]["code"].is_null());
    assert!(lines[2]["error"].as_str().unwrap().contains("input"));
    assert_eq!(lines[3]["billable"], true);
    assert_eq!(
        lines[3]["description"],
        "Encounter for antineoplastic radiation therapy"
    );
}

fn write_predictions(path: &std::path::Path, rows: &[(&str, &str, &str)]) {
    let text: String = rows
        .iter()
        .map(|(id, r, p)| {
            serde_json::json!({"id": id, "reference": r, "prediction": p}).to_string() + "\n"
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn task_subcommand_scores_and_compares_modality() {
    let dir = tempfile::tempdir().unwrap();
    let tuned = dir.path().join("tuned.jsonl");
    let base = dir.path().join("base.jsonl");
    let report = dir.path().join("report.json");
    let md = dir.path().join("report.md");
    write_predictions(
        &tuned,
        &[
            ("a", "photon", "photon"),
            ("b", "proton", "proton"),
            ("c", "electron", "no idea"),
        ],
    );
    // Baseline in another order: pairing is by id.
    write_predictions(
        &base,
        &[
            ("c", "electron", "photon"),
            ("a", "photon", "photon"),
            ("b", "proton", "photon"),
        ],
    );
    let status = Command::new(env!("CARGO_BIN_EXE_evaluate"))
        .args(["task", "--task", "modality", "--predictions"])
        .arg(&tuned)
        .arg("--baseline")
        .arg(&base)
        .arg("--output")
        .arg(&report)
        .arg("--markdown")
        .arg(&md)
        .status()
        .unwrap();
    assert!(status.success());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["task"], "modality");
    let acc = v["scores"]["modality"]["accuracy"].as_f64().unwrap();
    assert!((acc - 2.0 / 3.0).abs() < 1e-12);
    let c = &v["comparison"]["metrics"][0];
    assert_eq!(c["metric"], "correct");
    assert!((c["baseline_mean"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    // d = [0, 1, 0]: one nonzero difference, exact one-sided p = 1/2.
    assert_eq!(c["wilcoxon"]["pvalue"], 0.5);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| correct | 3 | 0.3333 | 0.6667 |"), "{md}");
}

#[test]
fn task_subcommand_names_file_and_id_on_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let tuned = dir.path().join("tuned.jsonl");
    let base = dir.path().join("base.jsonl");
    write_predictions(&tuned, &[("a", "C61", "C61"), ("b", "C61", "C61")]);
    write_predictions(&base, &[("a", "C61", "C61"), ("x", "C61", "C61")]);
    let o = Command::new(env!("CARGO_BIN_EXE_evaluate"))
        .args(["task", "--task", "icd10", "--predictions"])
        .arg(&tuned)
        .arg("--baseline")
        .arg(&base)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("base.jsonl") && msg.contains("\"b\""), "{msg}");
}
