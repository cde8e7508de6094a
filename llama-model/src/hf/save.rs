//! Saving a [`Llama`] as a Hugging Face checkpoint directory (`config.json` +
//! `model.safetensors`, f32, f16 or bf16) that transformers' `LlamaForCausalLM.from_pretrained`
//! loads.

use std::io::Write;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use safetensors::tensor::{Dtype, TensorView};

use crate::error::{LlamaError, Result};
use crate::model::Llama;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LlamaError + '_ {
    move |source| LlamaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        // A failed write (full disk, size limit) leaves no partial file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn f32_bytes<B: Backend, const D: usize>(
    name: &str,
    t: Tensor<B, D>,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let shape = t.dims().to_vec();
    let values: Vec<f32> =
        t.into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| LlamaError::Dtype {
                name: name.to_string(),
                dtype: format!("{e:?}"),
            })?;
    Ok((shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()))
}

/// A named f32 tensor ready for safetensors: `(name, shape, little-endian bytes)`.
pub type NamedTensor = (String, Vec<usize>, Vec<u8>);

/// All weights of the model under their transformers names, as f32 `(name, shape, bytes)`.
/// Projections are saved as their (dequantized) base weight; an unmerged LoRA adapter is
/// not included (merge it first, or save it with PEFT).
pub fn state_dict<B: Backend>(model: &Llama<B>) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    let mut push2 = |name: String, t: Tensor<B, 2>| -> Result<()> {
        let (s, b) = f32_bytes(&name, t)?;
        out.push((name, s, b));
        Ok(())
    };
    push2(
        "model.embed_tokens.weight".into(),
        model.embed_tokens.weight.val(),
    )?;
    let mut vecs: Vec<(String, Tensor<B, 1>)> = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &layer.self_attn;
        let m = &layer.mlp;
        for (n, lin) in [
            ("self_attn.q_proj", &a.q_proj),
            ("self_attn.k_proj", &a.k_proj),
            ("self_attn.v_proj", &a.v_proj),
            ("self_attn.o_proj", &a.o_proj),
            ("mlp.gate_proj", &m.gate_proj),
            ("mlp.up_proj", &m.up_proj),
            ("mlp.down_proj", &m.down_proj),
        ] {
            push2(format!("{p}.{n}.weight"), lin.base.weight())?;
            if let Some(b) = lin.base.bias() {
                vecs.push((format!("{p}.{n}.bias"), b));
            }
        }
        vecs.push((
            format!("{p}.input_layernorm.weight"),
            layer.input_layernorm.gamma.val(),
        ));
        vecs.push((
            format!("{p}.post_attention_layernorm.weight"),
            layer.post_attention_layernorm.gamma.val(),
        ));
    }
    vecs.push(("model.norm.weight".into(), model.norm.gamma.val()));
    if let Some(head) = &model.lm_head {
        push2("lm_head.weight".into(), head.base.weight())?;
    }
    for (name, t) in vecs {
        let (s, b) = f32_bytes(&name, t)?;
        out.push((name, s, b));
    }
    Ok(out)
}

/// The storage dtype of a saved checkpoint (`--dtype f32|f16|bf16`).
///
/// ```
/// use llama_model::SaveDtype;
/// let d: SaveDtype = "bf16".parse().unwrap();
/// assert_eq!(d, SaveDtype::Bf16);
/// assert_eq!(d.hf_name(), "bfloat16");
/// assert!("f8".parse::<SaveDtype>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveDtype {
    /// 32-bit float (exact).
    #[default]
    F32,
    /// IEEE half precision (round to nearest even).
    F16,
    /// bfloat16 (round to nearest even).
    Bf16,
}

impl SaveDtype {
    /// The name transformers writes in `config.json` (`float32`, `float16`, `bfloat16`).
    pub fn hf_name(self) -> &'static str {
        match self {
            SaveDtype::F32 => "float32",
            SaveDtype::F16 => "float16",
            SaveDtype::Bf16 => "bfloat16",
        }
    }

    fn safetensors_dtype(self) -> Dtype {
        match self {
            SaveDtype::F32 => Dtype::F32,
            SaveDtype::F16 => Dtype::F16,
            SaveDtype::Bf16 => Dtype::BF16,
        }
    }

    /// Converts little-endian f32 bytes to this dtype's little-endian bytes.
    fn convert(self, f32_bytes: &[u8]) -> Vec<u8> {
        let values = f32_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        match self {
            SaveDtype::F32 => f32_bytes.to_vec(),
            SaveDtype::F16 => values
                .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            SaveDtype::Bf16 => values
                .flat_map(|v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

impl std::str::FromStr for SaveDtype {
    type Err = LlamaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(SaveDtype::F32),
            "f16" | "float16" => Ok(SaveDtype::F16),
            "bf16" | "bfloat16" => Ok(SaveDtype::Bf16),
            other => Err(LlamaError::InvalidArgument(format!(
                "unknown dtype `{other}` (expected f32, f16 or bf16)"
            ))),
        }
    }
}

/// Writes f32 tensors `(name, shape, little-endian bytes)` as one safetensors file
/// (atomically), with `{"format": "pt"}` metadata.
pub fn save_tensors_f32(path: impl AsRef<Path>, tensors: &[NamedTensor]) -> Result<()> {
    save_tensors_as(path, tensors, SaveDtype::F32)
}

/// Writes f32 tensors `(name, shape, little-endian bytes)` as one safetensors file in
/// `dtype` (rounded to nearest even for f16/bf16), atomically, with `{"format": "pt"}`
/// metadata.
pub fn save_tensors_as(
    path: impl AsRef<Path>,
    tensors: &[NamedTensor],
    dtype: SaveDtype,
) -> Result<()> {
    let path = path.as_ref();
    let converted: Vec<Vec<u8>> = tensors.iter().map(|t| dtype.convert(&t.2)).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), bytes) in tensors.iter().zip(&converted) {
        let view =
            TensorView::new(dtype.safetensors_dtype(), shape.clone(), bytes).map_err(|e| {
                LlamaError::Safetensors {
                    path: path.to_path_buf(),
                    reason: format!("{name}: {e}"),
                }
            })?;
        views.push((name.as_str(), view));
    }
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| LlamaError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Saves the model as `dir/config.json` + `dir/model.safetensors` (f32), creating `dir`.
/// Both files are written atomically.
pub fn save_pretrained<B: Backend>(model: &Llama<B>, dir: impl AsRef<Path>) -> Result<()> {
    save_pretrained_as(model, dir, SaveDtype::F32)
}

/// Saves the model as `dir/config.json` (`torch_dtype` set to `dtype`, no
/// `quantization_config`) + `dir/model.safetensors` in `dtype`, creating `dir`. NF4 bases are
/// saved dequantized; unmerged adapters are not saved. Both files are written atomically.
pub fn save_pretrained_as<B: Backend>(
    model: &Llama<B>,
    dir: impl AsRef<Path>,
    dtype: SaveDtype,
) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    save_tensors_as(dir.join("model.safetensors"), &state_dict(model)?, dtype)?;
    let cfg_path = dir.join("config.json");
    let json =
        serde_json::to_string_pretty(&model.config().to_hf(dtype.hf_name())).map_err(|source| {
            LlamaError::Json {
                path: cfg_path.clone(),
                source,
            }
        })?;
    write_atomic(&cfg_path, json.as_bytes())
}
