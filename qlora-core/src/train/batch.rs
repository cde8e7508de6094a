//! Training examples and their collation into padded batches.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::loss::{count_targets, IGNORE_INDEX};

/// One tokenized training sequence. Without `labels`, every token is a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// Per-token labels (`-100` = no loss), same length as `input_ids`.
    #[serde(default)]
    pub labels: Option<Vec<i64>>,
}

impl Example {
    /// The labels, defaulting to the input ids.
    pub fn labels(&self) -> Vec<i64> {
        match &self.labels {
            Some(l) => l.clone(),
            None => self.input_ids.iter().map(|&t| t as i64).collect(),
        }
    }

    /// Checks non-emptiness, label length and `max_len`; `index` names the example in errors.
    pub fn validate(&self, index: usize, max_len: usize) -> Result<(), TrainError> {
        let bad = |reason: String| TrainError::BadExample { index, reason };
        if self.input_ids.is_empty() {
            return Err(bad("input_ids is empty".into()));
        }
        if self.input_ids.len() > max_len {
            return Err(bad(format!(
                "{} tokens, longer than the maximum sequence length {max_len}",
                self.input_ids.len()
            )));
        }
        if let Some(l) = &self.labels {
            if l.len() != self.input_ids.len() {
                return Err(bad(format!(
                    "labels has {} entries, input_ids {}",
                    l.len(),
                    self.input_ids.len()
                )));
            }
            if let Some(v) = l.iter().find(|&&v| v < 0 && v != IGNORE_INDEX) {
                return Err(bad(format!("label {v} is negative and not -100")));
            }
        }
        Ok(())
    }
}

/// A right-padded batch: pads get attention mask 0 and label -100.
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// `[batch, seq]`.
    pub input_ids: Tensor<B, 2, Int>,
    /// `[batch, seq]`, 1 = real token, 0 = padding (HF convention).
    pub attention_mask: Tensor<B, 2, Int>,
    /// `[batch, seq]`, `-100` where no loss.
    pub labels: Tensor<B, 2, Int>,
    /// Real (non-pad) tokens.
    pub tokens: usize,
    /// Target tokens after the shift.
    pub targets: usize,
}

/// Pads `examples` to the longest one with `pad_id`.
pub fn collate<B: Backend>(examples: &[&Example], pad_id: u32, device: &B::Device) -> Batch<B> {
    let len = examples
        .iter()
        .map(|e| e.input_ids.len())
        .max()
        .unwrap_or(0);
    let n = examples.len();
    let (mut ids, mut mask, mut labels) = (
        Vec::with_capacity(n * len),
        Vec::with_capacity(n * len),
        Vec::with_capacity(n * len),
    );
    let (mut tokens, mut targets) = (0, 0);
    for e in examples {
        let l = e.labels();
        targets += count_targets(&l);
        tokens += e.input_ids.len();
        let real = e.input_ids.len();
        let pad = len - real;
        ids.extend(
            e.input_ids
                .iter()
                .map(|&t| t as i64)
                .chain(std::iter::repeat_n(pad_id as i64, pad)),
        );
        mask.extend(std::iter::repeat_n(1i64, real).chain(std::iter::repeat_n(0, pad)));
        labels.extend(
            l.iter()
                .copied()
                .chain(std::iter::repeat(IGNORE_INDEX))
                .take(len),
        );
    }
    let t = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [n, len]), device);
    Batch {
        input_ids: t(ids),
        attention_mask: t(mask),
        labels: t(labels),
        tokens,
        targets,
    }
}
