//! PEFT LoRA adapter directories: `adapter_config.json` + `adapter_model.safetensors`, as
//! peft's `save_pretrained` writes them and `PeftModel.from_pretrained` reads them.
//!
//! Tensor names are peft's saved names (no adapter name such as `.default.`):
//! `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` `[r, in]` and
//! `...lora_B.weight` `[out, r]`.

use std::path::Path;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use qlora_core::{lora::lora_scaling, TargetModule};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{LlamaError, Result};
use crate::hf::checkpoint::Checkpoint;
use crate::hf::save::{save_tensors_f32, write_atomic, NamedTensor};
use crate::model::Llama;

/// The adapter config file name.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
/// The adapter weights file name.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// `adapter_config.json` with peft's field names. Unknown fields are ignored on read.
///
/// ```
/// use llama_model::AdapterConfig;
/// let c: AdapterConfig = serde_json::from_str(
///     r#"{"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}"#,
/// ).unwrap();
/// assert_eq!(c.scaling(), 2.0);
/// assert_eq!(c.targets().unwrap().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Rank.
    pub r: usize,
    /// `lora_alpha` (peft may write an integer).
    pub lora_alpha: f64,
    /// Dropout on the input of `A`.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Targeted module names; a single string in the file (e.g. `"all-linear"`) is read as a
    /// one-element list.
    #[serde(deserialize_with = "list_or_string")]
    pub target_modules: Vec<String>,
    /// Bias training; only `"none"` is supported.
    #[serde(default = "default_bias")]
    pub bias: String,
    /// rsLoRA scaling `alpha / sqrt(r)`.
    #[serde(default)]
    pub use_rslora: bool,
    /// The base model the adapter was trained on.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// peft's task type (`"CAUSAL_LM"`).
    #[serde(default)]
    pub task_type: Option<String>,
    /// Must be `"LORA"`.
    #[serde(default = "default_peft_type")]
    pub peft_type: String,
    /// Must be false (LLaMA projections are `nn.Linear`).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Whether the adapter was saved for inference.
    #[serde(default)]
    pub inference_mode: bool,
}

fn default_bias() -> String {
    "none".into()
}

fn default_peft_type() -> String {
    "LORA".into()
}

fn list_or_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        One(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::One(s) => vec![s],
    })
}

fn config_err(field: &str, reason: impl Into<String>) -> LlamaError {
    LlamaError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl AdapterConfig {
    /// A LoRA config for a causal LM: rank `r`, `lora_alpha`, the given targets, no dropout,
    /// plain scaling.
    ///
    /// ```
    /// use llama_model::AdapterConfig;
    /// use qlora_core::TargetModule;
    /// let c = AdapterConfig::new(8, 16.0, &TargetModule::ALL);
    /// assert_eq!(c.target_modules.len(), 7);
    /// c.validate().unwrap();
    /// ```
    pub fn new(r: usize, lora_alpha: f64, targets: &[TargetModule]) -> Self {
        Self {
            r,
            lora_alpha,
            lora_dropout: 0.0,
            target_modules: targets.iter().map(|t| t.as_str().to_string()).collect(),
            bias: default_bias(),
            use_rslora: false,
            base_model_name_or_path: None,
            task_type: Some("CAUSAL_LM".into()),
            peft_type: default_peft_type(),
            fan_in_fan_out: false,
            inference_mode: false,
        }
    }

    /// `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        lora_scaling(self.r, self.lora_alpha, self.use_rslora)
    }

    /// The targeted projections (sorted, deduplicated). `"all-linear"` means all seven; any
    /// other name must be one of the seven Hugging Face projection names.
    pub fn targets(&self) -> Result<Vec<TargetModule>> {
        let mut out = Vec::new();
        for name in &self.target_modules {
            if name == "all-linear" {
                out.extend(TargetModule::ALL);
                continue;
            }
            let t = TargetModule::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| {
                    config_err(
                        "target_modules",
                        format!(
                            "unknown target module `{name}` (expected q_proj, k_proj, v_proj, \
                             o_proj, gate_proj, up_proj, down_proj or all-linear)"
                        ),
                    )
                })?;
            out.push(t);
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(config_err("target_modules", "no target module"));
        }
        Ok(out)
    }

    /// Checks the fields this crate supports: `peft_type` LORA, `bias` none, no
    /// `fan_in_fan_out`, `r > 0`, finite `lora_alpha`, `lora_dropout` in `[0, 1)`, known
    /// target modules.
    pub fn validate(&self) -> Result<()> {
        if self.peft_type != "LORA" {
            return Err(config_err(
                "peft_type",
                format!(
                    "only LORA adapters are supported, found `{}`",
                    self.peft_type
                ),
            ));
        }
        if self.bias != "none" {
            return Err(config_err(
                "bias",
                format!("only `none` is supported, found `{}`", self.bias),
            ));
        }
        if self.fan_in_fan_out {
            return Err(config_err(
                "fan_in_fan_out",
                "must be false for LLaMA (nn.Linear) projections",
            ));
        }
        if self.r == 0 {
            return Err(config_err("r", "must be positive"));
        }
        if !self.lora_alpha.is_finite() {
            return Err(config_err("lora_alpha", "must be finite"));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(config_err(
                "lora_dropout",
                format!("must be in [0, 1), found {}", self.lora_dropout),
            ));
        }
        self.targets().map(|_| ())
    }
}

