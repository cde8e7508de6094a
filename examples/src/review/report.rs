//! Report: the ratings per model and question, tests between models, inter-rater agreement.
//!
//! # Statistics
//!
//! The unit of resampling and pairing is the case: every rater rated every candidate of
//! every case (import refuses incomplete files), so a model's per-case value is the mean of
//! its raters' answers on that case, and the mean over cases equals the mean over ratings.
//!
//! - Scale questions, per model: number of ratings, mean with a 95% percentile-bootstrap
//!   interval over cases (2,000 resamples, seed [`ro_tasks::BOOTSTRAP_SEED`], as the demo),
//!   median of all ratings (numpy's), and the count of each point.
//! - Choice questions, per model: the count of each option and, when the config names the
//!   acceptable options, the acceptable rate over all ratings with its 95% Wilson interval
//!   (statsmodels' `proportion_confint`, see [`super::agreement`]).
//! - Between models (scale questions, and the acceptable share of choice questions): for each
//!   pair "model vs baseline" (`--compare MODEL:BASELINE`; by default every model against the
//!   first), the per-case values are paired; one-sided Wilcoxon signed-rank test, alternative
//!   "model greater" with scipy's defaults (ro-metrics), and the paired-bootstrap 95% interval
//!   of the mean difference.
//! - Inter-rater agreement per question: see [`super::agreement`].
//!
//! Outputs: `DIR/report.md`, `DIR/review.json` (every number; non-finite floats as strings)
//! and one SVG per rated question, `DIR/ratings_<question>.svg`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use ro_metrics::{
    paired_bootstrap_mean_difference, quantile_linear, wilcoxon, Alternative, BootstrapOptions,
    WilcoxonOptions,
};
use ro_tasks::BOOTSTRAP_SEED;
use serde::Serialize;

use super::blind::Key;
use super::config::{QuestionKind, ReviewConfig};
use super::import::{Rating, RatingValue};
use super::plots::distribution_svg;
use crate::evaluate::json::write_atomically;
use crate::reporting::markdown::{cell, fmt, fmt_p};
use crate::reporting::{mean_estimate, Estimate, Num};

/// Arguments of `review report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The key written by `review export`.
    #[arg(long, value_name = "key.json")]
    pub key: PathBuf,
    /// The un-blinded ratings written by `review import`.
    #[arg(long, value_name = "ratings.jsonl")]
    pub ratings: PathBuf,
    /// Output directory: report.md, review.json and the SVG plots.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A paired comparison MODEL:BASELINE (one-sided: MODEL rated higher). Repeatable;
    /// default: every model against the first model of the export.
    #[arg(long = "compare", value_name = "MODEL:BASELINE")]
    pub compare: Vec<String>,
}

/// The whole report, as `review.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewReport {
    /// The packet id.
    pub packet: String,
    /// The task.
    pub task: String,
    /// Cases rated.
    pub cases: usize,
    /// Raters whose ratings are in, in file order.
    pub raters: Vec<String>,
    /// The models, in export order.
    pub models: Vec<String>,
    /// One entry per scale or choice question.
    pub questions: Vec<QuestionReport>,
    /// The free-text answers.
    pub comments: Vec<Comment>,
}

/// The statistics of one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionReport {
    /// Question id.
    pub id: String,
    /// Question text.
    pub text: String,
    /// `scale` or `choice`.
    pub kind: String,
    /// The answer levels in order: scale points or option values.
    pub levels: Vec<String>,
    /// Display names of the levels (scale: point and label; choice: option label).
    pub level_labels: Vec<String>,
    /// Where each level sits from worst (0) to best (1), for the plot's colours: a scale's
    /// points evenly; a choice's acceptable options first (best), then the others, each in
    /// config order.
    pub level_shades: Vec<f64>,
    /// Per model, in model order.
    pub models: Vec<ModelStats>,
    /// Paired tests between models.
    pub comparisons: Vec<PairedTest>,
    /// Agreement between raters.
    pub agreement: super::agreement::Agreement,
}

