//! Readers and writer: line-numbered typed errors, round trip, importers, detection.

use lincheck::import::{read_edn_str, read_etcd_str};
use lincheck::jsonl::history_events;
use lincheck::{
    check, detect, read_jsonl, CheckOptions, Format, JsonlWriter, LineErrorKind, ModelKind,
    Outcome, Value, Verdict,
};

fn err(text: &str) -> (u64, LineErrorKind) {
    match read_jsonl(text.as_bytes()) {
        Err(lincheck::jsonl::ReadLineError::Line(e)) => (e.line, e.kind),
        other => panic!("expected a line error, got {other:?}"),
    }
}

const W0: &str =
    r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}"#;

#[test]
fn malformed_json_names_the_line() {
    let text = format!("{W0}\n{{\"index\":1,\"time\":2,\"proc\n{W0}\n");
    let (line, kind) = err(&text);
    assert_eq!(line, 2);
    assert!(matches!(kind, LineErrorKind::Malformed { .. }), "{kind:?}");
    // Complete but malformed, even as the last line: still an error.
    let (line, _) = err(&format!("{W0}\n{{\"index\":1,\"time\":2,\"proc\n"));
    assert_eq!(line, 2);
}

#[test]
fn a_torn_last_line_is_left_out() {
    // What a writer killed mid-line leaves: the last line cut short, with no newline.
    let h = read_jsonl(format!("{W0}\n{{\"index\":1,\"time\":2,\"proc").as_bytes())
        .expect("a torn tail is not an error");
    assert_eq!(h.torn_tail, Some(2));
    assert_eq!(h.ops.len(), 1);
    let whole = read_jsonl(format!("{W0}\n").as_bytes()).expect("valid");
    assert_eq!(whole.torn_tail, None);
}

#[test]
fn unknown_type_and_function() {
    let t = r#"{"index":0,"time":1,"process":1,"type":"begin","f":"write","key":"k","value":"a"}"#;
    assert!(matches!(err(t), (1, LineErrorKind::UnknownType(s)) if s == "begin"));
    let t = r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"incr","key":"k"}"#;
    assert!(matches!(err(t), (1, LineErrorKind::UnknownFunction(s)) if s == "incr"));
}

#[test]
fn completion_without_invocation() {
    let t = r#"{"index":0,"time":1,"process":1,"type":"ok","f":"write","key":"k","value":"a"}"#;
    assert!(matches!(
        err(t),
        (
            1,
            LineErrorKind::CompletionWithoutInvocation { process: 1, .. }
        )
    ));
}

#[test]
fn invoke_while_open_and_after_info() {
    let t = format!("{W0}\n{}", W0.replace("\"index\":0", "\"index\":1"));
    assert!(matches!(
        err(&t),
        (
            2,
            LineErrorKind::AlreadyOpen {
                process: 1,
                open_line: 1
            }
        )
    ));
    let info =
        r#"{"index":1,"time":2,"process":1,"type":"info","f":"write","key":"k","value":"a"}"#;
    let t = format!("{W0}\n{info}\n{W0}");
    assert!(matches!(
        err(&t),
        (
            3,
            LineErrorKind::InvokeAfterInfo {
                process: 1,
                info_line: 2
            }
        )
    ));
}

#[test]
fn completion_must_match_invocation() {
    let bad_f = r#"{"index":1,"time":2,"process":1,"type":"ok","f":"read","key":"k","value":"a"}"#;
    assert!(matches!(
        err(&format!("{W0}\n{bad_f}")),
        (2, LineErrorKind::CompletionMismatch { field: "f", .. })
    ));
    let bad_key =
        r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"j","value":"a"}"#;
    assert!(matches!(
        err(&format!("{W0}\n{bad_key}")),
        (2, LineErrorKind::CompletionMismatch { field: "key", .. })
    ));
}

#[test]
fn cas_needs_a_pair() {
    let t = r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas","key":"k","value":"a"}"#;
    assert!(matches!(
        err(t),
        (1, LineErrorKind::BadValue { f: "cas", .. })
    ));
}

