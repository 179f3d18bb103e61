//! A simulated cluster: nodes, their disks and state machines, the event queue, and the
//! controls that tests use.

use super::checker::{payload_hash, Checker, ReadCheck, ReadFloor, Violation};
use super::{mix, Network};
use crate::types::{
    ConfChange, Entry, EntryPayload, HardState, Index, Membership, NodeId, Snapshot, Term,
};
use crate::{ApplyTask, Config, Message, MessageBody, PersistTask, RawNode, Ready, Restored};
use std::collections::VecDeque;
mod observe;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Parameters of a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of nodes (ids `1..=nodes`).
    pub nodes: usize,
    /// Seed of every random decision.
    pub seed: u64,
    /// Virtual milliseconds per tick.
    pub tick_ms: u64,
    /// Compact a node's log once this many applied entries are in memory.
    pub snapshot_after: Option<u64>,
    /// Probability that a node handles its `Ready` a little later instead of at once (a slow
    /// disk): a crash in between loses what it had not persisted.
    pub slow_disk: f64,
    /// Adjusts each node's configuration.
    pub raft: fn(&mut Config),
    /// Turns on planted bugs in each node's configuration, after `raft` (kept apart so that a
    /// scenario's own adjustments cannot switch one off).
    pub planted: fn(&mut Config),
    /// Each node's [`Config::max_entries_per_msg`]. Small values split the log into several
    /// AppendEntries, which exposes commit-rule bugs (paper Figure 8) that batching hides.
    pub max_entries_per_msg: usize,
    /// Asynchronous storage writes ([`RawNode::advance_async`]), modelled on raftkv's write
    /// path: each node has a disk queue that a simulated disk writer takes after a random
    /// delay (group commit) and writes **part by part** (term and vote, snapshot, entries, a
    /// compaction), each part a separate event, so a crash can land between the parts of one
    /// batch; then the persisted report, then the held messages. A crash loses what is queued
    /// and the parts not yet written. Committed entries go to an applier queue that lags by a
    /// random delay, so compactions race leaders' snapshots.
    pub async_storage: bool,
    /// The order in which the simulated disk writer writes a batch's parts (asynchronous
    /// mode).
    pub write_order: WriteOrder,
    /// Asynchronous mode: the probability that the process dies just before each part a disk
    /// writer writes (it restarts a little later), so that crashes land inside batches.
    pub crash_mid_write: f64,
    /// Which floors reads are checked against; weaker ones only to show what they miss.
    pub read_check: ReadCheck,
    /// The first this many nodes form the initial configuration; the others start as joining
    /// nodes (no configuration) until a leader adds them. `None`: all of them.
    pub initial_voters: Option<usize>,
    /// PLANTED (see [`Config::planted_concurrent_conf_changes`]).
    pub planted_concurrent_conf_changes: bool,
}

/// How a simulated disk writer orders the parts of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteOrder {
    /// Term and vote, then the snapshot, then the entries, with a commit index that does not
    /// cover what the rest of the batch replaces: raftkv's rule (`storage/batch.rs`).
    #[default]
    TermFirst,
    /// PLANTED: snapshot, entries, then term and vote, the order raftkv used before. A crash
    /// between leaves an entry whose term is above the durable term, and the node never
    /// restarts.
    EntriesFirst,
}

impl SimConfig {
    /// `nodes` nodes, seed `seed`, 10 ms ticks, no snapshots, no slow disk, default Raft
    /// configuration.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            tick_ms: 10,
            snapshot_after: None,
            slow_disk: 0.0,
            raft: |_| {},
            planted: |_| {},
            max_entries_per_msg: 64,
            async_storage: false,
            write_order: WriteOrder::TermFirst,
            crash_mid_write: 0.0,
            read_check: ReadCheck::All,
            initial_voters: None,
            planted_concurrent_conf_changes: false,
        }
    }
}

#[derive(Debug)]
enum Event {
    Tick(usize),
    Deliver(usize, Message),
    Ready(usize),
    Restart(usize),
    /// The disk writer of node `i` (in incarnation `.1`) takes its queue.
    Flush(usize, u64),
    /// The disk writer of node `i` (in incarnation `.1`) writes the next part of its batch.
    DiskStep(usize, u64),
    /// The applier of node `i` (in incarnation `.1`) applies what is queued.
    Apply(usize, u64),
    /// The applier's snapshot of node `i` (in incarnation `.1`) through `.2` reaches the core.
    Compact(usize, u64, Index, Vec<u8>),
}

/// One part of a batch the simulated disk writer is writing.
#[derive(Debug)]
enum DiskPart {
    HardState(HardState),
    Snapshot(Snapshot),
    /// Entries, and the node's term when they were handed out (for the checker).
    Entries(Vec<Entry>, Term),
    Compact(Snapshot),
    /// Everything before is durable: report it and release the tasks' messages.
    Release(Vec<PersistTask>),
}

