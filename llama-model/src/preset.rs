//! Real model shapes without their weights: the Hugging Face `config.json` of a few public
//! LLaMA and Mistral checkpoints, so that speed and memory can be measured on a randomly
//! initialised model ([`crate::Llama::random`]) at the shapes users fine-tune.
//!
//! The JSON texts are the hub's `config.json` files (fields the loader ignores, such as
//! `architectures`, are kept as written), resolved through the same path as a checkpoint's
//! config ([`HfLlamaConfig::resolve`]); the tests check them against the parameter counts
//! the hub publishes for each checkpoint.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use qlora_core::lora::{FrozenBase, LoraLinear};
use qlora_core::{Nf4Linear, QuantConfig, QuantState};

use crate::config::{HfLlamaConfig, LlamaConfig};
use crate::error::{LlamaError, Result};
use crate::init::{RandomInit, RandomSource};
use crate::model::{Llama, WeightSource};

/// A public LLaMA or Mistral checkpoint whose shapes [`LlamaConfig::preset`] reproduces.
///
/// ```
/// use llama_model::ModelPreset;
/// let p: ModelPreset = "llama3-8b".parse().unwrap();
/// assert_eq!(p, ModelPreset::Llama3_8B);
/// assert_eq!(p.to_string(), "llama3-8b");
/// assert!("llama4".parse::<ModelPreset>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelPreset {
    /// `meta-llama/Meta-Llama-3-8B`: 32 layers, hidden 4096, MLP 14336, GQA 32/8 heads,
    /// vocabulary 128256.
    Llama3_8B,
    /// `meta-llama/Llama-2-13b-hf`: 40 layers, hidden 5120, MLP 13824, 40 heads (no GQA),
    /// vocabulary 32000.
    Llama2_13B,
    /// `meta-llama/Llama-3.2-1B`: 16 layers, hidden 2048, MLP 8192, GQA 32/8 heads, tied
    /// embeddings, LLaMA-3.1 RoPE scaling.
    Llama3_2_1B,
    /// `meta-llama/Llama-3.1-8B`: the Llama-3-8B shapes with LLaMA-3.1 RoPE scaling and a
    /// 131072-token context.
    Llama3_1_8B,
    /// `mistralai/Mistral-7B-v0.1`: 32 layers, hidden 4096, MLP 14336, GQA 32/8 heads,
    /// sliding window 4096, RoPE theta 10000, vocabulary 32000.
    Mistral7B,
    /// `mistralai/Mistral-7B-v0.3`: the v0.1 shapes without sliding window, RoPE theta 1e6,
    /// vocabulary 32768.
    Mistral7Bv03,
}

impl ModelPreset {
    /// Every preset, in the order of [`ModelPreset::NAMES`].
    pub const ALL: [ModelPreset; 6] = [
        ModelPreset::Llama3_8B,
        ModelPreset::Llama2_13B,
        ModelPreset::Llama3_2_1B,
        ModelPreset::Llama3_1_8B,
        ModelPreset::Mistral7B,
        ModelPreset::Mistral7Bv03,
    ];

    /// The command-line names, as [`FromStr`] accepts them.
    pub const NAMES: [&'static str; 6] = [
        "llama3-8b",
        "llama2-13b",
        "llama3.2-1b",
        "llama3.1-8b",
        "mistral-7b",
        "mistral-7b-v0.3",
    ];

    /// The command-line name (`llama3-8b`, `llama2-13b`, `llama3.2-1b`, `llama3.1-8b`,
    /// `mistral-7b`, `mistral-7b-v0.3`).
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Llama3_8B => Self::NAMES[0],
            ModelPreset::Llama2_13B => Self::NAMES[1],
            ModelPreset::Llama3_2_1B => Self::NAMES[2],
            ModelPreset::Llama3_1_8B => Self::NAMES[3],
            ModelPreset::Mistral7B => Self::NAMES[4],
            ModelPreset::Mistral7Bv03 => Self::NAMES[5],
        }
    }

    /// The Hugging Face repository the shapes come from.
    pub fn hf_repo(self) -> &'static str {
        match self {
            ModelPreset::Llama3_8B => "meta-llama/Meta-Llama-3-8B",
            ModelPreset::Llama2_13B => "meta-llama/Llama-2-13b-hf",
            ModelPreset::Llama3_2_1B => "meta-llama/Llama-3.2-1B",
            ModelPreset::Llama3_1_8B => "meta-llama/Llama-3.1-8B",
            ModelPreset::Mistral7B => "mistralai/Mistral-7B-v0.1",
            ModelPreset::Mistral7Bv03 => "mistralai/Mistral-7B-v0.3",
        }
    }

    /// The repository's `config.json`, verbatim.
    pub fn hf_config_json(self) -> &'static str {
        match self {
            ModelPreset::Llama3_8B => LLAMA3_8B_CONFIG,
            ModelPreset::Llama2_13B => LLAMA2_13B_CONFIG,
            ModelPreset::Llama3_2_1B => LLAMA3_2_1B_CONFIG,
            ModelPreset::Llama3_1_8B => LLAMA3_1_8B_CONFIG,
            ModelPreset::Mistral7B => MISTRAL_7B_V01_CONFIG,
            ModelPreset::Mistral7Bv03 => MISTRAL_7B_V03_CONFIG,
        }
    }

    /// The parsed `config.json`.
    pub fn hf_config(self) -> Result<HfLlamaConfig> {
        serde_json::from_str(self.hf_config_json()).map_err(|e| LlamaError::Config {
            field: format!("preset {}", self.name()),
            reason: format!("embedded config.json does not parse: {e}"),
        })
    }
}

