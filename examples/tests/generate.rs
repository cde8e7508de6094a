//! The `generate` binary on the committed tiny checkpoints (tools/fixtures/llama and, with
//! sliding windows shorter than the 20 generated tokens, tools/fixtures/mistral): greedy ids
//! equal transformers', `--dump-logits` equals transformers' logits, bad input fails cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::{f32s, fixtures, i64s, tensor};

/// `tools/fixtures/<path>`, e.g. `llama/llama2`.
fn fixture(path: &str) -> PathBuf {
    fixtures().join(path)
}

fn generate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn greedy_ids_and_prefill_logits_equal_transformers() {
    for name in [
        "llama/llama2",
        "llama/llama3",
        "llama/tied",
        "mistral/mistral",
        "mistral/mistral_hd",
        "mistral/mistral_bnb4",
    ] {
        let dir = fixture(name);
        let reference = dir.join("reference.safetensors");
        let prompt = i64s(&tensor(&reference, "greedy_prompt").1);
        let want: Vec<u64> = i64s(&tensor(&reference, "greedy_out").1)
            .into_iter()
            .map(|x| x as u64)
            .collect();
        let ids = prompt
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let tmp = tempfile::tempdir().unwrap();
        let dump = tmp.path().join("logits.safetensors");
        let out = generate(&[
            "--model",
            dir.to_str().unwrap(),
            "--token-ids",
            &ids,
            "--greedy",
            "--max-new-tokens",
            "20",
            "--dump-logits",
            dump.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line: Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<u64> = line["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        // The model's eos ids stop generation, transformers' reference ran without a stop.
        assert!(!got.is_empty());
        assert_eq!(got[..], want[..got.len()], "{name}");
        let eos: Vec<u64> = match name {
            "llama/llama3" => vec![2, 3],
            _ => vec![2],
        };
        if got.len() < want.len() {
            assert!(
                eos.contains(got.last().unwrap()),
                "{name}: stopped early without eos"
            );
        }
        assert_eq!(line["prompt_ids"].as_array().unwrap().len(), prompt.len());

        // --dump-logits writes [1, L, vocab] equal to a forward in transformers; the
        // reference has logits of prompt ids_7, so run that prompt too.
        let ids7 = i64s(&tensor(&reference, "ids_7").1)
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let out = generate(&[
            "--model",
            dir.to_str().unwrap(),
            "--token-ids",
            &ids7,
            "--max-new-tokens",
            "1",
            "--dump-logits",
            dump.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (shape, bytes) = tensor(&dump, "logits");
        let (want_shape, want_bytes) = tensor(&reference, "logits_7");
        assert_eq!(shape, want_shape);
        let d = f32s(&bytes)
            .iter()
            .zip(f32s(&want_bytes))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-4, "{name}: dumped logits differ by {d}");
    }
}

#[test]
fn bad_input_fails_with_one_clear_message() {
    let dir = fixture("llama/llama2");
    let out = generate(&["--model", dir.to_str().unwrap(), "--token-ids", "5,99999"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99999") && err.contains("vocabulary"), "{err}");

    let out = generate(&["--model", "/nonexistent/model", "--token-ids", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));

    let out = generate(&["--model", dir.to_str().unwrap(), "--prompt", "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer"));
}

#[test]
fn adapter_logits_equal_peft() {
    for (model, adapter) in [
        ("llama/llama2", "peft/llama2_r8"),
        ("mistral/mistral", "mistral/peft_r8"),
    ] {
        check_adapter_logits(&fixture(model), &fixture(adapter));
    }
}

/// `generate --adapter` prefill logits of the first reference row equal peft's.
fn check_adapter_logits(dir: &Path, adapter: &Path) {
    let reference = adapter.join("reference.safetensors");
    let (shape, ids) = tensor(&reference, "input_ids");
    let ids: Vec<String> = i64s(&ids)[..shape[1]]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("logits.safetensors");
    let out = generate(&[
        "--model",
        dir.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--token-ids",
        &ids.join(","),
        "--max-new-tokens",
        "1",
        "--dump-logits",
        dump.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = f32s(&tensor(&dump, "logits").1);
    let want = f32s(&tensor(&reference, "logits").1);
    assert_eq!(got.len() * 2, want.len());
    let d = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        d < 1e-4,
        "{}: adapted logits differ from peft by {d}",
        adapter.display()
    );
}
