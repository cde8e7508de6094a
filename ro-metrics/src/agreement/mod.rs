//! Agreement between raters, each statistic as its reference implementation computes it:
//!
//! - [`cohen_kappa`]: two raters, unweighted or with linear or quadratic weights, as
//!   scikit-learn's `cohen_kappa_score` ([`cohen`]);
//! - [`fleiss_kappa`]: many raters from a subjects × categories count table, Fleiss' or
//!   Randolph's chance correction, as statsmodels' `fleiss_kappa` ([`fleiss`]);
//! - [`krippendorff_alpha`]: any number of raters with missing ratings, nominal, ordinal,
//!   interval or ratio data, as the `krippendorff` package's `alpha` ([`krippendorff`]).
//!
//! Where a reference returns NaN (an undefined statistic) these return NaN too; where it raises,
//! these return a [`MetricsError`](crate::MetricsError) naming the argument. Each module says
//! which inputs are which. The confidence interval of a proportion (for instance of the share of
//! answers raters accepted) is [`proportion_confint`](crate::proportion_confint).

pub mod cohen;
pub mod fleiss;
pub mod krippendorff;

pub use cohen::{cohen_kappa, CohenKappaOptions, KappaWeights};
pub use fleiss::{fleiss_kappa, FleissMethod};
pub use krippendorff::{krippendorff_alpha, LevelOfMeasurement, Rating};
