//! Learning-rate schedules with warmup, as transformers' `get_*_schedule_with_warmup`.

use serde::{Deserialize, Serialize};

/// The shape of the schedule after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// `get_constant_schedule_with_warmup`.
    Constant,
    /// `get_linear_schedule_with_warmup`: linear decay to 0 at `total_steps`.
    Linear,
    /// `get_cosine_schedule_with_warmup` (half a cosine period, `num_cycles = 0.5`).
    Cosine,
}

impl core::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(ScheduleKind::Constant),
            "linear" => Ok(ScheduleKind::Linear),
            "cosine" => Ok(ScheduleKind::Cosine),
            _ => Err(format!(
                "unknown schedule `{s}` (expected constant, linear or cosine)"
            )),
        }
    }
}

/// A learning-rate schedule: peak `lr`, `warmup_steps` of linear warmup from 0, then
/// [`ScheduleKind`] over `total_steps`.
///
/// ```
/// use qlora_core::{LrSchedule, ScheduleKind};
/// let s = LrSchedule { kind: ScheduleKind::Linear, lr: 1e-3, warmup_steps: 2, total_steps: 10 };
/// assert_eq!(s.lr_at(0), 0.0);
/// assert_eq!(s.lr_at(1), 0.5e-3);
/// assert_eq!(s.lr_at(2), 1e-3);
/// assert_eq!(s.lr_at(10), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Shape after warmup.
    pub kind: ScheduleKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Total optimizer steps (end of the decay).
    pub total_steps: u64,
}

impl LrSchedule {
    /// The multiplier of the peak rate at optimizer step `step` (0-based), exactly as
    /// transformers' `LambdaLR` lambdas compute it.
    pub fn multiplier(&self, step: u64) -> f64 {
        let (s, w, t) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps {
            return s / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (s - w) / (t - w).max(1.0);
                (0.5 * (1.0 + (core::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate at optimizer step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        self.lr * self.multiplier(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_transformers_fixture() {
        let text = include_str!("../../tools/fixtures/optim/schedules.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut n = 0;
        for (name, case) in v.as_object().unwrap() {
            let kind: ScheduleKind = case["kind"].as_str().unwrap().parse().unwrap();
            let s = LrSchedule {
                kind,
                lr: 1.0,
                warmup_steps: case["warmup"].as_u64().unwrap(),
                total_steps: case["total"].as_u64().unwrap(),
            };
            for (i, want) in case["lrs"].as_array().unwrap().iter().enumerate() {
                let got = s.lr_at(i as u64);
                let want = want.as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-15,
                    "{name} step {i}: {got} vs {want}"
                );
                n += 1;
            }
        }
        assert!(n > 100);
    }
}
