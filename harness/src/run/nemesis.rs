//! The nemesis: carries out the schedule's faults on the cluster and the network, and records
//! every start and stop as a `nemesis` event in the history. Faults may overlap: each one in
//! force is an [`Active`] with what undoing it takes.
//!
//! Events (type `info`, process `nemesis`), `f` first:
//! - `pause` / `resume`, value `{"nodes": ["n1","n3"], "targets": "minority", "leader": "n1"}`:
//!   SIGSTOP / SIGCONT of each node's process group (`leader`: the leader found when the fault
//!   started, if it was asked);
//! - `kill` / `restart`, the same value: SIGKILL / start on the same data directory;
//! - `kill-all` / `restart`: every node killed at once, all restarted;
//! - `partition` / `heal`, value `{"id": 3, "shape": "halves", "groups": [["n1","n2"],["n3","n4","n5"]],
//!   "blocked": [["n1","n3"], ...]}` (`groups` only for shapes made of disjoint groups; `blocked`
//!   lists the held directed links; `node`, `leader` and `direction` for isolate and one-way);
//! - `client-partition` / `client-heal`, value `{"id": 4, "nodes": ["n2"], "clients": [0, 3]}`:
//!   both directions between those workers and those nodes held;
//! - `delay` / `undelay`, value `{"id": 5, "links": [["n1","n2"], ...], "base_ms": 50, "jitter_ms": 20}`;
//! - any fault kind with `"skipped": "<why>"`: a scheduled fault that could not be carried out
//!   (its targets were already down, say): nothing was done;
//! - membership changes and disk faults: see membership.rs and diskfault.rs;
//! - `crash`, value `{"node": "n2", "status": "exit code 101"}`: a node exited on its own (not a
//!   fault we injected: a finding about the system under test, and the run fails).

use super::launcher::{log_tail, Cluster, NodeState};
use super::network::{NetFault, Network};
use super::progress::{say, Progress};
use super::recorder::{Event, EventType, Process, Recorder};
use super::schedule::{self, Fault, Partition, Step, Target, Targets};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A fault in force (`id`: its number in the history's events), and what undoing it takes.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: u64,
    pub(super) undo: Undo,
}

#[derive(Debug, Clone)]
pub(super) enum Undo {
    /// Resume the nodes this fault paused.
    Resume(Vec<usize>),
    /// Restart the nodes this fault killed.
    Restart(Vec<usize>),
    /// Lift the network fault (`id` in the [`Network`]), recording `event`.
    Net { event: &'static str },
    /// End the disk fault on this node, and restart it if the fault stopped it.
    DiskHeal(usize),
    /// Restart the node whose bit was flipped; put the bit back if it refuses to start.
    Unflip(usize, lazyfs::BitFlip),
    /// Start the removed (and wiped) node as a new member and add it back.
    Rejoin(usize),
}

/// The nemesis' tools and tallies.
pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub net: &'a mut Network,
    pub rec: &'a Recorder,
    pub progress: &'a Progress,
    /// How many faults of each kind (and `partition:<shape>`, `kill:<targets>`) were started.
    pub counts: BTreeMap<String, u64>,
    /// Scheduled faults that were not carried out, and why.
    pub skipped: Vec<Value>,
    /// What went wrong with the nodes: unbidden exits and failed restarts, each with the node,
    /// the time and the last lines of its log.
    pub failures: Vec<String>,
    /// Descriptions of the faults in force, by id, for the progress line.
    pub in_force: BTreeMap<u64, String>,
    /// Nodes under a disk fault, with the fault's id: if one exits meanwhile, that is how it
    /// should answer a failing disk, not a crash.
    pub(super) disk_faulted: BTreeMap<usize, u64>,
    /// Whether the run changes membership: then the final recovery adds back every member
    /// still out.
    pub membership: bool,
    next_id: u64,
}

