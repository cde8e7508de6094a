//! Paged AdamW: 32-bit AdamW whose state lives on the device up to a byte budget and in host
//! memory beyond it.
//!
//! bitsandbytes' paged optimizers (`PagedAdamW`) put the state in CUDA unified memory and let
//! the driver evict pages to the host under memory pressure. burn has no unified memory, so we
//! page explicitly, per parameter: when a parameter takes its first step (or its state is
//! restored from a checkpoint), its moments `m` and `v` (8 bytes per element) stay resident as
//! tensors on the parameter's device if they fit in what is left of the budget; otherwise they
//! are kept as host [`TensorData`]. A paged parameter's moments are uploaded for its own update
//! only and downloaded again right after, so at most one parameter's paged state is on the
//! device at a time. The arithmetic is [`AdamW`](crate::optim::AdamW)'s, op for op, so updates are
//! bit-identical to it; only where the state lives differs.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::adamw::{update_tensors, StepScalars};
use super::AdamWConfig;

/// Bytes of 32-bit AdamW state per parameter element (`m` and `v`, f32 each).
pub const ADAMW_STATE_BYTES_PER_ELEMENT: u64 = 8;

/// Where the moments of one parameter live.
// One value per parameter: the size difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Moments<B: Backend> {
    /// On the device, counted against the budget.
    Resident {
        /// First moment `m`.
        exp_avg: Tensor<B, 1>,
        /// Second moment `v`.
        exp_avg_sq: Tensor<B, 1>,
    },
    /// In host memory (f32 [`TensorData`]), uploaded for each update.
    Paged {
        /// First moment `m`.
        exp_avg: TensorData,
        /// Second moment `v`.
        exp_avg_sq: TensorData,
    },
}

/// The state of one parameter of a [`PagedAdamW`].
#[derive(Debug, Clone)]
pub struct PagedState<B: Backend> {
    /// Steps taken on this parameter.
    pub step: u64,
    /// Number of elements.
    pub numel: usize,
    /// The moments, resident or paged.
    pub moments: Moments<B>,
}

impl<B: Backend> PagedState<B> {
    /// Whether the moments are on the device.
    pub fn is_resident(&self) -> bool {
        matches!(self.moments, Moments::Resident { .. })
    }

    /// Bytes of the moments.
    pub fn bytes(&self) -> u64 {
        self.numel as u64 * ADAMW_STATE_BYTES_PER_ELEMENT
    }

    /// The moments as host data `(exp_avg, exp_avg_sq)`.
    pub fn host_moments(&self) -> (TensorData, TensorData) {
        match &self.moments {
            Moments::Resident {
                exp_avg,
                exp_avg_sq,
            } => (exp_avg.clone().into_data(), exp_avg_sq.clone().into_data()),
            Moments::Paged {
                exp_avg,
                exp_avg_sq,
            } => (exp_avg.clone(), exp_avg_sq.clone()),
        }
    }
}

/// AdamW with paged state. Same interface and results as [`AdamW`](crate::optim::AdamW).
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::{AdamWConfig, optim::PagedAdamW};
/// let dev = Default::default();
/// // Room for the state of 4 elements (32 bytes): `a` (3 elements) stays on the device,
/// // `b` (2 elements) does not fit any more and is paged to host memory.
/// let mut opt = PagedAdamW::<NdArray>::new(AdamWConfig::default(), 32);
/// let t = |v: Vec<f32>| Tensor::<NdArray, 1>::from_data(TensorData::new(v.clone(), [v.len()]), &dev);
/// let _a = opt.step("a", t(vec![1.0, 2.0, 3.0]), t(vec![0.1, 0.2, 0.3]), 1e-3);
/// let _b = opt.step("b", t(vec![1.0, 2.0]), t(vec![0.1, 0.2]), 1e-3);
/// assert_eq!((opt.resident_bytes(), opt.paged_bytes()), (24, 16));
/// assert!(opt.state("a").unwrap().is_resident() && !opt.state("b").unwrap().is_resident());
/// ```
#[derive(Debug, Clone)]
pub struct PagedAdamW<B: Backend> {
    config: AdamWConfig,
    device_budget_bytes: u64,
    resident_bytes: u64,
    paged_bytes: u64,
    page_ins: u64,
    states: BTreeMap<String, PagedState<B>>,
}

