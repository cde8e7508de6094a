//! `generate`: run a LLaMA checkpoint (Hugging Face directory) on one prompt and print one
//! JSON line `{"prompt_ids":[..],"token_ids":[..new..],"text":".."}`.
//!
//! Tokens per second (prefill and decode) go to stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use llama_model::{
    generate, load_adapter, load_pretrained, save_tensors_f32, ChatMessage, GenerationConfig,
    Llama, LlamaInput, LlamaTokenizer, LoadOptions, Role, Sampling,
};

type Backend = NdArray<f32>;

/// Generate text with a LLaMA-2/3 checkpoint (config.json + safetensors).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Model directory (config.json, model.safetensors or sharded index; bitsandbytes 4-bit
    /// checkpoints are read too).
    #[arg(long)]
    model: PathBuf,
    /// PEFT adapter directory (adapter_config.json + adapter_model.safetensors) applied on top.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// tokenizer.json to use (default: MODEL/tokenizer.json). Needed for --prompt and for
    /// the "text" output.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Prompt text (encoded with the tokenizer, BOS added by its post-processor).
    #[arg(
        long,
        conflicts_with = "token_ids",
        required_unless_present = "token_ids"
    )]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids, e.g. 1,2,3 (used as given, nothing added).
    #[arg(long, value_delimiter = ',')]
    token_ids: Option<Vec<u32>>,
    /// Wrap --prompt as a user message in the tokenizer's chat template (Llama-2 or
    /// Llama-3, detected from the vocabulary) with the generation prompt.
    #[arg(long, requires = "prompt")]
    chat: bool,
    /// Maximum number of new tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Greedy decoding (the default when no --temperature is given).
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    greedy: bool,
    /// Sampling temperature (> 0); enables sampling.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling: keep the smallest set of tokens reaching this probability (0, 1].
    #[arg(long, requires = "temperature")]
    top_p: Option<f32>,
    /// Keep only the K most likely tokens.
    #[arg(long, requires = "temperature")]
    top_k: Option<usize>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Repetition penalty (1 = off), as transformers' `repetition_penalty`.
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Quantize the projections to NF4 while loading.
    #[arg(long)]
    load_in_4bit: bool,
    /// Write the prompt's prefill logits (F32 [1, L, vocab], key "logits") to this
    /// safetensors file.
    #[arg(long)]
    dump_logits: Option<PathBuf>,
    /// Compute device: cpu (this build has no CUDA backend).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() {
    env_logger::init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("generate: error: {e:#}");
        std::process::exit(1);
    }
}

fn load_tokenizer(args: &Args) -> Result<Option<LlamaTokenizer>> {
    let path = match &args.tokenizer {
        Some(p) => p.clone(),
        None => args.model.join("tokenizer.json"),
    };
    if path.exists() {
        Ok(Some(LlamaTokenizer::from_file(&path).with_context(
            || format!("reading tokenizer {}", path.display()),
        )?))
    } else if args.tokenizer.is_some() {
        bail!("--tokenizer {}: file not found", path.display())
    } else {
        Ok(None)
    }
}

fn prompt_ids(args: &Args, tok: Option<&LlamaTokenizer>) -> Result<Vec<u32>> {
    if let Some(ids) = &args.token_ids {
        if ids.is_empty() {
            bail!("--token-ids: empty list");
        }
        return Ok(ids.clone());
    }
    let text = args.prompt.as_deref().unwrap_or_default();
    let tok = tok.with_context(|| {
        format!(
            "--prompt needs a tokenizer: pass --tokenizer FILE or put tokenizer.json in {}",
            args.model.display()
        )
    })?;
    let ids = if args.chat {
        tok.apply_chat_template(&[ChatMessage::new(Role::User, text)], true)?
    } else {
        tok.encode(text, true)?
    };
    if ids.is_empty() {
        bail!("--prompt: encodes to zero tokens");
    }
    Ok(ids)
}

fn apply_adapter(model: Llama<Backend>, adapter: &Path) -> Result<Llama<Backend>> {
    load_adapter(model, adapter).with_context(|| format!("--adapter {}", adapter.display()))
}

fn dump_logits(model: &Llama<Backend>, ids: &[u32], path: &Path) -> Result<()> {
    let device = model.device();
    let input = Tensor::<Backend, 2, Int>::from_data(
        TensorData::new(ids.iter().map(|&t| t as i64).collect(), [1, ids.len()]),
        &device,
    );
    let logits = model.forward(LlamaInput::new(input))?;
    let shape = logits.dims().to_vec();
    let values: Vec<f32> = logits
        .into_data()
        .to_vec()
        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    save_tensors_f32(path, &[("logits".to_string(), shape, bytes)])
        .with_context(|| format!("--dump-logits {}", path.display()))
}

fn run(args: Args) -> Result<()> {
    if args.device != "cpu" {
        bail!(
            "--device {}: this build only has the cpu backend",
            args.device
        );
    }
    let device = Default::default();
    let sampling = match args.temperature {
        Some(temperature) if !args.greedy => Sampling::Sample {
            temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        },
        _ => Sampling::Greedy,
    };
    let tok = load_tokenizer(&args)?;
    let ids = prompt_ids(&args, tok.as_ref())?;

    let t0 = Instant::now();
    let options = LoadOptions {
        load_in_4bit: args.load_in_4bit,
    };
    let mut model = load_pretrained::<Backend>(&args.model, &options, &device)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    if let Some(adapter) = &args.adapter {
        model = apply_adapter(model, adapter)?;
    }
    log::info!("loaded {} in {:.2?}", args.model.display(), t0.elapsed());

    if let Some(path) = &args.dump_logits {
        dump_logits(&model, &ids, path)?;
    }

    let mut stop_ids = model.config().eos_token_ids.clone();
    if let Some(t) = &tok {
        for id in t.stop_ids() {
            if !stop_ids.contains(&id) {
                stop_ids.push(id);
            }
        }
    }
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        sampling,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
        stop_ids,
        pad_id: model.config().pad_token_id.unwrap_or(0),
    };
    let bar = ProgressBar::new(args.max_new_tokens as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} generating {pos}/{len} tokens [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut first_token_at = None;
    let out = generate(&model, std::slice::from_ref(&ids), &config, |_| {
        first_token_at.get_or_insert_with(Instant::now);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let new = out.into_iter().next().unwrap_or_default();
    let end = Instant::now();
    if let Some(first) = first_token_at {
        let prefill = first.duration_since(start).as_secs_f64();
        let decode = end.duration_since(first).as_secs_f64();
        eprintln!(
            "prefill: {} tokens in {:.3}s ({:.1} tokens/s); decode: {} tokens in {:.3}s ({:.1} tokens/s)",
            ids.len(),
            prefill,
            ids.len() as f64 / prefill.max(1e-9),
            new.len().saturating_sub(1),
            decode,
            new.len().saturating_sub(1) as f64 / decode.max(1e-9)
        );
    }
    let text = match &tok {
        Some(t) => t.decode(&new, true)?,
        None => String::new(),
    };
    let line = serde_json::json!({
        "prompt_ids": ids,
        "token_ids": new,
        "text": text,
    });
    println!("{line}");
    Ok(())
}
