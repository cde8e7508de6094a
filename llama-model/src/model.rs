//! The LLaMA decoder (`LlamaForCausalLM`): embeddings, decoder layers, final norm, `lm_head`.

use burn::module::{Module, Param, ParamId};
use burn::nn::{Embedding, RmsNorm, RmsNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use qlora_core::dense::frozen_linear;
use qlora_core::lora::{LoraConfig, LoraLinear};
use qlora_core::train::CausalLm;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::attention::{Attention, AttentionContext};
use crate::block::DecoderLayer;
use crate::config::LlamaConfig;
use crate::error::{LlamaError, Result};
use crate::kv_cache::KvCache;
use crate::mlp::Mlp;
use crate::rope::{rope_cos_sin, rope_inv_freq};

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
        let b = if bias {
            Some(Tensor::from_data(
                self.dense(&format!("{prefix}.bias"), &[out_features])?,
                device,
            ))
        } else {
            None
        };
        Ok(LoraLinear::dense(Tensor::from_data(w, device), b))
    }
}

/// The inputs of one forward pass.
///
/// # Shapes
///
/// - `input_ids`: `[batch, seq]`
/// - `attention_mask`: `[batch, seq]`, 1 for real tokens and 0 for padding (left or right)
/// - `position_ids`: `[batch, seq]`; when absent they are derived from the mask as
///   transformers' `generate` does (`cumsum(mask) - 1`, padding at 1), or `past..past+seq`
///   without a mask
#[derive(Debug, Clone)]
pub struct LlamaInput<B: Backend> {
    /// Token ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// Padding mask (1 = token, 0 = padding).
    pub attention_mask: Option<Tensor<B, 2, Int>>,
    /// Explicit positions.
    pub position_ids: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> LlamaInput<B> {
    /// Inputs without padding.
    pub fn new(input_ids: Tensor<B, 2, Int>) -> Self {
        Self {
            input_ids,
            attention_mask: None,
            position_ids: None,
        }
    }

    /// Adds a padding mask.
    pub fn with_attention_mask(mut self, mask: Tensor<B, 2, Int>) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Adds explicit positions.
    pub fn with_position_ids(mut self, positions: Tensor<B, 2, Int>) -> Self {
        self.position_ids = Some(positions);
        self
    }

    /// Left-pads sequences of different lengths with `pad_id` into one batch, with the
    /// matching attention mask (the layout batched generation uses).
    ///
    /// # Example
    /// ```
    /// use burn_ndarray::NdArray;
    /// use llama_model::LlamaInput;
    /// let input = LlamaInput::<NdArray<f32>>::left_padded(&[vec![5, 6, 7], vec![8]], 0, &Default::default()).unwrap();
    /// assert_eq!(input.input_ids.dims(), [2, 3]);
    /// let mask: Vec<i64> = input.attention_mask.unwrap().into_data().convert::<i64>().to_vec().unwrap();
    /// assert_eq!(mask, vec![1, 1, 1, 0, 0, 1]);
    /// ```
    pub fn left_padded(sequences: &[Vec<u32>], pad_id: u32, device: &B::Device) -> Result<Self> {
        let width = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if sequences.is_empty() || sequences.iter().any(Vec::is_empty) {
            return Err(LlamaError::InvalidArgument(
                "every sequence of a batch needs at least one token".into(),
            ));
        }
        let mut ids = Vec::with_capacity(sequences.len() * width);
        let mut mask = Vec::with_capacity(sequences.len() * width);
        let mut padded = false;
        for seq in sequences {
            let pad = width - seq.len();
            padded |= pad > 0;
            ids.extend(std::iter::repeat_n(pad_id as i64, pad));
            ids.extend(seq.iter().map(|&t| t as i64));
            mask.extend(std::iter::repeat_n(0i64, pad));
            mask.extend(std::iter::repeat_n(1i64, seq.len()));
        }
        let shape = [sequences.len(), width];
        let input = Self::new(Tensor::from_data(TensorData::new(ids, shape), device));
        Ok(if padded {
            input.with_attention_mask(Tensor::from_data(TensorData::new(mask, shape), device))
        } else {
            input
        })
    }
}

/// `LlamaForCausalLM`: field names follow transformers (`model.embed_tokens`,
/// `model.layers.N`, `model.norm`, `lm_head`) so checkpoints load without a remap table.
///
/// Build one with [`Llama::build`] from any [`WeightSource`], with [`Llama::random`], or from a
/// Hugging Face directory with [`crate::load_pretrained`].
///
/// # Example
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{Llama, LlamaConfig, LlamaInput, RandomInit};
/// let dev = Default::default();
/// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev).unwrap();
/// let input = LlamaInput::left_padded(&[vec![1, 2, 3]], 0, &dev).unwrap();
/// let logits = model.forward(input).unwrap();
/// assert_eq!(logits.dims(), [1, 3, 32]);
/// ```
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// `model.embed_tokens`, `[vocab, hidden]`.
    pub embed_tokens: Embedding<B>,
    /// `model.layers`.
    pub layers: Vec<DecoderLayer<B>>,
    /// `model.norm`.
    pub norm: RmsNorm<B>,
    /// `lm_head` `[vocab, hidden]`; `None` when tied to the embeddings.
    pub lm_head: Option<LoraLinear<B>>,
    #[module(skip)]
    config: LlamaConfig,
    #[module(skip)]
    inv_freq: Vec<f32>,
}

