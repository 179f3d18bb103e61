//! The mixed-fault scenario that the seed sweep runs: random partitions (symmetric, one-way,
//! isolating the leader), loss, duplication, long delays, crashes and restarts, with clients
//! writing and reading throughout; then everything heals and liveness is checked.

use super::{Cluster, ReadCheck, SimConfig, Violation, WriteOrder};
use crate::types::{ConfChange, NodeId};
use rand::seq::IndexedRandom;
use rand::Rng;

/// Parameters of [`run_mixed`].
#[derive(Clone, Debug)]
pub struct MixedOptions {
    /// Cluster size.
    pub nodes: usize,
    /// Virtual milliseconds of faults.
    pub fault_ms: u64,
    /// Compact logs after this many applied entries (exercises InstallSnapshot).
    pub snapshot_after: Option<u64>,
    /// Asynchronous storage writes (see [`SimConfig::async_storage`]), with crashes inside
    /// batches being written.
    pub async_storage: bool,
    /// The simulated disk writer's order (asynchronous mode; [`WriteOrder::EntriesFirst`] is
    /// the planted durability bug).
    pub write_order: WriteOrder,
    /// PLANTED stale read (see [`crate::Config::planted_read_before_noop`]).
    pub planted_read_before_noop: bool,
    /// Which floors reads are checked against (see [`SimConfig::read_check`]).
    pub read_check: ReadCheck,
    /// Leadership transfers among the faults (a fifth of the fault events).
    pub transfers: bool,
    /// Membership changes among the faults (a third of the fault events): remove a voter (the
    /// leader too), wipe it once its removal is committed and restart it as a joining node
    /// under the same id, add it back as a learner, promote it once caught up.
    pub membership: bool,
    /// PLANTED (see [`crate::Config::planted_concurrent_conf_changes`]).
    pub planted_concurrent_conf_changes: bool,
    /// Turns on other planted bugs of [`crate::Config`] (`planted_vote_ignores_log`,
    /// `planted_commit_earlier_term`, `planted_vote_before_durable`) in every node.
    pub planted: fn(&mut crate::Config),
}

impl Default for MixedOptions {
    fn default() -> Self {
        MixedOptions {
            nodes: 5,
            fault_ms: 10_000,
            snapshot_after: Some(40),
            async_storage: false,
            write_order: WriteOrder::TermFirst,
            planted_read_before_noop: false,
            read_check: ReadCheck::All,
            transfers: false,
            membership: false,
            planted_concurrent_conf_changes: false,
            planted: |_| {},
        }
    }
}

/// What a run did, for reports and for checking that runs are not vacuous.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixedReport {
    /// Events checked.
    pub events: u64,
    /// Messages sent.
    pub messages: u64,
    /// Writes acknowledged.
    pub acked_writes: usize,
    /// Reads served and checked.
    pub reads: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Crashes that landed between two parts of a batch being written (asynchronous mode).
    pub torn_writes: u64,
    /// Applier snapshots that a leader's snapshot overtook (asynchronous mode).
    pub compaction_races: u64,
    /// Leadership transfers started.
    pub transfers: u64,
    /// Membership changes proposed and accepted by a leader.
    pub conf_changes: u64,
    /// Removed nodes wiped and restarted as joining nodes.
    pub rejoins: u64,
    /// Virtual time at the end (faults plus recovery).
    pub end_ms: u64,
}

