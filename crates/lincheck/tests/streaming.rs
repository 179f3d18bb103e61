//! The streaming checker (src/stream) against the whole-history checker: the same verdicts on
//! Porcupine's corpus and on 10,000 random histories (with indefinite operations, failed ones,
//! stale reads and random mutations), through both of its inputs (a history in memory, and
//! JSONL lines pushed one by one); the cut rule on hand-made cases; violations reported as soon
//! as they are certain; memory that does not grow with the history's length.

mod support;

use std::path::Path;
use std::time::Duration;

use lincheck::stream::{self, StreamingChecker};
use lincheck::{check, check_file, CheckOptions, Format, History, ModelKind, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::gen::{self, Out, SimOp};

fn whole(h: &History, opts: &CheckOptions) -> lincheck::CheckResult {
    check(h, opts).expect("checks")
}

/// Keys not linearizable, sorted.
fn bad_keys(r: &lincheck::CheckResult) -> Vec<String> {
    r.keys
        .iter()
        .filter(|k| k.verdict == Verdict::NotLinearizable)
        .map(|k| k.key.clone())
        .collect()
}

/// Streams the JSONL text of a generated history line by line.
fn pushed(ops: &[SimOp], opts: &CheckOptions) -> lincheck::Streamed {
    let checker = StreamingChecker::new(opts.model_kind(), opts);
    let text = gen::to_jsonl(ops);
    for line in std::str::from_utf8(&text).expect("utf-8").lines() {
        checker.push_line(line).expect("well-formed");
    }
    checker.finish().expect("finishes")
}

#[test]
fn agrees_with_whole_history_on_porcupine_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    let table = std::fs::read_to_string(dir.join("VERDICTS.tsv")).expect("VERDICTS.tsv");
    let mut checked = 0;
    for line in table.lines().skip(1) {
        let Some((file, expected)) = line.split_once('\t') else {
            continue;
        };
        let expected = match expected.trim() {
            "linearizable" => Verdict::Linearizable,
            _ => Verdict::NotLinearizable,
        };
        let opts = CheckOptions::default().time_limit(None).stream_workers(0);
        let w = check_file(&dir.join(file), Format::Auto, &opts).expect("reads");
        let s = stream::check_file(&dir.join(file), Format::Auto, &opts).expect("reads");
        assert_eq!(s.format, w.format, "{file}");
        assert_eq!(w.result.verdict, expected, "{file}: whole history");
        assert_eq!(s.result.verdict, expected, "{file}: streaming");
        assert_eq!(s.result.ops, w.result.ops, "{file}");
        if expected == Verdict::NotLinearizable {
            let c = &s.result.counterexamples;
            assert!(!c.is_empty(), "{file}: no counterexample");
            assert!(!c[0].unplaceable.is_empty(), "{file}: no unplaceable op");
            assert!(s.history.ops.get(c[0].unplaceable[0]).is_some(), "{file}");
            assert!(!c[0].explanation.is_empty());
        }
        checked += 1;
    }
    assert_eq!(checked, 108);
}

/// Random histories: small single-key ones (the shape `tests/differential.rs` checks against
/// stateright, where interleavings are dense), and bigger multi-key ones with many cuts.
fn random_params(i: u64, rng: &mut StdRng) -> gen::Params {
    if i.is_multiple_of(2) {
        let mut p = gen::Params::small(i);
        p.ops = rng.random_range(2..=9);
        p.procs = rng.random_range(2..=4);
        p.info_rate = [0.0, 0.15, 0.35][i as usize % 3];
        p.unique_values = i.is_multiple_of(4);
        p
    } else {
        gen::Params {
            ops: rng.random_range(20..=200),
            keys: rng.random_range(1..=6),
            procs: rng.random_range(2..=8),
            info_rate: [0.0, 0.05, 0.2, 0.4][(i / 2) as usize % 4],
            fail_rate: 0.05,
            read_frac: 0.45,
            write_frac: 0.35,
            unique_values: !i.is_multiple_of(3),
            domain: 4,
            seed: i,
        }
    }
}

