//! `review report` against the reference libraries: the committed fixture
//! (`tools/fixtures/review/`, written by `generate.py` with numpy, scipy, statsmodels,
//! scikit-learn and krippendorff) holds a key, 324 ratings of three raters and the numbers
//! the report must contain, for all raters and for the first two alone.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    common::fixtures().join("review").join(name)
}

fn report(ratings: &Path, out: &Path) -> Value {
    let run = Command::new(env!("CARGO_BIN_EXE_review"))
        .args(["report", "--key"])
        .arg(fixture("key.json"))
        .arg("--ratings")
        .arg(ratings)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("review.json")).unwrap()).unwrap()
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64(), want.as_f64());
    match (g, w) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{what}: {g} vs reference {w}"
        ),
        _ => assert_eq!(got, want, "{what}"),
    }
}

fn check(report: &Value, expected: &Value) {
    let questions = report["questions"].as_array().unwrap();
    let want = expected["questions"].as_object().unwrap();
    assert_eq!(questions.len(), want.len());
    for q in questions {
        let id = q["id"].as_str().unwrap();
        let e = &want[id];
        for m in q["models"].as_array().unwrap() {
            let name = m["model"].as_str().unwrap();
            let em = &e["models"][name];
            let at = format!("{id}/{name}");
            assert_eq!(m["n"], em["n"], "{at}");
            assert_eq!(m["counts"], em["counts"], "{at}");
            if em.get("mean").is_some() {
                close(&m["mean"]["mean"], &em["mean"], &format!("{at} mean"));
                close(&m["median"], &em["median"], &format!("{at} median"));
                let (low, high) = (
                    m["mean"]["low"].as_f64().unwrap(),
                    m["mean"]["high"].as_f64().unwrap(),
                );
                let mean = m["mean"]["mean"].as_f64().unwrap();
                assert!(
                    low <= mean && mean <= high,
                    "{at}: bootstrap interval {low}..{high}"
                );
            } else {
                let (a, ea) = (&m["acceptable"], &em["acceptable"]);
                assert_eq!(a["count"], ea["count"], "{at}");
                for k in ["rate", "low", "high"] {
                    close(&a[k], &ea[k], &format!("{at} acceptable {k}"));
                }
                assert_eq!(a["method"], "wilson");
            }
        }
        for c in q["comparisons"].as_array().unwrap() {
            assert_eq!(c["baseline"], "base");
            let ec = &e["comparisons"][c["model"].as_str().unwrap()];
            let at = format!("{id} {} > base", c["model"]);
            close(&c["statistic"], &ec["statistic"], &at);
            close(&c["pvalue"], &ec["pvalue"], &at);
        }
        let (a, ea) = (&q["agreement"], &e["agreement"]);
        assert_eq!(a["alpha_level"], ea["alpha_level"], "{id}");
        for k in [
            "krippendorff_alpha",
            "fleiss_kappa",
            "cohen_kappa",
            "cohen_kappa_quadratic",
        ] {
            close(
                &a[k],
                ea.get(k).unwrap_or(&Value::Null),
                &format!("{id} {k}"),
            );
        }
    }
}

#[test]
fn report_numbers_equal_the_reference_libraries() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = report(&fixture("ratings.jsonl"), &dir.path().join("all"));
    check(&all, &expected["all"]);
    assert_eq!(all["raters"], serde_json::json!(["r1", "r2", "r3"]));

    // The first two raters alone: Cohen's kappa too.
    let text = std::fs::read_to_string(fixture("ratings.jsonl")).unwrap();
    let two: String = text
        .lines()
        .filter(|l| !l.contains("\"rater\": \"r3\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.path().join("two.jsonl");
    std::fs::write(&path, two).unwrap();
    let report2 = report(&path, &dir.path().join("two"));
    check(&report2, &expected["two"]);
    let md = std::fs::read_to_string(dir.path().join("two/report.md")).unwrap();
    assert!(md.contains("| quality (ordinal) | 36 | 2 |"), "{md}");
}
