//! Command-line flags of the demo ([`DemoArgs`], raw) and the run they resolve to
//! ([`RunConfig`], validated, every default filled in).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use serde::{Serialize, Serializer};

use crate::chat_template::ChatTemplateArg;
use crate::device::DeviceChoice;

/// End-to-end QLoRA demo on synthetic radiation-oncology data, with no downloads.
///
/// Generates a seeded synthetic dataset for the four tasks (physician letters, treatment
/// regimen, treatment modality, ICD-10 code), trains a byte-level BPE tokenizer and a tiny
/// LLaMA-3-style base model on the clinical text, quantizes the base to NF4 with double
/// quantization, QLoRA-fine-tunes one adapter on the four tasks, evaluates base and
/// fine-tuned models on held-out cases (ROUGE, field accuracy, accuracy/P/R/F1, ICD-10
/// exact/category accuracy, one-sided Wilcoxon tests, bootstrap intervals) and writes
/// OUT/report.md, OUT/metrics.json and SVG plots.
///
/// metrics.json is deterministic for a given --seed (timings and memory go to report.md only).
#[derive(Debug, Clone, Parser)]
#[command(name = "demo", version, about, long_about)]
pub struct DemoArgs {
    /// Output directory (created if missing; files in it are replaced atomically).
    #[arg(long, default_value = "demo-output")]
    pub out: PathBuf,
    /// Small and fast settings for smoke tests (about a minute in release mode): fewer cases,
    /// steps and test cases, shorter answers. Explicit flags still override.
    #[arg(long)]
    pub quick: bool,
    /// Seed of everything random (data, tokenizer corpus order, initialisation, dropout,
    /// data order): two runs with the same seed write the same metrics.json.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Total number of synthetic cases over the four tasks (split 80/10/10 into train, val
    /// and test) [default: 2000, or 400 with --quick].
    #[arg(long)]
    pub cases: Option<usize>,
    /// QLoRA fine-tuning steps (optimizer updates) [default: 500 for small and medium, 300 for
    /// tiny and with --model, 120 with --quick].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Pre-training steps of the base model [default: 150 for small and medium, 300 for tiny
    /// and with --quick].
    #[arg(long)]
    pub pretrain_steps: Option<usize>,
    /// Size of the base model [default: small, or tiny with --quick]. small: 5.5 M parameters
    /// with the ~2,000 tokens the BPE learns from the synthetic text, about 8 minutes on 2
    /// cores; tiny: 0.3 M, about 2 minutes; medium: 15.5 M at a full 8192 vocabulary, slower
    /// still.
    #[arg(long, value_enum)]
    pub model_size: Option<ModelSize>,
    /// Run stages 4-6 (quantize, fine-tune, evaluate) on this Hugging Face LLaMA checkpoint
    /// directory (config.json + safetensors) instead of pre-training a tiny model. Needs
    /// --tokenizer.
    #[arg(long, requires = "tokenizer")]
    pub model: Option<PathBuf>,
    /// tokenizer.json of the --model checkpoint.
    #[arg(long, requires = "model")]
    pub tokenizer: Option<PathBuf>,
    /// Chat template of the --model checkpoint: auto (its own: chat_template.jinja or
    /// tokenizer_config.json's chat_template beside --tokenizer; an error when it has none),
    /// llama2 or llama3 (the built-in templates), or a path to a .jinja file. The model
    /// trained from scratch always uses its own (Llama-3-style) template.
    #[arg(long, requires = "model", value_name = "auto|llama2|llama3|FILE.jinja")]
    pub chat_template: Option<ChatTemplateArg>,
    /// Test cases evaluated per task (at most the test split) [default: 24, or 8 with --quick].
    #[arg(long)]
    pub eval_cases: Option<usize>,
    /// Peak learning rate of QLoRA fine-tuning [default: 3e-3 for small and medium (1e-2
    /// diverges there), 1e-2 for tiny, 5e-3 with --quick, 2e-4 with --model].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Peak learning rate of pre-training [default: 3e-3 for tiny, 4e-3 for small and medium,
    /// 5e-3 with --quick].
    #[arg(long)]
    pub pretrain_lr: Option<f64>,
    /// Sequences per optimizer step [default: 8, or 4 with --quick].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Compute device: cpu, cuda (GPU 0) or cuda:N [default: cuda:0 in a build with
    /// `--features cuda` when the driver reports a GPU, else cpu]. metrics.json is
    /// reproducible on the CPU; GPU kernels may sum in another order.
    #[arg(long)]
    pub device: Option<DeviceChoice>,
}

