//! The token a template closes the model's turn with (`<|eot_id|>`, `<|im_end|>`, `</s>`),
//! found by rendering: the first added token of the vocabulary that follows an assistant
//! message's text, after whitespace.

use super::message::{ChatMessage, Role};
use super::python::is_py_space;
use super::special::SpecialTokens;
use super::template::{ChatTemplate, RenderOptions};

/// A text no template changes and no vocabulary holds as one token.
const PROBE: &str = "zqxjprobe";

impl ChatTemplate {
    /// The token that ends an assistant turn in this template, among `added_tokens` (the
    /// tokenizer's added tokens), or `None` when the template writes none after the answer
    /// or refuses both probe conversations (user → assistant, system → user → assistant).
    ///
    /// # Example
    /// ```
    /// use llama_model::{ChatTemplate, SpecialTokens};
    /// let added = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"];
    /// let t = ChatTemplate::llama3();
    /// assert_eq!(t.end_of_turn(&SpecialTokens::new(), &added), Some("<|eot_id|>"));
    /// ```
    pub fn end_of_turn<'a>(
        &self,
        special: &SpecialTokens,
        added_tokens: &[&'a str],
    ) -> Option<&'a str> {
        let probes = [
            vec![
                ChatMessage::new(Role::User, "hi"),
                ChatMessage::new(Role::Assistant, PROBE),
            ],
            vec![
                ChatMessage::new(Role::System, "sys"),
                ChatMessage::new(Role::User, "hi"),
                ChatMessage::new(Role::Assistant, PROBE),
            ],
        ];
        let options = RenderOptions {
            now: Some(0),
            ..RenderOptions::default()
        };
        let rendered = probes
            .iter()
            .find_map(|m| self.render(m, special, &options).ok())?;
        let after = &rendered[rendered.rfind(PROBE)? + PROBE.len()..];
        let after = after.trim_start_matches(is_py_space);
        added_tokens
            .iter()
            .filter(|t| !t.is_empty() && after.starts_with(**t))
            .max_by_key(|t| t.len())
            .copied()
    }
}
