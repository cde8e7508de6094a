//! The `merge` binary on the committed peft fixture (tools/fixtures/peft/llama2_r8 on the tiny
//! llama2 checkpoint): the merged checkpoint gives the adapted model's logits (through
//! `generate --dump-logits`) and peft's merged logits; bad input fails with one clear message
//! and leaves no output behind.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{f32s, fixtures, i64s, tensor};

fn merge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_merge"))
        .args(args)
        .output()
        .unwrap()
}

/// `merge --model base --adapter adapter --output out_dir EXTRA..`, which must succeed;
/// returns the written config.json.
fn merge_ok(base: &Path, adapter: &Path, out_dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--model",
        base.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = merge(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(out_dir.join("config.json")).unwrap()).unwrap()
}

/// Prefill logits of `ids` through `generate --dump-logits`.
fn logits(model: &Path, adapter: Option<&Path>, ids: &str, tmp: &Path) -> Vec<f32> {
    let dump = tmp.join("logits.safetensors");
    let mut args = vec![
        "--model".to_string(),
        model.display().to_string(),
        "--token-ids".into(),
        ids.into(),
        "--max-new-tokens".into(),
        "1".into(),
        "--dump-logits".into(),
        dump.display().to_string(),
    ];
    if let Some(a) = adapter {
        args.extend(["--adapter".into(), a.display().to_string()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f32s(&tensor(&dump, "logits").1)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn merged_checkpoint_gives_the_adapted_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixtures().join("llama/llama2");
    let adapter = fixtures().join("peft/llama2_r8");
    let out_dir = tmp.path().join("merged");
    let cfg = merge_ok(&base, &adapter, &out_dir, &[]);
    assert!(cfg.get("quantization_config").is_none());
    assert_eq!(cfg["torch_dtype"], "float32");
    assert!(out_dir.join("generation_config.json").is_file());
    // Nothing but the result is left in the parent.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["merged".to_string()]);

    // peft's merge_and_unload() logits on its reference ids, and the unmerged adapter's.
    let reference = fixtures().join("peft_train/merged/reference.safetensors");
    check_rows(&reference, &out_dir, Some((&base, &adapter)), tmp.path());

    // bf16 output, replacing the directory with --force.
    let cfg = merge_ok(&base, &adapter, &out_dir, &["--dtype", "bf16", "--force"]);
    assert_eq!(cfg["torch_dtype"], "bfloat16");
}

/// A Mistral base (sliding window 5) with peft's adapter: the merged checkpoint stays a
/// Mistral one (`model_type`, `architectures`, `sliding_window`) and gives peft's adapted
/// logits on 12-token rows, past the window.
#[test]
fn merged_mistral_keeps_its_architecture_and_gives_peft_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixtures().join("mistral/mistral");
    let adapter = fixtures().join("mistral/peft_r8");
    let out_dir = tmp.path().join("merged");
    let cfg = merge_ok(&base, &adapter, &out_dir, &[]);
    assert_eq!(cfg["model_type"], "mistral");
    assert_eq!(cfg["architectures"][0], "MistralForCausalLM");
    assert_eq!(cfg["sliding_window"], 5);
    assert_eq!(cfg["rope_theta"], 1e6);
    assert!(cfg.get("attention_bias").is_none());

    check_rows(
        &adapter.join("reference.safetensors"),
        &out_dir,
        None,
        tmp.path(),
    );
}

/// For each row of `reference`'s `input_ids`: the prefill logits of the `merged` checkpoint
/// equal the reference `logits` and, with `adapted = (base, adapter)`, those of `generate
/// --adapter` on the base, within 1e-4.
fn check_rows(reference: &Path, merged: &Path, adapted: Option<(&Path, &Path)>, tmp: &Path) {
    let (shape, ids) = tensor(reference, "input_ids");
    let ids = i64s(&ids);
    let want = f32s(&tensor(reference, "logits").1);
    let vocab = want.len() / ids.len();
    for row in 0..shape[0] {
        let row_ids: Vec<String> = ids[row * shape[1]..(row + 1) * shape[1]]
            .iter()
            .map(|v| v.to_string())
            .collect();
        let row_ids = row_ids.join(",");
        let got = logits(merged, None, &row_ids, tmp);
        if let Some((base, adapter)) = adapted {
            let d = max_abs_diff(&got, &logits(base, Some(adapter), &row_ids, tmp));
            assert!(
                d < 1e-4,
                "row {row}: merged vs adapted logits differ by {d}"
            );
        }
        let expected = &want[row * shape[1] * vocab..(row + 1) * shape[1] * vocab];
        let d = max_abs_diff(&got, expected);
        assert!(d < 1e-4, "row {row}: merged vs peft logits differ by {d}");
    }
}

fn fails_with(args: &[&str], needle: &str) {
    let out = merge(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
}

#[test]
fn bad_input_fails_with_one_clear_message_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = out_dir.to_str().unwrap();
    let adapter = fixtures().join("peft/llama2_r8");
    let adapter = adapter.to_str().unwrap();
    // An adapter trained on another shape: the error names the tensor.
    let llama3 = fixtures().join("llama/llama3");
    fails_with(
        &[
            "--model",
            llama3.to_str().unwrap(),
            "--adapter",
            adapter,
            "--output",
            out,
        ],
        "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight",
    );
    let llama2 = fixtures().join("llama/llama2");
    let llama2 = llama2.to_str().unwrap();
    fails_with(
        &[
            "--model",
            llama2,
            "--adapter",
            "/nonexistent",
            "--output",
            out,
        ],
        "--adapter /nonexistent",
    );
    fails_with(
        &[
            "--model",
            llama2,
            "--adapter",
            adapter,
            "--output",
            out,
            "--dtype",
            "f8",
        ],
        "f8",
    );
    // Not a PEFT directory: names the missing file.
    fails_with(
        &["--model", llama2, "--adapter", llama2, "--output", out],
        "adapter_config.json",
    );
    assert!(!out_dir.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // An existing output is not replaced without --force.
    std::fs::create_dir(&out_dir).unwrap();
    fails_with(
        &["--model", llama2, "--adapter", adapter, "--output", out],
        "--force",
    );
}

#[test]
fn help_documents_every_flag() {
    let out = merge(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--model", "--adapter", "--output", "--dtype", "--force"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
