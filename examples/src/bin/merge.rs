//! `merge`: fold a PEFT LoRA adapter into its base model and write a full-precision Hugging
//! Face checkpoint (what peft's `merge_and_unload()` + `save_pretrained` give).
//!
//! The output directory is built as a temporary directory next to it and renamed into place
//! at the end, so it is either complete or absent.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn_ndarray::NdArray;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use llama_model::{load_adapter, load_pretrained, save_pretrained_as, LoadOptions, SaveDtype};
use ro_examples::finetune::base::name_adapter_file;

type Backend = NdArray<f32>;

/// Files of the model directory copied to the output when present (tokenizer, chat template
/// and generation settings), so the merged directory is usable on its own.
const COPIED_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "generation_config.json",
];

/// Merge a PEFT LoRA adapter into its base LLaMA model and save a full-precision Hugging
/// Face checkpoint (config.json without quantization_config + model.safetensors).
///
/// Every adapted projection becomes W + (lora_alpha / r) · B·A (rsLoRA: alpha / sqrt(r));
/// a bitsandbytes 4-bit base is dequantized first. Runs on the CPU.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Base model directory (config.json + model.safetensors or a sharded index; a
    /// bitsandbytes 4-bit checkpoint is dequantized).
    #[arg(long)]
    model: PathBuf,
    /// PEFT adapter directory (adapter_config.json + adapter_model.safetensors) trained on
    /// that model.
    #[arg(long)]
    adapter: PathBuf,
    /// Output directory for the merged checkpoint; must not exist yet unless --force.
    #[arg(long)]
    output: PathBuf,
    /// Storage dtype of the merged weights (the merge itself is computed in f32).
    #[arg(long, default_value = "f32", value_parser = parse_dtype, value_name = "f32|f16|bf16")]
    dtype: SaveDtype,
    /// Replace an existing output directory.
    #[arg(long)]
    force: bool,
}

fn parse_dtype(s: &str) -> std::result::Result<SaveDtype, String> {
    s.parse()
        .map_err(|e: llama_model::LlamaError| e.to_string())
}

fn main() {
    env_logger::init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("merge: error: {e:#}");
        std::process::exit(1);
    }
}

/// The temporary directory the output is built in: a hidden sibling of `output`.
fn temp_sibling(output: &Path) -> Result<PathBuf> {
    let name = output
        .file_name()
        .with_context(|| format!("--output {}: needs a directory name", output.display()))?;
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "--output {}: parent directory {} does not exist",
            output.display(),
            parent.display()
        );
    }
    Ok(parent.join(format!(
        ".{}.merge-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn run(args: Args) -> Result<()> {
    for (flag, dir) in [("--model", &args.model), ("--adapter", &args.adapter)] {
        if !dir.is_dir() {
            bail!("{flag} {}: not a directory", dir.display());
        }
    }
    if args.output.exists() && !args.force {
        bail!(
            "--output {}: already exists (pass --force to replace it)",
            args.output.display()
        );
    }
    let tmp = temp_sibling(&args.output)?;
    let _ = std::fs::remove_dir_all(&tmp);
    let result = build(&args, &tmp);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Moves the finished `tmp` to `output`. An existing `output` (--force) is first renamed
/// aside and deleted only once the new one is in place, so that a failure at any point
/// leaves either the old or the new checkpoint under the name, never neither.
fn replace_dir(tmp: &Path, output: &Path) -> Result<()> {
    if !output.exists() {
        return std::fs::rename(tmp, output)
            .with_context(|| format!("moving the result to {}", output.display()));
    }
    let mut old_name = tmp.file_name().unwrap_or_default().to_os_string();
    old_name.push(".old");
    let old = tmp.with_file_name(old_name);
    let _ = std::fs::remove_dir_all(&old);
    std::fs::rename(output, &old)
        .with_context(|| format!("--force: moving {} aside", output.display()))?;
    if let Err(e) = std::fs::rename(tmp, output) {
        // Put the old checkpoint back under its name.
        let _ = std::fs::rename(&old, output);
        return Err(e).with_context(|| format!("moving the result to {}", output.display()));
    }
    std::fs::remove_dir_all(&old)
        .with_context(|| format!("--force: removing the replaced {}", old.display()))
}

fn build(args: &Args, tmp: &Path) -> Result<()> {
    let bar = ProgressBar::new(4).with_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let device = Default::default();

    bar.set_message(format!("loading {}", args.model.display()));
    let model = load_pretrained::<Backend>(&args.model, &LoadOptions::default(), &device)
        .with_context(|| format!("--model {}", args.model.display()))?;
    bar.inc(1);

    bar.set_message(format!("loading adapter {}", args.adapter.display()));
    let model = load_adapter(model, &args.adapter)
        .map_err(|e| name_adapter_file(&args.adapter, e))
        .context("--adapter")?;
    bar.inc(1);

    bar.set_message("merging");
    let merged = model
        .merge_lora()
        .with_context(|| format!("merging --adapter {}", args.adapter.display()))?;
    bar.inc(1);

    bar.set_message(format!("writing {} weights", args.dtype.hf_name()));
    save_pretrained_as(&merged, tmp, args.dtype)
        .with_context(|| format!("writing {}", tmp.display()))?;
    for name in COPIED_FILES {
        let src = args.model.join(name);
        if src.is_file() {
            std::fs::copy(&src, tmp.join(name))
                .with_context(|| format!("copying {}", src.display()))?;
        }
    }
    replace_dir(tmp, &args.output)?;
    bar.inc(1);
    bar.finish_and_clear();
    log::info!("merged checkpoint written to {}", args.output.display());
    eprintln!("merge: wrote {}", args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_dir_swaps_in_the_new_checkpoint_and_leaves_nothing_aside() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("merged");
        let tmp = temp_sibling(&out).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("model.safetensors"), b"new").unwrap();
        // No output yet: a plain rename.
        replace_dir(&tmp, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            b"new"
        );
        // --force over an existing output.
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("model.safetensors"), b"newer").unwrap();
        replace_dir(&tmp, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            b"newer"
        );
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("merged")]);
    }
}
