//! The `finetune` program: QLoRA (or LoRA) fine-tuning of a LLaMA checkpoint on one of the
//! four radiation-oncology tasks or on pre-tokenized data.
//!
//! [`run`] composes the libraries, in this order, so that bad input fails before the
//! expensive parts:
//!
//! 1. flags ([`args`]), `config.json`, the adapter settings (`--init-adapter` or `--lora-*`);
//! 2. data ([`data`]): read, tokenized, checked against the vocabulary and `--max-seq-len`;
//! 3. the memory estimate ([`budget`], llama-model's `estimate_training_memory`) against
//!    `--memory-budget`, before any weight is read;
//! 4. the base model ([`base`]) and its adapter on the autodiff backend (with or without
//!    gradient checkpointing), qlora-core's [`Trainer`] (writing `metrics.jsonl` and
//!    `checkpoint-NNNNNNNN/`), eval-loss lines ([`eval`], [`metrics`]);
//! 5. the PEFT adapter (`adapter_config.json` + `adapter_model.safetensors`) in `--output`.

pub mod args;
pub mod base;
pub mod budget;
pub mod data;
pub mod eval;
pub mod metrics;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::FloatDType;
use indicatif::{ProgressBar, ProgressStyle};
use llama_model::memory::checkpoint_bytes;
use llama_model::{
    estimate_training_memory, save_adapter, AdapterConfig, LlamaConfig, LlamaTokenizer,
    MemoryEstimate, MemoryTarget,
};
use qlora_core::train::{TrainConfig, TrainError, Trainer};
use qlora_core::{
    train::with_autodiff, train::AutodiffRun, train::CheckpointingBackend, AdamWConfig, LoraConfig,
    LrSchedule, OptimizerKind,
};

pub use args::{ChatTemplateArg, FinetuneArgs, OptimizerArg, ScheduleArg, TaskArg};
pub use data::{Dataset, PromptFormat};

use metrics::METRICS_FILE;

use crate::device::{DeviceChoice, OnBackend};

/// What a finished invocation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Optimizer step the invocation started at (0, or the resumed checkpoint's).
    pub start_step: u64,
    /// Optimizer step it ended at.
    pub end_step: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
    /// Loss of the first and of the last step of this invocation.
    pub losses: Option<(f64, f64)>,
    /// The last eval loss computed in this invocation.
    pub eval_loss: Option<f64>,
    /// The memory estimate of the run.
    pub memory: MemoryEstimate,
    /// Wall-clock seconds of training (model loading excluded).
    pub train_seconds: f64,
}

/// The checkpoint directory `--resume DIR` names: DIR itself when it holds
/// `trainer_state.json`, else its newest complete `checkpoint-N` subdirectory
/// ([`qlora_core::train::latest_checkpoint`]), else `None`.
///
/// # Errors
///
/// When DIR does not exist or cannot be read.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    if dir.join("trainer_state.json").is_file() {
        return Ok(Some(dir.to_path_buf()));
    }
    std::fs::metadata(dir).with_context(|| format!("--resume {}", dir.display()))?;
    qlora_core::train::latest_checkpoint(dir).with_context(|| format!("--resume {}", dir.display()))
}

/// [`latest_checkpoint`], with an error when DIR holds none.
pub fn find_checkpoint(dir: &Path) -> Result<PathBuf> {
    match latest_checkpoint(dir)? {
        Some(p) => Ok(p),
        None => bail!(
            "--resume {}: no checkpoint (a checkpoint-NNNNNNNN directory with \
             trainer_state.json) in it",
            dir.display()
        ),
    }
}

