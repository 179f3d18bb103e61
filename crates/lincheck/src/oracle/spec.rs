//! The sequential specifications handed to stateright's tester: the same models as the search
//! engine's (`crate::model`), written as stateright [`SequentialSpec`]s over plain values.

use std::cell::Cell;
use std::time::Instant;

use stateright::semantics::SequentialSpec;

/// Unwinding payload that ends a tester's search at its deadline. The tester has no way to be
/// stopped from outside, but it calls the spec at every step, so the spec stops it.
pub(crate) struct Cancelled;

/// How often (in steps) the spec looks at the clock. A step of the tester clones what remains
/// of the history, so on the histories where the limit matters a step costs far more than
/// reading the clock; on tiny ones every few steps is plenty.
const CLOCK_EVERY: u64 = 4;

/// A search's step counter and deadline, shared by every clone of the spec the tester makes.
pub(crate) struct Budget {
    pub(crate) deadline: Option<Instant>,
    pub(crate) steps: Cell<u64>,
}

impl Budget {
    fn tick(&self) {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n.is_multiple_of(CLOCK_EVERY) && self.deadline.is_some_and(|d| Instant::now() >= d) {
            // `resume_unwind`, not `panic!`: no panic hook runs, so nothing is printed; the
            // caller joins the search thread and recognises the payload.
            std::panic::resume_unwind(Box::new(Cancelled));
        }
    }
}

/// An operation as the tester sees it. Register values are interned to integers (0 is nil).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Read,
    Write(u32),
    Cas(u32, u32),
    Get,
    Put(Box<str>),
    Append(Box<str>),
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ret {
    /// A register read.
    Read(u32),
    /// A kv get.
    Got(Box<str>),
    /// A write, put or append; a cas that took effect.
    Done,
    /// A cas whose precondition did not hold (observed, so it took effect as a no-op).
    Refused,
}

/// The register (read / write / cas over interned values) or Porcupine's kv (get / put /
/// append over strings), one key.
#[derive(Clone)]
pub(crate) struct Spec<'b> {
    pub(crate) state: State,
    pub(crate) budget: &'b Budget,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum State {
    Register(u32),
    Kv(String),
}

impl SequentialSpec for Spec<'_> {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        self.budget.tick();
        match (&mut self.state, op) {
            (State::Register(v), Op::Read) => Ret::Read(*v),
            (State::Register(v), Op::Write(w)) => {
                *v = *w;
                Ret::Done
            }
            (State::Register(v), Op::Cas(from, to)) => {
                if *v == *from {
                    *v = *to;
                    Ret::Done
                } else {
                    Ret::Refused
                }
            }
            (State::Kv(s), Op::Get) => Ret::Got(s.as_str().into()),
            (State::Kv(s), Op::Put(w)) => {
                s.clear();
                s.push_str(w);
                Ret::Done
            }
            (State::Kv(s), Op::Append(w)) => {
                s.push_str(w);
                Ret::Done
            }
            // The encoder builds every operation of a key for one model; a mismatch cannot be
            // recorded, and "refused" matches no completion the encoder writes for it.
            _ => Ret::Refused,
        }
    }
}