#[test]
fn agrees_with_whole_history_on_10k_random_histories() {
    let mut rng = StdRng::seed_from_u64(0x57e4);
    let (mut valid, mut invalid, mut with_info, mut pushed_n) = (0, 0, 0, 0);
    for i in 0..10_000u64 {
        let p = random_params(i, &mut rng);
        let mut ops = gen::generate(&p);
        match i % 4 {
            0 => {}
            1 | 2 => {
                for _ in 0..rng.random_range(1..=2) {
                    gen::mutate(&mut ops, &mut rng, p.domain.max(3));
                }
            }
            _ => {
                gen::inject_stale_read(&mut ops, i);
            }
        }
        let h = gen::to_history(&ops);
        let opts = CheckOptions::new(ModelKind::Register)
            .threads(1)
            .stream_workers(0)
            .stop_at_first_violation(false)
            .time_limit(Some(Duration::from_secs(30)));
        let w = whole(&h, &opts);
        assert_ne!(
            w.verdict,
            Verdict::Unknown,
            "seed {i}: whole history timed out"
        );
        let s = stream::check_history(&h, &opts).expect("checks");
        assert_eq!(s.result.verdict, w.verdict, "seed {i}: {ops:#?}");
        assert_eq!(bad_keys(&s.result), bad_keys(&w), "seed {i}");
        // The JSONL path (pairing, background threads) on a share of them.
        if i % 10 == 0 {
            let opts = opts.clone().stream_workers(1 + (i as usize / 10) % 2);
            let s = pushed(&ops, &opts);
            assert_eq!(s.result.verdict, w.verdict, "seed {i} (pushed)");
            assert_eq!(bad_keys(&s.result), bad_keys(&w), "seed {i} (pushed)");
            assert_eq!(s.counts.ops as usize, h.ops.len());
            assert_eq!(s.counts.effective as usize, h.effective_ops());
            pushed_n += 1;
        }
        match w.verdict {
            Verdict::Linearizable => valid += 1,
            _ => invalid += 1,
        }
        if ops.iter().any(|o| o.outcome == Out::Info) {
            with_info += 1;
        }
    }
    eprintln!(
        "streaming agreement: {valid} linearizable, {invalid} not, {with_info} with info ops, {pushed_n} pushed as JSONL"
    );
    assert!(
        valid > 3000 && invalid > 2000,
        "valid {valid}, invalid {invalid}"
    );
    assert!(with_info > 5000, "with info {with_info}");
}

/// Without the lazy rule and the fast path (`reductions(false)`), the streaming checker carries
/// every configuration; with them, fewer. Both must agree: this tests the lazy lemma and the
/// fast path's completeness directly.
#[test]
fn lazy_rule_and_fast_path_preserve_verdicts() {
    let mut rng = StdRng::seed_from_u64(0x1a2e);
    let mut bad = 0;
    for i in 0..3000u64 {
        let mut p = gen::Params::small(50_000 + i);
        p.ops = rng.random_range(3..=14);
        p.procs = rng.random_range(2..=5);
        p.info_rate = 0.3;
        p.unique_values = i % 2 == 0;
        let mut ops = gen::generate(&p);
        match i % 3 {
            0 => {}
            1 => {
                gen::mutate(&mut ops, &mut rng, 4);
                gen::mutate(&mut ops, &mut rng, 4);
            }
            _ => {
                gen::inject_stale_read(&mut ops, i);
            }
        }
        let h = gen::to_history(&ops);
        let opts = CheckOptions::new(ModelKind::Register)
            .threads(1)
            .stream_workers(0);
        let lazy = stream::check_history(&h, &opts).expect("checks");
        let plain = stream::check_history(&h, &opts.clone().reductions(false)).expect("checks");
        let w = whole(&h, &opts);
        assert_eq!(plain.result.verdict, w.verdict, "seed {i} (plain)");
        assert_eq!(lazy.result.verdict, w.verdict, "seed {i} (lazy)");
        bad += (w.verdict == Verdict::NotLinearizable) as usize;
    }
    assert!(bad > 400, "{bad}");
}

