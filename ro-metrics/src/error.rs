//! The error type of the statistics in this crate.

use thiserror::Error;

/// Why a metric or a test could not be computed.
///
/// Every variant names the argument at fault, so a caller can report it to a user unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Two arguments that must be paired element by element have different lengths.
    #[error("`{first}` has {first_len} elements but `{second}` has {second_len}; they must have the same length")]
    LengthMismatch {
        /// Name of the first argument.
        first: &'static str,
        /// Its length.
        first_len: usize,
        /// Name of the second argument.
        second: &'static str,
        /// Its length.
        second_len: usize,
    },
    /// An argument that needs at least one element is empty.
    #[error("`{field}` is empty: at least one sample is required")]
    Empty {
        /// Name of the empty argument.
        field: &'static str,
    },
    /// An argument holds NaN or an infinity where only finite numbers make sense.
    #[error("`{field}` holds a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// Name of the argument.
        field: &'static str,
        /// Index of the first non-finite value.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// An argument is out of its valid range or inconsistent with the others.
    #[error("invalid `{field}`: {reason}")]
    InvalidArgument {
        /// Name of the argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A weighted mean was asked for but the weights sum to zero.
    #[error("`{field}` sums to zero, so the weighted mean is undefined")]
    ZeroWeights {
        /// Name of the weights argument.
        field: &'static str,
    },
}
