//! One key of the streaming checker: its window (the operations since its last quiescent
//! point), the configurations carried across cuts, and the indefinite operations still able to
//! take effect.
//!
//! # The cut
//!
//! Say a key is *quiescent* at position `t` when every operation on it invoked before `t` has
//! a completion event before `t` (`ok`, `fail` or `info`). An `info` operation completes as an
//! event but not semantically: it may take effect at any instant after its invocation, forever
//! (docs/history-format.md). So at a quiescent point the operations invoked before `t` are:
//! definite ones (`ok`, refused, `fail`), all returned before `t`, and indefinite ones `I_t`.
//!
//! A *configuration* at `t` is `(s, A)`: a model state and the set `A ⊆ I_t` of indefinite
//! operations that have *not* taken effect ("available"). `C_t` is the set of configurations
//! reached by the valid orders of the past: every definite operation before `t` plus exactly
//! `I_t \ A`, consistent with real time and the model.
//!
//! **Theorem (cut).** The history is linearizable iff some `(s, A) ∈ C_t` admits a valid order
//! of the future — the operations invoked after `t` plus any subset of `A` — starting in `s`.
//!
//! Proof. (⇒) Take a linearization `L`. A definite operation before `t` returned before `t`
//! and every future operation is invoked after `t`, so real time puts it first: the longest
//! prefix of `L` with no future operation holds all the definite past and some `X ⊆ I_t`. It
//! is a valid order of the past, reaching some `s`; so `(s, I_t \ X) ∈ C_t`, and the rest of
//! `L` is a valid order of the future and a subset of `I_t \ X`, from `s`. (⇐) Concatenate.
//! Real time holds: past definite operations precede future ones as above, and an indefinite
//! operation `i ∈ A` placed in the future only needs to follow the operations that returned
//! before `i` was invoked, which are all in the past (its completion is +infinity, so nothing
//! needs to follow it). ∎
//!
//! So at a quiescent point the past can be retired: only `C_t` is carried, with the operations
//! of `A` (the *pool*), and the next window is checked from `C_t`. Nothing else of the past is
//! needed, which bounds memory by the window, `|C_t|` and the pool.
//!
//! # Keeping `C_t` small
//!
//! Say `(s, A) ⊑ (s', A')` when every future valid from `(s, A)` is valid from `(s', A')`;
//! carrying a set with the same ⊑-maximal elements gives the same verdicts. Two rules:
//!
//! - *Dominance*: `(s, A) ⊑ (s, A')` when `A ⊆ A'` (an available operation need never take
//!   effect: the model accepts an indefinite operation in any state).
//! - *Generation*: `(step(s, p), A \ {p}) ⊑ (s, A)` for `p ∈ A`: the future may start with `p`.
//!
//! After each window the end configurations are deduplicated, and one that is dominated by or
//! generated (in one step) from another with strictly fewer operations taken is dropped. An
//! operation taken in every configuration is gone for good (removed from the pool); one taken
//! in none stays available in all.
//!
//! # Indefinite operations: the lazy rule
//!
//! Left alone, the pool would make `C_t` explode: each indefinite operation may or may not have
//! taken effect, at any point. It does not, because of this (register models, the value
//! effects of `model::Effects`):
//!
//! **Lemma (lazy).** Let `L` be a valid order of a window from `(s0, A0)` ending in `(s, A)`.
//! Call an indefinite operation `a` in `L` *used* when the value `x` it sets (the state moves
//! `v → x`, `x ≠ v`) is, before the state next changes, observed by a definite operation (a read
//! of `x`, a cas from `x`), or the next change is an indefinite cas from `x` that is itself
//! used, or the stretch holds a refused cas from `v` (which needs the state not to be `v`).
//! Removing every operation that is not used (and every indefinite operation that does not
//! change the state) leaves a valid order `L'` whose end configuration ⊒ `(s, A)`.
//!
//! Proof. Remove the last unused `a` first (`v → x`). The stretch `S` after it, up to the next
//! change `b`, holds no read of `x` and no cas from `x` (definite ones observe `x`; an indefinite
//! one from `x` would change the state, so it is `b`, and `b` is used or `a` would be), so `S`
//! holds only writes of `x`, indefinite casses from other values (no-ops at `x`; remove them
//! too) and refused casses from values other than `x` and `v`. With `a` removed, `S` starts in
//! `v`: each write of `x` still applies and restores `x`, each refused cas still applies. `b`,
//! if any, moves away from `x` without observing it (not a cas from `x`: that would be an
//! observer or used), so it is a write, valid in any state, and the rest of `L` is unchanged.
//! So `L'` is valid, ends in the same state with more available (dominance); if `S` runs to the
//! end, `L'` ends in `v` with `a` available and `L`'s end is generated from it. Removing `a`
//! does not make an earlier operation used, so induction on the number of unused operations
//! ends. ∎
//!
//! So the search of a window (an enumerating [`Search`], which collects every end
//! configuration) takes an indefinite operation only if something not yet linearized can use
//! its value (`Search`'s lazy mode), and loads from the pool only the operations whose value
//! the window's definite operations observe, directly or through indefinite casses. With the
//! harness's unique values this makes `C_t` a single configuration almost always, whatever
//! the pool holds. (The rule needs a model whose state is a value; the kv model, with appends,
//! loads the whole pool and takes indefinite operations anywhere.)
//!
//! *Fast path.* A window of one configuration whose definite operations follow each other in
//! real time (no two overlap) — nearly every window when keys outnumber processes — is
//! checked by stepping them in order. That is complete, not just sound: by the lemma any other
//! order adds only used indefinite operations, each before a definite observer, so it ends after
//! the same last definite operation, whose outcome fixes the state (a read of `v`, a write or a
//! cas to `v` all end in `v`); its end is dominated.
//!
//! *Interchangeable operations.* After a cut, indefinite operations with the same input are
//! all available forever, so only how many of them a configuration took matters: the taken
//! ones are renamed to the earliest (so equivalent configurations become equal), and the
//! search takes identical ones in order of invocation.
//!
//! *How a window is searched.* The window's operations, plus the pool operations the lazy rule
//! could take, are searched from every carried configuration (the pool operations a
//! configuration took are linearized before the start). Configurations whose taken sets differ
//! outside the search do not share the search's cache (their ends differ there). Enumerating
//! can be costly (many concurrent indefinite operations over few values); past a step budget
//! the search only decides whether the window has a linearization at all — if not, the
//! violation is certain (by the theorem) — and defers the cut: the next quiescent point tries
//! again with the bigger window. At the end of the history only the verdict is needed, so the
//! last window is searched for one linearization. That decision races the lazy search and an
//! eager one over the same operations (`check::race`), as the whole-history check does. Each
//! is complete: the eager one explores every order the lazy one does.
//!
//! *Limits.* The pool only grows by indefinite writes nothing has observed yet. Those never
//! become provably useless (a later read may still return one), so the pool is bounded by
//! `CheckOptions::info_limit` across keys: beyond it the oldest are forgotten. Forgetting
//! removes possibilities, so a linearizable verdict stays sound, but a violation found on such a
//! key is reported unknown (`window-limit`). An operation that never completes keeps its key
//! from being quiescent; the window is bounded by `CheckOptions::window_limit`, beyond which
//! the key is unknown.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::check::{counterexample, race, Abort, End, Found, Limits, Mode, Search, Start};
use crate::error::ModelError;
use crate::history::{Func, History, NemesisEvent, Operation, Outcome, Value};
use crate::model::{ModelKind, SearchOp, Segment};
use crate::result::{Counterexample, KeyResult, UnknownCause, Verdict};
use crate::CheckOptions;

