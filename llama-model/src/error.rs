//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading, building or running a LLaMA model.
///
/// Each variant carries the context a user needs to fix the cause: the file, the field or
/// the tensor name, and the expected versus found values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlamaError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A `config.json` field has a value this crate does not accept.
    #[error("config field `{field}`: {reason}")]
    Config {
        /// The field name as written in `config.json`.
        field: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// A field of the named `config.json` has a value this crate does not accept.
    #[error("{path}: config field `{field}`: {reason}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The field name as written in `config.json`.
        field: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: invalid safetensors file: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("tensor `{name}` is missing from the checkpoint")]
    MissingTensor {
        /// The tensor name as transformers writes it.
        name: String,
    },
    /// The checkpoint holds tensors the model does not use.
    #[error("checkpoint holds {} unexpected tensor(s), e.g. `{}`", names.len(), names.first().map(String::as_str).unwrap_or(""))]
    UnexpectedTensors {
        /// The unused tensor names.
        names: Vec<String>,
    },
    /// A tensor's shape does not match the config.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    Shape {
        /// The tensor name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a dtype this crate cannot read in that place.
    #[error("tensor `{name}`: unsupported dtype {dtype}")]
    Dtype {
        /// The tensor name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A token id is not below the vocabulary size.
    #[error("token id {id} at position {position} is outside the vocabulary (size {vocab_size})")]
    TokenOutOfVocab {
        /// The offending id.
        id: i64,
        /// Its position in the flattened input.
        position: usize,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// An input is longer than the model's context.
    #[error("sequence of {length} tokens exceeds max_position_embeddings = {max}")]
    TooLong {
        /// The requested total length (prompt plus new tokens, or the input length).
        length: usize,
        /// `max_position_embeddings` from the config.
        max: usize,
    },
    /// An argument is invalid (empty batch, wrong mask shape, bad sampling parameter...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A chat template does not compile, cannot render a conversation, or refuses it
    /// (its `raise_exception`), or no template was chosen.
    #[error("{origin}: {reason}")]
    ChatTemplate {
        /// Where the template came from: a file and field, or "built-in ...".
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// The `tokenizers` crate reported an error.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An NF4 quantization error from qlora-core (bitsandbytes 4-bit tensors).
    #[error(transparent)]
    Quant(#[from] qlora_core::Error),
    /// Attaching a LoRA adapter to the projection `module` failed.
    #[error("LoRA on `{module}`: {source}")]
    Lora {
        /// The projection, e.g. `model.layers.0.self_attn.q_proj`.
        module: String,
        /// The error from qlora-core.
        source: qlora_core::lora::LoraError,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LlamaError>;
