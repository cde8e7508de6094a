//! The `evaluate` program: score model outputs line by line with the papers' metrics.
//!
//! `evaluate rouge|classify|wilcoxon|icd10|agreement --input FILE.jsonl [--output FILE.jsonl]`
//! reads one JSON object per line and writes one JSON object per line, in the same order, with
//! every input field the subcommand does not consume (such as `id`) copied through. A line that
//! cannot be scored becomes `{"error": "line N: ..."}` (plus the copied fields) and the run
//! goes on. See [`json`] for the plumbing and each subcommand's module for its fields.
//! `evaluate task` is the exception: it scores a whole predictions file (see [`task`]).
//!
//! Adding a subcommand is one variant of [`Command`] (whose argument type implements
//! [`Subcommand`]) and one module.

pub mod agreement;
pub mod classify;
pub mod icd10;
pub mod json;
pub mod labels;
pub mod rouge;
pub mod task;
pub mod wilcoxon;

use std::path::PathBuf;

use clap::{Args, Parser};

/// Score model outputs with the metrics of the radiation-oncology studies, matching
/// rouge-score, scikit-learn, scipy, statsmodels and krippendorff.
///
/// Each subcommand reads JSON lines (--input) and writes one JSON line per input line
/// (--output, written atomically, or stdout), copying other fields such as "id" through.
/// Bad lines give {"error": "line N: ..."} and the run goes on. Non-finite floats are the
/// strings "NaN", "Infinity", "-Infinity", in output and input.
#[derive(Debug, Parser)]
#[command(name = "evaluate", version)]
pub struct Cli {
    /// What to compute.
    #[command(subcommand)]
    pub command: Command,
}

/// Input and output files, common to the line-by-line subcommands.
#[derive(Debug, Clone, Args)]
pub struct IoArgs {
    /// Input file: JSON lines, one object per line.
    #[arg(long, value_name = "FILE.jsonl")]
    pub input: PathBuf,
    /// Output file (JSON lines, written atomically); stdout when absent.
    #[arg(long, value_name = "FILE.jsonl")]
    pub output: Option<PathBuf>,
}

/// A runnable subcommand.
pub trait Subcommand {
    /// Runs it to the end.
    ///
    /// # Errors
    /// Anything that stops the whole run (unreadable input, unwritable output); bad lines
    /// are not errors.
    fn run(&self) -> anyhow::Result<()>;
}

/// The subcommands of `evaluate`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// ROUGE-1/2/L/Lsum as rouge-score 0.1.2. In: {"reference","candidate"}; out:
    /// {"rouge1":{"precision","recall","fmeasure"},"rouge2":..,"rougeL":..,"rougeLsum":..}.
    Rouge(rouge::RougeArgs),
    /// Accuracy and precision/recall/F-beta/support as scikit-learn. In: {"y_true":[..],
    /// "y_pred":[..],"labels":null|[..],"average":null|"micro"|"macro"|"weighted",
    /// "zero_division":"warn"|0|1|"nan","beta":1.0,"sample_weight":null|[..]}; out:
    /// {"labels","precision","recall","fscore","support","accuracy","warnings"} (arrays per
    /// label when average is null).
    Classify(classify::ClassifyArgs),
    /// Wilcoxon signed-rank test as scipy.stats.wilcoxon. In: {"x":[..],"y":[..]|null,
    /// "zero_method":"wilcox"|"pratt"|"zsplit","correction":false,"alternative":
    /// "two-sided"|"greater"|"less","method":"auto"|"exact"|"asymptotic"}; out: {"statistic",
    /// "pvalue","zstatistic"|null,"method":"exact"|"asymptotic"|"permutation"}.
    Wilcoxon(wilcoxon::WilcoxonArgs),
    /// Rater agreement (Cohen's and Fleiss' kappa, Krippendorff's alpha) and proportion
    /// intervals, as scikit-learn, statsmodels and krippendorff. One statistic per line.
    ///
    /// {"statistic":"cohen_kappa","y1":[..],"y2":[..],"labels":null|[..],"weights":
    /// null|"linear"|"quadratic","sample_weight":null|[..]} -> {"value"}
    ///
    /// {"statistic":"fleiss_kappa","table":[[..],..] (subjects x categories counts),"method":
    /// "fleiss"|"randolph"} -> {"value"}
    ///
    /// {"statistic":"krippendorff_alpha","reliability_data":[[v|null,..],..] (rows raters,
    /// columns units),"level_of_measurement":"nominal"|"ordinal"|"interval"|"ratio",
    /// "value_domain":null|[..]} -> {"value"}
    ///
    /// {"statistic":"proportion_ci","count":k,"nobs":n,"alpha":0.05,"method":"normal"|
    /// "agresti_coull"|"beta"|"wilson"|"jeffreys"} -> {"low","high"}
    ///
    /// Fields of other statistics are copied through. NaN where the reference returns NaN;
    /// an "error" line where it raises.
    Agreement(agreement::AgreementArgs),
    /// ICD-10-CM code validation. In: {"input":".."}; out: {"valid","code","kind","billable",
    /// "description","qualifiers","error"} (normalization rules: ro-tasks `normalize_code`).
    Icd10(icd10::Icd10Args),
    /// Score a task's predictions {"id","reference","prediction"} with ro-tasks' scorers and,
    /// with --baseline, compare per metric (one-sided Wilcoxon, paired bootstrap 95% CI).
    /// Writes a JSON report (--output) and/or a Markdown report (--markdown).
    Task(task::TaskArgs),
}

impl Command {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// See [`Subcommand::run`].
    pub fn run(&self) -> anyhow::Result<()> {
        match self {
            Self::Rouge(a) => a.run(),
            Self::Classify(a) => a.run(),
            Self::Wilcoxon(a) => a.run(),
            Self::Agreement(a) => a.run(),
            Self::Icd10(a) => a.run(),
            Self::Task(a) => a.run(),
        }
    }
}

fn report(summary: json::RunSummary) {
    if summary.errors > 0 {
        log::warn!(
            "{} of {} lines could not be scored (see their \"error\" fields)",
            summary.errors,
            summary.lines
        );
    }
}

impl Subcommand for rouge::RougeArgs {
    fn run(&self) -> anyhow::Result<()> {
        rouge::run(self).map(report)
    }
}

impl Subcommand for classify::ClassifyArgs {
    fn run(&self) -> anyhow::Result<()> {
        classify::run(self).map(report)
    }
}

impl Subcommand for agreement::AgreementArgs {
    fn run(&self) -> anyhow::Result<()> {
        agreement::run(self).map(report)
    }
}

impl Subcommand for wilcoxon::WilcoxonArgs {
    fn run(&self) -> anyhow::Result<()> {
        wilcoxon::run(self).map(report)
    }
}
