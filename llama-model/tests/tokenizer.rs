//! Encode/decode and chat templates against transformers' ids
//! (tools/fixtures/llama/gen_tokenizer.py). The tiny custom tokenizer is committed; the real
//! Llama-3 and Llama-2 files come from tools/fetch_tokenizers.sh and their tests are skipped
//! with a message when absent.

use std::path::{Path, PathBuf};

use llama_model::{ChatMessage, ChatTemplate, LlamaTokenizer, Role};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(root().join("tools/fixtures/llama/tokenizer_expected.json"))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn messages(v: &Value) -> Vec<ChatMessage> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            };
            ChatMessage::new(role, m["content"].as_str().unwrap())
        })
        .collect()
}

fn check(tok: &LlamaTokenizer, exp: &Value) {
    for case in exp["encode"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids(&case["ids"]),
            "{text:?}"
        );
        let plain = tok.encode(text, false).unwrap();
        assert_eq!(plain, ids(&case["ids_plain"]), "{text:?}");
        assert_eq!(
            tok.decode(&plain, true).unwrap(),
            case["decoded"].as_str().unwrap(),
            "{text:?}"
        );
    }
    for case in exp["chat"].as_array().unwrap() {
        let got = tok
            .apply_chat_template(&messages(&case["messages"]), true)
            .unwrap();
        assert_eq!(got, ids(&case["ids"]), "{:?}", case["messages"]);
    }
}

fn real(name: &str) -> Option<LlamaTokenizer> {
    let path = root().join(format!("tools/tokenizers/{name}/tokenizer.json"));
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} is absent; run tools/fetch_tokenizers.sh to test the real {name} tokenizer",
            path.display()
        );
        return None;
    }
    Some(LlamaTokenizer::from_file(path).unwrap())
}

#[test]
fn tiny_custom_tokenizer_matches_transformers() {
    let tok =
        LlamaTokenizer::from_file(root().join("tools/fixtures/llama/tiny_tokenizer.json")).unwrap();
    check(&tok, &expected()["tiny"]);
}

#[test]
fn llama3_tokenizer_and_template_match_transformers() {
    if let Some(tok) = real("llama3") {
        assert_eq!(tok.template(), &ChatTemplate::Llama3);
        assert_eq!(tok.stop_ids(), vec![128009, 128001]);
        check(&tok, &expected()["llama3"]);
    }
}

#[test]
fn llama2_tokenizer_and_template_match_transformers() {
    if let Some(tok) = real("llama2") {
        assert_eq!(tok.template(), &ChatTemplate::Llama2);
        check(&tok, &expected()["llama2"]);
    }
}
