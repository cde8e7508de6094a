//! # ro-tasks
//!
//! The four radiation-oncology tasks of the studies this workspace reproduces: physician
//! letters, treatment regimens, treatment modality and ICD-10 codes. Schemas, prompts,
//! parsers from free model text, scorers, an ICD-10-CM code set, datasets and a synthetic
//! case generator. No deep-learning dependency.
#![warn(missing_docs)]
