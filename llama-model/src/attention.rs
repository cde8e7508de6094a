//! Grouped-query self-attention with rotary embeddings, a mask of hidden keys (causal,
//! padding, sliding window: `mask.rs`), and an optional key/value cache.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};
use qlora_core::lora::LoraLinear;
use qlora_core::precise::softmax;

use crate::config::LlamaConfig;
use crate::dtype::{cast_to, to_f32};
use crate::error::Result;
use crate::kv_cache::KvCache;
use crate::rope::apply_rotary;
use crate::weights::{Load, Weights};

/// Self-attention of one decoder layer, field names as in transformers.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `[heads·head_dim, hidden]`.
    pub q_proj: LoraLinear<B>,
    /// `[kv_heads·head_dim, hidden]`.
    pub k_proj: LoraLinear<B>,
    /// `[kv_heads·head_dim, hidden]`.
    pub v_proj: LoraLinear<B>,
    /// `[hidden, heads·head_dim]`.
    pub o_proj: LoraLinear<B>,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

/// What one attention call needs besides its input.
#[derive(Debug)]
pub struct AttentionContext<'a, B: Backend> {
    /// RoPE cosines `[batch, 1, seq, head_dim]`.
    pub cos: &'a Tensor<B, 4>,
    /// RoPE sines `[batch, 1, seq, head_dim]`.
    pub sin: &'a Tensor<B, 4>,
    /// `[batch, 1, seq, keys]`, true where a query must not see a key; `None`: see all.
    /// With a cache, `keys` is the cache's capacity.
    pub mask: Option<&'a Tensor<B, 4, Bool>>,
}

/// Repeats each key/value head `groups` times: `[b, kv, t, d]` → `[b, kv·groups, t, d]`,
/// head `h` of the result being head `h / groups` of the input (transformers' `repeat_kv`).
pub(crate) fn repeat_kv<B: Backend>(x: Tensor<B, 4>, groups: usize) -> Tensor<B, 4> {
    if groups == 1 {
        return x;
    }
    let [b, kv, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, groups, t, d])
        .reshape([b, kv * groups, t, d])
}

impl<B: Backend> Attention<B> {
    /// Applies attention. With a cache, this call's keys and values are written into layer
    /// `layer` of it and the queries attend to all of its slots (the mask hides those not
    /// written yet).
    ///
    /// # Shapes
    ///
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        ctx: &AttentionContext<'_, B>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self
            .q_proj
            .forward(x.clone())
            .reshape([b, s, h, d])
            .swap_dims(1, 2);
        let k = self
            .k_proj
            .forward(x.clone())
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let v = self
            .v_proj
            .forward(x)
            .reshape([b, s, kvh, d])
            .swap_dims(1, 2);
        let q = apply_rotary(q, ctx.cos, ctx.sin);
        let k = apply_rotary(k, ctx.cos, ctx.sin);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.write(layer, k, v),
            None => (k, v),
        };
        let k = repeat_kv(k, h / kvh);
        let v = repeat_kv(v, h / kvh);
        let scale = (d as f64).powf(-0.5);
        let dtype = q.dtype();
        // The mask and softmax in f32 whatever the compute dtype, as transformers' eager
        // attention (`softmax(..., dtype=torch.float32).to(query.dtype)`).
        let mut scores = to_f32(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale));
        if let Some(mask) = ctx.mask {
            let [_, _, _, t] = scores.dims();
            scores = scores.mask_fill(mask.clone().expand([b, h, s, t]), f32::MIN);
        }
        let probs = cast_to(softmax(scores, 3), dtype);
        let out = probs.matmul(v).swap_dims(1, 2).reshape([b, s, h * d]);
        self.o_proj.forward(out)
    }
}

/// `q_proj`, `k_proj`, `v_proj`, `o_proj` (biases with `attention_bias`).
impl<B: Backend> Load<B> for Attention<B> {
    fn load(w: &mut Weights<'_, B>, c: &LlamaConfig) -> Result<Self> {
        let q_out = c.num_attention_heads * c.head_dim;
        let kv_out = c.num_key_value_heads * c.head_dim;
        let (hidden, bias) = (c.hidden_size, c.attention_bias);
        Ok(Self {
            q_proj: w.pp("q_proj").linear(q_out, hidden, bias)?,
            k_proj: w.pp("k_proj").linear(kv_out, hidden, bias)?,
            v_proj: w.pp("v_proj").linear(kv_out, hidden, bias)?,
            o_proj: w.pp("o_proj").linear(hidden, q_out, bias)?,
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
        })
    }
}
