//! Stage 6: base vs fine-tuned on held-out cases. Greedy generation with the KV cache
//! (llama-model), parsing and scoring with ro-tasks, paired comparison (one-sided Wilcoxon,
//! bootstrap intervals) and per-class modality scores with ro-metrics.

use anyhow::{anyhow, Result};
use burn::tensor::backend::Backend;
use indicatif::ProgressBar;
use llama_model::{generate, GenerationConfig, Llama, LlamaTokenizer};
use ro_metrics::{precision_recall_fscore_support, PrfOptions, PrfScores};
use ro_tasks::{
    compare, score_task, Example, Modality, PredictionRecord, TaskKind, TaskScores,
    UNKNOWN_MODALITY,
};

use super::sequences::prompt_ids;
use super::summary::{
    AnswerCheck, ClassScores, Confusion, Estimate, ExampleOutput, MetricComparison, Num,
};
use crate::reporting::mean_estimate;

/// Prompts generated together (left-padded batch).
pub const GENERATION_BATCH: usize = 8;

/// Example outputs shown per task in the report.
pub const EXAMPLES_PER_TASK: usize = 3;

/// The test cases of one task and the token budget of its answers.
#[derive(Debug, Clone)]
pub struct EvalTask {
    /// The task.
    pub task: TaskKind,
    /// Test cases.
    pub cases: Vec<Example>,
    /// Their prompt ids.
    pub prompts: Vec<Vec<u32>>,
    /// New tokens allowed per answer.
    pub max_new_tokens: usize,
}

impl EvalTask {
    /// Up to `n` test cases of `task` (for modality: [`stratified`] over the classes); the
    /// answer budget is the longest reference answer in tokens plus 8, at most `cap`.
    ///
    /// # Errors
    ///
    /// When a prompt cannot be encoded.
    pub fn new(
        tok: &LlamaTokenizer,
        task: TaskKind,
        test: &[Example],
        n: usize,
        cap: usize,
    ) -> Result<Self> {
        let cases: Vec<Example> = if task == TaskKind::Modality {
            stratified(test, n)
        } else {
            test.iter().take(n).cloned().collect()
        };
        let prompts = cases
            .iter()
            .map(|c| prompt_ids(tok, c, task))
            .collect::<Result<Vec<_>>>()?;
        let longest = cases
            .iter()
            .map(|c| tok.encode(&c.target, false).map(|t| t.len()).unwrap_or(cap))
            .max()
            .unwrap_or(0);
        Ok(Self {
            task,
            cases,
            prompts,
            max_new_tokens: (longest + 8).min(cap),
        })
    }
}

impl EvalTask {
    /// One model's `answers` (in case order) as prediction records `{"id","reference",
    /// "prediction"}`.
    pub fn records(&self, answers: &[String]) -> Vec<PredictionRecord> {
        self.cases
            .iter()
            .zip(answers)
            .map(|(c, a)| PredictionRecord {
                id: c.id.clone(),
                reference: c.target.clone(),
                prediction: a.clone(),
            })
            .collect()
    }
}

/// Up to `n` modality cases taken round robin over the classes (in [`Modality::ALL`] order,
/// each class in test-split order), so that the rare classes are scored too. Most synthetic
/// cases (like most patients) get photons, and any text naming a photon technique parses as
/// `photon`: on the natural mix a base model that just continues clinical prose would score
/// the majority-class rate, and accuracy would say nothing about whether the task was learned.
pub fn stratified(test: &[Example], n: usize) -> Vec<Example> {
    let class = |e: &Example| Modality::parse(&e.target);
    let mut queues: Vec<std::collections::VecDeque<&Example>> = Modality::ALL
        .iter()
        .map(|m| test.iter().filter(|e| class(e) == Some(*m)).collect())
        .collect();
    queues.push(test.iter().filter(|e| class(e).is_none()).collect());
    let mut out = Vec::with_capacity(n.min(test.len()));
    while out.len() < n && queues.iter().any(|q| !q.is_empty()) {
        for q in &mut queues {
            if out.len() < n {
                out.extend(q.pop_front().cloned());
            }
        }
    }
    out
}

