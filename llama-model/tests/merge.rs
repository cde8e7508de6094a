//! Merging LoRA adapters into a full-precision checkpoint, against peft 0.21.2's
//! `merge_and_unload()` (fixture `tools/fixtures/peft_train/gen.py`): the merged weights
//! tensor by tensor, the merged model's logits, the NF4 merge (dequantize, then add), the
//! saved files (names, dtypes, config without `quantization_config`) and shape errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use llama_model::{
    load_adapter, load_pretrained, merge_adapter, save_pretrained_as, state_dict, Llama,
    LlamaError, LlamaInput, LoadOptions, SaveDtype,
};
use qlora_core::lora::FrozenBase;

type B = NdArray<f32>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures")
}

/// A safetensors file as `name -> (shape, f32 values)` (f32 and bf16 tensors) plus its i64
/// tensors as f32.
fn read(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let values: Vec<f32> = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::BF16 => v
                    .data()
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                safetensors::Dtype::I64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("{name}: unexpected dtype {d:?}"),
            };
            (name, (v.shape().to_vec(), values))
        })
        .collect()
}

fn base(load_in_4bit: bool) -> Llama<B> {
    load_pretrained::<B>(
        fixtures().join("llama/llama2"),
        &LoadOptions {
            load_in_4bit,
            ..Default::default()
        },
        &Default::default(),
    )
    .unwrap()
}

fn adapter_dir() -> PathBuf {
    fixtures().join("peft/llama2_r8")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// Our state dict as `name -> (shape, values)`.
fn ours(model: &Llama<B>) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    state_dict(model)
        .unwrap()
        .into_iter()
        .map(|(n, s, bytes)| {
            let v = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, (s, v))
        })
        .collect()
}

fn logits(model: &Llama<B>, ids: &[f32], rows: usize) -> Vec<f32> {
    let cols = ids.len() / rows;
    let ids: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, cols]), &Default::default());
    model
        .forward(LlamaInput::new(ids))
        .unwrap()
        .into_data()
        .to_vec()
        .unwrap()
}

fn all_dense<Bk: Backend>(model: &Llama<Bk>) -> bool {
    model.layers.iter().all(|l| {
        [
            &l.self_attn.q_proj,
            &l.self_attn.k_proj,
            &l.self_attn.v_proj,
            &l.self_attn.o_proj,
            &l.mlp.gate_proj,
            &l.mlp.up_proj,
            &l.mlp.down_proj,
        ]
        .iter()
        .all(|p| matches!(p.base, FrozenBase::Dense(_)) && p.adapter().is_none())
    })
}

#[test]
fn merged_weights_and_logits_match_peft_merge_and_unload() {
    let merged = merge_adapter(base(false), adapter_dir()).unwrap();
    assert!(all_dense(&merged));
    let want = read(&fixtures().join("peft_train/merged/model.safetensors"));
    let got = ours(&merged);
    let mut names: Vec<&String> = got.keys().collect();
    names.sort();
    let mut want_names: Vec<&String> = want.keys().collect();
    want_names.sort();
    assert_eq!(
        names, want_names,
        "tensor names differ from peft's merged checkpoint"
    );
    let before = ours(&base(false));
    let mut changed = 0;
    for (name, (shape, w)) in &want {
        let (s, g) = &got[name];
        assert_eq!(s, shape, "{name}");
        let d = max_abs_diff(g, w);
        assert!(d <= 1e-6, "{name}: max |ours - peft| = {d}");
        if max_abs_diff(&before[name].1, w) > 1e-3 {
            changed += 1;
        }
    }
    // All 14 adapted projections moved; embeddings, norms and lm_head did not.
    assert_eq!(changed, 14);

    let reference = read(&fixtures().join("peft_train/merged/reference.safetensors"));
    let (shape, ids) = &reference["input_ids"];
    let got = logits(&merged, ids, shape[0]);
    let d = max_abs_diff(&got, &reference["logits"].1);
    assert!(d < 1e-4, "merged logits: max |ours - peft| = {d}");
    // The merged model computes what the adapted one does.
    let adapted = load_adapter(base(false), adapter_dir()).unwrap();
    let d = max_abs_diff(&got, &logits(&adapted, ids, shape[0]));
    assert!(d < 1e-4, "merged vs adapted logits: {d}");
}

