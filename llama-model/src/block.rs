//! One pre-norm decoder layer: `x + attn(norm(x))`, then `h + mlp(norm(h))`.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use qlora_core::lora::{LoraLinear, TargetModule};
use qlora_core::precise::rms_norm;

use crate::attention::{Attention, AttentionContext};
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::kv_cache::KvCache;
use crate::mlp::Mlp;
use crate::weights::{Load, Weights};

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
                .forward(rms_norm(&self.input_layernorm, x), ctx, cache);
        h.clone()
            + self
                .mlp
                .forward(rms_norm(&self.post_attention_layernorm, h))
    }
}

/// `self_attn`, `mlp`, `input_layernorm`, `post_attention_layernorm`.
impl<B: Backend> Load<B> for DecoderLayer<B> {
    fn load(w: &mut Weights<'_, B>, c: &LlamaConfig) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(&mut w.pp("self_attn"), c)?,
            mlp: Mlp::load(&mut w.pp("mlp"), c)?,
            input_layernorm: RmsNorm::load(&mut w.pp("input_layernorm"), c)?,
            post_attention_layernorm: RmsNorm::load(&mut w.pp("post_attention_layernorm"), c)?,
        })
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// The projection `t` names (`q_proj` .. `down_proj`).
    pub(crate) fn projection(&self, t: TargetModule) -> &LoraLinear<B> {
        match t {
            TargetModule::QProj => &self.self_attn.q_proj,
            TargetModule::KProj => &self.self_attn.k_proj,
            TargetModule::VProj => &self.self_attn.v_proj,
            TargetModule::OProj => &self.self_attn.o_proj,
            TargetModule::GateProj => &self.mlp.gate_proj,
            TargetModule::UpProj => &self.mlp.up_proj,
            TargetModule::DownProj => &self.mlp.down_proj,
        }
    }

    fn projection_mut(&mut self, t: TargetModule) -> &mut LoraLinear<B> {
        match t {
            TargetModule::QProj => &mut self.self_attn.q_proj,
            TargetModule::KProj => &mut self.self_attn.k_proj,
            TargetModule::VProj => &mut self.self_attn.v_proj,
            TargetModule::OProj => &mut self.self_attn.o_proj,
            TargetModule::GateProj => &mut self.mlp.gate_proj,
            TargetModule::UpProj => &mut self.mlp.up_proj,
            TargetModule::DownProj => &mut self.mlp.down_proj,
        }
    }

    /// Replaces projection `t` by `f` of it, without copying its weights. On error the slot
    /// holds a 1x1 placeholder: callers own the model and drop it with the error.
    pub(crate) fn map_projection<E>(
        &mut self,
        t: TargetModule,
        f: impl FnOnce(LoraLinear<B>) -> std::result::Result<LoraLinear<B>, E>,
    ) -> std::result::Result<(), E> {
        let slot = self.projection_mut(t);
        let device = slot.base.device();
        let placeholder = LoraLinear::dense(Tensor::zeros([1, 1], &device), None);
        *slot = f(std::mem::replace(slot, placeholder))?;
        Ok(())
    }

    /// Sets whether every weight of the layer (projections and norms) requires a gradient;
    /// `name` (`model.layers.N`) prefixes errors.
    pub(crate) fn set_base_trainable(
        mut self,
        trainable: bool,
        name: &str,
    ) -> crate::error::Result<Self> {
        for t in TargetModule::ALL {
            self.map_projection(t, |p| {
                p.set_base_trainable(trainable)
                    .map_err(|source| crate::error::LlamaError::Lora {
                        module: format!("{name}.{}.{}", t.parent(), t.as_str()),
                        source,
                    })
            })?;
        }
        self.input_layernorm.gamma = self.input_layernorm.gamma.set_require_grad(trainable);
        self.post_attention_layernorm.gamma = self
            .post_attention_layernorm
            .gamma
            .set_require_grad(trainable);
        Ok(self)
    }
}
