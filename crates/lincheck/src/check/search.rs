//! The search for one key: Wing & Gong's algorithm with Lowe's memoisation, as in Porcupine.
//!
//! Every operation has a *call* entry and a *return* entry, placed in one doubly linked list in
//! real-time order (indefinite operations return at +infinity, i.e. at the end). The search walks
//! the list from the front:
//!
//! - At a call entry, it tries to linearize that operation next: step the model; if the output
//!   is possible and the resulting configuration (set of linearized ops, model state) has not been
//!   explored before, push (entry, old state) on a stack, unlink the operation's call and return
//!   entries from the list, and restart from the front.
//! - At a return entry, the operation it belongs to has not been linearized, and every entry
//!   after this one was invoked after it returned, so nothing further can be linearized before
//!   it: this path is dead. Backtrack: pop the last linearized operation, relink its entries,
//!   restore the state, and continue with the entry after its call.
//! - When every operation with a definite completion is linearized, the history is linearizable:
//!   the remaining operations are indefinite, and an indefinite operation that never took effect
//!   is allowed (the model accepts any state for unknown outputs, so equivalently they all take
//!   effect after everything else).
//! - When the stack is empty at a return entry, no order exists: not linearizable.
//!
//! The candidates at a configuration (the calls before the first return entry) are tried in two
//! passes: first the operations that completed, then the indefinite ones. Any order of trying
//! candidates explores the same tree (so verdicts are unchanged); this one finds a linearization
//! of a valid history sooner, because an indefinite operation is then taken only when nothing
//! definite can go next — typically when a later read needs its value. A backtracked candidate
//! resumes the pass it belongs to.
//!
//! Value-obligation pruning (registers). If the state holds `v`, some definite operation not
//! yet linearized needs the state to hold `v` (a read of `v`, a cas from `v`), and no operation
//! not yet linearized can set `v`, then no operation may move the state away from `v`: the one
//! needing `v` could never be placed afterwards. Such a step is treated as impossible. Sound
//! because every completion must place that operation at a point where the state is `v`, and the
//! state can only return to `v` through an operation that sets it. The counts are kept per value
//! and updated when an operation is linearized or undone, O(1) per step.
//!
//! Read-only pruning. Call an operation *read-only* if it never changes the state (a read, a
//! cas refused by its precondition; the model says which). Lemma: if a read-only candidate `r`
//! fits the current state of configuration `C`, then `C` has a successful completion iff
//! `C + r` has. Proof: (⇐) trivial. (⇒) take a completion that places `r` later; move `r` to the
//! front. Real time still holds: `r` is a candidate, so every operation that returned before
//! `r` was invoked is already in `C`, and moving `r` earlier cannot put it after anything that
//! must follow it. Every other operation sees the same states, because `r` changes nothing, and
//! `r` itself fits the current state. ∎ So after linearizing such an `r` the search never tries
//! `r`'s siblings: if `C + r` fails (now or, via the cache, earlier), `C` fails, and backtracking
//! goes straight past it. This removes the exponential number of subsets of concurrent reads of
//! one value that the plain search enumerates when it has to refute a history.
//!
//! Lowe's cache makes the search visit each configuration at most once: two paths that linearize
//! the same set of operations and reach the same state have the same futures.
//!
//! The inner loop allocates nothing: the list is an array of `u32` links, the linearized set a
//! bitset with an incrementally maintained Zobrist hash, the cache a flat open-addressing table.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::cache::{state_hash, Bitset, Cache};
use crate::model::{Model, SearchOp};

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    /// Local operation index.
    op: u32,
    /// The other entry of the same operation.
    partner: u32,
    is_call: bool,
    /// The operation completed (its return is not at +infinity).
    definite: bool,
    /// The operation's position in the linearized-set bitset: definite operations first.
    bit: u32,
}

/// Shared limits for all keys of one check.
pub(crate) struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub cancel: &'a AtomicBool,
    pub memory_budget: usize,
    pub memory_used: &'a AtomicUsize,
}

/// Why a search stopped without a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    Time,
    Memory,
    Cancelled,
}

/// What the search found.
pub(crate) enum Found<S> {
    Linearizable,
    Illegal {
        /// Longest linearizable prefix found (local op indices).
        prefix: Vec<u32>,
        /// Model state after it.
        state: S,
        /// The operation whose return blocked the longest prefix.
        blocker: u32,
    },
    Aborted(Abort),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    pub steps: u64,
    pub configs: u64,
    pub cache_bytes: usize,
}

