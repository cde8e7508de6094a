//! Checkpoint I/O and bad input: save/load round trip, typed errors for missing, extra and
//! misshapen tensors, unsupported configs, over-long prompts and out-of-vocabulary ids; plus
//! properties of batching (left padding) and of the KV cache on random models.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use llama_model::{
    generate, load_pretrained, save_pretrained, save_tensors_f32, state_dict, GenerationConfig,
    KvCache, Llama, LlamaConfig, LlamaError, LlamaInput, LoadOptions, RandomInit,
};
use proptest::prelude::*;

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

fn load(dir: &Path) -> Result<Llama<B>, LlamaError> {
    load_pretrained::<B>(dir, &LoadOptions::default(), &Default::default())
}

#[test]
fn save_then_load_gives_the_same_model() {
    let model = tiny();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(&model, dir.path()).unwrap();
    let back = load(dir.path()).unwrap();
    assert_eq!(back.config(), model.config());
    assert_eq!(logits(&back, &[1, 5, 9, 4]), logits(&model, &[1, 5, 9, 4]));
}

/// Writes `tensors` plus the config of `model` into `dir`.
fn write_checkpoint(model: &Llama<B>, dir: &Path, tensors: &[(String, Vec<usize>, Vec<u8>)]) {
    save_pretrained(model, dir).unwrap();
    save_tensors_f32(dir.join("model.safetensors"), tensors).unwrap();
}

#[test]
fn missing_extra_and_misshapen_tensors_are_named() {
    let model = tiny();
    let full = state_dict(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let missing: Vec<_> = full
        .iter()
        .filter(|t| t.0 != "model.layers.1.mlp.up_proj.weight")
        .cloned()
        .collect();
    write_checkpoint(&model, dir.path(), &missing);
    match load(dir.path()) {
        Err(LlamaError::MissingTensor { name }) => {
            assert_eq!(name, "model.layers.1.mlp.up_proj.weight")
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }

    let mut extra = full.clone();
    extra.push(("model.layers.9.foo".into(), vec![1], vec![0; 4]));
    write_checkpoint(&model, dir.path(), &extra);
    match load(dir.path()) {
        Err(LlamaError::UnexpectedTensors { names }) => {
            assert_eq!(names, vec!["model.layers.9.foo"])
        }
        other => panic!("expected UnexpectedTensors, got {other:?}"),
    }

    let mut bad = full.clone();
    let k = bad
        .iter()
        .position(|t| t.0 == "model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    let (ref mut shape, ref mut bytes) = (bad[k].1.clone(), bad[k].2.clone());
    shape[0] *= 2;
    bytes.extend(bytes.clone());
    bad[k].1 = shape.clone();
    bad[k].2 = bytes.clone();
    write_checkpoint(&model, dir.path(), &bad);
    let err = load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LlamaError::Shape { name, .. } if name == "model.layers.0.self_attn.k_proj.weight"),
        "{err}"
    );
}

#[test]
fn unsupported_configs_are_rejected_with_the_field() {
    let model = tiny();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(&model, dir.path()).unwrap();
    let cfg_path = dir.path().join("config.json");
    let original = std::fs::read_to_string(&cfg_path).unwrap();
    for (from, to, field) in [
        (
            "\"model_type\": \"llama\"",
            "\"model_type\": \"gpt2\"",
            "model_type",
        ),
        (
            "\"rope_theta\": 10000.0",
            "\"rope_theta\": 10000.0, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 2.0}",
            "rope_type",
        ),
        (
            "\"hidden_act\": \"silu\"",
            "\"hidden_act\": \"gelu\"",
            "hidden_act",
        ),
    ] {
        let edited = original.replacen(from, to, 1);
        assert_ne!(edited, original, "{from}");
        std::fs::write(&cfg_path, edited).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    std::fs::write(&cfg_path, "{not json").unwrap();
    assert!(matches!(load(dir.path()), Err(LlamaError::Json { .. })));
}

#[test]
fn long_prompts_and_foreign_ids_are_typed_errors() {
    let model = tiny();
    let max = model.config().max_position_embeddings;
    let long = vec![3u32; max + 1];
    let err = generate(
        &model,
        std::slice::from_ref(&long),
        &GenerationConfig::greedy(1),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, LlamaError::TooLong { length, .. } if length == max + 1));
    let input = LlamaInput::left_padded(&[long], 0, &Default::default()).unwrap();
    assert!(matches!(
        model.forward(input),
        Err(LlamaError::TooLong { .. })
    ));

    let err = generate(&model, &[vec![1, 48]], &GenerationConfig::greedy(1), |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            LlamaError::TokenOutOfVocab {
                id: 48,
                position: 1,
                vocab_size: 48
            }
        ),
        "{err}"
    );
    assert!(generate(&model, &[vec![]], &GenerationConfig::greedy(1), |_| {}).is_err());
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 2], [1, 2]), &Default::default());
    let mask = Tensor::<B, 2, Int>::ones([1, 3], &Default::default());
    assert!(matches!(
        model.forward(LlamaInput::new(ids).with_attention_mask(mask)),
        Err(LlamaError::InvalidArgument(_))
    ));
}

