//! Chat templates: the Jinja `chat_template` a checkpoint ships, rendered the way
//! transformers' `apply_chat_template` renders it, so that prompt ids equal transformers'.
//!
//! - [`template`]: [`ChatTemplate`] (compile, [`render`](ChatTemplate::render) with
//!   [`RenderOptions`]) and the two built-in fallbacks, Llama-2-chat and Llama-3-instruct.
//! - [`files`]: a checkpoint's own template ([`ChatTemplate::from_dir`]:
//!   `chat_template.jinja`, or `tokenizer_config.json`'s `chat_template`).
//! - [`special`]: [`SpecialTokens`] (`bos_token`, `eos_token`, ...) passed to templates.
//! - [`message`]: [`ChatMessage`], [`Role`], [`read_messages`] (a conversation file).
//! - [`end_of_turn`]: the token a template ends the model's turn with.
//! - [`engine`]: the Jinja environment (transformers' globals and filters on minijinja);
//!   [`python`]: Python's `str()`, `strip()` and `json.dumps`; [`clock`]: `strftime_now`.

pub mod clock;
pub mod end_of_turn;
pub mod engine;
pub mod files;
pub mod message;
pub mod python;
pub mod special;
pub mod template;

pub use files::{CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_FILE};
pub use message::{read_messages, ChatMessage, Role};
pub use special::{SpecialTokens, SPECIAL_TOKEN_NAMES};
pub use template::{ChatTemplate, RenderOptions};
