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
//! Interchangeable indefinite operations (*same as*; the whole-history check and streaming).
//! Let `a` and `b` be indefinite operations with the same input, `a` invoked first. Whenever `b`
//! is a candidate so is `a` (its call entry comes earlier), and neither has a return entry that
//! blocks anything, so in any completion the two can trade places (and if only `b` is taken,
//! `a` can take its place): every completion maps to one that takes them in order of
//! invocation, through the same states. So `b` is tried only once `a` is linearized. On small
//! value domains with many timeouts this is what keeps the cache from filling with
//! configurations that differ only in which of several identical timed-out writes took effect.
//!
//! Lowe's cache makes the search visit each configuration at most once: two paths that linearize
//! the same set of operations and reach the same state have the same futures.
//!
//! The definite operations' entries and the indefinite operations' call entries are kept in two
//! lists (the indefinite returns, at +infinity, are never reached), numbered in one real-time
//! order: the definite pass walks the first to its first return entry, the indefinite pass the
//! second up to that entry's position. With many timeouts most entries are indefinite calls
//! nothing needs yet, and one list made every restart walk over them.
//!
//! With the *same as* rule, the second list holds only the first indefinite operation of each
//! kind not yet linearized (its successor is linked, in position order, when it is taken), so
//! the indefinite pass walks at most one entry per kind — a few dozen on a small value domain
//! — instead of every timed-out call the rule would refuse. The candidates tried are the same,
//! in the same order, so the search explores the same configurations.
//!
//! The inner loop allocates nothing: the list is an array of `u32` links, the linearized set a
//! bitset with an incrementally maintained Zobrist hash, the cache a flat open-addressing table.
//!
//! # Modes for the streaming checker ([`Mode`], see `stream::key`)
//!
//! - *Starts*: the search may start from several configurations (a state, and indefinite
//!   operations already linearized, lifted out of the list before the walk), one after the
//!   other, sharing the cache: a configuration has the same futures whichever start reached it.
//!   A start's *salt* is mixed into the cache's hashes, so starts whose end configurations
//!   differ in what the search does not see (operations outside it) do not share entries.
//! - *Enumerate*: instead of stopping at the first linearization, record the configuration
//!   (state, indefinite operations linearized) each time every definite operation is
//!   linearized, and backtrack; the result is every end configuration. The prunings above
//!   keep every end configuration: a forced read-only step reaches the same ends (move the read
//!   to the front of any completion), and value obligations only cut dead ends.
//! - *Lazy*: an indefinite operation is taken only to set a value that something not yet
//!   linearized can use, and then something must use it before the state changes again (an
//!   obligation, part of the configuration: salted into the cache key); an end reached with an
//!   obligation pending is not recorded. `stream::key` proves that this loses no end
//!   configuration up to dominance.
//! - *Same as*: identical indefinite operations are taken in order of invocation (see above;
//!   for pool operations, all available from the start, it is the same swap).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::cache::{splitmix64, state_hash, Bitset, Cache};
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
    /// A segment search found more end configurations than it may carry (streaming).
    Window,
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
        /// The start configuration the prefix begins at (index into the starts; 0 when the
        /// search had one).
        start: usize,
    },
    /// Enumerating (a streaming segment): every end configuration found, at least one.
    Ends(Vec<End<S>>),
    Aborted(Abort),
}

/// A configuration a search starts from: a state, and indefinite operations already
/// linearized before it (local indices).
#[derive(Clone, Debug)]
pub(crate) struct Start<S> {
    pub state: S,
    pub pre: Vec<u32>,
    /// Mixed into the cache's hashes while searching from this start: starts that must not
    /// share configurations (streaming: their end configurations differ in what the search
    /// does not see) get different salts.
    pub salt: u64,
}

/// A configuration reached with every definite operation linearized (enumerating searches).
#[derive(Clone, Debug)]
pub(crate) struct End<S> {
    pub state: S,
    /// Indefinite operations linearized (the start's included), sorted.
    pub used: Vec<u32>,
    /// The last operation that changed the state on the way; `None`: none did (the state is
    /// the start's).
    pub setter: Option<u32>,
    /// Index of the start it was reached from.
    pub start: usize,
}