fn frozen<B: Backend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), t.set_require_grad(false))
}

fn rms_norm<B: Backend>(
    src: &mut impl WeightSource<B>,
    name: &str,
    cfg: &LlamaConfig,
    device: &B::Device,
) -> Result<RmsNorm<B>> {
    let mut norm = RmsNormConfig::new(cfg.hidden_size)
        .with_epsilon(cfg.rms_norm_eps)
        .init(device);
    let w = src.dense(&format!("{name}.weight"), &[cfg.hidden_size])?;
    norm.gamma = frozen(Tensor::from_data(w, device));
    Ok(norm)
}

impl<B: Backend> Llama<B> {
    /// Builds the model, asking `src` for every weight under its transformers name.
    ///
    /// Non-LoRA weights (embeddings, norms, `lm_head`) are frozen: they never require a
    /// gradient. A tied model (`tie_word_embeddings`) has no `lm_head`.
    pub fn build(
        config: &LlamaConfig,
        src: &mut impl WeightSource<B>,
        device: &B::Device,
    ) -> Result<Self> {
        let c = config;
        let embed = src.dense("model.embed_tokens.weight", &[c.vocab_size, c.hidden_size])?;
        let embed_tokens = Embedding {
            weight: frozen(Tensor::from_data(embed, device)),
        };
        let (q_out, kv_out) = (
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
        );
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let ab = c.attention_bias;
            let mb = c.mlp_bias;
            let self_attn = Attention {
                q_proj: src.linear(
                    &format!("{p}.self_attn.q_proj"),
                    q_out,
                    c.hidden_size,
                    ab,
                    device,
                )?,
                k_proj: src.linear(
                    &format!("{p}.self_attn.k_proj"),
                    kv_out,
                    c.hidden_size,
                    ab,
                    device,
                )?,
                v_proj: src.linear(
                    &format!("{p}.self_attn.v_proj"),
                    kv_out,
                    c.hidden_size,
                    ab,
                    device,
                )?,
                o_proj: src.linear(
                    &format!("{p}.self_attn.o_proj"),
                    c.hidden_size,
                    q_out,
                    ab,
                    device,
                )?,
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                head_dim: c.head_dim,
            };
            let mlp = Mlp {
                gate_proj: src.linear(
                    &format!("{p}.mlp.gate_proj"),
                    c.intermediate_size,
                    c.hidden_size,
                    mb,
                    device,
                )?,
                up_proj: src.linear(
                    &format!("{p}.mlp.up_proj"),
                    c.intermediate_size,
                    c.hidden_size,
                    mb,
                    device,
                )?,
                down_proj: src.linear(
                    &format!("{p}.mlp.down_proj"),
                    c.hidden_size,
                    c.intermediate_size,
                    mb,
                    device,
                )?,
            };
            layers.push(DecoderLayer {
                self_attn,
                mlp,
                input_layernorm: rms_norm(src, &format!("{p}.input_layernorm"), c, device)?,
                post_attention_layernorm: rms_norm(
                    src,
                    &format!("{p}.post_attention_layernorm"),
                    c,
                    device,
                )?,
            });
        }
        let norm = rms_norm(src, "model.norm", c, device)?;
        let lm_head = if c.tie_word_embeddings {
            if src.contains("lm_head.weight") {
                log::debug!("tied model: ignoring lm_head.weight in the checkpoint");
                src.dense("lm_head.weight", &[c.vocab_size, c.hidden_size])?;
            }
            None
        } else {
            let w = src.dense("lm_head.weight", &[c.vocab_size, c.hidden_size])?;
            Some(LoraLinear::dense(Tensor::from_data(w, device), None))
        };
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq: rope_inv_freq(c),
            config: c.clone(),
        })
    }

    /// The resolved config the model was built from.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device of the weights.
    pub fn device(&self) -> B::Device {
        self.embed_tokens.weight.device()
    }

    /// Logits for every position, without cache.
    ///
    /// # Shapes
    ///
    /// - output: `[batch, seq, vocab]`
    pub fn forward(&self, input: LlamaInput<B>) -> Result<Tensor<B, 3>> {
        let hidden = self.run(input, None, None)?;
        Ok(self.logits(hidden))
    }

    /// Forward pass through a cache: the inputs are the next tokens after everything already
    /// cached (the whole prompt on the first call, one token per row afterwards). The mask,
    /// when given, covers only the new tokens; the cache remembers earlier padding.
    ///
    /// With `last_only`, returns the logits of the last position only (`[batch, 1, vocab]`),
    /// which is all a sampler needs and saves the `lm_head` product on the prompt.
    pub fn forward_cached(
        &self,
        input: LlamaInput<B>,
        cache: &mut KvCache<B>,
        last_only: bool,
    ) -> Result<Tensor<B, 3>> {
        let mut hidden = self.run(input, Some(cache), None)?;
        if last_only {
            let [b, s, h] = hidden.dims();
            hidden = hidden.slice([0..b, s - 1..s, 0..h]);
        }
        Ok(self.logits(hidden))
    }

    /// The hidden states as transformers' `output_hidden_states=True` returns them: the
    /// embeddings, the output of every layer but the last, and the final normed output
    /// (`num_hidden_layers + 1` tensors `[batch, seq, hidden]`).
    pub fn hidden_states(&self, input: LlamaInput<B>) -> Result<Vec<Tensor<B, 3>>> {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let last = self.run(input, None, Some(&mut states))?;
        states.push(last);
        Ok(states)
    }

    fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => frozen_linear(hidden, self.embed_tokens.weight.val(), None),
        }
    }

    fn check_ids(&self, ids: &Tensor<B, 2, Int>) -> Result<()> {
        let vocab = self.config.vocab_size;
        let flat: Vec<i64> = ids
            .to_data()
            .convert::<i64>()
            .to_vec()
            .map_err(|e| LlamaError::InvalidArgument(format!("input_ids: {e:?}")))?;
        if let Some((position, &id)) = flat
            .iter()
            .enumerate()
            .find(|(_, &id)| id < 0 || id as usize >= vocab)
        {
            return Err(LlamaError::TokenOutOfVocab {
                id,
                position,
                vocab_size: vocab,
            });
        }
        Ok(())
    }

    /// Embeddings → layers → final norm. `states`, when given, receives the embeddings and
    /// every layer output except the last.
    fn run(
        &self,
        input: LlamaInput<B>,
        mut cache: Option<&mut KvCache<B>>,
        mut states: Option<&mut Vec<Tensor<B, 3>>>,
    ) -> Result<Tensor<B, 3>> {
        let [b, s] = input.input_ids.dims();
        if b == 0 || s == 0 {
            return Err(LlamaError::InvalidArgument(format!(
                "input_ids has shape [{b}, {s}]; batch and sequence must be non-empty"
            )));
        }
        for (name, t) in [
            ("attention_mask", &input.attention_mask),
            ("position_ids", &input.position_ids),
        ] {
            if let Some(t) = t {
                if t.dims() != [b, s] {
                    return Err(LlamaError::InvalidArgument(format!(
                        "{name} has shape {:?}, input_ids [{b}, {s}]",
                        t.dims()
                    )));
                }
            }
        }
        let past = cache.as_ref().map_or(0, |c| c.len);
        if let Some(c) = cache.as_ref() {
            if c.batch.is_some_and(|cb| cb != b) {
                return Err(LlamaError::InvalidArgument(format!(
                    "cache holds batch {:?}, input batch {b}",
                    c.batch
                )));
            }
            if c.layers.len() != self.layers.len() {
                return Err(LlamaError::InvalidArgument(format!(
                    "cache has {} layers, model {}",
                    c.layers.len(),
                    self.layers.len()
                )));
            }
        }
        let max = self.config.max_position_embeddings;
        if past + s > max {
            return Err(LlamaError::TooLong {
                length: past + s,
                max,
            });
        }
        self.check_ids(&input.input_ids)?;
        let device = input.input_ids.device();

        // Padding mask over every key (cached and new).
        let past_mask = cache.as_ref().and_then(|c| c.mask.clone());
        let key_mask = match (past_mask, input.attention_mask) {
            (None, None) => None,
            (Some(p), None) => Some(Tensor::cat(vec![p, Tensor::ones([b, s], &device)], 1)),
            (None, Some(m)) if past == 0 => Some(m),
            (None, Some(m)) => Some(Tensor::cat(vec![Tensor::ones([b, past], &device), m], 1)),
            (Some(p), Some(m)) => Some(Tensor::cat(vec![p, m], 1)),
        };
        let total = past + s;
        let positions = match (input.position_ids, &key_mask) {
            (Some(p), _) => p,
            (None, Some(m)) => {
                let pad = m.clone().equal_elem(0);
                let pos = (m.clone().cumsum(1) - 1).mask_fill(pad, 1);
                pos.slice([0..b, past..total])
            }
            (None, None) => Tensor::<B, 1, Int>::arange(past as i64..total as i64, &device)
                .reshape([1, s])
                .repeat_dim(0, b),
        };
        let (cos, sin) = rope_cos_sin(&self.inv_freq, positions);

        // Causal mask (a query at absolute index past+i sees keys 0..=past+i) plus padding.
        let mask: Option<Tensor<B, 4, Bool>> = if s == 1 && key_mask.is_none() {
            None
        } else {
            let q_pos =
                Tensor::<B, 1, Int>::arange(past as i64..total as i64, &device).reshape([s, 1]);
            let k_pos = Tensor::<B, 1, Int>::arange(0..total as i64, &device).reshape([1, total]);
            let causal = k_pos
                .greater(q_pos)
                .reshape([1, 1, s, total])
                .expand([b, 1, s, total]);
            Some(match &key_mask {
                Some(m) => {
                    let pad = m
                        .clone()
                        .equal_elem(0)
                        .reshape([b, 1, 1, total])
                        .expand([b, 1, s, total]);
                    causal.bool_or(pad)
                }
                None => causal,
            })
        };

        if let Some(c) = cache.as_mut() {
            c.len = total;
            c.batch = Some(b);
            c.mask = key_mask;
        }
        let ctx = AttentionContext {
            cos: &cos,
            sin: &sin,
            mask: mask.as_ref(),
        };
        let mut x = self.embed_tokens.forward(input.input_ids);
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(states) = states.as_mut() {
                states.push(x.clone());
            }
            x = layer.forward(x, &ctx, cache.as_mut().map(|c| (&mut **c, i)));
        }
        Ok(qlora_core::precise::rms_norm(&self.norm, x))
    }
}

