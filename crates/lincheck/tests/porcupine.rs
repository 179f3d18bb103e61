//! Porcupine's test corpus (tests/data/porcupine, MIT, see its README): every verdict in
//! VERDICTS.tsv, table-driven.

use std::path::Path;

use lincheck::{check_file, CheckOptions, Format, Verdict};

#[test]
fn every_porcupine_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    let table = std::fs::read_to_string(dir.join("VERDICTS.tsv")).expect("VERDICTS.tsv");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in table.lines().skip(1) {
        let Some((file, expected)) = line.split_once('\t') else {
            continue;
        };
        let expected = match expected.trim() {
            "linearizable" => Verdict::Linearizable,
            "not-linearizable" => Verdict::NotLinearizable,
            other => panic!("unknown verdict {other} for {file}"),
        };
        let opts = CheckOptions::default().time_limit(None);
        let got = check_file(&dir.join(file), Format::Auto, &opts)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let want_format = if file.starts_with("kv/") {
            Format::PorcupineKv
        } else {
            Format::PorcupineEtcd
        };
        assert_eq!(got.format, want_format, "{file}: detected format");
        if got.result.verdict != expected {
            wrong.push(format!(
                "{file}: expected {expected:?}, got {:?}",
                got.result.verdict
            ));
        }
        if expected == Verdict::NotLinearizable {
            let c = &got.result.counterexamples;
            assert!(!c.is_empty(), "{file}: no counterexample");
            assert!(!c[0].unplaceable.is_empty(), "{file}: no unplaceable op");
            assert!(!c[0].explanation.is_empty());
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(checked, 108, "VERDICTS.tsv rows");
}
