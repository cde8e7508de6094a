//! # ro-tasks
//!
//! The four radiation-oncology tasks of the studies this workspace reproduces: physician
//! letters, treatment regimens, treatment modality and ICD-10 codes. Schemas, prompts,
//! parsers from free model text, scorers, an ICD-10-CM code set, datasets and a synthetic
//! case generator. No deep-learning dependency.
#![warn(missing_docs)]

mod codeset;
mod dataset;
mod error;
mod icd10_code;
pub mod json_float;
mod modality;
mod prompt;
mod regimen;
mod score;
mod split;
mod synth;
mod task;

pub use codeset::{CodeSet, Entry, Kind, ICD10_RELEASE};
pub use dataset::{
    read_examples, read_examples_from, read_predictions, read_predictions_from, write_jsonl,
    Example, PredictionRecord,
};
pub use error::{Error, Result};
pub use icd10_code::{
    extract_code, normalize_code, Certainty, CodeError, CodeLookup, Laterality, Marker,
    NormalizedCode, Qualifiers,
};
pub use modality::{Keyword, Modality, Technique, KEYWORDS};
pub use prompt::{instruction, ChatMessage, Prompt, Role};
pub use regimen::{Consistency, Course, Regimen, RegimenIssue};
pub use score::{
    compare, render_markdown, score_task, ClassScores, Comparison, DifferenceInterval, MetricCases,
    MetricComparison, ModalityMetrics, TaskScores, WilcoxonSummary, BOOTSTRAP_SEED,
    UNKNOWN_MODALITY,
};
pub use split::{fnv1a64, Split, SplitRatios};
pub use synth::{generate_cases, Case, SynthConfig};
pub use task::{Language, TaskKind};
