//! The architectures this crate runs, named by `config.json`'s `model_type`, and what differs
//! between them.
//!
//! | | `llama` (`LlamaForCausalLM`) | `mistral` (`MistralForCausalLM`) |
//! | --- | --- | --- |
//! | blocks | pre-norm, RMSNorm, RoPE, GQA, SwiGLU | the same |
//! | attention | causal | causal within `sliding_window` keys (`null`: causal) |
//! | biases | `attention_bias`, `mlp_bias` | none (the config has no such fields) |
//! | default `max_position_embeddings` | 2048 | 131072 |
//! | default `num_key_value_heads` | `num_attention_heads` | 8 |
//! | default `sliding_window` | — | 4096 |
//!
//! The defaults are those of transformers 5.23's `LlamaConfig` and `MistralConfig`; they only
//! matter for a `config.json` that leaves the field out (the Hub's files write them all).
//! Every other field and default is shared.

use std::fmt;
use std::str::FromStr;

use crate::error::{LlamaError, Result};

/// The architecture of a checkpoint (`config.json`'s `model_type`). Both run on the same
/// [`crate::Llama`] parts; Mistral adds sliding-window attention.
///
/// ```
/// use llama_model::ModelType;
/// let m: ModelType = "mistral".parse().unwrap();
/// assert_eq!(m.architecture(), "MistralForCausalLM");
/// assert_eq!(ModelType::default(), ModelType::Llama);
/// assert!("gemma".parse::<ModelType>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelType {
    /// LLaMA-2/3 (`"llama"`).
    #[default]
    Llama,
    /// Mistral (`"mistral"`): the LLaMA block with sliding-window attention.
    Mistral,
}

impl ModelType {
    /// Every supported architecture.
    pub const ALL: [ModelType; 2] = [ModelType::Llama, ModelType::Mistral];

    /// The `model_type` string of `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Llama => "llama",
            ModelType::Mistral => "mistral",
        }
    }

    /// The transformers class `config.json` lists under `architectures`.
    pub fn architecture(self) -> &'static str {
        match self {
            ModelType::Llama => "LlamaForCausalLM",
            ModelType::Mistral => "MistralForCausalLM",
        }
    }

    /// transformers' `max_position_embeddings` when the field is absent.
    pub(crate) fn default_max_position_embeddings(self) -> usize {
        match self {
            ModelType::Llama => 2048,
            ModelType::Mistral => 4096 * 32,
        }
    }

    /// transformers' `num_key_value_heads` when the field is absent (`heads` for LLaMA).
    pub(crate) fn default_num_key_value_heads(self, heads: usize) -> usize {
        match self {
            ModelType::Llama => heads,
            ModelType::Mistral => 8,
        }
    }

    /// transformers' `sliding_window` when the field is absent (LLaMA has none).
    pub(crate) fn default_sliding_window(self) -> Option<usize> {
        match self {
            ModelType::Llama => None,
            ModelType::Mistral => Some(4096),
        }
    }

    /// Whether the architecture's config has `attention_bias` / `mlp_bias`.
    pub(crate) fn has_bias_fields(self) -> bool {
        self == ModelType::Llama
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelType {
    type Err = LlamaError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| LlamaError::Config {
                field: "model_type".into(),
                reason: format!(
                    "unknown model_type `{s}` (supported: {})",
                    Self::ALL.map(ModelType::name).join(", ")
                ),
            })
    }
}
