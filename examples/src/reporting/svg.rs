//! Helpers of the SVG charts (plotters' SVG backend) of the demo's and the review's reports.

use anyhow::anyhow;

/// A plotters drawing error as an error of ours.
pub fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing SVG chart: {e}")
}
