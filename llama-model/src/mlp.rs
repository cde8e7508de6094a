//! The SwiGLU feed-forward block of LLaMA.

use burn::module::Module;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use qlora_core::lora::LoraLinear;

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::weights::{Load, Weights};

/// `down_proj(silu(gate_proj(x)) · up_proj(x))`, field names as in transformers.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[intermediate, hidden]`.
    pub gate_proj: LoraLinear<B>,
    /// `[intermediate, hidden]`.
    pub up_proj: LoraLinear<B>,
    /// `[hidden, intermediate]`.
    pub down_proj: LoraLinear<B>,
}

impl<B: Backend> Mlp<B> {
    /// Applies the block.
    ///
    /// # Shapes
    ///
    /// - x: `[batch, seq, hidden]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// `gate_proj`, `up_proj`, `down_proj` (biases with `mlp_bias`).
impl<B: Backend> Load<B> for Mlp<B> {
    fn load(w: &mut Weights<'_, B>, c: &LlamaConfig) -> Result<Self> {
        let (hidden, inner, bias) = (c.hidden_size, c.intermediate_size, c.mlp_bias);
        Ok(Self {
            gate_proj: w.pp("gate_proj").linear(inner, hidden, bias)?,
            up_proj: w.pp("up_proj").linear(inner, hidden, bias)?,
            down_proj: w.pp("down_proj").linear(hidden, inner, bias)?,
        })
    }
}
