//! The safety invariants the simulator checks after every event (paper Figure 3, plus commit
//! monotonicity and read freshness).
//!
//! Logs are compared through prefix hashes: for each node, `chain[i]` hashes the terms and
//! payloads of entries `1..=i`. Log Matching ("if two logs contain an entry with the same index
//! and term, the logs are identical in all entries up through that index") then reads: every
//! `(index, term)` seen anywhere maps to a single chain hash.

use super::mix;
use crate::types::{
    Entry, EntryPayload, Index, Membership, NodeId, Role, SnapshotMeta, Status, Term,
};
use crate::RawNode;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A broken invariant: what, where and when (virtual milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time of the event after which it was found.
    pub time_ms: u64,
    /// Which invariant, and the evidence.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {} ms: {}", self.time_ms, self.what)
    }
}

/// The hash of an entry's payload.
pub(crate) fn payload_hash(payload: &EntryPayload) -> u64 {
    match payload {
        EntryPayload::Noop => 0x5EED,
        EntryPayload::Command(bytes) => bytes.iter().fold(0xC0DE, |h, &b| mix(h, b as u64)),
        EntryPayload::Config(m) => m
            .voters
            .iter()
            .map(|v| v.0)
            .chain([u64::MAX])
            .chain(m.learners.iter().map(|l| l.0))
            .fold(0xC0F1, mix),
    }
}

fn link(prev: u64, term: Term, payload: u64) -> u64 {
    mix(mix(prev, term.0), payload)
}

/// One node's durable log as seen by the checker: chain hashes from `base` on.
#[derive(Clone, Debug)]
struct LogChain {
    /// Index whose chain hash is `chain[0]` (the snapshot's index, or 0).
    base: Index,
    chain: Vec<u64>,
}

impl LogChain {
    fn empty() -> LogChain {
        LogChain {
            base: Index(0),
            chain: vec![0],
        }
    }
}

/// Invariant state across the whole run.
#[derive(Debug, Default)]
pub struct Checker {
    now: u64,
    /// Election Safety: the leader of each term.
    leaders: HashMap<Term, NodeId>,
    /// The committed sequence, as applied anywhere: `(term, payload hash)` for index `k + 1`.
    committed: Vec<(Term, u64)>,
    /// Prefix chain of `committed`: `committed_chain[i]` covers `1..=i`.
    committed_chain: Vec<u64>,
    /// Log Matching: the chain hash of every `(index, term)` seen in a durable log.
    seen: HashMap<(Index, Term), u64>,
    logs: BTreeMap<NodeId, LogChain>,
    /// Per node: last commit index seen in this incarnation, and role.
    last_commit: BTreeMap<NodeId, Index>,
    last_role: BTreeMap<NodeId, (Role, Term)>,
    /// The highest commit index a leader reached in each term (for Leader Completeness).
    leader_commit: BTreeMap<Term, Index>,
    /// Per node: the term of its latest successful AppendEntries answer, and the highest index
    /// it acknowledged in that term.
    append_acks: BTreeMap<NodeId, (Term, Index)>,
    /// The highest index of an acknowledged write.
    acked: Index,
    /// The highest commit index any node has reached (every one is committed).
    commit_max: Index,
    /// The highest state index a completed read returned.
    served_max: Index,
    /// Which floors reads are checked against (all but in the tests that show what the
    /// weaker checks miss).
    pub(crate) read_check: ReadCheck,
    /// Events checked, and reads checked.
    pub events: u64,
    /// Reads served and checked.
    pub reads: u64,
    /// The committed configurations, by the index of their entry (0: the initial one).
    configs: BTreeMap<Index, Membership>,
}

impl Checker {
    /// A checker with an empty history, for a cluster that starts with `initial`.
    pub fn new(initial: Membership) -> Checker {
        Checker {
            committed_chain: vec![0],
            configs: BTreeMap::from([(Index(0), initial)]),
            ..Checker::default()
        }
    }

    /// The committed configuration in effect at `index`.
    fn config_at(&self, index: Index) -> Option<&Membership> {
        self.configs.range(..=index).next_back().map(|(_, m)| m)
    }

    /// The voters of every committed configuration in effect at `index` or later.
    pub(crate) fn voter_sets_from(&self, index: Index) -> Vec<Vec<NodeId>> {
        let start = self
            .configs
            .range(..=index)
            .next_back()
            .map_or(Index(0), |(&i, _)| i);
        self.configs
            .range(start..)
            .map(|(_, m)| m.voters.clone())
            .collect()
    }

    /// A node's disk was wiped: it starts over with an empty log.
    pub(crate) fn on_wipe(&mut self, id: NodeId) {
        self.on_restart(id);
        self.logs.remove(&id);
        self.append_acks.remove(&id);
    }

    pub(crate) fn set_time(&mut self, now: u64) {
        self.now = now;
        self.events += 1;
    }

    fn fail<T>(&self, what: String) -> Result<T, Violation> {
        Err(Violation {
            time_ms: self.now,
            what,
        })
    }

