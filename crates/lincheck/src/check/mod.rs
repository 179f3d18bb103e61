//! The checker: split the history by key (P-compositionality: a history of independent keys is
//! linearizable iff each key's sub-history is), check the keys in parallel, collect the results.

mod cache;
pub(crate) use cache::{splitmix64, state_hash, FxHasher};
pub(crate) mod reduce;
pub(crate) mod search;
pub(crate) use search::{Abort, End, Found, Limits, Mode, Search, Start, Stats};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ModelError;
use crate::explain;
use crate::history::{History, Value};
use crate::model::kv::Kv;
use crate::model::register::Register;
use crate::model::{Encode, Model, ModelKind, SearchOp};
use crate::result::{CheckResult, Counterexample, KeyResult, Step, UnknownCause, Verdict};

/// How to check.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The model; `None`: the input format's default (the register for JSONL).
    pub model: Option<ModelKind>,
    /// Initial value of every key (`Nil`: absent).
    pub initial: Value,
    /// Wall-clock limit for the whole check; `None` for none.
    pub time_limit: Option<Duration>,
    /// Memory the search caches may use in total, in bytes.
    pub memory_budget: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Apply the sound reductions for indefinite operations (see `check::reduce`).
    pub reductions: bool,
    /// Stop the other keys at the first key found not linearizable (they become unknown, cause
    /// `Stopped`), as Porcupine does. On by default: CI needs the verdict, not every bad key.
    pub stop_at_first_violation: bool,
    /// Streaming check ([`crate::stream`]): background threads that check the keys; 0 checks
    /// in the thread that pushes the events (deterministic: `push` returns the verdict so far
    /// for everything pushed).
    pub stream_workers: usize,
    /// Streaming check: the most operations one key may hold between quiescent points (its
    /// concurrency window); a key that exceeds it becomes unknown (`window-limit`).
    pub window_limit: usize,
    /// Streaming check: the most indefinite operations carried across cuts, all keys together.
    /// Beyond it the oldest are forgotten, and a violation on that key is reported unknown.
    pub info_limit: usize,
    /// Streaming check: retired writes kept per key to explain a violation found later.
    pub context_ops: usize,
    /// How the whole-history check searches each key (the streaming checker's windows always
    /// use the lazy rule where it holds).
    pub strategy: Strategy,
}

/// How [`check()`] searches a key. Every strategy is complete: they differ only in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Both of the others, each for half the steps; the first answer wins.
    #[default]
    Portfolio,
    /// Indefinite operations may take effect anywhere (Wing & Gong, Lowe).
    Eager,
    /// An indefinite operation takes effect only to set a value something uses (the lazy
    /// rule); register models with the reductions on, else the same as `Eager`.
    Lazy,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            model: None,
            initial: Value::Nil,
            time_limit: Some(Duration::from_secs(60)),
            memory_budget: 4 << 30,
            threads: 0,
            reductions: true,
            stop_at_first_violation: true,
            stream_workers: 1,
            window_limit: 100_000,
            info_limit: 250_000,
            context_ops: 4,
            strategy: Strategy::Portfolio,
        }
    }
}

impl CheckOptions {
    /// Options for a model.
    pub fn new(model: ModelKind) -> Self {
        Self {
            model: Some(model),
            ..Self::default()
        }
    }
    /// The model to use.
    pub fn model_kind(&self) -> ModelKind {
        self.model.clone().unwrap_or_default()
    }

