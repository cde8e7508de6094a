//! `--device cpu|cuda[:N]` for the example programs, and the dispatch from that choice to a
//! burn backend.
//!
//! Programs keep their model code generic over `B: Backend` (or `B: AutodiffBackend` for
//! training), put it in a type implementing [`OnBackend`] (or [`OnAutodiffBackend`]), and
//! let [`DeviceChoice::run`] pick the backend:
//!
//! ```
//! use burn::tensor::{backend::Backend, ElementConversion, Tensor};
//! use ro_examples::device::{DeviceChoice, OnBackend};
//!
//! /// Sums a small tensor on whatever backend the user picked.
//! struct SumTask(Vec<f32>);
//!
//! impl OnBackend for SumTask {
//!     type Output = f32;
//!     fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<f32> {
//!         let n = self.0.len();
//!         let t = Tensor::<B, 1>::from_data(burn::tensor::TensorData::new(self.0, [n]), &device);
//!         Ok(t.sum().into_scalar().elem::<f32>())
//!     }
//! }
//!
//! // In a program: `#[arg(long)] device: Option<DeviceChoice>` and
//! // `args.device.unwrap_or_else(DeviceChoice::auto).run(task)`.
//! let device: DeviceChoice = "cpu".parse().unwrap();
//! assert_eq!(device.run(SumTask(vec![1.0, 2.0, 3.0])).unwrap(), 6.0);
//! ```
//!
//! Backends: CPU is `burn-ndarray` (`f32`), always built. CUDA is `burn-cuda` (`f32` by
//! default; tensors carry their own dtype, and [`DtypeChoice`] puts the model's frozen weights
//! and activations in bf16 there), only in builds with `--features cuda`; without it
//! `--device cuda` fails with [`CUDA_NOT_BUILT`].

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};

/// The CPU backend of the examples.
pub type CpuBackend = burn_ndarray::NdArray<f32>;

/// The CUDA backend of the examples (only with `--features cuda`).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn_cuda::Cuda<f32, i32>;

/// The message of `--device cuda` in a build without the `cuda` feature.
pub const CUDA_NOT_BUILT: &str = "built without the cuda feature; rebuild with --features cuda";

/// Where a program computes: the CPU or one CUDA GPU.
///
/// Parsed from `cpu`, `cuda` (GPU 0) or `cuda:N`; clap uses the [`FromStr`] impl, so a field
/// `#[arg(long)] device: Option<DeviceChoice>` works as is.
///
/// ```
/// use ro_examples::device::DeviceChoice;
/// assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
/// assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
/// assert_eq!("cuda:1".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(1));
/// assert_eq!(DeviceChoice::Cuda(1).to_string(), "cuda:1");
/// assert!("gpu".parse::<DeviceChoice>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// `burn-ndarray` on the CPU.
    #[default]
    Cpu,
    /// `burn-cuda` on the GPU with this ordinal.
    Cuda(usize),
}

impl DeviceChoice {
    /// The default when no `--device` is given: `cuda:0` in a `cuda` build when the driver
    /// reports a GPU, `cpu` otherwise.
    pub fn auto() -> Self {
        #[cfg(feature = "cuda")]
        if qlora_core::quant::cube::cuda_device_count() > 0 {
            return DeviceChoice::Cuda(0);
        }
        DeviceChoice::Cpu
    }

    /// Checks that this device can be used (a `cuda` build with such a GPU for `cuda:N`), so
    /// that a program can fail before its expensive work rather than after.
    ///
    /// ```
    /// use ro_examples::device::DeviceChoice;
    /// assert!(DeviceChoice::Cpu.check().is_ok());
    /// # #[cfg(not(feature = "cuda"))]
    /// assert!(DeviceChoice::Cuda(0).check().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// As [`DeviceChoice::run`] for an unusable device.
    pub fn check(self) -> Result<()> {
        match self {
            DeviceChoice::Cpu => Ok(()),
            DeviceChoice::Cuda(index) => cuda_device(index).map(|_| ()),
        }
    }

    /// Runs `task` on this device's backend (see the module docs).
    ///
    /// # Errors
    ///
    /// [`CUDA_NOT_BUILT`] for a CUDA device in a build without the `cuda` feature; an error
    /// naming the device when the driver has no GPU of that ordinal; the task's own errors.
    pub fn run<T: OnBackend>(self, task: T) -> Result<T::Output> {
        match self {
            DeviceChoice::Cpu => task.run::<CpuBackend>(Default::default()),
            DeviceChoice::Cuda(index) => {
                let device = cuda_device(index)?;
                run_cuda(task, device)
            }
        }
    }

    /// Runs `task` on this device's backend wrapped in `burn-autodiff` (for training).
    ///
    /// # Errors
    ///
    /// As [`DeviceChoice::run`].
    pub fn run_autodiff<T: OnAutodiffBackend>(self, task: T) -> Result<T::Output> {
        match self {
            DeviceChoice::Cpu => {
                task.run::<burn_autodiff::Autodiff<CpuBackend>>(Default::default())
            }
            DeviceChoice::Cuda(index) => {
                let device = cuda_device(index)?;
                run_cuda_autodiff(task, device)
            }
        }
    }
}