/// peft's saved name prefix of projection `t` in layer `i` (without `.lora_A.weight`).
fn key_prefix(i: usize, t: TargetModule) -> String {
    format!(
        "base_model.model.model.layers.{i}.{}.{}",
        t.parent(),
        t.as_str()
    )
}

/// Every LoRA matrix of `model` under its peft saved name
/// (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` `[r, in]`, `lora_B`
/// `[out, r]`), in layer order, then q, k, v, o, gate, up, down, `A` before `B`. Use it to
/// read values or gradients (`param.grad(&grads)`) by the names peft and its files use.
///
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{lora_parameters, Llama, LlamaConfig, RandomInit};
/// use qlora_core::{LoraConfig, TargetModule};
///
/// let dev = Default::default();
/// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(16), &RandomInit::default(), &dev).unwrap();
/// let model = model.with_lora(&LoraConfig::new(2, 4.0).with_targets(vec![TargetModule::VProj]), 0).unwrap();
/// let names: Vec<String> = lora_parameters(&model).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names.len(), 2 * model.layers.len());
/// assert_eq!(names[1], "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight");
/// ```
pub fn lora_parameters<B: Backend>(model: &Llama<B>) -> Vec<(String, &Param<Tensor<B, 2>>)> {
    let mut out = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for t in TargetModule::ALL {
            if let Some(a) = layer.projection(t).adapter() {
                let prefix = key_prefix(i, t);
                out.push((format!("{prefix}.lora_A.weight"), &a.lora_a));
                out.push((format!("{prefix}.lora_B.weight"), &a.lora_b));
            }
        }
    }
    out
}

fn read_config(dir: &Path) -> Result<AdapterConfig> {
    let path = dir.join(ADAPTER_CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| LlamaError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LlamaError::Json { path, source })
}

