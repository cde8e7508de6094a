//! Bad input across the example programs: every case must exit non-zero (exit code 1, not a
//! panic's 101 or a signal; 2 for clap's usage errors), print exactly one error line
//! (`<program>: ...`, or clap's `error: ...`) naming the file and the field, flag or tensor at
//! fault, print no panic or backtrace text, leave no partial output
//! (no temporary files either) and leave an existing output file untouched.
//!
//! `evaluate` is the exception its contract makes: a bad *line* becomes an `{"error"}` line
//! naming the line and field and the run goes on; whole-file problems fail as above.
//!
//! Inputs are small: the committed tiny checkpoints under `tools/fixtures/` and files made
//! here, so the whole suite runs in seconds.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;
use serde_json::{json, Value};

mod common;
use common::fixtures;

/// Runs a program with a backtrace requested, so that a panic could not hide.
fn run<S: AsRef<OsStr>>(exe: &str, args: &[S]) -> Output {
    Command::new(exe)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("start the program")
}

/// The failure contract: exit code 1, one `<name>: error:` line holding every `needles`
/// string, no panic or backtrace text.
fn assert_clean_failure(name: &str, out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{name}: expected exit code 1 (or clap's 2), got {:?}; stderr:\n{err}",
        out.status
    );
    for bad in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "thread 'main'",
    ] {
        assert!(!err.contains(bad), "{name}: `{bad}` in stderr:\n{err}");
    }
    // clap's own usage errors: exit code 2, `error: invalid value .. for '--flag'`.
    let prefix = if out.status.code() == Some(2) {
        "error:".to_string()
    } else {
        format!("{name}:")
    };
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(
        lines.len(),
        1,
        "{name}: want one error line; stderr:\n{err}"
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{name}: `{n}` not named in: {}",
            lines[0]
        );
    }
    assert!(out.stdout.is_empty(), "{name}: printed a result on failure");
    lines[0].to_string()
}

/// A safetensors file from a header object and a data buffer (no checks: may lie).
fn raw_safetensors(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// `src` rewritten by `edit`, which gets every tensor as (dtype, shape, bytes) by name.
fn rewrite_safetensors(
    src: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let bytes = std::fs::read(src).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<_, _> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, (d, s, b))| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// A directory with an existing output file `out.safetensors` holding known bytes.
struct OutDir {
    dir: tempfile::TempDir,
}

impl OutDir {
    const KEEP: &'static [u8] = b"an existing output that a failed run must not touch";

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("out.safetensors"), Self::KEEP).unwrap();
        OutDir { dir }
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out.safetensors")
    }
    fn fresh(&self) -> PathBuf {
        self.dir.path().join("fresh.safetensors")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Only the files the test put there, unchanged: nothing partial, no temp files.
    fn assert_untouched(&self, inputs: &[&str]) {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        let mut want: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        want.push("out.safetensors".into());
        want.sort();
        assert_eq!(names, want, "files left in the output directory");
        assert_eq!(std::fs::read(self.out()).unwrap(), Self::KEEP);
    }
}

// ---------------------------------------------------------------------------------------
// quantize
// ---------------------------------------------------------------------------------------

fn quantize<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_quantize"), args)
}

fn dense_file() -> PathBuf {
    fixtures().join("bnb/hf_tiny_dense/model.safetensors")
}

fn nf4_file() -> PathBuf {
    fixtures().join("bnb/hf_tiny_dq/model.safetensors")
}

