//! Hugging Face file formats: safetensors checkpoints (single, sharded, bitsandbytes 4-bit)
//! and saving a model as a checkpoint directory transformers loads.

pub mod checkpoint;
pub mod load;
pub mod save;