/// A resumable search over one key's operations: [`Search::run`] advances it by a bounded
/// number of steps, so many keys can share a few threads fairly (a key that fails fast is found
/// fast even when a hard key is queued before it).
pub(crate) struct Search<M: Model> {
    nodes: Vec<Node>,
    bits: Bitset,
    cache: Cache<M::State>,
    calls: Vec<(u32, M::State, bool)>,
    state: M::State,
    best: Option<(Vec<u32>, M::State, u32)>,
    charged: usize,
    entry: u32,
    /// Which pass over the candidates the walk is in (see the module comment).
    indefinite_pass: bool,
    remaining: usize,
    /// Value-obligation pruning (see the module comment); empty when the model has none.
    obligations: Obligations,
    pub stats: Stats,
}

/// Counts for the value-obligation pruning: per value, the definite operations not yet
/// linearized that need the state to hold it, and the operations not yet linearized that may
/// set it.
#[derive(Default)]
struct Obligations {
    /// Per operation: (observed value, written value), `NO` for none.
    effects: Vec<(u32, u32)>,
    definite: Vec<bool>,
    observers_left: Vec<u32>,
    writers_left: Vec<u32>,
}

const NO: u32 = u32::MAX;

impl Obligations {
    fn new<M: Model>(model: &M, ops: &[SearchOp<M::Input, M::Output>]) -> Self {
        let mut effects = Vec::with_capacity(ops.len());
        for op in ops {
            match model.value_effects(&op.input, &op.output) {
                Some(e) => effects.push((e.observes.unwrap_or(NO), e.writes.unwrap_or(NO))),
                None => return Self::default(),
            }
        }
        let n = effects
            .iter()
            .flat_map(|&(o, w)| [o, w])
            .filter(|&v| v != NO)
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut ob = Self {
            effects,
            definite: ops.iter().map(|o| o.is_definite()).collect(),
            observers_left: vec![0; n],
            writers_left: vec![0; n],
        };
        for i in 0..ops.len() {
            ob.account(i, 1);
        }
        ob
    }

    fn enabled(&self) -> bool {
        !self.effects.is_empty()
    }

    /// Adds (`+1`, undo) or removes (`-1`, linearize) operation `i`'s obligations.
    #[inline]
    fn account(&mut self, i: usize, delta: i32) {
        if !self.enabled() {
            return;
        }
        let (o, w) = self.effects[i];
        if o != NO && self.definite[i] {
            let c = &mut self.observers_left[o as usize];
            *c = c.wrapping_add_signed(delta);
        }
        if w != NO {
            let c = &mut self.writers_left[w as usize];
            *c = c.wrapping_add_signed(delta);
        }
    }

    /// Whether moving the state away from `value` (by linearizing operation `i`) strands an
    /// operation that still needs `value`, with nothing left that could set it again.
    #[inline]
    fn strands(&self, i: usize, value: Option<u32>) -> bool {
        let Some(v) = value else { return false };
        if !self.enabled() || v as usize >= self.observers_left.len() {
            return false;
        }
        let (o, w) = self.effects[i];
        let own = (o == v && self.definite[i]) as u32;
        let own_w = (w == v) as u32;
        self.observers_left[v as usize] > own && self.writers_left[v as usize] <= own_w
    }
}

impl<M: Model> Search<M> {
    pub fn new(model: &M, ops: &[SearchOp<M::Input, M::Output>]) -> Self {
        Self::with_pruning(model, ops, true)
    }

    /// A search with or without the value-obligation pruning. Without it, the deepest dead end
    /// is usually the operation a person would blame (the stale read rather than the write that
    /// overwrote its value), so counterexamples are re-derived that way when it is cheap.
    pub fn with_pruning(model: &M, ops: &[SearchOp<M::Input, M::Output>], prune: bool) -> Self {
        let nodes = build_list(ops);
        let definite = ops.iter().filter(|o| o.is_definite()).count();
        let entry = nodes[HEAD as usize].next;
        Self {
            nodes,
            bits: Bitset::new(definite, ops.len() - definite),
            cache: Cache::new(),
            calls: Vec::with_capacity(ops.len()),
            state: model.init(),
            best: None,
            charged: 0,
            entry,
            indefinite_pass: false,
            obligations: if prune {
                Obligations::new(model, ops)
            } else {
                Obligations::default()
            },
            remaining: ops.iter().filter(|o| o.is_definite()).count(),
            stats: Stats::default(),
        }
    }

