//! Rotary position embeddings in the split-halves convention of Hugging Face
//! (`rotate_half`: the first half of each head pairs with the second half), with the default
//! and the LLaMA-3 (`rope_type: "llama3"`) frequencies.
//!
//! burn's `RotaryEncoding` rotates adjacent pairs instead; using it would force permuting the
//! q/k weights (and any PEFT adapter on them), so this module keeps HF's layout.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::{LlamaConfig, RopeScaling};

/// The inverse frequencies of a config, `[head_dim / 2]`, computed in f32 exactly as
/// transformers' `_compute_default_rope_parameters` and `_compute_llama3_parameters` do.
///
/// # Example
/// ```
/// use llama_model::{rope_inv_freq, LlamaConfig};
/// let f = rope_inv_freq(&LlamaConfig::tiny(10));
/// assert_eq!(f.len(), 8);
/// assert_eq!(f[0], 1.0);
/// ```
pub fn rope_inv_freq(config: &LlamaConfig) -> Vec<f32> {
    let dim = config.head_dim;
    let base = config.rope_theta as f32;
    let inv: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0f32 / base.powf(i as f32 / dim as f32))
        .collect();
    match config.rope_scaling {
        RopeScaling::Default => inv,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let factor = factor as f32;
            let (low, high) = (low_freq_factor as f32, high_freq_factor as f32);
            let old_len = original_max_position_embeddings as f32;
            let low_freq_wavelen = old_len / low;
            let high_freq_wavelen = old_len / high;
            inv.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        f
                    };
                    // transformers: ~(wavelen < high) & ~(wavelen > low); wavelen is finite here.
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    if medium {
                        let smooth = (old_len / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

/// Cosine and sine tables for given positions.
///
/// # Shapes
///
/// - positions: `[batch, seq]`
/// - returns `(cos, sin)`, each `[batch, 1, seq, head_dim]` (ready to broadcast over heads)
pub fn rope_cos_sin<B: Backend>(
    inv_freq: &[f32],
    positions: Tensor<B, 2, Int>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let device = positions.device();
    let [batch, seq] = positions.dims();
    let half = inv_freq.len();
    let inv = Tensor::<B, 1>::from_data(TensorData::new(inv_freq.to_vec(), [half]), &device)
        .reshape([1, 1, half]);
    let pos = positions.float().reshape([batch, seq, 1]);
    let freqs = pos.mul(inv);
    let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([batch, 1, seq, 2 * half]);
    (emb.clone().cos(), emb.sin())
}

/// Applies the rotation `x·cos + rotate_half(x)·sin` with `rotate_half(x) = [-x₂, x₁]`.
///
/// # Shapes
///
/// - x: `[batch, heads, seq, head_dim]`
/// - cos, sin: `[batch, 1, seq, head_dim]`
pub fn apply_rotary<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, s, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..half]);
    let x2 = x.clone().slice([0..b, 0..h, 0..s, half..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x.mul(cos.clone()) + rotated.mul(sin.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let mut cfg = LlamaConfig::tiny(10);
        cfg.head_dim = 64;
        let plain = rope_inv_freq(&cfg);
        cfg.rope_scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let scaled = rope_inv_freq(&cfg);
        // wavelength 2π < 64/4: unchanged.
        assert_eq!(scaled[0], plain[0]);
        // the lowest frequency has wavelength ≫ 64: divided by the factor.
        let last = plain.len() - 1;
        assert!((scaled[last] - plain[last] / 8.0).abs() < 1e-12);
        // all scaled frequencies lie between f/8 and f.
        for (s, p) in scaled.iter().zip(&plain) {
            assert!(*s <= *p && *s >= p / 8.0 - 1e-12);
        }
    }

    #[test]
    fn rotation_matches_hand_computation() {
        let dev = Default::default();
        // one head, head_dim 4, position 1, inv_freq [1, 0.5].
        let x = Tensor::<TestBackend, 4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 1, 4]),
            &dev,
        );
        let pos =
            Tensor::<TestBackend, 2, Int>::from_data(TensorData::new(vec![1i64], [1, 1]), &dev);
        let (cos, sin) = rope_cos_sin(&[1.0, 0.5], pos);
        let y: Vec<f32> = apply_rotary(x, &cos, &sin).into_data().to_vec().unwrap();
        let (c1, s1, c2, s2) = (1f32.cos(), 1f32.sin(), 0.5f32.cos(), 0.5f32.sin());
        let want = [
            1.0 * c1 - 3.0 * s1,
            2.0 * c2 - 4.0 * s2,
            3.0 * c1 + 1.0 * s1,
            4.0 * c2 + 2.0 * s2,
        ];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?} vs {want:?}");
        }
    }
}
