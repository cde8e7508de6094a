//! The GPU's 4-bit kernels, written once in cubecl and generic over its runtime: CUDA on NVIDIA
//! GPUs (feature `cuda`), and wgpu (feature `wgpu`), where the tests run without a GPU on
//! Mesa's software Vulkan driver (lavapipe).
//!
//! - [`dequantize`](mod@dequantize): packed NF4 (plain or double-quantized absmax) to `f32`,
//!   `bf16` or `f16`, one thread per 8 codes, the double-quant absmax rebuilt in registers.
//! - [`gemv`](mod@gemv): the fused 4-bit matrix-vector product of batch-1 decode: each plane
//!   (warp) reads one weight row's packed codes once and dequantizes them in registers.
//! - [`quantize`](mod@quantize): blockwise NF4 quantization on the device with the CPU path's
//!   exact codes (ties to the lower code, all-zero blocks to code 7, NaN to 15); double
//!   quantization of the small absmax vector runs on the host, so it is the CPU's bit for bit.
//! - `cuda.rs` (feature `cuda`): how burn-cuda keeps a frozen 4-bit weight (device buffers
//!   these kernels read) and multiplies by it, and [`cuda_device_count`].
//!
//! Every kernel has the CPU reference ([`crate::quant::nf4::dequantize_nf4_reference`],
//! [`crate::quant::nf4::quantize_nf4_reference`], [`crate::quant::DoubleQuant::reconstruct`])
//! as the oracle of its tests. With `--features wgpu` they run on any Vulkan device
//! (`apt-get install mesa-vulkan-drivers libvulkan1` gives lavapipe, which CI uses; bf16 is not
//! supported there, so the low-precision tests use f16); with `--features cuda` alone they
//! need a GPU and are `#[ignore]`d: run them on the GPU machine with
//! `cargo test --release -p qlora-core --features cuda -- --ignored quant::cube` (they fail, not
//! skip, when no device is found).
//!
//! The build needs neither a GPU nor the CUDA toolkit: cudarc loads `libcuda` and `libnvrtc`
//! at run time.

mod client;
#[cfg(feature = "cuda")]
mod cuda;
pub mod dequantize;
mod error;
pub mod gemv;
pub mod quantize;

pub use client::{CubeFloat, CubeNf4, DeviceNf4};
#[cfg(feature = "cuda")]
pub(crate) use cuda::kernels_for;
#[cfg(feature = "cuda")]
pub use cuda::{cuda_client, cuda_device_count};
pub use error::{CubeError, CubeResult};

#[cfg(test)]
pub(crate) mod test_support {
    use super::CubeNf4;

    /// The runtime the kernel tests run on: wgpu (lavapipe in CI) when built with `wgpu`,
    /// else CUDA.
    #[cfg(feature = "wgpu")]
    pub(crate) type TestRuntime = cubecl::wgpu::WgpuRuntime;
    #[cfg(not(feature = "wgpu"))]
    pub(crate) type TestRuntime = cubecl::cuda::CudaRuntime;

    /// The low-precision float the tests check: bf16 on CUDA, f16 on wgpu (no bf16 there).
    #[cfg(feature = "wgpu")]
    pub(crate) type Half = half::f16;
    #[cfg(not(feature = "wgpu"))]
    pub(crate) type Half = half::bf16;

    /// The client of the test device, or a panic that says why.
    pub(crate) fn client() -> CubeNf4<TestRuntime> {
        #[cfg(feature = "wgpu")]
        {
            use cubecl::prelude::Runtime;
            let device = cubecl::wgpu::WgpuDevice::DefaultDevice;
            CubeNf4::new(TestRuntime::client(&device))
        }
        #[cfg(not(feature = "wgpu"))]
        match super::cuda_client(0) {
            Ok(c) => c,
            Err(e) => panic!(
                "{e}: these tests need an NVIDIA GPU and libcuda/libnvrtc on the loader path, \
                 or --features wgpu and a Vulkan driver"
            ),
        }
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