/// Reads a PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`, f32,
/// f16 or bf16) and attaches its `A`/`B` pairs to the targeted projections of `model`, with
/// scaling `lora_alpha / r` (`/ sqrt(r)` with rsLoRA). Any adapter already on a projection
/// is replaced.
///
/// Errors name the file, field or tensor: unsupported config values, unknown target
/// modules, missing tensors, shapes that do not fit the model, and tensors the config does
/// not account for.
///
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{load_adapter, save_adapter, AdapterConfig, Llama, LlamaConfig, RandomInit};
/// use qlora_core::TargetModule;
///
/// type B = NdArray<f32>;
/// let dev = Default::default();
/// let cfg = LlamaConfig::tiny(32);
/// let model = Llama::<B>::random(&cfg, &RandomInit::default(), &dev).unwrap();
/// let adapted = load_adapter(model, "/nonexistent");
/// assert!(adapted.is_err());
/// ```
pub fn load_adapter<B: Backend>(mut model: Llama<B>, dir: impl AsRef<Path>) -> Result<Llama<B>> {
    let dir = dir.as_ref();
    let config = read_config(dir)?;
    config.validate()?;
    let targets = config.targets()?;
    let scaling = config.scaling();
    let weights = Checkpoint::open_files(&[dir.join(ADAPTER_WEIGHTS_FILE)])?;
    let device = model.device();
    let mut used = std::collections::BTreeSet::new();
    for (i, layer) in model.layers.iter_mut().enumerate() {
        for &t in &targets {
            let prefix = key_prefix(i, t);
            let (in_f, out_f) = {
                let p = layer.projection(t);
                (p.in_features(), p.out_features())
            };
            let a_name = format!("{prefix}.lora_A.weight");
            let b_name = format!("{prefix}.lora_B.weight");
            let a = weights.read_f32(&a_name, &[config.r, in_f])?;
            let b = weights.read_f32(&b_name, &[out_f, config.r])?;
            let a = Tensor::<B, 2>::from_data(TensorData::new(a, [config.r, in_f]), &device);
            let b = Tensor::<B, 2>::from_data(TensorData::new(b, [out_f, config.r]), &device);
            layer.map_projection(t, |lin| {
                lin.with_lora_weights(a, b, scaling, config.lora_dropout)
                    .map_err(|e| LlamaError::InvalidArgument(format!("{prefix}: {e}")))
            })?;
            used.insert(a_name);
            used.insert(b_name);
        }
    }
    let unexpected: Vec<String> = weights
        .names()
        .filter(|n| !used.contains(*n))
        .map(str::to_string)
        .collect();
    if !unexpected.is_empty() {
        return Err(LlamaError::UnexpectedTensors { names: unexpected });
    }
    Ok(model)
}

fn f32_tensor<B: Backend>(name: String, t: Tensor<B, 2>) -> Result<NamedTensor> {
    let shape = t.dims().to_vec();
    let values: Vec<f32> =
        t.into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| LlamaError::Dtype {
                name: name.clone(),
                dtype: format!("{e:?}"),
            })?;
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((name, shape, bytes))
}

/// Writes the adapters of the projections `config` targets as a PEFT adapter directory
/// (`adapter_config.json` + `adapter_model.safetensors`, f32, peft's key names), creating
/// `dir`. Both files are written atomically.
///
/// Every targeted projection must carry an adapter of rank `config.r`.
///
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{load_adapter, save_adapter, AdapterConfig, Llama, LlamaConfig, RandomInit};
/// use qlora_core::TargetModule;
///
/// type B = NdArray<f32>;
/// let dev = Default::default();
/// let model = Llama::<B>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev).unwrap();
/// let dir = std::env::temp_dir().join(format!("peft-doc-{}", std::process::id()));
/// // No adapter attached yet: saving is refused.
/// let cfg = AdapterConfig::new(4, 8.0, &[TargetModule::QProj]);
/// assert!(save_adapter(&model, &dir, &cfg).is_err());
/// ```
pub fn save_adapter<B: Backend>(
    model: &Llama<B>,
    dir: impl AsRef<Path>,
    config: &AdapterConfig,
) -> Result<()> {
    let dir = dir.as_ref();
    config.validate()?;
    let targets = config.targets()?;
    let mut tensors = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for &t in &targets {
            let prefix = key_prefix(i, t);
            let adapter = layer.projection(t).adapter().ok_or_else(|| {
                LlamaError::InvalidArgument(format!(
                    "{prefix}: targeted by the adapter config but has no LoRA adapter"
                ))
            })?;
            if adapter.rank() != config.r {
                return Err(config_err(
                    "r",
                    format!(
                        "config says {} but `{prefix}` has rank {}",
                        config.r,
                        adapter.rank()
                    ),
                ));
            }
            tensors.push(f32_tensor(
                format!("{prefix}.lora_A.weight"),
                adapter.lora_a.val().detach(),
            )?);
            tensors.push(f32_tensor(
                format!("{prefix}.lora_B.weight"),
                adapter.lora_b.val().detach(),
            )?);
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| LlamaError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    save_tensors_f32(dir.join(ADAPTER_WEIGHTS_FILE), &tensors)?;
    let cfg_path = dir.join(ADAPTER_CONFIG_FILE);
    let json = serde_json::to_string_pretty(config).map_err(|source| LlamaError::Json {
        path: cfg_path.clone(),
        source,
    })?;
    write_atomic(&cfg_path, json.as_bytes())
}
