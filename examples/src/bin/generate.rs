//! `generate`: run a LLaMA or Mistral checkpoint (Hugging Face directory) on one prompt or
//! conversation and print one JSON line `{"prompt_ids":[..],"token_ids":[..new..],"text":".."}`.
//!
//! Chat prompts (`--chat`, `--messages`) are rendered with the checkpoint's own Jinja chat
//! template (or the one `--chat-template` names). Tokens per second go to stderr.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use llama_model::{
    generate, load_adapter, load_pretrained, read_messages, save_tensors_f32, ChatMessage,
    GenerationConfig, HfGenerationConfig, Llama, LlamaConfig, LlamaInput, LlamaTokenizer,
    LoadOptions, ModelPreset, RandomInit, RenderOptions, Role, Sampling,
};
use qlora_core::QuantConfig;
use ro_examples::chat_template::{self, ChatTemplateArg};
use ro_examples::device::{DeviceChoice, DtypeChoice, OnBackend};
use ro_examples::finetune::base::name_adapter_file;

/// Generate text with a LLaMA-2/3 or Mistral checkpoint (config.json + safetensors).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Model directory (config.json, model.safetensors or sharded index; bitsandbytes 4-bit
    /// checkpoints are read too).
    #[arg(
        long,
        required_unless_present = "random_init",
        conflicts_with = "random_init"
    )]
    model: Option<PathBuf>,
    /// Instead of --model: a randomly initialised model (seeded by --seed, std 0.02) with the
    /// shapes of a public checkpoint (llama3-8b, llama2-13b, llama3.2-1b, llama3.1-8b,
    /// mistral-7b = Mistral-7B-v0.1 with its 4096-token sliding window, mistral-7b-v0.3) or
    /// of a config.json file, to measure speed and memory without downloading weights. Give
    /// the prompt with --token-ids (or --prompt with --tokenizer).
    #[arg(long, value_name = "PRESET|CONFIG.JSON")]
    random_init: Option<String>,
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
        conflicts_with_all = ["token_ids", "messages"],
        required_unless_present_any = ["token_ids", "messages"]
    )]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids, e.g. 1,2,3 (used as given, nothing added).
    #[arg(long, value_delimiter = ',', conflicts_with = "messages")]
    token_ids: Option<Vec<u32>>,
    /// A whole conversation: a JSON file holding a list of {"role", "content"} messages
    /// (roles system, user, assistant), rendered with the chat template and the generation
    /// prompt, as transformers' apply_chat_template(messages, add_generation_prompt=True).
    #[arg(long, value_name = "FILE.json")]
    messages: Option<PathBuf>,
    /// Wrap --prompt as one user message in the chat template, with the generation prompt.
    #[arg(long, requires = "prompt")]
    chat: bool,
    /// Render --messages / --chat without the generation prompt (the header that opens the
    /// model's turn), e.g. to let the model continue an open conversation as it likes.
    #[arg(long)]
    no_generation_prompt: bool,
    /// Chat template of --chat / --messages: auto (the checkpoint's own: chat_template.jinja
    /// or tokenizer_config.json's chat_template beside the tokenizer; an error when it has
    /// none), llama2 or llama3 (the built-in Llama-2-chat / Llama-3-instruct templates), or a
    /// path to a .jinja file.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|llama2|llama3|FILE.jinja"
    )]
    chat_template: ChatTemplateArg,
    /// Maximum number of new tokens; 0 prints the prompt ids only (the model is not loaded
    /// unless --dump-logits asks for its logits).
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
    /// Quantize the projections to NF4 (double quant, blocksize 64) while loading (also with
    /// --random-init).
    #[arg(long)]
    load_in_4bit: bool,
    /// Write the prompt's prefill logits (F32 [1, L, vocab], key "logits") to this
    /// safetensors file.
    #[arg(long)]
    dump_logits: Option<PathBuf>,
    /// Compute device: cpu, cuda (GPU 0) or cuda:N. Default: cuda:0 in a build with
    /// `--features cuda` when a GPU is visible, cpu otherwise. Without that feature `cuda`
    /// is an error.
    #[arg(long, value_name = "cpu|cuda[:N]")]
    device: Option<DeviceChoice>,
    /// Compute dtype of the model's weights and activations: auto (bf16 on CUDA, f32 on the
    /// CPU), f32, or bf16 (CUDA only). Logits are f32 either way.
    #[arg(long, value_enum, default_value_t = DtypeChoice::Auto)]
    dtype: DtypeChoice,
}

