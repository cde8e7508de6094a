//! Training on CPU (NdArray, f32): one optimizer step over 4M parameters with each optimizer
//! qlora-core offers, and one LoRA fine-tuning step of a small LLaMA through the trainer with
//! and without gradient checkpointing.
//!
//! - `optim_step_4M/{adamw,paged_adamw_all_paged,paged_adamw_half,adamw8bit}`: 16 LoRA-shaped
//!   matrices of 16x16384 (4,194,304 parameters); throughput in parameters/s.
//!   `paged_adamw_all_paged` has a zero device budget (every state uploaded and downloaded
//!   each step), `paged_adamw_half` keeps half of the state resident. `adamw8bit_host` is the
//!   8-bit step on host slices (`AdamW8bit::step_host`), without the tensor download/upload.
//! - `train_step/{adamw,adamw8bit,adamw_gradient_checkpointing}`: one optimizer step of the
//!   trainer (forward, backward, clipping, update) on a 4-layer LLaMA (hidden 256) with LoRA
//!   r=16 on q,k,v,o,gate,up,down (dense f32 base), batch 2 x 64 tokens;
//!   `train_step/adamw_nf4_base{,_gradient_checkpointing}`: the same over an NF4 (double
//!   quant) base, i.e. QLoRA. Peak memory per configuration: `bench-report --train` (criterion
//!   runs every configuration in one process, so it cannot tell their peaks apart).

use std::hint::black_box;

use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llama_model::{Llama, LlamaConfig, RandomInit};
use qlora_core::train::{CausalLm, Example, TrainConfig, Trainer};
use qlora_core::{
    optim::AdamW8bit, optim::TrainOptimizer, optim::ADAMW_STATE_BYTES_PER_ELEMENT,
    train::CheckpointedAutodiff, train::CheckpointingBackend, AdamWConfig, LoraConfig,
    OptimizerKind, QuantConfig, TargetModule,
};

type B = NdArray<f32>;

const MATRICES: usize = 16;
const ROWS: usize = 16;
const COLS: usize = 16384;

fn fill(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

fn optim_step(c: &mut Criterion) {
    let dev = Default::default();
    let n = ROWS * COLS;
    let t = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [n]), &dev);
    let params: Vec<Tensor<B, 1>> = (0..MATRICES).map(|k| t(fill(n, k as u64, 0.1))).collect();
    let grads: Vec<Tensor<B, 1>> = (0..MATRICES)
        .map(|k| t(fill(n, 100 + k as u64, 1e-3)))
        .collect();
    let total = (MATRICES * n) as u64;
    let mut g = c.benchmark_group("optim_step_4M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(total));
    let half = total * ADAMW_STATE_BYTES_PER_ELEMENT / 2;
    for (name, kind) in [
        ("adamw", OptimizerKind::AdamW),
        (
            "paged_adamw_all_paged",
            OptimizerKind::PagedAdamW {
                device_budget_bytes: 0,
            },
        ),
        (
            "paged_adamw_half",
            OptimizerKind::PagedAdamW {
                device_budget_bytes: half,
            },
        ),
        ("adamw8bit", OptimizerKind::adamw8bit()),
    ] {
        let mut opt = TrainOptimizer::<B>::new(kind, AdamWConfig::default()).expect("optimizer");
        let mut ps = params.clone();
        g.bench_function(name, |b| {
            b.iter(|| {
                for (k, (p, grad)) in ps.iter_mut().zip(&grads).enumerate() {
                    let new = opt.step(&format!("m{k}"), p.clone(), grad.clone(), 1e-4);
                    // Materialize (NdArray is eager, but keep the result observable).
                    *p = black_box(new);
                }
            })
        });
    }
    let mut opt = AdamW8bit::<B>::with_default_min_size(AdamWConfig::default());
    let mut host: Vec<Vec<f32>> = (0..MATRICES).map(|k| fill(n, k as u64, 0.1)).collect();
    let host_grads: Vec<Vec<f32>> = (0..MATRICES)
        .map(|k| fill(n, 100 + k as u64, 1e-3))
        .collect();
    g.bench_function("adamw8bit_host", |b| {
        b.iter(|| {
            for (k, (p, grad)) in host.iter_mut().zip(&host_grads).enumerate() {
                opt.step_host(&format!("m{k}"), p, grad, 1e-4);
            }
            black_box(&host);
        })
    });
    g.finish();
}

fn small_llama() -> LlamaConfig {
    let mut c = LlamaConfig::tiny(512);
    c.hidden_size = 256;
    c.intermediate_size = 688;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.max_position_embeddings = 256;
    c
}

/// A trainer over a random model of [`small_llama`]'s shape, its base dense (f32) or NF4.
fn trainer<AB: CheckpointingBackend>(kind: OptimizerKind, nf4: bool) -> Trainer<AB, Llama<AB>>
where
    Llama<AB>: CausalLm<AB> + burn::module::AutodiffModule<AB>,
{
    let dev = Default::default();
    let lora = LoraConfig::new(16, 32.0).with_targets(TargetModule::ALL.to_vec());
    let init = RandomInit { std: 0.05, seed: 1 };
    let base = if nf4 {
        Llama::<AB>::random_quantized(&small_llama(), &init, QuantConfig::default(), &dev)
    } else {
        Llama::<AB>::random(&small_llama(), &init, &dev)
    };
    let model = base.and_then(|m| m.with_lora(&lora, 7)).expect("model");
    let config = TrainConfig {
        steps: u64::MAX,
        batch_size: 2,
        max_seq_len: 64,
        optimizer: kind,
        gradient_checkpointing: AB::GRADIENT_CHECKPOINTING,
        ..Default::default()
    };
    Trainer::new(model, config, None).expect("trainer")
}

/// One more optimizer step of `t` over `data`.
fn one_step<AB: CheckpointingBackend>(t: &mut Trainer<AB, Llama<AB>>, data: &[Example])
where
    Llama<AB>: CausalLm<AB> + burn::module::AutodiffModule<AB>,
{
    let next = t.step() + 1;
    t.train_until(data, next, |_| {}).expect("step");
}

fn train_step(c: &mut Criterion) {
    let data: Vec<Example> = (0..4u32)
        .map(|k| Example {
            input_ids: (0..64u32).map(|i| (i * 37 + k * 11) % 512).collect(),
            labels: None,
        })
        .collect();
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2 * 64));
    let mut run = |name: &str, t: &mut dyn FnMut()| {
        g.bench_function(name, |b| b.iter(&mut *t));
    };
    let mut a = trainer::<Autodiff<B>>(OptimizerKind::AdamW, false);
    run("adamw", &mut || {
        one_step(&mut a, &data);
    });
    let mut e = trainer::<Autodiff<B>>(OptimizerKind::adamw8bit(), false);
    run("adamw8bit", &mut || {
        one_step(&mut e, &data);
    });
    let mut k = trainer::<CheckpointedAutodiff<B>>(OptimizerKind::AdamW, false);
    run("adamw_gradient_checkpointing", &mut || {
        one_step(&mut k, &data);
    });
    let mut q = trainer::<Autodiff<B>>(OptimizerKind::AdamW, true);
    run("adamw_nf4_base", &mut || {
        one_step(&mut q, &data);
    });
    let mut qk = trainer::<CheckpointedAutodiff<B>>(OptimizerKind::AdamW, true);
    run("adamw_nf4_base_gradient_checkpointing", &mut || {
        one_step(&mut qk, &data);
    });
    g.finish();
}

criterion_group!(benches, optim_step, train_step);
criterion_main!(benches);