    /// The committed chain hash at `index` (known once some node applied it).
    pub(crate) fn committed_chain(&self, index: Index) -> Option<u64> {
        self.committed_chain.get(index.0 as usize).copied()
    }

    /// How many indexes are known committed (applied somewhere).
    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    /// The highest acknowledged write.
    pub fn acked(&self) -> Index {
        self.acked
    }

    /// The term and payload hash committed at `index`, if known.
    pub(crate) fn committed_at(&self, index: Index) -> Option<(Term, u64)> {
        index
            .0
            .checked_sub(1)
            .and_then(|k| self.committed.get(k as usize))
            .copied()
    }

    /// A node (re)started: its commit index may legitimately restart lower.
    pub(crate) fn on_restart(&mut self, id: NodeId) {
        self.last_commit.remove(&id);
        self.last_role.remove(&id);
    }

    /// Checks a node's volatile state after an event: one leader per term, commit never
    /// decreasing, and Leader Completeness for a node that just became leader.
    pub(crate) fn after_event(&mut self, node: &RawNode) -> Result<(), Violation> {
        let st: Status = node.status();
        if let Some(&prev) = self.last_commit.get(&st.id) {
            if st.commit < prev {
                return self.fail(format!(
                    "{} commit went back from {prev} to {}",
                    st.id, st.commit
                ));
            }
        }
        self.last_commit.insert(st.id, st.commit);
        self.commit_max = self.commit_max.max(st.commit);
        let was = self.last_role.insert(st.id, (st.role, st.term));
        if st.role != Role::Leader {
            return Ok(());
        }
        match self.leaders.get(&st.term) {
            Some(&other) if other != st.id => {
                return self.fail(format!("two leaders in {}: {other} and {}", st.term, st.id));
            }
            Some(_) => {}
            None => {
                self.leaders.insert(st.term, st.id);
            }
        }
        if was != Some((Role::Leader, st.term)) {
            self.check_leader_completeness(node, st.term)?;
        }
        let c = self.leader_commit.entry(st.term).or_default();
        *c = (*c).max(st.commit);
        Ok(())
    }

    /// Every entry committed by a leader of an earlier term is in a new leader's log.
    fn check_leader_completeness(&self, node: &RawNode, term: Term) -> Result<(), Violation> {
        let need = self
            .leader_commit
            .range(..term)
            .map(|(_, &c)| c)
            .max()
            .unwrap_or_default();
        let need = need.min(Index(self.committed.len() as u64));
        let st = node.status();
        if st.last_index < need {
            return self.fail(format!(
                "leader {} of {term} lacks committed {need} (last {})",
                st.id, st.last_index
            ));
        }
        let mut i = node.first_index();
        while i <= need {
            let e = node.entry(i).expect("within the log");
            if self.committed_at(i) != Some((e.term, payload_hash(&e.payload))) {
                return self.fail(format!(
                    "leader {} of {term} has {e:?} where another was committed",
                    st.id
                ));
            }
            i = i.next();
        }
        Ok(())
    }

    /// A node persisted a snapshot at `index`: its log now starts after it. `installed` says
    /// it came from a leader and replaced the whole log; otherwise the node compacted its own
    /// log, whose prefix must then be the committed one.
    pub(crate) fn on_snapshot(
        &mut self,
        id: NodeId,
        meta: &SnapshotMeta,
        installed: bool,
    ) -> Result<(), Violation> {
        let index = meta.index;
        if self.config_at(index) != Some(&meta.membership()) {
            return self.fail(format!(
                "{id} holds a snapshot at {index} with configuration {:?}, but {:?} was in effect there",
                meta.membership(),
                self.config_at(index)
            ));
        }
        let Some(base_hash) = self.committed_chain(index) else {
            return self.fail(format!(
                "{id} holds a snapshot at {index}, beyond anything applied"
            ));
        };
        let log = self.logs.entry(id).or_insert_with(LogChain::empty);
        if !installed {
            if index < log.base || ((index.0 - log.base.0) as usize) >= log.chain.len() {
                return self.fail(format!(
                    "{id} compacted at {index}, outside its durable log"
                ));
            }
            // Compaction of its own log: keep the tail; the base hash must agree.
            let k = (index.0 - log.base.0) as usize;
            if log.chain[k] != base_hash {
                return self.fail(format!(
                    "{id} compacted at {index} a prefix that was not committed"
                ));
            }
            log.chain.drain(..k);
        } else {
            log.chain = vec![base_hash];
        }
        log.base = index;
        Ok(())
    }

    /// A node told the leader of `term` that its log matches through `index`.
    pub(crate) fn on_append_ack(&mut self, id: NodeId, term: Term, index: Index) {
        let ack = self.append_acks.entry(id).or_default();
        if term > ack.0 {
            *ack = (term, index);
        } else if term == ack.0 {
            ack.1 = ack.1.max(index);
        }
    }

