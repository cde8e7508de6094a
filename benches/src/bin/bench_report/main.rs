//! `bench-report`: measures our NF4 kernels and LLaMA decode at the shapes of
//! `../shared/ANCHORS.md` and prints a Markdown table `shape | ours | HF | ratio | memory`
//! next to transformers + peft + bitsandbytes.
//!
//! The HF column is the anchor table (measured on one H100) unless `--hf FILE` gives the JSON
//! that `tools/anchor/run_hf.py` wrote on the same machine, which is the side-by-side
//! comparison. `ratio` is always "how many times better ours is" (HF time / our time, or our
//! tokens/s / HF tokens/s). Rows this tool cannot measure yet print `-` in `ours`.
//!
//! ```text
//! bench-report --device cpu                 # NF4 kernels on the CPU
//! bench-report --device cuda --decode --hf hf.json
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod train;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor, TensorData};
use clap::Parser;
use half::bf16;
use llama_model::{generate, GenerationConfig, Llama, LlamaConfig, ModelPreset, RandomInit};
use qlora_core::{Blocksize, Nf4Linear, QuantConfig, QuantState};

/// Side-by-side table of our NF4 kernels and decode against transformers + peft +
/// bitsandbytes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to run ours: cpu, or cuda[:N] (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// JSON written by tools/anchor/run_hf.py on this machine (default: the H100 numbers of
    /// ANCHORS.md).
    #[arg(long)]
    hf: Option<PathBuf>,
    /// Timed repetitions per kernel (the median is reported).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Also time greedy decode of randomly initialised 4-bit models (Llama-3.2-1B shape; with
    /// --decode-8b also Llama-3-8B): NF4 projections, f32 embeddings and head.
    #[arg(long)]
    decode: bool,
    /// Include the Llama-3-8B decode row (with --decode).
    #[arg(long, requires = "decode")]
    decode_8b: bool,
    /// New tokens per decode measurement.
    #[arg(long, default_value_t = 16)]
    decode_tokens: usize,
    /// Also measure QLoRA training steps (a second table): dense vs 4-bit base, with and
    /// without gradient checkpointing, each in its own process so that its peak RSS is its own.
    /// Model: hidden 1024, 8 layers, MLP 2816, GQA 16/4 heads, vocabulary 32000 (95 M
    /// parameters), LoRA r16 on all seven projections, AdamW, batch 2.
    #[arg(long)]
    train: bool,
    /// Tokens per sequence in the --train measurement (batch 2).
    #[arg(long, default_value_t = 256)]
    train_seq_len: usize,
    /// The --train model: a preset of a public checkpoint's shape (llama3-8b, llama2-13b,
    /// llama3.2-1b; random weights), instead of the 95 M-parameter bench model.
    #[arg(long, value_name = "PRESET", requires = "train")]
    train_preset: Option<String>,
    /// The --train configurations to measure, comma-separated `dense|nf4:gc|nogc` (default:
    /// all four).
    #[arg(
        long,
        value_name = "BASE:GC,..",
        value_delimiter = ',',
        requires = "train"
    )]
    train_configs: Option<Vec<String>>,
    /// Timed --train steps per configuration (after one warm-up step; the median is reported).
    #[arg(long, default_value_t = 3)]
    train_steps: usize,
    /// Internal: measure one training configuration (`dense|nf4` `:` `gc|nogc`) in this
    /// process and print its numbers as JSON (how --train isolates peak memory).
    #[arg(long, hide = true)]
    train_child: Option<String>,
}

/// How a number reads: a time (lower is better) or a rate (higher is better).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Millis,
    Micros,
    Seconds,
    TokensPerSec,
}

impl Unit {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "ms" => Unit::Millis,
            "us" => Unit::Micros,
            "s" => Unit::Seconds,
            "tok/s" => Unit::TokensPerSec,
            other => bail!("unknown unit `{other}` (ms, us, s, tok/s)"),
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Micros => "us",
            Unit::Seconds => "s",
            Unit::TokensPerSec => "tok/s",
        }
    }

    fn of(self, d: Duration) -> f64 {
        match self {
            Unit::Millis => d.as_secs_f64() * 1e3,
            Unit::Micros => d.as_secs_f64() * 1e6,
            Unit::Seconds => d.as_secs_f64(),
            Unit::TokensPerSec => 1.0 / d.as_secs_f64().max(1e-12),
        }
    }
}

