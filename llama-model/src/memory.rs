//! How much memory a LoRA / QLoRA fine-tuning run of a [`LlamaConfig`] needs, computed from
//! the config alone (before any weight is read), so a run that cannot fit fails early.
//!
//! The run has two phases, and its peak is the larger of the two on top of what both share
//! ([`MemoryEstimate::total`]):
//!
//! - **weights**: the frozen base. Every projection (`q,k,v,o,gate,up,down` of every layer)
//!   either dense (`dense_bytes` per element) or NF4 in bitsandbytes' layout: packed codes
//!   (`ceil(n/2)` bytes), one absmax per block (4 bytes; with double quantization 1 byte plus
//!   a 4-byte nested absmax per 256 blocks, the 256-entry f32 nested map and the f32 offset),
//!   and the 16-entry f32 NF4 code table. Embeddings, RMSNorm weights and an untied `lm_head`
//!   stay dense.
//! - **program** (host only): the process itself before any tensor: code pages, the
//!   allocator's arenas, thread stacks ([`PROCESS_BYTES`], measured).
//! - loading phase: **loading**, the memory-mapped checkpoint (every page of the safetensors
//!   files is read once, and mapped pages count as resident until the map is dropped after
//!   the model is built) plus the f32 copy of the largest projection being quantized.
//! - training phase: **lora** (`A` `[r, in]` and `B` `[out, r]` of every targeted
//!   projection, f32 master copies), **gradients** (one f32 per trainable parameter),
//!   **optimizer** (AdamW's two moments, f32 or 8-bit blockwise) and **activations**: what a
//!   step holds at its peak, at `dense_bytes` per element: `batch · seq` tokens times the
//!   elements of [`activation_elements_per_token`] (every decoder layer's saved tensors), plus
//!   the short-lived buffers alive at the peak, [`transient_elements`] (the loss head's
//!   `[tokens, vocab]` buffers, or on the CPU the copies burn-ndarray makes in the backward of
//!   the `lm_head`: the vocabulary's weight twice).
//!
//! [`MemoryTarget::Host`] estimates the peak resident set of a CPU run (Linux `VmHWM`): all
//! of the above. [`MemoryTarget::Device`] estimates what lives in an accelerator's memory
//! (CUDA): no program and no mapped checkpoint, the tensors only.
//!
//! How good it is: the activations are within 7% of the bytes burn-ndarray's autodiff really
//! allocates in a step, over shapes that vary every dimension, with and without dropout and
//! checkpointing (llama-model/tests/memory_model.rs, a counting allocator). The host total
//! is within 12% of the peak RSS of `finetune` runs on the 2-core development machine, 0-7%
//! for most (tools/memory/grid.json; examples/tests/memory_estimate.rs checks four runs
//! within 15%). It counts live bytes; what glibc's heap keeps above them is not modelled:
//! the programs keep freed blocks below 32 MiB for reuse and never trim
//! (`ro_examples::aligned_alloc::retain_freed_memory`), so the resident heap is its
//! high-water mark, holes included, measured 0-17% above the live bytes. They also keep one
//! arena for all threads; with glibc's default per-thread arenas rayon's workers would add
//! their own high-water marks (10-20% more on these runs). The device estimate is not
//! measured (no GPU here): burn's CUDA memory pool rounds and keeps allocations, which this
//! does not model, and the transient there is taken as four `[tokens, vocab]` buffers.

use std::fmt;

use qlora_core::{quant::double_quant::NESTED_BLOCKSIZE, Blocksize, TargetModule};

use crate::config::LlamaConfig;

/// Bytes in one GiB.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How the frozen projections are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseWeights {
    /// Dense, `dense_bytes` per element.
    Dense,
    /// NF4 with the given blocksize, optionally double-quantized absmax.
    Nf4 {
        /// NF4 blocksize (64 in QLoRA).
        blocksize: Blocksize,
        /// Double quantization of the absmax values.
        double_quant: bool,
    },
}

/// How the optimizer keeps AdamW's two moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerMemory {
    /// f32 moments: 8 bytes per trainable parameter.
    AdamW32,
    /// 8-bit blockwise moments: 2 bytes per parameter plus an f32 absmax per block per moment
    /// (bitsandbytes uses blocks of 256).
    AdamW8bit {
        /// Elements per quantization block.
        blocksize: usize,
    },
}

