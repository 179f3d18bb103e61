//! The receiver's side of AppendEntries (paper Figure 2) and InstallSnapshot (§7).

use crate::message::MessageBody;
use crate::raft::Raft;
use crate::types::{Entry, EntryPayload, Index, NodeId, Snapshot, Term};

impl Raft {
    /// Figure 2, AppendEntries receiver. The term check (step 1) was done by `step`.
    pub(crate) fn handle_append_entries(
        &mut self,
        from: NodeId,
        prev: Index,
        prev_term: Term,
        entries: &[Entry],
        leader_commit: Index,
        read_seq: u64,
    ) {
        let last_new = Index(prev.0 + entries.len() as u64);
        // Entries at or below our snapshot are committed, so they match the leader's; skip
        // them and check consistency at the snapshot instead.
        let offset = self.log.offset();
        let consistent = prev < offset || self.log.matches(prev, prev_term);
        if !consistent {
            // Step 2: reply false if the log has no entry at prevLogIndex whose term matches,
            // with the hint that lets the leader skip a whole term at a time.
            let (conflict_term, conflict_index) = if prev > self.log.last_index() {
                (None, self.log.last_index().next())
            } else {
                (self.log.term(prev), self.log.first_index_of_term_at(prev))
            };
            let body = MessageBody::AppendEntriesResponse {
                success: false,
                index: prev,
                conflict_term,
                conflict_index,
                read_seq,
            };
            self.send(from, body);
            return;
        }
        // Steps 3 and 4.
        self.log.merge(entries);
        let new_config = entries
            .iter()
            .any(|e| matches!(e.payload, EntryPayload::Config(_)));
        self.after_merge(new_config);
        // Step 5: commitIndex = min(leaderCommit, index of last new entry).
        self.log.commit_to(leader_commit.min(last_new));
        let body = MessageBody::AppendEntriesResponse {
            success: true,
            index: last_new,
            conflict_term: None,
            conflict_index: Index(0),
            read_seq,
        };
        self.send(from, body);
    }

    /// InstallSnapshot receiver (§7). A snapshot at or behind our commit index is old news; one
    /// whose last entry we hold only moves our commit forward and keeps the entries after it;
    /// otherwise it replaces the whole log and the state machine.
    pub(crate) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        snapshot: Snapshot,
        read_seq: u64,
    ) {
        let meta = &snapshot.meta;
        let index = if meta.index <= self.log.committed {
            self.log.committed
        } else if self.log.matches(meta.index, meta.term) {
            self.log.commit_to(meta.index);
            meta.index
        } else {
            let index = meta.index;
            self.log.install(snapshot);
            self.refresh_membership();
            index
        };
        self.send(
            from,
            MessageBody::InstallSnapshotResponse { index, read_seq },
        );
    }
}
