//! `--chat-template` of `generate` and `finetune`: the checkpoint's own template (`auto`, an
//! error when it has none), a built-in one chosen explicitly (`llama2`, `llama3`), a `.jinja`
//! file, or (finetune only) `none`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use llama_model::{ChatTemplate, LlamaTokenizer};

/// The value of `--chat-template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplateArg {
    /// The checkpoint's own template (`chat_template.jinja` or `tokenizer_config.json`'s
    /// `chat_template` beside the tokenizer); an error when it has none.
    Auto,
    /// The built-in Llama-2-chat template (`<s>[INST] <<SYS>>…<</SYS>> … [/INST]`).
    Llama2,
    /// The built-in Llama-3-instruct template (`<|start_header_id|>…<|eot_id|>`).
    Llama3,
    /// No chat template: the plain prompt (finetune only).
    None,
    /// A Jinja template file.
    File(PathBuf),
}

impl FromStr for ChatTemplateArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "llama2" => Self::Llama2,
            "llama3" => Self::Llama3,
            "none" => Self::None,
            "" => return Err("expected auto, llama2, llama3, none or a .jinja file".into()),
            path => Self::File(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for ChatTemplateArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Llama2 => f.write_str("llama2"),
            Self::Llama3 => f.write_str("llama3"),
            Self::None => f.write_str("none"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `tok` with the template `--chat-template` chooses (`tokenizer` names its file in errors).
///
/// # Errors
///
/// `auto` on a tokenizer without a template (naming the two places looked at and the
/// explicit choices), an unreadable or invalid `.jinja` file, or `none` (the caller handles
/// the plain prompt before asking for a template).
pub fn apply(
    tok: LlamaTokenizer,
    arg: &ChatTemplateArg,
    tokenizer: &std::path::Path,
) -> Result<LlamaTokenizer> {
    Ok(match arg {
        ChatTemplateArg::Auto => {
            if tok.template().is_none() {
                let dir = tokenizer
                    .parent()
                    .unwrap_or_else(|| std::path::Path::new("."));
                bail!(
                    "--chat-template auto: {} has no chat template (no {} and no `chat_template` \
                     field in {}); choose one explicitly: --chat-template llama2, llama3 or \
                     PATH.jinja",
                    tokenizer.display(),
                    dir.join(llama_model::chat_template::CHAT_TEMPLATE_FILE)
                        .display(),
                    dir.join(llama_model::chat_template::TOKENIZER_CONFIG_FILE)
                        .display(),
                );
            }
            tok
        }
        ChatTemplateArg::Llama2 => tok.with_template(ChatTemplate::llama2()),
        ChatTemplateArg::Llama3 => tok.with_template(ChatTemplate::llama3()),
        ChatTemplateArg::File(path) => tok.with_template(
            ChatTemplate::from_file(path)
                .with_context(|| format!("--chat-template {}", path.display()))?,
        ),
        ChatTemplateArg::None => bail!("--chat-template none: no template to render a chat with"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_paths() {
        assert_eq!("auto".parse(), Ok(ChatTemplateArg::Auto));
        assert_eq!("llama3".parse(), Ok(ChatTemplateArg::Llama3));
        assert_eq!(
            "t/chat.jinja".parse(),
            Ok(ChatTemplateArg::File("t/chat.jinja".into()))
        );
        assert!("".parse::<ChatTemplateArg>().is_err());
        assert_eq!(
            ChatTemplateArg::File("a.jinja".into()).to_string(),
            "a.jinja"
        );
    }
}
