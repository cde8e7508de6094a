//! The key/value cache of incremental decoding, allocated once and written in place.
//!
//! On a GPU backend every new tensor shape compiles (and autotunes) new kernels, so a cache
//! that grows by concatenation recompiles on every decode step. This cache holds each
//! layer's keys and values in buffers of `capacity` positions, `[batch, kv_heads, capacity,
//! head_dim]`: a step writes its keys at its slots with `slice_assign` (in place when nothing
//! else holds the buffer), and attention runs over all `capacity` slots under a mask
//! (`mask.rs`) that hides the slots not written yet (they lie after every query, so
//! the causal mask hides them), padding and, for Mistral, keys outside the sliding window.
//! Decode steps therefore see the same shapes step after step.
//!
//! The capacity is reserved for a generation's known length ([`KvCache::with_capacity`];
//! [`crate::generate()`] does this) or grows in blocks of [`GROWTH_BLOCK`] positions, never
//! per token; it never exceeds `max_position_embeddings` unless reserved beyond it.
//!
//! A sliding-window model keeps every position (transformers' `DynamicSlidingWindowLayer`
//! keeps only the last `sliding_window - 1`): the window is applied by the mask, with the
//! same result.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// The number of positions a cache grows by when a step does not fit
/// ([`KvCache::with_capacity`] avoids growing at all).
pub const GROWTH_BLOCK: usize = 256;

/// Keys and values of one layer in slots `0..capacity`; slots from [`KvCache::len`] on are
/// not written yet.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    /// Keys after RoPE, `[batch, kv_heads, capacity, head_dim]`.
    pub keys: Tensor<B, 4>,
    /// Values, `[batch, kv_heads, capacity, head_dim]`.
    pub values: Tensor<B, 4>,
}

/// The cache of a whole model: one [`LayerKv`] per layer, plus the padding mask of every
/// cached position (so later steps keep masking left padding).
///
/// Start with [`KvCache::new`] (or [`KvCache::with_capacity`] when the final length is known)
/// and pass the same cache to every [`crate::Llama::forward_cached`] call of one generation.
///
/// ```
/// use burn::tensor::{Int, Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use llama_model::{KvCache, Llama, LlamaConfig, LlamaInput, RandomInit};
///
/// let dev = Default::default();
/// let model = Llama::<NdArray>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev).unwrap();
/// let mut cache = KvCache::with_capacity(2, 12);
/// model.forward_cached(LlamaInput::left_padded(&[vec![1, 2, 3]], 0, &dev).unwrap(), &mut cache, true).unwrap();
/// for t in 0..5 {
///     let ids = Tensor::<NdArray, 2, Int>::from_data(TensorData::new(vec![4i64 + t], [1, 1]), &dev);
///     model.forward_cached(LlamaInput::new(ids), &mut cache, true).unwrap();
/// }
/// assert_eq!((cache.len(), cache.capacity()), (8, 12));
/// ```
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub(crate) layers: Vec<Option<LayerKv<B>>>,
    /// `[batch, capacity]`, 0 for padding slots and 1 otherwise (unwritten slots too);
    /// `None` while no input came with an attention mask.
    pub(crate) padding: Option<Tensor<B, 2, Int>>,
    pub(crate) len: usize,
    pub(crate) capacity: usize,
    pub(crate) batch: Option<usize>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model with `num_layers` layers; it allocates [`GROWTH_BLOCK`]
    /// positions at a time.
    pub fn new(num_layers: usize) -> Self {
        Self::with_capacity(num_layers, 0)
    }

    /// An empty cache that allocates `capacity` positions on the first call (prompt plus new
    /// tokens: decoding then never reallocates).
    pub fn with_capacity(num_layers: usize, capacity: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            padding: None,
            len: 0,
            capacity,
            batch: None,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of positions the buffers hold (or will hold once allocated).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes room for `new` more positions of a batch of `batch` rows: the capacity grows to
    /// the next multiple of [`GROWTH_BLOCK`], but not beyond `limit` (the model's context)
    /// unless the positions need it. The buffers follow on their next write.
    pub(crate) fn reserve(&mut self, batch: usize, new: usize, limit: usize) {
        self.batch = Some(batch);
        let needed = self.len + new;
        if needed > self.capacity {
            let grown = needed.div_ceil(GROWTH_BLOCK) * GROWTH_BLOCK;
            self.capacity = grown.min(limit).max(needed);
        }
        if let Some(padding) = self.padding.take() {
            self.padding = Some(grow(padding, self.capacity, 1));
        }
    }

    /// Records the attention mask `[batch, new]` (1 = token, 0 = padding) of the positions
    /// this step writes.
    pub(crate) fn write_padding(&mut self, mask: Tensor<B, 2, Int>) {
        let [b, s] = mask.dims();
        let padding = self
            .padding
            .take()
            .unwrap_or_else(|| Tensor::ones([b, self.capacity], &mask.device()));
        self.padding = Some(padding.slice_assign([0..b, self.len..self.len + s], mask));
    }

    /// Writes this step's keys/values `[batch, kv_heads, new, head_dim]` of `layer` at slots
    /// `len..len + new` and returns the whole buffers `[batch, kv_heads, capacity, head_dim]`.
    pub(crate) fn write(
        &mut self,
        layer: usize,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, h, s, d] = keys.dims();
        let (cap, at) = (self.capacity, self.len);
        let (k, v) = match self.layers[layer].take() {
            Some(kv) => (grow_kv(kv.keys, cap), grow_kv(kv.values, cap)),
            None => {
                let zeros = Tensor::<B, 4>::zeros([b, h, cap, d], (&keys.device(), keys.dtype()));
                (zeros.clone(), zeros)
            }
        };
        let slots = [0..b, 0..h, at..at + s, 0..d];
        let kv = LayerKv {
            keys: k.slice_assign(slots.clone(), keys),
            values: v.slice_assign(slots, values),
        };
        let out = (kv.keys.clone(), kv.values.clone());
        self.layers[layer] = Some(kv);
        out
    }

    /// Marks `new` more positions as cached, after every layer wrote them.
    pub(crate) fn advance(&mut self, new: usize) {
        self.len += new;
    }
}

/// `t` `[b, capacity]` extended along dim 1 to `capacity` slots filled with `fill`.
fn grow<B: Backend>(t: Tensor<B, 2, Int>, capacity: usize, fill: i64) -> Tensor<B, 2, Int> {
    let [b, old] = t.dims();
    if old >= capacity {
        return t;
    }
    Tensor::full([b, capacity], fill, &t.device()).slice_assign([0..b, 0..old], t)
}

/// A key or value buffer extended along the position axis to `capacity` zero slots.
fn grow_kv<B: Backend>(t: Tensor<B, 4>, capacity: usize) -> Tensor<B, 4> {
    let [b, h, old, d] = t.dims();
    if old >= capacity {
        return t;
    }
    Tensor::zeros([b, h, capacity, d], (&t.device(), t.dtype()))
        .slice_assign([0..b, 0..h, 0..old, 0..d], t)
}
