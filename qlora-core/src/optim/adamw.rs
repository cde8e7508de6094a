//! AdamW as `torch.optim.AdamW` computes it (decoupled weight decay, bias correction, `eps`
//! added after dividing `sqrt(v)` by `sqrt(1 - beta2^t)`).
//!
//! One step, for each parameter `p` with gradient `g` at step `t` (1-based), in the order and
//! precision torch's single-tensor path uses (scalars rounded to f32 before use):
//!
//! ```text
//! p ← p · (1 − lr·wd)
//! m ← lerp(m, g, 1 − β1)            (m + (1−β1)·(g − m))
//! v ← v·β2 + (1−β2)·g·g
//! denom ← sqrt(v) / sqrt(1 − β2^t) + eps
//! p ← p + (−lr / (1 − β1^t)) · m / denom
//! ```

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// AdamW hyper-parameters (defaults as torch: betas 0.9/0.999, eps 1e-8, weight decay 0.01).
///
/// ```
/// let c = qlora_core::AdamWConfig::default();
/// assert_eq!((c.beta1, c.beta2, c.eps, c.weight_decay), (0.9, 0.999, 1e-8, 0.01));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// The scalars of one step, computed in f64 and rounded to f32 as torch does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepScalars {
    decay: f32,
    lerp_w: f32,
    beta2: f32,
    one_minus_beta2: f32,
    bc2_sqrt: f32,
    eps: f32,
    neg_step_size: f32,
}

impl StepScalars {
    pub(crate) fn new(c: &AdamWConfig, lr: f64, step: u64) -> Self {
        let t = step as f64;
        let bc1 = 1.0 - c.beta1.powf(t);
        let bc2 = 1.0 - c.beta2.powf(t);
        Self {
            decay: (1.0 - lr * c.weight_decay) as f32,
            lerp_w: (1.0 - c.beta1) as f32,
            beta2: c.beta2 as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps: c.eps as f32,
            neg_step_size: (-(lr / bc1)) as f32,
        }
    }
}

/// torch's `lerp` kernel: `self + w·(end − self)` for `w < 0.5`, else `end − (end − self)·(1 − w)`.
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// One AdamW step on flattened burn tensors `(param, grad, exp_avg, exp_avg_sq)`; returns the
/// new `(param, exp_avg, exp_avg_sq)`. The one tensor implementation every 32-bit AdamW
/// variant ([`AdamW`], [`PagedAdamW`](crate::optim::PagedAdamW)) runs, so they agree bit for bit.
pub(crate) fn update_tensors<B: Backend>(
    s: &StepScalars,
    p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    exp_avg: Tensor<B, 1>,
    exp_avg_sq: Tensor<B, 1>,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let p = p.mul_scalar(s.decay);
    // lerp with weight < 0.5 (1 − β1 for β1 > 0.5); the other branch for small β1.
    let m = if s.lerp_w.abs() < 0.5 {
        exp_avg.clone() + (g.clone() - exp_avg).mul_scalar(s.lerp_w)
    } else {
        g.clone() - (g.clone() - exp_avg).mul_scalar(1.0 - s.lerp_w)
    };
    let v = exp_avg_sq.mul_scalar(s.beta2) + g.clone().mul_scalar(s.one_minus_beta2) * g;
    let denom = v.clone().sqrt().div_scalar(s.bc2_sqrt).add_scalar(s.eps);
    let p = p + m.clone().mul_scalar(s.neg_step_size) / denom;
    (p, m, v)
}

/// The plain reference: one AdamW step on host slices, element by element. `step` is the
/// 1-based step count after this update.
///
/// # Panics
///
/// If the slices differ in length.
pub fn adamw_step_reference(
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    step: u64,
    lr: f64,
    config: &AdamWConfig,
) {
    assert!(
        param.len() == grad.len() && grad.len() == exp_avg.len() && grad.len() == exp_avg_sq.len(),
        "AdamW slices must have equal lengths"
    );
    let s = StepScalars::new(config, lr, step);
    for i in 0..param.len() {
        let g = grad[i];
        let mut p = param[i] * s.decay;
        let m = lerp(exp_avg[i], g, s.lerp_w);
        let v = exp_avg_sq[i] * s.beta2 + s.one_minus_beta2 * g * g;
        let denom = v.sqrt() / s.bc2_sqrt + s.eps;
        p += s.neg_step_size * m / denom;
        param[i] = p;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
    }
}

/// The moment estimates of one parameter, flattened.
#[derive(Debug, Clone)]
pub struct AdamWState<B: Backend> {
    /// Steps taken on this parameter.
    pub step: u64,
    /// First moment `m`.
    pub exp_avg: Tensor<B, 1>,
    /// Second moment `v`.
    pub exp_avg_sq: Tensor<B, 1>,
}

/// AdamW over named parameters, with state kept per name (so it survives module rebuilds and
/// checkpoints). Works on any backend; give it the inner (non-autodiff) tensors.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
/// use qlora_core::{optim::AdamW, AdamWConfig};
/// let dev = Default::default();
/// let mut opt = AdamW::<NdArray>::new(AdamWConfig { weight_decay: 0.0, ..Default::default() });
/// let p = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![1.0f32, -1.0], [2]), &dev);
/// let g = Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.5f32, -0.5], [2]), &dev);
/// let p = opt.step("w", p, g, 0.1);
/// // The first Adam step moves each coordinate by lr against the gradient's sign.
/// let v: Vec<f32> = p.into_data().to_vec().unwrap();
/// assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] + 0.9).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    config: AdamWConfig,
    states: BTreeMap<String, AdamWState<B>>,
}