impl fmt::Display for ModelPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelPreset {
    type Err = LlamaError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| LlamaError::Config {
                field: "preset".to_string(),
                reason: format!(
                    "unknown model preset `{s}` (known: {})",
                    Self::NAMES.join(", ")
                ),
            })
    }
}

impl LlamaConfig {
    /// The resolved configuration of a public checkpoint (see [`ModelPreset`]), for a
    /// randomly initialised model at real shapes.
    ///
    /// ```
    /// use llama_model::{LlamaConfig, ModelPreset};
    /// let c = LlamaConfig::preset(ModelPreset::Llama3_8B).unwrap();
    /// assert_eq!((c.hidden_size, c.intermediate_size, c.num_hidden_layers), (4096, 14336, 32));
    /// assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (32, 8, 128));
    /// ```
    pub fn preset(preset: ModelPreset) -> Result<LlamaConfig> {
        preset.hf_config()?.resolve()
    }
}

/// A [`WeightSource`] that quantizes every projection of another source to NF4 as it is
/// built (what `load_in_4bit` does for a checkpoint), so that a random model at real shapes
/// holds 4-bit projections without ever holding them all in full precision.
#[derive(Debug)]
pub struct QuantizingSource<S> {
    inner: S,
    config: QuantConfig,
}

impl<S> QuantizingSource<S> {
    /// Quantizes the projections of `inner` with `config`.
    pub fn new(inner: S, config: QuantConfig) -> Self {
        Self { inner, config }
    }
}

impl<B: Backend, S: WeightSource<B>> WeightSource<B> for QuantizingSource<S> {
    fn dense(&mut self, name: &str, shape: &[usize]) -> Result<burn::tensor::TensorData> {
        self.inner.dense(name, shape)
    }

    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }

    fn linear(
        &mut self,
        prefix: &str,
        out_features: usize,
        in_features: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<LoraLinear<B>> {
        let name = format!("{prefix}.weight");
        let shape = [out_features, in_features];
        let values: Vec<f32> =
            self.inner
                .dense(&name, &shape)?
                .to_vec()
                .map_err(|e| LlamaError::Config {
                    field: name.clone(),
                    reason: format!("weight data is not f32: {e:?}"),
                })?;
        let state = QuantState::quantize(&values, &shape, self.config)?;
        let b = self.inner.bias(prefix, out_features, bias, device)?;
        let base = Nf4Linear::from_quant_state(state, b, device)?;
        Ok(LoraLinear::from_base(FrozenBase::Nf4(base)))
    }
}

impl<B: Backend> Llama<B> {
    /// A randomly initialised model (see [`RandomInit`]) whose projections are NF4 with
    /// `quant` (embeddings, norms and `lm_head` stay full precision, as with
    /// `load_in_4bit`).
    ///
    /// ```
    /// use burn_ndarray::NdArray;
    /// use llama_model::{Llama, LlamaConfig, RandomInit};
    /// use qlora_core::QuantConfig;
    /// let m = Llama::<NdArray>::random_quantized(
    ///     &LlamaConfig::tiny(64), &RandomInit::default(), QuantConfig::default(), &Default::default(),
    /// ).unwrap();
    /// assert_eq!(m.config().hidden_size, 64);
    /// ```
    pub fn random_quantized(
        config: &LlamaConfig,
        init: &RandomInit,
        quant: QuantConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let mut source = QuantizingSource::new(RandomSource::new(init), quant);
        Self::build(config, &mut source, device)
    }
}

/// `meta-llama/Meta-Llama-3-8B` `config.json`.
const LLAMA3_8B_CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}"#;

/// `meta-llama/Llama-2-13b-hf` `config.json`.
const LLAMA2_13B_CONFIG: &str = r#"{
  "_name_or_path": "meta-llama/Llama-2-13b-hf",
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 5120,
  "initializer_range": 0.02,
  "intermediate_size": 13824,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 40,
  "num_hidden_layers": 40,
  "num_key_value_heads": 40,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.32.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
}"#;

/// `meta-llama/Llama-3.2-1B` `config.json`.
const LLAMA3_2_1B_CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}"#;

/// `meta-llama/Llama-3.1-8B` `config.json`.
const LLAMA3_1_8B_CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}"#;

/// `mistralai/Mistral-7B-v0.1` `config.json`.
const MISTRAL_7B_V01_CONFIG: &str = r#"{
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
}"#;