/// What is trained, and on how much data at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingPlan {
    /// Storage of the frozen projections.
    pub base: BaseWeights,
    /// Bytes per element of dense weights and activations (4 = f32, 2 = bf16/f16).
    pub dense_bytes: usize,
    /// LoRA rank.
    pub lora_r: usize,
    /// Projections that carry an adapter.
    pub targets: Vec<TargetModule>,
    /// Optimizer state layout.
    pub optimizer: OptimizerMemory,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Tokens per sequence (the longest sequence of a batch).
    pub seq_len: usize,
    /// burn's balanced checkpointing: memory-bound operations are recomputed in the
    /// backward pass instead of keeping their outputs (`TrainConfig::gradient_checkpointing`).
    pub gradient_checkpointing: bool,
    /// LoRA dropout is on (`p > 0`): each adapter keeps its own dropout mask and dropped input.
    pub lora_dropout: bool,
    /// Whose memory is estimated.
    pub target: MemoryTarget,
}

/// Whose memory an estimate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryTarget {
    /// The peak resident set of a process training on the CPU backend: the program, the
    /// memory-mapped checkpoint while loading, the tensors.
    Host {
        /// Bytes of the checkpoint's safetensors files ([`checkpoint_bytes`]); 0 when the
        /// weights come from elsewhere.
        checkpoint_bytes: u64,
    },
    /// An accelerator's memory (CUDA): the tensors only. Not measured (see the module docs).
    Device,
}

/// The program's own resident memory before it holds any tensor: measured as the peak RSS of
/// `finetune` on a 2-layer, hidden-64, vocabulary-32 checkpoint (one step of 8 tokens):
/// 14.1-14.5 MiB in five runs on the x86-64 development machine (glibc 2.36), of which about
/// 12 MiB are the binary's code pages and 2 MiB anonymous memory (thread stacks, the
/// allocator's first heap, the tiny model itself under 1 MiB). It grows with the binary.
pub const PROCESS_BYTES: u64 = 14 << 20;

/// The estimated bytes of each part of a training run (see the module docs).
///
/// ```
/// use llama_model::memory::MemoryEstimate;
/// let e = MemoryEstimate {
///     program: 1 << 28, loading: 5 << 29, weights: 3 << 30, lora: 1 << 29,
///     gradients: 1 << 29, optimizer: 1 << 30, activations: 0,
/// };
/// // Loading (2.5 GiB) outweighs training (2.0 GiB): the peak is the loading phase's.
/// assert_eq!(e.total(), (1 << 28) + (3 << 30) + (5 << 29));
/// assert_eq!(e.without_optimizer(), e.total());
/// assert_eq!(
///     e.to_string(),
///     "5.8 GiB (program 0.2 GiB, weights 3.0 GiB, then the larger of loading 2.5 GiB and \
///      training 2.0 GiB: LoRA 0.5 GiB, gradients 0.5 GiB, optimizer 1.0 GiB, activations 0.0 GiB)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEstimate {
    /// The program itself, before any tensor ([`PROCESS_BYTES`] on the host, 0 on a device).
    pub program: u64,
    /// The loading phase beyond the weights built so far: the memory-mapped checkpoint and
    /// the dense copy of the projection being quantized (0 on a device).
    pub loading: u64,
    /// Frozen base weights.
    pub weights: u64,
    /// Trainable LoRA parameters (f32).
    pub lora: u64,
    /// Their gradients (f32).
    pub gradients: u64,
    /// Optimizer state.
    pub optimizer: u64,
    /// What a training step's autodiff graph holds at its peak.
    pub activations: u64,
}

impl MemoryEstimate {
    /// The training phase beyond the weights: LoRA, gradients, optimizer, activations.
    pub fn training(&self) -> u64 {
        self.lora + self.gradients + self.optimizer + self.activations
    }

    /// The peak: program and weights, plus the larger of the loading and training phases.
    pub fn total(&self) -> u64 {
        self.program + self.weights + self.loading.max(self.training())
    }

    /// [`total`](Self::total) without the optimizer state (what must stay on the device
    /// when the optimizer state is paged to host memory).
    pub fn without_optimizer(&self) -> u64 {
        MemoryEstimate {
            optimizer: 0,
            ..*self
        }
        .total()
    }
}

