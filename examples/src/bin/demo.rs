//! `demo`: the main job. Pre-trains a tiny LLaMA on synthetic radiation-oncology text,
//! quantizes it to NF4, QLoRA-fine-tunes it on the four tasks and compares base and
//! fine-tuned models on held-out cases; writes OUT/report.md, OUT/metrics.json and SVG plots.
//!
//! See `demo --help` and the `ro_examples::demo` module.

use clap::Parser;
use ro_examples::demo::{run, DemoArgs, RunConfig};

/// Every heap block 64-byte aligned: CPU training is then bit-for-bit reproducible (see
/// `ro_examples::aligned_alloc`), so two runs with the same --seed write the same metrics.json.
#[global_allocator]
static ALLOC: ro_examples::aligned_alloc::Aligned = ro_examples::aligned_alloc::Aligned;

fn main() {
    // Training frees and reallocates MiB-sized buffers every operation: keep them in the heap.
    ro_examples::aligned_alloc::retain_freed_memory();
    env_logger::init();
    let args = DemoArgs::parse();
    let result = RunConfig::from_args(&args).and_then(|config| run(&config));
    match result {
        Ok(files) => {
            println!("report: {}", files.report.display());
            println!("metrics: {}", files.metrics.display());
            for p in &files.plots {
                println!("plot: {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("demo: {e:#}");
            std::process::exit(1);
        }
    }
}
