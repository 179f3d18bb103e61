//! The second checking engine: stateright's `LinearizabilityTester`, key by key, with the same
//! models, initial value and limits as [`crate::check()`].
//!
//! It is an independent implementation (a plain depth-first search over interleavings, without
//! memoisation, reductions or pruning), which is what makes it worth running beside the main
//! engine on small histories: `harness check --engine both` reports any disagreement. It grows
//! exponentially with the number of operations that overlap, so it is practical for small or
//! nearly sequential keys only (crates/lincheck/README.md gives measured sizes).
//!
//! Limits: the time limit covers the whole check; a key whose search passes it, and every key
//! not yet started, is unknown ([`UnknownCause::TimeLimit`]). The tester clones what remains of
//! the history at each level of its recursion, so its memory grows with the square of a key's
//! operations; a key whose estimate is over the memory budget is not started and is unknown
//! ([`UnknownCause::MemoryBudget`]). Stopping a search at its deadline unwinds it, so the time
//! limit needs `panic = "unwind"` (the default); built with `panic = "abort"` it is not enforced.

mod spec;

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use crate::check::CheckOptions;
use crate::error::ModelError;
use crate::history::{Func, History, Operation, Outcome, Value};
use crate::model::ModelKind;
use crate::result::{CheckResult, Counterexample, KeyResult, UnknownCause, Verdict};
use spec::{Budget, Cancelled, Op, Ret, Spec, State};

/// The engine's name in results and messages.
pub const ENGINE: &str = "stateright";

/// Bytes the estimate charges per history entry the tester holds: the operation and its
/// return, the queue slot, and one map entry (two words plus B-tree overhead) per other thread
/// recording real-time order.
const ENTRY_BYTES: usize = 96;
const PER_THREAD_BYTES: usize = 24;

/// Checks `history` with stateright's tester. `opts.model` (default: the register),
/// `opts.initial`, `opts.time_limit`, `opts.memory_budget` and `opts.stop_at_first_violation`
/// apply as in [`crate::check()`]; the other options are the search engine's own. Keys are
/// checked one at a time, in key order.
pub fn check(history: &History, opts: &CheckOptions) -> Result<CheckResult, ModelError> {
    let start = Instant::now();
    let deadline = opts.time_limit.map(|d| start + d);
    let model = opts.model_kind();
    let mut by_key: Vec<Vec<&Operation>> = vec![Vec::new(); history.keys.len()];
    for op in &history.ops {
        if let Some(v) = by_key.get_mut(op.key as usize) {
            v.push(op);
        }
    }
    let mut keys = Vec::new();
    let mut counterexamples = Vec::new();
    for (k, ops) in by_key.iter().enumerate() {
        if ops.is_empty() {
            continue;
        }
        let name = history.key_name(k as u32).to_string();
        let encoded = encode(&model, &opts.initial, ops)?;
        let key_start = Instant::now();
        let stopped = opts.stop_at_first_violation && !counterexamples.is_empty();
        let (verdict, cause, steps) = if stopped {
            (Verdict::Unknown, Some(UnknownCause::Stopped), 0)
        } else if deadline.is_some_and(|d| key_start >= d) {
            (Verdict::Unknown, Some(UnknownCause::TimeLimit), 0)
        } else if encoded.memory_estimate() > opts.memory_budget {
            (Verdict::Unknown, Some(UnknownCause::MemoryBudget), 0)
        } else {
            run_key(&encoded, deadline)
        };
        if verdict == Verdict::NotLinearizable {
            counterexamples.push(Counterexample {
                key: name.clone(),
                prefix: Vec::new(),
                state: String::new(),
                unplaceable: Vec::new(),
                explanation: format!(
                    "stateright's LinearizabilityTester found no order of the key's {} \
                     operations that respects real time and the {} model (it names no \
                     operation; --engine lincheck explains the violation)",
                    encoded.ops,
                    model.name()
                ),
            });
        }
        keys.push(KeyResult {
            key: name,
            ops: ops.len(),
            searched_ops: encoded.ops,
            verdict,
            cause,
            elapsed: key_start.elapsed(),
            steps,
            configs: 0,
            clamped: 0,
            dropped: 0,
        });
    }
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    counterexamples.sort_by(|a, b| a.key.cmp(&b.key));
    let verdict = Verdict::overall(keys.iter().map(|k| k.verdict));
    Ok(CheckResult {
        verdict,
        model: model.name().to_string(),
        ops: history.ops.len(),
        elapsed: start.elapsed(),
        keys,
        counterexamples,
    })
}

