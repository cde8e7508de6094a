//! `--memory-budget`: the memory estimate of the run (llama-model's
//! [`llama_model::estimate_training_memory`]) checked before any weight is loaded.

use anyhow::{bail, Result};
use burn::tensor::FloatDType;
use llama_model::memory::{format_gib, BaseWeights, MemoryTarget, OptimizerMemory, GIB};
use llama_model::{LlamaConfig, MemoryEstimate, TrainingPlan};
use qlora_core::{Blocksize, LoraConfig};

use super::args::OptimizerArg;

/// bitsandbytes' block of 8-bit optimizer state.
const OPTIM_8BIT_BLOCK: usize = 256;

/// The plan the estimate is computed for: f32 compute, on the host (`target` carries the
/// checkpoint's size) or on a device.
#[allow(clippy::too_many_arguments)]
pub fn training_plan(
    cfg: &LlamaConfig,
    four_bit: bool,
    double_quant: bool,
    lora: &LoraConfig,
    optimizer: OptimizerArg,
    batch_size: usize,
    seq_len: usize,
    gradient_checkpointing: bool,
    dtype: FloatDType,
    target: MemoryTarget,
) -> TrainingPlan {
    // A pre-quantized checkpoint stays 4-bit whatever the flags say.
    let base = if four_bit || cfg.quantization.is_some() {
        BaseWeights::Nf4 {
            blocksize: Blocksize::default(),
            double_quant: double_quant || cfg.quantization.as_ref().is_some_and(|q| q.double_quant),
        }
    } else {
        BaseWeights::Dense
    };
    TrainingPlan {
        base,
        dense_bytes: burn::tensor::DType::from(dtype).size(),
        lora_r: lora.r,
        targets: lora.targets.clone(),
        optimizer: match optimizer {
            OptimizerArg::Adamw8bit => OptimizerMemory::AdamW8bit {
                blocksize: OPTIM_8BIT_BLOCK,
            },
            OptimizerArg::Adamw | OptimizerArg::PagedAdamw => OptimizerMemory::AdamW32,
        },
        batch_size,
        seq_len,
        gradient_checkpointing,
        lora_dropout: lora.dropout > 0.0,
        target,
    }
}

/// Checks `estimate` against `budget_gib`. With paged AdamW the optimizer state may lie
/// beyond the budget (it is paged to host memory); the rest must fit. Returns the bytes of
/// optimizer state that may stay on the device (what the budget leaves after the rest).
pub fn check_budget(
    estimate: &MemoryEstimate,
    budget_gib: f64,
    optimizer: OptimizerArg,
) -> Result<u64> {
    let budget = (budget_gib * GIB) as u64;
    let paged = optimizer == OptimizerArg::PagedAdamw;
    let needed = if paged {
        estimate.without_optimizer()
    } else {
        estimate.total()
    };
    if needed > budget {
        let what = if paged {
            format!(
                "{} without the paged optimizer state",
                format_gib(estimate.without_optimizer())
            )
        } else {
            estimate.to_string()
        };
        bail!(
            "--memory-budget: the run needs {what}, budget {budget_gib} GiB; lower \
             --batch-size or --max-seq-len, keep 4-bit loading or use a smaller --lora-r{}",
            if paged {
                ""
            } else {
                " (or --optimizer paged-adamw)"
            }
        );
    }
    Ok(budget - estimate.without_optimizer().min(budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> MemoryEstimate {
        MemoryEstimate {
            weights: 4 << 30,
            optimizer: 3 << 30,
            activations: 2 << 30,
            ..MemoryEstimate::default()
        }
    }

    #[test]
    fn budget_counts_everything_unless_the_optimizer_is_paged() {
        let e = check_budget(&est(), 8.0, OptimizerArg::Adamw)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs 9.0 GiB (program 0.0 GiB, weights 4.0 GiB")
                && e.contains("budget 8 GiB"),
            "{e}"
        );
        // Paged: 6 GiB must fit; 2 GiB of the budget is left for device-side state.
        assert_eq!(
            check_budget(&est(), 8.0, OptimizerArg::PagedAdamw).unwrap(),
            2 << 30
        );
        assert!(check_budget(&est(), 5.0, OptimizerArg::PagedAdamw).is_err());
        assert_eq!(
            check_budget(&est(), 9.0, OptimizerArg::Adamw).unwrap(),
            3 << 30
        );
    }
}
