//! Trainer tests on a toy causal LM made of `LoraLinear` layers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::module::embedding;
use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::dense::{TestAutodiffBackend, TestBackend};
use crate::{AdamWConfig, LoraConfig, LoraLinear, LrSchedule, ScheduleKind};

type AB = TestAutodiffBackend;

/// The backend RNG (dropout) is process-global on NdArray: trainers in parallel test threads
/// would re-seed it under each other, so the trainer tests run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
const V: usize = 11;
const H: usize = 8;

#[derive(Module, Debug)]
struct Toy<B: Backend> {
    emb: Param<Tensor<B, 2>>,
    l1: LoraLinear<B>,
    head: LoraLinear<B>,
}

impl<B: Backend> CausalLm<B> for Toy<B> {
    fn logits(
        &self,
        input_ids: Tensor<B, 2, Int>,
        _attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>, String> {
        let h = embedding(self.emb.val(), input_ids);
        let h = self.l1.forward(h).tanh();
        Ok(self.head.forward(h))
    }
}

fn det(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32 + 1.0) * k).sin()).collect()
}

fn toy(init_seed: u64, dropout: f64, emb_scale: f32) -> Toy<AB> {
    toy_on::<AB>(init_seed, dropout, emb_scale)
}

fn toy_on<B: Backend>(init_seed: u64, dropout: f64, emb_scale: f32) -> Toy<B> {
    let dev = Default::default();
    let t = |v: Vec<f32>, s: [usize; 2]| Tensor::<B, 2>::from_data(TensorData::new(v, s), &dev);
    let emb: Vec<f32> = det(V * H, 0.77)
        .into_iter()
        .map(|x| x * emb_scale)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(init_seed);
    let cfg = LoraConfig::new(4, 8.0).with_dropout(dropout);
    let l1 = LoraLinear::dense(t(det(H * H, 0.31), [H, H]), None)
        .with_lora(&cfg, &mut rng)
        .unwrap();
    let head = LoraLinear::dense(t(det(V * H, 0.53), [V, H]), None)
        .with_lora(&cfg, &mut rng)
        .unwrap();
    Toy {
        emb: Param::initialized(ParamId::new(), t(emb, [V, H]).set_require_grad(false)),
        l1,
        head,
    }
}

fn data() -> Vec<Example> {
    (0..7)
        .map(|i| {
            let len = 3 + i % 4;
            let ids: Vec<u32> = (0..len).map(|j| ((i * 3 + j * 5) % V) as u32).collect();
            // Prompt masking on odd examples: the first two tokens carry no loss.
            let labels = (i % 2 == 1).then(|| {
                ids.iter()
                    .enumerate()
                    .map(|(j, &t)| if j < 2 { IGNORE_INDEX } else { t as i64 })
                    .collect()
            });
            Example {
                input_ids: ids,
                labels,
            }
        })
        .collect()
}

fn config(steps: u64, batch: usize, accum: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: batch,
        grad_accum: accum,
        max_seq_len: 16,
        max_grad_norm: Some(1.0),
        schedule: LrSchedule {
            kind: ScheduleKind::Cosine,
            lr: 5e-2,
            warmup_steps: 2,
            total_steps: steps,
        },
        adamw: AdamWConfig::default(),
        seed: 42,
        shuffle: true,
        save_every: Some(2),
        pad_id: 0,
        ..Default::default()
    }
}

