//! Deterministic train/validation/test assignment by a seeded hash of the case id.
//!
//! The hash is 64-bit FNV-1a over the seed's 8 little-endian bytes followed by the id's UTF-8
//! bytes: fixed constants, no per-process keys, so every platform and every run assigns the
//! same case to the same split. The hash modulo 10,000 is compared with the cumulative
//! fractions (train first, then validation, then test).

use serde::{Deserialize, Serialize};

/// 64-bit FNV-1a.
///
/// ```
/// assert_eq!(ro_tasks::fnv1a64(b""), 0xcbf29ce484222325);
/// assert_eq!(ro_tasks::fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Which part of a dataset a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training.
    Train,
    /// Validation.
    Val,
    /// Held-out test.
    Test,
}

/// Fractions of train and validation (test gets the rest).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRatios {
    /// Fraction for training, in [0, 1].
    pub train: f64,
    /// Fraction for validation; `train + val <= 1`.
    pub val: f64,
}

impl Default for SplitRatios {
    /// 80 / 10 / 10.
    fn default() -> Self {
        SplitRatios {
            train: 0.8,
            val: 0.1,
        }
    }
}

impl Split {
    /// The split of a case id under a seed.
    ///
    /// ```
    /// use ro_tasks::{Split, SplitRatios};
    /// let s = Split::of("case-0001", 42, SplitRatios::default());
    /// assert_eq!(s, Split::of("case-0001", 42, SplitRatios::default()));
    /// ```
    pub fn of(id: &str, seed: u64, ratios: SplitRatios) -> Split {
        let mut bytes = seed.to_le_bytes().to_vec();
        bytes.extend_from_slice(id.as_bytes());
        let bucket = (fnv1a64(&bytes) % 10_000) as f64 / 10_000.0;
        if bucket < ratios.train {
            Split::Train
        } else if bucket < ratios.train + ratios.val {
            Split::Val
        } else {
            Split::Test
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_values_and_proportions() {
        // Pinned so that a change of the hash (which would reshuffle users' splits) fails.
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        let n = 20_000;
        let train = (0..n)
            .filter(|i| Split::of(&format!("c{i}"), 7, SplitRatios::default()) == Split::Train)
            .count();
        assert!((train as f64 / n as f64 - 0.8).abs() < 0.02, "{train}");
    }
}
