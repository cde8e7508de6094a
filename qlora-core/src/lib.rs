//! # qlora-core
//!
//! QLoRA building blocks for [burn](https://burn.dev): NF4 4-bit quantization with double
//! quantization, bit-exact with bitsandbytes; LoRA layers; paged AdamW; a model-agnostic SFT
//! trainer with atomic checkpoints and exact resume. It knows nothing of any model family: any
//! burn module built from its layers can be fine-tuned with it.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`quant`] | everything 4-bit: NF4, double quantization, [`QuantState`] in bitsandbytes' layout, the CPU and CUDA kernels, the frozen [`Nf4Linear`] layer |
//! | [`dense`] | frozen dense weights: `x · Wᵀ` without copying the weight for short inputs |
//! | [`lora`] | [`LoraLinear`]: a frozen base (dense or 4-bit) plus trainable low-rank adapters |
//! | [`optim`] | AdamW, paged AdamW and 8-bit AdamW with checkpointable state |
//! | [`schedule`] | learning-rate schedules (constant, linear, cosine; warmup) |
//! | [`train`] | the SFT [`Trainer`]: micro-batching, gradient accumulation, checkpoints, exact resume |
//! | [`checkpoint`] | atomic writes and safetensors I/O of host tensors |
//! | [`precise`] | numerically careful softmax, log-softmax and RMSNorm |
//!
//! The names most programs need are re-exported here.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod dense;
pub mod lora;
pub mod optim;
pub mod precise;
pub mod quant;
pub mod schedule;
pub mod train;

mod error;
mod same_type;

pub use checkpoint::write_atomic;
pub use error::{Error, Result};
pub use lora::{LoraConfig, LoraLinear, TargetModule};
pub use optim::{AdamWConfig, OptimizerKind};
pub use quant::{Blocksize, Nf4Linear, QuantConfig, QuantState};
pub use schedule::{LrSchedule, ScheduleKind};
pub use train::{CausalLm, Example, TrainConfig, Trainer};
