//! Membership changes: a member removed, wiped and added back as a new member, and leadership
//! handed to another node, through the system's admin operations (`add_member`,
//! `remove_member`, `transfer_leader`; docs/protocol.md) sent to the leader.
//!
//! Events (see nemesis.rs for the others):
//! - `member-remove` / `member-add`, value `{"id": 6, "node": "n3", "nodes": ["n3"],
//!   "leader": "n1", "was_leader": false}`: `remove_member` committed, then the node was killed
//!   and its data directory emptied; when the fault ends it is started with the spec's
//!   `[membership] join_args` and added back. A `restart` event with `"joining": true` comes
//!   between them. An add that fails carries `"error"`, and the final recovery tries again
//!   (`"final": true`); a node that can never be added back fails the run;
//! - `transfer-leader`, value `{"from": "n1", "to": "n4", "result": "ok"}` (`to` is null when
//!   the store picks; `result` is `ok` or the error): an instant change, nothing to undo.
//!
//! Removing and adding take a while (an add waits for the new member to catch up), and may not
//! finish at all while other faults hold the cluster without a leader. So they run in the
//! background ([`InFlight`]) and the nemesis loop goes on healing and starting other faults;
//! [`Nemesis::poll_membership`] takes their outcome. Only one member is out at a time: a second
//! replacement while one is out (or being removed or added) is skipped.

use super::launcher::NodeState;
use super::nemesis::{Active, Nemesis, Undo};
use super::probe::Probe;
use super::progress::say;
use super::schedule::MemberChange;
use crate::system::LeaderFind;
use adapters::{AdminOp, NodeEndpoint, Reply};
use serde_json::json;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a removal may take, retries on `not_leader` and `busy` included.
const REMOVE_BUDGET: Duration = Duration::from_secs(10);
/// How long adding a member back may take while the run goes on (it catches up first).
const ADD_BUDGET: Duration = Duration::from_secs(20);
/// The same in the final recovery, when every fault is healed.
const FINAL_ADD_BUDGET: Duration = Duration::from_secs(40);
/// One admin request's deadline (raftkv answers `timeout` after 5 s by default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(7);

/// What an admin operation came to, after retries.
#[derive(Debug)]
enum Outcome {
    /// Done, at this leader.
    Done(usize),
    /// Surely not done (a definite failure, or no leader to ask before the budget ran out).
    Refused(String),
    /// Maybe done.
    Unknown(String),
}

/// A removal or an addition under way in the background.
pub(super) struct InFlight {
    fault: u64,
    node: usize,
    adding: bool,
    /// The leader when the removal was asked for (to record whether it removed itself).
    leader: Option<usize>,
    /// The fault ended while its removal was still under way: add the node back as soon as
    /// the removal is done.
    rejoin: bool,
    handle: JoinHandle<Outcome>,
}

/// What a background request needs to reach the nodes: no borrow of the cluster.
#[derive(Clone)]
struct Reach {
    probe: Probe,
    cluster_id: String,
    /// (index, id, client address) of every node.
    nodes: Vec<(usize, String, SocketAddr)>,
}

