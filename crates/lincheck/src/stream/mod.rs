//! Online checking with memory bounded by the concurrency window, not the history's length.
//!
//! [`StreamingChecker`] takes events in history order, as the recorder writes them
//! ([`StreamingChecker::push`] an [`Event`], or [`StreamingChecker::push_line`] a JSONL line),
//! pairs them into operations with the reader's rules and errors, and hands each completed
//! operation to its key. A key is checked each time it is *quiescent* (no operation on it is
//! open): the operations since its last quiescent point (its *window*) are checked from the set
//! of configurations carried across the last cut, and retired. `stream::key` proves the cut
//! sound, says how indefinite (`info`) operations are carried across it, and bounds what is
//! kept. So a violation is reported as soon as the window holding it closes, and memory holds
//! the open windows, the carried configurations, the indefinite operations nothing has observed
//! yet (bounded by [`CheckOptions::info_limit`]) and a few recent writes per key for
//! explanations.
//!
//! The checker is `Sync`: one thread pushes (the recorder's writer), others poll
//! [`StreamingChecker::status`], which never waits for the checking. With
//! [`CheckOptions::stream_workers`] > 0 (the default is 1) keys are checked on background
//! threads, so `push` only decodes and pairs (and blocks only when the workers fall behind by
//! many thousands of events); with 0, `push` checks before it returns, and its verdict covers
//! every event pushed. [`StreamingChecker::finish`] ends the history (operations still open
//! never completed) and returns the same [`CheckResult`] as [`crate::check()`], with the
//! counterexamples' operations in an evidence [`History`].
//!
//! [`check_file`] streams a history file the same way (`harness check`), and [`check_history`]
//! checks a history already in memory through the streaming checker.

mod key;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::builder::{input_text, Completion, Invocation};
use crate::check::FxHasher;
use crate::error::{CheckError, LineError, LineErrorKind, ModelError, ReadError};
use crate::history::{Func, History, KeyId, NemesisEvent, Operation, Outcome, Value};
use crate::import::{detect, read_file, Format};
use crate::jsonl::{apply_event, decode_line, Event, EventType, Line, Process, RawEvent};
use crate::jsonl::{RawValue, ReadLineError, Sink};
use crate::model::kv::Kv;
use crate::model::register::Register;
use crate::model::ModelKind;
use crate::result::{CheckResult, Counterexample, KeyResult, UnknownCause, Verdict};
use crate::CheckOptions;
use key::{Env, KeyState};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Events a batch for a worker holds before it is sent.
const BATCH: usize = 1024;
/// Batches queued per worker before `push` waits.
const QUEUE: usize = 64;
/// A batch is sent after this long even if not full, so the verdict stays live.
const FLUSH_AFTER: Duration = Duration::from_millis(20);
/// Nemesis events kept for the evidence.
const NEMESIS_KEPT: usize = 64;

/// The first violation found, with its evidence.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Why it is not linearizable; operation indices refer to `history`.
    pub counterexample: Counterexample,
    /// The evidence: the key's window, the indefinite operations it could use, recent writes
    /// and the nemesis events around them.
    pub history: History,
}

impl Violation {
    /// `key k: explanation`.
    pub fn summary(&self) -> String {
        format!("key {}: {}", self.key, self.counterexample.explanation)
    }
}

/// The verdict so far and counters, as [`StreamingChecker::status`] reports them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// `Linearizable`: no violation so far (and no key unknown); `NotLinearizable`: a
    /// violation is certain (see `violation`); `Unknown`: some key hit a limit.
    pub verdict: Verdict,
    /// Events pushed.
    pub events: u64,
    /// Operations completed so far.
    pub ops: u64,
    /// Operations checked and retired (behind a cut).
    pub checked_ops: u64,
    /// Operations held in memory: open windows, carried indefinite operations, context.
    pub retained_ops: u64,
    /// Of those, indefinite operations carried across cuts (available to take effect later;
    /// bounded by [`CheckOptions::info_limit`]).
    pub carried_info: u64,
    /// The first violation found.
    pub violation: Option<Arc<Violation>>,
}

impl Status {
    /// A short line for a progress display: `ok so far (N ops checked)`, `NOT LINEARIZABLE on
    /// key k`, `unknown so far (N keys hit a limit)`.
    pub fn describe(&self) -> String {
        match (&self.violation, self.verdict) {
            (Some(v), _) => format!("NOT LINEARIZABLE on key {}", v.key),
            (None, Verdict::Unknown) => {
                format!("unknown so far ({} ops checked)", self.checked_ops)
            }
            _ => format!("ok so far ({} ops checked)", self.checked_ops),
        }
    }
}

/// What a history held, counted as it streamed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Events (lines) read.
    pub events: u64,
    /// Client operations.
    pub ops: u64,
    /// Operations known to have taken effect (`ok`, or a refused cas): what
    /// [`History::effective_ops`] counts.
    pub effective: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Operations with an unknown outcome (`info` or no completion).
    pub indefinite: u64,
}

/// A finished streaming check.
#[derive(Debug)]
#[non_exhaustive]
pub struct Streamed {
    /// The result, as [`crate::check()`] returns it; counterexamples index `history`.
    pub result: CheckResult,
    /// The evidence: for each key not linearizable, the operations of its counterexample with
    /// their context (a window of the history: [`History::window`]); empty when there is none.
    pub history: History,
    /// The format read.
    pub format: Format,
    /// Counts over the whole history.
    pub counts: Counts,
    /// The line number of a torn last line that was left out (see [`crate::read_jsonl`]).
    pub torn_tail: Option<u64>,
}

/// A streaming check failed: the history is malformed, or does not fit the model.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// An event breaks the format's rules (the line is the event's ordinal, from 1).
    #[error(transparent)]
    Line(#[from] LineError),
    /// The history does not fit the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// [`StreamingChecker::finish`] was called already.
    #[error("the history was already finished")]
    Finished,
}

/// State shared by the pushing thread, the workers and the pollers.
pub(crate) struct Shared {
    pub cancel: AtomicBool,
    pub memory_used: AtomicUsize,
    /// Indefinite operations carried, all keys.
    pub info_total: AtomicUsize,
    pub checked: AtomicU64,
    pub retained: AtomicU64,
    /// Keys that hit a limit.
    pub unknown: AtomicUsize,
    events: AtomicU64,
    ops: AtomicU64,
    violation: OnceLock<Arc<Violation>>,
    error: Mutex<Option<ModelError>>,
    has_error: AtomicBool,
}

