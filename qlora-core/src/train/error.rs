//! Errors of the trainer.

use thiserror::Error;

use crate::checkpoint::CheckpointError;

/// What stopped training, with the context to fix it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// An example is unusable (empty, label length differs, too long, ...).
    #[error("example {index}: {reason}")]
    BadExample {
        /// Index in the dataset.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Every label of an optimizer step is -100: there is nothing to learn from.
    #[error("step {step}: all labels are masked (-100); no target token to compute a loss on")]
    AllLabelsMasked {
        /// Optimizer step (0-based).
        step: u64,
    },
    /// The loss became NaN or infinite.
    #[error("step {step}: loss is {loss} (not finite); stopping before the update")]
    NonFiniteLoss {
        /// Optimizer step (0-based).
        step: u64,
        /// The loss value.
        loss: f64,
    },
    /// The dataset is empty.
    #[error("the training set is empty")]
    EmptyDataset,
    /// The model's forward failed.
    #[error("model forward failed: {0}")]
    Model(String),
    /// A configuration value is invalid.
    #[error("invalid trainer config `{field}`: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint does not fit the model.
    #[error("checkpoint {path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint directory.
        path: std::path::PathBuf,
        /// What does not fit.
        reason: String,
    },
}
