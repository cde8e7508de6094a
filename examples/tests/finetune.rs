//! The `finetune` binary end to end on a tiny random LLaMA with a BPE tokenizer trained on
//! synthetic cases: the loss goes down, the adapter loads, metrics.jsonl has a line per step,
//! an interrupted and resumed run (stopped, or SIGKILLed at random points and during checkpoint
//! writes) equals an uninterrupted one byte for byte, and bad input
//! fails with one message naming file, line and field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use burn_ndarray::NdArray;
use llama_model::{
    load_adapter, load_pretrained, save_pretrained, train_bpe, BpeTrainingConfig, Llama,
    LlamaConfig, LlamaTokenizer, LoadOptions, RandomInit,
};
use ro_tasks::{generate_cases, write_jsonl, SynthConfig, TaskKind};
use serde_json::Value;

type B = NdArray<f32>;

/// A model directory (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
/// chat_template.jinja: a Llama-3-style checkpoint) and task data.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    train: PathBuf,
    eval: PathBuf,
    vocab: usize,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cases = generate_cases(
        &SynthConfig {
            seed: 3,
            german_fraction: 0.0,
        },
        8,
    );
    let examples: Vec<ro_tasks::Example> = cases
        .iter()
        .map(|c| c.example(TaskKind::Modality))
        .collect();
    let corpus: Vec<String> = examples
        .iter()
        .flat_map(|e| [e.input.clone(), e.target.clone()])
        .collect();
    let tok = train_bpe(corpus.iter(), &BpeTrainingConfig::with_vocab_size(384)).unwrap();
    let vocab = tok.vocab_size();
    let mut cfg = LlamaConfig::tiny(vocab);
    cfg.bos_token_ids = vec![tok.token_to_id("<|begin_of_text|>").unwrap()];
    cfg.eos_token_ids = vec![
        tok.token_to_id("<|end_of_text|>").unwrap(),
        tok.token_to_id("<|eot_id|>").unwrap(),
    ];
    let init = RandomInit {
        seed: 11,
        ..RandomInit::default()
    };
    let model = Llama::<B>::random(&cfg, &init, &Default::default()).unwrap();
    let dir = root.join("model");
    save_pretrained(&model, &dir).unwrap();
    tok.save(&dir).unwrap();
    let train = root.join("train.jsonl");
    let eval = root.join("val.jsonl");
    write_jsonl(&train, &examples[..4]).unwrap();
    write_jsonl(&eval, &examples[4..]).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        model: dir,
        train,
        eval,
        vocab,
    }
}

fn finetune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "finetune failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "finetune should have failed");
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(e.trim().lines().count(), 1, "one message: {e}");
    e
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Base arguments: modality task, 4 examples in one batch, all-linear LoRA r 4.
fn base_args<'a>(f: &'a Fixture, out: &'a Path) -> Vec<&'a str> {
    vec![
        "--model",
        s(&f.model),
        "--data",
        s(&f.train),
        "--task",
        "modality",
        "--output",
        s(out),
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--lr",
        "5e-3",
        "--batch-size",
        "2",
        "--grad-accum",
        "2",
        "--quiet",
    ]
}