fn no_save(mut c: TrainConfig) -> TrainConfig {
    c.save_every = None;
    c
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qlora-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn loss_decreases_and_only_lora_changes() {
    let _guard = serial();
    let mut t = Trainer::<AB, _>::new(toy(1, 0.0, 1.0), no_save(config(30, 4, 1)), None).unwrap();
    let before = t.adapter_tensors();
    let mut losses = Vec::new();
    t.train(&data(), |m| losses.push(m.loss)).unwrap();
    assert_eq!(losses.len(), 30);
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[27..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");
    let after = t.adapter_tensors();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert_eq!(after.len(), 4);
    assert!(after.contains_key("l1.lora.lora_a") && after.contains_key("head.lora.lora_b"));
    assert_ne!(before["head.lora.lora_b"], after["head.lora.lora_b"]);
    // The frozen base did not move.
    let m = t.into_model();
    let w: Vec<f32> = m.l1.base.weight().into_data().to_vec().unwrap();
    assert_eq!(w, det(H * H, 0.31));
}

#[test]
fn accumulation_equals_a_bigger_batch() {
    let _guard = serial();
    let mut c = no_save(config(3, 4, 1));
    c.shuffle = false;
    let d = data();
    let mut a = Trainer::<AB, _>::new(toy(3, 0.0, 1.0), c.clone(), None).unwrap();
    a.train(&d, |_| {}).unwrap();
    c.batch_size = 2;
    c.grad_accum = 2;
    let mut b = Trainer::<AB, _>::new(toy(3, 0.0, 1.0), c, None).unwrap();
    b.train(&d, |_| {}).unwrap();
    assert_same_adapters(&a, &b);
}

/// The two trainers' adapter tensors agree element-wise within 1e-5 (the same gradients,
/// summed in another order).
fn assert_same_adapters(a: &Trainer<AB, Toy<AB>>, b: &Trainer<AB, Toy<AB>>) {
    for ((k, x), (_, y)) in a.adapter_tensors().iter().zip(b.adapter_tensors().iter()) {
        for (p, q) in x.0.iter().zip(&y.0) {
            assert!((p - q).abs() < 1e-5, "{k}: {p} vs {q}");
        }
    }
}

#[test]
fn killed_and_resumed_run_is_byte_identical() {
    killed_and_resumed(config(7, 3, 2), "plain");
}

#[test]
fn killed_and_resumed_length_grouped_run_is_byte_identical() {
    let mut c = config(7, 3, 2);
    c.group_by_length = true;
    killed_and_resumed(c, "grouped");
}

/// Trains `c` (7 steps, checkpoints every 2) uninterrupted, and again "killed" after step 5
/// and resumed from its step-4 checkpoint; the two must end bit-identical.
fn killed_and_resumed(c: TrainConfig, name: &str) {
    let _guard = serial();
    let d = data();
    let full_dir = tmp_dir(&format!("full-{name}"));
    let mut full = Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), c.clone(), full_dir.clone()).unwrap();
    full.train(&d, |_| {}).unwrap();
    let want = full.adapter_tensors();

    let dir = tmp_dir(&format!("killed-{name}"));
    let mut first = Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), c.clone(), dir.clone()).unwrap();
    // "Killed" after step 5: the last checkpoint is step 4, step 5 is lost.
    first.train_until(&d, 5, |_| {}).unwrap();
    drop(first);
    // A fresh process builds the model with another init; resume must overwrite it.
    let mut resumed = Trainer::<AB, _>::resume(toy(99, 0.1, 1.0), c, dir.clone()).unwrap();
    assert_eq!(resumed.step(), 4);
    resumed.train(&d, |_| {}).unwrap();
    let got = resumed.adapter_tensors();
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        let g = &got[k];
        let (a, b): (Vec<u32>, Vec<u32>) = (
            v.0.iter().map(|x| x.to_bits()).collect(),
            g.0.iter().map(|x| x.to_bits()).collect(),
        );
        assert_eq!(a, b, "{k} differs after resume");
    }
    // metrics.jsonl has exactly one line per step, no duplicates from the lost step.
    let lines: Vec<String> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 7);
    let v: serde_json::Value = serde_json::from_str(&lines[6]).unwrap();
    assert_eq!(v["step"], 7);
    for key in ["loss", "lr", "grad_norm", "tokens_per_s"] {
        assert!(v[key].is_number(), "{key}");
    }
    // Checkpoints are complete directories; no temporary leftovers.
    let names: BTreeMap<String, ()> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| (e.unwrap().file_name().to_string_lossy().into_owned(), ()))
        .collect();
    assert!(names.contains_key("checkpoint-00000006"));
    assert!(names.keys().all(|n| !n.contains(".tmp")), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&full_dir).unwrap();
}