/// One seeded run of the mixed-fault scenario. `Err` carries the first violated invariant.
pub fn run_mixed(seed: u64, opts: &MixedOptions) -> Result<MixedReport, Violation> {
    let mut cfg = SimConfig::new(opts.nodes, seed);
    cfg.snapshot_after = opts.snapshot_after;
    cfg.slow_disk = 0.2;
    cfg.async_storage = opts.async_storage;
    cfg.write_order = opts.write_order;
    cfg.read_check = opts.read_check;
    if opts.async_storage {
        cfg.crash_mid_write = 0.008;
    }
    // Vary batching per seed: one entry per message exercises the commit rule hardest.
    cfg.max_entries_per_msg = [1, 2, 3, 64][(seed % 4) as usize];
    // A quarter of the seeds run classic Raft (no pre-vote, no check-quorum), where
    // split votes and disruptive candidates are common.
    let classic = (seed / 4) % 4 == 3;
    cfg.raft = match (classic, opts.planted_read_before_noop) {
        (false, false) => |_| {},
        (true, false) => |c| {
            c.pre_vote = false;
            c.check_quorum = false;
        },
        (false, true) => |c| c.planted_read_before_noop = true,
        (true, true) => |c| {
            c.pre_vote = false;
            c.check_quorum = false;
            c.planted_read_before_noop = true;
        },
    };
    cfg.planted_concurrent_conf_changes = opts.planted_concurrent_conf_changes;
    cfg.planted = opts.planted;
    let mut c = Cluster::new(cfg);
    let n = c.len();
    let mut members = MembershipDriver::new(n);
    let mut cmd = seed << 20;
    let mut crashes = 0;
    let mut transfers = 0;
    let mut next_fault = 0;
    while c.now() < opts.fault_ms {
        let step = c.rng().random_range(5..40);
        c.run_for(step)?;
        client_ops(&mut c, &mut cmd)?;
        if c.now() >= next_fault {
            if opts.transfers && c.rng().random_bool(0.2) {
                transfers += u64::from(transfer(&mut c)?);
            }
            if opts.membership && c.rng().random_bool(0.35) {
                members.step(&mut c, true)?;
            }
            crashes += inject_fault(&mut c)?;
            next_fault = c.now() + c.rng().random_range(100..800);
        }
    }
    // Heal everything; a leader must emerge and a new proposal must commit everywhere.
    c.heal();
    for i in 0..n {
        c.restart(i)?;
    }
    c.check_one_leader()?;
    if opts.membership {
        members.restore_all(&mut c)?;
    }
    for _ in 0..3 {
        cmd += 1;
        c.one(cmd, n, true)?;
    }
    Ok(MixedReport {
        events: c.checker().events,
        messages: c.messages_sent,
        acked_writes: c.acked.len(),
        reads: c.checker().reads,
        crashes,
        torn_writes: c.torn_writes,
        compaction_races: c.compaction_races,
        transfers,
        conf_changes: members.changes,
        rejoins: members.rejoins,
        end_ms: c.now(),
    })
}

/// Clients: writes and reads, aimed at self-proclaimed leaders most of the time (stale leaders
/// included, which is what makes stale reads observable) and at random nodes otherwise.
fn client_ops(c: &mut Cluster, cmd: &mut u64) -> Result<(), Violation> {
    let n = c.len();
    let leaders: Vec<usize> = c.leaders().into_iter().map(|(i, _)| i).collect();
    let pick = |c: &mut Cluster| -> usize {
        match leaders.choose(c.rng()) {
            Some(&l) if c.rng().random_bool(0.8) => l,
            _ => c.rng().random_range(0..n),
        }
    };
    if c.rng().random_bool(0.5) {
        let i = pick(c);
        *cmd += 1;
        c.propose(i, *cmd)?;
    }
    if c.rng().random_bool(0.4) {
        let i = pick(c);
        c.read(i)?;
    }
    Ok(())
}

/// One random fault (or repair). Returns the number of crashes injected.
/// The newest leader hands over to a random other node.
fn transfer(c: &mut Cluster) -> Result<bool, Violation> {
    let Some(leader) = c
        .leaders()
        .into_iter()
        .max_by_key(|&(_, t)| t)
        .map(|(i, _)| i)
    else {
        return Ok(false);
    };
    let n = c.len();
    let to = (leader + c.rng().random_range(1..n)) % n;
    c.transfer_leader(leader, to)
}

fn inject_fault(c: &mut Cluster) -> Result<u64, Violation> {
    let n = c.len();
    let leader = c
        .leaders()
        .into_iter()
        .max_by_key(|&(_, t)| t)
        .map(|(i, _)| i);
    let roll = c.rng().random_range(0..100);
    match roll {
        0..=14 => c.heal(),
        15..=26 => {
            // Random split: each node joins side A or B.
            let a: Vec<usize> = (0..n).filter(|_| c.rng().random_bool(0.5)).collect();
            let b: Vec<usize> = (0..n).filter(|x| !a.contains(x)).collect();
            c.net.partition(&a, &b);
        }
        27..=36 => {
            let i = leader.unwrap_or_else(|| c.rng().random_range(0..n));
            c.disconnect(i);
        }
        37..=44 => {
            // One-way cuts.
            for _ in 0..c.rng().random_range(1..=n) {
                let (x, y) = (c.rng().random_range(0..n), c.rng().random_range(0..n));
                if x != y {
                    c.net.set_link(x, y, false);
                }
            }
        }
        45..=56 => {
            let i = if c.rng().random_bool(0.5) {
                leader.unwrap_or(0)
            } else {
                c.rng().random_range(0..n)
            };
            if c.is_up(i) {
                c.crash(i);
                return Ok(1);
            }
        }
        57..=62 => {
            // A quick reboot: messages in flight reach the restarted node.
            let i = c.rng().random_range(0..n);
            if c.is_up(i) {
                let after = c.rng().random_range(1..30);
                c.reboot(i, after);
                return Ok(1);
            }
        }
        63..=74 => {
            let down: Vec<usize> = (0..n).filter(|&i| !c.is_up(i)).collect();
            if let Some(&i) = down.choose(c.rng()) {
                c.restart(i)?;
            }
        }
        75..=84 => {
            let unreliable = c.net.drop == 0.0;
            c.net.drop = if unreliable { 0.1 } else { 0.0 };
            c.net.duplicate = if unreliable { 0.05 } else { 0.0 };
            c.net.long_delay = if unreliable { 0.05 } else { 0.0 };
            c.net.long_delay_ms = 300;
        }
        _ => {}
    }
    Ok(0)
}

