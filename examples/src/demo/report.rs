//! The demo's outputs: `report.md` (human-readable, with timings), `metrics.json` (every
//! deterministic number) and the SVG plots, all written atomically.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::config::BaseModel;
use super::plots::{confusion_svg, loss_curves_svg, metric_bars_svg};
use super::review::ReviewSummary;
use super::summary::{DemoSummary, ExampleOutput, RunStats};
use crate::evaluate::json::write_atomically;
use crate::reporting::markdown::{cell, fmt, fmt_p};

/// The files a report consists of, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `report.md`.
    pub report: PathBuf,
    /// `metrics.json`.
    pub metrics: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
}

/// Serializes the summary as pretty JSON (non-finite floats as strings).
///
/// # Errors
///
/// Only if serialization fails (it does not for these types).
pub fn metrics_json(summary: &DemoSummary) -> Result<String> {
    let mut s = serde_json::to_string_pretty(summary).context("serializing metrics.json")?;
    s.push('\n');
    Ok(s)
}

/// Draws the plots, writes them, `metrics.json` and `report.md` into `out`.
///
/// # Errors
///
/// I/O errors (naming the file) or a plot that cannot be drawn.
pub fn write_report(out: &Path, summary: &DemoSummary, stats: &RunStats) -> Result<ReportFiles> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut plots: Vec<(String, String, String)> = Vec::new(); // (file, caption, svg)
    for (name, curves, caption) in [
        ("pretrain_loss.svg", &summary.pretrain, "Pre-training loss"),
        (
            "finetune_loss.svg",
            &summary.finetune,
            "QLoRA fine-tuning loss",
        ),
    ] {
        if !curves.train.is_empty() {
            plots.push((
                name.into(),
                caption.into(),
                loss_curves_svg(caption, curves)?,
            ));
        }
    }
    if !summary.comparisons.is_empty() {
        let caption = "Base vs fine-tuned (95% bootstrap CI)";
        plots.push((
            "metrics.svg".into(),
            caption.into(),
            metric_bars_svg(caption, &summary.comparisons)?,
        ));
    }
    for c in &summary.confusion {
        let caption = format!("Modality confusion matrix ({})", c.model);
        let file = format!("confusion_{}.svg", c.model.replace([' ', '/'], "_"));
        let svg = confusion_svg(&caption, c)?;
        plots.push((file, caption, svg));
    }
    for (file, _, svg) in &plots {
        write_atomically(&out.join(file), svg.as_bytes())?;
    }
    let metrics = out.join("metrics.json");
    write_atomically(&metrics, metrics_json(summary)?.as_bytes())?;
    let captions: Vec<(String, String)> = plots
        .iter()
        .map(|(f, c, _)| (f.clone(), c.clone()))
        .collect();
    let report = out.join("report.md");
    write_atomically(
        &report,
        render_markdown(summary, stats, &captions).as_bytes(),
    )?;
    Ok(ReportFiles {
        report,
        metrics,
        plots: plots.into_iter().map(|(f, _, _)| out.join(f)).collect(),
    })
}