/// One HF number.
#[derive(Debug, Clone, Copy)]
struct Hf {
    value: f64,
    unit: Unit,
    memory_gib: Option<f64>,
}

/// A row of the report: an anchor key, its shape, and the numbers.
struct Row {
    key: &'static str,
    shape: &'static str,
    unit: Unit,
    ours: Option<f64>,
    memory: Option<String>,
    note: Option<String>,
}

/// The rows of ANCHORS.md ("Measured reference", one H100 80GB, transformers 5.17 + peft 0.21
/// + bitsandbytes 0.50.2, torch 2.11, bf16): key, shape, value, unit, peak memory GiB.
const ANCHORS: &[(&str, &str, f64, Unit, Option<f64>)] = &[
    (
        "dequant_plain",
        "NF4 dequantize 4096x14336 -> bf16",
        0.106,
        Unit::Millis,
        None,
    ),
    (
        "dequant_dq",
        "NF4 dequantize 4096x14336 -> bf16, double quant",
        0.145,
        Unit::Millis,
        None,
    ),
    (
        "quant_plain",
        "NF4 quantize 4096x14336 bf16",
        0.74,
        Unit::Millis,
        None,
    ),
    (
        "quant_dq",
        "NF4 quantize 4096x14336 bf16, double quant",
        0.80,
        Unit::Millis,
        None,
    ),
    (
        "matmul4_2048",
        "4-bit matmul 2048 x 4096 -> 14336",
        0.49,
        Unit::Millis,
        None,
    ),
    (
        "gemv_plain",
        "4-bit GEMV 1 x 4096 -> 14336",
        78.0,
        Unit::Micros,
        None,
    ),
    (
        "gemv_dq",
        "4-bit GEMV 1 x 4096 -> 14336, double quant",
        100.0,
        Unit::Micros,
        None,
    ),
    (
        "train_8b",
        "Llama-3-8B QLoRA r16, GC, paged AdamW, 2 x 1024",
        2522.0,
        Unit::TokensPerSec,
        Some(12.65),
    ),
    (
        "load_quant_8b",
        "Llama-3-8B load + quantize NF4 (DQ)",
        2.5,
        Unit::Seconds,
        Some(5.35),
    ),
    (
        "decode_8b",
        "Llama-3-8B greedy decode, batch 1",
        9.2,
        Unit::TokensPerSec,
        None,
    ),
    (
        "prefill_8b",
        "Llama-3-8B prefill 512 tokens (4-bit)",
        84.0,
        Unit::Millis,
        None,
    ),
    (
        "train_1b",
        "Llama-3.2-1B QLoRA r16, GC, 2 x 1024",
        5052.0,
        Unit::TokensPerSec,
        Some(9.3),
    ),
    (
        "decode_1b",
        "Llama-3.2-1B greedy decode, batch 1",
        11.4,
        Unit::TokensPerSec,
        None,
    ),
];

const ROWS: usize = 4096;
const COLS: usize = 14336;

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("bench-report: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let device = Device::parse(&args.device)?;
    if let Some(which) = &args.train_child {
        let which = train::Which::parse(which)?;
        let m = train::measure(which, device, &args)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let hf = hf_numbers(args.hf.as_ref())?;
    let mut rows: Vec<Row> = ANCHORS
        .iter()
        .map(|&(key, shape, _, unit, _)| Row {
            key,
            shape,
            unit,
            ours: None,
            memory: None,
            note: None,
        })
        .collect();
    eprintln!(
        "bench-report: NF4 kernels at {ROWS}x{COLS} on {}",
        args.device
    );
    let measured = match device {
        Device::Cpu => cpu_kernels(args.iters.max(1))?,
        Device::Cuda(index) => cuda_kernels(index, args.iters.max(1))?,
    };
    if args.decode {
        let mut presets = vec![("decode_1b", ModelPreset::Llama3_2_1B)];
        if args.decode_8b {
            presets.push(("decode_8b", ModelPreset::Llama3_8B));
        }
        for (key, preset) in presets {
            eprintln!(
                "bench-report: decode {preset} ({} tokens)",
                args.decode_tokens
            );
            let m = match device {
                Device::Cpu => decode::<burn_ndarray::NdArray<f32>>(
                    preset,
                    args.decode_tokens,
                    compute_dtype(device),
                    &Default::default(),
                )?,
                Device::Cuda(index) => decode_cuda(preset, args.decode_tokens, index)?,
            };
            set(&mut rows, key, m);
        }
    }
    for (key, m) in measured {
        set(&mut rows, key, m);
    }
    print!("{}", render(&rows, &hf, &args));
    if args.train {
        let mut table = Vec::new();
        let configs = match &args.train_configs {
            Some(list) => list
                .iter()
                .map(|w| train::Which::parse(w))
                .collect::<Result<Vec<_>>>()?,
            None => train::Which::ALL.to_vec(),
        };
        for which in configs {
            eprintln!("bench-report: training step, {}", which.label());
            table.push((which, train::in_child(which, &args)?));
        }
        print!("\n{}", train::render(&table, &args)?);
    }
    Ok(())
}

/// One measurement: value in the row's unit, memory, note.
struct Measured {
    value: f64,
    memory: Option<String>,
    note: Option<String>,
}

fn set(rows: &mut [Row], key: &str, m: Measured) {
    if let Some(r) = rows.iter_mut().find(|r| r.key == key) {
        r.ours = Some(m.value);
        r.memory = m.memory;
        r.note = m.note;
    }
}

/// `--device`: `cpu` or `cuda[:N]`.
#[derive(Debug, Clone, Copy)]
enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => Ok(Device::Cuda(n)),
                None => bail!("--device {s}: expected cpu, cuda or cuda:N"),
            },
        }
    }
}

