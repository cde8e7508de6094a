//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `ro-tasks`: reading data files, the embedded code set,
/// and scoring inputs that do not fit together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSONL line is not valid JSON or does not fit the task's schema.
    #[error("{path}:{line}: {message}")]
    Jsonl {
        /// The file (or `<memory>` for in-memory input).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the field where there is one.
        message: String,
    },
    /// A record has a field with a value the task cannot accept.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Field {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The embedded ICD-10-CM table is corrupt (a build defect, never user input).
    #[error("embedded ICD-10-CM code set, line {line}: {message}")]
    CodeSet {
        /// 1-based line of the decompressed TSV.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Predictions and references (or base and fine-tuned runs) do not pair up.
    #[error("pairing: {0}")]
    Pairing(String),
    /// A metric from `ro-metrics` refused its input.
    #[error("metric: {0}")]
    Metric(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