impl<B: Backend> Llama<B> {
    /// Attaches a fresh LoRA adapter (peft's initialisation: `A` Kaiming-uniform, `B` zeros)
    /// to every projection `config.targets` names, in every layer. The adapters are drawn in
    /// layer order, then in the order of `config.targets`, from a ChaCha8 generator seeded
    /// with `seed`. Since `B` starts at zero, the adapted model computes the same logits.
    ///
    /// ```
    /// use burn_ndarray::NdArray;
    /// use llama_model::{Llama, LlamaConfig, RandomInit};
    /// use qlora_core::{LoraConfig, TargetModule};
    ///
    /// let dev = Default::default();
    /// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(16), &RandomInit::default(), &dev).unwrap();
    /// let cfg = LoraConfig::new(4, 8.0).with_targets(vec![TargetModule::QProj, TargetModule::VProj]);
    /// let model = model.with_lora(&cfg, 0).unwrap();
    /// assert!(model.layers[0].self_attn.q_proj.adapter().is_some());
    /// assert!(model.layers[0].self_attn.k_proj.adapter().is_none());
    /// ```
    pub fn with_lora(mut self, config: &LoraConfig, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for &t in &config.targets {
                layer.map_projection(t, |p| {
                    p.with_lora(config, &mut rng)
                        .map_err(|source| LlamaError::Lora {
                            module: format!("model.layers.{i}.{}.{}", t.parent(), t.as_str()),
                            source,
                        })
                })?;
            }
        }
        Ok(self)
    }
}