/// The validated ordinal of a CUDA device (a `cuda` build with such a GPU present).
#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<burn_cuda::CudaDevice> {
    let count = qlora_core::quant::cube::cuda_device_count();
    if index >= count {
        bail!(
            "--device cuda:{index}: the CUDA driver reports {count} GPU(s) (is libcuda.so on \
             the loader path and a GPU visible?)"
        );
    }
    Ok(burn_cuda::CudaDevice::new(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<std::convert::Infallible> {
    bail!("--device cuda:{index}: {CUDA_NOT_BUILT}")
}

#[cfg(feature = "cuda")]
fn run_cuda<T: OnBackend>(task: T, device: burn_cuda::CudaDevice) -> Result<T::Output> {
    task.run::<CudaBackend>(device)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<T: OnBackend>(_task: T, device: std::convert::Infallible) -> Result<T::Output> {
    match device {}
}

#[cfg(feature = "cuda")]
fn run_cuda_autodiff<T: OnAutodiffBackend>(
    task: T,
    device: burn_cuda::CudaDevice,
) -> Result<T::Output> {
    task.run::<burn_autodiff::Autodiff<CudaBackend>>(device)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda_autodiff<T: OnAutodiffBackend>(
    _task: T,
    device: std::convert::Infallible,
) -> Result<T::Output> {
    match device {}
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// `--dtype auto|f32|bf16`: the compute dtype of the model (its frozen weights and
/// activations; LoRA weights and optimizer state stay f32).
///
/// `auto` is bf16 on CUDA, as the QLoRA studies trained, and f32 on the CPU (burn-ndarray has
/// no bf16).
///
/// ```
/// use burn::tensor::FloatDType;
/// use clap::ValueEnum;
/// use ro_examples::device::{DeviceChoice, DtypeChoice};
/// let auto = DtypeChoice::from_str("auto", true).unwrap();
/// assert_eq!(auto.resolve(DeviceChoice::Cpu).unwrap(), FloatDType::F32);
/// assert_eq!(auto.resolve(DeviceChoice::Cuda(0)).unwrap(), FloatDType::BF16);
/// assert!(DtypeChoice::Bf16.resolve(DeviceChoice::Cpu).is_err());
/// assert!(DtypeChoice::from_str("fp8", true).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DtypeChoice {
    /// bf16 on CUDA, f32 on the CPU.
    #[default]
    Auto,
    /// 32-bit floats everywhere.
    F32,
    /// bfloat16 compute (CUDA only).
    Bf16,
}

impl DtypeChoice {
    /// The dtype on `device`.
    ///
    /// # Errors
    ///
    /// `bf16` on the CPU.
    pub fn resolve(self, device: DeviceChoice) -> Result<burn::tensor::FloatDType> {
        use burn::tensor::FloatDType;
        match (self, device) {
            (DtypeChoice::F32, _) | (DtypeChoice::Auto, DeviceChoice::Cpu) => Ok(FloatDType::F32),
            (DtypeChoice::Auto | DtypeChoice::Bf16, DeviceChoice::Cuda(_)) => Ok(FloatDType::BF16),
            (DtypeChoice::Bf16, DeviceChoice::Cpu) => {
                bail!("--dtype bf16: the CPU backend (burn-ndarray) has no bf16; use f32 there")
            }
        }
    }
}

/// A `--device` value that is not `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceParseError(String);

impl fmt::Display for DeviceParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown device `{}` (expected cpu, cuda or cuda:N)",
            self.0
        )
    }
}

impl std::error::Error for DeviceParseError {}

impl FromStr for DeviceChoice {
    type Err = DeviceParseError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => lower
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| DeviceParseError(s.to_string())),
        }
    }
}

/// Work generic over an inference backend, run by [`DeviceChoice::run`].
pub trait OnBackend {
    /// What the work returns.
    type Output;

    /// Runs on backend `B` and its `device`.
    ///
    /// # Errors
    ///
    /// Whatever the work reports.
    fn run<B: Backend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Work generic over a training backend, run by [`DeviceChoice::run_autodiff`].
pub trait OnAutodiffBackend {
    /// What the work returns.
    type Output;

    /// Runs on autodiff backend `B` and its `device`.
    ///
    /// # Errors
    ///
    /// Whatever the work reports.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Name;

    impl OnBackend for Name {
        type Output = String;
        fn run<B: Backend>(self, _device: B::Device) -> Result<String> {
            Ok(B::name(&Default::default()))
        }
    }

    struct AdName;

    impl OnAutodiffBackend for AdName {
        type Output = bool;
        fn run<B: AutodiffBackend>(self, _device: B::Device) -> Result<bool> {
            Ok(B::ad_enabled(&Default::default()))
        }
    }

    #[test]
    fn parses_and_prints() {
        for s in ["cpu", "cuda:0", "cuda:3"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert_eq!(" CUDA ".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(0)));
        for bad in ["", "gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0"] {
            let err = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(err.contains("expected cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }

    #[test]
    fn cpu_runs_on_ndarray() {
        let name = DeviceChoice::Cpu.run(Name).unwrap();
        assert!(name.to_lowercase().contains("ndarray"), "{name}");
        assert!(DeviceChoice::Cpu.run_autodiff(AdName).unwrap());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        assert_eq!(DeviceChoice::auto(), DeviceChoice::Cpu);
        let err = DeviceChoice::Cuda(0).run(Name).unwrap_err().to_string();
        assert_eq!(
            err,
            "--device cuda:0: built without the cuda feature; rebuild with --features cuda"
        );
        let err = DeviceChoice::Cuda(1).run_autodiff(AdName).unwrap_err();
        assert!(err.to_string().ends_with(CUDA_NOT_BUILT), "{err}");
    }
}
