//! Inter-rater agreement per question and the acceptable rate's interval, from
//! `ro_metrics::agreement` (pending: that module is being written on branch `agreement`).

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use super::config::QuestionKind;
use super::report::{QuestionReport, Rate, Table};
use crate::reporting::Num;

/// Agreement between the raters on one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Items rated (case x model).
    pub items: usize,
    /// Raters.
    pub raters: usize,
}

/// The agreement of the raters in `table`.
///
/// # Errors
/// Statistics that cannot be computed.
pub(crate) fn agreement(
    table: &Table,
    models: &[String],
    _kind: &QuestionKind,
    _levels: usize,
) -> Result<Agreement> {
    Ok(Agreement {
        items: table.cases.len() * models.len(),
        raters: table.raters.len(),
    })
}

/// The acceptable rate `count / n` with its 95% interval.
pub fn acceptable_rate(count: usize, n: usize) -> Rate {
    Rate {
        count,
        n,
        rate: Num(count as f64 / n as f64),
        low: Num(f64::NAN),
        high: Num(f64::NAN),
        method: "pending".into(),
    }
}

/// The agreement table of the report.
pub fn markdown(md: &mut String, questions: &[QuestionReport]) {
    let _ = writeln!(md, "## Inter-rater agreement\n");
    for q in questions {
        let _ = writeln!(
            md,
            "- `{}`: {} items, {} raters",
            q.id, q.agreement.items, q.agreement.raters
        );
    }
    md.push('\n');
}
