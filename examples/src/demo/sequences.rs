//! Stage 2 and the token-level inputs of stages 3-6: the tokenizer (a byte-level BPE trained
//! on the training text, or the one of a `--model` checkpoint), pre-training blocks and
//! prompt-masked instruction examples.

use anyhow::{anyhow, Result};
use llama_model::{train_bpe, BpeTrainingConfig, ChatMessage, LlamaTokenizer, Role};
use qlora_core::train::{Example as TokenExample, IGNORE_INDEX};
use ro_tasks::{instruction, Example, Language, TaskKind};

use super::data::DemoData;

/// Trains the demo tokenizer on the training split: pre-training documents, the reference
/// answers and the task instructions (so that the chat prompts tokenize compactly).
///
/// # Errors
///
/// When BPE training fails.
pub fn train_tokenizer(data: &DemoData, vocab_size: usize) -> Result<LlamaTokenizer> {
    let mut texts: Vec<String> = data.pretrain_train.clone();
    for t in &data.tasks {
        texts.extend(t.train.iter().map(|e| e.target.clone()));
        for lang in [Language::En, Language::De] {
            texts.push(instruction(t.task, lang).to_string());
        }
    }
    train_bpe(
        texts.iter(),
        &BpeTrainingConfig::with_vocab_size(vocab_size),
    )
    .map_err(|e| anyhow!("training the BPE tokenizer: {e}"))
}

/// The padding id: Llama-3's `<|finetune_right_pad_id|>` when present, else the first stop
/// id, else 0. Padding never reaches the loss (mask 0, label -100).
pub fn pad_id(tok: &LlamaTokenizer) -> u32 {
    tok.token_to_id("<|finetune_right_pad_id|>")
        .or_else(|| tok.stop_ids().first().copied())
        .unwrap_or(0)
}

/// Pre-training blocks: each document as `BOS text EOS` (the tokenizer's post-processor adds
/// the BOS, the first stop id ends it), concatenated into one stream and cut into blocks of
/// `block` tokens (the last partial block is dropped unless it is the only one). Every token
/// is a target. Returns the blocks and the number of tokens of the stream.
///
/// # Errors
///
/// When a document cannot be encoded.
pub fn pretrain_blocks(
    tok: &LlamaTokenizer,
    docs: &[String],
    block: usize,
) -> Result<(Vec<TokenExample>, usize)> {
    let eos = tok.stop_ids().last().copied();
    let mut stream = Vec::new();
    for d in docs {
        stream.extend(
            tok.encode(d, true)
                .map_err(|e| anyhow!("encoding text: {e}"))?,
        );
        stream.extend(eos);
    }
    let n = stream.len();
    let mut blocks: Vec<TokenExample> = stream
        .chunks(block.max(2))
        .filter(|c| c.len() == block.max(2))
        .map(|c| TokenExample {
            input_ids: c.to_vec(),
            labels: None,
        })
        .collect();
    if blocks.is_empty() && n > 1 {
        blocks.push(TokenExample {
            input_ids: stream,
            labels: None,
        });
    }
    Ok((blocks, n))
}

/// The chat messages of a task prompt, in llama-model's types.
pub fn chat_messages(example: &Example, task: TaskKind) -> Vec<ChatMessage> {
    example
        .prompt(task)
        .messages()
        .into_iter()
        .map(|m| {
            let role = match m.role {
                ro_tasks::Role::System => Role::System,
                ro_tasks::Role::User => Role::User,
                ro_tasks::Role::Assistant => Role::Assistant,
            };
            ChatMessage::new(role, m.content)
        })
        .collect()
}

/// The prompt ids of an example: its chat template with the generation prompt (exactly what
/// the model sees at evaluation time).
///
/// # Errors
///
/// When the template cannot be rendered or encoded.
pub fn prompt_ids(tok: &LlamaTokenizer, example: &Example, task: TaskKind) -> Result<Vec<u32>> {
    tok.apply_chat_template(&chat_messages(example, task), true)
        .map_err(|e| anyhow!("case {}: chat template: {e}", example.id))
}

/// One supervised example: prompt ids (labels -100) followed by the answer and the end-of-turn
/// token (the targets). The answer is encoded on its own and appended, so the prompt part is
/// token for token the evaluation prompt. Truncated to `max_len` tokens.
///
/// # Errors
///
/// When encoding fails.
pub fn sft_example(
    tok: &LlamaTokenizer,
    example: &Example,
    task: TaskKind,
    max_len: usize,
) -> Result<TokenExample> {
    let prompt = prompt_ids(tok, example, task)?;
    let mut answer = tok
        .encode(example.target.trim(), false)
        .map_err(|e| anyhow!("case {}: encoding the answer: {e}", example.id))?;
    answer.extend(tok.stop_ids().first().copied());
    let mut labels: Vec<i64> = vec![IGNORE_INDEX; prompt.len()];
    labels.extend(answer.iter().map(|&t| i64::from(t)));
    let mut ids = prompt;
    ids.extend(answer);
    ids.truncate(max_len);
    labels.truncate(max_len);
    Ok(TokenExample {
        input_ids: ids,
        labels: Some(labels),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_tokens_are_masked_and_the_answer_ends_the_turn() {
        let data = DemoData::generate(60, 1);
        let tok = train_tokenizer(&data, 600).unwrap();
        let ex = &data.tasks[2].train[0];
        let s = sft_example(&tok, ex, TaskKind::Modality, 4096).unwrap();
        let prompt = prompt_ids(&tok, ex, TaskKind::Modality).unwrap();
        assert_eq!(&s.input_ids[..prompt.len()], &prompt[..]);
        let labels = s.labels.unwrap();
        assert!(labels[..prompt.len()].iter().all(|&l| l == IGNORE_INDEX));
        let answer: Vec<u32> = s.input_ids[prompt.len()..].to_vec();
        assert_eq!(*answer.last().unwrap(), tok.stop_ids()[0]);
        assert_eq!(tok.decode(&answer, true).unwrap(), ex.target);
        let short = sft_example(&tok, ex, TaskKind::Modality, 5).unwrap();
        assert_eq!(short.input_ids.len(), 5);
        assert_eq!(short.labels.unwrap().len(), 5);
    }

    #[test]
    fn pretraining_blocks_have_the_block_length() {
        let data = DemoData::generate(60, 1);
        let tok = train_tokenizer(&data, 600).unwrap();
        let (blocks, n) = pretrain_blocks(&tok, &data.pretrain_train, 64).unwrap();
        assert_eq!(blocks.len(), n / 64);
        assert!(blocks.iter().all(|b| b.input_ids.len() == 64));
    }
}
