//! How much memory a LoRA / QLoRA fine-tuning run of a [`LlamaConfig`] needs, computed from
//! the config alone (before any weight is read), so a run that cannot fit fails early.
//!
//! The estimate is the sum of five parts ([`MemoryEstimate`]):
//!
//! - **weights**: the frozen base. Every projection (`q,k,v,o,gate,up,down` of every layer)
//!   either dense (`dense_bytes` per element) or NF4 in bitsandbytes' layout: packed codes
//!   (`ceil(n/2)` bytes), one absmax per block (4 bytes; with double quantization 1 byte plus
//!   a 4-byte nested absmax per 256 blocks, the 256-entry f32 nested map and the f32 offset),
//!   and the 16-entry f32 NF4 code table. Embeddings, RMSNorm weights and an untied `lm_head`
//!   stay dense.
//! - **lora**: the trainable `A` `[r, in]` and `B` `[out, r]` of every targeted projection,
//!   kept in f32 (master copies).
//! - **gradients**: one f32 gradient per trainable parameter.
//! - **optimizer**: AdamW's two moments, f32 (8 bytes per parameter), or 8-bit blockwise
//!   (2 bytes per parameter plus one f32 absmax per block and moment).
//! - **activations**: what the backward pass keeps for `batch × seq` tokens, at
//!   `dense_bytes` per element (see [`activation_elements_per_token`]).
//!
//! It is an estimate of the resident tensors, not of allocator overhead or temporary
//! buffers; use it to decide whether a run can fit, not to predict the exact peak.

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
    /// Keep only each layer's input for the backward pass and recompute the rest.
    pub gradient_checkpointing: bool,
}

/// The estimated bytes of each part of a training run.
///
/// ```
/// use llama_model::memory::MemoryEstimate;
/// let e = MemoryEstimate { weights: 3 << 30, lora: 1 << 29, gradients: 1 << 29, optimizer: 1 << 30, activations: 0 };
/// assert_eq!(e.total(), 5 << 30);
/// assert_eq!(
///     e.to_string(),
///     "5.0 GiB (weights 3.0 GiB, LoRA 0.5 GiB, gradients 0.5 GiB, optimizer 1.0 GiB, activations 0.0 GiB)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEstimate {
    /// Frozen base weights.
    pub weights: u64,
    /// Trainable LoRA parameters (f32).
    pub lora: u64,
    /// Their gradients (f32).
    pub gradients: u64,
    /// Optimizer state.
    pub optimizer: u64,
    /// Activations kept for the backward pass.
    pub activations: u64,
}

impl MemoryEstimate {
    /// Sum of all parts.
    pub fn total(&self) -> u64 {
        self.weights + self.lora + self.gradients + self.optimizer + self.activations
    }

    /// Sum of all parts but the optimizer state (what must stay on the device when the
    /// optimizer state is paged to host memory).
    pub fn without_optimizer(&self) -> u64 {
        self.total() - self.optimizer
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
            "{} (weights {}, LoRA {}, gradients {}, optimizer {}, activations {})",
            format_gib(self.total()),
            format_gib(self.weights),
            format_gib(self.lora),
            format_gib(self.gradients),
            format_gib(self.optimizer),
            format_gib(self.activations)
        )
    }
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