fn metrics(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn step_lines(m: &[Value]) -> Vec<&Value> {
    m.iter().filter(|v| v.get("loss").is_some()).collect()
}

#[test]
fn training_lowers_the_loss_and_writes_a_peft_adapter() {
    let f = fixture();
    let out = f.root.join("run");
    let mut args = base_args(&f, &out);
    args.extend([
        "--steps",
        "6",
        "--no-shuffle",
        "--lora-dropout",
        "0",
        "--eval",
        s(&f.eval),
        "--eval-every",
        "3",
    ]);
    ok(&finetune(&args));

    let m = metrics(&out);
    let steps = step_lines(&m);
    assert_eq!(steps.len(), 6);
    for (i, v) in steps.iter().enumerate() {
        assert_eq!(v["step"], i as u64 + 1);
        for k in ["loss", "lr", "grad_norm", "tokens_per_s"] {
            assert!(v[k].as_f64().unwrap().is_finite(), "{k}: {v}");
        }
        assert!(v.get("peak_memory_bytes").is_some());
    }
    // Every step sees all four examples (batch 2 x 2 micro-batches, no shuffling).
    let loss: Vec<f64> = steps.iter().map(|v| v["loss"].as_f64().unwrap()).collect();
    assert!(loss[5] < loss[0] - 0.1, "loss did not decrease: {loss:?}");
    let evals: Vec<&Value> = m.iter().filter(|v| v.get("eval_loss").is_some()).collect();
    assert_eq!(evals.len(), 2);
    assert_eq!(evals[0]["step"], 3);
    assert_eq!(evals[1]["step"], 6);
    assert!(evals[1]["eval_tokens"].as_u64().unwrap() > 0);

    // A PEFT adapter directory that loads onto the base, with the flags' settings.
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["lora_alpha"], 8.0);
    assert_eq!(cfg["target_modules"].as_array().unwrap().len(), 7);
    assert_eq!(cfg["peft_type"], "LORA");
    let base =
        load_pretrained::<B>(&f.model, &LoadOptions::default(), &Default::default()).unwrap();
    let adapted = load_adapter(base, &out).unwrap();
    let b = adapted.layers[0]
        .mlp
        .down_proj
        .adapter()
        .unwrap()
        .lora_b
        .val()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(b.iter().any(|&x| x != 0.0), "B never moved");
    assert!(out.join("checkpoint-00000006/trainer_state.json").is_file());

    // Training on from the adapter: --init-adapter takes its r/alpha/targets.
    let out2 = f.root.join("again");
    let mut args = base_args(&f, &out2);
    args.extend(["--steps", "1", "--lora-r", "2", "--init-adapter", s(&out)]);
    ok(&finetune(&args));
    let cfg2: Value =
        serde_json::from_slice(&std::fs::read(out2.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg2["r"], 4);

    // The output directory now holds a run: a fresh run there is refused.
    let mut args = base_args(&f, &out);
    args.extend(["--steps", "1"]);
    assert!(err(&finetune(&args)).contains("already holds a run"));
}

#[test]
fn interrupted_and_resumed_run_equals_an_uninterrupted_one() {
    let f = fixture();
    let common = [
        "--steps",
        "6",
        "--schedule",
        "cosine",
        "--warmup",
        "2",
        "--lora-dropout",
        "0.1",
        "--eval",
        s(&f.eval),
        "--eval-every",
        "2",
        // The length-grouped order resumes exactly too.
        "--group-by-length",
    ];
    let full = f.root.join("full");
    let mut args = base_args(&f, &full);
    args.extend(common);
    ok(&finetune(&args));

    // Stop after 3 steps (checkpoints 2 and 3), then lose checkpoint 3 as if the process
    // died after writing its metrics line: resuming from 2 must drop that line.
    let part = f.root.join("part");
    let mut args = base_args(&f, &part);
    args.extend(common);
    args.extend(["--stop-after", "3", "--save-every", "2"]);
    ok(&finetune(&args));
    assert_eq!(step_lines(&metrics(&part)).len(), 3);
    std::fs::remove_dir_all(part.join("checkpoint-00000003")).unwrap();
    let mut args = base_args(&f, &part);
    args.extend(common);
    args.extend(["--resume", s(&part)]);
    ok(&finetune(&args));

    assert_same_run(&full, &part);
    assert_eq!(metrics(&full).len(), 6 + 3);
}

/// The run in `resumed` ended with the adapter of the uninterrupted run in `full`, byte for
/// byte, and the same metric lines (step, loss, lr, grad_norm, eval loss and tokens).
fn assert_same_run(full: &Path, resumed: &Path) {
    let a = std::fs::read(full.join("adapter_model.safetensors")).unwrap();
    let b = std::fs::read(resumed.join("adapter_model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed adapter differs from the uninterrupted one"
    );
    let (ma, mb) = (metrics(full), metrics(resumed));
    assert_eq!(ma.len(), mb.len(), "{ma:?}\n{mb:?}");
    for (x, y) in ma.iter().zip(&mb) {
        for k in [
            "step",
            "loss",
            "lr",
            "grad_norm",
            "eval_loss",
            "eval_tokens",
        ] {
            assert_eq!(x.get(k), y.get(k), "{k}: {x} vs {y}");
        }
    }
}

/// Every `checkpoint-*` directory under `out` is complete (its three files parse) and so is
/// the final adapter if there is one; returns whether a temporary of a checkpoint or of an
/// atomic file write is present (a kill landed in the middle of a write).
fn check_no_half_written_outputs(out: &Path) -> bool {
    let mut temporary = false;
    for e in std::fs::read_dir(out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            temporary = true;
        }
        if !name.starts_with("checkpoint-") {
            continue;
        }
        let d = e.path();
        let state = std::fs::read(d.join("trainer_state.json"))
            .unwrap_or_else(|e| panic!("{}: no trainer_state.json: {e}", d.display()));
        let state: Value = serde_json::from_slice(&state)
            .unwrap_or_else(|e| panic!("{}: torn trainer_state.json: {e}", d.display()));
        let step: u64 = name["checkpoint-".len()..].parse().unwrap();
        assert_eq!(state["step"].as_u64(), Some(step), "{}", d.display());
        for file in ["adapter.safetensors", "optimizer.safetensors"] {
            let bytes = std::fs::read(d.join(file)).unwrap();
            safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("{}/{file}: torn: {e}", d.display()));
        }
    }
    if let Ok(bytes) = std::fs::read(out.join("adapter_model.safetensors")) {
        safetensors::SafeTensors::deserialize(&bytes).expect("torn final adapter");
    }
    temporary
}

