//! The training loop: micro-batches, gradient accumulation, clipping, the chosen optimizer
//! ([`OptimizerKind`]) with a schedule,
//! a `metrics.jsonl` stream, atomic checkpoints and exact resume.
//!
//! Determinism: the data order of epoch `e` is a permutation drawn from `seed` and `e`; the
//! dropout RNG is re-seeded from `seed`, the optimizer step and the micro-batch before each
//! forward. The whole RNG state is therefore the step counter, and a run resumed from a
//! checkpoint continues exactly as the uninterrupted run would. The backend RNG is global to
//! the process on some backends (NdArray), so run one trainer per process for reproducibility.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::batch::{collate, Example};
use super::checkpointing::CheckpointingBackend;
use super::error::TrainError;
use super::loss::causal_lm_loss_sum;
use super::params::{
    host_to_tensor, replace_trainable, trainable_grads, trainable_host_tensors, trainable_params,
};
use crate::checkpoint::{
    load_f32_safetensors, load_tensors, remove_stale_temporaries, save_f32_safetensors,
    save_tensors, sync_parent, write_atomic, CheckpointError, HostTensor,
};
use crate::optim::{AdamWConfig, OptimizerKind, TrainOptimizer};
use crate::schedule::{LrSchedule, ScheduleKind};

/// A causal language model the trainer can fine-tune.
pub trait CausalLm<B: Backend>: Module<B> {
    /// Logits `[batch, seq, vocab]` for `input_ids` `[batch, seq]` with an HF-style
    /// `attention_mask` `[batch, seq]` (1 = token, 0 = padding).
    fn logits(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>, String>;
}

/// Trainer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer steps to run.
    pub steps: u64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Longest allowed sequence (longer examples are an error).
    pub max_seq_len: usize,
    /// Clip the global gradient norm to this value (as `torch.nn.utils.clip_grad_norm_`).
    pub max_grad_norm: Option<f64>,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// AdamW hyper-parameters.
    pub adamw: AdamWConfig,
    /// Seed of data order and dropout.
    pub seed: u64,
    /// Shuffle the data each epoch.
    pub shuffle: bool,
    /// Write a checkpoint every N optimizer steps.
    pub save_every: Option<u64>,
    /// Padding token id.
    pub pad_id: u32,
    /// The optimizer (AdamW, paged AdamW or 8-bit AdamW); AdamW when absent from JSON.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Recompute memory-bound activations in the backward pass instead of keeping them. burn
    /// chooses this through the autodiff backend type, so it must match the trainer's backend
    /// (see [`CheckpointingBackend`] and [`with_autodiff`](super::with_autodiff)); false when
    /// absent from JSON.
    #[serde(default)]
    pub gradient_checkpointing: bool,
    /// Put sequences of similar length into the same micro-batch (transformers'
    /// `group_by_length`), so that short examples are not padded to the longest one of a
    /// mixed batch. Each epoch is still a seeded permutation: it is cut into mega-batches of
    /// [`LENGTH_GROUP_BATCHES`] micro-batches, each sorted by length (longest first), cut into
    /// micro-batches, and the micro-batches of the epoch are shuffled. An epoch is then
    /// `ceil(n / batch_size)` micro-batches, the last one partial. Only with `shuffle`; false
    /// when absent from JSON.
    #[serde(default)]
    pub group_by_length: bool,
    /// Split each optimizer step's sequences by length into micro-batches of at most this
    /// many tokens, padding included (sequences × the longest of them; a longer sequence goes
    /// alone): see [`token_budget_batches`]. The loss is normalized by the target tokens of the
    /// whole step, so the gradient is that of the unsplit step (up to the order of float
    /// additions, and other dropout masks); what goes is the padding that short sequences
    /// carry in a batch with a long one. Unlike `group_by_length` it leaves the data order and
    /// the mix of every step alone. `None` (absent from JSON): the step's `grad_accum`
    /// micro-batches of `batch_size` as they come.
    #[serde(default)]
    pub micro_batch_tokens: Option<usize>,
}

