//! Shared code of the example programs (`demo`, `finetune`, `generate`, `evaluate`,
//! `quantize`, `merge`).
#![warn(missing_docs)]

pub mod aligned_alloc;
pub mod demo;
pub mod device;
pub mod evaluate;
pub mod finetune;
pub mod reporting;
