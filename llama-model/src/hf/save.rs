//! Saving a [`Llama`] as a Hugging Face checkpoint directory (`config.json` +
//! `model.safetensors`, f32) that transformers' `LlamaForCausalLM.from_pretrained` loads.

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

/// Writes f32 tensors `(name, shape, little-endian bytes)` as one safetensors file
/// (atomically), with `{"format": "pt"}` metadata.
pub fn save_tensors_f32(path: impl AsRef<Path>, tensors: &[NamedTensor]) -> Result<()> {
    let path = path.as_ref();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, bytes) in tensors {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| {
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
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    save_tensors_f32(dir.join("model.safetensors"), &state_dict(model)?)?;
    let cfg_path = dir.join("config.json");
    let json =
        serde_json::to_string_pretty(&model.config().to_hf("float32")).map_err(|source| {
            LlamaError::Json {
                path: cfg_path.clone(),
                source,
            }
        })?;
    write_atomic(&cfg_path, json.as_bytes())
}
