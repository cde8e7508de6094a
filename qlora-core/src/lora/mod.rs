//! LoRA: low-rank adapters over frozen (dense or 4-bit) linear layers.
//!
//! - [`config`]: [`LoraConfig`] and the [`TargetModule`] enum.
//! - [`linear`]: [`LoraLinear`], its frozen [`FrozenBase`] and trainable [`LoraAdapter`].
//! - [`error`]: the [`LoraError`] type.
//! - [`frozen_linear()`]: `x · Wᵀ` for a frozen `[out, in]` weight, without copying the weight
//!   for short inputs.

pub mod config;
pub mod error;
mod frozen_linear;
pub mod linear;

pub use config::{lora_scaling, LoraConfig, TargetModule};
pub use error::LoraError;
pub(crate) use frozen_linear::{add_bias, with_last_dim};
pub use frozen_linear::{f32_matmul, f32_matmul_reference, frozen_linear};
pub use linear::{DenseBase, FrozenBase, LoraAdapter, LoraLinear};

/// The CPU backend the tests run on.
#[cfg(test)]
pub(crate) type TestBackend = burn_ndarray::NdArray<f32>;
/// The CPU autodiff backend the tests run on.
#[cfg(test)]
pub(crate) type TestAutodiffBackend = burn_autodiff::Autodiff<TestBackend>;
