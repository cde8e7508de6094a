//! `evaluate agreement`: rater-agreement statistics and proportion intervals per line, as
//! scikit-learn, statsmodels and the `krippendorff` package compute them (see
//! `ro_metrics::agreement` and `ro_metrics::proportion_confint`).
//!
//! Each line names its `statistic`; the fields that statistic reads are consumed, every other
//! field is copied through:
//!
//! | statistic | fields (defaults) | out |
//! | --- | --- | --- |
//! | `cohen_kappa` | `y1`, `y2`, `labels` (null), `weights` (null\|`"linear"`\|`"quadratic"`), `sample_weight` (null) | `value` |
//! | `fleiss_kappa` | `table` (subjects × categories counts), `method` (`"fleiss"`\|`"randolph"`) | `value` |
//! | `krippendorff_alpha` | `reliability_data` (rows raters, columns units, null missing), `level_of_measurement` (`"interval"`, the package's default), `value_domain` (null) | `value` |
//! | `proportion_ci` | `count`, `nobs`, `alpha` (0.05), `method` (`"normal"`, statsmodels' default) | `low`, `high` |
//!
//! Labels (`y1`, `y2`, `labels`, ratings, `value_domain`) are all strings or all numbers
//! (integers for Cohen's kappa). Where the reference returns NaN the value is `"NaN"`; where it
//! raises, the line gets an `error`.

use clap::Args;
use ro_metrics::agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, CohenKappaOptions, FleissMethod, KappaWeights,
    LevelOfMeasurement, Rating,
};
use ro_metrics::{proportion_confint, ConfintMethod, MetricsError};
use serde_json::Value;

use super::json::{
    as_f64, as_f64_array, float, kind, optional, optional_str, required, required_str, Fields,
    LineScorer,
};
use super::labels::{pair_and_labels, read_pair, SameKind};
use super::IoArgs;

/// Arguments of `evaluate agreement`.
#[derive(Debug, Clone, Args)]
pub struct AgreementArgs {
    /// Input and output files.
    #[command(flatten)]
    pub io: IoArgs,
}

/// Scores `{"statistic": .., ..}` lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgreementScorer;

/// The statistics a line can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statistic {
    CohenKappa,
    FleissKappa,
    KrippendorffAlpha,
    ProportionCi,
}

impl Statistic {
    const ALL: [Self; 4] = [
        Self::CohenKappa,
        Self::FleissKappa,
        Self::KrippendorffAlpha,
        Self::ProportionCi,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::CohenKappa => "cohen_kappa",
            Self::FleissKappa => "fleiss_kappa",
            Self::KrippendorffAlpha => "krippendorff_alpha",
            Self::ProportionCi => "proportion_ci",
        }
    }

    /// The input fields the statistic reads.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::CohenKappa => &["y1", "y2", "labels", "weights", "sample_weight"],
            Self::FleissKappa => &["table", "method"],
            Self::KrippendorffAlpha => {
                &["reliability_data", "level_of_measurement", "value_domain"]
            }
            Self::ProportionCi => &["count", "nobs", "alpha", "method"],
        }
    }

    fn of(line: &Fields) -> Result<Self, String> {
        let name = required_str(line, "statistic")?;
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!(
                    "`statistic`: {name:?} is not one of \"cohen_kappa\", \"fleiss_kappa\", \
                     \"krippendorff_alpha\", \"proportion_ci\""
                )
            })
    }
}

/// Every field any statistic reads, and `statistic` itself.
const ALL_FIELDS: &[&str] = &[
    "statistic",
    "y1",
    "y2",
    "labels",
    "weights",
    "sample_weight",
    "table",
    "method",
    "reliability_data",
    "level_of_measurement",
    "value_domain",
    "count",
    "nobs",
    "alpha",
];

impl LineScorer for AgreementScorer {
    fn input_fields(&self) -> &[&'static str] {
        ALL_FIELDS
    }

    fn consumes(&self, line: &Fields, field: &str) -> bool {
        match Statistic::of(line) {
            Ok(s) => field == "statistic" || s.fields().contains(&field),
            Err(_) => ALL_FIELDS.contains(&field),
        }
    }

    fn score(&self, line: &Fields) -> Result<Fields, String> {
        let mut out = Fields::new();
        match Statistic::of(line)? {
            Statistic::CohenKappa => {
                out.insert("value".into(), float(cohen(line)?));
            }
            Statistic::FleissKappa => {
                out.insert("value".into(), float(fleiss(line)?));
            }
            Statistic::KrippendorffAlpha => {
                out.insert("value".into(), float(krippendorff(line)?));
            }
            Statistic::ProportionCi => {
                let (low, high) = interval(line)?;
                out.insert("low".into(), float(low));
                out.insert("high".into(), float(high));
            }
        }
        Ok(out)
    }
}

fn message(e: MetricsError) -> String {
    e.to_string()
}

/// A `FromStr` option with a default when absent or null.
fn parsed_or<T: std::str::FromStr<Err = MetricsError>>(
    line: &Fields,
    field: &str,
    default: T,
) -> Result<T, String> {
    optional_str(line, field)?.map_or(Ok(default), |s| s.parse::<T>().map_err(message))
}