    /// Sets the initial value.
    pub fn initial(mut self, v: Value) -> Self {
        self.initial = v;
        self
    }
    /// Sets the time limit.
    pub fn time_limit(mut self, d: Option<Duration>) -> Self {
        self.time_limit = d;
        self
    }
    /// Sets the memory budget in bytes.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }
    /// Sets the number of threads (0: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
    /// Turns the reductions on or off.
    pub fn reductions(mut self, on: bool) -> Self {
        self.reductions = on;
        self
    }
    /// Stop at the first violation.
    pub fn stop_at_first_violation(mut self, on: bool) -> Self {
        self.stop_at_first_violation = on;
        self
    }
    /// Sets the streaming checker's background threads (0: check in the pushing thread).
    pub fn stream_workers(mut self, n: usize) -> Self {
        self.stream_workers = n;
        self
    }
    /// Sets the streaming checker's per-key window limit (operations).
    pub fn window_limit(mut self, ops: usize) -> Self {
        self.window_limit = ops;
        self
    }
    /// Sets the streaming checker's limit on carried indefinite operations.
    pub fn info_limit(mut self, ops: usize) -> Self {
        self.info_limit = ops;
        self
    }
    /// Sets the search strategy of the whole-history check.
    pub fn strategy(mut self, s: Strategy) -> Self {
        self.strategy = s;
        self
    }
    /// Sets how many retired writes per key the streaming checker keeps for explanations.
    pub fn context_ops(mut self, n: usize) -> Self {
        self.context_ops = n;
        self
    }
}

struct Shared<'a> {
    history: &'a History,
    opts: &'a CheckOptions,
    limits: Limits<'a>,
}

type KeyOutcome = (KeyResult, Option<Counterexample>);

/// Steps the unpruned search may take to re-derive a counterexample.
const EXPLAIN_BUDGET: u64 = 1 << 20;

/// Steps a key runs before going back to the queue; doubled every round.
const FIRST_BUDGET: u64 = 1 << 15;

/// Steps of one strategy's turn in the portfolio (see `Started::run`): the search checks its
/// budget every 4,096 steps, so this is its finest grain; a turn takes tens of microseconds,
/// against which reading the clock is nothing.
const TURN: u64 = 1 << 12;

/// How many times the other's time the portfolio's leading strategy may run (see
/// [`eager_next`]).
const LEAD: u32 = 3;

/// Whether the portfolio's next turn goes to the eager search, given the time each strategy
/// has run and how far each has got (the fewest definite operations it has left
/// unlinearized). Equal progress: the one that has run less. The one that has got strictly
/// further may run up to [`LEAD`] times as long as the other: on small-domain, timeout-heavy
/// histories the winner is usually ahead long before it answers, and plain time-fair turns
/// doubled its time. Both still get turns, so both stay complete and the pair costs at most
/// `LEAD + 1` times the better one even when the lead misleads.
fn eager_next(time: [Duration; 2], fewest_remaining: [usize; 2]) -> bool {
    match fewest_remaining[0].cmp(&fewest_remaining[1]) {
        std::cmp::Ordering::Less => time[0] <= time[1] * LEAD,
        std::cmp::Ordering::Greater => time[0] * LEAD <= time[1],
        std::cmp::Ordering::Equal => time[0] <= time[1],
    }
}

/// Runs two complete searches of the same operations as a portfolio until either answers
/// (turns of [`TURN`] steps, shared by [`eager_next`]; `searches[0]` is the eager one), and
/// returns the first answer. A search that runs out of memory is dropped and the other goes on
/// alone; the one that did not answer is released. The streaming checker's final decision.
pub(crate) fn race<M: Model>(
    model: &mut M,
    ops: &[SearchOp<M::Input, M::Output>],
    limits: &Limits<'_>,
    searches: [&mut Search<M>; 2],
) -> Found<M::State> {
    let mut time = [Duration::ZERO; 2];
    let mut alive = [true, true];
    loop {
        let eager_turn = match alive {
            [true, true] => eager_next(
                time,
                [searches[0].fewest_remaining, searches[1].fewest_remaining],
            ),
            [a, _] => a,
        };
        let i = usize::from(!eager_turn);
        let t = Instant::now();
        let found = searches[i].run(model, ops, limits, TURN);
        time[i] += t.elapsed();
        match found {
            None => {}
            Some(Found::Aborted(Abort::Memory)) if alive[1 - i] => {
                searches[i].release(limits);
                alive[i] = false;
            }
            Some(found) => {
                if alive[1 - i] {
                    searches[1 - i].release(limits);
                }
                return found;
            }
        }
    }
}

