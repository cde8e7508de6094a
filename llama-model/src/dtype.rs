//! The compute dtype of a model: the dtype its frozen weights are held in and its activations
//! flow in (f32 on the CPU; bf16 on CUDA, as transformers' `torch_dtype=torch.bfloat16`).
//!
//! Only the frozen base changes dtype: embeddings, RMSNorm weights, dense projections and
//! `lm_head` (NF4 projections keep their 4-bit codes and dequantize into the input's dtype).
//! LoRA adapters keep f32 master weights and compute in the input's dtype, as under torch's
//! autocast. Where transformers computes in f32 whatever the model dtype, so does
//! [`crate::Llama`]: the RMSNorm statistics, the attention softmax, the rotary tables (made in
//! f32, then cast) and the logits (returned as f32).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};

use crate::model::Llama;

impl<B: Backend> Llama<B> {
    /// The model with its frozen weights cast to `dtype` (its compute dtype); LoRA adapter
    /// weights stay as they are (f32 masters). `FloatDType::F32` on an f32 model changes
    /// nothing.
    ///
    /// ```
    /// use burn::tensor::{FloatDType, DType};
    /// use burn_ndarray::NdArray;
    /// use llama_model::{Llama, LlamaConfig, LlamaInput, RandomInit};
    /// let dev = Default::default();
    /// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev)
    ///     .unwrap()
    ///     .with_dtype(FloatDType::F64);
    /// assert_eq!(model.dtype(), DType::F64);
    /// let input = LlamaInput::left_padded(&[vec![1, 2, 3]], 0, &dev).unwrap();
    /// // the logits come back in f32 whatever the compute dtype
    /// assert_eq!(model.forward(input).unwrap().dtype(), DType::F32);
    /// ```
    pub fn with_dtype(self, dtype: FloatDType) -> Self {
        self.map(&mut CastFrozen {
            dtype,
            in_adapter: 0,
        })
    }

    /// The compute dtype: that of the token embeddings.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.embed_tokens.weight.val().dtype()
    }
}

/// Casts every float parameter outside LoRA adapters to `dtype`, keeping its id and whether
/// it requires a gradient.
struct CastFrozen {
    dtype: FloatDType,
    /// Depth inside a `LoraAdapter` (its weights are skipped).
    in_adapter: usize,
}

const ADAPTER: &str = "Struct:LoraAdapter";

impl<B: Backend> ModuleMapper<B> for CastFrozen {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if container_type == ADAPTER {
            self.in_adapter += 1;
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if container_type == ADAPTER {
            self.in_adapter -= 1;
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if self.in_adapter > 0 {
            return param;
        }
        let dtype = self.dtype;
        param.map(|t| {
            if FloatDType::from(t.dtype()) == dtype {
                return t;
            }
            let grad = t.is_require_grad();
            t.cast(dtype).set_require_grad(grad)
        })
    }
}

/// `t` as f32, for the computations transformers keeps in f32 (a no-op on f32 tensors).
pub(crate) fn to_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    cast_to(t, FloatDType::F32)
}

/// `t` cast to `dtype` unless it already has it.
pub(crate) fn cast_to<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    dtype: impl Into<FloatDType>,
) -> Tensor<B, D> {
    let dtype = dtype.into();
    if FloatDType::from(t.dtype()) == dtype {
        t
    } else {
        t.cast(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LlamaConfig, LlamaInput, RandomInit, TestBackend};
    use burn::tensor::DType;
    use qlora_core::lora::LoraConfig;
    use qlora_core::QuantConfig;

    type B = TestBackend;

    fn model() -> Llama<B> {
        Llama::random(
            &LlamaConfig::tiny(40),
            &RandomInit { std: 0.2, seed: 3 },
            &Default::default(),
        )
        .unwrap()
    }

    fn logits(m: &Llama<B>) -> Vec<f32> {
        let input =
            LlamaInput::left_padded(&[vec![1, 5, 9, 2, 7], vec![3, 4]], 0, &Default::default())
                .unwrap();
        let out = m.forward(input).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        out.into_data().to_vec().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    }

    /// Another compute dtype (f64, the one burn-ndarray has besides f32) gives the f32
    /// logits within rounding, and casts the base but not the adapters.
    #[test]
    fn another_dtype_gives_the_same_logits_and_keeps_adapters_f32() {
        let m = model();
        let want = logits(&m);
        let m64 = m
            .with_lora(&LoraConfig::new(4, 8.0), 1)
            .unwrap()
            .with_dtype(FloatDType::F64);
        assert_eq!(m64.dtype(), DType::F64);
        assert_eq!(m64.norm.gamma.val().dtype(), DType::F64);
        let q = m64.layers[0].self_attn.q_proj.adapter().unwrap();
        assert_eq!(q.lora_a.val().dtype(), DType::F32);
        assert!(!m64.embed_tokens.weight.val().is_require_grad());
        let d = max_diff(&logits(&m64), &want);
        assert!(d < 1e-4, "f64 vs f32 logits differ by {d}");
    }

    /// NF4 projections dequantize into the compute dtype: an f64 model with a 4-bit base
    /// gives its f32 logits, in prefill (dequantize + matmul) and decode (the GEMV).
    #[test]
    fn nf4_base_follows_the_compute_dtype() {
        let config = LlamaConfig::tiny(40);
        let init = RandomInit { std: 0.2, seed: 4 };
        let dev = Default::default();
        let m = Llama::<B>::random_quantized(&config, &init, QuantConfig::default(), &dev).unwrap();
        let want = logits(&m);
        let m64 = m.with_dtype(FloatDType::F64);
        let d = max_diff(&logits(&m64), &want);
        assert!(d < 1e-4, "f64 vs f32 logits differ by {d}");
        let step = |m: &Llama<B>| -> Vec<f32> {
            let input = LlamaInput::left_padded(&[vec![7]], 0, &dev).unwrap();
            let mut cache = crate::KvCache::new(config.num_hidden_layers);
            m.forward_cached(input, &mut cache, true)
                .unwrap()
                .into_data()
                .to_vec()
                .unwrap()
        };
        let m32 =
            Llama::<B>::random_quantized(&config, &init, QuantConfig::default(), &dev).unwrap();
        let d = max_diff(&step(&m64), &step(&m32));
        assert!(d < 1e-4, "f64 vs f32 decode logits differ by {d}");
    }
}