    /// Runs at most about `budget` steps; `None` if the search is not finished yet.
    pub fn run(
        &mut self,
        model: &mut M,
        ops: &[SearchOp<M::Input, M::Output>],
        limits: &Limits<'_>,
        budget: u64,
    ) -> Option<Found<M::State>> {
        let found = self.steps(model, ops, limits, budget)?;
        self.stats.configs = self.cache.len() as u64;
        self.stats.cache_bytes = self.cache.bytes();
        limits
            .memory_used
            .fetch_sub(self.charged, Ordering::Relaxed);
        self.charged = 0;
        // Free the memory now; the caller may keep `self` around.
        self.cache = Cache::new();
        self.nodes = Vec::new();
        self.calls = Vec::new();
        Some(found)
    }

    fn steps(
        &mut self,
        model: &mut M,
        ops: &[SearchOp<M::Input, M::Output>],
        limits: &Limits<'_>,
        budget: u64,
    ) -> Option<Found<M::State>> {
        if let Some(abort) = over_limit(limits, &self.cache, &mut self.charged) {
            return Some(Found::Aborted(abort));
        }
        let stop_at = self.stats.steps + budget.max(1);
        loop {
            if self.remaining == 0 {
                return Some(Found::Linearizable);
            }
            self.stats.steps += 1;
            if self.stats.steps.is_multiple_of(4096) {
                if let Some(abort) = over_limit(limits, &self.cache, &mut self.charged) {
                    return Some(Found::Aborted(abort));
                }
                if self.stats.steps >= stop_at {
                    return None;
                }
            }
            // `remaining > 0` means a definite return entry is still linked, so the walk from
            // the head meets a return entry before the end of the list.
            let entry = self.entry;
            let node = self.nodes[entry as usize];
            if node.is_call && node.definite == self.indefinite_pass {
                // Not this pass's kind of operation.
                self.entry = node.next;
            } else if node.is_call {
                let op = &ops[node.op as usize];
                let mut dead = false;
                let step = model
                    .step(self.state, &op.input, &op.output)
                    .filter(|&next| {
                        next == self.state
                            || !self
                                .obligations
                                .strands(node.op as usize, model.state_value(self.state))
                    });
                if let Some(next) = step {
                    let read_only = model.is_read_only(&op.input, &op.output);
                    self.bits.set(node.bit as usize);
                    if self.cache.insert(&self.bits, next, state_hash(&next)) {
                        self.calls.push((entry, self.state, read_only));
                        self.obligations.account(node.op as usize, -1);
                        self.state = next;
                        if op.is_definite() {
                            self.remaining -= 1;
                        }
                        lift(&mut self.nodes, entry);
                        self.entry = self.nodes[HEAD as usize].next;
                        self.indefinite_pass = false;
                        continue;
                    }
                    self.bits.clear(node.bit as usize);
                    // A read-only candidate that fits the state may always go first (see the
                    // module comment), so if that configuration already failed, this one fails.
                    dead = read_only;
                }
                if !dead {
                    self.entry = node.next;
                    continue;
                }
                if let Some(found) = self.backtrack(ops, node.op) {
                    return Some(found);
                }
            } else if !self.indefinite_pass {
                // End of the definite pass: now try the indefinite operations.
                self.indefinite_pass = true;
                self.entry = self.nodes[HEAD as usize].next;
            } else {
                // Dead end: remember the deepest one for the counterexample.
                if self
                    .best
                    .as_ref()
                    .is_none_or(|b| self.calls.len() > b.0.len())
                {
                    let nodes = &self.nodes;
                    let prefix = self
                        .calls
                        .iter()
                        .map(|&(e, _, _)| nodes[e as usize].op)
                        .collect();
                    self.best = Some((prefix, self.state, node.op));
                }
                if let Some(found) = self.backtrack(ops, node.op) {
                    return Some(found);
                }
            }
        }
    }

