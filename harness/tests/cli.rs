//! The `harness` command line: usage errors, help, exit-code documentation.
//!
//! Also makes Cargo build the `harness` binary for every test run (Cargo builds a package's
//! binaries for its integration tests), which the end-to-end tests in `tests/` rely on.

use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

#[test]
fn run_help_documents_exit_codes_and_the_run_directory() {
    let out = harness()
        .args(["run", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("running harness: {e}"));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--nemesis",
        "--seed",
        "--node-bin",
        "Exit codes",
        "255",
        "latest",
    ] {
        assert!(
            text.contains(needle),
            "`harness run --help` lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn bad_options_exit_254_before_anything_starts() {
    let dir = std::env::temp_dir().join(format!("harness-cli-{}", std::process::id()));
    for args in [
        &["run", "--clients", "0"][..],
        &["run", "--nemesis", "pause,flood"],
        &["run", "--op-timeout", "1ms"],
        &["run", "--rate", "-3"],
        &["frobnicate"],
    ] {
        let out = harness()
            .args(args)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running harness: {e}"));
        assert_eq!(out.status.code(), Some(254), "{args:?}");
    }
    assert!(
        !dir.exists(),
        "a usage error must not create the output directory"
    );
}
