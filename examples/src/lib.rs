//! Shared code of the example programs (`demo`, `finetune`, `generate`, `evaluate`,
//! `quantize`, `merge`, `review`).
#![warn(missing_docs)]

pub mod aligned_alloc;
pub mod chat_template;
pub mod demo;
pub mod device;
pub mod evaluate;
pub mod finetune;
pub mod reporting;
pub mod review;
