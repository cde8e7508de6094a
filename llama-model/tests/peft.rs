//! PEFT adapter directories: save → load round trip (identical tensors and logits) and the
//! typed errors for bad configs, missing, misshapen and unexpected tensors.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;
use llama_model::{
    load_adapter, save_adapter, save_tensors_f32, AdapterConfig, Llama, LlamaConfig, LlamaError,
    LlamaInput, RandomInit,
};
use qlora_core::{LoraLinear, TargetModule};
use rand::{Rng, SeedableRng};

type B = NdArray<f32>;

fn tiny() -> Llama<B> {
    Llama::random(
        &LlamaConfig::tiny(48),
        &RandomInit { std: 0.2, seed: 3 },
        &Default::default(),
    )
    .unwrap()
}

fn logits(model: &Llama<B>, ids: &[u32]) -> Vec<f32> {
    let input = LlamaInput::left_padded(&[ids.to_vec()], 0, &Default::default()).unwrap();
    model.forward(input).unwrap().into_data().to_vec().unwrap()
}

fn rand_matrix(rng: &mut rand_chacha::ChaCha8Rng, rows: usize, cols: usize) -> Tensor<B, 2> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-0.5f32..0.5))
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), &Default::default())
}

fn attach(
    lin: LoraLinear<B>,
    r: usize,
    scaling: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> LoraLinear<B> {
    let (i, o) = (lin.in_features(), lin.out_features());
    let a = rand_matrix(rng, r, i);
    let b = rand_matrix(rng, o, r);
    lin.with_lora_weights(a, b, scaling, 0.0).unwrap()
}

/// A tiny model with non-zero adapters (rank `r`) on every projection in `targets`.
fn adapted(r: usize, config: &AdapterConfig, seed: u64) -> Llama<B> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut model = tiny();
    let s = config.scaling();
    let targets = config.targets().unwrap();
    let layers = std::mem::take(&mut model.layers);
    for mut layer in layers {
        for t in &targets {
            match t {
                TargetModule::QProj => {
                    layer.self_attn.q_proj = attach(layer.self_attn.q_proj, r, s, &mut rng)
                }
                TargetModule::KProj => {
                    layer.self_attn.k_proj = attach(layer.self_attn.k_proj, r, s, &mut rng)
                }
                TargetModule::VProj => {
                    layer.self_attn.v_proj = attach(layer.self_attn.v_proj, r, s, &mut rng)
                }
                TargetModule::OProj => {
                    layer.self_attn.o_proj = attach(layer.self_attn.o_proj, r, s, &mut rng)
                }
                TargetModule::GateProj => {
                    layer.mlp.gate_proj = attach(layer.mlp.gate_proj, r, s, &mut rng)
                }
                TargetModule::UpProj => {
                    layer.mlp.up_proj = attach(layer.mlp.up_proj, r, s, &mut rng)
                }
                TargetModule::DownProj => {
                    layer.mlp.down_proj = attach(layer.mlp.down_proj, r, s, &mut rng)
                }
            }
        }
        model.layers.push(layer);
    }
    model
}

fn values(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn save_then_load_gives_identical_tensors_and_logits() {
    for (config, r) in [
        (AdapterConfig::new(4, 8.0, &TargetModule::ALL), 4),
        (
            {
                let mut c =
                    AdapterConfig::new(2, 3.0, &[TargetModule::QProj, TargetModule::DownProj]);
                c.use_rslora = true;
                c
            },
            2,
        ),
    ] {
        let model = adapted(r, &config, 7);
        let dir = tempfile::tempdir().unwrap();
        save_adapter(&model, dir.path(), &config).unwrap();
        let back = load_adapter(tiny(), dir.path()).unwrap();
        let ids = [1u32, 5, 9, 2, 47];
        let want = logits(&model, &ids);
        assert_eq!(logits(&back, &ids), want);
        // The adapter changes the output.
        assert_ne!(logits(&tiny(), &ids), want);
        for (l0, l1) in model.layers.iter().zip(&back.layers) {
            for (p0, p1) in [
                (&l0.self_attn.q_proj, &l1.self_attn.q_proj),
                (&l0.self_attn.k_proj, &l1.self_attn.k_proj),
                (&l0.mlp.down_proj, &l1.mlp.down_proj),
            ] {
                match (p0.adapter(), p1.adapter()) {
                    (None, None) => {}
                    (Some(a0), Some(a1)) => {
                        assert_eq!(values(a0.lora_a.val()), values(a1.lora_a.val()));
                        assert_eq!(values(a0.lora_b.val()), values(a1.lora_b.val()));
                        assert_eq!(a0.scaling, a1.scaling);
                        assert_eq!(a1.scaling, config.scaling());
                    }
                    _ => panic!("adapter presence differs after the round trip"),
                }
            }
        }
    }
}

#[test]
fn saved_files_use_peft_names_and_fields() {
    let config = AdapterConfig::new(4, 8.0, &[TargetModule::VProj]);
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&adapted(4, &config, 1), dir.path(), &config).unwrap();
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
            "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
            "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
        ]
    );
    let a = st
        .tensor("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight")
        .unwrap();
    assert_eq!(a.dtype(), safetensors::Dtype::F32);
    assert_eq!(a.shape(), &[4, 64]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(json["peft_type"], "LORA");
    assert_eq!(json["r"], 4);
    assert_eq!(json["bias"], "none");
    assert_eq!(json["target_modules"], serde_json::json!(["v_proj"]));
}

