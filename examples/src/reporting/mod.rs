//! Pieces shared by the reports of the example programs (`demo`, `review`): numbers with
//! bootstrap intervals that serialize non-finite floats as strings, Markdown table cells and
//! number formats, and SVG chart helpers.

pub mod estimate;
pub mod markdown;
pub mod svg;

pub use estimate::{mean_estimate, Estimate, Num};
