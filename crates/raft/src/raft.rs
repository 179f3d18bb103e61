//! The Raft state machine of one node: its persistent and volatile state (paper Figure 2) and
//! the dispatch of inputs to per-role handlers in `election.rs`, `leader.rs` and `follower.rs`.

use crate::config::Config;
use crate::errors::Error;
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read_only::ReadOnly;
use crate::types::{HardState, Index, Membership, NodeId, ReadState, Role, Status, Term};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One node's Raft state. `RawNode` wraps it with the `Ready` hand-off.
#[derive(Clone, Debug)]
pub(crate) struct Raft {
    pub(crate) id: NodeId,
    /// The configuration in use: the latest in the log, else the snapshot's, else `bootstrap`
    /// (thesis §4.1: a server uses the latest configuration in its log, committed or not).
    pub(crate) membership: Membership,
    /// The index of the entry that set `membership` (see `Status::config_index`).
    pub(crate) config_index: Index,
    /// The configuration the node was started with, used while neither log nor snapshot has
    /// one. Empty for a node that joins an existing cluster.
    pub(crate) bootstrap: Membership,
    pub(crate) cfg: Config,
    /// Persistent (Figure 2): `currentTerm` and `votedFor`.
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    /// Ticks since the last heartbeat from a leader (follower), since the election started
    /// (candidate), or since the last check-quorum round (leader).
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    /// Leader: the voter leadership is being handed to (thesis §3.10), and the ticks since the
    /// transfer began (it is abandoned after an election timeout).
    pub(crate) transferee: Option<NodeId>,
    pub(crate) transfer_elapsed: u32,
    /// This round's timeout, drawn from `[election_tick, 2 * election_tick)` (paper §5.2).
    pub(crate) randomized_timeout: u32,
    rng: SmallRng,
    /// Votes received in the current (pre-)election.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// Leader only: one entry per other voter.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) read_only: ReadOnly,
    /// Outputs collected until the next `Ready`.
    pub(crate) msgs: Vec<Message>,
    pub(crate) read_states: Vec<ReadState>,
}

