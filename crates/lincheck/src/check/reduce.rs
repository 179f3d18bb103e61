//! Sound reductions for registers with indefinite operations.
//!
//! Indefinite operations (`info`, or no completion) are what make a register history hard: each
//! one may take effect at any instant after its invocation, forever, so the search may place it
//! anywhere and the set of configurations multiplies. Two rewrites remove almost all of them
//! without changing the verdict. Both are checked differentially against the unreduced search in
//! `tests/reductions.rs`.
//!
//! Terms: a *writer* of value `v` is a write of `v`, or a cas `from → v` with `from ≠ v` that did
//! not report a refused precondition. An *observer* of `v` is a definite (`ok`) read that returned
//! `v`, or a definite cas whose `from` is `v`.
//!
//! # R1: clamp an observed indefinite writer
//!
//! Let `w` be an indefinite writer of `v`, the only writer of `v` in the key's history, and `v`
//! not the initial value. Let `O` be the observers of `v`, non-empty. Then setting `w`'s
//! completion to `min(ret(o) for o in O)` (making it definite) preserves the verdict.
//!
//! Proof. (⇒) Take any linearization of the original. Each observer `o` needs the register to hold
//! `v` at its linearization point `p(o)`; `v` is not initial, so an operation that wrote `v` was
//! linearized before `o`, and `w` is the only one. So `w` took effect, and `p(w) < p(o) ≤ ret(o)`
//! for every `o`, i.e. `p(w) < min ret(o)`: the same linearization is valid for the rewritten
//! history. (⇐) The rewritten history only adds real-time constraints (and requires `w` to take
//! effect, which the original allows), so any linearization of it is one of the original. ∎
//!
//! Moreover `w` took effect *and set `v`*: for a cas (`from ≠ v` by the definition of writer)
//! that means its precondition held, so `w` is also marked as a completed, successful operation
//! (output `ok`), which lets the search reject placements where the register does not hold
//! `from`. This is exactly the constraint every linearization of the original satisfies.
//!
//! (If `min ret(o)` precedes `w`'s invocation, the rewritten `w` cannot be placed: a value was
//! observed before the only operation that wrote it began — correctly not linearizable.)
//!
//! # R2: drop an unobserved indefinite writer
//!
//! Let `w` be an indefinite writer of `v` such that no operation of the key observes `v` in the
//! broad sense — no `ok` read returns `v`, and no cas of any outcome has `from = v` — and no
//! operation of the key has a refused precondition (Porcupine's failed cas). Then removing `w`
//! preserves the verdict.
//!
//! Proof. (⇐) Given a linearization without `w`, append `w` at the very end: its completion is at
//! +infinity, so this respects real time, and a write (or a cas with unknown output) is accepted
//! in any state. (⇒) Given a linearization with `w` at `p(w)`, consider the operations between `w`
//! and the next operation that changes the register. During that stretch the register holds `v`,
//! so the stretch contains no `ok` read (it would return `v`), no `ok` cas (its `from` would be
//! `v`), no indefinite cas that changes the state (its `from` would be `v`); what is left are
//! operations valid in any state: indefinite cas that leave the state alone, and — after the
//! last change — nothing that reads. The next change, if any, is therefore a write, which does not
//! depend on the state. Remove `w`: every operation keeps its point, and each one's step is still
//! valid (those in the stretch accept any state, the write after it overwrites), except that the
//! indefinite no-op casses in the stretch might now match and change the state; move those to the
//! very end (allowed for indefinite operations, as above). The result is a linearization of the
//! history without `w`. ∎
//!
//! Each rewrite is proven for any history, so they may be applied one after another, to a
//! fixpoint: dropping an indefinite cas can make another writer's value unobserved, or leave a
//! value with a single writer.
//!
//! R1 runs first, so every observed unique-valued indefinite writer becomes definite; R2 then
//! removes the unobserved ones. With unique written values (the harness's clients write unique
//! values) no indefinite writer survives.

use crate::model::register::{RegInput, RegOutput, ValueId};
use crate::model::SearchOp;

/// What the reductions did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reduced {
    /// Indefinite writers given a finite completion (R1).
    pub clamped: usize,
    /// Indefinite writers removed (R2).
    pub dropped: usize,
}

type Op = SearchOp<RegInput, RegOutput>;

/// The value an operation writes, if it is a writer.
fn written(op: &Op) -> Option<ValueId> {
    match (op.input, op.output) {
        (_, RegOutput::Refused) => None,
        (RegInput::Write(v), _) => Some(v),
        (RegInput::Cas(from, to), _) if from != to => Some(to),
        _ => None,
    }
}

/// Applies R1 then R2 in place, repeatedly until neither changes anything (removing an
/// indefinite cas can leave another writer unobserved, or a value with a single writer).
pub(crate) fn reduce(ops: &mut Vec<Op>, init: ValueId) -> Reduced {
    let mut total = Reduced::default();
    loop {
        let r = reduce_once(ops, init);
        total.clamped += r.clamped;
        total.dropped += r.dropped;
        if r == Reduced::default() {
            return total;
        }
    }
}

fn reduce_once(ops: &mut Vec<Op>, init: ValueId) -> Reduced {
    let mut r = Reduced::default();
    let n_values = ops
        .iter()
        .flat_map(|o| match (o.input, o.output) {
            (RegInput::Write(v), _) => [v, 0],
            (RegInput::Cas(a, b), _) => [a, b],
            (_, RegOutput::Read(v)) => [v, 0],
            _ => [0, 0],
        })
        .max()
        .unwrap_or(0) as usize
        + 1;
    let mut writers = vec![0u32; n_values];
    // Earliest completion among strict observers (definite read of v / definite cas from v).
    let mut first_observed = vec![u64::MAX; n_values];
    // Observed in R2's broad sense.
    let mut observed = vec![false; n_values];
    let mut refused = false;
    for op in ops.iter() {
        if let Some(v) = written(op) {
            writers[v as usize] += 1;
        }
        match (op.input, op.output) {
            (RegInput::Read, RegOutput::Read(v)) => {
                observed[v as usize] = true;
                let f = &mut first_observed[v as usize];
                *f = (*f).min(op.ret);
            }
            (RegInput::Cas(from, _), RegOutput::Done) => {
                observed[from as usize] = true;
                let f = &mut first_observed[from as usize];
                *f = (*f).min(op.ret);
            }
            (RegInput::Cas(from, _), RegOutput::Unknown) => observed[from as usize] = true,
            (_, RegOutput::Refused) => refused = true,
            _ => {}
        }
    }
    // R1.
    for op in ops.iter_mut() {
        if op.is_definite() {
            continue;
        }
        if let Some(v) = written(op) {
            let vi = v as usize;
            if v != init && writers[vi] == 1 && first_observed[vi] != u64::MAX {
                op.ret = first_observed[vi];
                // It took effect and set `v`; for a cas that means its precondition held.
                op.output = RegOutput::Done;
                r.clamped += 1;
            }
        }
    }
    // R2.
    if !refused {
        let before = ops.len();
        ops.retain(|op| op.is_definite() || written(op).is_none_or(|v| observed[v as usize]));
        r.dropped = before - ops.len();
    }
    r
}