/// An election storm: 5 nodes, slow links (5-30 ms), the leader cut off often, and nodes
/// rebooting every few milliseconds, so that vote requests and answers cross reboots. Votes
/// that are not durable show up here as two leaders in one term. Even seeds run classic Raft
/// (no pre-vote, no check-quorum), odd seeds the defaults. Runs `duration_ms` of virtual time.
pub fn run_election_storm(seed: u64, duration_ms: u64) -> Result<u64, Violation> {
    let mut cfg = SimConfig::new(5, seed);
    if seed & 1 == 0 {
        cfg.raft = |c| {
            c.pre_vote = false;
            c.check_quorum = false;
        };
    }
    let mut c = Cluster::new(cfg);
    c.net.delay_ms = (5, 30);
    let mut elections = 0;
    while c.now() < duration_ms {
        let ms = c.rng().random_range(3..15);
        c.run_for(ms)?;
        let i = c.rng().random_range(0..5);
        if c.is_up(i) && c.rng().random_bool(0.5) {
            let after = c.rng().random_range(1..10);
            c.reboot(i, after);
        }
        if let Some(&(leader, _)) = c.leaders().first() {
            if c.is_connected(leader) && c.rng().random_bool(0.1) {
                c.disconnect(leader);
                elections += 1;
            }
        }
        if c.rng().random_bool(0.05) {
            (0..5).for_each(|k| c.connect(k));
        }
    }
    Ok(elections)
}

/// Drives membership changes from the newest leader's view: promote a learner that caught up;
/// re-add a removed node (wiped first, once its removal is committed); or remove a voter.
struct MembershipDriver {
    /// Per node: wiped since its removal and not yet added back.
    wiped: Vec<bool>,
    changes: u64,
    rejoins: u64,
}

impl MembershipDriver {
    fn new(n: usize) -> MembershipDriver {
        MembershipDriver {
            wiped: vec![false; n],
            changes: 0,
            rejoins: 0,
        }
    }

    /// One membership action; `remove` allows removals (not while restoring).
    fn step(&mut self, c: &mut Cluster, remove: bool) -> Result<(), Violation> {
        let Some(leader) = c
            .leaders()
            .into_iter()
            .max_by_key(|&(_, t)| t)
            .map(|(i, _)| i)
        else {
            return Ok(());
        };
        let st = c.node(leader).expect("a leader is up").status();
        let m = &st.membership;
        let committed = st.config_index <= st.commit;
        let id = |i: usize| NodeId(i as u64 + 1);
        for (k, w) in self.wiped.iter_mut().enumerate() {
            if m.contains(id(k)) {
                *w = false;
            }
        }
        let caught_up = st
            .progress
            .iter()
            .find(|(p, matched)| m.is_learner(*p) && *matched >= st.commit)
            .map(|(p, _)| *p);
        let change = if let Some(l) = caught_up {
            Some(ConfChange::Promote(l))
        } else if let Some(k) = (0..c.len()).find(|&k| !m.contains(id(k)) && self.wiped[k]) {
            Some(ConfChange::AddLearner(id(k)))
        } else if let Some(k) = (0..c.len()).find(|&k| !m.contains(id(k))) {
            // Its removal is committed: nothing of its old membership may come back.
            if committed {
                c.wipe_and_join(k)?;
                self.wiped[k] = true;
                self.rejoins += 1;
            }
            None
        } else {
            None
        };
        let change = match change {
            Some(ch) => Some(ch),
            None if remove && m.voters.len() > 3 && c.rng().random_bool(0.5) => {
                let v = if c.rng().random_bool(0.3) {
                    id(leader)
                } else {
                    *m.voters.choose(c.rng()).expect("voters")
                };
                Some(ConfChange::Remove(v))
            }
            None => None,
        };
        if let Some(ch) = change {
            if c.conf_change(leader, ch)?.is_some() {
                self.changes += 1;
            }
        }
        Ok(())
    }

    /// After the faults: bring every node back as a voter (liveness of the re-add path).
    fn restore_all(&mut self, c: &mut Cluster) -> Result<(), Violation> {
        let n = c.len();
        let deadline = c.now() + 30_000;
        while c.now() < deadline {
            c.run_for(100)?;
            let done = c.leaders().into_iter().any(|(i, _)| {
                let st = c.node(i).expect("up").status();
                st.membership.voters.len() == n && st.config_index <= st.commit
            });
            if done {
                return Ok(());
            }
            self.step(c, false)?;
        }
        Err(Violation {
            time_ms: c.now(),
            what: format!(
                "liveness: the removed nodes were not all added back; {}",
                c.describe()
            ),
        })
    }
}