impl Shared {
    fn new() -> Self {
        Self {
            cancel: AtomicBool::new(false),
            memory_used: AtomicUsize::new(0),
            info_total: AtomicUsize::new(0),
            checked: AtomicU64::new(0),
            retained: AtomicU64::new(0),
            unknown: AtomicUsize::new(0),
            events: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            violation: OnceLock::new(),
            error: Mutex::new(None),
            has_error: AtomicBool::new(false),
        }
    }

    pub(crate) fn report_violation(&self, cex: &Counterexample, h: &History, opts: &CheckOptions) {
        let _ = self.violation.set(Arc::new(Violation {
            key: cex.key.clone(),
            counterexample: cex.clone(),
            history: h.clone(),
        }));
        if opts.stop_at_first_violation {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    fn set_error(&self, e: ModelError) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(e);
        self.has_error.store(true, Ordering::Release);
    }

    fn error(&self) -> Option<ModelError> {
        if !self.has_error.load(Ordering::Acquire) {
            return None;
        }
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn status(&self) -> Status {
        let violation = self.violation.get().cloned();
        let verdict = if violation.is_some() {
            Verdict::NotLinearizable
        } else if self.unknown.load(Ordering::Relaxed) > 0 {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        };
        Status {
            verdict,
            events: self.events.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            checked_ops: self.checked.load(Ordering::Relaxed),
            retained_ops: self.retained.load(Ordering::Relaxed),
            carried_info: self.info_total.load(Ordering::Relaxed) as u64,
            violation,
        }
    }
}

/// What goes from the pairing to the keys.
enum Msg {
    /// A new key (id, name).
    Key(KeyId, String),
    /// A completed operation; `true`: its key is quiescent after it.
    Op(Operation, bool),
    Nemesis(NemesisEvent),
    /// Answer when everything before is done.
    Sync(mpsc::Sender<()>),
}

/// The keys one thread checks (every `stride`-th key).
struct Engine {
    kind: ModelKind,
    opts: CheckOptions,
    shared: Arc<Shared>,
    keys: Vec<Option<KeyState>>,
    stride: usize,
    nemesis: VecDeque<NemesisEvent>,
    timed: bool,
}

/// A finished engine's keys.
type EngineOut = Vec<(KeyResult, Option<(Counterexample, History)>)>;

impl Engine {
    fn new(
        kind: ModelKind,
        opts: CheckOptions,
        shared: Arc<Shared>,
        stride: usize,
        timed: bool,
    ) -> Self {
        Self {
            kind,
            opts,
            shared,
            keys: Vec::new(),
            stride: stride.max(1),
            nemesis: VecDeque::new(),
            timed,
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Key(id, name) => {
                let i = id as usize / self.stride;
                if self.keys.len() <= i {
                    self.keys.resize_with(i + 1, || None);
                }
                self.keys[i] = Some(KeyState::new(name, &self.opts.initial));
            }
            Msg::Op(op, cut) => {
                let i = op.key as usize / self.stride;
                let Some(Some(key)) = self.keys.get_mut(i) else {
                    return;
                };
                let env = Env {
                    kind: &self.kind,
                    opts: &self.opts,
                    shared: &self.shared,
                    nemesis: &self.nemesis,
                    timed: self.timed,
                };
                let before = key.retained();
                if self.shared.cancel.load(Ordering::Relaxed) {
                    key.give_up(UnknownCause::Stopped, &env);
                }
                key.push(op, &env);
                if cut {
                    let r = match self.kind {
                        ModelKind::KvAppend => key.cut::<Kv>(false, &env),
                        _ => key.cut::<Register>(false, &env),
                    };
                    if let Err(e) = r {
                        self.shared.set_error(e);
                        key.give_up(UnknownCause::Stopped, &env);
                    }
                }
                let after = key.retained();
                if after >= before {
                    self.shared
                        .retained
                        .fetch_add((after - before) as u64, Ordering::Relaxed);
                } else {
                    self.shared
                        .retained
                        .fetch_sub((before - after) as u64, Ordering::Relaxed);
                }
            }
            Msg::Nemesis(n) => {
                if self.nemesis.len() >= NEMESIS_KEPT {
                    self.nemesis.pop_front();
                }
                self.nemesis.push_back(n);
            }
            Msg::Sync(tx) => {
                let _ = tx.send(());
            }
        }
    }

    /// The end of the history: checks every open window, returns every key's result.
    fn finish(mut self) -> EngineOut {
        let stopped = self.shared.cancel.load(Ordering::Relaxed);
        let env = Env {
            kind: &self.kind,
            opts: &self.opts,
            shared: &self.shared,
            nemesis: &self.nemesis,
            timed: self.timed,
        };
        let mut out = Vec::new();
        for key in self.keys.iter_mut().flatten() {
            if key.has_window() {
                if stopped {
                    key.give_up(UnknownCause::Stopped, &env);
                } else {
                    let r = match env.kind {
                        ModelKind::KvAppend => key.cut::<Kv>(true, &env),
                        _ => key.cut::<Register>(true, &env),
                    };
                    if let Err(e) = r {
                        self.shared.set_error(e);
                    }
                }
            }
            out.push((key.result(), key.cex.take()));
        }
        out
    }
}

/// Where completed operations go: an engine in this thread, or workers.
enum Out {
    Inline(Box<Engine>),
    Workers {
        tx: Vec<SyncSender<Vec<Msg>>>,
        batches: Vec<Vec<Msg>>,
        handles: Vec<JoinHandle<EngineOut>>,
        last_flush: Instant,
    },
    Done,
}

impl Out {
    fn new(kind: &ModelKind, opts: &CheckOptions, shared: &Arc<Shared>, timed: bool) -> Self {
        let n = opts.stream_workers;
        if n == 0 {
            return Out::Inline(Box::new(Engine::new(
                kind.clone(),
                opts.clone(),
                shared.clone(),
                1,
                timed,
            )));
        }
        let mut tx = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (t, rx): (SyncSender<Vec<Msg>>, Receiver<Vec<Msg>>) = mpsc::sync_channel(QUEUE);
            let mut engine = Engine::new(kind.clone(), opts.clone(), shared.clone(), n, timed);
            let h = std::thread::Builder::new()
                .name(format!("lincheck-stream-{i}"))
                .spawn(move || {
                    while let Ok(batch) = rx.recv() {
                        for m in batch {
                            engine.handle(m);
                        }
                    }
                    engine.finish()
                })
                .expect("spawning a checker thread");
            tx.push(t);
            handles.push(h);
        }
        Out::Workers {
            tx,
            batches: (0..n).map(|_| Vec::with_capacity(BATCH)).collect(),
            handles,
            last_flush: Instant::now(),
        }
    }

    fn send(&mut self, key: Option<KeyId>, msg: Msg) {
        match self {
            Out::Inline(e) => e.handle(msg),
            Out::Workers { tx, batches, .. } => {
                let n = tx.len();
                let w = key.map_or(0, |k| k as usize % n);
                batches[w].push(msg);
                if batches[w].len() >= BATCH {
                    let b = std::mem::replace(&mut batches[w], Vec::with_capacity(BATCH));
                    let _ = tx[w].send(b);
                }
            }
            Out::Done => {}
        }
    }

    /// Sends a nemesis event to every engine.
    fn broadcast_nemesis(&mut self, n: NemesisEvent) {
        match self {
            Out::Inline(e) => e.handle(Msg::Nemesis(n)),
            Out::Workers { batches, .. } => {
                for b in batches.iter_mut() {
                    b.push(Msg::Nemesis(n.clone()));
                }
            }
            Out::Done => {}
        }
    }

    /// Sends partial batches if they have waited long enough (or `force`).
    fn flush(&mut self, force: bool) {
        if let Out::Workers {
            tx,
            batches,
            last_flush,
            ..
        } = self
        {
            if !force && last_flush.elapsed() < FLUSH_AFTER {
                return;
            }
            for (w, b) in batches.iter_mut().enumerate() {
                if !b.is_empty() {
                    let b = std::mem::replace(b, Vec::with_capacity(BATCH));
                    let _ = tx[w].send(b);
                }
            }
            *last_flush = Instant::now();
        }
    }

    /// Waits until the engines have handled everything sent.
    fn sync(&mut self) {
        if let Out::Workers { tx, batches, .. } = self {
            let mut waits = Vec::new();
            for b in batches.iter_mut() {
                let (t, r) = mpsc::channel();
                b.push(Msg::Sync(t));
                waits.push(r);
            }
            for (w, b) in batches.iter_mut().enumerate() {
                let b = std::mem::replace(b, Vec::with_capacity(BATCH));
                let _ = tx[w].send(b);
            }
            for r in waits {
                let _ = r.recv();
            }
        }
    }

    fn finish(&mut self) -> EngineOut {
        self.flush(true);
        match std::mem::replace(self, Out::Done) {
            Out::Inline(e) => e.finish(),
            Out::Workers { tx, handles, .. } => {
                drop(tx);
                let mut out = Vec::new();
                for h in handles {
                    out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                out
            }
            Out::Done => Vec::new(),
        }
    }
}

/// Pairs events into operations (the reader's rules, as [`crate::builder`] applies them) and
/// sends each completed operation to its key.
struct Core {
    kind: ModelKind,
    shared: Arc<Shared>,
    out: Out,
    /// Open operations by process.
    open: FxMap<u64, Operation>,
    /// Processes that ended with an indefinite outcome, and the line.
    crashed: FxMap<u64, u64>,
    /// Key ids by name (bytes: decoded lines are UTF-8 already).
    key_ids: FxMap<KeyName, KeyId>,
    key_names: Vec<Box<str>>,
    open_per_key: Vec<u32>,
    pos: u64,
    line: u64,
    counts: Counts,
    failed: Option<StreamError>,
    start: Instant,
    since_flush: u32,
}

impl Core {
    fn new(kind: ModelKind, opts: &CheckOptions, timed: bool) -> Self {
        let shared = Arc::new(Shared::new());
        let out = Out::new(&kind, opts, &shared, timed);
        Self {
            kind,
            shared,
            out,
            open: FxMap::default(),
            crashed: FxMap::default(),
            key_ids: FxMap::default(),
            key_names: Vec::new(),
            open_per_key: Vec::new(),
            pos: 0,
            line: 0,
            counts: Counts::default(),
            failed: None,
            start: Instant::now(),
            since_flush: 0,
        }
    }

    fn key_id(&mut self, key: &[u8]) -> KeyId {
        if let Some(&id) = self.key_ids.get(key) {
            return id;
        }
        let id = self.key_names.len() as KeyId;
        let name = String::from_utf8_lossy(key).into_owned();
        self.key_names.push(name.as_str().into());
        self.key_ids.insert(KeyName::new(key), id);
        self.open_per_key.push(0);
        self.out.send(Some(id), Msg::Key(id, name));
        id
    }

    fn next_pos(&mut self) -> u64 {
        self.pos += 1;
        self.pos
    }

    /// Counts a completed operation and sends it to its key.
    fn emit(&mut self, op: Operation) {
        self.counts.ops += 1;
        match op.outcome {
            Outcome::Ok | Outcome::Refused => self.counts.effective += 1,
            Outcome::Fail => self.counts.failed += 1,
            Outcome::Info | Outcome::Pending => self.counts.indefinite += 1,
        }
        let k = op.key as usize;
        self.open_per_key[k] -= 1;
        let quiescent = self.open_per_key[k] == 0;
        self.out.send(Some(op.key), Msg::Op(op, quiescent));
    }

    /// After each event: errors from the keys, live counters, batches.
    fn after_event(&mut self) -> Result<Verdict, StreamError> {
        if let Some(e) = self.shared.error() {
            self.failed = Some(StreamError::Model(e));
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.shared
            .events
            .store(self.counts.events, Ordering::Relaxed);
        self.shared.ops.store(self.counts.ops, Ordering::Relaxed);
        self.since_flush += 1;
        if self.since_flush >= 64 {
            self.since_flush = 0;
            self.out.flush(false);
        }
        Ok(self.shared.status().verdict)
    }

    fn push_raw(&mut self, ev: RawEvent<'_>) -> Result<Verdict, StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.line += 1;
        self.counts.events += 1;
        if let Err(e) = apply_event(self, self.line, ev) {
            self.failed = Some(StreamError::Line(e));
        }
        self.after_event()
    }

    /// Feeds a history already paired into operations.
    fn feed_history(&mut self, h: &History) {
        for (id, name) in h.keys.iter().enumerate() {
            self.key_names.push(name.as_str().into());
            self.open_per_key.push(0);
            self.out
                .send(Some(id as KeyId), Msg::Key(id as KeyId, name.clone()));
        }
        // (position, kind: 0 invocation, 1 completion, 2 nemesis, index)
        let mut evs: Vec<(u64, u8, usize)> = Vec::with_capacity(h.ops.len() * 2 + h.nemesis.len());
        for (i, op) in h.ops.iter().enumerate() {
            evs.push((op.call_pos, 0, i));
            if let Some(end) = op.end_pos {
                evs.push((end, 1, i));
            }
        }
        for (i, n) in h.nemesis.iter().enumerate() {
            evs.push((n.pos, 2, i));
        }
        evs.sort_unstable();
        for (_, kind, i) in evs {
            self.counts.events += 1;
            match kind {
                0 => self.open_per_key[h.ops[i].key as usize] += 1,
                1 => self.emit(h.ops[i].clone()),
                _ => self.out.broadcast_nemesis(h.nemesis[i].clone()),
            }
        }
        for op in h.ops.iter().filter(|o| o.end_pos.is_none()) {
            self.emit(op.clone());
        }
        self.pos = u64::MAX;
    }

    fn finish(&mut self) -> Result<(CheckResult, History), StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Operations still open never completed: indefinite, at +infinity.
        let mut open: Vec<Operation> = self.open.drain().map(|(_, op)| op).collect();
        open.sort_unstable_by_key(|o| o.call_pos);
        for op in open {
            self.emit(op);
        }
        let mut results = self.out.finish();
        if let Some(e) = self.shared.error() {
            self.failed = Some(StreamError::Model(e.clone()));
            return Err(StreamError::Model(e));
        }
        self.failed = Some(StreamError::Finished);
        results.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        let verdict = if results
            .iter()
            .any(|r| r.0.verdict == Verdict::NotLinearizable)
        {
            Verdict::NotLinearizable
        } else if results.iter().any(|r| r.0.verdict == Verdict::Unknown) {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        };
        let mut evidence = History {
            timed: true,
            window: true,
            ..History::default()
        };
        let mut keys = Vec::with_capacity(results.len());
        let mut cexs = Vec::new();
        for (kr, cex) in results {
            keys.push(kr);
            if let Some((c, h)) = cex {
                cexs.push(merge_evidence(&mut evidence, c, h));
            }
        }
        sort_evidence(&mut evidence, &mut cexs);
        let result = CheckResult {
            verdict,
            model: self.kind.name().to_string(),
            ops: self.counts.ops as usize,
            elapsed: self.start.elapsed(),
            keys,
            counterexamples: cexs,
        };
        self.shared
            .events
            .store(self.counts.events, Ordering::Relaxed);
        self.shared.ops.store(self.counts.ops, Ordering::Relaxed);
        Ok((result, evidence))
    }
}

/// Appends one key's evidence to the merged history; returns the counterexample with indices
/// into it.
fn merge_evidence(into: &mut History, mut c: Counterexample, h: History) -> Counterexample {
    let offset = into.ops.len();
    let key = into.keys.len() as KeyId;
    into.keys.extend(h.keys);
    into.timed = h.timed;
    into.retired |= h.retired;
    into.ops.extend(h.ops.into_iter().map(|mut o| {
        o.key = key;
        o
    }));
    for n in h.nemesis {
        if !into.nemesis.iter().any(|m| m.pos == n.pos) {
            into.nemesis.push(n);
        }
    }
    for s in &mut c.prefix {
        s.op += offset;
    }
    for u in &mut c.unplaceable {
        *u += offset;
    }
    c
}

/// Puts the evidence's operations and nemesis events in position order, remapping the
/// counterexamples.
fn sort_evidence(h: &mut History, cexs: &mut [Counterexample]) {
    let mut order: Vec<usize> = (0..h.ops.len()).collect();
    order.sort_by_key(|&i| (h.ops[i].call_pos, h.ops[i].key));
    let mut new_index = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut ops: Vec<Option<Operation>> =
        std::mem::take(&mut h.ops).into_iter().map(Some).collect();
    h.ops = order.iter().filter_map(|&i| ops[i].take()).collect();
    for c in cexs {
        for s in &mut c.prefix {
            s.op = new_index[s.op];
        }
        for u in &mut c.unplaceable {
            *u = new_index[*u];
        }
    }
    h.nemesis.sort_by_key(|n| n.pos);
}

/// A key's name, as bytes of a line (UTF-8, checked when the line was decoded).
type KeyArg<'a> = &'a [u8];

/// A key's name in the pairing's map: short names inline, so a lookup compares bytes in the
/// map itself.
#[derive(Clone, PartialEq, Eq)]
enum KeyName {
    Inline(u8, [u8; 30]),
    Heap(Box<[u8]>),
}

impl KeyName {
    fn new(b: &[u8]) -> Self {
        if b.len() <= 30 {
            let mut a = [0u8; 30];
            a[..b.len()].copy_from_slice(b);
            KeyName::Inline(b.len() as u8, a)
        } else {
            KeyName::Heap(b.into())
        }
    }
}

impl std::borrow::Borrow<[u8]> for KeyName {
    fn borrow(&self) -> &[u8] {
        match self {
            KeyName::Inline(n, a) => &a[..*n as usize],
            KeyName::Heap(b) => b,
        }
    }
}

impl std::hash::Hash for KeyName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::borrow::Borrow::<[u8]>::borrow(self).hash(h)
    }
}

