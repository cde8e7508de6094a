//! The `review` binary end to end: export packets, fill them in as raters do (the JSON file
//! the HTML packet saves, and the CSV packet from a spreadsheet), import them mixed, and
//! report; every import error names file, rater, case and question and writes nothing.
//! The HTML packet in a real browser: `review_browser.rs`.

#[path = "common/review.rs"]
mod fixture;

use std::path::Path;

use fixture::{
    check_imported, export, fails, fill_csv, inputs, key, ok, ratings_json, review, set_csv_cell,
    INJECTION,
};
use serde_json::Value;

fn import(key_dir: &Path, output: &Path, files: &[&Path]) -> std::process::Output {
    review()
        .arg("import")
        .arg("--key")
        .arg(key_dir.join("key.json"))
        .arg("--output")
        .arg(output)
        .args(files)
        .output()
        .unwrap()
}

/// Runs `review report` with `extra` flags.
fn run_report(key_dir: &Path, ratings: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    review()
        .arg("report")
        .args(extra)
        .arg("--key")
        .arg(key_dir.join("key.json"))
        .arg("--ratings")
        .arg(ratings)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn help_documents_every_subcommand_and_flag() {
    let top = ok(&review().arg("--help").output().unwrap());
    for sub in ["export", "import", "report", "config"] {
        assert!(top.contains(sub), "{top}");
    }
    for (sub, flags) in [
        (
            "export",
            &[
                "--task",
                "--cases",
                "--predictions",
                "--with-reference",
                "--n-cases",
                "--seed",
                "--raters",
                "--config",
                "--out",
                "--force",
            ][..],
        ),
        ("import", &["--key", "--output", "RATINGS"][..]),
        ("report", &["--key", "--ratings", "--out", "--compare"][..]),
        ("config", &["--output"][..]),
    ] {
        let help = ok(&review().args([sub, "--help"]).output().unwrap());
        for f in flags {
            assert!(help.contains(f), "{sub} --help lacks {f}:\n{help}");
        }
    }
}

#[test]
fn export_import_report_with_mixed_json_and_csv_raters() {
    let inp = inputs(8);
    let out = inp.dir.path().join("review");
    let stdout = ok(&export(&inp, &out, "ann,bob,cem", 4));
    assert!(
        stdout.contains("4 cases x 3 candidates, 3 raters"),
        "{stdout}"
    );
    let k = key(&out);
    assert_eq!(
        k["models"],
        serde_json::json!(["base", "fine-tuned", "reference"])
    );
    for r in ["ann", "bob", "cem"] {
        let html = std::fs::read_to_string(out.join(format!("packets/packet-{r}.html"))).unwrap();
        assert!(
            !html.contains("fine-tuned") && !html.contains("\"reference\""),
            "blinded"
        );
        assert!(
            !html.contains(INJECTION) && !html.contains("<img"),
            "escaped"
        );
        let csv = std::fs::read(out.join(format!("packets/packet-{r}.csv"))).unwrap();
        assert!(!csv.starts_with(b"\xef\xbb\xbf") && std::str::from_utf8(&csv).is_ok());
    }
    // ann saved from the browser, bob filled the CSV, cem the CSV in German Excel (";").
    let ann = inp.dir.path().join("ratings-ann.json");
    write_json(&ann, &ratings_json(&k, "ann"));
    let bob = inp.dir.path().join("bob.csv");
    fill_csv(&out.join("packets/packet-bob.csv"), &bob, false);
    let cem = inp.dir.path().join("cem.csv");
    fill_csv(&out.join("packets/packet-cem.csv"), &cem, true);
    let ratings = inp.dir.path().join("ratings.jsonl");
    let stdout = ok(&import(&out, &ratings, &[&ann, &bob, &cem]));
    assert!(stdout.contains("of 3 raters"), "{stdout}");
    let jsonl = std::fs::read_to_string(&ratings).unwrap();
    check_imported(&jsonl, &k, &["ann", "bob", "cem"]);

    let report = inp.dir.path().join("report");
    ok(&run_report(&out, &ratings, &report, &[]));
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    for needle in [
        "4 cases rated by 3 raters (ann, bob, cem)",
        "(`correctness`)",
        "| fine-tuned | base |",
        "![Ratings of correctness](ratings_correctness.svg)",
        "## Inter-rater agreement",
        "## Comments",
        "zu lang, \"Dosis\" fehlt; <b>ok</b>",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("review.json")).unwrap())
            .unwrap();
    assert_eq!(json["questions"].as_array().unwrap().len(), 5);
    let svg = std::fs::read_to_string(report.join("ratings_acceptable.svg")).unwrap();
    assert!(svg.contains("with minor edits") && svg.contains("fine-tuned"));
}

