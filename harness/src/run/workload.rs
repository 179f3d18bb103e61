//! Client workers: concurrent read/write/cas over a few keys, recorded as they go.
//!
//! Each worker has a home node (worker w: node w mod n) and, in the default `bound` mode, sends
//! every operation there first; a `not_leader` hint is followed for that operation only (at most
//! three hops, inside the op timeout: the earlier hops surely did nothing), and the next
//! operation starts at home again. So every node, on every side of every partition, keeps
//! receiving traffic, as in Jepsen, and an isolated old leader that answers from stale state is
//! seen. In `leader` mode a worker stays on the node that last answered (more throughput, blind to
//! that class of bug).
//!
//! Workers reach the nodes through proxy listeners of their own (`c<w> -> n<i>`), so the nemesis
//! can cut clients off too. A fresh connection first asks `status` and checks the node's id and
//! cluster id: the connection is refused if another process answers there.
//!
//! Outcomes (docs/protocol.md): an answer `ok` is `ok`; a definite error (`not_leader`,
//! `cas_mismatch`, `bad_request`, `dropped`, `overwritten`) is `fail`; a connection that could not
//! be opened or checked is `fail` (the request was never sent); a timeout, a broken connection
//! after sending, a garbled answer or any other error is `info`, after which the worker continues
//! under a new process number (process + clients), as in Jepsen.
//!
//! A cas's expected value is the latest value any worker saw for the key (written, read, or
//! reported by a `cas_mismatch`), so cas succeeds often enough to matter.

use super::args::ClientMode;
use super::client::{self, Answer, CallError, Conn};
use super::recorder::{Event, EventType, Process, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors after which the operation surely did not take effect (docs/protocol.md).
const DEFINITE_ERRORS: [&str; 5] = [
    "not_leader",
    "cas_mismatch",
    "bad_request",
    "dropped",
    "overwritten",
];
/// How many `not_leader` hints one operation follows.
const MAX_HOPS: usize = 3;

/// Live counters, read by the progress line and the summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// ok / fail / info per function (read, write, cas).
    by_f: [[AtomicU64; 3]; 3],
}

/// The functions, in [`Stats`] order.
pub const FUNCTIONS: [&str; 3] = ["read", "write", "cas"];

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }

    fn count(&self, op: &Op, outcome: &Outcome) {
        let f = match op {
            Op::Read { .. } => 0,
            Op::Write { .. } => 1,
            Op::Cas { .. } => 2,
        };
        let (total, o) = match outcome {
            Outcome::Ok(_) => (&self.ok, 0),
            Outcome::Fail(_) => (&self.fail, 1),
            Outcome::Info(_) => (&self.info, 2),
        };
        total.fetch_add(1, Ordering::Relaxed);
        self.by_f[f][o].fetch_add(1, Ordering::Relaxed);
    }

    /// ok / fail / info per function, in [`FUNCTIONS`] order.
    pub fn by_function(&self) -> [[u64; 3]; 3] {
        let mut out = [[0; 3]; 3];
        for (f, row) in self.by_f.iter().enumerate() {
            for (o, c) in row.iter().enumerate() {
                out[f][o] = c.load(Ordering::Relaxed);
            }
        }
        out
    }
}

/// An operation, as invoked.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl Op {
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => key,
        }
    }

    /// The history `value` of the invocation.
    pub fn value(&self) -> Value {
        match self {
            Op::Read { .. } => Value::Null,
            Op::Write { value, .. } => json!(value),
            Op::Cas { from, to, .. } => json!([from, to]),
        }
    }

    fn request(&self, client: &str, seq: u64) -> Value {
        let mut r = match self {
            Op::Read { key } => json!({"op": "read", "key": key}),
            Op::Write { key, value } => json!({"op": "write", "key": key, "value": value}),
            Op::Cas { key, from, to } => json!({"op": "cas", "key": key, "from": from, "to": to}),
        };
        if !matches!(self, Op::Read { .. }) {
            r["client"] = json!(client);
            r["seq"] = json!(seq);
        }
        r
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; for a read, the value read.
    Ok(Value),
    /// Definitely not done.
    Fail(String),
    /// May or may not have been done.
    Info(String),
}

/// Sends one worker's operations to the cluster; keeps one connection per node.
pub struct Executor {
    /// Where this worker dials each node (its proxy listeners).
    addrs: Vec<SocketAddr>,
    /// Each node's id, and the cluster id, checked on connect.
    ids: Vec<String>,
    cluster: String,
    /// Each node's real client address, as nodes name it in `not_leader` hints.
    hint_addrs: Vec<SocketAddr>,
    mode: ClientMode,
    home: usize,
    /// The node to try first in `leader` mode.
    current: usize,
    conns: Vec<Option<Conn>>,
    op_timeout: Duration,
}