/// A value as a decoding thread holds it: no allocation, strings as byte ranges of its chunk
/// (so that every [`Value`] is allocated, and freed, by the checking thread).
#[derive(Debug)]
enum Scalar {
    Nil,
    Int(i64),
    /// (start, length) in the chunk; UTF-8 (the line was checked).
    Range(u32, u32),
    /// A string that is not a slice of the chunk (it had escapes).
    Owned(Box<str>),
}

impl Scalar {
    fn bytes<'a>(&'a self, data: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Scalar::Range(s, l) => data.get(*s as usize..(*s + *l) as usize),
            Scalar::Owned(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    fn to_value(&self, data: &[u8]) -> Value {
        match self {
            Scalar::Nil => Value::Nil,
            Scalar::Int(i) => Value::Int(*i),
            s => Value::Str(String::from_utf8_lossy(s.bytes(data).unwrap_or_default()).into()),
        }
    }

    fn eq_value(&self, v: &Value, data: &[u8]) -> bool {
        match (self, v) {
            (Scalar::Nil, Value::Nil) => true,
            (Scalar::Int(a), Value::Int(b)) => a == b,
            (s, Value::Str(b)) => s.bytes(data) == Some(b.as_bytes()),
            _ => false,
        }
    }
}

/// The input an `ok` completion repeats.
enum Echo<'a> {
    Values(Value, Value),
    Raw(&'a Scalar, &'a Scalar, &'a [u8]),
}

impl Echo<'_> {
    /// The repeated input, if it is not (arg, arg2).
    fn differs(self, arg: &Value, arg2: &Value) -> Option<(Value, Value)> {
        match self {
            Echo::Values(a, b) => ((&a, &b) != (arg, arg2)).then_some((a, b)),
            Echo::Raw(a, b, data) => (!a.eq_value(arg, data) || !b.eq_value(arg2, data))
                .then(|| (a.to_value(data), b.to_value(data))),
        }
    }
}