/// One key's check, resumable.
trait Job: Send {
    /// Advances the check; `None` while unfinished.
    fn run(&mut self, sh: &Shared<'_>) -> Option<Result<KeyOutcome, ModelError>>;
    /// Sets the step budget of the next `run`.
    fn set_budget(&mut self, budget: u64);
}

/// Checks a history.
///
/// Keys are independent (P-compositionality: a history of independent keys is linearizable iff
/// each key's sub-history is), so each key is a job. Workers (one per core) take jobs from a
/// queue, biggest keys first, run each for a step budget and put unfinished ones back with twice
/// the budget: every key makes progress, so a key that fails fast is found fast even on one core.
pub fn check(history: &History, opts: &CheckOptions) -> Result<CheckResult, ModelError> {
    let start = Instant::now();
    let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); history.keys.len()];
    for (i, op) in history.ops.iter().enumerate() {
        if let Some(v) = by_key.get_mut(op.key as usize) {
            v.push(i as u32);
        }
    }
    let mut order: Vec<usize> = (0..by_key.len())
        .filter(|&k| !by_key[k].is_empty())
        .collect();
    order.sort_by_key(|&k| std::cmp::Reverse(by_key[k].len()));
    let model = opts.model_kind();
    let queue: Mutex<VecDeque<(Box<dyn Job + '_>, u64)>> = Mutex::new(
        order
            .iter()
            .map(|&k| {
                let ids = std::mem::take(&mut by_key[k]);
                let job: Box<dyn Job> = match model {
                    ModelKind::KvAppend => Box::new(KeyJob::<Kv>::new(k as u32, ids)),
                    _ => Box::new(KeyJob::<Register>::new(k as u32, ids)),
                };
                (job, FIRST_BUDGET)
            })
            .collect(),
    );
    let cancel = AtomicBool::new(false);
    let memory_used = AtomicUsize::new(0);
    let shared = Shared {
        history,
        opts,
        limits: Limits {
            deadline: opts.time_limit.map(|d| start + d),
            cancel: &cancel,
            memory_budget: opts.memory_budget,
            memory_used: &memory_used,
        },
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(order.len())
    .max(1);
    let active = AtomicUsize::new(0);
    let work = || -> Vec<Result<KeyOutcome, ModelError>> {
        let mut out = Vec::new();
        loop {
            let popped = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                let j = q.pop_front();
                if j.is_some() {
                    active.fetch_add(1, Ordering::SeqCst);
                }
                j
            };
            let Some((mut job, budget)) = popped else {
                if active.load(Ordering::SeqCst) == 0 {
                    break;
                }
                // Another worker holds a job it may put back.
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            job.set_budget(budget);
            match job.run(&shared) {
                Some(r) => {
                    if opts.stop_at_first_violation
                        && matches!(&r, Ok((k, _)) if k.verdict == Verdict::NotLinearizable)
                    {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    out.push(r);
                }
                None => queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back((job, budget.saturating_mul(2))),
            }
            active.fetch_sub(1, Ordering::SeqCst);
        }
        out
    };
    let mut results = Vec::with_capacity(order.len());
    if threads == 1 {
        results = work();
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            for h in handles {
                results.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
        });
    }
    let mut results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    results.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let verdict = Verdict::overall(results.iter().map(|r| r.0.verdict));
    let (keys, cexs): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    Ok(CheckResult {
        verdict,
        model: model.name().to_string(),
        ops: history.ops.len(),
        elapsed: start.elapsed(),
        keys,
        counterexamples: cexs.into_iter().flatten().collect(),
    })
}

/// Model-specific preprocessing before the search.
trait Prepare: Encode + Send {
    /// Applies sound reductions; returns (clamped, dropped).
    fn reduce(&self, _ops: &mut Vec<SearchOp<Self::Input, Self::Output>>) -> (usize, usize) {
        (0, 0)
    }
    /// Whether the search may use the lazy rule for indefinite operations (see `stream::key`).
    fn lazy_rule(&self) -> bool {
        false
    }
}

impl Prepare for Kv {}