#[test]
fn corrupt_checkpoint_is_a_clear_error() {
    let _guard = serial();
    let d = data();
    let dir = tmp_dir("corrupt");
    let mut t = Trainer::<AB, _>::resume(toy(5, 0.0, 1.0), config(2, 2, 1), dir.clone()).unwrap();
    t.train(&d, |_| {}).unwrap();
    let ck = dir.join("checkpoint-00000002/adapter.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    let e = Trainer::<AB, _>::resume(toy(5, 0.0, 1.0), config(2, 2, 1), dir.clone()).unwrap_err();
    assert!(e.to_string().contains("adapter.safetensors"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_clear_errors() {
    let _guard = serial();
    let mut t = Trainer::<AB, _>::new(toy(5, 0.0, 1.0), no_save(config(2, 2, 1)), None).unwrap();
    let masked = vec![Example {
        input_ids: vec![1, 2, 3],
        labels: Some(vec![-100, -100, -100]),
    }];
    assert!(matches!(
        t.train(&masked, |_| {}),
        Err(TrainError::AllLabelsMasked { step: 0 })
    ));
    let long = vec![Example {
        input_ids: vec![1; 17],
        labels: None,
    }];
    let e = t.train(&long, |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("example 0") && e.to_string().contains("16"),
        "{e}"
    );
    assert!(matches!(
        t.train(&[], |_| {}),
        Err(TrainError::EmptyDataset)
    ));
    let mismatched = vec![Example {
        input_ids: vec![1, 2],
        labels: Some(vec![1]),
    }];
    assert!(t.train(&mismatched, |_| {}).is_err());
    let mut unshuffled = no_save(config(2, 2, 1));
    (unshuffled.shuffle, unshuffled.group_by_length) = (false, true);
    let e = Trainer::<AB, _>::new(toy(5, 0.0, 1.0), unshuffled, None).unwrap_err();
    assert!(e.to_string().contains("group_by_length"), "{e}");
    // NaN in the frozen embedding: the loss is not finite, training stops before updating.
    let mut t =
        Trainer::<AB, _>::new(toy(5, 0.0, f32::NAN), no_save(config(2, 2, 1)), None).unwrap();
    let before = t.adapter_tensors();
    assert!(matches!(
        t.train(&data(), |_| {}),
        Err(TrainError::NonFiniteLoss { step: 0, .. })
    ));
    assert_eq!(t.adapter_tensors(), before);
}

#[test]
fn loss_matches_hand_computation() {
    let dev = Default::default();
    // logits for 1 sequence of 3 positions over 2 classes; labels [x, 1, 0].
    let logits = Tensor::<TestBackend, 3>::from_data(
        TensorData::new(vec![0.0f32, 1.0, 2.0, 0.0, 5.0, 5.0], [1, 3, 2]),
        &dev,
    );
    let labels =
        Tensor::<TestBackend, 2, Int>::from_data(TensorData::new(vec![7i64, 1, 0], [1, 3]), &dev);
    // position 0 predicts 1: -log softmax([0,1])[1]; position 1 predicts 0: -log softmax([2,0])[0].
    let l0 = -(1.0f64 - (1.0f64.exp() + 1.0).ln());
    let l1 = -(2.0f64 - (2.0f64.exp() + 1.0).ln());
    let got: f32 = causal_lm_loss(logits, labels, 2).into_scalar();
    assert!((got as f64 - (l0 + l1) / 2.0).abs() < 1e-6);
}

fn bits(t: &BTreeMap<String, crate::checkpoint::HostTensor>) -> BTreeMap<String, Vec<u32>> {
    t.iter()
        .map(|(k, v)| (k.clone(), v.0.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

#[test]
fn paged_adamw_trains_bit_identically_to_adamw() {
    let _guard = serial();
    let d = data();
    let c = no_save(config(6, 3, 2));
    let mut plain = Trainer::<AB, _>::new(toy(8, 0.1, 1.0), c.clone(), None).unwrap();
    let mut want_losses = Vec::new();
    plain.train(&d, |m| want_losses.push(m.loss)).unwrap();
    // 4 LoRA matrices of 32, 32, 32 and 44 elements (8 bytes of state each): budgets that
    // keep none, some and all of the state on the device.
    for budget in [0u64, 300, 600, 10_000] {
        let mut c = c.clone();
        c.optimizer = crate::OptimizerKind::PagedAdamW {
            device_budget_bytes: budget,
        };
        let mut paged = Trainer::<AB, _>::new(toy(8, 0.1, 1.0), c, None).unwrap();
        let mut losses = Vec::new();
        paged.train(&d, |m| losses.push(m.loss)).unwrap();
        assert_eq!(losses, want_losses, "budget {budget}");
        assert_eq!(
            bits(&paged.adapter_tensors()),
            bits(&plain.adapter_tensors()),
            "budget {budget}"
        );
    }
}

#[test]
fn gradient_checkpointing_gives_identical_training() {
    let _guard = serial();
    let d = data();
    let c = no_save(config(4, 3, 2));
    let mut plain = Trainer::<AB, _>::new(toy(6, 0.1, 1.0), c.clone(), None).unwrap();
    let mut want = Vec::new();
    plain
        .train(&d, |m| want.push((m.loss, m.grad_norm)))
        .unwrap();
    let gc = TrainConfig {
        gradient_checkpointing: true,
        ..c.clone()
    };
    type Ckpt = crate::train::CheckpointedAutodiff<TestBackend>;
    let mut ckpt = Trainer::<Ckpt, _>::new(toy_on::<Ckpt>(6, 0.1, 1.0), gc.clone(), None).unwrap();
    let mut got = Vec::new();
    ckpt.train(&d, |m| got.push((m.loss, m.grad_norm))).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        bits(&ckpt.adapter_tensors()),
        bits(&plain.adapter_tensors())
    );
    // The flag must agree with the backend type, both ways.
    let e = Trainer::<AB, _>::new(toy(6, 0.1, 1.0), gc, None).unwrap_err();
    assert!(e.to_string().contains("gradient_checkpointing"), "{e}");
    assert!(Trainer::<Ckpt, _>::new(toy_on::<Ckpt>(6, 0.1, 1.0), c, None).is_err());
}

#[test]
fn paged_checkpoint_resumes_exactly_and_is_interchangeable_with_adamw() {
    let _guard = serial();
    let d = data();
    let paged = |mut c: TrainConfig| {
        c.optimizer = crate::OptimizerKind::PagedAdamW {
            device_budget_bytes: 300,
        };
        c
    };
    let full_dir = tmp_dir("paged-full");
    let mut full =
        Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), paged(config(6, 3, 2)), full_dir.clone())
            .unwrap();
    full.train(&d, |_| {}).unwrap();
    let dir = tmp_dir("paged-killed");
    let mut first =
        Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), paged(config(6, 3, 2)), dir.clone()).unwrap();
    first.train_until(&d, 3, |_| {}).unwrap();
    drop(first);
    // Resume the paged run's checkpoint with plain AdamW: same state layout, same numbers.
    let mut resumed =
        Trainer::<AB, _>::resume(toy(99, 0.1, 1.0), config(6, 3, 2), dir.clone()).unwrap();
    assert_eq!(resumed.step(), 2);
    resumed.train(&d, |_| {}).unwrap();
    assert_eq!(
        bits(&resumed.adapter_tensors()),
        bits(&full.adapter_tensors())
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&full_dir).unwrap();
}

#[test]
fn adamw8bit_trains_and_resumes_exactly() {
    let _guard = serial();
    let d = data();
    // min_8bit_size 40: the 44-element head.lora_b gets 8-bit state, the 32-element
    // matrices keep f32 state (bitsandbytes' rule, with a threshold the toy can reach).
    let eight = |mut c: TrainConfig| {
        c.optimizer = crate::OptimizerKind::AdamW8bit { min_8bit_size: 40 };
        c
    };
    let mut losses = Vec::new();
    let mut t =
        Trainer::<AB, _>::new(toy(1, 0.0, 1.0), no_save(eight(config(30, 4, 1))), None).unwrap();
    t.train(&d, |m| losses.push(m.loss)).unwrap();
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[27..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");

    let full_dir = tmp_dir("8bit-full");
    let mut full =
        Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), eight(config(6, 3, 2)), full_dir.clone())
            .unwrap();
    full.train(&d, |_| {}).unwrap();
    let dir = tmp_dir("8bit-killed");
    let mut first =
        Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), eight(config(6, 3, 2)), dir.clone()).unwrap();
    first.train_until(&d, 3, |_| {}).unwrap();
    drop(first);
    // The checkpoint holds u8 codes for the 8-bit parameter.
    let opt =
        crate::checkpoint::load_tensors(&dir.join("checkpoint-00000002/optimizer.safetensors"))
            .unwrap();
    assert_eq!(
        opt["head.lora.lora_b.state1"].dtype,
        burn::tensor::DType::U8
    );
    assert!(opt.contains_key("l1.lora.lora_a.exp_avg"));
    let mut resumed =
        Trainer::<AB, _>::resume(toy(99, 0.1, 1.0), eight(config(6, 3, 2)), dir.clone()).unwrap();
    assert_eq!(resumed.step(), 2);
    resumed.train(&d, |_| {}).unwrap();
    assert_eq!(
        bits(&resumed.adapter_tensors()),
        bits(&full.adapter_tensors())
    );
    // A 32-bit optimizer cannot resume 8-bit state: a clear error naming the tensor.
    let e = Trainer::<AB, _>::resume(toy(5, 0.1, 1.0), config(6, 3, 2), dir.clone()).unwrap_err();
    assert!(e.to_string().contains("head.lora.lora_b.exp_avg"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&full_dir).unwrap();
}

