//! The `finetune` command line ([`FinetuneArgs`], raw flags as clap parses them) and the
//! checks and choices that turn it into a run ([`FinetuneArgs::lora_config`],
//! [`FinetuneArgs::optimizer`], ...).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use qlora_core::{LoraConfig, ScheduleKind, TargetModule};
use ro_tasks::TaskKind;

use crate::device::{DeviceChoice, DtypeChoice};

/// What the lines of `--data` / `--eval` hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// `{"id","input","target"}` examples: report → physician letter.
    Letters,
    /// `{"id","input","target"}` examples: case → treatment regimen.
    Regimen,
    /// `{"id","input","target"}` examples: case → photon | proton | electron | brachytherapy.
    Modality,
    /// `{"id","input","target"}` examples: case → ICD-10 code.
    Icd10,
    /// Pre-tokenized `{"input_ids":[..],"labels":[..]}` lines (labels optional; -100 = no loss).
    Tokens,
}

impl TaskArg {
    /// The ro-tasks task, or `None` for pre-tokenized data.
    pub fn task(self) -> Option<TaskKind> {
        match self {
            TaskArg::Letters => Some(TaskKind::Letters),
            TaskArg::Regimen => Some(TaskKind::Regimen),
            TaskArg::Modality => Some(TaskKind::Modality),
            TaskArg::Icd10 => Some(TaskKind::Icd10),
            TaskArg::Tokens => None,
        }
    }
}

/// The optimizer of the LoRA parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// 32-bit AdamW (torch.optim.AdamW); all state on the device.
    Adamw,
    /// 32-bit AdamW whose state beyond the device budget (--memory-budget minus the rest of
    /// the run) lives in host memory and is paged in for its update.
    PagedAdamw,
    /// AdamW with 8-bit blockwise state (bitsandbytes.optim.AdamW8bit).
    #[value(name = "adamw-8bit", alias = "adamw8bit")]
    Adamw8bit,
}

/// The learning-rate schedule after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    /// Constant rate.
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Half a cosine period down to 0 at the last step.
    Cosine,
}

impl From<ScheduleArg> for ScheduleKind {
    fn from(s: ScheduleArg) -> Self {
        match s {
            ScheduleArg::Constant => ScheduleKind::Constant,
            ScheduleArg::Linear => ScheduleKind::Linear,
            ScheduleArg::Cosine => ScheduleKind::Cosine,
        }
    }
}

pub use crate::chat_template::ChatTemplateArg;