/// QLoRA's merge: the NF4 base dequantized exactly as bitsandbytes' `dequantize_4bit`, plus
/// `scaling · B·A` in f32 (reference computed with bitsandbytes 0.50.2 on the same NF4
/// state, quantized on load with double quantization).
#[test]
fn nf4_base_merges_into_dequantized_weight_plus_delta() {
    let adapted = load_adapter(base(true), adapter_dir()).unwrap();
    assert!(matches!(
        adapted.layers[0].self_attn.q_proj.base,
        FrozenBase::Nf4(_)
    ));
    let ids: Vec<f32> = vec![5.0, 17.0, 300.0, 42.0, 9.0];
    let adapted_logits = logits(&adapted, &ids, 1);
    let merged = adapted.merge_lora().unwrap();
    assert!(all_dense(&merged));
    let want = read(&fixtures().join("peft_train/qlora.safetensors"));
    let got = ours(&merged);
    let mut n = 0;
    for (key, (shape, w)) in &want {
        let Some(name) = key.strip_prefix("merged.") else {
            continue;
        };
        let (s, g) = &got[name];
        assert_eq!(s, shape, "{name}");
        let d = max_abs_diff(g, w);
        assert!(d <= 1e-6, "{name}: max |ours - bitsandbytes| = {d}");
        n += 1;
    }
    assert_eq!(n, 14);
    let d = max_abs_diff(&logits(&merged, &ids, 1), &adapted_logits);
    assert!(d < 1e-4, "merged vs adapted NF4 logits: {d}");
}

#[test]
fn saved_merge_is_a_plain_checkpoint_in_the_chosen_dtype() {
    let merged = merge_adapter(base(true), adapter_dir()).unwrap();
    let ids: Vec<f32> = vec![3.0, 99.0, 250.0, 8.0];
    let want = logits(&merged, &ids, 1);
    let dir = tempfile::tempdir().unwrap();

    save_pretrained_as(&merged, dir.path(), SaveDtype::F32).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert!(cfg.get("quantization_config").is_none(), "{cfg}");
    assert_eq!(cfg["torch_dtype"], "float32");
    let back =
        load_pretrained::<B>(dir.path(), &LoadOptions::default(), &Default::default()).unwrap();
    assert!(all_dense(&back));
    assert_eq!(logits(&back, &ids, 1), want);

    save_pretrained_as(&merged, dir.path(), SaveDtype::Bf16).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["torch_dtype"], "bfloat16");
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let f32s = ours(&merged);
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), safetensors::Dtype::BF16, "{name}");
        let got: Vec<u16> = view
            .data()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let expect: Vec<u16> = f32s[&name]
            .1
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_bits())
            .collect();
        assert_eq!(got, expect, "{name}: not round-to-nearest-even bf16");
    }
    let back =
        load_pretrained::<B>(dir.path(), &LoadOptions::default(), &Default::default()).unwrap();
    let d = max_abs_diff(&logits(&back, &ids, 1), &want);
    assert!(d > 0.0 && d < 0.5, "bf16 logits differ by {d}");

    save_pretrained_as(&merged, dir.path(), SaveDtype::F16).unwrap();
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st
        .tensors()
        .iter()
        .all(|(_, v)| v.dtype() == safetensors::Dtype::F16));
}

#[test]
fn adapter_for_another_shape_names_the_tensor() {
    // llama3 has 2 key/value heads: k_proj is [32, 64], the adapter's lora_B is [64, 8].
    let other = load_pretrained::<B>(
        fixtures().join("llama/llama3"),
        &LoadOptions::default(),
        &Default::default(),
    )
    .unwrap();
    match merge_adapter(other, adapter_dir()) {
        Err(LlamaError::Shape {
            name,
            expected,
            found,
        }) => {
            assert_eq!(
                name,
                "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"
            );
            assert_eq!((expected, found), (vec![32, 8], vec![64, 8]));
        }
        other => panic!("expected a shape error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn non_finite_merge_is_refused_naming_the_projection() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(adapter_dir().join(f), dir.path().join(f)).unwrap();
    }
    // Overwrite one lora_B with infinities.
    let path = dir.path().join("adapter_model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let bad = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let data = if n == bad {
                f32::INFINITY.to_le_bytes().repeat(v.data().len() / 4)
            } else {
                v.data().to_vec()
            };
            (n, v.shape().to_vec(), data)
        })
        .collect();
    llama_model::save_tensors_f32(&path, &tensors).unwrap();
    match merge_adapter(base(false), dir.path()) {
        Err(LlamaError::Lora { module, .. }) => {
            assert_eq!(module, "model.layers.1.mlp.up_proj")
        }
        other => panic!("expected a LoRA error, got {:?}", other.map(|_| ())),
    }
}
