//! LoRA and QLoRA training at the LLaMA level against peft 0.21.2 + transformers 5.23.0 +
//! torch 2.15.0 (+ bitsandbytes 0.50.2 for the NF4 base): fixtures from
//! `tools/fixtures/peft_train/gen.py` on the tiny `llama2` checkpoint with the
//! `peft/llama2_r8` adapter (A and B non-zero, all seven projections), f32, dropout 0.
//!
//! Checked: the target-token loss of a right-padded batch with prompt labels -100, the
//! gradient of every `lora_A`/`lora_B`, and the adapter after 1 and 3 optimizer steps of our
//! trainer (micro-batches of 2, accumulation 2, clipping at 1.0, AdamW with weight decay 0.01,
//! linear schedule) against the same loop in torch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use llama_model::{load_adapter, load_pretrained, lora_parameters, Llama, LoadOptions};
use qlora_core::train::{collate, CausalLm, Example, StepMetrics, TrainConfig, Trainer};
use qlora_core::{causal_lm_loss, AdamWConfig, LrSchedule, ScheduleKind};

type AB = Autodiff<NdArray<f32>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures")
}

/// A safetensors file as `name -> (shape, values as f64)` (f32 and i64 tensors).
fn read(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let values: Vec<f64> = match v.dtype() {
                safetensors::Dtype::F32 => v
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::I64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                d => panic!("{name}: unexpected dtype {d:?}"),
            };
            (name, (v.shape().to_vec(), values))
        })
        .collect()
}

/// The four training examples of `batch.safetensors`.
fn examples() -> Vec<Example> {
    let b = read(&fixtures().join("peft_train/batch.safetensors"));
    let (shape, ids) = &b["input_ids"];
    let labels = &b["labels"].1;
    let lengths = &b["lengths"].1;
    let width = shape[1];
    (0..shape[0])
        .map(|i| {
            let n = lengths[i] as usize;
            let row = i * width..i * width + n;
            Example {
                input_ids: ids[row.clone()].iter().map(|&v| v as u32).collect(),
                labels: Some(labels[row].iter().map(|&v| v as i64).collect()),
            }
        })
        .collect()
}

/// The tiny llama2 checkpoint (dense, or NF4 with double quantization quantized on load)
/// with the peft fixture adapter, on the autodiff backend.
fn model(load_in_4bit: bool) -> Llama<AB> {
    let base = load_pretrained::<AB>(
        fixtures().join("llama/llama2"),
        &LoadOptions { load_in_4bit },
        &Default::default(),
    )
    .unwrap();
    load_adapter(base, fixtures().join("peft/llama2_r8")).unwrap()
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// max |got - want| / max |want| over one tensor.
fn rel_max_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
    diff / scale
}

/// ||got - want|| / ||want||.
fn rel_l2_err(got: &[f64], want: &[f64]) -> f64 {
    let d: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let n: f64 = want.iter().map(|w| w * w).sum();
    (d / n).sqrt()
}

fn max_abs_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()))
}

/// Loss and LoRA gradients of the whole data as one right-padded batch, compared with the
/// fixture; returns the loss relative error, the worst per-tensor `max |ours - torch| /
/// max |torch|` and the worst per-tensor `||ours - torch|| / ||torch||`.
fn check_loss_and_grads(load_in_4bit: bool, reference: &str) -> (f64, f64, f64) {
    let want = read(&fixtures().join("peft_train").join(reference));
    let model = model(load_in_4bit);
    let data = examples();
    let refs: Vec<&Example> = data.iter().collect();
    let batch = collate::<AB>(&refs, 0, &Default::default());
    let logits = model.logits(batch.input_ids, batch.attention_mask).unwrap();
    let loss = causal_lm_loss(logits, batch.labels, batch.targets);
    let got_loss = values(loss.clone())[0];
    let want_loss = want["loss"].1[0];
    let loss_err = (got_loss - want_loss).abs() / want_loss.abs();
    let grads = loss.backward();
    let params = lora_parameters(&model);
    assert_eq!(params.len(), 28);
    let (mut worst, mut worst_l2) = (0.0f64, 0.0f64);
    for (name, p) in params {
        let g = p
            .grad(&grads)
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let (shape, w) = &want[&format!("grad.{name}")];
        assert_eq!(&g.dims().to_vec(), shape, "{name}");
        let g = values(g);
        assert!(
            w.iter().any(|v| v.abs() > 1e-6),
            "{name}: zero reference grad"
        );
        worst = worst.max(rel_max_err(&g, w));
        worst_l2 = worst_l2.max(rel_l2_err(&g, w));
    }
    (loss_err, worst, worst_l2)
}

/// Measured (2-core CPU, burn-ndarray f32): loss 6.5e-8 relative; gradients 5.3e-4 of each
/// tensor's largest entry at worst. The worst entries are isolated: ours computed with f64
/// elements match torch in f64 to 2e-7 (and torch's f32 gradients are within 1.3e-6 of its
/// f64 ones), so the formulas agree and the gap is f32 rounding in some burn-ndarray op
/// (not yet pinned down), hence 1e-3 rather than 1e-4 on the worst entry.
#[test]
fn lora_loss_and_gradients_match_peft() {
    let (loss_err, grad_err, l2_err) = check_loss_and_grads(false, "lora.safetensors");
    eprintln!("loss rel {loss_err:e} grad rel {grad_err:e} l2 {l2_err:e}");
    assert!(loss_err < 1e-5, "loss relative error {loss_err}");
    assert!(grad_err < 1e-3, "gradient relative error {grad_err}");
    assert!(l2_err < 1e-3, "gradient relative L2 error {l2_err}");
}

