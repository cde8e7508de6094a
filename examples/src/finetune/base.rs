//! The model to fine-tune: the base checkpoint (NF4 with or without double quantization, or
//! dense) with a fresh or loaded LoRA adapter, and the PEFT config it is saved with.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use llama_model::hf::checkpoint::Checkpoint;
use llama_model::hf::load::CheckpointSource;
use llama_model::peft::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
use llama_model::LlamaError;
use llama_model::{load_adapter, load_pretrained, AdapterConfig, Llama, LlamaConfig, LoadOptions};
use qlora_core::{LoraConfig, QuantConfig};

/// Loads the base model from `dir`: projections quantized to NF4 when `four_bit` (with
/// double-quantized absmax when `double_quant`), dense otherwise; a checkpoint that is
/// already 4-bit is used as it is.
pub fn load_base<B: Backend>(
    dir: &Path,
    four_bit: bool,
    double_quant: bool,
    device: &B::Device,
) -> Result<Llama<B>> {
    let context = || format!("loading model {}", dir.display());
    if !four_bit || double_quant {
        let options = LoadOptions {
            load_in_4bit: four_bit,
            ..Default::default()
        };
        return load_pretrained::<B>(dir, &options, device).with_context(context);
    }
    // NF4 with plain absmax: the same loading as `load_pretrained`, other quantization.
    let config = LlamaConfig::from_file(dir.join("config.json")).with_context(context)?;
    let ckpt = Checkpoint::open_dir(dir).with_context(context)?;
    let mut src = CheckpointSource::new(&ckpt).with_quantization(QuantConfig {
        double_quant: false,
        ..QuantConfig::default()
    });
    let model = Llama::build(&config, &mut src, device).with_context(context)?;
    let unused = src.unused();
    if !unused.is_empty() {
        bail!(
            "{}: tensors the model does not use: {}",
            dir.display(),
            unused.join(", ")
        );
    }
    Ok(model)
}

/// Reads `DIR/adapter_config.json` of a PEFT adapter directory.
pub fn read_adapter_config(dir: &Path) -> Result<AdapterConfig> {
    let path = dir.join(ADAPTER_CONFIG_FILE);
    let text =
        std::fs::read(&path).with_context(|| format!("--init-adapter {}", path.display()))?;
    let config: AdapterConfig = serde_json::from_slice(&text)
        .with_context(|| format!("--init-adapter {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("--init-adapter {}", path.display()))?;
    Ok(config)
}

/// The PEFT config the trained adapter is saved with.
pub fn adapter_config(lora: &LoraConfig, base_model: &Path) -> AdapterConfig {
    let mut c = AdapterConfig::new(lora.r, lora.alpha, &lora.targets);
    c.lora_dropout = lora.dropout;
    c.use_rslora = lora.use_rslora;
    c.base_model_name_or_path = Some(base_model.display().to_string());
    c
}

/// Attaches the adapter: the one in `init` (a PEFT directory, trainable) or fresh weights
/// drawn from `seed` with `lora`.
pub fn attach_adapter<B: Backend>(
    model: Llama<B>,
    lora: &LoraConfig,
    init: Option<&Path>,
    seed: u64,
) -> Result<Llama<B>> {
    match init {
        Some(dir) => load_adapter(model, dir)
            .map_err(|e| name_adapter_file(dir, e).context("--init-adapter")),
        None => Ok(model.with_lora(lora, seed)?),
    }
}

/// A [`load_adapter`] error with the file it is about named: llama-model names the file in
/// its I/O, JSON and safetensors errors, but gives a rejected config field or an adapter
/// tensor that does not fit the model by field or tensor name alone.
pub fn name_adapter_file(dir: &Path, e: LlamaError) -> anyhow::Error {
    let file = match &e {
        LlamaError::Config { .. } => Some(ADAPTER_CONFIG_FILE),
        LlamaError::MissingTensor { .. }
        | LlamaError::UnexpectedTensors { .. }
        | LlamaError::Shape { .. }
        | LlamaError::Dtype { .. }
        | LlamaError::Lora { .. } => Some(ADAPTER_WEIGHTS_FILE),
        _ => None,
    };
    match file {
        Some(f) => anyhow::Error::new(e).context(format!("{}", dir.join(f).display())),
        None => anyhow::Error::new(e).context(format!("{}", dir.display())),
    }
}

/// The LoRA settings of a PEFT adapter config (for `--init-adapter`).
pub fn lora_of(config: &AdapterConfig) -> Result<LoraConfig> {
    Ok(LoraConfig::new(config.r, config.lora_alpha)
        .with_dropout(config.lora_dropout)
        .with_targets(config.targets()?)
        .with_rslora(config.use_rslora))
}
