//! Causal-LM cross-entropy on target tokens only, as transformers' `ForCausalLMLoss`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::precise::log_softmax;

/// The label value that excludes a position from the loss.
pub const IGNORE_INDEX: i64 = -100;

/// Sum of the token negative log-likelihoods over positions whose (shifted) label is not
/// [`IGNORE_INDEX`]: the logits at position `t` predict the label at `t + 1`.
///
/// # Shapes
///
/// - logits: `[batch, seq, vocab]`
/// - labels: `[batch, seq]`
/// - output: `[1]`
pub fn causal_lm_loss_sum<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
) -> Tensor<B, 1> {
    let [b, s, v] = logits.dims();
    if s < 2 {
        return logits.sum().mul_scalar(0.0);
    }
    let logits = logits.slice([0..b, 0..s - 1, 0..v]);
    let labels = labels.slice([0..b, 1..s]);
    let mask = labels.clone().not_equal_elem(IGNORE_INDEX).float();
    let safe = labels.clamp_min(0);
    let logp = log_softmax(logits, 2);
    let picked = logp
        .gather(2, safe.unsqueeze_dim::<3>(2))
        .reshape([b, s - 1]);
    (picked * mask).sum().neg()
}

/// Mean cross-entropy over target tokens (transformers' causal-LM loss with
/// `ignore_index=-100`); `count` is the number of target tokens after the shift.
///
/// ```
/// use burn::tensor::{Int, Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::train::causal_lm_loss;
/// let dev = Default::default();
/// // Uniform logits over 4 classes: loss = ln 4 on every target.
/// let logits = Tensor::<NdArray, 3>::zeros([1, 3, 4], &dev);
/// let labels = Tensor::<NdArray, 2, Int>::from_data(TensorData::new(vec![-100i64, 2, -100], [1, 3]), &dev);
/// let l: f32 = causal_lm_loss(logits, labels, 1).into_scalar();
/// assert!((l - 4f32.ln()).abs() < 1e-6);
/// ```
pub fn causal_lm_loss<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
    count: usize,
) -> Tensor<B, 1> {
    causal_lm_loss_sum(logits, labels).div_scalar(count.max(1) as f64)
}

/// Number of target tokens of one sequence's labels after the shift.
pub fn count_targets(labels: &[i64]) -> usize {
    labels
        .iter()
        .skip(1)
        .filter(|&&l| l != IGNORE_INDEX)
        .count()
}