/// One model's ratings on one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    /// The model.
    pub model: String,
    /// Ratings (raters x cases).
    pub n: usize,
    /// Ratings per level, in level order.
    pub counts: Vec<usize>,
    /// Scale: mean with bootstrap 95% interval over cases.
    pub mean: Option<Estimate>,
    /// Scale: median of all ratings.
    pub median: Option<Num>,
    /// Choice with acceptable options: the acceptable rate and its 95% interval.
    pub acceptable: Option<Rate>,
}

/// A proportion with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// Successes.
    pub count: usize,
    /// Trials.
    pub n: usize,
    /// `count / n`.
    pub rate: Num,
    /// Lower end of the 95% interval.
    pub low: Num,
    /// Upper end.
    pub high: Num,
    /// How the interval was computed.
    pub method: String,
}

/// A paired one-sided comparison of two models on one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTest {
    /// The model hypothesised to be rated higher.
    pub model: String,
    /// The model it is compared with.
    pub baseline: String,
    /// Paired cases.
    pub n: usize,
    /// Mean of model minus baseline over cases, with the paired-bootstrap 95% interval.
    pub difference: Estimate,
    /// Wilcoxon statistic (scipy's, `W+` for a one-sided test).
    pub statistic: Num,
    /// One-sided p-value (model greater); NaN when the test is undefined.
    pub pvalue: Num,
    /// Why the test is undefined, if it is.
    pub note: Option<String>,
}

/// A free-text answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// The case.
    pub case: String,
    /// The model.
    pub model: String,
    /// The rater.
    pub rater: String,
    /// The question.
    pub question: String,
    /// The text.
    pub text: String,
}

/// Reads `ratings.jsonl`, checking each line against the key.
///
/// # Errors
/// An unreadable file, a line that is not a rating, or a rating of another packet, an
/// unknown model, case or question, or a value the question does not allow; named with the
/// file and line.
pub fn read_ratings(path: &Path, key: &Key, config: &ReviewConfig) -> Result<Vec<Rating>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read ratings file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}: line {}", path.display(), i + 1);
        let r: Rating = serde_json::from_str(line).with_context(at)?;
        let problem = if r.packet != key.packet {
            Some(format!(
                "packet {:?} is not the key's {:?}",
                r.packet, key.packet
            ))
        } else if key.case(&r.case).and_then(|c| c.model(&r.candidate)) != Some(r.model.as_str()) {
            Some(format!(
                "case {:?} candidate {:?} is not model {:?} in the key",
                r.case, r.candidate, r.model
            ))
        } else {
            match (config.question(&r.question).map(|q| &q.kind), &r.value) {
                (None, _) => Some(format!("unknown question {:?}", r.question)),
                (Some(QuestionKind::Scale { min, max, .. }), RatingValue::Point(p))
                    if (min..=max).contains(&p) =>
                {
                    None
                }
                (Some(QuestionKind::Choice { options, .. }), RatingValue::Text(t))
                    if options.iter().any(|o| &o.value == t) =>
                {
                    None
                }
                (Some(QuestionKind::Text), RatingValue::Text(_)) => None,
                _ => Some(format!("question {:?}: value not allowed", r.question)),
            }
        };
        if let Some(p) = problem {
            bail!("{}: {p}", at());
        }
        out.push(r);
    }
    if out.is_empty() {
        bail!("{}: no ratings", path.display());
    }
    Ok(out)
}

/// Parses the `--compare` pairs, or the default: every model against the first.
fn pairs(compare: &[String], models: &[String]) -> Result<Vec<(String, String)>> {
    if compare.is_empty() {
        return Ok(models
            .iter()
            .skip(1)
            .map(|m| (m.clone(), models[0].clone()))
            .collect());
    }
    compare
        .iter()
        .map(|c| {
            let (a, b) = c
                .split_once(':')
                .ok_or_else(|| anyhow!("--compare: expected MODEL:BASELINE, got {c:?}"))?;
            for m in [a, b] {
                if !models.iter().any(|x| x == m) {
                    bail!(
                        "--compare {c}: no model {m:?} in the key ({})",
                        models.join(", ")
                    );
                }
            }
            if a == b {
                bail!("--compare {c}: a model compared with itself");
            }
            Ok((a.to_string(), b.to_string()))
        })
        .collect()
}

