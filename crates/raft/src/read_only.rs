//! Linearizable reads without a log write: ReadIndex (thesis §6.4).
//!
//! The leader records its commit index as the read index, then confirms it is still leader
//! with a round of heartbeats: each read gets the next *read round* number, every
//! AppendEntries carries the leader's current round, and followers echo it. Once a majority
//! (the leader included) echoed a round at least as new as a read's, no other leader can have
//! existed when the read arrived, and the read may be served at its index. A new leader cannot
//! do this until it has committed an entry of its own term (its no-op), because only then is
//! its commit index known to be the cluster's; reads that arrive earlier wait for that.

use crate::quorum::quorum_value;
use crate::types::{Index, ReadState};
use std::collections::VecDeque;

#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    index: Index,
    round: u64,
}

/// The leader's pending reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadOnly {
    /// The latest read round started.
    round: u64,
    /// Reads awaiting confirmation, in round order.
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before the leader committed in its term.
    awaiting_commit: Vec<u64>,
}

impl ReadOnly {
    /// The round to stamp on outgoing AppendEntries.
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.awaiting_commit.len()
    }

    /// Queues a read until the leader commits in its term.
    pub(crate) fn await_commit(&mut self, ctx: u64) {
        self.awaiting_commit.push(ctx);
    }

    /// Starts a round for the reads waiting on the term's first commit, now at `index`.
    /// Returns whether a round was started (so heartbeats must go out).
    pub(crate) fn release_awaiting(&mut self, index: Index) -> bool {
        if self.awaiting_commit.is_empty() {
            return false;
        }
        self.round += 1;
        for ctx in std::mem::take(&mut self.awaiting_commit) {
            self.pending.push_back(PendingRead {
                ctx,
                index,
                round: self.round,
            });
        }
        true
    }

    /// Starts a round for a read at `index`.
    pub(crate) fn add(&mut self, ctx: u64, index: Index) {
        self.round += 1;
        self.pending.push_back(PendingRead {
            ctx,
            index,
            round: self.round,
        });
    }

    /// Releases the reads whose round a majority of the voters acknowledged. `voter_acks`
    /// holds one value per voter: its latest echoed round, or `None` for the leader itself,
    /// whose acknowledgement is its current round.
    pub(crate) fn confirm(&mut self, voter_acks: &[Option<u64>], out: &mut Vec<ReadState>) {
        if self.pending.is_empty() || voter_acks.is_empty() {
            return;
        }
        let mut acks: Vec<u64> = voter_acks.iter().map(|a| a.unwrap_or(self.round)).collect();
        let confirmed = quorum_value(&mut acks);
        while self.pending.front().is_some_and(|r| r.round <= confirmed) {
            let r = self.pending.pop_front().expect("checked non-empty");
            out.push(ReadState {
                ctx: r.ctx,
                index: r.index,
            });
        }
    }

    /// Drops every pending read (leadership lost): they can no longer be confirmed.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.awaiting_commit.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_released_only_by_a_majority_echoing_its_round() {
        let mut ro = ReadOnly::default();
        ro.add(7, Index(3));
        ro.add(8, Index(4));
        let mut out = Vec::new();
        // 5 voters: leader + 4 peers. Two peers echo round 1: with the leader that is 3 of 5.
        ro.confirm(&[None, Some(1), Some(1), Some(0), Some(0)], &mut out);
        assert_eq!(
            out,
            vec![ReadState {
                ctx: 7,
                index: Index(3)
            }]
        );
        // One peer at round 2 is not a majority for round 2.
        ro.confirm(&[None, Some(2), Some(1), Some(0), Some(0)], &mut out);
        assert_eq!(out.len(), 1);
        ro.confirm(&[None, Some(2), Some(2), Some(0), Some(0)], &mut out);
        assert_eq!(
            out[1],
            ReadState {
                ctx: 8,
                index: Index(4)
            }
        );
    }

    #[test]
    fn reads_before_the_term_commit_wait_for_it() {
        let mut ro = ReadOnly::default();
        ro.await_commit(1);
        let mut out = Vec::new();
        ro.confirm(&[None, Some(9), Some(9)], &mut out);
        assert!(out.is_empty());
        assert!(ro.release_awaiting(Index(5)));
        ro.confirm(&[None, Some(1), Some(0)], &mut out);
        assert_eq!(
            out,
            vec![ReadState {
                ctx: 1,
                index: Index(5)
            }]
        );
        assert!(!ro.release_awaiting(Index(6)));
    }
}
