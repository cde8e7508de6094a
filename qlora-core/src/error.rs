//! The crate's error type.
//!
//! Every error that user input can cause is a variant here, carrying the context a user needs
//! to find the problem (tensor name, file, field, shapes). Other modules may add variants.

use std::path::PathBuf;

/// Result alias used throughout `qlora-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of `qlora-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A blocksize that NF4 quantization does not allow (a power of two from 32 to 4096).
    #[error("invalid NF4 blocksize {blocksize}: expected a power of two from 32 to 4096")]
    InvalidBlocksize {
        /// The rejected blocksize.
        blocksize: usize,
    },
    /// A tensor has a dtype that the operation does not accept.
    #[error("tensor `{tensor}`: unsupported dtype {got} (expected {expected})")]
    UnsupportedDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype found.
        got: String,
        /// What was expected.
        expected: String,
    },
    /// A tensor's shape or length does not match what its metadata implies.
    #[error("tensor `{tensor}`: shape mismatch: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// The expected shape or length, as text.
        expected: String,
        /// The shape or length found, as text.
        got: String,
    },
    /// A tensor that the layout requires is missing.
    #[error("tensor `{tensor}` is missing")]
    MissingTensor {
        /// Name of the missing tensor.
        tensor: String,
    },
    /// The packed quantization-state JSON (`W.quant_state.bitsandbytes__nf4`) is invalid.
    #[error("tensor `{tensor}`: invalid quant_state: {reason}")]
    InvalidQuantState {
        /// Tensor name (the quant_state key).
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A safetensors file could not be parsed or written.
    #[error("{context}: safetensors error: {source}")]
    Safetensors {
        /// File or tensor the error concerns.
        context: String,
        /// The underlying error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
