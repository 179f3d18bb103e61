//! Strict input: every reader rejects, with its line, what it used to skip or guess at (a
//! client event under a name, an `ok` that echoes another input than the one invoked), and no
//! error message states its location twice.

use std::error::Error as _;

use lincheck::import::{read_edn_str, read_etcd_str};
use lincheck::jsonl::ReadLineError;
use lincheck::{
    check, read_file, read_jsonl, CheckOptions, Format, LineError, LineErrorKind, ModelKind,
    Outcome, ReadError, Value, Verdict,
};

fn jsonl_err(text: &str) -> LineError {
    match read_jsonl(text.as_bytes()) {
        Err(ReadLineError::Line(e)) => e,
        other => panic!("expected a line error, got {other:?}"),
    }
}

fn ev(index: u64, process: &str, kind: &str, f: &str, value: &str) -> String {
    format!(
        r#"{{"index":{index},"time":{t},"process":{process},"type":"{kind}","f":"{f}","key":"k","value":{value}}}"#,
        t = (index + 1) * 10
    )
}

fn lines(events: &[String]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn assert_bad_process(e: &LineError, line: u64, shown: &str) {
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.kind, LineErrorKind::BadProcess(shown.to_string()), "{e}");
}

// ---- JSONL: the process field ----

#[test]
fn jsonl_rejects_a_string_process_other_than_nemesis() {
    let text = lines(&[
        ev(0, "1", "invoke", "write", r#""a""#),
        ev(1, "1", "ok", "write", r#""a""#),
        ev(2, r#""client-3""#, "invoke", "write", r#""b""#),
    ]);
    assert_bad_process(&jsonl_err(&text), 3, r#""client-3""#);
}

#[test]
fn jsonl_history_of_string_ids_is_rejected_not_an_empty_pass() {
    let text = lines(&[
        ev(0, r#""c1""#, "invoke", "write", r#""a""#),
        ev(1, r#""c1""#, "ok", "write", r#""a""#),
    ]);
    assert_bad_process(&jsonl_err(&text), 1, r#""c1""#);
}

#[test]
fn jsonl_string_id_cannot_hide_an_impossible_read() {
    // The read of "never" is impossible; under a string id it used to vanish as a nemesis event.
    let text = lines(&[
        ev(0, "1", "invoke", "write", r#""a""#),
        ev(1, "1", "ok", "write", r#""a""#),
        ev(2, r#""reader""#, "invoke", "read", "null"),
        ev(3, r#""reader""#, "ok", "read", r#""never""#),
    ]);
    assert_bad_process(&jsonl_err(&text), 3, r#""reader""#);
}

#[test]
fn jsonl_rejects_a_negative_process() {
    assert_bad_process(
        &jsonl_err(&lines(&[ev(0, "-1", "invoke", "read", "null")])),
        1,
        "-1",
    );
}

#[test]
fn jsonl_rejects_a_fractional_process() {
    assert_bad_process(
        &jsonl_err(&lines(&[ev(0, "1.5", "invoke", "read", "null")])),
        1,
        "1.5",
    );
}

#[test]
fn jsonl_rejects_a_boolean_or_structured_process() {
    assert_bad_process(
        &jsonl_err(&lines(&[ev(0, "true", "invoke", "read", "null")])),
        1,
        "true",
    );
    assert_bad_process(
        &jsonl_err(&lines(&[ev(0, r#"{"id":1}"#, "invoke", "read", "null")])),
        1,
        r#"{"id":1}"#,
    );
}

#[test]
fn jsonl_null_process_is_a_missing_field() {
    let e = jsonl_err(&lines(&[ev(0, "null", "invoke", "read", "null")]));
    assert_eq!(e.kind, LineErrorKind::MissingField("process"));
}

#[test]
fn jsonl_nemesis_event_with_unknown_type_is_rejected() {
    let t =
        r#"{"index":0,"time":1,"process":"nemesis","type":"start","f":"partition","value":null}"#;
    let e = jsonl_err(t);
    assert_eq!(
        (e.line, e.kind),
        (1, LineErrorKind::UnknownType("start".into()))
    );
}

#[test]
fn jsonl_nemesis_events_are_still_kept() {
    let t = r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"kill","value":["n1"]}"#;
    let h = read_jsonl(t.as_bytes()).expect("a nemesis event is valid");
    assert_eq!((h.ops.len(), h.nemesis.len()), (0, 1));
}

// ---- JSONL: an `ok` that contradicts its invocation ----

fn assert_value_mismatch(e: &LineError, line: u64, invoke_line: u64) {
    match &e.kind {
        LineErrorKind::CompletionMismatch {
            field: "value",
            invoke_line: l,
            ..
        } => assert_eq!((e.line, *l), (line, invoke_line), "{e}"),
        other => panic!("expected a value mismatch, got {other:?}"),
    }
}

#[test]
fn jsonl_ok_write_with_another_value_is_rejected_naming_both_lines() {
    let text = lines(&[
        ev(0, "7", "invoke", "write", r#""v1""#),
        ev(1, "8", "invoke", "read", "null"),
        ev(2, "7", "ok", "write", r#""v2""#),
    ]);
    let e = jsonl_err(&text);
    assert_value_mismatch(&e, 3, 1);
    let msg = e.to_string();
    assert!(
        msg.contains("\"v1\"") && msg.contains("\"v2\"") && msg.contains("line 1"),
        "{msg}"
    );
}

#[test]
fn jsonl_ok_write_with_an_integer_for_a_string_is_rejected() {
    let text = lines(&[
        ev(0, "1", "invoke", "write", r#""1""#),
        ev(1, "1", "ok", "write", "1"),
    ]);
    assert_value_mismatch(&jsonl_err(&text), 2, 1);
}

#[test]
fn jsonl_ok_cas_with_another_pair_is_rejected() {
    let text = lines(&[
        ev(0, "1", "invoke", "cas", r#"["a","b"]"#),
        ev(1, "1", "ok", "cas", r#"["a","c"]"#),
    ]);
    assert_value_mismatch(&jsonl_err(&text), 2, 1);
}

#[test]
fn jsonl_ok_cas_with_a_swapped_pair_is_rejected() {
    let text = lines(&[
        ev(0, "1", "invoke", "cas", r#"["a","b"]"#),
        ev(1, "1", "ok", "cas", r#"["b","a"]"#),
    ]);
    assert_value_mismatch(&jsonl_err(&text), 2, 1);
}

#[test]
fn jsonl_ok_cas_whose_value_is_not_a_pair_is_rejected() {
    let text = lines(&[
        ev(0, "1", "invoke", "cas", r#"["a","b"]"#),
        ev(1, "1", "ok", "cas", r#""b""#),
    ]);
    let e = jsonl_err(&text);
    assert!(
        matches!(e.kind, LineErrorKind::BadValue { f: "cas", .. }) && e.line == 2,
        "{e}"
    );
}

#[test]
fn jsonl_ok_append_with_another_suffix_is_rejected() {
    let text = lines(&[
        ev(0, "1", "invoke", "append", r#""x""#),
        ev(1, "1", "ok", "append", r#""y""#),
    ]);
    assert_value_mismatch(&jsonl_err(&text), 2, 1);
}

#[test]
fn jsonl_ok_may_omit_the_value_and_fail_or_info_values_are_not_compared() {
    let text = lines(&[
        ev(0, "1", "invoke", "write", r#""a""#),
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k"}"#.into(),
        ev(2, "2", "invoke", "cas", r#"["a","b"]"#),
        ev(3, "2", "fail", "cas", r#""cas_mismatch""#),
        ev(4, "3", "invoke", "write", r#""c""#),
        ev(5, "3", "info", "write", "null"),
    ]);
    let h = read_jsonl(text.as_bytes()).expect("valid");
    assert_eq!(h.ops[0].outcome, Outcome::Ok);
    assert_eq!(
        h.ops[2].arg,
        Value::str("c"),
        "the invocation's value counts"
    );
}

// ---- JSONL: the torn tail is only what a crash can leave ----

#[test]
fn jsonl_unterminated_last_line_with_a_wrong_type_is_an_error_not_a_torn_tail() {
    // Complete JSON, just no newline: a crash cannot produce a wrong type, so it is not torn.
    let text = format!(
        "{}\n{}",
        ev(0, "1", "invoke", "write", r#""a""#),
        r#"{"index":1,"time":"late","process":1,"type":"ok","f":"write","key":"k","value":"a"}"#
    );
    let e = jsonl_err(&text);
    assert!(
        matches!(e.kind, LineErrorKind::Malformed { .. }) && e.line == 2,
        "{e}"
    );
}

#[test]
fn jsonl_unterminated_last_line_with_a_bad_process_is_an_error() {
    let text = format!(
        "{}\n{}",
        ev(0, "1", "invoke", "write", r#""a""#),
        ev(1, r#""x""#, "invoke", "read", "null")
    );
    assert_bad_process(&jsonl_err(&text), 2, r#""x""#);
}

#[test]
fn jsonl_cut_inside_a_multibyte_character_is_a_torn_tail() {
    let mut bytes = lines(&[ev(0, "1", "invoke", "write", r#""a""#)]).into_bytes();
    bytes.extend_from_slice(
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"é"#.as_bytes(),
    );
    bytes.pop(); // half of the two bytes of "é"
    let h = read_jsonl(&bytes[..]).expect("a torn tail is not an error");
    assert_eq!(h.torn_tail, Some(2));
}

#[test]
fn jsonl_complete_line_that_is_not_utf8_is_an_error() {
    let mut bytes = lines(&[ev(0, "1", "invoke", "write", r#""a""#)]).into_bytes();
    bytes.extend_from_slice(b"{\"key\":\"\xff\"}\n");
    let e = match read_jsonl(&bytes[..]) {
        Err(ReadLineError::Line(e)) => e,
        other => panic!("expected a line error, got {other:?}"),
    };
    assert!(
        matches!(e.kind, LineErrorKind::Malformed { .. }) && e.line == 2,
        "{e}"
    );
}

// ---- Messages: the location once ----

#[test]
fn malformed_json_message_does_not_repeat_serdes_line() {
    let text = format!(
        "{}\n{{\"index\":1,\"time\":2,\"proc\n",
        ev(0, "1", "invoke", "write", r#""a""#)
    );
    let msg = jsonl_err(&text).to_string();
    assert!(msg.starts_with("line 2: malformed JSON"), "{msg}");
    assert!(!msg.contains("at line"), "{msg}");
    assert_eq!(msg.matches("line").count(), 1, "{msg}");
    assert!(msg.contains("column"), "{msg}");
}

#[test]
fn file_errors_name_file_and_line_once_and_have_no_duplicate_source() {
    let dir = std::env::temp_dir().join(format!("lincheck-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("open.jsonl");
    let w = ev(0, "4", "invoke", "write", r#""a""#);
    std::fs::write(&path, format!("{w}\n{w}\n")).expect("write");
    let e = read_file(&path, Format::Jsonl).expect_err("invokes while open");
    let msg = e.to_string();
    assert_eq!(
        msg,
        format!(
            "{}:2: process 4 invokes while its operation invoked on line 1 is still open",
            path.display()
        )
    );
    assert!(e.source().is_none(), "the cause is in the message already");
    assert_eq!(e.line(), Some(2));

    let missing = dir.join("missing.jsonl");
    let e = read_file(&missing, Format::Jsonl).expect_err("no such file");
    assert!(matches!(e, ReadError::Io { .. }));
    assert!(e.source().is_none(), "the cause is in the message already");
}

// ---- Jepsen EDN ----

#[test]
fn edn_rejects_a_string_process() {
    let e = read_edn_str("{:process \"c1\", :type :invoke, :f :write, :value 1}").unwrap_err();
    assert_bad_process(&e, 1, "\"c1\"");
}

#[test]
fn edn_rejects_a_keyword_process_other_than_nemesis() {
    let text = "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n{:process :reader, :type :invoke, :f :read, :value nil}";
    assert_bad_process(&read_edn_str(text).unwrap_err(), 3, ":reader");
}

#[test]
fn edn_rejects_a_negative_process() {
    let e = read_edn_str("{:process -2, :type :invoke, :f :read, :value nil}").unwrap_err();
    assert_bad_process(&e, 1, "-2");
}

#[test]
fn edn_nemesis_with_unknown_type_is_rejected() {
    let e = read_edn_str("{:process :nemesis, :type :begin, :f :start, :value nil}").unwrap_err();
    assert_eq!(e.kind, LineErrorKind::UnknownType(":begin".into()));
}

#[test]
fn edn_ok_write_with_another_value_is_rejected() {
    let text = "[{:process 0, :type :invoke, :f :write, :value 3}\n {:process 0, :type :ok, :f :write, :value 4}]";
    assert_value_mismatch(&read_edn_str(text).unwrap_err(), 2, 1);
}

#[test]
fn edn_ok_cas_with_another_pair_is_rejected() {
    let text = "{:process 0, :type :invoke, :f :cas, :value [1 2]}\n{:process 0, :type :ok, :f :cas, :value [1 3]}";
    assert_value_mismatch(&read_edn_str(text).unwrap_err(), 2, 1);
}

#[test]
fn edn_info_timed_out_value_is_accepted() {
    // What Jepsen clients of that era wrote: not the invoked value, and not evidence.
    let text = "{:process 0, :type :invoke, :f :write, :value 3}\n{:process 0, :type :info, :f :write, :value :timed-out}";
    let h = read_edn_str(text).expect("valid");
    assert_eq!(h.ops[0].arg, Value::Int(3));
}

#[test]
fn edn_bad_time_is_rejected() {
    let e = read_edn_str("{:process 0, :type :invoke, :f :read, :time \"soon\"}").unwrap_err();
    assert!(
        matches!(e.kind, LineErrorKind::BadField { field: "time", .. }),
        "{e}"
    );
}

#[test]
fn edn_non_keyword_function_is_unknown_not_missing() {
    let e = read_edn_str("{:process 0, :type :invoke, :f 7}").unwrap_err();
    assert_eq!(e.kind, LineErrorKind::UnknownFunction("7".into()));
}

// ---- Porcupine etcd logs ----

const ETCD_OK: &str =
    "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n";

#[test]
fn etcd_rejects_a_named_process_other_than_nemesis() {
    let text = format!("{ETCD_OK}INFO  jepsen.util - :reader\t:invoke\t:read\tnil\n");
    assert_bad_process(&read_etcd_str(&text).unwrap_err(), 3, ":reader");
}

#[test]
fn etcd_rejects_a_negative_process() {
    let e = read_etcd_str("INFO  jepsen.util - -1\t:invoke\t:read\tnil\n").unwrap_err();
    assert_bad_process(&e, 1, "-1");
}

#[test]
fn etcd_keeps_nemesis_lines_for_display() {
    let text = format!("INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n{ETCD_OK}");
    let h = read_etcd_str(&text).expect("valid");
    assert_eq!((h.ops.len(), h.nemesis.len()), (1, 1));
    assert_eq!(h.nemesis[0].f, "start");
}

#[test]
fn etcd_rejects_an_unknown_type() {
    let text = format!("{ETCD_OK}INFO  jepsen.util - 1\t:begin\t:read\tnil\n");
    let e = read_etcd_str(&text).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (3, LineErrorKind::UnknownType(":begin".into()))
    );
}

#[test]
fn etcd_rejects_an_unknown_function() {
    let text = format!("{ETCD_OK}INFO  jepsen.util - 1\t:invoke\t:incr\t1\n");
    let e = read_etcd_str(&text).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (3, LineErrorKind::UnknownFunction(":incr".into()))
    );
}

#[test]
fn etcd_rejects_an_event_cut_short() {
    let e = read_etcd_str("INFO  jepsen.util - 1\t:invoke\n").unwrap_err();
    assert!(matches!(e.kind, LineErrorKind::Malformed { .. }), "{e}");
}

#[test]
fn etcd_ok_write_with_another_value_is_rejected() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t2\n";
    assert_value_mismatch(&read_etcd_str(text).unwrap_err(), 2, 1);
}

#[test]
fn etcd_ok_cas_with_another_pair_is_rejected() {
    let text =
        "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 0\t:ok\t:cas\t[1 4]\n";
    assert_value_mismatch(&read_etcd_str(text).unwrap_err(), 2, 1);
}

#[test]
fn etcd_other_log_output_is_still_skipped() {
    let text = format!(
        "INFO  jepsen.core - Running test\nINFO  jepsen.util - Waiting for nodes\n{ETCD_OK}"
    );
    assert_eq!(read_etcd_str(&text).expect("valid").ops.len(), 1);
}

// ---- Porcupine kv logs (EDN) ----

#[test]
fn kv_ok_append_with_another_suffix_is_rejected() {
    let text = "{:process 0, :type :invoke, :f :append, :key \"1\", :value \"x 0 0 y\"}\n{:process 0, :type :ok, :f :append, :key \"1\", :value \"x 0 1 y\"}\n";
    assert_value_mismatch(&read_edn_str(text).unwrap_err(), 2, 1);
}

// ---- What counts as evidence ----

#[test]
fn effective_ops_count_ok_and_refused_only() {
    let text = lines(&[
        ev(0, "1", "invoke", "write", r#""a""#),
        ev(1, "1", "ok", "write", r#""a""#),
        ev(2, "2", "invoke", "write", r#""b""#),
        ev(3, "2", "fail", "write", r#""b""#),
        ev(4, "3", "invoke", "write", r#""c""#),
        ev(5, "3", "info", "write", r#""c""#),
        ev(6, "4", "invoke", "read", "null"),
    ]);
    let h = read_jsonl(text.as_bytes()).expect("valid");
    assert_eq!((h.ops.len(), h.effective_ops()), (4, 1));
    let etcd =
        "INFO  jepsen.util - 1\t:invoke\t:cas\t[2 3]\nINFO  jepsen.util - 1\t:fail\t:cas\t[2 3]\n";
    assert_eq!(read_etcd_str(etcd).expect("valid").effective_ops(), 1);
}

#[test]
fn a_history_without_effective_ops_is_linearizable_whatever_it_holds() {
    // Why `harness check` wants at least one: without, "linearizable" says nothing.
    let text = lines(&[
        ev(0, "1", "invoke", "cas", r#"["x","y"]"#),
        ev(1, "1", "fail", "cas", r#"["x","y"]"#),
        ev(2, "2", "invoke", "read", "null"),
        ev(3, "2", "info", "read", "null"),
    ]);
    let h = read_jsonl(text.as_bytes()).expect("valid");
    assert_eq!(h.effective_ops(), 0);
    let r = check(&h, &CheckOptions::new(ModelKind::Register)).expect("checks");
    assert_eq!(r.verdict, Verdict::Linearizable);
}

#[test]
fn value_from_json_is_typed() {
    use serde_json::json;
    assert_eq!(Value::from_json(&json!("0")), Some(Value::str("0")));
    assert_eq!(Value::from_json(&json!(0)), Some(Value::Int(0)));
    assert_eq!(Value::from_json(&json!(null)), Some(Value::Nil));
    assert_eq!(Value::from_json(&json!(1.5)), None);
    assert_eq!(Value::from_json(&json!([1])), None);
    assert_eq!(Value::from_json(&json!(u64::MAX)), None);
}
