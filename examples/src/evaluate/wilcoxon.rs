//! `evaluate wilcoxon`: the Wilcoxon signed-rank test per line, with `scipy.stats.wilcoxon`
//! semantics (see `ro_metrics::wilcoxon`).

use clap::Args;
use ro_metrics::{Alternative, WilcoxonMethod, WilcoxonOptions, ZeroMethod};
use serde_json::Value;

use super::json::{
    as_f64_array, float, kind, optional, optional_str, required, Fields, LineScorer,
};
use super::IoArgs;

/// Arguments of `evaluate wilcoxon`.
#[derive(Debug, Clone, Args)]
pub struct WilcoxonArgs {
    /// Input and output files.
    #[command(flatten)]
    pub io: IoArgs,
}

/// Scores `{"x","y","zero_method","correction","alternative","method"}` lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct WilcoxonScorer;

fn parse_enum<T: std::str::FromStr<Err = ro_metrics::MetricsError> + Default>(
    line: &Fields,
    field: &str,
) -> Result<T, String> {
    optional_str(line, field)?.map_or(Ok(T::default()), |s| {
        s.parse::<T>().map_err(|e| e.to_string())
    })
}

impl LineScorer for WilcoxonScorer {
    fn input_fields(&self) -> &[&'static str] {
        &[
            "x",
            "y",
            "zero_method",
            "correction",
            "alternative",
            "method",
        ]
    }

    fn score(&self, line: &Fields) -> Result<Fields, String> {
        let x = as_f64_array(required(line, "x")?, "x")?;
        let y = optional(line, "y")
            .map(|v| as_f64_array(v, "y"))
            .transpose()?;
        let correction = match optional(line, "correction") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "`correction`: expected a boolean, got {}",
                    kind(other)
                ))
            }
        };
        let opts = WilcoxonOptions {
            zero_method: parse_enum::<ZeroMethod>(line, "zero_method")?,
            correction,
            alternative: parse_enum::<Alternative>(line, "alternative")?,
            method: parse_enum::<WilcoxonMethod>(line, "method")?,
        };
        let r = ro_metrics::wilcoxon(&x, y.as_deref(), &opts).map_err(|e| e.to_string())?;
        let mut out = Fields::new();
        out.insert("statistic".into(), float(r.statistic));
        out.insert("pvalue".into(), float(r.pvalue));
        out.insert("zstatistic".into(), r.zstatistic.map_or(Value::Null, float));
        out.insert("method".into(), Value::from(r.method.to_string()));
        Ok(out)
    }
}

/// Runs `evaluate wilcoxon`.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run(args: &WilcoxonArgs) -> anyhow::Result<super::json::RunSummary> {
    super::json::run_jsonl(&args.io, &WilcoxonScorer)
}