/// Generates the answers of `model` to every prompt of `task` (greedy, stopping at the
/// tokenizer's end-of-turn ids), decoded without special tokens. `bar` advances per answer.
///
/// # Errors
///
/// Generation or decoding errors.
pub fn answer<B: Backend>(
    model: &Llama<B>,
    tok: &LlamaTokenizer,
    task: &EvalTask,
    pad_id: u32,
    bar: &ProgressBar,
) -> Result<Vec<String>> {
    let mut config = GenerationConfig::greedy(task.max_new_tokens).with_stop_ids(tok.stop_ids());
    config.pad_id = pad_id;
    let mut out = Vec::with_capacity(task.prompts.len());
    for chunk in task.prompts.chunks(GENERATION_BATCH) {
        let ids = generate(model, chunk, &config, |_| {})
            .map_err(|e| anyhow!("generating {} answers: {e}", task.task))?;
        for row in ids {
            out.push(
                tok.decode(&row, true)
                    .map_err(|e| anyhow!("decoding a {} answer: {e}", task.task))?
                    .trim()
                    .to_string(),
            );
            bar.inc(1);
        }
    }
    Ok(out)
}

/// Scores one model's answers.
///
/// # Errors
///
/// When ro-tasks refuses the records.
pub fn score(task: &EvalTask, answers: &[String]) -> Result<TaskScores> {
    score_task(task.task, &task.records(answers)).map_err(|e| anyhow!("scoring {}: {e}", task.task))
}

/// Display name of a per-case metric (`correct` of the modality task is its accuracy).
fn metric_name(task: TaskKind, metric: &str) -> String {
    match (task, metric) {
        (TaskKind::Modality, "correct") => "accuracy".into(),
        (TaskKind::Icd10, "exact_match") => "exact_accuracy".into(),
        (TaskKind::Icd10, "category_match") => "category_accuracy".into(),
        _ => metric.into(),
    }
}

/// Base vs fine-tuned on every per-case metric of a task.
///
/// # Errors
///
/// When the two runs do not pair up.
pub fn comparisons(base: &TaskScores, tuned: &TaskScores) -> Result<Vec<MetricComparison>> {
    let c = compare(base.task, base, tuned).map_err(|e| anyhow!("comparing {}: {e}", base.task))?;
    let mut out = Vec::new();
    for m in &c.metrics {
        let (Some(b), Some(f)) = (base.metric(&m.metric), tuned.metric(&m.metric)) else {
            continue;
        };
        let difference = match &m.bootstrap {
            Some(d) => Estimate {
                mean: Num(d.estimate),
                low: Num(d.lower),
                high: Num(d.upper),
            },
            None => Estimate {
                mean: Num(m.finetuned_mean - m.baseline_mean),
                low: Num(f64::NAN),
                high: Num(f64::NAN),
            },
        };
        out.push(MetricComparison {
            task: base.task.to_string(),
            metric: metric_name(base.task, &m.metric),
            n: m.n,
            base: mean_estimate(&b.values),
            finetuned: mean_estimate(&f.values),
            difference,
            wilcoxon_p: Num(m.wilcoxon.map_or(f64::NAN, |w| w.pvalue)),
        });
    }
    Ok(out)
}

/// The answer checks of one model's scores: the regimen answers' dose arithmetic (over the
/// answers that state total dose, fractions and dose per fraction) and the ICD-10 answers'
/// code validity (over all answers); none for the other tasks.
pub fn answer_checks(model: &str, scores: &TaskScores) -> Vec<AnswerCheck> {
    let check = |check: &str, checked: usize, rate: Option<f64>| AnswerCheck {
        task: scores.task.to_string(),
        check: check.into(),
        model: model.into(),
        checked,
        rate: rate.map(Num),
    };
    let mut out = Vec::new();
    if let Some(n) = scores.consistency_checked {
        out.push(check("consistency", n, scores.consistency_rate));
    }
    if let Some(rate) = scores.validity_rate {
        out.push(check("validity", scores.ids.len(), Some(rate)));
    }
    out
}

/// The modality confusion matrix of one model (four classes and `unknown`).
pub fn confusion(model: &str, scores: &TaskScores) -> Option<Confusion> {
    let m = scores.modality.as_ref()?;
    Some(Confusion {
        model: model.into(),
        labels: m.labels.clone(),
        counts: m
            .confusion
            .iter()
            .map(|row| row.iter().map(|&v| v.round() as u64).collect())
            .collect(),
    })
}

