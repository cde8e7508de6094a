//! Building a [`Llama`] from a Hugging Face model directory.

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor, TensorData};
use qlora_core::lora::{FrozenBase, LoraLinear};
use qlora_core::Nf4Linear;
use qlora_core::{quant::QUANT_STATE_SUFFIX, QuantConfig, QuantState};
use safetensors::tensor::TensorView;

use crate::config::LlamaConfig;
use crate::error::{LlamaError, Result};
use crate::hf::checkpoint::Checkpoint;
use crate::model::{Llama, WeightSource};

/// How to load a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Quantize every projection to NF4 while loading (`--load-in-4bit`, blocksize 64, double
    /// quantization, as bitsandbytes' defaults in QLoRA); ignored for projections that are
    /// already 4-bit in the checkpoint.
    pub load_in_4bit: bool,
    /// The compute dtype to hold the frozen weights in ([`Llama::with_dtype`]); `None` keeps
    /// f32 (the CPU default). `Some(FloatDType::BF16)` is transformers'
    /// `torch_dtype=torch.bfloat16`, for CUDA.
    pub dtype: Option<FloatDType>,
}

/// A [`WeightSource`] over a [`Checkpoint`] that checks every shape and remembers which
/// tensors it handed out, so unused tensors can be reported.
#[derive(Debug)]
pub struct CheckpointSource<'a> {
    ckpt: &'a Checkpoint,
    used: BTreeSet<String>,
    quantize: Option<QuantConfig>,
}

impl<'a> CheckpointSource<'a> {
    /// A source over `ckpt`.
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        Self {
            ckpt,
            used: BTreeSet::new(),
            quantize: None,
        }
    }

    /// Quantizes dense projections to NF4 with `config` while loading.
    pub fn with_quantization(mut self, config: QuantConfig) -> Self {
        self.quantize = Some(config);
        self
    }

    /// The NF4 state of the bitsandbytes 4-bit weight `name`, if the checkpoint holds one.
    fn quant_state(&mut self, name: &str, shape: [usize; 2]) -> Result<Option<QuantState>> {
        if !self.ckpt.contains(&format!("{name}{QUANT_STATE_SUFFIX}")) {
            return Ok(None);
        }
        let ckpt = self.ckpt;
        let mut keys = Vec::new();
        let state = QuantState::from_views(name, |key| {
            keys.push(key.to_string());
            let raw = ckpt.raw(key).ok()?;
            TensorView::new(raw.dtype, raw.shape.to_vec(), raw.bytes).ok()
        })?;
        if state.shape() != shape {
            return Err(LlamaError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: state.shape().to_vec(),
            });
        }
        self.used
            .extend(keys.into_iter().filter(|k| ckpt.contains(k)));
        Ok(Some(state))
    }

    /// Tensors of the checkpoint never asked for (old checkpoints' `rotary_emb.inv_freq`
    /// buffers excepted).
    pub fn unused(&self) -> Vec<String> {
        self.ckpt
            .names()
            .filter(|n| !self.used.contains(*n) && !n.ends_with("rotary_emb.inv_freq"))
            .map(str::to_string)
            .collect()
    }
}

impl<B: Backend> WeightSource<B> for CheckpointSource<'_> {
    fn dense(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let values = self.ckpt.read_f32(name, shape)?;
        self.used.insert(name.to_string());
        Ok(TensorData::new(values, shape.to_vec()))
    }

    fn contains(&self, name: &str) -> bool {
        self.ckpt.contains(name)
    }

    /// Dense weights load as they are (a dense base). A bitsandbytes 4-bit weight becomes an
    /// NF4 base over its loaded [`QuantState`] as is (never dequantized at load); with
    /// quantization on, a dense weight is quantized once into an NF4 base. NF4 bases
    /// dequantize exactly as bitsandbytes does before its matmul, so logits match
    /// transformers + bitsandbytes.
    fn linear(
        &mut self,
        prefix: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<LoraLinear<B>> {
        let name = format!("{prefix}.weight");
        let shape = [out_features, in_features];
        let state = match self.quant_state(&name, shape)? {
            Some(state) => state,
            None => {
                let dense = self.ckpt.read_f32(&name, &shape)?;
                self.used.insert(name);
                let Some(config) = self.quantize else {
                    let b = WeightSource::<B>::bias(self, prefix, out_features, bias, device)?;
                    let w = Tensor::from_data(TensorData::new(dense, shape), device);
                    return Ok(LoraLinear::dense(w, b));
                };
                QuantState::quantize(&dense, &shape, config)?
            }
        };
        let b = WeightSource::<B>::bias(self, prefix, out_features, bias, device)?;
        let base = Nf4Linear::from_quant_state(state, b, device)?;
        Ok(LoraLinear::from_base(FrozenBase::Nf4(base)))
    }
}

/// Loads `config.json` and the safetensors weights of a Hugging Face model directory.
///
/// Every shape is checked against the config (errors name the tensor); a missing tensor or
/// a tensor the model does not use is an error.
pub fn load_pretrained<B: Backend>(
    dir: impl AsRef<Path>,
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Llama<B>> {
    let dir = dir.as_ref();
    let config = LlamaConfig::from_file(dir.join("config.json"))?;
    let ckpt = Checkpoint::open_dir(dir)?;
    load_checkpoint(&config, &ckpt, options, device)
}

/// Builds a model from an opened checkpoint and a resolved config.
pub fn load_checkpoint<B: Backend>(
    config: &LlamaConfig,
    ckpt: &Checkpoint,
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Llama<B>> {
    let mut src = CheckpointSource::new(ckpt);
    if options.load_in_4bit {
        src = src.with_quantization(QuantConfig::default());
    }
    let mut model = Llama::build(config, &mut src, device)?;
    if let Some(dtype) = options.dtype {
        model = model.with_dtype(dtype);
    }
    let unused = src.unused();
    if !unused.is_empty() {
        return Err(LlamaError::UnexpectedTensors { names: unused });
    }
    Ok(model)
}
