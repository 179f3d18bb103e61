//! The nemesis: carries out the schedule's faults on the cluster and the network, and records
//! every start and stop as a `nemesis` event in the history.
//!
//! Events (type `info`, process `nemesis`):
//! - `pause` / `resume`, value `{"node": "n3", "leader": bool}`: SIGSTOP / SIGCONT;
//! - `kill` / `restart`, value `{"node": "n3", "leader": bool}`: SIGKILL / start on the same
//!   data directory;
//! - `partition` / `heal`, value `{"shape": "halves", "groups": [["n1","n2"],["n3","n4","n5"]],
//!   "blocked": [["n1","n3"], ...]}` (`groups` only for shapes made of disjoint groups; `blocked`
//!   lists the held directed links);
//! - `delay` / `undelay`, value `{"links": [["n1","n2"], ...], "base_ms": 50, "jitter_ms": 20}`;
//! - `crash`, value `{"node": "n2", "status": "exit code 101"}`: a node exited on its own (not a
//!   fault we injected: a finding about the system under test).

use super::client;
use super::launcher::{Cluster, NodeState};
use super::network::Network;
use super::progress::{say, Progress};
use super::recorder::{Event, EventType, Process, Recorder};
use super::schedule::{self, Fault, Partition, Step, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A fault in force, and what undoing it takes.
#[derive(Debug, Clone)]
pub enum Active {
    Paused(usize),
    Killed(usize),
    Partitioned,
    Delayed(Vec<(usize, usize)>),
}

/// The nemesis' tools and tallies.
pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub net: &'a Network,
    pub rec: &'a Recorder,
    pub progress: &'a Progress,
    /// How many faults of each kind (and partition shape) were started.
    pub counts: BTreeMap<String, u64>,
}