/// Renders report.md. `plots` are `(file, caption)` pairs relative to the report.
pub fn render_markdown(
    summary: &DemoSummary,
    stats: &RunStats,
    plots: &[(String, String)],
) -> String {
    let mut md = String::new();
    let c = &summary.config;
    let _ = writeln!(md, "# QLoRA demo: radiation-oncology tasks\n");
    let _ = writeln!(
        md,
        "Base model vs the same model QLoRA-fine-tuned on the four tasks, scored on held-out \
         synthetic cases. Every number below is also in `metrics.json` (deterministic for a given \
         seed; the timings in this file are not).\n"
    );

    if let BaseModel::Tiny { .. } = &c.base {
        let _ = writeln!(
            md,
            "**This is a demo model** ({:.1} M parameters, pre-trained for minutes on \
             synthetic text). It shows that the method works end to end (pre-training, \
             NF4 double quantization, QLoRA, evaluation with the studies' metrics); its letters \
             and regimens are not clinically usable, and its numbers say nothing about real \
             LLaMA models or real patients. Run stages 4-6 on a real checkpoint with \
             `--model DIR --tokenizer FILE`.\n",
            summary.model.parameters as f64 / 1e6
        );
    }
    let _ = writeln!(md, "## Configuration\n");
    let _ = writeln!(md, "| setting | value |\n| --- | --- |");
    let _ = writeln!(md, "| seed | {} |", c.seed);
    let _ = writeln!(md, "| quick | {} |", c.quick);
    let _ = writeln!(md, "| synthetic cases | {} |", c.cases);
    match &c.base {
        BaseModel::Tiny {
            size,
            shape,
            pretrain_steps,
            pretrain_lr,
        } => {
            let _ = writeln!(
                md,
                "| base model | LLaMA-3-style, preset {size:?}: {} layers, hidden {}, {} heads / {} KV heads, SwiGLU {}, vocab {} (trained BPE), llama3 RoPE |",
                shape.num_layers, shape.hidden_size, shape.num_heads, shape.num_kv_heads,
                shape.intermediate_size, shape.vocab_size
            );
            let _ = writeln!(
                md,
                "| pre-training | {pretrain_steps} steps, AdamW, lr {pretrain_lr} with {:.0}% warmup + cosine, batch {} |",
                c.warmup_fraction * 100.0,
                c.batch_size
            );
        }
        BaseModel::Pretrained {
            model, tokenizer, ..
        } => {
            let _ = writeln!(
                md,
                "| base model | `{}` (tokenizer `{}`) |",
                model.display(),
                tokenizer.display()
            );
        }
    }
    let m = &summary.model;
    let _ = writeln!(
        md,
        "| parameters | {} (LoRA trainable: {}) |",
        m.parameters, m.trainable_parameters
    );
    if m.f32_bytes > 0 {
        let _ = writeln!(
            md,
            "| NF4 base (double quant) | {} bytes vs {} bytes in f32 ({:.1}x smaller) |",
            m.nf4_bytes,
            m.f32_bytes,
            m.f32_bytes as f64 / m.nf4_bytes.max(1) as f64
        );
    }
    let _ = writeln!(
        md,
        "| QLoRA | r={}, alpha={}, all linear layers, paged AdamW, lr {} with {:.0}% warmup + cosine, {} steps, batch {} (split by length into micro-batches of at most {} tokens) |",
        c.lora_r, c.lora_alpha, c.finetune_lr, c.warmup_fraction * 100.0, c.finetune_steps, c.batch_size,
        super::FINETUNE_MICRO_BATCH_TOKENS
    );
    let _ = writeln!(
        md,
        "| evaluation | {} test cases per task (modality: taken in turn from each class), greedy decoding with KV cache, at most {} new tokens |",
        c.eval_cases_per_task, c.max_new_tokens
    );
    let _ = writeln!(md, "| device | {} |\n", c.device);

    let _ = writeln!(md, "## Data\n");
    let _ = writeln!(
        md,
        "| task | train | val | test |\n| --- | ---: | ---: | ---: |"
    );
    for (task, tr, va, te) in &summary.data.per_task {
        let _ = writeln!(md, "| {task} | {tr} | {va} | {te} |");
    }
    if summary.data.pretrain_tokens > 0 {
        let _ = writeln!(
            md,
            "\nPre-training text: {} characters, {} tokens.",
            summary.data.pretrain_chars, summary.data.pretrain_tokens
        );
    }
    md.push('\n');

    let _ = writeln!(
        md,
        "## Time and memory (this machine; not in metrics.json)\n"
    );
    let _ = writeln!(md, "| stage | seconds | summary |\n| --- | ---: | --- |");
    let mut total = 0.0;
    for s in &stats.stages {
        total += s.seconds;
        let _ = writeln!(
            md,
            "| {} | {:.1} | {} |",
            s.stage,
            s.seconds,
            cell(&s.summary, 200)
        );
    }
    let _ = writeln!(md, "| **total** | {total:.1} | |");
    if let Some(rss) = stats.peak_rss_bytes {
        let _ = writeln!(
            md,
            "\nPeak resident memory: {:.0} MiB.",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    for (what, tps) in &stats.tokens_per_second {
        let _ = writeln!(md, "\n{what}: {tps:.0} tokens/s.");
    }
    md.push('\n');

    let _ = writeln!(md, "## Base vs fine-tuned\n");
    let _ = writeln!(
        md,
        "Means over the test cases with 95% paired-bootstrap intervals; p: one-sided Wilcoxon \
         signed-rank test (fine-tuned > base) on the per-case scores.\n"
    );
    let _ = writeln!(
        md,
        "| task | metric | n | base | fine-tuned | difference | p |\n| --- | --- | ---: | --- | --- | --- | ---: |"
    );
    for r in &summary.comparisons {
        let est = |e: super::summary::Estimate| {
            format!("{} [{}, {}]", fmt(e.mean), fmt(e.low), fmt(e.high))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.task,
            r.metric,
            r.n,
            est(r.base),
            est(r.finetuned),
            est(r.difference),
            fmt_p(r.wilcoxon_p)
        );
    }
    md.push('\n');
    if !summary.answer_checks.is_empty() {
        let _ = writeln!(
            md,
            "Answer checks (rates over the answers a check applies to, not per-case scores): \
             regimen consistency = dose per fraction x fractions = total dose, over the answers \
             that state all three; ICD-10 validity = the answer holds a code of the code set.\n"
        );
        let _ = writeln!(
            md,
            "| task | check | model | answers checked | rate |\n| --- | --- | --- | ---: | ---: |"
        );
        for c in &summary.answer_checks {
            let rate = c.rate.map_or_else(|| "n/a".to_string(), fmt);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {rate} |",
                c.task, c.check, c.model, c.checked
            );
        }
        md.push('\n');
    }

    for s in &summary.class_scores {
        let _ = writeln!(
            md,
            "Modality per class ({}), macro F1 {}:\n",
            s.model,
            fmt(s.macro_f1)
        );
        let _ = writeln!(
            md,
            "| class | precision | recall | F1 | support |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for i in 0..s.labels.len() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                s.labels[i],
                s.precision.get(i).map_or("-".into(), |v| fmt(*v)),
                s.recall.get(i).map_or("-".into(), |v| fmt(*v)),
                s.f1.get(i).map_or("-".into(), |v| fmt(*v)),
                s.support.get(i).copied().unwrap_or(0)
            );
        }
        md.push('\n');
    }

    if !plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for (file, caption) in plots {
            let _ = writeln!(md, "![{caption}]({file})\n");
        }
    }

    if let Some(r) = &summary.review {
        write_review(&mut md, r);
    }

    if !summary.examples.is_empty() {
        let _ = writeln!(md, "## Example outputs\n");
        let ex = &summary.examples;
        for (i, e) in ex.iter().enumerate() {
            if i == 0 || ex[i - 1].task != e.task {
                let _ = writeln!(md, "### {}\n", e.task);
                let _ = writeln!(
                    md,
                    "| case | input | reference | base | fine-tuned |\n| --- | --- | --- | --- | --- |"
                );
            }
            write_example(&mut md, e);
            if ex.get(i + 1).is_none_or(|next| next.task != e.task) {
                md.push('\n');
            }
        }
    }
    md
}

