//! The `demo` binary: every documented flag is in `--help`, bad values fail with one message
//! naming the flag, and `demo --quick` runs every stage and writes a complete report
//! (report.md, metrics.json with every metric, SVG plots, the PEFT adapter, the base
//! checkpoint and the datasets).

use std::process::Command;

fn demo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_demo"))
}

#[test]
fn help_documents_every_flag() {
    let out = demo().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--out",
        "--quick",
        "--seed",
        "--cases",
        "--steps",
        "--pretrain-steps",
        "--model-size",
        "--model",
        "--tokenizer",
        "--eval-cases",
        "--lr",
        "--pretrain-lr",
        "--batch-size",
        "--device",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_values_exit_non_zero_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--cases", "3"], "--cases"),
        (vec!["--steps", "0"], "--steps"),
        (vec!["--model", "m"], "--tokenizer"),
        (vec!["--model-size", "huge"], "--model-size"),
        (vec!["--lr", "0"], "--lr"),
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["--device", "gpu"], "--device"),
    ] {
        let out = demo()
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn device_cuda_without_the_feature_says_how_to_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo()
        .args(["--quick", "--device", "cuda", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--device cuda:0") && err.contains("--features cuda"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is generated before the device is checked"
    );
}

/// Every number in metrics.json is finite, or one of the strings a non-finite float becomes.
fn check_numbers(v: &serde_json::Value, path: &str) {
    match v {
        serde_json::Value::Number(n) => {
            assert!(n.as_f64().is_some_and(f64::is_finite), "{path}: {n}")
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_numbers(x, &format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                check_numbers(x, &format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

fn mean(c: &serde_json::Value, which: &str) -> f64 {
    match &c[which]["mean"] {
        serde_json::Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("{which} mean is {other}"),
    }
}

#[test]
fn quick_demo_runs_end_to_end_and_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo()
        .args(["--quick", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo --quick failed:\n{err}");
    for stage in [
        "data",
        "tokenizer",
        "pre-train",
        "quantize",
        "fine-tune",
        "evaluate",
        "review",
    ] {
        assert!(
            err.contains(&format!("{stage}: ")),
            "no summary line for {stage}:\n{err}"
        );
    }
    let p = dir.path();

    let md = std::fs::read_to_string(p.join("report.md")).unwrap();
    for needle in [
        "# QLoRA demo",
        "This is a demo model",
        "## Base vs fine-tuned",
        "| letters | rougeLsum |",
        "| regimen | field_accuracy |",
        "| modality | accuracy |",
        "| icd10 | category_accuracy |",
        "![Pre-training loss](pretrain_loss.svg)",
        "## Clinician review",
        "(review/packets/packet-rater-1.html)",
        "## Example outputs",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("metrics.json")).unwrap()).unwrap();
    check_numbers(&json, "metrics");
    let comparisons = json["comparisons"].as_array().unwrap();
    let metrics: Vec<String> = comparisons
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["task"].as_str().unwrap(),
                c["metric"].as_str().unwrap()
            )
        })
        .collect();
    for m in [
        "letters/rouge1",
        "letters/rouge2",
        "letters/rougeL",
        "letters/rougeLsum",
        "regimen/rouge1",
        "regimen/field_accuracy",
        "modality/accuracy",
        "icd10/exact_accuracy",
        "icd10/category_accuracy",
    ] {
        assert!(
            metrics.iter().any(|x| x == m),
            "metrics.json lacks {m}: {metrics:?}"
        );
    }
    for c in comparisons {
        for which in ["base", "finetuned"] {
            let m = mean(c, which);
            assert!((0.0..=1.0).contains(&m), "{c}");
        }
        let p = &c["wilcoxon_p"];
        assert!(
            p.is_string() || (0.0..=1.0).contains(&p.as_f64().unwrap()),
            "{c}"
        );
    }
    // The fine-tuned model beats the base on the classification tasks.
    let comparison = |task: &str, metric: &str| {
        comparisons
            .iter()
            .find(|c| c["task"] == task && c["metric"] == metric)
            .unwrap_or_else(|| panic!("no {task}/{metric}"))
    };
    for (task, metric) in [
        ("modality", "accuracy"),
        ("icd10", "exact_accuracy"),
        ("icd10", "category_accuracy"),
    ] {
        let c = comparison(task, metric);
        assert!(
            mean(c, "finetuned") > mean(c, "base"),
            "fine-tuned does not beat base on {task}/{metric}: {c}"
        );
    }
    let macro_f1 = |model: &str| {
        json["class_scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == model)
            .and_then(|c| c["macro_f1"].as_f64())
            .unwrap_or_else(|| panic!("no macro F1 of {model}"))
    };
    assert!(
        macro_f1("fine-tuned") > macro_f1("base"),
        "modality macro F1: fine-tuned {} vs base {}",
        macro_f1("fine-tuned"),
        macro_f1("base")
    );
    assert_eq!(json["confusion"].as_array().unwrap().len(), 2);
    assert_eq!(json["class_scores"].as_array().unwrap().len(), 2);
    assert_eq!(json["examples"].as_array().unwrap().len(), 12);
    // Pre-training learned the language, fine-tuning the tasks.
    let val = json["pretrain"]["val"].as_array().unwrap();
    let first = val.first().unwrap()["loss"].as_f64().unwrap();
    let last = val.last().unwrap()["loss"].as_f64().unwrap();
    assert!(
        last < first,
        "pre-training validation loss {first} -> {last}"
    );
    let val = json["finetune"]["val"].as_array().unwrap();
    let first = val.first().unwrap()["loss"].as_f64().unwrap();
    let last = val.last().unwrap()["loss"].as_f64().unwrap();
    assert!(
        last < first,
        "fine-tuning validation loss {first} -> {last}"
    );
    let tuned = json["finetune"]["train"].as_array().unwrap();
    assert_eq!(tuned.len(), 120, "one loss per fine-tuning step");
    assert!(
        json.get("stages").is_none(),
        "timings stay out of metrics.json"
    );

    for svg in [
        "pretrain_loss.svg",
        "finetune_loss.svg",
        "metrics.svg",
        "confusion_base.svg",
        "confusion_fine-tuned.svg",
    ] {
        let text = std::fs::read_to_string(p.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
    for f in [
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "base-model/config.json",
        "base-model/model.safetensors",
        "base-model/tokenizer.json",
        "base-model/tokenizer_config.json",
        "base-model/chat_template.jinja",
        "data/modality.test.jsonl",
        "predictions/letters_base.jsonl",
        "predictions/letters_finetuned.jsonl",
        "review/key.json",
        "review/packets/packet-rater-1.html",
        "review/packets/packet-rater-2.csv",
    ] {
        assert!(p.join(f).is_file(), "missing {f}");
    }
    // The review packet: five letters cases, base vs fine-tuned vs reference, blinded.
    let review = &json["review"];
    assert_eq!(review["cases"], 5);
    assert_eq!(
        review["models"],
        serde_json::json!(["base", "fine-tuned", "reference"])
    );
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("review/key.json")).unwrap()).unwrap();
    assert_eq!(key["packet"], review["packet"]);
    let html = std::fs::read_to_string(p.join("review/packets/packet-rater-1.html")).unwrap();
    assert!(html.contains(review["packet"].as_str().unwrap()));
    assert!(!html.contains("fine-tuned"), "the packet is blinded");
    let adapter: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(adapter["peft_type"], "LORA");
    let leftovers: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// The smallest complete run: every stage, a few steps and cases (seconds).
const TINY: [&str; 10] = [
    "--quick",
    "--cases",
    "80",
    "--pretrain-steps",
    "6",
    "--steps",
    "6",
    "--eval-cases",
    "2",
    "--batch-size=2",
];

fn run_tiny(extra: &[&str], out: &std::path::Path) -> String {
    let result = demo()
        .args(TINY)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "demo {extra:?} failed:\n{err}");
    std::fs::read_to_string(out.join("metrics.json")).unwrap()
}

#[test]
fn the_same_seed_writes_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_tiny(&["--seed", "7"], &dir.path().join("a"));
    let b = run_tiny(&["--seed", "7"], &dir.path().join("b"));
    // Byte for byte: every loss, score, interval and p-value (timings are in report.md only).
    assert!(
        a == b,
        "two runs with --seed 7 wrote different metrics.json"
    );
    let json: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert!(!json["pretrain"]["train"].as_array().unwrap().is_empty());
    assert!(!json["comparisons"].as_array().unwrap().is_empty());
    let c = run_tiny(&["--seed", "8"], &dir.path().join("c"));
    assert!(a != c, "--seed 8 wrote the metrics of --seed 7");
}

#[test]
fn model_and_tokenizer_run_stages_four_to_six_on_a_checkpoint_dir() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    run_tiny(&[], &first);
    let base = first.join("base-model");
    let out = dir.path().join("second");
    let result = demo()
        .arg("--model")
        .arg(&base)
        .arg("--tokenizer")
        .arg(base.join("tokenizer.json"))
        .args([
            "--quick",
            "--cases",
            "80",
            "--steps",
            "4",
            "--eval-cases",
            "2",
            "--batch-size",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "demo --model failed:\n{err}");
    assert!(
        !err.contains("pre-train: "),
        "pre-trained although --model was given:\n{err}"
    );
    for stage in ["tokenizer", "quantize", "fine-tune", "evaluate"] {
        assert!(
            err.contains(&format!("{stage}: ")),
            "no {stage} line:\n{err}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    check_numbers(&json, "metrics");
    assert_eq!(json["config"]["base"]["kind"], "pretrained");
    assert!(json["pretrain"]["train"].as_array().unwrap().is_empty());
    assert_eq!(json["finetune"]["train"].as_array().unwrap().len(), 4);
    let first_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["model"]["parameters"], first_json["model"]["parameters"],
        "the checkpoint's parameter count"
    );
    assert!(!json["comparisons"].as_array().unwrap().is_empty());
    assert!(out.join("report.md").is_file());
    assert!(out.join("adapter/adapter_model.safetensors").is_file());
    assert!(
        !out.join("base-model").exists(),
        "no new base model is written"
    );
    // A missing checkpoint fails with one message naming it.
    let result = demo()
        .args(["--model", "/nonexistent-ckpt", "--tokenizer"])
        .arg(base.join("tokenizer.json"))
        .arg("--out")
        .arg(dir.path().join("third"))
        .output()
        .unwrap();
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("/nonexistent-ckpt"), "{err}");
}
