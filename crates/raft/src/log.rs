//! The in-memory replicated log, from the latest snapshot on (paper §5.3 and §7).
//!
//! Invariants, checked where data enters:
//! - `entries[k].index == offset + 1 + k` (contiguous after the snapshot);
//! - terms never decrease along the log;
//! - `offset <= applied <= handed <= committed <= last_index()` where `handed` is how far
//!   committed entries were handed to the application (`applied` trails it until `advance`);
//! - `committed` never decreases, and no committed entry is ever truncated.

use crate::types::{Entry, Index, Snapshot, SnapshotMeta, Term};

/// The log, its commit/apply cursors and what is still to be handed to the caller.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    /// The latest snapshot (with data, so that a leader can send it), if any.
    snapshot: Option<Snapshot>,
    /// Index and term of the last entry the snapshot replaces (0, 0 without one).
    offset: Index,
    offset_term: Term,
    /// Entries `offset + 1 ..= last_index()`.
    entries: Vec<Entry>,
    /// Highest index known committed (Figure 2 `commitIndex`).
    pub(crate) committed: Index,
    /// Highest index the application reported applied (Figure 2 `lastApplied`).
    pub(crate) applied: Index,
    /// Highest committed index already handed out in a `Ready`.
    handed: Index,
    /// First index not yet handed out for persistence.
    unstable: Index,
    /// Whether `snapshot` was installed from a leader and not yet handed out.
    snapshot_unstable: bool,
    /// Highest index such that every entry up to it in this log is known durable (reported
    /// through `persisted_to`). Only this much of its own log may a leader count towards a
    /// commit quorum. Lowered when the log is truncated or replaced by a snapshot.
    pub(crate) persisted: Index,
}

impl RaftLog {
    /// A log restored from durable state, all of which is considered persisted. The caller
    /// (`RawNode::new`) has validated that `entries` follow `snapshot` contiguously.
    pub(crate) fn restore(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: Index,
        applied: Index,
    ) -> RaftLog {
        let (offset, offset_term) = snapshot
            .as_ref()
            .map_or((Index(0), Term(0)), |s| (s.meta.index, s.meta.term));
        let committed = commit.max(offset);
        let applied = applied.clamp(offset, committed);
        let mut log = RaftLog {
            snapshot,
            offset,
            offset_term,
            entries,
            committed,
            applied,
            handed: applied,
            unstable: Index(0),
            snapshot_unstable: false,
            persisted: Index(0),
        };
        log.unstable = log.last_index().next();
        log.persisted = log.last_index();
        log
    }

    pub(crate) fn first_index(&self) -> Index {
        self.offset.next()
    }