impl Core {
    /// An invocation (the pairing rules of [`crate::builder`]).
    #[allow(clippy::too_many_arguments)]
    fn invoke_at(
        &mut self,
        line: u64,
        time: Option<u64>,
        process: u64,
        f: Func,
        key: KeyArg<'_>,
        arg: Value,
        arg2: Value,
    ) -> Result<(), LineError> {
        let err = |kind| LineError { line, kind };
        if let Some(op) = self.open.get(&process) {
            return Err(err(LineErrorKind::AlreadyOpen {
                process,
                open_line: op.call_line,
            }));
        }
        if let Some(&info_line) = self.crashed.get(&process) {
            return Err(err(LineErrorKind::InvokeAfterInfo { process, info_line }));
        }
        let pos = self.next_pos();
        let key = self.key_id(key);
        self.open_per_key[key as usize] += 1;
        self.open.insert(
            process,
            Operation {
                process,
                key,
                f,
                arg,
                arg2,
                output: Value::Nil,
                outcome: Outcome::Pending,
                call_pos: pos,
                ret_pos: u64::MAX,
                end_pos: None,
                call_time: time.unwrap_or(pos),
                ret_time: None,
                call_line: line,
                ret_line: None,
                error: None,
            },
        );
        Ok(())
    }

    /// A completion (the pairing rules of [`crate::builder`]).
    #[allow(clippy::too_many_arguments)]
    fn complete_at(
        &mut self,
        line: u64,
        time: Option<u64>,
        process: u64,
        outcome: Outcome,
        f: Option<Func>,
        key: Option<KeyArg<'_>>,
        output: Value,
        echo: Option<Echo<'_>>,
        error: Option<Box<str>>,
    ) -> Result<(), LineError> {
        let err = |kind| LineError { line, kind };
        // Taken out now: an error ends the check, so the map need not be left as it was.
        let Some(mut op) = self.open.remove(&process) else {
            return Err(err(LineErrorKind::CompletionWithoutInvocation {
                process,
                kind: outcome.name(),
            }));
        };
        let pos = self.pos + 1;
        if let Some(f) = f {
            if f != op.f {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "f",
                    invoked: op.f.name().to_string(),
                    completed: f.name().to_string(),
                    invoke_line: op.call_line,
                }));
            }
        }
        if let Some(key) = key {
            let invoked = &*self.key_names[op.key as usize];
            let completed =
                (key != invoked.as_bytes()).then(|| String::from_utf8_lossy(key).into_owned());
            if let Some(completed) = completed {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "key",
                    invoked: invoked.to_string(),
                    completed,
                    invoke_line: op.call_line,
                }));
            }
        }
        if let (Outcome::Ok, Some(echo)) = (outcome, echo) {
            if let Some((a, b)) = echo.differs(&op.arg, &op.arg2) {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "value",
                    invoked: input_text(op.f, &op.arg, &op.arg2),
                    completed: input_text(op.f, &a, &b),
                    invoke_line: op.call_line,
                }));
            }
        }
        self.pos = pos;
        op.outcome = outcome;
        op.ret_time = Some(time.unwrap_or(pos));
        op.ret_line = Some(line);
        op.end_pos = Some(pos);
        op.error = error;
        if outcome.is_indefinite() {
            self.crashed.insert(process, line);
        } else {
            op.ret_pos = pos;
            if op.f == Func::Read && outcome == Outcome::Ok {
                op.output = output;
            }
        }
        self.emit(op);
        Ok(())
    }

    fn nemesis_at(&mut self, time: Option<u64>, f: String, kind: String, value: serde_json::Value) {
        let pos = self.next_pos();
        self.out.broadcast_nemesis(NemesisEvent {
            time: time.unwrap_or(pos),
            pos,
            f,
            kind,
            value,
        });
    }

    /// Applies one decoded event (the file pipeline); `data`: the chunk it was read from.
    fn apply(&mut self, d: Decoded, data: &[u8]) -> Result<(), LineError> {
        let key_at = |(start, len): (u32, u32)| &data[start as usize..(start + len) as usize];
        match d {
            Decoded::Invoke {
                line,
                time,
                process,
                f,
                key,
                arg,
                arg2,
            } => self.invoke_at(
                line,
                time,
                process,
                f,
                key_at(key),
                arg.to_value(data),
                arg2.to_value(data),
            ),
            Decoded::Complete {
                line,
                time,
                process,
                outcome,
                f,
                key,
                output,
                echo,
                error,
            } => {
                let key = key.map(key_at);
                let output = output.to_value(data);
                let echo = echo.as_ref().map(|(a, b)| Echo::Raw(a, b, data));
                self.complete_at(line, time, process, outcome, f, key, output, echo, error)
            }
            Decoded::Nemesis {
                time,
                f,
                kind,
                value,
            } => {
                self.nemesis_at(time, f, kind, value);
                Ok(())
            }
        }
    }
}

