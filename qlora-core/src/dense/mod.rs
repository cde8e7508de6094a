//! Frozen dense weights: `x · Wᵀ` for a weight stored `[out, in]` (PyTorch's layout).
//!
//! - [`frozen_linear()`]: the burn-level product, which avoids copying the weight for short
//!   inputs (decoding) and takes the host kernel on burn-ndarray.
//! - [`f32_matmul`] / [`f32_matmul_reference`]: that host kernel and its definition.
//!
//! Used by LoRA's dense base, a tied LM head and the 4-bit layer once its weight is
//! dequantized; the 4-bit code (`quant`) and LoRA (`lora`) both build on this module, never
//! on each other's internals.

mod linear;
mod matmul;

pub use linear::frozen_linear;
pub(crate) use linear::{add_bias, with_last_dim};
pub(crate) use matmul::by_weight_rows;
pub use matmul::{f32_matmul, f32_matmul_reference};

/// The most input rows (tokens times batch) that count as "short": multiplied on the host from
/// the stored weight (dense or 4-bit) on burn-ndarray, instead of the backend's matmul.
pub const HOST_GEMV_MAX_ROWS: usize = 16;

/// The CPU backend the tests run on.
#[cfg(test)]
pub(crate) type TestBackend = burn_ndarray::NdArray<f32>;
/// The CPU autodiff backend the tests run on.
#[cfg(test)]
pub(crate) type TestAutodiffBackend = burn_autodiff::Autodiff<TestBackend>;