use super::Shared;

/// Steps the unpruned search may take to re-derive a counterexample (as the whole-history
/// check).
const EXPLAIN_BUDGET: u64 = 1 << 20;

/// Configurations a key may carry across a cut.
const MAX_CONFIGS: usize = 4096;

/// Steps an enumeration of a window's end configurations may take (plus
/// [`ENUMERATE_STEPS_PER_OP`] per operation) before the cut is deferred. A failed enumeration
/// is wasted work, and on a single busy key with a small value domain and many timeouts (10
/// processes, values 1..=4, 20% info) most are: with 100,000 + 1,000 per operation the
/// streaming check of 4,000 operations took 10 to 30 times the whole-history check's CPU, and
/// of 40,000 operations it ran out of its 60 s (the whole-history check: 0.9 s). With these,
/// both cost about the same there; where keys are quiescent often (the harness's histories)
/// windows are small and enumerate in far fewer steps than either bound.
const ENUMERATE_STEPS: u64 = 20_000;

/// See [`ENUMERATE_STEPS`]: a few steps per operation, so that a big window can still be
/// enumerated (one end takes at least a step per operation).
const ENUMERATE_STEPS_PER_OP: u64 = 4;

/// What every key of an engine shares.
pub(crate) struct Env<'a> {
    pub kind: &'a ModelKind,
    pub opts: &'a CheckOptions,
    pub shared: &'a Shared,
    pub nemesis: &'a VecDeque<NemesisEvent>,
    pub timed: bool,
}

/// The operation that set a configuration's state, for explanations.
#[derive(Clone, Debug)]
enum Setter {
    /// None: the initial value.
    Initial,
    /// The operation invoked at this position, held in the context or the pool.
    At(u64),
    /// An operation no longer held elsewhere.
    Owned(Box<Operation>),
}

/// A carried configuration.
#[derive(Clone, Debug)]
struct Config {
    state: StateVal,
    /// Pool operations taken in this configuration (their `call_pos`), sorted.
    used: Vec<u64>,
    setter: Setter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyStatus {
    Ok,
    Violation,
    Unknown(UnknownCause),
}

/// One key.
pub(crate) struct KeyState {
    pub name: String,
    configs: Vec<Config>,
    /// Indefinite operations available in some configuration, in invocation order.
    pool: VecDeque<Operation>,
    /// For each pool operation: hashes of the value it writes and of the value it changes the
    /// state from (a cas's `from`), 0 for none, and of its input; a compact index to find what
    /// a window can use.
    pool_hash: VecDeque<(u64, u64, u64)>,
    /// The window: operations completed since the last cut.
    seg: Vec<Operation>,
    /// Recently retired writes, for explanations: a ring of compact copies (`context_head` is
    /// the oldest once it is full), overwritten in place, so that keeping them costs no
    /// allocation and no access to what they replace.
    context: Vec<Kept>,
    context_head: usize,
    pub status: KeyStatus,
    /// Pool operations were forgotten (the info limit): a violation is not certain.
    truncated: bool,
    /// Writes were retired without being kept in the context.
    retired_writes: bool,
    /// The last cut was deferred: the next is tried when the window holds this many.
    defer_until: usize,
    /// Operations pushed, all outcomes.
    pub ops: usize,
    searched: usize,
    steps: u64,
    configs_seen: u64,
    search_time: Duration,
    pub cex: Option<(Counterexample, History)>,
}

impl KeyState {
    pub fn new(name: String, initial: &Value) -> Self {
        Self {
            name,
            configs: vec![Config {
                state: StateVal::new(initial),
                used: Vec::new(),
                setter: Setter::Initial,
            }],
            pool: VecDeque::new(),
            pool_hash: VecDeque::new(),
            seg: Vec::new(),
            context: Vec::new(),
            context_head: 0,
            status: KeyStatus::Ok,
            truncated: false,
            retired_writes: false,
            defer_until: 0,
            ops: 0,
            searched: 0,
            steps: 0,
            configs_seen: 0,
            search_time: Duration::ZERO,
            cex: None,
        }
    }