/// The ratings of one question, indexed for the statistics.
pub(crate) struct Table<'a> {
    /// The cases in key order.
    pub cases: Vec<&'a str>,
    /// The raters in order of appearance.
    pub raters: Vec<&'a str>,
    /// `(model, case, rater)` -> level index.
    pub level: HashMap<(&'a str, &'a str, &'a str), usize>,
}

impl<'a> Table<'a> {
    fn new(key: &'a Key, ratings: &'a [Rating], question: &str, levels: &[String]) -> Self {
        let mut raters: Vec<&str> = Vec::new();
        let mut level = HashMap::new();
        for r in ratings.iter().filter(|r| r.question == question) {
            let v = match &r.value {
                RatingValue::Point(p) => p.to_string(),
                RatingValue::Text(t) => t.clone(),
            };
            let Some(i) = levels.iter().position(|l| *l == v) else {
                continue;
            };
            if !raters.contains(&r.rater.as_str()) {
                raters.push(&r.rater);
            }
            level.insert((r.model.as_str(), r.case.as_str(), r.rater.as_str()), i);
        }
        Self {
            cases: key.cases.iter().map(|c| c.id.as_str()).collect(),
            raters,
            level,
        }
    }

    /// Level indices of a model's ratings, case by case, rater by rater.
    fn all(&self, model: &str) -> Vec<usize> {
        self.cases
            .iter()
            .flat_map(|c| self.raters.iter().map(move |r| (*c, *r)))
            .filter_map(|(c, r)| self.level.get(&(model, c, r)).copied())
            .collect()
    }

