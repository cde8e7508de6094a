//! Stage 1: the synthetic dataset. Cases from [`ro_tasks::generate_cases`], each assigned to
//! one task (round robin, so `--cases` counts examples over the four tasks) and to
//! train/val/test by [`ro_tasks::Split`] (seeded hash of the id, 80/10/10); the JSONL files
//! go to `OUT/data/<task>.<split>.jsonl`.

use std::path::Path;

use anyhow::{Context, Result};
use ro_tasks::{generate_cases, write_jsonl, Example, Split, SplitRatios, SynthConfig, TaskKind};

use super::summary::DataSizes;

/// The examples of one task, by split.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    /// The task.
    pub task: TaskKind,
    /// Training examples.
    pub train: Vec<Example>,
    /// Validation examples.
    pub val: Vec<Example>,
    /// Held-out test examples.
    pub test: Vec<Example>,
}

/// The whole synthetic dataset of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoData {
    /// The four tasks, in [`TaskKind::ALL`] order.
    pub tasks: Vec<TaskData>,
    /// Pre-training documents: the clinical documents of each training case in the order of a
    /// patient record (case note, radiotherapy summary report, physician letter). Clinical
    /// language, and letters as a genre, but no instruction, no chat template and no
    /// prompt/answer pair: the base can continue a record, it has not been taught to answer a
    /// task prompt.
    ///
    /// The letters are there because a real base model has read letters: measured on the
    /// small preset, a base that never saw one could not learn to write them in 300 QLoRA
    /// steps (letters ROUGE-1 0.11 -> 0.02); with the letters placed apart from their reports
    /// it learned less (0.05 -> 0.16) than with the record order (0.16 -> 0.35).
    pub pretrain_train: Vec<String>,
    /// The same texts of the validation cases.
    pub pretrain_val: Vec<String>,
}

impl DemoData {
    /// Generates `cases` cases from `seed` and splits them.
    pub fn generate(cases: usize, seed: u64) -> Self {
        let all = generate_cases(
            &SynthConfig {
                seed,
                ..SynthConfig::default()
            },
            cases,
        );
        let mut tasks: Vec<TaskData> = TaskKind::ALL
            .iter()
            .map(|&task| TaskData {
                task,
                train: Vec::new(),
                val: Vec::new(),
                test: Vec::new(),
            })
            .collect();
        let (mut pretrain_train, mut pretrain_val) = (Vec::new(), Vec::new());
        for (i, case) in all.iter().enumerate() {
            let slot = &mut tasks[i % TaskKind::ALL.len()];
            let example = case.example(slot.task);
            let split = Split::of(&case.id, seed, SplitRatios::default());
            let docs = [
                case.context.clone(),
                case.report.clone(),
                case.letter.clone(),
            ];
            match split {
                Split::Train => {
                    slot.train.push(example);
                    pretrain_train.extend(docs);
                }
                Split::Val => {
                    slot.val.push(example);
                    pretrain_val.extend(docs);
                }
                Split::Test => slot.test.push(example),
            }
        }
        Self {
            tasks,
            pretrain_train,
            pretrain_val,
        }
    }

    /// Counts per task and split (the pre-training token count is filled in later).
    pub fn sizes(&self) -> DataSizes {
        DataSizes {
            per_task: self
                .tasks
                .iter()
                .map(|t| (t.task.to_string(), t.train.len(), t.val.len(), t.test.len()))
                .collect(),
            pretrain_chars: self.pretrain_train.iter().map(|d| d.chars().count()).sum(),
            pretrain_tokens: 0,
        }
    }

    /// Writes `dir/<task>.<split>.jsonl` (atomically, one file per task and split).
    ///
    /// # Errors
    ///
    /// I/O errors naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for t in &self.tasks {
            for (split, items) in [("train", &t.train), ("val", &t.val), ("test", &t.test)] {
                let path = dir.join(format!("{}.{split}.jsonl", t.task));
                write_jsonl(&path, items).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_gets_every_split_and_generation_is_seeded() {
        let d = DemoData::generate(200, 3);
        assert_eq!(d, DemoData::generate(200, 3));
        let total: usize = d
            .tasks
            .iter()
            .map(|t| t.train.len() + t.val.len() + t.test.len())
            .sum();
        assert_eq!(total, 200);
        for t in &d.tasks {
            assert!(!t.train.is_empty() && !t.val.is_empty() && !t.test.is_empty());
            assert!(t.train.len() > 3 * t.test.len(), "{}", t.task);
        }
        let train_ids: std::collections::HashSet<_> = d
            .tasks
            .iter()
            .flat_map(|t| t.train.iter().map(|e| e.id.clone()))
            .collect();
        assert!(d
            .tasks
            .iter()
            .all(|t| t.test.iter().all(|e| !train_ids.contains(&e.id))));
        assert_eq!(d.pretrain_train.len(), 3 * train_ids.len());
        let dir = tempfile::tempdir().unwrap();
        d.write(dir.path()).unwrap();
        let back =
            ro_tasks::read_examples(dir.path().join("icd10.test.jsonl"), TaskKind::Icd10).unwrap();
        assert_eq!(back, d.tasks[3].test);
    }
}
