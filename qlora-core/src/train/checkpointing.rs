//! Gradient (activation) checkpointing.
//!
//! burn 0.21 decides what the backward pass keeps through the autodiff backend's *type*:
//! `burn_autodiff::Autodiff<B, C>` with the checkpoint strategy `C`.
//!
//! - `NoCheckpointing` (the default `Autodiff<B>`): every operation is treated as
//!   compute-bound, so each op keeps the tensors its backward needs until `backward()`.
//! - `BalancedCheckpointing`: operations burn marks as memory-bound (element-wise
//!   arithmetic, `exp`, `log`, `sqrt`, activations, ...: 52 ops in burn-autodiff 0.21) keep
//!   only a *retro-forward* recipe and their parents' node ids; their outputs are recomputed
//!   during backward when a gradient needs them. Compute-bound ops (matmul, convolutions)
//!   still keep their inputs. Gradients are unchanged; the peak memory of activations shrinks
//!   by the element-wise intermediates (RMSNorm, SwiGLU, softmax pieces, LoRA scaling).
//!
//! Because the strategy is a type parameter, a run chooses it when it picks its backend type:
//! [`TrainConfig::gradient_checkpointing`](crate::TrainConfig::gradient_checkpointing) must
//! agree with the backend the [`Trainer`](crate::Trainer) is built on (checked by
//! `Trainer::new`, see [`CheckpointingBackend`]), and [`with_autodiff`] turns the run-time
//! flag into that type choice for programs that read it from the command line.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn_autodiff::Autodiff;

/// An autodiff backend whose checkpoint strategy is known, so that the trainer can check its
/// `gradient_checkpointing` setting against it.
///
/// ```
/// use burn_autodiff::{checkpoint::strategy::BalancedCheckpointing, Autodiff};
/// use burn_ndarray::NdArray;
/// use qlora_core::train::CheckpointingBackend;
/// assert!(!<Autodiff<NdArray> as CheckpointingBackend>::GRADIENT_CHECKPOINTING);
/// assert!(<Autodiff<NdArray, BalancedCheckpointing> as CheckpointingBackend>::GRADIENT_CHECKPOINTING);
/// ```
pub trait CheckpointingBackend: AutodiffBackend {
    /// Whether memory-bound activations are recomputed in the backward pass instead of kept.
    const GRADIENT_CHECKPOINTING: bool;
}

impl<B: Backend> CheckpointingBackend for Autodiff<B, NoCheckpointing> {
    const GRADIENT_CHECKPOINTING: bool = false;
}

impl<B: Backend> CheckpointingBackend for Autodiff<B, BalancedCheckpointing> {
    const GRADIENT_CHECKPOINTING: bool = true;
}

/// The autodiff backend over `B` that recomputes memory-bound activations.
pub type CheckpointedAutodiff<B> = Autodiff<B, BalancedCheckpointing>;

/// Work generic over the autodiff backend type, run by [`with_autodiff`].
pub trait AutodiffRun<B: Backend> {
    /// What the run returns.
    type Output;
    /// Runs on the chosen autodiff backend `AB` (whose inner backend is `B`, on the same
    /// devices).
    fn run<AB>(self) -> Self::Output
    where
        AB: CheckpointingBackend<InnerBackend = B, Device = B::Device>;
}

/// Runs `run` on `Autodiff<B, BalancedCheckpointing>` when `gradient_checkpointing` is set,
/// else on `Autodiff<B>`: the run-time switch over burn's type-level checkpoint strategy.
///
/// ```
/// use burn_ndarray::NdArray;
/// use qlora_core::{train::with_autodiff, train::AutodiffRun, train::CheckpointingBackend};
/// struct Which;
/// impl AutodiffRun<NdArray> for Which {
///     type Output = bool;
///     fn run<AB: CheckpointingBackend<InnerBackend = NdArray>>(self) -> bool {
///         AB::GRADIENT_CHECKPOINTING
///     }
/// }
/// assert!(with_autodiff::<NdArray, _>(true, Which));
/// assert!(!with_autodiff::<NdArray, _>(false, Which));
/// ```
pub fn with_autodiff<B: Backend, R: AutodiffRun<B>>(
    gradient_checkpointing: bool,
    run: R,
) -> R::Output {
    if gradient_checkpointing {
        run.run::<CheckpointedAutodiff<B>>()
    } else {
        run.run::<Autodiff<B>>()
    }
}
