//! The leader's side: the no-op at term start, proposals, replication with flow control and
//! fast backup, commitment by counting only current-term entries (paper §5.3, §5.4.2, Figure 8),
//! InstallSnapshot (§7), check-quorum (thesis §6.2) and ReadIndex (thesis §6.4).

use crate::errors::ProposeError;
use crate::message::MessageBody;
use crate::progress::{Progress, ProgressState};
use crate::quorum::{majority, quorum_index};
use crate::raft::Raft;
use crate::types::{Entry, EntryPayload, Index, NodeId, ReadState, Role, Term};

impl Raft {
    /// Wins the election: reinitialise nextIndex/matchIndex (Figure 2, "Volatile state on
    /// leaders") and append a no-op so that entries of earlier terms can commit (§5.4.2).
    pub(crate) fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.read_only.clear();
        self.transferee = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let next = self.log.last_index().next();
        self.progress = self
            .replicas()
            .into_iter()
            .map(|p| (p, Progress::new(next)))
            .collect();
        self.append_entry(EntryPayload::Noop);
        self.broadcast_append();
    }

    pub(crate) fn append_entry(&mut self, payload: EntryPayload) -> (Term, Index) {
        let index = self.log.last_index().next();
        let config = match &payload {
            EntryPayload::Config(m) => Some(m.clone()),
            _ => None,
        };
        self.log.append(Entry {
            term: self.term,
            index,
            payload,
        });
        // A configuration takes effect on append, before it commits (thesis §4.1).
        if let Some(m) = config {
            self.set_membership(m, index);
        }
        // A single-voter cluster commits on its own.
        self.maybe_commit();
        (self.term, index)
    }

    pub(crate) fn propose(&mut self, data: Vec<u8>) -> Result<(Term, Index), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        // A leader handing over takes no new commands (thesis §3.10), so that the
        // transferee can catch up; clients are sent to the node about to lead.
        if let Some(to) = self.transferee {
            return Err(ProposeError::NotLeader { leader: Some(to) });
        }
        let size = data.len() as u64;
        if size > self.cfg.max_bytes_per_msg {
            return Err(ProposeError::TooLarge {
                size,
                limit: self.cfg.max_bytes_per_msg,
            });
        }
        let at = self.append_entry(EntryPayload::Command(data));
        self.broadcast_append();
        Ok(at)
    }

    /// Registers a ReadIndex read (thesis §6.4); see `read_only.rs`.
    pub(crate) fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.read_only.len() >= self.cfg.max_pending_reads {
            return Err(ProposeError::TooManyPendingReads(self.read_only.len()));
        }
        // PLANTED(planted_read_before_noop): a new leader serves reads before its no-op
        // commits, at a commit index that may lag what its predecessor committed.
        if self.log.term(self.log.committed) != Some(self.term)
            && !self.cfg.planted_read_before_noop
        {
            self.read_only.await_commit(ctx);
            return Ok(());
        }
        let index = self.log.committed;
        if self.voters() == [self.id] {
            self.read_states.push(ReadState { ctx, index });
            return Ok(());
        }
        self.read_only.add(ctx, index);
        self.broadcast_heartbeat();
        Ok(())
    }

    /// Starts handing leadership to `to` (thesis §3.10): bring its log up to date, then tell it
    /// to campaign at once (TimeoutNow). Abandoned if `to` has not taken over within an
    /// election timeout.
    pub(crate) fn transfer_leader(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.id || !self.membership.is_voter(to) {
            return Err(ProposeError::NotAVoter(to));
        }
        self.transferee = Some(to);
        self.transfer_elapsed = 0;
        self.maybe_send_timeout_now(to);
        Ok(())
    }

    /// Tells the transferee to campaign once its log matches ours; otherwise feeds it.
    pub(crate) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        if self.transferee != Some(to) {
            return;
        }
        if self
            .progress
            .get(&to)
            .is_some_and(|p| p.matched == self.log.last_index())
        {
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_append(to, false);
        }
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.transferee.is_some() {
            self.transfer_elapsed += 1;
            if self.transfer_elapsed >= self.cfg.election_tick {
                self.transferee = None;
            }
        }
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                // Cannot hear a majority: another leader may exist, so stop serving (thesis §6.2).
                self.become_follower(self.term, None);
                return;
            }
        }
        for pr in self.progress.values_mut() {
            // Lost entries or a lost snapshot: probe again (which resends what is missing).
            pr.tick(self.cfg.election_tick);
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Counts the voters heard from since the last round (plus ourselves if we vote), and
    /// resets.
    fn quorum_recently_active(&mut self) -> bool {
        let mut active = usize::from(self.is_voter());
        for (id, pr) in self.progress.iter_mut() {
            if pr.recent_active && self.membership.is_voter(*id) {
                active += 1;
            }
            pr.recent_active = false;
        }
        active >= majority(self.voters().len())
    }

    pub(crate) fn broadcast_append(&mut self) {
        for peer in self.replicas() {
            self.send_append(peer, false);
        }
    }

    /// Heartbeats are empty AppendEntries (Figure 2) anchored at the follower's match index, so
    /// they always pass the consistency check and never move the follower's commit beyond what
    /// it is known to hold. Probing followers also get their next probe.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        for peer in self.replicas() {
            let pr = self
                .progress
                .get_mut(&peer)
                .expect("progress for every peer");
            if pr.state == ProgressState::Probe {
                pr.paused = false;
            }
            let matched = pr.matched;
            let (prev, prev_term) = match self.log.term(matched) {
                Some(t) => (matched, t),
                None => (Index(0), Term(0)),
            };
            let body = MessageBody::AppendEntries {
                prev_log_index: prev,
                prev_log_term: prev_term,
                entries: Vec::new(),
                leader_commit: self.log.committed,
                read_seq: self.read_only.round(),
            };
            self.send(peer, body);
        }
    }

    /// Sends the follower its next entries (or the snapshot if they are compacted away),
    /// unless flow control holds it back. With `allow_empty`, sends even when nothing is new.
    fn send_append(&mut self, to: NodeId, allow_empty: bool) {
        let pr = self.progress.get(&to).expect("progress for every peer");
        if pr.is_paused(self.cfg.max_inflight_msgs) {
            return;
        }
        let next = pr.next;
        let Some(prev_term) = self.log.term(next.prev()) else {
            self.send_snapshot(to);
            return;
        };
        let entries = if next <= self.log.last_index() {
            self.log.slice(
                next,
                self.cfg.max_entries_per_msg,
                self.cfg.max_bytes_per_msg,
            )
        } else {
            Vec::new()
        };
        if entries.is_empty() && !allow_empty && pr.state == ProgressState::Replicate {
            return;
        }
        let last = entries.last().map(|e| e.index);
        let body = MessageBody::AppendEntries {
            prev_log_index: next.prev(),
            prev_log_term: prev_term,
            entries,
            leader_commit: self.log.committed,
            read_seq: self.read_only.round(),
        };
        self.send(to, body);
        self.progress.get_mut(&to).expect("checked").sent(last);
    }

    fn send_snapshot(&mut self, to: NodeId) {
        let snapshot = self
            .log
            .snapshot()
            .expect("entries compacted without a snapshot")
            .clone();
        let index = snapshot.meta.index;
        self.send(
            to,
            MessageBody::InstallSnapshot {
                snapshot,
                read_seq: self.read_only.round(),
            },
        );
        self.progress
            .get_mut(&to)
            .expect("progress for every peer")
            .become_snapshot(index);
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: Index,
        conflict_term: Option<Term>,
        conflict_index: Index,
        read_seq: u64,
    ) {
        self.note_alive(from, read_seq);
        if success {
            self.on_match(from, index);
        } else {
            let hint_next = match conflict_term.and_then(|t| self.log.last_index_of_term(t, index))
            {
                Some(last_of_term) => last_of_term.next(),
                None => conflict_index,
            };
            let pr = self
                .progress
                .get_mut(&from)
                .expect("progress for every peer");
            if pr.maybe_decrease(index, hint_next) {
                if pr.state == ProgressState::Replicate {
                    // The stream broke: probe from the hinted index set just above.
                    let next = pr.next;
                    pr.become_probe();
                    pr.next = next;
                }
                self.send_append(from, true);
            }
        }
    }

    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, index: Index, read_seq: u64) {
        self.note_alive(from, read_seq);
        let pr = self
            .progress
            .get_mut(&from)
            .expect("progress for every peer");
        if matches!(pr.state, ProgressState::Snapshot { .. }) {
            pr.become_probe();
        }
        self.on_match(from, index);
    }

    /// Any answer in our term shows the follower accepts us as leader: for check-quorum and,
    /// through the echoed read round, for ReadIndex.
    fn note_alive(&mut self, from: NodeId, read_seq: u64) {
        let pr = self
            .progress
            .get_mut(&from)
            .expect("progress for every peer");
        pr.recent_active = true;
        pr.read_ack = pr.read_ack.max(read_seq);
        self.confirm_reads();
    }

    /// Releases the reads a majority of the voters confirmed (the leader confirms its own
    /// rounds if it votes; a leader removing itself does not).
    fn confirm_reads(&mut self) {
        let acks: Vec<Option<u64>> = self
            .voters()
            .iter()
            .map(|v| {
                if *v == self.id {
                    None
                } else {
                    Some(self.progress.get(v).map_or(0, |p| p.read_ack))
                }
            })
            .collect();
        self.read_only.confirm(&acks, &mut self.read_states);
    }

    /// The follower matches through `index`: update its progress, try to commit, and keep it
    /// fed.
    fn on_match(&mut self, from: NodeId, index: Index) {
        let pr = self
            .progress
            .get_mut(&from)
            .expect("progress for every peer");
        if pr.maybe_update(index) {
            if pr.state == ProgressState::Probe {
                pr.become_replicate();
            }
            self.maybe_commit();
        }
        let pr = &self.progress[&from];
        if self.transferee == Some(from) && pr.matched == self.log.last_index() {
            self.send(from, MessageBody::TimeoutNow);
        }
        let pr = &self.progress[&from];
        let last = self.log.last_index();
        // A probed follower that answers a heartbeat but matches less than our log (a new
        // learner with an empty log, say) gets a probe at once, or an idle cluster would
        // never find where its log ends.
        if pr.next <= last || (pr.state == ProgressState::Probe && pr.matched < last) {
            self.send_append(from, false);
        }
    }

    /// Figure 2, "Leaders": if there is an N > commitIndex that a majority matches and
    /// log[N].term == currentTerm, set commitIndex = N. The leader's own matchIndex is its
    /// persisted index, not its last index. Entries of older terms are committed
    /// only indirectly, by this rule (§5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        // Only voters count, the leader itself only if it votes (a leader removing itself does
        // not: thesis §4.2.2), and only for entries it has made durable (thesis §10.2.1: it may
        // send entries to followers before writing them, but must not count them before).
        let matches: Vec<Index> = self
            .voters()
            .iter()
            .map(|v| {
                if *v == self.id {
                    self.log.persisted
                } else {
                    self.progress.get(v).map_or(Index(0), |p| p.matched)
                }
            })
            .collect();
        let n = quorum_index(&matches);
        // PLANTED(planted_commit_earlier_term): counting replicas of an earlier term's entry.
        let own_term = self.cfg.planted_commit_earlier_term || self.log.term(n) == Some(self.term);
        if n <= self.log.committed || !own_term {
            return false;
        }
        self.log.commit_to(n);
        if self.read_only.release_awaiting(n) {
            if self.voters() == [self.id] {
                self.confirm_reads();
            } else {
                self.broadcast_heartbeat();
            }
        }
        true
    }
}