fn write_config(dir: &Path, json: &str) {
    std::fs::write(dir.join("adapter_config.json"), json).unwrap();
}

/// A valid adapter directory (r=4, q_proj only) to corrupt.
fn valid_dir() -> tempfile::TempDir {
    let config = AdapterConfig::new(4, 8.0, &[TargetModule::QProj]);
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&adapted(4, &config, 2), dir.path(), &config).unwrap();
    dir
}

#[test]
fn config_reads_peft_forms_and_ignores_unknown_fields() {
    let c: AdapterConfig = serde_json::from_str(
        r#"{"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear",
            "bias": "none", "peft_type": "LORA", "task_type": "CAUSAL_LM",
            "layers_to_transform": null, "modules_to_save": null, "use_dora": false}"#,
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.targets().unwrap(), TargetModule::ALL.to_vec());
    assert_eq!(c.scaling(), 2.0);
}

#[test]
fn unsupported_config_values_are_refused_naming_the_field() {
    for (json, field) in [
        (
            r#"{"r":4,"lora_alpha":8,"target_modules":["q_proj"],"peft_type":"IA3"}"#,
            "peft_type",
        ),
        (
            r#"{"r":4,"lora_alpha":8,"target_modules":["q_proj"],"bias":"all"}"#,
            "bias",
        ),
        (
            r#"{"r":4,"lora_alpha":8,"target_modules":["q_proj"],"fan_in_fan_out":true}"#,
            "fan_in_fan_out",
        ),
        (
            r#"{"r":4,"lora_alpha":8,"target_modules":["lm_head"]}"#,
            "target_modules",
        ),
        (r#"{"r":0,"lora_alpha":8,"target_modules":["q_proj"]}"#, "r"),
    ] {
        let dir = valid_dir();
        write_config(dir.path(), json);
        match load_adapter(tiny(), dir.path()) {
            Err(LlamaError::Config { field: f, .. }) => assert_eq!(f, field, "{json}"),
            other => panic!("{json}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn missing_config_or_weights_is_an_io_error() {
    let dir = valid_dir();
    std::fs::remove_file(dir.path().join("adapter_model.safetensors")).unwrap();
    assert!(matches!(
        load_adapter(tiny(), dir.path()),
        Err(LlamaError::Io { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_adapter(tiny(), empty.path()),
        Err(LlamaError::Io { .. })
    ));
}

#[test]
fn missing_misshapen_and_unexpected_tensors_name_the_key() {
    // Config targets k_proj too, but the file only has q_proj.
    let dir = valid_dir();
    write_config(
        dir.path(),
        r#"{"r":4,"lora_alpha":8,"target_modules":["q_proj","k_proj"]}"#,
    );
    match load_adapter(tiny(), dir.path()) {
        Err(LlamaError::MissingTensor { name }) => assert_eq!(
            name,
            "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"
        ),
        other => panic!("expected a missing tensor, got {other:?}"),
    }
    // Config says r=2 but the file holds rank-4 tensors.
    write_config(
        dir.path(),
        r#"{"r":2,"lora_alpha":8,"target_modules":["q_proj"]}"#,
    );
    match load_adapter(tiny(), dir.path()) {
        Err(LlamaError::Shape {
            name,
            expected,
            found,
        }) => {
            assert_eq!(
                name,
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
            );
            assert_eq!((expected, found), (vec![2, 64], vec![4, 64]));
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    // A tensor the config does not account for.
    let cfg = AdapterConfig::new(4, 8.0, &[TargetModule::QProj, TargetModule::UpProj]);
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&adapted(4, &cfg, 3), dir.path(), &cfg).unwrap();
    write_config(
        dir.path(),
        r#"{"r":4,"lora_alpha":8,"target_modules":["q_proj"]}"#,
    );
    match load_adapter(tiny(), dir.path()) {
        Err(LlamaError::UnexpectedTensors { names }) => {
            assert_eq!(names.len(), 4);
            assert!(
                names.iter().all(|n| n.contains("mlp.up_proj.lora_")),
                "{names:?}"
            );
        }
        other => panic!("expected unexpected tensors, got {other:?}"),
    }
    // A `.default.` name (peft's in-memory name) is not a saved name.
    let dir = valid_dir();
    let t = (
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight".to_string(),
        vec![4, 64],
        vec![0u8; 4 * 4 * 64],
    );
    let mut st = vec![t];
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (n, v) in parsed.tensors() {
        st.push((n, v.shape().to_vec(), v.data().to_vec()));
    }
    save_tensors_f32(dir.path().join("adapter_model.safetensors"), &st).unwrap();
    assert!(matches!(
        load_adapter(tiny(), dir.path()),
        Err(LlamaError::UnexpectedTensors { .. })
    ));
}

#[test]
fn half_precision_adapters_load() {
    let dir = valid_dir();
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned = Vec::new();
    for (n, v) in parsed.tensors() {
        let half: Vec<u8> = v
            .data()
            .chunks_exact(4)
            .flat_map(|c| {
                half::bf16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
            })
            .collect();
        owned.push((n, v.shape().to_vec(), half));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.path().join("adapter_model.safetensors"), out).unwrap();
    let back = load_adapter(tiny(), dir.path()).unwrap();
    let a = back.layers[0].self_attn.q_proj.adapter().unwrap();
    let first = values(a.lora_a.val())[0];
    let (_, _, bytes) = owned
        .iter()
        .find(|(n, _, _)| n == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        .unwrap();
    let want = half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
    assert_ne!(want, 0.0);
    assert_eq!(first, want);
}

#[test]
fn saving_without_an_adapter_or_with_another_rank_is_refused() {
    let config = AdapterConfig::new(4, 8.0, &[TargetModule::QProj]);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        save_adapter(&tiny(), dir.path(), &config),
        Err(LlamaError::InvalidArgument(_))
    ));
    let model = adapted(4, &config, 5);
    let other = AdapterConfig::new(2, 8.0, &[TargetModule::QProj]);
    assert!(matches!(
        save_adapter(&model, dir.path(), &other),
        Err(LlamaError::Config { .. })
    ));
    // Nothing was written.
    assert!(!dir.path().join("adapter_config.json").exists());
}

/// peft 0.21.2 + transformers 5.23.0 fixture (`tools/fixtures/peft/gen_peft.py`): r=8,
/// alpha=16, non-zero A and B on all seven projections of the tiny `llama2` checkpoint.
#[test]
fn adapted_logits_match_peft() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures");
    let base = llama_model::load_pretrained::<B>(
        root.join("llama/llama2"),
        &llama_model::LoadOptions::default(),
        &Default::default(),
    )
    .unwrap();
    let adapter_dir = root.join("peft/llama2_r8");
    let model = load_adapter(base, &adapter_dir).unwrap();
    let a = model.layers[1].mlp.down_proj.adapter().unwrap();
    assert_eq!((a.rank(), a.scaling), (8, 2.0));

    let bytes = std::fs::read(adapter_dir.join("reference.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids = reference.tensor("input_ids").unwrap();
    let ids: Vec<u32> = ids
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
        .collect();
    let want = reference.tensor("logits").unwrap();
    let vocab = want.shape()[2];
    let want: Vec<f32> = want
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let rows: Vec<Vec<u32>> = ids.chunks(7).map(<[u32]>::to_vec).collect();
    let input = LlamaInput::left_padded(&rows, 0, &Default::default()).unwrap();
    let got: Vec<f32> = model.forward(input).unwrap().into_data().to_vec().unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), rows.len() * 7 * vocab);
    let max_diff = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "max |ours - peft| = {max_diff}");
}
