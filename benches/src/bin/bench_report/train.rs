//! `bench-report --train`: QLoRA training steps, dense vs 4-bit base, with and without
//! gradient checkpointing, each configuration in its own child process (`--train-child`) so
//! that the peak RSS it reports is its own and not the high-water mark of an earlier one.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::FloatDType;
use burn_autodiff::Autodiff;
use llama_model::{Llama, LlamaConfig, ModelPreset, RandomInit};
use qlora_core::train::{CausalLm, Example, TrainConfig, Trainer};
use qlora_core::{
    train::CheckpointedAutodiff, train::CheckpointingBackend, LoraConfig, OptimizerKind,
    QuantConfig, TargetModule,
};

use super::{gib, peak_rss, Args, Device};

/// Sequences per step.
const BATCH: usize = 2;

/// One training configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Which {
    nf4: bool,
    gc: bool,
}

impl Which {
    /// The four configurations, in table order.
    pub const ALL: [Which; 4] = [
        Which {
            nf4: false,
            gc: false,
        },
        Which {
            nf4: false,
            gc: true,
        },
        Which {
            nf4: true,
            gc: false,
        },
        Which {
            nf4: true,
            gc: true,
        },
    ];

    /// `dense|nf4:gc|nogc`.
    pub fn parse(s: &str) -> Result<Self> {
        let (base, gc) = s
            .split_once(':')
            .with_context(|| format!("--train-child {s}: expected BASE:GC"))?;
        let nf4 = match base {
            "dense" => false,
            "nf4" => true,
            other => bail!("--train-child: unknown base `{other}` (dense, nf4)"),
        };
        let gc = match gc {
            "gc" => true,
            "nogc" => false,
            other => bail!("--train-child: unknown checkpointing `{other}` (gc, nogc)"),
        };
        Ok(Which { nf4, gc })
    }

    fn arg(self) -> String {
        format!(
            "{}:{}",
            if self.nf4 { "nf4" } else { "dense" },
            if self.gc { "gc" } else { "nogc" }
        )
    }

    /// A row label.
    pub fn label(self) -> String {
        format!(
            "{} base, gradient checkpointing {}",
            if self.nf4 { "NF4 (DQ)" } else { "f32" },
            if self.gc { "on" } else { "off" }
        )
    }
}

/// What one configuration measured.
#[derive(Debug, Clone, Copy)]
pub struct TrainMeasured {
    tokens_per_s: f64,
    step_s: f64,
    model_rss: Option<u64>,
    peak_rss: Option<u64>,
    /// Bytes the GPU's memory pools hold after the steps (CUDA only).
    device_bytes: Option<u64>,
    loss: f64,
}

/// The model: `--train-preset`'s shape, or the bench model (hidden 1024, 8 layers, MLP 2816,
/// GQA 16/4 heads, vocabulary 32000).
fn model_config(preset: Option<&str>) -> Result<LlamaConfig> {
    if let Some(name) = preset {
        let preset: ModelPreset = name.parse()?;
        return Ok(LlamaConfig::preset(preset)?);
    }
    let mut c = LlamaConfig::tiny(32000);
    c.hidden_size = 1024;
    c.intermediate_size = 2816;
    c.num_hidden_layers = 8;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 4;
    c.head_dim = 64;
    c.max_position_embeddings = 4096;
    Ok(c)
}

