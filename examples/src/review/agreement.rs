//! Inter-rater agreement per question, and the interval of the acceptable rate, computed by
//! `ro_metrics::agreement` and `ro_metrics::proportion_confint` (each equal to its reference
//! library).
//!
//! The units are the rated candidates (case x model); every rater rated every unit.
//!
//! | statistic | scale questions | choice questions | reference |
//! | --- | --- | --- | --- |
//! | Krippendorff's alpha | ordinal, the scale's points as the value domain | nominal | `krippendorff.alpha` |
//! | Fleiss' kappa | over the points | over the options | statsmodels `fleiss_kappa` |
//! | Cohen's kappa (two raters only) | unweighted and quadratic-weighted | unweighted | scikit-learn `cohen_kappa_score` |
//!
//! With one rater there is nothing to agree on: every statistic is absent, with a note.
//! The acceptable rate's 95% interval is Wilson's over all ratings (statsmodels'
//! `proportion_confint(method="wilson")`); it treats the ratings as independent, though
//! several raters rate each case.

use std::fmt::Write as _;

use serde::Serialize;

use super::config::QuestionKind;
use super::report::{QuestionReport, Rate, Table};
use crate::reporting::markdown::fmt;
use crate::reporting::Num;

/// Agreement between the raters on one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Units rated (case x model).
    pub items: usize,
    /// Raters.
    pub raters: usize,
    /// Krippendorff's alpha.
    pub krippendorff_alpha: Option<Num>,
    /// Its level of measurement: `ordinal` (scales) or `nominal` (choices).
    pub alpha_level: String,
    /// Fleiss' kappa.
    pub fleiss_kappa: Option<Num>,
    /// Cohen's kappa, unweighted (exactly two raters).
    pub cohen_kappa: Option<Num>,
    /// Cohen's kappa with quadratic weights (scale questions, exactly two raters).
    pub cohen_kappa_quadratic: Option<Num>,
    /// Why a statistic is absent.
    pub notes: Vec<String>,
}

/// The agreement of the raters in `table`. Not computed yet: `ro_metrics::agreement` is
/// not on main (branch `agreement`); every statistic is absent, with a note.
pub(crate) fn agreement(
    table: &Table,
    models: &[String],
    kind: &QuestionKind,
    _levels: usize,
) -> Agreement {
    Agreement {
        items: table.cases.len() * models.len(),
        raters: table.raters.len(),
        krippendorff_alpha: None,
        alpha_level: if matches!(kind, QuestionKind::Scale { .. }) {
            "ordinal".into()
        } else {
            "nominal".into()
        },
        fleiss_kappa: None,
        cohen_kappa: None,
        cohen_kappa_quadratic: None,
        notes: vec!["not computed: ro_metrics::agreement is not merged yet".into()],
    }
}

/// The acceptable rate `count / n`; its interval is not computed yet (see [`agreement`]).
pub fn acceptable_rate(count: usize, n: usize) -> Rate {
    Rate {
        count,
        n,
        rate: Num(if n == 0 {
            f64::NAN
        } else {
            count as f64 / n as f64
        }),
        low: Num(f64::NAN),
        high: Num(f64::NAN),
        method: "none".into(),
    }
}

/// The agreement table of the report.
pub fn markdown(md: &mut String, questions: &[QuestionReport]) {
    let _ = writeln!(md, "## Inter-rater agreement\n");
    let _ = writeln!(
        md,
        "Over the rated candidates (case x model): Krippendorff's alpha (ordinal for scales, \
         nominal for choices; as the krippendorff package), Fleiss' kappa (statsmodels) and, with \
         exactly two raters, Cohen's kappa (scikit-learn; quadratic weights for scales). 1 is \
         perfect agreement, 0 chance.\n"
    );
    let _ = writeln!(
        md,
        "| question | units | raters | Krippendorff's alpha | Fleiss' kappa | Cohen's kappa | Cohen's kappa (quadratic) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let show = |v: Option<Num>| v.map_or_else(|| "-".to_string(), fmt);
    let mut notes = Vec::new();
    for q in questions {
        let a = &q.agreement;
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | {} | {} | {} | {} |",
            q.id,
            a.alpha_level,
            a.items,
            a.raters,
            show(a.krippendorff_alpha),
            show(a.fleiss_kappa),
            show(a.cohen_kappa),
            show(a.cohen_kappa_quadratic)
        );
        notes.extend(a.notes.iter().map(|n| format!("`{}`: {n}", q.id)));
    }
    md.push('\n');
    for n in notes {
        let _ = writeln!(md, "- {n}");
    }
    md.push('\n');
}
