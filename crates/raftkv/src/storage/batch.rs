//! The one way the node writes Raft state: a [`WriteBatch`] (hard state, snapshot, entries)
//! staged in the order that keeps every crash point recoverable, and made durable by one sync.
//!
//! # The durability rule
//!
//! The parts of a batch reach the disk in this order, whatever order the caller lists them in:
//!
//! 1. **term and vote** (the `hardstate` file, replaced atomically, durable on return);
//! 2. **the snapshot** (written durably, then the log edited to follow it);
//! 3. **the entries** (a conflicting suffix cut durably first, then the new records buffered).
//!
//! and the whole batch is durable when [`Storage::write`] (or the [`Storage::sync`] after a
//! group of [`Storage::stage`] calls) returns. A process that dies at any point in between
//! leaves a state that Raft accepts on restart and that loses nothing acknowledged:
//!
//! - Every durable entry and snapshot has a term at most the durable term, because the term is
//!   written before anything that carries it. (Written the other way round, a new term's entry
//!   could reach the file before the term, and the node would refuse to start forever with
//!   `TermOutOfOrder`: the bug this order closes.)
//! - A term or vote stored without the entries that came with it is what a node that crashed
//!   right after a vote, before the leader's first AppendEntries, looks like.
//! - The commit index stored with an early term/vote stops below the first entry the rest of
//!   the batch replaces (below the old commit when a snapshot replaces the log): a stored commit
//!   must only point at entries that recovery will find committed. Raft keeps commit volatile
//!   anyway, so storing an older one only means re-applying after a restart.
//!
//! This gives what etcd's WAL gets from putting the hard state in the same append-only file as
//! the entries (a torn tail is a prefix of one batch): each prefix of the ordered steps is a
//! state Raft allows, and nothing is reported durable before the sync.

use super::error::StorageError;
use super::hard_state;
use super::types::{Entry, HardState, Index, Snapshot};
use super::Storage;

/// One Raft write: what a `Ready` (or a disk writer's task) asks to persist.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteBatch<'a> {
    /// The new term, vote and commit. A change of commit alone is kept in memory only (see
    /// the module docs of `storage`).
    pub hard_state: Option<&'a HardState>,
    /// A leader's snapshot that replaces the log through its index.
    pub snapshot: Option<&'a Snapshot>,
    /// Entries to append after removing any stored entry at or above the first one's index.
    pub entries: &'a [Entry],
}

/// PLANTED(durability): the storage tests' way to put back the write order that let a new
/// term's entries reach the disk before the term, and show that the kill test catches it.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum WriteOrder {
    /// Term and vote, then snapshot, then entries: the rule above.
    #[default]
    TermFirst,
    /// Snapshot, entries, then term and vote: the order before the fix.
    EntriesFirst,
}

impl Storage {
    /// Writes `batch` and makes it durable (one fdatasync, plus the hard state's own when term
    /// or vote changed).
    pub fn write(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.stage(batch)?;
        self.sync()
    }

    /// Writes `batch` in the durable order but leaves the entries' records unsynced, so that
    /// several batches can share one [`Storage::sync`] (group commit). Nothing of a staged
    /// batch may be reported durable before that sync returns.
    pub fn stage(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.stage_inner(batch);
        self.poison_on_io_error(result)
    }

    fn stage_inner(&mut self, batch: &WriteBatch) -> Result<(), StorageError> {
        #[cfg(test)]
        if self.order == WriteOrder::EntriesFirst {
            if let Some(s) = batch.snapshot {
                self.save_snapshot_checked(s)?;
            }
            self.append_inner(batch.entries)?;
            if let Some(hs) = batch.hard_state {
                self.save_term_and_vote(hs, None)?;
            }
            return Ok(());
        }
        if let Some(hs) = batch.hard_state {
            // The commit stored now must not cover what the rest of the batch replaces.
            let keep = match (batch.snapshot, batch.entries.first()) {
                (Some(_), _) => Some(self.hard_state.commit),
                (None, Some(e)) => Some(e.index.prev()),
                (None, None) => None,
            };
            self.save_term_and_vote(hs, keep)?;
        }
        if let Some(s) = batch.snapshot {
            self.save_snapshot_checked(s)?;
        }
        self.append_inner(batch.entries)
    }

    /// Stores term and vote durably if they changed, with the commit index capped at `keep`
    /// (the last index that the rest of the batch leaves alone); remembers `hs` (with its
    /// commit) for the next write.
    pub(super) fn save_term_and_vote(
        &mut self,
        hs: &HardState,
        keep: Option<Index>,
    ) -> Result<(), StorageError> {
        if hs.term != self.hard_state.term || hs.vote != self.hard_state.vote {
            let stored = HardState {
                commit: keep.map_or(hs.commit, |k| hs.commit.min(k)),
                ..hs.clone()
            };
            hard_state::save(&self.dir, &stored)?;
            self.crash_point("hard state saved")?;
        }
        self.hard_state = hs.clone();
        Ok(())
    }
}