impl Raft {
    pub(crate) fn new(cfg: Config, hs: &HardState, log: RaftLog) -> Raft {
        let mut r = Raft {
            id: cfg.id,
            membership: Membership::with_voters(cfg.voters.clone()),
            config_index: Index(0),
            bootstrap: Membership::with_voters(cfg.voters.clone()),
            term: hs.term,
            vote: hs.vote,
            log,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            transferee: None,
            transfer_elapsed: 0,
            randomized_timeout: cfg.election_tick,
            rng: SmallRng::seed_from_u64(cfg.seed),
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            read_only: ReadOnly::default(),
            msgs: Vec::new(),
            read_states: Vec::new(),
            cfg,
        };
        r.refresh_membership();
        r.reset_election_timer();
        r
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    pub(crate) fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit: self.log.committed,
            applied: self.log.applied,
            last_index: self.log.last_index(),
            membership: self.membership.clone(),
            config_index: self.config_index,
            progress: self
                .progress
                .iter()
                .map(|(&id, p)| (id, p.matched))
                .collect(),
        }
    }

    pub(crate) fn is_voter(&self) -> bool {
        self.membership.is_voter(self.id)
    }

    /// The voters.
    pub(crate) fn voters(&self) -> &[NodeId] {
        &self.membership.voters
    }

    /// The other voters, in id order (deterministic iteration): whom to ask for votes.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.membership
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect()
    }

    /// The other members, voters and learners, in id order: whom a leader replicates to.
    pub(crate) fn replicas(&self) -> Vec<NodeId> {
        let m = &self.membership;
        let mut all: Vec<NodeId> = m.voters.iter().chain(&m.learners).copied().collect();
        all.sort();
        all.retain(|&v| v != self.id);
        all
    }

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let t = self.cfg.election_tick;
        self.randomized_timeout = self.rng.random_range(t..2 * t);
    }

    /// Whether this follower heard from a live leader within the minimum election timeout, so
    /// that it ignores vote requests (thesis §4.2.3, with check-quorum as in etcd).
    pub(crate) fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_tick
    }

    /// Figure 2: "If RPC request or response contains term T > currentTerm: set currentTerm =
    /// T, convert to follower".
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.read_only.clear();
        self.heartbeat_elapsed = 0;
        self.transferee = None;
        self.reset_election_timer();
    }

    pub(crate) fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
        self.maybe_step_down_removed();
    }

    pub(crate) fn step(&mut self, m: Message) -> Result<(), Error> {
        if m.to != self.id {
            return Err(Error::WrongRecipient {
                to: m.to,
                this: self.id,
            });
        }
        // Any other node may write to us: a joining node hears first from a leader it does not
        // know yet, and a removed node may still ask for votes (its answers are counted only if
        // it is a voter, and its log decides the rest).
        if m.from == self.id {
            return Err(Error::UnknownSender(m.from));
        }
        match m.term.cmp(&self.term) {
            Ordering::Greater => {
                if !self.step_higher_term(&m) {
                    return Ok(());
                }
            }
            Ordering::Less => {
                self.step_lower_term(m);
                return Ok(());
            }
            Ordering::Equal => {}
        }
        self.dispatch(m);
        // After the input, not inside the commit rule: the handlers still use the progress
        // map that stepping down clears.
        self.maybe_step_down_removed();
        Ok(())
    }

    /// A message from a higher term. Returns false if it is to be ignored.
    fn step_higher_term(&mut self, m: &Message) -> bool {
        match &m.body {
            // A pre-vote does not change anyone's term (thesis §9.6); a granted pre-vote answer
            // carries the term we would campaign in, not the responder's.
            MessageBody::PreVote { .. } => true,
            MessageBody::PreVoteResponse { granted: true } => true,
            MessageBody::Vote {
                transfer: false, ..
            } if self.in_lease() => false,
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(m.term, Some(m.from));
                true
            }
            _ => {
                self.become_follower(m.term, None);
                true
            }
        }
    }

    /// A message from an older term: Figure 2 answers requests with `currentTerm` so that the
    /// stale sender steps down, and drops stale responses.
    fn step_lower_term(&mut self, m: Message) {
        let body = match m.body {
            MessageBody::AppendEntries {
                prev_log_index,
                read_seq,
                ..
            } => MessageBody::AppendEntriesResponse {
                success: false,
                index: prev_log_index,
                conflict_term: None,
                conflict_index: Index(0),
                read_seq,
            },
            MessageBody::InstallSnapshot { read_seq, .. } => MessageBody::InstallSnapshotResponse {
                index: Index(0),
                read_seq,
            },
            MessageBody::PreVote { .. } => MessageBody::PreVoteResponse { granted: false },
            MessageBody::Vote { .. } => MessageBody::VoteResponse { granted: false },
            _ => return,
        };
        self.send(m.from, body);
    }

    /// A message of the current term (or a pre-vote message), to the role's handler.
    fn dispatch(&mut self, m: Message) {
        let from = m.from;
        match m.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => self.handle_pre_vote(from, m.term, last_log_index, last_log_term),
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                ..
            } => self.handle_vote(from, last_log_index, last_log_term),
            MessageBody::TimeoutNow => {
                // Only from the leader we follow, and only if we may vote at all.
                if self.role == Role::Follower && self.leader == Some(from) && self.is_voter() {
                    self.campaign(true);
                }
            }
            MessageBody::PreVoteResponse { granted } => {
                self.handle_pre_vote_response(from, m.term, granted)
            }
            MessageBody::VoteResponse { granted } => {
                self.handle_vote_response(from, m.term, granted)
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_seq,
            } => {
                self.follow(from);
                self.handle_append_entries(
                    from,
                    prev_log_index,
                    prev_log_term,
                    &entries,
                    leader_commit,
                    read_seq,
                );
            }
            MessageBody::InstallSnapshot { snapshot, read_seq } => {
                self.follow(from);
                self.handle_install_snapshot(from, snapshot, read_seq);
            }
            MessageBody::AppendEntriesResponse {
                success,
                index,
                conflict_term,
                conflict_index,
                read_seq,
            } => {
                if self.role == Role::Leader && self.progress.contains_key(&from) {
                    self.handle_append_response(
                        from,
                        success,
                        index,
                        conflict_term,
                        conflict_index,
                        read_seq,
                    );
                }
            }
            MessageBody::InstallSnapshotResponse { index, read_seq } => {
                if self.role == Role::Leader && self.progress.contains_key(&from) {
                    self.handle_snapshot_response(from, index, read_seq);
                }
            }
        }
    }

    /// A leader's request in our term: recognise it (paper §5.2: a candidate that hears from a
    /// legitimate leader returns to follower).
    fn follow(&mut self, leader: NodeId) {
        assert!(
            self.role != Role::Leader,
            "{}: two leaders in {}: {} and {}",
            self.id,
            self.term,
            self.id,
            leader
        );
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(leader));
        }
        self.leader = Some(leader);
        self.election_elapsed = 0;
    }
}