/// Sequences of `lens` lengths (token ids all 1, every token a target).
fn of_lengths(lens: &[usize]) -> Vec<Example> {
    lens.iter()
        .map(|&n| Example {
            input_ids: vec![1; n],
            labels: None,
        })
        .collect()
}

/// Tokens a collated batch of these examples holds, padding included.
fn padded_tokens(data: &[Example], batches: &[Vec<usize>]) -> usize {
    batches
        .iter()
        .map(|b| {
            b.len()
                * b.iter()
                    .map(|&i| data[i].input_ids.len())
                    .max()
                    .unwrap_or(0)
        })
        .sum()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn length_grouped_epoch_is_a_partition_into_full_batches(
        lens in proptest::collection::vec(1usize..400, 1..700),
        batch in 1usize..12,
        seed in 0u64..1000,
    ) {
        let d = of_lengths(&lens);
        let batches = super::trainer::length_grouped_batches(&d, batch, seed);
        proptest::prop_assert_eq!(batches.len(), lens.len().div_ceil(batch));
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        proptest::prop_assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        // Every batch is full but at most one (the tail of the last mega-batch).
        let short = batches.iter().filter(|b| b.len() < batch).count();
        proptest::prop_assert!(short <= 1);
        proptest::prop_assert!(batches.iter().all(|b| !b.is_empty()));
        proptest::prop_assert_eq!(&batches, &super::trainer::length_grouped_batches(&d, batch, seed));
    }
}