/// Whether a checkpoint is being written in `out` right now.
fn checkpoint_write_in_progress(out: &Path) -> bool {
    std::fs::read_dir(out).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(".checkpoint-") && n.contains(".tmp-")
        })
    })
}

#[test]
fn killed_at_random_points_and_resumed_equals_an_uninterrupted_run() {
    let f = fixture();
    let common = [
        "--steps",
        "12",
        "--save-every",
        "1",
        "--schedule",
        "cosine",
        "--warmup",
        "2",
        "--lora-dropout",
        "0.1",
        "--eval",
        s(&f.eval),
        "--eval-every",
        "4",
    ];
    let full = f.root.join("full");
    let mut args = base_args(&f, &full);
    args.extend(common);
    let t0 = Instant::now();
    ok(&finetune(&args));
    let wall = t0.elapsed();

    // SIGKILL (Child::kill) at random moments, and every other time the moment a checkpoint
    // directory is being written; resume each time from what is on disk.
    let out = f.root.join("killed");
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        // splitmix64
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut kills, mut mid_write) = (0, 0);
    for attempt in 0..8 {
        let mut args = base_args(&f, &out);
        args.extend(common);
        if attempt > 0 {
            args.extend(["--resume", s(&out)]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_finetune"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        if attempt % 2 == 1 {
            while !checkpoint_write_in_progress(&out) && start.elapsed() < wall * 2 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(wall.mul_f64(0.1 + 0.5 * uniform()));
        }
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if check_no_half_written_outputs(&out) {
            mid_write += 1;
        }
    }
    assert!(kills >= 3, "only {kills} kills landed");
    assert!(mid_write >= 1, "no kill landed during a write");

    let mut args = base_args(&f, &out);
    args.extend(common);
    args.extend(["--resume", s(&out)]);
    ok(&finetune(&args));
    assert!(
        !check_no_half_written_outputs(&out),
        "temporaries left behind"
    );
    assert_same_run(&full, &out);
}

