//! The frozen 4-bit matmul as one autodiff operation whose backward re-dequantizes.
//!
//! burn-autodiff differentiates `x · Wᵀ` through its generic matmul, which keeps both operands
//! until `backward()`: for a frozen NF4 layer that is the whole dequantized f32 weight of every
//! layer, held from the forward to the backward pass (4 bytes per parameter on top of the
//! half-byte 4-bit copy; more than the model itself). bitsandbytes' `MatMul4Bit` instead saves
//! only the 4-bit state and dequantizes again in its backward. [`frozen_nf4_matmul`] does the
//! same: it registers one node whose state is the shared [`QuantState`], computes the forward
//! on the inner backend (the transient dequantized weight is dropped when the forward returns)
//! and, in the backward, dequantizes again to compute `∂L/∂x = ∂L/∂y · W`. The weight gets no
//! gradient.
//!
//! burn has no way to add an operation to every backend without a new backend trait bound on
//! every generic model, so the operation is picked by the concrete type: it applies on
//! `Autodiff<NdArray, C>` and, with the `cuda` feature, `Autodiff<Cuda, C>`, for both
//! checkpoint strategies. Any other backend keeps burn's generic matmul (same gradients, the
//! dense weight kept until backward).

use std::any::TypeId;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;

use crate::quant::tensor::dequantize_checked;
use crate::quant_state::QuantState;
use crate::same_type::take_as;

/// `x · dequant(W)ᵀ` for `x` `[rows, in]` on an autodiff backend, with a backward that
/// re-dequantizes `W` instead of keeping it; `Err(x)` (untouched) when `B` is not one of the
/// backends the operation is registered for (see the module docs).
pub(crate) fn frozen_nf4_matmul<B: Backend>(
    x: Tensor<B, 2>,
    weight: &Arc<QuantState>,
) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
    let y = on::<B, burn_ndarray::NdArray, NoCheckpointing>(x, weight)
        .or_else(|x| on::<B, burn_ndarray::NdArray, BalancedCheckpointing>(x, weight));
    #[cfg(feature = "cuda")]
    let y = y
        .or_else(|x| on::<B, burn_cuda::Cuda, NoCheckpointing>(x, weight))
        .or_else(|x| on::<B, burn_cuda::Cuda, BalancedCheckpointing>(x, weight));
    y
}

/// Runs the operation when `B` is `Autodiff<IB, C>`: `Ok(y)`; else `Err(x)` untouched, for
/// the next candidate backend (`or_else`).
fn on<B: Backend, IB: Backend, C: CheckpointStrategy>(
    x: Tensor<B, 2>,
    weight: &Arc<QuantState>,
) -> Result<Tensor<B, 2>, Tensor<B, 2>> {
    if TypeId::of::<B>() != TypeId::of::<Autodiff<IB, C>>() {
        return Err(x);
    }
    // B is Autodiff<IB, C>, so the float primitives are the same type: both moves succeed.
    let mut slot = Some(x.into_primitive().tensor());
    let Some(inner) = take_as::<_, FloatTensor<Autodiff<IB, C>>>(&mut slot) else {
        return Err(Tensor::from_primitive(TensorPrimitive::Float(refill(slot))));
    };
    let mut out = Some(forward::<IB, C>(inner, weight));
    match take_as::<_, B::FloatTensorPrimitive>(&mut out) {
        Some(y) => Ok(Tensor::from_primitive(TensorPrimitive::Float(y))),
        // Unreachable (same types); the output cannot be turned back into an input.
        None => unreachable!("B is Autodiff<IB, C>: the same float tensor type"),
    }
}

/// The value `take_as` left in its slot when the types differ.
fn refill<T>(slot: Option<T>) -> T {
    match slot {
        Some(t) => t,
        None => unreachable!("take_as empties the slot only when it returns the value"),
    }
}

/// The registered operation: the state is the shared 4-bit weight, nothing of `x`.
#[derive(Debug)]
struct FrozenNf4Matmul;

impl<IB: Backend> Backward<IB, 1> for FrozenNf4Matmul {
    type State = Arc<QuantState>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let weight = ops.state;
        unary::<IB, _>(ops.parents, ops.node, grads, |grad| {
            // ∂L/∂x = ∂L/∂y · W, with W dequantized again (and dropped) here.
            let w = dense::<IB>(&weight, &IB::float_device(&grad));
            IB::float_matmul(grad, w)
        });
    }
}

fn forward<IB: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<IB, C>>,
    weight: &Arc<QuantState>,
) -> FloatTensor<Autodiff<IB, C>> {
    let w = dense::<IB>(weight, &IB::float_device(&x.primitive));
    let y = IB::float_matmul(x.primitive, IB::float_transpose(w));
    match FrozenNf4Matmul
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(Arc::clone(weight), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// The dequantized weight `[out, in]` as an inner-backend primitive.
fn dense<IB: Backend>(weight: &QuantState, device: &IB::Device) -> IB::FloatTensorPrimitive {
    dequantize_checked::<IB>(weight, device)
        .into_primitive()
        .tensor()
}
