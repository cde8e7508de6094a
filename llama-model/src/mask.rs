//! Which keys each query may see: causal order, padding and Mistral's sliding window, exactly
//! as transformers 5.23's `masking_utils` builds them.
//!
//! Queries and keys are numbered by their slot in the (left-padded) sequence, cached slots
//! first: query `i` of a step sits at slot `past + i`. transformers' mask functions work on
//! the same slot indices (`q_idx`, `kv_idx` in `create_causal_mask` /
//! `create_sliding_window_causal_mask`), so padding slots count towards the window, and a key
//! at slot `k` is visible to the query at slot `q` iff
//!
//! - `k <= q` (causal; this also hides cache slots not written yet, which all lie after the
//!   step's queries),
//! - `k > q - sliding_window` when the model has a window (Mistral's
//!   `sliding_window_overlay`: the query and the `sliding_window - 1` slots before it), and
//! - key `k` is not padding.
//!
//! In decoding, transformers' `DynamicSlidingWindowLayer` keeps the last `sliding_window - 1`
//! keys and offsets the mask to them (`get_mask_sizes`): the new query at slot `p` sees slots
//! `p - sliding_window + 1 ..= p`, the same rule as in prefill, which is what the cache here
//! applies over its whole capacity.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

/// The hidden keys of one step: `[batch, 1, queries, keys]`, true where query `i` (at slot
/// `past + i`) must not see key slot `k`.
///
/// # Shapes
///
/// - padding: `[batch, keys]`, 0 for padding slots (`None`: no padding)
/// - output: `[batch, 1, queries, keys]`
pub(crate) fn hidden_keys<B: Backend>(
    batch: usize,
    queries: usize,
    past: usize,
    keys: usize,
    window: Option<usize>,
    padding: Option<Tensor<B, 2, Int>>,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let q = Tensor::<B, 1, Int>::arange(past as i64..(past + queries) as i64, device)
        .reshape([queries, 1]);
    let k = Tensor::<B, 1, Int>::arange(0..keys as i64, device).reshape([1, keys]);
    let mut hidden = k.clone().greater(q.clone());
    if let Some(w) = window {
        // k <= q - w  <=>  k + w <= q
        hidden = hidden.bool_or(k.add_scalar(w as i64).lower_equal(q));
    }
    let hidden = hidden
        .reshape([1, 1, queries, keys])
        .expand([batch, 1, queries, keys]);
    match padding {
        Some(p) => hidden.bool_or(
            p.equal_elem(0)
                .reshape([batch, 1, 1, keys])
                .expand([batch, 1, queries, keys]),
        ),
        None => hidden,
    }
}

/// Position ids as transformers' `generate` derives them from the attention mask:
/// `cumsum(mask) - 1`, padding at 1; returned for slots `past..past + queries`.
///
/// # Shapes
///
/// - padding: `[batch, keys]` with `keys >= past + queries`
/// - output: `[batch, queries]`
pub(crate) fn positions_from_padding<B: Backend>(
    padding: Tensor<B, 2, Int>,
    past: usize,
    queries: usize,
) -> Tensor<B, 2, Int> {
    let [b, _] = padding.dims();
    let pad = padding.clone().equal_elem(0);
    (padding.cumsum(1) - 1)
        .mask_fill(pad, 1)
        .slice([0..b, past..past + queries])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;
    use burn::tensor::TensorData;

    fn rows(t: Tensor<TestBackend, 4, Bool>) -> Vec<Vec<u8>> {
        let [_, _, q, k] = t.dims();
        let v: Vec<bool> = t.into_data().to_vec().unwrap();
        (0..q)
            .map(|i| {
                v[i * k..(i + 1) * k]
                    .iter()
                    .map(|&h| u8::from(!h))
                    .collect()
            })
            .collect()
    }

    /// transformers' `sdpa_mask(..., mask_function=sliding_window_causal_mask_function(3))`
    /// docstring example: 5 queries over 5 keys, window 3 (1 = visible).
    #[test]
    fn sliding_window_matches_the_transformers_docstring() {
        let m = hidden_keys::<TestBackend>(1, 5, 0, 5, Some(3), None, &Default::default());
        assert_eq!(
            rows(m),
            vec![
                vec![1, 0, 0, 0, 0],
                vec![1, 1, 0, 0, 0],
                vec![1, 1, 1, 0, 0],
                vec![0, 1, 1, 1, 0],
                vec![0, 0, 1, 1, 1],
            ]
        );
    }

    /// A decode step at slot 6 over a capacity of 9 slots, window 3, slot 1 padding: it sees
    /// slots 4, 5, 6; slots 7 and 8 are not written yet.
    #[test]
    fn decode_step_sees_the_window_before_it_and_nothing_unwritten() {
        let dev = Default::default();
        let pad = Tensor::<TestBackend, 2, Int>::from_data(
            TensorData::new(vec![1i64, 0, 1, 1, 1, 1, 1, 1, 1], [1, 9]),
            &dev,
        );
        let m = hidden_keys(1, 1, 6, 9, Some(3), Some(pad.clone()), &dev);
        assert_eq!(rows(m), vec![vec![0, 0, 0, 0, 1, 1, 1, 0, 0]]);
        let m = hidden_keys(1, 1, 6, 9, None, Some(pad.clone()), &dev);
        assert_eq!(rows(m), vec![vec![1, 0, 1, 1, 1, 1, 1, 0, 0]]);
        let p: Vec<i64> = positions_from_padding(pad, 6, 2)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        assert_eq!(p, vec![5, 6]);
    }
}
