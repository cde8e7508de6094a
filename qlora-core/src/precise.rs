//! Softmax, log-softmax and RMSNorm whose gradients keep full f32 accuracy on every backend.
//!
//! burn-autodiff 0.21 differentiates `a / b` with respect to `a` as `grad · recip(b)` and
//! `log(x)` as `grad · recip(x)`, and burn-ndarray evaluates an f32 `recip` with the x86
//! `rcp` instruction, an approximation good to about 12 bits (relative error up to 3.7e-4).
//! So burn's own `softmax` (`exp / sum`), `log_softmax` (`log Σ exp`) and `RmsNorm` (`x / rms`)
//! have gradients off by a few 1e-4 on the CPU backend, where torch's are within ~1e-6 of
//! float64. On the tiny LLaMA of the peft fixtures that made every LoRA gradient 5.3e-4 off
//! (relative to each tensor's largest entry); these versions bring it to the f32 rounding
//! torch has (`llama-model/tests/peft_train.rs`).
//!
//! Each is built from ops whose value and derivative are correctly rounded: the reciprocal is a
//! true division `1 / x` (its derivative, `−1 / x²`, is a division too), and quotients become
//! products with it, as torch's CPU kernels compute them (`exp · (1 / Σ exp)` in softmax,
//! `x · (1 / sqrt(mean(x²) + ε))` in LLaMA's RMSNorm).

use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// `1 / x` element-wise by division, so that the value and the gradient (`−1 / x²`) are
/// correctly rounded (burn's `recip` may be an approximation; see the [module docs](self)).
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// let x = Tensor::<NdArray, 1>::from_data(TensorData::from([3.0f32, 0.25]), &Default::default());
/// let r: Vec<f32> = qlora_core::precise::reciprocal(x).into_data().to_vec().unwrap();
/// assert_eq!(r, vec![1.0 / 3.0, 4.0]);
/// ```
pub fn reciprocal<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.ones_like().div(x)
}

/// Softmax along `dim`: `exp(x − max) · (1 / Σ exp(x − max))`, the maximum detached (it
/// cancels out of the value and the gradient). Same value as burn's `softmax` up to rounding;
/// an exact gradient (see the [module docs](self)).
///
/// # Shapes
///
/// - x: any; output: the same.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// let x = Tensor::<NdArray, 2>::from_data(TensorData::from([[0.0f32, 0.0, f32::MIN]]), &Default::default());
/// let p: Vec<f32> = qlora_core::precise::softmax(x, 1).into_data().to_vec().unwrap();
/// assert_eq!(p, vec![0.5, 0.5, 0.0]);
/// ```
pub fn softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let max = x.clone().detach().max_dim(dim);
    let e = (x - max).exp();
    let inv = reciprocal(e.clone().sum_dim(dim));
    e * inv
}

/// Log-softmax along `dim`: `(x − max) − log Σ exp(x − max)`, the maximum detached. The value
/// is burn's; the gradient of the `log` term is carried by the exact reciprocal of the sum
/// instead of burn's approximate one: `log s` is evaluated on the detached sum `s`, and
/// `(s − detach(s)) · detach(1 / s)` (exactly zero in value) gives it the derivative `1 / s`.
///
/// # Shapes
///
/// - x: any; output: the same.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// let x = Tensor::<NdArray, 2>::from_data(TensorData::from([[1.0f32, 1.0, 1.0, 1.0]]), &Default::default());
/// let l: Vec<f32> = qlora_core::precise::log_softmax(x, 1).into_data().to_vec().unwrap();
/// assert!(l.iter().all(|&v| (v + 4f32.ln()).abs() < 1e-6));
/// ```
pub fn log_softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let max = x.clone().detach().max_dim(dim);
    let shifted = x - max;
    let sum = shifted.clone().exp().sum_dim(dim);
    let fixed = sum.clone().detach();
    let lse = fixed.clone().log() + (sum - fixed.clone()) * reciprocal(fixed);
    shifted - lse
}