fn history(lines: &[&str]) -> History {
    lincheck::read_jsonl(lines.join("\n").as_bytes()).expect("parses")
}

fn both(lines: &[&str]) -> (Verdict, Verdict) {
    let h = history(lines);
    let opts = CheckOptions::new(ModelKind::Register).stream_workers(0);
    let s = stream::check_history(&h, &opts).expect("checks");
    (whole(&h, &opts).verdict, s.result.verdict)
}

#[test]
fn indefinite_writes_carried_across_cuts() {
    // An info write, then quiescent points; a read long after observes it: it took effect late.
    let late = [
        r#"{"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}"#,
        r#"{"time":2,"process":1,"type":"ok","f":"write","key":"k","value":"a"}"#,
        r#"{"time":3,"process":2,"type":"invoke","f":"write","key":"k","value":"z"}"#,
        r#"{"time":4,"process":2,"type":"info","f":"write","key":"k","value":"z"}"#,
        r#"{"time":5,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":6,"process":3,"type":"ok","f":"read","key":"k","value":"a"}"#,
        r#"{"time":7,"process":3,"type":"invoke","f":"write","key":"k","value":"b"}"#,
        r#"{"time":8,"process":3,"type":"ok","f":"write","key":"k","value":"b"}"#,
        r#"{"time":9,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":10,"process":3,"type":"ok","f":"read","key":"k","value":"z"}"#,
    ];
    assert_eq!(both(&late), (Verdict::Linearizable, Verdict::Linearizable));
    // ... but it takes effect once: z, then b overwrites it, then z again is impossible.
    let mut twice = late.to_vec();
    twice.extend([
        r#"{"time":11,"process":3,"type":"invoke","f":"write","key":"k","value":"c"}"#,
        r#"{"time":12,"process":3,"type":"ok","f":"write","key":"k","value":"c"}"#,
        r#"{"time":13,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":14,"process":3,"type":"ok","f":"read","key":"k","value":"z"}"#,
    ]);
    assert_eq!(
        both(&twice),
        (Verdict::NotLinearizable, Verdict::NotLinearizable)
    );
    // An info cas chain across cuts: z, then cas z→y (info) observed later.
    let chain = [
        r#"{"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"z"}"#,
        r#"{"time":2,"process":1,"type":"info","f":"write","key":"k","value":"z"}"#,
        r#"{"time":3,"process":2,"type":"invoke","f":"cas","key":"k","value":["z","y"]}"#,
        r#"{"time":4,"process":2,"type":"info","f":"cas","key":"k","value":["z","y"]}"#,
        r#"{"time":5,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":6,"process":3,"type":"ok","f":"read","key":"k","value":null}"#,
        r#"{"time":7,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":8,"process":3,"type":"ok","f":"read","key":"k","value":"y"}"#,
    ];
    assert_eq!(both(&chain), (Verdict::Linearizable, Verdict::Linearizable));
    // Concurrent writes before a cut leave two possible states; a read after picks one, a
    // later read of the other is a violation.
    let fork = [
        r#"{"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}"#,
        r#"{"time":2,"process":2,"type":"invoke","f":"write","key":"k","value":"b"}"#,
        r#"{"time":3,"process":1,"type":"ok","f":"write","key":"k","value":"a"}"#,
        r#"{"time":4,"process":2,"type":"ok","f":"write","key":"k","value":"b"}"#,
        r#"{"time":5,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":6,"process":3,"type":"ok","f":"read","key":"k","value":"b"}"#,
    ];
    assert_eq!(both(&fork), (Verdict::Linearizable, Verdict::Linearizable));
    let mut fork2 = fork.to_vec();
    fork2.extend([
        r#"{"time":7,"process":3,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"time":8,"process":3,"type":"ok","f":"read","key":"k","value":"a"}"#,
    ]);
    assert_eq!(
        both(&fork2),
        (Verdict::NotLinearizable, Verdict::NotLinearizable)
    );
}

