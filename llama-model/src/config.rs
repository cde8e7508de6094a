//! Hugging Face `config.json` for LLaMA and Mistral models: the serde mirror [`HfLlamaConfig`]
//! and the resolved, validated [`LlamaConfig`] the model is built from.
//!
//! Both the transformers-4 (Hub) layout (`rope_theta`, `rope_scaling`, `torch_dtype`) and the
//! transformers-5 layout (`rope_parameters` with `rope_type`/`rope_theta`, `dtype`) are read.
//! `model_type` picks the architecture ([`ModelType`]) and with it the defaults of absent
//! fields.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arch::ModelType;
use crate::error::{LlamaError, Result};

/// A token id field that transformers writes either as one integer or as a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIdOrList {
    /// One id, e.g. `"eos_token_id": 2`.
    One(u32),
    /// Several ids, e.g. `"eos_token_id": [128001, 128008, 128009]`.
    Many(Vec<u32>),
}

impl TokenIdOrList {
    /// The ids as a vector (one element for [`TokenIdOrList::One`]).
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIdOrList::One(id) => vec![*id],
            TokenIdOrList::Many(ids) => ids.clone(),
        }
    }
}

/// `config.json` of a `LlamaForCausalLM` or `MistralForCausalLM` as transformers writes it;
/// every field optional where transformers has a default. Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HfLlamaConfig {
    /// `"llama"` (the default when absent) or `"mistral"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention); defaults to the query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Activation of the MLP; only `"silu"` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_act: Option<String>,
    /// Context length (default 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_position_embeddings: Option<usize>,
    /// RMSNorm epsilon (default 1e-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rms_norm_eps: Option<f64>,
    /// transformers-4 RoPE base (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// transformers-4 RoPE scaling dictionary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<Value>,
    /// transformers-5 RoPE dictionary (`rope_type`, `rope_theta`, scaling fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<Value>,
    /// Whether `lm_head` shares the embedding matrix (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
    /// Bias on q/k/v/o (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_bias: Option<bool>,
    /// Bias on gate/up/down (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_bias: Option<bool>,
    /// Beginning-of-sequence id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<TokenIdOrList>,
    /// End-of-sequence id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIdOrList>,
    /// Padding id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<TokenIdOrList>,
    /// transformers-4 storage dtype (`"float32"`, `"float16"`, `"bfloat16"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    /// transformers-5 storage dtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// `pretraining_tp`; only 1 is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretraining_tp: Option<usize>,
    /// bitsandbytes quantization settings of a pre-quantized checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_config: Option<Value>,
    /// Mistral's attention window: `None` when the field is absent (transformers' default,
    /// 4096, applies), `Some(None)` for `null` (no window), `Some(Some(w))` for a number.
    /// Ignored for LLaMA.
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub sliding_window: Option<Option<usize>>,
    /// Every other field, kept so a saved config round-trips.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Rotary-embedding frequency scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`rope_type: "default"`).
    Default,
    /// LLaMA-3.1 frequency scaling (`rope_type: "llama3"`).
    Llama3 {
        /// `factor` (8 in LLaMA-3.1).
        factor: f64,
        /// `low_freq_factor` (1).
        low_freq_factor: f64,
        /// `high_freq_factor` (4).
        high_freq_factor: f64,
        /// `original_max_position_embeddings` (8192).
        original_max_position_embeddings: usize,
    },
}

/// The bitsandbytes 4-bit settings of `quantization_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bnb4bitConfig {
    /// Quantization type; only `"nf4"` is supported.
    pub quant_type: String,
    /// `bnb_4bit_use_double_quant`.
    pub double_quant: bool,
    /// `bnb_4bit_compute_dtype` as written (e.g. `"float32"`, `"bfloat16"`).
    pub compute_dtype: String,
    /// Modules left in full precision (`llm_int8_skip_modules`).
    pub skip_modules: Vec<String>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or set.
