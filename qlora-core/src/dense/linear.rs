//! [`frozen_linear`]: `x · Wᵀ (+ b)` for a weight stored `[out, in]` (PyTorch's layout), without
//! copying the weight when the input is short.
//!
//! burn's `linear` takes the weight `[in, out]`, so a `[out, in]` weight goes in as the
//! transposed view `Wᵀ`. burn-ndarray's matmul first reshapes its operands, and reshaping a
//! non-contiguous view copies it element by element into row-major order: the *whole weight*,
//! in a cache-hostile strided gather, on every call. For a decode step (one token) that copy
//! costs several times the product itself (measured on one core: 2048x2048 weight, one row,
//! 108 ms vs 24 ms; 32000x1024 head 1437 ms vs 172 ms). Computing `(W · xᵀ)ᵀ` instead keeps `W`
//! in its stored layout and moves only `x` and `y`, which are small when the input is short.
//! The two forms give the same numbers (the same dot products).
//!
//! On burn-ndarray (f32), inputs of at most [`HOST_GEMV_MAX_ROWS`](super::HOST_GEMV_MAX_ROWS)
//! rows go further: the product is taken on the weight's own buffer ([`f32_matmul`], dot
//! products over output features on all cores), because matrixmultiply still packs (copies)
//! the whole weight on every call. [`f32_matmul_reference`](super::f32_matmul_reference) is its definition; the two differ
//! by the order of f32 additions only.

use std::any::TypeId;

use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Tensor, TensorData};
use burn_ndarray::{NdArray, NdArrayTensor};

use super::matmul::f32_matmul;
use super::HOST_GEMV_MAX_ROWS;
use crate::same_type::as_ref;

/// `x · Wᵀ (+ b)` with `W` `[out, in]` as stored (and `b` `[out]`).
///
/// Outside autodiff, when moving the input and output (`rows · (in + out)` elements) is cheaper
/// than moving the weight (`out · in`), the product is computed as `(W · xᵀ)ᵀ` so that the
/// weight is read in its stored layout, on burn-ndarray with at most `HOST_GEMV_MAX_ROWS` rows
/// by [`f32_matmul`] on the weight's buffer (see the module docs); otherwise it is burn's
/// `linear(x, Wᵀ, b)`. Training keeps burn's form, and with it the gradients it was checked
/// with.
///
/// # Shapes
/// - `x`: `[..., in]`
/// - `weight`: `[out, in]`
/// - output: `[..., out]`
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use burn_ndarray::NdArray;
/// use qlora_core::dense::frozen_linear;
/// let dev = Default::default();
/// let w = Tensor::<NdArray, 2>::random([32, 8], Distribution::Normal(0.0, 1.0), &dev);
/// let x = Tensor::<NdArray, 3>::random([1, 1, 8], Distribution::Normal(0.0, 1.0), &dev);
/// let y = frozen_linear(x.clone(), w.clone(), None);
/// let want = burn::tensor::module::linear(x, w.transpose(), None);
/// y.into_data().assert_approx_eq::<f32>(&want.into_data(), Default::default());
/// ```
pub fn frozen_linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    let dims = x.dims();
    let [out, inn] = weight.dims();
    let rows: usize = dims[..D.saturating_sub(1)].iter().product();
    let short = rows.saturating_mul(inn + out) < out.saturating_mul(inn);
    if D < 2 || !short || B::ad_enabled(&x.device()) || dims[D - 1] != inn {
        return linear(x, weight.transpose(), bias);
    }
    let out_dims = with_last_dim(dims, out);
    let y = match host_matmul(&x, &weight, rows) {
        Some(y) => Tensor::from_data(TensorData::new(y, out_dims), &x.device()),
        None => weight
            .matmul(x.reshape([rows, inn]).transpose())
            .transpose()
            .reshape(out_dims),
    };
    add_bias(y, bias)
}

/// `dims` with the last (feature) dimension replaced by `last`: the output shape of a linear
/// layer with `last` output features.
pub(crate) fn with_last_dim<const D: usize>(mut dims: [usize; D], last: usize) -> [usize; D] {
    if let Some(d) = dims.last_mut() {
        *d = last;
    }
    dims
}

/// `y + b`, the bias broadcast over every leading dimension; `y` when there is no bias.
pub(crate) fn add_bias<B: Backend, const D: usize>(
    y: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    match bias {
        Some(b) => y + b.unsqueeze::<D>(),
        None => y,
    }
}

