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

use ro_metrics::agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, CohenKappaOptions, FleissMethod, KappaWeights,
    LevelOfMeasurement,
};
use ro_metrics::{proportion_confint, ConfintMethod};
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

/// Level indices per rater (rows) and unit (columns: case by case, model by model).
fn reliability_data(table: &Table, models: &[String]) -> Vec<Vec<Option<i64>>> {
    table
        .raters
        .iter()
        .map(|r| {
            table
                .cases
                .iter()
                .flat_map(|c| models.iter().map(move |m| (*c, m.as_str())))
                .map(|(c, m)| table.level.get(&(m, c, *r)).map(|&l| l as i64))
                .collect()
        })
        .collect()
}

/// The agreement of the raters in `table` on a question with `levels` answer levels.
pub(crate) fn agreement(
    table: &Table,
    models: &[String],
    kind: &QuestionKind,
    levels: usize,
) -> Agreement {
    let data = reliability_data(table, models);
    let scale = matches!(kind, QuestionKind::Scale { .. });
    let level = if scale {
        LevelOfMeasurement::Ordinal
    } else {
        LevelOfMeasurement::Nominal
    };
    let mut out = Agreement {
        items: table.cases.len() * models.len(),
        raters: data.len(),
        krippendorff_alpha: None,
        alpha_level: level.to_string(),
        fleiss_kappa: None,
        cohen_kappa: None,
        cohen_kappa_quadratic: None,
        notes: Vec::new(),
    };
    if data.len() < 2 {
        out.notes
            .push("one rater: agreement needs at least two".into());
        return out;
    }
    let mut note = |what: &str, e: ro_metrics::MetricsError| {
        out.notes.push(format!("{what}: {e}"));
        None
    };
    let domain: Vec<i64> = (0..levels as i64).collect();
    out.krippendorff_alpha = match krippendorff_alpha(&data, level, Some(domain.as_slice())) {
        Ok(a) => Some(Num(a)),
        Err(e) => note("Krippendorff's alpha", e),
    };
    let units = data[0].len();
    let mut counts = vec![vec![0.0; levels]; units];
    for row in &data {
        for (u, v) in row.iter().enumerate() {
            if let Some(v) = v {
                counts[u][*v as usize] += 1.0;
            }
        }
    }
    out.fleiss_kappa = match fleiss_kappa(&counts, FleissMethod::Fleiss) {
        Ok(k) => Some(Num(k)),
        Err(e) => note("Fleiss' kappa", e),
    };
    if let [a, b] = data.as_slice() {
        let (y1, y2): (Vec<i64>, Vec<i64>) = a
            .iter()
            .zip(b)
            .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
            .unzip();
        let kappa = |weights: Option<KappaWeights>| {
            let options = CohenKappaOptions {
                labels: Some(domain.clone()),
                weights,
                sample_weight: None,
            };
            cohen_kappa(&y1, &y2, &options).map(Num)
        };
        out.cohen_kappa = kappa(None).map_or_else(|e| note("Cohen's kappa", e), Some);
        if scale {
            out.cohen_kappa_quadratic = kappa(Some(KappaWeights::Quadratic))
                .map_or_else(|e| note("Cohen's kappa (quadratic)", e), Some);
        }
    }
    out
}

/// The acceptable rate `count / n` with its 95% Wilson interval.
pub fn acceptable_rate(count: usize, n: usize) -> Rate {
    let (low, high) = match proportion_confint(count as f64, n as f64, 0.05, ConfintMethod::Wilson)
    {
        Ok(ci) => (ci.low, ci.high),
        Err(_) => (f64::NAN, f64::NAN),
    };
    Rate {
        count,
        n,
        rate: Num(if n == 0 {
            f64::NAN
        } else {
            count as f64 / n as f64
        }),
        low: Num(low),
        high: Num(high),
        method: ConfintMethod::Wilson.to_string(),
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
