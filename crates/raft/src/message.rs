//! The messages Raft nodes exchange (paper Figure 2 RPCs, §7 InstallSnapshot, thesis §9.6
//! PreVote). Every message carries its sender's term; the core compares it first (Figure 2,
//! "Rules for Servers": a higher term converts the receiver to follower).

use crate::types::{Entry, Index, NodeId, Snapshot, Term};

/// A message between two nodes. The caller delivers it to `to`'s [`crate::RawNode::step`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term; for a pre-vote request, the term the sender would campaign in.
    pub term: Term,
    /// What it says.
    pub body: MessageBody,
}

/// The kinds of message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" without anyone changing term (thesis §9.6).
    PreVote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// The answer to a pre-vote. When granted, its `term` is the requested term.
    PreVoteResponse {
        /// Whether the vote would be granted.
        granted: bool,
    },
    /// RequestVote (Figure 2).
    Vote {
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
        /// The candidate campaigns because the leader handed over (TimeoutNow): voters answer
        /// even while they still hear from that leader (thesis §3.10; etcd's campaignTransfer).
        transfer: bool,
    },
    /// The answer to RequestVote.
    VoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (Figure 2). With no entries it is a heartbeat. `read_seq` tags the
    /// leadership-confirmation round for ReadIndex (thesis §6.4): an answer echoing it proves
    /// the sender was still leader when the round began.
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_log_index: Index,
        /// Term of that entry.
        prev_log_term: Term,
        /// Entries to store, in index order (empty for a heartbeat).
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
        /// The leader's read round, echoed in the response.
        read_seq: u64,
    },
    /// The answer to AppendEntries.
    AppendEntriesResponse {
        /// Whether the follower's log matched `prev_log_index`/`prev_log_term`.
        success: bool,
        /// On success, the last index known to match the leader's log (prev + entries).
        /// On failure, the `prev_log_index` that was rejected.
        index: Index,
        /// On failure, the term of the follower's entry at the rejected index, if it has one
        /// (the "fast backup" hint of the MIT 6.5840 labs, paper §5.3 end).
        conflict_term: Option<Term>,
        /// On failure: with `conflict_term`, the follower's first index of that term; without,
        /// the follower's last index + 1.
        conflict_index: Index,
        /// Echo of the request's `read_seq`.
        read_seq: u64,
    },
    /// InstallSnapshot (paper §7), the whole snapshot in one message.
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
        /// The leader's read round, echoed in the response.
        read_seq: u64,
    },
    /// Leadership transfer (thesis §3.10): the leader, having brought the recipient's log up
    /// to date, tells it to campaign at once, without waiting for an election timeout or a
    /// pre-vote round.
    TimeoutNow,
    /// The answer to InstallSnapshot.
    InstallSnapshotResponse {
        /// The index the follower's log now matches up to (at least the snapshot's index, or
        /// its own commit if that was further along).
        index: Index,
        /// Echo of the request's `read_seq`.
        read_seq: u64,
    },
}

impl MessageBody {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::Vote { .. } => "Vote",
            MessageBody::VoteResponse { .. } => "VoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }
}
