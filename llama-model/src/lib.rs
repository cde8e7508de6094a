//! # llama-model
//!
//! LLaMA-2/3 in burn: Hugging Face `config.json` and safetensors loading (including
//! pre-quantized bitsandbytes 4-bit checkpoints), tokenizer and chat templates, generation
//! with a KV cache, and PEFT adapters.
#![warn(missing_docs)]
