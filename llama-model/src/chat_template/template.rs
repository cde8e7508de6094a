//! [`ChatTemplate`]: one compiled Jinja chat template and where it came from, rendered as
//! transformers' `apply_chat_template(..., tokenize=False)` renders it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};

use super::clock;
use super::engine::{self, RAISED, TEMPLATE_NAME};
use super::message::ChatMessage;
use super::special::SpecialTokens;
use crate::error::{LlamaError, Result};

/// Meta's `meta-llama/Llama-2-7b-chat-hf` template (`<s>[INST] <<SYS>>…<</SYS>> … [/INST]`).
const LLAMA2_SOURCE: &str = include_str!("llama2-chat.jinja");
/// Meta's `meta-llama/Meta-Llama-3-8B-Instruct` template
/// (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`).
const LLAMA3_SOURCE: &str = include_str!("llama3-instruct.jinja");

/// Options of one rendering, as the keyword arguments of transformers' `apply_chat_template`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    /// Append the header that opens the model's turn (`add_generation_prompt`).
    pub add_generation_prompt: bool,
    /// Leave the last (assistant) message open for the model to continue
    /// (`continue_final_message`); not with `add_generation_prompt`.
    pub continue_final_message: bool,
    /// Further template variables (`**kwargs`), e.g. `date_string` or `enable_thinking`;
    /// they override special tokens of the same name.
    pub variables: BTreeMap<String, serde_json::Value>,
    /// What `strftime_now` formats, in seconds since the epoch (UTC); `None`: the system clock.
    pub now: Option<i64>,
}

impl RenderOptions {
    /// Options with only `add_generation_prompt` set.
    pub fn generation_prompt(add_generation_prompt: bool) -> Self {
        Self {
            add_generation_prompt,
            ..Self::default()
        }
    }
}

/// A compiled Jinja chat template.
///
/// Templates come from a checkpoint ([`ChatTemplate::from_dir`]: `chat_template.jinja` or the
/// `chat_template` field of `tokenizer_config.json`), from a `.jinja` file
/// ([`ChatTemplate::from_file`]), or are one of the two built-in fallbacks for checkpoints
/// without one ([`ChatTemplate::llama2`], [`ChatTemplate::llama3`]).
#[derive(Clone)]
pub struct ChatTemplate {
    origin: String,
    source: String,
    defaults: SpecialTokens,
    env: Arc<Environment<'static>>,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("source_len", &self.source.len())
            .finish()
    }
}

/// Two templates are equal when their text and default special tokens are.
impl PartialEq for ChatTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.defaults == other.defaults
    }
}

impl Eq for ChatTemplate {}

impl ChatTemplate {
    /// Compiles a template text; `origin` names it in every error (a file and field, e.g.
    /// ``model/tokenizer_config.json field `chat_template` ``).
    ///
    /// # Errors
    ///
    /// [`LlamaError::ChatTemplate`] when the text is not a valid template.
    ///
    /// # Example
    /// ```
    /// use llama_model::{ChatMessage, ChatTemplate, RenderOptions, Role, SpecialTokens};
    /// let t = ChatTemplate::from_source(
    ///     "{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}{% endfor %}",
    ///     "inline",
    /// )
    /// .unwrap();
    /// let text = t
    ///     .render(&[ChatMessage::new(Role::User, " dose? ")], &SpecialTokens::new(), &RenderOptions::default())
    ///     .unwrap();
    /// assert_eq!(text, "<|user|>dose?");
    /// ```
    pub fn from_source(source: impl Into<String>, origin: impl Into<String>) -> Result<Self> {
        let source = source.into();
        let origin = origin.into();
        let env = engine::compile(&source).map_err(|e| LlamaError::ChatTemplate {
            origin: origin.clone(),
            reason: format!("does not compile: {}", describe(&e)),
        })?;
        Ok(Self {
            origin,
            source,
            defaults: SpecialTokens::new(),
            env: Arc::new(env),
        })
    }