/// A write queued for a simulated disk writer (asynchronous mode).
#[derive(Debug)]
enum DiskOp {
    /// A Ready's write, and the node's term when it was made (for the checker).
    Persist(PersistTask, Term),
    /// A snapshot of the applied state: store it, then drop the entries it covers.
    Compact(Snapshot),
}

#[derive(Debug)]
struct Queued {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
struct Disk {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Disk {
    /// Whether the durable state holds the entry `(index, term)` (or a snapshot covering it).
    fn holds(&self, index: Index, term: Term) -> bool {
        let base = self.snapshot.as_ref().map_or(Index(0), |s| s.meta.index);
        if index <= base {
            return true;
        }
        self.entries
            .get((index.0 - base.0 - 1) as usize)
            .is_some_and(|e| e.term == term)
    }

    /// Stores a snapshot of the applied state and drops the entries it covers. The entries
    /// through its index are on this disk already: they were queued before it.
    fn compact(&mut self, snapshot: Snapshot) {
        let base = self.snapshot.as_ref().map_or(Index(0), |s| s.meta.index);
        let index = snapshot.meta.index;
        assert!(
            index > base,
            "compaction to {index} behind the snapshot at {base}"
        );
        self.entries.drain(..(index.0 - base.0) as usize);
        self.snapshot = Some(snapshot);
    }
}

/// The application: a state machine summarised by its applied index and the chain hash of
/// everything applied; the snapshot data is those two numbers.
#[derive(Clone, Copy, Debug, Default)]
struct StateMachine {
    applied: Index,
    hash: u64,
}

impl StateMachine {
    fn encode(&self) -> Vec<u8> {
        [self.applied.0.to_le_bytes(), self.hash.to_le_bytes()].concat()
    }

    fn decode(data: &[u8]) -> StateMachine {
        let word = |k: usize| {
            u64::from_le_bytes(data[8 * k..8 * k + 8].try_into().expect("16-byte snapshot"))
        };
        StateMachine {
            applied: Index(word(0)),
            hash: word(1),
        }
    }

