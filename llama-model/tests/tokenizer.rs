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
        // Meta's tokenizer_config.json holds the original Llama-3-instruct template.
        assert!(tok
            .template()
            .unwrap()
            .origin()
            .ends_with("tokenizer_config.json field `chat_template`"));
        assert_eq!(tok.stop_ids(), vec![128009, 128001]);
        check(&tok, &expected()["llama3"]);
    }
}

#[test]
fn llama2_tokenizer_and_template_match_transformers() {
    if let Some(tok) = real("llama2") {
        // This tokenizer_config.json has no template: the choice is explicit.
        assert!(tok.template().is_none());
        let e = tok.apply_chat_template(
            &messages(&expected()["llama2"]["chat"][0]["messages"]),
            true,
        );
        assert!(e.unwrap_err().to_string().contains("no chat template"));
        let tok = tok.with_template(ChatTemplate::llama2());
        check(&tok, &expected()["llama2"]);
    }
}

/// `train_bpe` gives its tokenizers the pre-tokenizer of Meta's Llama-3 `tokenizer.json`
/// (the same JSON object) and it cuts text where the Python tokenizers library cuts it with the
/// real file (tools/fixtures/llama/gen_pretokenize.py): line breaks stay together with the
/// punctuation before them, digits go in groups of three.
#[test]
fn trained_tokenizer_pre_tokenizes_like_llama3() {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
    let text = std::fs::read_to_string(root().join("tools/fixtures/llama/llama3_pretokenize.json"))
        .unwrap();
    let exp: Value = serde_json::from_str(&text).unwrap();
    let corpus = vec!["Dear colleague,\n\nwe gave 60 Gy in 30 fractions.\n\nYours sincerely"; 20];
    let tok = llama_model::train_bpe(
        corpus.iter(),
        &llama_model::BpeTrainingConfig::with_vocab_size(300),
    )
    .unwrap();
    let pre = tok.inner().get_pre_tokenizer().unwrap();
    assert_eq!(serde_json::to_value(pre).unwrap(), exp["pre_tokenizer"]);
    let cases = exp["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let mut pts = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut pts).unwrap();
        let got: Vec<Value> = pts
            .get_splits(OffsetReferential::Original, OffsetType::Char)
            .into_iter()
            .map(|(piece, (a, b), _)| serde_json::json!([piece, [a, b]]))
            .collect();
        assert_eq!(Value::Array(got), case["pieces"], "{text:?}");
    }
    // What it changes for letters: ",\n\n" becomes one token, where GPT-2's split gives
    // ",", "\n", "\n" (and a model has to count the line breaks).
    let ids = tok.encode("Dear colleague,\n\nwe", false).unwrap();
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tok.inner().id_to_token(i).unwrap())
        .collect();
    assert!(pieces.iter().any(|p| p == ",ĊĊ"), "{pieces:?}");
    assert!(!pieces.iter().any(|p| p == "Ċ" || p == ","), "{pieces:?}");
}