/// Which parameters of a [`Llama`] require a gradient, i.e. which ones
/// [`qlora_core::train::Trainer`] updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainMode {
    /// Every weight: embeddings, every projection, the RMSNorm weights and `lm_head` (plus
    /// any LoRA adapters). For pre-training or full fine-tuning; needs dense (not NF4)
    /// projections.
    FullParameter,
    /// Only the LoRA `A`/`B` matrices (how the model is built and loaded): the base is frozen.
    LoraOnly,
}

impl<B: Backend> Llama<B> {
    /// Chooses which parameters train (see [`TrainMode`]). Models are built with every base
    /// weight frozen ([`TrainMode::LoraOnly`]); `FullParameter` makes them all trainable.
    /// Only meaningful on an autodiff backend.
    ///
    /// # Errors
    ///
    /// [`LlamaError::Lora`] naming the projection when `FullParameter` meets an NF4 base.
    ///
    /// ```
    /// use burn_autodiff::Autodiff;
    /// use burn_ndarray::NdArray;
    /// use llama_model::{Llama, LlamaConfig, RandomInit, TrainMode};
    /// use qlora_core::train::trainable_params;
    ///
    /// let dev = Default::default();
    /// let model = Llama::<Autodiff<NdArray<f32>>>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev).unwrap();
    /// assert!(trainable_params(&model).is_empty());
    /// let full = model.set_trainable(TrainMode::FullParameter).unwrap();
    /// // embeddings + 2 layers x (7 projections + 2 norms) + final norm + lm_head
    /// assert_eq!(trainable_params(&full).len(), 1 + 2 * 9 + 1 + 1);
    /// let frozen = full.set_trainable(TrainMode::LoraOnly).unwrap();
    /// assert!(trainable_params(&frozen).is_empty());
    /// ```
    pub fn set_trainable(mut self, mode: TrainMode) -> Result<Self> {
        let on = mode == TrainMode::FullParameter;
        self.embed_tokens.weight = self.embed_tokens.weight.set_require_grad(on);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, layer) in std::mem::take(&mut self.layers).into_iter().enumerate() {
            layers.push(layer.set_base_trainable(on, &format!("model.layers.{i}"))?);
        }
        self.layers = layers;
        self.norm.gamma = self.norm.gamma.set_require_grad(on);
        if let Some(head) = self.lm_head.take() {
            let head = head
                .set_base_trainable(on)
                .map_err(|source| LlamaError::Lora {
                    module: "lm_head".into(),
                    source,
                })?;
            self.lm_head = Some(head);
        }
        Ok(self)
    }
}

/// The model as qlora-core's trainer sees it: logits for right-padded batches with an HF
/// attention mask. Errors become strings naming the model and the batch shape.
impl<B: Backend> CausalLm<B> for Llama<B> {
    fn logits(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> std::result::Result<Tensor<B, 3>, String> {
        let dims = input_ids.dims();
        let input = LlamaInput::new(input_ids).with_attention_mask(attention_mask);
        self.forward(input)
            .map_err(|e| format!("llama forward on a batch of shape {dims:?}: {e}"))
    }
}
