//! `evaluate classify`: accuracy and precision/recall/F-beta/support per line, with
//! scikit-learn's `precision_recall_fscore_support` semantics (see `ro_metrics`).

use clap::Args;
use ro_metrics::{
    accuracy, precision_recall_fscore_support, Average, PrecisionRecallFscore, PrfOptions,
    PrfScores, ZeroDivision,
};
use serde_json::Value;

use super::json::{as_f64, as_f64_array, float, floats, kind, optional, Fields, LineScorer};
use super::labels::{pair_and_labels, read_pair, SameKind};
use super::IoArgs;

/// Arguments of `evaluate classify`.
#[derive(Debug, Clone, Args)]
pub struct ClassifyArgs {
    /// Input and output files.
    #[command(flatten)]
    pub io: IoArgs,
}

/// Scores `{"y_true","y_pred","labels","average","zero_division","beta","sample_weight"}` lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyScorer;

fn parse_options<L>(line: &Fields, labels: Option<Vec<L>>) -> Result<PrfOptions<L>, String> {
    let average = match optional(line, "average") {
        None => None,
        Some(Value::String(s)) => Some(s.parse::<Average>().map_err(|e| e.to_string())?),
        Some(other) => {
            return Err(format!(
                "`average`: expected null or a string, got {}",
                kind(other)
            ))
        }
    };
    let zero_division = match optional(line, "zero_division") {
        None => ZeroDivision::Warn,
        Some(Value::String(s)) => s.parse::<ZeroDivision>().map_err(|e| e.to_string())?,
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if v == 0.0 {
                ZeroDivision::Zero
            } else if v == 1.0 {
                ZeroDivision::One
            } else {
                return Err(format!(
                    "`zero_division`: {n} is not one of \"warn\", 0, 1, \"nan\""
                ));
            }
        }
        Some(other) => {
            return Err(format!(
                "`zero_division`: expected a string or number, got {}",
                kind(other)
            ))
        }
    };
    let beta = match optional(line, "beta") {
        None => 1.0,
        Some(v) => as_f64(v, "beta")?,
    };
    let sample_weight = optional(line, "sample_weight")
        .map(|v| as_f64_array(v, "sample_weight"))
        .transpose()?;
    Ok(PrfOptions {
        labels,
        average,
        zero_division,
        beta,
        sample_weight,
    })
}

fn label_values<L: Clone + Into<Value>>(labels: &[L]) -> Value {
    Value::Array(labels.iter().cloned().map(Into::into).collect())
}

fn compute<L: Ord + Clone + Into<Value>>(
    line: &Fields,
    y_true: Vec<L>,
    y_pred: Vec<L>,
    labels: Option<Vec<L>>,
) -> Result<Fields, String> {
    let opts = parse_options(line, labels)?;
    let r: PrecisionRecallFscore<L> =
        precision_recall_fscore_support(&y_true, &y_pred, &opts).map_err(|e| e.to_string())?;
    let acc =
        accuracy(&y_true, &y_pred, opts.sample_weight.as_deref()).map_err(|e| e.to_string())?;
    let mut out = Fields::new();
    out.insert("labels".into(), label_values(&r.labels));
    match &r.scores {
        PrfScores::PerLabel {
            precision,
            recall,
            fscore,
            support,
        } => {
            out.insert("precision".into(), floats(precision));
            out.insert("recall".into(), floats(recall));
            out.insert("fscore".into(), floats(fscore));
            // Counts are integers without sample weights, as in scikit-learn.
            let support = if opts.sample_weight.is_none() {
                Value::Array(support.iter().map(|&s| Value::from(s as u64)).collect())
            } else {
                floats(support)
            };
            out.insert("support".into(), support);
        }
        PrfScores::Averaged {
            precision,
            recall,
            fscore,
        } => {
            out.insert("precision".into(), float(*precision));
            out.insert("recall".into(), float(*recall));
            out.insert("fscore".into(), float(*fscore));
            out.insert("support".into(), Value::Null);
        }
    }
    out.insert("accuracy".into(), float(acc));
    out.insert(
        "warnings".into(),
        Value::Array(
            r.warnings
                .iter()
                .map(|w| Value::from(w.message.clone()))
                .collect(),
        ),
    );
    Ok(out)
}

impl LineScorer for ClassifyScorer {
    fn input_fields(&self) -> &[&'static str] {
        &[
            "y_true",
            "y_pred",
            "labels",
            "average",
            "zero_division",
            "beta",
            "sample_weight",
        ]
    }

    fn score(&self, line: &Fields) -> Result<Fields, String> {
        match read_pair(line, "y_true", "y_pred")? {
            SameKind::Str(a) => {
                let (y_true, y_pred, labels) = pair_and_labels(a);
                compute(line, y_true, y_pred, labels)
            }
            SameKind::Int(a) => {
                let (y_true, y_pred, labels) = pair_and_labels(a);
                compute(line, y_true, y_pred, labels)
            }
        }
    }
}

/// Runs `evaluate classify`.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<super::json::RunSummary> {
    super::json::run_jsonl(&args.io, &ClassifyScorer)
}
