//! Building a [`Llama`] from a Hugging Face model directory.

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;

use crate::config::LlamaConfig;
use crate::error::{LlamaError, Result};
use crate::hf::checkpoint::Checkpoint;
use crate::model::{Llama, WeightSource};

/// How to load a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Quantize every projection to NF4 while loading (`--load-in-4bit`); ignored for a
    /// checkpoint that is already 4-bit.
    pub load_in_4bit: bool,
}

/// A [`WeightSource`] over a [`Checkpoint`] that checks every shape and remembers which
/// tensors it handed out, so unused tensors can be reported.
#[derive(Debug)]
pub struct CheckpointSource<'a> {
    ckpt: &'a Checkpoint,
    used: BTreeSet<String>,
}

impl<'a> CheckpointSource<'a> {
    /// A source over `ckpt`.
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        Self {
            ckpt,
            used: BTreeSet::new(),
        }
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
    if config.quantization.is_some() || options.load_in_4bit {
        return Err(LlamaError::InvalidArgument(
            "4-bit loading is not available yet".into(),
        ));
    }
    let mut src = CheckpointSource::new(ckpt);
    let model = Llama::build(config, &mut src, device)?;
    let unused = src.unused();
    if !unused.is_empty() {
        return Err(LlamaError::UnexpectedTensors { names: unused });
    }
    Ok(model)
}