fn write_review(md: &mut String, r: &ReviewSummary) {
    let _ = writeln!(md, "## Clinician review\n");
    let _ = writeln!(
        md,
        "Blinded rating packet `{}`: {} letters test cases, each with {} candidates ({}) in a \
         random order per case. Send each rater one packet (open the HTML file in a browser, or \
         fill in the CSV) and keep `{}`, the key that un-blinds the ratings. Then \
         `review import --key {} --output ratings.jsonl <the returned files>` and \
         `review report --key {} --ratings ratings.jsonl --out review-report` (README, \
         \"Clinician review\").\n",
        r.packet,
        r.cases,
        r.models.len(),
        r.models.join(", "),
        r.key,
        r.key,
        r.key
    );
    for p in &r.packets {
        let _ = writeln!(md, "- [`{p}`]({p})");
    }
    md.push('\n');
}

fn write_example(md: &mut String, e: &ExampleOutput) {
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} |",
        cell(&e.id, 40),
        cell(&e.input, 300),
        cell(&e.reference, 400),
        cell(&e.base, 400),
        cell(&e.finetuned, 400)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::config::{DemoArgs, RunConfig};
    use crate::demo::summary::*;
    use clap::Parser;

    fn summary() -> DemoSummary {
        let args = DemoArgs::parse_from(["demo", "--quick"]);
        let est = |m: f64| Estimate {
            mean: Num(m),
            low: Num(m - 0.05),
            high: Num(m + 0.05),
        };
        DemoSummary {
            config: RunConfig::from_args(&args).unwrap(),
            data: DataSizes {
                per_task: vec![("modality".into(), 80, 10, 10)],
                pretrain_chars: 1000,
                pretrain_tokens: 300,
            },
            model: ModelSummary {
                parameters: 1000,
                trainable_parameters: 100,
                nf4_bytes: 600,
                f32_bytes: 4000,
                ..ModelSummary::default()
            },
            pretrain: LossCurves {
                train: vec![
                    LossPoint {
                        step: 1,
                        loss: Num(6.0),
                    },
                    LossPoint {
                        step: 2,
                        loss: Num(4.0),
                    },
                ],
                val: vec![],
            },
            finetune: LossCurves::default(),
            comparisons: vec![MetricComparison {
                task: "modality".into(),
                metric: "accuracy".into(),
                n: 10,
                base: est(0.3),
                finetuned: est(0.9),
                difference: est(0.6),
                wilcoxon_p: Num(f64::NAN),
            }],
            confusion: vec![Confusion {
                model: "base".into(),
                labels: vec!["photon".into(), "proton".into()],
                counts: vec![vec![3, 2], vec![1, 4]],
            }],
            class_scores: vec![],
            answer_checks: vec![
                AnswerCheck {
                    task: "regimen".into(),
                    check: "consistency".into(),
                    model: "base".into(),
                    checked: 0,
                    rate: None,
                },
                AnswerCheck {
                    task: "regimen".into(),
                    check: "consistency".into(),
                    model: "fine-tuned".into(),
                    checked: 8,
                    rate: Some(Num(0.75)),
                },
            ],
            examples: vec![ExampleOutput {
                task: "modality".into(),
                id: "m-1".into(),
                input: "line one\nline | two".into(),
                reference: "proton".into(),
                base: "photon".into(),
                finetuned: "proton".into(),
            }],
            review: Some(crate::demo::review::ReviewSummary {
                packet: "rv-0123456789abcdef".into(),
                cases: 5,
                models: vec!["base".into(), "fine-tuned".into(), "reference".into()],
                key: "review/key.json".into(),
                packets: vec!["review/packets/packet-rater-1.html".into()],
            }),
        }
    }

    #[test]
    fn writes_report_metrics_and_plots_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let stats = RunStats {
            stages: vec![StageTime {
                stage: "data".into(),
                seconds: 0.5,
                summary: "ok".into(),
            }],
            peak_rss_bytes: Some(64 << 20),
            tokens_per_second: vec![],
        };
        let files = write_report(dir.path(), &summary(), &stats).unwrap();
        let md = std::fs::read_to_string(&files.report).unwrap();
        assert!(
            md.contains("| modality | accuracy | 10 | 0.300 [0.250, 0.350]"),
            "{md}"
        );
        assert!(md.contains("![Pre-training loss](pretrain_loss.svg)"));
        assert!(md.contains("line one line / two"), "cells are flattened");
        assert!(md.contains("Peak resident memory: 64 MiB"));
        assert!(md.contains("## Clinician review"));
        assert!(md.contains(
            "- [`review/packets/packet-rater-1.html`](review/packets/packet-rater-1.html)"
        ));
        assert!(
            md.contains("| regimen | consistency | base | 0 | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| regimen | consistency | fine-tuned | 8 | 0.750 |"),
            "{md}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&files.metrics).unwrap()).unwrap();
        assert_eq!(json["comparisons"][0]["wilcoxon_p"], "NaN");
        assert_eq!(json["config"]["seed"], 42);
        assert_eq!(json["answer_checks"][0]["rate"], serde_json::Value::Null);
        assert_eq!(json["answer_checks"][1]["rate"], 0.75);
        assert!(
            json.get("stages").is_none(),
            "timings stay out of metrics.json"
        );
        let names: Vec<String> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["pretrain_loss.svg", "metrics.svg", "confusion_base.svg"]
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn metrics_json_is_identical_for_identical_summaries() {
        assert_eq!(
            metrics_json(&summary()).unwrap(),
            metrics_json(&summary()).unwrap()
        );
    }

    #[test]
    fn write_errors_name_the_file() {
        let e = write_atomically(Path::new("/nonexistent-dir/x/report.md"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x/report.md"));
    }
}
