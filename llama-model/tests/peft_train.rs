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
use qlora_core::{train::causal_lm_loss, AdamWConfig, LrSchedule, ScheduleKind};

type AB = Autodiff<NdArray<f32>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures")
}

/// A safetensors file as `name -> (shape, values as f64)` (f32, f64 and i64 tensors).
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
                safetensors::Dtype::F64 => v
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
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
        &LoadOptions {
            load_in_4bit,
            ..Default::default()
        },
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

/// How far our loss and LoRA gradients are from a reference.
struct Errors {
    /// |ours - reference| / |reference| of the loss.
    loss: f64,
    /// The worst per-tensor `max |ours - reference| / max |reference|` of the gradients.
    grad: f64,
    /// The worst per-tensor `||ours - reference|| / ||reference||`.
    grad_l2: f64,
}

/// Loss and LoRA gradients of the whole data as one right-padded batch, compared with the
/// fixture file `reference`.
fn check_loss_and_grads(load_in_4bit: bool, reference: &str) -> Errors {
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
    Errors {
        loss: loss_err,
        grad: worst,
        grad_l2: worst_l2,
    }
}

/// Measured (burn-ndarray f32): loss 6.5e-8 relative; gradients 1.1e-6 of each tensor's
/// largest entry at worst (the issue asks 1e-5). Torch's own f32 gradients are 1.4e-6 from
/// its float64 ones (`lora_f64.safetensors`), and ours are as close to float64 as torch's
/// are (next test): what is left is f32 rounding on both sides. (It was 5.3e-4 while the
/// model used burn's softmax and RmsNorm, whose gradients go through an approximate
/// reciprocal on the CPU backend; see `qlora_core::precise`.)
#[test]
fn lora_loss_and_gradients_match_peft() {
    let e = check_loss_and_grads(false, "lora.safetensors");
    eprintln!(
        "loss rel {:e} grad rel {:e} l2 {:e}",
        e.loss, e.grad, e.grad_l2
    );
    assert!(e.loss < 1e-6, "loss relative error {}", e.loss);
    assert!(e.grad < 5e-6, "gradient relative error {}", e.grad);
    assert!(e.grad_l2 < 5e-6, "gradient relative L2 error {}", e.grad_l2);
}

/// Which side is noisier: ours and torch's f32 gradients against torch in float64. Measured:
/// gradients ours 1.0e-6 worst, torch 1.4e-6; the loss ours 2.3e-8, torch 8.8e-8.
#[test]
fn lora_gradients_are_as_close_to_float64_as_torch() {
    let ours = check_loss_and_grads(false, "lora_f64.safetensors");
    let exact = read(&fixtures().join("peft_train/lora_f64.safetensors"));
    let torch = read(&fixtures().join("peft_train/lora.safetensors"));
    let torch_grad = exact
        .iter()
        .filter(|(k, _)| k.starts_with("grad."))
        .map(|(k, (_, w))| rel_max_err(&torch[k].1, w))
        .fold(0.0f64, f64::max);
    let torch_loss = (torch["loss"].1[0] - exact["loss"].1[0]).abs() / exact["loss"].1[0];
    eprintln!(
        "vs float64: ours loss {:e} grad {:e} l2 {:e}; torch f32 loss {torch_loss:e} grad {torch_grad:e}",
        ours.loss, ours.grad, ours.grad_l2
    );
    assert!(
        torch_grad > 1e-7,
        "the reference must be float64: {torch_grad}"
    );
    assert!(ours.loss < 1e-6, "loss relative error {}", ours.loss);
    assert!(
        ours.grad < 2.0 * torch_grad,
        "ours {} vs torch {torch_grad}",
        ours.grad
    );
}

/// QLoRA: an NF4 base (blocksize 64, double quantization) quantized from the same f32
/// weights by bitsandbytes there and by us here: codes and scales are bit-identical
/// (qlora-core's NF4 tests). Measured: loss 1.3e-7, gradients 1.1e-6 of each tensor's largest
/// entry (the issue asks 1e-4).
#[test]
fn qlora_loss_and_gradients_match_peft_with_bitsandbytes() {
    let e = check_loss_and_grads(true, "qlora.safetensors");
    eprintln!(
        "qlora loss rel {:e} grad rel {:e} l2 {:e}",
        e.loss, e.grad, e.grad_l2
    );
    assert!(e.loss < 1e-6, "loss relative error {}", e.loss);
    assert!(e.grad < 5e-6, "gradient relative error {}", e.grad);
    assert!(e.grad_l2 < 5e-6, "gradient relative L2 error {}", e.grad_l2);
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

/// The adapter after the steps: 99.9% of the entries within 1e-7 of torch's (measured 7.5e-9
/// after step 1, 3.0e-8 after step 3, dense and NF4) and every entry within `max` (measured
/// dense 3.0e-7 after step 1 and 3.3e-7 after step 3: the 1e-6; NF4 2.3e-5 after
/// step 1). Adam's first step moves an entry by about `lr · g / (|g| + eps)`, so an entry
/// whose gradient is within the f32 noise of zero may move differently; a systematic error
/// (clipping, weight decay, schedule, bias correction, loss scaling) would move every entry
/// and fail the 99.9% bound.
fn assert_steps_match(errs: Vec<(u64, Vec<f64>)>, max_err: f64) {
    for (step, err) in errs {
        let n = err.len();
        let (p999, max) = (err[n * 999 / 1000], err[n - 1]);
        assert!(
            p999 < 1e-7,
            "after step {step}: 99.9th percentile |ours - torch| = {p999}"
        );
        assert!(
            max < max_err,
            "after step {step}: max |ours - torch| = {max}"
        );
    }
}

#[test]
fn lora_adapter_after_one_and_three_steps_matches_torch() {
    assert_steps_match(run_training(false, "lora.safetensors", &[1, 3]), 1e-6);
}

#[test]
fn qlora_adapter_after_one_step_matches_torch_with_bitsandbytes() {
    assert_steps_match(run_training(true, "qlora.safetensors", &[1]), 1e-4);
}
