//! # llama-model
//!
//! LLaMA-2/3 and Mistral in burn: Hugging Face `config.json` and safetensors loading
//! (including pre-quantized bitsandbytes 4-bit checkpoints), tokenizer and chat templates,
//! generation with a KV cache, and PEFT adapters.
//!
//! - [`config`]: [`HfLlamaConfig`] (the file) → [`LlamaConfig`] (resolved); [`arch`]:
//!   [`ModelType`], what differs between LLaMA and Mistral.
//! - [`model`]: [`Llama`] and its parts ([`attention`], [`mlp`], [`block`], [`rope`]), each
//!   loading itself ([`Load`]) from a prefix-scoped view of a [`WeightSource`] ([`weights`]);
//!   causal, padding and sliding-window masks as transformers builds them (`mask.rs`).
//! - [`Llama::with_dtype`]: the compute dtype of the frozen weights and activations (bf16
//!   on CUDA; LoRA weights stay f32), as [`LoadOptions::dtype`] sets it on load.
//! - [`hf`]: checkpoints on disk: [`load_pretrained`], [`save_pretrained`].
//! - [`kv_cache`]: [`KvCache`], allocated once and written in place;
//!   [`generate`](mod@generate): [`generate()`], [`GenerationConfig`].
//! - [`tokenizer`]: [`LlamaTokenizer`] ([`tokenizer_class`]: what transformers 5 changes in a
//!   `tokenizer.json` on load); [`chat_template`]: the checkpoint's own Jinja
//!   [`ChatTemplate`], rendered as transformers does; [`generation_config`]: its stop ids.
//! - [`peft`]: PEFT adapter directories ([`load_adapter`], [`save_adapter`]); [`merge`]:
//!   [`Llama::merge_lora`] / [`merge_adapter`] fold adapters into a full-precision model.
//! - [`init`]: [`RandomInit`] for models trained from scratch; [`preset`]: [`ModelPreset`]
//!   shapes of public checkpoints ([`LlamaConfig::preset`]) for random models at real size.
//! - [`memory`]: [`estimate_training_memory`] of a fine-tuning run, before loading weights.
#![warn(missing_docs)]

pub mod arch;
pub mod attention;
pub mod block;
pub mod chat_template;
pub mod config;
mod dtype;
pub mod error;
pub mod generate;
pub mod generation_config;
pub mod hf;
pub mod init;
pub mod kv_cache;
mod mask;
pub mod memory;
pub mod merge;
pub mod mlp;
pub mod model;
pub mod peft;
pub mod preset;
pub mod rope;
pub mod tokenizer;
pub mod tokenizer_class;
pub mod tokenizer_train;
pub mod weights;

pub use arch::ModelType;
pub use chat_template::{
    read_messages, ChatMessage, ChatTemplate, RenderOptions, Role, SpecialTokens,
};
pub use config::{Bnb4bitConfig, HfLlamaConfig, LlamaConfig, RopeScaling, TokenIdOrList};
pub use error::{LlamaError, Result};
pub use generate::{generate, process_logits, GenerationConfig, Sampling, TokenEvent};
pub use generation_config::HfGenerationConfig;
pub use hf::checkpoint::Checkpoint;
pub use hf::load::{load_checkpoint, load_pretrained, LoadOptions};
pub use hf::save::{
    save_pretrained, save_pretrained_as, save_tensors_as, save_tensors_f32, state_dict,
    NamedTensor, SaveDtype,
};
pub use init::RandomInit;
pub use kv_cache::KvCache;
pub use memory::{estimate_training_memory, MemoryEstimate, MemoryTarget, TrainingPlan};
pub use merge::merge_adapter;
pub use model::{Llama, LlamaInput, TrainMode};
pub use peft::{load_adapter, lora_parameters, save_adapter, AdapterConfig};
pub use preset::ModelPreset;
pub use rope::{apply_rotary, rope_cos_sin, rope_inv_freq};
pub use tokenizer::LlamaTokenizer;
pub use tokenizer_train::{
    train_bpe, BpeTrainingConfig, LLAMA3_SPECIAL_TOKENS, LLAMA3_SPLIT_PATTERN,
};
pub use weights::{Load, WeightSource, Weights};

/// The CPU backend the unit tests run on.
#[cfg(test)]
pub(crate) type TestBackend = burn_ndarray::NdArray<f32>;