/// `mistralai/Mistral-7B-v0.3` `config.json`.
const MISTRAL_7B_V03_CONFIG: &str = r#"{
  "architectures": ["MistralForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.42.0.dev0",
  "use_cache": true,
  "vocab_size": 32768
}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RopeScaling;

    /// Parameter count of a LLaMA config (embeddings, attention, MLP, norms, head).
    fn parameters(c: &LlamaConfig) -> usize {
        let attn = c.hidden_size * c.head_dim * (2 * c.num_attention_heads)
            + 2 * c.hidden_size * c.head_dim * c.num_key_value_heads;
        let mlp = 3 * c.hidden_size * c.intermediate_size;
        let layer = attn + mlp + 2 * c.hidden_size;
        let head = if c.tie_word_embeddings {
            0
        } else {
            c.vocab_size * c.hidden_size
        };
        c.vocab_size * c.hidden_size + c.num_hidden_layers * layer + c.hidden_size + head
    }

    #[test]
    fn names_round_trip() {
        for p in ModelPreset::ALL {
            assert_eq!(p.name().parse::<ModelPreset>().unwrap(), p);
        }
        let err = "llama-7b".parse::<ModelPreset>().unwrap_err().to_string();
        assert!(err.contains("llama3.2-1b"), "{err}");
    }

    /// The published parameter counts of the checkpoints (safetensors metadata):
    /// 8,030,261,248 (Llama-3-8B and 3.1-8B); 13,015,864,320; 1,235,814,400;
    /// 7,241,732,096 (Mistral-7B-v0.1); 7,248,023,552 (v0.3, the larger vocabulary).
    #[test]
    fn parameter_counts_match_the_hub() {
        let count = |p| parameters(&LlamaConfig::preset(p).unwrap());
        assert_eq!(count(ModelPreset::Llama3_8B), 8_030_261_248);
        assert_eq!(count(ModelPreset::Llama2_13B), 13_015_864_320);
        assert_eq!(count(ModelPreset::Llama3_2_1B), 1_235_814_400);
        assert_eq!(count(ModelPreset::Llama3_1_8B), 8_030_261_248);
        assert_eq!(count(ModelPreset::Mistral7B), 7_241_732_096);
        assert_eq!(count(ModelPreset::Mistral7Bv03), 7_248_023_552);
    }

    #[test]
    fn mistral_presets_keep_their_window_theta_and_vocabulary() {
        use crate::arch::ModelType;
        let v01 = LlamaConfig::preset(ModelPreset::Mistral7B).unwrap();
        assert_eq!(v01.model_type, ModelType::Mistral);
        assert_eq!((v01.sliding_window, v01.rope_theta), (Some(4096), 10000.0));
        assert_eq!(
            (v01.vocab_size, v01.max_position_embeddings),
            (32000, 32768)
        );
        let v03 = LlamaConfig::preset(ModelPreset::Mistral7Bv03).unwrap();
        assert_eq!((v03.sliding_window, v03.rope_theta), (None, 1e6));
        assert_eq!(v03.vocab_size, 32768);
        let l31 = LlamaConfig::preset(ModelPreset::Llama3_1_8B).unwrap();
        assert_eq!(l31.model_type, ModelType::Llama);
        assert!(matches!(l31.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
    }

    /// Quantizing while building starts from the same random weights as the dense model:
    /// the logits differ, by quantization noise only.
    #[test]
    fn random_quantized_matches_quantized_dense_twin() {
        use crate::TestBackend;
        let config = LlamaConfig::tiny(64);
        let init = RandomInit { std: 0.05, seed: 3 };
        let dev = Default::default();
        let quant = QuantConfig::default();
        let q = Llama::<TestBackend>::random_quantized(&config, &init, quant, &dev).unwrap();
        let dense = Llama::<TestBackend>::random(&config, &init, &dev).unwrap();
        let ids = burn::tensor::Tensor::<TestBackend, 2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(vec![1i64, 5, 9, 2], [1, 4]),
            &dev,
        );
        let lq = q.forward(crate::LlamaInput::new(ids.clone())).unwrap();
        let ld = dense.forward(crate::LlamaInput::new(ids)).unwrap();
        // 4-bit weights change the logits, but only by quantization noise.
        let diff: f32 = (lq.clone() - ld.clone()).abs().max().into_scalar();
        let scale: f32 = ld.abs().max().into_scalar();
        assert!(diff > 0.0, "quantization must change something");
        assert!(diff < 0.5 * scale.max(1e-3), "diff {diff} vs scale {scale}");
    }

    #[test]
    fn llama32_keeps_rope_scaling_and_tied_head() {
        let c = LlamaConfig::preset(ModelPreset::Llama3_2_1B).unwrap();
        assert!(c.tie_word_embeddings);
        assert_eq!(c.head_dim, 64);
        assert_eq!(
            c.rope_scaling,
            RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192,
            }
        );
        let c = LlamaConfig::preset(ModelPreset::Llama2_13B).unwrap();
        assert_eq!(
            (c.num_key_value_heads, c.head_dim, c.rope_theta),
            (40, 128, 10000.0)
        );
        assert_eq!(c.rope_scaling, RopeScaling::Default);
    }
}
