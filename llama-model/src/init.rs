//! Random initialisation of a model from a config (for pre-training a small model from
//! scratch and for tests), as transformers' `_init_weights` does: normal weights with
//! standard deviation `std`, RMSNorm weights at one.

use burn::tensor::backend::Backend;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::LlamaConfig;
use crate::error::Result;
use crate::model::{Llama, WeightSource};

/// Settings of [`Llama::random`].
#[derive(Debug, Clone, PartialEq)]
pub struct RandomInit {
    /// Standard deviation of every weight matrix (transformers' `initializer_range`, 0.02).
    pub std: f64,
    /// Seed of the generator; the same seed gives the same model on every backend.
    pub seed: u64,
}

impl Default for RandomInit {
    fn default() -> Self {
        Self { std: 0.02, seed: 0 }
    }
}

/// A [`WeightSource`] drawing normal weights (Box–Muller on ChaCha8), norms at one, biases
/// at zero.
#[derive(Debug)]
pub struct RandomSource {
    rng: ChaCha8Rng,
    std: f64,
}

impl RandomSource {
    /// A source with the given settings.
    pub fn new(init: &RandomInit) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(init.seed),
            std: init.std,
        }
    }

    fn normal(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1: f64 = 1.0 - self.rng.random::<f64>();
            let u2: f64 = self.rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt() * self.std;
            let t = 2.0 * std::f64::consts::PI * u2;
            out.push((r * t.cos()) as f32);
            out.push((r * t.sin()) as f32);
        }
        out.truncate(n);
        out
    }
}

impl<B: Backend> WeightSource<B> for RandomSource {
    fn dense(&mut self, name: &str, shape: &[usize]) -> Result<TensorData> {
        let n: usize = shape.iter().product();
        let values = if name.ends_with("norm.weight") {
            vec![1.0f32; n]
        } else if name.ends_with(".bias") {
            vec![0.0f32; n]
        } else {
            self.normal(n)
        };
        Ok(TensorData::new(values, shape.to_vec()))
    }

    fn contains(&self, _name: &str) -> bool {
        false
    }
}

impl<B: Backend> Llama<B> {
    /// A randomly initialised model (see [`RandomInit`]).
    pub fn random(config: &LlamaConfig, init: &RandomInit, device: &B::Device) -> Result<Self> {
        Self::build(config, &mut RandomSource::new(init), device)
    }
}