/// QLoRA fine-tuning of a LLaMA-2/3 checkpoint on radiation-oncology tasks (or on
/// pre-tokenized data). Writes a PEFT adapter (adapter_config.json +
/// adapter_model.safetensors), trainer checkpoints (checkpoint-NNNNNNNN/) and metrics.jsonl
/// into --output.
#[derive(Debug, Clone, Parser)]
#[command(name = "finetune", version, about, args_override_self = true)]
pub struct FinetuneArgs {
    /// Base model directory (config.json + model.safetensors or a sharded index;
    /// bitsandbytes 4-bit checkpoints are read as they are).
    #[arg(long)]
    pub model: PathBuf,
    /// Training data, JSONL (see --task for the line format).
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data in the same format; its loss is logged to metrics.jsonl every
    /// --eval-every steps and at the end.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Line format and prompt of --data/--eval. For the four tasks the loss is on the answer
    /// tokens only (the prompt is labelled -100).
    #[arg(long, value_enum)]
    pub task: TaskArg,
    /// Output directory (adapter, checkpoints, metrics.jsonl). Refused when it already holds
    /// a run, unless --resume continues it.
    #[arg(long)]
    pub output: PathBuf,
    /// tokenizer.json (default: MODEL/tokenizer.json); not needed with --task tokens.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Prompt format for the four tasks: auto (the checkpoint's own chat template:
    /// chat_template.jinja or tokenizer_config.json's chat_template beside the tokenizer; an
    /// error when it has none), llama2 or llama3 (the built-in Llama-2-chat /
    /// Llama-3-instruct templates), a path to a .jinja file, or none (no template: the plain
    /// prompt with an `Answer:` cue, BOS from the tokenizer, the answer and the model's EOS).
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|llama2|llama3|none|FILE.jinja"
    )]
    pub chat_template: ChatTemplateArg,

    /// LoRA rank r.
    #[arg(long, default_value_t = 16)]
    pub lora_r: usize,
    /// LoRA alpha (the update is scaled by alpha/r, or alpha/sqrt(r) with --use-rslora).
    #[arg(long, default_value_t = 32.0)]
    pub lora_alpha: f64,
    /// Dropout on the input of LoRA's A, in [0, 1).
    #[arg(long, default_value_t = 0.05)]
    pub lora_dropout: f64,
    /// Projections that get an adapter: comma-separated q_proj,k_proj,v_proj,o_proj,
    /// gate_proj,up_proj,down_proj, or all-linear (all seven, as QLoRA).
    #[arg(long, default_value = "all-linear")]
    pub target_modules: String,
    /// rsLoRA: scale by alpha/sqrt(r).
    #[arg(long, visible_alias = "rslora")]
    pub use_rslora: bool,
    /// Initialise the adapter from this PEFT adapter directory instead of fresh weights; its
    /// adapter_config.json then fixes r, alpha, dropout, targets and rsLoRA (the --lora-*
    /// flags are ignored).
    #[arg(long)]
    pub init_adapter: Option<PathBuf>,

    /// Quantize the base projections to NF4 while loading (the default; QLoRA).
    #[arg(long, overrides_with = "no_load_in_4bit")]
    pub load_in_4bit: bool,
    /// Train on a dense (f32) base instead of NF4 (plain LoRA). A checkpoint that is already
    /// 4-bit stays 4-bit.
    #[arg(long, visible_alias = "no-4bit", overrides_with = "load_in_4bit")]
    pub no_load_in_4bit: bool,
    /// NF4 without double quantization of the absmax values (on by default, as QLoRA).
    #[arg(long)]
    pub no_double_quant: bool,

    /// Optimizer.
    #[arg(long, visible_alias = "optim", value_enum, default_value_t = OptimizerArg::Adamw)]
    pub optimizer: OptimizerArg,
    /// Memory budget in GiB: the run stops before loading weights when the estimated peak
    /// exceeds it. On the CPU that is the whole process (the program, the weights, and the
    /// larger of loading, with the checkpoint memory-mapped, and training: LoRA, gradients,
    /// optimizer state, activations); on CUDA the device's tensors. With paged-adamw the
    /// optimizer state may exceed it (it is paged to host memory). RUST_LOG=info shows the
    /// estimate.
    #[arg(long, value_name = "GIB")]
    pub memory_budget: Option<f64>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Learning-rate schedule after warmup.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Constant)]
    pub schedule: ScheduleArg,
    /// Steps of linear warmup from 0.
    #[arg(long, visible_alias = "warmup-steps", default_value_t = 0)]
    pub warmup: u64,
    /// Optimizer steps to train (conflicts with --epochs).
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Passes over --data (rounded up to whole optimizer steps); 1 when neither --steps nor
    /// --epochs is given.
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Longest sequence in tokens; a longer example is an error naming its line.
    #[arg(long, visible_alias = "max-length", default_value_t = 512)]
    pub max_seq_len: usize,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    #[arg(long, default_value_t = 0.3)]
    pub max_grad_norm: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Seed of the adapter initialisation, data order and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep the data order of the file instead of shuffling each epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Put examples of similar length into the same batch (transformers'
    /// `group_by_length`): each epoch stays a seeded shuffle, but sorted within mega-batches
    /// of 50 batches, so that short answers are not padded to the longest of a mixed batch.
    /// Faster on data whose lengths vary; not with --no-shuffle.
    #[arg(long, conflicts_with = "no_shuffle")]
    pub group_by_length: bool,
    /// Split each optimizer step's examples by length into micro-batches of at most N tokens,
    /// padding included (a longer example goes alone). Same data order and same gradient as
    /// the unsplit step (the loss is normalized over the whole step); saves the padding short
    /// answers carry next to a long one, and bounds activation memory.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub micro_batch_tokens: Option<u64>,
    /// Recompute memory-bound activations in the backward pass instead of keeping them
    /// (burn's balanced checkpointing); same gradients, less memory.
    #[arg(long)]
    pub gradient_checkpointing: bool,

    /// Continue an interrupted run: DIR is a checkpoint-NNNNNNNN directory or an output
    /// directory (its latest checkpoint is used). metrics.jsonl in --output keeps the lines
    /// up to the resumed step, so the finished run's file equals an uninterrupted one's.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Write a checkpoint every N optimizer steps (one is always written at the end).
    #[arg(long, value_name = "N")]
    pub save_every: Option<u64>,
    /// Compute the --eval loss every N optimizer steps (and at the last step).
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Stop after N optimizer steps of this invocation (checkpoint and adapter written, the
    /// schedule still spans all steps); continue later with --resume.
    #[arg(long, value_name = "N")]
    pub stop_after: Option<u64>,
    /// Compute device: cpu, cuda (GPU 0) or cuda:N. Default: cuda:0 in a build with
    /// `--features cuda` when a GPU is visible, cpu otherwise. Without that feature `cuda`
    /// is an error. Runs are bit-for-bit reproducible on the cpu.
    #[arg(long, value_name = "cpu|cuda[:N]")]
    pub device: Option<DeviceChoice>,
    /// Compute dtype of the frozen base and the activations: auto (bf16 on CUDA, f32 on the
    /// CPU), f32, or bf16 (CUDA only). LoRA weights, their gradients and the optimizer state
    /// are f32 in every case, as in QLoRA.
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,
    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl FinetuneArgs {
    /// Whether the base projections are quantized to NF4 on load.
    pub fn four_bit(&self) -> bool {
        !self.no_load_in_4bit
    }

    /// The LoRA settings of the flags (checked: r > 0, finite alpha, dropout in [0, 1),
    /// known targets).
    pub fn lora_config(&self) -> Result<LoraConfig> {
        let targets = TargetModule::parse_list(&self.target_modules)
            .map_err(|e| anyhow::anyhow!("--target-modules {:?}: {e}", self.target_modules))?;
        if targets.is_empty() {
            bail!("--target-modules: no projection named");
        }
        if self.lora_r == 0 {
            bail!("--lora-r: must be at least 1");
        }
        if !self.lora_alpha.is_finite() {
            bail!("--lora-alpha {}: must be finite", self.lora_alpha);
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            bail!("--lora-dropout {}: must be in [0, 1)", self.lora_dropout);
        }
        Ok(LoraConfig::new(self.lora_r, self.lora_alpha)
            .with_dropout(self.lora_dropout)
            .with_targets(targets)
            .with_rslora(self.use_rslora))
    }

    /// Checks the numeric flags that do not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            bail!("--lr {}: must be finite and non-negative", self.lr);
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            bail!(
                "--max-grad-norm {}: must be finite and >= 0",
                self.max_grad_norm
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!(
                "--weight-decay {}: must be finite and >= 0",
                self.weight_decay
            );
        }
        for (flag, v) in [
            ("--batch-size", self.batch_size),
            ("--grad-accum", self.grad_accum),
        ] {
            if v == 0 {
                bail!("{flag}: must be at least 1");
            }
        }
        if self.max_seq_len < 2 {
            bail!("--max-seq-len {}: must be at least 2", self.max_seq_len);
        }
        for (flag, v) in [
            ("--steps", self.steps),
            ("--save-every", self.save_every),
            ("--eval-every", self.eval_every),
            ("--stop-after", self.stop_after),
        ] {
            if v == Some(0) {
                bail!("{flag}: must be at least 1");
            }
        }
        if let Some(e) = self.epochs {
            if !(e.is_finite() && e > 0.0) {
                bail!("--epochs {e}: must be a positive number");
            }
        }
        if let Some(b) = self.memory_budget {
            if !(b.is_finite() && b > 0.0) {
                bail!("--memory-budget {b}: must be a positive number of GiB");
            }
        }
        self.lora_config()?;
        Ok(())
    }

    /// Optimizer steps for `n` training examples: --steps, or --epochs (default 1) passes
    /// rounded up to whole steps.
    pub fn total_steps(&self, n: usize) -> u64 {
        if let Some(s) = self.steps {
            return s;
        }
        let per_step = (self.batch_size * self.grad_accum) as f64;
        let epochs = self.epochs.unwrap_or(1.0);
        ((epochs * n as f64 / per_step).ceil() as u64).max(1)
    }

    /// The gradient-clipping threshold (`None` when --max-grad-norm is 0).
    pub fn clip(&self) -> Option<f64> {
        (self.max_grad_norm > 0.0).then_some(self.max_grad_norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> FinetuneArgs {
        let mut argv = vec![
            "finetune", "--model", "m", "--data", "d.jsonl", "--task", "icd10", "--output", "o",
        ];
        argv.extend_from_slice(extra);
        FinetuneArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_are_qlora() {
        let a = parse(&[]);
        assert!(a.four_bit());
        assert!(!a.no_double_quant);
        let c = a.lora_config().unwrap();
        assert_eq!(c.targets, TargetModule::ALL.to_vec());
        assert_eq!((c.r, c.alpha), (16, 32.0));
        assert_eq!(a.clip(), Some(0.3));
        a.validate().unwrap();
    }

    #[test]
    fn aliases_and_overrides() {
        let a = parse(&[
            "--no-4bit",
            "--optim",
            "adamw8bit",
            "--warmup-steps",
            "3",
            "--rslora",
        ]);
        assert!(!a.four_bit());
        assert_eq!(a.optimizer, OptimizerArg::Adamw8bit);
        assert_eq!(a.warmup, 3);
        assert!(a.use_rslora);
        let a = parse(&["--no-load-in-4bit", "--load-in-4bit", "--max-length", "64"]);
        assert!(a.four_bit());
        assert_eq!(a.max_seq_len, 64);
    }

    #[test]
    fn steps_from_epochs_round_up() {
        let a = parse(&["--epochs", "2", "--batch-size", "3", "--grad-accum", "2"]);
        assert_eq!(a.total_steps(10), 4); // 20 examples / 6 per step
        assert_eq!(parse(&[]).total_steps(5), 5);
        assert_eq!(parse(&["--steps", "7"]).total_steps(5), 7);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = parse(&["--lora-dropout", "1.5"]).validate().unwrap_err();
        assert!(e.to_string().contains("--lora-dropout"), "{e}");
        let e = parse(&["--target-modules", "q_proj,lm_head"])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("--target-modules"), "{e}");
        let e = parse(&["--save-every", "0"]).validate().unwrap_err();
        assert!(e.to_string().contains("--save-every"), "{e}");
        assert!(FinetuneArgs::try_parse_from([
            "finetune", "--model", "m", "--data", "d", "--task", "sql", "--output", "o"
        ])
        .is_err());
    }
}
