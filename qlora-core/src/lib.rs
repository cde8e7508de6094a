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
pub use optim::{
    adamw8bit_step_reference, adamw_step_reference, dynamic_map_unsigned, AdamW, AdamW8bit,
    AdamW8bitState, AdamWConfig, AdamWState, Moments, Moments8bit, OptimizerKind, PagedAdamW,
    PagedState, Quantized8bit, TrainOptimizer, ADAMW_STATE_BYTES_PER_ELEMENT, BLOCKSIZE_8BIT,
    DYNAMIC_MAP_UNSIGNED_BITS, MIN_8BIT_SIZE,
};
pub use schedule::{LrSchedule, ScheduleKind};

pub mod precise;
pub use precise::{log_softmax, reciprocal, rms_norm, softmax};

pub mod checkpoint;
pub mod train;
pub use checkpoint::{
    load_f32_safetensors, load_tensors, remove_stale_temporaries, save_f32_safetensors,
    save_tensors, write_atomic, CheckpointError, HostTensor,
};
pub use train::{
    causal_lm_loss, causal_lm_loss_sum, collate, with_autodiff, AutodiffRun, Batch, CausalLm,
    CheckpointedAutodiff, CheckpointingBackend, Example, StepMetrics, TrainConfig, TrainError,
    Trainer, IGNORE_INDEX,
};

#[cfg(feature = "cuda")]
pub mod cuda;
mod double_quant;
mod error;
mod nf4;
pub mod quant;
mod quant_state;
mod same_type;

pub use double_quant::{
    dequantize_blockwise_dynamic, dynamic_map_signed, quantize_blockwise_dynamic, torch_mean_f32,
    torch_sum_f32, DoubleQuant, DYNAMIC_MAP_SIGNED_BITS, NESTED_BLOCKSIZE,
};
pub use error::{Error, Result};
pub use nf4::{
    check_nf4_lengths, dequantize_nf4_reference, nf4_code, pack_nibbles, quantize_nf4_reference,
    unpack_nibbles, Blocksize, Nf4Blocks, ABSMAX_FLOOR, ALLOWED_BLOCKSIZES, NF4_CODE, NF4_MAX_GAP,
    NF4_MIDPOINTS,
};
pub use quant::dtype::{FloatDtype, QuantFloat};
pub use quant::fast::{dequantize_nf4, dequantize_nf4_into, quantize_nf4};
pub use quant::linear::Nf4Linear;
pub use quant::tensor::dequantize_tensor;
pub use quant_state::{
    parse_safetensors, python_float_repr, quantized_weight_names, Absmax, OwnedTensor, QuantConfig,
    QuantState, QUANT_STATE_SUFFIX,
};
