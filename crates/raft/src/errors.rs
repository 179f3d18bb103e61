//! Typed errors for conditions a caller can cause or recover from. Broken internal invariants
//! panic instead: they are bugs, not conditions.

use crate::types::{Index, NodeId, Term};
use thiserror::Error;

/// Why a [`crate::Config`] is unusable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `voters` is empty. No longer returned: an empty list is a joining node.
    #[error("the voter list is empty")]
    NoVoters,
    /// `voters` lists a node twice.
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    /// `election_tick` must exceed `heartbeat_tick`, or followers would time out between
    /// heartbeats.
    #[error("election_tick ({election}) must be greater than heartbeat_tick ({heartbeat})")]
    ElectionNotAboveHeartbeat {
        /// The configured election tick.
        election: u32,
        /// The configured heartbeat tick.
        heartbeat: u32,
    },
    /// `heartbeat_tick` must be at least 1.
    #[error("heartbeat_tick must be at least 1")]
    ZeroHeartbeat,
    /// `max_entries_per_msg` and `max_inflight_msgs` must be at least 1.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
}

/// How restored durable state contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The entries do not follow the snapshot (or each other) without a gap.
    #[error("entry {found} where {expected} was expected")]
    NotContiguous {
        /// The index that should come next.
        expected: Index,
        /// The index found.
        found: Index,
    },
    /// An entry's term is lower than its predecessor's, or higher than the hard state's term.
    #[error("entry {index} has term {term}, out of order")]
    TermOutOfOrder {
        /// The entry.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// The hard state's commit index lies beyond the log and snapshot.
    #[error("commit {commit} is beyond the last index {last}")]
    CommitBeyondLog {
        /// The restored commit index.
        commit: Index,
        /// The last index restored.
        last: Index,
    },
}

/// Why a [`crate::ConfChange`] does not apply to a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ConfChangeError {
    /// AddLearner of a node that is a voter or a learner already.
    #[error("{0} is already a member")]
    AlreadyMember(NodeId),
    /// Promote of a node that is not a learner.
    #[error("{0} is not a learner")]
    NotALearner(NodeId),
    /// Remove of a node that is not a member.
    #[error("{0} is not a member")]
    NotAMember(NodeId),
    /// Removing the last voter would leave nobody to commit anything.
    #[error("removing {0} would leave no voter")]
    LastVoter(NodeId),
}

/// Errors from constructing or driving a [`crate::RawNode`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The restored state is inconsistent: the durable state is damaged.
    #[error("inconsistent restored state: {0}")]
    Restore(#[from] RestoreError),
    /// A message addressed to another node was stepped into this one.
    #[error("message for {to} stepped into {this}")]
    WrongRecipient {
        /// Its addressee.
        to: NodeId,
        /// This node.
        this: NodeId,
    },
    /// A message that claims to come from this node itself was ignored.
    #[error("message from unknown node {0}")]
    UnknownSender(NodeId),
    /// [`crate::RawNode::compact`] was asked to compact beyond what the application applied.
    #[error("cannot compact to {requested}: only {applied} is applied")]
    CompactBeyondApplied {
        /// The requested snapshot index.
        requested: Index,
        /// The applied index.
        applied: Index,
    },
    /// [`crate::RawNode::compact`] was asked for an index at or below the current snapshot.
    #[error("already compacted to {0}")]
    AlreadyCompacted(Index),
}

/// Why a proposal or read request was not accepted. Each variant is definite: the command was
/// not appended, or the read was not registered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// Only the leader accepts proposals and reads; `leader` is whom this node believes leads.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of in its current term, if any.
        leader: Option<NodeId>,
    },
    /// The command is larger than [`crate::Config::max_bytes_per_msg`] and could never be sent.
    #[error("proposal of {size} bytes exceeds the {limit}-byte message limit")]
    TooLarge {
        /// The command size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many reads are pending confirmation; retry later.
    #[error("too many pending reads ({0})")]
    TooManyPendingReads(usize),
    /// Leadership can only be handed to another voter.
    #[error("{0} is not another voter of this cluster")]
    NotAVoter(NodeId),
    /// A membership change is not yet committed, or leadership is being handed over; retry
    /// once it is (thesis §4.1: one change at a time).
    #[error("a membership change or leadership transfer is in progress")]
    ChangeInProgress,
    /// This leader has not yet committed an entry of its own term, so its configuration may
    /// not be the cluster's latest committed one (the single-server bug Ongaro posted to
    /// raft-dev in 2015: a change proposed before the new leader's no-op commits can overlap
    /// an uncommitted change of an earlier leader); retry shortly.
    #[error("the leader has not yet committed an entry of its term")]
    TermNotCommitted,
    /// The change does not apply to the current configuration.
    #[error("invalid membership change: {0}")]
    BadConfChange(#[from] ConfChangeError),
}