    /// Per case, the mean over raters of `score(level)`; `None` for a case nobody rated.
    fn per_case(&self, model: &str, score: impl Fn(usize) -> f64) -> Vec<Option<f64>> {
        self.cases
            .iter()
            .map(|c| {
                let v: Vec<f64> = self
                    .raters
                    .iter()
                    .filter_map(|r| self.level.get(&(model, *c, *r)).map(|&l| score(l)))
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect()
    }
}

/// Levels, their display names, and a numeric score per level with the score's meaning.
fn levels(kind: &QuestionKind) -> Option<(Vec<String>, Vec<String>, Vec<f64>)> {
    match kind {
        QuestionKind::Scale { min, max, labels } => {
            let points: Vec<i64> = (*min..=*max).collect();
            let names = points
                .iter()
                .enumerate()
                .map(|(i, p)| labels.get(i).map_or(p.to_string(), |l| format!("{p} {l}")))
                .collect();
            Some((
                points.iter().map(|p| p.to_string()).collect(),
                names,
                points.iter().map(|&p| p as f64).collect(),
            ))
        }
        QuestionKind::Choice {
            options,
            acceptable,
        } => Some((
            options.iter().map(|o| o.value.clone()).collect(),
            options.iter().map(|o| o.label.clone()).collect(),
            options
                .iter()
                .map(|o| f64::from(u8::from(acceptable.contains(&o.value))))
                .collect(),
        )),
        QuestionKind::Text => None,
    }
}

/// See [`QuestionReport::level_shades`].
fn shades(kind: &QuestionKind, n: usize) -> Vec<f64> {
    let t = |rank: usize| {
        if n <= 1 {
            1.0
        } else {
            1.0 - rank as f64 / (n - 1) as f64
        }
    };
    match kind {
        QuestionKind::Choice {
            options,
            acceptable,
        } => {
            let mut order: Vec<usize> = (0..options.len()).collect();
            order.sort_by_key(|&i| !acceptable.contains(&options[i].value));
            let mut out = vec![0.0; options.len()];
            for (rank, &i) in order.iter().enumerate() {
                out[i] = t(rank);
            }
            out
        }
        _ => (0..n)
            .map(|i| {
                if n <= 1 {
                    1.0
                } else {
                    i as f64 / (n - 1) as f64
                }
            })
            .collect(),
    }
}

fn median(values: &mut [f64]) -> Num {
    if values.is_empty() {
        return Num(f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    Num(quantile_linear(values, 0.5))
}

fn model_stats(
    table: &Table,
    model: &str,
    kind: &QuestionKind,
    n_levels: usize,
    score: &[f64],
) -> ModelStats {
    let all = table.all(model);
    let mut counts = vec![0; n_levels];
    for &l in &all {
        counts[l] += 1;
    }
    let per_case: Vec<f64> = table
        .per_case(model, |l| score[l])
        .into_iter()
        .flatten()
        .collect();
    let (mean, median_v, acceptable) = match kind {
        QuestionKind::Scale { .. } => {
            let mut v: Vec<f64> = all.iter().map(|&l| score[l]).collect();
            (Some(mean_estimate(&per_case)), Some(median(&mut v)), None)
        }
        QuestionKind::Choice { acceptable, .. } if !acceptable.is_empty() => {
            let count = all.iter().filter(|&&l| score[l] == 1.0).count();
            (
                None,
                None,
                Some(super::agreement::acceptable_rate(count, all.len())),
            )
        }
        _ => (None, None, None),
    };
    ModelStats {
        model: model.to_string(),
        n: all.len(),
        counts,
        mean,
        median: median_v,
        acceptable,
    }
}

fn paired_test(table: &Table, model: &str, baseline: &str, score: &[f64]) -> PairedTest {
    let a = table.per_case(model, |l| score[l]);
    let b = table.per_case(baseline, |l| score[l]);
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .into_iter()
        .zip(b)
        .filter_map(|(a, b)| Some((a?, b?)))
        .unzip();
    let options = WilcoxonOptions {
        alternative: Alternative::Greater,
        ..WilcoxonOptions::default()
    };
    let (statistic, pvalue, note) = match wilcoxon(&x, Some(&y), &options) {
        Ok(r) => (r.statistic, r.pvalue, None),
        Err(e) => (f64::NAN, f64::NAN, Some(e.to_string())),
    };
    let boot = BootstrapOptions {
        n_resamples: 2000,
        seed: BOOTSTRAP_SEED,
        ..BootstrapOptions::default()
    };
    let mean_diff = x.iter().zip(&y).map(|(a, b)| a - b).sum::<f64>() / x.len().max(1) as f64;
    let difference = match paired_bootstrap_mean_difference(&x, &y, &boot) {
        Ok(ci) => Estimate {
            mean: Num(ci.estimate),
            low: Num(ci.lower),
            high: Num(ci.upper),
        },
        Err(_) => Estimate {
            mean: Num(mean_diff),
            low: Num(f64::NAN),
            high: Num(f64::NAN),
        },
    };
    PairedTest {
        model: model.to_string(),
        baseline: baseline.to_string(),
        n: x.len(),
        difference,
        statistic: Num(statistic),
        pvalue: Num(pvalue),
        note,
    }
}

/// Computes the report.
///
/// # Errors
/// A bad `--compare` pair.
pub fn build(
    key: &Key,
    config: &ReviewConfig,
    ratings: &[Rating],
    compare: &[String],
) -> Result<ReviewReport> {
    let pairs = pairs(compare, &key.models)?;
    let mut raters: Vec<String> = Vec::new();
    for r in ratings {
        if !raters.contains(&r.rater) {
            raters.push(r.rater.clone());
        }
    }
    let mut questions = Vec::new();
    for q in &config.questions {
        let Some((levels, level_labels, score)) = levels(&q.kind) else {
            continue;
        };
        let table = Table::new(key, ratings, &q.id, &levels);
        let models = key
            .models
            .iter()
            .map(|m| model_stats(&table, m, &q.kind, levels.len(), &score))
            .collect();
        let compared = match &q.kind {
            QuestionKind::Scale { .. } => true,
            QuestionKind::Choice { acceptable, .. } => !acceptable.is_empty(),
            QuestionKind::Text => false,
        };
        let comparisons = if compared {
            pairs
                .iter()
                .map(|(m, b)| paired_test(&table, m, b, &score))
                .collect()
        } else {
            Vec::new()
        };
        let agreement = super::agreement::agreement(&table, &key.models, &q.kind, levels.len());
        questions.push(QuestionReport {
            level_shades: shades(&q.kind, levels.len()),
            id: q.id.clone(),
            text: q.text.clone(),
            kind: if matches!(q.kind, QuestionKind::Scale { .. }) {
                "scale".into()
            } else {
                "choice".into()
            },
            levels,
            level_labels,
            models,
            comparisons,
            agreement,
        });
    }
    let comments = ratings
        .iter()
        .filter_map(
            |r| match (&r.value, config.question(&r.question).map(|q| &q.kind)) {
                (RatingValue::Text(t), Some(QuestionKind::Text)) if !t.trim().is_empty() => {
                    Some(Comment {
                        case: r.case.clone(),
                        model: r.model.clone(),
                        rater: r.rater.clone(),
                        question: r.question.clone(),
                        text: t.clone(),
                    })
                }
                _ => None,
            },
        )
        .collect();
    Ok(ReviewReport {
        packet: key.packet.clone(),
        task: key.task.to_string(),
        cases: key.cases.len(),
        raters,
        models: key.models.clone(),
        questions,
        comments,
    })
}

/// The file name of a question's plot.
pub fn plot_file(question: &str) -> String {
    format!("ratings_{question}.svg")
}

/// Renders `report.md`.
pub fn render_markdown(report: &ReviewReport, config: &ReviewConfig) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", cell(&config.title, 200));
    let _ = writeln!(
        md,
        "Packet `{}`, task {}: {} cases rated by {} rater{} ({}); models {}. Every number is also \
         in `review.json`.\n",
        report.packet,
        report.task,
        report.cases,
        report.raters.len(),
        if report.raters.len() == 1 { "" } else { "s" },
        report.raters.join(", "),
        report.models.join(", ")
    );
    let _ = writeln!(
        md,
        "Means with 95% bootstrap intervals over cases (each case's value is the mean over raters); \
         p: one-sided Wilcoxon signed-rank test on the per-case values (model rated higher than \
         the baseline; scipy's defaults); differences with paired-bootstrap 95% intervals.\n"
    );
    for q in &report.questions {
        question_markdown(&mut md, q);
    }
    super::agreement::markdown(&mut md, &report.questions);
    if !report.comments.is_empty() {
        let _ = writeln!(md, "## Comments\n");
        let _ = writeln!(
            md,
            "| case | model | rater | comment |\n| --- | --- | --- | --- |"
        );
        for c in &report.comments {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&c.case, 40),
                cell(&c.model, 40),
                cell(&c.rater, 40),
                cell(&c.text, 500)
            );
        }
        md.push('\n');
    }
    md
}

fn question_markdown(md: &mut String, q: &QuestionReport) {
    let _ = writeln!(md, "## {} (`{}`)\n", cell(&q.text, 200), q.id);
    let mut heads = vec!["model".to_string(), "n".into()];
    let mut align = vec!["---", "---:"];
    if q.kind == "scale" {
        heads.extend(["mean [95% CI]".into(), "median".into()]);
        align.extend(["---", "---:"]);
    } else {
        heads.push("acceptable [95% CI]".into());
        align.push("---");
    }
    heads.extend(q.level_labels.iter().map(|l| cell(l, 40)));
    align.extend(q.level_labels.iter().map(|_| "---:"));
    let _ = writeln!(md, "| {} |\n| {} |", heads.join(" | "), align.join(" | "));
    for m in &q.models {
        let pct = |c: usize| {
            if m.n == 0 {
                "0".into()
            } else {
                format!("{c} ({:.0}%)", 100.0 * c as f64 / m.n as f64)
            }
        };
        let lead = match (&m.mean, &m.acceptable) {
            (Some(e), _) => format!(
                "{} [{}, {}] | {}",
                fmt(e.mean),
                fmt(e.low),
                fmt(e.high),
                m.median.map_or("-".into(), fmt)
            ),
            (None, Some(r)) => format!("{} [{}, {}]", fmt(r.rate), fmt(r.low), fmt(r.high)),
            (None, None) => "-".into(),
        };
        let counts: Vec<String> = m.counts.iter().map(|&c| pct(c)).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {lead} | {} |",
            cell(&m.model, 40),
            m.n,
            counts.join(" | ")
        );
    }
    md.push('\n');
    if !q.comparisons.is_empty() {
        let what = if q.kind == "scale" {
            "mean rating"
        } else {
            "acceptable share"
        };
        let _ = writeln!(
            md,
            "| model | baseline | cases | difference in {what} [95% CI] | W | p |\n| --- | --- | ---: | --- | ---: | ---: |"
        );
        for c in &q.comparisons {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} [{}, {}] | {} | {} |",
                cell(&c.model, 40),
                cell(&c.baseline, 40),
                c.n,
                fmt(c.difference.mean),
                fmt(c.difference.low),
                fmt(c.difference.high),
                if c.statistic.0.is_finite() {
                    format!("{}", c.statistic.0)
                } else {
                    "-".into()
                },
                fmt_p(c.pvalue)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "![Ratings of {}]({})\n", q.id, plot_file(&q.id));
}