impl Prepare for Register {
    fn reduce(&self, ops: &mut Vec<SearchOp<Self::Input, Self::Output>>) -> (usize, usize) {
        let r = reduce::reduce(ops, self.init());
        (r.clamped, r.dropped)
    }
    fn lazy_rule(&self) -> bool {
        true
    }
}

struct Started<M: Model> {
    model: M,
    ops: Vec<SearchOp<M::Input, M::Output>>,
    search: Search<M>,
    /// The second strategy of the portfolio (the lazy rule), while it runs; see
    /// [`Started::run`].
    lazy: Option<Search<M>>,
    /// Steps and configurations of a strategy that has stopped.
    spent: Stats,
    /// Time the eager and the lazy search have run (the portfolio's turns).
    time: [Duration; 2],
}

impl<M: Model> Started<M> {
    /// Runs the portfolio for about `budget` steps: the eager search (indefinite operations
    /// anywhere) and, for models with value effects, the lazy one (an indefinite operation only
    /// for a value something uses, `stream::key`'s lemma), in turns of [`TURN`] steps shared
    /// by time and progress ([`eager_next`]), and takes the first answer. Both are complete,
    /// so either's verdict is the verdict. Neither wins everywhere: on small value domains with
    /// many timeouts each has seeds where it explores ten to a hundred times as many
    /// configurations as the other, so the pair costs at most `LEAD + 1` times the better one.
    /// Time, not steps: an eager step caches more configurations and costs more than a lazy
    /// one. Short turns keep the bound when the better one needs little more than a round's
    /// budget. A strategy that runs out of memory is dropped and the other goes on alone.
    fn run(&mut self, limits: &Limits<'_>, budget: u64) -> Option<Found<M::State>> {
        let mut left = budget.max(1);
        while left > 0 {
            let Some(lazy) = self.lazy.as_mut() else {
                return self.search.run(&mut self.model, &self.ops, limits, left);
            };
            let steps = TURN.min(left);
            left -= steps;
            let eager_turn = eager_next(
                self.time,
                [self.search.fewest_remaining, lazy.fewest_remaining],
            );
            let t = Instant::now();
            let found = if eager_turn {
                self.search.run(&mut self.model, &self.ops, limits, steps)
            } else {
                lazy.run(&mut self.model, &self.ops, limits, steps)
            };
            self.time[usize::from(!eager_turn)] += t.elapsed();
            match found {
                None => {}
                Some(Found::Aborted(Abort::Memory)) => {
                    if eager_turn {
                        self.spent.add(self.search.stats);
                        std::mem::swap(&mut self.search, lazy);
                    } else {
                        self.spent.add(lazy.stats);
                    }
                    self.lazy = None;
                }
                Some(found) => {
                    if !eager_turn {
                        std::mem::swap(&mut self.search, lazy);
                    }
                    // `lazy` now holds the strategy that did not answer.
                    lazy.release(limits);
                    self.spent.add(lazy.stats);
                    self.lazy = None;
                    return Some(found);
                }
            }
        }
        None
    }
}

struct KeyJob<M: Model> {
    key: u32,
    ids: Vec<u32>,
    budget: u64,
    elapsed: Duration,
    started: Option<Started<M>>,
    clamped: usize,
    dropped: usize,
}

impl<M: Prepare> KeyJob<M> {
    fn new(key: u32, ids: Vec<u32>) -> Self {
        Self {
            key,
            ids,
            budget: FIRST_BUDGET,
            elapsed: Duration::ZERO,
            started: None,
            clamped: 0,
            dropped: 0,
        }
    }
}