/// Where the nodes are, for an [`Executor`].
#[derive(Debug, Clone)]
pub struct Nodes {
    pub ids: Vec<String>,
    pub cluster: String,
    /// Real client addresses (what `not_leader` hints name).
    pub hint_addrs: Vec<SocketAddr>,
}

impl Executor {
    pub fn new(
        nodes: &Nodes,
        addrs: Vec<SocketAddr>,
        home: usize,
        mode: ClientMode,
        op_timeout: Duration,
    ) -> Executor {
        let n = addrs.len().max(1);
        Executor {
            conns: (0..addrs.len()).map(|_| None).collect(),
            addrs,
            ids: nodes.ids.clone(),
            cluster: nodes.cluster.clone(),
            hint_addrs: nodes.hint_addrs.clone(),
            mode,
            home: home % n,
            current: home % n,
            op_timeout,
        }
    }

    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.addrs.len().max(1);
    }

    fn id(&self, i: usize) -> String {
        self.ids.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
    }

    /// The live connection to node `i`, opening and checking one if needed.
    fn conn(&mut self, i: usize, deadline: Instant) -> Result<&mut Conn, String> {
        if self.conns[i].as_ref().is_some_and(Conn::is_closed) {
            self.conns[i] = None;
        }
        if self.conns[i].is_none() {
            let d = deadline.min(Instant::now() + Duration::from_millis(500));
            let c = client::connect_checked(self.addrs[i], &self.id(i), &self.cluster, d)
                .map_err(|e| format!("connect {}: {e}", self.id(i)))?;
            self.conns[i] = Some(c);
        }
        self.conns[i]
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Runs one operation to its outcome. Also returns a value seen by a `cas_mismatch` and the
    /// node that answered (or was tried last).
    pub fn execute(&mut self, op: &Op, client: &str, seq: u64) -> (Outcome, Option<Value>, usize) {
        let deadline = Instant::now() + self.op_timeout;
        let request = op.request(client, seq);
        let mut node = match self.mode {
            ClientMode::Bound => self.home,
            ClientMode::Leader => self.current,
        };
        for hop in 0..=MAX_HOPS {
            let answer = match self.conn(node, deadline) {
                Err(msg) => {
                    if self.mode == ClientMode::Leader {
                        self.rotate();
                    }
                    return (Outcome::Fail(msg), None, node);
                }
                Ok(conn) => conn.call(request.clone(), deadline),
            };
            let answer = match answer {
                Ok(a) => a,
                Err(CallError::NotSent(e)) => {
                    self.conns[node] = None;
                    return (Outcome::Fail(format!("connect: {e}")), None, node);
                }
                Err(e) => {
                    // Timeout, broken connection, garbled answer: the request may have been
                    // applied. A fresh connection next time (a late answer must not be taken for
                    // the next request's).
                    self.conns[node] = None;
                    let msg = match e {
                        CallError::Timeout => "timeout".to_string(),
                        other => other.to_string(),
                    };
                    return (Outcome::Info(msg), None, node);
                }
            };
            match classify(op, &answer) {
                Classified::Done(outcome, seen) => {
                    self.current = node;
                    return (outcome, seen, node);
                }
                Classified::Redirect(hint) => {
                    let target = hint
                        .and_then(|h| h.parse::<SocketAddr>().ok())
                        .and_then(|a| self.hint_addrs.iter().position(|&x| x == a));
                    match target {
                        Some(j) if j != node && hop < MAX_HOPS => node = j,
                        Some(j) => {
                            self.current = j;
                            return (Outcome::Fail("not_leader".into()), None, node);
                        }
                        None => {
                            if self.mode == ClientMode::Leader {
                                self.rotate();
                            }
                            return (Outcome::Fail("not_leader".into()), None, node);
                        }
                    }
                }
            }
        }
        (Outcome::Fail("not_leader".into()), None, node)
    }
}

enum Classified {
    Done(Outcome, Option<Value>),
    Redirect(Option<String>),
}

fn classify(op: &Op, a: &Answer) -> Classified {
    if a.ok {
        let v = match op {
            Op::Read { .. } => a.value().cloned().unwrap_or(Value::Null),
            other => other.value(),
        };
        return Classified::Done(Outcome::Ok(v), None);
    }
    let err = a.error.clone().unwrap_or_else(|| "unknown".into());
    if err == "not_leader" {
        return Classified::Redirect(a.leader_hint());
    }
    if DEFINITE_ERRORS.contains(&err.as_str()) {
        let seen = (err == "cas_mismatch")
            .then(|| a.value().cloned())
            .flatten();
        return Classified::Done(Outcome::Fail(err), seen);
    }
    Classified::Done(Outcome::Info(err), None)
}

