//! Majority arithmetic (paper §5.2 and §5.3): vote tallies and the committed index.

use crate::types::{Index, NodeId};
use std::collections::BTreeMap;

/// How many of `n` voters make a majority.
pub(crate) fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The outcome of a vote so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

/// Tallies `votes` among `voters` (votes from non-voters are ignored).
pub(crate) fn tally(voters: &[NodeId], votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let q = majority(voters.len());
    let granted = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&true))
        .count();
    let refused = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&false))
        .count();
    if granted >= q {
        VoteResult::Won
    } else if refused >= q {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

/// The largest value that a majority of `values` (one per voter) has reached: the leader's
/// commit candidate when the values are match indexes (Figure 2, "Rules for Servers", last
/// leader rule), or the confirmed read round when they are acknowledged read sequence numbers.
pub(crate) fn quorum_value(values: &mut [u64]) -> u64 {
    assert!(!values.is_empty(), "no voters");
    values.sort_unstable_by(|a, b| b.cmp(a));
    values[majority(values.len()) - 1]
}

/// [`quorum_value`] for indexes.
pub(crate) fn quorum_index(matches: &[Index]) -> Index {
    let mut v: Vec<u64> = matches.iter().map(|i| i.0).collect();
    Index(quorum_value(&mut v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive definition: the largest x such that at least a majority of values are >= x.
    fn naive(values: &[u64]) -> u64 {
        let q = majority(values.len());
        (0..=values.iter().copied().max().unwrap_or(0))
            .rev()
            .find(|&x| values.iter().filter(|&&v| v >= x).count() >= q)
            .unwrap_or(0)
    }

    #[test]
    fn quorum_value_agrees_with_the_naive_definition() {
        // Exhaustive over small vectors: 1 to 5 voters, values 0..4.
        for n in 1..=5usize {
            for code in 0..4u64.pow(n as u32) {
                let values: Vec<u64> = (0..n).map(|k| (code / 4u64.pow(k as u32)) % 4).collect();
                assert_eq!(
                    quorum_value(&mut values.clone()),
                    naive(&values),
                    "{values:?}"
                );
            }
        }
    }

    #[test]
    fn tally_needs_a_majority_either_way() {
        let voters: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let mut votes = BTreeMap::new();
        votes.insert(NodeId(1), true);
        votes.insert(NodeId(2), true);
        assert_eq!(tally(&voters, &votes), VoteResult::Pending);
        votes.insert(NodeId(9), true); // not a voter
        assert_eq!(tally(&voters, &votes), VoteResult::Pending);
        votes.insert(NodeId(3), true);
        assert_eq!(tally(&voters, &votes), VoteResult::Won);
        let refused: BTreeMap<NodeId, bool> = (3..=5).map(|i| (NodeId(i), false)).collect();
        assert_eq!(tally(&voters, &refused), VoteResult::Lost);
        assert_eq!(majority(4), 3);
    }
}
