//! Chat templates against transformers 5.23's `apply_chat_template`
//! (tools/fixtures/chat_templates/gen.py): the rendered text of 11 template families
//! (Llama-2-chat, Llama-3/3.1/3.2, Mistral-instruct v0.1/v0.2/v0.3/Nemo, SmolLM2, Qwen2.5,
//! Qwen3) for 24 conversations each, refusals included, from committed fixtures; the prompt
//! ids with the real tokenizers of tools/fetch_tokenizers.sh (skipped with a message when
//! they are absent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use llama_model::{ChatMessage, ChatTemplate, LlamaTokenizer, RenderOptions, SpecialTokens};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    root().join("tools/fixtures/chat_templates")
}

struct Fixture {
    json: Value,
}

impl Fixture {
    fn load() -> Self {
        let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
        Self {
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    fn families(&self) -> &Vec<Value> {
        self.json["families"].as_array().unwrap()
    }

    fn family(&self, name: &str) -> &Value {
        self.families().iter().find(|f| f["name"] == name).unwrap()
    }

    fn template(&self, name: &str) -> ChatTemplate {
        let file = self.family(name)["file"].as_str().unwrap();
        ChatTemplate::from_file(&fixtures().join("templates").join(file)).unwrap()
    }

    fn special(&self, name: &str) -> SpecialTokens {
        let mut s = SpecialTokens::new();
        for (k, v) in self.family(name)["special_tokens"].as_object().unwrap() {
            s = s.with(k, v.as_str().unwrap());
        }
        s
    }

    fn messages(&self, case: &Value) -> Vec<ChatMessage> {
        let conv = &self.json["conversations"][case["conversation"].as_str().unwrap()];
        serde_json::from_value(conv.clone()).unwrap()
    }

    fn options(&self, case: &Value) -> RenderOptions {
        let variables: BTreeMap<String, Value> = case["kwargs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        RenderOptions {
            add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap(),
            continue_final_message: case["continue_final_message"].as_bool().unwrap(),
            variables,
            now: Some(self.json["clock"]["unix"].as_i64().unwrap()),
        }
    }

    fn cases(&self) -> &Vec<Value> {
        self.json["cases"].as_array().unwrap()
    }
}

fn label(case: &Value) -> String {
    format!(
        "{} / {} / add_generation_prompt={} continue_final_message={} kwargs={}",
        case["family"],
        case["conversation"],
        case["add_generation_prompt"],
        case["continue_final_message"],
        case["kwargs"]
    )
}

/// A refusal must be ours too, and a template's `raise_exception` message must come through.
fn check_refusal(case: &Value, got: llama_model::Result<String>) {
    let expected = case["error"].as_str().unwrap();
    let err = match got {
        Ok(text) => panic!(
            "{}: transformers refuses ({expected}), we rendered {text:?}",
            label(case)
        ),
        Err(e) => e.to_string(),
    };
    if let Some(message) = expected.strip_prefix("TemplateError: ") {
        assert!(err.contains(message), "{}: {err}", label(case));
        assert!(err.contains("refused the conversation"), "{err}");
    }
}

#[test]
fn every_family_renders_as_transformers() {
    let fx = Fixture::load();
    let mut rendered = 0;
    for case in fx.cases() {
        let family = case["family"].as_str().unwrap();
        let got =
            fx.template(family)
                .render(&fx.messages(case), &fx.special(family), &fx.options(case));
        match case["rendered"].as_str() {
            Some(want) => {
                let got = got.unwrap_or_else(|e| panic!("{}: {e}", label(case)));
                assert_eq!(got, want, "{}", label(case));
                rendered += 1;
            }
            None => check_refusal(case, got),
        }
    }
    assert!(
        fx.families().len() >= 11 && rendered >= 240,
        "{rendered} renderings"
    );
}

/// The real tokenizer NAME of tools/tokenizers/, read once per test binary.
fn real_tokenizer(name: &str) -> Option<LlamaTokenizer> {
    static CACHE: Mutex<BTreeMap<String, Option<LlamaTokenizer>>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap();
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let path = root().join(format!("tools/tokenizers/{name}/tokenizer.json"));
            if !path.exists() {
                eprintln!(
                    "SKIPPED: {} is absent; run tools/fetch_tokenizers.sh to compare prompt ids",
                    path.display()
                );
                return None;
            }
            Some(LlamaTokenizer::from_file(path).unwrap())
        })
        .clone()
}

#[test]
fn prompt_ids_equal_transformers_with_the_real_tokenizers() {
    let fx = Fixture::load();
    let mut checked = 0;
    for case in fx.cases() {
        let Some(want) = case["ids"].as_array() else {
            continue;
        };
        let Some(tok) = real_tokenizer(case["tokenizer"].as_str().unwrap()) else {
            return;
        };
        let tok = tok.with_template(fx.template(case["family"].as_str().unwrap()));
        let options = fx.options(case);
        let messages = fx.messages(case);
        let text = tok.render_chat(&messages, &options).unwrap();
        assert_eq!(
            text,
            case["rendered_with_tokenizer"].as_str().unwrap(),
            "{}",
            label(case)
        );
        let ids = tok.encode_chat(&messages, &options).unwrap();
        let want: Vec<u32> = want.iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, want, "{}", label(case));
        checked += 1;
    }
    assert!(checked >= 240, "{checked} id lists compared");
}