fn present_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<usize>>, D::Error> {
    Option::<usize>::deserialize(d).map(Some)
}

/// The resolved, validated configuration a [`crate::Llama`] is built from (LLaMA or Mistral,
/// see [`ModelType`]).
///
/// # Example
/// ```
/// use llama_model::{LlamaConfig, ModelType};
/// let cfg = LlamaConfig::tiny(256);
/// assert_eq!(cfg.head_dim * cfg.num_attention_heads, cfg.hidden_size);
/// assert_eq!((cfg.model_type, cfg.sliding_window), (ModelType::Llama, None));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The architecture (`model_type`).
    pub model_type: ModelType,
    /// Sliding attention window (Mistral): a query sees at most this many keys, itself
    /// included. `None`: plain causal attention.
    pub sliding_window: Option<usize>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads.
    pub num_key_value_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE frequency scaling.
    pub rope_scaling: RopeScaling,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v/o.
    pub attention_bias: bool,
    /// Bias on gate/up/down.
    pub mlp_bias: bool,
    /// Beginning-of-sequence ids (first one is used when a BOS is added).
    pub bos_token_ids: Vec<u32>,
    /// End-of-sequence ids; generation stops on any of them.
    pub eos_token_ids: Vec<u32>,
    /// Padding id, when the config names one.
    pub pad_token_id: Option<u32>,
    /// Storage dtype named by the config (`"float32"`, `"float16"`, `"bfloat16"`), if any.
    pub dtype: Option<String>,
    /// bitsandbytes 4-bit settings when the checkpoint is pre-quantized.
    pub quantization: Option<Bnb4bitConfig>,
}

fn cfg_err(field: &str, reason: impl Into<String>) -> LlamaError {
    LlamaError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn get_f64(map: &serde_json::Map<String, Value>, key: &str, prefix: &str) -> Result<f64> {
    map.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| cfg_err(&format!("{prefix}.{key}"), "missing or not a number"))
}

fn parse_rope(
    dict: &Value,
    field: &str,
    default_theta: f64,
    max_pos: usize,
) -> Result<(f64, RopeScaling)> {
    let map = dict
        .as_object()
        .ok_or_else(|| cfg_err(field, "expected an object"))?;
    let theta = match map.get("rope_theta") {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| cfg_err(&format!("{field}.rope_theta"), "not a number"))?,
        None => default_theta,
    };
    let kind = map
        .get("rope_type")
        .or_else(|| map.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let scaling = match kind {
        "default" => RopeScaling::Default,
        "llama3" => {
            let factor = get_f64(map, "factor", field)?;
            let low = get_f64(map, "low_freq_factor", field)?;
            let high = get_f64(map, "high_freq_factor", field)?;
            let orig = map
                .get("original_max_position_embeddings")
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .unwrap_or(max_pos);
            if factor <= 0.0 || low <= 0.0 || high <= low || orig == 0 {
                return Err(cfg_err(
                    field,
                    format!(
                        "llama3 rope scaling needs factor > 0 and 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0; got factor {factor}, low {low}, high {high}, original {orig}"
                    ),
                ));
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: orig,
            }
        }
        other => {
            return Err(cfg_err(
                &format!("{field}.rope_type"),
                format!("unsupported rope_type `{other}` (supported: default, llama3)"),
            ))
        }
    };
    Ok((theta, scaling))
}

