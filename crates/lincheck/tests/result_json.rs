//! `CheckResult::from_json` reads back what `to_json` wrote (result.json), so a report can draw
//! the counterexample from a run directory without checking again; a result.json that names an
//! operation the history does not hold is refused, not drawn wrong.

use lincheck::{check, read_jsonl, CheckOptions, CheckResult, ModelKind, ResultJsonError, Verdict};

const STALE_READ: &str = r#"{"time":0,"process":0,"type":"invoke","f":"write","key":"other","value":1}
{"time":1,"process":0,"type":"ok","f":"write","key":"other","value":1}
{"time":2,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}
{"time":3,"process":1,"type":"ok","f":"write","key":"k","value":"a"}
{"time":4,"process":2,"type":"invoke","f":"write","key":"k","value":"b"}
{"time":5,"process":2,"type":"ok","f":"write","key":"k","value":"b"}
{"time":6,"process":3,"type":"invoke","f":"read","key":"k","value":null}
{"time":7,"process":3,"type":"ok","f":"read","key":"k","value":"a"}
"#;

#[test]
fn round_trip() {
    let h = read_jsonl(STALE_READ.as_bytes()).expect("parses");
    let r = check(&h, &CheckOptions::new(ModelKind::Register)).expect("checks");
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let back = CheckResult::from_json(&r.to_json(&h), &h).expect("reads back");
    assert_eq!(back.verdict, r.verdict);
    assert_eq!(back.model, r.model);
    assert_eq!(back.keys.len(), r.keys.len());
    for (a, b) in back.keys.iter().zip(&r.keys) {
        assert_eq!(
            (&a.key, a.ops, a.verdict, a.cause),
            (&b.key, b.ops, b.verdict, b.cause)
        );
    }
    assert_eq!(back.counterexamples, r.counterexamples);
    // The page drawn from it names the key and the explanation.
    let page = lincheck::html::keys_html(&h, &back, &lincheck::html::HtmlOptions::default());
    assert!(page.contains("Key k"), "{page}");
    assert!(page.contains(&r.counterexamples[0].explanation.replace('"', "&quot;")));
}

#[test]
fn an_operation_the_history_does_not_hold_is_refused() {
    let h = read_jsonl(STALE_READ.as_bytes()).expect("parses");
    let r = check(&h, &CheckOptions::new(ModelKind::Register)).expect("checks");
    let mut json = r.to_json(&h);
    json["counterexamples"][0]["unplaceable"][0]["invoke_line"] = 99.into();
    assert_eq!(
        CheckResult::from_json(&json, &h).err(),
        Some(ResultJsonError::UnknownOp {
            key: "k".into(),
            line: 99
        })
    );
    json["verdict"] = "maybe".into();
    assert_eq!(
        CheckResult::from_json(&json, &h).err(),
        Some(ResultJsonError::Field("verdict"))
    );
}
