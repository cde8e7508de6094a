//! `quantize`: NF4-quantize safetensors files and HF checkpoints into the bitsandbytes layout
//! (loadable by bitsandbytes / transformers), or reverse it.
//!
//! ```text
//! quantize --input IN.safetensors --output OUT.safetensors [--tensors a,b] [--blocksize 64] [--no-double-quant]
//! quantize --dequantize --input IN.safetensors --output OUT.safetensors
//! quantize --model DIR --output DIR [--blocksize 64] [--no-double-quant] [--compute-dtype bfloat16]
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use qlora_core::{
    quant::parse_safetensors, quant::quantized_weight_names, quant::FloatDtype, quant::OwnedTensor,
    quant::QUANT_STATE_SUFFIX, Blocksize, QuantConfig, QuantState,
};
use safetensors::{Dtype, SafeTensors};

/// NF4 (QLoRA 4-bit) quantization of safetensors files in the bitsandbytes layout.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Input safetensors file (file mode).
    #[arg(long, conflicts_with = "model")]
    input: Option<PathBuf>,
    /// Output file (file mode) or directory (with --model).
    #[arg(long)]
    output: PathBuf,
    /// HF model directory (config.json + model.safetensors or sharded index): write a 4-bit
    /// checkpoint directory that transformers + bitsandbytes load.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Comma-separated tensor names to quantize (file mode; default: every 2-D float tensor).
    #[arg(long, value_delimiter = ',')]
    tensors: Option<Vec<String>>,
    /// NF4 blocksize: a power of two from 32 to 4096.
    #[arg(long, default_value_t = 64)]
    blocksize: usize,
    /// Store absmax in f32 instead of double-quantizing it (bnb_4bit_use_double_quant=False).
    #[arg(long)]
    no_double_quant: bool,
    /// Reverse: dequantize every NF4 weight of --input back to its original dtype.
    #[arg(long, conflicts_with_all = ["model", "tensors"])]
    dequantize: bool,
    /// bnb_4bit_compute_dtype written into config.json (with --model).
    #[arg(long, default_value = "bfloat16", value_parser = ["float32", "float16", "bfloat16"])]
    compute_dtype: String,
}

/// A tensor to write: borrowed from the input or newly made.
enum Out<'a> {
    Borrowed(safetensors::tensor::TensorView<'a>),
    Owned(OwnedTensor),
}

impl safetensors::View for &Out<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            Out::Borrowed(v) => v.dtype(),
            Out::Owned(t) => t.dtype,
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Out::Borrowed(v) => v.shape(),
            Out::Owned(t) => &t.shape,
        }
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Out::Borrowed(v) => std::borrow::Cow::Borrowed(v.data()),
            Out::Owned(t) => std::borrow::Cow::Borrowed(&t.data),
        }
    }
    fn data_len(&self) -> usize {
        match self {
            Out::Borrowed(v) => v.data().len(),
            Out::Owned(t) => t.data.len(),
        }
    }
}

fn mmap(path: &Path) -> Result<memmap2::Mmap> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    // SAFETY: the file is only read; we do not modify it while mapped.
    unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("{}: cannot map", path.display()))
}

