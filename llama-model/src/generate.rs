//! Text generation: batched prefill with left padding, KV-cache decoding, greedy or sampled
//! tokens (temperature, top-k, top-p, repetition penalty) with a seed, several stop ids and a
//! streaming callback.
//!
//! The logits processors run in transformers' order: repetition penalty, temperature,
//! top-k, top-p.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{LlamaError, Result};
use crate::kv_cache::KvCache;
use crate::model::{Llama, LlamaInput};

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties: the lowest id, as `torch.argmax`).
    Greedy,
    /// A random draw from the processed distribution.
    Sample {
        /// Divides the logits (> 0).
        temperature: f32,
        /// Keep only the `k` most likely tokens (`None`: all).
        top_k: Option<usize>,
        /// Keep the smallest set of tokens whose probability reaches `p` (`None` or 1: all).
        top_p: Option<f32>,
    },
}

/// Settings of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Maximum number of new tokens per prompt.
    pub max_new_tokens: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// transformers' `repetition_penalty` (1 = off): logits of tokens already in the row are
    /// divided by it when positive and multiplied when negative.
    pub repetition_penalty: f32,
    /// Seed of the sampler.
    pub seed: u64,
    /// A row stops after producing any of these (kept in its output, as transformers does).
    pub stop_ids: Vec<u32>,
    /// Id used for left padding and for rows that already stopped.
    pub pad_id: u32,
}

impl GenerationConfig {
    /// Greedy decoding of up to `max_new_tokens` tokens, no stop ids, pad id 0.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            sampling: Sampling::Greedy,
            repetition_penalty: 1.0,
            seed: 0,
            stop_ids: Vec::new(),
            pad_id: 0,
        }
    }

    /// Replaces the stop ids (e.g. Llama-3 instruct: `[128009, 128001]`).
    pub fn with_stop_ids(mut self, ids: Vec<u32>) -> Self {
        self.stop_ids = ids;
        self
    }

    /// Replaces the sampling rule.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the repetition penalty.
    pub fn with_repetition_penalty(mut self, penalty: f32) -> Self {
        self.repetition_penalty = penalty;
        self
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LlamaError::InvalidArgument(m));
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(format!(
                "repetition_penalty must be positive, got {}",
                self.repetition_penalty
            ));
        }
        if let Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } = self.sampling
        {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return bad(format!("temperature must be positive, got {temperature}"));
            }
            if top_k == Some(0) {
                return bad("top_k must be at least 1".into());
            }
            if let Some(p) = top_p {
                if !(p > 0.0 && p <= 1.0) {
                    return bad(format!("top_p must be in (0, 1], got {p}"));
                }
            }
        }
        Ok(())
    }
}

/// One generated token, as passed to the streaming callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenEvent {
    /// Index of the prompt in the batch.
    pub row: usize,
    /// The new token.
    pub token: u32,
    /// Its index among the row's new tokens.
    pub step: usize,
}

