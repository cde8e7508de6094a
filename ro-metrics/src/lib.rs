//! # ro-metrics
//!
//! Evaluation metrics for clinical NLP, each identical to its reference implementation:
//!
//! - ROUGE-1/2/L/Lsum exactly as Google's `rouge-score` 0.1.2,
//! - accuracy, confusion matrix and precision/recall/F-beta with scikit-learn semantics,
//! - the Wilcoxon signed-rank test with `scipy.stats.wilcoxon` semantics,
//! - paired bootstrap confidence intervals.
//!
//! Pure Rust: no deep-learning stack is needed to evaluate model outputs.
#![warn(missing_docs)]