impl<M: Prepare> Job for KeyJob<M>
where
    M::State: Send,
    M::Input: Send,
    M::Output: Send,
{
    fn run(&mut self, sh: &Shared<'_>) -> Option<Result<KeyOutcome, ModelError>> {
        let t = Instant::now();
        if self.started.is_none() {
            let (model, mut ops) = match M::encode(
                &sh.opts.model_kind(),
                &sh.opts.initial,
                &sh.history.ops,
                &self.ids,
            ) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if sh.opts.reductions {
                (self.clamped, self.dropped) = model.reduce(&mut ops);
            }
            let same_as = interchangeable(sh.history, &ops);
            let mode = |lazy| Mode {
                starts: Vec::new(),
                enumerate: false,
                lazy,
                prune: true,
                same_as: same_as.clone(),
            };
            // The lazy rule only matters when there are indefinite operations to leave out.
            let lazy_applies =
                sh.opts.reductions && model.lazy_rule() && ops.iter().any(|o| !o.is_definite());
            let (search, lazy) = match sh.opts.strategy {
                Strategy::Lazy if lazy_applies => {
                    (Search::with_mode(&model, &ops, mode(true)), None)
                }
                Strategy::Portfolio if lazy_applies => (
                    Search::with_mode(&model, &ops, mode(false)),
                    Some(Search::with_mode(&model, &ops, mode(true))),
                ),
                _ => (Search::with_mode(&model, &ops, mode(false)), None),
            };
            self.started = Some(Started {
                model,
                ops,
                search,
                lazy,
                spent: Stats::default(),
                time: [Duration::ZERO; 2],
            });
        }
        let st = self.started.as_mut()?;
        let found = st.run(&sh.limits, self.budget);
        self.elapsed += t.elapsed();
        let found = found?;
        let mut stats = st.search.stats;
        stats.add(st.spent);
        let mut kr = KeyResult {
            key: sh.history.key_name(self.key).to_string(),
            ops: self.ids.len(),
            searched_ops: st.ops.len(),
            verdict: Verdict::Unknown,
            cause: None,
            elapsed: self.elapsed,
            steps: stats.steps,
            configs: stats.configs,
            clamped: self.clamped,
            dropped: self.dropped,
        };
        let mut cex = None;
        match found {
            Found::Linearizable => kr.verdict = Verdict::Linearizable,
            Found::Aborted(a) => {
                kr.cause = Some(match a {
                    Abort::Time => UnknownCause::TimeLimit,
                    Abort::Memory => UnknownCause::MemoryBudget,
                    Abort::Cancelled => UnknownCause::Stopped,
                    Abort::Window => UnknownCause::WindowLimit,
                })
            }
            // Only enumerating searches (streaming) return end configurations.
            Found::Ends(_) => kr.verdict = Verdict::Linearizable,
            Found::Illegal {
                mut prefix,
                mut state,
                mut blocker,
                ..
            } => {
                kr.verdict = Verdict::NotLinearizable;
                // Re-derive the counterexample without the obligation pruning when that is
                // cheap: its dead ends name the operation a person would blame.
                let mut plain = Search::with_pruning(&st.model, &st.ops, false);
                if let Some(Found::Illegal {
                    prefix: p,
                    state: s,
                    blocker: b,
                    ..
                }) = plain.run(&mut st.model, &st.ops, &sh.limits, EXPLAIN_BUDGET)
                {
                    (prefix, state, blocker) = (p, s, b);
                }
                let init = st.model.init();
                cex = Some(counterexample(
                    sh.history,
                    &kr.key,
                    &mut st.model,
                    &st.ops,
                    (init, None),
                    &prefix,
                    state,
                    blocker,
                ));
            }
        }
        Some(Ok((kr, cex)))
    }

    fn set_budget(&mut self, budget: u64) {
        self.budget = budget;
    }
}

/// For the search's *same as* rule: per operation, the indefinite operation with the same input
/// invoked last before it, or `u32::MAX`. Two indefinite operations with the same input are
/// interchangeable once both are invoked: each may take effect at any point after its
/// invocation, or never, and neither blocks anything, so swapping their places in a
/// linearization gives another one. The search therefore takes them in order of invocation
/// (see `search.rs`), and never explores the configurations that differ only in which of them
/// were taken: on small value domains, with many timeouts, there are exponentially many.
pub(crate) fn interchangeable<I, O>(history: &History, ops: &[SearchOp<I, O>]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| !ops[i as usize].is_definite())
        .collect();
    let mut same_as = vec![u32::MAX; ops.len()];
    if order.len() < 2 {
        return Vec::new();
    }
    // The search's list order: by invocation, ties by index.
    order.sort_unstable_by_key(|&i| (ops[i as usize].call, i));
    let mut last: std::collections::HashMap<(crate::history::Func, &Value, &Value), u32> =
        std::collections::HashMap::new();
    for i in order {
        let Some(op) = history.ops.get(ops[i as usize].id as usize) else {
            continue;
        };
        if let Some(prev) = last.insert((op.f, &op.arg, &op.arg2), i) {
            same_as[i as usize] = prev;
        }
    }
    same_as
}