/// [`f32_matmul`] on the weight's burn-ndarray buffer, when the backend is `NdArray<f32>`, the
/// weight is a contiguous f32 array and the input has at most `HOST_GEMV_MAX_ROWS` rows.
fn host_matmul<B: Backend, const D: usize>(
    x: &Tensor<B, D>,
    weight: &Tensor<B, 2>,
    rows: usize,
) -> Option<Vec<f32>> {
    if rows > HOST_GEMV_MAX_ROWS || TypeId::of::<B>() != TypeId::of::<NdArray<f32>>() {
        return None;
    }
    let [out, inn] = weight.dims();
    // A clone of the weight shares its buffer (reference-counted); nothing is copied.
    let primitive = weight.clone().into_primitive().tensor();
    let NdArrayTensor::F32(storage) = as_ref::<_, NdArrayTensor>(&primitive)? else {
        return None;
    };
    let view = storage.view();
    let w = view.as_slice()?;
    let xs = x.to_data().convert::<f32>().into_vec::<f32>().ok()?;
    f32_matmul(w, [out, inn], &xs, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::{f32_matmul_reference, TestAutodiffBackend, TestBackend};
    use burn::tensor::{Distribution, Tolerance};

    /// Both forms (short inputs take `(W · xᵀ)ᵀ`, long ones burn's `linear`) against burn's
    /// `linear` with the transposed weight, ranks 2 to 4, with and without bias.
    #[test]
    fn equals_burn_linear_for_short_and_long_inputs() {
        let dev = Default::default();
        let w = Tensor::<TestBackend, 2>::random([40, 24], Distribution::Normal(0.0, 1.0), &dev);
        let b = Tensor::<TestBackend, 1>::random([40], Distribution::Normal(0.0, 1.0), &dev);
        let tol = Tolerance::absolute(1e-5).set_relative(1e-6);
        for rows in [1usize, 3, 14, 15, 64] {
            for bias in [None, Some(b.clone())] {
                let x2 = Tensor::<TestBackend, 2>::random([rows, 24], Distribution::Default, &dev);
                let want = linear(x2.clone(), w.clone().transpose(), bias.clone());
                let got = frozen_linear(x2.clone(), w.clone(), bias.clone());
                got.into_data()
                    .assert_approx_eq::<f32>(&want.into_data(), tol);

                let x3 = x2.clone().reshape([1, rows, 24]);
                let want = linear(x3.clone(), w.clone().transpose(), bias.clone());
                let got = frozen_linear(x3, w.clone(), bias.clone());
                assert_eq!(got.dims(), [1, rows, 40]);
                got.into_data()
                    .assert_approx_eq::<f32>(&want.into_data(), tol);

                let x4 = x2.reshape([1, 1, rows, 24]);
                let want = linear(x4.clone(), w.clone().transpose(), bias.clone());
                let got = frozen_linear(x4, w.clone(), bias.clone());
                got.into_data()
                    .assert_approx_eq::<f32>(&want.into_data(), tol);
            }
        }
    }

    /// A one-token input on burn-ndarray goes through `f32_matmul` on the weight's buffer.
    #[test]
    fn short_inputs_on_ndarray_take_the_host_kernel() {
        let dev = Default::default();
        let w = Tensor::<TestBackend, 2>::random([70, 48], Distribution::Default, &dev);
        let x = Tensor::<TestBackend, 3>::random([1, 1, 48], Distribution::Default, &dev);
        let got = frozen_linear(x.clone(), w.clone(), None).into_data();
        let ws = w.into_data().into_vec::<f32>().unwrap();
        let xs = x.into_data().into_vec::<f32>().unwrap();
        let want = f32_matmul(&ws, [70, 48], &xs, 1).unwrap();
        assert_eq!(got.into_vec::<f32>().unwrap(), want);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The kernel against its definition, over shapes (incl. empty ones) and values.
        #[test]
        fn f32_matmul_equals_its_reference(
            rows in 0usize..18,
            out in 0usize..80,
            inn in 0usize..70,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let mut s = seed | 1;
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            };
            let w: Vec<f32> = (0..out * inn).map(|_| next()).collect();
            let x: Vec<f32> = (0..rows * inn).map(|_| next() * 4.0).collect();
            let fast = f32_matmul(&w, [out, inn], &x, rows).unwrap();
            let slow = f32_matmul_reference(&w, [out, inn], &x, rows).unwrap();
            proptest::prop_assert_eq!(fast.len(), rows * out);
            for (a, b) in fast.iter().zip(&slow) {
                proptest::prop_assert!((a - b).abs() <= 1e-5 * (1.0 + inn as f32));
            }
            // A shape that does not fit the lengths is refused.
            proptest::prop_assert!(f32_matmul(&w, [out + 1, inn], &x, rows).is_none() || inn == 0);
            proptest::prop_assert!(f32_matmul(&w, [out, inn + 1], &x, rows).is_none() || out + rows == 0);
        }
    }

    #[test]
    fn gradients_under_autodiff_are_burn_linears() {
        let dev = Default::default();
        let w = Tensor::<TestAutodiffBackend, 2>::random([40, 24], Distribution::Default, &dev);
        let x = Tensor::<TestAutodiffBackend, 2>::random([2, 24], Distribution::Default, &dev)
            .require_grad();
        let grads = frozen_linear(x.clone(), w.clone(), None).sum().backward();
        let gx = x.grad(&grads).expect("x has a gradient");
        // d(sum(x Wᵀ))/dx = column sums of W in every row.
        let want = w.inner().sum_dim(0).repeat_dim(0, 2);
        gx.into_data()
            .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-5));
    }
}
