//! The CPU's 4-bit kernels (burn-ndarray and plain slices).
//!
//! - [`fast`](mod@fast): multi-threaded blockwise quantize/dequantize ([`quantize_nf4`],
//!   [`dequantize_nf4`], [`dequantize_nf4_into`]), bit-identical with the reference in
//!   [`nf4`](super::nf4); `simd.rs` holds their AVX2 + F16C inner loops.
//! - [`gemv`](mod@gemv): `x · Wᵀ` straight from the 4-bit weight for inputs of a few rows
//!   ([`nf4_matmul`], with [`nf4_matmul_reference`] as its definition).
//! - `weight.rs`: how burn-ndarray keeps a frozen 4-bit weight (on the host, as its
//!   [`QuantState`](super::QuantState)) and multiplies by it.

pub mod fast;
pub mod gemv;
mod simd;
mod weight;

pub use fast::{dequantize_nf4, dequantize_nf4_into, quantize_nf4};
pub use gemv::{nf4_matmul, nf4_matmul_reference, nf4_matmul_supported};
pub(crate) use weight::HostWeight;