impl<B: Backend> PagedAdamW<B> {
    /// An optimizer with no state yet and `device_budget_bytes` of device memory for state.
    pub fn new(config: AdamWConfig, device_budget_bytes: u64) -> Self {
        Self {
            config,
            device_budget_bytes,
            resident_bytes: 0,
            paged_bytes: 0,
            page_ins: 0,
            states: BTreeMap::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// The device budget in bytes.
    pub fn device_budget_bytes(&self) -> u64 {
        self.device_budget_bytes
    }

    /// Bytes of state resident on the device (never above the budget).
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    /// Bytes of state paged to host memory.
    pub fn paged_bytes(&self) -> u64 {
        self.paged_bytes
    }

    /// How many times paged state was uploaded to the device for an update.
    pub fn page_ins(&self) -> u64 {
        self.page_ins
    }

    /// The state of parameter `name`, if it has any.
    pub fn state(&self, name: &str) -> Option<&PagedState<B>> {
        self.states.get(name)
    }

    /// All states, by parameter name.
    pub fn states(&self) -> &BTreeMap<String, PagedState<B>> {
        &self.states
    }

    /// Places new moments of `numel` elements: resident if they fit the budget, else paged.
    fn place(
        &mut self,
        numel: usize,
        exp_avg: TensorData,
        exp_avg_sq: TensorData,
        device: &B::Device,
    ) -> Moments<B> {
        let bytes = numel as u64 * ADAMW_STATE_BYTES_PER_ELEMENT;
        if self.resident_bytes + bytes <= self.device_budget_bytes {
            self.resident_bytes += bytes;
            Moments::Resident {
                exp_avg: Tensor::from_data(exp_avg, device),
                exp_avg_sq: Tensor::from_data(exp_avg_sq, device),
            }
        } else {
            self.paged_bytes += bytes;
            Moments::Paged {
                exp_avg,
                exp_avg_sq,
            }
        }
    }

    /// Sets the state of `name` from host moments (f32, `numel` elements each), e.g. when
    /// resuming; it is placed by the same budget rule as new state. Replaces earlier state.
    ///
    /// # Panics
    ///
    /// If the two moments differ in length.
    pub fn set_state(
        &mut self,
        name: impl Into<String>,
        step: u64,
        exp_avg: TensorData,
        exp_avg_sq: TensorData,
        device: &B::Device,
    ) {
        let name = name.into();
        let numel = exp_avg.num_elements();
        assert_eq!(
            numel,
            exp_avg_sq.num_elements(),
            "PagedAdamW: moments of `{name}` differ in length"
        );
        self.remove(&name);
        let moments = self.place(numel, exp_avg, exp_avg_sq, device);
        self.states.insert(
            name,
            PagedState {
                step,
                numel,
                moments,
            },
        );
    }

    fn remove(&mut self, name: &str) -> Option<PagedState<B>> {
        let old = self.states.remove(name)?;
        if old.is_resident() {
            self.resident_bytes -= old.bytes();
        } else {
            self.paged_bytes -= old.bytes();
        }
        Some(old)
    }

    /// One step on parameter `name` with gradient `grad` at learning rate `lr`; returns the
    /// updated parameter (same shape). Both tensors should be detached.
    ///
    /// # Panics
    ///
    /// If `grad`'s shape differs from `param`'s, or from the state's size.
    pub fn step<const D: usize>(
        &mut self,
        name: &str,
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
        lr: f64,
    ) -> Tensor<B, D> {
        let shape = param.shape();
        assert_eq!(
            shape,
            grad.shape(),
            "PagedAdamW: gradient shape differs from `{name}`"
        );
        let n = shape.num_elements();
        let device = param.device();
        let p = param.reshape([n]);
        let g = grad.reshape([n]);
        let state = match self.states.remove(name) {
            Some(s) => s,
            None => {
                let zeros = || TensorData::new(vec![0.0f32; n], [n]);
                let moments = self.place(n, zeros(), zeros(), &device);
                PagedState {
                    step: 0,
                    numel: n,
                    moments,
                }
            }
        };
        assert_eq!(
            state.numel, n,
            "PagedAdamW: state of `{name}` has another size"
        );
        let step = state.step + 1;
        let s = StepScalars::new(&self.config, lr, step);
        let (p, moments) = match state.moments {
            Moments::Resident {
                exp_avg,
                exp_avg_sq,
            } => {
                let (p, m, v) = update_tensors(&s, p, g, exp_avg, exp_avg_sq);
                let moments = Moments::Resident {
                    exp_avg: m,
                    exp_avg_sq: v,
                };
                (p, moments)
            }
            Moments::Paged {
                exp_avg,
                exp_avg_sq,
            } => {
                // Page in, update, page out.
                self.page_ins += 1;
                let m = Tensor::from_data(exp_avg, &device);
                let v = Tensor::from_data(exp_avg_sq, &device);
                let (p, m, v) = update_tensors(&s, p, g, m, v);
                let moments = Moments::Paged {
                    exp_avg: m.into_data(),
                    exp_avg_sq: v.into_data(),
                };
                (p, moments)
            }
        };
        self.states.insert(
            name.to_string(),
            PagedState {
                step,
                numel: n,
                moments,
            },
        );
        p.reshape(shape)
    }

    /// The state as host tensors `"{name}.exp_avg"`, `"{name}.exp_avg_sq"` (f32) plus the step
    /// counts: the same layout as [`AdamW::export`](crate::optim::AdamW::export).
    pub fn export(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (name, st) in &self.states {
            let (m, v) = st.host_moments();
            tensors.insert(format!("{name}.exp_avg"), m);
            tensors.insert(format!("{name}.exp_avg_sq"), v);
            steps.insert(name.clone(), st.step);
        }
        (tensors, steps)
    }
}