/// A long history whose stale read comes early: `push` reports it long before the end, with
/// the same explanation the whole-history check gives.
#[test]
fn violation_reported_as_soon_as_certain() {
    let p = gen::Params {
        ops: 200_000,
        keys: 100,
        procs: 20,
        info_rate: 0.05,
        fail_rate: 0.02,
        read_frac: 0.5,
        write_frac: 0.3,
        unique_values: true,
        domain: 0,
        seed: 11,
    };
    let mut ops = gen::generate(&p);
    // A stale read in the first 2% of the history.
    let early: Vec<SimOp> = ops[..4000].to_vec();
    let mut head = early.clone();
    let r = gen::inject_stale_read(&mut head, 3).expect("a read to make stale");
    ops[r] = head[r].clone();
    let text = gen::to_jsonl(&ops);
    let lines: Vec<&str> = std::str::from_utf8(&text).expect("utf-8").lines().collect();
    let checker = StreamingChecker::new(
        ModelKind::Register,
        &CheckOptions::default().stream_workers(0),
    );
    let mut flagged_at = None;
    for (n, line) in lines.iter().enumerate() {
        let v = checker.push_line(line).expect("well-formed");
        if v == Verdict::NotLinearizable {
            flagged_at = Some(n + 1);
            break;
        }
    }
    let at = flagged_at.expect("violation flagged before the end");
    assert!(
        at < lines.len() / 20,
        "flagged at line {at} of {}",
        lines.len()
    );
    let st = checker.status();
    let v = st.violation.expect("evidence");
    assert_eq!(v.key, format!("k{}", ops[r].key));
    let bad = &v.history.ops[v.counterexample.unplaceable[0]];
    assert_eq!(bad.call_pos, {
        let h = gen::to_history(&ops);
        h.ops
            .iter()
            .find(|o| o.call_time == ops[r].call * 1000)
            .map(|o| o.call_pos)
            .expect("the read")
    });
    // The whole-history check explains it the same way.
    let w = whole(&gen::to_history(&ops), &CheckOptions::default());
    assert_eq!(w.verdict, Verdict::NotLinearizable);
    assert_eq!(
        w.counterexamples[0].explanation,
        v.counterexample.explanation
    );
    // Background threads flag it too (asynchronously: after `sync`).
    let checker = StreamingChecker::new(ModelKind::Register, &CheckOptions::default());
    for line in &lines[..at] {
        checker.push_line(line).expect("well-formed");
    }
    checker.sync();
    assert_eq!(checker.verdict_so_far(), Verdict::NotLinearizable);
    // A producer that goes idle flushes instead of waiting: the verdict arrives without `sync`
    // and without another push.
    let idle = StreamingChecker::new(ModelKind::Register, &CheckOptions::default());
    for line in &lines[..at] {
        idle.push_line(line).expect("well-formed");
    }
    idle.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while idle.verdict_so_far() != Verdict::NotLinearizable && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(idle.verdict_so_far(), Verdict::NotLinearizable);
    let done = checker.finish().expect("finishes");
    assert_eq!(done.result.verdict, Verdict::NotLinearizable);
    assert_eq!(
        done.result.counterexamples[0].explanation,
        v.counterexample.explanation
    );
}