/// Records one operation: invocation, execution, completion. Returns the outcome.
pub fn record_op(
    rec: &Recorder,
    exec: &mut Executor,
    process: u64,
    seq: u64,
    op: &Op,
) -> (Outcome, Option<Value>) {
    let key = Some(op.key().to_string());
    rec.record(Event {
        process: Process::Client(process),
        ty: EventType::Invoke,
        f: op.f().into(),
        key: key.clone(),
        value: op.value(),
        error: None,
        node: None,
    });
    let (outcome, seen, node) = exec.execute(op, &format!("p{process}"), seq);
    let (ty, value, error) = match &outcome {
        Outcome::Ok(v) => (EventType::Ok, v.clone(), None),
        Outcome::Fail(e) => (EventType::Fail, op.value(), Some(e.clone())),
        Outcome::Info(e) => (EventType::Info, op.value(), Some(e.clone())),
    };
    rec.record(Event {
        process: Process::Client(process),
        ty,
        f: op.f().into(),
        key,
        value,
        error,
        node: Some(exec.id(node)),
    });
    (outcome, seen)
}

/// What the workers need to know.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub keys: usize,
    pub op_timeout: Duration,
    /// Total ops/s over all workers; 0 = unlimited.
    pub rate: f64,
    pub seed: u64,
    pub mode: ClientMode,
    pub nodes: Nodes,
    /// `addrs[w][i]`: where worker w dials node i.
    pub addrs: Vec<Vec<SocketAddr>>,
    /// Where the final-read client dials node i.
    pub final_addrs: Vec<SocketAddr>,
}

/// The latest value anyone saw for each key: where a cas takes its expected value from.
#[derive(Debug)]
pub struct Seen {
    latest: Mutex<Vec<Option<String>>>,
}

impl Seen {
    pub fn new(keys: usize) -> Seen {
        Seen {
            latest: Mutex::new(vec![None; keys]),
        }
    }

    fn get(&self) -> Vec<Option<String>> {
        match self.latest.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, k: usize, v: Option<String>) {
        let mut g = match self.latest.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(slot) = g.get_mut(k) {
            *slot = v;
        }
    }
}

/// A finished worker's summary.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// The highest process number it used.
    pub last_process: u64,
}

/// The key names: k0, k1, ...
pub fn key_name(k: usize) -> String {
    format!("k{k}")
}

/// The seed of worker `w`'s RNG.
pub fn worker_seed(seed: u64, w: usize) -> u64 {
    // splitmix64 of (seed, w): distinct, well-mixed streams per worker.
    let mut z = seed
        .wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(w as u64 + 1))
        .wrapping_add(0x636c_6965_6e74);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Draws worker `w`'s `n`-th operation. The draw uses the RNG the same way whatever happened
/// before, so the kind, key and written value of every op depend on the seed only; a cas's
/// expected value is the latest value seen for the key (`last`), which depends on the run.
pub fn draw_op(rng: &mut StdRng, w: usize, n: u64, keys: usize, last: &[Option<String>]) -> Op {
    let roll = rng.random_range(0..100u32);
    let k = rng.random_range(0..keys);
    let key = key_name(k);
    let fresh = format!("w{w}-{n}");
    match roll {
        0..40 => Op::Read { key },
        40..70 => Op::Write { key, value: fresh },
        _ => Op::Cas {
            from: last[k].clone().unwrap_or_else(|| format!("w{w}-none")),
            key,
            to: fresh,
        },
    }
}

/// Starts the workers; they stop when `stop` is set.
pub fn spawn_workers(
    cfg: &WorkloadConfig,
    rec: &Recorder,
    stats: &Arc<Stats>,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<WorkerReport>>> {
    let seen = Arc::new(Seen::new(cfg.keys));
    (0..cfg.clients)
        .map(|w| {
            let cfg = cfg.clone();
            let rec = rec.clone();
            let stats = Arc::clone(stats);
            let stop = Arc::clone(stop);
            let seen = Arc::clone(&seen);
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker(w, &cfg, &rec, &stats, &seen, &stop))
        })
        .collect()
}

