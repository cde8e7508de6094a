//! `generate --messages` / `--chat` with a checkpoint's own Jinja chat template, end to end:
//! prompt ids equal transformers' `apply_chat_template` (tools/fixtures/chat_templates, the
//! committed tiny tokenizer), stop ids from generation_config.json, and one clear error for a
//! checkpoint without a template, a template that does not render, or a bad messages file.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::fixtures;

fn generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(args)
        .output()
        .unwrap()
}

fn expected() -> Value {
    let path = fixtures().join("chat_templates/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn template_text(family: &str) -> String {
    let path = fixtures().join(format!("chat_templates/templates/{family}.jinja"));
    std::fs::read_to_string(path).unwrap()
}

/// A checkpoint directory: the tiny llama2 fixture model (vocabulary 320), the committed tiny
/// tokenizer (300 tokens) and a tokenizer_config.json with the fixture's special tokens and,
/// when given, `chat_template`.
fn checkpoint(template: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("llama/llama2");
    for f in ["config.json", "model.safetensors", "generation_config.json"] {
        std::fs::copy(model.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        fixtures().join("llama/tiny_tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let mut config = expected()["tiny_special_tokens"].clone();
    if let Some(t) = template {
        config["chat_template"] = Value::from(t);
    }
    write(
        &dir.path().join("tokenizer_config.json"),
        &config.to_string(),
    );
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn ok_line(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn case<'a>(exp: &'a Value, family: &str, conv: &str, agp: bool) -> &'a Value {
    exp["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["family"] == family
                && c["conversation"] == conv
                && c["add_generation_prompt"] == agp
                && c["kwargs"].as_object().unwrap().is_empty()
                && c["continue_final_message"] == false
        })
        .unwrap()
}

/// `--messages FILE --max-new-tokens 0` prints transformers' prompt ids, with and without the
/// generation prompt, for a ChatML (SmolLM2), a Llama-3 and a Mistral template, read from the
/// checkpoint's tokenizer_config.json (and from chat_template.jinja, which wins).
#[test]
fn messages_are_rendered_with_the_checkpoints_own_template() {
    let exp = expected();
    let tmp = tempfile::tempdir().unwrap();
    for family in ["smollm2-instruct", "llama3.1-instruct", "mistral-v0.3"] {
        let dir = checkpoint(Some(&template_text(family)));
        for conv in ["multi_turn", "finished"] {
            let messages = tmp.path().join(format!("{conv}.json"));
            write(&messages, &exp["conversations"][conv].to_string());
            for agp in [true, false] {
                let want = &case(&exp, family, conv, agp)["tiny_ids"];
                let mut args = vec![
                    "--model",
                    dir.path().to_str().unwrap(),
                    "--messages",
                    messages.to_str().unwrap(),
                    "--max-new-tokens",
                    "0",
                ];
                if !agp {
                    args.push("--no-generation-prompt");
                }
                let line = ok_line(&generate(&args));
                assert_eq!(ids(&line["prompt_ids"]), ids(want), "{family} {conv} {agp}");
                assert_eq!(line["token_ids"], serde_json::json!([]));
            }
        }
    }
    // chat_template.jinja beside the tokenizer wins over tokenizer_config.json's field.
    let dir = checkpoint(Some("not what is used"));
    write(
        &dir.path().join("chat_template.jinja"),
        &template_text("smollm2-instruct"),
    );
    let messages = tmp.path().join("m.json");
    write(&messages, &exp["conversations"]["multi_turn"].to_string());
    let line = ok_line(&generate(&[
        "--model",
        dir.path().to_str().unwrap(),
        "--messages",
        messages.to_str().unwrap(),
        "--max-new-tokens",
        "0",
    ]));
    let want = &case(&exp, "smollm2-instruct", "multi_turn", true)["tiny_ids"];
    assert_eq!(ids(&line["prompt_ids"]), ids(want));
}

/// `--chat --prompt` is one user message; the checkpoint generates with it, and
/// generation_config.json's eos_token_id list (here every id) stops generation.
#[test]
fn chat_prompts_generate_and_stop_at_generation_config_ids() {
    let exp = expected();
    let dir = checkpoint(Some(&template_text("llama3-instruct")));
    let prompt = exp["conversations"]["user"][0]["content"].as_str().unwrap();
    let run = || {
        ok_line(&generate(&[
            "--model",
            dir.path().to_str().unwrap(),
            "--chat",
            "--prompt",
            prompt,
            "--greedy",
            "--max-new-tokens",
            "6",
        ]))
    };
    // config.json names eos 2; the fixture's generation_config.json too. Without a stop the
    // random model writes 6 tokens (unless it picks id 2).
    let free = run();
    let want = &case(&exp, "llama3-instruct", "user", true)["tiny_ids"];
    assert_eq!(ids(&free["prompt_ids"]), ids(want));
    let generated = ids(&free["token_ids"]);
    assert!(!generated.is_empty());
    // Every id listed as EOS in generation_config.json: one token, then stop.
    let all: Vec<u32> = (0..320).collect();
    write(
        &dir.path().join("generation_config.json"),
        &serde_json::json!({"eos_token_id": all}).to_string(),
    );
    let stopped = run();
    assert_eq!(ids(&stopped["token_ids"]), generated[..1].to_vec());
}

fn assert_fails(out: &Output, needles: &[&str]) {
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in {err}");
    }
}

#[test]
fn a_checkpoint_without_a_template_needs_an_explicit_choice() {
    let dir = checkpoint(None);
    let d = dir.path().to_str().unwrap();
    let out = generate(&[
        "--model",
        d,
        "--chat",
        "--prompt",
        "hi",
        "--max-new-tokens",
        "0",
    ]);
    assert_fails(
        &out,
        &[
            "--chat-template auto",
            "has no chat template",
            "tokenizer_config.json",
            "llama2, llama3 or PATH.jinja",
        ],
    );
    // The explicit choices work: a built-in template (Meta's Llama-2-chat text, so
    // transformers' ids for that family), or a .jinja file.
    let exp = expected();
    let prompt = exp["conversations"]["user"][0]["content"].as_str().unwrap();
    let file = dir.path().join("mine.jinja");
    write(&file, "{% for m in messages %}{{ m.content }}{% endfor %}");
    let tiny = llama_model::LlamaTokenizer::from_file(fixtures().join("llama/tiny_tokenizer.json"))
        .unwrap();
    let plain: Vec<u64> = tiny
        .encode(prompt, false)
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect();
    for (choice, want) in [
        (
            "llama2",
            ids(&case(&exp, "llama2-chat", "user", true)["tiny_ids"]),
        ),
        (file.to_str().unwrap(), plain),
    ] {
        let line = ok_line(&generate(&[
            "--model",
            d,
            "--chat",
            "--prompt",
            prompt,
            "--chat-template",
            choice,
            "--max-new-tokens",
            "0",
        ]));
        assert_eq!(ids(&line["prompt_ids"]), want, "{choice}");
    }
}

#[test]
fn bad_templates_and_messages_fail_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let messages = tmp.path().join("m.json");
    // A template that does not compile: file and field.
    let dir = checkpoint(Some("{% for m in messages %}{{ m.content }"));
    let d = dir.path().to_str().unwrap().to_string();
    write(&messages, r#"[{"role": "user", "content": "hi"}]"#);
    let m = messages.to_str().unwrap().to_string();
    let out = generate(&["--model", &d, "--messages", &m, "--max-new-tokens", "0"]);
    assert_fails(
        &out,
        &[
            "tokenizer_config.json field `chat_template`",
            "does not compile",
        ],
    );
    // A template's raise_exception (Mistral: roles must alternate).
    let dir = checkpoint(Some(&template_text("mistral-v0.2")));
    let d = dir.path().to_str().unwrap().to_string();
    write(
        &messages,
        r#"[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]"#,
    );
    let out = generate(&["--model", &d, "--messages", &m, "--max-new-tokens", "0"]);
    assert_fails(
        &out,
        &[
            "tokenizer_config.json field `chat_template`",
            "refused the conversation",
            "must alternate",
        ],
    );
    // Messages files: bad role, missing field, not a list, empty.
    for (text, needle) in [
        (
            r#"[{"role": "robot", "content": "x"}]"#,
            "message 0: field `role`",
        ),
        (
            r#"[{"role": "user"}]"#,
            "message 0: field `content`: missing",
        ),
        (r#"{"role": "user", "content": "x"}"#, "invalid JSON"),
        ("[]", "the conversation is empty"),
    ] {
        write(&messages, text);
        let out = generate(&["--model", &d, "--messages", &m, "--max-new-tokens", "0"]);
        assert_fails(&out, &[needle, "m.json"]);
    }
    let missing = tmp.path().join("nope.jinja");
    let out = generate(&[
        "--model",
        &d,
        "--chat",
        "--prompt",
        "x",
        "--chat-template",
        missing.to_str().unwrap(),
    ]);
    assert_fails(&out, &["--chat-template", "nope.jinja"]);
    let out = generate(&["--model", &d, "--prompt", "x", "--no-generation-prompt"]);
    assert_fails(
        &out,
        &["--no-generation-prompt: only with --chat or --messages"],
    );
}