/// Activation elements the backward pass keeps per token of one decoder layer (without
/// gradient checkpointing), for LoRA rank `r` on `targets` and sequences of `seq_len`:
///
/// - the two RMSNorms' inputs and outputs: `4h`;
/// - q, k, v; rotated q and k; the attention output: `3·(n_q + n_kv)·d`, plus `2·n_q·d`
///   for k and v repeated to the query heads under grouped-query attention;
/// - attention scores and their softmax: `2·n_q·seq_len`;
/// - `o_proj` and `down_proj` outputs: `2h`;
/// - gate, up, SiLU(gate) and their product: `4i`;
/// - per adapter: the (dropped-out) input and `A·x`: `in + r`.
///
/// ```
/// use llama_model::{memory::activation_elements_per_token, LlamaConfig};
/// // tiny: h 64, i 128, 4 query / 2 kv heads of 16: 6·64 + 3·6·16 + 2·64 + 4·128 + 2·4·10
/// assert_eq!(activation_elements_per_token(&LlamaConfig::tiny(32), 0, &[], 10), 1392);
/// ```
pub fn activation_elements_per_token(
    cfg: &LlamaConfig,
    r: usize,
    targets: &[TargetModule],
    seq_len: usize,
) -> u64 {
    let (h, i, d) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
    let (nq, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let repeat = if nkv < nq { 2 * nq * d } else { 0 };
    let lora: usize = targets
        .iter()
        .map(|&t| projection_shape(cfg, t)[1] + r)
        .sum();
    (6 * h + 3 * (nq + nkv) * d + repeat + 2 * nq * seq_len + 4 * i + lora) as u64
}

/// Estimates the memory of a fine-tuning run of `cfg` under `plan` (see the module docs for
/// what each part counts).
///
/// Activations: `batch · seq · (L · per_layer + 2h + 2·vocab)` elements without gradient
/// checkpointing (`per_layer` from [`activation_elements_per_token`]; the head keeps the final
/// norm's input/output, the logits and their log-softmax). With gradient checkpointing only
/// each layer's input (`h`) is kept, plus one layer's full activations while it is
/// recomputed: `batch · seq · (L · h + per_layer + 2h + 2·vocab)`.
///
/// ```
/// use llama_model::memory::{estimate_training_memory, BaseWeights, OptimizerMemory, TrainingPlan};
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
/// };
/// let e = estimate_training_memory(&LlamaConfig::tiny(32), &plan);
/// assert_eq!(e.lora, 4 * 2 * (8 * 128 + 8 * 96));
/// assert_eq!(e.gradients, e.lora);
/// assert_eq!(e.optimizer, 2 * e.lora);
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
    let lora = 4 * params;
    let gradients = 4 * params;
    let optimizer = match plan.optimizer {
        OptimizerMemory::AdamW32 => 8 * params,
        OptimizerMemory::AdamW8bit { blocksize } => {
            let blocks = params.div_ceil(blocksize.max(1) as u64);
            2 * (params + 4 * blocks)
        }
    };

    let per_layer = activation_elements_per_token(cfg, plan.lora_r, &plan.targets, plan.seq_len);
    let head = 2 * h + 2 * v;
    let per_token = if plan.gradient_checkpointing {
        l * h + per_layer + head
    } else {
        l * per_layer + head
    };
    let activations = (plan.batch_size * plan.seq_len) as u64 * per_token * db;

    MemoryEstimate {
        weights,
        lora,
        gradients,
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
        // Per token per layer: 6·4096 + 3·64·128 + 0 (no GQA) + 2·32·512 + 4·11008
        // + 2·(4096 + 16) = 24_576 + 24_576 + 32_768 + 44_032 + 8_224 = 134_176.
        // Head: 2·4096 + 2·32000 = 72_192. 512 tokens · (32·134_176 + 72_192) · 2 bytes.
        assert_eq!(e.activations, 512 * (32 * 134_176 + 72_192) * 2);
        assert_eq!(e.activations, 4_470_603_776);
        assert_eq!(
            e.to_string(),
            "7.9 GiB (weights 3.6 GiB, LoRA 0.0 GiB, gradients 0.0 GiB, optimizer 0.1 GiB, activations 4.2 GiB)"
        );
    }

    #[test]
    fn checkpointing_dense_and_8bit_variants() {
        let cfg = llama2_7b();
        let mut plan = qlora_plan();
        plan.gradient_checkpointing = true;
        let e = estimate_training_memory(&cfg, &plan);
        // 512 · (32·4096 + 134_176 + 72_192) · 2 bytes.
        assert_eq!(e.activations, 512 * (131_072 + 134_176 + 72_192) * 2);

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
        };
        let e = estimate_training_memory(&cfg, &plan);
        // 4096 elements: 2048 codes + 64 blocks · 4 + 64 = 2368; 2048: 1024 + 128 + 64 =
        // 1216; 8192: 4096 + 512 + 64 = 4672.
        let layer = 2 * 2368 + 2 * 1216 + 3 * 4672;
        // embed + lm_head 32·64·4 each, 5 norms 64·4.
        assert_eq!(e.weights, 2 * layer + 2 * 8192 + 5 * 256);
        // LoRA: 4·(128 + 96 + 96 + 128 + 192 + 192 + 192) = 4096 per layer.
        assert_eq!(e.lora, 4 * 2 * 4096);
        // Per token per layer: 6·64 + 3·6·16 + 128 (repeated k/v) + 2·4·8 + 4·128 + LoRA
        // inputs and A outputs (64·6 + 128 + 7·4 = 540) = 1916; head 2·64 + 2·32 = 192.
        assert_eq!(e.activations, 16 * (2 * 1916 + 192) * 4);
    }
}