/// Sleeps up to `d`, waking early when `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn worker(
    w: usize,
    cfg: &WorkloadConfig,
    rec: &Recorder,
    stats: &Stats,
    seen: &Seen,
    stop: &AtomicBool,
) -> WorkerReport {
    let mut rng = StdRng::seed_from_u64(worker_seed(cfg.seed, w));
    let addrs = cfg.addrs.get(w).cloned().unwrap_or_default();
    let mut exec = Executor::new(&cfg.nodes, addrs, w, cfg.mode, cfg.op_timeout);
    let mut process = w as u64;
    let period = (cfg.rate > 0.0).then(|| Duration::from_secs_f64(cfg.clients as f64 / cfg.rate));
    let mut next_at = Instant::now();
    let mut fails_in_a_row = 0u32;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(p) = period {
            nap(next_at.saturating_duration_since(Instant::now()), stop);
            next_at += p;
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        let op = draw_op(&mut rng, w, n, cfg.keys, &seen.get());
        n += 1;
        let (outcome, mismatch) = record_op(rec, &mut exec, process, n, &op);
        stats.count(&op, &outcome);
        let k = op.key()[1..].parse::<usize>().unwrap_or(0);
        match outcome {
            Outcome::Ok(v) => {
                fails_in_a_row = 0;
                seen.set(
                    k,
                    match (&op, v) {
                        (Op::Read { .. }, Value::String(s)) => Some(s),
                        (Op::Read { .. }, _) => None,
                        (Op::Write { value, .. }, _) => Some(value.clone()),
                        (Op::Cas { to, .. }, _) => Some(to.clone()),
                    },
                );
            }
            Outcome::Fail(e) => {
                if let Some(Value::String(s)) = mismatch {
                    seen.set(k, Some(s));
                }
                if e != "cas_mismatch" {
                    // No leader, node down: back off a little instead of spinning.
                    fails_in_a_row += 1;
                    nap(
                        Duration::from_millis(10 * u64::from(fails_in_a_row.min(10))),
                        stop,
                    );
                }
            }
            Outcome::Info(_) => {
                process += cfg.clients as u64;
            }
        }
    }
    WorkerReport {
        last_process: process,
    }
}

/// Reads every key with a fresh client until each read succeeds or `deadline` passes.
pub fn final_reads(
    cfg: &WorkloadConfig,
    rec: &Recorder,
    mut process: u64,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<Vec<(String, Value)>, String> {
    let mut exec = Executor::new(
        &cfg.nodes,
        cfg.final_addrs.clone(),
        0,
        ClientMode::Leader,
        cfg.op_timeout,
    );
    let mut values = Vec::new();
    let mut seq = 0;
    for k in 0..cfg.keys {
        let key = key_name(k);
        let mut last_error = String::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no successful read of {key} within --final-timeout (last error: {last_error})"
                ));
            }
            seq += 1;
            let op = Op::Read { key: key.clone() };
            match record_op(rec, &mut exec, process, seq, &op).0 {
                Outcome::Ok(v) => {
                    values.push((key, v));
                    break;
                }
                Outcome::Fail(e) => last_error = e,
                Outcome::Info(e) => {
                    last_error = e;
                    process += 1;
                }
            }
            nap(Duration::from_millis(50), stop);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_sequence_depends_on_seed_and_worker_only() {
        let seq = |seed, w, last: &[Option<String>]| {
            let mut rng = StdRng::seed_from_u64(worker_seed(seed, w));
            (0..50)
                .map(|n| draw_op(&mut rng, w, n, 5, last))
                .map(|op| (op.f(), op.key().to_string()))
                .collect::<Vec<_>>()
        };
        let none = vec![None; 5];
        let some = vec![Some("x".to_string()); 5];
        assert_eq!(seq(1, 0, &none), seq(1, 0, &some));
        assert_ne!(seq(1, 0, &none), seq(1, 1, &none));
        assert_ne!(seq(1, 0, &none), seq(2, 0, &none));
    }

    #[test]
    fn written_values_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for w in 0..4 {
            let mut rng = StdRng::seed_from_u64(worker_seed(9, w));
            for n in 0..200 {
                match draw_op(&mut rng, w, n, 3, &[None, None, None]) {
                    Op::Write { value, .. } | Op::Cas { to: value, .. } => {
                        assert!(seen.insert(value))
                    }
                    Op::Read { .. } => {}
                }
            }
        }
    }

    #[test]
    fn classifies_answers() {
        let op = Op::Write {
            key: "k0".into(),
            value: "v".into(),
        };
        let ans = |raw: Value| Answer {
            ok: raw["ok"].as_bool().unwrap_or(false),
            error: raw["error"].as_str().map(str::to_string),
            raw,
        };
        assert!(matches!(
            classify(&op, &ans(json!({"ok": true}))),
            Classified::Done(Outcome::Ok(_), _)
        ));
        assert!(matches!(
            classify(&op, &ans(json!({"ok": false, "error": "timeout"}))),
            Classified::Done(Outcome::Info(_), _)
        ));
        assert!(matches!(
            classify(
                &op,
                &ans(json!({"ok": false, "error": "not_leader", "leader": null}))
            ),
            Classified::Redirect(None)
        ));
        assert!(matches!(
            classify(
                &op,
                &ans(json!({"ok": false, "error": "cas_mismatch", "value": "z"}))
            ),
            Classified::Done(Outcome::Fail(_), Some(_))
        ));
    }
}