    pub(crate) fn last_index(&self) -> Index {
        Index(self.offset.0 + self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    pub(crate) fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref().map(|s| &s.meta)
    }

    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The snapshot's index: entries at or below it are compacted (and committed).
    pub(crate) fn offset(&self) -> Index {
        self.offset
    }

    /// The term of the entry at `index`, or `None` if it is compacted (below the snapshot) or
    /// beyond the log. `Index(0)` has term 0 while nothing is compacted.
    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index.0 - self.offset.0 - 1) as usize)
    }

    /// Whether the log has an entry at `index` with `term` (the AppendEntries consistency check).
    pub(crate) fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Whether a candidate's log ending at (`last_index`, `last_term`) is at least as up-to-date
    /// as this one (paper §5.4.1).
    pub(crate) fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries `from ..` capped at `max_entries` and (after the first) `max_bytes`.
    pub(crate) fn slice(&self, from: Index, max_entries: usize, max_bytes: u64) -> Vec<Entry> {
        assert!(from > self.offset, "slice from compacted index {from}");
        let start = (from.0 - self.offset.0 - 1) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries.iter().skip(start).take(max_entries) {
            bytes += e.approx_size();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// The first index of the run of entries with `term` that contains `index`, scanning back
    /// no further than the first entry (the follower's "fast backup" hint).
    pub(crate) fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term(index);
        let mut i = index;
        while i > self.first_index() && self.term(i.prev()) == term {
            i = i.prev();
        }
        i
    }

    /// The last index at or below `index` whose entry has `term`, if any (the leader's side of
    /// fast backup).
    pub(crate) fn last_index_of_term(&self, term: Term, index: Index) -> Option<Index> {
        let mut i = index.min(self.last_index());
        while i > self.offset {
            let t = self.term(i).expect("index within the log");
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i = i.prev();
        }
        None
    }

    /// Appends an entry the leader created.
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "leader append out of order"
        );
        assert!(
            entry.term >= self.last_term(),
            "leader append with a lower term"
        );
        self.entries.push(entry);
    }

    /// Stores a leader's entries that follow a matching `prev` (Figure 2, AppendEntries
    /// receiver steps 3 and 4): an entry that conflicts (same index, other term) is deleted with
    /// all that follow it; entries already present are kept, so that a stale or duplicated
    /// request never truncates the log.
    pub(crate) fn merge(&mut self, entries: &[Entry]) {
        for (k, e) in entries.iter().enumerate() {
            if e.index <= self.offset || self.matches(e.index, e.term) {
                continue;
            }
            if e.index <= self.last_index() {
                assert!(
                    e.index > self.committed,
                    "truncating committed entry {} (commit {})",
                    e.index,
                    self.committed
                );
                self.entries
                    .truncate((e.index.0 - self.offset.0 - 1) as usize);
                self.unstable = self.unstable.min(e.index);
                self.persisted = self.persisted.min(e.index.prev());
            }
            for e in &entries[k..] {
                assert_eq!(e.index, self.last_index().next(), "entries not contiguous");
                assert!(e.term >= self.last_term(), "entries with decreasing terms");
                self.entries.push(e.clone());
            }
            return;
        }
    }

    /// Raises the commit index; it never decreases.
    pub(crate) fn commit_to(&mut self, index: Index) {
        if index > self.committed {
            assert!(
                index <= self.last_index(),
                "commit {index} beyond last index {}",
                self.last_index()
            );
            self.committed = index;
        }
    }

    /// Replaces the whole log with a leader's snapshot (paper §7). The caller has checked that
    /// the snapshot is beyond the commit index and that no entry of ours matches its last
    /// entry, so every entry we hold conflicts with the leader's log and may go.
    pub(crate) fn install(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index > self.committed,
            "installing a snapshot behind commit"
        );
        self.offset = snapshot.meta.index;
        self.offset_term = snapshot.meta.term;
        self.entries.clear();
        self.committed = self.offset;
        self.handed = self.offset;
        self.unstable = self.offset.next();
        // Nothing of the new log is known durable until the snapshot itself is reported.
        self.persisted = Index(0);
        self.snapshot = Some(snapshot);
        self.snapshot_unstable = true;
    }

    /// Discards entries up to `snapshot.meta.index`, which the application has applied.
    pub(crate) fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        assert!(
            index > self.offset && index <= self.applied,
            "bad compaction to {index}"
        );
        assert_eq!(
            self.term(index),
            Some(snapshot.meta.term),
            "snapshot term mismatch"
        );
        self.entries.drain(..(index.0 - self.offset.0) as usize);
        self.offset = index;
        self.offset_term = snapshot.meta.term;
        self.snapshot = Some(snapshot);
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.snapshot_unstable || self.unstable <= self.last_index()
    }

    pub(crate) fn has_next_committed(&self) -> bool {
        self.committed > self.handed
    }

    /// Hands out a newly installed snapshot, once.
    pub(crate) fn take_unstable_snapshot(&mut self) -> Option<Snapshot> {
        if !self.snapshot_unstable {
            return None;
        }
        self.snapshot_unstable = false;
        self.snapshot.clone()
    }

    /// Hands out the entries not yet handed out for persistence.
    pub(crate) fn take_unstable_entries(&mut self) -> Vec<Entry> {
        let out = if self.unstable <= self.last_index() {
            self.slice(self.unstable, usize::MAX, u64::MAX)
        } else {
            Vec::new()
        };
        self.unstable = self.last_index().next();
        out
    }

    /// Hands out the committed entries not yet handed out for application. Call after
    /// `take_unstable_entries`, so that each is durable or in the same `Ready`.
    pub(crate) fn take_committed_entries(&mut self) -> Vec<Entry> {
        if self.committed <= self.handed {
            return Vec::new();
        }
        debug_assert!(
            self.committed < self.unstable,
            "handing out an unpersisted commit"
        );
        let out: Vec<Entry> = self.slice(self.handed.next(), usize::MAX, u64::MAX);
        let n = (self.committed.0 - self.handed.0) as usize;
        self.handed = self.committed;
        out.into_iter().take(n).collect()
    }

    /// Records that everything handed out for persistence up to `(index, term)` is durable.
    /// Ignored unless this log still holds `index` with that `term`: a report about entries
    /// that were since truncated (or replaced by a snapshot) says nothing about the current
    /// log. If it holds it, by the log matching property so is the whole prefix, and all of
    /// that prefix was handed out before (or in) the reported write, which wrote in order.
    pub(crate) fn persisted_to(&mut self, index: Index, term: Term) -> bool {
        if index > self.persisted && index < self.unstable && self.term(index) == Some(term) {
            self.persisted = index;
            return true;
        }
        false
    }

    /// Records that the application applied through `index` (from `advance`).
    pub(crate) fn applied_to(&mut self, index: Index) {
        assert!(
            index <= self.handed,
            "applied {index} beyond what was handed out ({})",
            self.handed
        );
        self.applied = self.applied.max(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: Index(index),
            payload: EntryPayload::Command(vec![index as u8]),
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, &t)| e(k as u64 + 1, t))
            .collect();
        RaftLog::restore(None, entries, Index(0), Index(0))
    }

    #[test]
    fn merge_keeps_matching_entries_and_truncates_only_at_a_conflict() {
        let mut log = log_of(&[1, 1, 2, 2]);
        // A stale, shorter request that matches must not truncate (Figure 2 step 3 only deletes
        // on conflict).
        log.merge(&[e(2, 1)]);
        assert_eq!(log.last_index(), Index(4));
        // A conflict at 3 deletes 3.. and appends the leader's entries.
        log.merge(&[e(2, 1), e(3, 3)]);
        assert_eq!(log.last_index(), Index(3));
        assert_eq!(log.term(Index(3)), Some(Term(3)));
        assert_eq!(log.take_unstable_entries(), vec![e(3, 3)]);
    }

    #[test]
    #[should_panic(expected = "truncating committed entry")]
    fn merge_refuses_to_truncate_a_committed_entry() {
        let mut log = log_of(&[1, 1, 2]);
        log.commit_to(Index(3));
        log.merge(&[e(3, 3)]);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let log = log_of(&[1, 2, 2]);
        assert!(log.is_up_to_date(Index(1), Term(3)));
        assert!(log.is_up_to_date(Index(3), Term(2)));
        assert!(!log.is_up_to_date(Index(2), Term(2)));
        assert!(!log.is_up_to_date(Index(9), Term(1)));
    }

    #[test]
    fn backup_hints_find_term_boundaries() {
        let log = log_of(&[1, 1, 4, 4, 4, 5]);
        assert_eq!(log.first_index_of_term_at(Index(5)), Index(3));
        assert_eq!(log.first_index_of_term_at(Index(2)), Index(1));
        assert_eq!(log.last_index_of_term(Term(4), Index(6)), Some(Index(5)));
        assert_eq!(log.last_index_of_term(Term(3), Index(6)), None);
        assert_eq!(log.last_index_of_term(Term(1), Index(6)), Some(Index(2)));
    }

    #[test]
    fn committed_entries_are_handed_out_once_and_compaction_keeps_terms() {
        let mut log = log_of(&[1, 1, 2]);
        log.take_unstable_entries();
        log.commit_to(Index(2));
        assert_eq!(log.take_committed_entries(), vec![e(1, 1), e(2, 1)]);
        assert!(log.take_committed_entries().is_empty());
        log.applied_to(Index(2));
        let meta = SnapshotMeta {
            index: Index(2),
            term: Term(1),
            voters: vec![],
            learners: vec![],
        };
        log.compact(Snapshot { meta, data: vec![] });
        assert_eq!((log.first_index(), log.last_index()), (Index(3), Index(3)));
        assert_eq!(log.term(Index(2)), Some(Term(1)));
        assert_eq!(log.term(Index(1)), None);
        assert!(log.matches(Index(2), Term(1)));
    }

    #[test]
    fn slice_caps_bytes_but_always_sends_one_entry() {
        let log = log_of(&[1, 1, 1]);
        assert_eq!(log.slice(Index(1), 10, 1).len(), 1);
        assert_eq!(log.slice(Index(1), 2, u64::MAX).len(), 2);
        assert_eq!(log.slice(Index(2), 10, u64::MAX).len(), 2);
    }
}
