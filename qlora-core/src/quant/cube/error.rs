//! Errors of the GPU kernels.

use thiserror::Error;

/// What went wrong on the GPU path.
#[derive(Debug, Error)]
pub enum CubeError {
    /// No CUDA device of that ordinal (or no driver at all).
    #[error("CUDA device {index} not found ({count} device(s) visible)")]
    NoDevice {
        /// The requested ordinal.
        index: usize,
        /// How many devices the driver reports.
        count: usize,
    },
    /// A shape the kernel does not take.
    #[error("{tensor}: {reason}")]
    Shape {
        /// The operand.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The quantization state is inconsistent (from the CPU-side checks).
    #[error(transparent)]
    Quant(#[from] crate::Error),
    /// Reading a result back from the device failed.
    #[error("reading {what} back from the device: {reason}")]
    Read {
        /// The buffer.
        what: String,
        /// The runtime's message.
        reason: String,
    },
}

/// Result of the GPU path.
pub type CubeResult<T> = std::result::Result<T, CubeError>;
