//! Optimizers for the trainable LoRA parameters.
//!
//! - [`adamw`]: AdamW exactly as `torch.optim.AdamW` (single-tensor path), on burn tensors,
//!   with a plain host reference implementation beside it.
//! - [`paged`]: the same AdamW with its state resident on the device up to a byte budget and
//!   paged to host memory beyond it.
//! - [`adamw8bit`]: AdamW with 8-bit block-wise state as `bitsandbytes.optim.AdamW8bit`.
//! - [`kind`]: [`OptimizerKind`], the trainer's choice of optimizer.
//! - [`optimizer`]: [`TrainOptimizer`], the chosen optimizer behind one interface.

pub mod adamw;
pub mod adamw8bit;
pub mod kind;
pub mod optimizer;
pub mod paged;

pub use adamw::{adamw_step_reference, AdamW, AdamWConfig, AdamWState};
pub use adamw8bit::{
    adamw8bit_step_reference, dynamic_map_unsigned, AdamW8bit, AdamW8bitState, Moments8bit,
    Quantized8bit, BLOCKSIZE_8BIT, DYNAMIC_MAP_UNSIGNED_BITS,
};
pub use kind::{OptimizerKind, MIN_8BIT_SIZE};
pub use optimizer::TrainOptimizer;
pub use paged::{Moments, PagedAdamW, PagedState, ADAMW_STATE_BYTES_PER_ELEMENT};
