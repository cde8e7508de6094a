//! The one internal trait each backend's 4-bit kernels implement, and the choice of kernels by
//! backend.
//!
//! A frozen 4-bit weight is uploaded once, where the backend computes, and stays there:
//!
//! | backend | kernels | where the weight lives |
//! | --- | --- | --- |
//! | burn-ndarray (`NdArray<f32>`) | [`cpu`](super::cpu): SIMD dequantize, 4-bit GEMV for short inputs | host memory, as the [`QuantState`] |
//! | burn-cuda (`Cuda<F>` for f32, bf16, f16, with or without fusion; feature `cuda`) | `cube`: cubecl dequantize and GEMV | device buffers |
//! | `Autodiff<B>` of any of these | the inner backend's, in one operation whose backward dequantizes again (`autodiff.rs`) | as for `B` |
//! | any other burn backend | `tensors.rs`: the weight as burn tensors, dequantized with burn's own ops | device tensors |
//!
//! burn offers no per-operation extension point short of a new trait bound on every generic
//! model, so [`kernels_for`] picks the implementation by the concrete backend type.

use std::any::{Any, TypeId};
use std::fmt::Debug;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;

use super::autodiff::AutodiffWeight;
use super::cpu::HostWeight;
use super::tensors::TensorWeight;
use super::QuantState;
use crate::error::Result;
use crate::same_type::take_as;

/// Where a frozen 4-bit weight lives, which decides the kernels that multiply by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Residency {
    /// Host memory, read by the CPU's SIMD kernels (burn-ndarray).
    Host,
    /// CUDA device buffers, read by the cubecl kernels.
    Cuda,
    /// Device tensors of a backend without kernels of its own, dequantized with burn's ops.
    Tensors,
}

/// What a backend does with a frozen 4-bit weight `W` `[out, in]` that lives where it
/// computes. Implemented once per backend family (see the module docs).
pub(crate) trait Nf4Kernels<B: Backend>: Send + Sync + Debug + 'static {
    /// `x · Wᵀ` for `x` `[rows, in]`, on the device where `W` lives.
    fn matmul(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;

    /// The dense `W` `[out, in]`, in the backend's float type, on the weight's device.
    fn dequantize(&self) -> Tensor<B, 2>;

    /// The quantization state on the host (read back from the device where it lives there;
    /// for saving).
    fn to_quant_state(&self) -> Result<Arc<QuantState>>;

    /// Where the weight lives.
    fn residency(&self) -> Residency;

    /// The device the weight lives on.
    fn device(&self) -> B::Device;

    /// `[out, in]`.
    fn shape(&self) -> [usize; 2];

    /// The same weight's kernels on the inner backend when these are an autodiff wrapper
    /// (an `Arc<dyn Nf4Kernels<IB>>` in the box), so that leaving autodiff copies nothing.
    fn inner_kernels(&self) -> Option<Box<dyn Any>> {
        None
    }
}

/// A shared, type-erased handle on a backend's kernels for one weight.
pub(crate) type SharedKernels<B> = Arc<dyn Nf4Kernels<B>>;

/// Uploads `state` (a 2-D weight) to `device` for the kernels of backend `B`.
pub(crate) fn kernels_for<B: Backend>(
    state: QuantState,
    device: &B::Device,
) -> Result<SharedKernels<B>> {
    let state = Arc::new(state);
    if let Some(k) = host::<B>(&state) {
        return Ok(k);
    }
    #[cfg(feature = "cuda")]
    if let Some(k) = super::cube::kernels_for::<B>(&state, device)? {
        return Ok(k);
    }
    Ok(Arc::new(TensorWeight::<B>::upload(&state, device)?))
}

/// The CPU kernels when `B` is burn-ndarray (`NdArray<f32>`, plain or under autodiff).
fn host<B: Backend>(state: &Arc<QuantState>) -> Option<SharedKernels<B>> {
    let make =
        || -> Result<SharedKernels<NdArray>> { Ok(Arc::new(HostWeight::new(Arc::clone(state)))) };
    for_backend::<NdArray, B>(make).ok().flatten()
}