#[test]
fn generation_stops_on_any_stop_id_and_streams_every_token() {
    let model = tiny();
    let free = generate(
        &model,
        &[vec![1, 2, 3]],
        &GenerationConfig::greedy(8),
        |_| {},
    )
    .unwrap();
    let stop = free[0][2];
    let first = free[0].iter().position(|&t| t == stop).unwrap();
    let mut streamed = Vec::new();
    let cfg = GenerationConfig::greedy(8).with_stop_ids(vec![10_000, stop]);
    let out = generate(&model, &[vec![1, 2, 3]], &cfg, |e| streamed.push(e.token)).unwrap();
    assert_eq!(out[0], free[0][..=first].to_vec());
    assert_eq!(streamed, out[0]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    /// A left-padded row gives the same logits on its real tokens as the row alone, and
    /// batched generation gives the same tokens as one prompt at a time.
    #[test]
    fn left_padding_does_not_change_results(
        a in proptest::collection::vec(1u32..48, 1..12),
        b in proptest::collection::vec(1u32..48, 1..12),
    ) {
        let model = tiny();
        let dev = Default::default();
        let batch = LlamaInput::left_padded(&[a.clone(), b.clone()], 0, &dev).unwrap();
        let width = a.len().max(b.len());
        let got: Vec<f32> = model.forward(batch).unwrap().into_data().to_vec().unwrap();
        for (row, seq) in [&a, &b].into_iter().enumerate() {
            let alone = logits(&model, seq);
            let start = (row * width + width - seq.len()) * 48;
            for (x, y) in got[start..start + seq.len() * 48].iter().zip(&alone) {
                prop_assert!((x - y).abs() < 1e-4);
            }
        }
        let cfg = GenerationConfig::greedy(5);
        let together = generate(&model, &[a.clone(), b.clone()], &cfg, |_| {}).unwrap();
        prop_assert_eq!(&together[0], &generate(&model, &[a], &cfg, |_| {}).unwrap()[0]);
        prop_assert_eq!(&together[1], &generate(&model, &[b], &cfg, |_| {}).unwrap()[0]);
    }

    /// Decoding through the cache one token at a time gives the full-forward logits.
    #[test]
    fn cache_equals_full_forward(ids in proptest::collection::vec(1u32..48, 2..20), split in 1usize..19) {
        let split = split.min(ids.len() - 1);
        let model = tiny();
        let dev = Default::default();
        let full = logits(&model, &ids);
        let mut cache = KvCache::new(2);
        let mut got: Vec<f32> = model
            .forward_cached(LlamaInput::left_padded(&[ids[..split].to_vec()], 0, &dev).unwrap(), &mut cache, false)
            .unwrap().into_data().to_vec().unwrap();
        for &t in &ids[split..] {
            let step: Vec<f32> = model
                .forward_cached(LlamaInput::left_padded(&[vec![t]], 0, &dev).unwrap(), &mut cache, true)
                .unwrap().into_data().to_vec().unwrap();
            got.extend(step);
        }
        prop_assert_eq!(got.len(), full.len());
        for (x, y) in got.iter().zip(&full) {
            prop_assert!((x - y).abs() < 1e-4);
        }
    }
}