#[test]
fn length_grouping_cuts_padding_of_a_mixed_dataset() {
    // The demo's mix: one long example (letters, ~330 tokens) in twelve, the rest ~110.
    let lens: Vec<usize> = (0..5000)
        .map(|i| {
            if i % 12 == 0 {
                300 + i % 60
            } else {
                90 + i % 40
            }
        })
        .collect();
    let d = of_lengths(&lens);
    let real: usize = lens.iter().sum();
    let grouped = super::trainer::length_grouped_batches(&d, 8, 7);
    // The plain shuffled order, cut into batches of 8.
    let mut c = no_save(config(1, 8, 1));
    c.seed = 7;
    let plain = Trainer::<AB, _>::new(toy(1, 0.0, 1.0), c, None).unwrap();
    let plain: Vec<Vec<usize>> = (0..lens.len().div_ceil(8) as u64)
        .map(|m| plain.micro_batch_indices(&d, m))
        .collect();
    let (g, p) = (padded_tokens(&d, &grouped), padded_tokens(&d, &plain));
    // Sorting within mega-batches of 400 leaves almost no padding.
    assert!(
        (g as f64) < 1.05 * real as f64,
        "grouped {g} vs real {real}"
    );
    assert!((p as f64) > 1.4 * real as f64, "plain {p} vs real {real}");
    // Another seed, another order; the batches are not in length order.
    assert_ne!(grouped, super::trainer::length_grouped_batches(&d, 8, 8));
    let firsts: Vec<usize> = grouped.iter().map(|b| lens[b[0]]).collect();
    assert!(firsts.windows(2).any(|w| w[0] < w[1]) && firsts.windows(2).any(|w| w[0] > w[1]));
}

