//! `generate --device` and `--random-init`: a seeded random model from a config file runs
//! and is reproducible, and device/preset mistakes fail with one clear message.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/llama/llama3/config.json")
}

fn generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(args)
        .output()
        .expect("run generate")
}

fn json_line(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[test]
fn random_init_from_a_config_file_is_seeded() {
    let mistral = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fixtures/mistral/mistral/config.json");
    for cfg in [config(), mistral] {
        random_init_is_seeded(cfg.to_str().unwrap());
    }
}

fn random_init_is_seeded(cfg: &str) {
    let base = [
        "--random-init",
        cfg,
        "--token-ids",
        "5,6,7",
        "--max-new-tokens",
        "4",
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        json_line(&generate(&args))
    };
    let a = run(&["--device", "cpu", "--seed", "1"]);
    assert_eq!(a["prompt_ids"], serde_json::json!([5, 6, 7]));
    let n = a["token_ids"].as_array().unwrap().len();
    assert!((1..=4).contains(&n), "{a}");
    assert_eq!(
        run(&["--seed", "1"]),
        a,
        "same seed, same model, same tokens"
    );
    let q = run(&["--seed", "1", "--load-in-4bit"]);
    assert_eq!(q["prompt_ids"], a["prompt_ids"]);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_says_how_to_rebuild() {
    let cfg = config();
    let out = generate(&[
        "--random-init",
        cfg.to_str().unwrap(),
        "--token-ids",
        "1",
        "--device",
        "cuda",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--device cuda:0: built without the cuda feature; rebuild with --features cuda"
        ),
        "{err}"
    );
}

#[test]
fn bad_device_and_preset_names_are_rejected() {
    let out = generate(&[
        "--random-init",
        "llama3-8b",
        "--token-ids",
        "1",
        "--device",
        "gpu",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected cpu, cuda or cuda:N"), "{err}");

    let out = generate(&[
        "--random-init",
        "llama9-1t",
        "--token-ids",
        "1",
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "llama3-8b, llama2-13b, llama3.2-1b, llama3.1-8b, mistral-7b, mistral-7b-v0.3"
        ),
        "{err}"
    );

    let out = generate(&["--token-ids", "1"]);
    assert!(
        !out.status.success(),
        "--model or --random-init is required"
    );
}
