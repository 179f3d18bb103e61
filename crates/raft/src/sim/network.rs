//! The simulated network: per-link blocking (partitions, symmetric or one-way), random loss,
//! duplication and delay (which reorders).

use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::BTreeSet;

/// Fault settings of the simulated network. Node positions are `0..n`.
#[derive(Clone, Debug)]
pub struct Network {
    /// Directed links `(from, to)` that deliver nothing.
    blocked: BTreeSet<(usize, usize)>,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Delivery delay range in virtual milliseconds, inclusive.
    pub delay_ms: (u64, u64),
    /// Probability that a message is held much longer (up to `long_delay_ms`): stale messages.
    pub long_delay: f64,
    /// The upper bound of a long delay.
    pub long_delay_ms: u64,
}

impl Network {
    /// A reliable network with 1 to 10 ms delays.
    pub fn reliable() -> Network {
        Network {
            blocked: BTreeSet::new(),
            drop: 0.0,
            duplicate: 0.0,
            delay_ms: (1, 10),
            long_delay: 0.0,
            long_delay_ms: 0,
        }
    }

    /// Whether `from` can currently reach `to`.
    pub fn connected(&self, from: usize, to: usize) -> bool {
        !self.blocked.contains(&(from, to))
    }

    /// Blocks (or unblocks) one direction.
    pub fn set_link(&mut self, from: usize, to: usize, up: bool) {
        if up {
            self.blocked.remove(&(from, to));
        } else {
            self.blocked.insert((from, to));
        }
    }

    /// Cuts every link between `a` and `b` in both directions.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.set_link(x, y, false);
                self.set_link(y, x, false);
            }
        }
    }

    /// Cuts every link into and out of `node` among `n` nodes.
    pub fn isolate(&mut self, node: usize, n: usize) {
        let others: Vec<usize> = (0..n).filter(|&o| o != node).collect();
        self.partition(&[node], &others);
    }

    /// Restores every link of `node`.
    pub fn reconnect(&mut self, node: usize) {
        self.blocked.retain(|&(a, b)| a != node && b != node);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// The delivery delays of one message: empty if lost, two if duplicated.
    pub fn fate(&self, rng: &mut SmallRng, from: usize, to: usize) -> Vec<u64> {
        if !self.connected(from, to) || (self.drop > 0.0 && rng.random_bool(self.drop)) {
            return Vec::new();
        }
        let copies = if self.duplicate > 0.0 && rng.random_bool(self.duplicate) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                if self.long_delay > 0.0 && rng.random_bool(self.long_delay) {
                    rng.random_range(self.delay_ms.0..=self.long_delay_ms.max(self.delay_ms.1))
                } else {
                    rng.random_range(self.delay_ms.0..=self.delay_ms.1)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partitions_block_both_ways_and_one_way_links_block_one() {
        let mut net = Network::reliable();
        let mut rng = SmallRng::seed_from_u64(1);
        net.partition(&[0], &[1, 2]);
        assert!(net.fate(&mut rng, 0, 1).is_empty() && net.fate(&mut rng, 2, 0).is_empty());
        assert_eq!(net.fate(&mut rng, 1, 2).len(), 1);
        net.heal();
        net.set_link(1, 2, false);
        assert!(net.fate(&mut rng, 1, 2).is_empty());
        assert_eq!(net.fate(&mut rng, 2, 1).len(), 1);
        net.reconnect(2);
        assert!(net.connected(1, 2));
    }

    #[test]
    fn loss_and_duplication_follow_their_probabilities() {
        let net = Network {
            drop: 0.5,
            duplicate: 0.5,
            ..Network::reliable()
        };
        let mut rng = SmallRng::seed_from_u64(7);
        let fates: Vec<usize> = (0..4000).map(|_| net.fate(&mut rng, 0, 1).len()).collect();
        let lost = fates.iter().filter(|&&c| c == 0).count();
        let doubled = fates.iter().filter(|&&c| c == 2).count();
        assert!((1800..2200).contains(&lost), "{lost}");
        assert!((800..1200).contains(&doubled), "{doubled}");
    }
}