/// The HF column: run_hf.py's JSON when given, else the anchors.
fn hf_numbers(path: Option<&PathBuf>) -> Result<BTreeMap<String, Hf>> {
    let mut out: BTreeMap<String, Hf> = ANCHORS
        .iter()
        .map(|&(key, _, value, unit, memory_gib)| {
            (
                key.to_string(),
                Hf {
                    value,
                    unit,
                    memory_gib,
                },
            )
        })
        .collect();
    let Some(path) = path else {
        return Ok(out);
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("--hf {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--hf {}: invalid JSON", path.display()))?;
    let rows = json
        .get("rows")
        .and_then(|r| r.as_object())
        .with_context(|| format!("--hf {}: no object field `rows`", path.display()))?;
    for (key, row) in rows {
        let value = row.get("value").and_then(|v| v.as_f64()).with_context(|| {
            format!("--hf {}: rows.{key}.value is not a number", path.display())
        })?;
        let unit = row
            .get("unit")
            .and_then(|v| v.as_str())
            .with_context(|| format!("--hf {}: rows.{key}.unit missing", path.display()))?;
        let unit = Unit::parse(unit)
            .with_context(|| format!("--hf {}: rows.{key}.unit", path.display()))?;
        let memory_gib = row.get("memory_gib").and_then(|v| v.as_f64());
        out.insert(
            key.clone(),
            Hf {
                value,
                unit,
                memory_gib,
            },
        );
    }
    Ok(out)
}

/// The Markdown table.
fn render(rows: &[Row], hf: &BTreeMap<String, Hf>, args: &Args) -> String {
    let mut s = String::new();
    let source = match &args.hf {
        Some(p) => format!("HF: {} (same machine)", p.display()),
        None => "HF: ANCHORS.md (one H100 80GB; not this machine)".to_string(),
    };
    s.push_str(&format!("ours: --device {}; {source}\n\n", args.device));
    s.push_str("| shape | ours | HF | ratio | memory |\n| --- | --- | --- | --- | --- |\n");
    for r in rows {
        let hf_row = hf.get(r.key);
        let ours = r.ours.map_or("-".to_string(), |v| {
            format!("{} {}", fmt_num(v), r.unit.suffix())
        });
        let hf_cell = hf_row.map_or("-".to_string(), |h| {
            format!("{} {}", fmt_num(h.value), h.unit.suffix())
        });
        let ratio = match (r.ours, hf_row) {
            (Some(o), Some(h)) if h.unit == r.unit && o > 0.0 => {
                let x = if r.unit == Unit::TokensPerSec {
                    o / h.value
                } else {
                    h.value / o
                };
                format!("{x:.2}x")
            }
            _ => "-".to_string(),
        };
        let mut memory = r.memory.clone().unwrap_or_else(|| "-".to_string());
        if let Some(m) = hf_row.and_then(|h| h.memory_gib) {
            memory = format!("{memory} (HF {m} GiB)");
        }
        let shape = match &r.note {
            Some(n) => format!("{} ({n})", r.shape),
            None => r.shape.to_string(),
        };
        s.push_str(&format!(
            "| {shape} | {ours} | {hf_cell} | {ratio} | {memory} |\n"
        ));
    }
    s
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Median wall time of `iters` runs of `f` (after one warm-up run).
fn median_time(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// A deterministic pseudo-normal bf16 weight (xorshift), as the criterion nf4 bench.
fn matrix(rows: usize, cols: usize) -> Vec<bf16> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..rows * cols)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            bf16::from_f32((u - 0.5) * 0.08)
        })
        .collect()
}