/// Runs `which` in a child process of this binary and reads its JSON line.
pub fn in_child(which: Which, args: &Args) -> Result<TrainMeasured> {
    let exe = std::env::current_exe().context("bench-report: locating its own executable")?;
    let out = Command::new(exe)
        .args(["--device", &args.device, "--train-child", &which.arg()])
        .args(["--train-seq-len", &args.train_seq_len.to_string()])
        .args(["--train-steps", &args.train_steps.to_string()])
        .args(["--train"])
        .args(
            args.train_preset
                .iter()
                .flat_map(|p| ["--train-preset".to_string(), p.clone()]),
        )
        .output()
        .context("bench-report: starting the training child process")?;
    if !out.status.success() {
        bail!(
            "training child `{}` failed: {}",
            which.arg(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .with_context(|| format!("training child `{}` printed {text:?}", which.arg()))?;
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    Ok(TrainMeasured {
        tokens_per_s: num("tokens_per_s").context("child JSON: tokens_per_s")?,
        step_s: num("step_s").context("child JSON: step_s")?,
        model_rss: num("model_rss").map(|b| b as u64),
        peak_rss: num("peak_rss").map(|b| b as u64),
        device_bytes: num("device_bytes").map(|b| b as u64),
        loss: num("loss").context("child JSON: loss")?,
    })
}

/// Measures `which` in this process: builds the model, resets the peak-RSS mark, runs one
/// warm-up and `steps` timed steps.
pub fn measure(which: Which, device: Device, args: &Args) -> Result<serde_json::Value> {
    let config = model_config(args.train_preset.as_deref())?;
    let (seq_len, steps) = (args.train_seq_len, args.train_steps);
    let run = Run {
        which,
        config: &config,
        seq_len,
        steps,
        dtype: super::compute_dtype(device),
    };
    let m = match (device, which.gc) {
        (Device::Cpu, false) => {
            measure_on::<Autodiff<burn_ndarray::NdArray<f32>>>(&run, &Default::default())?
        }
        (Device::Cpu, true) => measure_on::<CheckpointedAutodiff<burn_ndarray::NdArray<f32>>>(
            &run,
            &Default::default(),
        )?,
        (Device::Cuda(index), gc) => measure_cuda(&run, gc, index)?,
    };
    Ok(serde_json::json!({
        "tokens_per_s": m.tokens_per_s,
        "step_s": m.step_s,
        "model_rss": m.model_rss,
        "peak_rss": m.peak_rss,
        "device_bytes": m.device_bytes,
        "loss": m.loss,
    }))
}

/// What one child measures.
struct Run<'a> {
    which: Which,
    config: &'a LlamaConfig,
    seq_len: usize,
    steps: usize,
    /// Compute dtype of the frozen base and activations (bf16 on CUDA, as run_hf.py).
    dtype: FloatDType,
}

#[cfg(feature = "cuda")]
fn measure_cuda(run: &Run<'_>, gc: bool, index: usize) -> Result<TrainMeasured> {
    type C = burn_cuda::Cuda<f32, i32>;
    let dev = burn_cuda::CudaDevice::new(index);
    let mut m = if gc {
        measure_on::<CheckpointedAutodiff<C>>(run, &dev)?
    } else {
        measure_on::<Autodiff<C>>(run, &dev)?
    };
    m.device_bytes = qlora_core::quant::cube::cuda_client(index)?
        .reserved_bytes()
        .ok();
    Ok(m)
}

#[cfg(not(feature = "cuda"))]
fn measure_cuda(_: &Run<'_>, _: bool, _: usize) -> Result<TrainMeasured> {
    bail!("--device cuda: built without the cuda feature; rebuild with --features cuda")
}

fn measure_on<AB>(run: &Run<'_>, dev: &AB::Device) -> Result<TrainMeasured>
where
    AB: CheckpointingBackend,
    Llama<AB>: CausalLm<AB> + AutodiffModule<AB>,
{
    let (which, config, seq_len, steps) = (run.which, run.config, run.seq_len, run.steps);
    let vocab = config.vocab_size as u32;
    let init = RandomInit { std: 0.02, seed: 1 };
    let model = if which.nf4 {
        Llama::<AB>::random_quantized(config, &init, QuantConfig::default(), dev)?
    } else {
        Llama::<AB>::random(config, &init, dev)?
    }
    .with_dtype(run.dtype);
    let lora = LoraConfig::new(16, 32.0).with_targets(TargetModule::ALL.to_vec());
    let model = model.with_lora(&lora, 7)?;
    let train = TrainConfig {
        steps: u64::MAX,
        batch_size: BATCH,
        max_seq_len: seq_len,
        optimizer: OptimizerKind::AdamW,
        gradient_checkpointing: AB::GRADIENT_CHECKPOINTING,
        shuffle: false,
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, train, None)?;
    let data: Vec<Example> = (0..BATCH as u32)
        .map(|k| Example {
            input_ids: (0..seq_len as u32)
                .map(|i| (i * 7919 + k * 104_729) % vocab)
                .collect(),
            labels: None,
        })
        .collect();
    let model_rss = current_rss();
    // Peak RSS from here on: Linux resets VmHWM to the current RSS on "5" > clear_refs.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut loss = f64::NAN;
    let mut times = Vec::with_capacity(steps);
    for i in 0..=steps {
        let t = Instant::now();
        let next = trainer.step() + 1;
        trainer.train_until(&data, next, |m| loss = m.loss)?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let step_s = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(TrainMeasured {
        tokens_per_s: (BATCH * seq_len) as f64 / step_s,
        step_s,
        model_rss,
        peak_rss: if reset { peak_rss() } else { None },
        device_bytes: None,
        loss,
    })
}

/// Resident memory now (Linux `VmRSS`), in bytes.
fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The training table.
pub fn render(rows: &[(Which, TrainMeasured)], args: &Args) -> Result<String> {
    let params = model_config(args.train_preset.as_deref())?;
    let mut s = format!(
        "QLoRA training step, --device {}: hidden {}, {} layers, MLP {}, vocabulary {}, LoRA r16 \
         on all seven projections, AdamW, batch {BATCH} x {} tokens; each row in its own \
         process, median of {} steps after one warm-up\n\n",
        args.device,
        params.hidden_size,
        params.num_hidden_layers,
        params.intermediate_size,
        params.vocab_size,
        args.train_seq_len,
        args.train_steps,
    );
    s.push_str(
        "| base, checkpointing | tokens/s | step | RSS after model build | peak RSS while training | GPU pools after | loss |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mem = |b: Option<u64>| b.map_or("-".to_string(), |b| gib(b as f64));
    for (which, m) in rows {
        s.push_str(&format!(
            "| {} | {:.1} | {:.2} s | {} | {} | {} | {:.4} |\n",
            which.label(),
            m.tokens_per_s,
            m.step_s,
            mem(m.model_rss),
            mem(m.peak_rss),
            mem(m.device_bytes),
            m.loss,
        ));
    }
    Ok(s)
}