/// QLoRA: an NF4 base (blocksize 64, double quantization) quantized from the same f32
/// weights by bitsandbytes there and by us here: codes and scales are bit-identical
/// (qlora-core's NF4 tests) and the loss agrees exactly here. The bounds are the dense
/// case's (measured: loss 0, gradients 3.8e-4 of each tensor's largest entry).
#[test]
fn qlora_loss_and_gradients_match_peft_with_bitsandbytes() {
    let (loss_err, grad_err, l2_err) = check_loss_and_grads(true, "qlora.safetensors");
    eprintln!("qlora loss rel {loss_err:e} grad rel {grad_err:e} l2 {l2_err:e}");
    assert!(loss_err < 1e-4, "loss relative error {loss_err}");
    assert!(grad_err < 1e-3, "gradient relative error {grad_err}");
    assert!(l2_err < 1e-3, "gradient relative L2 error {l2_err}");
}

fn train_config() -> TrainConfig {
    TrainConfig {
        steps: 3,
        batch_size: 2,
        grad_accum: 2,
        max_seq_len: 64,
        max_grad_norm: Some(1.0),
        schedule: LrSchedule {
            kind: ScheduleKind::Linear,
            lr: 1e-3,
            warmup_steps: 0,
            total_steps: 3,
        },
        adamw: AdamWConfig::default(),
        shuffle: false,
        pad_id: 0,
        ..TrainConfig::default()
    }
}

/// |ours - torch| over every LoRA element of `model` against `prefix.<peft name>` of the
/// fixture, sorted ascending.
fn adapter_errors(
    model: &Llama<AB>,
    want: &HashMap<String, (Vec<usize>, Vec<f64>)>,
    prefix: &str,
) -> Vec<f64> {
    let mut errs = Vec::new();
    for (name, p) in lora_parameters(model) {
        let (_, w) = &want[&format!("{prefix}.{name}")];
        errs.extend(values(p.val()).iter().zip(w).map(|(g, w)| (g - w).abs()));
    }
    errs.sort_by(f64::total_cmp);
    errs
}

fn run_training(load_in_4bit: bool, reference: &str, until: &[u64]) -> Vec<(u64, Vec<f64>)> {
    let want = read(&fixtures().join("peft_train").join(reference));
    let data = examples();
    let start: Vec<Vec<f64>> = lora_parameters(&model(load_in_4bit))
        .into_iter()
        .map(|(_, p)| values(p.val()))
        .collect();
    let mut trainer = Trainer::new(model(load_in_4bit), train_config(), None).unwrap();
    let mut metrics: Vec<StepMetrics> = Vec::new();
    let mut errs = Vec::new();
    for &step in until {
        trainer
            .train_until(&data, step, |m| metrics.push(m.clone()))
            .unwrap();
        let err = adapter_errors(trainer.model(), &want, &format!("step{step}"));
        let n = err.len();
        eprintln!(
            "step {step}: max {:e} p99.9 {:e} p99 {:e} median {:e}",
            err[n - 1],
            err[n * 999 / 1000],
            err[n * 99 / 100],
            err[n / 2]
        );
        errs.push((step, err));
        // The step really moved the adapter (by about lr per coordinate).
        let moved = lora_parameters(trainer.model())
            .into_iter()
            .zip(&start)
            .map(|((_, p), s)| max_abs_err(&values(p.val()), s))
            .fold(0.0f64, f64::max);
        assert!(moved > 5e-4, "adapter moved by {moved} only");
    }
    for (i, m) in metrics.iter().enumerate() {
        let (l, n, lr) = (
            want["step_loss"].1[i],
            want["step_grad_norm"].1[i],
            want["step_lr"].1[i],
        );
        eprintln!(
            "step {} loss rel {:e} norm rel {:e}",
            m.step,
            (m.loss - l).abs() / l,
            (m.grad_norm - n).abs() / n
        );
        assert!(
            (m.loss - l).abs() / l < 1e-5,
            "step {}: loss {} vs {l}",
            m.step,
            m.loss
        );
        assert!(n > 1.0, "clipping must bite: grad norm {n}");
        assert!(
            (m.grad_norm - n).abs() / n < 1e-4,
            "step {}: grad norm {} vs {n}",
            m.step,
            m.grad_norm
        );
        assert!(
            (m.lr - lr).abs() < 1e-9,
            "step {}: lr {} vs {lr}",
            m.step,
            m.lr
        );
    }
    errs
}

/// The adapter after the steps: 99.9% of the entries within 1e-5 of torch's (measured
/// 3.7e-8 after step 1, 5.9e-6 after step 3) and every entry within half a learning-rate
/// step (5e-4; measured 3.3e-5 dense, 2.7e-4 NF4). Adam's first step moves an entry by
/// about `lr · g / (|g| + eps)`, so an entry whose gradient is within the f32 noise above of
/// zero may move differently; a systematic error (clipping, weight decay, schedule, bias
/// correction, loss scaling) would move every entry and fail the 99.9% bound.
fn assert_steps_match(errs: Vec<(u64, Vec<f64>)>) {
    for (step, err) in errs {
        let n = err.len();
        let (p999, max) = (err[n * 999 / 1000], err[n - 1]);
        assert!(
            p999 < 1e-5,
            "after step {step}: 99.9th percentile |ours - torch| = {p999}"
        );
        assert!(max < 5e-4, "after step {step}: max |ours - torch| = {max}");
    }
}

#[test]
fn lora_adapter_after_one_and_three_steps_matches_torch() {
    assert_steps_match(run_training(false, "lora.safetensors", &[1, 3]));
}

#[test]
fn qlora_adapter_after_one_step_matches_torch_with_bitsandbytes() {
    assert_steps_match(run_training(true, "qlora.safetensors", &[1]));
}
