//! LoRA hyper-parameters: rank, alpha, dropout, rsLoRA and the projections to adapt.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::LoraError;

/// A projection of a decoder layer that LoRA can adapt, named as in Hugging Face checkpoints.
///
/// ```
/// use qlora_core::TargetModule;
/// let t: TargetModule = "gate_proj".parse().unwrap();
/// assert_eq!(t, TargetModule::GateProj);
/// assert_eq!(t.as_str(), "gate_proj");
/// assert!("lm_head".parse::<TargetModule>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TargetModule {
    /// `self_attn.q_proj`
    #[serde(rename = "q_proj")]
    QProj,
    /// `self_attn.k_proj`
    #[serde(rename = "k_proj")]
    KProj,
    /// `self_attn.v_proj`
    #[serde(rename = "v_proj")]
    VProj,
    /// `self_attn.o_proj`
    #[serde(rename = "o_proj")]
    OProj,
    /// `mlp.gate_proj`
    #[serde(rename = "gate_proj")]
    GateProj,
    /// `mlp.up_proj`
    #[serde(rename = "up_proj")]
    UpProj,
    /// `mlp.down_proj`
    #[serde(rename = "down_proj")]
    DownProj,
}

impl TargetModule {
    /// All seven projections, in the order of a LLaMA decoder layer.
    pub const ALL: [TargetModule; 7] = [
        TargetModule::QProj,
        TargetModule::KProj,
        TargetModule::VProj,
        TargetModule::OProj,
        TargetModule::GateProj,
        TargetModule::UpProj,
        TargetModule::DownProj,
    ];

    /// The Hugging Face module name (`"q_proj"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetModule::QProj => "q_proj",
            TargetModule::KProj => "k_proj",
            TargetModule::VProj => "v_proj",
            TargetModule::OProj => "o_proj",
            TargetModule::GateProj => "gate_proj",
            TargetModule::UpProj => "up_proj",
            TargetModule::DownProj => "down_proj",
        }
    }

    /// The parent module in a LLaMA decoder layer: `"self_attn"` or `"mlp"`.
    pub fn parent(self) -> &'static str {
        match self {
            TargetModule::QProj
            | TargetModule::KProj
            | TargetModule::VProj
            | TargetModule::OProj => "self_attn",
            TargetModule::GateProj | TargetModule::UpProj | TargetModule::DownProj => "mlp",
        }
    }

    /// Parses a comma-separated list such as `"q_proj,v_proj"`; `"all-linear"` (peft's
    /// shorthand) means all seven. Duplicates are removed, order follows [`TargetModule::ALL`].
    ///
    /// ```
    /// use qlora_core::TargetModule;
    /// let t = TargetModule::parse_list("v_proj, q_proj").unwrap();
    /// assert_eq!(t, vec![TargetModule::QProj, TargetModule::VProj]);
    /// assert_eq!(TargetModule::parse_list("all-linear").unwrap().len(), 7);
    /// ```
    pub fn parse_list(list: &str) -> Result<Vec<TargetModule>, LoraError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all-linear" {
                out.extend(TargetModule::ALL);
            } else {
                out.push(name.parse()?);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for TargetModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetModule {
    type Err = LoraError;

    /// Accepts the HF name (`q_proj`) or the short form (`q`, `gate`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let short = s.trim().trim_end_matches("_proj");
        Ok(match short {
            "q" => TargetModule::QProj,
            "k" => TargetModule::KProj,
            "v" => TargetModule::VProj,
            "o" => TargetModule::OProj,
            "gate" => TargetModule::GateProj,
            "up" => TargetModule::UpProj,
            "down" => TargetModule::DownProj,
            _ => {
                return Err(LoraError::UnknownTargetModule {
                    name: s.to_string(),
                })
            }
        })
    }
}

/// LoRA hyper-parameters, mirroring peft's `LoraConfig` (`r`, `lora_alpha`, `lora_dropout`,
/// `target_modules`, `use_rslora`).
///
/// ```
/// use qlora_core::{LoraConfig, TargetModule};
/// let c = LoraConfig::new(8, 16.0);
/// assert_eq!(c.scaling(), 2.0);
/// let c = c.with_rslora(true);
/// assert!((c.scaling() - 16.0 / 8f64.sqrt()).abs() < 1e-12);
/// assert_eq!(c.targets, TargetModule::ALL.to_vec());
/// c.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank `r` of the update `B·A` (`A: [r, in]`, `B: [out, r]`).
    pub r: usize,
    /// `lora_alpha`; may be fractional.
    pub alpha: f64,
    /// Dropout probability applied to the input of `A` during training.
    pub dropout: f64,
    /// Projections that receive an adapter.
    pub targets: Vec<TargetModule>,
    /// rsLoRA: scale by `alpha / sqrt(r)` instead of `alpha / r`.
    pub use_rslora: bool,
}

impl LoraConfig {
    /// Rank `r`, `alpha`, no dropout, all seven projections, plain scaling.
    pub fn new(r: usize, alpha: f64) -> Self {
        Self {
            r,
            alpha,
            dropout: 0.0,
            targets: TargetModule::ALL.to_vec(),
            use_rslora: false,
        }
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets the target projections.
    pub fn with_targets(mut self, targets: Vec<TargetModule>) -> Self {
        self.targets = targets;
        self
    }

    /// Turns rsLoRA scaling on or off.
    pub fn with_rslora(mut self, use_rslora: bool) -> Self {
        self.use_rslora = use_rslora;
        self
    }

    /// The factor applied to `B·A·x`: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA
    /// (as peft computes it, in f64).
    pub fn scaling(&self) -> f64 {
        lora_scaling(self.r, self.alpha, self.use_rslora)
    }

    /// Whether `target` receives an adapter.
    pub fn targets_module(&self, target: TargetModule) -> bool {
        self.targets.contains(&target)
    }

    /// Checks `r > 0`, a finite alpha, `0 <= dropout < 1` and at least one target.
    pub fn validate(&self) -> Result<(), LoraError> {
        if self.r == 0 {
            return Err(LoraError::InvalidConfig {
                field: "r",
                reason: "must be at least 1".into(),
            });
        }
        if !self.alpha.is_finite() {
            return Err(LoraError::InvalidConfig {
                field: "lora_alpha",
                reason: format!("must be finite, got {}", self.alpha),
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LoraError::InvalidConfig {
                field: "lora_dropout",
                reason: format!("must be in [0, 1), got {}", self.dropout),
            });
        }
        if self.targets.is_empty() {
            return Err(LoraError::InvalidConfig {
                field: "target_modules",
                reason: "no target module".into(),
            });
        }
        Ok(())
    }
}

/// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
///
/// ```
/// assert_eq!(qlora_core::lora::lora_scaling(8, 16.0, false), 2.0);
/// assert_eq!(qlora_core::lora::lora_scaling(16, 16.0, true), 4.0);
/// ```
pub fn lora_scaling(r: usize, alpha: f64, use_rslora: bool) -> f64 {
    if use_rslora {
        alpha / (r as f64).sqrt()
    } else {
        alpha / r as f64
    }
}
