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
//! Outcomes come from the system's client adapter (docs/adapters.md): `Ok` is `ok`; `Fail` and
//! `NotLeader` are `fail` (surely not applied; a session that could not be opened is one too);
//! `Info` is `info`, after which the worker drops its session and continues under a new process
//! number (process + clients), as in Jepsen.
//!
//! A cas's expected value is the latest value any worker saw for the key (written, read, or
//! reported by a `cas_mismatch`), so cas succeeds often enough to matter.

use super::args::ClientMode;
use super::recorder::{Event, EventType, Process, Recorder};
use adapters::{Adapter, NodeEndpoint, OpContext, Reply, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

    /// The adapter crate's form of the operation.
    fn to_adapter(&self) -> adapters::Op {
        match self.clone() {
            Op::Read { key } => adapters::Op::Read { key },
            Op::Write { key, value } => adapters::Op::Write { key, value },
            Op::Cas { key, from, to } => adapters::Op::Cas {
                key,
                from: Some(from),
                to,
            },
        }
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

/// Sends one worker's operations to the cluster through the system's client adapter; keeps one
/// session per node.
pub struct Executor {
    adapter: Arc<dyn Adapter>,
    /// Where this worker dials each node (its proxy listeners).
    addrs: Vec<SocketAddr>,
    nodes: Nodes,
    mode: ClientMode,
    home: usize,
    /// The node to try first in `leader` mode.
    current: usize,
    sessions: Vec<Option<Box<dyn Session>>>,
    op_timeout: Duration,
}

/// Where the nodes are and how to reach them, for an [`Executor`].
#[derive(Clone)]
pub struct Nodes {
    pub ids: Vec<String>,
    pub cluster: String,
    /// Addresses a store may name in a `not_leader` hint, with the node each belongs to (real
    /// client addresses, advertised peer addresses).
    pub hint_addrs: Vec<(String, usize)>,
    /// Updates go to this node (a primary/replica store without failover); the rest follow the
    /// client mode.
    pub updates_to: Option<usize>,
    pub adapter: Arc<dyn Adapter>,
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
            adapter: Arc::clone(&nodes.adapter),
            sessions: (0..addrs.len()).map(|_| None).collect(),
            addrs,
            nodes: nodes.clone(),
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
        self.nodes
            .ids
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }

    /// The session to node `i`, opening one if needed.
    fn session(&mut self, i: usize, deadline: Instant) -> Result<&mut Box<dyn Session>, String> {
        if self.sessions[i].is_none() {
            let d = deadline.min(Instant::now() + Duration::from_millis(500));
            let endpoint = NodeEndpoint::new(self.id(i), self.addrs[i].to_string())
                .with_cluster(self.nodes.cluster.clone());
            let s = self
                .adapter
                .connect(&endpoint, d)
                .map_err(|e| format!("connect {}: {e}", self.id(i)))?;
            self.sessions[i] = Some(s);
        }
        self.sessions[i]
            .as_mut()
            .ok_or_else(|| "no session".to_string())
    }

    fn hinted_node(&self, hint: Option<&str>) -> Option<usize> {
        let h = hint?;
        self.nodes
            .hint_addrs
            .iter()
            .find(|(a, _)| a == h)
            .map(|&(_, i)| i)
            .or_else(|| self.nodes.ids.iter().position(|id| id == h))
    }

    /// Runs one operation to its outcome. Also returns a value seen by a `cas_mismatch` and the
    /// node that answered (or was tried last).
    pub fn execute(&mut self, op: &Op, client: &str, seq: u64) -> (Outcome, Option<Value>, usize) {
        let deadline = Instant::now() + self.op_timeout;
        let request = op.to_adapter();
        let ctx = OpContext::new(client, seq);
        let mut node = match (self.nodes.updates_to, request.is_update(), self.mode) {
            (Some(first), true, _) => first,
            (_, _, ClientMode::Bound) => self.home,
            (_, _, ClientMode::Leader) => self.current,
        };
        for hop in 0..=MAX_HOPS {
            let reply = match self.session(node, deadline) {
                Err(msg) => {
                    if self.mode == ClientMode::Leader {
                        self.rotate();
                    }
                    return (Outcome::Fail(msg), None, node);
                }
                Ok(session) => session.execute(&request, &ctx, deadline),
            };
            match reply {
                Reply::Ok { value } => {
                    self.current = node;
                    let v = match op {
                        Op::Read { .. } => value.map(Value::String).unwrap_or(Value::Null),
                        other => other.value(),
                    };
                    return (Outcome::Ok(v), None, node);
                }
                Reply::Fail { error, current } => {
                    let seen = current.map(|c| c.map(Value::String).unwrap_or(Value::Null));
                    return (Outcome::Fail(error), seen, node);
                }
                Reply::Info { error } => {
                    // The session's state is unknown: a fresh one next time (a late answer must
                    // not be taken for the next request's).
                    self.sessions[node] = None;
                    return (Outcome::Info(error), None, node);
                }
                Reply::NotLeader { hint } => match self.hinted_node(hint.as_deref()) {
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
                },
            }
        }
        (Outcome::Fail("not_leader".into()), None, node)
    }
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
#[derive(Clone)]
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
}