fn main() {
    env_logger::init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("generate: error: {e:#}");
        std::process::exit(1);
    }
}

/// The tokenizer file: --tokenizer, else MODEL/tokenizer.json.
fn tokenizer_path(args: &Args) -> Option<PathBuf> {
    match (&args.tokenizer, &args.model) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(model)) => Some(model.join("tokenizer.json")),
        (None, None) => None,
    }
}

fn load_tokenizer(args: &Args) -> Result<Option<LlamaTokenizer>> {
    let Some(path) = tokenizer_path(args) else {
        return Ok(None);
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

/// The prompt as ids, and the tokenizer with the chat template when the prompt is a chat.
fn prompt_ids(
    args: &Args,
    tok: Option<LlamaTokenizer>,
) -> Result<(Vec<u32>, Option<LlamaTokenizer>)> {
    if let Some(ids) = &args.token_ids {
        if ids.is_empty() {
            bail!("--token-ids: empty list");
        }
        return Ok((ids.clone(), tok));
    }
    let flag = if args.messages.is_some() {
        "--messages"
    } else {
        "--prompt"
    };
    let tok = tok.with_context(|| match &args.model {
        Some(model) => format!(
            "{flag} needs a tokenizer: pass --tokenizer FILE or put tokenizer.json in {}",
            model.display()
        ),
        None => format!("{flag} needs a tokenizer: pass --tokenizer FILE (or use --token-ids)"),
    })?;
    let messages = match (&args.messages, &args.prompt) {
        (Some(path), _) => Some(read_messages(path).context("--messages")?),
        (None, Some(text)) if args.chat => Some(vec![ChatMessage::new(Role::User, text.clone())]),
        _ => None,
    };
    let (ids, tok) = match messages {
        Some(messages) => {
            let path = tokenizer_path(args).unwrap_or_default();
            let tok = chat_template::apply(tok, &args.chat_template, &path)?;
            let options = RenderOptions::generation_prompt(!args.no_generation_prompt);
            let ids = tok.encode_chat(&messages, &options).context(flag)?;
            (ids, Some(tok))
        }
        None => (
            tok.encode(args.prompt.as_deref().unwrap_or_default(), true)?,
            Some(tok),
        ),
    };
    if ids.is_empty() {
        bail!("{flag}: encodes to zero tokens");
    }
    Ok((ids, tok))
}

/// Where generation stops: `generation_config.json`'s `eos_token_id` (else config.json's,
/// as transformers falls back), plus the chat template's end-of-turn token for chat prompts.
fn stop_ids(args: &Args, config: &LlamaConfig, chat: Option<&LlamaTokenizer>) -> Result<Vec<u32>> {
    let from_file = match &args.model {
        Some(dir) => HfGenerationConfig::from_dir(dir)?,
        None => None,
    };
    let mut ids = match from_file {
        Some(g) if g.eos_token_id.is_some() => g.eos_token_ids(),
        _ => config.eos_token_ids.clone(),
    };
    if let Some(eot) = chat.and_then(LlamaTokenizer::end_of_turn_id) {
        if !ids.contains(&eot) {
            ids.push(eot);
        }
    }
    Ok(ids)
}

fn apply_adapter<B: Backend>(model: Llama<B>, adapter: &Path) -> Result<Llama<B>> {
    load_adapter(model, adapter)
        .map_err(|e| name_adapter_file(adapter, e))
        .context("--adapter")
}

fn dump_logits<B: Backend>(model: &Llama<B>, ids: &[u32], path: &Path) -> Result<()> {
    let device = model.device();
    let input = Tensor::<B, 2, Int>::from_data(
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
    let chat = args.chat || args.messages.is_some();
    if !chat && args.no_generation_prompt {
        bail!("--no-generation-prompt: only with --chat or --messages");
    }
    if !chat && args.chat_template != ChatTemplateArg::Auto {
        bail!(
            "--chat-template {}: only with --chat or --messages",
            args.chat_template
        );
    }
    if args.chat_template == ChatTemplateArg::None {
        bail!("--chat-template none: generate renders --chat/--messages with a template; pass --prompt without --chat for a plain prompt");
    }
    let device = args.device.unwrap_or_else(DeviceChoice::auto);
    let dtype = args.dtype.resolve(device)?;
    log::info!("device: {device}, dtype: {dtype:?}");
    device.run(Generate(args, dtype))
}

/// The `--random-init` value: a preset name or a config.json path.
fn random_config(spec: &str) -> Result<LlamaConfig> {
    if let Ok(preset) = spec.parse::<ModelPreset>() {
        return Ok(LlamaConfig::preset(preset)?);
    }
    let path = Path::new(spec);
    if !path.exists() {
        bail!(
            "--random-init {spec}: neither a preset ({}) nor an existing config.json",
            ModelPreset::NAMES.join(", ")
        );
    }
    LlamaConfig::from_file(path).with_context(|| format!("--random-init {spec}"))
}

/// Loads (or randomly builds) the model and generates, on the backend `--device` picked.
struct Generate(Args, FloatDType);

impl OnBackend for Generate {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        generate_on::<B>(self.0, self.1, &device)
    }
}

fn load_model<B: Backend>(args: &Args, dtype: FloatDType, device: &B::Device) -> Result<Llama<B>> {
    let t0 = Instant::now();
    let (model, what) = match (&args.model, &args.random_init) {
        (_, Some(spec)) => {
            let config = random_config(spec)?;
            let init = RandomInit {
                seed: args.seed,
                ..RandomInit::default()
            };
            let model = if args.load_in_4bit {
                Llama::<B>::random_quantized(&config, &init, QuantConfig::default(), device)
            } else {
                Llama::<B>::random(&config, &init, device)
            };
            (
                model
                    .with_context(|| format!("--random-init {spec}"))?
                    .with_dtype(dtype),
                format!("random model ({spec})"),
            )
        }
        (Some(dir), None) => {
            let options = LoadOptions {
                load_in_4bit: args.load_in_4bit,
                dtype: Some(dtype),
            };
            (
                load_pretrained::<B>(dir, &options, device)
                    .with_context(|| format!("loading model {}", dir.display()))?,
                dir.display().to_string(),
            )
        }
        (None, None) => bail!("pass --model DIR or --random-init PRESET"),
    };
    let model = match &args.adapter {
        Some(adapter) => apply_adapter(model, adapter)?,
        None => model,
    };
    log::info!("loaded {what} in {:.2?}", t0.elapsed());
    Ok(model)
}

fn generate_on<B: Backend>(args: Args, dtype: FloatDType, device: &B::Device) -> Result<()> {
    let sampling = match args.temperature {
        Some(temperature) if !args.greedy => Sampling::Sample {
            temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        },
        _ => Sampling::Greedy,
    };
    let (ids, tok) = prompt_ids(&args, load_tokenizer(&args)?)?;
    if args.max_new_tokens == 0 && args.dump_logits.is_none() {
        // Nothing to generate: the prompt ids, without loading the weights.
        print_line(&ids, &[], "");
        return Ok(());
    }

    let model = load_model::<B>(&args, dtype, device)?;

    let chat = args.chat || args.messages.is_some();
    let stop_ids = stop_ids(&args, model.config(), tok.as_ref().filter(|_| chat))?;
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
    // Written only once generation succeeded: a run that fails (bad sampling flags, token
    // ids outside the vocabulary) leaves an existing file untouched.
    if let Some(path) = &args.dump_logits {
        dump_logits(&model, &ids, path)?;
    }
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
    print_line(&ids, &new, &text);
    Ok(())
}

/// The one JSON output line.
fn print_line(prompt_ids: &[u32], token_ids: &[u32], text: &str) {
    let line = serde_json::json!({
        "prompt_ids": prompt_ids,
        "token_ids": token_ids,
        "text": text,
    });
    println!("{line}");
}