/// One event for the tester: an invocation (`Some(op)`) or a return.
enum Event {
    Invoke(u64, Op),
    Return(u64, Ret),
}

/// One key's history, as the tester will be fed it, in real-time order.
struct Encoded {
    initial: State,
    events: Vec<Event>,
    /// Operations fed (each has an invocation event).
    ops: usize,
    /// Tester threads used.
    threads: usize,
}

impl Encoded {
    /// The tester's peak memory: a clone of the remaining history per level of its recursion
    /// (up to one level per operation), so about ops²/2 entries, each with one real-time
    /// entry per other thread.
    fn memory_estimate(&self) -> usize {
        let per_entry = ENTRY_BYTES.saturating_add(PER_THREAD_BYTES.saturating_mul(self.threads));
        let entries = self
            .ops
            .saturating_add(self.ops.saturating_mul(self.ops) / 2);
        entries.saturating_mul(per_entry)
    }
}

/// Encodes a key's operations as the search engine's models do (crate::model): failed
/// operations never happened and reads without a definite result (and, for Knossos's
/// cas-register, nil reads) observe nothing, so they are left out; indefinite operations are
/// invoked and never return, which the tester reads as "may have taken effect, or not".
fn encode(kind: &ModelKind, initial: &Value, ops: &[&Operation]) -> Result<Encoded, ModelError> {
    let kv = *kind == ModelKind::KvAppend;
    let mut values: HashMap<Value, u32> = HashMap::from([(Value::Nil, 0)]);
    let mut intern = |v: &Value| -> u32 {
        let next = values.len() as u32;
        *values.entry(v.clone()).or_insert(next)
    };
    let initial = if kv {
        State::Kv(as_string(kind, initial, 0)?)
    } else {
        State::Register(intern(initial))
    };
    // (position, is_return, process, event): sorted by position, which is real-time order.
    let mut timed: Vec<(u64, u64, Event)> = Vec::new();
    let mut fed = 0;
    for op in ops {
        let Some((input, ret)) = encode_op(kind, op, &mut intern)? else {
            continue;
        };
        fed += 1;
        timed.push((op.call_pos, op.process, Event::Invoke(op.process, input)));
        if let Some(ret) = ret {
            timed.push((op.ret_pos, op.process, Event::Return(op.process, ret)));
        }
    }
    timed.sort_by_key(|e| e.0);
    // A process whose operation is indefinite is never heard from again in the history format,
    // but importers need not promise it: its next operation runs on a fresh tester thread, as
    // Jepsen gives a crashed client a new process.
    let mut thread_of: HashMap<u64, u64> = HashMap::new();
    let mut open: HashMap<u64, bool> = HashMap::new();
    let mut next_thread = 0u64;
    let mut events = Vec::with_capacity(timed.len());
    for (_, process, ev) in timed {
        match ev {
            Event::Invoke(_, op) => {
                let reuse = thread_of.get(&process).copied().filter(|t| !open[t]);
                let t = reuse.unwrap_or_else(|| {
                    next_thread += 1;
                    next_thread
                });
                thread_of.insert(process, t);
                open.insert(t, true);
                events.push(Event::Invoke(t, op));
            }
            Event::Return(_, ret) => {
                let t = thread_of[&process];
                open.insert(t, false);
                events.push(Event::Return(t, ret));
            }
        }
    }
    Ok(Encoded {
        initial,
        events,
        ops: fed,
        threads: next_thread as usize,
    })
}

/// One operation: what the tester invokes and, when it completed, what it returned.
type EncodedOp = Option<(Op, Option<Ret>)>;

