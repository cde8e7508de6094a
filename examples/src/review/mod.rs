//! The `review` program: blinded clinician rating of model outputs, as the studies did it
//! (physicians rating generated letters on a 4-point scale; radiation oncologists judging
//! regimens "clinically acceptable").
//!
//! ```text
//! review export  cases + predictions -> DIR/key.json, DIR/packets/packet-<rater>.{html,csv}
//! review import  key + the raters' ratings files (JSON from the HTML, or CSV) -> ratings.jsonl
//! review report  key + ratings.jsonl -> DIR/report.md, DIR/review.json, SVG plots
//! review config  prints the default questions (a file to edit for --config)
//! ```
//!
//! One module per stage: [`config`] (the questions), [`blind`] (sampling, blinding, the key),
//! [`html`] and [`csv`] (the packets), [`answers`] (ratings files as read), [`import`]
//! (checks and un-blinding), [`export`] (writing a packet set), [`report`] (statistics) and
//! [`plots`] (its charts).

pub mod agreement;
pub mod answers;
pub mod blind;
pub mod config;
pub mod csv;
pub mod export;
pub mod html;
pub mod import;
pub mod plots;
pub mod report;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ro_tasks::TaskKind;

use crate::evaluate::json::write_atomically;
use blind::{BlindInput, BlindOptions, Key, ModelOutputs};
use config::ReviewConfig;

/// Blinded clinician review of model outputs: export rating packets (self-contained HTML and
/// CSV) with a separate un-blinding key, import the raters' files, report the ratings with
/// intervals, paired Wilcoxon tests and inter-rater agreement.
#[derive(Debug, Parser)]
#[command(name = "review", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `review`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw cases, blind the candidates and write DIR/key.json (keep it) and one HTML and one
    /// CSV packet per rater under DIR/packets/ (send those).
    Export(ExportArgs),
    /// Check the raters' ratings files (saved from the HTML packet, or the filled-in CSV, in
    /// any mix) against the key and write one un-blinded JSONL of ratings. Nothing is written
    /// when any file has a problem.
    Import(ImportArgs),
    /// Per model and question: mean, median, distribution, bootstrap 95% CI; paired one-sided
    /// Wilcoxon tests between models; the acceptable rate with its CI; inter-rater agreement.
    /// Writes DIR/report.md, DIR/review.json and SVG plots.
    Report(report::ReportArgs),
    /// Print the default questions as a config file to edit (for `export --config`).
    Config(ConfigArgs),
}

/// Arguments of `review export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The task the texts answer: letters, regimen, modality or icd10 (checks the cases file).
    #[arg(long)]
    pub task: TaskKind,
    /// The cases: JSON lines {"id","input","target"} (ro-tasks datasets, e.g. the demo's
    /// data/letters_test.jsonl). The input is shown to raters; the target is the reference.
    #[arg(long, value_name = "FILE.jsonl")]
    pub cases: PathBuf,
    /// One model's outputs as NAME=FILE.jsonl, with lines {"id","reference","prediction"}
    /// (as `evaluate task` reads them). Repeat for each model; every file must hold the same
    /// case ids. The first model's file decides which cases are eligible.
    #[arg(long = "predictions", value_name = "NAME=FILE.jsonl", required = true)]
    pub predictions: Vec<String>,
    /// Also show the reference answer (the cases' target) as one more blinded candidate,
    /// named "reference" in the key.
    #[arg(long)]
    pub with_reference: bool,
    /// Cases per packet, drawn without replacement.
    #[arg(long, default_value_t = 10)]
    pub n_cases: usize,
    /// Seed of the draw and of the candidate orders.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Raters, comma-separated (letters, digits, _ . -): one HTML and one CSV packet each.
    #[arg(long, value_delimiter = ',', required = true)]
    pub raters: Vec<String>,
    /// Questions and scales (JSON; `review config` prints the default to start from).
    #[arg(long, value_name = "FILE.json")]
    pub config: Option<PathBuf>,
    /// Output directory: key.json and packets/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing key.json of another packet in DIR.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `review import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The key written by `review export`.
    #[arg(long, value_name = "key.json")]
    pub key: PathBuf,
    /// Where to write the un-blinded ratings (JSON lines, written atomically).
    #[arg(long, value_name = "ratings.jsonl")]
    pub output: PathBuf,
    /// The raters' files: JSON saved by the HTML packet, or the filled-in CSV packet.
    #[arg(value_name = "RATINGS", required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `review config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Write the default config here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE.json")]
    pub output: Option<PathBuf>,
}

impl Command {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// Bad input or an unwritable output, with a message naming the file and field.
    pub fn run(&self) -> Result<()> {
        match self {
            Self::Export(a) => run_export(a),
            Self::Import(a) => run_import(a),
            Self::Report(a) => report::run(a),
            Self::Config(a) => run_config(a),
        }
    }
}

/// Splits `NAME=FILE`.
fn model_arg(arg: &str) -> Result<(String, PathBuf)> {
    match arg.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(path)))
        }
        _ => anyhow::bail!("--predictions: expected NAME=FILE.jsonl, got {arg:?}"),
    }
}

fn run_export(a: &ExportArgs) -> Result<()> {
    let config = match &a.config {
        Some(p) => ReviewConfig::load(p)?,
        None => ReviewConfig::default(),
    };
    let cases = ro_tasks::read_examples(&a.cases, a.task)
        .with_context(|| format!("cannot read cases file {}", a.cases.display()))?;
    let mut models = Vec::new();
    for arg in &a.predictions {
        let (name, path) = model_arg(arg)?;
        let records = ro_tasks::read_predictions(&path)
            .with_context(|| format!("cannot read predictions file {}", path.display()))?;
        models.push(ModelOutputs {
            name,
            source: path.display().to_string(),
            records,
        });
    }
    let input = BlindInput {
        task: a.task,
        cases,
        cases_source: a.cases.display().to_string(),
        models,
        with_reference: a.with_reference,
    };
    let options = BlindOptions {
        n_cases: a.n_cases,
        seed: a.seed,
        raters: a.raters.clone(),
    };
    let (packet, files) = export::export(&input, &options, &config, &a.out, a.force)?;
    println!(
        "packet {}: {} cases x {} candidates, {} raters",
        packet.key.packet,
        packet.cases.len(),
        packet.key.models.len(),
        options.raters.len()
    );
    println!("key (keep it, do not send it): {}", files.key.display());
    for (h, c) in files.html.iter().zip(&files.csv) {
        println!("packet: {} (or {})", h.display(), c.display());
    }
    Ok(())
}

fn run_import(a: &ImportArgs) -> Result<()> {
    let (key, config) = Key::load(&a.key)?;
    let files = a
        .files
        .iter()
        .map(|p| answers::read_ratings_file(p))
        .collect::<Result<Vec<_>>>()?;
    let ratings = import::import(&key, &config, &files)?;
    write_atomically(&a.output, &import::to_jsonl(&ratings)?)?;
    println!(
        "{} ratings of {} raters -> {}",
        ratings.len(),
        files.len(),
        a.output.display()
    );
    Ok(())
}

fn run_config(a: &ConfigArgs) -> Result<()> {
    let text = serde_json::to_string_pretty(&ReviewConfig::default().to_json())? + "\n";
    match &a.output {
        Some(p) => write_atomically(p, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
