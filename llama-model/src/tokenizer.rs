//! Tokenizer (the `tokenizers` crate on a `tokenizer.json`) and chat templates.
//!
//! The Llama-2 and Llama-3 templates render the same text as the official Jinja templates
//! (Llama-2: `meta-llama/Llama-2-7b-chat-hf`; Llama-3: `meta-llama/Meta-Llama-3-8B-Instruct`),
//! which is then encoded without adding special tokens, exactly as transformers'
//! `apply_chat_template(..., tokenize=True)` does: the BOS comes from the template, once.

use std::path::Path;

use crate::error::{LlamaError, Result};

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The system prompt.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role name as chat templates write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A simple template for custom tokenizers: each message is its role's pattern with
/// `{content}` replaced; the conversation starts with `bos` and, with a generation prompt,
/// ends with `generation_prompt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTemplate {
    /// Text at the start (e.g. `"<s>"`, or empty).
    pub bos: String,
    /// Pattern of a system message.
    pub system: String,
    /// Pattern of a user message.
    pub user: String,
    /// Pattern of an assistant message.
    pub assistant: String,
    /// Text that opens the model's turn.
    pub generation_prompt: String,
}

/// The chat format of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] … </s>` (roles must alternate).
    Llama2,
    /// `<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`.
    Llama3,
    /// A [`CustomTemplate`].
    Custom(CustomTemplate),
}

impl ChatTemplate {
    /// Renders the conversation as text.
    ///
    /// # Example
    /// ```
    /// use llama_model::{ChatMessage, ChatTemplate, Role};
    /// let text = ChatTemplate::Llama3
    ///     .render(&[ChatMessage::new(Role::User, " Hi ")], true)
    ///     .unwrap();
    /// assert_eq!(
    ///     text,
    ///     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    /// );
    /// ```
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        match self {
            ChatTemplate::Llama3 => {
                let mut out = String::from("<|begin_of_text|>");
                for m in messages {
                    out.push_str("<|start_header_id|>");
                    out.push_str(m.role.as_str());
                    out.push_str("<|end_header_id|>\n\n");
                    out.push_str(m.content.trim());
                    out.push_str("<|eot_id|>");
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
                Ok(out)
            }
            ChatTemplate::Llama2 => render_llama2(messages),
            ChatTemplate::Custom(t) => {
                let mut out = t.bos.clone();
                for m in messages {
                    let pattern = match m.role {
                        Role::System => &t.system,
                        Role::User => &t.user,
                        Role::Assistant => &t.assistant,
                    };
                    out.push_str(&pattern.replace("{content}", &m.content));
                }
                if add_generation_prompt {
                    out.push_str(&t.generation_prompt);
                }
                Ok(out)
            }
        }
    }
}

/// The official Llama-2 chat template (it has no generation prompt: the text already ends
/// with `[/INST]`).
fn render_llama2(messages: &[ChatMessage]) -> Result<String> {
    let (system, rest) = match messages.first() {
        Some(m) if m.role == Role::System => (Some(m.content.as_str()), &messages[1..]),
        _ => (None, messages),
    };
    let mut out = String::new();
    for (i, m) in rest.iter().enumerate() {
        if (m.role == Role::User) != (i % 2 == 0) {
            return Err(LlamaError::InvalidArgument(
                "Conversation roles must alternate user/assistant/user/assistant/...".into(),
            ));
        }
        let content = match (i, system) {
            (0, Some(sys)) => format!("<<SYS>>\n{sys}\n<</SYS>>\n\n{}", m.content),
            _ => m.content.clone(),
        };
        match m.role {
            Role::User => {
                out.push_str("<s>[INST] ");
                out.push_str(content.trim());
                out.push_str(" [/INST]");
            }
            Role::Assistant => {
                out.push(' ');
                out.push_str(content.trim());
                out.push_str(" </s>");
            }
            Role::System => {
                return Err(LlamaError::InvalidArgument(
                    "a system message is only allowed first".into(),
                ))
            }
        }
    }
    Ok(out)
}

/// A `tokenizer.json` tokenizer with a chat template.
#[derive(Debug, Clone)]
pub struct LlamaTokenizer {
    inner: tokenizers::Tokenizer,
    template: ChatTemplate,
}

fn tok_err(e: impl std::fmt::Display) -> LlamaError {
    LlamaError::Tokenizer(e.to_string())
}

impl LlamaTokenizer {
    /// Loads a `tokenizer.json`; the template is guessed from the vocabulary
    /// (`<|start_header_id|>` → Llama-3, else Llama-2). Use [`LlamaTokenizer::with_template`]
    /// to choose another.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| LlamaError::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self::from_tokenizer(inner))
    }

    /// Wraps an in-memory tokenizer (e.g. one trained with the `tokenizers` crate).
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        let template = if inner.token_to_id("<|start_header_id|>").is_some() {
            ChatTemplate::Llama3
        } else {
            ChatTemplate::Llama2
        };
        Self { inner, template }
    }

    /// Replaces the chat template.
    pub fn with_template(mut self, template: ChatTemplate) -> Self {
        self.template = template;
        self
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
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

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Renders and encodes a conversation as transformers'
    /// `apply_chat_template(messages, add_generation_prompt=..., tokenize=True)`.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let text = self.template.render(messages, add_generation_prompt)?;
        self.encode(&text, false)
    }

    /// The ids that end a model turn under this template: `<|eot_id|>` and
    /// `<|end_of_text|>` for Llama-3, `</s>` for Llama-2 (those present in the vocabulary).
    pub fn stop_ids(&self) -> Vec<u32> {
        ["<|eot_id|>", "<|end_of_text|>", "</s>"]
            .iter()
            .filter_map(|t| self.inner.token_to_id(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama2_renders_system_inside_first_turn() {
        let text = ChatTemplate::Llama2
            .render(
                &[
                    ChatMessage::new(Role::System, "Be brief."),
                    ChatMessage::new(Role::User, " Q1 "),
                    ChatMessage::new(Role::Assistant, "A1"),
                    ChatMessage::new(Role::User, "Q2"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(
            text,
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]"
        );
    }

    #[test]
    fn llama2_rejects_non_alternating_roles() {
        let e = ChatTemplate::Llama2
            .render(
                &[
                    ChatMessage::new(Role::User, "a"),
                    ChatMessage::new(Role::User, "b"),
                ],
                true,
            )
            .unwrap_err();
        assert!(e.to_string().contains("alternate"));
    }

    #[test]
    fn custom_template_fills_patterns() {
        let t = ChatTemplate::Custom(CustomTemplate {
            bos: "<s>".into(),
            system: "<|system|>{content}<|end|>".into(),
            user: "<|user|>{content}<|end|>".into(),
            assistant: "<|assistant|>{content}<|end|>".into(),
            generation_prompt: "<|assistant|>".into(),
        });
        let text = t
            .render(&[ChatMessage::new(Role::User, "dose?")], true)
            .unwrap();
        assert_eq!(text, "<s><|user|>dose?<|end|><|assistant|>");
    }
}
