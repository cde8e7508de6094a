//! [`LlamaTokenizer`]: the `tokenizers` crate on a `tokenizer.json`, with the special tokens
//! and the chat template of the directory it was loaded from.
//!
//! Chat prompts are rendered with the [`ChatTemplate`] and encoded without adding special
//! tokens, exactly as transformers' `apply_chat_template(..., tokenize=True)` does: the BOS
//! comes from the template, once.

use std::path::Path;
use std::sync::Arc;

use crate::chat_template::special::read_json_object;
use crate::chat_template::{
    ChatMessage, ChatTemplate, RenderOptions, SpecialTokens, CHAT_TEMPLATE_FILE,
    TOKENIZER_CONFIG_FILE,
};
use crate::error::{LlamaError, Result};
use crate::tokenizer_class;

/// A `tokenizer.json` tokenizer with its named special tokens and, when it has one, its chat
/// template.
#[derive(Debug, Clone)]
pub struct LlamaTokenizer {
    /// Shared: a real vocabulary is megabytes, and a tokenizer is cloned to change its template.
    inner: Arc<tokenizers::Tokenizer>,
    special: SpecialTokens,
    template: Option<ChatTemplate>,
    /// Where the tokenizer was read from (named in the "no template" error).
    origin: String,
}

fn tok_err(e: impl std::fmt::Display) -> LlamaError {
    LlamaError::Tokenizer(e.to_string())
}