/// Every import error: one message naming file, rater, case and question; no output file.
#[test]
fn import_errors_name_the_problem_and_write_nothing() {
    let inp = inputs(6);
    let out = inp.dir.path().join("review");
    ok(&export(&inp, &out, "ann,bob", 3));
    let k = key(&out);
    let case0 = k["cases"][0]["id"].as_str().unwrap().to_string();
    let good = ratings_json(&k, "ann");
    let ratings = inp.dir.path().join("ratings.jsonl");
    let file = inp.dir.path().join("ann.json");
    let mut other_packet = good.clone();
    other_packet["packet"] = "rv-00000000deadbeef".into();
    let mut unknown_case = good.clone();
    unknown_case["answers"][3]["case"] = "synth-0-999".into();
    let mut off_scale = good.clone();
    off_scale["answers"][0]["value"] = 5.into();
    let mut missing = good.clone();
    missing["answers"].as_array_mut().unwrap().remove(1);
    let mut bad_choice = good.clone();
    bad_choice["answers"][4]["value"] = "maybe".into();
    let mut stranger = good.clone();
    stranger["rater"] = "eve".into();
    let q0 =
        |q: &str| format!("ann.json: rater ann, case {case0:?}, candidate \"A\", question \"{q}\"");
    for (bad, needle) in [
        (other_packet, "ann.json: rater ann: the file belongs to packet \"rv-00000000deadbeef\"".to_string()),
        (unknown_case, "ann.json: rater ann, case \"synth-0-999\": unknown case".into()),
        (off_scale, format!("{}: 5 is not on the scale 1-4", q0("correctness"))),
        (missing, format!("ann.json: rater ann: 1 missing answer: case {case0:?}, candidate \"A\", question \"comprehensiveness\"")),
        (bad_choice, format!("{}: \"maybe\" is not one of yes/minor/no", q0("acceptable"))),
        (stranger, "rater \"eve\" is not one of the packet's raters (ann, bob)".into()),
    ] {
        write_json(&file, &bad);
        let err = fails(&import(&out, &ratings, &[&file]));
        assert!(err.contains(&needle), "expected {needle:?} in:\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
        assert!(!ratings.exists(), "nothing written for {needle}");
    }
    // A good file next to a bad one: still nothing written.
    let bob = inp.dir.path().join("bob.csv");
    fill_csv(&out.join("packets/packet-bob.csv"), &bob, false);
    set_csv_cell(&bob, 0, 6, "7"); // correctness of the first candidate
    write_json(&file, &good);
    let err = fails(&import(&out, &ratings, &[&file, &bob]));
    assert!(
        err.contains("bob.csv: rater bob, case")
            && err.contains("\"7\" is not on the scale 1-4 at row 2"),
        "{err}"
    );
    assert!(!ratings.exists());
    // A rater twice, and a ratings file of another export.
    let err = fails(&import(&out, &ratings, &[&file, &file]));
    assert!(err.contains("rater ann already rated in"), "{err}");
    let other = inp.dir.path().join("other");
    ok(&review()
        .args([
            "export",
            "--task",
            "letters",
            "--seed",
            "7",
            "--n-cases",
            "3",
            "--raters",
            "ann",
            "--cases",
        ])
        .arg(&inp.cases)
        .args(["--predictions", &inp.predictions[0], "--out"])
        .arg(&other)
        .output()
        .unwrap());
    let foreign = inp.dir.path().join("foreign.json");
    write_json(&foreign, &ratings_json(&key(&other), "ann"));
    let err = fails(&import(&out, &ratings, &[&foreign]));
    assert!(
        err.contains("foreign.json: rater ann: the file belongs to packet"),
        "{err}"
    );
    assert!(!ratings.exists());
}

#[test]
fn export_refuses_bad_input_naming_it() {
    let inp = inputs(5);
    let out = inp.dir.path().join("review");
    let run = |args: &[&str]| {
        let mut cmd = review();
        cmd.args(["export", "--task", "letters", "--cases"])
            .arg(&inp.cases)
            .arg("--out")
            .arg(&out)
            .args(args);
        cmd.output().unwrap()
    };
    let base = format!("--predictions={}", inp.predictions[0]);
    for (args, needle) in [
        (
            vec![base.as_str(), "--raters", "ann", "--n-cases", "9"],
            "cannot draw 9 cases".to_string(),
        ),
        (
            vec![base.as_str(), "--raters", "a/b"],
            "rater name \"a/b\"".into(),
        ),
        (
            vec!["--predictions", "nofile", "--raters", "ann"],
            "expected NAME=FILE.jsonl".into(),
        ),
        (
            vec!["--predictions", "x=/nonexistent.jsonl", "--raters", "ann"],
            "/nonexistent.jsonl".into(),
        ),
        (
            vec![
                base.as_str(),
                "--raters",
                "ann",
                "--config",
                "/nonexistent.json",
            ],
            "/nonexistent.json".into(),
        ),
    ] {
        let err = fails(&run(&args));
        assert!(err.contains(&needle), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote something");
    }
    // A config with an error names the file and the field.
    let cfg = inp.dir.path().join("review.json");
    std::fs::write(
        &cfg,
        r#"{"questions":[{"id":"q","text":"t","kind":"scale","min":1,"max":1}]}"#,
    )
    .unwrap();
    let err = fails(&run(&[
        base.as_str(),
        "--raters",
        "ann",
        "--config",
        cfg.to_str().unwrap(),
    ]));
    assert!(
        err.contains("review.json") && err.contains("questions[0]: max"),
        "{err}"
    );
}

#[test]
fn a_custom_config_drives_packets_import_and_report() {
    let inp = inputs(4);
    let cfg = inp.dir.path().join("review.json");
    ok(&review()
        .args(["config", "--output"])
        .arg(&cfg)
        .output()
        .unwrap());
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(c["questions"].as_array().unwrap().len(), 6, "the default");
    c["questions"] = serde_json::json!([
        {"id": "overall", "text": "Overall quality", "kind": "scale", "min": 0, "max": 2}
    ]);
    write_json(&cfg, &c);
    let out = inp.dir.path().join("review");
    let mut cmd = review();
    cmd.args([
        "export",
        "--task",
        "letters",
        "--n-cases",
        "2",
        "--raters",
        "ann",
        "--config",
    ])
    .arg(&cfg)
    .arg("--cases")
    .arg(&inp.cases)
    .arg("--out")
    .arg(&out);
    for p in &inp.predictions {
        cmd.args(["--predictions", p]);
    }
    ok(&cmd.output().unwrap());
    let packet = std::fs::read_to_string(out.join("packets/packet-ann.csv")).unwrap();
    assert!(
        packet
            .lines()
            .next()
            .unwrap()
            .ends_with(",text,overall (0-2)"),
        "{packet}"
    );
    let k = key(&out);
    let mut answers = Vec::new();
    for case in k["cases"].as_array().unwrap() {
        for c in case["candidates"].as_array().unwrap() {
            let v = if c["model"] == "fine-tuned" { 2 } else { 0 };
            answers.push(serde_json::json!({"case": case["id"], "candidate": c["label"], "question": "overall", "value": v}));
        }
    }
    let file = inp.dir.path().join("ann.json");
    write_json(
        &file,
        &serde_json::json!({"format": "ro-qlora-review-ratings", "version": 1,
        "packet": k["packet"], "rater": "ann", "answers": answers}),
    );
    let ratings = inp.dir.path().join("ratings.jsonl");
    ok(&import(&out, &ratings, &[&file]));
    let report = inp.dir.path().join("report");
    ok(&run_report(
        &out,
        &ratings,
        &report,
        &["--compare", "fine-tuned:base"],
    ));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("review.json")).unwrap())
            .unwrap();
    let q = &json["questions"][0];
    assert_eq!(q["id"], "overall");
    assert_eq!(q["models"][1]["model"], "fine-tuned");
    assert_eq!(q["models"][1]["mean"]["mean"], 2.0);
    assert_eq!(q["models"][1]["counts"], serde_json::json!([0, 0, 2]));
    assert_eq!(q["comparisons"][0]["difference"]["mean"], 2.0);
    // Two cases, both differences +2: scipy.stats.wilcoxon([2,2],[0,0],alternative="greater")
    // takes the exact distribution: p = 1/4.
    assert_eq!(q["comparisons"][0]["pvalue"], 0.25);
    let err = fails(&run_report(
        &out,
        &ratings,
        &report,
        &["--compare", "fine-tuned:gpt"],
    ));
    assert!(err.contains("no model \"gpt\""), "{err}");
}