/// Memory: apart from the indefinite writes nothing has observed yet (which may still take
/// effect, and are bounded by `info_limit`), what the checker holds stays flat while the
/// history grows tenfold.
#[test]
fn retained_operations_do_not_grow_with_length() {
    let p = gen::Params {
        ops: 300_000,
        keys: 200,
        procs: 20,
        info_rate: 0.05,
        fail_rate: 0.02,
        read_frac: 0.5,
        write_frac: 0.3,
        unique_values: true,
        domain: 0,
        seed: 5,
    };
    let mut ops = gen::generate(&p);
    let text = gen::to_jsonl(&ops);
    let lines: Vec<&str> = std::str::from_utf8(&text).expect("utf-8").lines().collect();
    let run = |opts: &CheckOptions, lines: &[&str]| {
        let checker = StreamingChecker::new(ModelKind::Register, opts);
        let (mut early, mut late, mut info) = (0, 0, 0);
        for (n, line) in lines.iter().enumerate() {
            checker.push_line(line).expect("well-formed");
            let st = checker.status();
            let held = st.retained_ops - st.carried_info;
            if n < lines.len() / 10 {
                early = early.max(held);
            } else {
                late = late.max(held);
            }
            info = info.max(st.carried_info);
        }
        (checker.finish().expect("finishes"), early, late, info)
    };
    let opts = CheckOptions::default().stream_workers(0);
    let (done, early, late, info) = run(&opts, &lines);
    assert_eq!(done.result.verdict, Verdict::Linearizable);
    eprintln!("held (windows, context): peak {early} in the first tenth, {late} after; carried indefinite: {info}");
    assert!(late < early + early / 2 + 100, "{early} → {late}");
    assert!(info <= done.counts.indefinite, "{info}");
    // With a tight limit on carried indefinite operations, memory stays under it, and a valid
    // history is never reported not linearizable (forgetting only removes possibilities: a key
    // that then has no linearization is unknown, cause window-limit).
    let tight = opts.clone().info_limit(200);
    let (done, _, _, info) = run(&tight, &lines);
    assert_ne!(done.result.verdict, Verdict::NotLinearizable);
    assert!(info <= 200, "{info}");
    assert!(done
        .result
        .unresolved()
        .iter()
        .all(|(_, c)| *c == lincheck::UnknownCause::WindowLimit));
    // A stale read is still caught, as a violation or, on a key whose carried operations were
    // forgotten, as unknown; never passed.
    gen::inject_stale_read(&mut ops, 1).expect("a read to make stale");
    let text = gen::to_jsonl(&ops);
    let lines: Vec<&str> = std::str::from_utf8(&text).expect("utf-8").lines().collect();
    let (done, ..) = run(&tight, &lines);
    assert_ne!(done.result.verdict, Verdict::Linearizable);
}

/// Malformed input: the streaming reader reports the same error, on the same line, as the
/// whole-history reader.
#[test]
fn same_errors_as_the_reader() {
    let ok =
        r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}"#;
    let cases: Vec<Vec<&str>> = vec![
        vec![ok, ok],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"k2","value":"a"}"#,
        ],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"k","value":"b"}"#,
        ],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":1,"type":"info","f":"write","key":"k","value":"a"}"#,
            ok,
        ],
        vec![r#"{"index":1,"time":2,"process":7,"type":"ok","f":"read","key":"k","value":"b"}"#],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":"n1","type":"ok","f":"write"}"#,
        ],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write""#,
        ],
        vec![
            ok,
            r#"{"index":1,"time":-2,"process":1,"type":"ok","f":"write"}"#,
        ],
        vec![
            ok,
            r#"{"index":1,"time":2,"process":1,"type":"ok","f":"cas","value":[1]}"#,
        ],
    ];
    for lines in cases {
        let text = lines.join("\n") + "\n";
        let want = lincheck::read_jsonl(text.as_bytes())
            .expect_err("malformed")
            .to_string();
        let got = stream::check_jsonl(
            text.as_bytes(),
            ModelKind::Register,
            &CheckOptions::default(),
        )
        .expect_err("malformed")
        .to_string();
        assert_eq!(got, want);
        let checker = StreamingChecker::new(ModelKind::Register, &CheckOptions::default());
        let pushed = lines
            .iter()
            .map(|l| checker.push_line(l))
            .find_map(Result::err)
            .expect("malformed")
            .to_string();
        assert_eq!(pushed, want);
    }
}

