//! Nothing we ship opens a network connection or reaches a model hub.
//!
//! - Statically: no HTTP client or async network runtime (reqwest, hyper, ureq, hf-hub,
//!   tokio, curl, ...) is in the normal (non-dev, non-build) dependency graph of our
//!   libraries and programs, with default or all features, and `tokenizers` is built without
//!   its `http` feature (which would fetch tokenizers from the Hugging Face Hub).
//! - At run time: `evaluate`, `generate` and `quantize` run with every proxy variable and
//!   `HF_ENDPOINT` pointing at a local listener, and that listener must see no connection;
//!   under a network namespace without interfaces (`unshare -n`, where available) they must
//!   give the same results; under `strace` (where available) they must create no IPv4/IPv6
//!   socket.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Crates whose presence would mean network access at run time.
const NETWORK_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "ureq",
    "hf-hub",
    "curl",
    "isahc",
    "attohttpc",
    "surf",
    "tokio",
    "async-std",
    "socket2",
    "mio",
    "native-tls",
    "rustls",
];

const OUR_PACKAGES: &[&str] = &[
    "qlora-core",
    "llama-model",
    "ro-tasks",
    "ro-metrics",
    "ro-examples",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo_tree(extra: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace())
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"]);
    for p in OUR_PACKAGES {
        cmd.args(["-p", p]);
    }
    let out = cmd.args(extra).output().expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn no_network_crate_in_the_runtime_dependency_graph() {
    for features in [&[][..], &["--all-features"][..]] {
        let tree = cargo_tree(&[&["--format", "{p}"][..], features].concat());
        let names: Vec<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(
            names.contains(&"burn") && names.contains(&"tokenizers"),
            "{tree}"
        );
        for bad in NETWORK_CRATES {
            assert!(
                !names.contains(bad),
                "`{bad}` is a run-time dependency (features {features:?}); see `cargo tree -i {bad}`"
            );
        }
        // tokenizers' features, as cargo resolved them for our packages.
        let tree = cargo_tree(&[&["--format", "{p} [{f}]"][..], features].concat());
        let tok: Vec<&str> = tree
            .lines()
            .filter(|l| l.starts_with("tokenizers "))
            .collect();
        assert!(!tok.is_empty());
        for line in tok {
            let feats = line.split('[').nth(1).unwrap_or_default();
            assert!(
                !feats.split([',', ']']).any(|f| f.trim() == "http"),
                "tokenizers is built with its `http` feature: {line}"
            );
        }
    }
}

fn fixtures() -> PathBuf {
    workspace().join("tools/fixtures")
}

/// The three programs on small committed inputs: (name, program, arguments).
fn runs(tmp: &Path) -> Vec<(&'static str, &'static str, Vec<OsString>)> {
    let rouge_in = tmp.join("rouge.jsonl");
    std::fs::write(
        &rouge_in,
        "{\"id\":1,\"reference\":\"the cat sat\",\"candidate\":\"a cat sat\"}\n",
    )
    .unwrap();
    let os = |v: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<OsString> {
        v.iter().map(|s| s.as_ref().to_os_string()).collect()
    };
    vec![
        (
            "evaluate",
            env!("CARGO_BIN_EXE_evaluate"),
            os(&[&"rouge", &"--stem", &"--input", &rouge_in]),
        ),
        (
            "generate",
            env!("CARGO_BIN_EXE_generate"),
            os(&[
                &"--model",
                &fixtures().join("llama/llama2"),
                &"--tokenizer",
                &fixtures().join("llama/tiny_tokenizer.json"),
                &"--prompt",
                &"the patient",
                &"--max-new-tokens",
                &"3",
            ]),
        ),
        (
            "quantize",
            env!("CARGO_BIN_EXE_quantize"),
            os(&[
                &"--input",
                &fixtures().join("bnb/hf_tiny_dense/model.safetensors"),
                &"--output",
                &tmp.join("q.safetensors"),
            ]),
        ),
    ]
}

fn succeed(name: &str, out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn programs_never_contact_a_proxy_or_hub() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    for (name, exe, args) in runs(tmp.path()) {
        let mut cmd = Command::new(exe);
        cmd.args(&args);
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HF_ENDPOINT",
        ] {
            cmd.env(var, &url);
        }
        cmd.env_remove("HF_HUB_OFFLINE")
            .env_remove("TRANSFORMERS_OFFLINE")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        succeed(name, cmd.output().unwrap());
        match listener.accept() {
            Ok((_, peer)) => panic!("{name} opened a connection to the proxy (from {peer})"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        }
    }
}

/// Whether `tool args.. true` runs here (namespaces and ptrace may be forbidden in a
/// container; then the check it enables is reported as skipped).
fn available(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn programs_work_without_any_network_interface() {
    if !available("unshare", &["-n"]) {
        eprintln!("SKIPPED: `unshare -n` is not permitted here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, exe, args) in runs(tmp.path()) {
        let plain = succeed(name, Command::new(exe).args(&args).output().unwrap());
        let isolated = succeed(
            name,
            Command::new("unshare")
                .arg("-n")
                .arg(exe)
                .args(&args)
                .output()
                .unwrap(),
        );
        assert_eq!(plain, isolated, "{name}: output differs without a network");
    }
}

#[test]
fn programs_create_no_internet_socket() {
    let trace = ["-f", "-qq", "-e", "trace=socket"];
    if !available("strace", &trace) {
        eprintln!("SKIPPED: strace is not available or ptrace is not permitted here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, exe, args) in runs(tmp.path()) {
        let log = tmp.path().join(format!("{name}.strace"));
        let out = Command::new("strace")
            .args(trace)
            .arg("-o")
            .arg(&log)
            .arg(exe)
            .args(&args)
            .output()
            .unwrap();
        succeed(name, out);
        let calls = std::fs::read_to_string(&log).unwrap();
        for family in ["AF_INET", "AF_INET6", "AF_PACKET"] {
            assert!(
                !calls
                    .lines()
                    .any(|l| l.contains(&format!("socket({family},"))),
                "{name} created a {family} socket:\n{calls}"
            );
        }
    }
}
