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

use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::Tensor;

/// `x · Wᵀ (+ b)` with `W` `[out, in]` as stored (and `b` `[out]`).
///
/// Outside autodiff, when moving the input and output (`rows · (in + out)` elements) is cheaper
/// than moving the weight (`out · in`), the product is computed as `(W · xᵀ)ᵀ` so that the
/// weight is read in its stored layout (see the module docs); otherwise it is burn's
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
/// use qlora_core::lora::frozen_linear;
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
    let y = weight
        .matmul(x.reshape([rows, inn]).transpose())
        .transpose();
    let mut out_dims = dims;
    out_dims[D - 1] = out;
    let y = y.reshape(out_dims);
    match bias {
        Some(b) => y + b.unsqueeze::<D>(),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lora::{TestAutodiffBackend, TestBackend};
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