/// Per-class precision/recall/F1 of the modality answers (scikit-learn semantics over the
/// four classes; unparseable answers count as `unknown`, i.e. wrong).
///
/// # Errors
///
/// When ro-metrics refuses the labels.
pub fn class_scores(model: &str, task: &EvalTask, answers: &[String]) -> Result<ClassScores> {
    let label = |t: &str| Modality::parse(t).map_or(UNKNOWN_MODALITY, Modality::as_str);
    let y_true: Vec<&str> = task.cases.iter().map(|c| label(&c.target)).collect();
    let y_pred: Vec<&str> = answers.iter().map(|a| label(a)).collect();
    let labels: Vec<&str> = Modality::ALL.iter().map(|m| m.as_str()).collect();
    let opts = PrfOptions {
        labels: Some(labels.clone()),
        ..PrfOptions::default()
    };
    let prf = precision_recall_fscore_support(&y_true, &y_pred, &opts)
        .map_err(|e| anyhow!("modality P/R/F1: {e}"))?;
    let PrfScores::PerLabel {
        precision,
        recall,
        fscore,
        support,
    } = prf.scores
    else {
        return Err(anyhow!("modality P/R/F1: expected per-label scores"));
    };
    let macro_f1 = fscore.iter().sum::<f64>() / fscore.len().max(1) as f64;
    let nums = |v: &[f64]| v.iter().map(|&x| Num(x)).collect();
    Ok(ClassScores {
        model: model.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        precision: nums(&precision),
        recall: nums(&recall),
        f1: nums(&fscore),
        support: support.iter().map(|&s| s.round() as u64).collect(),
        macro_f1: Num(macro_f1),
    })
}

/// The first [`EXAMPLES_PER_TASK`] cases side by side.
pub fn examples(task: &EvalTask, base: &[String], tuned: &[String]) -> Vec<ExampleOutput> {
    task.cases
        .iter()
        .zip(base.iter().zip(tuned))
        .take(EXAMPLES_PER_TASK)
        .map(|(c, (b, f))| ExampleOutput {
            task: task.task.to_string(),
            id: c.id.clone(),
            input: c.input.clone(),
            reference: c.target.clone(),
            base: b.clone(),
            finetuned: f.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_takes_the_classes_in_turn() {
        let ex = |id: &str, t: &str| Example {
            id: id.into(),
            input: String::new(),
            target: t.into(),
            language: ro_tasks::Language::En,
        };
        let test = [
            ex("a", "photon"),
            ex("b", "photon"),
            ex("c", "photon"),
            ex("d", "brachytherapy"),
            ex("e", "electron"),
            ex("f", "brachytherapy"),
        ];
        let ids = |v: Vec<Example>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(stratified(&test, 4)), ["a", "e", "d", "b"]);
        assert_eq!(ids(stratified(&test, 10)), ["a", "e", "d", "b", "f", "c"]);
        assert!(stratified(&test, 0).is_empty());
    }

    #[test]
    fn comparisons_pair_metrics_and_name_them() {
        let rec = |id: &str, p: &str| PredictionRecord {
            id: id.into(),
            reference: "photon".into(),
            prediction: p.into(),
        };
        let ids = ["a", "b", "c", "d", "e", "f"];
        let base: Vec<_> = ids.iter().map(|i| rec(i, "proton")).collect();
        let tuned: Vec<_> = ids.iter().map(|i| rec(i, "photon")).collect();
        let b = score_task(TaskKind::Modality, &base).unwrap();
        let t = score_task(TaskKind::Modality, &tuned).unwrap();
        let c = comparisons(&b, &t).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].metric, "accuracy");
        assert_eq!((c[0].base.mean, c[0].finetuned.mean), (Num(0.0), Num(1.0)));
        assert!(c[0].wilcoxon_p.0 < 0.05, "{:?}", c[0].wilcoxon_p);
        let m = confusion("base", &b).unwrap();
        assert_eq!(m.counts[0][1], 6, "six photons predicted as proton");
    }
}
