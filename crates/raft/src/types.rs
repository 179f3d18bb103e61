//! The plain data of Raft: terms, indexes, node ids, log entries, persistent state and
//! snapshots (Raft paper, Ongaro & Ousterhout 2014, Figure 2 "State").

use crate::errors::ConfChangeError;
use std::fmt;

macro_rules! newtype_u64 {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

newtype_u64!(
    /// A Raft term: a logical clock that only grows (paper §5.1). `Term(0)` precedes every
    /// election and is the term of the empty log's sentinel entry at `Index(0)`.
    Term,
    "t"
);
newtype_u64!(
    /// A position in the replicated log. Entries start at `Index(1)`; `Index(0)` means "before
    /// the first entry" (paper Figure 2).
    Index,
    "i"
);
newtype_u64!(
    /// The identity of a cluster member. Any value is valid; `NodeId(0)` has no special meaning
    /// to the core, but callers may prefer to avoid it for readability.
    NodeId,
    "n"
);

impl Index {
    /// The next index. Panics on overflow, which would be a broken invariant.
    pub fn next(self) -> Index {
        Index(self.0.checked_add(1).expect("log index overflow"))
    }

    /// The previous index, saturating at zero.
    pub fn prev(self) -> Index {
        Index(self.0.saturating_sub(1))
    }
}

/// The members of a cluster: the voters, whose majority elects leaders and commits entries,
/// and the learners, which receive the log but neither vote nor count towards a quorum (thesis
/// §4.2.1: a new server catches up as a learner before it can slow commitment down). Both
/// lists are sorted and disjoint. An empty configuration is a node that is joining and has not
/// yet heard from a leader: it never campaigns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Membership {
    /// The voting members, sorted.
    pub voters: Vec<NodeId>,
    /// The non-voting members, sorted.
    pub learners: Vec<NodeId>,
}

impl Membership {
    /// A configuration of `voters` (sorted here) and no learners.
    pub fn with_voters(mut voters: Vec<NodeId>) -> Membership {
        voters.sort();
        voters.dedup();
        Membership {
            voters,
            learners: Vec::new(),
        }
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// The configuration after `change`, or why it cannot be made. A single-server change:
    /// any majority of the result overlaps any majority of `self` (thesis §4.1).
    pub fn apply(&self, change: ConfChange) -> Result<Membership, ConfChangeError> {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(ConfChangeError::AlreadyMember(id));
                }
                next.learners.push(id);
                next.learners.sort();
            }
            ConfChange::Promote(id) => {
                if !self.is_learner(id) {
                    return Err(ConfChangeError::NotALearner(id));
                }
                next.learners.retain(|&l| l != id);
                next.voters.push(id);
                next.voters.sort();
            }
            ConfChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(ConfChangeError::NotAMember(id));
                }
                next.learners.retain(|&l| l != id);
                next.voters.retain(|&v| v != id);
                if next.voters.is_empty() {
                    return Err(ConfChangeError::LastVoter(id));
                }
            }
        }
        Ok(next)
    }
}

/// One single-server membership change (thesis §4.1 and §4.2.1), proposed with
/// [`crate::RawNode::propose_conf_change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ConfChange {
    /// Adds a node that is not a member as a learner: it gets the log but does not vote.
    AddLearner(NodeId),
    /// Makes a learner a voter (do it once the learner has caught up; see
    /// [`Status::progress`]).
    Promote(NodeId),
    /// Removes a voter or a learner (the leader itself included: it leads until the removal
    /// commits, then steps down).
    Remove(NodeId),
}

/// What a log entry carries. Callers should treat variants they do not know as "no effect on
/// the state machine".
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EntryPayload {
    /// The empty entry a new leader appends at the start of its term so that it can commit
    /// entries of earlier terms (paper §5.4.2 and §8; thesis §6.4). It has no effect on the
    /// application's state machine, but still occupies an index.
    Noop,
    /// An opaque application command, as given to [`crate::RawNode::propose`].
    Command(Vec<u8>),
    /// The cluster's configuration from this entry on (the result of one [`ConfChange`]).
    /// Every node uses the latest configuration in its log as soon as it appends the entry,
    /// committed or not, and falls back to the previous one if the entry is truncated
    /// (thesis §4.1). No effect on the application's state machine.
    Config(Membership),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// Its position in the log.
    pub index: Index,
    /// What it carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// An approximation of the entry's encoded size, used to cap message sizes.
    pub fn approx_size(&self) -> u64 {
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(data) => data.len() as u64,
            EntryPayload::Config(m) => 8 * (m.voters.len() + m.learners.len()) as u64,
        };
        payload + 24
    }
}

/// The state that must be durable before the node answers any RPC (paper Figure 2,
/// "Persistent state on all servers"), plus the commit index, which is not required for safety
/// but lets a restarted node re-apply committed entries without waiting for a leader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed.
    pub commit: Index,
}

/// What a snapshot stands for: the log up to and including `index`, whose last entry had `term`,
/// with the configuration in effect at `index` (paper §7; thesis §4.1: the snapshot replaces
/// the configuration entries it covers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotMeta {
    /// The last log index the snapshot replaces.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The voting members as of `index`.
    pub voters: Vec<NodeId>,
    /// The learners as of `index`.
    pub learners: Vec<NodeId>,
}

impl SnapshotMeta {
    /// The configuration as of `index`.
    pub fn membership(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
        }
    }
}

/// A snapshot of the application's state machine at `meta.index`, opaque to the core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// Which log prefix it replaces.
    pub meta: SnapshotMeta,
    /// The application's serialized state, as handed to [`crate::RawNode::compact`].
    pub data: Vec<u8>,
}

/// A linearizable read that is ready to be served (thesis §6.4, ReadIndex).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReadState {
    /// The caller's context from [`crate::RawNode::read_index`].
    pub ctx: u64,
    /// Serve the read from the state machine once it has applied at least this index.
    pub index: Index,
}

/// The role a node plays in its current term (paper §5.1, and thesis §9.6 for pre-candidates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asks whether it could win an election, without disturbing anyone's term (pre-vote).
    PreCandidate,
    /// Campaigns for votes in its current term.
    Candidate,
    /// Leads its term.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(s)
    }
}

/// A summary of a node's volatile state, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in `term` (itself when leader).
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit: Index,
    /// The index the application reported applied, through [`crate::RawNode::advance`].
    pub applied: Index,
    /// The last index of its log.
    pub last_index: Index,
    /// Its configuration: the latest in its log (committed or not), else its snapshot's, else
    /// the one it was started with.
    pub membership: Membership,
    /// The index of the entry that set `membership` (0 if it came from the start
    /// configuration; the snapshot's index if from a snapshot). The change is committed once
    /// `commit` reaches it.
    pub config_index: Index,
    /// Leader only: the match index of every other member (voters and learners), so that a
    /// caller can tell when a learner has caught up. Empty on other roles.
    pub progress: Vec<(NodeId, Index)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_display_with_a_prefix_and_order_numerically() {
        assert_eq!(Term(3).to_string(), "t3");
        assert_eq!(Index(9).to_string(), "i9");
        assert_eq!(NodeId(2).to_string(), "n2");
        assert!(Index(9) < Index(10));
        assert_eq!(Index(0).prev(), Index(0));
        assert_eq!(Index(4).next(), Index(5));
    }
}
