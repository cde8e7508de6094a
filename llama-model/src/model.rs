//! The decoder of `LlamaForCausalLM` and `MistralForCausalLM`: embeddings, decoder layers,
//! final norm, `lm_head`. Mistral is the same model with sliding-window attention
//! ([`LlamaConfig::sliding_window`]).

use burn::module::Module;
use burn::nn::{Embedding, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use qlora_core::dense::frozen_linear;
use qlora_core::lora::{LoraConfig, LoraLinear};
use qlora_core::train::CausalLm;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::attention::AttentionContext;
use crate::block::DecoderLayer;
use crate::config::LlamaConfig;
use crate::dtype::{cast_to, to_f32};
use crate::error::{LlamaError, Result};
use crate::kv_cache::KvCache;
use crate::mask::{hidden_keys, positions_from_padding};
use crate::rope::{rope_cos_sin, rope_inv_freq};
pub use crate::weights::WeightSource;
use crate::weights::{Load, Weights};

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

/// `LlamaForCausalLM` or `MistralForCausalLM` (by [`LlamaConfig::model_type`]): field names
/// follow transformers (`model.embed_tokens`, `model.layers.N`, `model.norm`, `lm_head`) so
/// checkpoints load without a remap table.
///
/// Build one with [`Llama::build`] from any [`WeightSource`], with [`Llama::random`], or from a
/// Hugging Face directory with [`crate::load_pretrained`]. Each part loads its own tensors
/// ([`Load`]).
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

/// `model.embed_tokens`, `model.layers.N`, `model.norm`, and `lm_head` unless the embeddings
/// are tied (a tied checkpoint's `lm_head.weight`, if present, is read and ignored, as
/// transformers does). Every weight is frozen: it never requires a gradient.
impl<B: Backend> Load<B> for Llama<B> {
    fn load(w: &mut Weights<'_, B>, c: &LlamaConfig) -> Result<Self> {
        let mut body = w.pp("model");
        let embed_tokens = Embedding::load(&mut body.pp("embed_tokens"), c)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            layers.push(DecoderLayer::load(&mut body.pp("layers").pp(i), c)?);
        }
        let norm = RmsNorm::load(&mut body.pp("norm"), c)?;
        let head_shape = [c.vocab_size, c.hidden_size];
        let lm_head = if c.tie_word_embeddings {
            if w.contains("lm_head.weight") {
                log::debug!("tied model: ignoring lm_head.weight in the checkpoint");
                w.pp("lm_head").tensor("weight", head_shape)?;
            }
            None
        } else {
            let weight = w.pp("lm_head").tensor("weight", head_shape)?;
            Some(LoraLinear::dense(weight, None))
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
}

impl<B: Backend> Llama<B> {
    /// Builds the model from `src` on `device`: every part loads its tensors under its
    /// transformers name ([`Load`]).
    ///
    /// Non-LoRA weights (embeddings, norms, `lm_head`) are frozen: they never require a
    /// gradient. A tied model (`tie_word_embeddings`) has no `lm_head`.
    pub fn build(
        config: &LlamaConfig,
        src: &mut impl WeightSource<B>,
        device: &B::Device,
    ) -> Result<Self> {
        Self::load(&mut Weights::new(src, device), config)
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

    /// The `lm_head` product, returned in f32 whatever the compute dtype.
    fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        to_f32(match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => frozen_linear(hidden, self.embed_tokens.weight.val(), None),
        })
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

    /// Checks the shapes of the inputs against each other and the cache, the ids against
    /// the vocabulary and the length against the context; returns `[batch, seq]`.
    fn check_input(&self, input: &LlamaInput<B>, cache: Option<&KvCache<B>>) -> Result<[usize; 2]> {
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
        if let Some(c) = cache {
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
        let past = cache.map_or(0, KvCache::len);
        let max = self.config.max_position_embeddings;
        if past + s > max {
            return Err(LlamaError::TooLong {
                length: past + s,
                max,
            });
        }
        self.check_ids(&input.input_ids)?;
        Ok([b, s])
    }

    /// Positions and hidden keys of a pass without cache: keys are the inputs themselves.
    fn uncached_step(&self, input: &LlamaInput<B>) -> Step<B> {
        let [b, s] = input.input_ids.dims();
        let device = input.input_ids.device();
        let padding = input.attention_mask.clone();
        let positions = match (&input.position_ids, &padding) {
            (Some(p), _) => p.clone(),
            (None, Some(m)) => positions_from_padding(m.clone(), 0, s),
            (None, None) => arange_rows(0, s, b, &device),
        };
        let mask = (s > 1 || padding.is_some())
            .then(|| hidden_keys(b, s, 0, s, self.config.sliding_window, padding, &device));
        Step { positions, mask }
    }

    /// Positions and hidden keys of a pass through `cache`: keys are all of its slots, so
    /// every decode step has the same shapes. Makes room for the step and records its
    /// padding.
    fn cached_step(&self, input: &LlamaInput<B>, cache: &mut KvCache<B>) -> Step<B> {
        let [b, s] = input.input_ids.dims();
        let device = input.input_ids.device();
        cache.reserve(b, s, self.config.max_position_embeddings);
        if let Some(m) = &input.attention_mask {
            cache.write_padding(m.clone());
        }
        let past = cache.len();
        let padding = cache.padding.clone();
        let positions = match (&input.position_ids, &padding) {
            (Some(p), _) => p.clone(),
            (None, Some(m)) => positions_from_padding(m.clone(), past, s),
            (None, None) => arange_rows(past, s, b, &device),
        };
        let window = self.config.sliding_window;
        let mask = hidden_keys(b, s, past, cache.capacity(), window, padding, &device);
        Step {
            positions,
            mask: Some(mask),
        }
    }

    /// Embeddings → layers → final norm. `states`, when given, receives the embeddings and
    /// every layer output except the last.
    fn run(
        &self,
        input: LlamaInput<B>,
        mut cache: Option<&mut KvCache<B>>,
        mut states: Option<&mut Vec<Tensor<B, 3>>>,
    ) -> Result<Tensor<B, 3>> {
        let [_, s] = self.check_input(&input, cache.as_deref())?;
        let step = match cache.as_mut() {
            Some(c) => self.cached_step(&input, c),
            None => self.uncached_step(&input),
        };
        let mut x = self.embed_tokens.forward(input.input_ids);
        // The tables in f32, then in the compute dtype, as transformers' rotary embedding.
        let (cos, sin) = rope_cos_sin(&self.inv_freq, step.positions);
        let (cos, sin) = (cast_to(cos, x.dtype()), cast_to(sin, x.dtype()));
        let ctx = AttentionContext {
            cos: &cos,
            sin: &sin,
            mask: step.mask.as_ref(),
        };
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(states) = states.as_mut() {
                states.push(x.clone());
            }
            x = layer.forward(x, &ctx, cache.as_mut().map(|c| (&mut **c, i)));
        }
        if let Some(c) = cache {
            c.advance(s);
        }
        Ok(qlora_core::precise::rms_norm(&self.norm, x))
    }
}

/// What every layer of one pass shares besides its input.
struct Step<B: Backend> {
    /// `[batch, seq]` RoPE positions.
    positions: Tensor<B, 2, Int>,
    /// `[batch, 1, seq, keys]` hidden keys (`None`: every key visible).
    mask: Option<Tensor<B, 4, Bool>>,
}

/// Positions `start..start + len` for each of `rows` rows, `[rows, len]`.
fn arange_rows<B: Backend>(
    start: usize,
    len: usize,
    rows: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    Tensor::<B, 1, Int>::arange(start as i64..(start + len) as i64, device)
        .reshape([1, len])
        .repeat_dim(0, rows)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ModelType;
    use crate::init::RandomInit;
    use crate::kv_cache::GROWTH_BLOCK;
    use crate::TestBackend;

    type B = TestBackend;

    fn mistral(window: usize) -> Llama<B> {
        let config = LlamaConfig {
            model_type: ModelType::Mistral,
            sliding_window: Some(window),
            ..LlamaConfig::tiny(40)
        };
        Llama::random(
            &config,
            &RandomInit { std: 0.2, seed: 5 },
            &Default::default(),
        )
        .unwrap()
    }

    /// The dims of every buffer the cache holds: each layer's keys and values, the padding.
    fn buffer_dims(cache: &KvCache<B>) -> Vec<Vec<usize>> {
        let mut dims: Vec<Vec<usize>> = cache
            .layers
            .iter()
            .flatten()
            .flat_map(|kv| [kv.keys.dims().to_vec(), kv.values.dims().to_vec()])
            .collect();
        dims.extend(cache.padding.iter().map(|p| p.dims().to_vec()));
        dims
    }

    fn ids(rows: &[Vec<i64>]) -> Tensor<B, 2, Int> {
        let width = rows[0].len();
        let flat = rows.concat();
        Tensor::from_data(
            TensorData::new(flat, [rows.len(), width]),
            &Default::default(),
        )
    }

    fn max_diff(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// After the prefill, decode steps write into the same buffers and attend over the same
    /// capacity, step after step, and their logits equal a full forward without cache over
    /// the padded batch (past the sliding window of 4).
    #[test]
    fn decode_steps_see_constant_shapes_and_full_forward_logits() {
        let model = mistral(4);
        let mut rows = vec![vec![0i64, 0, 7, 8, 9], vec![3, 4, 5, 6, 7]];
        let mask = |w: usize| ids(&[[vec![0, 0], vec![1; w - 2]].concat(), vec![1; w]]);
        let mut cache = KvCache::with_capacity(2, 32);
        let prefill = LlamaInput::new(ids(&rows)).with_attention_mask(mask(5));
        model.forward_cached(prefill, &mut cache, true).unwrap();
        let shapes = buffer_dims(&cache);
        assert_eq!(shapes.len(), 2 * 2 + 1);
        assert!(
            shapes[..4].iter().all(|d| d == &[2, 2, 32, 16]),
            "{shapes:?}"
        );
        for step in 0..20 {
            let next: Vec<i64> = (0..2)
                .map(|r| ((step * 7 + r * 3) % 37 + 1) as i64)
                .collect();
            for (row, &t) in rows.iter_mut().zip(&next) {
                row.push(t);
            }
            let input = LlamaInput::new(ids(&[vec![next[0]], vec![next[1]]]));
            let logits = model.forward_cached(input, &mut cache, true).unwrap();
            assert_eq!(logits.dims(), [2, 1, 40]);
            assert_eq!(buffer_dims(&cache), shapes, "step {step}");
            assert_eq!(cache.capacity(), 32);

            let width = rows[0].len();
            let full = LlamaInput::new(ids(&rows)).with_attention_mask(mask(width));
            let want = model.forward(full).unwrap();
            let want = want.slice([0..2, width - 1..width]).reshape([2, 40]);
            let d = max_diff(logits.clone().reshape([2, 40]), want);
            assert!(d < 1e-5, "step {step}: cached vs full logits differ by {d}");
        }
    }

    /// Without a reserved capacity the cache grows by whole blocks: once at the first call
    /// and once when position 256 is reached, never per token.
    #[test]
    fn cache_grows_in_blocks_of_positions() {
        let model = mistral(8);
        let mut cache = KvCache::new(2);
        let prompt: Vec<i64> = (0..250).map(|i| i % 39 + 1).collect();
        model
            .forward_cached(LlamaInput::new(ids(&[prompt])), &mut cache, true)
            .unwrap();
        let mut capacities = vec![cache.capacity()];
        for t in 0..10 {
            let input = LlamaInput::new(ids(&[vec![t + 1]]));
            model.forward_cached(input, &mut cache, true).unwrap();
            capacities.push(cache.capacity());
        }
        let grown: Vec<usize> = capacities
            .windows(2)
            .filter(|w| w[0] != w[1])
            .map(|w| w[1])
            .collect();
        assert_eq!(capacities[0], GROWTH_BLOCK);
        assert_eq!(grown, vec![2 * GROWTH_BLOCK]);
        assert_eq!(cache.len(), 260);
        assert!(buffer_dims(&cache).iter().all(|d| d[2] == 2 * GROWTH_BLOCK));
    }
}
