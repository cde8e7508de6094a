//! 4-bit loading keeps the projections 4-bit: pre-quantized bitsandbytes checkpoints and
//! `load_in_4bit` build NF4 bases (no dense f32 copy of the weights), full-precision loading
//! builds dense bases.

use std::path::PathBuf;

use burn_ndarray::NdArray;
use llama_model::{load_pretrained, Checkpoint, Llama, LoadOptions};
use qlora_core::lora::{FrozenBase, LoraLinear};
use qlora_core::{QuantConfig, QuantState};
use safetensors::SafeTensors;

type B = NdArray<f32>;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fixtures/llama")
        .join(name)
}

fn load(name: &str, load_in_4bit: bool) -> Llama<B> {
    load_pretrained::<B>(
        fixture(name),
        &LoadOptions {
            load_in_4bit,
            ..Default::default()
        },
        &Default::default(),
    )
    .unwrap()
}

/// Every projection of every layer, with its transformers name.
fn projections(model: &Llama<B>) -> Vec<(String, &LoraLinear<B>)> {
    let mut out = Vec::new();
    for (i, l) in model.layers.iter().enumerate() {
        let a = &l.self_attn;
        let m = &l.mlp;
        for (n, p) in [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &m.gate_proj),
            ("mlp.up_proj", &m.up_proj),
            ("mlp.down_proj", &m.down_proj),
        ] {
            out.push((format!("model.layers.{i}.{n}.weight"), p));
        }
    }
    out
}

fn nf4_state(name: &str, p: &LoraLinear<B>) -> std::sync::Arc<QuantState> {
    match &p.base {
        FrozenBase::Nf4(q) => q.to_quant_state().unwrap(),
        FrozenBase::Dense(_) => panic!("{name}: dense base, expected NF4"),
    }
}

#[test]
fn prequantized_checkpoints_keep_the_loaded_quant_state() {
    for name in ["llama3_bnb4", "llama2_bnb4"] {
        let model = load(name, false);
        let bytes = std::fs::read(fixture(name).join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let projs = projections(&model);
        assert!(!projs.is_empty());
        for (w, p) in projs {
            let expected = QuantState::from_safetensors(&st, &w).unwrap();
            // The very state of the checkpoint (codes, absmax, dtype), not a re-quantization.
            assert_eq!(*nf4_state(&w, p), expected, "{name}: {w}");
        }
    }
}

#[test]
fn load_in_4bit_quantizes_each_projection_once() {
    let model = load("llama3", true);
    let ckpt = Checkpoint::open_dir(fixture("llama3")).unwrap();
    for (w, p) in projections(&model) {
        let shape = [p.out_features(), p.in_features()];
        let dense = ckpt.read_f32(&w, &shape).unwrap();
        let expected = QuantState::quantize(&dense, &shape, QuantConfig::default()).unwrap();
        assert_eq!(*nf4_state(&w, p), expected, "{w}");
    }
}

#[test]
fn full_precision_loading_keeps_dense_bases() {
    let model = load("llama3", false);
    for (w, p) in projections(&model) {
        assert!(matches!(p.base, FrozenBase::Dense(_)), "{w}");
    }
}
