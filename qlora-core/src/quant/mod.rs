//! Everything 4-bit: NF4 bit-exact with bitsandbytes, QLoRA's double quantization, one
//! weight's quantization state in bitsandbytes' file layout, each backend's kernels, and the
//! frozen 4-bit layer.
//!
//! | file | what it holds |
//! | --- | --- |
//! | [`nf4`] | the NF4 code table, the blockwise quantize/dequantize reference, nibble packing |
//! | [`double_quant`] | double quantization of absmax (8-bit dynamic map, blocks of 256) |
//! | `state.rs` | [`QuantState`]: one weight's 4-bit state and its safetensors layout |
//! | [`dtype`] | the float types quantization reads and writes (f32, f16, bf16) |
//! | [`cpu`] | the CPU kernels: SIMD quantize/dequantize, 4-bit GEMV; burn-ndarray's weight |
//! | [`cube`] | the GPU kernels (cubecl, CUDA or wgpu): dequantize, GEMV, quantize; burn-cuda's weight (features `cuda`, `wgpu`) |
//! | `tensors.rs` | the portable device path: the weight as burn tensors, dequantized with burn's ops |
//! | `kernels.rs` | the internal trait each backend's kernels implement, and the choice by backend |
//! | `autodiff.rs` | the autodiff operation whose backward dequantizes again |
//! | `weight.rs` | [`Nf4Weight`]: the weight as a module field, resident on its device |
//! | `linear.rs` | [`Nf4Linear`]: the frozen 4-bit linear layer |
//! | `tensor.rs` | [`dequantize_tensor`]: a host [`QuantState`] into a dense burn tensor |
//!
//! The dequantize kernel of each backend: [`cpu::dequantize_nf4`] (CPU),
//! `cube::dequantize` (GPU), `tensors.rs` (any other backend); each is tested against
//! [`nf4::dequantize_nf4_reference`].

mod autodiff;
pub mod cpu;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod cube;
pub mod double_quant;
pub mod dtype;
mod kernels;
mod linear;
pub mod nf4;
mod state;
mod tensor;
mod tensors;
mod weight;

pub use double_quant::DoubleQuant;
pub use dtype::{FloatDtype, QuantFloat};
pub use kernels::Residency;
pub use linear::Nf4Linear;
pub use nf4::Blocksize;
pub use state::{
    parse_safetensors, python_float_repr, quantized_weight_names, Absmax, OwnedTensor, QuantConfig,
    QuantState, QUANT_STATE_SUFFIX,
};
pub use tensor::dequantize_tensor;
pub use weight::Nf4Weight;