impl Reach {
    /// Sends `op` to the leader until it is done, surely refused, or `budget` runs out;
    /// `not_leader`, `busy` (another change under way) and failed connections are retried.
    fn admin(&self, op: &AdminOp, budget: Duration) -> Outcome {
        let deadline = Instant::now() + budget;
        let mut last = String::from("no leader found");
        loop {
            if let Some(leader) = self.probe.find_leader(&self.nodes) {
                match self.ask(leader, op) {
                    Reply::Ok { .. } => return Outcome::Done(leader),
                    Reply::Info { error } => return Outcome::Unknown(error),
                    Reply::NotLeader { .. } => last = "not_leader".into(),
                    Reply::Fail { error, .. }
                        if error.starts_with("busy") || error.starts_with("connect") =>
                    {
                        last = error
                    }
                    Reply::Fail { error, .. } => return Outcome::Refused(error),
                }
            }
            if Instant::now() >= deadline || super::launcher::shutting_down() {
                return Outcome::Refused(last);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One admin request to node `at`.
    fn ask(&self, at: usize, op: &AdminOp) -> Reply {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let Some((_, id, addr)) = self.nodes.iter().find(|(i, _, _)| *i == at) else {
            return Reply::fail(format!("no node {at}"));
        };
        let endpoint =
            NodeEndpoint::new(id.clone(), addr.to_string()).with_cluster(self.cluster_id.clone());
        match self.probe.adapter.connect(&endpoint, deadline) {
            Ok(mut session) => session.admin(op, deadline),
            Err(e) => Reply::fail(format!("connect: {e}")),
        }
    }

    /// The voters in the leader's configuration, and the leader.
    fn voters(&self) -> Option<(Vec<String>, usize)> {
        let leader = self.probe.find_leader(&self.nodes)?;
        let (_, id, addr) = self.nodes.iter().find(|(i, _, _)| *i == leader)?;
        let status = self.probe.status(id, *addr, Duration::from_secs(1)).ok()?;
        Some((status.voters?, leader))
    }
}

impl Nemesis<'_> {
    fn reach(&self) -> Reach {
        Reach {
            probe: self.cluster.probe().clone(),
            cluster_id: self.cluster.cluster_id().to_string(),
            nodes: (0..self.cluster.len())
                .map(|i| {
                    (
                        i,
                        self.cluster.id(i).to_string(),
                        self.cluster.spec(i).client,
                    )
                })
                .collect(),
        }
    }

    pub(super) fn member_change(&mut self, change: &MemberChange) -> Option<Active> {
        match *change {
            MemberChange::Replace { target } => {
                let (node, leader) = self.resolve_one(target);
                self.replace(node, leader)
            }
            MemberChange::Transfer { to } => {
                self.transfer(to);
                None
            }
        }
    }

    /// Starts removing `node` in the background; [`Self::poll_membership`] kills and wipes it
    /// once the removal has committed.
    fn replace(&mut self, node: usize, leader: Option<usize>) -> Option<Active> {
        let id = self.cluster.id(node).to_string();
        let value = json!({"node": id, "nodes": [id]});
        if let Some(f) = &self.member_op {
            let why = format!(
                "{} is being {}",
                self.cluster.id(f.node),
                if f.adding { "added" } else { "removed" }
            );
            self.skip("member-remove", value, why);
            return None;
        }
        if let Some(out) = (0..self.cluster.len()).find(|&i| self.cluster.is_joining(i)) {
            let why = format!("{} is still out of the cluster", self.cluster.id(out));
            self.skip("member-remove", value, why);
            return None;
        }
        if self.disk_faulted.contains_key(&node) {
            self.skip("member-remove", value, "its disk is failing".into());
            return None;
        }
        let fault = self.take_id();
        let reach = self.reach();
        let op = AdminOp::RemoveMember { node: id.clone() };
        let handle = std::thread::spawn(move || reach.admin(&op, REMOVE_BUDGET));
        self.member_op = Some(InFlight {
            fault,
            node,
            adding: false,
            leader,
            rejoin: false,
            handle,
        });
        self.in_force.insert(fault, format!("removing {id}"));
        self.show();
        Some(Active {
            id: fault,
            undo: Undo::Rejoin(node),
        })
    }

    /// Takes the outcome of a removal or addition that has finished (all of it when `wait`).
    pub fn poll_membership(&mut self, wait: bool) {
        let finished = self
            .member_op
            .as_ref()
            .is_some_and(|f| wait || f.handle.is_finished());
        if !finished {
            return;
        }
        let Some(f) = self.member_op.take() else {
            return;
        };
        let outcome = f
            .handle
            .join()
            .unwrap_or_else(|_| Outcome::Refused("the request thread panicked".into()));
        if f.adding {
            self.added(Some(f.fault), f.node, outcome, false);
            if self.cluster.is_joining(f.node) && !wait {
                // Most often no leader could be found under the faults of the moment: try
                // again (each try records its error), until it works or the final recovery.
                self.start_adding(f.fault, f.node);
            }
        } else {
            self.removed(f.fault, f.node, f.leader, outcome);
            if f.rejoin {
                self.rejoin_after_fault(f.fault, f.node);
            }
        }
    }

    fn removed(&mut self, fault: u64, node: usize, leader: Option<usize>, outcome: Outcome) {
        let id = self.cluster.id(node).to_string();
        let value = json!({"id": fault, "node": id, "nodes": [id]});
        let at = match outcome {
            Outcome::Done(at) => at,
            Outcome::Refused(why) => {
                self.in_force.remove(&fault);
                self.skip("member-remove", value, format!("remove_member: {why}"));
                return;
            }
            // The removal may still commit: only a configuration without the node says it
            // is safe to wipe. Otherwise it stays, and the final recovery adds back whatever
            // is missing.
            Outcome::Unknown(why) => match self.reach().voters() {
                Some((voters, at)) if !voters.contains(&id) => at,
                _ => {
                    self.in_force.remove(&fault);
                    let why = format!("remove_member: {why}; {id} may still be a member");
                    self.skip("member-remove", value, why);
                    return;
                }
            },
        };
        if self.cluster.state(node) != NodeState::Down {
            self.cluster.kill(node);
        }
        if let Err(e) = self.cluster.wipe(node) {
            let msg = format!("wiping {id} after its removal: {e:#}");
            say(&format!("nemesis: {msg}"));
            self.failures.push(msg);
            return;
        }
        self.count("membership");
        self.count("membership:replace");
        self.event(
            "member-remove",
            json!({"id": fault, "node": id, "nodes": [id], "leader": self.cluster.id(at),
                   "was_leader": leader == Some(node)}),
        );
        self.in_force
            .insert(fault, format!("{id} out of the cluster"));
        self.show();
    }

    /// Ends a `Replace`: the node comes back as a new member, added in the background.
    pub(super) fn rejoin_after_fault(&mut self, fault: u64, node: usize) {
        // A removal still under way is not waited for (the schedule goes on): the node comes
        // back once it is done.
        if let Some(f) = self.member_op.as_mut() {
            if f.fault == fault && !f.adding {
                f.rejoin = true;
                return;
            }
        }
        if !self.cluster.is_joining(node) {
            return;
        }
        if !self.start_joining(Some(fault), node) {
            return;
        }
        self.start_adding(fault, node);
    }

    fn start_adding(&mut self, fault: u64, node: usize) {
        let reach = self.reach();
        let op = AdminOp::AddMember {
            node: self.cluster.id(node).to_string(),
        };
        let handle = std::thread::spawn(move || reach.admin(&op, ADD_BUDGET));
        self.member_op = Some(InFlight {
            fault,
            node,
            adding: true,
            leader: None,
            rejoin: false,
            handle,
        });
        self.in_force
            .insert(fault, format!("adding {}", self.cluster.id(node)));
    }

    /// Starts a wiped node (if down) with the join arguments; false if it would not start.
    fn start_joining(&mut self, fault: Option<u64>, node: usize) -> bool {
        if self.cluster.state(node) != NodeState::Down {
            return true;
        }
        let id = self.cluster.id(node).to_string();
        match self.cluster.spawn(node, "rejoining as a new member") {
            Ok(()) => {
                self.event(
                    "restart",
                    json!({"id": fault, "nodes": [id], "joining": true}),
                );
                true
            }
            Err(e) => {
                let t = self.event(
                    "restart",
                    json!({"nodes": [id], "joining": true, "error": format!("{e:#}")}),
                );
                let msg = format!(
                    "node {id} could not be started as a new member at {:.1}s: {e:#}",
                    t as f64 / 1e9
                );
                say(&format!("nemesis: {msg}"));
                self.failures.push(msg);
                false
            }
        }
    }

    /// Records an addition's outcome; a failed final one fails the run.
    fn added(&mut self, fault: Option<u64>, node: usize, outcome: Outcome, last_try: bool) {
        let id = self.cluster.id(node).to_string();
        let mut value = json!({"id": fault, "node": id, "nodes": [id]});
        if fault.is_none() {
            value["final"] = json!(true);
        }
        let added = match outcome {
            Outcome::Done(at) => Ok(at),
            Outcome::Refused(why) | Outcome::Unknown(why) => match self.reach().voters() {
                // An add that timed out may have gone through after all.
                Some((voters, at)) if voters.contains(&id) => Ok(at),
                _ => Err(why),
            },
        };
        match added {
            Ok(at) => {
                if let Some(f) = fault {
                    self.in_force.remove(&f);
                    self.show();
                }
                self.cluster.joined(node);
                value["leader"] = json!(self.cluster.id(at));
                self.event("member-add", value);
            }
            Err(why) => {
                value["error"] = json!(why);
                self.event("member-add", value);
                if last_try {
                    let msg = format!("node {id} could not be added back as a member: {why}");
                    say(&format!("nemesis: {msg}"));
                    self.failures.push(msg);
                }
            }
        }
    }

    /// Adds back every member still out (final recovery, every fault healed): the nodes wiped
    /// and not yet added, and any node the leader's configuration lacks (a removal that timed
    /// out and committed later).
    pub(super) fn rejoin_all(&mut self) {
        // A removal that finishes here may start its node's addition: wait for that one too.
        while self.member_op.is_some() {
            self.poll_membership(true);
        }
        let mut out: Vec<usize> = (0..self.cluster.len())
            .filter(|&i| self.cluster.is_joining(i))
            .collect();
        let reach = self.reach();
        // Every fault is healed, but an election may be under way: give it time.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut voters = reach.voters();
        while voters.is_none()
            && Instant::now() < deadline
            && self.cluster.probe().leader == LeaderFind::Status
        {
            std::thread::sleep(Duration::from_millis(300));
            voters = reach.voters();
        }
        if let Some((voters, _)) = voters {
            for i in 0..self.cluster.len() {
                if !voters.iter().any(|v| v == self.cluster.id(i)) && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        for node in out {
            if !self.start_joining(None, node) {
                continue;
            }
            let op = AdminOp::AddMember {
                node: self.cluster.id(node).to_string(),
            };
            let outcome = reach.admin(&op, FINAL_ADD_BUDGET);
            self.added(None, node, outcome, true);
        }
    }

    fn transfer(&mut self, to: usize) {
        let reach = self.reach();
        let Some(from) = reach.probe.find_leader(&reach.nodes) else {
            self.skip(
                "transfer-leader",
                json!({"to": self.cluster.id(to)}),
                "no leader found".into(),
            );
            return;
        };
        let target = (to != from).then(|| self.cluster.id(to).to_string());
        let op = AdminOp::TransferLeader {
            node: target.clone(),
        };
        let result = match reach.ask(from, &op) {
            Reply::Ok { .. } => "ok".to_string(),
            Reply::NotLeader { .. } => "not_leader".to_string(),
            Reply::Fail { error, .. } | Reply::Info { error } => error,
        };
        self.count("membership");
        self.count("membership:transfer");
        self.event(
            "transfer-leader",
            json!({"from": self.cluster.id(from), "to": target, "result": result}),
        );
    }
}
