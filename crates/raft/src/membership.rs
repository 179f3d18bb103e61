//! Membership changes, one server at a time (thesis §4.1-4.2): the configuration lives in the
//! log and takes effect as soon as its entry is appended (committed or not), falls back to the
//! previous one if the entry is truncated, and travels in snapshots. New servers join as
//! learners and are promoted once caught up (§4.2.1); a leader that removes itself leads until
//! the removal commits, without counting itself, then steps down (§4.2.2).

use crate::errors::ProposeError;
use crate::message::MessageBody;
use crate::progress::Progress;
use crate::raft::Raft;
use crate::types::{ConfChange, EntryPayload, Index, Membership, Role, Term};

impl Raft {
    /// The latest configuration in the log at or below `index` (with the index of its entry),
    /// else the snapshot's, else the one the node started with.
    pub(crate) fn membership_at(&self, index: Index) -> (Membership, Index) {
        let mut i = index.min(self.log.last_index());
        while i > self.log.offset() {
            if let Some(EntryPayload::Config(m)) = self.log.entry(i).map(|e| &e.payload) {
                return (m.clone(), i);
            }
            i = i.prev();
        }
        match self.log.snapshot_meta() {
            Some(meta) => (meta.membership(), meta.index),
            None => (self.bootstrap.clone(), Index(0)),
        }
    }

    /// Recomputes the configuration from the log (after a restart, a snapshot install, or a
    /// truncation that may have removed the latest configuration entry).
    pub(crate) fn refresh_membership(&mut self) {
        let (m, index) = self.membership_at(self.log.last_index());
        self.set_membership(m, index);
    }

    /// After a follower stored a leader's `entries`: the configuration changes if one of them
    /// carries one, or if the entry that set ours was truncated.
    pub(crate) fn after_merge(&mut self, new_config: bool) {
        let ours_gone = self.config_index > self.log.offset()
            && !matches!(
                self.log.entry(self.config_index).map(|e| &e.payload),
                Some(EntryPayload::Config(_))
            );
        if new_config || ours_gone {
            self.refresh_membership();
        }
    }

    /// Uses `m` from now on. A leader starts replicating to new members and forgets removed
    /// ones.
    pub(crate) fn set_membership(&mut self, m: Membership, index: Index) {
        self.membership = m;
        self.config_index = index;
        if self.role != Role::Leader {
            return;
        }
        let replicas = self.replicas();
        self.progress.retain(|id, _| replicas.contains(id));
        let next = self.log.last_index().next();
        for id in replicas {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next));
        }
        if self
            .transferee
            .is_some_and(|t| !self.membership.is_voter(t))
        {
            self.transferee = None;
        }
    }

    /// Leader: appends the configuration that `change` makes of the current one. Refused while
    /// another change is uncommitted (one at a time keeps every pair of consecutive
    /// configurations' majorities overlapping), before this leader has committed an entry of
    /// its own term (the raft-dev 2015 single-server bug: an earlier leader's uncommitted
    /// change may still win), and while leadership is being handed over.
    pub(crate) fn propose_conf_change(
        &mut self,
        change: ConfChange,
    ) -> Result<(Term, Index), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            return Err(ProposeError::ChangeInProgress);
        }
        // PLANTED(planted_concurrent_conf_changes): a second change may follow an
        // uncommitted one, so two consecutive changes can have disjoint majorities.
        if self.config_index > self.log.committed && !self.cfg.planted_concurrent_conf_changes {
            return Err(ProposeError::ChangeInProgress);
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            return Err(ProposeError::TermNotCommitted);
        }
        let next = self.membership.apply(change)?;
        let at = self.append_entry(EntryPayload::Config(next));
        self.broadcast_append();
        Ok(at)
    }

    /// A leader that is no longer a voter steps down once the configuration without it is
    /// committed (thesis §4.2.2), handing over to the most caught-up voter if one has the whole
    /// log so that the cluster need not wait for an election timeout.
    pub(crate) fn maybe_step_down_removed(&mut self) {
        if self.role != Role::Leader || self.is_voter() || self.config_index > self.log.committed {
            return;
        }
        let last = self.log.last_index();
        let heir = self
            .progress
            .iter()
            .filter(|(id, p)| self.membership.is_voter(**id) && p.matched == last)
            .map(|(&id, _)| id)
            .next();
        if let Some(to) = heir {
            self.send(to, MessageBody::TimeoutNow);
        }
        self.become_follower(self.term, None);
    }
}