/// `bytes` in GiB with one decimal, e.g. `"4.6 GiB"`.
pub fn format_gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB)
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (program {}, weights {}, then the larger of loading {} and training {}: LoRA {}, \
             gradients {}, optimizer {}, activations {})",
            format_gib(self.total()),
            format_gib(self.program),
            format_gib(self.weights),
            format_gib(self.loading),
            format_gib(self.training()),
            format_gib(self.lora),
            format_gib(self.gradients),
            format_gib(self.optimizer),
            format_gib(self.activations)
        )
    }
}

/// Bytes of the safetensors files of the checkpoint directory `dir` (one file or the shards
/// of its index): what loading maps and reads once. Opening maps the files without reading
/// them.
///
/// # Errors
///
/// As [`Checkpoint::open_dir`](crate::hf::checkpoint::Checkpoint::open_dir), or a file whose
/// size cannot be read.
pub fn checkpoint_bytes(dir: impl AsRef<std::path::Path>) -> crate::Result<u64> {
    let ckpt = crate::hf::checkpoint::Checkpoint::open_dir(dir)?;
    let mut files: Vec<&std::path::Path> = ckpt.files().into_values().collect();
    files.sort();
    files.dedup();
    files
        .into_iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|source| crate::LlamaError::Io {
                    path: p.to_path_buf(),
                    source,
                })
        })
        .sum()
}

/// `[out_features, in_features]` of a projection in a layer of `cfg`.
///
/// ```
/// use llama_model::{memory::projection_shape, LlamaConfig};
/// use qlora_core::TargetModule;
/// let cfg = LlamaConfig::tiny(32); // hidden 64, 4 heads / 2 kv heads of 16, MLP 128
/// assert_eq!(projection_shape(&cfg, TargetModule::KProj), [32, 64]);
/// assert_eq!(projection_shape(&cfg, TargetModule::DownProj), [64, 128]);
/// ```
pub fn projection_shape(cfg: &LlamaConfig, target: TargetModule) -> [usize; 2] {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let (q, kv) = (
        cfg.num_attention_heads * cfg.head_dim,
        cfg.num_key_value_heads * cfg.head_dim,
    );
    match target {
        TargetModule::QProj => [q, h],
        TargetModule::KProj | TargetModule::VProj => [kv, h],
        TargetModule::OProj => [h, q],
        TargetModule::GateProj | TargetModule::UpProj => [i, h],
        TargetModule::DownProj => [h, i],
    }
}

/// Trainable LoRA parameters: `r · (in + out)` per targeted projection per layer.
///
/// ```
/// use llama_model::{memory::lora_parameters, LlamaConfig};
/// use qlora_core::TargetModule;
/// // q_proj of the tiny config is 64x64: 8 · (64 + 64) per layer, 2 layers.
/// assert_eq!(lora_parameters(&LlamaConfig::tiny(32), 8, &[TargetModule::QProj]), 2048);
/// ```
pub fn lora_parameters(cfg: &LlamaConfig, r: usize, targets: &[TargetModule]) -> u64 {
    let per_layer: usize = targets
        .iter()
        .map(|&t| {
            let [out, inp] = projection_shape(cfg, t);
            r * (inp + out)
        })
        .sum();
    (per_layer * cfg.num_hidden_layers) as u64
}

/// Bytes of one `n`-element matrix in `base` storage.
fn matrix_bytes(n: usize, base: BaseWeights, dense_bytes: usize) -> u64 {
    match base {
        BaseWeights::Dense => (n * dense_bytes) as u64,
        BaseWeights::Nf4 {
            blocksize,
            double_quant,
        } => {
            let blocks = blocksize.blocks(n);
            let codes = n.div_ceil(2);
            let code_table = 16 * 4;
            let absmax = if double_quant {
                blocks + 4 * blocks.div_ceil(NESTED_BLOCKSIZE) + 256 * 4 + 4
            } else {
                4 * blocks
            };
            (codes + absmax + code_table) as u64
        }
    }
}