/// An open kv operation of the simulation: (key, f, value, applied, info).
type KvOp = (usize, &'static str, String, bool, bool);

/// The kv model (appends: states are strings; no lazy rule, the whole pool is loaded): random
/// small histories with indefinite and failed operations, some mutated, checked both ways.
#[test]
fn kv_model_agrees_with_whole_history() {
    use lincheck::{Event, EventType, JsonlWriter, Process};
    let mut rng = StdRng::seed_from_u64(0x6b76);
    let mut bad = 0;
    for seed in 0..2000u64 {
        let keys = rng.random_range(1..=2);
        let procs = rng.random_range(2..=4u64);
        let n_ops = rng.random_range(3..=12);
        let mut state = vec![String::new(); keys];
        // Per process: (pid, open op).
        let mut open: Vec<(u64, Option<KvOp>)> = (0..procs).map(|p| (p, None)).collect();
        let mut next_pid = procs;
        let mut events = Vec::new();
        let (mut invoked, mut t) = (0, 0u64);
        while invoked < n_ops || open.iter().any(|o| o.1.is_some()) {
            t += 1;
            let slot = rng.random_range(0..open.len());
            let pid = open[slot].0;
            let ev =
                |kind, f: &str, key: usize, value: serde_json::Value, error: Option<&str>| Event {
                    index: 0,
                    time: t,
                    process: Process::Client(pid),
                    kind,
                    f: f.to_string(),
                    key: Some(format!("k{key}")),
                    value,
                    error: error.map(str::to_string),
                };
            match open[slot].1.take() {
                None if invoked < n_ops => {
                    invoked += 1;
                    let key = rng.random_range(0..keys);
                    let f = ["get", "put", "append"][rng.random_range(0..3)];
                    let v = ["x", "y", "z"][rng.random_range(0..3)].to_string();
                    let arg = if f == "get" {
                        serde_json::Value::Null
                    } else {
                        serde_json::Value::from(v.clone())
                    };
                    events.push(ev(EventType::Invoke, f, key, arg, None));
                    open[slot].1 = Some((key, f, v, false, rng.random_bool(0.2)));
                }
                None => {}
                Some((key, f, v, applied, info)) => {
                    let apply = |state: &mut Vec<String>| match f {
                        "put" => state[key] = v.clone(),
                        "append" => state[key].push_str(&v),
                        _ => {}
                    };
                    if !applied && !info {
                        // Take effect now; complete later.
                        let out = state[key].clone();
                        apply(&mut state);
                        let v2 = if f == "get" { out } else { v };
                        open[slot].1 = Some((key, f, v2, true, false));
                        continue;
                    }
                    if info {
                        if f != "get" && rng.random_bool(0.5) {
                            apply(&mut state);
                        }
                        let arg = if f == "get" {
                            serde_json::Value::Null
                        } else {
                            serde_json::Value::from(v.clone())
                        };
                        events.push(ev(EventType::Info, f, key, arg, Some("timeout")));
                        open[slot].0 = next_pid;
                        next_pid += 1;
                    } else {
                        events.push(ev(EventType::Ok, f, key, serde_json::Value::from(v), None));
                    }
                }
            }
        }
        if seed % 2 == 1 {
            // Corrupt a completed get.
            if let Some(e) = events
                .iter_mut()
                .filter(|e| e.f == "get" && e.kind == EventType::Ok)
                .nth(rng.random_range(0..3))
            {
                e.value = serde_json::Value::from("zz");
            }
        }
        let mut w = JsonlWriter::new(Vec::new());
        for e in &events {
            w.write(e).expect("writes");
        }
        let h = lincheck::read_jsonl(&w.into_inner()[..]).expect("parses");
        let opts = CheckOptions::new(ModelKind::KvAppend)
            .stream_workers(0)
            .stop_at_first_violation(false);
        let want = whole(&h, &opts);
        let got = stream::check_history(&h, &opts).expect("checks");
        assert_eq!(got.result.verdict, want.verdict, "seed {seed}: {events:#?}");
        assert_eq!(bad_keys(&got.result), bad_keys(&want), "seed {seed}");
        bad += (want.verdict == Verdict::NotLinearizable) as usize;
    }
    assert!(bad > 300, "{bad}");
}

#[test]
fn the_checker_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<StreamingChecker>();
    shareable::<lincheck::stream::Status>();
}
