//! Folding LoRA adapters into their base weights: the full-precision model peft's
//! `merge_and_unload()` gives, ready to save with
//! [`save_pretrained_as`](crate::save_pretrained_as).
//!
//! Every adapted projection becomes the dense weight `W + scaling · B·A`; an NF4 base is
//! dequantized first (exactly as bitsandbytes' `dequantize_4bit`), and projections without
//! an adapter but with an NF4 base are dequantized too, so the merged model holds no 4-bit
//! weight and saves as an ordinary Hugging Face checkpoint (no `quantization_config`).

use std::path::Path;

use burn::tensor::backend::Backend;
use qlora_core::lora::{FrozenBase, LoraLinear, TargetModule};

use crate::error::{LlamaError, Result};
use crate::model::Llama;
use crate::peft::load_adapter;

/// Folds the adapter of one projection into a dense base and drops it; an NF4 base without
/// adapter is dequantized. `module` names the projection in errors.
fn merge_linear<B: Backend>(lin: LoraLinear<B>, module: &str) -> Result<LoraLinear<B>> {
    if lin.adapter().is_some() {
        let merged = lin.merge().map_err(|source| LlamaError::Lora {
            module: module.to_string(),
            source,
        })?;
        return Ok(merged.without_lora());
    }
    Ok(match lin.base {
        FrozenBase::Nf4(_) => LoraLinear::dense(lin.base.weight(), lin.base.bias()),
        FrozenBase::Dense(_) => lin,
    })
}

impl<B: Backend> Llama<B> {
    /// Folds every LoRA adapter into its base weight (`W + scaling · B·A`, computed in f32
    /// on the dequantized weight for an NF4 base) and removes the adapters, as peft's
    /// `merge_and_unload()` does for a full-precision base. NF4 projections without adapter
    /// are dequantized, so the result is full precision throughout and its logits equal the
    /// adapted model's.
    ///
    /// Errors name the projection whose merged weight is not finite (peft's `safe_merge`).
    ///
    /// ```
    /// use burn_ndarray::NdArray;
    /// use llama_model::{Llama, LlamaConfig, LlamaInput, RandomInit};
    /// use qlora_core::{LoraConfig, TargetModule};
    ///
    /// let dev = Default::default();
    /// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(16), &RandomInit::default(), &dev).unwrap();
    /// let model = model.with_lora(&LoraConfig::new(2, 4.0).with_targets(vec![TargetModule::QProj]), 0).unwrap();
    /// let merged = model.merge_lora().unwrap();
    /// assert!(merged.layers[0].self_attn.q_proj.adapter().is_none());
    /// let logits = merged.forward(LlamaInput::left_padded(&[vec![1, 2]], 0, &dev).unwrap()).unwrap();
    /// assert_eq!(logits.dims(), [1, 2, 16]);
    /// ```
    pub fn merge_lora(mut self) -> Result<Llama<B>> {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for t in TargetModule::ALL {
                let module = format!("model.layers.{i}.{}.{}", t.parent(), t.as_str());
                layer.map_projection(t, |lin| merge_linear(lin, &module))?;
            }
        }
        if let Some(head) = self.lm_head.take() {
            self.lm_head = Some(merge_linear(head, "lm_head")?);
        }
        Ok(self)
    }
}

/// Loads the PEFT adapter directory `adapter_dir` onto `model` ([`load_adapter`]) and folds
/// it in ([`Llama::merge_lora`]).
///
/// Errors name the file, field or tensor of an adapter that does not fit the model.
///
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{merge_adapter, Llama, LlamaConfig, RandomInit};
///
/// let dev = Default::default();
/// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(16), &RandomInit::default(), &dev).unwrap();
/// assert!(merge_adapter(model, "/nonexistent-adapter").is_err());
/// ```
pub fn merge_adapter<B: Backend>(
    model: Llama<B>,
    adapter_dir: impl AsRef<Path>,
) -> Result<Llama<B>> {
    load_adapter(model, adapter_dir)?.merge_lora()
}
