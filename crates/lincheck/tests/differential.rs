//! Differential test against stateright's `LinearizabilityTester` (the independent oracle):
//! small random register histories with indefinite and failed operations, valid by construction
//! from a simulated atomic register and mutated; both checkers must agree on every one, with and
//! without our reductions.

mod support;

use lincheck::{check, CheckOptions, ModelKind, Strategy, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use support::gen::{self, Out, SimOp, F};

/// The register with read/write/cas as a stateright reference object. Value 0 is nil.
#[derive(Clone, Debug, Default, Hash, PartialEq)]
struct Reg(i64);

#[derive(Clone, Debug, Hash, PartialEq)]
enum Op {
    Read,
    Write(i64),
    Cas(i64, i64),
}

#[derive(Clone, Debug, Hash, PartialEq)]
enum Ret {
    Read(i64),
    Written,
    CasOk,
    CasFailed,
}

impl SequentialSpec for Reg {
    type Op = Op;
    type Ret = Ret;
    fn invoke(&mut self, op: &Op) -> Ret {
        match *op {
            Op::Read => Ret::Read(self.0),
            Op::Write(v) => {
                self.0 = v;
                Ret::Written
            }
            Op::Cas(from, to) => {
                if self.0 == from {
                    self.0 = to;
                    Ret::CasOk
                } else {
                    Ret::CasFailed
                }
            }
        }
    }
}

/// Stateright's verdict. Failed operations never happened, so they are left out; indefinite
/// operations stay in flight (stateright may apply them or not).
fn oracle(ops: &[SimOp]) -> bool {
    let mut t = LinearizabilityTester::<u64, Reg>::new(Reg(0));
    let mut evs: Vec<(u64, bool, &SimOp)> = Vec::new();
    for op in ops.iter().filter(|o| o.outcome != Out::Fail) {
        evs.push((op.call, true, op));
        if op.outcome == Out::Ok {
            evs.push((op.ret.expect("ok ops complete"), false, op));
        }
    }
    evs.sort_by_key(|e| (e.0, e.1));
    for (_, is_call, op) in evs {
        let r = if is_call {
            let o = match op.f {
                F::Read => Op::Read,
                F::Write => Op::Write(op.arg),
                F::Cas => Op::Cas(op.arg, op.arg2),
            };
            t.on_invoke(op.process, o).map(|_| ())
        } else {
            let ret = match op.f {
                F::Read => Ret::Read(op.output),
                F::Write => Ret::Written,
                F::Cas => Ret::CasOk,
            };
            t.on_return(op.process, ret).map(|_| ())
        };
        r.expect("well-formed history");
    }
    t.is_consistent()
}

fn ours(ops: &[SimOp], reductions: bool, strategy: Strategy) -> Verdict {
    let h = gen::to_history(ops);
    let opts = CheckOptions::new(ModelKind::Register)
        .threads(1)
        .reductions(reductions)
        .strategy(strategy);
    check(&h, &opts).expect("register history").verdict
}

const STRATEGIES: [Strategy; 3] = [Strategy::Portfolio, Strategy::Eager, Strategy::Lazy];

#[test]
fn agrees_with_stateright_on_10k_small_histories() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (mut valid, mut invalid, mut with_info) = (0, 0, 0);
    for i in 0..10_000u64 {
        let mut p = gen::Params::small(i);
        p.ops = rng.random_range(2..=7);
        p.procs = rng.random_range(2..=4);
        p.info_rate = [0.0, 0.15, 0.35][i as usize % 3];
        p.unique_values = i % 4 == 0;
        let mut ops = gen::generate(&p);
        let mutated = i % 2 == 1;
        if mutated {
            for _ in 0..rng.random_range(1..=2) {
                gen::mutate(&mut ops, &mut rng, p.domain);
            }
        }
        let expect = oracle(&ops);
        if !mutated {
            assert!(
                expect,
                "seed {i}: simulated history rejected by stateright: {ops:?}"
            );
        }
        let want = if expect {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        for reductions in [true, false] {
            // The portfolio's first answer is nearly always the eager search's on histories
            // this small, so each strategy is also checked alone.
            for strategy in STRATEGIES {
                let got = ours(&ops, reductions, strategy);
                assert_eq!(
                    got, want,
                    "seed {i} (reductions {reductions}, {strategy:?}): {ops:#?}"
                );
            }
        }
        if expect {
            valid += 1;
        } else {
            invalid += 1;
        }
        if ops.iter().any(|o| o.outcome == Out::Info) {
            with_info += 1;
        }
    }
    eprintln!(
        "stateright agreement: {valid} linearizable, {invalid} not, {with_info} with info ops"
    );
    // The sample must exercise both verdicts and indefinite operations.
    assert!(
        valid > 3000 && invalid > 1000,
        "valid {valid}, invalid {invalid}"
    );
    assert!(with_info > 3000, "with info {with_info}");
}

/// Histories too big for the oracle, of the class where the strategies differ most (one key,
/// values from a domain of 3 or 4, a fifth of the operations indefinite), valid and mutated:
/// the eager and lazy searches and the portfolio give the same verdict.
#[test]
fn strategies_agree_on_small_domain_info_heavy_histories() {
    let mut rng = StdRng::seed_from_u64(0x16);
    let mut seen = [0usize; 2];
    for i in 0..300u64 {
        let p = gen::Params {
            ops: 60 + (i as usize % 5) * 30,
            keys: 1,
            procs: [4, 6, 10][i as usize % 3],
            info_rate: 0.2,
            fail_rate: 0.02,
            read_frac: 0.4,
            write_frac: 0.4,
            unique_values: false,
            domain: 3 + (i as i64 % 2),
            seed: i,
        };
        let mut ops = gen::generate(&p);
        if i % 2 == 1 {
            gen::inject_stale_read(&mut ops, i);
            gen::mutate(&mut ops, &mut rng, p.domain);
        }
        let verdicts = STRATEGIES.map(|s| ours(&ops, true, s));
        assert!(
            verdicts.iter().all(|&v| v == verdicts[0]),
            "seed {i}: {verdicts:?}"
        );
        assert_ne!(verdicts[0], Verdict::Unknown, "seed {i}");
        seen[(verdicts[0] == Verdict::Linearizable) as usize] += 1;
    }
    // Both verdicts must be exercised.
    assert!(
        seen[0] > 20 && seen[1] > 100,
        "not / linearizable: {seen:?}"
    );
}
