//! Which optimizer the trainer runs: [`OptimizerKind`].

use serde::{Deserialize, Serialize};

/// bitsandbytes' default `min_8bit_size`: parameters with fewer elements keep 32-bit state.
pub const MIN_8BIT_SIZE: u64 = 4096;

/// The optimizer the [`Trainer`](crate::Trainer) uses. All three share the AdamW
/// hyper-parameters of [`TrainConfig::adamw`](crate::TrainConfig::adamw).
///
/// Serialized (e.g. in `trainer_state.json`) as `{"kind":"adamw"}`,
/// `{"kind":"paged_adamw","device_budget_bytes":N}` or
/// `{"kind":"adamw8bit","min_8bit_size":N}`.
///
/// ```
/// use qlora_core::OptimizerKind;
/// assert_eq!(OptimizerKind::default(), OptimizerKind::AdamW);
/// let k: OptimizerKind = "paged-adamw:1048576".parse().unwrap();
/// assert_eq!(k, OptimizerKind::PagedAdamW { device_budget_bytes: 1 << 20 });
/// let k: OptimizerKind = "adamw8bit".parse().unwrap();
/// assert_eq!(k, OptimizerKind::AdamW8bit { min_8bit_size: 4096 });
/// assert!("sgd".parse::<OptimizerKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerKind {
    /// 32-bit AdamW exactly as `torch.optim.AdamW` ([`AdamW`](crate::optim::AdamW)); all state on
    /// the device.
    #[default]
    #[serde(rename = "adamw")]
    AdamW,
    /// 32-bit AdamW with the same arithmetic ([`PagedAdamW`](crate::optim::PagedAdamW)): the
    /// moments of parameters stay on the device while their total size (8 bytes per
    /// element) fits `device_budget_bytes`; the others live in host memory and are paged to
    /// the device for their update only. Updates are bit-identical to [`OptimizerKind::AdamW`].
    PagedAdamW {
        /// Device memory allowed for optimizer state, in bytes.
        device_budget_bytes: u64,
    },
    /// AdamW with 8-bit blockwise state as `bitsandbytes.optim.AdamW8bit`
    /// ([`AdamW8bit`](crate::optim::AdamW8bit)): moments quantized per block of 256 with
    /// bitsandbytes' dynamic maps (signed for `m`, unsigned for `v`).
    #[serde(rename = "adamw8bit")]
    AdamW8bit {
        /// Parameters with fewer elements keep 32-bit state (bitsandbytes' `min_8bit_size`,
        /// [`MIN_8BIT_SIZE`] by default).
        min_8bit_size: u64,
    },
}

impl OptimizerKind {
    /// [`OptimizerKind::AdamW8bit`] with bitsandbytes' default `min_8bit_size` (4096).
    pub fn adamw8bit() -> Self {
        OptimizerKind::AdamW8bit {
            min_8bit_size: MIN_8BIT_SIZE,
        }
    }
}

impl core::str::FromStr for OptimizerKind {
    type Err = String;

    /// Parses `adamw`, `paged-adamw:<budget bytes>` or `adamw8bit`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adamw" => return Ok(OptimizerKind::AdamW),
            "adamw8bit" | "adamw-8bit" => return Ok(OptimizerKind::adamw8bit()),
            _ => {}
        }
        if let Some(budget) = s.strip_prefix("paged-adamw:") {
            return budget
                .parse::<u64>()
                .map(|device_budget_bytes| OptimizerKind::PagedAdamW {
                    device_budget_bytes,
                })
                .map_err(|e| format!("paged-adamw budget `{budget}`: {e}"));
        }
        Err(format!(
            "unknown optimizer `{s}` (expected adamw, paged-adamw:<bytes> or adamw8bit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip() {
        for k in [
            OptimizerKind::AdamW,
            OptimizerKind::PagedAdamW {
                device_budget_bytes: 12,
            },
            OptimizerKind::adamw8bit(),
        ] {
            let s = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<OptimizerKind>(&s).unwrap(), k, "{s}");
        }
        assert_eq!(
            serde_json::to_string(&OptimizerKind::AdamW).unwrap(),
            r#"{"kind":"adamw"}"#
        );
        assert!("paged-adamw:x".parse::<OptimizerKind>().is_err());
    }
}
