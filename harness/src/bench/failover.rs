//! Failover: under a closed-loop write load, SIGKILL or SIGSTOP the leader and time how long
//! until a write *sent after the fault* is acknowledged.
//!
//! Every system gets the same client: writers send to the node they believe leads, follow a
//! `not_leader` hint when the store gives one, and otherwise move on to the next node. Writers
//! skip the faulted node from the moment of the fault (as a client's health check would, sooner):
//! the time measures the store's failover, not a client's failure detection. A write that was
//! already in flight at the fault does not count, even if it is acknowledged later.

use super::args::FailoverMode;
use super::cluster::{Running, Target};
use adapters::{Op, OpContext, Reply, Session};
use anyhow::{Context, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a trial waits for the first acknowledged write after the fault.
const GIVE_UP: Duration = Duration::from_secs(30);

/// One trial.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The faulted leader.
    pub leader: String,
    /// Fault to first acknowledged write, ms; `None` if none came within 30 s.
    pub ms: Option<f64>,
}

/// State shared by the writers of one trial and the thread that injects the fault.
struct Shared {
    stop: AtomicBool,
    /// Index of the faulted node, or `usize::MAX` before the fault.
    avoid: AtomicUsize,
    fault_at: Mutex<Option<Instant>>,
    first_ack: Mutex<Option<Instant>>,
    /// Writes acknowledged so far (the fault waits for the load to flow).
    acks: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one trial on `sys` with `writers` writers; leaves the cluster whole again afterwards.
pub fn trial(
    sys: &mut Running,
    mode: FailoverMode,
    writers: usize,
    op_timeout: Duration,
    value_size: usize,
) -> Result<Trial> {
    let leader = sys.leader(Duration::from_secs(20))?;
    let leader_id = sys.cluster.id(leader).to_string();
    let shared = Shared {
        stop: AtomicBool::new(false),
        avoid: AtomicUsize::new(usize::MAX),
        fault_at: Mutex::new(None),
        first_ack: Mutex::new(None),
        acks: AtomicUsize::new(0),
    };
    let target = sys.target.clone();
    let result = std::thread::scope(|s| -> Result<Option<f64>> {
        for w in 0..writers {
            let (shared, target) = (&shared, &target);
            s.spawn(move || writer(target, shared, leader, w, op_timeout, value_size));
        }
        // Nodes are signalled from this (the main) thread only: see the launcher on
        // PR_SET_PDEATHSIG.
        let flowing = Instant::now() + Duration::from_secs(10);
        while shared.acks.load(Ordering::SeqCst) < writers * 5 && Instant::now() < flowing {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        let at = Instant::now();
        *lock(&shared.fault_at) = Some(at);
        shared.avoid.store(leader, Ordering::SeqCst);
        match mode {
            FailoverMode::Kill => sys.cluster.kill(leader),
            FailoverMode::Stop => {
                sys.cluster.pause(leader);
            }
        }
        let give_up = at + GIVE_UP;
        let ms = loop {
            if let Some(t) = *lock(&shared.first_ack) {
                break Some(t.duration_since(at).as_secs_f64() * 1e3);
            }
            if Instant::now() >= give_up || crate::run::launcher::shutting_down() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        shared.stop.store(true, Ordering::SeqCst);
        Ok(ms)
    })?;
    match mode {
        FailoverMode::Kill => {
            sys.cluster
                .spawn(leader, "restart after a failover trial")
                .with_context(|| format!("restarting {leader_id}"))?;
            sys.cluster
                .wait_ready(leader, Duration::from_secs(20))
                .with_context(|| format!("restarting {leader_id}"))?;
        }
        FailoverMode::Stop => {
            sys.cluster.resume(leader);
        }
    }
    // The old leader rejoins (and catches up) before the next trial measures anything.
    sys.leader(Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(Trial {
        leader: leader_id,
        ms: result,
    })
}

fn writer(
    target: &Target,
    shared: &Shared,
    first: usize,
    w: usize,
    op_timeout: Duration,
    value_size: usize,
) {
    let n = target.addrs.len();
    let mut node = first;
    let mut session: Option<Box<dyn Session>> = None;
    let name = super::load::client_name("f");
    let mut seq = 0u64;
    let next = |node: usize, avoid: usize| {
        let mut j = (node + 1) % n;
        if j == avoid && n > 1 {
            j = (j + 1) % n;
        }
        j
    };
    while !shared.stop.load(Ordering::SeqCst) {
        let avoid = shared.avoid.load(Ordering::SeqCst);
        if node == avoid {
            node = next(node, avoid);
            session = None;
        }
        seq += 1;
        let op = Op::Write {
            key: format!("f{w}"),
            value: super::load::value(value_size, w, seq),
        };
        let began = Instant::now();
        let deadline = began + op_timeout;
        let s = match &mut session {
            Some(s) => s,
            None => match target.adapter.connect(&target.endpoint(node), deadline) {
                Ok(s) => session.insert(s),
                Err(_) => {
                    node = next(node, avoid);
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        match s.execute(&op, &OpContext::new(name.clone(), seq), deadline) {
            Reply::Ok { .. } => {
                shared.acks.fetch_add(1, Ordering::SeqCst);
                let fault = *lock(&shared.fault_at);
                if fault.is_some_and(|f| began >= f) {
                    let done = Instant::now();
                    let mut first = lock(&shared.first_ack);
                    if first.is_none_or(|t| done < t) {
                        *first = Some(done);
                    }
                }
            }
            Reply::NotLeader { hint } => {
                session = None;
                node = match hint.as_deref().and_then(|h| target.node_of(h)) {
                    Some(j) if j != avoid => j,
                    _ => next(node, avoid),
                };
            }
            Reply::Fail { .. } | Reply::Info { .. } => {
                session = None;
                node = next(node, avoid);
                // Electing takes a while; do not spin on a node that just said no.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Median and other figures of a set of trials, ms.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub system: String,
    pub mode: FailoverMode,
    pub trials: Vec<Trial>,
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Trials without an acknowledged write within 30 s.
    pub gave_up: usize,
    /// Why failover was not measured (a store without automatic failover).
    pub not_applicable: Option<String>,
}

impl Summary {
    pub fn of(system: &str, mode: FailoverMode, trials: Vec<Trial>) -> Summary {
        let ok: Vec<f64> = trials.iter().filter_map(|t| t.ms).collect();
        let spread = super::stats::Spread::of(&ok);
        Summary {
            system: system.to_string(),
            mode,
            gave_up: trials.len() - ok.len(),
            trials,
            median_ms: spread.map(|s| s.median),
            min_ms: spread.map(|s| s.min),
            max_ms: spread.map(|s| s.max),
            not_applicable: None,
        }
    }
}
