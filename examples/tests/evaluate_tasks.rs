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