fn parse_quant(v: &Value) -> Result<Option<Bnb4bitConfig>> {
    let map = v
        .as_object()
        .ok_or_else(|| cfg_err("quantization_config", "expected an object"))?;
    let method = map
        .get("quant_method")
        .and_then(Value::as_str)
        .unwrap_or("bitsandbytes");
    if method != "bitsandbytes" {
        return Err(cfg_err(
            "quantization_config.quant_method",
            format!("unsupported quant_method `{method}` (supported: bitsandbytes)"),
        ));
    }
    if map.get("load_in_8bit").and_then(Value::as_bool) == Some(true) {
        return Err(cfg_err(
            "quantization_config.load_in_8bit",
            "8-bit bitsandbytes checkpoints are not supported (4-bit NF4 only)",
        ));
    }
    if map.get("load_in_4bit").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let quant_type = map
        .get("bnb_4bit_quant_type")
        .and_then(Value::as_str)
        .unwrap_or("fp4")
        .to_string();
    if quant_type != "nf4" {
        return Err(cfg_err(
            "quantization_config.bnb_4bit_quant_type",
            format!("unsupported 4-bit type `{quant_type}` (supported: nf4)"),
        ));
    }
    let skip_modules = match map.get("llm_int8_skip_modules") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Bnb4bitConfig {
        quant_type,
        double_quant: map
            .get("bnb_4bit_use_double_quant")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        compute_dtype: map
            .get("bnb_4bit_compute_dtype")
            .and_then(Value::as_str)
            .unwrap_or("float32")
            .to_string(),
        skip_modules,
    }))
}

impl HfLlamaConfig {
    /// Reads and parses a `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LlamaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| LlamaError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Validates the fields and fills in transformers' defaults (those of the architecture
    /// `model_type` names, see [`ModelType`]).
    pub fn resolve(&self) -> Result<LlamaConfig> {
        let model_type = match &self.model_type {
            Some(name) => name.parse::<ModelType>()?,
            None => ModelType::Llama,
        };
        self.check_supported(model_type)?;
        let (heads, kv_heads, head_dim) = self.attention_shape(model_type)?;
        let max_pos = self
            .max_position_embeddings
            .unwrap_or_else(|| model_type.default_max_position_embeddings());
        if max_pos == 0 {
            return Err(cfg_err("max_position_embeddings", "must be positive"));
        }
        let (rope_theta, rope_scaling) = self.rope(max_pos)?;
        let quantization = match &self.quantization_config {
            Some(q) if !q.is_null() => parse_quant(q)?,
            _ => None,
        };
        let ids = |v: &Option<TokenIdOrList>| v.as_ref().map(|b| b.to_vec()).unwrap_or_default();
        Ok(LlamaConfig {
            model_type,
            sliding_window: self.window(model_type, max_pos)?,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            max_position_embeddings: max_pos,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            attention_bias: self.attention_bias.unwrap_or(false),
            mlp_bias: self.mlp_bias.unwrap_or(false),
            bos_token_ids: ids(&self.bos_token_id),
            eos_token_ids: ids(&self.eos_token_id),
            pad_token_id: self
                .pad_token_id
                .as_ref()
                .and_then(|p| p.to_vec().first().copied()),
            dtype: self.dtype.clone().or_else(|| self.torch_dtype.clone()),
            quantization,
        })
    }

