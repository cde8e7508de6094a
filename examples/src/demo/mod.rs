//! The end-to-end demo (`demo` binary): synthetic data → tokenizer and tiny LLaMA →
//! pre-training → NF4 + QLoRA fine-tuning → evaluation of base vs fine-tuned → a blinded
//! clinician review packet → report.
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
pub mod review;
pub mod sequences;
pub mod summary;
pub mod training;

use anyhow::{anyhow, bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::Backend;
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

use crate::device::{DtypeChoice, OnBackend};
use config::{BaseModel, ModelShape};
use data::DemoData;
use evaluation::EvalTask;
use summary::{LossCurves, ModelSummary};
use training::{train, RunSettings};

/// The CPU backend of the demo (`--device cpu`).
pub type Cpu = NdArray<f32>;
/// Its autodiff wrapper, for training.
pub type Train = Autodiff<Cpu>;

/// Tokens per pre-training block.
pub const PRETRAIN_BLOCK: usize = 128;

/// Token budget of a fine-tuning micro-batch ([`qlora_core::TrainConfig::micro_batch_tokens`]):
/// a step of 8 examples is split by length, so that the short answers are not padded to the
/// length of a letter (about 450 tokens with its prompt) in the same step. Same gradient;
/// measured on the small preset, 300 steps took 200 s instead of 305 s.
pub const FINETUNE_MICRO_BATCH_TOKENS: usize = 1024;

/// Device memory the paged AdamW of fine-tuning may use for optimizer state (the rest is
/// paged from host memory, as bitsandbytes' paged optimizers do; on the CPU backend both are
/// host memory, so this only exercises the paging).
pub const OPTIMIZER_DEVICE_BUDGET: u64 = 256 << 10;

/// Validation examples per task used for the fine-tuning validation loss.
pub const VAL_EXAMPLES_PER_TASK: usize = 8;

/// The tiny model's config: [`shape_config`] with the special ids of the trained tokenizer.
pub fn tiny_config(shape: &ModelShape, tok: &LlamaTokenizer) -> LlamaConfig {
    let mut c = shape_config(shape, tok.vocab_size());
    c.bos_token_ids = tok.token_to_id("<|begin_of_text|>").into_iter().collect();
    c.eos_token_ids = tok.stop_ids();
    c.pad_token_id = Some(sequences::pad_id(tok));
    c
}

/// A preset's shape as a Llama-3-style config (GQA, llama3 RoPE scaling with theta 500000,
/// tied embeddings) over `vocab_size` tokens.
pub fn shape_config(shape: &ModelShape, vocab_size: usize) -> LlamaConfig {
    let mut c = LlamaConfig::tiny(vocab_size);
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
            FrozenBase::Nf4(q) => q.to_quant_state().map_or(0, |s| {
                s.to_tensors("w").iter().map(|(_, t)| t.data.len()).sum()
            }),
            FrozenBase::Dense(_) => p.in_features() * p.out_features() * 4,
        };
    }
    (nf4, f32s)
}

