//! `finetune` on a real, trained model: SmolLM2-135M-Instruct (QLoRA: NF4 base with double
//! quantization, r 2 on q/v, 4 steps of 2 ChatML examples). The run must reproduce the adapter
//! committed in tools/fixtures/real_model/finetune/adapter/, which gen.py had our binary write
//! and peft load (llama-model/tests/real_model.rs checks our logits with it against peft's).
//! Needs `tools/fetch_real_model.sh` (CI runs it); skips with a message without it, unless
//! RO_QLORA_REQUIRE_REAL_MODEL is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::SafeTensors;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_dir() -> Option<PathBuf> {
    let dir = root().join("tools/real_model/smollm2-135m-instruct");
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "{} is absent: run tools/fetch_real_model.sh to test against the real model",
        dir.display()
    );
    if std::env::var_os("RO_QLORA_REQUIRE_REAL_MODEL").is_some() {
        panic!("{msg} (RO_QLORA_REQUIRE_REAL_MODEL is set)");
    }
    eprintln!("skipped: {msg}");
    None
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn finetune_on_the_real_model_reproduces_the_adapter_peft_checked() {
    let Some(model) = model_dir() else { return };
    let fixture = root().join("tools/fixtures/real_model/finetune");
    let args: Vec<String> =
        serde_json::from_slice(&std::fs::read(fixture.join("args.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_finetune"))
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(fixture.join("train.jsonl"))
        .arg("--output")
        .arg(&out)
        .args(&args)
        .status()
        .unwrap();
    assert!(status.success());

    let ours = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let want = std::fs::read(fixture.join("adapter/adapter_model.safetensors")).unwrap();
    let (ours, want) = (
        SafeTensors::deserialize(&ours).unwrap(),
        SafeTensors::deserialize(&want).unwrap(),
    );
    let mut names = want.names();
    names.sort();
    let mut ours_names = ours.names();
    ours_names.sort();
    assert_eq!(ours_names, names);
    assert_eq!(
        names.len(),
        2 * 2 * 30,
        "lora_A and lora_B of q_proj and v_proj, 30 layers"
    );
    // The binary is deterministic on the CPU (aligned allocations, seeded data order): the
    // same machine reproduces the adapter bit for bit. 1e-5 leaves room for another CPU's
    // summation order without letting a different training run through (4 AdamW steps at
    // lr 5e-3 move every entry of B by up to 2e-2).
    for name in names {
        let (a, b) = (f32s(&ours, name), f32s(&want, name));
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            d <= 1e-5,
            "{name}: differs from the committed adapter by {d}"
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["r"], 2);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "v_proj"])
    );
}
