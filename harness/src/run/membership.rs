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
//! Only one member is out at a time: a second `Replace` while one is out is skipped, so the
//! cluster never drops below n-1 voters through this nemesis.

use super::launcher::NodeState;
use super::nemesis::{Active, Nemesis, Undo};
use super::progress::say;
use super::schedule::MemberChange;
use adapters::{AdminOp, NodeEndpoint, NodeStatus, Reply};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a removal may take, retries on `not_leader` and `busy` included.
const REMOVE_BUDGET: Duration = Duration::from_secs(8);
/// How long adding a member back may take while the run goes on (it catches up first).
const ADD_BUDGET: Duration = Duration::from_secs(15);
/// The same in the final recovery, when nothing else competes with it.
const FINAL_ADD_BUDGET: Duration = Duration::from_secs(40);
/// One admin request's deadline (raftkv answers `timeout` after 5 s by default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(7);

/// What an admin operation came to, after retries.
enum Outcome {
    /// Done, at this leader.
    Done(usize),
    /// Surely not done (a definite failure, or no leader to ask).
    Refused(String),
    /// Maybe done.
    Unknown(String),
}

impl Nemesis<'_> {
    pub(super) fn member_change(&mut self, change: &MemberChange) -> Option<Active> {
        match *change {
            MemberChange::Replace { target } => {
                let (node, _) = self.resolve_one(target);
                self.replace(node)
            }
            MemberChange::Transfer { to } => {
                self.transfer(to);
                None
            }
        }
    }

    fn replace(&mut self, node: usize) -> Option<Active> {
        let id = self.cluster.id(node).to_string();
        let value = json!({"node": id, "nodes": [id]});
        if let Some(out) = (0..self.cluster.len()).find(|&i| self.cluster.is_joining(i)) {
            let why = format!("{} is still out of the cluster", self.cluster.id(out));
            self.skip("member-remove", value, why);
            return None;
        }
        if self.disk_faulted.contains_key(&node) {
            self.skip("member-remove", value, "its disk is failing".into());
            return None;
        }
        let leader = self.find_leader();
        let op = AdminOp::RemoveMember { node: id.clone() };
        let removed_at = match self.admin(&op, REMOVE_BUDGET) {
            Outcome::Done(at) => at,
            Outcome::Refused(why) => {
                self.skip("member-remove", value, format!("remove_member: {why}"));
                return None;
            }
            Outcome::Unknown(why) => {
                // The removal may still commit: only a configuration without the node says it
                // is safe to wipe. Otherwise it stays, and the final recovery adds back
                // whatever is missing.
                match self.voters() {
                    Some((voters, at)) if !voters.contains(&id) => at,
                    _ => {
                        let why = format!("remove_member: {why}; {id} may still be a member");
                        self.skip("member-remove", value, why);
                        return None;
                    }
                }
            }
        };
        if self.cluster.state(node) != NodeState::Down {
            self.cluster.kill(node);
        }
        if let Err(e) = self.cluster.wipe(node) {
            let msg = format!("wiping {id} after its removal: {e:#}");
            say(&format!("nemesis: {msg}"));
            self.failures.push(msg);
            return None;
        }
        self.count("membership");
        self.count("membership:replace");
        let fault = self.take_id();
        self.event(
            "member-remove",
            json!({"id": fault, "node": id, "nodes": [id],
                   "leader": self.cluster.id(removed_at),
                   "was_leader": leader == Some(node)}),
        );
        self.in_force
            .insert(fault, format!("{id} out of the cluster"));
        self.show();
        Some(Active {
            id: fault,
            undo: Undo::Rejoin(node),
        })
    }

    /// Ends a `Replace`: the node comes back as a new member.
    pub(super) fn rejoin_after_fault(&mut self, fault: u64, node: usize) {
        self.rejoin(Some(fault), node, ADD_BUDGET);
    }

    /// Starts a removed node empty, as a new member, and adds it back.
    fn rejoin(&mut self, fault: Option<u64>, node: usize, budget: Duration) {
        let id = self.cluster.id(node).to_string();
        if self.cluster.state(node) == NodeState::Down {
            match self.cluster.spawn(node, "rejoining as a new member") {
                Ok(()) => {
                    self.event(
                        "restart",
                        json!({"id": fault, "nodes": [id], "joining": true}),
                    );
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
                    return;
                }
            }
        }
        let op = AdminOp::AddMember { node: id.clone() };
        let mut value = json!({"id": fault, "node": id, "nodes": [id]});
        if fault.is_none() {
            value["final"] = json!(true);
        }
        let added = match self.admin(&op, budget) {
            Outcome::Done(at) => Ok(at),
            Outcome::Refused(why) | Outcome::Unknown(why) => match self.voters() {
                // An add that timed out may have gone through after all.
                Some((voters, at)) if voters.contains(&id) => Ok(at),
                _ => Err(why),
            },
        };
        match added {
            Ok(at) => {
                self.cluster.joined(node);
                value["leader"] = json!(self.cluster.id(at));
                self.event("member-add", value);
            }
            Err(why) => {
                value["error"] = json!(why);
                self.event("member-add", value);
                if fault.is_none() {
                    let msg = format!("node {id} could not be added back as a member: {why}");
                    say(&format!("nemesis: {msg}"));
                    self.failures.push(msg);
                }
            }
        }
    }

    /// Adds back every member still out (final recovery): the nodes wiped and not yet added,
    /// and any node the leader's configuration lacks (a removal that timed out and committed
    /// later). Call with every node running.
    pub(super) fn rejoin_all(&mut self) {
        let mut out: Vec<usize> = (0..self.cluster.len())
            .filter(|&i| self.cluster.is_joining(i))
            .collect();
        if let Some((voters, _)) = self.voters() {
            for i in 0..self.cluster.len() {
                if !voters.iter().any(|v| v == self.cluster.id(i)) && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        for node in out {
            self.rejoin(None, node, FINAL_ADD_BUDGET);
        }
    }

    fn transfer(&mut self, to: usize) {
        let Some(from) = self.find_leader() else {
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
        let result = match self.ask(from, &op) {
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

    /// Sends `op` to the leader until it is done, surely refused, or `budget` runs out;
    /// `not_leader` and `busy` (another change under way) are retried.
    fn admin(&mut self, op: &AdminOp, budget: Duration) -> Outcome {
        let deadline = Instant::now() + budget;
        let mut last = String::from("no leader found");
        loop {
            if let Some(leader) = self.find_leader() {
                match self.ask(leader, op) {
                    Reply::Ok { .. } => return Outcome::Done(leader),
                    Reply::Info { error } => return Outcome::Unknown(error),
                    Reply::NotLeader { .. } => last = "not_leader".into(),
                    Reply::Fail { error, .. } if error.starts_with("busy") => last = error,
                    Reply::Fail { error, .. } if error.starts_with("connect") => last = error,
                    Reply::Fail { error, .. } => return Outcome::Refused(error),
                }
            }
            if Instant::now() >= deadline {
                return Outcome::Refused(last);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One admin request to node `at`.
    fn ask(&self, at: usize, op: &AdminOp) -> Reply {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let endpoint = NodeEndpoint::new(
            self.cluster.id(at),
            self.cluster.spec(at).client.to_string(),
        )
        .with_cluster(self.cluster.cluster_id().to_string());
        match self.cluster.probe().adapter.connect(&endpoint, deadline) {
            Ok(mut session) => session.admin(op, deadline),
            Err(e) => Reply::fail(format!("connect: {e}")),
        }
    }

    /// The voters in the leader's configuration, and the leader.
    fn voters(&self) -> Option<(Vec<String>, usize)> {
        let leader = self.find_leader()?;
        let status: NodeStatus = self
            .cluster
            .probe()
            .status(
                self.cluster.id(leader),
                self.cluster.spec(leader).client,
                Duration::from_secs(1),
            )
            .ok()?;
        Some((status.voters?, leader))
    }
}