fn config(dq: bool) -> QuantConfig {
    QuantConfig {
        blocksize: Blocksize::default(),
        double_quant: dq,
    }
}

fn gib(bytes: f64) -> String {
    format!("{:.3} GiB", bytes / (1u64 << 30) as f64)
}

/// Effective bandwidth of a dequantization: packed input plus bf16 output.
fn dequant_tb_s(d: Duration) -> String {
    let bytes = (ROWS * COLS / 2 + ROWS * COLS * 2) as f64;
    format!("{:.3} TB/s effective", bytes / d.as_secs_f64() / 1e12)
}

/// The kernels on the CPU: the library's fast multi-threaded quantize/dequantize, and the
/// 4-bit linear forward (`Nf4Linear` on burn-ndarray) for the GEMV row.
fn cpu_kernels(iters: usize) -> Result<Vec<(&'static str, Measured)>> {
    let w = matrix(ROWS, COLS);
    let mut out = Vec::new();
    for dq in [false, true] {
        let tag = if dq { "dq" } else { "plain" };
        let d = median_time(iters, || {
            black_box(QuantState::quantize(
                black_box(&w),
                &[ROWS, COLS],
                config(dq),
            )?);
            Ok(())
        })?;
        out.push((
            if dq { "quant_dq" } else { "quant_plain" },
            Measured {
                value: Unit::Millis.of(d),
                memory: None,
                note: Some(format!("CPU {tag}")),
            },
        ));
        let q = QuantState::quantize(&w, &[ROWS, COLS], config(dq))?;
        let mut buf = vec![bf16::ZERO; ROWS * COLS];
        let d = median_time(iters, || {
            q.dequantize_into(black_box(&mut buf))?;
            Ok(())
        })?;
        out.push((
            if dq { "dequant_dq" } else { "dequant_plain" },
            Measured {
                value: Unit::Millis.of(d),
                memory: Some(format!("{:.1} MB packed", q.packed().len() as f64 / 1e6)),
                note: Some(dequant_tb_s(d)),
            },
        ));
        // GEMV: out = 14336, in = 4096.
        let wt = QuantState::quantize(&matrix(COLS, ROWS), &[COLS, ROWS], config(dq))?;
        let layer = Nf4Linear::<burn_ndarray::NdArray<f32>>::from_quant_state(
            wt,
            None,
            &Default::default(),
        )?;
        let x = Tensor::<burn_ndarray::NdArray<f32>, 2>::from_data(
            TensorData::new(vec![0.01f32; ROWS], [1, ROWS]),
            &Default::default(),
        );
        let d = median_time(iters.min(5), || {
            let y = layer.forward(x.clone());
            black_box(y.into_data());
            Ok(())
        })?;
        out.push((
            if dq { "gemv_dq" } else { "gemv_plain" },
            Measured {
                value: Unit::Micros.of(d),
                memory: None,
                note: Some("CPU Nf4Linear forward".to_string()),
            },
        ));
    }
    Ok(out)
}