/// Weights of the model as a dense checkpoint holds them (embeddings, projections, norms,
/// `lm_head` if untied): an NF4 model's [`Module::num_params`] counts packed codes instead.
fn weight_count<B: burn::tensor::backend::Backend>(m: &Llama<B>) -> usize {
    let c = m.config();
    let projections: usize = projections(m)
        .iter()
        .map(|p| p.in_features() * p.out_features())
        .sum();
    let embeddings = c.vocab_size * c.hidden_size;
    let head = if m.lm_head.is_some() { embeddings } else { 0 };
    let norms = (2 * c.num_hidden_layers + 1) * c.hidden_size;
    embeddings + projections + norms + head
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

/// Most upsampling of a rare modality class (see [`class_repeats`]).
pub const MAX_CLASS_REPEATS: usize = 8;

/// How often each modality training example is repeated on top of [`task_repeats`], by its
/// class: `sqrt(largest class / its class)`, rounded, between 1 and [`MAX_CLASS_REPEATS`].
/// Most cases get photons (most synthetic ones too), and a model fine-tuned on the natural mix
/// learns to answer `photon` to everything; square-root class-balanced upsampling is the usual
/// remedy. Returns one factor per example, in order.
pub fn class_repeats(examples: &[ro_tasks::Example]) -> Vec<usize> {
    let class = |e: &ro_tasks::Example| ro_tasks::Modality::parse(&e.target);
    let mut counts = std::collections::BTreeMap::new();
    for e in examples {
        *counts.entry(class(e)).or_insert(0usize) += 1;
    }
    let largest = counts.values().copied().max().unwrap_or(1);
    examples
        .iter()
        .map(|e| {
            let n = counts.get(&class(e)).copied().unwrap_or(1).max(1);
            ((largest as f64 / n as f64).sqrt().round() as usize).clamp(1, MAX_CLASS_REPEATS)
        })
        .collect()
}

fn sft_examples<'a>(
    tok: &LlamaTokenizer,
    tasks: impl Iterator<Item = (TaskKind, &'a [ro_tasks::Example])>,
    max_len: usize,
    repeat: bool,
) -> Result<Vec<TokenExample>> {
    let mut out = Vec::new();
    for (task, examples) in tasks {
        let balance = if repeat && task == TaskKind::Modality {
            class_repeats(examples)
        } else {
            vec![1; examples.len()]
        };
        let times = if repeat { task_repeats(task) } else { 1 };
        for (e, k) in examples.iter().zip(balance) {
            let ex = sequences::sft_example(tok, e, task, max_len)?;
            out.extend(std::iter::repeat_n(ex, times * k));
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
/// As [`run`]; `--device cuda` in a build without the `cuda` feature, or with no such GPU.
pub fn run_with(config: &RunConfig, hidden: bool) -> Result<ReportFiles> {
    config.device.run(DemoRun { config, hidden })
}

/// The demo on the backend `--device` picked (training on its autodiff wrapper).
struct DemoRun<'a> {
    config: &'a RunConfig,
    hidden: bool,
}

impl OnBackend for DemoRun<'_> {
    type Output = ReportFiles;

    fn run<B: Backend>(self, device: B::Device) -> Result<ReportFiles> {
        run_on::<B>(self.config, self.hidden, &device)
    }
}

fn run_on<B: Backend>(config: &RunConfig, hidden: bool, device: &B::Device) -> Result<ReportFiles> {
    let out = &config.out;
    let create_out =
        || std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()));
    let mut stages = Stages::new(hidden);

    // 1. data (written to OUT/data once the base model has loaded: a bad --model or
    // --tokenizer leaves no output behind)
    let stage = stages.start("data", None);
    let data = DemoData::generate(config.cases, config.seed);
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
    let (tok, pretrain_curves, model_dir) = match &config.base {
        BaseModel::Tiny {
            shape,
            pretrain_steps,
            pretrain_lr,
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
            let model = Llama::<Autodiff<B>>::random(&lcfg, &init, device)
                .map_err(|e| anyhow!("building the tiny model: {e}"))?
                .set_trainable(TrainMode::FullParameter)
                .map_err(|e| anyhow!("making the tiny model trainable: {e}"))?;
            let params = model.num_params();
            let settings = RunSettings {
                steps: *pretrain_steps as u64,
                batch_size: config.batch_size,
                lr: *pretrain_lr,
                warmup_fraction: config.warmup_fraction,
                max_seq_len: PRETRAIN_BLOCK,
                seed: config.seed,
                pad_id: sequences::pad_id(&tok),
                optimizer: OptimizerKind::AdamW,
                micro_batch_tokens: None,
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
            create_out()?;
            let dense: Llama<B> = trained.model.valid();
            save_pretrained(&dense, &base_dir)
                .map_err(|e| anyhow!("saving {}: {e}", base_dir.display()))?;
            // tokenizer.json, tokenizer_config.json and chat_template.jinja, as a real
            // checkpoint has them; stages 5-6 read them back from there like any checkpoint.
            tok.save(&base_dir)
                .map_err(|e| anyhow!("saving the tokenizer in {}: {e}", base_dir.display()))?;
            let saved = base_dir.join("tokenizer.json");
            let tok = LlamaTokenizer::from_file(&saved)
                .map_err(|e| anyhow!("{}: {e}", saved.display()))?;
            stages.finish(stage, format!("HF checkpoint {}", base_dir.display()));
            (tok, trained.curves, base_dir.clone())
        }
        BaseModel::Pretrained {
            model, tokenizer, ..
        } => {
            let stage = stages.start("tokenizer", None);
            let tok = LlamaTokenizer::from_file(tokenizer)
                .map_err(|e| anyhow!("{}: {e}", tokenizer.display()))?;
            stages.finish(stage, format!("{} tokens", tok.vocab_size()));
            (tok, LossCurves::default(), model.clone())
        }
    };

    let stage = stages.start("quantize", None);
    // QLoRA as the studies ran it: NF4 base, bf16 compute on CUDA (f32 on the CPU).
    let options = LoadOptions {
        load_in_4bit: true,
        dtype: Some(DtypeChoice::Auto.resolve(config.device)?),
    };
    let quantized = load_pretrained::<Autodiff<B>>(&model_dir, &options, device)
        .map_err(|e| anyhow!("loading {} in 4 bit: {e}", model_dir.display()))?;
    let lcfg = quantized.config().clone();
    if tok.vocab_size() > lcfg.vocab_size {
        bail!(
            "{}: the tokenizer has {} tokens but {}/config.json has vocab_size {}",
            match &config.base {
                BaseModel::Pretrained { tokenizer, .. } => tokenizer.display().to_string(),
                BaseModel::Tiny { .. } => "the trained tokenizer".to_string(),
            },
            tok.vocab_size(),
            model_dir.display(),
            lcfg.vocab_size
        );
    }
    // The checkpoint's own chat template (or the one --chat-template names), before anything
    // is written.
    let tok = match &config.base {
        BaseModel::Pretrained {
            tokenizer,
            chat_template,
            ..
        } => crate::chat_template::apply(tok, chat_template, tokenizer)?,
        BaseModel::Tiny { .. } => tok,
    };
    create_out()?;
    data.write(&out.join("data"))?;
    let (nf4_bytes, f32_bytes) = nf4_footprint(&quantized);
    let base_params = weight_count(&quantized);
    let base_eval: Llama<B> = quantized.valid();
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
        micro_batch_tokens: Some(FINETUNE_MICRO_BATCH_TOKENS),
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
    let tuned_eval: Llama<B> = tuned.model.valid();

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
    let mut answer_checks = Vec::new();
    let mut letters = None;
    for t in &tasks {
        stage.bar().set_message(t.task.to_string());
        let base = evaluation::answer(&base_eval, &tok, t, pad, stage.bar())?;
        let tuned = evaluation::answer(&tuned_eval, &tok, t, pad, stage.bar())?;
        let (bs, ts) = (evaluation::score(t, &base)?, evaluation::score(t, &tuned)?);
        comparisons.extend(evaluation::comparisons(&bs, &ts)?);
        answer_checks.extend(evaluation::answer_checks("base", &bs));
        answer_checks.extend(evaluation::answer_checks("fine-tuned", &ts));
        if t.task == TaskKind::Modality {
            confusion.extend(evaluation::confusion("base", &bs));
            confusion.extend(evaluation::confusion("fine-tuned", &ts));
            class_scores.push(evaluation::class_scores("base", t, &base)?);
            class_scores.push(evaluation::class_scores("fine-tuned", t, &tuned)?);
        }
        examples.extend(evaluation::examples(t, &base, &tuned));
        if t.task == TaskKind::Letters {
            letters = Some((t, base, tuned));
        }
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

    // 7. a clinician review packet of some letters
    let review = match letters {
        Some((t, base, tuned)) => {
            let stage = stages.start("review", None);
            let r = review::write_review(out, t, &base, &tuned, config.seed)?;
            stages.finish(
                stage,
                format!(
                    "packet {}: {} letters cases x {} blinded candidates; key {}, packets in {}",
                    r.packet,
                    r.cases,
                    r.models.len(),
                    out.join(&r.key).display(),
                    out.join("review/packets").display()
                ),
            );
            Some(r)
        }
        None => None,
    };

    // 8. report
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
        answer_checks,
        examples,
        review,
    };
    write_report(out, &summary, &stages.into_stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_sizes() {
        use config::ModelSize;
        let dev = Default::default();
        for (size, params) in [
            (ModelSize::Tiny, 301_536),
            (ModelSize::Small, 6_294_144),
            (ModelSize::Medium, 15_538_560),
        ] {
            let shape = size.shape();
            let c = shape_config(&shape, shape.vocab_size);
            assert!(c.num_key_value_heads < c.num_attention_heads, "GQA");
            assert!(matches!(c.rope_scaling, RopeScaling::Llama3 { .. }));
            let m = Llama::<Cpu>::random(&c, &RandomInit::default(), &dev).unwrap();
            assert_eq!(m.num_params(), params, "{size:?}");
            assert_eq!(weight_count(&m), params, "{size:?}");
        }
    }

    #[test]
    fn rare_modality_classes_are_upsampled_by_the_square_root() {
        let ex = |t: &str| ro_tasks::Example {
            id: String::new(),
            input: String::new(),
            target: t.into(),
            language: ro_tasks::Language::En,
        };
        let mut v: Vec<_> = (0..100).map(|_| ex("photon")).collect();
        v.extend((0..4).map(|_| ex("brachytherapy")));
        v.push(ex("electron"));
        v.push(ex("no idea"));
        let r = class_repeats(&v);
        assert_eq!(r[0], 1);
        assert_eq!(r[100], 5, "sqrt(100 / 4)");
        assert_eq!(r[104], MAX_CLASS_REPEATS, "sqrt(100) capped");
        assert_eq!(r[105], MAX_CLASS_REPEATS);
        assert!(class_repeats(&[]).is_empty());
    }
}
