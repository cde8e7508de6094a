//! Training data: task examples rendered with the chat template and tokenized with the loss
//! on the answer only, or pre-tokenized `{"input_ids","labels"}` lines. Every error names the
//! file, the 1-based line and the field.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use llama_model::{ChatMessage, LlamaTokenizer, Role};
use qlora_core::train::{Example, IGNORE_INDEX};
use ro_tasks::TaskKind;
use serde_json::Value;

/// How a task example becomes text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptFormat {
    /// System + user message rendered with the tokenizer's chat template, the answer as the
    /// assistant turn (which ends with the template's end-of-turn token: `<|eot_id|>`,
    /// `<|im_end|>`, `</s>`).
    Chat,
    /// The plain prompt (`Answer:` cue), BOS from the tokenizer, then ` answer` and `eos`.
    Plain {
        /// The end-of-sequence id appended after the answer.
        eos: u32,
    },
}

/// A tokenized dataset: examples and the 1-based source line of each.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The file read.
    pub path: PathBuf,
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// The 1-based line of each example.
    pub lines: Vec<usize>,
}

impl Dataset {
    /// The longest sequence in tokens (0 when empty).
    pub fn max_len(&self) -> usize {
        self.examples
            .iter()
            .map(|e| e.input_ids.len())
            .max()
            .unwrap_or(0)
    }

    /// Checks every example against the vocabulary and the length limit, naming the line.
    pub fn check(&self, vocab_size: usize, max_seq_len: usize) -> Result<()> {
        if self.examples.is_empty() {
            bail!("{}: no examples (the file is empty)", self.path.display());
        }
        for (e, &line) in self.examples.iter().zip(&self.lines) {
            let at = || format!("{}:{line}", self.path.display());
            if let Some((i, id)) = e
                .input_ids
                .iter()
                .enumerate()
                .find(|(_, &id)| id as usize >= vocab_size)
            {
                bail!(
                    "{}: field `input_ids`: token id {id} at position {i} is outside the model's \
                     vocabulary of {vocab_size} (config.json vocab_size)",
                    at()
                );
            }
            if e.input_ids.len() > max_seq_len {
                bail!(
                    "{}: {} tokens, longer than --max-seq-len {max_seq_len}",
                    at(),
                    e.input_ids.len()
                );
            }
        }
        Ok(())
    }
}

/// Length of the common prefix of two id lists.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn to_chat(messages: &[ro_tasks::ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|m| {
            let role = match m.role {
                ro_tasks::Role::System => Role::System,
                ro_tasks::Role::User => Role::User,
                ro_tasks::Role::Assistant => Role::Assistant,
            };
            ChatMessage::new(role, m.content.clone())
        })
        .collect()
}

/// Tokenizes one task example: the prompt tokens get label -100, the answer tokens (and the
/// end-of-turn/EOS token closing them) are the targets.
///
/// The prompt is the longest common prefix of the tokenized prompt (with the generation
/// prompt) and the tokenized full conversation, so a merge across the boundary never puts a
/// prompt token into the loss.
pub fn encode_example(
    tok: &LlamaTokenizer,
    format: &PromptFormat,
    task: TaskKind,
    example: &ro_tasks::Example,
) -> Result<Example> {
    let prompt = example.prompt(task);
    let (prompt_ids, full) = match format {
        PromptFormat::Chat => {
            let p = tok.apply_chat_template(&to_chat(&prompt.messages()), true)?;
            let f = tok.apply_chat_template(
                &to_chat(&prompt.messages_with_answer(&example.target)),
                false,
            )?;
            (p, f)
        }
        PromptFormat::Plain { eos } => {
            let text = prompt.plain();
            let p = tok.encode(&text, true)?;
            let mut f = tok.encode(&format!("{text} {}", example.target.trim()), true)?;
            f.push(*eos);
            (p, f)
        }
    };
    let n_prompt = common_prefix(&prompt_ids, &full);
    if n_prompt >= full.len() {
        bail!("field `target`: the answer adds no token to the prompt");
    }
    let labels = full
        .iter()
        .enumerate()
        .map(|(i, &t)| if i < n_prompt { IGNORE_INDEX } else { t as i64 })
        .collect();
    Ok(Example {
        input_ids: full,
        labels: Some(labels),
    })
}

/// Reads task examples with [`ro_tasks::read_examples`] (schema and target checked per task)
/// and tokenizes them with [`encode_example`].
pub fn read_task_data(
    path: &Path,
    task: TaskKind,
    tok: &LlamaTokenizer,
    format: &PromptFormat,
) -> Result<Dataset> {
    let raw = ro_tasks::read_examples(path, task)?;
    // read_examples skips blank lines; recover each example's line number for messages.
    let lines = nonblank_lines(path)?;
    let mut out = Dataset {
        path: path.to_path_buf(),
        ..Dataset::default()
    };
    for (i, e) in raw.iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(i + 1);
        let ex = encode_example(tok, format, task, e)
            .with_context(|| format!("{}:{line} (id {:?})", path.display(), e.id))?;
        out.examples.push(ex);
        out.lines.push(line);
    }
    Ok(out)
}

fn nonblank_lines(path: &Path) -> Result<Vec<usize>> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if !line.trim().is_empty() {
            out.push(i + 1);
        }
    }
    Ok(out)
}

fn id_list(v: &Value, field: &str) -> Result<Vec<i64>, String> {
    let arr = v
        .as_array()
        .ok_or_else(|| format!("field `{field}`: expected an array of integers"))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_i64()
                .ok_or_else(|| format!("field `{field}`: element {i} ({x}) is not an integer"))
        })
        .collect()
}