/// Micro-batches per mega-batch of [`TrainConfig::group_by_length`] (transformers'
/// `LengthGroupedSampler` uses 50).
pub const LENGTH_GROUP_BATCHES: usize = 50;

impl Default for TrainConfig {
    /// One step of batch 1 at a constant 2e-4 (the QLoRA paper's rate for small models),
    /// torch's AdamW defaults, gradient clipping at 1.0 (transformers' default), sequences up
    /// to 512 tokens, seed 0, shuffling, no checkpoints, AdamW, no gradient checkpointing, no
    /// length grouping, no token budget.
    ///
    /// ```
    /// let c = qlora_core::TrainConfig { steps: 10, ..Default::default() };
    /// assert_eq!(c.optimizer, qlora_core::OptimizerKind::AdamW);
    /// assert!(!c.gradient_checkpointing);
    /// assert!(!c.group_by_length);
    /// ```
    fn default() -> Self {
        Self {
            steps: 1,
            batch_size: 1,
            grad_accum: 1,
            max_seq_len: 512,
            max_grad_norm: Some(1.0),
            schedule: LrSchedule {
                kind: ScheduleKind::Constant,
                lr: 2e-4,
                warmup_steps: 0,
                total_steps: 1,
            },
            adamw: AdamWConfig::default(),
            seed: 0,
            shuffle: true,
            save_every: None,
            pad_id: 0,
            optimizer: OptimizerKind::AdamW,
            gradient_checkpointing: false,
            group_by_length: false,
            micro_batch_tokens: None,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<(), TrainError> {
        let bad = |field, reason: &str| {
            Err(TrainError::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.grad_accum == 0 {
            return bad("grad_accum", "must be at least 1");
        }
        if self.save_every == Some(0) {
            return bad("save_every", "must be at least 1");
        }
        if self.micro_batch_tokens == Some(0) {
            return bad("micro_batch_tokens", "must be at least 1");
        }
        if self.group_by_length && !self.shuffle {
            return bad(
                "group_by_length",
                "needs shuffle (grouping reorders the data; without shuffling the file order is kept)",
            );
        }
        if !(self.schedule.lr.is_finite() && self.schedule.lr >= 0.0) {
            return bad("lr", "must be finite and non-negative");
        }
        Ok(())
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer step just completed (1-based).
    pub step: u64,
    /// Mean loss over the step's target tokens.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Real tokens processed per second in this step.
    pub tokens_per_s: f64,
    /// Peak resident memory of the process (bytes), where the OS reports it.
    pub peak_memory_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    examples_seen: u64,
    optimizer_steps: BTreeMap<String, u64>,
    config: TrainConfig,
}

/// The SFT loop over a [`CausalLm`] whose trainable parameters are its LoRA matrices.
#[derive(Debug)]
pub struct Trainer<B: AutodiffBackend, M> {
    model: M,
    optimizer: TrainOptimizer<B::InnerBackend>,
    config: TrainConfig,
    step: u64,
    output_dir: Option<PathBuf>,
}

impl<B, M> Trainer<B, M>
where
    B: CheckpointingBackend,
    M: CausalLm<B> + AutodiffModule<B>,
{
    /// A trainer at step 0. With `output_dir`, metrics and checkpoints are written there.
    pub fn new(
        model: M,
        config: TrainConfig,
        output_dir: Option<PathBuf>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if config.gradient_checkpointing != B::GRADIENT_CHECKPOINTING {
            return Err(TrainError::InvalidConfig {
                field: "gradient_checkpointing",
                reason: format!(
                    "is {} but the backend `{}` {} (burn picks the strategy by type: use \
                     Autodiff<B, BalancedCheckpointing> to checkpoint, Autodiff<B> not to, \
                     or qlora_core::train::with_autodiff)",
                    config.gradient_checkpointing,
                    core::any::type_name::<B>(),
                    if B::GRADIENT_CHECKPOINTING {
                        "checkpoints"
                    } else {
                        "does not checkpoint"
                    }
                ),
            });
        }
        let optimizer = TrainOptimizer::new(config.optimizer, config.adamw).map_err(|reason| {
            TrainError::InvalidConfig {
                field: "optimizer",
                reason,
            }
        })?;
        if config.save_every.is_some() && output_dir.is_none() {
            return Err(TrainError::InvalidConfig {
                field: "save_every",
                reason: "checkpoints need an output directory".into(),
            });
        }
        if let Some(d) = &output_dir {
            fs::create_dir_all(d).map_err(|source| CheckpointError::Io {
                path: d.clone(),
                source,
            })?;
            // A run killed while writing a checkpoint or a metrics line leaves a temporary.
            for p in remove_stale_temporaries(d)? {
                log::warn!("removed {}, left by an interrupted run", p.display());
            }
        }
        Ok(Self {
            optimizer,
            model,
            config,
            step: 0,
            output_dir,
        })
    }

    /// Resumes from the latest complete checkpoint under `output_dir` (or starts at step 0 if
    /// there is none): loads the LoRA weights into `model`, the optimizer state and the step.
    pub fn resume(model: M, config: TrainConfig, output_dir: PathBuf) -> Result<Self, TrainError> {
        let mut t = Self::new(model, config, Some(output_dir.clone()))?;
        if let Some(ckpt) = latest_checkpoint(&output_dir)? {
            t.load_checkpoint(&ckpt)?;
            truncate_metrics(&output_dir.join("metrics.jsonl"), t.step)?;
        }
        Ok(t)
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Consumes the trainer, returning the model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The trainable tensors (host f32) by path.
    pub fn adapter_tensors(&self) -> BTreeMap<String, HostTensor> {
        trainable_host_tensors(&self.model)
    }

    /// Trains until `config.steps`, calling `on_step` after each optimizer step.
    pub fn train(
        &mut self,
        data: &[Example],
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<(), TrainError> {
        let until = self.config.steps;
        self.train_until(data, until, on_step)
    }

    /// Trains until optimizer step `until` (exclusive bound on completed steps).
    pub fn train_until(
        &mut self,
        data: &[Example],
        until: u64,
        mut on_step: impl FnMut(&StepMetrics),
    ) -> Result<(), TrainError> {
        if data.is_empty() {
            return Err(TrainError::EmptyDataset);
        }
        for (i, e) in data.iter().enumerate() {
            e.validate(i, self.config.max_seq_len)?;
        }
        while self.step < until {
            let m = self.train_step(data)?;
            if let Some(dir) = &self.output_dir {
                append_metrics(&dir.join("metrics.jsonl"), &m)?;
            }
            on_step(&m);
            if let Some(every) = self.config.save_every {
                if self.step.is_multiple_of(every) {
                    self.save_checkpoint()?;
                }
            }
        }
        Ok(())
    }

    /// The dataset indices of micro-batch `micro` (global counter).
    pub(super) fn micro_batch_indices(&self, data: &[Example], micro: u64) -> Vec<usize> {
        let n = data.len();
        if self.config.group_by_length {
            let bs = self.config.batch_size;
            let per_epoch = n.div_ceil(bs) as u64;
            let mut batches = length_grouped_batches(data, bs, self.epoch_seed(micro / per_epoch));
            let k = (micro % per_epoch) as usize;
            return if k < batches.len() {
                batches.swap_remove(k)
            } else {
                Vec::new()
            };
        }
        let bs = self.config.batch_size as u64;
        let mut perm_cache: Option<(u64, Vec<usize>)> = None;
        (0..bs)
            .map(|j| {
                let pos = micro * bs + j;
                let epoch = pos / n as u64;
                let within = (pos % n as u64) as usize;
                if !self.config.shuffle {
                    return within;
                }
                if perm_cache.as_ref().map(|c| c.0) != Some(epoch) {
                    let mut perm: Vec<usize> = (0..n).collect();
                    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(self.epoch_seed(epoch)));
                    perm_cache = Some((epoch, perm));
                }
                perm_cache.as_ref().map(|c| c.1[within]).unwrap_or(within)
            })
            .collect()
    }

    /// Seed of epoch `epoch`'s data order.
    fn epoch_seed(&self, epoch: u64) -> u64 {
        self.config.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn train_step(&mut self, data: &[Example]) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let device = self.model_device();
        let accum = self.config.grad_accum as u64;
        let mut micro_ids: Vec<Vec<usize>> = (0..accum)
            .map(|k| self.micro_batch_indices(data, self.step * accum + k))
            .collect();
        if let Some(budget) = self.config.micro_batch_tokens {
            micro_ids = token_budget_batches(data, micro_ids.concat(), budget);
        }
        let total_targets: usize = micro_ids
            .iter()
            .flatten()
            .map(|&i| super::loss::count_targets(&data[i].labels()))
            .sum();
        if total_targets == 0 {
            return Err(TrainError::AllLabelsMasked { step: self.step });
        }
        let mut acc: BTreeMap<String, Tensor<B::InnerBackend, 1>> = BTreeMap::new();
        let (mut loss_total, mut tokens) = (0.0f64, 0usize);
        for (k, ids) in micro_ids.iter().enumerate() {
            let exs: Vec<&Example> = ids.iter().map(|&i| &data[i]).collect();
            let batch = collate::<B>(&exs, self.config.pad_id, &device);
            tokens += batch.tokens;
            B::seed(&device, mix_seed(self.config.seed, self.step, k as u64));
            let logits = self
                .model
                .logits(batch.input_ids, batch.attention_mask)
                .map_err(TrainError::Model)?;
            let loss = causal_lm_loss_sum(logits, batch.labels).div_scalar(total_targets as f64);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: self.step,
                    loss: value,
                });
            }
            loss_total += value;
            let grads = loss.backward();
            for (path, g) in trainable_grads(&self.model, &grads) {
                let sum = match acc.remove(&path) {
                    Some(prev) => prev + g,
                    None => g,
                };
                acc.insert(path, sum);
            }
        }
        let sq: f64 = acc
            .values()
            .map(|g| g.clone().powi_scalar(2).sum().into_scalar().elem::<f64>())
            .sum();
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: self.step,
                loss: grad_norm,
            });
        }
        if let Some(max) = self.config.max_grad_norm {
            let coef = max / (grad_norm + 1e-6);
            if coef < 1.0 {
                for g in acc.values_mut() {
                    *g = g.clone().mul_scalar(coef);
                }
            }
        }
        let lr = self.config.schedule.lr_at(self.step);
        let mut updates = BTreeMap::new();
        for (path, p) in trainable_params(&self.model) {
            if let Some(g) = acc.remove(&path) {
                let new = self.optimizer.step(&path, p.value.inner(), g, lr);
                updates.insert(path, Tensor::<B, 1>::from_inner(new));
            }
        }
        let (model, _) = replace_trainable(self.model.clone(), updates);
        self.model = model;
        self.step += 1;
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        Ok(StepMetrics {
            step: self.step,
            loss: loss_total,
            lr,
            grad_norm,
            tokens_per_s: tokens as f64 / secs,
            peak_memory_bytes: peak_memory_bytes(),
        })
    }

