//! The reductions for indefinite operations (src/check/reduce.rs) never change a verdict:
//! differential test against the unreduced search on info-heavy histories too big for the
//! stateright oracle (which `tests/differential.rs` covers with reductions on and off), and a
//! scaled-down "hard history" that the unreduced search cannot finish but the reduced one decides.

mod support;

use std::time::Duration;

use lincheck::{check, CheckOptions, ModelKind, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::gen;

fn verdict(h: &lincheck::History, reductions: bool) -> (Verdict, usize, usize) {
    let opts = CheckOptions::new(ModelKind::Register)
        .threads(1)
        .reductions(reductions)
        .time_limit(Some(Duration::from_secs(20)));
    let r = check(h, &opts).expect("register history");
    let clamped = r.keys.iter().map(|k| k.clamped).sum();
    let dropped = r.keys.iter().map(|k| k.dropped).sum();
    (r.verdict, clamped, dropped)
}

#[test]
fn reductions_preserve_verdicts() {
    let mut rng = StdRng::seed_from_u64(7);
    let (mut clamped, mut dropped, mut bad) = (0, 0, 0);
    for i in 0..1500u64 {
        let mut p = gen::Params::small(1000 + i);
        p.ops = rng.random_range(5..=24);
        p.procs = rng.random_range(2..=6);
        p.info_rate = 0.3;
        p.read_frac = 0.4;
        p.write_frac = 0.4;
        p.unique_values = i % 3 != 0;
        p.domain = 4;
        let mut ops = gen::generate(&p);
        match i % 3 {
            0 => {}
            1 => gen::mutate(&mut ops, &mut rng, 6),
            _ => {
                gen::inject_stale_read(&mut ops, i);
            }
        }
        let h = gen::to_history(&ops);
        let (plain, _, _) = verdict(&h, false);
        let (reduced, c, d) = verdict(&h, true);
        assert_ne!(
            plain,
            Verdict::Unknown,
            "seed {i}: unreduced search timed out"
        );
        assert_eq!(plain, reduced, "seed {i}: {ops:#?}");
        clamped += c;
        dropped += d;
        bad += (plain == Verdict::NotLinearizable) as usize;
    }
    eprintln!("reductions: {clamped} clamped, {dropped} dropped, {bad} not linearizable of 1500");
    assert!(clamped > 500 && dropped > 500 && bad > 300);
}

#[test]
fn hard_history_scaled_down_is_decided() {
    // 2,000 ops over 2 keys, 20 processes, 5% indefinite: the shape of the benchmark's hard
    // histories at a fifth of the size.
    let p = gen::Params {
        ops: 2000,
        keys: 2,
        procs: 20,
        info_rate: 0.05,
        fail_rate: 0.02,
        read_frac: 0.5,
        write_frac: 0.3,
        unique_values: true,
        domain: 0,
        seed: 42,
    };
    let mut ops = gen::generate(&p);
    let opts = CheckOptions::new(ModelKind::Register).time_limit(Some(Duration::from_secs(20)));
    let valid = check(&gen::to_history(&ops), &opts).expect("checks");
    assert_eq!(valid.verdict, Verdict::Linearizable, "{}", valid.summary());
    let r = gen::inject_stale_read(&mut ops, 1).expect("a read to make stale");
    let h = gen::to_history(&ops);
    let bad = check(&h, &opts).expect("checks");
    assert_eq!(bad.verdict, Verdict::NotLinearizable, "{}", bad.summary());
    let c = &bad.counterexamples[0];
    assert_eq!(c.key, format!("k{}", ops[r].key));
}
