//! The key/value cache of incremental decoding.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Keys and values of one layer for all positions seen so far.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    /// Keys after RoPE, `[batch, kv_heads, past, head_dim]`.
    pub keys: Tensor<B, 4>,
    /// Values, `[batch, kv_heads, past, head_dim]`.
    pub values: Tensor<B, 4>,
}

/// The cache of a whole model: one [`LayerKv`] per layer, plus the padding mask of every
/// cached position (so later steps keep masking left padding) and the next position id of
/// each row.
///
/// Start with [`KvCache::new`] and pass the same cache to every
/// [`crate::Llama::forward_cached`] call of one generation.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub(crate) layers: Vec<Option<LayerKv<B>>>,
    /// `[batch, past]`, 1 = real token, 0 = padding; `None` while nothing is padded.
    pub(crate) mask: Option<Tensor<B, 2, Int>>,
    pub(crate) len: usize,
    pub(crate) batch: Option<usize>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model with `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            mask: None,
            len: 0,
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

    /// Appends this step's keys/values for `layer` and returns all keys/values so far.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (k, v) = match self.layers[layer].take() {
            Some(past) => (
                Tensor::cat(vec![past.keys, keys], 2),
                Tensor::cat(vec![past.values, values], 2),
            ),
            None => (keys, values),
        };
        self.layers[layer] = Some(LayerKv {
            keys: k.clone(),
            values: v.clone(),
        });
        (k, v)
    }
}