#[test]
fn resume_of_a_run_killed_before_its_first_checkpoint_starts_over() {
    let f = fixture();
    let out = f.root.join("early");
    std::fs::create_dir_all(&out).unwrap();
    // What a run killed during step 1 leaves: a torn metrics line and a temporary.
    std::fs::write(out.join("metrics.jsonl"), "{\"step\":1,\"lo").unwrap();
    std::fs::create_dir_all(out.join(".checkpoint-00000001.tmp-4000000")).unwrap();
    let mut args = base_args(&f, &out);
    args.extend(["--steps", "2", "--resume", s(&out)]);
    ok(&finetune(&args));
    assert_eq!(step_lines(&metrics(&out)).len(), 2);
    assert!(!check_no_half_written_outputs(&out));

    // --resume of another directory without a checkpoint is still an error.
    let other = f.root.join("empty");
    std::fs::create_dir_all(&other).unwrap();
    let elsewhere = f.root.join("elsewhere");
    let mut args = base_args(&f, &elsewhere);
    args.extend(["--steps", "1", "--resume", s(&other)]);
    assert!(err(&finetune(&args)).contains("no checkpoint"));
}

#[test]
fn pretokenized_data_dense_base_and_other_optimizers_train() {
    let f = fixture();
    let data = f.root.join("tokens.jsonl");
    std::fs::write(
        &data,
        "{\"input_ids\":[0,5,6,7,8,9],\"labels\":[-100,-100,-100,7,8,9]}\n\n{\"input_ids\":[0,9,8,7]}\n",
    )
    .unwrap();
    for (i, extra) in [
        vec!["--no-4bit"],
        vec!["--no-double-quant", "--optimizer", "adamw-8bit"],
        vec!["--optimizer", "paged-adamw", "--memory-budget", "1"],
        vec![
            "--gradient-checkpointing",
            "--target-modules",
            "q_proj,v_proj",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let out = f.root.join(format!("tok{i}"));
        let mut args = vec![
            "--model",
            s(&f.model),
            "--data",
            s(&data),
            "--task",
            "tokens",
            "--output",
            s(&out),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--quiet",
        ];
        args.extend(extra.iter().copied());
        ok(&finetune(&args));
        assert_eq!(step_lines(&metrics(&out)).len(), 2, "{extra:?}");
        assert!(out.join("adapter_model.safetensors").is_file());
    }
}

#[test]
fn gradient_checkpointing_gives_the_same_losses() {
    let f = fixture();
    let run = |name: &str, gc: bool| {
        let out = f.root.join(name);
        let mut args = base_args(&f, &out);
        args.extend(["--steps", "2", "--lora-dropout", "0"]);
        if gc {
            args.push("--gradient-checkpointing");
        }
        ok(&finetune(&args));
        step_lines(&metrics(&out))
            .iter()
            .map(|v| v["loss"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b) = (run("plain", false), run("gc", true));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

#[test]
fn bad_input_fails_with_one_message_naming_file_line_and_field() {
    let f = fixture();
    let out = f.root.join("bad");

    // Malformed JSONL line 2.
    let text = std::fs::read_to_string(&f.train).unwrap();
    let first = text.lines().next().unwrap();
    let broken = f.root.join("broken.jsonl");
    std::fs::write(&broken, format!("{first}\n{{\"id\": \"x\", \"input\": \n")).unwrap();
    let mut args = base_args(&f, &out);
    args.extend(["--steps", "1"]);
    args[3] = s(&broken);
    let e = err(&finetune(&args));
    assert!(e.contains("broken.jsonl:2"), "{e}");

    // A wrong modality label names the field.
    let wrong = f.root.join("wrong.jsonl");
    std::fs::write(
        &wrong,
        "{\"id\":\"1\",\"input\":\"Prostate cancer\",\"target\":\"laser\"}\n",
    )
    .unwrap();
    args[3] = s(&wrong);
    let e = err(&finetune(&args));
    assert!(e.contains("wrong.jsonl:1: field `target`"), "{e}");

    // Unknown --task.
    let mut bad_task = base_args(&f, &out);
    bad_task[5] = "sql";
    let o = finetune(&bad_task);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("sql"));

    // Token id outside the vocabulary.
    let toks = f.root.join("toks.jsonl");
    std::fs::write(
        &toks,
        format!(
            "{{\"input_ids\":[1,2]}}\n{{\"input_ids\":[1,{}]}}\n",
            f.vocab
        ),
    )
    .unwrap();
    let mut args = base_args(&f, &out);
    args[3] = s(&toks);
    args[5] = "tokens";
    let e = err(&finetune(&args));
    assert!(
        e.contains("toks.jsonl:2: field `input_ids`: token id"),
        "{e}"
    );

    // Empty data.
    let empty = f.root.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    args[3] = s(&empty);
    assert!(err(&finetune(&args)).contains("no examples"));

    // --device cuda in a build without the cuda feature; an unknown device.
    if !cfg!(feature = "cuda") {
        let mut args = base_args(&f, &out);
        args.extend(["--steps", "1", "--device", "cuda"]);
        assert!(err(&finetune(&args)).contains("built without the cuda feature"));
    }
    let mut args = base_args(&f, &out);
    args.extend(["--device", "tpu"]);
    let o = finetune(&args);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("tpu"));

    // A budget too small fails before the weights load or the output exists.
    let mut args = base_args(&f, &out);
    args.extend(["--memory-budget", "0.0001"]);
    let e = err(&finetune(&args));
    assert!(
        e.contains("needs") && e.contains("weights") && e.contains("budget 0.0001 GiB"),
        "{e}"
    );
    assert!(!out.exists());

    // A diverging run stops with the step named and keeps its last good checkpoint.
    let mut args = base_args(&f, &out);
    args.extend([
        "--steps",
        "4",
        "--lr",
        "1e38",
        "--max-grad-norm",
        "0",
        "--save-every",
        "1",
        "--lora-dropout",
        "0",
    ]);
    let e = err(&finetune(&args));
    assert!(e.contains("not finite") && e.contains("step "), "{e}");
    assert!(out.join("checkpoint-00000001/trainer_state.json").is_file());
    assert!(!out.join("adapter_model.safetensors").exists());
}

/// The prompt masked from the loss is the checkpoint's own template (chat_template.jinja);
/// without one, `--chat-template auto` (the default) stops before training, naming the two
/// places looked at, and an explicit `--chat-template llama3` or `.jinja` file trains.
#[test]
fn the_chat_template_is_the_checkpoints_own_or_an_explicit_choice() {
    let f = fixture();
    let tok = LlamaTokenizer::from_file(f.model.join("tokenizer.json")).unwrap();
    assert_eq!(
        tok.template().unwrap().source(),
        llama_model::ChatTemplate::llama3().source()
    );
    assert!(tok
        .template()
        .unwrap()
        .origin()
        .ends_with("chat_template.jinja"));
    // A template file that writes another format changes the ids the run trains on: the
    // masked prompt must be that template's rendering.
    let example = ro_tasks::read_examples(&f.train, TaskKind::Modality)
        .unwrap()
        .remove(0);
    let custom = f.root.join("custom.jinja");
    std::fs::write(
        &custom,
        "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}",
    )
    .unwrap();
    let custom_tok = tok
        .clone()
        .with_template(llama_model::ChatTemplate::from_file(&custom).unwrap());
    let data = ro_examples::finetune::data::read_task_data(
        &f.train,
        TaskKind::Modality,
        &custom_tok,
        &ro_examples::finetune::PromptFormat::Chat,
    )
    .unwrap();
    let messages: Vec<llama_model::ChatMessage> = example
        .prompt(TaskKind::Modality)
        .messages()
        .into_iter()
        .map(|m| llama_model::ChatMessage::new(role(m.role), m.content))
        .collect();
    let prompt = custom_tok.apply_chat_template(&messages, true).unwrap();
    let labels = data.examples[0].labels();
    let masked = labels.iter().take_while(|&&l| l == -100).count();
    assert_eq!(&data.examples[0].input_ids[..masked], &prompt[..masked]);
    assert!(masked > 0 && masked <= prompt.len());

    // No template beside the tokenizer: auto refuses, naming the files.
    std::fs::remove_file(f.model.join("chat_template.jinja")).unwrap();
    let out = f.root.join("run");
    let o = finetune(&base_args(&f, &out));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--chat-template auto")
            && e.contains("chat_template.jinja")
            && e.contains("tokenizer_config.json"),
        "{e}"
    );
    assert!(!out.exists());
    // The explicit choices train.
    for choice in ["llama3", custom.to_str().unwrap()] {
        let out = f.root.join(format!("run-{}", choice.len()));
        let mut args = base_args(&f, &out);
        args.extend(["--chat-template", choice, "--steps", "1"]);
        let o = finetune(&args);
        assert!(
            o.status.success(),
            "{choice}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn role(r: ro_tasks::Role) -> llama_model::Role {
    match r {
        ro_tasks::Role::System => llama_model::Role::System,
        ro_tasks::Role::User => llama_model::Role::User,
        ro_tasks::Role::Assistant => llama_model::Role::Assistant,
    }
}

/// QLoRA on the committed tiny Mistral (sliding window 5, tools/fixtures/mistral) with
/// 12-token sequences, end to end: `finetune` lowers the loss and writes a PEFT adapter that
/// loads; `merge` folds it into a Mistral checkpoint whose logits equal `generate --adapter`
/// on the base; `quantize` turns that into a 4-bit Mistral checkpoint `generate` runs.
#[test]
fn mistral_finetune_merge_quantize_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/mistral/mistral");
    let data = root.join("tokens.jsonl");
    let rows = [
        "[1,17,33,49,65,81,97,113,129,145,161,177]",
        "[1,5,10,15,20,25,30,35,40,45,50,55]",
    ];
    let lines: Vec<String> = rows
        .iter()
        .map(|r| format!("{{\"input_ids\":{r}}}"))
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = root.join("adapter");
    let args = [
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--task",
        "tokens",
        "--output",
        s(&out),
        "--steps",
        "8",
        "--batch-size",
        "2",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--lr",
        "1e-2",
        "--quiet",
    ];
    ok(&finetune(&args));
    let m = metrics(&out);
    let losses: Vec<f64> = step_lines(&m)
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 8);
    assert!(losses[7] < 0.9 * losses[0], "{losses:?}");
    let base = load_pretrained::<B>(&model, &LoadOptions::default(), &Default::default()).unwrap();
    let adapted = load_adapter(base, &out).unwrap();
    assert!(adapted.layers[1].mlp.down_proj.adapter().is_some());

    let merged = root.join("merged");
    let o = Command::new(env!("CARGO_BIN_EXE_merge"))
        .args([
            "--model",
            s(&model),
            "--adapter",
            s(&out),
            "--output",
            s(&merged),
        ])
        .output()
        .unwrap();
    ok(&o);
    let ids = rows[0].trim_matches(['[', ']']);
    // Prefill logits of the first row through `generate --dump-logits` with `extra` flags.
    let dump = |dir: &Path, extra: &[&str], name: &str| -> Vec<f32> {
        let file = root.join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_generate"))
            .args([
                "--model",
                s(dir),
                "--token-ids",
                ids,
                "--max-new-tokens",
                "4",
            ])
            .args(["--dump-logits", s(&file)])
            .args(extra)
            .output()
            .unwrap();
        ok(&o);
        let bytes = std::fs::read(&file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor("logits").unwrap();
        t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let max_diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    let adapted = dump(&model, &["--adapter", s(&out)], "adapted.safetensors");
    let merged_logits = dump(&merged, &[], "merged.safetensors");
    let d = max_diff(&adapted, &merged_logits);
    assert!(d < 1e-4, "merged vs adapted logits differ by {d}");

    let four_bit = root.join("merged-4bit");
    let o = Command::new(env!("CARGO_BIN_EXE_quantize"))
        .args(["--model", s(&merged), "--output", s(&four_bit)])
        .output()
        .unwrap();
    ok(&o);
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(four_bit.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "mistral");
    assert_eq!(cfg["sliding_window"], 5);
    // The 4-bit directory holds the codes quantizing the merged weights on load gives.
    let saved = dump(&four_bit, &[], "q.safetensors");
    let on_load = dump(&merged, &["--load-in-4bit"], "q-on-load.safetensors");
    assert_eq!(saved, on_load);
    assert!(
        max_diff(&saved, &merged_logits) > 0.0,
        "4-bit weights change the logits"
    );
}
