//! One pre-norm decoder layer: `x + attn(norm(x))`, then `h + mlp(norm(h))`.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::attention::{Attention, AttentionContext};
use crate::kv_cache::KvCache;
use crate::mlp::Mlp;

/// A decoder layer, field names as in transformers (`model.layers.N.*`).
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// `self_attn`.
    pub self_attn: Attention<B>,
    /// `mlp`.
    pub mlp: Mlp<B>,
    /// `input_layernorm` (before attention).
    pub input_layernorm: RmsNorm<B>,
    /// `post_attention_layernorm` (before the MLP).
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// Applies the layer (see [`Attention::forward`] for the cache).
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
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), ctx, cache);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// Sets whether every weight of the layer (projections and norms) requires a gradient;
    /// `name` (`model.layers.N`) prefixes errors.
    pub(crate) fn set_base_trainable(
        mut self,
        trainable: bool,
        name: &str,
    ) -> crate::error::Result<Self> {
        self.self_attn = self.self_attn.set_base_trainable(trainable, name)?;
        self.mlp = self.mlp.set_base_trainable(trainable, name)?;
        self.input_layernorm.gamma = self.input_layernorm.gamma.set_require_grad(trainable);
        self.post_attention_layernorm.gamma = self
            .post_attention_layernorm
            .gamma
            .set_require_grad(trainable);
        Ok(self)
    }
}