/// Parses one pre-tokenized line `{"input_ids":[..], "labels":[..]}` (labels optional: a
/// copy of the ids; -100 = no loss).
pub fn parse_token_line(text: &str) -> Result<Example, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "expected a JSON object".to_string())?;
    let ids = id_list(
        obj.get("input_ids")
            .ok_or_else(|| "field `input_ids`: missing".to_string())?,
        "input_ids",
    )?;
    if ids.is_empty() {
        return Err("field `input_ids`: empty".into());
    }
    let input_ids = ids
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            u32::try_from(t)
                .map_err(|_| format!("field `input_ids`: element {i} ({t}) is not a token id"))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    let labels = match obj.get("labels") {
        None | Some(Value::Null) => None,
        Some(l) => {
            let l = id_list(l, "labels")?;
            if l.len() != input_ids.len() {
                return Err(format!(
                    "field `labels`: {} entries, input_ids has {}",
                    l.len(),
                    input_ids.len()
                ));
            }
            if let Some((i, x)) = l
                .iter()
                .enumerate()
                .find(|(_, &x)| x < 0 && x != IGNORE_INDEX)
            {
                return Err(format!(
                    "field `labels`: element {i} ({x}) is negative and not -100"
                ));
            }
            Some(l)
        }
    };
    Ok(Example { input_ids, labels })
}

/// Reads a pre-tokenized JSONL file (see [`parse_token_line`]); blank lines are skipped.
pub fn read_token_data(path: &Path) -> Result<Dataset> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Dataset {
        path: path.to_path_buf(),
        ..Dataset::default()
    };
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let ex = parse_token_line(&line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        out.examples.push(ex);
        out.lines.push(i + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lines_default_labels_and_errors_name_the_field() {
        let e = parse_token_line(r#"{"input_ids":[1,2,3]}"#).unwrap();
        assert_eq!(e.labels(), vec![1, 2, 3]);
        let e = parse_token_line(r#"{"input_ids":[1,2,3],"labels":[-100,2,3]}"#).unwrap();
        assert_eq!(e.labels(), vec![-100, 2, 3]);
        for (line, want) in [
            (r#"{"input_ids":[]}"#, "`input_ids`: empty"),
            (r#"{"labels":[1]}"#, "`input_ids`: missing"),
            (r#"{"input_ids":[1,-2]}"#, "element 1 (-2)"),
            (r#"{"input_ids":[1,"a"]}"#, "element 1"),
            (r#"{"input_ids":[1,2],"labels":[1]}"#, "`labels`: 1 entries"),
            (r#"{"input_ids":[1,2],"labels":[1,-5]}"#, "not -100"),
            (r#"[1,2]"#, "JSON object"),
            (r#"{"input_ids":[1,2"#, "invalid JSON"),
        ] {
            let err = parse_token_line(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn dataset_check_names_file_line_and_field() {
        let d = Dataset {
            path: "t.jsonl".into(),
            examples: vec![
                parse_token_line(r#"{"input_ids":[1,2]}"#).unwrap(),
                parse_token_line(r#"{"input_ids":[1,20]}"#).unwrap(),
            ],
            lines: vec![1, 3],
        };
        let e = d.check(16, 8).unwrap_err().to_string();
        assert!(
            e.starts_with("t.jsonl:3: field `input_ids`: token id 20"),
            "{e}"
        );
        let e = d.check(32, 1).unwrap_err().to_string();
        assert!(e.starts_with("t.jsonl:1: 2 tokens"), "{e}");
        let empty = Dataset {
            path: "e.jsonl".into(),
            ..Dataset::default()
        };
        assert!(empty
            .check(8, 8)
            .unwrap_err()
            .to_string()
            .contains("no examples"));
    }

    #[test]
    fn labels_mask_the_prompt_and_keep_the_answer_and_end_of_turn() {
        let texts = ["Prostate cancer C61 photon", "Answer: proton therapy"];
        let tok = llama_model::train_bpe(
            texts.iter(),
            &llama_model::BpeTrainingConfig::with_vocab_size(300),
        )
        .unwrap();
        let ex = ro_tasks::Example {
            id: "1".into(),
            input: "Prostate cancer, 70 years.".into(),
            target: "photon".into(),
            language: ro_tasks::Language::En,
        };
        let eot = tok.token_to_id("<|eot_id|>").unwrap();
        let e = encode_example(&tok, &PromptFormat::Chat, TaskKind::Modality, &ex).unwrap();
        let labels = e.labels();
        let first = labels.iter().position(|&l| l != IGNORE_INDEX).unwrap();
        let answer: Vec<u32> = e.input_ids[first..].to_vec();
        assert_eq!(*answer.last().unwrap(), eot);
        assert_eq!(tok.decode(&answer, true).unwrap(), "photon");
        assert!(labels[first..]
            .iter()
            .zip(&answer)
            .all(|(&l, &t)| l == t as i64));

        let e = encode_example(
            &tok,
            &PromptFormat::Plain { eos: 1 },
            TaskKind::Modality,
            &ex,
        )
        .unwrap();
        let labels = e.labels();
        let first = labels.iter().position(|&l| l != IGNORE_INDEX).unwrap();
        assert_eq!(*e.input_ids.last().unwrap(), 1);
        let text = tok.decode(&e.input_ids[..first], true).unwrap();
        assert!(text.ends_with("Answer:"), "{text:?}");
        assert_eq!(
            tok.decode(&e.input_ids[first..], true).unwrap().trim(),
            "photon"
        );
    }
}
