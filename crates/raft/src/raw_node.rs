//! The public driving interface: inputs in, one [`Ready`] out, one `advance` back.

use crate::config::Config;
use crate::errors::{Error, ProposeError, RestoreError};
use crate::log::RaftLog;
use crate::message::Message;
use crate::message::MessageBody;
use crate::raft::Raft;
use crate::ready::{ApplyTask, AsyncReady, PersistTask, Persisted, Ready};
use crate::types::Role;
use crate::types::{
    ConfChange, Entry, HardState, Index, NodeId, Snapshot, SnapshotMeta, Status, Term,
};

/// The durable state a node starts from. `Restored::default()` is a brand-new node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The last hard state written from a [`Ready`].
    pub hard_state: HardState,
    /// The latest snapshot persisted (from a `Ready`, or one the caller made for
    /// [`RawNode::compact`]), if any. The caller restores its state machine from it.
    pub snapshot: Option<Snapshot>,
    /// The durable log entries after the snapshot, in order.
    pub entries: Vec<Entry>,
    /// The index the caller's state machine already reflects when it is durable itself;
    /// leave `Index(0)` (the default) for a state machine rebuilt from the snapshot, and the
    /// committed entries after the snapshot are handed out again to be re-applied.
    pub applied: Index,
}

/// A Raft node without I/O: feed it [`tick`](RawNode::tick), [`step`](RawNode::step),
/// [`propose`](RawNode::propose) and [`read_index`](RawNode::read_index); then, while
/// [`has_ready`](RawNode::has_ready), take a [`Ready`], carry it out and
/// [`advance`](RawNode::advance).
///
/// `Clone` copies the whole node, so that a model checker can branch from one state.
#[derive(Clone, Debug)]
pub struct RawNode {
    raft: Raft,
    /// The hard state last handed out (or restored), to hand out only changes.
    prev_hard_state: HardState,
    /// The number of the Ready handed out and not yet advanced, if any.
    outstanding: Option<u64>,
    next_number: u64,
    /// Asynchronous mode: the number of the last [`PersistTask`] handed out, of the last one
    /// that changed term or vote, and of the last one reported durable; and the term and vote
    /// last handed out. A follower's acknowledgement may skip the disk queue only while its
    /// term and vote are durable.
    handed_seq: u64,
    term_vote_seq: u64,
    durable_seq: u64,
    handed_term_vote: (Term, Option<NodeId>),
}

impl RawNode {
    /// A node from its configuration and durable state.
    pub fn new(config: Config, restored: Restored) -> Result<RawNode, Error> {
        config.validate()?;
        check_restored(&restored)?;
        let Restored {
            hard_state,
            snapshot,
            entries,
            applied,
        } = restored;
        let log = RaftLog::restore(snapshot, entries, hard_state.commit, applied);
        let raft = Raft::new(config, &hard_state, log);
        let prev_hard_state = raft.hard_state();
        Ok(RawNode {
            raft,
            handed_term_vote: (prev_hard_state.term, prev_hard_state.vote),
            prev_hard_state,
            outstanding: None,
            next_number: 1,
            handed_seq: 0,
            term_vote_seq: 0,
            durable_seq: 0,
        })
    }

    /// Advances the logical clock by one tick: followers count towards an election, leaders
    /// send heartbeats and check their quorum.
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Feeds a message from another node. Errors are about the message (wrong recipient,
    /// unknown sender) and leave the node unchanged.
    pub fn step(&mut self, msg: Message) -> Result<(), Error> {
        self.raft.step(msg)
    }

    /// Proposes an application command. On success it is appended at the returned
    /// `(term, index)`; it is committed if and when an entry with that same term is applied at
    /// that index (a different term there means the proposal was lost to a new leader).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Term, Index), ProposeError> {
        self.raft.propose(data)
    }