impl Nemesis<'_> {
    fn event(&self, f: &str, value: Value) {
        self.rec.record(Event {
            process: Process::Nemesis,
            ty: EventType::Info,
            f: f.into(),
            key: None,
            value,
            error: None,
        });
    }

    fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_string()).or_default() += 1;
    }

    /// The current leader among running nodes: the node that says it leads with the highest
    /// term. Nodes are asked in parallel (300 ms each at most).
    pub fn find_leader(&self) -> Option<usize> {
        let addrs: Vec<(usize, std::net::SocketAddr)> = (0..self.cluster.len())
            .filter(|&i| self.cluster.state(i) == NodeState::Running)
            .map(|i| (i, self.cluster.spec(i).client))
            .collect();
        let answers: Vec<(usize, client::Status)> = std::thread::scope(|s| {
            let hs: Vec<_> = addrs
                .iter()
                .map(|&(i, a)| {
                    s.spawn(move || (i, client::status(a, Duration::from_millis(300)).ok()))
                })
                .collect();
            hs.into_iter()
                .filter_map(|h| h.join().ok())
                .filter_map(|(i, st)| st.map(|st| (i, st)))
                .collect()
        });
        answers
            .into_iter()
            .filter(|(_, st)| st.role.as_deref() == Some("leader"))
            .max_by_key(|(_, st)| st.term.unwrap_or(0))
            .map(|(i, _)| i)
    }

    fn resolve(&self, t: Target) -> (usize, bool) {
        match t {
            Target::Node(i) => (i, false),
            Target::Leader { fallback } => match self.find_leader() {
                Some(i) => (i, true),
                None => (fallback, false),
            },
        }
    }

    fn names(&self, pairs: &[(usize, usize)]) -> Value {
        json!(pairs
            .iter()
            .map(|&(a, b)| [self.cluster.id(a), self.cluster.id(b)])
            .collect::<Vec<_>>())
    }

    /// Starts a scheduled fault. Returns what is in force (`None` if nothing could be done).
    pub fn start(&mut self, step: &Step) -> Option<Active> {
        let n = self.cluster.len();
        match &step.fault {
            Fault::Pause { target } => {
                let (i, leader) = self.resolve(*target);
                if !self.cluster.pause(i) {
                    return None;
                }
                self.count("pause");
                let id = self.cluster.id(i).to_string();
                self.event("pause", json!({"node": id, "leader": leader}));
                self.progress.set_fault(format!("pause {id}"));
                Some(Active::Paused(i))
            }
            Fault::Kill { target } => {
                let (i, leader) = self.resolve(*target);
                if self.cluster.state(i) == NodeState::Down {
                    return None;
                }
                self.cluster.kill(i);
                self.count("kill");
                let id = self.cluster.id(i).to_string();
                self.event("kill", json!({"node": id, "leader": leader}));
                self.progress.set_fault(format!("kill {id}"));
                Some(Active::Killed(i))
            }
            Fault::Partition(p) => {
                let (target, leader) = match p {
                    Partition::Isolate { target } | Partition::OneWay { target, .. } => {
                        self.resolve(*target)
                    }
                    _ => (0, false),
                };
                let blocked = schedule::blocked_links(p, n, target);
                if let Err(e) = self.net.partition(&blocked) {
                    say(&format!("nemesis: {e:#}"));
                    return None;
                }
                let shape = shape_name(p);
                self.count("partition");
                self.count(&format!("partition:{shape}"));
                let mut value = json!({"shape": shape, "blocked": self.names(&blocked)});
                if let Some(groups) = schedule::groups(p, n, target) {
                    let g: Vec<Vec<&str>> = groups
                        .iter()
                        .map(|g| g.iter().map(|&i| self.cluster.id(i)).collect())
                        .collect();
                    value["groups"] = json!(g);
                }
                if matches!(p, Partition::Isolate { .. } | Partition::OneWay { .. }) {
                    value["node"] = json!(self.cluster.id(target));
                    value["leader"] = json!(leader);
                }
                if let Partition::OneWay { inbound, .. } = p {
                    value["direction"] = json!(if *inbound { "inbound" } else { "outbound" });
                }
                self.event("partition", value);
                let what = match p {
                    Partition::Isolate { .. } | Partition::OneWay { .. } => {
                        format!("partition {shape} {}", self.cluster.id(target))
                    }
                    _ => format!("partition {shape}"),
                };
                self.progress.set_fault(what);
                Some(Active::Partitioned)
            }
            Fault::Delay {
                nodes,
                base_ms,
                jitter_ms,
            } => {
                let links: Vec<(usize, usize)> = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|&(a, b)| {
                        a != b && (nodes.is_empty() || nodes.contains(&a) || nodes.contains(&b))
                    })
                    .collect();
                let base = Duration::from_millis(*base_ms);
                let jitter = Duration::from_millis(*jitter_ms);
                if let Err(e) = self.net.delay(&links, base, jitter) {
                    say(&format!("nemesis: {e:#}"));
                    return None;
                }
                self.count("delay");
                self.event(
                    "delay",
                    json!({"links": self.names(&links), "base_ms": base_ms, "jitter_ms": jitter_ms}),
                );
                let on = match nodes.as_slice() {
                    [] => "all links".to_string(),
                    [i] => format!("{}'s links", self.cluster.id(*i)),
                    _ => "some links".to_string(),
                };
                self.progress
                    .set_fault(format!("delay {base_ms}±{jitter_ms}ms on {on}"));
                Some(Active::Delayed(links))
            }
        }
    }

    /// Undoes a fault.
    pub fn stop(&mut self, active: Active) {
        match active {
            Active::Paused(i) => {
                self.cluster.resume(i);
                self.event("resume", json!({"node": self.cluster.id(i)}));
            }
            Active::Killed(i) => self.restart(i, "restart"),
            Active::Partitioned => {
                self.net.heal_all();
                self.event("heal", json!({}));
            }
            Active::Delayed(links) => {
                self.net.heal_all();
                self.event("undelay", json!({"links": self.names(&links)}));
            }
        }
        self.progress.set_fault("");
    }

    fn restart(&mut self, i: usize, why: &str) {
        let id = self.cluster.id(i).to_string();
        match self.cluster.spawn(i, why) {
            Ok(()) => self.event("restart", json!({"node": id})),
            Err(e) => {
                say(&format!("nemesis: cannot restart {id}: {e:#}"));
                self.event("restart", json!({"node": id, "error": format!("{e:#}")}));
            }
        }
    }

    /// Records and reports nodes that exited on their own.
    pub fn notice_crashes(&mut self) {
        for (i, status) in self.cluster.reap_exited() {
            let id = self.cluster.id(i).to_string();
            say(&format!(
                "node {id} exited on its own ({status}); see nodes/{id}.log"
            ));
            self.event("crash", json!({"node": id, "status": status}));
        }
    }

    /// Heals everything: network back to pass, paused nodes resumed, down nodes restarted.
    pub fn heal_everything(&mut self) {
        if self.net.faulty() {
            self.net.heal_all();
            self.event("heal", json!({"final": true}));
        }
        self.notice_crashes();
        for i in 0..self.cluster.len() {
            match self.cluster.state(i) {
                NodeState::Paused => {
                    self.cluster.resume(i);
                    self.event("resume", json!({"node": self.cluster.id(i), "final": true}));
                }
                NodeState::Down => self.restart(i, "final recovery"),
                NodeState::Running => {}
            }
        }
        self.progress.set_fault("");
    }
}

/// The fault counts as one line: `pause 2, kill 1, partition 3 (halves 1, bridge 2)`.
pub fn counts_line(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    let mut parts = Vec::new();
    for kind in ["pause", "kill", "partition", "delay"] {
        let Some(&c) = counts.get(kind) else { continue };
        let shapes: Vec<String> = counts
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&format!("{kind}:"))
                    .map(|s| format!("{s} {v}"))
            })
            .collect();
        if shapes.is_empty() {
            parts.push(format!("{kind} {c}"));
        } else {
            parts.push(format!("{kind} {c} ({})", shapes.join(", ")));
        }
    }
    parts.join(", ")
}

fn shape_name(p: &Partition) -> &'static str {
    match p {
        Partition::Halves { .. } => "halves",
        Partition::Isolate { .. } => "isolate",
        Partition::MajoritiesRing { .. } => "majorities-ring",
        Partition::Bridge { .. } => "bridge",
        Partition::OneWay { .. } => "one-way",
    }
}
