//! # ro-metrics
//!
//! Evaluation metrics for clinical NLP, each identical to its reference implementation:
//!
//! - ROUGE-1/2/L/Lsum exactly as Google's `rouge-score` 0.1.2,
//! - accuracy, confusion matrix and precision/recall/F-beta with scikit-learn semantics,
//! - the Wilcoxon signed-rank test with `scipy.stats.wilcoxon` semantics,
//! - paired bootstrap confidence intervals,
//! - agreement between raters ([`agreement`]): Cohen's kappa as scikit-learn, Fleiss' kappa as
//!   statsmodels, Krippendorff's alpha as the `krippendorff` package,
//! - confidence intervals for a proportion as statsmodels' `proportion_confint`, on the normal
//!   and beta distributions' quantiles as scipy computes them.
//!
//! Pure Rust: no deep-learning stack is needed to evaluate model outputs.
#![warn(missing_docs)]

pub mod agreement;
mod beta;
mod bootstrap;
mod classification;
mod confusion;
mod error;
mod normal;
mod pairwise_sum;
mod porter;
mod proportion;
mod rouge;
mod tokenize;
mod wilcoxon;

pub use beta::{beta_cdf, beta_isf, beta_ppf, beta_sf};
pub use bootstrap::{
    bootstrap_indices, paired_bootstrap, paired_bootstrap_mean_difference, quantile_linear,
    BootstrapInterval, BootstrapOptions,
};
pub use classification::{
    accuracy, precision_recall_fscore_support, unique_labels, Average, PrecisionRecallFscore,
    PrfOptions, PrfScores, Score, UndefinedMetricWarning, ZeroDivision,
};
pub use confusion::{confusion_matrix, ConfusionMatrix};
pub use error::MetricsError;
pub use normal::{normal_cdf, normal_isf, normal_ppf, normal_sf};
pub use porter::PorterStemmer;
pub use proportion::{proportion_confint, ConfintMethod, ProportionInterval};
pub use rouge::{reference, RougeError, RougeScore, RougeScorer, RougeType, Scores};
pub use tokenize::{tokenize, DefaultTokenizer, Tokenizer};
pub use wilcoxon::{
    signed_rank_pmf, wilcoxon, wilcoxon_differences, Alternative, PValueMethod, WilcoxonMethod,
    WilcoxonOptions, WilcoxonResult, ZeroMethod,
};
