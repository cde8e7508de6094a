//! The end-to-end demo (`demo` binary): synthetic data → tokenizer and tiny LLaMA →
//! pre-training → NF4 + QLoRA fine-tuning → evaluation of base vs fine-tuned → report.
//!
//! Each stage lives in its own module and is timed by [`Stages`]; [`run`] chains them. The
//! demo only composes the libraries (ro-tasks, llama-model, qlora-core, ro-metrics): it holds
//! no model, training or metric logic of its own.

pub mod config;
pub mod data;
pub mod evaluation;
pub mod plots;
pub mod progress;
pub mod report;
pub mod sequences;
pub mod summary;
pub mod training;

use anyhow::{anyhow, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use llama_model::{
    load_pretrained, save_adapter, save_pretrained, AdapterConfig, Llama, LlamaConfig,
    LlamaTokenizer, LoadOptions, RandomInit, RopeScaling, TrainMode,
};
use qlora_core::lora::FrozenBase;
use qlora_core::train::{trainable_params, Example as TokenExample};
use qlora_core::{LoraConfig, LoraLinear, OptimizerKind, TargetModule};
use ro_tasks::TaskKind;

pub use config::{DemoArgs, RunConfig};
pub use progress::Stages;
pub use report::{write_report, ReportFiles};
pub use summary::{DemoSummary, RunStats};

use crate::evaluate::json::write_atomically;
use config::{BaseModel, ModelShape};
use data::DemoData;
use evaluation::EvalTask;
use summary::{LossCurves, ModelSummary};
use training::{train, RunSettings};

/// The CPU backend the demo computes on.
pub type Cpu = NdArray<f32>;
/// Its autodiff wrapper, for training.
pub type Train = Autodiff<Cpu>;

/// Tokens per pre-training block.
pub const PRETRAIN_BLOCK: usize = 128;

/// Device memory the paged AdamW of fine-tuning may use for optimizer state (the rest is
/// paged from host memory, as bitsandbytes' paged optimizers do; on the CPU backend both are
/// host memory, so this only exercises the paging).
pub const OPTIMIZER_DEVICE_BUDGET: u64 = 256 << 10;

/// Validation examples per task used for the fine-tuning validation loss.
pub const VAL_EXAMPLES_PER_TASK: usize = 8;

/// The tiny model's config: the preset's shape, Llama-3-style (GQA, llama3 RoPE scaling with
/// theta 500000, tied embeddings), special ids of the trained tokenizer.
pub fn tiny_config(shape: &ModelShape, tok: &LlamaTokenizer) -> LlamaConfig {
    let mut c = LlamaConfig::tiny(tok.vocab_size());
    c.hidden_size = shape.hidden_size;
    c.intermediate_size = shape.intermediate_size;
    c.num_hidden_layers = shape.num_layers;
    c.num_attention_heads = shape.num_heads;
    c.num_key_value_heads = shape.num_kv_heads;
    c.head_dim = shape.hidden_size / shape.num_heads;
    c.max_position_embeddings = shape.max_seq_len;
    c.rope_theta = 500_000.0;
    c.rope_scaling = RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
    };
    c.tie_word_embeddings = true;
    c.bos_token_ids = tok.token_to_id("<|begin_of_text|>").into_iter().collect();
    c.eos_token_ids = tok.stop_ids();
    c.pad_token_id = Some(sequences::pad_id(tok));
    c
}

/// The seven projections of every layer.
fn projections<B: burn::tensor::backend::Backend>(m: &Llama<B>) -> Vec<&LoraLinear<B>> {
    m.layers
        .iter()
        .flat_map(|l| {
            let (a, p) = (&l.self_attn, &l.mlp);
            [
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &p.gate_proj,
                &p.up_proj,
                &p.down_proj,
            ]
        })
        .collect()
}

/// Bytes of the NF4 projections (codes, absmax, double-quantization state, quant map) and of
/// the same weights in f32.
fn nf4_footprint<B: burn::tensor::backend::Backend>(m: &Llama<B>) -> (usize, usize) {
    let (mut nf4, mut f32s) = (0, 0);
    for p in projections(m) {
        f32s += p.in_features() * p.out_features() * 4;
        nf4 += match &p.base {
            FrozenBase::Nf4(q) => q
                .quant_state()
                .to_tensors("w")
                .iter()
                .map(|(_, t)| t.data.len())
                .sum(),
            FrozenBase::Dense(_) => p.in_features() * p.out_features() * 4,
        };
    }
    (nf4, f32s)
}

/// How often each training example of a task is repeated in the fine-tuning mix. The loss
/// is a mean over target tokens, so a letter (~140 answer tokens) would outweigh a modality
/// answer (~3 tokens) fifty-fold; repeating the short-answer tasks keeps them from being
/// drowned, as multi-task instruction tuning sets mixing ratios.
pub fn task_repeats(task: TaskKind) -> usize {
    match task {
        TaskKind::Letters => 1,
        TaskKind::Regimen => 2,
        TaskKind::Modality | TaskKind::Icd10 => 4,
    }
}