/// Ids with the committed tiny tokenizer (special tokens `<s>`, `</s>`, `<pad>`): every
/// family's prompt ids are checked without any download.
#[test]
fn prompt_ids_equal_transformers_with_the_committed_tiny_tokenizer() {
    let fx = Fixture::load();
    let mut special = SpecialTokens::new();
    for (k, v) in fx.json["tiny_special_tokens"].as_object().unwrap() {
        special = special.with(k, v.as_str().unwrap());
    }
    let tiny = LlamaTokenizer::from_file(root().join("tools/fixtures/llama/tiny_tokenizer.json"))
        .unwrap()
        .with_special_tokens(special);
    let mut checked = 0;
    for fam in fx.families() {
        let name = fam["name"].as_str().unwrap();
        let tok = tiny.clone().with_template(fx.template(name));
        for case in fx.cases().iter().filter(|c| c["family"] == name) {
            let got = tok.encode_chat(&fx.messages(case), &fx.options(case));
            match case["tiny_ids"].as_array() {
                Some(want) => {
                    let want: Vec<u32> = want.iter().map(|v| v.as_u64().unwrap() as u32).collect();
                    assert_eq!(got.unwrap(), want, "{}", label(case));
                    checked += 1;
                }
                None => assert!(got.is_err(), "{}", label(case)),
            }
        }
    }
    assert!(checked >= 240, "{checked}");
}

#[test]
fn end_of_turn_is_found_by_rendering() {
    let fx = Fixture::load();
    for fam in fx.families() {
        let name = fam["name"].as_str().unwrap();
        let eot = fam["end_of_turn"].as_str().unwrap();
        // Candidates as a vocabulary lists them: the family's tokens and look-alikes.
        let mut added = vec![
            "<|im_start|>",
            "[INST]",
            "[/INST]",
            "<|start_header_id|>",
            "<|end_of_text|>",
            "<s>",
            "</s>",
            "<|eot_id|>",
            "<|im_end|>",
        ];
        added.retain(|t| *t != "</s>" || eot == "</s>");
        let got = fx.template(name).end_of_turn(&fx.special(name), &added);
        assert_eq!(got, Some(eot), "{name}");
        if let Some(tok) = real_tokenizer(fam["tokenizer"].as_str().unwrap()) {
            let tok = tok.with_template(fx.template(name));
            assert_eq!(tok.end_of_turn_id(), tok.token_to_id(eot), "{name}");
        }
    }
}

#[test]
fn builtin_fallbacks_are_the_official_templates() {
    let fx = Fixture::load();
    assert_eq!(
        ChatTemplate::llama2().source(),
        fx.template("llama2-chat").source()
    );
    assert_eq!(
        ChatTemplate::llama3().source(),
        fx.template("llama3-instruct").source()
    );
    // Their default special tokens render like the checkpoints' own configs.
    for (t, family) in [
        (ChatTemplate::llama2(), "llama2-chat"),
        (ChatTemplate::llama3(), "llama3-instruct"),
    ] {
        for case in fx
            .cases()
            .iter()
            .filter(|c| c["family"] == family && c["rendered"].is_string())
        {
            let got = t
                .render(&fx.messages(case), &SpecialTokens::new(), &fx.options(case))
                .unwrap();
            assert_eq!(got, case["rendered"].as_str().unwrap(), "{}", label(case));
        }
    }
}

#[test]
fn a_checkpoint_directory_supplies_its_template_and_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(
        &config,
        r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
            "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]}"#,
    )
    .unwrap();
    let special = SpecialTokens::from_dir(dir.path()).unwrap();
    assert_eq!(special.get("bos_token"), Some("<s>"));
    assert_eq!(special.get("pad_token"), None);
    let t = ChatTemplate::from_dir(dir.path()).unwrap().unwrap();
    let user = [ChatMessage::new(llama_model::Role::User, "x")];
    assert_eq!(
        t.render(&user, &special, &RenderOptions::default())
            .unwrap(),
        "<s>D</s>"
    );
    // chat_template.jinja wins over the config field, as in transformers 5.
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "J{{ messages[0].content }}\n",
    )
    .unwrap();
    let t = ChatTemplate::from_dir(dir.path()).unwrap().unwrap();
    assert_eq!(
        t.render(&user, &special, &RenderOptions::default())
            .unwrap(),
        "Jx"
    );
    // A template that does not compile names the file and the field.
    std::fs::remove_file(dir.path().join("chat_template.jinja")).unwrap();
    std::fs::write(
        &config,
        r#"{"chat_template": "{% for m in messages %}{{ m.content }"}"#,
    )
    .unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer_config.json field `chat_template`: does not compile"),
        "{e}"
    );
    std::fs::write(
        &config,
        r#"{"chat_template": [{"name": "tool_use", "template": "T"}]}"#,
    )
    .unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("config field `chat_template`") && e.contains("default"),
        "{e}"
    );
    std::fs::write(&config, r#"{"bos_token": 5}"#).unwrap();
    let e = SpecialTokens::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer_config.json: config field `bos_token`"),
        "{e}"
    );
}

#[test]
fn a_template_error_at_render_time_names_the_origin_and_line() {
    let t = ChatTemplate::from_source("line one\n{{ messages[0].missing.deeper }}", "my.jinja")
        .unwrap();
    let user = [ChatMessage::new(llama_model::Role::User, "x")];
    let e = t
        .render(&user, &SpecialTokens::new(), &RenderOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("my.jinja: failed to render:") && e.contains("line 2"),
        "{e}"
    );
}
