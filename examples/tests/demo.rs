//! The `demo` binary's command line: every documented flag is in `--help`, bad values fail
//! with one message naming the flag, and a run the libraries cannot do yet exits non-zero
//! without writing a report.
//!
//! Not covered yet (the pipeline is not wired, see `ro_examples::demo::MISSING`): running
//! `demo --quick` end to end and checking report.md and metrics.json.

use std::process::Command;

fn demo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_demo"))
}

#[test]
fn help_documents_every_flag() {
    let out = demo().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--out",
        "--quick",
        "--seed",
        "--cases",
        "--steps",
        "--pretrain-steps",
        "--model-size",
        "--model",
        "--tokenizer",
        "--eval-cases",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_values_exit_non_zero_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--cases", "3"], "--cases"),
        (vec!["--steps", "0"], "--steps"),
        (vec!["--model", "m"], "--tokenizer"),
        (vec!["--model-size", "huge"], "--model-size"),
    ] {
        let out = demo()
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn unfinished_pipeline_fails_without_writing_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo()
        .args(["--quick", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    if out.status.success() {
        // The pipeline is wired: the report must then exist.
        assert!(dir.path().join("report.md").is_file());
        assert!(dir.path().join("metrics.json").is_file());
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot run yet"), "{err}");
        assert!(!dir.path().join("report.md").exists());
        assert!(!dir.path().join("metrics.json").exists());
    }
}