    /// Rejects what the model cannot run: another activation, empty sizes, biases Mistral
    /// does not have.
    fn check_supported(&self, model_type: ModelType) -> Result<()> {
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return Err(cfg_err(
                    "hidden_act",
                    format!("unsupported activation `{act}` (supported: silu)"),
                ));
            }
        }
        if let Some(tp) = self.pretraining_tp {
            if tp != 1 {
                log::warn!("pretraining_tp = {tp} is ignored (it only changes rounding)");
            }
        }
        if !model_type.has_bias_fields() {
            for (name, on) in [
                ("attention_bias", self.attention_bias),
                ("mlp_bias", self.mlp_bias),
            ] {
                if on == Some(true) {
                    return Err(cfg_err(
                        name,
                        format!("{model_type} projections have no bias (must be false or absent)"),
                    ));
                }
            }
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
        ] {
            if v == 0 {
                return Err(cfg_err(name, "must be positive"));
            }
        }
        Ok(())
    }

    /// `(num_attention_heads, num_key_value_heads, head_dim)`, checked.
    fn attention_shape(&self, model_type: ModelType) -> Result<(usize, usize, usize)> {
        let heads = self.num_attention_heads;
        let kv_heads = self
            .num_key_value_heads
            .unwrap_or_else(|| model_type.default_num_key_value_heads(heads));
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(cfg_err(
                "num_key_value_heads",
                format!("{kv_heads} does not divide num_attention_heads = {heads}"),
            ));
        }
        let head_dim = match self.head_dim {
            Some(d) => d,
            None => {
                if !self.hidden_size.is_multiple_of(heads) {
                    return Err(cfg_err(
                        "hidden_size",
                        format!(
                            "{} is not divisible by num_attention_heads = {heads} and head_dim is not given",
                            self.hidden_size
                        ),
                    ));
                }
                self.hidden_size / heads
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(cfg_err(
                "head_dim",
                format!("{head_dim} must be positive and even"),
            ));
        }
        Ok((heads, kv_heads, head_dim))
    }

    /// RoPE base and scaling from `rope_parameters` (transformers 5), `rope_scaling` +
    /// `rope_theta` (transformers 4) or the default.
    fn rope(&self, max_pos: usize) -> Result<(f64, RopeScaling)> {
        let default_theta = self.rope_theta.unwrap_or(10000.0);
        let (theta, scaling) = match (&self.rope_parameters, &self.rope_scaling) {
            (Some(p), _) => parse_rope(p, "rope_parameters", default_theta, max_pos)?,
            (None, Some(s)) if !s.is_null() => {
                parse_rope(s, "rope_scaling", default_theta, max_pos)?
            }
            _ => (default_theta, RopeScaling::Default),
        };
        if theta <= 0.0 {
            return Err(cfg_err("rope_theta", "must be positive"));
        }
        Ok((theta, scaling))
    }

    /// The sliding window of a Mistral config: absent means transformers' default, `null`
    /// none. A window of 0 hides every key; one wider than the context never applies and
    /// is most likely a mistaken field.
    fn window(&self, model_type: ModelType, max_pos: usize) -> Result<Option<usize>> {
        if model_type == ModelType::Llama {
            if self.sliding_window.flatten().is_some() {
                log::warn!("sliding_window is ignored: LLaMA attends to the whole context");
            }
            return Ok(None);
        }
        let window = match self.sliding_window {
            None => model_type.default_sliding_window(),
            Some(w) => w,
        };
        match window {
            Some(0) => Err(cfg_err(
                "sliding_window",
                "must be positive (or null for no window)",
            )),
            Some(w) if w > max_pos => Err(cfg_err(
                "sliding_window",
                format!(
                    "{w} is larger than max_position_embeddings = {max_pos}; \
                     set it to null for attention over the whole context"
                ),
            )),
            w => Ok(w),
        }
    }
}