fn metadata(bytes: &[u8]) -> Option<HashMap<String, String>> {
    SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

/// Writes tensors to `path` atomically (temp file in the same directory, then rename).
fn write_atomic(
    path: &Path,
    tensors: &[(String, Out<'_>)],
    meta: Option<HashMap<String, String>>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    let data: Vec<(&str, &Out<'_>)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    safetensors::serialize_to_file(data, meta, tmp.path())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))?;
    Ok(())
}

fn is_float(d: Dtype) -> bool {
    matches!(d, Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// Quantizes `selected` tensors of `st`, copying the rest.
fn quantize_tensors<'a>(
    st: &SafeTensors<'a>,
    selected: &dyn Fn(&str, &safetensors::tensor::TensorView<'_>) -> bool,
    config: QuantConfig,
    file: &Path,
) -> Result<Vec<(String, Out<'a>)>> {
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let total: u64 = st
        .tensors()
        .iter()
        .map(|(_, v)| v.data().len() as u64)
        .sum();
    let pb = bar(total, "quantizing");
    let mut out = Vec::new();
    for name in names {
        let view = st
            .tensor(&name)
            .with_context(|| format!("{}: tensor `{name}`", file.display()))?;
        let len = view.data().len() as u64;
        if selected(&name, &view) {
            let dtype = FloatDtype::from_safetensors(view.dtype(), &name)
                .with_context(|| format!("{}", file.display()))?;
            let q = QuantState::quantize_bytes(view.data(), dtype, view.shape(), config, &name)
                .with_context(|| format!("{}", file.display()))?;
            out.extend(
                q.to_tensors(&name)
                    .into_iter()
                    .map(|(k, t)| (k, Out::Owned(t))),
            );
        } else {
            out.push((name, Out::Borrowed(view)));
        }
        pb.inc(len);
    }
    pb.finish_and_clear();
    Ok(out)
}

fn run_file(args: &Args, input: &Path, config: QuantConfig) -> Result<()> {
    let map = mmap(input)?;
    let st = parse_safetensors(&map, &input.display().to_string())?;
    let tensors = if args.dequantize {
        dequantize_all(&st, input)?
    } else {
        if let Some(list) = &args.tensors {
            for name in list {
                let v = st
                    .tensor(name)
                    .map_err(|_| anyhow::anyhow!("{}: no tensor `{name}`", input.display()))?;
                if !is_float(v.dtype()) {
                    bail!("{}: tensor `{name}` has dtype {:?}; only F32, F16 and BF16 can be quantized", input.display(), v.dtype());
                }
            }
        }
        let list = args.tensors.clone();
        let selected = move |name: &str, v: &safetensors::tensor::TensorView<'_>| match &list {
            Some(l) => l.iter().any(|n| n == name),
            None => v.shape().len() == 2 && is_float(v.dtype()),
        };
        quantize_tensors(&st, &selected, config, input)?
    };
    write_atomic(&args.output, &tensors, metadata(&map))
}

fn dequantize_all<'a>(st: &SafeTensors<'a>, file: &Path) -> Result<Vec<(String, Out<'a>)>> {
    let names = quantized_weight_names(st);
    let companion = |k: &str| {
        names.iter().any(|n| {
            k.strip_prefix(n.as_str()).is_some_and(|rest| {
                [
                    ".absmax",
                    ".quant_map",
                    ".nested_absmax",
                    ".nested_quant_map",
                    QUANT_STATE_SUFFIX,
                ]
                .contains(&rest)
            })
        })
    };
    let mut out = Vec::new();
    let pb = bar(names.len() as u64, "dequantizing");
    for n in &names {
        let q =
            QuantState::from_safetensors(st, n).with_context(|| format!("{}", file.display()))?;
        out.push((
            n.clone(),
            Out::Owned(OwnedTensor {
                dtype: q.dtype().safetensors(),
                shape: q.shape().to_vec(),
                data: q.dequantize_bytes(),
            }),
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    for (k, v) in st.tensors() {
        if !names.contains(&k) && !companion(&k) {
            out.push((k, Out::Borrowed(v)));
        }
    }
    Ok(out)
}

/// Which tensors transformers quantizes: the weights of nn.Linear layers, i.e. 2-D
/// `*.weight` tensors other than the embeddings and `lm_head`.
fn is_linear_weight(name: &str, v: &safetensors::tensor::TensorView<'_>) -> bool {
    v.shape().len() == 2
        && is_float(v.dtype())
        && name.ends_with(".weight")
        && !name.contains("embed_tokens")
        && !name.contains("lm_head")
}

fn run_model(args: &Args, dir: &Path, config: QuantConfig) -> Result<()> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("{}: cannot read", cfg_path.display()))?;
    let mut cfg: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", cfg_path.display()))?;
    let obj = cfg
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: not a JSON object", cfg_path.display()))?;
    if obj.contains_key("quantization_config") {
        bail!(
            "{}: field `quantization_config`: the model is already quantized",
            cfg_path.display()
        );
    }
    let dq = config.double_quant;
    obj.insert(
        "quantization_config".to_string(),
        serde_json::json!({
            "_load_in_4bit": true,
            "_load_in_8bit": false,
            "bnb_4bit_compute_dtype": args.compute_dtype,
            "bnb_4bit_quant_storage": "uint8",
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": dq,
            "llm_int8_enable_fp32_cpu_offload": false,
            "llm_int8_has_fp16_weight": false,
            "llm_int8_skip_modules": null,
            "llm_int8_threshold": 6.0,
            "load_in_4bit": true,
            "load_in_8bit": false,
            "quant_method": "bitsandbytes"
        }),
    );
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create", args.output.display()))?;

    // Shards: model.safetensors, or the files named by model.safetensors.index.json.
    let index = dir.join("model.safetensors.index.json");
    let shards: Vec<String> = if index.exists() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("{}: cannot read", index.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| anyhow::anyhow!("{}: field `weight_map` missing", index.display()))?;
        let mut s: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(String::from))
            .collect();
        s.sort();
        s.dedup();
        s
    } else {
        vec!["model.safetensors".to_string()]
    };
    let mut weight_map = serde_json::Map::new();
    for shard in &shards {
        let path = dir.join(shard);
        let map = mmap(&path)?;
        let st = parse_safetensors(&map, &path.display().to_string())?;
        let tensors = quantize_tensors(&st, &is_linear_weight, config, &path)?;
        for (k, _) in &tensors {
            weight_map.insert(k.clone(), serde_json::Value::String(shard.clone()));
        }
        let meta = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
        write_atomic(&args.output.join(shard), &tensors, meta)?;
    }
    if shards.len() > 1 || index.exists() {
        let idx = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        write_text_atomic(
            &args.output.join("model.safetensors.index.json"),
            &serde_json::to_string_pretty(&idx)?,
        )?;
    }
    write_text_atomic(
        &args.output.join("config.json"),
        &serde_json::to_string_pretty(&cfg)?,
    )?;
    // Tokenizer and generation files are copied unchanged.
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type()?.is_file()
            && name != "config.json"
            && !name.ends_with(".safetensors")
            && name != "model.safetensors.index.json"
        {
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("{}: cannot read", entry.path().display()))?;
            write_bytes_atomic(&args.output.join(&name), &bytes)?;
        }
    }
    Ok(())
}

fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))?;
    Ok(())
}

fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    write_bytes_atomic(path, text.as_bytes())
}

fn main() {
    env_logger::init();
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("quantize: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let config = QuantConfig {
        blocksize: Blocksize::new(args.blocksize).context("--blocksize")?,
        double_quant: !args.no_double_quant,
    };
    match (&args.model, &args.input) {
        (Some(dir), None) => {
            // A failed run leaves no half-written checkpoint directory behind.
            let created = !args.output.exists();
            let result = run_model(args, dir, config);
            if result.is_err() && created && args.output.is_dir() {
                let _ = std::fs::remove_dir_all(&args.output);
            }
            result
        }
        (None, Some(input)) => run_file(args, input, config),
        _ => bail!("give either --input FILE or --model DIR"),
    }
}
