//! Full-parameter training of a tiny LLaMA ([`TrainMode::FullParameter`]) through
//! qlora-core's trainer: every weight tensor moves; in LoRA mode only `A`/`B` move.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use llama_model::{Llama, LlamaConfig, LlamaError, LoadOptions, RandomInit, TrainMode};
use qlora_core::train::{trainable_params, Example, TrainConfig, Trainer};
use qlora_core::{AdamWConfig, LoraConfig, LrSchedule, ScheduleKind};

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

/// Every float parameter of a module by dotted path (host values).
struct All {
    path: Vec<String>,
    out: BTreeMap<String, Vec<f32>>,
}

impl<B: Backend> ModuleVisitor<B> for All {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let v = p.val().into_data().convert::<f32>().to_vec().unwrap();
        self.out.insert(self.path.join("."), v);
    }
}

fn weights<B: Backend, M: Module<B>>(m: &M) -> BTreeMap<String, Vec<f32>> {
    let mut v = All {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    m.visit(&mut v);
    v.out
}

fn one_step(model: Llama<AB>) -> Llama<AB> {
    let data = vec![Example {
        input_ids: vec![3, 7, 11, 5, 3, 7, 11, 5],
        labels: None,
    }];
    let config = TrainConfig {
        steps: 1,
        batch_size: 1,
        grad_accum: 1,
        max_seq_len: 32,
        max_grad_norm: Some(1.0),
        schedule: LrSchedule {
            kind: ScheduleKind::Constant,
            lr: 1e-2,
            warmup_steps: 0,
            total_steps: 1,
        },
        adamw: AdamWConfig::default(),
        seed: 1,
        shuffle: false,
        save_every: None,
        pad_id: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config, None).unwrap();
    trainer.train(&data, |_| {}).unwrap();
    trainer.into_model()
}

fn changed(before: &BTreeMap<String, Vec<f32>>, after: &BTreeMap<String, Vec<f32>>) -> Vec<String> {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn full_parameter_step_moves_every_weight() {
    let model = tiny().set_trainable(TrainMode::FullParameter).unwrap();
    let before = weights(&model);
    // embeddings, 2 x (7 projections + 2 norms), final norm, lm_head.
    assert_eq!(before.len(), 1 + 2 * 9 + 1 + 1);
    assert_eq!(trainable_params(&model).len(), before.len());
    let after = weights(&one_step(model));
    let moved = changed(&before, &after);
    assert_eq!(moved.len(), before.len(), "unchanged: {:?}", {
        let m: Vec<_> = before.keys().filter(|k| !moved.contains(k)).collect();
        m
    });
}

#[test]
fn lora_mode_step_moves_only_the_adapters() {
    let model = tiny()
        .set_trainable(TrainMode::FullParameter)
        .unwrap()
        .set_trainable(TrainMode::LoraOnly)
        .unwrap()
        .with_lora(&LoraConfig::new(2, 4.0), 3)
        .unwrap();
    let before = weights(&model);
    let after = weights(&one_step(model));
    let moved = changed(&before, &after);
    assert!(!moved.is_empty());
    assert!(
        moved
            .iter()
            .all(|k| k.ends_with("lora_a") || k.ends_with("lora_b")),
        "non-adapter weights moved: {moved:?}"
    );
    let bs: Vec<&String> = before.keys().filter(|k| k.ends_with("lora_b")).collect();
    assert_eq!(bs.len(), 2 * 7, "all-linear adapters in 2 layers");
    assert!(bs.iter().all(|k| moved.contains(k)), "{moved:?}");
}

#[test]
fn an_nf4_model_cannot_train_every_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let dense = Llama::<NdArray<f32>>::random(
        &LlamaConfig::tiny(VOCAB),
        &RandomInit::default(),
        &Default::default(),
    )
    .unwrap();
    llama_model::save_pretrained(&dense, dir.path()).unwrap();
    let q = llama_model::load_pretrained::<AB>(
        dir.path(),
        &LoadOptions {
            load_in_4bit: true,
            ..Default::default()
        },
        &Default::default(),
    )
    .unwrap();
    match q.set_trainable(TrainMode::FullParameter) {
        Err(LlamaError::Lora { module, .. }) => {
            assert_eq!(module, "model.layers.0.self_attn.q_proj")
        }
        other => panic!("expected a LoRA error, got {:?}", other.err()),
    }
}