#[test]
fn length_grouped_trainer_takes_the_grouped_batches() {
    let _guard = serial();
    let d = data();
    let mut c = no_save(config(1, 3, 1));
    c.group_by_length = true;
    let t = Trainer::<AB, _>::new(toy(1, 0.0, 1.0), c, None).unwrap();
    // 7 examples in batches of 3: 3 micro-batches per epoch, epoch 1 starts at micro 3.
    let epoch0 = super::trainer::length_grouped_batches(&d, 3, 42);
    let got: Vec<Vec<usize>> = (0..3).map(|m| t.micro_batch_indices(&d, m)).collect();
    assert_eq!(got, epoch0);
    let epoch1: Vec<Vec<usize>> = (3..6).map(|m| t.micro_batch_indices(&d, m)).collect();
    let mut all: Vec<usize> = epoch1.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..7).collect::<Vec<_>>());
}

#[test]
fn token_budget_split_equals_the_unsplit_step() {
    let _guard = serial();
    let d = data();
    // One step holds the whole dataset (lengths 3..6); a budget of 10 tokens cuts it into
    // micro-batches of one to three sequences.
    let mut c = no_save(config(4, 7, 1));
    c.shuffle = false;
    let mut whole = Trainer::<AB, _>::new(toy(3, 0.0, 1.0), c.clone(), None).unwrap();
    let mut want = Vec::new();
    whole.train(&d, |m| want.push(m.loss)).unwrap();
    c.micro_batch_tokens = Some(10);
    let split = super::trainer::token_budget_batches(&d, (0..7).collect(), 10);
    assert!(split.len() >= 3, "{split:?}");
    let mut cut = Trainer::<AB, _>::new(toy(3, 0.0, 1.0), c, None).unwrap();
    let mut got = Vec::new();
    cut.train(&d, |m| got.push(m.loss)).unwrap();
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() < 1e-5, "loss {a} vs {b}");
    }
    assert_same_adapters(&whole, &cut);
}

#[test]
fn killed_and_resumed_token_budget_run_is_byte_identical() {
    let mut c = config(7, 3, 2);
    c.micro_batch_tokens = Some(9);
    killed_and_resumed(c, "budget");
}

#[test]
fn zero_token_budget_is_refused_naming_the_field() {
    let mut c = no_save(config(1, 2, 1));
    c.micro_batch_tokens = Some(0);
    let e = Trainer::<AB, _>::new(toy(1, 0.0, 1.0), c, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("micro_batch_tokens"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
    #[test]
    fn token_budget_batches_partition_the_step_within_the_budget(
        lens in proptest::collection::vec(1usize..500, 1..40),
        budget in 1usize..2000,
    ) {
        let d = of_lengths(&lens);
        let ids: Vec<usize> = (0..lens.len()).rev().collect();
        let batches = super::trainer::token_budget_batches(&d, ids.clone(), budget);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        proptest::prop_assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for b in &batches {
            proptest::prop_assert!(!b.is_empty());
            let longest = b.iter().map(|&i| lens[i]).max().unwrap_or(0);
            // Within the budget, unless a single sequence is longer than it.
            proptest::prop_assert!(b.len() * longest <= budget || b.len() == 1);
        }
        // Longest first across the whole step, and never more padding than one batch.
        let order: Vec<usize> = batches.iter().flatten().map(|&i| lens[i]).collect();
        proptest::prop_assert!(order.windows(2).all(|w| w[0] >= w[1]));
        let one = vec![ids.clone()];
        proptest::prop_assert!(padded_tokens(&d, &batches) <= padded_tokens(&d, &one));
        proptest::prop_assert_eq!(&batches, &super::trainer::token_budget_batches(&d, ids, budget));
    }
}
