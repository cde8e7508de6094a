//! What transformers 5 changes in a `tokenizer.json` when it loads it, by the
//! `tokenizer_class` of `tokenizer_config.json`, so that ids equal
//! `AutoTokenizer.from_pretrained(dir)`'s.
//!
//! `LlamaTokenizer` / `LlamaTokenizerFast` (Llama-2, Mistral-7B v0.1-v0.3, Mixtral, CodeLlama)
//! rebuild the SentencePiece-BPE pipeline (transformers `models/llama/tokenization_llama.py`):
//! no normalizer (tokenizer.json's legacy `Prepend("▁")` + `Replace(" ", "▁")`), a
//! `Metaspace(replacement="▁", prepend_scheme, split=False)` pre-tokenizer whose scheme is
//! `always` (`add_prefix_space` and `legacy`), `first` (`add_prefix_space`, not `legacy`) or
//! `never`, and the decoder `Replace("▁", " ")`, `ByteFallback`, `Fuse`, `Strip(" ", 1, 0)`.
//! The difference shows where text follows a special token with a space: `</s> or` is
//! `</s>`, `▁`, `▁or` under the file's normalizer and `</s>`, `▁or` in transformers 5 (and
//! `<s> [INST]`, Mistral-instruct v0.2's opening, is affected the same way).
//! Other classes are used as their file says.

use serde_json::{Map, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

use crate::error::{LlamaError, Result};

/// Applies transformers 5's load-time changes for the `tokenizer_class` of `config` (the
/// parsed `tokenizer_config.json`) to `tokenizer`.
///
/// # Errors
///
/// Only if building the replacement decoder fails (it cannot for these fixed settings).
pub fn as_transformers_loads(tokenizer: &mut Tokenizer, config: &Map<String, Value>) -> Result<()> {
    let class = config
        .get("tokenizer_class")
        .and_then(Value::as_str)
        .unwrap_or("");
    if class != "LlamaTokenizer" && class != "LlamaTokenizerFast" {
        return Ok(());
    }
    let flag =
        |name: &str, default: bool| config.get(name).and_then(Value::as_bool).unwrap_or(default);
    // transformers' LlamaTokenizer defaults: add_prefix_space True, legacy False.
    let scheme = match (flag("add_prefix_space", true), flag("legacy", false)) {
        (true, true) => PrependScheme::Always,
        (true, false) => PrependScheme::First,
        (false, _) => PrependScheme::Never,
    };
    tokenizer.with_normalizer(None::<NormalizerWrapper>);
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
    let replace = Replace::new("▁", " ").map_err(|e| LlamaError::Tokenizer(e.to_string()))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        DecoderWrapper::Replace(replace),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if flag("add_prefix_space", true) {
        decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    tokenizer.with_decoder(Some(Sequence::new(decoders)));
    Ok(())
}