    /// Undoes the last linearized operation and resumes after it; an operation that was taken
    /// as a forced read-only step is undone too, and so on. `Some` when nothing is left to undo.
    fn backtrack(
        &mut self,
        ops: &[SearchOp<M::Input, M::Output>],
        blocker: u32,
    ) -> Option<Found<M::State>> {
        loop {
            let Some((e, prev_state, forced)) = self.calls.pop() else {
                let (prefix, state, blocker) =
                    self.best
                        .take()
                        .unwrap_or((Vec::new(), self.state, blocker));
                return Some(Found::Illegal {
                    prefix,
                    state,
                    blocker,
                });
            };
            let op = self.nodes[e as usize].op;
            self.bits.clear(self.nodes[e as usize].bit as usize);
            self.obligations.account(op as usize, 1);
            self.state = prev_state;
            if ops[op as usize].is_definite() {
                self.remaining += 1;
            }
            unlift(&mut self.nodes, e);
            if !forced {
                self.entry = self.nodes[e as usize].next;
                self.indefinite_pass = !ops[op as usize].is_definite();
                return None;
            }
        }
    }
}

fn over_limit<S: Copy + Eq>(
    limits: &Limits<'_>,
    cache: &Cache<S>,
    charged: &mut usize,
) -> Option<Abort> {
    if limits.cancel.load(Ordering::Relaxed) {
        return Some(Abort::Cancelled);
    }
    if limits.deadline.is_some_and(|d| Instant::now() >= d) {
        return Some(Abort::Time);
    }
    let bytes = cache.bytes();
    if bytes > *charged {
        let total = limits
            .memory_used
            .fetch_add(bytes - *charged, Ordering::Relaxed)
            + (bytes - *charged);
        *charged = bytes;
        if total > limits.memory_budget {
            return Some(Abort::Memory);
        }
    }
    None
}

/// Builds the entry list: node 0 is the head; then entries sorted by position (calls before
/// returns at equal positions cannot happen except among returns, whose order is immaterial).
fn build_list<I, O>(ops: &[SearchOp<I, O>]) -> Vec<Node> {
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, true, i as u32));
        events.push((op.ret, false, i as u32));
    }
    // Returns sort before calls at equal positions (a `false` key is smaller).
    events.sort_unstable_by_key(|&(pos, is_call, i)| (pos, is_call, i));
    // Bit positions: definite operations first, in order, then the indefinite ones.
    let mut bit_of = vec![0u32; ops.len()];
    let mut next = 0u32;
    for pass in [true, false] {
        for (i, op) in ops.iter().enumerate() {
            if op.is_definite() == pass {
                bit_of[i] = next;
                next += 1;
            }
        }
    }
    let mut nodes = Vec::with_capacity(events.len() + 1);
    nodes.push(Node {
        prev: NONE,
        next: 1,
        op: NONE,
        partner: NONE,
        is_call: false,
        definite: true,
        bit: NONE,
    });
    let mut call_node = vec![0u32; ops.len()];
    let mut ret_node = vec![0u32; ops.len()];
    for (k, &(_, is_call, i)) in events.iter().enumerate() {
        let idx = (k + 1) as u32;
        if is_call {
            call_node[i as usize] = idx;
        } else {
            ret_node[i as usize] = idx;
        }
        nodes.push(Node {
            prev: idx - 1,
            next: if k + 1 == events.len() { NONE } else { idx + 1 },
            op: i,
            partner: NONE,
            is_call,
            definite: ops[i as usize].is_definite(),
            bit: bit_of[i as usize],
        });
    }
    for i in 0..ops.len() {
        nodes[call_node[i] as usize].partner = ret_node[i];
        nodes[ret_node[i] as usize].partner = call_node[i];
    }
    nodes
}

#[inline]
fn unlink(nodes: &mut [Node], e: u32) {
    let Node { prev, next, .. } = nodes[e as usize];
    nodes[prev as usize].next = next;
    if next != NONE {
        nodes[next as usize].prev = prev;
    }
}

#[inline]
fn relink(nodes: &mut [Node], e: u32) {
    let Node { prev, next, .. } = nodes[e as usize];
    nodes[prev as usize].next = e;
    if next != NONE {
        nodes[next as usize].prev = e;
    }
}

/// Removes an operation's call entry and its return entry.
#[inline]
fn lift(nodes: &mut [Node], call: u32) {
    unlink(nodes, call);
    unlink(nodes, nodes[call as usize].partner);
}

/// Undoes [`lift`] (in reverse order, so the saved links are valid again).
#[inline]
fn unlift(nodes: &mut [Node], call: u32) {
    relink(nodes, nodes[call as usize].partner);
    relink(nodes, call);
}
