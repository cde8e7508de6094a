//! Prompt templates of the four tasks, as plain text and as chat messages.
//!
//! The tokenizer-level chat template (Llama-2 `[INST]`, Llama-3 headers) lives in
//! `llama-model`; here a prompt is a system instruction and a user message.

use serde::{Deserialize, Serialize};

use crate::task::{Language, TaskKind};

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system instruction.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One chat message, serialized as `{"role": "user", "content": ".."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// A task prompt: instruction and input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The instruction (system message).
    pub system: String,
    /// The case text (user message).
    pub user: String,
}

impl Prompt {
    /// Build the prompt of `task` for one input text.
    ///
    /// ```
    /// use ro_tasks::{Prompt, TaskKind, Language};
    /// let p = Prompt::new(TaskKind::Modality, "Medulloblastoma, 6-year-old boy.", Language::En);
    /// assert!(p.plain().ends_with("Answer:"));
    /// assert_eq!(p.messages().len(), 2);
    /// ```
    pub fn new(task: TaskKind, input: &str, language: Language) -> Prompt {
        Prompt {
            system: instruction(task, language).to_string(),
            user: input.trim().to_string(),
        }
    }

    /// Plain-text form: instruction, blank line, input, blank line, `Answer:` (`Antwort:`).
    pub fn plain(&self) -> String {
        let cue = if self.system.starts_with("Du ") {
            "Antwort:"
        } else {
            "Answer:"
        };
        format!("{}\n\n{}\n\n{}", self.system, self.user, cue)
    }

    /// Chat form: a system and a user message.
    pub fn messages(&self) -> Vec<ChatMessage> {
        vec![
            ChatMessage {
                role: Role::System,
                content: self.system.clone(),
            },
            ChatMessage {
                role: Role::User,
                content: self.user.clone(),
            },
        ]
    }

    /// Chat form with the reference answer appended as the assistant turn (for fine-tuning).
    pub fn messages_with_answer(&self, answer: &str) -> Vec<ChatMessage> {
        let mut m = self.messages();
        m.push(ChatMessage {
            role: Role::Assistant,
            content: answer.to_string(),
        });
        m
    }
}

/// The instruction of a task in a language.
pub fn instruction(task: TaskKind, language: Language) -> &'static str {
    match (task, language) {
        (TaskKind::Letters, Language::En) => "You are a radiation oncologist. Write a concise letter to the referring physician summarising the radiotherapy described in the following report.",
        (TaskKind::Letters, Language::De) => "Du bist Strahlentherapeut. Schreibe einen kurzen Arztbrief an den zuweisenden Arzt, der die im folgenden Bericht beschriebene Strahlentherapie zusammenfasst.",
        (TaskKind::Regimen, Language::En) => "You are a radiation oncologist. Recommend the radiotherapy regimen (total dose, fractions, technique, target, concurrent therapy) for the following case. Answer in one line.",
        (TaskKind::Regimen, Language::De) => "Du bist Strahlentherapeut. Empfiehl das Bestrahlungsschema (Gesamtdosis, Fraktionen, Technik, Zielvolumen, simultane Therapie) für den folgenden Fall. Antworte in einer Zeile.",
        (TaskKind::Modality, Language::En) => "You are a radiation oncologist. Which treatment modality fits the following case: photon, proton, electron or brachytherapy? Answer with one word.",
        (TaskKind::Modality, Language::De) => "Du bist Strahlentherapeut. Welche Modalität passt zum folgenden Fall: photon, proton, electron oder brachytherapy? Antworte mit einem Wort.",
        (TaskKind::Icd10, Language::En) => "You are a medical coder. Give the ICD-10 code of the main diagnosis of the following case. Answer with the code only.",
        (TaskKind::Icd10, Language::De) => "Du bist medizinischer Kodierer. Gib den ICD-10-Code der Hauptdiagnose des folgenden Falls an. Antworte nur mit dem Code.",
    }
}
