//! Chat messages: who speaks and what they say, as chat templates see them
//! (`{"role": "user", "content": "..."}`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LlamaError, Result};

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// Reads a conversation file: a JSON list of `{"role", "content"}` objects, roles `system`,
/// `user` or `assistant` (what transformers' `apply_chat_template` takes as `conversation`).
///
/// # Errors
///
/// An unreadable file, invalid JSON, an empty list, or a message whose field is missing or wrong, named by
/// its index and field: ``messages.json: message 2: field `role`: unknown variant `tool` ``.
///
/// # Example
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("m.json");
/// std::fs::write(&path, r#"[{"role": "user", "content": "Dose?"}]"#).unwrap();
/// let messages = llama_model::read_messages(&path).unwrap();
/// assert_eq!(messages[0].content, "Dose?");
/// std::fs::write(&path, r#"[{"role": "robot", "content": "x"}]"#).unwrap();
/// let e = llama_model::read_messages(&path).unwrap_err().to_string();
/// assert!(e.contains("message 0: field `role`"), "{e}");
/// ```
pub fn read_messages(path: &Path) -> Result<Vec<ChatMessage>> {
    let text = std::fs::read_to_string(path).map_err(|source| LlamaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|source| LlamaError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    if items.is_empty() {
        return Err(LlamaError::InvalidArgument(format!(
            "{}: the conversation is empty (no messages)",
            path.display()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_message(item).map_err(|reason| bad(path, i, reason)))
        .collect()
}

fn bad(path: &Path, index: usize, reason: String) -> LlamaError {
    LlamaError::InvalidArgument(format!("{}: message {index}: {reason}", path.display()))
}

fn parse_message(item: serde_json::Value) -> std::result::Result<ChatMessage, String> {
    let obj = item
        .as_object()
        .ok_or_else(|| format!("expected an object {{\"role\", \"content\"}}, found {item}"))?;
    for field in ["role", "content"] {
        if !obj.contains_key(field) {
            return Err(format!("field `{field}`: missing"));
        }
    }
    let field = |name: &str| -> std::result::Result<serde_json::Value, String> {
        Ok(obj.get(name).cloned().unwrap_or_default())
    };
    let role: Role = serde_json::from_value(field("role")?)
        .map_err(|e| format!("field `role`: {e} (expected system, user or assistant)"))?;
    let content: String =
        serde_json::from_value(field("content")?).map_err(|e| format!("field `content`: {e}"))?;
    if let Some(extra) = obj.keys().find(|k| *k != "role" && *k != "content") {
        return Err(format!(
            "field `{extra}`: unknown (a message has only role and content)"
        ));
    }
    Ok(ChatMessage { role, content })
}