/// Builds the report and writes report.md, review.json and the plots into `out`.
///
/// # Errors
/// As [`build`], plus plots that cannot be drawn and files that cannot be written.
pub fn write(out: &Path, report: &ReviewReport, config: &ReviewConfig) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    let mut rendered: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for q in &report.questions {
        let title = format!("{} ({})", cell(&q.text, 70), q.id);
        let rows: Vec<(&str, &[usize])> = q
            .models
            .iter()
            .map(|m| (m.model.as_str(), m.counts.as_slice()))
            .collect();
        let svg = distribution_svg(&title, &q.level_labels, &q.level_shades, &rows)?;
        rendered.push((out.join(plot_file(&q.id)), svg.into_bytes()));
    }
    let json = serde_json::to_string_pretty(report)? + "\n";
    rendered.push((out.join("review.json"), json.into_bytes()));
    rendered.push((
        out.join("report.md"),
        render_markdown(report, config).into_bytes(),
    ));
    for (path, bytes) in rendered {
        write_atomically(&path, &bytes)?;
        files.push(path);
    }
    Ok(files)
}

/// Runs `review report`.
///
/// # Errors
/// Unreadable or inconsistent inputs, unwritable outputs.
pub fn run(args: &ReportArgs) -> Result<()> {
    let (key, config) = Key::load(&args.key)?;
    let ratings = read_ratings(&args.ratings, &key, &config)?;
    let report = build(&key, &config, &ratings, &args.compare)?;
    for f in write(&args.out, &report, &config)? {
        println!("{}", f.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::blind::{blind, sample_input, BlindOptions};

    #[test]
    fn shades_put_the_best_answers_at_the_blue_end() {
        let c = ReviewConfig::default();
        let kind = |id: &str| c.question(id).unwrap().kind.clone();
        assert_eq!(shades(&kind("acceptable"), 3), [1.0, 0.5, 0.0]);
        assert_eq!(
            shades(&kind("correctness"), 4),
            [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]
        );
        let QuestionKind::Choice { options, .. } = kind("acceptable") else {
            panic!()
        };
        let no_first = QuestionKind::Choice {
            options: options.into_iter().rev().collect(),
            acceptable: vec!["yes".into()],
        };
        assert_eq!(shades(&no_first, 3), [0.5, 0.0, 1.0], "no, minor, yes");
    }

    #[test]
    fn ratings_that_contradict_the_key_are_named_by_line() {
        let opts = BlindOptions {
            n_cases: 2,
            seed: 1,
            raters: vec!["ann".into()],
        };
        let p = blind(&sample_input(3, false), &opts, &ReviewConfig::default()).unwrap();
        let case = &p.key.cases[0];
        let line = |model: &str, question: &str, value: &str| {
            format!(
                r#"{{"packet":"{}","rater":"ann","case":"{}","model":"{model}","candidate":"A","question":"{question}","value":{value}}}"#,
                p.key.packet, case.id
            )
        };
        let right = case.candidates[0].model.clone();
        let wrong = case.candidates[1].model.clone();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ratings.jsonl");
        for (text, needle) in [
            (line(&right, "correctness", "3"), None),
            (line(&wrong, "correctness", "3"), Some("is not model")),
            (line(&right, "correctness", "9"), Some("value not allowed")),
            (line(&right, "tone", "3"), Some("unknown question")),
            ("{}".to_string(), Some("missing field")),
        ] {
            std::fs::write(&path, format!("{}\n{text}\n", line(&right, "style", "2"))).unwrap();
            let r = read_ratings(&path, &p.key, &p.config);
            match needle {
                None => assert_eq!(r.unwrap().len(), 2),
                Some(n) => {
                    let e = format!("{:#}", r.unwrap_err());
                    assert!(e.contains("ratings.jsonl: line 2") && e.contains(n), "{e}");
                }
            }
        }
    }
}
