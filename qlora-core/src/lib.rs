//! # qlora-core
//!
//! QLoRA building blocks for [burn](https://burn.dev): NF4 4-bit quantization with double
//! quantization, bit-exact with bitsandbytes; LoRA layers; paged AdamW; a model-agnostic SFT
//! trainer with atomic checkpoints and exact resume.
#![warn(missing_docs)]

pub mod lora;
pub use lora::{
    lora_scaling, DenseBase, FrozenBase, LoraAdapter, LoraConfig, LoraError, LoraLinear,
    TargetModule,
};

pub mod optim;
pub mod schedule;
pub use optim::{adamw_step_reference, AdamW, AdamWConfig, AdamWState};
pub use schedule::{LrSchedule, ScheduleKind};

pub mod checkpoint;
pub mod train;
pub use checkpoint::{
    load_f32_safetensors, save_f32_safetensors, write_atomic, CheckpointError, HostTensor,
};
pub use train::{
    causal_lm_loss, causal_lm_loss_sum, collate, Batch, CausalLm, Example, StepMetrics,
    TrainConfig, TrainError, Trainer, IGNORE_INDEX,
};
