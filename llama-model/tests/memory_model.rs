//! `activation_elements_per_token` and `transient_elements` against what a training step
//! really allocates: a counting
//! global allocator records the live heap bytes of one forward + loss + backward of a QLoRA
//! model (NF4 base, r 16 on all seven projections) on burn-ndarray's autodiff, and the peak
//! above the bytes live before the forward must lie within 15% of the estimate's activations,
//! with and without gradient checkpointing and LoRA dropout, over shapes that vary each
//! dimension the estimate uses (hidden, intermediate, layers, heads, key-value heads, vocab,
//! batch, sequence length). This measures the allocator, not RSS: it checks the model of the
//! autodiff graph; examples/tests/memory_estimate.rs checks whole runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use burn_autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use llama_model::memory::{activation_elements_per_token, transient_elements, MemoryTarget};
use llama_model::{load_pretrained, save_pretrained, Llama, LlamaConfig, LoadOptions, RandomInit};
use qlora_core::train::{causal_lm_loss_sum, collate, CausalLm, CheckpointingBackend, Example};
use qlora_core::{LoraConfig, TargetModule};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let now = LIVE.fetch_add(n, SeqCst) + n;
    PEAK.fetch_max(now, SeqCst);
}

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grow(l.size());
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grow(l.size());
        // SAFETY: as the caller's contract.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), SeqCst);
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new >= l.size() {
            grow(new - l.size());
        } else {
            LIVE.fetch_sub(l.size() - new, SeqCst);
        }
        // SAFETY: as the caller's contract.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// hidden, intermediate, layers, heads, kv heads, vocab (head_dim = hidden / heads).
fn config([h, i, l, nh, nkv, v]: [usize; 6]) -> LlamaConfig {
    LlamaConfig {
        vocab_size: v,
        hidden_size: h,
        intermediate_size: i,
        num_hidden_layers: l,
        num_attention_heads: nh,
        num_key_value_heads: nkv,
        head_dim: h / nh,
        max_position_embeddings: 1024,
        ..LlamaConfig::tiny(v)
    }
}

/// Peak live bytes of one forward + loss + backward above those live before it.
fn step_peak<AB: CheckpointingBackend>(
    cfg: &LlamaConfig,
    batch: usize,
    seq: usize,
    dropout: f64,
) -> usize {
    let dev = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let dense =
        Llama::<NdArray<f32>>::random(cfg, &RandomInit::default(), &Default::default()).unwrap();
    save_pretrained(&dense, dir.path()).unwrap();
    drop(dense);
    let four_bit = LoadOptions {
        load_in_4bit: true,
        ..Default::default()
    };
    let model = load_pretrained::<AB>(dir.path(), &four_bit, &dev).unwrap();
    let lora = LoraConfig::new(16, 32.0)
        .with_dropout(dropout)
        .with_targets(TargetModule::ALL.to_vec());
    let model = model.with_lora(&lora, 1).unwrap();
    let data: Vec<Example> = (0..batch)
        .map(|k| Example {
            input_ids: (0..seq)
                .map(|t| ((t * 7 + k) % (cfg.vocab_size - 3) + 3) as u32)
                .collect(),
            labels: None,
        })
        .collect();
    let refs: Vec<&Example> = data.iter().collect();
    let b = collate::<AB>(&refs, 0, &dev);
    let before = LIVE.load(SeqCst);
    PEAK.store(before, SeqCst);
    let logits = model.logits(b.input_ids, b.attention_mask).unwrap();
    let grads = causal_lm_loss_sum(logits, b.labels).backward();
    let peak = PEAK.load(SeqCst) - before;
    drop(grads);
    peak
}

#[test]
fn activations_estimate_is_within_15_percent_of_allocated_peak() {
    type Plain = Autodiff<NdArray<f32>>;
    type Checkpointed = Autodiff<NdArray<f32>, BalancedCheckpointing>;
    let cases = [
        ([256, 512, 2, 4, 2, 1000], 2, 128),
        ([256, 512, 2, 4, 2, 4000], 2, 128),
        ([256, 512, 4, 4, 2, 1000], 2, 128),
        ([512, 512, 2, 8, 4, 1000], 2, 128),
        ([256, 2048, 2, 4, 2, 1000], 2, 128),
        ([256, 512, 2, 4, 2, 1000], 1, 512),
        ([256, 512, 2, 8, 8, 1000], 4, 128),
        // The lm_head's backward (the vocabulary's weight copied twice) is the peak...
        ([512, 1376, 4, 8, 4, 16000], 1, 64),
        // ... and with many tokens against a small hidden size, the loss's three buffers.
        ([128, 256, 1, 4, 2, 8000], 2, 512),
    ];
    let host = MemoryTarget::Host {
        checkpoint_bytes: 0,
    };
    let mut report = Vec::new();
    let mut worst = 0f64;
    for (k, (shape, batch, seq)) in cases.into_iter().enumerate() {
        let cfg = config(shape);
        // Alternate dropout and checkpointing over the shapes to keep the test short.
        for checkpointing in [false, true] {
            let dropout = (k + checkpointing as usize) % 2 == 1;
            let p = if dropout { 0.05 } else { 0.0 };
            let measured = if checkpointing {
                step_peak::<Checkpointed>(&cfg, batch, seq, p)
            } else {
                step_peak::<Plain>(&cfg, batch, seq, p)
            };
            let per_token = activation_elements_per_token(
                &cfg,
                16,
                &TargetModule::ALL,
                seq,
                dropout,
                checkpointing,
            );
            let elements = (batch * seq) as u64 * per_token
                + transient_elements(&cfg, batch * seq, checkpointing, host);
            let estimate = elements as f64 * 4.0;
            let err = estimate / measured as f64 - 1.0;
            worst = worst.max(err.abs());
            report.push(format!(
                "{shape:?} batch {batch} seq {seq} dropout {dropout} checkpointing {checkpointing}: \
                 measured {:.2} MiB, estimate {:.2} MiB ({:+.1}%)",
                measured as f64 / 1048576.0,
                estimate / 1048576.0,
                100.0 * err
            ));
        }
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(worst <= 0.15, "activations off by more than 15%:\n{report}");
}