/// Elements a training step keeps per token from its forward pass into its backward pass, on
/// burn-ndarray's autodiff with f32 activations: every decoder layer's saved tensors, the
/// embedding output and the final norm's output. The short-lived buffers on top of these at
/// the step's peak (the loss head's, the frozen linears' backward) are
/// [`transient_elements`].
///
/// Without gradient checkpointing, per layer (read off the forward code and what burn's
/// autodiff keeps for each operation's backward; checked against a counting allocator in
/// llama-model/tests/memory_model.rs):
///
/// - the layer input and the residual sum after attention, kept by the two RMSNorms: `2h`;
/// - rotated queries and keys and values repeated to the query heads, kept by the two
///   attention matmuls: `3·n_q·d`;
/// - masked scores, their `exp` and the probabilities: `3·n_q·seq_len`;
/// - SwiGLU: the gate projection and its sigmoid (kept by SiLU), SiLU's output and the up
///   projection (kept by their product): `4i`;
/// - the adapters: each `A` matmul keeps its input and each `B` matmul `A·x` (`r`). Without
///   dropout, adapters on the same input share it (one norm output for q/k/v, one for
///   gate/up); with dropout, each keeps its own f32 mask and dropped input (`2·in`). Frozen
///   NF4 and dense bases keep nothing (their backward dequantizes or reads the weight again).
///
/// With burn's balanced checkpointing, memory-bound operations (additions, scaling, RoPE,
/// `exp`, SiLU) keep their parents' outputs for recomputation instead of their own: on these
/// models that holds more, not less. The difference is measured with the counting allocator
/// (nine shapes, with and without dropout, least squares): `+3.5h + 6·n_kv·d − n_q·seq_len`
/// per layer, `+3h` more with dropout.
///
/// Below the layers, the embedding output and the final norm's output: `2h`.
///
/// ```
/// use llama_model::{memory::activation_elements_per_token, LlamaConfig};
/// use qlora_core::TargetModule;
/// // tiny: h 64, i 128, 4 query / 2 kv heads of 16, 2 layers, vocab 32; no adapter, seq 10:
/// // per layer 2·64 + 3·64 + 3·4·10 + 4·128 = 952; embedding and final norm 2·64.
/// assert_eq!(activation_elements_per_token(&LlamaConfig::tiny(32), 0, &[], 10, false, false), 2 * 952 + 128);
/// ```
pub fn activation_elements_per_token(
    cfg: &LlamaConfig,
    r: usize,
    targets: &[TargetModule],
    seq_len: usize,
    dropout: bool,
    checkpointing: bool,
) -> u64 {
    let (h, i, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (nq, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let mut layer = 2 * h + 3 * nq * d + 3 * nq * seq_len + 4 * i;
    layer += adapter_elements(cfg, r, targets, dropout);
    if checkpointing {
        layer = (2 * layer + 7 * h + 12 * nkv * d + if dropout { 6 * h } else { 0 })
            .saturating_sub(2 * nq * seq_len)
            / 2;
    }
    (cfg.num_hidden_layers * layer + 2 * h) as u64
}

/// Elements a training step of `tokens` (batch · sequence) tokens holds at its peak on top
/// of [`activation_elements_per_token`]'s saved tensors: the largest set of short-lived
/// buffers alive at once, all of them at the top of the model, where every layer's saved
/// tensors are still live.
///
/// On the CPU ([`MemoryTarget::Host`], burn-ndarray 0.21), the largest of three moments:
///
/// - the loss: the logits, their max-shifted copy and its `exp` (kept for the backward) are
///   live at once before the log-probabilities replace the logits: `3·tokens·vocab`. With
///   balanced checkpointing its memory-bound operations keep their inputs for recomputation
///   instead, which holds one more: `4·tokens·vocab` (both measured with the counting
///   allocator below, as the live bytes before, at the peak of and after the loss);
/// - the backward of the `lm_head` `[vocab, h]` (tied or not) and then of the last layer's
///   `down_proj` `[h, i]`: burn-ndarray copies an array every time it reshapes one
///   (ndarray's `to_shape` gives a view, which `into_shared` copies), and its matmul
///   reshapes both operands and its product. The backward of `y = x · Wᵀ` with a frozen `W`
///   `[out, in]` computes `∂L/∂x = ∂L/∂y · W`: the incoming gradient `[tokens, out]` stays
///   live (autodiff holds it for the other branch: the weight's, or the adapter beside the
///   base) next to its copy, and `W` is made once more (the dense weight reshaped for the
///   leading batch dimension, or the NF4 weight dequantized to f32), then copied for the
///   matmul while the first copy is live; after that the product `[tokens, in]` is copied by
///   the reshape back while the second copy is still live. At the larger of those two
///   moments: `2·tokens·out + out·in + max(out·in, 2·tokens·in)`. The other projections come
///   after their layer's SwiGLU tensors (`4i` per token) are freed, which outweighs their
///   larger shapes.
///
/// Read off burn 0.21's code, seen with heaptrack at the peak of `finetune` steps, and checked
/// against a counting allocator in llama-model/tests/memory_model.rs. On a device
/// ([`MemoryTarget::Device`], not measured) the loss head's four `[tokens, vocab]` buffers
/// (logits, shifted, `exp`, log-probabilities): `4·tokens·vocab`.
///
/// ```
/// use llama_model::memory::{transient_elements, MemoryTarget};
/// use llama_model::LlamaConfig;
/// let host = MemoryTarget::Host { checkpoint_bytes: 0 };
/// let (tiny, big_vocab) = (LlamaConfig::tiny(32), LlamaConfig::tiny(32000));
/// // tiny (h 64, i 128, vocab 32), 10 tokens: down_proj (64x128) is the largest,
/// // 2·10·64 + 64·128 + max(64·128, 2·10·128) = 17_664 (the loss: 3·10·32 = 960).
/// assert_eq!(transient_elements(&tiny, 10, false, host), 17_664);
/// // With 32000 tokens in the vocabulary the lm_head is: 2·10·32000 + 2·32000·64.
/// assert_eq!(transient_elements(&big_vocab, 10, false, host), 4_736_000);
/// // 1000 tokens: the loss, 3·1000·32000 (the lm_head 2·1000·32000 + 32000·64 + 2·1000·64),
/// // or 4·1000·32000 with checkpointing.
/// assert_eq!(transient_elements(&big_vocab, 1000, false, host), 96_000_000);
/// assert_eq!(transient_elements(&big_vocab, 1000, true, host), 128_000_000);
/// assert_eq!(transient_elements(&big_vocab, 10, false, MemoryTarget::Device), 1_280_000);
/// ```
pub fn transient_elements(
    cfg: &LlamaConfig,
    tokens: usize,
    checkpointing: bool,
    target: MemoryTarget,
) -> u64 {
    let (t, v) = (tokens, cfg.vocab_size);
    if matches!(target, MemoryTarget::Device) {
        return (4 * t * v) as u64;
    }
    let loss = if checkpointing { 4 * t * v } else { 3 * t * v };
    let frozen_x_backward =
        |[out, inp]: [usize; 2]| 2 * t * out + out * inp + (out * inp).max(2 * t * inp);
    let head = frozen_x_backward([v, cfg.hidden_size]);
    let down = frozen_x_backward(projection_shape(cfg, TargetModule::DownProj));
    loss.max(head).max(down) as u64
}

/// What the adapters of one layer keep per token (see [`activation_elements_per_token`]).
fn adapter_elements(cfg: &LlamaConfig, r: usize, targets: &[TargetModule], dropout: bool) -> usize {
    let input = |t: TargetModule| projection_shape(cfg, t)[1];
    let per_target: usize = targets
        .iter()
        .map(|&t| r + if dropout { 2 * input(t) } else { 0 })
        .sum();
    if dropout {
        return per_target;
    }
    // Without dropout, adapters reading the same tensor keep it once.
    let mut inputs: Vec<(&str, usize)> =
        targets.iter().map(|&t| (input_name(t), input(t))).collect();
    inputs.sort_unstable();
    inputs.dedup();
    per_target + inputs.iter().map(|&(_, n)| n).sum::<usize>()
}

/// Which tensor a projection reads: q/k/v the first norm's output, gate/up the second's.
fn input_name(t: TargetModule) -> &'static str {
    match t {
        TargetModule::QProj | TargetModule::KProj | TargetModule::VProj => "attention input",
        TargetModule::OProj => "attention output",
        TargetModule::GateProj | TargetModule::UpProj => "mlp input",
        TargetModule::DownProj => "mlp hidden",
    }
}

/// Bytes of the largest projection in f32, the transient of quantizing it on load.
fn largest_projection_f32(cfg: &LlamaConfig) -> u64 {
    TargetModule::ALL
        .iter()
        .map(|&t| {
            let [out, inp] = projection_shape(cfg, t);
            4 * (out * inp) as u64
        })
        .max()
        .unwrap_or(0)
}

/// Estimates the memory of a fine-tuning run of `cfg` under `plan` (see the module docs for
/// what each part counts).
///
/// ```
/// use llama_model::memory::{estimate_training_memory, BaseWeights, MemoryTarget, OptimizerMemory, TrainingPlan};
/// use llama_model::LlamaConfig;
/// use qlora_core::{Blocksize, TargetModule};
/// let plan = TrainingPlan {
///     base: BaseWeights::Nf4 { blocksize: Blocksize::default(), double_quant: true },
///     dense_bytes: 4,
///     lora_r: 8,
///     targets: vec![TargetModule::QProj, TargetModule::VProj],
///     optimizer: OptimizerMemory::AdamW32,
///     batch_size: 1,
///     seq_len: 16,
///     gradient_checkpointing: false,
///     lora_dropout: false,
///     target: MemoryTarget::Device,
/// };
/// let e = estimate_training_memory(&LlamaConfig::tiny(32), &plan);
/// assert_eq!(e.lora, 4 * 2 * (8 * 128 + 8 * 96));
/// assert_eq!(e.gradients, e.lora);
/// assert_eq!(e.optimizer, 2 * e.lora);
/// assert_eq!((e.program, e.loading), (0, 0));
/// ```
pub fn estimate_training_memory(cfg: &LlamaConfig, plan: &TrainingPlan) -> MemoryEstimate {
    let (h, v, l) = (
        cfg.hidden_size as u64,
        cfg.vocab_size as u64,
        cfg.num_hidden_layers as u64,
    );
    let db = plan.dense_bytes as u64;

    let projections: u64 = TargetModule::ALL
        .iter()
        .map(|&t| {
            let [out, inp] = projection_shape(cfg, t);
            matrix_bytes(out * inp, plan.base, plan.dense_bytes)
        })
        .sum::<u64>()
        * l;
    let embeddings = v * h * db;
    let lm_head = if cfg.tie_word_embeddings {
        0
    } else {
        v * h * db
    };
    let norms = (2 * l + 1) * h * db;
    let weights = projections + embeddings + lm_head + norms;

    let params = lora_parameters(cfg, plan.lora_r, &plan.targets);
    let optimizer = match plan.optimizer {
        OptimizerMemory::AdamW32 => 8 * params,
        OptimizerMemory::AdamW8bit { blocksize } => {
            let blocks = params.div_ceil(blocksize.max(1) as u64);
            2 * (params + 4 * blocks)
        }
    };
    let per_token = activation_elements_per_token(
        cfg,
        plan.lora_r,
        &plan.targets,
        plan.seq_len,
        plan.lora_dropout,
        plan.gradient_checkpointing,
    );
    let tokens = plan.batch_size * plan.seq_len;
    let transient = transient_elements(cfg, tokens, plan.gradient_checkpointing, plan.target);
    let activations = (tokens as u64 * per_token + transient) * db;

    let (program, loading) = match plan.target {
        MemoryTarget::Host { checkpoint_bytes } => {
            let quantizing = match plan.base {
                BaseWeights::Nf4 { .. } => largest_projection_f32(cfg),
                BaseWeights::Dense => 0,
            };
            (PROCESS_BYTES, checkpoint_bytes + quantizing)
        }
        MemoryTarget::Device => (0, 0),
    };
    MemoryEstimate {
        program,
        loading,
        weights,
        lora: 4 * params,
        gradients: 4 * params,
        optimizer,
        activations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// meta-llama/Llama-2-7b-hf's config.json.
    fn llama2_7b() -> LlamaConfig {
        LlamaConfig {
            vocab_size: 32000,
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: 32,
            head_dim: 128,
            max_position_embeddings: 4096,
            ..LlamaConfig::tiny(32000)
        }
    }

    fn qlora_plan() -> TrainingPlan {
        TrainingPlan {
            base: BaseWeights::Nf4 {
                blocksize: Blocksize::default(),
                double_quant: true,
            },
            dense_bytes: 2,
            lora_r: 16,
            targets: vec![TargetModule::QProj, TargetModule::VProj],
            optimizer: OptimizerMemory::AdamW32,
            batch_size: 1,
            seq_len: 512,
            gradient_checkpointing: false,
            lora_dropout: false,
            target: MemoryTarget::Device,
        }
    }

    /// Numbers worked out by hand for Llama-2-7B in QLoRA's setting (NF4, blocksize 64,
    /// double quantization, bf16 compute, r = 16 on q/v).
    #[test]
    fn llama2_7b_qlora_matches_hand_computed_numbers() {
        let e = estimate_training_memory(&llama2_7b(), &qlora_plan());
        // One 4096x4096 matrix: 16_777_216 elements → 8_388_608 code bytes; 262_144 blocks
        // → 262_144 code bytes + 1024 nested blocks · 4 = 4096 + map 1024 + offset 4;
        // NF4 table 64. Total 8_655_940.
        let attn = 8_388_608 + 262_144 + 4096 + 1024 + 4 + 64;
        assert_eq!(attn, 8_655_940);
        // One 11008x4096 matrix: 45_088_768 elements → 22_544_384 code bytes; 704_512
        // blocks → 704_512 bytes + ceil(704_512/256) = 2752 nested · 4 = 11_008, + 1024 + 4 + 64.
        let mlp = 22_544_384 + 704_512 + 11_008 + 1024 + 4 + 64;
        assert_eq!(mlp, 23_260_996);
        // 32 layers of 4 attention and 3 MLP matrices; embeddings and lm_head 32000·4096·2
        // bytes each; 65 norms of 4096·2 bytes.
        let weights = 32 * (4 * attn + 3 * mlp) + 2 * 262_144_000 + 65 * 8192;
        assert_eq!(weights, 3_865_836_416);
        assert_eq!(e.weights, weights);
        // LoRA: 16 · (4096 + 4096) · 2 targets · 32 layers = 8_388_608 parameters.
        assert_eq!(e.lora, 4 * 8_388_608);
        assert_eq!(e.gradients, 4 * 8_388_608);
        assert_eq!(e.optimizer, 8 * 8_388_608);
        // Per token per layer: 2·4096 (norm inputs) + 3·4096 (q, k, v for the attention
        // matmuls) + 3·32·512 (scores) + 4·11008 (SwiGLU) + 2·16 (A·x) + 4096 (the norm
        // output q and v adapters share) = 117_792. Head: 4·32000 + 2·4096 = 136_192.
        let per_token = 32 * 117_792 + 136_192;
        assert_eq!(e.activations, 512 * per_token * 2);
        assert_eq!(e.activations, 3_999_268_864);
        assert_eq!((e.program, e.loading), (0, 0));
        assert_eq!(
            e.to_string(),
            "7.4 GiB (program 0.0 GiB, weights 3.6 GiB, then the larger of loading 0.0 GiB and \
             training 3.8 GiB: LoRA 0.0 GiB, gradients 0.0 GiB, optimizer 0.1 GiB, activations 3.7 GiB)"
        );
    }

    #[test]
    fn checkpointing_dense_and_8bit_variants() {
        let cfg = llama2_7b();
        let mut plan = qlora_plan();
        plan.gradient_checkpointing = true;
        let e = estimate_training_memory(&cfg, &plan);
        // Balanced checkpointing: + 3.5·4096 + 6·4096 − 32·512 per layer = 140_320.
        assert_eq!(e.activations, 512 * (32 * 140_320 + 136_192) * 2);
        plan.lora_dropout = true;
        // Dropout: q and v each keep their mask and dropped input (2·4096 each) instead of
        // sharing the norm output (4096), and checkpointing adds 3·4096 more.
        let d = estimate_training_memory(&cfg, &plan).activations;
        assert_eq!(
            d,
            512 * (32 * (140_320 + 3 * 4096 + 3 * 4096) + 136_192) * 2
        );
        plan.lora_dropout = false;

        plan.base = BaseWeights::Dense;
        let dense = estimate_training_memory(&cfg, &plan);
        // 6_476_005_376 projection elements + 2 · 131_072_000 + 65 · 4096, two bytes each.
        assert_eq!(
            dense.weights,
            (6_476_005_376u64 + 262_144_000 + 266_240) * 2
        );

        plan.optimizer = OptimizerMemory::AdamW8bit { blocksize: 256 };
        let e8 = estimate_training_memory(&cfg, &plan);
        // 8_388_608 parameters: 2 moments · (8_388_608 bytes + 32_768 blocks · 4).
        assert_eq!(e8.optimizer, 2 * (8_388_608 + 4 * 32_768));
        assert_eq!(e8.without_optimizer(), dense.without_optimizer());
    }

    #[test]
    fn plain_absmax_and_grouped_query_attention() {
        // tiny: q 64x64, k/v 32x64, o 64x64, gate/up 128x64, down 64x128; 2 layers.
        let cfg = LlamaConfig::tiny(32);
        let plan = TrainingPlan {
            base: BaseWeights::Nf4 {
                blocksize: Blocksize::default(),
                double_quant: false,
            },
            dense_bytes: 4,
            lora_r: 4,
            targets: TargetModule::ALL.to_vec(),
            optimizer: OptimizerMemory::AdamW32,
            batch_size: 2,
            seq_len: 8,
            gradient_checkpointing: false,
            lora_dropout: false,
            target: MemoryTarget::Device,
        };
        let e = estimate_training_memory(&cfg, &plan);
        // 4096 elements: 2048 codes + 64 blocks · 4 + 64 = 2368; 2048: 1024 + 128 + 64 =
        // 1216; 8192: 4096 + 512 + 64 = 4672.
        let layer = 2 * 2368 + 2 * 1216 + 3 * 4672;
        // embed + lm_head 32·64·4 each, 5 norms 64·4.
        assert_eq!(e.weights, 2 * layer + 2 * 8192 + 5 * 256);
        // LoRA: 4·(128 + 96 + 96 + 128 + 192 + 192 + 192) = 4096 per layer.
        assert_eq!(e.lora, 4 * 2 * 4096);
        // Per token per layer: 2·64 + 3·64 + 3·4·8 + 4·128 = 928; adapters 7·4 plus the four
        // inputs they read (attention input 64, attention output 64, MLP input 64, MLP
        // hidden 128) = 348; head 4·32 + 2·64 = 256.
        assert_eq!(e.activations, 16 * (2 * (928 + 348) + 256) * 4);
    }

    #[test]
    fn host_peak_is_the_larger_phase_over_program_and_weights() {
        let cfg = llama2_7b();
        let mut plan = qlora_plan();
        let device = estimate_training_memory(&cfg, &plan);
        let bytes = 13_476_839_424; // Llama-2-7b-hf's two bf16 shards
        plan.target = MemoryTarget::Host {
            checkpoint_bytes: bytes,
        };
        let host = estimate_training_memory(&cfg, &plan);
        assert_eq!(host.program, PROCESS_BYTES);
        // Quantizing a 11008x4096 MLP projection holds its f32 copy.
        assert_eq!(host.loading, bytes + 4 * 11008 * 4096);
        // On the CPU the lm_head's backward holds the 512x32000 gradient twice and the
        // 32000x4096 weight twice: 32_768_000 + 262_144_000 elements, 229_376_000 more than
        // the four 512x32000 buffers counted on a device, at 2 bytes.
        assert_eq!(
            transient_elements(&cfg, 512, false, plan.target),
            32_768_000 + 262_144_000
        );
        assert_eq!(
            transient_elements(&cfg, 512, false, MemoryTarget::Device),
            65_536_000
        );
        assert_eq!(host.activations, device.activations + 2 * 229_376_000);
        assert_eq!(host.training(), device.training() + 2 * 229_376_000);
        // Mapping the 13.5 GB checkpoint outweighs training at 512 tokens.
        assert_eq!(host.total(), PROCESS_BYTES + host.weights + host.loading);
        plan.batch_size = 8;
        let long = estimate_training_memory(&cfg, &plan);
        assert_eq!(long.total(), PROCESS_BYTES + long.weights + long.training());
        assert_eq!(
            long.without_optimizer(),
            long.total() - long.optimizer,
            "training still outweighs loading without the optimizer state"
        );
    }
}