fn sft_examples<'a>(
    tok: &LlamaTokenizer,
    tasks: impl Iterator<Item = (TaskKind, &'a [ro_tasks::Example])>,
    max_len: usize,
    repeat: bool,
) -> Result<Vec<TokenExample>> {
    let mut out = Vec::new();
    for (task, examples) in tasks {
        let times = if repeat { task_repeats(task) } else { 1 };
        for e in examples {
            let ex = sequences::sft_example(tok, e, task, max_len)?;
            out.extend(std::iter::repeat_n(ex, times));
        }
    }
    Ok(out)
}

/// Runs the whole demo and writes the report into `config.out`.
///
/// # Errors
///
/// A stage that fails (the message names the stage and file).
pub fn run(config: &RunConfig) -> Result<ReportFiles> {
    run_with(config, false)
}

/// [`run`], with progress display off when `hidden`.
///
/// # Errors
///
/// As [`run`].
pub fn run_with(config: &RunConfig, hidden: bool) -> Result<ReportFiles> {
    let out = &config.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut stages = Stages::new(hidden);
    let device = Default::default();

    // 1. data
    let stage = stages.start("data", None);
    let data = DemoData::generate(config.cases, config.seed);
    data.write(&out.join("data"))?;
    let mut sizes = data.sizes();
    let msg = sizes
        .per_task
        .iter()
        .map(|(t, a, b, c)| format!("{t} {a}/{b}/{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    stages.finish(
        stage,
        format!("{} cases (train/val/test: {msg})", config.cases),
    );

    // 2. tokenizer, 3. pre-training, 4. quantization
    let base_dir = out.join("base-model");
    let (tok, pretrain_curves, base_params, model_dir) = match &config.base {
        BaseModel::Tiny {
            shape,
            pretrain_steps,
            ..
        } => {
            let stage = stages.start("tokenizer", None);
            let tok = sequences::train_tokenizer(&data, shape.vocab_size)?;
            stages.finish(
                stage,
                format!("byte-level BPE, {} tokens", tok.vocab_size()),
            );

            let stage = stages.start("pre-train", Some(*pretrain_steps as u64));
            let (blocks, n_tokens) =
                sequences::pretrain_blocks(&tok, &data.pretrain_train, PRETRAIN_BLOCK)?;
            let (val_blocks, _) =
                sequences::pretrain_blocks(&tok, &data.pretrain_val, PRETRAIN_BLOCK)?;
            let val_blocks: Vec<TokenExample> = val_blocks.into_iter().take(16).collect();
            sizes.pretrain_tokens = n_tokens;
            let lcfg = tiny_config(shape, &tok);
            let init = RandomInit {
                std: 0.02,
                seed: config.seed,
            };
            let model = Llama::<Train>::random(&lcfg, &init, &device)
                .map_err(|e| anyhow!("building the tiny model: {e}"))?
                .set_trainable(TrainMode::FullParameter)
                .map_err(|e| anyhow!("making the tiny model trainable: {e}"))?;
            let params = model.num_params();
            let settings = RunSettings {
                steps: *pretrain_steps as u64,
                batch_size: config.batch_size,
                lr: config.pretrain_lr,
                warmup_fraction: config.warmup_fraction,
                max_seq_len: PRETRAIN_BLOCK,
                seed: config.seed,
                pad_id: sequences::pad_id(&tok),
                optimizer: OptimizerKind::AdamW,
            };
            let trained = train(model, &blocks, &val_blocks, &settings, stage.bar())?;
            stages.record_throughput("pre-training", trained.tokens_per_second);
            let last = trained.curves.val.last().map_or(f64::NAN, |p| p.loss.0);
            stages.finish(
                stage,
                format!(
                    "{params} parameters, {} blocks of {PRETRAIN_BLOCK} tokens, validation loss {last:.3}",
                    blocks.len()
                ),
            );

            let stage = stages.start("save base", None);
            let dense: Llama<Cpu> = trained.model.valid();
            save_pretrained(&dense, &base_dir)
                .map_err(|e| anyhow!("saving {}: {e}", base_dir.display()))?;
            let json = tok
                .inner()
                .to_string(false)
                .map_err(|e| anyhow!("serializing the tokenizer: {e}"))?;
            write_atomically(&base_dir.join("tokenizer.json"), json.as_bytes())?;
            stages.finish(stage, format!("HF checkpoint {}", base_dir.display()));
            (tok, trained.curves, params, base_dir.clone())
        }
        BaseModel::Pretrained { model, tokenizer } => {
            let stage = stages.start("tokenizer", None);
            let tok = LlamaTokenizer::from_file(tokenizer)
                .map_err(|e| anyhow!("{}: {e}", tokenizer.display()))?;
            stages.finish(stage, format!("{} tokens", tok.vocab_size()));
            (tok, LossCurves::default(), 0, model.clone())
        }
    };

    let stage = stages.start("quantize", None);
    let quantized =
        load_pretrained::<Train>(&model_dir, &LoadOptions { load_in_4bit: true }, &device)
            .map_err(|e| anyhow!("loading {} in 4 bit: {e}", model_dir.display()))?;
    let lcfg = quantized.config().clone();
    let (nf4_bytes, f32_bytes) = nf4_footprint(&quantized);
    let base_params = if base_params == 0 {
        quantized.num_params()
    } else {
        base_params
    };
    let base_eval: Llama<Cpu> = quantized.valid();
    stages.finish(
        stage,
        format!(
            "NF4 + double quant, projections {:.2} MiB -> {:.2} MiB",
            f32_bytes as f64 / 1048576.0,
            nf4_bytes as f64 / 1048576.0
        ),
    );

    // 5. QLoRA fine-tuning
    let pad = sequences::pad_id(&tok);
    let max_len = lcfg.max_position_embeddings;
    let train_set = sft_examples(
        &tok,
        data.tasks.iter().map(|t| (t.task, t.train.as_slice())),
        max_len,
        true,
    )?;
    let val_set = sft_examples(
        &tok,
        data.tasks.iter().map(|t| {
            let n = t.val.len().min(VAL_EXAMPLES_PER_TASK);
            (t.task, &t.val[..n])
        }),
        max_len,
        false,
    )?;
    let stage = stages.start("fine-tune", Some(config.finetune_steps as u64));
    let lora =
        LoraConfig::new(config.lora_r, config.lora_alpha).with_targets(TargetModule::ALL.to_vec());
    let model = quantized
        .with_lora(&lora, config.seed)
        .map_err(|e| anyhow!("attaching LoRA adapters: {e}"))?;
    let trainable: usize = trainable_params(&model)
        .values()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    let settings = RunSettings {
        steps: config.finetune_steps as u64,
        batch_size: config.batch_size,
        lr: config.finetune_lr,
        warmup_fraction: config.warmup_fraction,
        max_seq_len: max_len,
        seed: config.seed,
        pad_id: pad,
        optimizer: OptimizerKind::PagedAdamW {
            device_budget_bytes: OPTIMIZER_DEVICE_BUDGET,
        },
    };
    let tuned = train(model, &train_set, &val_set, &settings, stage.bar())?;
    stages.record_throughput("QLoRA fine-tuning", tuned.tokens_per_second);
    let adapter_dir = out.join("adapter");
    save_adapter(
        &tuned.model,
        &adapter_dir,
        &AdapterConfig::new(config.lora_r, config.lora_alpha, &TargetModule::ALL),
    )
    .map_err(|e| anyhow!("saving the adapter to {}: {e}", adapter_dir.display()))?;
    let last = tuned.curves.val.last().map_or(f64::NAN, |p| p.loss.0);
    stages.finish(
        stage,
        format!(
            "{} examples, {trainable} LoRA parameters, validation loss {last:.3}; adapter {}",
            train_set.len(),
            adapter_dir.display()
        ),
    );
    let tuned_eval: Llama<Cpu> = tuned.model.valid();

    // 6. evaluation
    let tasks = data
        .tasks
        .iter()
        .filter(|t| !t.test.is_empty())
        .map(|t| {
            EvalTask::new(
                &tok,
                t.task,
                &t.test,
                config.eval_cases_per_task,
                config.max_new_tokens,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let total: usize = tasks.iter().map(|t| 2 * t.cases.len()).sum();
    let stage = stages.start("evaluate", Some(total as u64));
    let (mut comparisons, mut confusion, mut class_scores, mut examples) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in &tasks {
        stage.bar().set_message(t.task.to_string());
        let base = evaluation::answer(&base_eval, &tok, t, pad, stage.bar())?;
        let tuned = evaluation::answer(&tuned_eval, &tok, t, pad, stage.bar())?;
        let (bs, ts) = (evaluation::score(t, &base)?, evaluation::score(t, &tuned)?);
        comparisons.extend(evaluation::comparisons(&bs, &ts)?);
        if t.task == TaskKind::Modality {
            confusion.extend(evaluation::confusion("base", &bs));
            confusion.extend(evaluation::confusion("fine-tuned", &ts));
            class_scores.push(evaluation::class_scores("base", t, &base)?);
            class_scores.push(evaluation::class_scores("fine-tuned", t, &tuned)?);
        }
        examples.extend(evaluation::examples(t, &base, &tuned));
    }
    let better = comparisons
        .iter()
        .filter(|c| c.finetuned.mean.0 > c.base.mean.0)
        .count();
    stages.finish(
        stage,
        format!(
            "{} answers; fine-tuned above base on {better} of {} metrics",
            total,
            comparisons.len()
        ),
    );

    // 7. report
    let summary = DemoSummary {
        config: config.clone(),
        data: sizes,
        model: ModelSummary {
            parameters: base_params,
            trainable_parameters: trainable,
            vocab_size: lcfg.vocab_size,
            layers: lcfg.num_hidden_layers,
            hidden_size: lcfg.hidden_size,
            heads: (lcfg.num_attention_heads, lcfg.num_key_value_heads),
            nf4_bytes,
            f32_bytes,
        },
        pretrain: pretrain_curves,
        finetune: tuned.curves,
        comparisons,
        confusion,
        class_scores,
        examples,
    };
    write_report(out, &summary, &stages.into_stats())
}