/// LLaMA's RMSNorm with `norm`'s weight and epsilon, as transformers' `LlamaRMSNorm`:
/// `weight · (x · (1 / sqrt(mean(x²) + ε)))`, computed in f32 for half-precision inputs and
/// cast back before the weight. Replaces [`RmsNorm::forward`] (which divides by the root mean
/// square, see the [module docs](self)).
///
/// # Shapes
///
/// - x: `[..., d_model]`; output: the same.
///
/// ```
/// use burn::nn::RmsNormConfig;
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// let dev = Default::default();
/// let norm = RmsNormConfig::new(2).with_epsilon(1e-6).init::<NdArray>(&dev);
/// let x = Tensor::<NdArray, 2>::from_data(TensorData::from([[3.0f32, 4.0]]), &dev);
/// let y: Vec<f32> = qlora_core::precise::rms_norm(&norm, x).into_data().to_vec().unwrap();
/// // root mean square of (3, 4) is sqrt(12.5)
/// assert!((y[0] - 3.0 / 12.5f32.sqrt()).abs() < 1e-6);
/// ```
pub fn rms_norm<B: Backend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    let compute = match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    };
    let x = x.cast(compute);
    let inv = reciprocal(
        x.clone()
            .square()
            .mean_dim(D - 1)
            .add_scalar(norm.epsilon)
            .sqrt(),
    );
    (x * inv).cast(dtype) * norm.gamma.val().unsqueeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::RmsNormConfig;
    use burn::tensor::{Bool, Int, TensorData};
    use burn_autodiff::Autodiff;
    use proptest::prelude::*;

    type AB = Autodiff<crate::dense::TestBackend>;

    /// `n` values in `[-scale, scale)` from a seed (xorshift).
    fn fill(n: usize, seed: u64, scale: f64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0 * scale) as f32
            })
            .collect()
    }

    fn tensor<const D: usize>(v: &[f32], shape: [usize; D], dtype: DType) -> Tensor<AB, D> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), shape),
            (&Default::default(), dtype),
        )
    }

    fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data().convert::<f64>().to_vec().unwrap()
    }

    /// max |a − b| / max |b|.
    fn rel(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    /// The value and the input gradient of `Σ w · f(x)` in `dtype`.
    fn value_and_grad<const D: usize>(
        x: &[f32],
        w: &[f32],
        shape: [usize; D],
        dtype: DType,
        f: &dyn Fn(Tensor<AB, D>) -> Tensor<AB, D>,
    ) -> (Vec<f64>, Vec<f64>) {
        let x = tensor(x, shape, dtype).require_grad();
        let y = f(x.clone());
        let grads = (y.clone() * tensor(w, shape, dtype)).sum().backward();
        (values(y), values(x.grad(&grads).unwrap()))
    }

    /// Ours in f32 against burn's own op in f64 (burn-ndarray's f64 reciprocal is exact):
    /// the value's and the gradient's `max |ours − f64| / max |f64|`.
    fn check<const D: usize>(
        shape: [usize; D],
        x: &[f32],
        ours: &dyn Fn(Tensor<AB, D>) -> Tensor<AB, D>,
        reference: &dyn Fn(Tensor<AB, D>) -> Tensor<AB, D>,
    ) -> (f64, f64) {
        let (v, g, _) = check_grad(shape, x, ours, reference);
        (v, g)
    }

    /// [`check`] plus the gradient's `max |ours − f64|` (the upstream gradient is in [-1, 1]).
    fn check_grad<const D: usize>(
        shape: [usize; D],
        x: &[f32],
        ours: &dyn Fn(Tensor<AB, D>) -> Tensor<AB, D>,
        reference: &dyn Fn(Tensor<AB, D>) -> Tensor<AB, D>,
    ) -> (f64, f64, f64) {
        let w = fill(x.len(), 99, 1.0);
        let (v32, g32) = value_and_grad(x, &w, shape, DType::F32, ours);
        let (v64, g64) = value_and_grad(x, &w, shape, DType::F64, reference);
        let abs = g32
            .iter()
            .zip(&g64)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        (rel(&v32, &v64), rel(&g32, &g64), abs)
    }

    fn causal_mask(b: usize, h: usize, s: usize) -> Tensor<AB, 4, Bool> {
        let m: Vec<bool> = (0..s * s).map(|k| k % s > k / s).collect();
        Tensor::<AB, 2, Bool>::from_data(TensorData::new(m, [s, s]), &Default::default())
            .unsqueeze::<4>()
            .expand([b, h, s, s])
    }

    /// Causally masked attention scores (as llama-model fills them): burn's softmax has a
    /// gradient 5.9e-4 off here (measured), ours the f32 rounding.
    #[test]
    fn masked_softmax_gradient_is_f32_accurate() {
        let [b, h, s] = [4, 4, 11];
        let x = fill(b * h * s * s, 2, 3.0);
        let masked = |f: fn(Tensor<AB, 4>, usize) -> Tensor<AB, 4>| {
            move |x: Tensor<AB, 4>| f(x.mask_fill(causal_mask(b, h, s), f32::MIN), 3)
        };
        let (v, g) = check(
            [b, h, s, s],
            &x,
            &masked(softmax),
            &masked(burn::tensor::activation::softmax),
        );
        assert!(v < 1e-6 && g < 2e-6, "value {v:e}, gradient {g:e}");
    }

    /// Log-softmax over a vocabulary with the loss's gather: gradient at f32 rounding.
    #[test]
    fn log_softmax_gradient_is_f32_accurate() {
        let [b, s, v] = [4, 10, 320];
        let x = fill(b * s * v, 1, 8.0);
        let labels: Vec<i64> = (0..b * s).map(|i| (i * 37 % v) as i64).collect();
        let loss = |f: fn(Tensor<AB, 3>, usize) -> Tensor<AB, 3>| {
            let labels = labels.clone();
            move |x: Tensor<AB, 3>| {
                let l = Tensor::<AB, 2, Int>::from_data(
                    TensorData::new(labels.clone(), [b, s]),
                    &Default::default(),
                );
                f(x, 2).gather(2, l.unsqueeze_dim::<3>(2))
            }
        };
        let (val, g) = check(
            [b, s, v],
            &x,
            &loss(log_softmax),
            &loss(burn::tensor::activation::log_softmax),
        );
        assert!(val < 1e-6 && g < 1e-6, "value {val:e}, gradient {g:e}");
    }

    /// RMSNorm against burn's `RmsNorm` in f64 (values and input gradients).
    #[test]
    fn rms_norm_gradient_is_f32_accurate() {
        let [b, s, d] = [4, 11, 64];
        let x = fill(b * s * d, 5, 2.0);
        let gamma = fill(d, 6, 1.0);
        let norm = |dtype: DType| {
            let mut n = RmsNormConfig::new(d)
                .with_epsilon(1e-5)
                .init::<AB>(&Default::default());
            n.gamma = Param::from_tensor(tensor(&gamma, [d], dtype));
            n
        };
        let (n32, n64) = (norm(DType::F32), norm(DType::F64));
        let (v, g) = check(
            [b, s, d],
            &x,
            &|x| rms_norm(&n32, x),
            // In f64 by the formula (burn's `RmsNorm` takes the root mean square in f32).
            &|x: Tensor<AB, 3>| {
                let rms = x.clone().square().mean_dim(2).add_scalar(1e-5).sqrt();
                (x / rms) * n64.gamma.val().unsqueeze()
            },
        );
        assert!(v < 1e-6 && g < 2e-6, "value {v:e}, gradient {g:e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Softmax rows sum to one and the value and gradient match f64 for any row length,
        /// scale and seed. The gradient `y·(g − Σ g·y)` cancels when one `y` is near 1, in
        /// any f32 evaluation, so its error is bounded by the f32 rounding of the upstream
        /// gradient `g` (|g| ≤ 1); burn's softmax errs by up to 3.7e-4 there. (At least 32
        /// rows: burn-ndarray takes its approximate SIMD reciprocal from 32 elements on.)
        #[test]
        fn softmax_matches_f64(rows in 32usize..80, len in 1usize..40, scale in 0.01f64..30.0, seed: u64) {
            let x = fill(rows * len, seed, scale);
            let (v, _, g) = check_grad(
                [rows, len],
                &x,
                &|x| softmax(x, 1),
                &|x| burn::tensor::activation::softmax(x, 1),
            );
            prop_assert!(v < 1e-6 && g < 4e-7, "value {v:e}, gradient {g:e}");
            let p: Vec<f32> = softmax(tensor(&x, [rows, len], DType::F32), 1)
                .into_data()
                .to_vec()
                .unwrap();
            for row in p.chunks(len) {
                let sum: f32 = row.iter().sum();
                prop_assert!((sum - 1.0).abs() < 1e-5, "row sum {sum}");
            }
        }
    }
}
