//! LoRA: low-rank adapters over frozen (dense or 4-bit) linear layers.
//!
//! - [`config`]: [`LoraConfig`] and the [`TargetModule`] enum.
//! - [`linear`]: [`LoraLinear`], its frozen [`FrozenBase`] (a dense weight, or a 4-bit
//!   [`Nf4Linear`](crate::quant::Nf4Linear)) and the trainable [`LoraAdapter`].
//! - [`error`]: the [`LoraError`] type.

pub mod config;
pub mod error;
pub mod linear;

pub use config::{lora_scaling, LoraConfig, TargetModule};
pub use error::LoraError;
pub use linear::{DenseBase, FrozenBase, LoraAdapter, LoraLinear};
