//! `harness check` on input it must refuse: exit 254 with the file and line named once, and no
//! vacuous pass (docs/exit-codes.md, docs/history-format.md).

use std::path::PathBuf;
use std::process::{Command, Output};

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-check-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn check(path: &PathBuf, flags: &[&str]) -> Output {
    harness()
        .arg("check")
        .arg(path)
        .args(flags)
        .output()
        .unwrap_or_else(|e| panic!("running harness: {e}"))
}

/// Runs `harness check`, asserts the exit code, returns stderr.
fn expect(path: &PathBuf, flags: &[&str], code: i32) -> String {
    let out = check(path, flags);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{} {flags:?}\nstdout: {}\nstderr: {stderr}",
        path.display(),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn ev(index: u64, process: &str, kind: &str, f: &str, value: &str) -> String {
    format!(
        "{{\"index\":{index},\"time\":{t},\"process\":{process},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"k\",\"value\":{value}}}\n",
        t = (index + 1) * 10
    )
}

fn history(events: &[String]) -> String {
    events.concat()
}

fn write_a() -> String {
    history(&[
        ev(0, "1", "invoke", "write", "\"a\""),
        ev(1, "1", "ok", "write", "\"a\""),
    ])
}

#[test]
fn string_process_id_exits_254_naming_the_line() {
    let text = write_a() + &ev(2, "\"client-3\"", "invoke", "read", "null");
    let p = temp("string-id.jsonl", &text);
    let err = expect(&p, &[], 254);
    assert!(
        err.contains(&format!("{}:3: process \"client-3\"", p.display())),
        "{err}"
    );
}

#[test]
fn history_of_string_ids_is_not_a_pass() {
    let text = history(&[
        ev(0, "\"c1\"", "invoke", "write", "\"a\""),
        ev(1, "\"c1\"", "ok", "write", "\"a\""),
    ]);
    expect(&temp("all-string-ids.jsonl", &text), &[], 254);
}

#[test]
fn string_id_on_an_impossible_read_exits_254() {
    let text = write_a()
        + &ev(2, "\"r\"", "invoke", "read", "null")
        + &ev(3, "\"r\"", "ok", "read", "\"never\"");
    expect(&temp("hidden-read.jsonl", &text), &[], 254);
}

#[test]
fn edn_string_process_exits_254() {
    let p = temp(
        "string-id.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n{:process \"c\", :type :invoke, :f :read, :value nil}\n",
    );
    let err = expect(&p, &["--format", "jepsen-edn"], 254);
    assert!(err.contains(&format!("{}:3:", p.display())), "{err}");
}

#[test]
fn porcupine_named_process_exits_254() {
    let p = temp(
        "named.log",
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\nINFO  jepsen.util - :reader\t:invoke\t:read\tnil\n",
    );
    let err = expect(&p, &["--format", "porcupine-etcd"], 254);
    assert!(err.contains(&format!("{}:3:", p.display())), "{err}");
}

#[test]
fn ok_write_with_another_value_exits_254_naming_both_lines() {
    let text = history(&[
        ev(0, "1", "invoke", "write", "\"v1\""),
        ev(1, "1", "ok", "write", "\"v2\""),
    ]);
    let p = temp("echo-write.jsonl", &text);
    let err = expect(&p, &[], 254);
    assert!(
        err.contains(&format!("{}:2:", p.display())) && err.contains("invoked on line 1"),
        "{err}"
    );
}

#[test]
fn ok_cas_with_another_pair_exits_254() {
    let text = history(&[
        ev(0, "1", "invoke", "cas", "[\"a\",\"b\"]"),
        ev(1, "1", "ok", "cas", "[\"a\",\"c\"]"),
    ]);
    expect(&temp("echo-cas.jsonl", &text), &[], 254);
}

#[test]
fn empty_history_exits_254_unless_require_ops_is_0() {
    let p = temp("empty.jsonl", "");
    let err = expect(&p, &[], 254);
    assert!(err.contains("nothing was checked"), "{err}");
    expect(&p, &["--require-ops", "0"], 0);
}

#[test]
fn nemesis_only_history_exits_254() {
    let p = temp(
        "nemesis-only.jsonl",
        "{\"index\":0,\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":null}\n",
    );
    expect(&p, &[], 254);
}

