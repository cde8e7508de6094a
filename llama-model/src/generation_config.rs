//! `generation_config.json`: the token ids transformers' `generate` stops at.

use std::path::Path;

use serde::Deserialize;

use crate::chat_template::special::read_json_object;
use crate::config::TokenIdOrList;
use crate::error::{LlamaError, Result};

/// The fields of a checkpoint's `generation_config.json` this crate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HfGenerationConfig {
    /// `bos_token_id`.
    #[serde(default)]
    pub bos_token_id: Option<TokenIdOrList>,
    /// `eos_token_id`: one id or a list (Llama-3.1: `[128001, 128008, 128009]`).
    #[serde(default)]
    pub eos_token_id: Option<TokenIdOrList>,
    /// `pad_token_id`.
    #[serde(default)]
    pub pad_token_id: Option<TokenIdOrList>,
}

impl HfGenerationConfig {
    /// The file name.
    pub const FILE: &'static str = "generation_config.json";

    /// Reads `DIR/generation_config.json`; `None` when the checkpoint has none.
    ///
    /// # Errors
    ///
    /// A file that is not JSON, or a field of another type (naming file and field).
    ///
    /// # Example
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("generation_config.json"), r#"{"eos_token_id": [1, 9]}"#).unwrap();
    /// let g = llama_model::HfGenerationConfig::from_dir(dir.path()).unwrap().unwrap();
    /// assert_eq!(g.eos_token_ids(), vec![1, 9]);
    /// ```
    pub fn from_dir(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(Self::FILE);
        let Some(obj) = read_json_object(&path)? else {
            return Ok(None);
        };
        let mut out = Self::default();
        for (field, slot) in [
            ("bos_token_id", &mut out.bos_token_id),
            ("eos_token_id", &mut out.eos_token_id),
            ("pad_token_id", &mut out.pad_token_id),
        ] {
            if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
                *slot = Some(serde_json::from_value(v.clone()).map_err(|e| {
                    LlamaError::ConfigFile {
                        path: path.clone(),
                        field: field.to_string(),
                        reason: format!("expected a token id or a list of them: {e}"),
                    }
                })?);
            }
        }
        Ok(Some(out))
    }

    /// The EOS ids (empty when unset).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(TokenIdOrList::to_vec)
            .unwrap_or_default()
    }
}
