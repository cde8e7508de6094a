//! Stages 3 and 5: full-parameter pre-training of the tiny base and QLoRA fine-tuning, both
//! through qlora-core's [`Trainer`], with validation losses between training segments.

use anyhow::{anyhow, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};

use burn::tensor::ElementConversion;
use indicatif::ProgressBar;
use qlora_core::train::{
    causal_lm_loss_sum, collate, CausalLm, CheckpointingBackend, Example as TokenExample,
    StepMetrics, TrainConfig, Trainer,
};
use qlora_core::{AdamWConfig, LrSchedule, OptimizerKind, ScheduleKind};

use super::summary::{LossCurves, LossPoint, Num};

/// Validation losses computed per training run (evenly spaced, the last at the end).
pub const VAL_POINTS: u64 = 5;

/// Settings of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// Optimizer steps.
    pub steps: u64,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warmup fraction of the steps.
    pub warmup_fraction: f64,
    /// Longest sequence.
    pub max_seq_len: usize,
    /// Seed of data order and dropout.
    pub seed: u64,
    /// Padding id.
    pub pad_id: u32,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Token budget of a micro-batch ([`TrainConfig::micro_batch_tokens`]).
    pub micro_batch_tokens: Option<usize>,
}

impl RunSettings {
    /// The trainer config: the optimizer with torch's AdamW defaults, linear warmup then cosine
    /// decay, gradient clipping at 1, shuffled data, no checkpoints.
    ///
    /// Not grouped by length, although letters (~330 tokens) pad the short-answer examples
    /// (~110) of a mixed batch: grouping makes batches single-task, the loss a mean per
    /// batch, so the rare letter batches weigh as much as a batch of one-word modality
    /// answers, and the model learns to answer every prompt with a code (measured on the
    /// small preset with letters repeated four times: letters ROUGE-1 0.01 after 200 grouped
    /// steps).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            steps: self.steps,
            batch_size: self.batch_size,
            grad_accum: 1,
            max_seq_len: self.max_seq_len,
            max_grad_norm: Some(1.0),
            schedule: LrSchedule {
                kind: ScheduleKind::Cosine,
                lr: self.lr,
                warmup_steps: (self.steps as f64 * self.warmup_fraction).round() as u64,
                total_steps: self.steps,
            },
            adamw: AdamWConfig::default(),
            seed: self.seed,
            shuffle: true,
            save_every: None,
            pad_id: self.pad_id,
            optimizer: self.optimizer,
            micro_batch_tokens: self.micro_batch_tokens,
            ..TrainConfig::default()
        }
    }
}

/// Mean loss per target token of `model` over `data` (no gradients), in batches of `batch`.
///
/// # Errors
///
/// When the forward pass fails.
pub fn mean_loss<B: Backend, M: CausalLm<B>>(
    model: &M,
    data: &[TokenExample],
    batch: usize,
    pad_id: u32,
    device: &B::Device,
) -> Result<f64> {
    let (mut sum, mut count) = (0.0f64, 0usize);
    for chunk in data.chunks(batch.max(1)) {
        let refs: Vec<&TokenExample> = chunk.iter().collect();
        let b = collate::<B>(&refs, pad_id, device);
        if b.targets == 0 {
            continue;
        }
        let logits = model
            .logits(b.input_ids, b.attention_mask)
            .map_err(|e| anyhow!("validation forward: {e}"))?;
        let s: f64 = causal_lm_loss_sum(logits, b.labels).into_scalar().elem();
        sum += s;
        count += b.targets;
    }
    Ok(if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    })
}

/// What a training run produced.
#[derive(Debug)]
pub struct Trained<M> {
    /// The trained model.
    pub model: M,
    /// Training and validation losses.
    pub curves: LossCurves,
    /// Mean tokens per second over the steps.
    pub tokens_per_second: f64,
}

/// Trains `model` on `train` for `settings.steps` steps, computing the validation loss on
/// `val` (on the inner backend) before training and [`VAL_POINTS`] times during it. `bar`
/// advances once per step.
///
/// # Errors
///
/// Trainer errors (bad example, non-finite loss) and validation forward errors.
pub fn train<B, M>(
    model: M,
    train: &[TokenExample],
    val: &[TokenExample],
    settings: &RunSettings,
    bar: &ProgressBar,
) -> Result<Trained<M>>
where
    B: AutodiffBackend + CheckpointingBackend,
    M: CausalLm<B> + AutodiffModule<B>,
    M::InnerModule: CausalLm<B::InnerBackend>,
{
    let inner_device: B::Device = model.devices().into_iter().next().unwrap_or_default();
    let val_batch = settings.batch_size.max(8);
    let mut curves = LossCurves::default();
    if !val.is_empty() {
        let l = mean_loss(
            &model.valid(),
            val,
            val_batch,
            settings.pad_id,
            &inner_device,
        )?;
        curves.val.push(LossPoint {
            step: 0,
            loss: Num(l),
        });
    }
    let mut trainer = Trainer::new(model, settings.train_config(), None)
        .map_err(|e| anyhow!("setting up the trainer: {e}"))?;
    let mut tps = Vec::new();
    for k in 1..=VAL_POINTS {
        let until = settings.steps * k / VAL_POINTS;
        if until <= trainer.step() {
            continue;
        }
        trainer
            .train_until(train, until, |m: &StepMetrics| {
                curves.train.push(LossPoint {
                    step: m.step as usize,
                    loss: Num(m.loss),
                });
                tps.push(m.tokens_per_s);
                bar.set_message(format!("loss {:.3}", m.loss));
                bar.inc(1);
            })
            .map_err(|e| anyhow!("training step {}: {e}", trainer.step() + 1))?;
        if !val.is_empty() {
            let l = mean_loss(
                &trainer.model().valid(),
                val,
                val_batch,
                settings.pad_id,
                &inner_device,
            )?;
            curves.val.push(LossPoint {
                step: until as usize,
                loss: Num(l),
            });
        }
    }
    let tokens_per_second = tps.iter().sum::<f64>() / tps.len().max(1) as f64;
    Ok(Trained {
        model: trainer.into_model(),
        curves,
        tokens_per_second,
    })
}
