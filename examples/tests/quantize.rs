//! Runs the `quantize` binary end to end against checkpoints written by transformers +
//! bitsandbytes (`tools/fixtures/bnb/check_quantize_model.py --write-fixture`).

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fixtures/bnb")
        .join(name)
}

fn quantize(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quantize"))
        .args(args)
        .output()
        .expect("run quantize")
}

fn assert_same_tensors(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (x, y) = (
        SafeTensors::deserialize(&x).unwrap(),
        SafeTensors::deserialize(&y).unwrap(),
    );
    let mut kx: Vec<_> = x.names();
    let mut ky: Vec<_> = y.names();
    kx.sort();
    ky.sort();
    assert_eq!(kx, ky);
    for k in kx {
        let (tx, ty) = (x.tensor(k).unwrap(), y.tensor(k).unwrap());
        assert_eq!((tx.dtype(), tx.shape()), (ty.dtype(), ty.shape()), "{k}");
        assert!(tx.data() == ty.data(), "{k}: bytes differ");
    }
}

#[test]
fn model_mode_writes_what_transformers_writes() {
    for (dq, reference) in [(true, "hf_tiny_dq"), (false, "hf_tiny")] {
        let out = tempfile::tempdir().unwrap();
        let dense = fixture("hf_tiny_dense");
        let mut args = vec![
            "--model",
            dense.to_str().unwrap(),
            "--output",
            out.path().to_str().unwrap(),
        ];
        if !dq {
            args.push("--no-double-quant");
        }
        let o = quantize(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_same_tensors(
            &out.path().join("model.safetensors"),
            &fixture(reference).join("model.safetensors"),
        );
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap())
                .unwrap();
        let q = &cfg["quantization_config"];
        assert_eq!(q["quant_method"], "bitsandbytes");
        assert_eq!(q["load_in_4bit"], true);
        assert_eq!(q["bnb_4bit_quant_type"], "nf4");
        assert_eq!(q["bnb_4bit_use_double_quant"], dq);
        assert!(out.path().join("generation_config.json").exists());
    }
}

/// A Mistral checkpoint: the 4-bit directory holds transformers + bitsandbytes' bytes, keeps
/// `model_type`/`architectures`/`sliding_window`, and `generate` on it gives the logits of
/// the bitsandbytes model (tools/fixtures/mistral/gen_mistral.py).
#[test]
fn model_mode_on_mistral_keeps_the_architecture() {
    let mistral = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/mistral");
    let out = tempfile::tempdir().unwrap();
    let o = quantize(&[
        "--model",
        mistral.join("mistral").to_str().unwrap(),
        "--output",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_tensors(
        &out.path().join("model.safetensors"),
        &mistral.join("mistral_bnb4/model.safetensors"),
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "mistral");
    assert_eq!(cfg["architectures"][0], "MistralForCausalLM");
    assert_eq!(cfg["sliding_window"], 5);
    assert_eq!(cfg["quantization_config"]["bnb_4bit_quant_type"], "nf4");

    let reference = mistral.join("mistral_bnb4/reference.safetensors");
    let bytes = std::fs::read(&reference).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<String> = st
        .tensor("ids_20")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()).to_string())
        .collect();
    let dump = out.path().join("logits.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(["--model", out.path().to_str().unwrap(), "--token-ids"])
        .arg(ids.join(","))
        .args([
            "--max-new-tokens",
            "1",
            "--dump-logits",
            dump.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = std::fs::read(&dump).unwrap();
    let got = SafeTensors::deserialize(&got).unwrap();
    let f32s = |t: safetensors::tensor::TensorView<'_>| -> Vec<f32> {
        t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let (a, b) = (
        f32s(got.tensor("logits").unwrap()),
        f32s(st.tensor("logits_20").unwrap()),
    );
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(
        d < 1e-4,
        "4-bit Mistral logits differ from bitsandbytes' by {d}"
    );
}

#[test]
fn file_mode_round_trip_and_dequantize_of_a_transformers_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q.safetensors");
    let dense = fixture("hf_tiny_dense/model.safetensors");
    let o = quantize(&[
        "--input",
        dense.to_str().unwrap(),
        "--output",
        q.to_str().unwrap(),
        "--tensors",
        "model.layers.0.self_attn.q_proj.weight,model.layers.1.mlp.down_proj.weight",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&q).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(qlora_core::quant::quantized_weight_names(&st).len(), 2);
    assert!(st.tensor("model.embed_tokens.weight").is_ok());

    // --dequantize on transformers' own 4-bit file gives bnb's dequantized values
    let back = dir.path().join("back.safetensors");
    let theirs = fixture("hf_tiny_dq/model.safetensors");
    let o = quantize(&[
        "--dequantize",
        "--input",
        theirs.to_str().unwrap(),
        "--output",
        back.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b = std::fs::read(&back).unwrap();
    let sb = SafeTensors::deserialize(&b).unwrap();
    let t = std::fs::read(&theirs).unwrap();
    let st_theirs = SafeTensors::deserialize(&t).unwrap();
    assert!(qlora_core::quant::quantized_weight_names(&sb).is_empty());
    let name = "model.layers.0.self_attn.q_proj.weight";
    let state = qlora_core::QuantState::from_safetensors(&st_theirs, name).unwrap();
    let v = sb.tensor(name).unwrap();
    assert_eq!(v.dtype(), safetensors::Dtype::BF16);
    assert_eq!(v.shape(), state.shape());
    assert_eq!(v.data(), &state.dequantize_bytes()[..]);
    // quantizing the dense model the same way reproduces transformers' bytes
    let dense_bytes = std::fs::read(&dense).unwrap();
    let sd = SafeTensors::deserialize(&dense_bytes).unwrap();
    let w = sd.tensor(name).unwrap();
    let ours = qlora_core::QuantState::quantize_bytes(
        w.data(),
        qlora_core::quant::FloatDtype::BF16,
        w.shape(),
        qlora_core::QuantConfig::default(),
        name,
    )
    .unwrap();
    assert_eq!(ours, state);
}

#[test]
fn bad_input_fails_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.safetensors");
    let missing = quantize(&[
        "--input",
        "/nonexistent.safetensors",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.safetensors"));

    let dense = fixture("hf_tiny_dense/model.safetensors");
    let bs = quantize(&[
        "--input",
        dense.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--blocksize",
        "48",
    ]);
    assert!(!bs.status.success());
    assert!(String::from_utf8_lossy(&bs.stderr).contains("blocksize"));

    let truncated = dir.path().join("t.safetensors");
    let bytes = std::fs::read(&dense).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let t = quantize(&[
        "--input",
        truncated.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!t.status.success());
    assert!(String::from_utf8_lossy(&t.stderr).contains("t.safetensors"));

    let nt = quantize(&[
        "--input",
        dense.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--tensors",
        "nope",
    ]);
    assert!(!nt.status.success());
    assert!(String::from_utf8_lossy(&nt.stderr).contains("nope"));
    assert!(!out.exists(), "no partial output on failure");
}