    /// Operations held: the window, the pool, the context.
    pub fn retained(&self) -> usize {
        self.seg.len() + self.pool.len() + self.context.len()
    }

    /// Adds a completed (or, at the end, never completed) operation to the window.
    pub fn push(&mut self, op: Operation, env: &Env<'_>) {
        self.ops += 1;
        if self.status != KeyStatus::Ok {
            return;
        }
        self.seg.push(op);
        if self.seg.len() > env.opts.window_limit {
            self.give_up(UnknownCause::WindowLimit, env);
        }
    }

    /// Stops checking the key.
    pub fn give_up(&mut self, cause: UnknownCause, env: &Env<'_>) {
        if self.status == KeyStatus::Ok {
            self.status = KeyStatus::Unknown(cause);
            env.shared.unknown.fetch_add(1, Ordering::Relaxed);
        }
        self.release(env);
    }

    /// Frees what the key holds.
    fn release(&mut self, env: &Env<'_>) {
        env.shared
            .info_total
            .fetch_sub(self.pool.len(), Ordering::Relaxed);
        self.seg = Vec::new();
        self.pool = VecDeque::new();
        self.pool_hash = VecDeque::new();
        self.context = Vec::new();
        self.configs = Vec::new();
    }

    /// Whether the window holds operations not yet checked.
    pub fn has_window(&self) -> bool {
        !self.seg.is_empty()
    }

    /// The key is quiescent: checks the window from the carried configurations and retires it
    /// (`last`: the history has ended, only the verdict is needed).
    pub fn cut<M: Segment>(&mut self, last: bool, env: &Env<'_>) -> Result<(), ModelError> {
        if self.status != KeyStatus::Ok || self.seg.is_empty() {
            return Ok(());
        }
        if !last && self.seg.len() < self.defer_until {
            return Ok(());
        }
        self.seg.sort_unstable_by_key(|o| o.call_pos);
        let lazy = env.opts.reductions && M::lazy_rule();
        if lazy && self.fast(*env.kind == ModelKind::CasRegister) {
            self.retire(&[], env);
            return Ok(());
        }
        self.general::<M>(lazy, last, env)
    }

    /// The fast path (see the module comment): one configuration, definite operations in
    /// sequence. `false` when it does not apply or a step fails (the search then decides).
    fn fast(&mut self, nil_read_free: bool) -> bool {
        if self.configs.len() != 1 {
            return false;
        }
        let start = &self.configs[0].state;
        // The value set in this window so far (`None`: still the configuration's).
        let mut cur: Option<&Value> = None;
        let holds = |cur: Option<&Value>, v: &Value| match cur {
            Some(c) => c == v,
            None => start.eq_value(v),
        };
        let mut setter = None;
        let mut last_ret = 0;
        let mut encoded = 0;
        for (i, op) in self.seg.iter().enumerate() {
            match op.outcome {
                Outcome::Ok => {}
                Outcome::Fail | Outcome::Info | Outcome::Pending => continue,
                _ => return false,
            }
            match op.f {
                Func::Read if nil_read_free && op.output == Value::Nil => continue,
                Func::Read | Func::Write | Func::Cas => {}
                _ => return false, // the search reports what the model does not support
            }
            if op.call_pos < last_ret {
                return false;
            }
            last_ret = op.ret_pos;
            encoded += 1;
            match op.f {
                Func::Read => {
                    if !holds(cur, &op.output) {
                        return false;
                    }
                }
                Func::Write => {
                    if !holds(cur, &op.arg) {
                        setter = Some(i);
                    }
                    cur = Some(&op.arg);
                }
                _ => {
                    if !holds(cur, &op.arg) {
                        return false;
                    }
                    if op.arg2 != op.arg {
                        setter = Some(i);
                    }
                    cur = Some(&op.arg2);
                }
            }
        }
        let state = cur.map(StateVal::new);
        let setter = setter.map(|i| Setter::At(self.seg[i].call_pos));
        let c = &mut self.configs[0];
        if let Some(state) = state {
            c.state = state;
        }
        if let Some(s) = setter {
            c.setter = s;
        }
        self.searched += encoded;
        true
    }