impl<'a> Nemesis<'a> {
    pub fn new(
        cluster: &'a mut Cluster,
        net: &'a mut Network,
        rec: &'a Recorder,
        progress: &'a Progress,
    ) -> Nemesis<'a> {
        Nemesis {
            cluster,
            net,
            rec,
            progress,
            counts: BTreeMap::new(),
            skipped: Vec::new(),
            failures: Vec::new(),
            in_force: BTreeMap::new(),
            disk_faulted: BTreeMap::new(),
            membership: false,
            next_id: 1,
        }
    }

    /// Records a nemesis event; returns its time in the history (ns).
    pub(super) fn event(&self, f: &str, value: Value) -> u64 {
        self.rec.record(Event {
            process: Process::Nemesis,
            ty: EventType::Info,
            f: f.into(),
            key: None,
            value,
            error: None,
            node: None,
        })
    }

    pub(super) fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_string()).or_default() += 1;
    }

    pub(super) fn show(&self) {
        let line = self
            .in_force
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(" + ");
        self.progress.set_fault(line);
    }

    /// The current leader among running nodes, as the system spec finds it. An election may be
    /// under way (after a kill-all, say) or a loaded machine slow to answer: tries for about 3 s
    /// before the fault falls back to the node the schedule drew.
    pub fn find_leader(&self) -> Option<usize> {
        let running: Vec<(usize, String, std::net::SocketAddr)> = (0..self.cluster.len())
            .filter(|&i| self.cluster.state(i) == NodeState::Running)
            .map(|i| {
                (
                    i,
                    self.cluster.id(i).to_string(),
                    self.cluster.spec(i).client,
                )
            })
            .collect();
        for attempt in 0..8 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            if let Some(l) = self.cluster.probe().find_leader(&running) {
                return Some(l);
            }
        }
        None
    }

    pub(super) fn resolve_one(&self, t: Target) -> (usize, Option<usize>) {
        match t {
            Target::Node(i) => (i, None),
            Target::Leader { fallback } => match self.find_leader() {
                Some(i) => (i, Some(i)),
                None => (fallback, None),
            },
        }
    }

    pub(super) fn resolve(&self, t: &Targets) -> (Vec<usize>, Option<usize>) {
        let leader = if t.wants_leader() {
            self.find_leader()
        } else {
            None
        };
        (t.resolve(self.cluster.len(), leader), leader)
    }

    pub(super) fn ids(&self, nodes: &[usize]) -> Vec<String> {
        nodes
            .iter()
            .map(|&i| self.cluster.id(i).to_string())
            .collect()
    }

    fn names(&self, pairs: &[(usize, usize)]) -> Value {
        json!(pairs
            .iter()
            .map(|&(a, b)| [self.cluster.id(a), self.cluster.id(b)])
            .collect::<Vec<_>>())
    }

    pub(super) fn skip(&mut self, f: &str, mut value: Value, why: String) {
        value["skipped"] = json!(why);
        self.event(f, value.clone());
        value["f"] = json!(f);
        self.skipped.push(value);
    }

    pub(super) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts a scheduled fault. Returns what is in force (`None` if nothing could be done; the
    /// skip is recorded).
    pub fn start(&mut self, step: &Step) -> Option<Active> {
        let n = self.cluster.len();
        match &step.fault {
            Fault::Pause { targets } => {
                let (nodes, leader) = self.resolve(targets);
                let value = json!({"nodes": self.ids(&nodes), "targets": targets.name(),
                                   "leader": leader.map(|l| self.cluster.id(l))});
                let paused: Vec<usize> = nodes
                    .iter()
                    .copied()
                    .filter(|&i| self.cluster.pause(i))
                    .collect();
                if paused.is_empty() {
                    self.skip("pause", value, "no target node was running".into());
                    return None;
                }
                self.count("pause");
                self.count(&format!("pause:{}", targets.name()));
                let id = self.take_id();
                let mut value = value;
                value["nodes"] = json!(self.ids(&paused));
                value["id"] = json!(id);
                self.event("pause", value);
                self.in_force
                    .insert(id, format!("pause {}", self.ids(&paused).join(",")));
                self.show();
                Some(Active {
                    id,
                    undo: Undo::Resume(paused),
                })
            }
            Fault::Kill { targets } => {
                let (nodes, leader) = self.resolve(targets);
                let value = json!({"nodes": self.ids(&nodes), "targets": targets.name(),
                                   "leader": leader.map(|l| self.cluster.id(l))});
                self.kill(nodes, value, "kill")
            }
            Fault::KillAll => {
                let nodes: Vec<usize> = (0..n).collect();
                let value = json!({"nodes": self.ids(&nodes), "targets": "all"});
                self.kill(nodes, value, "kill-all")
            }
            Fault::Partition(p) => {
                let (target, leader) = match p {
                    Partition::Isolate { target } | Partition::OneWay { target, .. } => {
                        self.resolve_one(*target)
                    }
                    Partition::Halves {
                        leader_in_minority: true,
                        ..
                    } => (0, self.find_leader()),
                    _ => (0, None),
                };
                let placed = schedule::place_leader(p, n, leader);
                let p = &placed;
                let blocked = schedule::blocked_links(p, n, target);
                let id = self.take_id();
                if let Err(e) = self.net.add(id, NetFault::Partition(blocked.clone())) {
                    say(&format!("nemesis: {e:#}"));
                    self.skip("partition", json!({}), format!("{e:#}"));
                    return None;
                }
                let shape = shape_name(p);
                self.count("partition");
                self.count(&format!("partition:{shape}"));
                let mut value = json!({"id": id, "shape": shape, "blocked": self.names(&blocked)});
                if let Some(groups) = schedule::groups(p, n, target) {
                    let g: Vec<Vec<&str>> = groups
                        .iter()
                        .map(|g| g.iter().map(|&i| self.cluster.id(i)).collect())
                        .collect();
                    value["groups"] = json!(g);
                }
                if matches!(p, Partition::Isolate { .. } | Partition::OneWay { .. }) {
                    value["node"] = json!(self.cluster.id(target));
                    value["leader"] = json!(leader.is_some());
                }
                if let (Partition::Halves { .. }, Some(l)) = (p, leader) {
                    value["leader"] = json!(self.cluster.id(l));
                }
                if let Partition::OneWay { inbound, .. } = p {
                    value["direction"] = json!(if *inbound { "inbound" } else { "outbound" });
                }
                self.event("partition", value);
                let what = match p {
                    Partition::OneWay { inbound, .. } => format!(
                        "one-way {} {}",
                        if *inbound { "into" } else { "out of" },
                        self.cluster.id(target)
                    ),
                    Partition::Isolate { .. } => {
                        format!("isolate {}", self.cluster.id(target))
                    }
                    _ => format!("partition {shape}"),
                };
                self.in_force.insert(id, what);
                self.show();
                Some(Active {
                    id,
                    undo: Undo::Net { event: "heal" },
                })
            }
            Fault::ClientPartition { targets, clients } => {
                let (nodes, leader) = self.resolve(targets);
                let pairs: Vec<(usize, usize)> = clients
                    .iter()
                    .flat_map(|&w| nodes.iter().map(move |&i| (w, i)))
                    .collect();
                let id = self.take_id();
                if let Err(e) = self.net.add(id, NetFault::ClientCut(pairs)) {
                    say(&format!("nemesis: {e:#}"));
                    self.skip("client-partition", json!({}), format!("{e:#}"));
                    return None;
                }
                self.count("client-partition");
                self.event(
                    "client-partition",
                    json!({"id": id, "nodes": self.ids(&nodes), "clients": clients,
                           "targets": targets.name(),
                           "leader": leader.map(|l| self.cluster.id(l))}),
                );
                self.in_force.insert(
                    id,
                    format!(
                        "cut {} client(s) from {}",
                        clients.len(),
                        self.ids(&nodes).join(",")
                    ),
                );
                self.show();
                Some(Active {
                    id,
                    undo: Undo::Net {
                        event: "client-heal",
                    },
                })
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
                let id = self.take_id();
                let fault = NetFault::Delay {
                    links: links.clone(),
                    base: Duration::from_millis(*base_ms),
                    jitter: Duration::from_millis(*jitter_ms),
                };
                if let Err(e) = self.net.add(id, fault) {
                    say(&format!("nemesis: {e:#}"));
                    self.skip("delay", json!({}), format!("{e:#}"));
                    return None;
                }
                self.count("delay");
                self.event(
                    "delay",
                    json!({"id": id, "links": self.names(&links), "base_ms": base_ms,
                           "jitter_ms": jitter_ms}),
                );
                let on = match nodes.as_slice() {
                    [] => "all links".to_string(),
                    [i] => format!("{}'s links", self.cluster.id(*i)),
                    _ => "some links".to_string(),
                };
                self.in_force
                    .insert(id, format!("delay {base_ms}±{jitter_ms}ms on {on}"));
                self.show();
                Some(Active {
                    id,
                    undo: Undo::Net { event: "undelay" },
                })
            }
            Fault::PowerCut { targets } => self.power_cut(targets),
            Fault::DiskError { target, ops, errno } => self.disk_error(*target, ops, errno),
            Fault::Bitflip { target, seed } => self.bitflip(*target, *seed),
            Fault::Membership(change) => self.member_change(change),
        }
    }

    fn kill(&mut self, nodes: Vec<usize>, value: Value, f: &str) -> Option<Active> {
        let up: Vec<usize> = nodes
            .into_iter()
            .filter(|&i| self.cluster.state(i) != NodeState::Down)
            .collect();
        if up.is_empty() {
            self.skip(f, value, "every target node was already down".into());
            return None;
        }
        // As close to simultaneous as signals get: SIGKILL every target first, reap after.
        self.cluster.kill_many(&up);
        self.count(f);
        if f == "kill" {
            if let Some(t) = value["targets"].as_str() {
                self.count(&format!("kill:{t}"));
            }
        }
        let id = self.take_id();
        let mut value = value;
        value["nodes"] = json!(self.ids(&up));
        value["id"] = json!(id);
        self.event(f, value);
        self.in_force
            .insert(id, format!("{f} {}", self.ids(&up).join(",")));
        self.show();
        Some(Active {
            id,
            undo: Undo::Restart(up),
        })
    }

    /// Undoes a fault.
    pub fn stop(&mut self, active: Active) {
        let id = active.id;
        match active.undo {
            Undo::Resume(nodes) => {
                let resumed: Vec<usize> = nodes
                    .into_iter()
                    .filter(|&i| self.cluster.resume(i))
                    .collect();
                if !resumed.is_empty() {
                    self.event("resume", json!({"id": id, "nodes": self.ids(&resumed)}));
                }
            }
            Undo::Restart(nodes) => {
                // A node restarted meanwhile (by an overlapping fault's end) stays as it is.
                let down: Vec<usize> = nodes
                    .into_iter()
                    .filter(|&i| self.cluster.state(i) == NodeState::Down)
                    .collect();
                self.restart(&down, "restart", Some(id));
            }
            Undo::Net { event } => {
                if let Err(e) = self.net.remove(id) {
                    say(&format!("nemesis: {e:#}"));
                }
                self.event(event, json!({"id": id}));
            }
            Undo::DiskHeal(node) => self.disk_heal(id, node),
            Undo::Unflip(node, flip) => self.unflip(id, node, flip),
            Undo::Rejoin(node) => self.rejoin_after_fault(id, node),
        }
        self.in_force.remove(&id);
        self.show();
    }

    /// Restarts `nodes` (which are down); a node that cannot be started is a failure of the run.
    pub(super) fn restart(&mut self, nodes: &[usize], why: &str, id: Option<u64>) {
        let mut started = Vec::new();
        for &i in nodes {
            let id = self.cluster.id(i).to_string();
            match self.cluster.spawn(i, why) {
                Ok(()) => started.push(id),
                Err(e) => {
                    let t =
                        self.event("restart", json!({"nodes": [id], "error": format!("{e:#}")}));
                    let msg = format!(
                        "node {id} could not be restarted at {:.1}s: {e:#}",
                        t as f64 / 1e9
                    );
                    say(&format!("nemesis: {msg}"));
                    self.failures.push(msg);
                }
            }
        }
        if !started.is_empty() {
            self.event("restart", json!({"id": id, "nodes": started}));
        }
    }

    /// Records and reports nodes that exited on their own: each is a failure of the run.
    pub fn notice_crashes(&mut self) {
        for (i, status) in self.cluster.reap_exited() {
            let id = self.cluster.id(i).to_string();
            if let Some(&fault) = self.disk_faulted.get(&i) {
                self.stopped_by_disk_error(i, fault, &status);
                continue;
            }
            let t = self.event("crash", json!({"node": id, "status": status}));
            let log = self.cluster.spec(i).log.clone();
            let msg = format!(
                "node {id} exited on its own at {:.1}s ({status}); last lines of {}:\n{}",
                t as f64 / 1e9,
                log.display(),
                log_tail(&log, 10)
            );
            say(&format!("harness run: {msg}"));
            self.failures.push(msg);
        }
    }

    /// Heals everything: network back to pass, paused nodes resumed, down nodes restarted.
    pub fn heal_everything(&mut self) {
        if self.net.faulty() {
            self.net.heal_all();
            self.event("heal", json!({"final": true}));
        }
        self.notice_crashes();
        let mut down = Vec::new();
        for i in 0..self.cluster.len() {
            match self.cluster.state(i) {
                NodeState::Paused => {
                    self.cluster.resume(i);
                    self.event(
                        "resume",
                        json!({"nodes": [self.cluster.id(i)], "final": true}),
                    );
                }
                NodeState::Down => down.push(i),
                NodeState::Running => {}
            }
        }
        self.restart(&down, "final recovery", None);
        if self.membership {
            self.rejoin_all();
        }
        self.in_force.clear();
        self.show();
    }
}

/// The fault counts as one line: `pause 2 (one 1, majority 1), kill 1, partition 3 (halves 1, ...)`.
pub fn counts_line(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    let mut parts = Vec::new();
    for kind in [
        "pause",
        "kill",
        "kill-all",
        "partition",
        "client-partition",
        "delay",
        "power-cut",
        "disk-error",
        "bitflip",
        "membership",
    ] {
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