/// Runs `quantize --input IN --output out.safetensors` (plus `extra`) on `input` bytes and
/// checks the failure contract, to the existing output and to a fresh output path.
fn quantize_fails(input: &[u8], extra: &[&str], needles: &[&str]) -> String {
    let d = OutDir::new();
    let inp = d.path("in.safetensors");
    std::fs::write(&inp, input).unwrap();
    let mut msg = String::new();
    for out in [d.out(), d.fresh()] {
        let mut args = vec![
            "--input".to_string(),
            inp.display().to_string(),
            "--output".to_string(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = quantize(&args);
        msg = assert_clean_failure("quantize", &o, needles);
        d.assert_untouched(&["in.safetensors"]);
    }
    msg
}

#[test]
fn quantize_truncated_safetensors() {
    let bytes = std::fs::read(dense_file()).unwrap();
    for cut in [0, 4, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        quantize_fails(&bytes[..cut], &[], &["in.safetensors"]);
    }
}

#[test]
fn quantize_corrupt_header() {
    let mut bytes = std::fs::read(dense_file()).unwrap();
    bytes[9] = b'#'; // inside the JSON header
    quantize_fails(&bytes, &[], &["in.safetensors", "JSON"]);
    // A header length far beyond the file.
    let mut bytes = std::fs::read(dense_file()).unwrap();
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    quantize_fails(&bytes, &[], &["in.safetensors"]);
    // Not UTF-8.
    let mut bytes = std::fs::read(dense_file()).unwrap();
    bytes[10] = 0xff;
    quantize_fails(&bytes, &[], &["in.safetensors"]);
}

#[test]
fn quantize_header_that_lies_about_offsets() {
    let data = vec![0u8; 64];
    let w = "lying.weight";
    // Offsets past the end of the data (as in a truncated file: the file is named).
    let h = json!({w: {"dtype": "F32", "shape": [4, 40], "data_offsets": [0, 640]}});
    quantize_fails(&raw_safetensors(&h, &data), &[], &["in.safetensors"]);
    // Shape and offsets disagree (16 floats declared, 8 stored).
    let h = json!({w: {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]},
                   "bias": {"dtype": "F32", "shape": [8], "data_offsets": [32, 64]}});
    quantize_fails(&raw_safetensors(&h, &data), &[], &["in.safetensors", w]);
    // A shape whose element count overflows.
    let h = json!({w: {"dtype": "F32", "shape": [u64::MAX, 4], "data_offsets": [0, 64]}});
    quantize_fails(&raw_safetensors(&h, &data), &[], &["in.safetensors", w]);
    // Overlapping tensors (each consistent on its own).
    let h = json!({w: {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
                   "bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}});
    quantize_fails(&raw_safetensors(&h, &data), &[], &["in.safetensors"]);
}

#[test]
fn quantize_wrong_dtype_and_shape() {
    let data: Vec<u8> = (0..64).collect();
    let h = json!({"ids": {"dtype": "I64", "shape": [2, 4], "data_offsets": [0, 64]}});
    quantize_fails(
        &raw_safetensors(&h, &data),
        &["--tensors", "ids"],
        &["in.safetensors", "ids", "I64"],
    );
    let h = json!({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}});
    quantize_fails(
        &raw_safetensors(&h, &data),
        &["--tensors", "nope"],
        &["in.safetensors", "nope"],
    );
    // Blocksize outside 32..=4096.
    quantize_fails(
        &raw_safetensors(&h, &data),
        &["--blocksize", "48"],
        &["blocksize"],
    );
}

#[test]
fn quantize_nan_and_inf_weights_are_quantized_or_refused_cleanly() {
    // bitsandbytes quantizes whatever it gets; a non-finite absmax makes a block useless,
    // so the contract here is only: no panic, and if it fails it fails cleanly.
    let vals = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0]
        .repeat(16)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    let h = json!({"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 256]}});
    let d = OutDir::new();
    let inp = d.path("in.safetensors");
    std::fs::write(&inp, raw_safetensors(&h, &vals)).unwrap();
    let o = quantize(&[
        OsStr::new("--input"),
        inp.as_os_str(),
        OsStr::new("--output"),
        d.fresh().as_os_str(),
    ]);
    if o.status.success() {
        let bytes = std::fs::read(d.fresh()).unwrap();
        assert!(SafeTensors::deserialize(&bytes).is_ok());
    } else {
        assert_clean_failure("quantize", &o, &["w"]);
        d.assert_untouched(&["in.safetensors"]);
    }
}

#[test]
fn dequantize_4bit_checkpoint_with_missing_or_bad_parts() {
    let w = "model.layers.0.mlp.down_proj.weight";
    for (what, needle) in [
        (".absmax", format!("{w}.absmax")),
        (".nested_absmax", format!("{w}.nested_absmax")),
        ("", w.to_string()),
    ] {
        let bytes = rewrite_safetensors(&nf4_file(), |t| {
            t.remove(&format!("{w}{what}")).unwrap();
        });
        quantize_fails(&bytes, &["--dequantize"], &["in.safetensors", &needle]);
    }
    // absmax of the wrong length (one block missing).
    let bytes = rewrite_safetensors(&nf4_file(), |t| {
        let a = t.get_mut(&format!("{w}.absmax")).unwrap();
        a.2.pop();
        a.1 = vec![a.2.len()];
    });
    quantize_fails(&bytes, &["--dequantize"], &["in.safetensors", w]);
    // absmax of the wrong dtype.
    let bytes = rewrite_safetensors(&nf4_file(), |t| {
        let a = t.get_mut(&format!("{w}.nested_absmax")).unwrap();
        a.0 = safetensors::Dtype::I32;
    });
    quantize_fails(
        &bytes,
        &["--dequantize"],
        &["in.safetensors", "nested_absmax", "I32"],
    );
    // Quant-state JSON: unknown quant_type, bad blocksize, not JSON, shape that does not fit.
    let key = format!("{w}.quant_state.bitsandbytes__nf4");
    for (edit, needle) in [
        (("\"nf4\"", "\"fp8\""), "quant_type"),
        (("\"blocksize\": 64", "\"blocksize\": 63"), "blocksize"),
        (("{", "["), "JSON"),
        (("\"shape\": [", "\"shape\": [3, "), w),
    ] {
        let bytes = rewrite_safetensors(&nf4_file(), |t| {
            let q = t.get_mut(&key).unwrap();
            let s = String::from_utf8(q.2.clone()).unwrap();
            assert!(s.contains(edit.0), "{s}");
            q.2 = s.replacen(edit.0, edit.1, 1).into_bytes();
            q.1 = vec![q.2.len()];
        });
        quantize_fails(&bytes, &["--dequantize"], &["in.safetensors", needle]);
    }
    // Invalid UTF-8 in the quant-state JSON.
    let bytes = rewrite_safetensors(&nf4_file(), |t| {
        t.get_mut(&key).unwrap().2[3] = 0xff;
    });
    quantize_fails(&bytes, &["--dequantize"], &["in.safetensors", &key]);
}

/// An output whose parent is a regular file: no directory can be created there, even by
/// root (for whom a read-only directory is no obstacle).
#[test]
fn quantize_unwritable_output() {
    let d = OutDir::new();
    let bad = d.out().join("x.safetensors");
    let o = quantize(&[
        OsStr::new("--input"),
        dense_file().as_os_str(),
        OsStr::new("--output"),
        bad.as_os_str(),
    ]);
    assert_clean_failure("quantize", &o, &["out.safetensors"]);
    d.assert_untouched(&[]);

    // Model mode: the output directory cannot be created.
    let o = quantize(&[
        OsStr::new("--model"),
        fixtures().join("bnb/hf_tiny_dense").as_os_str(),
        OsStr::new("--output"),
        d.out().join("model").as_os_str(),
    ]);
    assert_clean_failure("quantize", &o, &["out.safetensors"]);
    d.assert_untouched(&[]);
}

/// A write error half-way (file size limit, as a full disk would give): nothing partial is
/// left behind and the existing output is untouched.
#[test]
fn quantize_write_error() {
    let d = OutDir::new();
    for out in [d.out(), d.fresh()] {
        // `ulimit -f 8`: files may not grow beyond 4 KiB; the output is ~100 KiB. SIGXFSZ is
        // ignored so that the write fails with EFBIG instead of killing the process.
        let o = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_quantize"))
            .arg("--input")
            .arg(dense_file())
            .arg("--output")
            .arg(&out)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let name = out.file_name().unwrap().to_string_lossy().to_string();
        assert_clean_failure("quantize", &o, &[&name]);
        d.assert_untouched(&[]);
    }
}

/// A change made to a copy of a model or adapter directory.
type Edit = Box<dyn Fn(&Path)>;

fn model_dir_copy(src: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    d
}

#[test]
fn quantize_model_mode_bad_inputs_leave_no_output_dir() {
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(|m: &Path| {
                std::fs::write(m.join("config.json"), "{\"hidden_size\": ").unwrap()
            }),
            &["config.json"],
        ),
        (
            Box::new(|m: &Path| std::fs::write(m.join("config.json"), b"\xff\xfe").unwrap()),
            &["config.json"],
        ),
        (
            Box::new(|m: &Path| {
                let b = std::fs::read(m.join("model.safetensors")).unwrap();
                std::fs::write(m.join("model.safetensors"), &b[..b.len() / 3]).unwrap()
            }),
            &["model.safetensors"],
        ),
        (
            Box::new(|m: &Path| std::fs::remove_file(m.join("model.safetensors")).unwrap()),
            &["model.safetensors"],
        ),
        (
            Box::new(|m: &Path| {
                std::fs::write(m.join("model.safetensors.index.json"), "{\"metadata\": {}}")
                    .unwrap()
            }),
            &["model.safetensors.index.json", "weight_map"],
        ),
    ];
    for (edit, needles) in cases {
        let m = model_dir_copy(&fixtures().join("bnb/hf_tiny_dense"));
        edit(m.path());
        let d = OutDir::new();
        let o = quantize(&[
            OsStr::new("--model"),
            m.path().as_os_str(),
            OsStr::new("--output"),
            d.path("q").as_os_str(),
        ]);
        assert_clean_failure("quantize", &o, needles);
        d.assert_untouched(&[]);
    }
}

// ---------------------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------------------

fn generate<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_generate"), args)
}

/// `generate --model M --token-ids 1,2,3 --max-new-tokens 2 --dump-logits out.safetensors`
/// on a copy of `fixture` changed by `edit`: must fail cleanly and leave the dump untouched.
fn generate_fails(fixture: &str, edit: impl FnOnce(&Path), extra: &[&str], needles: &[&str]) {
    let m = model_dir_copy(&fixtures().join(fixture));
    edit(m.path());
    let d = OutDir::new();
    let mut args = vec![
        "--model".to_string(),
        m.path().display().to_string(),
        "--max-new-tokens".to_string(),
        "2".to_string(),
        "--dump-logits".to_string(),
        d.out().display().to_string(),
    ];
    if !extra.contains(&"--token-ids") && !extra.contains(&"--prompt") {
        args.extend(["--token-ids".to_string(), "1,2,3".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = generate(&args);
    assert_clean_failure("generate", &o, needles);
    d.assert_untouched(&[]);
}

fn edit_config(m: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let p = m.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn generate_config_errors_name_the_field() {
    generate_fails(
        "llama/llama2",
        |m| {
            edit_config(m, |c| {
                c.insert(
                    "rope_parameters".into(),
                    json!({"rope_type": "yarn", "factor": 2.0}),
                );
            })
        },
        &[],
        &["config.json", "rope_type", "yarn"],
    );
    for field in ["hidden_size", "vocab_size", "num_attention_heads"] {
        generate_fails(
            "llama/llama2",
            |m| {
                edit_config(m, |c| {
                    c.remove(field);
                })
            },
            &[],
            &["config.json", field],
        );
    }
    generate_fails(
        "llama/llama2",
        |m| {
            edit_config(m, |c| {
                c.insert("num_key_value_heads".into(), json!(3));
            })
        },
        &[],
        &["config.json", "num_key_value_heads"],
    );
    generate_fails(
        "llama/llama2",
        |m| {
            edit_config(m, |c| {
                c.insert("hidden_size".into(), json!("sixty-four"));
            })
        },
        &[],
        // serde_json names the line and column, and the bad value.
        &["config.json", "sixty-four", "line "],
    );
    generate_fails(
        "llama/llama2",
        |m| std::fs::write(m.join("config.json"), b"{\"vocab_size\": 3\xff}").unwrap(),
        &[],
        &["config.json"],
    );
}

/// Mistral configs: an unknown architecture, a window of 0 or wider than the context, and
/// biases Mistral does not have are refused naming config.json and the field.
#[test]
fn generate_mistral_config_errors_name_the_field() {
    let cases: [(&str, Value, &[&str]); 5] = [
        (
            "model_type",
            json!("mixtral"),
            &["mixtral", "llama, mistral"],
        ),
        ("sliding_window", json!(0), &["must be positive"]),
        (
            "sliding_window",
            json!(65),
            &["65", "max_position_embeddings = 64"],
        ),
        ("attention_bias", json!(true), &["no bias"]),
        ("mlp_bias", json!(true), &["no bias"]),
    ];
    for (field, value, needles) in cases {
        let mut all = vec!["config.json", field];
        all.extend_from_slice(needles);
        generate_fails(
            "mistral/mistral",
            |m| {
                edit_config(m, |c| {
                    c.insert(field.into(), value);
                })
            },
            &[],
            &all,
        );
    }
}

#[test]
fn generate_checkpoint_errors_name_the_tensor() {
    let st = |m: &Path| m.join("model.safetensors");
    generate_fails(
        "llama/llama2",
        |m| {
            let b = std::fs::read(st(m)).unwrap();
            std::fs::write(st(m), &b[..b.len() - 7]).unwrap();
        },
        &[],
        &["model.safetensors"],
    );
    let q = "model.layers.1.self_attn.q_proj.weight";
    generate_fails(
        "llama/llama2",
        |m| {
            let b = rewrite_safetensors(&st(m), |t| {
                t.remove(q).unwrap();
            });
            std::fs::write(st(m), b).unwrap();
        },
        &[],
        &[q],
    );
    // Wrong shape (transposed) and wrong dtype.
    generate_fails(
        "llama/llama2",
        |m| {
            let b = rewrite_safetensors(&st(m), |t| {
                let e = t.get_mut("model.layers.0.mlp.up_proj.weight").unwrap();
                e.1.reverse();
            });
            std::fs::write(st(m), b).unwrap();
        },
        &[],
        &["model.layers.0.mlp.up_proj.weight"],
    );
    generate_fails(
        "llama/llama2",
        |m| {
            let b = rewrite_safetensors(&st(m), |t| {
                let e = t.get_mut("model.norm.weight").unwrap();
                e.0 = safetensors::Dtype::I16;
            });
            std::fs::write(st(m), b).unwrap();
        },
        &[],
        &["model.norm.weight"],
    );
    // A 4-bit checkpoint without one absmax.
    let w = "model.layers.0.mlp.down_proj.weight";
    generate_fails(
        "llama/llama2_bnb4",
        |m| {
            let b = rewrite_safetensors(&st(m), |t| {
                t.remove(&format!("{w}.absmax")).unwrap();
            });
            std::fs::write(st(m), b).unwrap();
        },
        &[],
        &[&format!("{w}.absmax")],
    );
}

#[test]
fn generate_bad_arguments() {
    // Token ids outside the vocabulary (320), including u32::MAX.
    for ids in ["5,320", "4294967295", "1,2,99999"] {
        generate_fails(
            "llama/llama2",
            |_| {},
            &["--token-ids", ids],
            &["vocabulary"],
        );
    }
    // Token ids that do not parse.
    generate_fails(
        "llama/llama2",
        |_| {},
        &["--token-ids", "1,-2"],
        &["--token-ids"],
    );
    // Non-finite or out-of-range sampling parameters.
    for t in ["--temperature=NaN", "--temperature=-1", "--temperature=inf"] {
        generate_fails("llama/llama2", |_| {}, &[t], &["temperature"]);
    }
    generate_fails(
        "llama/llama2",
        |_| {},
        &["--temperature", "1", "--top-p", "1.5"],
        &["top"],
    );
    generate_fails(
        "llama/llama2",
        |_| {},
        &["--repetition-penalty", "NaN"],
        &["repetition"],
    );
    // Malformed tokenizer.json (invalid UTF-8 / not JSON).
    generate_fails(
        "llama/llama2",
        |m| std::fs::write(m.join("tokenizer.json"), b"\xff{").unwrap(),
        &["--prompt", "hi"],
        &["tokenizer.json"],
    );
}

#[test]
fn generate_with_non_finite_weights_does_not_panic() {
    // NaN weights: either a clean error or a result, never a panic (sorting NaN logits).
    let m = model_dir_copy(&fixtures().join("llama/llama2"));
    let st = m.path().join("model.safetensors");
    let b = rewrite_safetensors(&st, |t| {
        let e = t.get_mut("lm_head.weight").unwrap();
        assert_eq!(e.0, safetensors::Dtype::BF16);
        for c in e.2.chunks_exact_mut(2) {
            c.copy_from_slice(&[0xc0, 0x7f]); // bf16 NaN
        }
    });
    std::fs::write(&st, b).unwrap();
    for extra in [
        vec!["--greedy"],
        vec!["--temperature", "0.7", "--top-p", "0.9", "--top-k", "5"],
    ] {
        let mut args = vec![
            "--model",
            m.path().to_str().unwrap(),
            "--token-ids",
            "1,2,3",
            "--max-new-tokens",
            "3",
        ];
        args.extend(extra);
        let o = generate(&args);
        if !o.status.success() {
            assert_clean_failure("generate", &o, &["lm_head"]);
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn generate_unwritable_and_failing_dump() {
    let d = OutDir::new();
    let model = fixtures().join("llama/llama2");
    let o = generate(&[
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--token-ids"),
        OsStr::new("1,2"),
        OsStr::new("--dump-logits"),
        d.out().join("logits.safetensors").as_os_str(),
    ]);
    assert_clean_failure("generate", &o, &["out.safetensors"]);
    d.assert_untouched(&[]);
    // Write error (file size limit) while dumping ~ 2 * 320 * 4 bytes over 512.
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_generate"))
        .args(["--model", model.to_str().unwrap(), "--token-ids", "1,2,3,4"])
        .arg("--dump-logits")
        .arg(d.out())
        .output()
        .unwrap();
    assert_clean_failure("generate", &o, &["out.safetensors"]);
    d.assert_untouched(&[]);
}

#[test]
fn generate_bad_adapter() {
    let adapter_src = fixtures().join("peft/llama2_r8");
    let cases: Vec<(Edit, Vec<&str>)> = vec![
        (
            Box::new(|a: &Path| std::fs::write(a.join("adapter_config.json"), "{\"r\": ").unwrap()),
            vec!["adapter_config.json"],
        ),
        (
            Box::new(|a: &Path| {
                let p = a.join("adapter_config.json");
                let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v["target_modules"] = json!(["q_proj", "wq"]);
                std::fs::write(p, v.to_string()).unwrap();
            }),
            vec!["adapter_config.json", "target_modules", "wq"],
        ),
        (
            Box::new(|a: &Path| {
                let p = a.join("adapter_config.json");
                let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v["r"] = json!(0);
                std::fs::write(p, v.to_string()).unwrap();
            }),
            vec!["adapter_config.json", "r"],
        ),
        (
            Box::new(|a: &Path| {
                let p = a.join("adapter_model.safetensors");
                let k = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
                let b = rewrite_safetensors(&p, |t| {
                    t.remove(k).unwrap();
                });
                std::fs::write(p, b).unwrap();
            }),
            vec![
                "adapter_model.safetensors",
                "layers.1.self_attn.v_proj.lora_B.weight",
            ],
        ),
        (
            Box::new(|a: &Path| {
                let p = a.join("adapter_model.safetensors");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            }),
            vec!["adapter_model.safetensors"],
        ),
    ];
    for (edit, needles) in cases {
        let a = model_dir_copy(&adapter_src);
        edit(a.path());
        let d = OutDir::new();
        let o = generate(&[
            OsStr::new("--model"),
            fixtures().join("llama/llama2").as_os_str(),
            OsStr::new("--adapter"),
            a.path().as_os_str(),
            OsStr::new("--token-ids"),
            OsStr::new("1,2"),
            OsStr::new("--dump-logits"),
            d.out().as_os_str(),
        ]);
        assert_clean_failure("generate", &o, &needles);
        d.assert_untouched(&[]);
    }
}

// ---------------------------------------------------------------------------------------
// evaluate
// ---------------------------------------------------------------------------------------

fn evaluate<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_evaluate"), args)
}

/// Bad lines (empty, malformed, not an object, invalid UTF-8, NaN where a number is
/// needed, missing fields) become `{"error": "line N: ..."}` lines naming the field, in
/// order, and the good lines are still scored.
#[test]
fn evaluate_bad_lines_become_error_lines() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    let mut text: Vec<u8> = Vec::new();
    text.extend(b"{\"id\":1,\"reference\":\"the cat\",\"candidate\":\"the cat\"}\n");
    text.extend(b"\n");
    text.extend(b"{\"id\":3,\"reference\":\"the cat\"\n");
    text.extend(b"[1,2]\n");
    text.extend(b"{\"id\":5,\"reference\":\"a \xff b\",\"candidate\":\"a\"}\n");
    text.extend(b"{\"id\":6,\"reference\":\"x\"}\n");
    text.extend(b"{\"id\":7,\"reference\":7,\"candidate\":\"x\"}\n");
    text.extend(b"{\"id\":8,\"reference\":\"dog\",\"candidate\":\"dog\"}\r\n");
    std::fs::write(&input, &text).unwrap();
    let output = d.file("out.jsonl");
    let o = evaluate(&[
        OsStr::new("rouge"),
        OsStr::new("--input"),
        input.as_os_str(),
        OsStr::new("--output"),
        output.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0]["rouge1"]["fmeasure"], json!(1.0));
    assert_eq!(lines[7]["rouge1"]["fmeasure"], json!(1.0));
    let e = |i: usize| lines[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(e(1).starts_with("line 2: empty line"), "{}", e(1));
    assert!(e(2).starts_with("line 3: invalid JSON"), "{}", e(2));
    assert!(e(3).contains("expected a JSON object"), "{}", e(3));
    assert!(e(4).starts_with("line 5: invalid UTF-8"), "{}", e(4));
    assert!(e(5).contains("candidate"), "{}", e(5));
    assert!(e(6).contains("reference"), "{}", e(6));
    assert_eq!(lines[5]["id"], json!(6));

    // NaN / infinity where a statistic needs finite numbers.
    let input = d.path().join("w.jsonl");
    std::fs::write(
        &input,
        "{\"x\":[1,\"NaN\",3]}\n{\"x\":[1,\"Infinity\",-2,4]}\n{\"x\":\"oops\"}\n",
    )
    .unwrap();
    let o = evaluate(&[
        OsStr::new("wilcoxon"),
        OsStr::new("--input"),
        input.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out.len(), 3);
    assert!(
        out[2]["error"].as_str().unwrap().contains("`x`"),
        "{:?}",
        out[2]
    );
}

trait PathExt {
    fn file(&self, name: &str) -> PathBuf;
}

impl PathExt for tempfile::TempDir {
    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

#[test]
fn evaluate_whole_file_failures() {
    let d = OutDir::new();
    let good = d.path("in.jsonl");
    std::fs::write(&good, "{\"input\":\"C61\"}\n").unwrap();
    let empty = d.path("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let missing = d.path("missing.jsonl");
    for (input, output, needles) in [
        (&missing, d.out(), vec!["missing.jsonl"]),
        (&empty, d.out(), vec!["empty.jsonl"]),
        (&good, d.out().join("x.jsonl"), vec!["out.safetensors"]),
    ] {
        let o = evaluate(&[
            OsStr::new("icd10"),
            OsStr::new("--input"),
            input.as_os_str(),
            OsStr::new("--output"),
            output.as_os_str(),
        ]);
        assert_clean_failure("evaluate", &o, &needles);
        d.assert_untouched(&["in.jsonl", "empty.jsonl"]);
    }
    // Write error: the output grows past the file size limit.
    let big = d.path("big.jsonl");
    std::fs::write(&big, "{\"input\":\"C61\"}\n".repeat(200)).unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_evaluate"))
        .args(["icd10", "--input"])
        .arg(&big)
        .arg("--output")
        .arg(d.out())
        .output()
        .unwrap();
    assert_clean_failure("evaluate", &o, &["out.safetensors"]);
    d.assert_untouched(&["in.jsonl", "empty.jsonl", "big.jsonl"]);
}

// ---------------------------------------------------------------------------------------
// finetune and merge: shared model, config and adapter breakages
// ---------------------------------------------------------------------------------------

/// Every file under `dir` (relative path → bytes), to prove a directory was left as it was.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel.join(""), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The safetensors file `path` with its JSON header changed by `edit` (data kept as is).
fn edit_header(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(h.as_object_mut().unwrap());
    std::fs::write(path, raw_safetensors(&h, &bytes[8 + n..])).unwrap();
}

fn rewrite_in_place(
    path: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let b = rewrite_safetensors(path, edit);
    std::fs::write(path, b).unwrap();
}

/// Breakages of a copy of `llama/llama2` (or `llama/llama2_bnb4` where `.0` says so) that
/// every program loading a model must refuse, each with the strings its message must hold.
fn model_breakages() -> Vec<(&'static str, Edit, Vec<&'static str>)> {
    let st = |m: &Path| m.join("model.safetensors");
    let q = "model.layers.1.self_attn.q_proj.weight";
    let up = "model.layers.0.mlp.up_proj.weight";
    let absmax = "model.layers.0.mlp.down_proj.weight.absmax";
    vec![
        (
            "llama/llama2",
            Box::new(move |m: &Path| {
                let b = std::fs::read(st(m)).unwrap();
                std::fs::write(st(m), &b[..b.len() - 7]).unwrap();
            }),
            vec!["model.safetensors"],
        ),
        (
            "llama/llama2",
            Box::new(move |m: &Path| {
                let b = std::fs::read(st(m)).unwrap();
                std::fs::write(st(m), &b[..5]).unwrap();
            }),
            vec!["model.safetensors"],
        ),
        (
            // Corrupt JSON header.
            "llama/llama2",
            Box::new(move |m: &Path| {
                let mut b = std::fs::read(st(m)).unwrap();
                b[9] = b'#';
                std::fs::write(st(m), b).unwrap();
            }),
            vec!["model.safetensors"],
        ),
        (
            // A header that lies: one tensor's data reaches past the end of the file.
            "llama/llama2",
            Box::new(move |m: &Path| {
                edit_header(&st(m), |h| {
                    h[q]["data_offsets"][1] = json!(1u64 << 40);
                })
            }),
            vec!["model.safetensors"],
        ),
        (
            // A header that lies: shape and byte range disagree.
            "llama/llama2",
            Box::new(move |m: &Path| {
                edit_header(&st(m), |h| {
                    h[q]["shape"] = json!([64, 32]);
                })
            }),
            vec!["model.safetensors"],
        ),
        (
            "llama/llama2",
            Box::new(move |m: &Path| {
                rewrite_in_place(&st(m), |t| {
                    t.remove(q).unwrap();
                })
            }),
            vec![q],
        ),
        (
            "llama/llama2",
            Box::new(move |m: &Path| {
                rewrite_in_place(&st(m), |t| t.get_mut(up).unwrap().1.reverse())
            }),
            vec![up],
        ),
        (
            "llama/llama2",
            Box::new(move |m: &Path| {
                rewrite_in_place(&st(m), |t| {
                    t.get_mut("model.norm.weight").unwrap().0 = safetensors::Dtype::I16
                })
            }),
            vec!["model.norm.weight"],
        ),
        (
            "llama/llama2_bnb4",
            Box::new(move |m: &Path| {
                rewrite_in_place(&st(m), |t| {
                    t.remove(absmax).unwrap();
                })
            }),
            vec![absmax],
        ),
        (
            "llama/llama2",
            Box::new(|m: &Path| {
                edit_config(m, |c| {
                    c.insert(
                        "rope_parameters".into(),
                        json!({"rope_type": "yarn", "factor": 2.0}),
                    );
                })
            }),
            vec!["config.json", "rope_type", "yarn"],
        ),
        (
            "llama/llama2",
            Box::new(|m: &Path| {
                edit_config(m, |c| {
                    c.remove("num_attention_heads");
                })
            }),
            vec!["config.json", "num_attention_heads"],
        ),
        (
            "llama/llama2",
            Box::new(|m: &Path| {
                std::fs::write(m.join("config.json"), "{\"hidden_size\": 64,").unwrap()
            }),
            vec!["config.json"],
        ),
        (
            "llama/llama2",
            Box::new(|m: &Path| {
                std::fs::write(m.join("config.json"), b"{\"x\": \"\xff\"}").unwrap()
            }),
            vec!["config.json"],
        ),
    ]
}

/// Breakages of a copy of the PEFT adapter `peft/llama2_r8` (trained on `llama/llama2`).
fn adapter_breakages() -> Vec<(Edit, Vec<&'static str>)> {
    let cfg = |a: &Path, f: &dyn Fn(&mut Value)| {
        let p = a.join("adapter_config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(p, v.to_string()).unwrap();
    };
    let a_key = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
    vec![
        (
            Box::new(move |a: &Path| {
                cfg(a, &|v| {
                    v.as_object_mut().unwrap().remove("r");
                })
            }),
            vec!["adapter_config.json", "`r`"],
        ),
        (
            Box::new(move |a: &Path| cfg(a, &|v| v["target_modules"] = json!(["q_proj", "wq"]))),
            vec!["adapter_config.json", "target_modules", "wq"],
        ),
        (
            Box::new(|a: &Path| {
                std::fs::write(
                    a.join("adapter_config.json"),
                    "{\"r\": 8, \"lora_alpha\": 1e999}",
                )
                .unwrap()
            }),
            vec!["adapter_config.json"],
        ),
        (
            Box::new(move |a: &Path| {
                rewrite_in_place(&a.join("adapter_model.safetensors"), |t| {
                    let e = t.get_mut(a_key).unwrap();
                    // [r, in] → [r / 2, 2 * in]: the same bytes, the wrong shape.
                    e.1 = vec![e.1[0] / 2, e.1[1] * 2];
                })
            }),
            vec![
                "adapter_model.safetensors",
                "layers.1.self_attn.v_proj.lora_A.weight",
            ],
        ),
        (
            Box::new(|a: &Path| {
                let p = a.join("adapter_model.safetensors");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            }),
            vec!["adapter_model.safetensors"],
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// finetune
// ---------------------------------------------------------------------------------------

fn finetune<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_finetune"), args)
}

const TOKENS: &[u8] =
    b"{\"input_ids\":[1,5,6,7,8,9]}\n{\"input_ids\":[1,9,10,11],\"labels\":[-100,9,10,11]}\n";

/// The arguments of a quiet `finetune --task tokens` run with LoRA rank 2.
fn finetune_args(model: &Path, data: &Path, out: &Path, steps: &str) -> Vec<String> {
    [
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--task",
        "tokens",
        "--output",
        out.to_str().unwrap(),
        "--steps",
        steps,
        "--lora-r",
        "2",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `finetune --task tokens` on `model` with `data` must fail cleanly twice: to a fresh
/// output (which must not be created) and resuming a finished one-step run (whose
/// checkpoint, adapter and metrics must stay byte for byte as they were).
fn finetune_fails(model: &Path, data: &[u8], extra: &[&str], needles: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.jsonl");
    std::fs::write(&good, TOKENS).unwrap();
    let bad = d.path().join("data.jsonl");
    std::fs::write(&bad, data).unwrap();
    let run_dir = d.path().join("run");
    let base = |data: &Path, out: &Path, steps: &str| finetune_args(model, data, out, steps);
    // The earlier run, on the committed fixture and good data.
    let fixture = fixtures().join("llama/llama2");
    let mut args = base(&good, &run_dir, "1");
    args[1] = fixture.display().to_string();
    let o = finetune(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = snapshot(&run_dir);

    let fresh = d.path().join("fresh");
    let mut args = base(&bad, &fresh, "1");
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_clean_failure("finetune", &finetune(&args), needles);
    assert!(!fresh.exists(), "a failed run left {}", fresh.display());

    let mut args = base(&bad, &run_dir, "2");
    args.extend(["--resume".to_string(), run_dir.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_clean_failure("finetune", &finetune(&args), needles);
    assert!(
        snapshot(&run_dir) == before,
        "a failed run changed {}",
        run_dir.display()
    );
}

#[test]
fn finetune_bad_model_and_config() {
    for (fixture, edit, needles) in model_breakages() {
        let m = model_dir_copy(&fixtures().join(fixture));
        edit(m.path());
        finetune_fails(m.path(), TOKENS, &[], &needles);
    }
}

#[test]
fn finetune_bad_data_names_file_line_and_field() {
    let m = fixtures().join("llama/llama2");
    let cases: Vec<(&[u8], Vec<&str>)> = vec![
        (
            b"{\"input_ids\":[1,5,6]}\n{\"input_ids\":[1,\xff]}\n",
            vec!["data.jsonl:2", "UTF-8"],
        ),
        (
            b"{\"input_ids\":[1,5,6]}\n{\"input_ids\":[1,5\n",
            vec!["data.jsonl:2", "JSON"],
        ),
        (
            b"{\"input_ids\":[1,5,6]}\n[1,2]\n",
            vec!["data.jsonl:2", "object"],
        ),
        (b"{\"input_ids\":[]}\n", vec!["data.jsonl:1", "input_ids"]),
        (b"{\"labels\":[1]}\n", vec!["data.jsonl:1", "input_ids"]),
        (b"", vec!["data.jsonl", "empty"]),
        (b"\n  \n", vec!["data.jsonl", "empty"]),
        // Out-of-range token ids: the vocabulary has 320; negative; beyond u32.
        (
            b"{\"input_ids\":[1,320]}\n",
            vec!["data.jsonl:1", "input_ids", "320"],
        ),
        (
            b"{\"input_ids\":[1,-5]}\n",
            vec!["data.jsonl:1", "input_ids", "-5"],
        ),
        (
            b"{\"input_ids\":[1,4294967296]}\n",
            vec!["data.jsonl:1", "input_ids"],
        ),
        (
            b"{\"input_ids\":[1,5.5]}\n",
            vec!["data.jsonl:1", "input_ids"],
        ),
        // NaN / Infinity are not JSON numbers; 1e999 overflows.
        (
            b"{\"input_ids\":[1,5],\"labels\":[1,NaN]}\n",
            vec!["data.jsonl:1"],
        ),
        (b"{\"input_ids\":[1,Infinity]}\n", vec!["data.jsonl:1"]),
        (b"{\"input_ids\":[1,1e999]}\n", vec!["data.jsonl:1"]),
        (
            b"{\"input_ids\":[1,5],\"labels\":[1]}\n",
            vec!["data.jsonl:1", "labels"],
        ),
        (
            b"{\"input_ids\":[1,5],\"labels\":[1,-7]}\n",
            vec!["data.jsonl:1", "labels"],
        ),
        // Nothing to learn from: every label masked.
        (
            b"{\"input_ids\":[1,5],\"labels\":[-100,-100]}\n",
            vec!["data.jsonl", "-100"],
        ),
    ];
    for (data, needles) in cases {
        finetune_fails(&m, data, &[], &needles);
    }
    // A bad --eval file is named as well.
    let d = tempfile::tempdir().unwrap();
    let ev = d.path().join("eval.jsonl");
    std::fs::write(&ev, b"{\"input_ids\":[1,2]}\n\n{\"input_ids\":[1,\"x\"]}\n").unwrap();
    finetune_fails(
        &m,
        TOKENS,
        &["--eval", ev.to_str().unwrap()],
        &["eval.jsonl:3", "input_ids"],
    );
}

#[test]
fn finetune_bad_numbers_name_the_flag() {
    let m = fixtures().join("llama/llama2");
    for (flag, v) in [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "-1"),
        ("--lora-alpha", "inf"),
        ("--lora-alpha", "NaN"),
        ("--lora-dropout", "nan"),
        ("--lora-dropout", "1"),
        ("--max-grad-norm", "-inf"),
        ("--weight-decay", "NaN"),
        ("--memory-budget", "nan"),
        ("--memory-budget", "0"),
        ("--lora-r", "0"),
        ("--max-seq-len", "1"),
        ("--batch-size", "0"),
    ] {
        let arg = format!("{flag}={v}");
        finetune_fails(&m, TOKENS, &[&arg], &[flag]);
    }
    // --epochs conflicts with --steps (clap) and must be a positive finite number itself.
    finetune_fails(&m, TOKENS, &["--epochs=inf"], &["--epochs"]);
    // Grouping by length reorders the data; keeping the file order cannot do both.
    finetune_fails(
        &m,
        TOKENS,
        &["--group-by-length", "--no-shuffle"],
        &["--group-by-length", "--no-shuffle"],
    );
    // A sequence longer than --max-seq-len names file, line and flag.
    finetune_fails(
        &m,
        TOKENS,
        &["--max-seq-len=4"],
        &["data.jsonl:1", "--max-seq-len"],
    );
    finetune_fails(
        &m,
        TOKENS,
        &["--target-modules", "q_proj,wq"],
        &["target", "wq"],
    );
}

#[test]
fn finetune_bad_init_adapter() {
    let m = fixtures().join("llama/llama2");
    for (edit, needles) in adapter_breakages() {
        let a = model_dir_copy(&fixtures().join("peft/llama2_r8"));
        edit(a.path());
        let arg = a.path().to_str().unwrap().to_string();
        finetune_fails(&m, TOKENS, &["--init-adapter", &arg], &needles);
    }
}

#[test]
fn finetune_unwritable_output_and_write_error() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d.jsonl");
    std::fs::write(&data, TOKENS).unwrap();
    let model = fixtures().join("llama/llama2");
    let file = d.path().join("plain-file");
    std::fs::write(&file, b"keep").unwrap();
    let args = |out: &Path, steps: &str| finetune_args(&model, &data, out, steps);
    // The output's parent is a regular file.
    let o = finetune(&args(&file.join("out"), "1"));
    assert_clean_failure("finetune", &o, &["plain-file"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");

    // A finished one-step run, then a resumed one whose writes fail (file size limit 8 KiB:
    // the metrics lines fit, the optimizer state and adapter weights do not).
    let run_dir = d.path().join("run");
    let o = finetune(&args(&run_dir, "1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut before = snapshot(&run_dir);
    let metrics_before = before.remove(Path::new("metrics.jsonl")).unwrap();
    let mut a = args(&run_dir, "2");
    a.extend(["--resume".to_string(), run_dir.display().to_string()]);
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_finetune"))
        .args(&a)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_clean_failure("finetune", &o, &["run"]);
    let mut after = snapshot(&run_dir);
    // metrics.jsonl may have gained the step-2 line (a resume truncates it back); the
    // checkpoint and the adapter are as they were and no half-written checkpoint is left.
    let metrics_after = after.remove(Path::new("metrics.jsonl")).unwrap();
    assert!(metrics_after.starts_with(&metrics_before));
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "files added or removed"
    );
    assert!(after == before, "the earlier checkpoint or adapter changed");
}

// ---------------------------------------------------------------------------------------
// merge
// ---------------------------------------------------------------------------------------

fn merge<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_merge"), args)
}

/// `merge` of `model` and `adapter` must fail cleanly twice: to a fresh output (which must
/// not be created, nor any temporary directory beside it) and with `--force` over an
/// existing merged directory (which must stay as it was).
fn merge_fails(model: &Path, adapter: &Path, extra: &[&str], needles: &[&str]) {
    let d = OutDir::new();
    let existing = d.path("merged");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("model.safetensors"), OutDir::KEEP).unwrap();
    let before = snapshot(&existing);
    for (out, force) in [(d.path("fresh"), false), (existing.clone(), true)] {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--model"),
            model.as_os_str(),
            OsStr::new("--adapter"),
            adapter.as_os_str(),
            OsStr::new("--output"),
            out.as_os_str(),
        ];
        if force {
            args.push(OsStr::new("--force"));
        }
        args.extend(extra.iter().map(OsStr::new));
        assert_clean_failure("merge", &merge(&args), needles);
        d.assert_untouched(&["merged"]);
        assert!(snapshot(&existing) == before, "the existing output changed");
    }
}

#[test]
fn merge_bad_model_and_config() {
    let adapter = fixtures().join("peft/llama2_r8");
    for (fixture, edit, needles) in model_breakages() {
        let m = model_dir_copy(&fixtures().join(fixture));
        edit(m.path());
        merge_fails(m.path(), &adapter, &[], &needles);
    }
}

#[test]
fn merge_bad_adapter() {
    let model = fixtures().join("llama/llama2");
    for (edit, needles) in adapter_breakages() {
        let a = model_dir_copy(&fixtures().join("peft/llama2_r8"));
        edit(a.path());
        merge_fails(&model, a.path(), &[], &needles);
    }
    // An adapter for another model: lora_B has the wrong number of rows for this one.
    let a = model_dir_copy(&fixtures().join("peft/llama2_r8"));
    let k = "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight";
    rewrite_in_place(&a.path().join("adapter_model.safetensors"), |t| {
        let e = t.get_mut(k).unwrap();
        e.1 = vec![e.1[0] * 2, e.1[1] / 2];
    });
    merge_fails(
        &model,
        a.path(),
        &[],
        &["layers.0.mlp.down_proj.lora_B.weight"],
    );
    // Not directories; a bad --dtype (clap).
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    merge_fails(&model, &f, &[], &["--adapter", "file"]);
    merge_fails(&f, a.path(), &[], &["--model", "file"]);
    merge_fails(&model, a.path(), &["--dtype", "nan"], &["--dtype"]);
}

#[test]
fn merge_unwritable_output_and_write_error() {
    let model = fixtures().join("llama/llama2");
    let adapter = fixtures().join("peft/llama2_r8");
    let d = OutDir::new();
    // The output's parent is a regular file.
    let o = merge(&[
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--adapter"),
        adapter.as_os_str(),
        OsStr::new("--output"),
        d.out().join("merged").as_os_str(),
    ]);
    assert_clean_failure("merge", &o, &["out.safetensors"]);
    d.assert_untouched(&[]);
    // A write error half-way through model.safetensors (~200 KiB against a 4 KiB limit),
    // to a fresh output and over an existing one with --force.
    let existing = d.path("merged");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("model.safetensors"), OutDir::KEEP).unwrap();
    let before = snapshot(&existing);
    for (out, force) in [(d.path("fresh"), false), (existing.clone(), true)] {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_merge"))
            .arg("--model")
            .arg(&model)
            .arg("--adapter")
            .arg(&adapter)
            .arg("--output")
            .arg(&out)
            .env("RUST_BACKTRACE", "1");
        if force {
            cmd.arg("--force");
        }
        let o = cmd.output().unwrap();
        let name = out.file_name().unwrap().to_str().unwrap();
        assert_clean_failure("merge", &o, &[name, "model.safetensors"]);
        d.assert_untouched(&["merged"]);
        assert!(snapshot(&existing) == before, "the existing output changed");
    }
}

// ---------------------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------------------

fn demo<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(env!("CARGO_BIN_EXE_demo"), args)
}

/// `demo --quick --model M --tokenizer T` must fail cleanly, before writing anything: to a
/// fresh `--out` (which must not appear) and to an existing one (left as it was).
fn demo_fails(model: &Path, tokenizer: &Path, extra: &[&str], needles: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let existing = d.path().join("existing");
    std::fs::create_dir_all(existing.join("data")).unwrap();
    std::fs::write(existing.join("metrics.json"), b"{\"kept\": true}").unwrap();
    std::fs::write(existing.join("data/train.jsonl"), b"{}\n").unwrap();
    let before = snapshot(&existing);
    for out in [d.path().join("fresh"), existing.clone()] {
        let mut args: Vec<String> = [
            "--quick",
            "--model",
            model.to_str().unwrap(),
            "--tokenizer",
            tokenizer.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        assert_clean_failure("demo", &demo(&args), needles);
    }
    assert!(
        !d.path().join("fresh").exists(),
        "a failed demo left its --out"
    );
    assert_eq!(
        snapshot(&existing),
        before,
        "a failed demo changed an existing --out"
    );
}

#[test]
fn demo_on_a_broken_checkpoint_or_tokenizer_writes_nothing() {
    let tok = fixtures().join("llama/tiny_tokenizer.json");
    for (fixture, edit, needles) in model_breakages() {
        let m = model_dir_copy(&fixtures().join(fixture));
        edit(m.path());
        demo_fails(m.path(), &tok, &[], &needles);
    }
    let model = fixtures().join("llama/llama2");
    let d = tempfile::tempdir().unwrap();
    // A tokenizer that is not JSON, one that is missing, one larger than the model's vocab.
    let bad = d.path().join("tokenizer.json");
    std::fs::write(&bad, b"{\"model\": ").unwrap();
    demo_fails(&model, &bad, &[], &["tokenizer.json"]);
    demo_fails(&model, &d.path().join("none.json"), &[], &["none.json"]);
    let small = model_dir_copy(&model);
    edit_config(small.path(), |c| {
        c.insert("vocab_size".into(), json!(100));
    });
    edit_header_vocab(small.path(), 100);
    demo_fails(
        small.path(),
        &tok,
        &[],
        &["tiny_tokenizer.json", "vocab_size 100"],
    );
}

/// Cuts the embedding and head of `model.safetensors` in `m` to `vocab` rows, so that the
/// checkpoint itself is consistent with a config of that vocabulary.
fn edit_header_vocab(m: &Path, vocab: usize) {
    let p = m.join("model.safetensors");
    let b = rewrite_safetensors(&p, |t| {
        for name in ["model.embed_tokens.weight", "lm_head.weight"] {
            if let Some((dtype, shape, bytes)) = t.get_mut(name) {
                let row = bytes.len() / shape[0];
                bytes.truncate(row * vocab);
                shape[0] = vocab;
                let _ = dtype;
            }
        }
    });
    std::fs::write(p, b).unwrap();
}

#[test]
fn demo_bad_flags() {
    let model = fixtures().join("llama/llama2");
    let tok = fixtures().join("llama/tiny_tokenizer.json");
    for (extra, needles) in [
        (vec!["--lr", "nan"], vec!["--lr"]),
        (vec!["--cases", "0"], vec!["--cases"]),
        (vec!["--steps", "x"], vec!["--steps"]),
        (vec!["--device", "tpu"], vec!["tpu"]),
    ] {
        demo_fails(&model, &tok, &extra, &needles);
    }
    // --model without --tokenizer.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let o = demo(&[
        OsStr::new("--quick"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    // clap names the missing flag on the line after its one `error:` line.
    assert_clean_failure("demo", &o, &["required argument"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--tokenizer"));
    assert!(!out.exists());
    // An --out whose parent is a regular file.
    let file = d.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let o = demo(&[
        OsStr::new("--quick"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--tokenizer"),
        tok.as_os_str(),
        OsStr::new("--chat-template"),
        OsStr::new("llama2"),
        OsStr::new("--out"),
        file.join("out").as_os_str(),
    ]);
    assert_clean_failure("demo", &o, &["file"]);
    // A tokenizer without a chat template and no explicit choice: one message, nothing written.
    let out = d.path().join("no-template");
    let o = demo(&[
        OsStr::new("--quick"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--tokenizer"),
        tok.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert_clean_failure(
        "demo",
        &o,
        &[
            "tiny_tokenizer.json has no chat template",
            "--chat-template",
        ],
    );
    assert!(!out.exists());
}
