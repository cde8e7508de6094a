//! The named special tokens a tokenizer config declares (`bos_token`, `eos_token`, ...),
//! which transformers passes to every chat template as variables.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{LlamaError, Result};

/// The names transformers 5 passes to a template (`special_tokens_map`, its
/// `SPECIAL_TOKENS_ATTRIBUTES`); `additional_special_tokens` are not passed.
pub const SPECIAL_TOKEN_NAMES: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// Named special tokens, e.g. `bos_token` → `<s>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens(BTreeMap<String, String>);

impl SpecialTokens {
    /// No special tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one token, e.g. `("bos_token", "<s>")`.
    pub fn with(mut self, name: &str, token: &str) -> Self {
        self.0.insert(name.to_string(), token.to_string());
        self
    }

    /// The token of a name, e.g. `get("eos_token")`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// All tokens by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds the tokens of `other` whose names this one does not set.
    pub fn or(mut self, other: &SpecialTokens) -> Self {
        for (k, v) in other.iter() {
            self.0.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        self
    }

    /// The special tokens of a tokenizer directory as transformers loads them: the fields of
    /// `tokenizer_config.json`, and for names it leaves unset those of the legacy
    /// `special_tokens_map.json`. Each value is a string, `{"content": ...}` or `null`.
    ///
    /// # Errors
    ///
    /// A file that exists but is not JSON, or a field of another type (naming file and field).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut tokens = Self::default();
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = dir.join(file);
            if let Some(obj) = read_json_object(&path)? {
                tokens = tokens.or(&Self::from_object(&path, &obj)?);
            }
        }
        Ok(tokens)
    }

    fn from_object(path: &Path, obj: &serde_json::Map<String, Value>) -> Result<Self> {
        let mut tokens = Self::default();
        for name in SPECIAL_TOKEN_NAMES {
            let token = match obj.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    _ => {
                        return Err(field_error(
                            path,
                            name,
                            "an object without a string `content`",
                        ))
                    }
                },
                Some(_) => {
                    return Err(field_error(
                        path,
                        name,
                        "expected a string, an {\"content\": ..} object or null",
                    ))
                }
            };
            tokens.0.insert(name.to_string(), token);
        }
        Ok(tokens)
    }
}

pub(crate) fn field_error(path: &Path, field: &str, reason: &str) -> LlamaError {
    LlamaError::ConfigFile {
        path: path.to_path_buf(),
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// The top-level object of a JSON file, `None` when the file does not exist.
pub(crate) fn read_json_object(path: &Path) -> Result<Option<serde_json::Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LlamaError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(obj)) => Ok(Some(obj)),
        Ok(_) => Err(LlamaError::InvalidArgument(format!(
            "{}: expected a JSON object",
            path.display()
        ))),
        Err(source) => Err(LlamaError::Json {
            path: path.to_path_buf(),
            source,
        }),
    }
}
