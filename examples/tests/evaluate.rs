//! End-to-end tests of the `evaluate` binary: JSON lines in, JSON lines out, numbers equal to
//! scikit-learn's and scipy's fixtures (tools/fixtures/{sklearn,scipy}), bad lines answered
//! with errors, bad files refused.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_evaluate");
const SKLEARN: &str = include_str!("../../tools/fixtures/sklearn/classification.json");
const SCIPY: &str = include_str!("../../tools/fixtures/scipy/wilcoxon.json");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run evaluate")
}

fn run_lines(sub: &str, input: &str, extra: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let inp = dir.path().join("in.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&inp, input).expect("write input");
    let mut args = vec![
        sub,
        "--input",
        inp.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        o.status.success(),
        "{sub} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("output written");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("output line is JSON"))
        .collect()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => panic!("not a number: {other}"),
    }
}

fn same(got: &Value, want: &Value, what: &str) {
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{what}: lengths");
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                same(a, b, &format!("{what}[{i}]"));
            }
        }
        (Value::Null, Value::Null) => {}
        _ => {
            let (a, b) = (num(got), num(want));
            let ok = (a.is_nan() && b.is_nan())
                || a == b
                || (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
            assert!(ok, "{what}: {a} vs reference {b}");
        }
    }
}

#[test]
fn classify_matches_scikit_learn_fixtures() {
    let doc: Value = serde_json::from_str(SKLEARN).unwrap();
    let cases: Vec<&Value> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["expected"].get("prf_error").is_none()
                && c["expected"].get("accuracy_error").is_none()
        })
        .collect();
    assert!(cases.len() > 200);
    let mut input = String::new();
    for (i, c) in cases.iter().enumerate() {
        let mut line = json!({"id": i});
        for k in [
            "y_true",
            "y_pred",
            "labels",
            "average",
            "zero_division",
            "beta",
            "sample_weight",
        ] {
            line[k] = c[k].clone();
        }
        input.push_str(&line.to_string());
        input.push('\n');
    }
    let out = run_lines("classify", &input, &[]);
    assert_eq!(out.len(), cases.len());
    for (i, (o, c)) in out.iter().zip(&cases).enumerate() {
        let name = c["name"].as_str().unwrap();
        assert_eq!(o["id"], json!(i), "{name}: id copied through, order kept");
        assert!(o.get("error").is_none(), "{name}: {}", o["error"]);
        let e = &c["expected"];
        for k in ["precision", "recall", "fscore", "support", "accuracy"] {
            same(&o[k], &e[k], &format!("{name}.{k}"));
        }
        assert_eq!(o["warnings"], e["warnings"], "{name}: warnings");
    }
}

#[test]
fn wilcoxon_matches_scipy_fixtures() {
    let doc: Value = serde_json::from_str(SCIPY).unwrap();
    let mut input = String::new();
    let mut expected = Vec::new();
    for c in doc["cases"].as_array().unwrap() {
        if c["x"].as_array().unwrap().len() > 60 {
            continue; // keep the test quick; the library tests cover large n
        }
        for r in c["results"].as_array().unwrap().iter().step_by(5) {
            let line = json!({
                "id": expected.len(), "x": c["x"], "y": c["y"],
                "zero_method": r["zero_method"], "correction": r["correction"],
                "alternative": r["alternative"], "method": r["method"],
            });
            input.push_str(&line.to_string());
            input.push('\n');
            expected.push(r.clone());
        }
    }
    assert!(expected.len() > 300);
    let out = run_lines("wilcoxon", &input, &[]);
    assert_eq!(out.len(), expected.len());
    for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
        assert_eq!(o["id"], json!(i));
        if e.get("error").is_some() {
            assert!(o["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("line {}: ", i + 1)));
            continue;
        }
        for k in ["statistic", "pvalue", "zstatistic"] {
            same(&o[k], &e[k], &format!("line {} {k}", i + 1));
        }
        let m = o["method"].as_str().unwrap();
        assert!(["exact", "asymptotic", "permutation"].contains(&m));
        if e["method"] != "auto" {
            assert_eq!(m, e["method"].as_str().unwrap());
        }
    }
}

#[test]
fn bad_lines_get_errors_and_the_run_goes_on() {
    let mut input = String::from(
        "{\"id\":1,\"x\":[1,2,-3.5,4,5]}\n\
         {\"id\":2,\"x\":[1,2],\"y\":[1]}\n\
         not json\n\
         {\"id\":4,\"x\":\"abc\"}\n\
         \n\
         [1,2]\n\
         {\"id\":7}\n\
         {\"id\":8,\"x\":[1,\"NaN\",2],\"method\":\"asymptotic\"}\n",
    );
    input.push_str("{\"id\":9,\"x\":[1,2],\"alternative\":\"sideways\"}\n");
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe{}\n{\"id\":11,\"x\":[3,1]}\n");
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.jsonl");
    std::fs::write(&inp, &bytes).unwrap();
    let o = run(&["wilcoxon", "--input", inp.to_str().unwrap()]);
    assert!(o.status.success());
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11);
    let err = |i: usize| lines[i]["error"].as_str().unwrap_or("").to_string();
    assert_eq!(lines[0]["statistic"], json!(3.0));
    assert_eq!(lines[0]["pvalue"], json!(0.3125)); // scipy.stats.wilcoxon([1,2,-3.5,4,5])
    assert!(
        err(1).starts_with("line 2: ") && err(1).contains("same length"),
        "{}",
        err(1)
    );
    assert_eq!(lines[1]["id"], json!(2));
    assert!(err(2).starts_with("line 3: invalid JSON"));
    assert!(err(3).starts_with("line 4: `x`"));
    assert!(err(4).starts_with("line 5: empty line"));
    assert!(err(5).starts_with("line 6: expected a JSON object"));
    assert!(err(6).contains("missing field `x`"));
    assert_eq!(lines[7]["pvalue"], json!("NaN"));
    assert_eq!(lines[7]["zstatistic"], json!("NaN"));
    assert!(err(8).contains("alternative"));
    assert!(err(9).starts_with("line 10: invalid UTF-8"));
    assert_eq!(lines[10]["pvalue"], json!(0.5));
}