impl LlamaConfig {
    /// Reads `config.json` and resolves it.
    ///
    /// A rejected field gives [`LlamaError::ConfigFile`], which names the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        HfLlamaConfig::from_file(path)?
            .resolve()
            .map_err(|e| match e {
                LlamaError::Config { field, reason } => LlamaError::ConfigFile {
                    path: path.to_path_buf(),
                    field,
                    reason,
                },
                other => other,
            })
    }

    /// A tiny configuration for tests and the demo: hidden 64, 2 layers, 4 heads (2 KV heads),
    /// MLP 128, context 512, default RoPE.
    pub fn tiny(vocab_size: usize) -> Self {
        LlamaConfig {
            model_type: ModelType::Llama,
            sliding_window: None,
            vocab_size,
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 16,
            max_position_embeddings: 512,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::Default,
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
            bos_token_ids: vec![1],
            eos_token_ids: vec![2],
            pad_token_id: None,
            dtype: Some("float32".to_string()),
            quantization: None,
        }
    }

    /// Number of query heads sharing one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// The config as transformers-4 `config.json` fields (also read by transformers 5),
    /// with `torch_dtype` set to `dtype`; no quantization config. `model_type` and
    /// `architectures` name the config's architecture; a Mistral config writes its
    /// `sliding_window` (`null` for none) and no bias fields, as `MistralConfig` does.
    pub fn to_hf(&self, dtype: &str) -> HfLlamaConfig {
        let rope_scaling = match self.rope_scaling {
            RopeScaling::Default => None,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => Some(serde_json::json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            })),
        };
        let ids = |v: &[u32]| match v {
            [] => None,
            [one] => Some(TokenIdOrList::One(*one)),
            many => Some(TokenIdOrList::Many(many.to_vec())),
        };
        let mut extra = serde_json::Map::new();
        extra.insert(
            "architectures".into(),
            serde_json::json!([self.model_type.architecture()]),
        );
        let llama = self.model_type.has_bias_fields();
        HfLlamaConfig {
            model_type: Some(self.model_type.name().into()),
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: Some(self.num_key_value_heads),
            head_dim: Some(self.head_dim),
            hidden_act: Some("silu".into()),
            max_position_embeddings: Some(self.max_position_embeddings),
            rms_norm_eps: Some(self.rms_norm_eps),
            rope_theta: Some(self.rope_theta),
            rope_scaling,
            rope_parameters: None,
            tie_word_embeddings: Some(self.tie_word_embeddings),
            attention_bias: llama.then_some(self.attention_bias),
            mlp_bias: llama.then_some(self.mlp_bias),
            bos_token_id: ids(&self.bos_token_ids),
            eos_token_id: ids(&self.eos_token_ids),
            pad_token_id: self.pad_token_id.map(TokenIdOrList::One),
            torch_dtype: Some(dtype.to_string()),
            dtype: None,
            pretraining_tp: llama.then_some(1),
            quantization_config: None,
            sliding_window: (!llama).then_some(self.sliding_window),
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LlamaConfig> {
        serde_json::from_str::<HfLlamaConfig>(s)
            .map_err(|e| cfg_err("json", e.to_string()))?
            .resolve()
    }

    const BASE: &str = r#""vocab_size":256,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4"#;

    #[test]
    fn defaults_follow_transformers() {
        let c = parse(&format!("{{{BASE}}}")).unwrap();
        assert_eq!(c.num_key_value_heads, 4);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.max_position_embeddings, 2048);
        assert_eq!(c.rms_norm_eps, 1e-6);
        assert_eq!(c.rope_theta, 10000.0);
        assert_eq!(c.rope_scaling, RopeScaling::Default);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn transformers4_llama3_scaling_and_eos_list() {
        let c = parse(&format!(
            r#"{{{BASE},"rope_theta":500000.0,"rope_scaling":{{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}},"eos_token_id":[128001,128009],"bos_token_id":128000,"torch_dtype":"bfloat16"}}"#
        ))
        .unwrap();
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(
            c.rope_scaling,
            RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192
            }
        );
        assert_eq!(c.eos_token_ids, vec![128001, 128009]);
        assert_eq!(c.bos_token_ids, vec![128000]);
        assert_eq!(c.dtype.as_deref(), Some("bfloat16"));
    }

    #[test]
    fn transformers5_rope_parameters() {
        let c = parse(&format!(
            r#"{{{BASE},"rope_parameters":{{"rope_type":"default","rope_theta":1234.0}},"dtype":"float32","head_dim":24,"num_key_value_heads":2}}"#
        ))
        .unwrap();
        assert_eq!(c.rope_theta, 1234.0);
        assert_eq!(c.head_dim, 24);
        assert_eq!(c.kv_groups(), 2);
        assert_eq!(c.dtype.as_deref(), Some("float32"));
    }

    #[test]
    fn bad_fields_are_named() {
        let e = parse(&format!(r#"{{{BASE},"model_type":"gemma"}}"#)).unwrap_err();
        assert!(e.to_string().contains("model_type"), "{e}");
        assert!(e.to_string().contains("llama, mistral"), "{e}");
        let e = parse(&format!(
            r#"{{{BASE},"rope_scaling":{{"rope_type":"yarn","factor":2.0}}}}"#
        ))
        .unwrap_err();
        assert!(e.to_string().contains("yarn"), "{e}");
        let e = parse(&format!(r#"{{{BASE},"num_key_value_heads":3}}"#)).unwrap_err();
        assert!(e.to_string().contains("num_key_value_heads"), "{e}");
    }

    #[test]
    fn bnb_quantization_config() {
        let c = parse(&format!(
            r#"{{{BASE},"quantization_config":{{"quant_method":"bitsandbytes","load_in_4bit":true,"load_in_8bit":false,"bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true,"bnb_4bit_compute_dtype":"float32"}}}}"#
        ))
        .unwrap();
        let q = c.quantization.unwrap();
        assert!(q.double_quant);
        assert_eq!(q.quant_type, "nf4");
    }

    #[test]
    fn mistral_defaults_and_window() {
        let m = |extra: &str| parse(&format!(r#"{{{BASE},"model_type":"mistral"{extra}}}"#));
        // Absent fields take MistralConfig's defaults.
        let c = m(r#","num_key_value_heads":2"#).unwrap();
        assert_eq!(c.model_type, ModelType::Mistral);
        assert_eq!(c.sliding_window, Some(4096));
        assert_eq!(c.max_position_embeddings, 131072);
        // num_key_value_heads defaults to 8 (not to the query heads, as for LLaMA) ...
        let c = parse(r#"{"model_type":"mistral","vocab_size":256,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":16}"#).unwrap();
        assert_eq!((c.num_key_value_heads, c.head_dim), (8, 4));
        // ... which does not divide 4 heads.
        let e = m("").unwrap_err();
        assert!(e.to_string().contains("num_key_value_heads"), "{e}");
        let c = m(r#","num_key_value_heads":2,"sliding_window":null"#).unwrap();
        assert_eq!((c.num_key_value_heads, c.sliding_window), (2, None));
        let c = m(r#","num_key_value_heads":2,"sliding_window":5,"max_position_embeddings":64"#)
            .unwrap();
        assert_eq!(c.sliding_window, Some(5));
        for (extra, field) in [
            (r#","sliding_window":0"#, "sliding_window"),
            (
                r#","sliding_window":65,"max_position_embeddings":64"#,
                "sliding_window",
            ),
            (r#","attention_bias":true"#, "attention_bias"),
            (r#","mlp_bias":true"#, "mlp_bias"),
        ] {
            let e = m(&format!(r#","num_key_value_heads":2{extra}"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{field}`")), "{extra}: {e}");
        }
        // LLaMA has no window, whatever the file says.
        let c = parse(&format!(r#"{{{BASE},"sliding_window":4}}"#)).unwrap();
        assert_eq!(c.sliding_window, None);
    }

    #[test]
    fn mistral_to_hf_round_trips_with_its_window() {
        for window in [Some(7), None] {
            let mut c = LlamaConfig::tiny(300);
            c.model_type = ModelType::Mistral;
            c.sliding_window = window;
            let hf = c.to_hf("bfloat16");
            let json = serde_json::to_value(&hf).unwrap();
            assert_eq!(json["model_type"], "mistral");
            assert_eq!(json["architectures"][0], "MistralForCausalLM");
            assert_eq!(json["sliding_window"], serde_json::json!(window));
            assert!(json.get("attention_bias").is_none());
            let back = parse(&json.to_string()).unwrap();
            c.dtype = Some("bfloat16".into());
            assert_eq!(back, c);
        }
    }

    #[test]
    fn to_hf_round_trips() {
        let mut c = LlamaConfig::tiny(300);
        c.rope_scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        c.eos_token_ids = vec![5, 6];
        let json = serde_json::to_string(&c.to_hf("float32")).unwrap();
        let back = parse(&json).unwrap();
        assert_eq!(back, c);
    }
}
