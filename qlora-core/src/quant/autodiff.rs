//! The frozen 4-bit matmul as one autodiff operation whose backward re-dequantizes.
//!
//! burn-autodiff differentiates `x · Wᵀ` through its generic matmul, which keeps both operands
//! until `backward()`: for a frozen NF4 layer that is the whole dequantized f32 weight of every
//! layer, held from the forward to the backward pass (4 bytes per parameter on top of the
//! half-byte 4-bit copy; more than the model itself). bitsandbytes' `MatMul4Bit` instead saves
//! only the 4-bit state and dequantizes again in its backward. [`AutodiffWeight`] does the
//! same: it registers one node whose state is the shared 4-bit weight, computes the forward
//! on the inner backend (the transient dequantized weight is dropped when the forward returns)
//! and, in the backward, dequantizes again to compute `∂L/∂x = ∂L/∂y · W`. The weight gets no
//! gradient.
//!
//! [`AutodiffWeight`] wraps the inner backend's kernels ([`Nf4Kernels`]): the forward is theirs
//! (the 4-bit GEMV or dequantize-and-multiply, on the weight's device) and the backward
//! dequantizes with them again. It serves `Autodiff<B, C>` for every `B` with kernels of its
//! own, for both checkpoint strategies ([`kernels_for`](super::kernels::kernels_for) chooses).

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;

use super::kernels::{Nf4Kernels, Residency, SharedKernels};
use super::QuantState;
use crate::error::Result;

/// The frozen 4-bit weight of an `Autodiff<IB, C>` layer: the inner backend's kernels, and one
/// autodiff operation per product.
pub(crate) struct AutodiffWeight<IB: Backend, C: CheckpointStrategy> {
    inner: SharedKernels<IB>,
    strategy: PhantomData<fn() -> C>,
}

impl<IB: Backend, C: CheckpointStrategy> AutodiffWeight<IB, C> {
    /// Wraps the inner backend's kernels.
    pub(crate) fn new(inner: SharedKernels<IB>) -> Self {
        AutodiffWeight {
            inner,
            strategy: PhantomData,
        }
    }
}

impl<IB: Backend, C: CheckpointStrategy> fmt::Debug for AutodiffWeight<IB, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutodiffWeight")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<IB: Backend, C: CheckpointStrategy> Nf4Kernels<Autodiff<IB, C>> for AutodiffWeight<IB, C> {
    /// `x · dequant(W)ᵀ` as one operation whose backward re-dequantizes `W`.
    fn matmul(&self, x: Tensor<Autodiff<IB, C>, 2>) -> Tensor<Autodiff<IB, C>, 2> {
        let x = x.into_primitive().tensor();
        let y = forward::<IB, C>(x, &self.inner);
        Tensor::from_primitive(TensorPrimitive::Float(y))
    }

    fn dequantize(&self) -> Tensor<Autodiff<IB, C>, 2> {
        Tensor::from_inner(self.inner.dequantize())
    }

    fn to_quant_state(&self) -> Result<Arc<QuantState>> {
        self.inner.to_quant_state()
    }

    fn residency(&self) -> Residency {
        self.inner.residency()
    }

    fn device(&self) -> IB::Device {
        self.inner.device()
    }

    fn shape(&self) -> [usize; 2] {
        self.inner.shape()
    }

    fn inner_kernels(&self) -> Option<Box<dyn Any>> {
        Some(Box::new(Arc::clone(&self.inner)))
    }
}

/// The registered operation: the state is the shared 4-bit weight, nothing of `x`.
#[derive(Debug)]
struct FrozenNf4Matmul;

impl<IB: Backend> Backward<IB, 1> for FrozenNf4Matmul {
    type State = SharedKernels<IB>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let weight = ops.state;
        unary::<IB, _>(ops.parents, ops.node, grads, |grad| {
            // ∂L/∂x = ∂L/∂y · W, with W dequantized again (and dropped) here.
            let w = weight.dequantize().cast(grad.dtype());
            IB::float_matmul(grad, w.into_primitive().tensor())
        });
    }
}

fn forward<IB: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<IB, C>>,
    weight: &SharedKernels<IB>,
) -> FloatTensor<Autodiff<IB, C>> {
    let y = weight
        .matmul(Tensor::from_primitive(TensorPrimitive::Float(x.primitive)))
        .into_primitive()
        .tensor();
    match FrozenNf4Matmul
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(Arc::clone(weight), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
