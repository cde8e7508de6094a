//! Finding a checkpoint's own chat template on disk, where transformers 5 looks:
//! `chat_template.jinja` first, else the `chat_template` field of `tokenizer_config.json`
//! (a string, or a list of `{"name", "template"}` of which `default` is used).

use std::path::Path;

use serde_json::Value;

use super::special::{field_error, read_json_object};
use super::template::ChatTemplate;
use crate::error::Result;

/// The file transformers 5 saves a checkpoint's template in.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// The tokenizer config that holds the template in older checkpoints.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

impl ChatTemplate {
    /// The chat template of a tokenizer/checkpoint directory, `None` when it has none.
    ///
    /// # Errors
    ///
    /// A template file or field that cannot be read or does not compile, or a `chat_template`
    /// field of another type or without a `default` entry, naming the file and field.
    ///
    /// # Example
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(llama_model::ChatTemplate::from_dir(dir.path()).unwrap().is_none());
    /// std::fs::write(
    ///     dir.path().join("tokenizer_config.json"),
    ///     r#"{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}"#,
    /// )
    /// .unwrap();
    /// let t = llama_model::ChatTemplate::from_dir(dir.path()).unwrap().unwrap();
    /// assert!(t.origin().ends_with("tokenizer_config.json field `chat_template`"));
    /// ```
    pub fn from_dir(dir: &Path) -> Result<Option<Self>> {
        let jinja = dir.join(CHAT_TEMPLATE_FILE);
        if jinja.is_file() {
            return Self::from_file(&jinja).map(Some);
        }
        let path = dir.join(TOKENIZER_CONFIG_FILE);
        let Some(config) = read_json_object(&path)? else {
            return Ok(None);
        };
        let origin = |field: &str| format!("{} field `{field}`", path.display());
        match config.get("chat_template") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                Self::from_source(s.clone(), origin("chat_template")).map(Some)
            }
            Some(Value::Array(list)) => {
                let default = list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"));
                match default.and_then(|t| t.get("template")).and_then(Value::as_str) {
                    Some(s) => Self::from_source(s, origin("chat_template[default]")).map(Some),
                    None => Err(field_error(
                        &path,
                        "chat_template",
                        "a list of named templates without a `default` one; pass the template to use as a .jinja file",
                    )),
                }
            }
            Some(_) => Err(field_error(
                &path,
                "chat_template",
                "expected a string or a list of {\"name\", \"template\"}",
            )),
        }
    }
}