#[test]
fn history_where_nothing_took_effect_exits_254() {
    // A cluster that refused every request: every operation failed or timed out.
    let text = history(&[
        ev(0, "1", "invoke", "write", "\"a\""),
        ev(1, "1", "fail", "write", "\"a\""),
        ev(2, "2", "invoke", "read", "null"),
        ev(3, "2", "info", "read", "null"),
    ]);
    let err = expect(&temp("all-failed.jsonl", &text), &[], 254);
    assert!(
        err.contains("0 of 2 client operations took effect"),
        "{err}"
    );
}

#[test]
fn require_ops_raises_the_floor() {
    let p = temp(
        "two-ops.jsonl",
        &(write_a() + &ev(2, "2", "invoke", "read", "null") + &ev(3, "2", "ok", "read", "\"a\"")),
    );
    expect(&p, &["--require-ops", "2"], 0);
    let err = expect(&p, &["--require-ops", "3"], 254);
    assert!(err.contains("fewer than --require-ops 3"), "{err}");
}

#[test]
fn a_violation_below_the_floor_still_exits_1() {
    let text =
        write_a() + &ev(2, "2", "invoke", "read", "null") + &ev(3, "2", "ok", "read", "\"b\"");
    expect(
        &temp("short-violation.jsonl", &text),
        &["--require-ops", "100"],
        1,
    );
}

#[test]
fn require_ops_must_be_a_number() {
    expect(
        &temp("flag.jsonl", &write_a()),
        &["--require-ops", "many"],
        254,
    );
}

#[test]
fn initial_is_typed_json() {
    // A first read of the string "0" is linearizable only if the register starts as "0".
    let text = history(&[
        ev(0, "1", "invoke", "read", "null"),
        ev(1, "1", "ok", "read", "\"0\""),
    ]);
    let p = temp("initial.jsonl", &text);
    expect(&p, &["--initial", "\"0\""], 0);
    expect(&p, &["--initial", "0"], 1);
    expect(&p, &[], 1);
    let ints = history(&[
        ev(0, "1", "invoke", "read", "null"),
        ev(1, "1", "ok", "read", "0"),
    ]);
    let p = temp("initial-int.jsonl", &ints);
    expect(&p, &["--initial", "0"], 0);
    expect(&p, &["--initial", "\"0\""], 1);
}

#[test]
fn initial_that_is_not_json_exits_254_with_a_hint() {
    let p = temp("initial-bad.jsonl", &write_a());
    let err = expect(&p, &["--initial", "v0"], 254);
    assert!(
        err.contains("not JSON") && err.contains("'\"v0\"'"),
        "{err}"
    );
    let err = expect(&p, &["--initial", "[1,2]"], 254);
    assert!(err.contains("a JSON string, an integer or null"), "{err}");
}

#[test]
fn malformed_line_is_located_once() {
    let p = temp(
        "cut-line.jsonl",
        &(write_a() + "{\"index\":2,\"time\":3,\"proc\n"),
    );
    let err = expect(&p, &[], 254);
    assert!(
        err.contains(&format!("{}:3: malformed JSON", p.display())),
        "{err}"
    );
    assert!(!err.contains("at line"), "{err}");
    assert_eq!(err.matches("malformed").count(), 1, "said once: {err}");
}

#[test]
fn rule_violation_is_stated_once() {
    let w = ev(0, "4", "invoke", "write", "\"a\"");
    let p = temp("open-twice.jsonl", &(w.clone() + &w));
    let err = expect(&p, &[], 254);
    assert_eq!(
        err.trim_end(),
        format!(
            "harness check: {}:2: process 4 invokes while its operation invoked on line 1 is still open",
            p.display()
        )
    );
}

#[test]
fn missing_file_is_stated_once() {
    let p = std::env::temp_dir().join("harness-check-strict-no-such-file.jsonl");
    let err = expect(&p, &[], 254);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}
