//! `evaluate rouge`: ROUGE-1/2/L/Lsum per line, identical to Google's `rouge-score` 0.1.2
//! (see `ro_metrics::RougeScorer`), with an optional table of corpus means.

use std::cell::RefCell;
use std::io::Write;

use anyhow::Context;
use clap::Args;
use ro_metrics::{RougeScorer, RougeType, Scores};
use serde_json::Value;

use super::json::{float, required_str, Fields, LineScorer, RunSummary};
use super::IoArgs;

/// Arguments of `evaluate rouge`.
#[derive(Debug, Clone, Args)]
pub struct RougeArgs {
    /// Input and output files.
    #[command(flatten)]
    pub io: IoArgs,
    /// Apply NLTK's Porter stemmer to tokens longer than 3 characters (rouge-score's
    /// `use_stemmer=True`).
    #[arg(long)]
    pub stem: bool,
    /// Also print a table of corpus means (over the lines that scored) for each ROUGE type:
    /// to stderr when the scores go to stdout, to stdout when --output is given.
    #[arg(long)]
    pub summary: bool,
}

/// Scores `{"reference","candidate"}` lines and keeps the scores for the summary.
#[derive(Debug)]
pub struct RougeLineScorer {
    scorer: RougeScorer,
    scored: RefCell<Vec<Scores>>,
}

impl RougeLineScorer {
    /// A scorer of the four standard ROUGE types.
    pub fn new(stem: bool) -> Self {
        Self {
            scorer: RougeScorer::new(&RougeType::STANDARD, stem),
            scored: RefCell::new(Vec::new()),
        }
    }
}

fn score_object(s: ro_metrics::RougeScore) -> Value {
    let mut m = Fields::new();
    m.insert("precision".into(), float(s.precision));
    m.insert("recall".into(), float(s.recall));
    m.insert("fmeasure".into(), float(s.fmeasure));
    Value::Object(m)
}

impl LineScorer for RougeLineScorer {
    fn input_fields(&self) -> &[&'static str] {
        &["reference", "candidate"]
    }

    fn score(&self, line: &Fields) -> Result<Fields, String> {
        let reference = required_str(line, "reference")?;
        let candidate = required_str(line, "candidate")?;
        let scores = self.scorer.score(reference, candidate);
        let mut out = Fields::new();
        for (t, s) in scores.iter() {
            out.insert(t.to_string(), score_object(s));
        }
        self.scored.borrow_mut().push(scores);
        Ok(out)
    }
}

/// Runs `evaluate rouge`.
///
/// # Errors
/// An unreadable or empty input file, or an unwritable output.
pub fn run(args: &RougeArgs) -> anyhow::Result<RunSummary> {
    let scorer = RougeLineScorer::new(args.stem);
    let summary = super::json::run_jsonl(&args.io, &scorer)?;
    if args.summary {
        let scored = scorer.scored.into_inner();
        let mut table = format!(
            "ROUGE corpus means over {} of {} lines{}\n{:<10} {:>10} {:>10} {:>10}\n",
            scored.len(),
            summary.lines,
            if args.stem { " (stemmed)" } else { "" },
            "type",
            "precision",
            "recall",
            "fmeasure"
        );
        match Scores::mean(&scored) {
            Ok(mean) => {
                for (t, s) in mean.iter() {
                    table.push_str(&format!(
                        "{:<10} {:>10.6} {:>10.6} {:>10.6}\n",
                        t.to_string(),
                        s.precision,
                        s.recall,
                        s.fmeasure
                    ));
                }
            }
            Err(e) => table.push_str(&format!("(no means: {e})\n")),
        }
        if args.io.output.is_some() {
            std::io::stdout()
                .write_all(table.as_bytes())
                .context("cannot write the summary to stdout")?;
        } else {
            std::io::stderr()
                .write_all(table.as_bytes())
                .context("cannot write the summary to stderr")?;
        }
    }
    Ok(summary)
}
