//! The validation loss: mean cross-entropy over the target tokens of the whole `--eval` set,
//! computed without autodiff and without dropout.

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use qlora_core::train::{causal_lm_loss_sum, collate, CausalLm, Example};

/// `(mean loss over target tokens, target tokens)` of `data` in batches of `batch_size`.
pub fn eval_loss<B, M>(
    model: &M,
    data: &[Example],
    batch_size: usize,
    pad_id: u32,
) -> Result<(f64, usize), String>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    M::InnerModule: CausalLm<B::InnerBackend>,
{
    let model = model.valid();
    let device = model.devices().into_iter().next().unwrap_or_default();
    let (mut sum, mut targets) = (0.0f64, 0usize);
    for chunk in data.chunks(batch_size.max(1)) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let batch = collate::<B::InnerBackend>(&refs, pad_id, &device);
        targets += batch.targets;
        let logits = model.logits(batch.input_ids, batch.attention_mask)?;
        let s: f64 = causal_lm_loss_sum(logits, batch.labels)
            .into_scalar()
            .elem();
        sum += s;
    }
    Ok((sum / targets.max(1) as f64, targets))
}