    /// Reads and compiles a `.jinja` file.
    ///
    /// # Errors
    ///
    /// An unreadable file, or a template that does not compile (naming the file).
    pub fn from_file(path: &Path) -> Result<Self> {
        let source = std::fs::read_to_string(path).map_err(|source| LlamaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_source(source, path.display().to_string())
    }

    /// The built-in Llama-2-chat template, with `<s>`/`</s>` as its default BOS/EOS.
    pub fn llama2() -> Self {
        Self::builtin(LLAMA2_SOURCE, "built-in llama2 chat template").with_defaults(
            SpecialTokens::new()
                .with("bos_token", "<s>")
                .with("eos_token", "</s>"),
        )
    }

    /// The built-in Llama-3-instruct template, with `<|begin_of_text|>`/`<|eot_id|>` as its
    /// default BOS/EOS.
    pub fn llama3() -> Self {
        Self::builtin(LLAMA3_SOURCE, "built-in llama3 chat template").with_defaults(
            SpecialTokens::new()
                .with("bos_token", "<|begin_of_text|>")
                .with("eos_token", "<|eot_id|>"),
        )
    }

    fn builtin(source: &str, origin: &str) -> Self {
        match Self::from_source(source, origin) {
            Ok(t) => t,
            // The built-in texts are fixed and compile (tested); this arm cannot be reached.
            Err(e) => unreachable!("{e}"),
        }
    }

    /// Special tokens used where the tokenizer's config leaves a name unset (the built-in
    /// templates' BOS/EOS, for tokenizers without a `tokenizer_config.json`).
    pub fn with_defaults(mut self, defaults: SpecialTokens) -> Self {
        self.defaults = defaults;
        self
    }

    /// The special tokens a rendering with a tokenizer whose config sets `special` sees:
    /// those, then this template's defaults for unset names.
    pub fn special_tokens_for(&self, special: &SpecialTokens) -> SpecialTokens {
        special.clone().or(&self.defaults)
    }

    /// Where the template came from (a file and field, or "built-in ...").
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation as transformers'
    /// `apply_chat_template(messages, tokenize=False, **options)` with a tokenizer whose
    /// special tokens are `special` (plus this template's defaults for unset names).
    ///
    /// # Errors
    ///
    /// [`LlamaError::ChatTemplate`] naming [`origin`](Self::origin): an empty conversation,
    /// `continue_final_message` with `add_generation_prompt` or without a final message in
    /// the output, the template's own `raise_exception` (e.g. roles that do not alternate),
    /// or any other rendering failure (an undefined variable's attribute, a bad filter
    /// argument), with minijinja's line.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        special: &SpecialTokens,
        options: &RenderOptions,
    ) -> Result<String> {
        if messages.is_empty() {
            return Err(self.error("cannot apply a chat template to an empty conversation"));
        }
        if options.continue_final_message {
            return self.render_continued(messages, special, options);
        }
        self.render_raw(messages, special, options)
    }

    fn render_raw(
        &self,
        messages: &[ChatMessage],
        special: &SpecialTokens,
        options: &RenderOptions,
    ) -> Result<String> {
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        for (name, token) in self.special_tokens_for(special).iter() {
            ctx.insert(name.to_string(), Value::from(token));
        }
        for (name, value) in &options.variables {
            ctx.insert(name.clone(), Value::from(minijinja::value::Serde(value)));
        }
        ctx.insert(
            "messages".into(),
            Value::from(minijinja::value::Serde(messages)),
        );
        ctx.insert("tools".into(), Value::from(()));
        ctx.insert("documents".into(), Value::from(()));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(options.add_generation_prompt),
        );
        let now = options.now.unwrap_or_else(clock::system_now);
        ctx.insert(
            "strftime_now".into(),
            Value::from_function(move |format: String| {
                clock::strftime(&format, now)
                    .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))
            }),
        );
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| self.error(&describe(&e)))?;
        template.render(Value::from(ctx)).map_err(|e| {
            let text = describe(&e);
            match text.split_once(RAISED) {
                Some((_, message)) => {
                    self.error(&format!("the template refused the conversation: {message}"))
                }
                None => self.error(&format!("failed to render: {text}")),
            }
        })
    }

    /// `continue_final_message`: render with a tag after the last message's content and cut
    /// the output there, as transformers' `render_jinja_template` does.
    fn render_continued(
        &self,
        messages: &[ChatMessage],
        special: &SpecialTokens,
        options: &RenderOptions,
    ) -> Result<String> {
        const TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";
        if options.add_generation_prompt {
            return Err(self.error(
                "continue_final_message and add_generation_prompt cannot be used together",
            ));
        }
        if !self.source.contains("content") {
            return Err(self.error("continue_final_message: the template never reads `content`"));
        }
        let mut tagged = messages.to_vec();
        let last = tagged.len() - 1;
        let final_message = tagged[last].content.clone();
        tagged[last].content.push_str(TAG);
        let rendered = self.render_raw(&tagged, special, options)?;
        let tag = TAG.trim();
        let kept = super::python::py_strip(&final_message, None, true, true);
        let Some(at) = rendered.rfind(tag).filter(|_| rendered.contains(kept)) else {
            return Err(self.error(
                "continue_final_message: the final message does not appear in the rendered chat",
            ));
        };
        Ok(if rendered[at..].starts_with(TAG) {
            rendered[..at].to_string()
        } else {
            super::python::py_strip(&rendered[..at], None, false, true).to_string()
        })
    }

    fn error(&self, reason: &str) -> LlamaError {
        LlamaError::ChatTemplate {
            origin: self.origin.clone(),
            reason: reason.to_string(),
        }
    }
}

/// minijinja's message with the line it points at.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}
