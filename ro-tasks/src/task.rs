//! The four tasks and the language of a case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the four tasks of the studies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Summary report → physician letter (ROUGE).
    Letters,
    /// Case context → treatment regimen (ROUGE-1, field accuracy, consistency).
    Regimen,
    /// Case context → photon | proton | electron | brachytherapy (accuracy, P/R/F1).
    Modality,
    /// Case context → ICD-10 code (exact and category accuracy).
    Icd10,
}

impl TaskKind {
    /// All four, in a fixed order.
    pub const ALL: [TaskKind; 4] = [
        TaskKind::Letters,
        TaskKind::Regimen,
        TaskKind::Modality,
        TaskKind::Icd10,
    ];

    /// The name used on command lines and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Letters => "letters",
            TaskKind::Regimen => "regimen",
            TaskKind::Modality => "modality",
            TaskKind::Icd10 => "icd10",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;
    /// ```
    /// assert_eq!("icd10".parse::<ro_tasks::TaskKind>(), Ok(ro_tasks::TaskKind::Icd10));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown task {s:?} (letters, regimen, modality, icd10)"))
    }
}

/// Language of a case and of its prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// German.
    De,
}