    fn model_device(&self) -> B::Device {
        self.model.devices().into_iter().next().unwrap_or_default()
    }

    /// Writes `checkpoint-<step>` under the output directory atomically (a temporary
    /// directory renamed into place): `adapter.safetensors`, `optimizer.safetensors`,
    /// `trainer_state.json`. Returns its path.
    pub fn save_checkpoint(&self) -> Result<PathBuf, TrainError> {
        let Some(out) = &self.output_dir else {
            return Err(TrainError::InvalidConfig {
                field: "output_dir",
                reason: "checkpoints need an output directory".into(),
            });
        };
        let final_dir = out.join(format!("checkpoint-{:08}", self.step));
        let tmp = out.join(format!(
            ".checkpoint-{:08}.tmp-{}",
            self.step,
            std::process::id()
        ));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let result = (|| -> Result<(), TrainError> {
            save_f32_safetensors(&tmp.join("adapter.safetensors"), &self.adapter_tensors())?;
            let (opt, steps) = self.optimizer.export();
            save_tensors(&tmp.join("optimizer.safetensors"), &opt)?;
            let state = TrainerState {
                step: self.step,
                examples_seen: self.step
                    * self.config.grad_accum as u64
                    * self.config.batch_size as u64,
                optimizer_steps: steps,
                config: self.config.clone(),
            };
            let json = serde_json::to_vec_pretty(&state).map_err(|e| CheckpointError::Json {
                path: tmp.join("trainer_state.json"),
                reason: e.to_string(),
            })?;
            write_atomic(&tmp.join("trainer_state.json"), &json)?;
            let _ = fs::remove_dir_all(&final_dir);
            fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
            sync_parent(&final_dir);
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|_| final_dir)
    }

    /// Loads a checkpoint directory written by [`Trainer::save_checkpoint`].
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        let bad = |reason: String| TrainError::BadCheckpoint {
            path: dir.to_path_buf(),
            reason,
        };
        let state_path = dir.join("trainer_state.json");
        let text = fs::read(&state_path).map_err(|source| CheckpointError::Io {
            path: state_path.clone(),
            source,
        })?;
        let state: TrainerState =
            serde_json::from_slice(&text).map_err(|e| CheckpointError::Json {
                path: state_path.clone(),
                reason: e.to_string(),
            })?;
        let adapter = load_f32_safetensors(&dir.join("adapter.safetensors"))?;
        let current = trainable_params(&self.model);
        if adapter.len() != current.len() {
            return Err(bad(format!(
                "{} trainable tensors, the model has {}",
                adapter.len(),
                current.len()
            )));
        }
        let device = self.model_device();
        let mut values = BTreeMap::new();
        for (name, t) in &adapter {
            let Some(p) = current.get(name) else {
                return Err(bad(format!(
                    "tensor `{name}` is not a trainable parameter of the model"
                )));
            };
            if p.shape != t.1 {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, the model {:?}",
                    t.1, p.shape
                )));
            }
            values.insert(name.clone(), host_to_tensor::<B>(t, &device));
        }
        let opt = load_tensors(&dir.join("optimizer.safetensors"))?;
        let numel: BTreeMap<String, usize> = current
            .iter()
            .map(|(k, p)| (k.clone(), p.shape.iter().product()))
            .collect();
        let mut optimizer =
            TrainOptimizer::new(self.config.optimizer, self.config.adamw).map_err(|reason| {
                TrainError::InvalidConfig {
                    field: "optimizer",
                    reason,
                }
            })?;
        optimizer
            .import(&opt, &state.optimizer_steps, &numel, &device)
            .map_err(bad)?;
        let (model, _) = replace_trainable(self.model.clone(), values);
        self.model = model;
        self.optimizer = optimizer;
        self.step = state.step;
        Ok(())
    }
}