fn cohen(line: &Fields) -> Result<f64, String> {
    let weights = optional_str(line, "weights")?
        .map(str::parse)
        .transpose()
        .map_err(message)?;
    let sample_weight = optional(line, "sample_weight")
        .map(|v| as_f64_array(v, "sample_weight"))
        .transpose()?;
    match read_pair(line, "y1", "y2")? {
        SameKind::Str(arrays) => kappa_of(arrays, weights, sample_weight),
        SameKind::Int(arrays) => kappa_of(arrays, weights, sample_weight),
    }
    .map_err(message)
}

fn kappa_of<L: Ord + Clone>(
    arrays: Vec<Vec<L>>,
    weights: Option<KappaWeights>,
    sample_weight: Option<Vec<f64>>,
) -> Result<f64, MetricsError> {
    let (y1, y2, labels) = pair_and_labels(arrays);
    let options = CohenKappaOptions {
        labels,
        weights,
        sample_weight,
    };
    cohen_kappa(&y1, &y2, &options)
}

fn fleiss(line: &Fields) -> Result<f64, String> {
    let rows = required(line, "table")?.as_array().ok_or_else(|| {
        "`table`: expected an array of rows (subjects) of counts (categories)".to_string()
    })?;
    let table = rows
        .iter()
        .enumerate()
        .map(|(i, row)| as_f64_array(row, &format!("table[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let method = parsed_or(line, "method", FleissMethod::Fleiss)?;
    fleiss_kappa(&table, method).map_err(message)
}

/// Reliability data and value domain of one line: numbers or labels.
enum Ratings {
    Numbers(Vec<Vec<Option<f64>>>, Option<Vec<f64>>),
    Labels(Vec<Vec<Option<String>>>, Option<Vec<String>>),
}

fn krippendorff(line: &Fields) -> Result<f64, String> {
    let level = parsed_or(line, "level_of_measurement", LevelOfMeasurement::Interval)?;
    match ratings(line)? {
        Ratings::Numbers(data, domain) => krippendorff_alpha(&data, level, domain.as_deref()),
        Ratings::Labels(data, domain) => krippendorff_alpha(&data, level, domain.as_deref()),
    }
    .map_err(message)
}

/// Reads `reliability_data` (and `value_domain`): all numbers or all strings, null missing.
fn ratings(line: &Fields) -> Result<Ratings, String> {
    let field = "reliability_data";
    let rows = required(line, field)?
        .as_array()
        .ok_or_else(|| format!("`{field}`: expected an array of rows (raters) of ratings"))?;
    let mut cells = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or_else(|| {
            format!(
                "`{field}[{r}]`: expected an array of ratings, got {}",
                kind(row)
            )
        })?;
        cells.push(row);
    }
    let values = || cells.iter().flat_map(|r| r.iter()).filter(|v| !v.is_null());
    let domain = optional(line, "value_domain")
        .map(|v| {
            v.as_array()
                .ok_or_else(|| format!("`value_domain`: expected an array, got {}", kind(v)))
        })
        .transpose()?;
    let strings = values()
        .chain(domain.into_iter().flatten())
        .any(Value::is_string);
    if strings {
        let label = |v: &Value, at: &str| -> Result<String, String> {
            v.as_str().map(String::from).ok_or_else(|| {
                format!(
                    "`{at}`: ratings mix strings and {} (use null for a missing rating)",
                    kind(v)
                )
            })
        };
        Ok(Ratings::Labels(
            table_of(&cells, field, label)?,
            domain
                .map(|d| list_of(d, "value_domain", label))
                .transpose()?,
        ))
    } else {
        let number = |v: &Value, at: &str| as_f64(v, at);
        Ok(Ratings::Numbers(
            table_of(&cells, field, number)?,
            domain
                .map(|d| list_of(d, "value_domain", number))
                .transpose()?,
        ))
    }
}

fn table_of<V: Rating>(
    cells: &[&Vec<Value>],
    field: &str,
    parse: impl Fn(&Value, &str) -> Result<V, String>,
) -> Result<Vec<Vec<Option<V>>>, String> {
    cells
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(u, v)| {
                    (!v.is_null())
                        .then(|| parse(v, &format!("{field}[{r}][{u}]")))
                        .transpose()
                })
                .collect()
        })
        .collect()
}

fn list_of<V>(
    items: &[Value],
    field: &str,
    parse: impl Fn(&Value, &str) -> Result<V, String>,
) -> Result<Vec<V>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse(v, &format!("{field}[{i}]")))
        .collect()
}

fn interval(line: &Fields) -> Result<(f64, f64), String> {
    let count = as_f64(required(line, "count")?, "count")?;
    let nobs = as_f64(required(line, "nobs")?, "nobs")?;
    let alpha = optional(line, "alpha").map_or(Ok(0.05), |v| as_f64(v, "alpha"))?;
    let method = parsed_or(line, "method", ConfintMethod::Normal)?;
    let ci = proportion_confint(count, nobs, alpha, method).map_err(message)?;
    Ok((ci.low, ci.high))
}

/// Runs `evaluate agreement`.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run(args: &AgreementArgs) -> anyhow::Result<super::json::RunSummary> {
    super::json::run_jsonl(&args.io, &AgreementScorer)
}
