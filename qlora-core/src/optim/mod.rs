//! Optimizers for the trainable LoRA parameters.
//!
//! - [`adamw`]: AdamW exactly as `torch.optim.AdamW` (single-tensor path), on burn tensors,
//!   with a plain host reference implementation beside it.

pub mod adamw;

pub use adamw::{adamw_step_reference, AdamW, AdamWConfig, AdamWState};