/// One epoch's order under [`TrainConfig::group_by_length`]: a seeded permutation of
/// `0..data.len()`, cut into mega-batches of [`LENGTH_GROUP_BATCHES`] × `batch` examples, each
/// sorted by length (longest first, ties in permutation order), cut into micro-batches of
/// `batch` (the last one of the epoch may be short) and the micro-batches shuffled.
pub(super) fn length_grouped_batches(data: &[Example], batch: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut perm: Vec<usize> = (0..data.len()).collect();
    perm.shuffle(&mut rng);
    for mega in perm.chunks_mut(batch.max(1) * LENGTH_GROUP_BATCHES) {
        mega.sort_by_key(|&i| std::cmp::Reverse(data[i].input_ids.len()));
    }
    let mut batches: Vec<Vec<usize>> = perm.chunks(batch.max(1)).map(<[usize]>::to_vec).collect();
    batches.shuffle(&mut rng);
    batches
}

/// The sequences `ids` of one optimizer step (indices into `data`) as micro-batches of at most
/// `budget` tokens, padding included: sorted by length, longest first (ties keep their order),
/// and cut greedily, a micro-batch holding as many as fit `count × longest <= budget`; a
/// sequence longer than the budget goes alone. Every index appears exactly once.
///
/// ```
/// use qlora_core::train::{token_budget_batches, Example};
/// let ex = |n: usize| Example { input_ids: vec![1; n], labels: None };
/// // A batch of two letters (400 tokens) and six short answers (100): one batch of 8 pads
/// // to 3,200 tokens; split at 1,024 it is 800 + 600.
/// let data: Vec<Example> = [400, 100, 100, 400, 100, 100, 100, 100].map(ex).into();
/// let batches = token_budget_batches(&data, (0..8).collect(), 1024);
/// assert_eq!(batches, vec![vec![0, 3], vec![1, 2, 4, 5, 6, 7]]);
/// ```
pub fn token_budget_batches(
    data: &[Example],
    mut ids: Vec<usize>,
    budget: usize,
) -> Vec<Vec<usize>> {
    let len = |i: usize| data.get(i).map_or(0, |e| e.input_ids.len());
    ids.sort_by_key(|&i| std::cmp::Reverse(len(i)));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in ids {
        // Sorted longest first: the first of a micro-batch is its longest.
        let longest = current.first().map_or(len(i), |&f| len(f));
        if !current.is_empty() && longest * (current.len() + 1) > budget {
            out.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The dropout seed of micro-batch `micro` of optimizer step `step`.
fn mix_seed(seed: u64, step: u64, micro: u64) -> u64 {
    let mut x =
        seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ micro.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^ (x >> 33)
}

/// The newest complete checkpoint under `dir`: the `checkpoint-N` subdirectory with the
/// largest N that holds `trainer_state.json` (checkpoints are renamed into place whole, so one
/// with its state file is complete). `None` when there is none or `dir` does not exist.
///
/// # Errors
///
/// [`TrainError::Checkpoint`] when `dir` exists but cannot be read.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("latest-ckpt-doc-{}", std::process::id()));
/// for n in [2, 10] {
///     std::fs::create_dir_all(dir.join(format!("checkpoint-{n:08}")))?;
///     std::fs::write(dir.join(format!("checkpoint-{n:08}/trainer_state.json")), "{}")?;
/// }
/// std::fs::create_dir_all(dir.join("checkpoint-00000011"))?; // no state: incomplete
/// let latest = qlora_core::train::latest_checkpoint(&dir)?;
/// assert_eq!(latest, Some(dir.join("checkpoint-00000010")));
/// assert_eq!(qlora_core::train::latest_checkpoint(&dir.join("missing"))?, None);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: dir.to_path_buf(),
                source,
            }
            .into())
        }
    };
    Ok(rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("checkpoint-")?.parse::<u64>().ok()?;
            e.path()
                .join("trainer_state.json")
                .is_file()
                .then(|| (n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p))
}

fn append_metrics(path: &Path, m: &StepMetrics) -> Result<(), TrainError> {
    use std::io::Write;
    let mut line = serde_json::to_value(m).map_err(|e| CheckpointError::Json {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Non-finite floats as strings, as our JSON outputs do.
    if let Some(obj) = line.as_object_mut() {
        for (k, v) in [("loss", m.loss), ("grad_norm", m.grad_norm)] {
            if !v.is_finite() {
                obj.insert(k.into(), serde_json::Value::String(non_finite(v).into()));
            }
        }
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    writeln!(f, "{line}").map_err(|source| {
        TrainError::from(CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Drops metric lines past `step` (written after the checkpoint a resume starts from).
fn truncate_metrics(path: &Path, step: u64) -> Result<(), TrainError> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())?;
    Ok(())
}

/// Peak resident set size (Linux `VmHWM`), if available.
fn peak_memory_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
