//! A model-agnostic supervised fine-tuning loop for models built from
//! [`LoraLinear`](crate::LoraLinear) layers.
//!
//! - [`loss`]: causal-LM cross-entropy on target tokens (`-100` elsewhere), with the shift.
//! - [`batch`]: [`Example`]s and right-padded [`Batch`]es with attention masks.
//! - [`checkpointing`]: the gradient-checkpointing switch (burn's checkpoint strategies).
//! - [`params`]: trainable parameters (the LoRA `A`/`B`) by dotted path.
//! - [`trainer`]: the [`CausalLm`] trait, [`TrainConfig`] and [`Trainer`] (gradient
//!   accumulation, clipping, AdamW / paged AdamW / 8-bit AdamW, schedules, metrics, atomic checkpoints, exact resume).

pub mod batch;
pub mod checkpointing;
pub mod error;
pub mod loss;
pub mod params;
pub mod trainer;

pub use batch::{collate, Batch, Example};
pub use checkpointing::{with_autodiff, AutodiffRun, CheckpointedAutodiff, CheckpointingBackend};
pub use error::TrainError;
pub use loss::{causal_lm_loss, causal_lm_loss_sum, count_targets, IGNORE_INDEX};
pub use params::{replace_trainable, trainable_grads, trainable_host_tensors, trainable_params};
pub use trainer::{
    latest_checkpoint, token_budget_batches, CausalLm, StepMetrics, TrainConfig, Trainer,
    LENGTH_GROUP_BATCHES,
};

#[cfg(test)]
mod tests;