/// The kernels `make` builds for the inner backend `IB`, seen as `B`'s, when `B` is `IB` or
/// `Autodiff<IB, C>`; `Ok(None)` (and `make` not called) for any other `B`.
pub(crate) fn for_backend<IB: Backend, B: Backend>(
    make: impl FnOnce() -> Result<SharedKernels<IB>>,
) -> Result<Option<SharedKernels<B>>> {
    if !is_or_wraps::<IB, B>() {
        return Ok(None);
    }
    let kernels = make()?;
    Ok(cast::<IB, B>(Arc::clone(&kernels)).or_else(|| wrap_autodiff::<IB, B>(kernels)))
}

/// Whether `B` is `IB` or `Autodiff<IB, C>` for one of the two checkpointing strategies.
fn is_or_wraps<IB: Backend, B: Backend>() -> bool {
    let b = TypeId::of::<B>();
    b == TypeId::of::<IB>()
        || b == TypeId::of::<Autodiff<IB, NoCheckpointing>>()
        || b == TypeId::of::<Autodiff<IB, BalancedCheckpointing>>()
}

/// `kernels` of the inner backend `IB` wrapped for `B` when `B` is `Autodiff<IB, C>` for one of
/// the two checkpointing strategies; `None` for any other `B`.
pub(crate) fn wrap_autodiff<IB: Backend, B: Backend>(
    kernels: SharedKernels<IB>,
) -> Option<SharedKernels<B>> {
    if TypeId::of::<B>() == TypeId::of::<Autodiff<IB, NoCheckpointing>>() {
        let k: SharedKernels<Autodiff<IB, NoCheckpointing>> =
            Arc::new(AutodiffWeight::<IB, NoCheckpointing>::new(kernels));
        return cast(k);
    }
    if TypeId::of::<B>() == TypeId::of::<Autodiff<IB, BalancedCheckpointing>>() {
        let k: SharedKernels<Autodiff<IB, BalancedCheckpointing>> =
            Arc::new(AutodiffWeight::<IB, BalancedCheckpointing>::new(kernels));
        return cast(k);
    }
    None
}

/// The same kernels seen as those of `To` when `From` is `To`.
pub(crate) fn cast<From: Backend, To: Backend>(
    kernels: SharedKernels<From>,
) -> Option<SharedKernels<To>> {
    take_as::<SharedKernels<From>, SharedKernels<To>>(&mut Some(kernels))
}

#[cfg(test)]
mod tests {
    //! Every backend's kernels against each other on burn-ndarray: the host SIMD path, the
    //! portable device-tensor path (on `NdArray<f32>` and `NdArray<f64>`), and both under the
    //! autodiff operation.
    use std::sync::Arc;

    use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
    use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
    use proptest::prelude::*;

    use super::*;
    use crate::quant::{Blocksize, QuantConfig};

    type F64 = NdArray<f64>;