/// What a search is asked to do beyond Wing & Gong's search from the model's initial state.
pub(crate) struct Mode<S> {
    /// Start configurations; the model's initial state when empty.
    pub starts: Vec<Start<S>>,
    /// Collect every end configuration instead of stopping at the first.
    pub enumerate: bool,
    /// Take an indefinite operation only when something not yet linearized uses the value it
    /// sets (the streaming checker's lazy rule; see `stream::key`).
    pub lazy: bool,
    /// Value-obligation pruning.
    pub prune: bool,
    /// Interchangeable indefinite operations (streaming: pool operations with the same input,
    /// all available from the start): per operation, the previous one of its kind, or
    /// `u32::MAX`. An operation is taken only after the previous one of its kind, which loses
    /// no end configuration up to swapping identical operations. Empty: none.
    pub same_as: Vec<u32>,
}

/// End configurations an enumerating search may collect before giving up.
pub(crate) const MAX_ENDS: usize = 1 << 16;

/// Counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    pub steps: u64,
    pub configs: u64,
    pub cache_bytes: usize,
}

impl Stats {
    /// Adds another search's counters (a portfolio's strategies).
    pub fn add(&mut self, o: Stats) {
        self.steps += o.steps;
        self.configs += o.configs;
        self.cache_bytes += o.cache_bytes;
    }
}

/// A resumable search over one key's operations: [`Search::run`] advances it by a bounded
/// number of steps, so many keys can share a few threads fairly (a key that fails fast is found
/// fast even when a hard key is queued before it).
pub(crate) struct Search<M: Model> {
    nodes: Vec<Node>,
    bits: Bitset,
    cache: Cache<M::State>,
    /// (call entry, state before, taken as a forced read-only step, lazy obligation before).
    /// The indefinite pass's limit when the operation was taken.
    calls: Vec<(u32, M::State, bool, Owe, u32)>,
    state: M::State,
    best: Option<(Vec<u32>, M::State, u32, usize)>,
    charged: usize,
    entry: u32,
    /// Which pass over the candidates the walk is in (see the module comment).
    indefinite_pass: bool,
    /// The indefinite pass: the first definite return entry, which ends it (entries are
    /// numbered in list order).
    limit: u32,
    /// Head of the list of indefinite operations' call entries.
    head_b: u32,
    remaining: usize,
    /// The fewest definite operations ever left unlinearized: how far this search has got,
    /// which the portfolio uses to share time between its strategies.
    pub fewest_remaining: usize,
    /// Value-obligation pruning (see the module comment); empty when the model has none.
    obligations: Obligations,
    /// Call entry of each operation.
    call_of: Vec<u32>,
    starts: Vec<Start<M::State>>,
    /// The start being searched from.
    start: usize,
    enumerate: bool,
    lazy: bool,
    same_as: Vec<u32>,
    /// Per operation: the next indefinite operation with the same input (the inverse of
    /// `same_as`), or `NONE`; empty when the indefinite list holds every indefinite call.
    /// Non-empty: only the first not yet linearized of each kind is linked (see
    /// [`build_list`]), and linearizing it links the next.
    next_same: Vec<u32>,
    /// The lazy rule's pending obligation: an indefinite operation just set `.0` (from `.1`),
    /// and something must use it before the state changes again. `NO_OWE` for none.
    owe: Owe,
    /// The current start's salt.
    salt: u64,
    ends: Vec<End<M::State>>,
    pub stats: Stats,
}

type Owe = (u32, u32);
const NO_OWE: Owe = (NO, NO);

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
    /// Per operation: (value an indefinite cas changes the state from, value a refused cas
    /// needs the state not to hold), `NO` for none; only for the lazy rule.
    soft: Vec<(u32, u32)>,
    /// Per value: indefinite operations not yet linearized that may use it.
    soft_left: Vec<u32>,
    /// Per value: refused operations not yet linearized that need the state not to hold it.
    excluded_left: Vec<u32>,
}

const NO: u32 = u32::MAX;