/// Builds the counterexample from the search's deepest dead end. `start`: the state the prefix
/// starts from, and the operation (index into `history.ops`) that set it when the prefix starts
/// after a cut (streaming): it is shown as the prefix's first step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn counterexample<M: Model>(
    history: &History,
    key: &str,
    model: &mut M,
    ops: &[SearchOp<M::Input, M::Output>],
    start: (M::State, Option<usize>),
    prefix: &[u32],
    state: M::State,
    blocker: u32,
) -> Counterexample {
    let mut steps = Vec::with_capacity(prefix.len() + 1);
    let mut s = start.0;
    if let Some(op) = start.1 {
        steps.push(Step {
            op,
            state_after: model.describe_state(s),
        });
    }
    let mut in_prefix = vec![false; ops.len()];
    for &i in prefix {
        let op = &ops[i as usize];
        in_prefix[i as usize] = true;
        s = model.step(s, &op.input, &op.output).unwrap_or(s);
        steps.push(Step {
            op: op.id as usize,
            state_after: model.describe_state(s),
        });
    }
    // Candidates to go next: not linearized, invoked before the blocking operation returned.
    let limit = ops[blocker as usize].ret;
    let mut unplaceable: Vec<(u64, usize)> = ops
        .iter()
        .enumerate()
        .filter(|&(i, op)| {
            !in_prefix[i]
                && op.is_definite()
                && op.call < limit
                && model.step(state, &op.input, &op.output).is_none()
        })
        .map(|(_, op)| (op.ret, op.id as usize))
        .collect();
    let b = &ops[blocker as usize];
    let blocker_id = b.id as usize;
    let blocker_fits = model.step(state, &b.input, &b.output).is_some();
    if blocker_fits {
        // The blocking operation itself fits, but placing it would strand operations that need
        // the current value (the value-obligation pruning): those are the ones to explain.
        let current = model.state_value(state);
        unplaceable = ops
            .iter()
            .enumerate()
            .filter(|&(i, op)| {
                !in_prefix[i]
                    && op.is_definite()
                    && current.is_some()
                    && model
                        .value_effects(&op.input, &op.output)
                        .and_then(|e| e.observes)
                        == current
            })
            .map(|(_, op)| (op.ret, op.id as usize))
            .collect();
    }
    unplaceable.sort_unstable();
    let mut unplaceable: Vec<usize> = unplaceable.into_iter().map(|(_, id)| id).collect();
    if !unplaceable.contains(&blocker_id) {
        unplaceable.push(blocker_id);
    }
    let state_text = model.describe_state(state);
    let explanation = explain::explain(
        history,
        &steps,
        &state_text,
        &unplaceable,
        blocker_fits.then_some(blocker_id),
    );
    Counterexample {
        key: key.to_string(),
        prefix: steps,
        state: state_text,
        unplaceable,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portfolio_turns_follow_time_and_lead() {
        let ms = Duration::from_millis;
        // Equal progress: the one that has run less.
        assert!(eager_next([ms(1), ms(2)], [5, 5]));
        assert!(!eager_next([ms(3), ms(2)], [5, 5]));
        // The eager search is further: it may run up to LEAD times the lazy one's time.
        assert!(eager_next([ms(6), ms(2)], [4, 5]));
        assert!(!eager_next([ms(7), ms(2)], [4, 5]));
        // The lazy search is further: the eager one runs only while it has under 1/LEAD.
        assert!(eager_next([ms(2), ms(6)], [5, 4]));
        assert!(!eager_next([ms(3), ms(6)], [5, 4]));
    }
}
