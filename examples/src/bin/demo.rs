//! The main job: an end-to-end QLoRA demo on synthetic radiation-oncology data.
//!
//! Not implemented yet: this binary explains what it will do and exits non-zero.

fn main() {
    eprintln!(
        "demo: not implemented yet.\n\
         It will generate synthetic radiation-oncology cases, pre-train a tiny LLaMA, quantize it \
         to NF4, QLoRA-fine-tune it on the four tasks, compare base and fine-tuned models and \
         write demo-output/report.md."
    );
    std::process::exit(2);
}