impl<B: Backend> AdamW<B> {
    /// An optimizer with no state yet.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            states: BTreeMap::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// The state of parameter `name`, if it has taken a step.
    pub fn state(&self, name: &str) -> Option<&AdamWState<B>> {
        self.states.get(name)
    }

    /// All states, by parameter name.
    pub fn states(&self) -> &BTreeMap<String, AdamWState<B>> {
        &self.states
    }

    /// Replaces the state of `name` (e.g. when resuming from a checkpoint).
    pub fn set_state(&mut self, name: impl Into<String>, state: AdamWState<B>) {
        self.states.insert(name.into(), state);
    }

    /// One step on parameter `name` with gradient `grad` at learning rate `lr`; returns the
    /// updated parameter (same shape). Both tensors should be detached.
    ///
    /// # Panics
    ///
    /// If `grad`'s shape differs from `param`'s.
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
            "AdamW: gradient shape differs from `{name}`"
        );
        let n = shape.num_elements();
        let device = param.device();
        let p = param.reshape([n]);
        let g = grad.reshape([n]);
        let state = self.states.remove(name).unwrap_or_else(|| AdamWState {
            step: 0,
            exp_avg: Tensor::zeros([n], &device),
            exp_avg_sq: Tensor::zeros([n], &device),
        });
        let step = state.step + 1;
        let s = StepScalars::new(&self.config, lr, step);
        let (p, m, v) = update_tensors(&s, p, g, state.exp_avg, state.exp_avg_sq);
        self.states.insert(
            name.to_string(),
            AdamWState {
                step,
                exp_avg: m,
                exp_avg_sq: v,
            },
        );
        p.reshape(shape)
    }

    /// The state as host tensors `"{name}.exp_avg"`, `"{name}.exp_avg_sq"` (f32) plus the step
    /// counts, for checkpoints.
    pub fn export(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (name, st) in &self.states {
            tensors.insert(format!("{name}.exp_avg"), st.exp_avg.clone().into_data());
            tensors.insert(
                format!("{name}.exp_avg_sq"),
                st.exp_avg_sq.clone().into_data(),
            );
            steps.insert(name.clone(), st.step);
        }
        (tensors, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::TestBackend;
    use safetensors::SafeTensors;

    fn load(st: &SafeTensors, key: &str) -> (Vec<f32>, Vec<usize>) {
        let v = st.tensor(key).unwrap();
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (data, v.shape().to_vec())
    }

    /// Runs every torch case through `f` (reference or tensor path) and checks params and
    /// moments after each step.
    fn check_against_torch(tensor_path: bool) {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tools/fixtures/optim/adamw.safetensors"
        ))
        .unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(include_str!("../../../tools/fixtures/optim/adamw.json")).unwrap();
        let mut checked = 0;
        for case in meta["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let cfg = AdamWConfig {
                beta1: case["beta1"].as_f64().unwrap(),
                beta2: case["beta2"].as_f64().unwrap(),
                eps: case["eps"].as_f64().unwrap(),
                weight_decay: case["weight_decay"].as_f64().unwrap(),
            };
            let lr = case["lr"].as_f64().unwrap();
            let mut opt = AdamW::<TestBackend>::new(cfg);
            for i in 0..case["n_params"].as_u64().unwrap() {
                let (mut p, shape) = load(&st, &format!("{name}.p{i}.init"));
                let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
                for step in 0..case["steps"].as_u64().unwrap() {
                    let (g, _) = load(&st, &format!("{name}.p{i}.grad{step}"));
                    let key = format!("p{i}");
                    if tensor_path {
                        let dev = Default::default();
                        let pt = Tensor::<TestBackend, 2>::from_data(
                            TensorData::new(p.clone(), [shape[0], shape[1]]),
                            &dev,
                        );
                        let gt = Tensor::<TestBackend, 2>::from_data(
                            TensorData::new(g, [shape[0], shape[1]]),
                            &dev,
                        );
                        p = opt.step(&key, pt, gt, lr).into_data().to_vec().unwrap();
                        let s = opt.state(&key).unwrap();
                        assert_eq!(s.step, step + 1);
                        m = s.exp_avg.clone().into_data().to_vec().unwrap();
                        v = s.exp_avg_sq.clone().into_data().to_vec().unwrap();
                    } else {
                        adamw_step_reference(&mut p, &g, &mut m, &mut v, step + 1, lr, &cfg);
                    }
                    for (what, ours) in [("param", &p), ("exp_avg", &m), ("exp_avg_sq", &v)] {
                        let (want, _) = load(&st, &format!("{name}.p{i}.{what}{step}"));
                        for (a, b) in ours.iter().zip(&want) {
                            let tol = 1e-6 * b.abs().max(1.0);
                            assert!(
                                (a - b).abs() <= tol,
                                "{name} p{i} {what} step {step}: {a} vs {b}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn reference_matches_torch() {
        check_against_torch(false);
    }

    #[test]
    fn tensor_path_matches_torch() {
        check_against_torch(true);
    }

    #[test]
    fn tensor_path_equals_reference_bitwise() {
        let n = 97;
        let mut p: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let cfg = AdamWConfig::default();
        let mut opt = AdamW::<TestBackend>::new(cfg);
        let dev = Default::default();
        let mut pt = Tensor::<TestBackend, 1>::from_data(TensorData::new(p.clone(), [n]), &dev);
        for step in 1..=5u64 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i as u64 * step) as f32 * 0.11).cos())
                .collect();
            adamw_step_reference(&mut p, &g, &mut m, &mut v, step, 1e-3, &cfg);
            let gt = Tensor::<TestBackend, 1>::from_data(TensorData::new(g, [n]), &dev);
            pt = opt.step("x", pt, gt, 1e-3);
        }
        let got: Vec<f32> = pt.into_data().to_vec().unwrap();
        assert_eq!(got, p);
    }
}