/// The checkpoint a run continues from. `--resume` of the output directory of a run that was
/// interrupted before its first checkpoint starts it again from step 0 (dropping the metric
/// lines it wrote); `--resume` of any other directory without a checkpoint is an error.
fn resume_point(args: &FinetuneArgs) -> Result<Option<PathBuf>> {
    let Some(dir) = args.resume.as_deref() else {
        return Ok(None);
    };
    if let Some(ckpt) = latest_checkpoint(dir)? {
        return Ok(Some(ckpt));
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(dir, &args.output) {
        log::warn!(
            "--resume {}: no checkpoint yet (the run stopped before its first one); starting \
             from step 0",
            dir.display()
        );
        let m = args.output.join(METRICS_FILE);
        metrics::truncate_to_step(&m, &m, 0)?;
        return Ok(None);
    }
    find_checkpoint(dir).map(Some)
}

/// Refuses an output directory that already holds a run, unless it is being resumed.
fn prepare_output(args: &FinetuneArgs) -> Result<()> {
    let out = &args.output;
    if args.resume.is_none() && out.is_dir() {
        let holds_run = out.join(METRICS_FILE).exists()
            || std::fs::read_dir(out)
                .with_context(|| format!("--output {}", out.display()))?
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"));
        if holds_run {
            bail!(
                "--output {}: already holds a run (metrics.jsonl or checkpoint-*); pass \
                 --resume {} to continue it, or choose another directory",
                out.display(),
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("--output {}", out.display()))
}

fn tokenizer_path(args: &FinetuneArgs) -> PathBuf {
    args.tokenizer
        .clone()
        .unwrap_or_else(|| args.model.join("tokenizer.json"))
}

/// The prompt format of `--chat-template`, and the tokenizer with the template it chose.
fn prompt_format(
    args: &FinetuneArgs,
    tok: LlamaTokenizer,
    tokenizer: &Path,
    cfg: &LlamaConfig,
) -> Result<(LlamaTokenizer, PromptFormat)> {
    if args.chat_template == ChatTemplateArg::None {
        let eos = cfg
            .eos_token_ids
            .first()
            .copied()
            .or_else(|| tok.special_token_id("eos_token"))
            .context("--chat-template none: config.json names no eos_token_id and the tokenizer config no eos_token")?;
        return Ok((tok, PromptFormat::Plain { eos }));
    }
    let tok = crate::chat_template::apply(tok, &args.chat_template, tokenizer)?;
    Ok((tok, PromptFormat::Chat))
}

/// Reads and tokenizes one data file for the task of `args`.
fn load_data(args: &FinetuneArgs, path: &Path, cfg: &LlamaConfig) -> Result<Dataset> {
    let data = match args.task.task() {
        None => data::read_token_data(path)?,
        Some(task) => {
            let tp = tokenizer_path(args);
            let tok = LlamaTokenizer::from_file(&tp).with_context(|| {
                format!(
                    "--task {} needs a tokenizer: reading {} (pass --tokenizer FILE)",
                    task,
                    tp.display()
                )
            })?;
            let (tok, format) = prompt_format(args, tok, &tp, cfg)?;
            data::read_task_data(path, task, &tok, &format)?
        }
    };
    data.check(cfg.vocab_size, args.max_seq_len)?;
    Ok(data)
}

fn optimizer_kind(arg: OptimizerArg, device_budget: Option<u64>) -> OptimizerKind {
    match arg {
        OptimizerArg::Adamw => OptimizerKind::AdamW,
        OptimizerArg::PagedAdamw => OptimizerKind::PagedAdamW {
            device_budget_bytes: device_budget.unwrap_or(u64::MAX),
        },
        OptimizerArg::Adamw8bit => OptimizerKind::adamw8bit(),
    }
}

/// Everything the training part of a run needs, resolved.
struct Job {
    args: FinetuneArgs,
    lora: LoraConfig,
    adapter: AdapterConfig,
    train: Dataset,
    eval: Option<Dataset>,
    config: TrainConfig,
    resume: Option<PathBuf>,
    memory: MemoryEstimate,
    /// Compute dtype of the frozen base (`--dtype`).
    dtype: FloatDType,
}

/// Runs `finetune` with parsed flags.
///
/// # Errors
///
/// Bad flags, unreadable or malformed data (naming file, line and field), a run that does
/// not fit `--memory-budget`, a model that does not load, a non-finite loss (naming the step;
/// the checkpoints written before it are left as they are).
pub fn run(args: &FinetuneArgs) -> Result<Summary> {
    let created = !args.output.exists();
    let result = run_in(args);
    if result.is_err() && created && args.output.is_dir() {
        remove_if_no_checkpoint(&args.output);
    }
    result
}

/// Removes an output directory this run created when the run failed before writing a
/// checkpoint: nothing in it could be resumed, and a failed run leaves no partial output.
fn remove_if_no_checkpoint(out: &Path) {
    if !matches!(latest_checkpoint(out), Ok(Some(_))) {
        if let Err(e) = std::fs::remove_dir_all(out) {
            log::warn!("removing {} after the failed run: {e}", out.display());
        }
    }
}

/// [`run`], which removes the output directory it created when this fails early.
fn run_in(args: &FinetuneArgs) -> Result<Summary> {
    args.validate()?;
    let device = args.device.unwrap_or_else(DeviceChoice::auto);
    device.check()?;
    let dtype = args.dtype.resolve(device)?;
    let cfg_path = args.model.join("config.json");
    let cfg = LlamaConfig::from_file(&cfg_path)
        .with_context(|| format!("--model {}", args.model.display()))?;
    let lora = match &args.init_adapter {
        Some(dir) => base::lora_of(&base::read_adapter_config(dir)?)
            .with_context(|| format!("--init-adapter {}", dir.display()))?,
        None => args.lora_config()?,
    };
    let adapter = base::adapter_config(&lora, &args.model);

    let train = load_data(args, &args.data, &cfg)?;
    let eval = match &args.eval {
        Some(p) => Some(load_data(args, p, &cfg)?),
        None => None,
    };

    let seq_len = train
        .max_len()
        .max(eval.as_ref().map_or(0, Dataset::max_len));
    let target = if device == DeviceChoice::Cpu {
        let checkpoint_bytes = checkpoint_bytes(&args.model)
            .with_context(|| format!("--model {}", args.model.display()))?;
        MemoryTarget::Host { checkpoint_bytes }
    } else {
        MemoryTarget::Device
    };
    let plan = budget::training_plan(
        &cfg,
        args.four_bit(),
        !args.no_double_quant,
        &lora,
        args.optimizer,
        args.batch_size,
        seq_len,
        args.gradient_checkpointing,
        dtype,
        target,
    );
    let memory = estimate_training_memory(&cfg, &plan);
    log::info!("memory estimate: {memory}");
    log::info!(
        "memory estimate (bytes): {{\"total\": {}, \"program\": {}, \"loading\": {}, \"weights\": {}, \"training\": {}, \"activations\": {}}}",
        memory.total(),
        memory.program,
        memory.loading,
        memory.weights,
        memory.training(),
        memory.activations
    );
    let device_budget = match args.memory_budget {
        Some(b) => Some(budget::check_budget(&memory, b, args.optimizer)?),
        None => None,
    };

    prepare_output(args)?;
    let resume = resume_point(args)?;

    let steps = args.total_steps(train.examples.len());
    let config = TrainConfig {
        steps,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        max_seq_len: args.max_seq_len,
        max_grad_norm: args.clip(),
        schedule: LrSchedule {
            kind: args.schedule.into(),
            lr: args.lr,
            warmup_steps: args.warmup,
            total_steps: steps,
        },
        adamw: AdamWConfig {
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        },
        seed: args.seed,
        shuffle: !args.no_shuffle,
        save_every: args.save_every,
        pad_id: cfg
            .pad_token_id
            .filter(|&p| (p as usize) < cfg.vocab_size)
            .unwrap_or(0),
        optimizer: optimizer_kind(args.optimizer, device_budget),
        gradient_checkpointing: args.gradient_checkpointing,
        group_by_length: args.group_by_length,
        micro_batch_tokens: args.micro_batch_tokens.map(|n| n as usize),
    };
    let job = Job {
        args: args.clone(),
        lora,
        adapter,
        train,
        eval,
        config,
        resume,
        memory,
        dtype,
    };
    log::info!("device: {device}, dtype: {dtype:?}");
    device.run(job)
}

fn progress(args: &FinetuneArgs, total: u64, start: u64) -> ProgressBar {
    if args.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} step {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(start);
    bar
}

impl Job {
    /// The message of a trainer error, with file/line for bad examples and the last good
    /// checkpoint for a non-finite loss.
    fn explain(&self, e: TrainError) -> anyhow::Error {
        let out = &self.args.output;
        match e {
            TrainError::NonFiniteLoss { step, loss } => {
                let last = find_checkpoint(out)
                    .map(|p| format!("the last good checkpoint {} is left as it was", p.display()))
                    .unwrap_or_else(|_| "no checkpoint was written before it".into());
                anyhow::anyhow!(
                    "step {} of {}: loss or gradient norm is {loss} (not finite); training \
                     stopped before the update; {last} (try a lower --lr or --max-grad-norm)",
                    step + 1,
                    self.config.steps
                )
            }
            TrainError::AllLabelsMasked { step } => anyhow::anyhow!(
                "step {}: every label of the step's examples is -100 in {}; nothing to learn",
                step + 1,
                self.train.path.display()
            ),
            TrainError::BadExample { index, reason } => anyhow::anyhow!(
                "{}:{}: {reason}",
                self.train.path.display(),
                self.train.lines.get(index).copied().unwrap_or(index + 1)
            ),
            other => anyhow::Error::new(other).context("training"),
        }
    }

    fn eval_due(&self, step: u64) -> bool {
        self.eval.is_some()
            && step > 0
            && (step == self.config.steps
                || self.args.eval_every.is_some_and(|n| step.is_multiple_of(n)))
    }
}

impl OnBackend for Job {
    type Output = Summary;

    /// Picks the autodiff backend over `B` (with or without gradient checkpointing).
    fn run<B: Backend>(self, device: B::Device) -> Result<Summary> {
        let checkpointing = self.args.gradient_checkpointing;
        with_autodiff::<B, _>(checkpointing, OnDevice { job: self, device })
    }
}

/// A [`Job`] bound to a device of the backend `B`.
struct OnDevice<B: Backend> {
    job: Job,
    device: B::Device,
}

impl<B: Backend> AutodiffRun<B> for OnDevice<B> {
    type Output = Result<Summary>;

    fn run<AB>(self) -> Result<Summary>
    where
        AB: CheckpointingBackend<InnerBackend = B, Device = B::Device>,
    {
        self.job.train::<B, AB>(self.device)
    }
}

impl Job {
    /// Loads the model on `device`, trains with the trainer on `AB`, writes the adapter.
    fn train<B, AB>(self, device: B::Device) -> Result<Summary>
    where
        B: Backend,
        AB: CheckpointingBackend<InnerBackend = B, Device = B::Device>,
    {
        let args = &self.args;
        let t0 = Instant::now();
        let model =
            base::load_base::<AB>(&args.model, args.four_bit(), !args.no_double_quant, &device)?
                .with_dtype(self.dtype);
        let model =
            base::attach_adapter(model, &self.lora, args.init_adapter.as_deref(), args.seed)?;
        log::info!("loaded {} in {:.2?}", args.model.display(), t0.elapsed());

        let out = args.output.clone();
        let metrics_path = out.join(METRICS_FILE);
        let mut trainer = Trainer::<AB, _>::new(model, self.config.clone(), Some(out.clone()))
            .map_err(|e| self.explain(e))?;
        if let Some(ckpt) = &self.resume {
            trainer
                .load_checkpoint(ckpt)
                .map_err(|e| self.explain(e))
                .with_context(|| format!("--resume {}", ckpt.display()))?;
            let source = if metrics_path.exists() {
                metrics_path.clone()
            } else {
                ckpt.parent().unwrap_or(Path::new(".")).join(METRICS_FILE)
            };
            metrics::truncate_to_step(&source, &metrics_path, trainer.step())?;
            log::info!("resumed {} at step {}", ckpt.display(), trainer.step());
        }

        let total = self.config.steps;
        let start = trainer.step();
        let stop = args
            .stop_after
            .map_or(total, |n| start.saturating_add(n).min(total));
        let batch = args.batch_size;
        let pad = self.config.pad_id;
        let mut eval_loss = None;
        let mut evaluate = |trainer: &Trainer<AB, _>, step: u64| -> Result<()> {
            if let Some(eval) = &self.eval {
                let (loss, tokens) =
                    eval::eval_loss::<AB, _>(trainer.model(), &eval.examples, batch, pad)
                        .map_err(|e| anyhow::anyhow!("eval on {}: {e}", eval.path.display()))?;
                metrics::append_eval(&metrics_path, step, loss, tokens)?;
                eval_loss = Some(loss);
            }
            Ok(())
        };
        // A run interrupted between its checkpoint and the eval of that step evaluates now.
        if self.eval_due(start) && !metrics::has_eval(&metrics_path, start)? {
            evaluate(&trainer, start)?;
        }

        let bar = progress(args, total, start);
        let mut losses: Option<(f64, f64)> = None;
        let t1 = Instant::now();
        while trainer.step() < stop {
            let next = match args.eval_every {
                Some(n) if self.eval.is_some() => (trainer.step() / n + 1) * n,
                _ => stop,
            }
            .min(stop);
            trainer
                .train_until(&self.train.examples, next, |m| {
                    bar.set_position(m.step);
                    bar.set_message(format!("loss {:.4} lr {:.2e}", m.loss, m.lr));
                    losses = Some((losses.map_or(m.loss, |l| l.0), m.loss));
                })
                .map_err(|e| {
                    bar.abandon();
                    self.explain(e)
                })?;
            let step = trainer.step();
            if self.eval_due(step) {
                evaluate(&trainer, step)?;
            }
        }
        bar.finish_and_clear();
        let train_seconds = t1.elapsed().as_secs_f64();

        let end = trainer.step();
        if !out.join(format!("checkpoint-{end:08}")).is_dir() {
            trainer.save_checkpoint().map_err(|e| self.explain(e))?;
        }
        save_adapter(trainer.model(), &out, &self.adapter)
            .with_context(|| format!("writing the adapter to {}", out.display()))?;
        Ok(Summary {
            start_step: start,
            end_step: end,
            total_steps: total,
            losses,
            eval_loss,
            memory: self.memory,
            train_seconds,
        })
    }
}
