//! Node configuration.

use crate::errors::ConfigError;
use crate::types::NodeId;

/// How a [`crate::RawNode`] behaves. Build it with [`Config::new`] and adjust fields; every
/// field has a sound default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; it should be one of `voters`.
    pub id: NodeId,
    /// The voting members the cluster starts with (used while neither the log nor a snapshot
    /// holds a configuration). Empty for a node that joins an existing cluster: it has no
    /// configuration, never campaigns, and learns one from the leader that adds it.
    pub voters: Vec<NodeId>,
    /// A follower that hears nothing from a leader for a random number of ticks in
    /// `[election_tick, 2 * election_tick)` starts an election (paper §5.2). Default 10.
    pub election_tick: u32,
    /// A leader sends heartbeats every `heartbeat_tick` ticks. Default 1.
    pub heartbeat_tick: u32,
    /// Run a pre-vote round before incrementing the term (thesis §9.6), so that a node that
    /// rejoins after a partition cannot depose a healthy leader. Default true.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down, and
    /// followers that heard from a leader within the minimum election timeout ignore vote
    /// requests (thesis §6.2 and §9.6). Default true.
    pub check_quorum: bool,
    /// At most this many entries in one AppendEntries. Default 256.
    pub max_entries_per_msg: usize,
    /// At most about this many bytes of entries in one AppendEntries (at least one entry is
    /// always sent). Default 1 MiB.
    pub max_bytes_per_msg: u64,
    /// At most this many AppendEntries in flight to one follower while replicating
    /// optimistically. Default 64.
    pub max_inflight_msgs: usize,
    /// At most this many reads awaiting leadership confirmation. Default 4096.
    pub max_pending_reads: usize,
    /// Seed of the node's own RNG, which only draws election timeouts. Give each node (and each
    /// restart) a different seed, or nodes may time out in lockstep.
    pub seed: u64,
    /// **PLANTED, test-only; never set it in a node.** A new leader answers ReadIndex reads
    /// before an entry of its own term is committed (thesis §6.4 step 1 skipped), at a commit
    /// index that may lag what its predecessor committed. Default false.
    pub planted_read_before_noop: bool,
    /// **PLANTED, test-only; never set it in a node.** A leader accepts a membership change
    /// while another is still uncommitted (thesis §4.1's one-at-a-time rule skipped). Default
    /// false.
    pub planted_concurrent_conf_changes: bool,
    /// **PLANTED, test-only; never set it in a node.** Votes and pre-votes are granted without
    /// the check that the candidate's log is at least as up-to-date (paper §5.4.1), so a node
    /// missing committed entries can win. Default false.
    pub planted_vote_ignores_log: bool,
    /// **PLANTED, test-only; never set it in a node.** A leader commits an entry of an earlier
    /// term as soon as a majority stores it (the rule paper §5.4.2 and Figure 8 forbid): a later
    /// leader may overwrite it. Default false.
    pub planted_commit_earlier_term: bool,
    /// **PLANTED, test-only; never set it in a node.** In asynchronous mode a vote grant leaves
    /// at once instead of waiting for the term and vote to be durable (Figure 2: persist
    /// before responding): a crash before the write lets the node vote twice in one term.
    /// Default false.
    pub planted_vote_before_durable: bool,
}

impl Config {
    /// A configuration with defaults for node `id` among `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_tick: 10,
            heartbeat_tick: 1,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_msg: 256,
            max_bytes_per_msg: 1 << 20,
            max_inflight_msgs: 64,
            max_pending_reads: 4096,
            seed: 0,
            planted_read_before_noop: false,
            planted_concurrent_conf_changes: false,
            planted_vote_ignores_log: false,
            planted_commit_earlier_term: false,
            planted_vote_before_durable: false,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = self.voters.clone();
        seen.sort();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election: self.election_tick,
                heartbeat: self.heartbeat_tick,
            });
        }
        if self.max_entries_per_msg == 0 {
            return Err(ConfigError::ZeroLimit("max_entries_per_msg"));
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroLimit("max_inflight_msgs"));
        }
        if self.max_pending_reads == 0 {
            return Err(ConfigError::ZeroLimit("max_pending_reads"));
        }
        Ok(())
    }
}

impl Default for Config {
    /// A single-node cluster of `NodeId(1)`.
    fn default() -> Config {
        Config::new(NodeId(1), vec![NodeId(1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documentation() {
        let c = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.election_tick, c.heartbeat_tick), (10, 1));
        assert!(c.pre_vote && c.check_quorum);
    }

    #[test]
    fn validate_rejects_each_bad_field() {
        let ok = Config::new(NodeId(1), vec![NodeId(1), NodeId(2)]);
        let cases: Vec<(Config, ConfigError)> = vec![
            (
                Config {
                    voters: vec![NodeId(2), NodeId(1), NodeId(2)],
                    ..ok.clone()
                },
                ConfigError::DuplicateVoter(NodeId(2)),
            ),
            (
                Config {
                    heartbeat_tick: 0,
                    ..ok.clone()
                },
                ConfigError::ZeroHeartbeat,
            ),
            (
                Config {
                    election_tick: 1,
                    ..ok.clone()
                },
                ConfigError::ElectionNotAboveHeartbeat {
                    election: 1,
                    heartbeat: 1,
                },
            ),
            (
                Config {
                    max_inflight_msgs: 0,
                    ..ok.clone()
                },
                ConfigError::ZeroLimit("max_inflight_msgs"),
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate(), Err(want));
        }
    }
}
