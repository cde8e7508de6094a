//! Shared helpers for the criterion benchmarks of this workspace.
#![warn(missing_docs)]