/// Size presets of the tiny LLaMA-3-style base model (GQA, llama3 RoPE scaling, tied
/// embeddings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelSize {
    /// 0.3 M parameters: 2 layers, hidden 96, vocabulary 1024 (what `--quick` trains; about 2
    /// minutes on 2 cores with the default steps).
    Tiny,
    /// 5.5 M parameters with the ~2,000 tokens the BPE learns from the synthetic text (6.3 M
    /// at a full 4096 vocabulary): 3 layers, hidden 384, SwiGLU 1024, 6 heads / 2 KV heads
    /// (the default: about 8 minutes on 2 cores).
    Small,
    /// 15.5 M parameters at a full vocabulary: 8 layers, hidden 384, vocabulary up to 8192.
    Medium,
}

/// Shape of the tiny model, before the vocabulary size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelShape {
    /// Hidden size.
    pub hidden_size: usize,
    /// SwiGLU inner size.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_kv_heads: usize,
    /// Tokenizer vocabulary size to train.
    pub vocab_size: usize,
    /// Longest sequence trained on and positions the RoPE tables cover.
    pub max_seq_len: usize,
}

impl ModelSize {
    /// The shape of this preset.
    pub fn shape(self) -> ModelShape {
        match self {
            ModelSize::Tiny => ModelShape {
                hidden_size: 96,
                intermediate_size: 256,
                num_layers: 2,
                num_heads: 4,
                num_kv_heads: 2,
                vocab_size: 1024,
                max_seq_len: 384,
            },
            ModelSize::Small => ModelShape {
                hidden_size: 384,
                intermediate_size: 1024,
                num_layers: 3,
                num_heads: 6,
                num_kv_heads: 2,
                vocab_size: 4096,
                max_seq_len: 512,
            },
            ModelSize::Medium => ModelShape {
                hidden_size: 384,
                intermediate_size: 1024,
                num_layers: 8,
                num_heads: 8,
                num_kv_heads: 2,
                vocab_size: 8192,
                max_seq_len: 512,
            },
        }
    }
}

/// Training defaults that suit a base model (each can be overridden by its flag).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    /// Pre-training steps (`--pretrain-steps`).
    pub pretrain_steps: usize,
    /// Peak pre-training learning rate (`--pretrain-lr`).
    pub pretrain_lr: f64,
    /// Peak QLoRA learning rate (`--lr`).
    pub finetune_lr: f64,
    /// QLoRA steps (`--steps`).
    pub finetune_steps: usize,
}

impl Recipe {
    /// `--quick`, whatever the preset (the tiny one unless --model-size says otherwise).
    pub const QUICK: Recipe = Recipe {
        pretrain_steps: 300,
        pretrain_lr: 5e-3,
        finetune_lr: 5e-3,
        finetune_steps: 120,
    };
}

/// Peak QLoRA learning rate with `--model DIR`: the QLoRA paper's rate for 7-13 B models.
pub const PRETRAINED_FINETUNE_LR: f64 = 2e-4;

/// QLoRA steps with `--model DIR`.
pub const PRETRAINED_FINETUNE_STEPS: usize = 300;

impl ModelSize {
    /// The training defaults of this preset. Larger models take a lower QLoRA rate (the
    /// small preset diverges at the tiny one's 1e-2) and, to stay within minutes, fewer
    /// pre-training steps at a higher rate.
    pub fn recipe(self) -> Recipe {
        match self {
            ModelSize::Tiny => Recipe {
                pretrain_steps: 300,
                pretrain_lr: 3e-3,
                finetune_lr: 1e-2,
                finetune_steps: 300,
            },
            ModelSize::Small | ModelSize::Medium => Recipe {
                pretrain_steps: 150,
                pretrain_lr: 4e-3,
                finetune_lr: 3e-3,
                finetune_steps: 500,
            },
        }
    }
}

fn as_display<S: Serializer, T: std::fmt::Display>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Where the base model comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaseModel {
    /// Train a tokenizer and pre-train a small model of this preset from scratch.
    Tiny {
        /// The preset.
        size: ModelSize,
        /// Its shape.
        shape: ModelShape,
        /// Pre-training steps.
        pretrain_steps: usize,
        /// Peak learning rate of pre-training.
        pretrain_lr: f64,
    },
    /// Load a Hugging Face checkpoint.
    Pretrained {
        /// Checkpoint directory.
        model: PathBuf,
        /// Its tokenizer.json.
        tokenizer: PathBuf,
        /// `--chat-template` (auto, llama2, llama3 or a .jinja path).
        #[serde(serialize_with = "as_display")]
        chat_template: ChatTemplateArg,
    },
}