impl Sink for Core {
    type Val = Value;

    fn val(&mut self, raw: &RawValue<'_>) -> Value {
        raw.to_value()
    }

    fn invoke(&mut self, ev: Invocation<'_>) -> Result<(), LineError> {
        self.invoke_at(
            ev.line,
            ev.time,
            ev.process,
            ev.f,
            ev.key.as_bytes(),
            ev.arg,
            ev.arg2,
        )
    }

    fn complete(&mut self, ev: Completion<'_>) -> Result<(), LineError> {
        self.complete_at(
            ev.line,
            ev.time,
            ev.process,
            ev.outcome,
            ev.f,
            ev.key.map(str::as_bytes),
            ev.output,
            ev.echo.map(|(a, b)| Echo::Values(a, b)),
            ev.error.map(Into::into),
        )
    }

    fn nemesis(&mut self, time: Option<u64>, f: &str, kind: &str, value: serde_json::Value) {
        self.nemesis_at(time, f.to_string(), kind.to_string(), value);
    }
}

/// An event decoded and checked on its own by a decoding thread of [`check_jsonl`]; the
/// pairing rules are applied by the checking thread, in order. Keys are byte ranges of the
/// chunk the event was read from.
enum Decoded {
    Invoke {
        line: u64,
        time: Option<u64>,
        process: u64,
        f: Func,
        key: (u32, u32),
        arg: Scalar,
        arg2: Scalar,
    },
    Complete {
        line: u64,
        time: Option<u64>,
        process: u64,
        outcome: Outcome,
        f: Option<Func>,
        key: Option<(u32, u32)>,
        output: Scalar,
        echo: Option<(Scalar, Scalar)>,
        error: Option<Box<str>>,
    },
    Nemesis {
        time: Option<u64>,
        f: String,
        kind: String,
        value: serde_json::Value,
    },
}

