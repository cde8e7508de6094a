//! Training a small byte-level BPE tokenizer with Llama-3 special tokens, for models trained
//! from scratch on a domain corpus (the demo's tiny LLaMA).
//!
//! The result works exactly like a Llama-3 `tokenizer.json`: Llama-3's pre-tokenization (its
//! split regex, [`LLAMA3_SPLIT_PATTERN`], then byte-level mapping: every string encodes, nothing
//! is unknown), `<|begin_of_text|>` prepended by the post-processor
//! when special tokens are requested, and the chat special tokens `<|start_header_id|>`,
//! `<|end_header_id|>` and `<|eot_id|>`. It carries Meta's Llama-3-instruct chat template
//! ([`ChatTemplate::llama3`](crate::ChatTemplate::llama3)) and Llama-3's named special tokens,
//! and [`LlamaTokenizer::save`] writes them beside it (`tokenizer_config.json`,
//! `chat_template.jinja`) as a real checkpoint has them.

use std::collections::HashSet;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use crate::chat_template::{ChatTemplate, SpecialTokens};
use crate::error::{LlamaError, Result};
use crate::tokenizer::LlamaTokenizer;

/// `<|begin_of_text|>`: the BOS token of Llama-3.
pub const BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
/// `<|end_of_text|>`: the end of a document.
pub const END_OF_TEXT: &str = "<|end_of_text|>";
/// `<|finetune_right_pad_id|>`: Llama-3.1's padding token.
pub const PAD: &str = "<|finetune_right_pad_id|>";

/// The split regex of Llama-3's pre-tokenizer (its `tokenizer.json`, `Split` with behaviour
/// `Isolated`, before a `ByteLevel` step without GPT-2's regex).
///
/// Unlike GPT-2's pattern it keeps a run of line breaks in one piece, together with the
/// punctuation before it (`",\n\n"` is one piece, where GPT-2's pattern gives `","`, `"\n"`,
/// `"\n"`), and it cuts digit runs into groups of at most three.
pub const LLAMA3_SPLIT_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Llama-3's pre-tokenizer: [`LLAMA3_SPLIT_PATTERN`], then the byte-level mapping.
fn llama3_pre_tokenizer() -> Result<Sequence> {
    let split = Split::new(
        SplitPattern::Regex(LLAMA3_SPLIT_PATTERN.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(tok_err)?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ]))
}

/// The special tokens of a trained tokenizer, in id order (ids 0, 1, ...).
pub const LLAMA3_SPECIAL_TOKENS: [&str; 6] = [
    BEGIN_OF_TEXT,
    END_OF_TEXT,
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    PAD,
];

/// Settings of [`train_bpe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpeTrainingConfig {
    /// Final vocabulary size, special tokens and the 256 byte symbols included.
    pub vocab_size: usize,
    /// A pair must occur at least this often to be merged.
    pub min_frequency: u64,
    /// Special tokens, given ids `0..n` in this order; the first is the BOS the
    /// post-processor prepends.
    pub special_tokens: Vec<String>,
}