#[test]
fn semantics_and_round_trip() {
    let text = r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}
{"index":1,"time":15,"process":"nemesis","type":"info","f":"partition","value":{"groups":[["n1"],["n2","n3"]]}}
{"index":2,"time":20,"process":1,"type":"ok","f":"write","key":"k1","value":"v1"}
{"index":3,"time":30,"process":2,"type":"invoke","f":"cas","key":"k1","value":["v1","v2"]}
{"index":4,"time":40,"process":2,"type":"info","f":"cas","key":"k1","value":["v1","v2"],"error":"timeout"}
{"index":5,"time":50,"process":3,"type":"invoke","f":"read","key":"k1","value":null}
{"index":6,"time":60,"process":3,"type":"ok","f":"read","key":"k1","value":"v2"}
{"index":7,"time":70,"process":4,"type":"invoke","f":"write","key":"k2","value":7}
"#;
    let h = read_jsonl(text.as_bytes()).expect("parses");
    assert_eq!(h.ops.len(), 4);
    assert_eq!(h.nemesis.len(), 1);
    assert_eq!(h.ops[1].outcome, Outcome::Info);
    assert_eq!(h.ops[1].ret_pos, u64::MAX, "info returns at +infinity");
    assert_eq!(h.ops[2].output, Value::str("v2"));
    assert_eq!(h.ops[3].outcome, Outcome::Pending);
    assert_eq!(h.ops[3].arg, Value::Int(7));
    let r = check(&h, &CheckOptions::default()).expect("checks");
    assert_eq!(r.verdict, Verdict::Linearizable);

    let mut w = JsonlWriter::new(Vec::new());
    for e in history_events(&h) {
        w.write(&e).expect("write");
    }
    let out = String::from_utf8(w.into_inner()).expect("utf8");
    let again = read_jsonl(out.as_bytes()).expect("re-parses");
    assert_eq!(again.ops, h.ops);
    assert_eq!(again.nemesis, h.nemesis);
    assert_eq!(out.lines().count(), 8);
}

#[test]
fn edn_importer() {
    let text = r#"; a Jepsen history
[{:process 0, :type :invoke, :f :write, :value 3}
 {:process 0, :type :ok, :f :write, :value 3}
 {:process :nemesis, :type :info, :f :start, :value nil}
 {:process 1, :type :invoke, :f :cas, :value [3 4]}
 {:process 1, :type :ok, :f :cas, :value [3 4]}
 {:process 2, :type :invoke, :f :read, :value nil}
 {:process 2, :type :ok, :f :read, :value nil}
 {:process 2, :type :invoke, :f :read, :value nil}
 {:process 2, :type :ok, :f :read, :value 4}]"#;
    assert_eq!(detect(text), Some(Format::JepsenEdn));
    let h = read_edn_str(text).expect("parses");
    assert_eq!(h.ops.len(), 4);
    assert_eq!(h.nemesis.len(), 1);
    assert_eq!(h.ops[3].call_line, 9, "line of the element in the vector");
    let r = check(&h, &CheckOptions::new(ModelKind::CasRegister)).expect("checks");
    assert_eq!(
        r.verdict,
        Verdict::Linearizable,
        "nil read constrains nothing"
    );
    let stale = text.replace(":value 4}]", ":value 3}]");
    let h = read_edn_str(&stale).expect("parses");
    let r = check(&h, &CheckOptions::new(ModelKind::CasRegister)).expect("checks");
    assert_eq!(r.verdict, Verdict::NotLinearizable);

    let e = read_edn_str("{:process 0 :type :invoke :f :write :value 3}\n{:process 0, :type")
        .unwrap_err();
    assert_eq!(e.line, 2);
    let lines = "{:process 0, :type :invoke, :f :write, :value \"a\"}\n{:process 0, :type :ok, :f :write, :value \"a\"}\n";
    assert_eq!(read_edn_str(lines).expect("one map per line").ops.len(), 1);
}

#[test]
fn etcd_importer() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\nINFO  jepsen.util - 1\t:invoke\t:cas\t[2 3]\nINFO  jepsen.util - 1\t:fail\t:cas\t[2 3]\nINFO  jepsen.util - 2 :invoke :read nil\nINFO  jepsen.util - 2 :ok :read 1\nsome other line\n";
    assert_eq!(detect(text), Some(Format::PorcupineEtcd));
    let h = read_etcd_str(text).expect("parses");
    assert_eq!(h.ops.len(), 3);
    assert_eq!(h.ops[1].outcome, Outcome::Refused);
    let r = check(&h, &CheckOptions::default()).expect("checks");
    assert_eq!(r.verdict, Verdict::Linearizable);
    // A refused cas whose `from` surely held is a violation.
    let bad = text.replace("[2 3]", "[1 3]");
    let r = check(
        &read_etcd_str(&bad).expect("parses"),
        &CheckOptions::default(),
    )
    .expect("checks");
    assert_eq!(r.verdict, Verdict::NotLinearizable);
}

#[test]
fn limits_give_unknown_naming_keys() {
    use std::time::Duration;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/porcupine/jepsen/etcd_002.log"
    ))
    .expect("corpus file");
    let h = read_etcd_str(&text).expect("parses");
    let opts = CheckOptions::default().time_limit(Some(Duration::ZERO));
    let r = check(&h, &opts).expect("checks");
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(
        r.unresolved(),
        vec![("register", lincheck::UnknownCause::TimeLimit)]
    );
    let opts = CheckOptions::default().memory_budget(1);
    let r = check(&h, &opts).expect("checks");
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(
        r.unresolved(),
        vec![("register", lincheck::UnknownCause::MemoryBudget)]
    );
}
