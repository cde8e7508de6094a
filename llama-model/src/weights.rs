//! Where the weights of a model come from while it is built, and how each part finds its own.
//!
//! A [`WeightSource`] hands out tensors by their full transformers name (a checkpoint on
//! disk, a random initialisation, a quantizing wrapper...). A [`Weights`] is a view of a
//! source under a name prefix, like candle's `VarBuilder`: `w.pp("self_attn")` goes one level
//! down, so every part ([`Load`]) asks for its tensors by their last name (`q_proj`,
//! `weight`) and the full name `model.layers.0.self_attn.q_proj.weight` is the path it was
//! loaded along. No builder knows every tensor name.

use std::fmt;

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use qlora_core::lora::LoraLinear;

use crate::config::LlamaConfig;
use crate::error::Result;

/// Where the weights of a model come from while it is built: a checkpoint on disk, a random
/// initialisation, ... Names are the transformers names (`model.layers.0.self_attn.q_proj`).
pub trait WeightSource<B: Backend> {
    /// A full-precision tensor of the given shape, as row-major f32 data.
    fn dense(&mut self, name: &str, shape: &[usize]) -> Result<TensorData>;

    /// Whether the source holds a tensor of this name (used for optional tensors such as
    /// `lm_head.weight` of a tied model).
    fn contains(&self, name: &str) -> bool;

    /// The projection `prefix` (`prefix.weight` `[out, in]`, optional `prefix.bias` `[out]`).
    /// Sources of quantized weights override this to build a 4-bit base.
    fn linear(
        &mut self,
        prefix: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<LoraLinear<B>> {
        let w = self.dense(&format!("{prefix}.weight"), &[out_features, in_features])?;
        let b = self.bias(prefix, out_features, bias, device)?;
        Ok(LoraLinear::dense(Tensor::from_data(w, device), b))
    }

    /// The bias `prefix.bias` `[out_features]` of a projection that has one (`bias`).
    fn bias(
        &mut self,
        prefix: &str,
        out_features: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<Option<Tensor<B, 1>>> {
        if !bias {
            return Ok(None);
        }
        let data = self.dense(&format!("{prefix}.bias"), &[out_features])?;
        Ok(Some(Tensor::from_data(data, device)))
    }
}

/// A [`WeightSource`] seen under a name prefix, on a device: what each model part loads
/// itself from.
///
/// ```
/// use burn::tensor::TensorData;
/// use burn_ndarray::NdArray;
/// use llama_model::{Weights, WeightSource};
///
/// /// Every tensor filled with 0.5; remembers the names asked for.
/// #[derive(Default)]
/// struct Halves(Vec<String>);
/// impl WeightSource<NdArray> for Halves {
///     fn dense(&mut self, name: &str, shape: &[usize]) -> llama_model::Result<TensorData> {
///         self.0.push(name.to_string());
///         Ok(TensorData::new(vec![0.5f32; shape.iter().product()], shape.to_vec()))
///     }
///     fn contains(&self, _: &str) -> bool { true }
/// }
///
/// let mut src = Halves::default();
/// let mut w = Weights::new(&mut src, &Default::default());
/// let mut layer = w.pp("model.layers.3");
/// let q = layer.pp("self_attn").pp("q_proj").linear(8, 4, false).unwrap();
/// assert_eq!(q.out_features(), 8);
/// let norm = layer.tensor("input_layernorm.weight", [4]).unwrap();
/// assert_eq!(norm.dims(), [4]);
/// assert_eq!(src.0, ["model.layers.3.self_attn.q_proj.weight", "model.layers.3.input_layernorm.weight"]);
/// ```
pub struct Weights<'a, B: Backend> {
    source: &'a mut dyn WeightSource<B>,
    prefix: String,
    device: B::Device,
}

impl<B: Backend> fmt::Debug for Weights<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Weights")
            .field("prefix", &self.prefix)
            .field("device", &self.device)
            .finish()
    }
}

impl<'a, B: Backend> Weights<'a, B> {
    /// The root view (no prefix) of `source`, building tensors on `device`.
    pub fn new(source: &'a mut dyn WeightSource<B>, device: &B::Device) -> Self {
        Self {
            source,
            prefix: String::new(),
            device: device.clone(),
        }
    }

    /// The view one level down, under `prefix.name` (candle's `pp`, "push prefix"); `name`
    /// may hold dots to go several levels down at once (`pp("model.layers.3")`).
    pub fn pp(&mut self, name: impl fmt::Display) -> Weights<'_, B> {
        Weights {
            prefix: self.name(&name.to_string()),
            source: &mut *self.source,
            device: self.device.clone(),
        }
    }

    /// The full name of `leaf` under this view's prefix.
    pub fn name(&self, leaf: &str) -> String {
        if self.prefix.is_empty() {
            leaf.to_string()
        } else {
            format!("{}.{leaf}", self.prefix)
        }
    }

    /// The device the tensors are built on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Whether the source holds `leaf` under this prefix.
    pub fn contains(&self, leaf: &str) -> bool {
        self.source.contains(&self.name(leaf))
    }

    /// The tensor `leaf` of the given shape, frozen (it never requires a gradient).
    pub fn tensor<const D: usize>(
        &mut self,
        leaf: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>> {
        let data = self.source.dense(&self.name(leaf), &shape)?;
        Ok(Tensor::<B, D>::from_data(data, &self.device).set_require_grad(false))
    }

    /// The projection at this prefix: `weight` `[out_features, in_features]` and, with
    /// `bias`, `bias` `[out_features]`, as a [`LoraLinear`] without adapter (its base as
    /// the source builds it: dense or NF4).
    pub fn linear(
        &mut self,
        out_features: usize,
        in_features: usize,
        bias: bool,
    ) -> Result<LoraLinear<B>> {
        self.source
            .linear(&self.prefix, out_features, in_features, bias, &self.device)
    }
}

/// A model part that builds itself from the weights under its own prefix (candle's
/// `load(vb, cfg)`): [`crate::Llama`], its decoder layers, attention, MLP, RMSNorm and
/// embedding.
pub trait Load<B: Backend>: Sized {
    /// Builds the part from the tensors under `w`'s prefix, with the shapes `config` gives.
    /// Errors name the tensor (missing, misshapen, unreadable).
    fn load(w: &mut Weights<'_, B>, config: &LlamaConfig) -> Result<Self>;
}

/// A frozen parameter: part of the base model, never trained unless
/// [`crate::TrainMode::FullParameter`] says so.
pub(crate) fn frozen<B: Backend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), t.set_require_grad(false))
}

/// `weight` `[hidden_size]`, epsilon `rms_norm_eps` (`*_layernorm`, `model.norm`).
impl<B: Backend> Load<B> for RmsNorm<B> {
    fn load(w: &mut Weights<'_, B>, config: &LlamaConfig) -> Result<Self> {
        let mut norm = RmsNormConfig::new(config.hidden_size)
            .with_epsilon(config.rms_norm_eps)
            .init(w.device());
        norm.gamma = frozen(w.tensor("weight", [config.hidden_size])?);
        Ok(norm)
    }
}

/// `weight` `[vocab_size, hidden_size]` (`model.embed_tokens`).
impl<B: Backend> Load<B> for Embedding<B> {
    fn load(w: &mut Weights<'_, B>, config: &LlamaConfig) -> Result<Self> {
        let weight = w.tensor("weight", [config.vocab_size, config.hidden_size])?;
        Ok(Embedding {
            weight: frozen(weight),
        })
    }
}