impl Default for BpeTrainingConfig {
    fn default() -> Self {
        Self {
            vocab_size: 4096,
            min_frequency: 2,
            special_tokens: LLAMA3_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl BpeTrainingConfig {
    /// The default special tokens with another vocabulary size.
    pub fn with_vocab_size(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            ..Self::default()
        }
    }
}

fn tok_err(e: impl std::fmt::Display) -> LlamaError {
    LlamaError::Tokenizer(e.to_string())
}

/// Trains a byte-level BPE tokenizer on `texts`.
///
/// The same texts in the same order give the same tokenizer (BPE training is deterministic).
///
/// # Errors
///
/// [`LlamaError::InvalidArgument`] if there are no special tokens or the vocabulary cannot
/// hold them and the 256 byte symbols; [`LlamaError::Tokenizer`] if training fails.
///
/// # Example
/// ```
/// use llama_model::{train_bpe, BpeTrainingConfig, ChatTemplate};
/// let corpus = ["Total dose 60 Gy in 30 fractions.", "Proton therapy for chordoma."];
/// let tok = train_bpe(corpus.iter(), &BpeTrainingConfig::with_vocab_size(300)).unwrap();
/// assert_eq!(tok.template(), Some(&ChatTemplate::llama3()));
/// let ids = tok.encode("60 Gy", true).unwrap();
/// assert_eq!(ids[0], tok.token_to_id("<|begin_of_text|>").unwrap());
/// assert_eq!(tok.decode(&ids, true).unwrap(), "60 Gy");
/// ```
pub fn train_bpe<I, S>(texts: I, config: &BpeTrainingConfig) -> Result<LlamaTokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let bos = config.special_tokens.first().ok_or_else(|| {
        LlamaError::InvalidArgument("BPE training needs at least one special token (BOS)".into())
    })?;
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let minimum = alphabet.len() + config.special_tokens.len();
    if config.vocab_size < minimum {
        return Err(LlamaError::InvalidArgument(format!(
            "vocab_size {} cannot hold {} byte symbols and {} special tokens",
            config.vocab_size,
            alphabet.len(),
            config.special_tokens.len()
        )));
    }
    let specials: Vec<AddedToken> = config
        .special_tokens
        .iter()
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(config.vocab_size)
        .min_frequency(config.min_frequency)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(alphabet)
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(llama3_pre_tokenizer()?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer
        .train(&mut trainer, texts)
        .map_err(|e| tok_err(format!("BPE training failed: {e}")))?;
    let bos_id = tokenizer
        .token_to_id(bos)
        .ok_or_else(|| tok_err(format!("special token {bos} missing after training")))?;
    let post = TemplateProcessing::builder()
        .try_single(format!("{bos}:0 $A:0"))
        .map_err(tok_err)?
        .try_pair(format!("{bos}:0 $A:0 {bos}:1 $B:1"))
        .map_err(tok_err)?
        .special_tokens(vec![(bos.clone(), bos_id)])
        .build()
        .map_err(tok_err)?;
    tokenizer.with_post_processor(Some(post));
    let special = SpecialTokens::new()
        .with("bos_token", bos)
        .with("eos_token", END_OF_TEXT)
        .with("pad_token", PAD);
    Ok(LlamaTokenizer::from_tokenizer(tokenizer)
        .with_special_tokens(special)
        .with_template(ChatTemplate::llama3()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat_template::{ChatMessage, Role};

    fn corpus() -> Vec<String> {
        (0..200)
            .map(|i| {
                format!(
                    "Patient {i} received {} Gy in {} fractions of photon radiotherapy to the prostate.",
                    40 + i % 30,
                    10 + i % 25
                )
            })
            .collect()
    }

    #[test]
    fn special_tokens_get_the_first_ids_and_vocab_is_bounded() {
        let cfg = BpeTrainingConfig::with_vocab_size(400);
        let tok = train_bpe(corpus().iter(), &cfg).unwrap();
        for (i, t) in LLAMA3_SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_to_id(t), Some(i as u32), "{t}");
        }
        assert!(tok.vocab_size() <= 400, "{}", tok.vocab_size());
        assert!(tok.vocab_size() > 256 + LLAMA3_SPECIAL_TOKENS.len());
    }

    #[test]
    fn round_trips_unseen_text_and_compresses_seen_text() {
        let tok = train_bpe(corpus().iter(), &BpeTrainingConfig::with_vocab_size(500)).unwrap();
        let unseen = "Brachytherapy: 7 Gy × 4 — électron, 质子 🙂";
        let ids = tok.encode(unseen, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), unseen);
        let seen = "received 60 Gy in 30 fractions of photon radiotherapy";
        let n = tok.encode(seen, false).unwrap().len();
        assert!(n < seen.len() / 3, "{n} tokens for {} bytes", seen.len());
    }

    #[test]
    fn chat_template_special_tokens_encode_as_single_ids() {
        let tok = train_bpe(corpus().iter(), &BpeTrainingConfig::with_vocab_size(400)).unwrap();
        let ids = tok
            .apply_chat_template(&[ChatMessage::new(Role::User, "dose?")], true)
            .unwrap();
        assert_eq!(ids[0], 0, "BOS once, from the template");
        assert_eq!(ids.iter().filter(|&&i| i == 0).count(), 1);
        assert!(ids.contains(&tok.token_to_id("<|start_header_id|>").unwrap()));
        assert_eq!(tok.stop_ids(), vec![4, 1]);
    }

    #[test]
    fn training_is_deterministic() {
        let cfg = BpeTrainingConfig::with_vocab_size(450);
        let a = train_bpe(corpus().iter(), &cfg).unwrap();
        let b = train_bpe(corpus().iter(), &cfg).unwrap();
        assert_eq!(
            a.inner().to_string(false).unwrap(),
            b.inner().to_string(false).unwrap()
        );
    }

    #[test]
    fn rejects_a_vocabulary_too_small() {
        let e = train_bpe(corpus().iter(), &BpeTrainingConfig::with_vocab_size(100)).unwrap_err();
        assert!(e.to_string().contains("vocab_size 100"), "{e}");
        let none = BpeTrainingConfig {
            special_tokens: vec![],
            ..BpeTrainingConfig::default()
        };
        assert!(train_bpe(corpus().iter(), &none).is_err());
    }
}