/// A decoding thread's side of [`Sink`]: records events, keys and strings as ranges of the
/// chunk.
struct Decoder {
    /// Address of the chunk's first byte, and its length.
    base: usize,
    len: usize,
    out: Vec<Decoded>,
}

impl Decoder {
    fn range(&self, key: &str) -> (u32, u32) {
        ((key.as_ptr() as usize - self.base) as u32, key.len() as u32)
    }
}

impl Sink for Decoder {
    type Val = Scalar;

    fn val(&mut self, raw: &RawValue<'_>) -> Scalar {
        match raw {
            RawValue::Int(i) => Scalar::Int(*i),
            RawValue::Str(s) => {
                let at = s.as_ptr() as usize;
                if at >= self.base && at + s.len() <= self.base + self.len {
                    Scalar::Range((at - self.base) as u32, s.len() as u32)
                } else {
                    Scalar::Owned((**s).into())
                }
            }
            _ => Scalar::Nil,
        }
    }

    fn invoke(&mut self, ev: Invocation<'_, Scalar>) -> Result<(), LineError> {
        let key = self.range(ev.key);
        self.out.push(Decoded::Invoke {
            line: ev.line,
            time: ev.time,
            process: ev.process,
            f: ev.f,
            key,
            arg: ev.arg,
            arg2: ev.arg2,
        });
        Ok(())
    }

    fn complete(&mut self, ev: Completion<'_, Scalar>) -> Result<(), LineError> {
        let key = ev.key.map(|k| self.range(k));
        self.out.push(Decoded::Complete {
            line: ev.line,
            time: ev.time,
            process: ev.process,
            outcome: ev.outcome,
            f: ev.f,
            key,
            output: ev.output,
            echo: ev.echo,
            error: ev.error.map(Into::into),
        });
        Ok(())
    }

    fn nemesis(&mut self, time: Option<u64>, f: &str, kind: &str, value: serde_json::Value) {
        self.out.push(Decoded::Nemesis {
            time,
            f: f.to_string(),
            kind: kind.to_string(),
            value,
        });
    }
}

/// Raw lines for a decoding thread.
struct Chunk {
    data: Vec<u8>,
    /// An empty vector to decode into (recycled).
    out: Vec<Decoded>,
    /// Line number of its first line.
    first_line: u64,
    /// The input ends with it (its last line may lack a newline: a torn tail).
    last: bool,
    /// Reading failed after it.
    error: Option<std::io::Error>,
}

/// A chunk decoded; the last one says how the input ended.
struct DecodedChunk {
    data: Vec<u8>,
    events: Vec<Decoded>,
    /// Lines read up to the end of the chunk.
    lines: u64,
    /// `Some` on the last chunk: the torn last line left out, or the first error.
    end: Option<Result<Option<u64>, ReadLineError>>,
}

/// Checks a history as it is written: push events in history order, poll the verdict, finish.
///
/// ```
/// use lincheck::stream::StreamingChecker;
/// use lincheck::{CheckOptions, ModelKind, Verdict};
///
/// let checker = StreamingChecker::new(ModelKind::Register, &CheckOptions::default());
/// for line in [
///     r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}"#,
///     r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"k","value":"a"}"#,
///     r#"{"index":2,"time":3,"process":2,"type":"invoke","f":"read","key":"k","value":null}"#,
///     r#"{"index":3,"time":4,"process":2,"type":"ok","f":"read","key":"k","value":"b"}"#,
/// ] {
///     checker.push_line(line).unwrap();
/// }
/// checker.sync();
/// assert_eq!(checker.status().verdict, Verdict::NotLinearizable);
/// let done = checker.finish().unwrap();
/// assert_eq!(done.result.verdict, Verdict::NotLinearizable);
/// println!("{}", done.result.summary());
/// ```
pub struct StreamingChecker {
    core: Mutex<Core>,
    shared: Arc<Shared>,
}

impl StreamingChecker {
    /// A checker for events with timestamps (the history format's `time`), checking against
    /// `model` with `opts` (its `model` field is not used).
    pub fn new(model: ModelKind, opts: &CheckOptions) -> Self {
        Self::with_core(Core::new(model, opts, true))
    }