/// Applies the repetition penalty, temperature, top-k and top-p to one row of logits in
/// place (filtered tokens become `-inf`), as transformers' processors do.
pub fn process_logits(logits: &mut [f32], history: &[u32], config: &GenerationConfig) {
    if config.repetition_penalty != 1.0 {
        let mut seen = history.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for &t in &seen {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l < 0.0 {
                    *l * config.repetition_penalty
                } else {
                    *l / config.repetition_penalty
                };
            }
        }
    }
    let Sampling::Sample {
        temperature,
        top_k,
        top_p,
    } = config.sampling
    else {
        return;
    };
    if temperature != 1.0 {
        logits.iter_mut().for_each(|l| *l /= temperature);
    }
    if let Some(k) = top_k {
        if k < logits.len() {
            let mut sorted = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            logits
                .iter_mut()
                .filter(|l| **l < kth)
                .for_each(|l| *l = f32::NEG_INFINITY);
        }
    }
    if let Some(p) = top_p.filter(|p| *p < 1.0) {
        // Sort ascending; drop the prefix whose cumulative probability is <= 1 - p, keeping
        // at least the most likely token.
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
        let probs = softmax(logits);
        let mut cum = 0.0f32;
        for (i, &idx) in order.iter().enumerate() {
            cum += probs[idx];
            if cum <= 1.0 - p && i + 1 < order.len() {
                logits[idx] = f32::NEG_INFINITY;
            } else if cum > 1.0 - p {
                break;
            }
        }
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Chooses the next token of one row (after [`process_logits`]).
fn choose(logits: &[f32], config: &GenerationConfig, rng: &mut ChaCha8Rng) -> u32 {
    match config.sampling {
        Sampling::Greedy => argmax(logits),
        Sampling::Sample { .. } => {
            let probs = softmax(logits);
            let u: f32 = rng.random::<f32>();
            let mut cum = 0.0f32;
            let mut last_valid = argmax(logits);
            for (i, &p) in probs.iter().enumerate() {
                if p > 0.0 {
                    last_valid = i as u32;
                    cum += p;
                    if u < cum {
                        return i as u32;
                    }
                }
            }
            last_valid
        }
    }
}

/// Generates up to `config.max_new_tokens` tokens after each prompt and returns the new
/// tokens of every row (a row that hits a stop id ends with it). Prompts may differ in
/// length: they are left padded into one batch with an attention mask.
///
/// `on_token` is called for every new token as soon as it is chosen.
///
/// # Errors
///
/// Empty prompts, token ids outside the vocabulary, a prompt longer than
/// `max_position_embeddings`, invalid sampling parameters. Generation stops early (with a
/// log warning) when the context is full.
///
/// # Example
/// ```
/// use burn_ndarray::NdArray;
/// use llama_model::{generate, GenerationConfig, Llama, LlamaConfig, RandomInit};
/// let dev = Default::default();
/// let model = Llama::<NdArray<f32>>::random(&LlamaConfig::tiny(32), &RandomInit::default(), &dev).unwrap();
/// let out = generate(&model, &[vec![1, 5, 6], vec![1, 7]], &GenerationConfig::greedy(4), |_| {}).unwrap();
/// assert_eq!(out.len(), 2);
/// assert_eq!(out[0].len(), 4);
/// ```
pub fn generate<B: Backend>(
    model: &Llama<B>,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
    mut on_token: impl FnMut(TokenEvent),
) -> Result<Vec<Vec<u32>>> {
    config.validate()?;
    let device = model.device();
    let max_pos = model.config().max_position_embeddings;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if longest > max_pos {
        return Err(LlamaError::TooLong {
            length: longest,
            max: max_pos,
        });
    }
    let input = LlamaInput::left_padded(prompts, config.pad_id, &device)?;
    let batch = prompts.len();
    let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); batch];
    let mut done = vec![false; batch];
    if config.max_new_tokens == 0 {
        return Ok(outputs);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // Room for the prompt and every new token: decode steps never reallocate.
    let total = (longest + config.max_new_tokens).min(max_pos);
    let mut cache = KvCache::with_capacity(model.config().num_hidden_layers, total);
    let mut logits = model.forward_cached(input, &mut cache, true)?;
    let vocab = model.config().vocab_size;
    for step in 0..config.max_new_tokens {
        let mut host: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| LlamaError::InvalidArgument(format!("logits: {e:?}")))?;
        let mut next = vec![config.pad_id as i64; batch];
        for row in 0..batch {
            if done[row] {
                continue;
            }
            let l = &mut host[row * vocab..(row + 1) * vocab];
            if config.repetition_penalty != 1.0 {
                let history: Vec<u32> = prompts[row].iter().chain(&outputs[row]).copied().collect();
                process_logits(l, &history, config);
            } else {
                process_logits(l, &[], config);
            }
            let token = choose(l, config, &mut rng);
            outputs[row].push(token);
            on_token(TokenEvent { row, token, step });
            next[row] = token as i64;
            if config.stop_ids.contains(&token) {
                done[row] = true;
            }
        }
        if done.iter().all(|&d| d) || step + 1 == config.max_new_tokens {
            break;
        }
        if cache.len() + 1 > max_pos {
            log::warn!("context of {max_pos} tokens is full; stopping generation");
            break;
        }
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [batch, 1]), &device);
        logits = model.forward_cached(LlamaInput::new(ids), &mut cache, true)?;
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(temperature: f32, top_k: Option<usize>, top_p: Option<f32>) -> GenerationConfig {
        GenerationConfig::greedy(1).with_sampling(Sampling::Sample {
            temperature,
            top_k,
            top_p,
        })
    }

    #[test]
    fn repetition_penalty_as_transformers() {
        let mut l = vec![2.0, -2.0, 1.0];
        let cfg = GenerationConfig::greedy(1).with_repetition_penalty(2.0);
        process_logits(&mut l, &[0, 1, 1], &cfg);
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn top_k_keeps_ties_at_the_kth_value() {
        let mut l = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        process_logits(&mut l, &[], &sample(1.0, Some(2), None));
        let kept: Vec<bool> = l.iter().map(|x| x.is_finite()).collect();
        assert_eq!(kept, vec![false, true, true, true, false]);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // probabilities ~ [0.643, 0.237, 0.087, 0.032]
        let mut l = vec![3.0, 2.0, 1.0, 0.0];
        process_logits(&mut l, &[], &sample(1.0, None, Some(0.8)));
        let kept: Vec<bool> = l.iter().map(|x| x.is_finite()).collect();
        assert_eq!(kept, vec![true, true, false, false]);
        let mut l = vec![3.0, 2.0, 1.0, 0.0];
        process_logits(&mut l, &[], &sample(1.0, None, Some(0.01)));
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 1);
    }

    #[test]
    fn sampling_is_seeded_and_respects_the_filter() {
        let cfg = sample(0.7, Some(2), None);
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| {
                    let mut l = vec![0.5, 3.0, 2.9, 0.1];
                    process_logits(&mut l, &[], &cfg);
                    choose(&l, &cfg, &mut rng)
                })
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert!(a.iter().all(|&t| t == 1 || t == 2));
        assert!(a.contains(&1) && a.contains(&2));
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        assert!(sample(0.0, None, None).validate().is_err());
        assert!(sample(1.0, Some(0), None).validate().is_err());
        assert!(sample(1.0, None, Some(1.5)).validate().is_err());
        assert!(GenerationConfig::greedy(1)
            .with_repetition_penalty(0.0)
            .validate()
            .is_err());
    }
}