    /// Loads the pool operations the window can use, searches the window from every carried
    /// configuration, and carries the end configurations (or reports the violation).
    fn general<M: Segment>(
        &mut self,
        lazy: bool,
        last: bool,
        env: &Env<'_>,
    ) -> Result<(), ModelError> {
        let kind = env.kind;
        let mut model = M::empty(kind);
        let mut seg_ops = Vec::with_capacity(self.seg.len());
        let mut seg_refs = Vec::with_capacity(self.seg.len());
        for (i, op) in self.seg.iter().enumerate() {
            if let Some((input, output)) = model.encode_op(kind, op)? {
                seg_ops.push(SearchOp {
                    input,
                    output,
                    call: op.call_pos,
                    ret: op.ret_pos,
                    id: 0,
                });
                seg_refs.push(OpRef::Seg(i));
            }
        }
        self.searched += seg_ops.len();
        let refused = self.seg.iter().any(|o| o.outcome == Outcome::Refused);
        let relevant: Vec<usize> = if lazy && !refused {
            self.relevant_pool(&model, &seg_ops, &seg_refs)
        } else {
            (0..self.pool.len()).collect()
        };
        let mut ops = Vec::with_capacity(relevant.len() + seg_ops.len());
        let mut refs = Vec::with_capacity(relevant.len() + seg_ops.len());
        for &j in &relevant {
            if let Some((input, output)) = model.encode_op(kind, &self.pool[j])? {
                ops.push(SearchOp {
                    input,
                    output,
                    call: 0,
                    ret: u64::MAX,
                    id: 0,
                });
                refs.push(OpRef::Pool(j));
            }
        }
        // Pool operations in the search, by position (the pool is in invocation order).
        let loaded: Vec<(u64, u32)> = refs
            .iter()
            .enumerate()
            .map(|(l, r)| (self.op(*r).call_pos, l as u32))
            .collect();
        ops.extend(seg_ops);
        refs.extend(seg_refs);
        // Each configuration is a start. Two whose taken operations differ outside the search
        // must not share its cache: their ends differ there.
        let mut starts = Vec::with_capacity(self.configs.len());
        for c in &self.configs {
            let state = model.intern_state(kind, &c.state.value())?;
            let mut pre = Vec::new();
            let mut salt = 0u64;
            for id in &c.used {
                match loaded.binary_search_by_key(id, |&(p, _)| p) {
                    Ok(k) => pre.push(loaded[k].1),
                    Err(_) => salt = salt.wrapping_add(crate::check::splitmix64(*id)),
                }
            }
            starts.push(Start { state, pre, salt });
        }
        let time_limit = env.opts.time_limit;
        if time_limit.is_some_and(|d| self.search_time >= d) {
            self.give_up(UnknownCause::TimeLimit, env);
            return Ok(());
        }
        let limits = Limits {
            deadline: time_limit.map(|d| Instant::now() + (d - self.search_time)),
            cancel: &env.shared.cancel,
            memory_budget: env.opts.memory_budget,
            memory_used: &env.shared.memory_used,
        };
        let t = Instant::now();
        // Indefinite operations with the same input are interchangeable once both are invoked
        // (each may take effect at any later point): take them in order of invocation.
        let mut same_as = vec![u32::MAX; ops.len()];
        let indefinite: Vec<usize> = (0..ops.len()).filter(|&l| !ops[l].is_definite()).collect();
        for (n, &l) in indefinite.iter().enumerate() {
            let a = self.op(refs[l]);
            if let Some(&k) = indefinite[..n]
                .iter()
                .rev()
                .find(|&&k| same_input(self.op(refs[k]), a))
            {
                same_as[l] = k as u32;
            }
        }
        let mode = |enumerate| Mode {
            starts: starts.clone(),
            enumerate,
            lazy,
            prune: true,
            same_as: same_as.clone(),
        };
        // Enumerate the end configurations, within a budget: a window with many concurrent
        // indefinite operations over few values can have too many. Then only decide whether it
        // has a linearization at all (a violation is certain if not) and defer the cut to a
        // later quiescent point, with a bigger window. At the end of the history, only the
        // verdict is needed.
        let mut found = None;
        if !last {
            let mut search = Search::with_mode(&model, &ops, mode(true));
            let budget = ENUMERATE_STEPS + ENUMERATE_STEPS_PER_OP * ops.len() as u64;
            found = search.run(&mut model, &ops, &limits, budget);
            if found.is_none() {
                search.release(&limits);
            }
            self.steps += search.stats.steps;
            self.configs_seen += search.stats.configs;
            if matches!(found, Some(Found::Aborted(Abort::Window))) {
                found = None;
            }
        }
        let found = match found {
            Some(f) => f,
            // The lazy search and an eager one race (each is complete over these operations:
            // the eager one explores every order the lazy one does, and more), as in the
            // whole-history check; neither wins everywhere.
            None if lazy => {
                let mut eager = Search::with_mode(
                    &model,
                    &ops,
                    Mode {
                        lazy: false,
                        ..mode(false)
                    },
                );
                let mut lazy = Search::with_mode(&model, &ops, mode(false));
                let f = race(&mut model, &ops, &limits, [&mut eager, &mut lazy]);
                for s in [&eager, &lazy] {
                    self.steps += s.stats.steps;
                    self.configs_seen += s.stats.configs;
                }
                f
            }
            None => {
                let mut search = Search::with_mode(&model, &ops, mode(false));
                let f = loop {
                    if let Some(f) = search.run(&mut model, &ops, &limits, 1 << 20) {
                        break f;
                    }
                };
                self.steps += search.stats.steps;
                self.configs_seen += search.stats.configs;
                f
            }
        };
        self.search_time += t.elapsed();
        match found {
            Found::Ends(ends) => {
                self.defer_until = 0;
                self.carry(&mut model, &ops, &refs, &loaded, ends, env)
            }
            Found::Linearizable if last => self.retire(&[], env),
            Found::Linearizable => self.defer_until = self.seg.len() + self.seg.len() / 2 + 1,
            Found::Illegal {
                prefix,
                state,
                blocker,
                start,
            } => {
                if self.truncated {
                    // Forgotten indefinite operations might have explained it.
                    self.give_up(UnknownCause::WindowLimit, env);
                } else {
                    let found = (prefix, state, blocker, start);
                    self.violation(&mut model, ops, &refs, starts, found, &limits, env);
                }
            }
            Found::Aborted(a) => self.give_up(
                match a {
                    Abort::Time => UnknownCause::TimeLimit,
                    Abort::Memory => UnknownCause::MemoryBudget,
                    Abort::Cancelled => UnknownCause::Stopped,
                    Abort::Window => UnknownCause::WindowLimit,
                },
                env,
            ),
        }
        Ok(())
    }

