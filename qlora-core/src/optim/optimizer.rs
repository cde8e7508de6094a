//! [`TrainOptimizer`]: the optimizer an [`OptimizerKind`] selects, behind one interface.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::{AdamW, AdamW8bit, AdamWConfig, AdamWState, OptimizerKind, PagedAdamW};

/// One of the optimizers, chosen by [`OptimizerKind`]; what the trainer steps and
/// checkpoints.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::{AdamWConfig, OptimizerKind, optim::TrainOptimizer};
/// let dev = Default::default();
/// let kind = OptimizerKind::PagedAdamW { device_budget_bytes: 0 };
/// let mut opt = TrainOptimizer::<NdArray>::new(kind, AdamWConfig::default()).unwrap();
/// let p = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![1.0f32, -1.0], [2]), &dev);
/// let g = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.5f32, -0.5], [2]), &dev);
/// let _p = opt.step("w", p, g, 0.1);
/// let (tensors, steps) = opt.export();
/// assert_eq!(steps["w"], 1);
/// assert!(tensors.contains_key("w.exp_avg") && tensors.contains_key("w.exp_avg_sq"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrainOptimizer<B: Backend> {
    /// [`OptimizerKind::AdamW`].
    AdamW(AdamW<B>),
    /// [`OptimizerKind::PagedAdamW`].
    Paged(PagedAdamW<B>),
    /// [`OptimizerKind::AdamW8bit`].
    AdamW8bit(AdamW8bit<B>),
}

impl<B: Backend> TrainOptimizer<B> {
    /// A fresh optimizer of `kind`. (Fallible so that a kind a build cannot run is an error,
    /// not a panic; every kind is available today.)
    pub fn new(kind: OptimizerKind, config: AdamWConfig) -> Result<Self, String> {
        match kind {
            OptimizerKind::AdamW => Ok(TrainOptimizer::AdamW(AdamW::new(config))),
            OptimizerKind::PagedAdamW {
                device_budget_bytes,
            } => Ok(TrainOptimizer::Paged(PagedAdamW::new(
                config,
                device_budget_bytes,
            ))),
            OptimizerKind::AdamW8bit { min_8bit_size } => Ok(TrainOptimizer::AdamW8bit(
                AdamW8bit::new(config, min_8bit_size),
            )),
        }
    }

    /// One step on parameter `name` (flattened); returns the updated parameter.
    ///
    /// # Panics
    ///
    /// If `grad` and `param` differ in length, or from existing state.
    pub fn step(
        &mut self,
        name: &str,
        param: Tensor<B, 1>,
        grad: Tensor<B, 1>,
        lr: f64,
    ) -> Tensor<B, 1> {
        match self {
            TrainOptimizer::AdamW(o) => o.step(name, param, grad, lr),
            TrainOptimizer::Paged(o) => o.step(name, param, grad, lr),
            TrainOptimizer::AdamW8bit(o) => o.step(name, param, grad, lr),
        }
    }

    /// The state as host tensors keyed `"{param}.{what}"` plus step counts per parameter.
    pub fn export(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        match self {
            TrainOptimizer::AdamW(o) => o.export(),
            TrainOptimizer::Paged(o) => o.export(),
            TrainOptimizer::AdamW8bit(o) => o.export(),
        }
    }

    /// Restores state exported by [`TrainOptimizer::export`] for the parameters in `steps`;
    /// `numel` gives each parameter's element count, which the state must match. Errors name
    /// the missing or mismatched tensor.
    pub fn import(
        &mut self,
        tensors: &BTreeMap<String, TensorData>,
        steps: &BTreeMap<String, u64>,
        numel: &BTreeMap<String, usize>,
        device: &B::Device,
    ) -> Result<(), String> {
        for (name, &step) in steps {
            let n = *numel
                .get(name)
                .ok_or_else(|| format!("optimizer state for `{name}`, which is not trainable"))?;
            if let TrainOptimizer::AdamW8bit(o) = self {
                o.import_state(name, step, n, tensors)?;
                continue;
            }
            let f32_tensor = |what: &str| -> Result<TensorData, String> {
                let key = format!("{name}.{what}");
                let d = tensors
                    .get(&key)
                    .ok_or_else(|| format!("optimizer state `{key}` missing"))?;
                if d.dtype != burn::tensor::DType::F32 || d.num_elements() != n {
                    return Err(format!(
                        "optimizer state `{key}` is {:?} with {} elements, expected F32 with {n}",
                        d.dtype,
                        d.num_elements()
                    ));
                }
                Ok(TensorData::new(
                    d.to_vec::<f32>().map_err(|e| format!("`{key}`: {e:?}"))?,
                    [n],
                ))
            };
            let (m, v) = (f32_tensor("exp_avg")?, f32_tensor("exp_avg_sq")?);
            match self {
                TrainOptimizer::AdamW(o) => o.set_state(
                    name.clone(),
                    AdamWState {
                        step,
                        exp_avg: Tensor::from_data(m, device),
                        exp_avg_sq: Tensor::from_data(v, device),
                    },
                ),
                TrainOptimizer::Paged(o) => o.set_state(name.clone(), step, m, v, device),
                TrainOptimizer::AdamW8bit(_) => {}
            }
        }
        Ok(())
    }
}
