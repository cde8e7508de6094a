//! Errors of LoRA layers and configs.

use thiserror::Error;

/// What went wrong when building, loading or merging a LoRA layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoraError {
    /// A target module name that is none of q,k,v,o,gate,up,down_proj.
    #[error("unknown LoRA target module `{name}` (expected one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear)")]
    UnknownTargetModule {
        /// The name as given.
        name: String,
    },
    /// A config field out of range.
    #[error("invalid LoRA config field `{field}`: {reason}")]
    InvalidConfig {
        /// peft's field name.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A tensor whose shape does not fit the layer.
    #[error("LoRA tensor `{name}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which tensor (`lora_A`, `lora_B`, `weight`, ...).
        name: String,
        /// The shape the layer needs.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
    /// The operation needs an adapter and the layer has none.
    #[error("this layer has no LoRA adapter")]
    NoAdapter,
    /// Merging would produce NaN or infinite weights (peft's `safe_merge`).
    #[error("merging the adapter produced non-finite weights")]
    NonFiniteMerge,
}