    /// Starts a linearizable read (thesis §6.4). On success, a [`crate::ReadState`] with the
    /// same `ctx` appears in a later `Ready` once leadership is confirmed; if leadership is lost
    /// first it never does, so the caller should time the read out.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        self.raft.read_index(ctx)
    }

    /// The application made `data`, a snapshot of its state machine at `index` (which it has
    /// applied and reported through `advance`), and persisted it: the in-memory log is
    /// compacted through `index`, and followers too far behind will be sent this snapshot.
    /// The caller may then delete its durable entries through `index`.
    ///
    /// In asynchronous mode the caller may compact first and have the disk writer store the
    /// snapshot afterwards, in its queue after the writes already handed to it, as long as it
    /// deletes durable entries only once the snapshot is durable.
    pub fn compact(&mut self, index: Index, data: Vec<u8>) -> Result<(), Error> {
        let log = &self.raft.log;
        if index > log.applied {
            return Err(Error::CompactBeyondApplied {
                requested: index,
                applied: log.applied,
            });
        }
        if index <= log.offset() {
            return Err(Error::AlreadyCompacted(log.offset()));
        }
        let term = log.term(index).expect("applied entries are in the log");
        // The configuration as of `index`, not the latest: a later, uncommitted configuration
        // entry stays in the log after the snapshot and may still be truncated.
        let (m, _) = self.raft.membership_at(index);
        let meta = SnapshotMeta {
            index,
            term,
            voters: m.voters,
            learners: m.learners,
        };
        self.raft.log.compact(Snapshot { meta, data });
        Ok(())
    }

    /// Leader: proposes one membership change (thesis §4.1-4.2). On success the new
    /// configuration is appended at the returned `(term, index)` and is in effect at once; it
    /// is committed once `Status::commit` reaches `index` with that term there. Refused
    /// (definitely: nothing was appended) if this node is not leader, while another change is
    /// uncommitted or leadership is being transferred, before this leader has committed an
    /// entry of its own term, or if the change does not apply to the configuration. Add a
    /// server as a learner first and promote it once its match index (in
    /// [`Status::progress`]) has caught up, so that it does not hold commitment back.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
    ) -> Result<(Term, Index), ProposeError> {
        self.raft.propose_conf_change(change)
    }

    /// Leader: hands leadership to the voter `to` (thesis §3.10). New proposals are refused
    /// (pointing at `to`) while it catches up; once its log matches, it is told to campaign at
    /// once (TimeoutNow) and wins before any election timeout. Abandoned after an election
    /// timeout if `to` has not taken over.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), ProposeError> {
        self.raft.transfer_leader(to)
    }

    /// Leader: the other voter whose log matches the most of ours (the quickest to take over
    /// by [`RawNode::transfer_leader`]), among those heard from since the last check-quorum
    /// round if any were; `None` otherwise.
    pub fn most_caught_up_peer(&self) -> Option<NodeId> {
        if self.raft.role != Role::Leader {
            return None;
        }
        let membership = &self.raft.membership;
        let peers: Vec<_> = self
            .raft
            .progress
            .iter()
            .filter(|(id, _)| membership.is_voter(**id))
            .collect();
        let active = peers.iter().any(|(_, p)| p.recent_active);
        peers
            .into_iter()
            .filter(|(_, p)| p.recent_active || !active)
            .max_by_key(|(id, p)| (p.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        self.raft.status()
    }

    /// The current term, vote and commit index, whether or not a `Ready` has handed them out
    /// yet (for model checkers and debugging; persist what `Ready` hands out).
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// The log entry at `index`, if it is held in memory (after the snapshot, up to the last).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.raft.log.entry(index)
    }

    /// The first index held in memory (the snapshot's index + 1).
    pub fn first_index(&self) -> Index {
        self.raft.log.first_index()
    }

    /// The metadata of the latest snapshot, if any.
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.raft.log.snapshot_meta()
    }

    /// The leader's view of each follower (match, next, flow-control state), for debugging.
    pub fn describe_progress(&self) -> String {
        self.raft
            .progress
            .iter()
            .map(|(id, p)| {
                format!(
                    "{id}:{}/{}/{:?}{} ",
                    p.matched,
                    p.next,
                    p.state,
                    if p.paused { "p" } else { "" }
                )
            })
            .collect()
    }

    /// Whether [`ready`](RawNode::ready) has anything to hand out. False while a `Ready` is
    /// outstanding (not yet advanced).
    pub fn has_ready(&self) -> bool {
        if self.outstanding.is_some() {
            return false;
        }
        let r = &self.raft;
        r.hard_state() != self.prev_hard_state
            || r.log.has_unstable()
            || r.log.has_next_committed()
            || !r.msgs.is_empty()
            || !r.read_states.is_empty()
    }

    /// Takes what must be persisted, sent and applied, in the order documented on [`Ready`].
    ///
    /// # Panics
    /// If the previous `Ready` was not yet passed to [`advance`](RawNode::advance).
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.outstanding.is_none(),
            "ready() called before advance() of the previous Ready"
        );
        let number = self.next_number;
        self.next_number += 1;
        self.outstanding = Some(number);
        let hs = self.raft.hard_state();
        let hard_state = (hs != self.prev_hard_state).then(|| {
            self.prev_hard_state = hs.clone();
            hs
        });
        let log = &mut self.raft.log;
        let snapshot = log.take_unstable_snapshot();
        let entries = log.take_unstable_entries();
        let committed_entries = log.take_committed_entries();
        Ready {
            hard_state,
            entries,
            snapshot,
            messages: std::mem::take(&mut self.raft.msgs),
            committed_entries,
            read_states: std::mem::take(&mut self.raft.read_states),
            number,
        }
    }

    /// Reports that `ready` was carried out: persisted, sent and applied. Inputs may be fed
    /// between `ready` and `advance`; the next `ready` needs this call first.
    ///
    /// # Panics
    /// If `ready` is not the outstanding Ready of this node.
    pub fn advance(&mut self, ready: Ready) {
        assert_eq!(
            self.outstanding,
            Some(ready.number),
            "advance() with a Ready that is not the outstanding one"
        );
        self.outstanding = None;
        let applied = ready
            .committed_entries
            .last()
            .map(|e| e.index)
            .or(ready.snapshot.as_ref().map(|s| s.meta.index));
        if let Some(index) = applied {
            self.raft.log.applied_to(index);
        }
        if let Some(mark) = persist_mark(ready.snapshot.as_ref(), &ready.entries) {
            self.on_persisted(Persisted {
                mark: Some(mark),
                seq: self.durable_seq,
            });
        }
    }

    /// Asynchronous mode: instead of [`advance`](RawNode::advance), splits the outstanding
    /// Ready into what to send now, what the disk writer must persist (with the messages that
    /// wait for it) and what the applier must apply; the next `ready` may be taken at once.
    /// Persistence and application are reported later with
    /// [`on_persisted`](RawNode::on_persisted) and [`on_applied`](RawNode::on_applied). See
    /// [`AsyncReady`] for the caller's duties.
    ///
    /// # Panics
    /// If `ready` is not the outstanding Ready of this node.
    pub fn advance_async(&mut self, ready: Ready) -> AsyncReady {
        assert_eq!(
            self.outstanding,
            Some(ready.number),
            "advance_async() with a Ready that is not the outstanding one"
        );
        self.outstanding = None;
        let Ready {
            hard_state,
            entries,
            snapshot,
            messages,
            committed_entries,
            read_states,
            number: _,
        } = ready;
        self.handed_seq += 1;
        let seq = self.handed_seq;
        if let Some(hs) = &hard_state {
            if (hs.term, hs.vote) != self.handed_term_vote {
                self.handed_term_vote = (hs.term, hs.vote);
                self.term_vote_seq = seq;
            }
        }
        // Term and vote durable, as every message needs (those of this Ready included).
        let term_durable = self.term_vote_seq <= self.durable_seq;
        let persisted = self.raft.log.persisted;
        let mut send_now = Vec::new();
        let mut held = Vec::new();
        for mut m in messages {
            match &mut m.body {
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } => {
                    send_now.push(m)
                }
                // A follower's acknowledgement (of a heartbeat, most often) goes out at once,
                // as etcd's heartbeat responses do, so that a slow disk here delays neither
                // the leader's check-quorum nor its ReadIndex rounds. It claims a match only
                // through what is durable already; the full claim follows once this write
                // is (the same answer, held below, for entries still in the queue).
                MessageBody::AppendEntriesResponse {
                    success: true,
                    index,
                    ..
                } if term_durable => {
                    if *index > persisted {
                        let full = m.clone();
                        if let MessageBody::AppendEntriesResponse { index, .. } = &mut m.body {
                            *index = persisted;
                        }
                        held.push(full);
                    }
                    send_now.push(m);
                }
                // PLANTED(planted_vote_before_durable)
                MessageBody::VoteResponse { granted: true }
                    if self.raft.cfg.planted_vote_before_durable =>
                {
                    send_now.push(m)
                }
                _ => held.push(m),
            }
        }
        let messages = held;
        let mark = persist_mark(snapshot.as_ref(), &entries);
        AsyncReady {
            send_now,
            apply: ApplyTask {
                snapshot: snapshot.clone(),
                committed_entries,
                read_states,
            },
            persist: PersistTask {
                snapshot,
                entries,
                hard_state,
                messages,
                mark,
                seq,
            },
        }
    }

    /// The disk writer made durable everything handed out for persistence up to `p`: a leader
    /// may now count those entries of its own towards a commit.
    pub fn on_persisted(&mut self, p: Persisted) {
        self.durable_seq = self.durable_seq.max(p.seq);
        let Some((index, term)) = p.mark else {
            return;
        };
        if self.raft.log.persisted_to(index, term) && self.raft.role == Role::Leader {
            self.raft.maybe_commit();
            self.raft.maybe_step_down_removed();
        }
    }

    /// How much of the log is known durable (for tests).
    #[cfg(test)]
    pub(crate) fn persisted_index(&self) -> Index {
        self.raft.log.persisted
    }

    /// The applier applied everything handed out up to `index` (asynchronous mode; `advance`
    /// does this itself).
    ///
    /// # Panics
    /// If `index` was not handed out for application.
    pub fn on_applied(&mut self, index: Index) {
        self.raft.log.applied_to(index);
    }
}

/// The last index (and its term) that persisting `snapshot` then `entries` makes durable.
fn persist_mark(snapshot: Option<&Snapshot>, entries: &[Entry]) -> Option<(Index, Term)> {
    entries
        .last()
        .map(|e| (e.index, e.term))
        .or(snapshot.map(|s| (s.meta.index, s.meta.term)))
}

/// Checks that restored durable state is self-consistent before trusting it.
fn check_restored(r: &Restored) -> Result<(), RestoreError> {
    let (mut expected, mut prev_term) = r
        .snapshot
        .as_ref()
        .map_or((Index(1), Term(0)), |s| (s.meta.index.next(), s.meta.term));
    for e in &r.entries {
        if e.index != expected {
            return Err(RestoreError::NotContiguous {
                expected,
                found: e.index,
            });
        }
        if e.term < prev_term || e.term > r.hard_state.term {
            return Err(RestoreError::TermOutOfOrder {
                index: e.index,
                term: e.term,
            });
        }
        expected = e.index.next();
        prev_term = e.term;
    }
    let last = expected.prev();
    if r.hard_state.commit > last {
        return Err(RestoreError::CommitBeyondLog {
            commit: r.hard_state.commit,
            last,
        });
    }
    Ok(())
}