fn encode_op(
    kind: &ModelKind,
    op: &Operation,
    intern: &mut impl FnMut(&Value) -> u32,
) -> Result<EncodedOp, ModelError> {
    let kv = *kind == ModelKind::KvAppend;
    if op.outcome == Outcome::Fail || (kv && op.outcome == Outcome::Refused) {
        return Ok(None);
    }
    let done = match op.outcome {
        Outcome::Ok => Some(Ret::Done),
        Outcome::Refused => Some(Ret::Refused),
        _ => None,
    };
    let unsupported = || ModelError::Unsupported {
        model: kind.name(),
        f: op.f.name(),
        line: op.call_line,
    };
    Ok(Some(match (kv, op.f) {
        (_, Func::Read) => {
            let nil_free = *kind == ModelKind::CasRegister && op.output == Value::Nil;
            if op.outcome != Outcome::Ok || nil_free {
                return Ok(None);
            }
            if kv {
                let got = as_string(kind, &op.output, op.call_line)?;
                (Op::Get, Some(Ret::Got(got.into())))
            } else {
                (Op::Read, Some(Ret::Read(intern(&op.output))))
            }
        }
        (false, Func::Write) => (Op::Write(intern(&op.arg)), done),
        (false, Func::Cas) => (Op::Cas(intern(&op.arg), intern(&op.arg2)), done),
        (true, Func::Write) => (
            Op::Put(as_string(kind, &op.arg, op.call_line)?.into()),
            done,
        ),
        (true, Func::Append) => {
            let v = as_string(kind, &op.arg, op.call_line)?;
            (Op::Append(v.into()), done)
        }
        _ => return Err(unsupported()),
    }))
}

/// Porcupine's kv values are strings; a missing key reads as "" (as `model::kv`).
fn as_string(kind: &ModelKind, v: &Value, line: u64) -> Result<String, ModelError> {
    match v {
        Value::Nil => Ok(String::new()),
        Value::Str(s) => Ok(s.to_string()),
        Value::Int(i) => Ok(i.to_string()),
        #[allow(unreachable_patterns)]
        other => Err(ModelError::BadValue {
            model: kind.name(),
            value: other.to_string(),
            line,
        }),
    }
}

/// Stack for a search thread: the tester recurses once per operation it places.
fn stack_bytes(ops: usize) -> usize {
    (16usize << 20).saturating_add(ops.saturating_mul(4 << 10))
}

/// Runs the tester on one key, in a thread of its own (its recursion needs a deep stack, and a
/// search stopped at the deadline unwinds to the join).
fn run_key(e: &Encoded, deadline: Option<Instant>) -> (Verdict, Option<UnknownCause>, u64) {
    let caught = || std::panic::catch_unwind(AssertUnwindSafe(|| search(e, deadline)));
    let outcome = std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name("stateright".into())
            .stack_size(stack_bytes(e.ops))
            .spawn_scoped(s, caught);
        match thread {
            // `caught` catches every unwind, so a join error cannot happen; treat it as one.
            Ok(h) => h.join().unwrap_or_else(Err),
            // No thread (no memory for its stack): run here, on the caller's stack.
            Err(_) => caught(),
        }
    });
    match outcome {
        Ok((true, steps)) => (Verdict::Linearizable, None, steps),
        Ok((false, steps)) => (Verdict::NotLinearizable, None, steps),
        Err(payload) if payload.is::<Cancelled>() => {
            (Verdict::Unknown, Some(UnknownCause::TimeLimit), 0)
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Feeds the events and asks the tester; returns (linearizable, steps).
fn search(e: &Encoded, deadline: Option<Instant>) -> (bool, u64) {
    let budget = Budget {
        deadline,
        steps: Cell::new(0),
    };
    let spec = Spec {
        state: e.initial.clone(),
        budget: &budget,
    };
    let mut t = LinearizabilityTester::<u64, Spec<'_>>::new(spec);
    for ev in &e.events {
        // The encoder pairs every return with the open invocation of its thread, so the tester
        // accepts each event; if it did not, its history is marked invalid and it answers
        // "not linearizable", which `both` would then report as a disagreement.
        let _ = match ev {
            Event::Invoke(th, op) => t.on_invoke(*th, op.clone()).map(|_| ()),
            Event::Return(th, ret) => t.on_return(*th, ret.clone()).map(|_| ()),
        };
    }
    let ok = t.is_consistent();
    (ok, budget.steps.get())
}
