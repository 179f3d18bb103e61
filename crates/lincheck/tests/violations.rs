//! Hand-written minimal violations: each must be reported not linearizable, on the right key,
//! with the offending operation first among the unplaceable ones and a fitting explanation —
//! by the whole-history check and, identically, by the streaming check (`lincheck::stream`),
//! which explains from the evidence it kept.

use lincheck::{check, read_jsonl, CheckOptions, History, ModelKind, Verdict};

fn history(lines: &[&str]) -> History {
    let text = lines.join("\n");
    read_jsonl(text.as_bytes()).expect("test history parses")
}

/// Checks and returns (key, first unplaceable op's invoke line, explanation), the same both
/// ways.
fn violation(h: &History) -> (String, u64, String) {
    let opts = CheckOptions::new(ModelKind::Register);
    let r = check(h, &opts).expect("checks");
    assert_eq!(r.verdict, Verdict::NotLinearizable, "{}", r.summary());
    let c = &r.counterexamples[0];
    let op = &h.ops[c.unplaceable[0]];
    let whole = (c.key.clone(), op.call_line, c.explanation.clone());
    let s = lincheck::stream::check_history(h, &opts).expect("checks");
    assert_eq!(
        s.result.verdict,
        Verdict::NotLinearizable,
        "{}",
        s.result.summary()
    );
    let c = &s.result.counterexamples[0];
    let op = &s.history.ops[c.unplaceable[0]];
    let streamed = (c.key.clone(), op.call_line, c.explanation.clone());
    assert_eq!((&streamed.0, streamed.1), (&whole.0, whole.1));
    // The streaming check reports the violation when it is certain, before any later operation
    // is known: where the whole history names one ("ever", "invoked ... after"), it says only
    // what holds when it reports.
    if whole.2.contains("ever wrote") || whole.2.contains("after the read completed") {
        assert!(
            streamed
                .2
                .contains("no operation invoked before the read completed wrote"),
            "{}",
            streamed.2
        );
    } else {
        assert_eq!(streamed.2, whole.2);
    }
    whole
}

// Each history has an unrelated, valid key "other" so the key must be singled out.
const OTHER: [&str; 2] = [
    r#"{"index":90,"time":1,"process":9,"type":"invoke","f":"write","key":"other","value":"z"}"#,
    r#"{"index":91,"time":2,"process":9,"type":"ok","f":"write","key":"other","value":"z"}"#,
];

fn with_other(lines: &[&'static str]) -> Vec<&'static str> {
    let mut v = OTHER.to_vec();
    v.extend_from_slice(lines);
    v
}

#[test]
fn stale_read() {
    let h = history(&with_other(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"write","key":"k1","value":"v2"}"#,
        r#"{"index":3,"time":40,"process":1,"type":"ok","f":"write","key":"k1","value":"v2"}"#,
        r#"{"index":4,"time":50,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":5,"time":60,"process":2,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
    ]));
    let (key, line, why) = violation(&h);
    assert_eq!((key.as_str(), line), ("k1", 7));
    assert!(why.contains("overwritten by write \"v2\""), "{why}");
}

#[test]
fn lost_write() {
    // p1's write of v2 completes, then p2 reads v1 again: the write was lost.
    let h = history(&with_other(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":2,"time":30,"process":2,"type":"invoke","f":"write","key":"k1","value":"v2"}"#,
        r#"{"index":3,"time":40,"process":2,"type":"ok","f":"write","key":"k1","value":"v2"}"#,
        r#"{"index":4,"time":50,"process":3,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":5,"time":60,"process":3,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
        r#"{"index":6,"time":70,"process":3,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":7,"time":80,"process":3,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
    ]));
    let (key, line, why) = violation(&h);
    assert_eq!((key.as_str(), line), ("k1", 7));
    assert!(why.contains("v2"), "{why}");
}

#[test]
fn read_of_never_written_value() {
    let h = history(&with_other(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":2,"time":30,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":3,"time":40,"process":2,"type":"ok","f":"read","key":"k1","value":"v9"}"#,
    ]));
    let (key, line, why) = violation(&h);
    assert_eq!((key.as_str(), line), ("k1", 5));
    assert!(why.contains("no operation ever wrote \"v9\""), "{why}");
}

#[test]
fn failed_write_later_read() {
    let h = history(&with_other(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":1,"time":20,"process":1,"type":"fail","f":"write","key":"k1","value":"v1","error":"not_leader"}"#,
        r#"{"index":2,"time":30,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":3,"time":40,"process":2,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
    ]));
    let (key, line, why) = violation(&h);
    assert_eq!((key.as_str(), line), ("k1", 5));
    assert!(why.contains("which failed"), "{why}");
}

#[test]
fn info_write_read_before_its_invocation() {
    let h = history(&with_other(&[
        r#"{"index":0,"time":10,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":1,"time":20,"process":2,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
        r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":3,"time":40,"process":1,"type":"info","f":"write","key":"k1","value":"v1","error":"timeout"}"#,
    ]));
    for reductions in [true, false] {
        let opts = CheckOptions::new(ModelKind::Register).reductions(reductions);
        let r = check(&h, &opts).expect("checks");
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        let c = &r.counterexamples[0];
        assert_eq!(c.key, "k1");
        assert!(
            c.explanation.contains("after the read completed"),
            "{}",
            c.explanation
        );
    }
    let (key, line, _) = violation(&h);
    assert_eq!((key.as_str(), line), ("k1", 3));
}

#[test]
fn info_write_read_later_is_fine_and_unknown_reads_constrain_nothing() {
    let h = history(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":"v1"}"#,
        r#"{"index":1,"time":20,"process":1,"type":"info","f":"write","key":"k1","value":"v1","error":"timeout"}"#,
        r#"{"index":2,"time":30,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":3,"time":40,"process":2,"type":"ok","f":"read","key":"k1","value":null}"#,
        r#"{"index":4,"time":50,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":5,"time":60,"process":2,"type":"ok","f":"read","key":"k1","value":"v1"}"#,
        r#"{"index":6,"time":70,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":7,"time":80,"process":2,"type":"info","f":"read","key":"k1","value":"zzz"}"#,
        r#"{"index":8,"time":90,"process":3,"type":"invoke","f":"read","key":"k1","value":null}"#,
    ]);
    let r = check(&h, &CheckOptions::new(ModelKind::Register)).expect("checks");
    assert_eq!(r.verdict, Verdict::Linearizable, "{}", r.summary());
}

#[test]
fn cas_register_nil_reads_constrain_nothing() {
    let h = history(&[
        r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k1","value":1}"#,
        r#"{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k1","value":1}"#,
        r#"{"index":2,"time":30,"process":2,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"index":3,"time":40,"process":2,"type":"ok","f":"read","key":"k1","value":null}"#,
    ]);
    let reg = check(&h, &CheckOptions::new(ModelKind::Register)).expect("checks");
    assert_eq!(reg.verdict, Verdict::NotLinearizable);
    let knossos = check(&h, &CheckOptions::new(ModelKind::CasRegister)).expect("checks");
    assert_eq!(knossos.verdict, Verdict::Linearizable);
}
