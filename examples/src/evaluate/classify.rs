//! `evaluate classify`: accuracy and precision/recall/F-beta/support per line, with
//! scikit-learn's `precision_recall_fscore_support` semantics (see `ro_metrics`).

use clap::Args;
use ro_metrics::{
    accuracy, precision_recall_fscore_support, Average, PrecisionRecallFscore, PrfOptions,
    PrfScores, ZeroDivision,
};
use serde_json::Value;

use super::json::{
    as_f64, as_f64_array, float, floats, kind, optional, required, Fields, LineScorer,
};
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

/// Labels of one line: all strings or all integers, as scikit-learn requires.
enum Labels {
    Str(Vec<String>),
    Int(Vec<i64>),
}

fn parse_labels(v: &Value, field: &str) -> Result<Labels, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("`{field}`: expected an array of labels, got {}", kind(v)))?;
    if items.iter().all(Value::is_string) {
        return Ok(Labels::Str(
            items
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
        ));
    }
    let ints: Option<Vec<i64>> = items
        .iter()
        .map(|x| match x {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        })
        .collect();
    ints.map(Labels::Int).ok_or_else(|| {
        format!("`{field}`: labels must be all strings or all integers (scikit-learn refuses mixed or continuous labels)")
    })
}

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
        let y_true = parse_labels(required(line, "y_true")?, "y_true")?;
        let y_pred = parse_labels(required(line, "y_pred")?, "y_pred")?;
        let labels = optional(line, "labels")
            .map(|v| parse_labels(v, "labels"))
            .transpose()?;
        let mixed = || "`y_true`, `y_pred` and `labels` mix string and integer labels".to_string();
        match (y_true, y_pred) {
            // An empty array has no type of its own; it takes the other's.
            (Labels::Str(t), Labels::Str(p)) => {
                let l = match labels {
                    None => None,
                    Some(Labels::Str(l)) => Some(l),
                    Some(Labels::Int(l)) if l.is_empty() => Some(Vec::new()),
                    Some(Labels::Int(_)) => return Err(mixed()),
                };
                compute(line, t, p, l)
            }
            (Labels::Int(t), Labels::Int(p)) => {
                let l = match labels {
                    None => None,
                    Some(Labels::Int(l)) => Some(l),
                    Some(Labels::Str(l)) if l.is_empty() => Some(Vec::new()),
                    Some(Labels::Str(_)) => return Err(mixed()),
                };
                compute(line, t, p, l)
            }
            (Labels::Str(t), Labels::Int(p)) if p.is_empty() => {
                compute(line, t, Vec::new(), labels_as_str(labels)?)
            }
            (Labels::Int(t), Labels::Str(p)) if t.is_empty() => {
                compute(line, Vec::new(), p, labels_as_str(labels)?)
            }
            _ => Err(mixed()),
        }
    }
}

fn labels_as_str(labels: Option<Labels>) -> Result<Option<Vec<String>>, String> {
    match labels {
        None => Ok(None),
        Some(Labels::Str(l)) => Ok(Some(l)),
        Some(Labels::Int(l)) if l.is_empty() => Ok(Some(Vec::new())),
        Some(Labels::Int(_)) => Err("`labels` are integers but the targets are strings".into()),
    }
}

/// Runs `evaluate classify`.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<super::json::RunSummary> {
    super::json::run_jsonl(&args.io, &ClassifyScorer)
}