    fn state(
        out: usize,
        inn: usize,
        blocksize: usize,
        double_quant: bool,
        seed: u64,
    ) -> QuantState {
        let mut s = seed | 1;
        let w: Vec<f32> = (0..out * inn)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Some exact zeros (all-zero blocks when a row is short) and a spread of scales.
                if i % 53 == 0 {
                    0.0
                } else {
                    ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * (1.0 + (i % 7) as f32)
                }
            })
            .collect();
        let config = QuantConfig {
            blocksize: Blocksize::new(blocksize).unwrap(),
            double_quant,
        };
        QuantState::quantize(&w, &[out, inn], config).unwrap()
    }

    fn host(q: &QuantState) -> SharedKernels<NdArray> {
        kernels_for::<NdArray>(q.clone(), &Default::default()).unwrap()
    }

    fn tensors<B: Backend>(q: &QuantState) -> SharedKernels<B> {
        Arc::new(TensorWeight::<B>::upload(q, &Default::default()).unwrap())
    }

    fn bits(t: Tensor<NdArray, 2>) -> Vec<u32> {
        let v = t.into_data().into_vec::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The device-tensor dequantization is bit-identical with the host kernels, and reads
        /// back the very state it was given; odd element counts, partial blocks, both absmax
        /// kinds.
        #[test]
        fn device_tensors_dequantize_as_the_host(
            out in 1usize..9,
            inn in 1usize..150,
            bs in prop::sample::select(vec![32usize, 64, 128]),
            dq in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let q = state(out, inn, bs, dq, seed);
            let h = host(&q);
            prop_assert_eq!(h.residency(), Residency::Host);
            let t = tensors::<NdArray>(&q);
            prop_assert_eq!(t.residency(), Residency::Tensors);
            prop_assert_eq!(bits(t.dequantize()), bits(h.dequantize()));
            prop_assert_eq!(&*t.to_quant_state().unwrap(), &q);
            // In f64 the same f32 values, widened.
            let t64 = tensors::<F64>(&q).dequantize().into_data().into_vec::<f64>().unwrap();
            let want = q.dequantize_f32();
            prop_assert!(t64.iter().zip(&want).all(|(a, b)| *a == f64::from(*b)));
        }
    }

    /// Forward (short and long inputs) and the input gradient of every path against burn's
    /// dense autodiff on the dequantized weight.
    #[test]
    fn forward_and_backward_agree_on_every_path() {
        let q = state(24, 128, 64, true, 7);
        let dev = Default::default();
        let dense = host(&q).dequantize();
        for rows in [1usize, 5, 40] {
            let x = Tensor::<NdArray, 2>::random([rows, 128], Distribution::Default, &dev);
            let want_y = x.clone().matmul(dense.clone().transpose());
            let want_g = dense.clone().sum_dim(0).repeat_dim(0, rows);
            for k in [host(&q), tensors::<NdArray>(&q)] {
                check_path::<NoCheckpointing>(&k, &x, &want_y, &want_g);
                check_path::<BalancedCheckpointing>(&k, &x, &want_y, &want_g);
            }
        }
    }

    fn check_path<C: CheckpointStrategy>(
        k: &SharedKernels<NdArray>,
        x: &Tensor<NdArray, 2>,
        want_y: &Tensor<NdArray, 2>,
        want_g: &Tensor<NdArray, 2>,
    ) {
        let tol = Tolerance::absolute(1e-4).set_relative(1e-5);
        k.matmul(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&want_y.to_data(), tol);
        let ad = wrap_autodiff::<NdArray, Autodiff<NdArray, C>>(Arc::clone(k)).unwrap();
        assert_eq!(ad.residency(), k.residency());
        let xa = Tensor::<Autodiff<NdArray, C>, 2>::from_inner(x.clone()).require_grad();
        let y = ad.matmul(xa.clone());
        y.clone()
            .inner()
            .into_data()
            .assert_approx_eq::<f32>(&want_y.to_data(), tol);
        let grads = y.sum().backward();
        xa.grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&want_g.to_data(), tol);
    }

    /// burn-ndarray, plain and under autodiff, gets the host kernels; other backends the
    /// device tensors.
    #[test]
    fn kernels_are_chosen_by_backend() {
        let q = state(4, 64, 64, false, 1);
        let dev = Default::default();
        let r = |k: Residency| k;
        assert_eq!(r(host(&q).residency()), Residency::Host);
        let ad = kernels_for::<Autodiff<NdArray>>(q.clone(), &dev).unwrap();
        assert_eq!(ad.residency(), Residency::Host);
        assert!(ad.inner_kernels().is_some());
        let other = kernels_for::<F64>(q.clone(), &dev).unwrap();
        assert_eq!(other.residency(), Residency::Tensors);
        let y = other.matmul(Tensor::from_data(
            TensorData::new(vec![1.0f64; 64], [1, 64]),
            &dev,
        ));
        assert_eq!(y.dims(), [1, 4]);
    }
}
