//! Quantized tensors and layers: element types, the fast CPU kernels and the burn-level API.

mod autodiff;
pub mod dtype;
pub mod fast;
pub mod gemv;
pub mod linear;
mod simd;
pub mod tensor;