#[test]
fn classify_bad_lines() {
    let input = "{\"id\":\"a\",\"y_true\":[1,2,3],\"y_pred\":[1,2]}\n\
                 {\"id\":\"b\",\"y_true\":[1,\"x\"],\"y_pred\":[1,2]}\n\
                 {\"id\":\"c\",\"y_true\":[],\"y_pred\":[]}\n\
                 {\"id\":\"d\",\"y_true\":[\"a\"],\"y_pred\":[\"a\"],\"average\":\"median\"}\n\
                 {\"id\":\"e\",\"y_true\":[\"a\",\"b\"],\"y_pred\":[\"a\",\"unknown\"],\"average\":\"micro\",\"labels\":[\"a\",\"b\"]}\n";
    let out = run_lines("classify", input, &[]);
    assert_eq!(out.len(), 5);
    for (i, o) in out.iter().take(4).enumerate() {
        let e = o["error"].as_str().unwrap();
        assert!(e.starts_with(&format!("line {}: ", i + 1)), "{e}");
    }
    assert!(out[2]["error"].as_str().unwrap().contains("empty"));
    assert!(out[3]["error"].as_str().unwrap().contains("average"));
    // "unknown" is a false negative for "b" but not a selected label: micro P = 1/1, R = 1/2.
    assert_eq!(out[4]["precision"], json!(1.0));
    assert_eq!(out[4]["recall"], json!(0.5));
    assert_eq!(out[4]["id"], json!("e"));
}

#[test]
fn rouge_scores_and_copies_fields() {
    let input = "{\"id\":\"p1\",\"reference\":\"the cat sat on the mat\",\"candidate\":\"the cat was on the mat\",\"site\":\"A\"}\n\
                 {\"id\":\"p2\",\"reference\":\"x\"}\n";
    let out = run_lines("rouge", input, &["--stem", "--summary"]);
    assert_eq!(out[0]["site"], json!("A"));
    assert!(out[0].get("reference").is_none());
    // 5 of 6 unigrams and 3 of 5 bigrams shared.
    assert_eq!(out[0]["rouge1"]["precision"], json!(5.0 / 6.0));
    assert_eq!(out[0]["rouge2"]["fmeasure"], json!(0.6));
    for k in ["rougeL", "rougeLsum"] {
        assert_eq!(out[0][k]["recall"], json!(5.0 / 6.0));
    }
    assert!(out[1]["error"]
        .as_str()
        .unwrap()
        .contains("missing field `candidate`"));
}

#[test]
fn bad_files_are_refused_with_one_message() {
    let o = run(&["classify", "--input", "/nonexistent/cases.jsonl"]);
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("/nonexistent/cases.jsonl"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = run(&["wilcoxon", "--input", empty.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty"));
    let o = run(&[
        "task",
        "--task",
        "modality",
        "--predictions",
        empty.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        msg.contains("empty") && msg.contains("empty.jsonl"),
        "{msg}"
    );
    // A failed run leaves no partial output file.
    let out = dir.path().join("out.jsonl");
    let o = run(&[
        "classify",
        "--input",
        "/nonexistent.jsonl",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!Path::new(&out).exists());
}

#[test]
fn help_documents_every_flag() {
    let top = String::from_utf8(run(&["--help"]).stdout).unwrap();
    for sub in ["rouge", "classify", "wilcoxon", "icd10", "task"] {
        assert!(top.contains(sub), "--help lacks {sub}");
    }
    let rouge = String::from_utf8(run(&["rouge", "--help"]).stdout).unwrap();
    for flag in ["--input", "--output", "--stem", "--summary"] {
        assert!(rouge.contains(flag), "rouge --help lacks {flag}");
    }
    let task = String::from_utf8(run(&["task", "--help"]).stdout).unwrap();
    for flag in [
        "--task",
        "--predictions",
        "--baseline",
        "--output",
        "--markdown",
    ] {
        assert!(task.contains(flag), "task --help lacks {flag}");
    }
}
