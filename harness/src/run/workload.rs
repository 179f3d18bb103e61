//! Client workers: concurrent read/write/cas over a few keys, recorded as they go.
//!
//! Clients connect straight to the nodes' client ports (not through the proxy), as Jepsen's
//! clients do: partitions cut nodes off from each other, never the test from the nodes. A node
//! that is paused or on the minority side still makes its clients wait (→ `info` on timeout).
//!
//! Outcomes (docs/protocol.md): an answer `ok` is `ok`; a definite error (`not_leader`,
//! `cas_mismatch`, `bad_request`, `dropped`, `overwritten`) is `fail`; a connection that could not be opened is `fail` (the
//! request was never sent); a timeout, a broken connection after sending, a garbled answer or any
//! other error is `info`, after which the worker continues under a new process number
//! (process + clients), as in Jepsen. A `not_leader` with a hint is followed within the same
//! operation (at most three hops, inside the op timeout): the earlier hops surely did nothing.

use super::client::{Answer, CallError, Conn};
use super::recorder::{Event, EventType, Process, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

/// Live counters, read by the progress line.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
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

/// Sends operations to the cluster, following leader hints; keeps one connection.
pub struct Executor {
    nodes: Vec<SocketAddr>,
    node: SocketAddr,
    next: usize,
    conn: Option<Conn>,
    op_timeout: Duration,
}

impl Executor {
    pub fn new(nodes: Vec<SocketAddr>, first: usize, op_timeout: Duration) -> Executor {
        let first = first % nodes.len().max(1);
        Executor {
            node: nodes
                .get(first)
                .copied()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            next: first + 1,
            nodes,
            conn: None,
            op_timeout,
        }
    }

    /// Moves on to the next node in the list.
    pub fn rotate(&mut self) {
        if !self.nodes.is_empty() {
            self.node = self.nodes[self.next % self.nodes.len()];
            self.next += 1;
        }
        self.conn = None;
    }

    fn switch_to(&mut self, addr: SocketAddr) {
        if addr != self.node {
            self.node = addr;
            self.conn = None;
        }
    }

    /// Runs one operation to its outcome; also returns a value seen by a `cas_mismatch`.
    pub fn execute(&mut self, op: &Op, client: &str, seq: u64) -> (Outcome, Option<Value>) {
        let deadline = Instant::now() + self.op_timeout;
        let request = op.request(client, seq);
        for hop in 0..=MAX_HOPS {
            if self.conn.as_ref().is_some_and(Conn::is_closed) {
                self.conn = None;
            }
            if self.conn.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                match Conn::connect(self.node, left.min(Duration::from_millis(500))) {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        let msg = format!("connect {}: {e}", self.node);
                        self.rotate();
                        return (Outcome::Fail(msg), None);
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let answer = match conn.call(request.clone(), deadline) {
                Ok(a) => a,
                Err(CallError::NotSent(e)) => {
                    self.conn = None;
                    return (Outcome::Fail(format!("connect: {e}")), None);
                }
                Err(e) => {
                    // Timeout, broken connection, garbled answer: the request may have been
                    // applied. A fresh connection next time (a late answer must not be taken for
                    // the next request's).
                    self.conn = None;
                    let msg = match e {
                        CallError::Timeout => "timeout".to_string(),
                        other => other.to_string(),
                    };
                    return (Outcome::Info(msg), None);
                }
            };
            match classify(op, &answer) {
                Classified::Done(outcome, seen) => return (outcome, seen),
                Classified::Redirect(hint) => {
                    let target = hint.and_then(|h| h.parse::<SocketAddr>().ok());
                    match target {
                        Some(addr) if hop < MAX_HOPS && addr != self.node => self.switch_to(addr),
                        Some(addr) if addr != self.node => {
                            self.switch_to(addr);
                            return (Outcome::Fail("not_leader".into()), None);
                        }
                        _ => {
                            self.rotate();
                            return (Outcome::Fail("not_leader".into()), None);
                        }
                    }
                }
            }
        }
        (Outcome::Fail("not_leader".into()), None)
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
    });
    let (outcome, seen) = exec.execute(op, &format!("p{process}"), seq);
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
    pub nodes: Vec<SocketAddr>,
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
/// expected value is the last value this worker saw for the key.
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
    (0..cfg.clients)
        .map(|w| {
            let cfg = cfg.clone();
            let rec = rec.clone();
            let stats = Arc::clone(stats);
            let stop = Arc::clone(stop);
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker(w, &cfg, &rec, &stats, &stop))
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
    stop: &AtomicBool,
) -> WorkerReport {
    let mut rng = StdRng::seed_from_u64(worker_seed(cfg.seed, w));
    let mut exec = Executor::new(cfg.nodes.clone(), w, cfg.op_timeout);
    let mut process = w as u64;
    let mut last: Vec<Option<String>> = vec![None; cfg.keys];
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
        let op = draw_op(&mut rng, w, n, cfg.keys, &last);
        n += 1;
        let (outcome, seen) = record_op(rec, &mut exec, process, n, &op);
        let k = op.key()[1..].parse::<usize>().unwrap_or(0);
        match outcome {
            Outcome::Ok(v) => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
                fails_in_a_row = 0;
                last[k] = match (&op, v) {
                    (Op::Read { .. }, Value::String(s)) => Some(s),
                    (Op::Read { .. }, _) => None,
                    (Op::Write { value, .. }, _) => Some(value.clone()),
                    (Op::Cas { to, .. }, _) => Some(to.clone()),
                };
            }
            Outcome::Fail(e) => {
                stats.fail.fetch_add(1, Ordering::Relaxed);
                if let Some(Value::String(s)) = seen {
                    last[k] = Some(s);
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
                stats.info.fetch_add(1, Ordering::Relaxed);
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
    let mut exec = Executor::new(cfg.nodes.clone(), 0, cfg.op_timeout);
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