/// Ids are opaque: integer ids in the inputs work like strings ("7").
#[test]
fn integer_case_ids_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mut cases = String::new();
    let mut preds = String::new();
    for id in [7, 8, 9] {
        cases +=
            &format!("{{\"id\": {id}, \"input\": \"report {id}\", \"target\": \"letter {id}\"}}\n");
        preds += &format!(
            "{{\"id\": {id}, \"reference\": \"letter {id}\", \"prediction\": \"draft {id}\"}}\n"
        );
    }
    std::fs::write(p.join("cases.jsonl"), cases).unwrap();
    std::fs::write(p.join("preds.jsonl"), preds).unwrap();
    let out = p.join("review");
    ok(&review()
        .args([
            "export",
            "--task",
            "letters",
            "--n-cases",
            "3",
            "--raters",
            "ann",
            "--with-reference",
        ])
        .arg("--cases")
        .arg(p.join("cases.jsonl"))
        .arg(format!(
            "--predictions=model={}",
            p.join("preds.jsonl").display()
        ))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let k = key(&out);
    let mut ids: Vec<&str> = k["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["7", "8", "9"]);
    let file = p.join("ann.json");
    write_json(&file, &ratings_json(&k, "ann"));
    ok(&import(&out, &p.join("ratings.jsonl"), &[&file]));
}
