//! Fine-tuning a tiny LLaMA with LoRA through qlora-core's trainer: the loss goes down, only
//! the adapters move.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use llama_model::{Llama, LlamaConfig, LlamaError, RandomInit};
use qlora_core::train::{CausalLm, Example, TrainConfig, Trainer};
use qlora_core::{AdamWConfig, LoraConfig, LrSchedule, ScheduleKind, TargetModule};

type AB = Autodiff<NdArray<f32>>;

const VOCAB: usize = 16;

fn tiny() -> Llama<AB> {
    Llama::<AB>::random(
        &LlamaConfig::tiny(VOCAB),
        &RandomInit::default(),
        &Default::default(),
    )
    .unwrap()
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

#[test]
fn lora_fine_tuning_lowers_the_loss_and_keeps_the_base() {
    let cfg = LoraConfig::new(4, 8.0).with_targets(vec![TargetModule::QProj, TargetModule::VProj]);
    let model = tiny().with_lora(&cfg, 7).unwrap();
    for l in &model.layers {
        assert!(l.self_attn.q_proj.adapter().is_some());
        assert!(l.self_attn.v_proj.adapter().is_some());
        assert!(l.self_attn.k_proj.adapter().is_none());
        assert!(l.mlp.down_proj.adapter().is_none());
    }
    let q_before = values(model.layers[0].self_attn.q_proj.base.weight());
    let v_before = values(model.layers[1].self_attn.v_proj.base.weight());
    let emb_before = values(model.embed_tokens.weight.val());

    // A tiny repeated sequence to memorise.
    let seq: Vec<u32> = [3u32, 7, 11, 5].repeat(3);
    let data = vec![
        Example {
            input_ids: seq,
            labels: None,
        };
        2
    ];
    let steps = 10;
    let config = TrainConfig {
        steps,
        batch_size: 2,
        grad_accum: 1,
        max_seq_len: 32,
        max_grad_norm: Some(1.0),
        schedule: LrSchedule {
            kind: ScheduleKind::Constant,
            lr: 5e-2,
            warmup_steps: 0,
            total_steps: steps,
        },
        adamw: AdamWConfig::default(),
        seed: 1,
        shuffle: false,
        save_every: None,
        pad_id: 0,
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, config, None).unwrap();
    let mut losses = Vec::new();
    trainer.train(&data, |m| losses.push(m.loss)).unwrap();
    assert_eq!(losses.len(), steps as usize);
    assert!(losses.iter().all(|l| l.is_finite()));
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < 0.8 * first, "loss did not decrease: {losses:?}");
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss is not decreasing step by step: {losses:?}"
    );

    // Adapters moved (B left zero), the frozen weights did not.
    let model = trainer.into_model();
    let b = values(
        model.layers[0]
            .self_attn
            .q_proj
            .adapter()
            .unwrap()
            .lora_b
            .val(),
    );
    assert!(b.iter().any(|v| *v != 0.0));
    assert_eq!(
        values(model.layers[0].self_attn.q_proj.base.weight()),
        q_before
    );
    assert_eq!(
        values(model.layers[1].self_attn.v_proj.base.weight()),
        v_before
    );
    assert_eq!(values(model.embed_tokens.weight.val()), emb_before);
}

#[test]
fn forward_errors_become_strings_with_context() {
    let model = tiny();
    let dev = Default::default();
    let ids = Tensor::<AB, 2, Int>::from_data(
        TensorData::new(vec![1i64, VOCAB as i64 + 3], [1, 2]),
        &dev,
    );
    let mask = Tensor::<AB, 2, Int>::ones([1, 2], &dev);
    let err = model.logits(ids, mask).unwrap_err();
    assert!(
        err.contains("[1, 2]") && err.contains("outside the vocabulary"),
        "{err}"
    );
}

#[test]
fn with_lora_rejects_an_invalid_config_naming_the_module() {
    let cfg = LoraConfig::new(0, 8.0).with_targets(vec![TargetModule::VProj]);
    match tiny().with_lora(&cfg, 0) {
        Err(LlamaError::Lora { module, .. }) => {
            assert_eq!(module, "model.layers.0.self_attn.v_proj")
        }
        other => panic!("expected a LoRA error, got {:?}", other.err()),
    }
}