/// The resolved, validated settings of one demo run. Serialized into metrics.json (so it
/// holds nothing machine-dependent: the output directory is left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunConfig {
    /// Output directory.
    #[serde(skip)]
    pub out: PathBuf,
    /// Whether --quick was given.
    pub quick: bool,
    /// Master seed.
    pub seed: u64,
    /// Synthetic cases over the four tasks.
    pub cases: usize,
    /// Test cases evaluated per task.
    pub eval_cases_per_task: usize,
    /// QLoRA fine-tuning steps.
    pub finetune_steps: usize,
    /// The base model.
    pub base: BaseModel,
    /// LoRA rank.
    pub lora_r: usize,
    /// LoRA alpha.
    pub lora_alpha: f64,
    /// Peak learning rate of fine-tuning.
    pub finetune_lr: f64,
    /// Warmup fraction of the steps (linear warmup, then cosine decay).
    pub warmup_fraction: f64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Maximum new tokens generated per answer.
    pub max_new_tokens: usize,
    /// Where it computes.
    #[serde(serialize_with = "display")]
    pub device: DeviceChoice,
}

fn display<S: Serializer>(d: &DeviceChoice, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Fewest cases that still give every task a train, a val and a test case.
pub const MIN_CASES: usize = 40;

impl RunConfig {
    /// Resolves the flags: fills in defaults (depending on --quick) and checks ranges.
    ///
    /// # Errors
    ///
    /// A message naming the flag when a value is out of range.
    pub fn from_args(args: &DemoArgs) -> Result<Self> {
        let quick = args.quick;
        let pick = |v: Option<usize>, normal: usize, fast: usize| {
            v.unwrap_or(if quick { fast } else { normal })
        };
        let cases = pick(args.cases, 2000, 400);
        if cases < MIN_CASES {
            bail!("--cases {cases}: need at least {MIN_CASES} (10 per task)");
        }
        let eval_cases_per_task = pick(args.eval_cases, 24, 8);
        if eval_cases_per_task == 0 {
            bail!("--eval-cases must be at least 1");
        }
        let size = args.model_size.unwrap_or(if quick {
            ModelSize::Tiny
        } else {
            ModelSize::Small
        });
        let recipe = if quick { Recipe::QUICK } else { size.recipe() };
        let positive = |v: Option<f64>, default: f64, flag: &str| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                bail!("{flag} {x}: must be a positive number")
            }
            Some(x) => Ok(x),
            None => Ok(default),
        };
        let base = match (&args.model, &args.tokenizer) {
            (Some(model), Some(tokenizer)) => BaseModel::Pretrained {
                model: model.clone(),
                tokenizer: tokenizer.clone(),
                chat_template: match args.chat_template.clone().unwrap_or(ChatTemplateArg::Auto) {
                    ChatTemplateArg::None => {
                        bail!("--chat-template none: the demo prompts with a chat template")
                    }
                    t => t,
                },
            },
            (None, None) => {
                let pretrain_steps = args.pretrain_steps.unwrap_or(recipe.pretrain_steps);
                if pretrain_steps == 0 {
                    bail!("--pretrain-steps must be at least 1");
                }
                BaseModel::Tiny {
                    size,
                    shape: size.shape(),
                    pretrain_steps,
                    pretrain_lr: positive(args.pretrain_lr, recipe.pretrain_lr, "--pretrain-lr")?,
                }
            }
            _ => bail!("--model and --tokenizer go together"),
        };
        let pretrained = matches!(base, BaseModel::Pretrained { .. });
        if pretrained
            && (args.model_size.is_some()
                || args.pretrain_steps.is_some()
                || args.pretrain_lr.is_some())
        {
            bail!(
                "--model-size, --pretrain-steps and --pretrain-lr apply to the model trained from scratch, not to --model"
            );
        }
        let (default_lr, default_steps) = match (pretrained, quick) {
            (true, false) => (PRETRAINED_FINETUNE_LR, PRETRAINED_FINETUNE_STEPS),
            _ => (recipe.finetune_lr, recipe.finetune_steps),
        };
        let finetune_steps = args.steps.unwrap_or(default_steps);
        if finetune_steps == 0 {
            bail!("--steps must be at least 1");
        }
        let finetune_lr = positive(args.lr, default_lr, "--lr")?;
        let batch_size = pick(args.batch_size, 8, 4);
        if batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        Ok(Self {
            out: args.out.clone(),
            quick,
            seed: args.seed,
            cases,
            eval_cases_per_task,
            finetune_steps,
            base,
            lora_r: 16,
            lora_alpha: 32.0,
            finetune_lr,
            warmup_fraction: 0.1,
            batch_size,
            max_new_tokens: if quick { 96 } else { 160 },
            device: args.device.unwrap_or_else(DeviceChoice::auto),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunConfig> {
        let raw = DemoArgs::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))?;
        RunConfig::from_args(&raw)
    }

    #[test]
    fn defaults_and_quick_defaults_differ() {
        let normal = parse(&[]).unwrap();
        let quick = parse(&["--quick"]).unwrap();
        assert_eq!(normal.out, PathBuf::from("demo-output"));
        assert_eq!((normal.cases, quick.cases), (2000, 400));
        assert_eq!((normal.finetune_steps, quick.finetune_steps), (500, 120));
        assert_eq!((normal.finetune_lr, quick.finetune_lr), (3e-3, 5e-3));
        assert!(matches!(
            normal.base,
            BaseModel::Tiny {
                size: ModelSize::Small,
                pretrain_steps: 150,
                pretrain_lr: 4e-3,
                ..
            }
        ));
        let tiny = parse(&["--model-size", "tiny"]).unwrap();
        assert_eq!((tiny.finetune_lr, tiny.finetune_steps), (1e-2, 300));
        assert!(matches!(
            tiny.base,
            BaseModel::Tiny {
                size: ModelSize::Tiny,
                pretrain_steps: 300,
                pretrain_lr: 3e-3,
                ..
            }
        ));
        let ckpt = parse(&["--model", "m", "--tokenizer", "t.json"]).unwrap();
        assert_eq!((ckpt.finetune_lr, ckpt.finetune_steps), (2e-4, 300));
        assert!(matches!(
            quick.base,
            BaseModel::Tiny {
                size: ModelSize::Tiny,
                pretrain_steps: 300,
                pretrain_lr: 5e-3,
                ..
            }
        ));
    }

    #[test]
    fn explicit_flags_override_quick() {
        let c = parse(&[
            "--quick",
            "--cases",
            "100",
            "--steps",
            "7",
            "--model-size",
            "medium",
            "--seed",
            "9",
            "--out",
            "x",
        ])
        .unwrap();
        assert_eq!((c.cases, c.finetune_steps, c.seed), (100, 7, 9));
        assert_eq!(c.out, PathBuf::from("x"));
        assert!(matches!(
            c.base,
            BaseModel::Tiny {
                size: ModelSize::Medium,
                ..
            }
        ));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = parse(&["--cases", "3"]).unwrap_err().to_string();
        assert!(e.contains("--cases 3"), "{e}");
        let e = parse(&["--steps", "0"]).unwrap_err().to_string();
        assert!(e.contains("--steps"), "{e}");
        assert!(
            parse(&["--model", "m"]).is_err(),
            "--model needs --tokenizer"
        );
        let e = parse(&[
            "--model",
            "m",
            "--tokenizer",
            "t.json",
            "--model-size",
            "tiny",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--model-size"), "{e}");
        let e = parse(&[
            "--model",
            "m",
            "--tokenizer",
            "t.json",
            "--pretrain-lr",
            "1e-3",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--pretrain-lr"), "{e}");
    }

    #[test]
    fn pretrained_base_keeps_its_paths() {
        let c = parse(&["--model", "m", "--tokenizer", "t.json"]).unwrap();
        assert_eq!(
            c.base,
            BaseModel::Pretrained {
                model: "m".into(),
                tokenizer: "t.json".into(),
                chat_template: ChatTemplateArg::Auto,
            }
        );
    }

    #[test]
    fn presets_grow() {
        let p = |s: ModelSize| {
            let m = s.shape();
            m.hidden_size * m.num_layers
        };
        assert!(p(ModelSize::Tiny) < p(ModelSize::Small));
        assert!(p(ModelSize::Small) < p(ModelSize::Medium));
        for s in [ModelSize::Tiny, ModelSize::Small, ModelSize::Medium] {
            let m = s.shape();
            assert_eq!(m.hidden_size % m.num_heads, 0);
            assert_eq!(m.num_heads % m.num_kv_heads, 0);
        }
    }
}
