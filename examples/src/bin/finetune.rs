//! `finetune`: QLoRA fine-tuning of a LLaMA checkpoint on a radiation-oncology task (or on
//! pre-tokenized data). Writes a PEFT adapter, checkpoints and `metrics.jsonl` into
//! `--output`; see `finetune --help` and `ro_examples::finetune`.

use clap::Parser;
use llama_model::memory::format_gib;
use ro_examples::finetune::{run, FinetuneArgs};

fn main() {
    // Training frees and reallocates MiB-sized buffers every operation: keep them in the heap.
    ro_examples::aligned_alloc::retain_freed_memory();
    env_logger::init();
    let args = FinetuneArgs::parse();
    match run(&args) {
        Ok(s) => {
            if !args.quiet {
                let losses = s
                    .losses
                    .map(|(a, b)| format!(", loss {a:.4} -> {b:.4}"))
                    .unwrap_or_default();
                let eval = s
                    .eval_loss
                    .map(|l| format!(", eval loss {l:.4}"))
                    .unwrap_or_default();
                eprintln!(
                    "finetune: steps {}..{} of {} in {:.1}s{losses}{eval}; estimated memory {}; adapter in {}",
                    s.start_step,
                    s.end_step,
                    s.total_steps,
                    s.train_seconds,
                    format_gib(s.memory.total()),
                    args.output.display()
                );
            }
        }
        Err(e) => {
            eprintln!("finetune: error: {e:#}");
            std::process::exit(1);
        }
    }
}
