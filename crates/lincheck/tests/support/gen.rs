//! Random register histories from a simulated atomic register (valid by construction), with
//! indefinite and failed operations, and mutations. Shared by the tests and the benchmark.

#![allow(dead_code)]

use lincheck::{Event, EventType, JsonlWriter, Process};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Params {
    pub ops: usize,
    pub keys: usize,
    pub procs: usize,
    /// Fraction of operations with an indefinite outcome.
    pub info_rate: f64,
    /// Fraction of writes that fail (definitely not applied).
    pub fail_rate: f64,
    /// Fractions of reads and writes; the rest are cas.
    pub read_frac: f64,
    pub write_frac: f64,
    /// Written values are unique (a counter); otherwise drawn from 1..=domain.
    pub unique_values: bool,
    pub domain: i64,
    pub seed: u64,
}

impl Params {
    pub fn small(seed: u64) -> Self {
        Params {
            ops: 6,
            keys: 1,
            procs: 3,
            info_rate: 0.15,
            fail_rate: 0.1,
            read_frac: 0.45,
            write_frac: 0.35,
            unique_values: false,
            domain: 3,
            seed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F {
    Read,
    Write,
    Cas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Ok,
    Fail,
    Info,
    Pending,
}

/// One simulated operation. Value 0 means nil.
#[derive(Clone, Debug)]
pub struct SimOp {
    pub process: u64,
    pub key: usize,
    pub f: F,
    pub arg: i64,
    pub arg2: i64,
    pub output: i64,
    pub outcome: Out,
    pub call: u64,
    pub ret: Option<u64>,
}

#[derive(Clone, Copy)]
enum Phase {
    Idle,
    Invoked {
        op: usize,
        info: bool,
        applied: bool,
    },
}

/// Simulates clients against an atomic register per key.
pub fn generate(p: &Params) -> Vec<SimOp> {
    let mut rng = StdRng::seed_from_u64(p.seed);
    let mut ops: Vec<SimOp> = Vec::with_capacity(p.ops);
    let mut regs = vec![0i64; p.keys];
    let mut procs: Vec<(u64, Phase)> = (0..p.procs as u64).map(|i| (i, Phase::Idle)).collect();
    let mut next_pid = p.procs as u64;
    let mut next_value = 1i64;
    // Indefinite ops that have not been applied yet and may still be (late).
    let mut zombies: Vec<usize> = Vec::new();
    let mut tick = 0u64;
    let mut invoked = 0usize;
    let apply = |ops: &mut Vec<SimOp>, regs: &mut Vec<i64>, i: usize| -> bool {
        let op = &mut ops[i];
        let r = &mut regs[op.key];
        match op.f {
            F::Read => {
                op.output = *r;
                true
            }
            F::Write => {
                *r = op.arg;
                true
            }
            F::Cas => {
                if *r == op.arg {
                    *r = op.arg2;
                    true
                } else {
                    false
                }
            }
        }
    };
    loop {
        let busy = procs.iter().any(|(_, ph)| !matches!(ph, Phase::Idle));
        if invoked >= p.ops && !busy {
            break;
        }
        tick += 1;
        if !zombies.is_empty() && rng.random_bool(0.05) {
            let z = zombies.swap_remove(rng.random_range(0..zombies.len()));
            apply(&mut ops, &mut regs, z);
        }
        let slot = rng.random_range(0..procs.len());
        let (pid, phase) = procs[slot];
        match phase {
            Phase::Idle => {
                if invoked >= p.ops {
                    continue;
                }
                invoked += 1;
                let key = rng.random_range(0..p.keys);
                let x: f64 = rng.random();
                let f = if x < p.read_frac {
                    F::Read
                } else if x < p.read_frac + p.write_frac {
                    F::Write
                } else {
                    F::Cas
                };
                let mut fresh = || {
                    if p.unique_values {
                        next_value += 1;
                        next_value
                    } else {
                        rng.random_range(1..=p.domain)
                    }
                };
                let (arg, arg2) = match f {
                    F::Read => (0, 0),
                    F::Write => (fresh(), 0),
                    F::Cas => {
                        let to = fresh();
                        let from = if rng.random_bool(0.6) {
                            regs[key]
                        } else if p.unique_values {
                            rng.random_range(0..next_value)
                        } else {
                            rng.random_range(0..=p.domain)
                        };
                        (from, to)
                    }
                };
                let info = rng.random_bool(p.info_rate);
                ops.push(SimOp {
                    process: pid,
                    key,
                    f,
                    arg,
                    arg2,
                    output: 0,
                    outcome: Out::Pending,
                    call: tick,
                    ret: None,
                });
                procs[slot].1 = Phase::Invoked {
                    op: ops.len() - 1,
                    info,
                    applied: false,
                };
            }
            Phase::Invoked { op, info, applied } => {
                if info {
                    // Indefinite: applied now, later (a zombie), or never; then reported as info.
                    let roll: f64 = rng.random();
                    if !applied && roll < 0.5 {
                        apply(&mut ops, &mut regs, op);
                    } else if !applied && roll < 0.75 && ops[op].f != F::Read {
                        zombies.push(op);
                    }
                    ops[op].outcome = Out::Info;
                    ops[op].ret = Some(tick);
                    procs[slot] = (next_pid, Phase::Idle);
                    next_pid += 1;
                } else if !applied {
                    if ops[op].f == F::Write && rng.random_bool(p.fail_rate) {
                        ops[op].outcome = Out::Fail;
                        ops[op].ret = Some(tick);
                        procs[slot].1 = Phase::Idle;
                    } else {
                        let ok = apply(&mut ops, &mut regs, op);
                        procs[slot].1 = Phase::Invoked {
                            op,
                            info,
                            applied: true,
                        };
                        if !ok {
                            ops[op].outcome = Out::Fail; // cas precondition: did not happen
                        }
                    }
                } else {
                    if ops[op].outcome == Out::Pending {
                        ops[op].outcome = Out::Ok;
                    }
                    ops[op].ret = Some(tick);
                    procs[slot].1 = Phase::Idle;
                }
            }
        }
    }
    ops
}

/// Makes one read return a value that was overwritten before it began (a stale read), on a key
/// chosen from the middle of the history. Returns the index of the mutated read.
pub fn inject_stale_read(ops: &mut [SimOp], seed: u64) -> Option<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = ops.len();
    let start = n / 3 + rng.random_range(0..n / 3 + 1);
    for r in (start..n).chain(0..start) {
        let rop = &ops[r];
        if rop.f != F::Read || rop.outcome != Out::Ok {
            continue;
        }
        // The latest ok write of the key completed before the read began ...
        let Some(wy) = ops
            .iter()
            .filter(|w| w.key == rop.key && w.f == F::Write && w.outcome == Out::Ok)
            .filter(|w| w.ret.is_some_and(|t| t < rop.call))
            .max_by_key(|w| w.ret)
        else {
            continue;
        };
        // ... and an ok write of another value completed before that one began.
        let Some(wx) = ops
            .iter()
            .filter(|w| w.key == rop.key && w.f == F::Write && w.outcome == Out::Ok)
            .filter(|w| w.ret.is_some_and(|t| t < wy.call) && w.arg != rop.output)
            .max_by_key(|w| w.ret)
        else {
            continue;
        };
        let x = wx.arg;
        ops[r].output = x;
        return Some(r);
    }
    None
}

/// Randomly perturbs a history (may or may not break linearizability).
pub fn mutate(ops: &mut [SimOp], rng: &mut StdRng, domain: i64) {
    if ops.is_empty() {
        return;
    }
    let i = rng.random_range(0..ops.len());
    match rng.random_range(0..4) {
        0 | 1 => {
            if ops[i].f == F::Read && ops[i].outcome == Out::Ok {
                ops[i].output = rng.random_range(0..=domain);
            } else {
                ops[i].arg = rng.random_range(0..=domain);
            }
        }
        2 => {
            ops[i].outcome = match ops[i].outcome {
                Out::Ok => Out::Fail,
                Out::Fail => Out::Ok,
                o => o,
            }
        }
        _ => {
            if ops[i].f == F::Cas {
                ops[i].arg2 = rng.random_range(0..=domain);
            }
        }
    }
}

fn value(v: i64) -> serde_json::Value {
    if v == 0 {
        serde_json::Value::Null
    } else {
        serde_json::Value::String(format!("v{v}"))
    }
}

/// One event of an operation: its invocation (`false`) or its completion.
fn event(op: &SimOp, completion: bool) -> Option<Event> {
    let f = match op.f {
        F::Read => "read",
        F::Write => "write",
        F::Cas => "cas",
    };
    let input = match op.f {
        F::Read => serde_json::Value::Null,
        F::Write => value(op.arg),
        F::Cas => serde_json::json!([value(op.arg), value(op.arg2)]),
    };
    let ev = |time, kind, value, error: Option<&str>| Event {
        index: 0,
        time,
        process: Process::Client(op.process),
        kind,
        f: f.to_string(),
        key: Some(format!("k{}", op.key)),
        value,
        error: error.map(str::to_string),
    };
    if !completion {
        return Some(ev(op.call * 1000, EventType::Invoke, input, None));
    }
    let ret = op.ret?;
    let (kind, v, err) = match op.outcome {
        Out::Ok if op.f == F::Read => (EventType::Ok, value(op.output), None),
        Out::Ok => (EventType::Ok, input, None),
        Out::Fail => (EventType::Fail, input, Some("failed")),
        Out::Info | Out::Pending => (EventType::Info, input, Some("timeout")),
    };
    Some(ev(ret * 1000, kind, v, err))
}

/// The events' order: (tick, completion, op index).
fn order(ops: &[SimOp]) -> Vec<(u64, bool, u32)> {
    let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        evs.push((op.call, false, i as u32));
        if let Some(ret) = op.ret {
            evs.push((ret, true, i as u32));
        }
    }
    evs.sort_unstable();
    evs
}

/// The history as events in real-time order.
pub fn events(ops: &[SimOp]) -> Vec<Event> {
    order(ops)
        .into_iter()
        .filter_map(|(_, c, i)| event(&ops[i as usize], c))
        .collect()
}

/// Writes the history as JSONL, one event at a time (for histories too big to hold as text).
pub fn write_jsonl<W: std::io::Write>(ops: &[SimOp], out: W) -> std::io::Result<()> {
    let mut w = JsonlWriter::new(out);
    for (_, c, i) in order(ops) {
        if let Some(e) = event(&ops[i as usize], c) {
            w.write(&e)?;
        }
    }
    w.flush()
}

/// The history as JSONL text.
pub fn to_jsonl(ops: &[SimOp]) -> Vec<u8> {
    let mut w = JsonlWriter::new(Vec::with_capacity(ops.len() * 200));
    for e in events(ops) {
        w.write(&e).expect("writing to a Vec");
    }
    w.into_inner()
}

/// Parses generated JSONL back into a lincheck history.
pub fn to_history(ops: &[SimOp]) -> lincheck::History {
    lincheck::read_jsonl(&to_jsonl(ops)[..]).expect("generated history parses")
}