    /// Indices of the pool operations whose value the window uses: observed by a definite
    /// operation of the window, or the `from` of an indefinite cas whose value is used, and so
    /// on (the lazy rule never takes the others). By value hashes: a collision only loads an
    /// operation the search will not take, which is harmless.
    fn relevant_pool<M: Segment>(
        &self,
        model: &M,
        seg_ops: &[SearchOp<M::Input, M::Output>],
        seg_refs: &[OpRef],
    ) -> Vec<usize> {
        if self.pool.is_empty() {
            return Vec::new();
        }
        let mut needed: Vec<u64> = Vec::new();
        // (from, to) of indefinite casses.
        let mut casses: Vec<(u64, u64)> = Vec::new();
        for (op, r) in seg_ops.iter().zip(seg_refs) {
            let o = self.op(*r);
            if let Some(e) = model.value_effects(&op.input, &op.output) {
                if e.observes.is_some() && op.is_definite() {
                    needed.push(value_hash(if o.f == Func::Read {
                        &o.output
                    } else {
                        &o.arg
                    }));
                }
                if e.may_observe.is_some() {
                    casses.push((value_hash(&o.arg), value_hash(&o.arg2)));
                }
            }
        }
        if needed.is_empty() {
            return Vec::new(); // nothing observed: nothing to load
        }
        // Close `needed` under "the from of an indefinite cas that sets a needed value", over
        // the window's casses and the pool's (by index, without copying the pool's).
        let mut taken = vec![false; casses.len()];
        let mut taken_pool: Vec<usize> = Vec::new();
        loop {
            let mut grew = false;
            for (k, &(from, to)) in casses.iter().enumerate() {
                if !taken[k] && needed.contains(&to) {
                    taken[k] = true;
                    needed.push(from);
                    grew = true;
                }
            }
            for (j, &(to, from, _)) in self.pool_hash.iter().enumerate() {
                if from != 0 && needed.contains(&to) && !taken_pool.contains(&j) {
                    taken_pool.push(j);
                    needed.push(from);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        self.pool_hash
            .iter()
            .enumerate()
            .filter(|(_, &(writes, _, _))| writes != 0 && needed.contains(&writes))
            .map(|(j, _)| j)
            .collect()
    }

    fn pool_push(&mut self, op: Operation) {
        let (writes, from) = match op.f {
            Func::Write | Func::Append => (value_hash(&op.arg), 0),
            Func::Cas if op.arg != op.arg2 => (value_hash(&op.arg2), value_hash(&op.arg)),
            _ => (0, 0),
        };
        let hashes = (writes, from, input_hash(&op));
        self.pool.push_back(op);
        self.pool_hash.push_back(hashes);
    }

    fn op(&self, r: OpRef) -> &Operation {
        match r {
            OpRef::Pool(j) => &self.pool[j],
            OpRef::Seg(i) => &self.seg[i],
        }
    }

    /// Carries the end configurations of a window (normalised, see the module comment) and
    /// retires the window.
    fn carry<M: Segment>(
        &mut self,
        model: &mut M,
        ops: &[SearchOp<M::Input, M::Output>],
        refs: &[OpRef],
        loaded: &[(u64, u32)],
        ends: Vec<End<u32>>,
        env: &Env<'_>,
    ) {
        let is_loaded = |id: &u64| loaded.binary_search_by_key(id, |&(p, _)| p).is_ok();
        let mut cands: Vec<(u32, Vec<u64>, Setter)> = Vec::with_capacity(ends.len());
        for e in ends {
            let from = &self.configs[e.start];
            let mut used: Vec<u64> = from
                .used
                .iter()
                .filter(|id| !is_loaded(id))
                .copied()
                .collect();
            used.extend(e.used.iter().map(|&l| self.op(refs[l as usize]).call_pos));
            used.sort_unstable();
            used.dedup();
            let setter = match e.setter {
                Some(l) => Setter::At(self.op(refs[l as usize]).call_pos),
                None => from.setter.clone(),
            };
            cands.push((e.state, used, setter));
        }
        if cands.len() > 1 {
            self.canonical(&mut cands);
        }
        cands.sort_by(|a, b| (a.1.len(), &a.1, a.0).cmp(&(b.1.len(), &b.1, b.0)));
        cands.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        // Local index of each indefinite operation in the search, by position.
        let local = |id: u64| -> Option<usize> {
            refs.iter()
                .position(|r| self.op(*r).call_pos == id)
                .filter(|&l| !ops[l].is_definite())
        };
        let mut keep = vec![true; cands.len()];
        for c in 0..cands.len() {
            for d in 0..cands.len() {
                if d == c || cands[d].1.len() > cands[c].1.len() {
                    continue;
                }
                let (ds, du) = (cands[d].0, &cands[d].1);
                let (cs, cu) = (cands[c].0, &cands[c].1);
                if !is_subset(du, cu) || du == cu {
                    continue;
                }
                // Dominated: same state, fewer operations available.
                if ds == cs {
                    keep[c] = false;
                    break;
                }
                // Generated: one more available operation, taken at the cut.
                if cu.len() == du.len() + 1 {
                    let p = cu.iter().find(|x| du.binary_search(x).is_err());
                    if let Some(l) = p.and_then(|&p| local(p)) {
                        if model.step(ds, &ops[l].input, &ops[l].output) == Some(cs) {
                            keep[c] = false;
                            break;
                        }
                    }
                }
            }
        }
        let mut configs: Vec<Config> = cands
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|((s, used, setter), _)| Config {
                state: StateVal::from_value(model.state_to_value(s)),
                used,
                setter,
            })
            .collect();
        if configs.len() > MAX_CONFIGS {
            self.give_up(UnknownCause::WindowLimit, env);
            return;
        }
        // Taken in every configuration: gone for good.
        let mut gone = configs[0].used.clone();
        for c in &configs[1..] {
            gone.retain(|id| c.used.binary_search(id).is_ok());
        }
        if !gone.is_empty() {
            for c in &mut configs {
                c.used.retain(|id| gone.binary_search(id).is_err());
            }
        }
        self.configs = configs;
        self.retire(&gone, env);
    }

    /// Rewrites each candidate's taken operations so that, among indefinite operations with
    /// the same input, the earliest are the ones taken (after the cut they are all available
    /// forever, so which ones were taken does not matter, only how many): equivalent
    /// configurations become equal.
    fn canonical(&self, cands: &mut [(u32, Vec<u64>, Setter)]) {
        let mut used_any: Vec<u64> = cands.iter().flat_map(|c| c.1.iter().copied()).collect();
        used_any.sort_unstable();
        used_any.dedup();
        if used_any.is_empty() {
            return;
        }
        // Indefinite operations in invocation order, with a hash of their input.
        let all: Vec<(u64, u64, &Operation)> = self
            .pool
            .iter()
            .zip(&self.pool_hash)
            .map(|(o, h)| (o.call_pos, h.2, o))
            .chain(
                self.seg
                    .iter()
                    .filter(|o| o.outcome.is_indefinite())
                    .map(|o| (o.call_pos, input_hash(o), o)),
            )
            .collect();
        // The classes of the operations taken somewhere: all operations with the same input.
        let mut classes: Vec<Vec<u64>> = Vec::new();
        let mut class_of: Vec<(u64, usize)> = Vec::new();
        for &u in &used_any {
            if class_of.iter().any(|&(m, _)| m == u) {
                continue;
            }
            let Some(&(_, h, o)) = all.iter().find(|x| x.0 == u) else {
                continue;
            };
            let members: Vec<u64> = all
                .iter()
                .filter(|x| x.1 == h && same_input(x.2, o))
                .map(|x| x.0)
                .collect();
            class_of.extend(members.iter().map(|&m| (m, classes.len())));
            classes.push(members);
        }
        class_of.sort_unstable();
        for cand in cands.iter_mut() {
            let mut counts = vec![0usize; classes.len()];
            let mut used = Vec::with_capacity(cand.1.len());
            for id in &cand.1 {
                match class_of.binary_search_by_key(id, |&(m, _)| m) {
                    Ok(k) => counts[class_of[k].1] += 1,
                    Err(_) => used.push(*id),
                }
            }
            for (c, n) in counts.into_iter().enumerate() {
                used.extend(classes[c].iter().take(n));
            }
            used.sort_unstable();
            cand.1 = used;
        }
    }

    /// Retires the window: its indefinite writes join the pool (unless in `gone`: taken in every
    /// configuration), its other writes join the context, the rest is dropped. Pool operations
    /// in `gone` leave the pool for the context.
    fn retire(&mut self, gone: &[u64], env: &Env<'_>) {
        env.shared
            .checked
            .fetch_add(self.seg.len() as u64, Ordering::Relaxed);
        if !gone.is_empty() {
            let mut removed = 0;
            let mut j = 0;
            while j < self.pool.len() {
                if gone.binary_search(&self.pool[j].call_pos).is_ok() {
                    removed += 1;
                    self.pool_hash.remove(j);
                    if let Some(op) = self.pool.remove(j) {
                        self.keep_in_context(op, env);
                    }
                } else {
                    j += 1;
                }
            }
            env.shared.info_total.fetch_sub(removed, Ordering::Relaxed);
        }
        let mut added = 0;
        let mut window = std::mem::take(&mut self.seg);
        for op in window.drain(..) {
            if !matches!(op.f, Func::Write | Func::Cas | Func::Append) {
                continue;
            }
            if op.outcome.is_indefinite() && gone.binary_search(&op.call_pos).is_err() {
                self.pool_push(op);
                added += 1;
            } else {
                self.keep_in_context(op, env);
            }
        }
        if window.capacity() <= 64 {
            self.seg = window; // keep the allocation for the next window
        }
        if added > 0 {
            let total = env.shared.info_total.fetch_add(added, Ordering::Relaxed) + added;
            let mut over = total.saturating_sub(env.opts.info_limit);
            while over > 0 {
                let Some(op) = self.pool.pop_front() else {
                    break;
                };
                self.pool_hash.pop_front();
                over -= 1;
                env.shared.info_total.fetch_sub(1, Ordering::Relaxed);
                self.truncated = true;
                self.retired_writes = true;
                let id = op.call_pos;
                for c in &mut self.configs {
                    c.used.retain(|&u| u != id);
                }
                self.own_setter(op);
            }
        }
    }

    /// Keeps a retired write for explanations (replacing the oldest beyond
    /// `CheckOptions::context_ops`). A write whose values are too long to keep compactly is
    /// not kept, nor are any once the ring is full: `retired_writes` says so.
    /// A configuration whose state such a write set finds it there while it is kept, and keeps
    /// a copy of a write not kept; one overwritten is forgotten (the explanation then starts
    /// after it).
    fn keep_in_context(&mut self, op: Operation, env: &Env<'_>) {
        let cap = env.opts.context_ops;
        let Some(kept) = Kept::new(&op).filter(|_| cap > 0) else {
            self.retired_writes = true;
            self.own_setter(op);
            return;
        };
        if self.context.len() < cap {
            self.context.push(kept);
        } else {
            self.retired_writes = true;
            self.context[self.context_head] = kept;
            self.context_head = (self.context_head + 1) % cap;
        }
    }

    /// An operation about to be dropped: configurations whose state it set keep a copy.
    fn own_setter(&mut self, op: Operation) {
        let id = op.call_pos;
        if !self
            .configs
            .iter()
            .any(|c| matches!(c.setter, Setter::At(p) if p == id))
        {
            return;
        }
        let mut op = Some(Box::new(op));
        let n = self.configs.len();
        for k in 0..n {
            if matches!(self.configs[k].setter, Setter::At(p) if p == id) {
                let shared_later = self.configs[k + 1..]
                    .iter()
                    .any(|c| matches!(c.setter, Setter::At(p) if p == id));
                let o = if shared_later { op.clone() } else { op.take() };
                if let Some(o) = o {
                    self.configs[k].setter = Setter::Owned(o);
                }
            }
        }
    }

    /// The operation invoked at `id`, if still held.
    fn find(&self, id: u64) -> Option<Operation> {
        self.seg
            .iter()
            .chain(self.pool.iter())
            .find(|o| o.call_pos == id)
            .cloned()
            .or_else(|| {
                self.context
                    .iter()
                    .find(|k| k.call_pos == id)
                    .map(Kept::operation)
            })
    }

    /// Records a violation: the counterexample, over an evidence history holding the window,
    /// the pool operations it loaded, the context and the setters of the carried states.
    #[allow(clippy::too_many_arguments)]
    fn violation<M: Segment>(
        &mut self,
        model: &mut M,
        mut ops: Vec<SearchOp<M::Input, M::Output>>,
        refs: &[OpRef],
        starts: Vec<Start<u32>>,
        found: (Vec<u32>, u32, u32, usize),
        limits: &Limits<'_>,
        env: &Env<'_>,
    ) {
        let mut evidence: Vec<Operation> = Vec::new();
        for r in refs {
            evidence.push(self.op(*r).clone());
        }
        evidence.extend(self.seg.iter().cloned());
        evidence.extend(self.context.iter().map(Kept::operation));
        for c in &self.configs {
            match &c.setter {
                Setter::Owned(o) => evidence.push((**o).clone()),
                Setter::At(id) => evidence.extend(self.find(*id)),
                Setter::Initial => {}
            }
        }
        evidence.sort_by_key(|o| o.call_pos);
        evidence.dedup_by_key(|o| o.call_pos);
        for o in &mut evidence {
            o.key = 0;
        }
        let index = |pos: u64| {
            evidence
                .binary_search_by_key(&pos, |o| o.call_pos)
                .unwrap_or(0)
        };
        for (op, r) in ops.iter_mut().zip(refs) {
            op.id = index(self.op(*r).call_pos) as u32;
        }
        let (mut prefix, mut state, mut blocker, mut start) = found;
        let mut plain = Search::with_mode(
            model,
            &ops,
            Mode {
                starts: starts.clone(),
                enumerate: false,
                lazy: false,
                prune: false,
                same_as: Vec::new(),
            },
        );
        if let Some(Found::Illegal {
            prefix: p,
            state: s,
            blocker: b,
            start: st,
        }) = plain.run(model, &ops, limits, EXPLAIN_BUDGET)
        {
            (prefix, state, blocker, start) = (p, s, b, st);
        }
        let setter = match &self.configs[start].setter {
            Setter::Initial => None,
            Setter::At(id) => Some(index(*id)),
            Setter::Owned(o) => Some(index(o.call_pos)),
        };
        let lo = evidence.first().map_or(0, |o| o.call_pos);
        let hi = evidence
            .iter()
            .map(|o| o.end_pos.unwrap_or(o.call_pos))
            .max()
            .unwrap_or(0);
        let before = env.nemesis.iter().rposition(|n| n.pos < lo);
        let nemesis = env
            .nemesis
            .iter()
            .enumerate()
            .filter(|(i, n)| Some(*i) == before || (n.pos >= lo && n.pos <= hi))
            .map(|(_, n)| n.clone())
            .collect();
        let history = History {
            ops: evidence,
            keys: vec![self.name.clone()],
            nemesis,
            timed: env.timed,
            torn_tail: None,
            window: true,
            retired: self.retired_writes,
        };
        let cex = counterexample(
            &history,
            &self.name,
            model,
            &ops,
            (starts[start].state, setter),
            &prefix,
            state,
            blocker,
        );
        self.status = KeyStatus::Violation;
        env.shared.report_violation(&cex, &history, env.opts);
        self.cex = Some((cex, history));
        self.release(env);
    }

    /// The key's result.
    pub fn result(&self) -> KeyResult {
        let (verdict, cause) = match self.status {
            KeyStatus::Ok => (Verdict::Linearizable, None),
            KeyStatus::Violation => (Verdict::NotLinearizable, None),
            KeyStatus::Unknown(c) => (Verdict::Unknown, Some(c)),
        };
        KeyResult {
            key: self.name.clone(),
            ops: self.ops,
            searched_ops: self.searched,
            verdict,
            cause,
            elapsed: self.search_time,
            steps: self.steps,
            configs: self.configs_seen,
            clamped: 0,
            dropped: 0,
        }
    }
}

/// A retired write as the context keeps it: what an explanation shows of it, with no
/// allocation (`Copy`: a ring slot is overwritten without reading it).
#[derive(Clone, Copy)]
struct Kept {
    call_pos: u64,
    ret_pos: u64,
    end_pos: Option<u64>,
    process: u64,
    call_time: u64,
    ret_time: Option<u64>,
    call_line: u64,
    ret_line: Option<u64>,
    f: Func,
    outcome: Outcome,
    arg: Small,
    arg2: Small,
}

/// A carried state: inline when short (no allocation, and comparing it touches no other
/// memory: the fast path compares it with every operation).
#[derive(Clone, Debug)]
enum StateVal {
    Small(Small),
    Big(Value),
}

impl StateVal {
    fn new(v: &Value) -> Self {
        Small::new(v).map_or_else(|| StateVal::Big(v.clone()), StateVal::Small)
    }

    fn from_value(v: Value) -> Self {
        match Small::new(&v) {
            Some(s) => StateVal::Small(s),
            None => StateVal::Big(v),
        }
    }

    fn value(&self) -> Value {
        match self {
            StateVal::Small(s) => s.value(),
            StateVal::Big(v) => v.clone(),
        }
    }

    fn eq_value(&self, v: &Value) -> bool {
        match self {
            StateVal::Small(s) => s.eq_value(v),
            StateVal::Big(b) => b == v,
        }
    }
}

/// A value of at most 22 bytes, inline.
#[derive(Clone, Copy, Debug)]
enum Small {
    Nil,
    Int(i64),
    Str(u8, [u8; 22]),
}

impl Small {
    fn new(v: &Value) -> Option<Small> {
        Some(match v {
            Value::Nil => Small::Nil,
            Value::Int(i) => Small::Int(*i),
            Value::Str(s) if s.len() <= 22 => {
                let mut b = [0u8; 22];
                b[..s.len()].copy_from_slice(s.as_bytes());
                Small::Str(s.len() as u8, b)
            }
            Value::Str(_) => return None,
        })
    }

    fn eq_value(&self, v: &Value) -> bool {
        match (self, v) {
            (Small::Nil, Value::Nil) => true,
            (Small::Int(a), Value::Int(b)) => a == b,
            (Small::Str(n, b), Value::Str(s)) => &b[..*n as usize] == s.as_bytes(),
            _ => false,
        }
    }

    fn value(&self) -> Value {
        match self {
            Small::Nil => Value::Nil,
            Small::Int(i) => Value::Int(*i),
            Small::Str(n, b) => Value::Str(String::from_utf8_lossy(&b[..*n as usize]).into()),
        }
    }
}

impl Kept {
    fn new(o: &Operation) -> Option<Kept> {
        Some(Kept {
            call_pos: o.call_pos,
            ret_pos: o.ret_pos,
            end_pos: o.end_pos,
            process: o.process,
            call_time: o.call_time,
            ret_time: o.ret_time,
            call_line: o.call_line,
            ret_line: o.ret_line,
            f: o.f,
            outcome: o.outcome,
            arg: Small::new(&o.arg)?,
            arg2: Small::new(&o.arg2)?,
        })
    }

    /// The operation (its `error` text is not kept).
    fn operation(&self) -> Operation {
        Operation {
            process: self.process,
            key: 0,
            f: self.f,
            arg: self.arg.value(),
            arg2: self.arg2.value(),
            output: Value::Nil,
            outcome: self.outcome,
            call_pos: self.call_pos,
            ret_pos: self.ret_pos,
            end_pos: self.end_pos,
            call_time: self.call_time,
            ret_time: self.ret_time,
            call_line: self.call_line,
            ret_line: self.ret_line,
            error: None,
        }
    }
}

/// An operation of a window's search: from the pool or the window.
#[derive(Clone, Copy, Debug)]
enum OpRef {
    Pool(usize),
    Seg(usize),
}

/// Whether two indefinite operations have the same effect.
fn same_input(a: &Operation, b: &Operation) -> bool {
    a.f == b.f && a.arg == b.arg && a.arg2 == b.arg2
}

/// A hash of an operation's input.
fn input_hash(o: &Operation) -> u64 {
    crate::check::state_hash(&(o.f, &o.arg, &o.arg2))
}

/// A value's hash for the pool index; never 0 (0 means "none" there).
fn value_hash(v: &Value) -> u64 {
    crate::check::state_hash(v) | 1
}

fn is_subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().all(|x| b.binary_search(x).is_ok())
}