#[cfg(feature = "cuda")]
fn cuda_kernels(index: usize, iters: usize) -> Result<Vec<(&'static str, Measured)>> {
    use qlora_core::quant::cube::cuda_client;
    let gpu = cuda_client(index)?;
    let w = matrix(ROWS, COLS);
    let mut out = Vec::new();
    let input = gpu.upload_values(&w);
    for dq in [false, true] {
        // Quantize: the blockwise kernel on device data (+ host double quant of absmax when
        // dq, as in `CubeNf4::quantize`).
        let d = median_time(iters, || {
            let (_packed, absmax) =
                gpu.quantize_device::<bf16>(&input, ROWS * COLS, Blocksize::default())?;
            if dq {
                let a: Vec<f32> = gpu.read(absmax, ROWS * COLS / 64, "absmax")?;
                black_box(qlora_core::quant::DoubleQuant::compress(&a));
            }
            gpu.sync()?;
            Ok(())
        })?;
        out.push((
            if dq { "quant_dq" } else { "quant_plain" },
            Measured {
                value: Unit::Millis.of(d),
                memory: None,
                note: dq.then(|| "DQ of absmax on host".to_string()),
            },
        ));
        let q = QuantState::quantize(&w, &[ROWS, COLS], config(dq))?;
        let dw = gpu.upload(&q)?;
        let d = median_time(iters, || {
            black_box(gpu.dequantize::<bf16>(&dw));
            gpu.sync()?;
            Ok(())
        })?;
        out.push((
            if dq { "dequant_dq" } else { "dequant_plain" },
            Measured {
                value: Unit::Millis.of(d),
                memory: Some(gib(dw.device_bytes() as f64)),
                note: Some(dequant_tb_s(d)),
            },
        ));
        let wt = QuantState::quantize(&matrix(COLS, ROWS), &[COLS, ROWS], config(dq))?;
        let dwt = gpu.upload(&wt)?;
        let x = gpu.upload_values(&vec![bf16::from_f32(0.01); ROWS]);
        let d = median_time(iters, || {
            black_box(gpu.gemv::<bf16>(&dwt, &x)?);
            gpu.sync()?;
            Ok(())
        })?;
        out.push((
            if dq { "gemv_dq" } else { "gemv_plain" },
            Measured {
                value: Unit::Micros.of(d),
                memory: Some(gib(dwt.device_bytes() as f64)),
                note: None,
            },
        ));
    }
    if let Ok(bytes) = gpu.reserved_bytes() {
        eprintln!("bench-report: cubecl pools reserve {}", gib(bytes as f64));
    }
    Ok(out)
}

#[cfg(not(feature = "cuda"))]
fn cuda_kernels(_index: usize, _iters: usize) -> Result<Vec<(&'static str, Measured)>> {
    bail!("--device cuda: built without the cuda feature; rebuild with --features cuda")
}

#[cfg(feature = "cuda")]
fn decode_cuda(preset: ModelPreset, tokens: usize, index: usize) -> Result<Measured> {
    let device = burn_cuda::CudaDevice::new(index);
    decode::<burn_cuda::Cuda<f32, i32>>(preset, tokens, compute_dtype(Device::Cuda(index)), &device)
}

#[cfg(not(feature = "cuda"))]
fn decode_cuda(_preset: ModelPreset, _tokens: usize, _index: usize) -> Result<Measured> {
    bail!("--device cuda: built without the cuda feature; rebuild with --features cuda")
}

/// The compute dtype of our rows: bf16 on CUDA (as run_hf.py's transformers rows), f32 on
/// the CPU.
fn compute_dtype(device: Device) -> FloatDType {
    match device {
        Device::Cpu => FloatDType::F32,
        Device::Cuda(_) => FloatDType::BF16,
    }
}

/// Greedy decode of a randomly initialised model of `preset`'s shape (NF4 projections,
/// embeddings and head in `dtype`):
/// tokens/s of the tokens after the first (prefill excluded).
fn decode<B: Backend>(
    preset: ModelPreset,
    tokens: usize,
    dtype: FloatDType,
    device: &B::Device,
) -> Result<Measured> {
    let config = LlamaConfig::preset(preset)?;
    let quant = QuantConfig::default();
    let model = Llama::<B>::random_quantized(&config, &RandomInit::default(), quant, device)?
        .with_dtype(dtype);
    let prompt: Vec<u32> = (0..16u32).map(|i| 1000 + i * 7).collect();
    let gen = GenerationConfig::greedy(tokens.max(2));
    let mut first = None;
    let t0 = Instant::now();
    let out = generate(&model, std::slice::from_ref(&prompt), &gen, |_| {
        first.get_or_insert_with(Instant::now);
    })?;
    let end = Instant::now();
    let n = out.first().map_or(0, Vec::len);
    let first = first.unwrap_or(t0);
    let rate = n.saturating_sub(1) as f64 / end.duration_since(first).as_secs_f64().max(1e-9);
    Ok(Measured {
        value: rate,
        memory: peak_rss().map(|b| format!("{} peak RSS", gib(b as f64))),
        note: Some(format!("NF4 DQ random weights, {n} tokens")),
    })
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