impl LlamaTokenizer {
    /// Loads a `tokenizer.json` with the special tokens (`tokenizer_config.json`,
    /// `special_tokens_map.json`) and the chat template (`chat_template.jinja` or
    /// `tokenizer_config.json`'s `chat_template`) of its directory, as transformers'
    /// `AutoTokenizer.from_pretrained(dir)` does (including transformers 5's rebuilt
    /// pre-tokenizer of `LlamaTokenizer` checkpoints, see [`crate::tokenizer_class`]). A directory without a template gives a
    /// tokenizer without one ([`LlamaTokenizer::template`] is `None`): choose one explicitly
    /// with [`LlamaTokenizer::with_template`].
    ///
    /// # Errors
    ///
    /// An unreadable tokenizer file, or a config or template file that is malformed or does
    /// not compile (naming the file and field).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| LlamaError::Tokenizer(format!("{}: {e}", path.display())))?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        if let Some(config) = read_json_object(&dir.join(TOKENIZER_CONFIG_FILE))? {
            tokenizer_class::as_transformers_loads(&mut inner, &config)?;
        }
        Ok(Self {
            inner: Arc::new(inner),
            special: SpecialTokens::from_dir(dir)?,
            template: ChatTemplate::from_dir(dir)?,
            origin: path.display().to_string(),
        })
    }

    /// Wraps an in-memory tokenizer (e.g. one trained with the `tokenizers` crate), without
    /// special tokens or a template.
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        Self {
            inner: Arc::new(inner),
            special: SpecialTokens::new(),
            template: None,
            origin: "in-memory tokenizer".into(),
        }
    }

    /// Replaces the chat template.
    pub fn with_template(mut self, template: ChatTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// Replaces the named special tokens.
    pub fn with_special_tokens(mut self, special: SpecialTokens) -> Self {
        self.special = special;
        self
    }

    /// The chat template, if the tokenizer has one.
    pub fn template(&self) -> Option<&ChatTemplate> {
        self.template.as_ref()
    }

    /// The named special tokens (`bos_token`, `eos_token`, ...) of the tokenizer's config.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encodes text; `add_special_tokens` runs the post-processor (which adds the BOS of the
    /// Llama tokenizers), as `tokenizer(text, add_special_tokens=...)` does.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, add_special_tokens)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// Decodes ids to text.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(tok_err)
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The id of a named special token, e.g. `special_token_id("eos_token")`.
    pub fn special_token_id(&self, name: &str) -> Option<u32> {
        self.special_tokens_with_defaults()
            .get(name)
            .and_then(|t| self.token_to_id(t))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The template, or the error a user sees when the tokenizer has none.
    fn require_template(&self) -> Result<&ChatTemplate> {
        self.template
            .as_ref()
            .ok_or_else(|| LlamaError::ChatTemplate {
                origin: self.origin.clone(),
                reason: format!(
                "no chat template: neither {CHAT_TEMPLATE_FILE} nor a `chat_template` field in \
                 {TOKENIZER_CONFIG_FILE} beside it; choose one explicitly (the built-in llama2 or \
                 llama3 template, or a .jinja file)"
            ),
            })
    }

    /// Special tokens of the config, then the template's defaults for unset names.
    fn special_tokens_with_defaults(&self) -> SpecialTokens {
        match &self.template {
            Some(t) => t.special_tokens_for(&self.special),
            None => self.special.clone(),
        }
    }

    /// Renders a conversation with the chat template, as transformers'
    /// `apply_chat_template(messages, tokenize=False, **options)`.
    ///
    /// # Errors
    ///
    /// No template ([`LlamaError::ChatTemplate`] saying so), or the template's errors.
    pub fn render_chat(&self, messages: &[ChatMessage], options: &RenderOptions) -> Result<String> {
        self.require_template()?
            .render(messages, &self.special, options)
    }

    /// Renders and encodes a conversation as transformers'
    /// `apply_chat_template(messages, tokenize=True, **options)`: the rendered text is encoded
    /// with `add_special_tokens=False`.
    ///
    /// # Errors
    ///
    /// As [`LlamaTokenizer::render_chat`], or an encoding failure.
    pub fn encode_chat(
        &self,
        messages: &[ChatMessage],
        options: &RenderOptions,
    ) -> Result<Vec<u32>> {
        let text = self.render_chat(messages, options)?;
        self.encode(&text, false)
    }

    /// [`LlamaTokenizer::encode_chat`] with only `add_generation_prompt` set.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        self.encode_chat(
            messages,
            &RenderOptions::generation_prompt(add_generation_prompt),
        )
    }

    /// The id of the token the chat template ends the model's turn with (`<|eot_id|>`,
    /// `<|im_end|>`, `</s>`), when there is a template and it writes one.
    pub fn end_of_turn_id(&self) -> Option<u32> {
        let template = self.template.as_ref()?;
        let added = self.inner.get_added_tokens_decoder();
        let contents: Vec<&str> = added.values().map(|t| t.content.as_str()).collect();
        let token = template.end_of_turn(&self.special, &contents)?;
        self.token_to_id(token)
    }

    /// The ids that end generation of a chat answer: the template's end-of-turn token first,
    /// then the tokenizer's `eos_token` (each once, those in the vocabulary).
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.end_of_turn_id().into_iter().collect();
        if let Some(eos) = self.special_token_id("eos_token") {
            if !ids.contains(&eos) {
                ids.push(eos);
            }
        }
        ids
    }

    /// Writes `tokenizer.json`, `tokenizer_config.json` (the special tokens) and, when the
    /// tokenizer has a template, `chat_template.jinja` into `dir`, the files transformers 5's
    /// `save_pretrained` writes, so that [`LlamaTokenizer::from_file`] and
    /// `AutoTokenizer.from_pretrained` read them back. Each file is written atomically.
    ///
    /// # Errors
    ///
    /// A file that cannot be written, or a tokenizer that does not serialize.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let write = |name: &str, bytes: &[u8]| {
            qlora_core::write_atomic(&dir.join(name), bytes).map_err(|e| {
                LlamaError::InvalidArgument(format!("writing {}: {e}", dir.join(name).display()))
            })
        };
        let json = self.inner.to_string(false).map_err(tok_err)?;
        write("tokenizer.json", json.as_bytes())?;
        let mut config = serde_json::Map::new();
        for (name, token) in self.special_tokens_with_defaults().iter() {
            config.insert(name.to_string(), token.into());
        }
        config.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
        config.insert("clean_up_tokenization_spaces".into(), false.into());
        let config = serde_json::to_string_pretty(&config).map_err(tok_err)?;
        write(TOKENIZER_CONFIG_FILE, config.as_bytes())?;
        if let Some(t) = &self.template {
            write(CHAT_TEMPLATE_FILE, t.source().as_bytes())?;
        }
        Ok(())
    }
}