    /// A node in `term` persisted `entries` (replacing any suffix from `entries[0].index`).
    /// Checks Log Matching against every log seen so far, and that the node does not overwrite
    /// what it acknowledged to its current term's leader: that leader may have counted it
    /// towards a commit, and its log only grows within its term.
    pub(crate) fn on_persist(
        &mut self,
        id: NodeId,
        term: Term,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if let Some(&(t, acked)) = self.append_acks.get(&id) {
            if t == term && first.index <= acked {
                return self.fail(format!(
                    "{id} overwrote from {} in {term}, having acknowledged through {acked}",
                    first.index
                ));
            }
        }
        let log = self.logs.entry(id).or_insert_with(LogChain::empty);
        let keep = (first.index.0 - log.base.0) as usize;
        assert!(
            keep >= 1 && keep <= log.chain.len(),
            "{id}: entries at {} do not follow its log",
            first.index
        );
        log.chain.truncate(keep);
        for e in entries {
            let h = link(
                *log.chain.last().expect("non-empty"),
                e.term,
                payload_hash(&e.payload),
            );
            log.chain.push(h);
            match self.seen.get(&(e.index, e.term)) {
                Some(&other) if other != h => {
                    let what = format!(
                        "log matching: {id} has ({}, {}) with a different prefix",
                        e.index, e.term
                    );
                    return Err(Violation {
                        time_ms: self.now,
                        what,
                    });
                }
                Some(_) => {}
                None => {
                    self.seen.insert((e.index, e.term), h);
                }
            }
        }
        Ok(())
    }

    /// A node applied `entry` on top of a state machine at `applied`. State Machine Safety: all
    /// nodes apply the same entry at each index.
    pub(crate) fn on_apply(
        &mut self,
        id: NodeId,
        applied: Index,
        entry: &Entry,
    ) -> Result<(), Violation> {
        if entry.index != applied.next() {
            return self.fail(format!("{id} applied {} on top of {applied}", entry.index));
        }
        let this = (entry.term, payload_hash(&entry.payload));
        match self.committed_at(entry.index) {
            Some(c) if c != this => self.fail(format!(
                "state machine safety: {id} applied {entry:?} at {} where {c:?} was applied",
                entry.index
            )),
            Some(_) => Ok(()),
            None if entry.index.0 == self.committed.len() as u64 + 1 => {
                if let EntryPayload::Config(m) = &entry.payload {
                    self.configs.insert(entry.index, m.clone());
                }
                self.committed.push(this);
                let prev = *self.committed_chain.last().expect("non-empty");
                self.committed_chain.push(link(prev, this.0, this.1));
                Ok(())
            }
            None => self.fail(format!(
                "{id} applied {} past the committed sequence",
                entry.index
            )),
        }
    }

    /// A client's write at `index` was acknowledged.
    pub(crate) fn on_ack(&mut self, index: Index) {
        self.acked = self.acked.max(index);
    }

    /// What a read beginning now must see: every acknowledged write, every committed entry
    /// (a ReadIndex read is served at a commit index confirmed after it began, and that is at
    /// least every commit index reached before: thesis §6.4), and the state every completed
    /// read returned (read-after-read; implied by the committed floor, checked on its own so
    /// that a failure names it).
    pub(crate) fn read_floor(&self) -> ReadFloor {
        let check = self.read_check;
        ReadFloor {
            acked: self.acked,
            committed: if check == ReadCheck::All {
                self.commit_max
            } else {
                Index(0)
            },
            read: if check == ReadCheck::AckedWrites {
                Index(0)
            } else {
                self.served_max
            },
        }
    }

    /// A read that began with `floor` returned the state at `served`: it must include
    /// everything the floor names (linearizability of ReadIndex reads).
    pub(crate) fn on_read(
        &mut self,
        id: NodeId,
        floor: ReadFloor,
        served: Index,
    ) -> Result<(), Violation> {
        self.reads += 1;
        if served < floor.acked {
            return self.fail(format!(
                "stale read on {id}: state at {served}, but {} was acknowledged before the read",
                floor.acked
            ));
        }
        if served < floor.read {
            return self.fail(format!("stale read on {id}: state at {served}, but a read that completed before it began returned the state at {}", floor.read));
        }
        if served < floor.committed {
            return self.fail(format!(
                "stale read on {id}: state at {served}, but {} was committed before the read began",
                floor.committed
            ));
        }
        self.served_max = self.served_max.max(served);
        Ok(())
    }
}

/// Which floors the checker holds reads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadCheck {
    /// Every acknowledged write, every committed entry, every earlier read's state.
    #[default]
    All,
    /// Acknowledged writes and earlier reads (read-after-read), not committed entries.
    AckedWritesAndReads,
    /// Acknowledged writes only: the checker before read-after-read and committed floors.
    AckedWrites,
}

/// What a read must see, fixed when it begins ([`Checker::read_floor`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadFloor {
    acked: Index,
    committed: Index,
    read: Index,
}