    fn apply(&mut self, e: &Entry) {
        self.applied = e.index;
        self.hash = mix(mix(self.hash, e.term.0), payload_hash(&e.payload));
    }
}

/// A client operation waiting at a node.
#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    /// What the read must see, fixed when it began.
    floor: ReadFloor,
    /// Set once the ReadState arrived: serve when applied reaches it.
    index: Option<Index>,
}

#[derive(Debug)]
struct Slot {
    id: NodeId,
    node: Option<RawNode>,
    disk: Disk,
    sm: StateMachine,
    /// Proposals not yet known committed: (term, index, command).
    proposals: Vec<(Term, Index, u64)>,
    reads: Vec<PendingRead>,
    ready_scheduled: bool,
    incarnation: u64,
    /// Asynchronous mode: writes not yet taken by the disk writer (lost on a crash), and
    /// whether a flush is scheduled or in progress.
    disk_queue: VecDeque<DiskOp>,
    flush_scheduled: bool,
    /// Asynchronous mode: the parts of the batch being written (lost on a crash).
    writing: VecDeque<DiskPart>,
    /// Asynchronous mode: work for the lagging applier, and whether it is due.
    apply_queue: VecDeque<ApplyTask>,
    apply_scheduled: bool,
    /// Asynchronous mode: a snapshot of the applier is on its way to the core.
    compacting: bool,
    /// The highest commit index of this node checked to be durable on a majority.
    checked_commit: Index,
    /// Started without a configuration (a joining node, as raftkv's `--join`), and so on
    /// every restart until its disk holds one.
    joining: bool,
}

/// A simulated cluster under test. Every method runs deterministically from the seed.
#[derive(Debug)]
pub struct Cluster {
    cfg: SimConfig,
    slots: Vec<Slot>,
    /// The network's fault settings; change them freely between calls.
    pub net: Network,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    now: u64,
    rng: SmallRng,
    checker: Checker,
    /// Print every delivery, crash and start to stderr (for replaying a failing seed).
    pub trace: bool,
    /// Nodes cut off by `disconnect`.
    disconnected: Vec<bool>,
    /// Messages sent so far (including lost ones).
    pub messages_sent: u64,
    /// Messages sent so far, by kind.
    pub sent_by_kind: BTreeMap<&'static str, u64>,
    /// Acknowledged writes: (command, index).
    pub acked: Vec<(u64, Index)>,
    /// Crashes that landed between two parts of a batch being written.
    pub torn_writes: u64,
    /// Applier snapshots that reached the core after a leader's newer snapshot.
    pub compaction_races: u64,
    next_ctx: u64,
}

impl Cluster {
    /// Starts `cfg.nodes` fresh nodes on a reliable network.
    pub fn new(cfg: SimConfig) -> Cluster {
        let rng = SmallRng::seed_from_u64(cfg.seed);
        let k = cfg.initial_voters.unwrap_or(cfg.nodes) as u64;
        let mut checker = Checker::new(Membership::with_voters((1..=k).map(NodeId).collect()));
        checker.read_check = cfg.read_check;
        let mut c = Cluster {
            slots: Vec::new(),
            net: Network::reliable(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rng,
            checker,
            messages_sent: 0,
            disconnected: vec![false; cfg.nodes],
            trace: false,
            sent_by_kind: BTreeMap::new(),
            acked: Vec::new(),
            torn_writes: 0,
            compaction_races: 0,
            next_ctx: 1,
            cfg,
        };
        // RAFT_TRACE=1 prints every event of a replayed seed.
        c.trace = std::env::var_os("RAFT_TRACE").is_some();
        for i in 0..c.cfg.nodes {
            let slot = Slot {
                id: NodeId(i as u64 + 1),
                node: None,
                disk: Disk::default(),
                sm: StateMachine::default(),
                proposals: Vec::new(),
                reads: Vec::new(),
                ready_scheduled: false,
                incarnation: 0,
                disk_queue: VecDeque::new(),
                flush_scheduled: false,
                writing: VecDeque::new(),
                apply_queue: VecDeque::new(),
                apply_scheduled: false,
                compacting: false,
                checked_commit: Index(0),
                joining: c.cfg.initial_voters.is_some_and(|k| i >= k),
            };
            c.slots.push(slot);
            c.start(i).expect("a fresh node starts");
            // Nodes tick with independent phases, as real clocks would.
            let phase = c.rng.random_range(0..c.cfg.tick_ms);
            c.schedule(phase, Event::Tick(i));
        }
        c
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Virtual time in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The invariant checker (for statistics).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The node at position `i`, if it is up.
    pub fn node(&self, i: usize) -> Option<&RawNode> {
        self.slots[i].node.as_ref()
    }

    /// The seeded RNG, for tests that make random choices of their own.
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: self.now + delay,
            seq: self.seq,
            event,
        }));
    }

    /// Starts node `i` from its disk; a disk the core refuses is a violation (the node could
    /// never start again).
    fn start(&mut self, i: usize) -> Result<(), Violation> {
        if self.trace {
            eprintln!(
                "{:>6} start {} from {:?}",
                self.now, self.slots[i].id, self.slots[i].disk.hard_state
            );
        }
        let k = self.cfg.initial_voters.unwrap_or(self.cfg.nodes);
        let slot = &mut self.slots[i];
        let ids: Vec<NodeId> = if slot.joining {
            Vec::new()
        } else {
            (1..=k as u64).map(NodeId).collect()
        };
        slot.incarnation += 1;
        let mut config = Config::new(slot.id, ids);
        config.seed = mix(mix(self.cfg.seed, slot.id.0), slot.incarnation);
        config.max_entries_per_msg = self.cfg.max_entries_per_msg;
        config.planted_concurrent_conf_changes = self.cfg.planted_concurrent_conf_changes;
        (self.cfg.raft)(&mut config);
        (self.cfg.planted)(&mut config);
        let restored = Restored {
            hard_state: slot.disk.hard_state.clone(),
            snapshot: slot.disk.snapshot.clone(),
            entries: slot.disk.entries.clone(),
            applied: Index(0),
        };
        slot.sm = slot
            .disk
            .snapshot
            .as_ref()
            .map_or_else(StateMachine::default, |s| StateMachine::decode(&s.data));
        match RawNode::new(config, restored) {
            Ok(node) => slot.node = Some(node),
            Err(e) => {
                return Err(Violation {
                    time_ms: self.now,
                    what: format!("{} cannot restart from its disk: {e}", slot.id),
                })
            }
        }
        self.checker.on_restart(slot.id);
        Ok(())
    }

    /// Crashes node `i`: everything not persisted is lost, as are its clients' pending
    /// operations (they time out, unacknowledged).
    pub fn crash(&mut self, i: usize) {
        if self.trace {
            eprintln!("{:>6} crash {}", self.now, self.slots[i].id);
        }
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.proposals.clear();
        slot.reads.clear();
        slot.ready_scheduled = false;
        slot.disk_queue.clear();
        slot.flush_scheduled = false;
        slot.writing.clear();
        slot.apply_queue.clear();
        slot.apply_scheduled = false;
        slot.compacting = false;
    }

    /// Crashes node `i` and restarts it `after_ms` later (a process reboot), so that messages
    /// already in flight to it arrive at the restarted node.
    pub fn reboot(&mut self, i: usize, after_ms: u64) {
        self.crash(i);
        self.schedule(after_ms, Event::Restart(i));
    }

    /// Restarts a crashed node `i` from its disk.
    pub fn restart(&mut self, i: usize) -> Result<(), Violation> {
        if self.slots[i].node.is_none() {
            self.start(i)?;
            self.after(i)?;
        }
        Ok(())
    }

    /// Crashes node `i`, wipes its disk and starts it again as a joining node with the same
    /// id (the procedure for re-adding a removed server: it must not come back with a vote
    /// or a log from its earlier membership).
    pub fn wipe_and_join(&mut self, i: usize) -> Result<(), Violation> {
        self.crash(i);
        let slot = &mut self.slots[i];
        slot.disk = Disk::default();
        slot.sm = StateMachine::default();
        slot.joining = true;
        slot.checked_commit = Index(0);
        let id = slot.id;
        self.checker.on_wipe(id);
        self.restart(i)
    }

    /// Proposes a membership change at node `i`; `None` if it is down or refused. Checks that
    /// the leader had no other uncommitted change in its log (at most one at a time).
    pub fn conf_change(
        &mut self,
        i: usize,
        change: ConfChange,
    ) -> Result<Option<(Term, Index)>, Violation> {
        let Some(node) = self.slots[i].node.as_mut() else {
            return Ok(None);
        };
        let commit = node.status().commit;
        let Ok((term, index)) = node.propose_conf_change(change) else {
            return Ok(None);
        };
        let mut k = commit.next().max(node.first_index());
        while k < index {
            if let Some(EntryPayload::Config(_)) = node.entry(k).map(|e| &e.payload) {
                return Err(Violation {
                    time_ms: self.now,
                    what: format!(
                        "{} proposed {change:?} at {index} with the change at {k} uncommitted (commit {commit})",
                        self.slots[i].id
                    ),
                });
            }
            k = k.next();
        }
        if self.trace {
            eprintln!(
                "{:>6} {} proposes {change:?} at {index}",
                self.now, self.slots[i].id
            );
        }
        self.after(i)?;
        Ok(Some((term, index)))
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// Cuts node `i` off the network in both directions (MIT `disconnect`), on top of any
    /// partition set in `net`.
    pub fn disconnect(&mut self, i: usize) {
        self.disconnected[i] = true;
    }

    /// Undoes [`Cluster::disconnect`] (MIT `connect`); partitions set in `net` stay.
    pub fn connect(&mut self, i: usize) {
        self.disconnected[i] = false;
    }

    /// Whether node `i` is not disconnected.
    pub fn is_connected(&self, i: usize) -> bool {
        !self.disconnected[i]
    }

    /// Reconnects every node and removes every partition and fault from the network.
    pub fn heal(&mut self) {
        self.disconnected.iter_mut().for_each(|d| *d = false);
        self.net = Network::reliable();
    }

    /// Proposes `cmd` at node `i`; `None` if it is down or not leader.
    pub fn propose(&mut self, i: usize, cmd: u64) -> Result<Option<(Term, Index)>, Violation> {
        let Some(node) = self.slots[i].node.as_mut() else {
            return Ok(None);
        };
        match node.propose(cmd.to_le_bytes().to_vec()) {
            Ok((term, index)) => {
                self.slots[i].proposals.push((term, index, cmd));
                self.after(i)?;
                Ok(Some((term, index)))
            }
            Err(_) => Ok(None),
        }
    }

    /// Asks node `i` to hand leadership to node `to` (positions); false if it is down or
    /// refused (not leader).
    pub fn transfer_leader(&mut self, i: usize, to: usize) -> Result<bool, Violation> {
        let to = self.slots[to].id;
        let Some(node) = self.slots[i].node.as_mut() else {
            return Ok(false);
        };
        if node.transfer_leader(to).is_err() {
            return Ok(false);
        }
        self.after(i)?;
        Ok(true)
    }

    /// Starts a ReadIndex read at node `i`; false if it is down or refused.
    pub fn read(&mut self, i: usize) -> Result<bool, Violation> {
        let ctx = self.next_ctx;
        self.next_ctx += 1;
        let floor = self.checker.read_floor();
        let Some(node) = self.slots[i].node.as_mut() else {
            return Ok(false);
        };
        if node.read_index(ctx).is_err() {
            return Ok(false);
        }
        self.slots[i].reads.push(PendingRead {
            ctx,
            floor,
            index: None,
        });
        self.after(i)?;
        Ok(true)
    }

    /// Runs events until virtual time `now + ms`.
    pub fn run_for(&mut self, ms: u64) -> Result<(), Violation> {
        let until = self.now + ms;
        while self.queue.peek().is_some_and(|Reverse(q)| q.at <= until) {
            let Reverse(q) = self.queue.pop().expect("peeked");
            self.now = q.at;
            self.handle(q.event)?;
        }
        self.now = until;
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick(i) => {
                self.schedule(self.cfg.tick_ms, Event::Tick(i));
                let Some(node) = self.slots[i].node.as_mut() else {
                    return Ok(());
                };
                node.tick();
                self.after(i)
            }
            Event::Deliver(i, m) => {
                let from = (m.from.0 - 1) as usize;
                if self.disconnected[i] || self.disconnected[from] || !self.net.connected(from, i) {
                    return Ok(()); // cut while in flight
                }
                let Some(node) = self.slots[i].node.as_mut() else {
                    return Ok(());
                };
                if self.trace {
                    eprintln!(
                        "{:>6} deliver {} -> {} {} {:?}",
                        self.now, m.from, m.to, m.term, m.body
                    );
                }
                node.step(m).expect("well-addressed message");
                self.after(i)
            }
            Event::Ready(i) => {
                self.slots[i].ready_scheduled = false;
                self.after(i)
            }
            Event::Restart(i) => self.restart(i),
            Event::Flush(i, incarnation) => {
                if self.slots[i].node.is_none() || self.slots[i].incarnation != incarnation {
                    return Ok(());
                }
                self.flush(i)?;
                self.after(i)
            }
            Event::DiskStep(i, incarnation) => {
                if self.slots[i].node.is_none() || self.slots[i].incarnation != incarnation {
                    return Ok(());
                }
                self.disk_step(i)?;
                if self.slots[i].node.is_some() {
                    self.after(i)?;
                }
                Ok(())
            }
            Event::Compact(i, incarnation, index, data) => {
                if self.slots[i].node.is_none() || self.slots[i].incarnation != incarnation {
                    return Ok(());
                }
                self.compact_async(i, index, data)?;
                self.after(i)
            }
            Event::Apply(i, incarnation) => {
                if self.slots[i].node.is_none() || self.slots[i].incarnation != incarnation {
                    return Ok(());
                }
                self.slots[i].apply_scheduled = false;
                while let Some(task) = self.slots[i].apply_queue.pop_front() {
                    self.apply(i, task)?;
                }
                self.after(i)
            }
        }
    }

    /// After an input to node `i`: handle its Ready (now, or later on a slow disk) and check
    /// the invariants.
    fn after(&mut self, i: usize) -> Result<(), Violation> {
        self.checker.set_time(self.now);
        let slot = &self.slots[i];
        let Some(node) = slot.node.as_ref() else {
            return Ok(());
        };
        if self.cfg.async_storage {
            self.handle_ready_async(i)?;
        } else if node.has_ready() && !slot.ready_scheduled {
            if self.cfg.slow_disk > 0.0 && self.rng.random_bool(self.cfg.slow_disk) {
                let delay = self.rng.random_range(1..=5);
                self.slots[i].ready_scheduled = true;
                self.schedule(delay, Event::Ready(i));
            } else {
                let rd = self.slots[i].node.as_mut().expect("up").ready();
                self.handle_ready(i, rd)?;
            }
        }
        self.check_commit_durable(i)?;
        let node = self.slots[i].node.as_ref().expect("up");
        self.checker.after_event(node)
    }

    /// Every index a node knows committed is durable (in the log or a snapshot) on a majority:
    /// the leader counted only durable entries, of others and of its own.
    fn check_commit_durable(&mut self, i: usize) -> Result<(), Violation> {
        let node = self.slots[i].node.as_ref().expect("up");
        let commit = node.status().commit;
        if commit <= self.slots[i].checked_commit {
            return Ok(());
        }
        let term = node.entry(commit).map(|e| e.term);
        self.slots[i].checked_commit = commit;
        let Some(term) = term else {
            return Ok(()); // compacted: it was checked when it was committed
        };
        // A majority of some configuration that was in effect then: a committed one from the
        // one at `commit` on, or (configurations take effect before they commit, and nodes
        // learn of them at different moments) an up node's current one.
        let mut configs: Vec<Vec<NodeId>> = self
            .slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .map(|n| n.status().membership.voters)
            .filter(|v| !v.is_empty())
            .collect();
        configs.extend(self.checker.voter_sets_from(commit));
        let holds = |v: &Vec<NodeId>| {
            v.iter()
                .filter(|id| self.slots[(id.0 - 1) as usize].disk.holds(commit, term))
                .count()
        };
        if configs.iter().any(|v| holds(v) * 2 > v.len()) {
            return Ok(());
        }
        Err(Violation {
            time_ms: self.now,
            what: format!(
                "{} knows {commit} (term {term}) committed, but no majority of any configuration holds it durably",
                self.slots[i].id
            ),
        })
    }

    /// Asynchronous mode: hands off every Ready: replication out now, the write to the disk
    /// queue (a flush is scheduled after a random delay), application at once.
    fn handle_ready_async(&mut self, i: usize) -> Result<(), Violation> {
        while self.slots[i].node.as_ref().expect("up").has_ready() {
            let node = self.slots[i].node.as_mut().expect("up");
            let term = node.status().term;
            let rd = node.ready();
            let work = node.advance_async(rd);
            for m in work.send_now {
                self.send(i, m)?;
            }
            if !work.persist.is_empty() {
                self.enqueue(i, DiskOp::Persist(work.persist, term));
            }
            if !work.apply.is_empty() {
                let slot = &mut self.slots[i];
                slot.apply_queue.push_back(work.apply);
                if !slot.apply_scheduled {
                    slot.apply_scheduled = true;
                    let incarnation = slot.incarnation;
                    let delay = self.rng.random_range(0..=4);
                    self.schedule(delay, Event::Apply(i, incarnation));
                }
            }
        }
        Ok(())
    }

    fn enqueue(&mut self, i: usize, op: DiskOp) {
        let slot = &mut self.slots[i];
        slot.disk_queue.push_back(op);
        if !slot.flush_scheduled {
            slot.flush_scheduled = true;
            let incarnation = slot.incarnation;
            let delay = self.rng.random_range(0..=6);
            self.schedule(delay, Event::Flush(i, incarnation));
        }
    }

    /// The simulated disk writer takes everything queued and splits it into parts, written one
    /// per event ([`Cluster::disk_step`]).
    fn flush(&mut self, i: usize) -> Result<(), Violation> {
        let ops: Vec<DiskOp> = self.slots[i].disk_queue.drain(..).collect();
        let order = self.cfg.write_order;
        let mut parts = VecDeque::new();
        let mut tasks = Vec::new();
        // The commit index of the durable hard state, as it will be when each part is written.
        let mut durable_commit = self.slots[i].disk.hard_state.commit;
        for op in ops {
            match op {
                DiskOp::Persist(t, term) => {
                    let hs = t.hard_state().cloned();
                    let snap = t.snapshot().cloned();
                    let entries = t.entries().to_vec();
                    let first = entries.first().map(|e| e.index);
                    match order {
                        WriteOrder::TermFirst => {
                            if let Some(mut hs) = hs {
                                // Do not let the commit cover what the rest replaces.
                                hs.commit = match (&snap, first) {
                                    (Some(_), _) => hs.commit.min(durable_commit),
                                    (None, Some(f)) => hs.commit.min(f.prev()),
                                    (None, None) => hs.commit,
                                };
                                durable_commit = hs.commit;
                                parts.push_back(DiskPart::HardState(hs));
                            }
                            parts.extend(snap.map(DiskPart::Snapshot));
                            if !entries.is_empty() {
                                parts.push_back(DiskPart::Entries(entries, term));
                            }
                        }
                        WriteOrder::EntriesFirst => {
                            parts.extend(snap.map(DiskPart::Snapshot));
                            if !entries.is_empty() {
                                parts.push_back(DiskPart::Entries(entries, term));
                            }
                            if let Some(hs) = hs {
                                durable_commit = hs.commit;
                                parts.push_back(DiskPart::HardState(hs));
                            }
                        }
                    }
                    tasks.push(t);
                }
                DiskOp::Compact(snapshot) => {
                    // raftkv's writer syncs and reports what came before a compaction first.
                    if !tasks.is_empty() {
                        parts.push_back(DiskPart::Release(std::mem::take(&mut tasks)));
                    }
                    parts.push_back(DiskPart::Compact(snapshot));
                }
            }
        }
        if !tasks.is_empty() {
            parts.push_back(DiskPart::Release(tasks));
        }
        self.slots[i].writing = parts;
        self.disk_step(i)
    }

    /// Writes the next part of node `i`'s batch (or, by chance, kills the node first), and
    /// schedules the part after it.
    fn disk_step(&mut self, i: usize) -> Result<(), Violation> {
        if self.slots[i].writing.is_empty() {
            return self.after_batch(i);
        }
        if self.cfg.crash_mid_write > 0.0 && self.rng.random_bool(self.cfg.crash_mid_write) {
            self.torn_writes += 1;
            let after = self.rng.random_range(10..=300);
            self.reboot(i, after);
            return Ok(());
        }
        let part = self.slots[i].writing.pop_front().expect("not empty");
        let id = self.slots[i].id;
        match part {
            DiskPart::HardState(hs) => self.slots[i].disk.hard_state = hs,
            DiskPart::Snapshot(s) => self.persist_parts(i, Some(&s), &[], None, Term(0))?,
            DiskPart::Entries(entries, term) => {
                self.persist_parts(i, None, &entries, None, term)?
            }
            DiskPart::Compact(snapshot) => {
                let meta = snapshot.meta.clone();
                self.slots[i].disk.compact(snapshot);
                self.checker.on_snapshot(id, &meta, false)?;
            }
            DiskPart::Release(tasks) => {
                let mut report = None;
                let mut out = Vec::new();
                PersistTask::persist_then_send(
                    tasks,
                    // Written part by part above.
                    |_| Ok::<(), Violation>(()),
                    |p| report = Some(p),
                    |m| out.push(m),
                )?;
                if let Some(p) = report {
                    self.slots[i].node.as_mut().expect("up").on_persisted(p);
                }
                for m in out {
                    self.send(i, m)?;
                }
            }
        }
        if self.slots[i].writing.is_empty() {
            return self.after_batch(i);
        }
        let incarnation = self.slots[i].incarnation;
        let delay = self.rng.random_range(0..=2);
        self.schedule(delay, Event::DiskStep(i, incarnation));
        Ok(())
    }

    /// The batch is written: take the next one if writes queued up meanwhile.
    fn after_batch(&mut self, i: usize) -> Result<(), Violation> {
        let slot = &mut self.slots[i];
        slot.flush_scheduled = false;
        if !slot.disk_queue.is_empty() {
            slot.flush_scheduled = true;
            let incarnation = slot.incarnation;
            let delay = self.rng.random_range(0..=6);
            self.schedule(delay, Event::Flush(i, incarnation));
        }
        Ok(())
    }

    /// Applies a node's committed entries and snapshot, serves its reads, reports the applied
    /// index and compacts if due (asynchronous mode).
    fn apply(&mut self, i: usize, task: ApplyTask) -> Result<(), Violation> {
        let id = self.slots[i].id;
        if let Some(s) = &task.snapshot {
            self.install_sm(i, s)?;
        }
        for e in &task.committed_entries {
            self.checker.on_apply(id, self.slots[i].sm.applied, e)?;
            self.slots[i].sm.apply(e);
            self.ack_proposals(i, e);
        }
        for rs in &task.read_states {
            if let Some(r) = self.slots[i].reads.iter_mut().find(|r| r.ctx == rs.ctx) {
                r.index = Some(rs.index);
            }
        }
        self.serve_reads(i)?;
        if let Some(index) = task.applied_index() {
            self.slots[i].node.as_mut().expect("up").on_applied(index);
        }
        let Some(limit) = self.cfg.snapshot_after else {
            return Ok(());
        };
        let slot = &mut self.slots[i];
        let node = slot.node.as_ref().expect("up");
        let applied = slot.sm.applied;
        if slot.compacting || applied.0 + 1 < node.first_index().0 + limit {
            return Ok(());
        }
        // As raftkv's applier does, the snapshot goes to the Raft thread as an event, so a
        // leader's snapshot may be installed before the core gets to compact.
        slot.compacting = true;
        let (incarnation, data) = (slot.incarnation, slot.sm.encode());
        // Serializing a large state takes a while.
        let delay = self.rng.random_range(0..=50);
        self.schedule(delay, Event::Compact(i, incarnation, applied, data));
        Ok(())
    }

    /// The core compacts through `index` with the applier's snapshot, unless a leader's
    /// snapshot got there first (counted in `compaction_races`).
    fn compact_async(&mut self, i: usize, index: Index, data: Vec<u8>) -> Result<(), Violation> {
        let slot = &mut self.slots[i];
        slot.compacting = false;
        let node = slot.node.as_mut().expect("up");
        match node.compact(index, data.clone()) {
            Ok(()) => {
                let meta = node.snapshot_meta().expect("just compacted").clone();
                self.enqueue(i, DiskOp::Compact(Snapshot { meta, data }));
            }
            Err(crate::Error::AlreadyCompacted(_)) => self.compaction_races += 1,
            Err(e) => {
                return Err(Violation {
                    time_ms: self.now,
                    what: format!("{} cannot compact through {index}: {e}", slot.id),
                })
            }
        }
        Ok(())
    }

    /// Restores node `i`'s state machine from a leader's snapshot, after checking it.
    fn install_sm(&mut self, i: usize, s: &Snapshot) -> Result<(), Violation> {
        let sm = StateMachine::decode(&s.data);
        if self.checker.committed_chain(sm.applied) != Some(sm.hash) {
            let what = format!(
                "{} got a snapshot at {} that is not the committed state",
                self.slots[i].id, sm.applied
            );
            return Err(Violation {
                time_ms: self.now,
                what,
            });
        }
        self.slots[i].sm = sm;
        Ok(())
    }

    /// Carries out a Ready in the documented order: persist, send, apply, advance.
    fn handle_ready(&mut self, i: usize, mut rd: Ready) -> Result<(), Violation> {
        let id = self.slots[i].id;
        self.persist(i, &rd)?;
        for m in std::mem::take(&mut rd.messages) {
            self.send(i, m)?;
        }
        if let Some(s) = &rd.snapshot {
            let sm = StateMachine::decode(&s.data);
            if self.checker.committed_chain(sm.applied) != Some(sm.hash) {
                let what = format!(
                    "{id} got a snapshot at {} that is not the committed state",
                    sm.applied
                );
                return Err(Violation {
                    time_ms: self.now,
                    what,
                });
            }
            self.slots[i].sm = sm;
        }
        for e in &rd.committed_entries {
            self.checker.on_apply(id, self.slots[i].sm.applied, e)?;
            self.slots[i].sm.apply(e);
            self.ack_proposals(i, e);
        }
        for rs in &rd.read_states {
            if let Some(r) = self.slots[i].reads.iter_mut().find(|r| r.ctx == rs.ctx) {
                r.index = Some(rs.index);
            }
        }
        self.serve_reads(i)?;
        let node = self.slots[i].node.as_mut().expect("up");
        node.advance(rd);
        self.maybe_compact(i)
    }

    fn persist(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let term = self.slots[i].node.as_ref().expect("up").status().term;
        self.persist_parts(
            i,
            rd.snapshot.as_ref(),
            &rd.entries,
            rd.hard_state.as_ref(),
            term,
        )
    }

    /// Writes a snapshot, entries and hard state to node `i`'s disk; `term` is the node's
    /// term when they were handed out.
    fn persist_parts(
        &mut self,
        i: usize,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        term: Term,
    ) -> Result<(), Violation> {
        let id = self.slots[i].id;
        let disk = &mut self.slots[i].disk;
        if let Some(s) = snapshot {
            disk.snapshot = Some(s.clone());
            disk.entries.clear();
            self.checker.on_snapshot(id, &s.meta, true)?;
        }
        if let Some(first) = entries.first() {
            let base = disk.snapshot.as_ref().map_or(Index(0), |s| s.meta.index);
            disk.entries.truncate((first.index.0 - base.0 - 1) as usize);
            disk.entries.extend(entries.iter().cloned());
            self.checker.on_persist(id, term, entries)?;
        }
        if let Some(hs) = hard_state {
            disk.hard_state = hs.clone();
        }
        Ok(())
    }

    fn send(&mut self, from: usize, m: Message) -> Result<(), Violation> {
        self.check_durable_before_send(from, &m)?;
        self.messages_sent += 1;
        *self.sent_by_kind.entry(m.body.kind()).or_default() += 1;
        if let MessageBody::AppendEntriesResponse {
            success: true,
            index,
            ..
        } = m.body
        {
            self.checker.on_append_ack(m.from, m.term, index);
        }
        let to = (m.to.0 - 1) as usize;
        if self.disconnected[from] || self.disconnected[to] {
            return Ok(());
        }
        let delays = self.net.fate(&mut self.rng, from, to);
        for d in delays {
            self.schedule(d, Event::Deliver(to, m.clone()));
        }
        Ok(())
    }

    /// Figure 2's "update stable storage before responding", checked where it matters, at
    /// send time: the sender's durable term is at least the message's (a pre-vote asks about a
    /// term nobody holds yet), and a granted vote is the durable vote of its term.
    fn check_durable_before_send(&self, from: usize, m: &Message) -> Result<(), Violation> {
        let durable = &self.slots[from].disk.hard_state;
        let pre_vote = matches!(
            m.body,
            MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { .. }
        );
        let what = if !pre_vote && durable.term < m.term {
            format!(
                "{} sent {} of {} with durable term {}",
                m.from,
                m.body.kind(),
                m.term,
                durable.term
            )
        } else if matches!(m.body, MessageBody::VoteResponse { granted: true })
            && durable.term == m.term
            && durable.vote != Some(m.to)
        {
            format!(
                "{} granted its vote in {} to {} with durable vote {:?}",
                m.from, m.term, m.to, durable.vote
            )
        } else {
            return Ok(());
        };
        Err(Violation {
            time_ms: self.now,
            what,
        })
    }

    fn ack_proposals(&mut self, i: usize, e: &Entry) {
        let slot = &mut self.slots[i];
        let mut k = 0;
        while k < slot.proposals.len() {
            let (term, index, cmd) = slot.proposals[k];
            if index <= e.index {
                slot.proposals.swap_remove(k);
                let same = e.index == index && e.term == term;
                let ours =
                    matches!(&e.payload, EntryPayload::Command(b) if b[..] == cmd.to_le_bytes());
                if same && ours {
                    self.acked.push((cmd, index));
                    self.checker.on_ack(index);
                }
            } else {
                k += 1;
            }
        }
    }

    fn serve_reads(&mut self, i: usize) -> Result<(), Violation> {
        let slot = &mut self.slots[i];
        let applied = slot.sm.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = slot
            .reads
            .drain(..)
            .partition(|r| r.index.is_some_and(|x| x <= applied));
        slot.reads = waiting;
        let id = slot.id;
        for r in ready {
            self.checker.on_read(id, r.floor, applied)?;
        }
        Ok(())
    }

    fn maybe_compact(&mut self, i: usize) -> Result<(), Violation> {
        let Some(limit) = self.cfg.snapshot_after else {
            return Ok(());
        };
        let slot = &mut self.slots[i];
        let node = slot.node.as_mut().expect("up");
        let applied = slot.sm.applied;
        if applied.0 + 1 < node.first_index().0 + limit {
            return Ok(());
        }
        let data = slot.sm.encode();
        node.compact(applied, data.clone())
            .expect("compact at the applied index");
        let meta = node.snapshot_meta().expect("just compacted").clone();
        let disk = &mut slot.disk;
        let base = disk.snapshot.as_ref().map_or(Index(0), |s| s.meta.index);
        disk.entries.drain(..(applied.0 - base.0) as usize);
        disk.snapshot = Some(Snapshot {
            meta: meta.clone(),
            data,
        });
        let id = slot.id;
        self.checker.on_snapshot(id, &meta, false)
    }
}