impl Obligations {
    fn new<M: Model>(model: &M, ops: &[SearchOp<M::Input, M::Output>], lazy: bool) -> Self {
        let mut effects = Vec::with_capacity(ops.len());
        let mut soft = Vec::new();
        for op in ops {
            match model.value_effects(&op.input, &op.output) {
                Some(e) => {
                    effects.push((e.observes.unwrap_or(NO), e.writes.unwrap_or(NO)));
                    if lazy {
                        soft.push((e.may_observe.unwrap_or(NO), e.excludes.unwrap_or(NO)));
                    }
                }
                None => return Self::default(),
            }
        }
        let n = effects
            .iter()
            .chain(&soft)
            .flat_map(|&(o, w)| [o, w])
            .filter(|&v| v != NO)
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut ob = Self {
            effects,
            definite: ops.iter().map(|o| o.is_definite()).collect(),
            observers_left: vec![0; n],
            writers_left: vec![0; n],
            soft_left: if lazy { vec![0; n] } else { Vec::new() },
            excluded_left: if lazy { vec![0; n] } else { Vec::new() },
            soft,
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
        if let Some(&(m, x)) = self.soft.get(i) {
            if m != NO {
                let c = &mut self.soft_left[m as usize];
                *c = c.wrapping_add_signed(delta);
            }
            if x != NO {
                let c = &mut self.excluded_left[x as usize];
                *c = c.wrapping_add_signed(delta);
            }
        }
    }

    /// The lazy rule: whether moving the state from `from` to `to` (by an indefinite operation)
    /// can be of use to an operation not yet linearized — one that observes `to` (definite, or an
    /// indefinite cas from `to`), or a refused cas that needs the state not to hold `from`.
    #[inline]
    fn justifies(&self, from: Option<u32>, to: Option<u32>) -> bool {
        let (Some(from), Some(to)) = (from, to) else {
            return true;
        };
        let get = |v: &Vec<u32>, i: u32| v.get(i as usize).copied().unwrap_or(0);
        get(&self.observers_left, to) > 0
            || get(&self.soft_left, to) > 0
            || get(&self.excluded_left, from) > 0
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
    /// A search with or without the value-obligation pruning. Without it, the deepest dead end
    /// is usually the operation a person would blame (the stale read rather than the write that
    /// overwrote its value), so counterexamples are re-derived that way when it is cheap.
    pub fn with_pruning(model: &M, ops: &[SearchOp<M::Input, M::Output>], prune: bool) -> Self {
        Self::with_mode(
            model,
            ops,
            Mode {
                starts: Vec::new(),
                enumerate: false,
                lazy: false,
                prune,
                same_as: Vec::new(),
            },
        )
    }

    /// A search in the given mode (see [`Mode`]). With several starts, the cache is shared:
    /// a configuration (linearized set, state) has the same futures whichever start reached it.
    pub fn with_mode(
        model: &M,
        ops: &[SearchOp<M::Input, M::Output>],
        mode: Mode<M::State>,
    ) -> Self {
        let starts_chained = |starts: &[Start<M::State>]| {
            starts.iter().all(|st| {
                let mut taken = vec![false; ops.len()];
                st.pre.iter().all(|&p| {
                    let prev = mode.same_as.get(p as usize).copied().unwrap_or(NONE);
                    let ok = prev == NONE || taken[prev as usize];
                    taken[p as usize] = true;
                    ok
                })
            })
        };
        // Only the first of each kind is linked when every start's pre-linearized operations
        // are taken kind by kind in order of invocation, so that lifting them keeps the rule.
        let next_same = if mode.same_as.len() == ops.len() && starts_chained(&mode.starts) {
            let mut next = vec![NONE; ops.len()];
            for (i, &prev) in mode.same_as.iter().enumerate() {
                if prev != NONE {
                    next[prev as usize] = i as u32;
                }
            }
            next
        } else {
            Vec::new()
        };
        let (nodes, call_of) = build_list(ops, &mode.same_as, !next_same.is_empty());
        let head_b = nodes.len() as u32 - 1;
        let definite = ops.iter().filter(|o| o.is_definite()).count();
        let entry = nodes[HEAD as usize].next;
        let mut starts = mode.starts;
        if starts.is_empty() {
            starts.push(Start {
                state: model.init(),
                pre: Vec::new(),
                salt: 0,
            });
        }
        let lazy = mode.lazy && mode.prune;
        let mut search = Self {
            nodes,
            bits: Bitset::new(definite, ops.len() - definite),
            // Small searches (streaming windows) are many: a small table to start.
            cache: if mode.enumerate || starts.len() > 1 || ops.len() < 64 {
                Cache::with_slots((ops.len() * 8).min(1024))
            } else {
                Cache::new()
            },
            calls: Vec::with_capacity(ops.len()),
            state: starts[0].state,
            best: None,
            charged: 0,
            entry,
            indefinite_pass: false,
            limit: NONE,
            head_b,
            obligations: if mode.prune {
                Obligations::new(model, ops, lazy)
            } else {
                Obligations::default()
            },
            remaining: definite,
            fewest_remaining: definite,
            call_of,
            starts,
            start: 0,
            enumerate: mode.enumerate,
            lazy,
            same_as: mode.same_as,
            next_same,
            owe: NO_OWE,
            salt: 0,
            ends: Vec::new(),
            stats: Stats::default(),
        };
        search.lazy &= search.obligations.enabled();
        search.apply_start(0);
        if search.starts.len() > 1 {
            let st = search.state;
            let h = state_hash(&st) ^ search.salt;
            search.cache.insert(&search.bits, st, h);
        }
        search
    }

    /// Enters start `i`: its state, its pre-linearized operations lifted out of the list.
    fn apply_start(&mut self, i: usize) {
        self.start = i;
        self.owe = NO_OWE;
        self.salt = self.starts[i].salt;
        self.state = self.starts[i].state;
        for k in 0..self.starts[i].pre.len() {
            let op = self.starts[i].pre[k];
            let call = self.call_of[op as usize];
            self.bits.set(self.nodes[call as usize].bit as usize);
            self.obligations.account(op as usize, -1);
            lift(&mut self.nodes, &self.next_same, &self.call_of, call);
        }
        self.entry = self.nodes[HEAD as usize].next;
        self.indefinite_pass = false;
    }

    /// Leaves start `i` (the reverse of [`Self::apply_start`]).
    fn undo_start(&mut self, i: usize) {
        for k in (0..self.starts[i].pre.len()).rev() {
            let op = self.starts[i].pre[k];
            let call = self.call_of[op as usize];
            unlift(&mut self.nodes, &self.next_same, &self.call_of, call);
            self.obligations.account(op as usize, 1);
            self.bits.clear(self.nodes[call as usize].bit as usize);
        }
    }

    /// Every path from the current start is explored: go on from the next start not already
    /// reached (`None`), or return the result.
    fn exhausted(&mut self, blocker: u32) -> Option<Found<M::State>> {
        self.undo_start(self.start);
        while self.start + 1 < self.starts.len() {
            self.apply_start(self.start + 1);
            let st = self.state;
            if self
                .cache
                .insert(&self.bits, st, state_hash(&st) ^ self.salt)
            {
                return None;
            }
            self.undo_start(self.start);
        }
        if self.enumerate && !self.ends.is_empty() {
            return Some(Found::Ends(std::mem::take(&mut self.ends)));
        }
        let (prefix, state, blocker, start) =
            self.best
                .take()
                .unwrap_or((Vec::new(), self.starts[0].state, blocker, 0));
        Some(Found::Illegal {
            prefix,
            state,
            blocker,
            start,
        })
    }

    /// Records the current configuration as an end (enumerating searches).
    fn record_end(&mut self, ops: &[SearchOp<M::Input, M::Output>]) -> Option<Found<M::State>> {
        if self.owe != NO_OWE {
            // The last indefinite operation's value is used by nothing: the same end without
            // it, which the search also reaches, generates this one.
            return None;
        }
        let mut used = self.starts[self.start].pre.clone();
        for &(e, _, _, _, _) in &self.calls {
            let op = self.nodes[e as usize].op;
            if !ops[op as usize].is_definite() {
                used.push(op);
            }
        }
        used.sort_unstable();
        let mut setter = None;
        let mut after = self.state;
        for &(e, before, _, _, _) in self.calls.iter().rev() {
            if after != before {
                setter = Some(self.nodes[e as usize].op);
                break;
            }
            after = before;
        }
        self.ends.push(End {
            state: self.state,
            used,
            setter,
            start: self.start,
        });
        (self.ends.len() > MAX_ENDS).then_some(Found::Aborted(Abort::Window))
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

    /// Gives back the memory charged to the limits, for a search abandoned before it finished.
    pub fn release(&mut self, limits: &Limits<'_>) {
        self.stats.configs = self.cache.len() as u64;
        limits
            .memory_used
            .fetch_sub(self.charged, Ordering::Relaxed);
        self.charged = 0;
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
                if !self.enumerate {
                    return Some(Found::Linearizable);
                }
                if let Some(found) = self.record_end(ops) {
                    return Some(found);
                }
                if let Some(found) = self.backtrack(ops, 0) {
                    return Some(found);
                }
                continue;
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
            // `remaining > 0` means a definite return entry is still linked, so the definite
            // pass meets a return entry before the end of its list. The indefinite pass ends at
            // the entry where the definite one did.
            let mut entry = self.entry;
            if self.indefinite_pass && (entry == NONE || entry > self.limit) {
                entry = self.limit;
            }
            let node = self.nodes[entry as usize];
            if node.is_call {
                let op = &ops[node.op as usize];
                let mut dead = false;
                let mut step = model
                    .step(self.state, &op.input, &op.output)
                    .filter(|&next| {
                        next == self.state
                            || !self
                                .obligations
                                .strands(node.op as usize, model.state_value(self.state))
                    });
                if !node.definite && !self.same_as.is_empty() {
                    let prev = self.same_as[node.op as usize];
                    if prev != NONE {
                        let bit = self.nodes[self.call_of[prev as usize] as usize].bit;
                        if !self.bits.contains(bit as usize) {
                            step = None;
                        }
                    }
                }
                let mut owe = self.owe;
                if self.lazy {
                    if let Some(next) = step {
                        match self.lazy_step(
                            node.op as usize,
                            node.definite,
                            model.state_value(self.state),
                            model.state_value(next),
                        ) {
                            Some(o) => owe = o,
                            None => step = None,
                        }
                    }
                }
                if let Some(next) = step {
                    let read_only = model.is_read_only(&op.input, &op.output);
                    self.bits.set(node.bit as usize);
                    let salt = self.salt
                        ^ if owe == NO_OWE {
                            0
                        } else {
                            splitmix64((u64::from(owe.0) << 32 | u64::from(owe.1)) ^ 0x6f77_6564)
                        };
                    if self
                        .cache
                        .insert(&self.bits, next, state_hash(&next) ^ salt)
                    {
                        self.calls
                            .push((entry, self.state, read_only, self.owe, self.limit));
                        self.owe = owe;
                        self.obligations.account(node.op as usize, -1);
                        self.state = next;
                        if op.is_definite() {
                            self.remaining -= 1;
                            self.fewest_remaining = self.fewest_remaining.min(self.remaining);
                        }
                        lift(&mut self.nodes, &self.next_same, &self.call_of, entry);
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
                // End of the definite pass: now try the indefinite operations invoked before it.
                self.indefinite_pass = true;
                self.limit = entry;
                self.entry = self.nodes[self.head_b as usize].next;
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
                        .map(|&(e, _, _, _, _)| nodes[e as usize].op)
                        .collect();
                    self.best = Some((prefix, self.state, node.op, self.start));
                }
                if let Some(found) = self.backtrack(ops, node.op) {
                    return Some(found);
                }
            }
        }
    }

    /// The lazy rule (see `stream::key`) for linearizing operation `i`, moving the state's value
    /// from `cur` to `next`: `None` if it may not go now, else the obligation after it. An
    /// indefinite operation goes in only to set a value something not yet linearized can use,
    /// and then something must use it before the state changes again: a definite observer of
    /// it, a refused cas needing the state not to hold the value before, or an indefinite cas
    /// from it (which passes the obligation on).
    fn lazy_step(
        &self,
        i: usize,
        definite: bool,
        cur: Option<u32>,
        next: Option<u32>,
    ) -> Option<Owe> {
        let (Some(cur), Some(next)) = (cur, next) else {
            return Some(self.owe);
        };
        let ob = &self.obligations;
        let (observes, _) = ob.effects[i];
        let (may_observe, excludes) = ob.soft[i];
        let same = cur == next;
        if self.owe != NO_OWE {
            let (x, v) = self.owe;
            if definite && (observes == x || (excludes != NO && excludes == v)) {
                return Some(NO_OWE);
            }
            if same {
                return definite.then_some(self.owe);
            }
            if !definite && may_observe == x {
                return Some((next, x));
            }
            return None;
        }
        if definite {
            return Some(NO_OWE);
        }
        if same || !ob.justifies(Some(cur), Some(next)) {
            return None;
        }
        Some((next, cur))
    }

    /// Undoes the last linearized operation and resumes after it; an operation that was taken
    /// as a forced read-only step is undone too, and so on. `Some` when nothing is left to undo.
    fn backtrack(
        &mut self,
        ops: &[SearchOp<M::Input, M::Output>],
        blocker: u32,
    ) -> Option<Found<M::State>> {
        loop {
            let Some((e, prev_state, forced, owe, limit)) = self.calls.pop() else {
                return self.exhausted(blocker);
            };
            self.owe = owe;
            let op = self.nodes[e as usize].op;
            self.bits.clear(self.nodes[e as usize].bit as usize);
            self.obligations.account(op as usize, 1);
            self.state = prev_state;
            if ops[op as usize].is_definite() {
                self.remaining += 1;
            }
            unlift(&mut self.nodes, &self.next_same, &self.call_of, e);
            if !forced {
                self.entry = self.nodes[e as usize].next;
                self.indefinite_pass = !ops[op as usize].is_definite();
                // The indefinite pass `e` was taken in resumes with the same limit.
                self.limit = limit;
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

/// Builds the entry lists: node 0 is the head of the definite operations' call and return
/// entries, the last node the head of the indefinite operations' call entries (their returns,
/// at +infinity, are never reached: the walk ends at a definite return); entries are numbered
/// by position (calls before returns at equal positions cannot happen except among returns,
/// whose order is immaterial). Two lists, so that neither pass walks over the other's
/// entries: with many timeouts most entries are indefinite calls nothing needs yet.
///
/// `heads_only`: of the indefinite operations with the same input (`same_as`), only the first
/// is linked; [`lift`] links the next when it is linearized. The *same as* rule would refuse
/// the others anyway, and on small value domains there are hundreds of them over a few dozen
/// kinds, which every indefinite pass walked over.
fn build_list<I, O>(
    ops: &[SearchOp<I, O>],
    same_as: &[u32],
    heads_only: bool,
) -> (Vec<Node>, Vec<u32>) {
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
        next: NONE,
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
            prev: NONE,
            next: NONE,
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
    let head_b = nodes.len() as u32;
    nodes.push(Node {
        prev: NONE,
        next: NONE,
        op: NONE,
        partner: NONE,
        is_call: false,
        definite: false,
        bit: NONE,
    });
    let (mut tail_a, mut tail_b) = (HEAD, head_b);
    for idx in 1..head_b {
        let n = nodes[idx as usize];
        let tail = if n.definite {
            &mut tail_a
        } else if n.is_call && !(heads_only && same_as[n.op as usize] != NONE) {
            &mut tail_b
        } else {
            continue;
        };
        nodes[*tail as usize].next = idx;
        nodes[idx as usize].prev = *tail;
        *tail = idx;
    }
    (nodes, call_node)
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

/// Removes an operation's call entry and its return entry (an indefinite operation's return
/// is in no list). With `next_same` (see [`build_list`]), the next indefinite operation of the
/// same kind takes the lifted one's place among the linked heads, at its own position: the
/// list stays in position order, which the indefinite pass's limit relies on.
#[inline]
fn lift(nodes: &mut [Node], next_same: &[u32], call_of: &[u32], call: u32) {
    unlink(nodes, call);
    let n = nodes[call as usize];
    if n.definite {
        unlink(nodes, n.partner);
    } else if let Some(&next) = next_same.get(n.op as usize) {
        if next != NONE {
            let e = call_of[next as usize];
            // Later than `call`, so after its predecessor; a few dozen heads at most.
            let mut p = n.prev;
            while nodes[p as usize].next != NONE && nodes[p as usize].next < e {
                p = nodes[p as usize].next;
            }
            nodes[e as usize].prev = p;
            nodes[e as usize].next = nodes[p as usize].next;
            relink(nodes, e);
        }
    }
}

/// Undoes [`lift`] (in reverse order, so the saved links are valid again).
#[inline]
fn unlift(nodes: &mut [Node], next_same: &[u32], call_of: &[u32], call: u32) {
    let n = nodes[call as usize];
    if n.definite {
        relink(nodes, n.partner);
    } else if let Some(&next) = next_same.get(n.op as usize) {
        if next != NONE {
            unlink(nodes, call_of[next as usize]);
        }
    }
    relink(nodes, call);
}