    fn with_core(core: Core) -> Self {
        let shared = core.shared.clone();
        Self {
            core: Mutex::new(core),
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes one event (the next in history order); returns the verdict so far. Errors name
    /// the event's ordinal (from 1) as the line, as in a history file; after an error every
    /// call returns it.
    pub fn push(&self, ev: &Event) -> Result<Verdict, StreamError> {
        let raw = raw_event(ev);
        self.lock().push_raw(raw)
    }

    /// Pushes one line of the history format (with or without its newline).
    pub fn push_line(&self, line: &str) -> Result<Verdict, StreamError> {
        let mut core = self.lock();
        if let Some(e) = &core.failed {
            return Err(e.clone());
        }
        let n = core.line + 1;
        match decode_line(line.as_bytes(), n, true) {
            Ok(Line::Event(ev)) => core.push_raw(ev),
            Ok(_) => {
                core.line += 1;
                core.counts.events += 1;
                core.after_event()
            }
            Err(ReadLineError::Line(e)) => {
                core.line += 1;
                core.failed = Some(StreamError::Line(e));
                core.after_event()
            }
            Err(ReadLineError::Io(..)) => core.after_event(),
        }
    }

    /// The verdict so far and counters; never waits for the checking.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// The verdict so far.
    pub fn verdict_so_far(&self) -> Verdict {
        self.shared.status().verdict
    }

    /// Hands everything pushed so far to the checking threads without waiting for it to be
    /// checked. Pushes are batched, and a batch otherwise leaves only with a later push: a
    /// producer that goes idle (a recorder whose queue ran empty) calls this so the verdict
    /// does not wait for its next event.
    pub fn flush(&self) {
        self.lock().out.flush(true);
    }

    /// Waits until everything pushed so far is checked (as far as the keys' windows allow):
    /// afterwards [`Self::status`] covers it.
    pub fn sync(&self) {
        let mut core = self.lock();
        core.out.sync();
    }

    /// Ends the history and returns the result. Operations still open never completed
    /// (indefinite). Later pushes return [`StreamError::Finished`].
    pub fn finish(&self) -> Result<Streamed, StreamError> {
        let mut core = self.lock();
        let (result, history) = core.finish()?;
        Ok(Streamed {
            result,
            history,
            format: Format::Jsonl,
            counts: core.counts,
            torn_tail: None,
        })
    }
}

impl Drop for StreamingChecker {
    fn drop(&mut self) {
        // Stop the workers.
        let core = self.core.get_mut().unwrap_or_else(|p| p.into_inner());
        if !matches!(core.out, Out::Done) {
            core.shared.cancel.store(true, Ordering::Relaxed);
            let _ = core.out.finish();
        }
    }
}

/// An [`Event`] as the reader sees the line it would be written as.
fn raw_event(ev: &Event) -> RawEvent<'_> {
    let process = match &ev.process {
        Process::Client(p) => match i64::try_from(*p) {
            Ok(p) => RawValue::Int(p),
            Err(_) => RawValue::Other(serde_json::Value::from(*p)),
        },
        Process::Named(n) => RawValue::Str(Cow::Borrowed(n)),
    };
    let kind = match ev.kind {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    };
    RawEvent {
        index: Some(ev.index),
        time: Some(ev.time),
        process: Some(process),
        kind: Some(Cow::Borrowed(kind)),
        f: Some(Cow::Borrowed(&ev.f)),
        key: ev.key.as_deref().map(Cow::Borrowed),
        value: match &ev.value {
            serde_json::Value::Null => None,
            v => Some(raw_value(v)),
        },
        error: ev.error.as_deref().map(Cow::Borrowed),
    }
}

fn raw_value(v: &serde_json::Value) -> RawValue<'_> {
    match v {
        serde_json::Value::Null => RawValue::Null,
        serde_json::Value::String(s) => RawValue::Str(Cow::Borrowed(s)),
        serde_json::Value::Number(n) if n.as_i64().is_some() => {
            RawValue::Int(n.as_i64().unwrap_or_default())
        }
        serde_json::Value::Array(a) => RawValue::List(a.iter().map(raw_value).collect()),
        other => RawValue::Other(other.clone()),
    }
}

/// Checks a history in memory through the streaming checker (the same verdicts as
/// [`crate::check()`]; used to test one against the other, and for formats read whole).
pub fn check_history(history: &History, opts: &CheckOptions) -> Result<Streamed, ModelError> {
    let mut core = Core::new(opts.model_kind(), opts, history.timed);
    core.feed_history(history);
    let (result, evidence) = core.finish().map_err(|e| match e {
        StreamError::Model(m) => m,
        // A history in memory has no malformed events.
        other => unreachable!("{other}"),
    })?;
    Ok(Streamed {
        result,
        history: evidence,
        format: Format::Jsonl,
        counts: core.counts,
        torn_tail: history.torn_tail,
    })
}

/// Checks a JSONL history from a reader, streaming: memory does not grow with its length.
///
/// A thread reads the input in chunks of lines, one thread per core decodes them, and the
/// calling thread pairs the events into operations, in order, and checks the keys.
pub fn check_jsonl<R: Read + Send>(
    reader: R,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Streamed, StreamFileError> {
    let mut core = Core::new(model, &opts.clone().stream_workers(0), true);
    // Decoding is about half the work: one decoding thread per core but the checking one.
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(2, 9) - 1);
    let (end, torn_tail) = std::thread::scope(|s| {
        let mut to_dec = Vec::with_capacity(decoders);
        let mut from_dec = Vec::with_capacity(decoders);
        for i in 0..decoders {
            let (tx, rx) = mpsc::sync_channel::<Chunk>(2);
            let (dtx, drx) = mpsc::sync_channel::<DecodedChunk>(2);
            let spawned = std::thread::Builder::new()
                .name(format!("lincheck-decode-{i}"))
                .spawn_scoped(s, move || {
                    for chunk in rx {
                        if dtx.send(decode_chunk(chunk)).is_err() {
                            return;
                        }
                    }
                });
            if let Err(e) = spawned {
                return (Err(StreamFileError::Io(0, e)), None);
            }
            to_dec.push(tx);
            from_dec.push(drx);
        }
        // Buffers go back to the reader, to be filled again.
        let (recycle, recycled) = mpsc::sync_channel::<(Vec<u8>, Vec<Decoded>)>(2 * decoders + 2);
        let spawned = std::thread::Builder::new()
            .name("lincheck-read".into())
            .spawn_scoped(s, move || read_chunks(reader, to_dec, recycled));
        if let Err(e) = spawned {
            return (Err(StreamFileError::Io(0, e)), None);
        }
        let mut n = 0;
        loop {
            // Chunks go to the decoders in turn, so taking results in turn keeps line order.
            let Ok(chunk) = from_dec[n % decoders].recv() else {
                return (Ok(()), None);
            };
            n += 1;
            let DecodedChunk {
                mut data,
                mut events,
                lines,
                end,
            } = chunk;
            for d in events.drain(..) {
                if let Err(e) = core.apply(d, &data) {
                    // Dropping the receivers stops the other threads.
                    return (Err(StreamFileError::Line(e)), None);
                }
            }
            data.clear();
            let _ = recycle.try_send((data, events));
            let chunk = DecodedChunk {
                data: Vec::new(),
                events: Vec::new(),
                lines,
                end,
            };
            core.counts.events = chunk.lines;
            core.line = chunk.lines;
            if let Some(e) = core.shared.error() {
                return (Err(StreamFileError::Model(e)), None);
            }
            if let Some(end) = chunk.end {
                return match end {
                    Ok(torn) => (Ok(()), torn),
                    Err(ReadLineError::Line(e)) => (Err(StreamFileError::Line(e)), None),
                    Err(ReadLineError::Io(l, e)) => (Err(StreamFileError::Io(l, e)), None),
                };
            }
            core.after_event().ok();
        }
    });
    end?;
    let (result, history) = core.finish()?;
    Ok(Streamed {
        result,
        history,
        format: Format::Jsonl,
        counts: core.counts,
        torn_tail,
    })
}

