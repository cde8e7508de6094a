//! NF4 on NVIDIA GPUs: cubecl kernels behind the same quantization API as the CPU path
//! (feature `cuda`).
//!
//! - [`dequantize`](mod@dequantize): packed NF4 (plain or double-quantized absmax) to `f32`
//!   or `bf16`, one thread per 8 codes, the double-quant absmax rebuilt in registers.
//! - [`gemv`](mod@gemv): the fused 4-bit matrix-vector product of batch-1 decode: each warp
//!   reads one weight row's packed codes once and dequantizes them in registers.
//! - [`quantize`](mod@quantize): blockwise NF4 quantization on the GPU with the CPU path's
//!   exact codes (ties to the lower code, all-zero blocks to code 7, NaN to 15); double
//!   quantization of the small absmax vector runs on the host, so it is the CPU's bit for bit.
//!
//! Every kernel has the CPU reference ([`crate::dequantize_nf4_reference`],
//! [`crate::quantize_nf4_reference`], [`crate::DoubleQuant::reconstruct`]) as the oracle of
//! its tests. Those tests need a GPU, so they are `#[ignore = "needs a CUDA device"]`; run them
//! on a GPU machine with `cargo test --release -p qlora-core --features cuda -- --ignored cuda::`
//! (they fail, not skip, when no device is found).
//!
//! The build needs neither a GPU nor the CUDA toolkit: cudarc loads `libcuda` and `libnvrtc`
//! at run time. [`cuda_device_count`] tells whether a device can be used at all.

pub mod dequantize;
mod device;
mod error;
pub mod gemv;
pub mod quantize;

pub use device::{cuda_device_count, CudaFloat, CudaNf4, DeviceNf4};
pub use error::{CudaError, CudaResult};

#[cfg(test)]
pub(crate) mod test_support {
    use super::{cuda_device_count, CudaNf4};

    /// The client of GPU 0, or a panic that says why (the tests run only with `--ignored`).
    pub(crate) fn client() -> CudaNf4 {
        assert!(
            cuda_device_count() > 0,
            "no CUDA device found: these tests need an NVIDIA GPU and libcuda/libnvrtc on the \
             loader path"
        );
        CudaNf4::new(0)
    }

    /// Deterministic weight-like values (a sum of sines), with a few exact zeros.
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f32 * 0.618 + seed as f32;
                (t.sin() * 0.7 + (t * 3.1).sin() * 0.3) * if i % 97 == 0 { 0.0 } else { 0.05 }
            })
            .collect()
    }
}