/// Bytes of input per chunk.
const CHUNK: usize = 1 << 20;

/// The reading thread: cuts the input into chunks of whole lines, hands them to the decoders
/// in turn.
fn read_chunks<R: Read>(
    mut reader: R,
    to: Vec<SyncSender<Chunk>>,
    recycled: Receiver<(Vec<u8>, Vec<Decoded>)>,
) {
    let mut carry: Vec<u8> = Vec::new();
    let mut line = 0u64;
    let mut n = 0usize;
    loop {
        let (mut data, out) = recycled
            .try_recv()
            .unwrap_or_else(|_| (Vec::with_capacity(CHUNK), Vec::new()));
        data.reserve(carry.len());
        data.append(&mut carry);
        let mut error = None;
        let mut eof = false;
        while data.len() < CHUNK {
            let len = data.len();
            data.resize(len.max(CHUNK), 0);
            match reader.read(&mut data[len..]) {
                Ok(0) => {
                    data.truncate(len);
                    eof = true;
                    break;
                }
                Ok(k) => data.truncate(len + k),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => data.truncate(len),
                Err(e) => {
                    data.truncate(len);
                    error = Some(e);
                    eof = true;
                    break;
                }
            }
        }
        if !eof {
            match memchr::memrchr(b'\n', &data) {
                Some(p) => carry.extend_from_slice(&data[p + 1..]),
                None => {
                    carry = data; // a line longer than a chunk: read on
                    continue;
                }
            }
            let keep = data.len() - carry.len();
            data.truncate(keep);
        }
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64
            + u64::from(eof && !data.is_empty() && !data.ends_with(b"\n"));
        let chunk = Chunk {
            data,
            out,
            first_line: line + 1,
            last: eof,
            error,
        };
        line += lines;
        if to[n % to.len()].send(chunk).is_err() || eof {
            return;
        }
        n += 1;
    }
}

/// A decoding thread's work: one chunk's lines, until its end or its first bad line.
fn decode_chunk(chunk: Chunk) -> DecodedChunk {
    let Chunk {
        data,
        mut out,
        first_line,
        last,
        error,
    } = chunk;
    out.reserve(data.len() / 80);
    let mut dec = Decoder {
        base: data.as_ptr() as usize,
        len: data.len(),
        out,
    };
    let mut line = first_line - 1;
    let mut start = 0;
    let mut end = None;
    while start < data.len() {
        let (stop, complete) = match memchr::memchr(b'\n', &data[start..]) {
            Some(p) => (start + p + 1, true),
            None => (data.len(), false),
        };
        line += 1;
        let r = match decode_line(&data[start..stop], line, complete || !last) {
            Ok(Line::Event(ev)) => apply_event(&mut dec, line, ev).map_err(ReadLineError::Line),
            Ok(Line::Blank) => Ok(()),
            Ok(Line::Torn) => {
                line -= 1;
                end = Some(Ok(Some(line + 1)));
                break;
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            end = Some(Err(e));
            break;
        }
        start = stop;
    }
    if end.is_none() {
        if let Some(e) = error {
            end = Some(Err(ReadLineError::Io(line + 1, e)));
        } else if last {
            end = Some(Ok(None));
        }
    }
    DecodedChunk {
        data,
        events: dec.out,
        lines: line,
        end,
    }
}

/// Why [`check_jsonl`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamFileError {
    /// Reading failed at a line.
    #[error("line {0}: {1}")]
    Io(u64, std::io::Error),
    /// A line is malformed.
    #[error(transparent)]
    Line(LineError),
    /// The history does not fit the model.
    #[error(transparent)]
    Model(ModelError),
}

impl From<StreamError> for StreamFileError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Line(l) => StreamFileError::Line(l),
            StreamError::Model(m) => StreamFileError::Model(m),
            StreamError::Finished => unreachable!("a file is finished once"),
        }
    }
}

/// Checks a history file, streaming JSONL (memory bounded by the concurrency window); other
/// formats are read whole by their importers and then checked the same way. With
/// `opts.model == None` the format's default model is used.
pub fn check_file(
    path: &Path,
    format: Format,
    opts: &CheckOptions,
) -> Result<Streamed, CheckError> {
    let io = |error| ReadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let format = match format {
        Format::Auto => {
            let mut head = Vec::with_capacity(64 * 1024);
            File::open(path)
                .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
                .map_err(io)?;
            detect(&String::from_utf8_lossy(&head)).ok_or_else(|| ReadError::UnknownFormat {
                path: path.to_path_buf(),
            })?
        }
        f => f,
    };
    let mut opts = opts.clone();
    let model = opts.model.clone().unwrap_or_else(|| format.default_model());
    opts.model = Some(model.clone());
    if format != Format::Jsonl {
        let (history, format) = read_file(path, format)?;
        let mut s = check_history(&history, &opts)?;
        s.format = format;
        return Ok(s);
    }
    let file = File::open(path).map_err(io)?;
    check_jsonl(file, model, &opts).map_err(|e| match e {
        StreamFileError::Io(_, error) => CheckError::Read(ReadError::Io {
            path: path.to_path_buf(),
            error,
        }),
        StreamFileError::Line(error) => CheckError::Read(ReadError::Line {
            path: path.to_path_buf(),
            error,
        }),
        StreamFileError::Model(m) => CheckError::Model(m),
    })
}
