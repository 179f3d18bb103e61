//! The fault schedule: drawn up front from the seed, so the same seed gives the same schedule.
//!
//! Faults run one at a time: each step starts a fault at `at`, holds it for `hold`, then heals
//! it; the next step starts after a gap. The mean cycle (fault plus gap) is the nemesis interval.
//! Everything random is drawn here (targets, permutations, delays); only "the leader" is resolved
//! at run time, falling back to a node drawn here when no leader answers.

use super::args::FaultKind;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

/// Which node a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A node chosen by the schedule.
    Node(usize),
    /// The current leader (found through `status`), else the fallback node.
    Leader { fallback: usize },
}

/// A partition shape, over node indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum Partition {
    /// The nodes, shuffled, cut into two halves (the first is the smaller).
    Halves { order: Vec<usize> },
    /// One node cut off from all others.
    Isolate { target: Target },
    /// Each node sees a majority (itself and its ring neighbours), no two the same majority.
    MajoritiesRing { order: Vec<usize> },
    /// Two halves with one node in the middle that sees both.
    Bridge { order: Vec<usize> },
    /// One node's links in one direction only: it can still send but not receive (`inbound`),
    /// or receive but not send.
    OneWay { target: Target, inbound: bool },
}

/// A fault with everything random already drawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    Pause {
        target: Target,
    },
    Kill {
        target: Target,
    },
    Partition(Partition),
    /// Latency on the links touching `nodes` (every link when `nodes` is empty).
    Delay {
        nodes: Vec<usize>,
        base_ms: u64,
        jitter_ms: u64,
    },
}

/// One step of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Start, since the start of the run.
    #[serde(rename = "at_ms", serialize_with = "ms")]
    pub at: Duration,
    /// How long the fault stays before it is healed.
    #[serde(rename = "hold_ms", serialize_with = "ms")]
    pub hold: Duration,
    pub fault: Fault,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Draws the schedule for a run of `time_limit` over `nodes` nodes.
pub fn generate(
    seed: u64,
    nodes: usize,
    kinds: &[FaultKind],
    interval: Duration,
    time_limit: Duration,
) -> Vec<Step> {
    // A stream of its own: the workers' streams are derived from the seed differently.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
    let mut steps = Vec::new();
    if kinds.is_empty() || nodes == 0 {
        return steps;
    }
    let mut t = interval.mul_f64(rng.random_range(0.3..0.6));
    loop {
        let hold = interval.mul_f64(rng.random_range(0.4..0.7));
        let gap = interval.mul_f64(rng.random_range(0.3..0.6));
        let kind = kinds[rng.random_range(0..kinds.len())];
        let fault = draw(&mut rng, kind, nodes);
        // The last fault may be cut short by the end of the run (everything is healed then).
        if t + Duration::from_millis(100) >= time_limit {
            break;
        }
        let hold = hold.min(time_limit - t);
        steps.push(Step { at: t, hold, fault });
        t += hold + gap;
    }
    steps
}

fn target(rng: &mut StdRng, nodes: usize) -> Target {
    let node = rng.random_range(0..nodes);
    if rng.random_bool(0.5) {
        Target::Leader { fallback: node }
    } else {
        Target::Node(node)
    }
}

fn shuffled(rng: &mut StdRng, nodes: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..nodes).collect();
    v.shuffle(rng);
    v
}

fn draw(rng: &mut StdRng, kind: FaultKind, nodes: usize) -> Fault {
    match kind {
        FaultKind::Pause => Fault::Pause {
            target: target(rng, nodes),
        },
        FaultKind::Kill => Fault::Kill {
            target: target(rng, nodes),
        },
        FaultKind::Partition => {
            let shape = rng.random_range(0..6);
            let order = shuffled(rng, nodes);
            let node = rng.random_range(0..nodes);
            let inbound = rng.random_bool(0.5);
            Fault::Partition(match shape {
                0 => Partition::Halves { order },
                1 => Partition::Isolate {
                    target: Target::Node(node),
                },
                2 => Partition::Isolate {
                    target: Target::Leader { fallback: node },
                },
                3 if nodes >= 4 => Partition::MajoritiesRing { order },
                4 if nodes >= 3 => Partition::Bridge { order },
                3 | 4 => Partition::Halves { order },
                _ => Partition::OneWay {
                    target: if rng.random_bool(0.5) {
                        Target::Leader { fallback: node }
                    } else {
                        Target::Node(node)
                    },
                    inbound,
                },
            })
        }
        FaultKind::Delay => {
            let base_ms = rng.random_range(10..=150);
            let jitter_ms = rng.random_range(0..=base_ms);
            let nodes = if rng.random_bool(0.5) {
                Vec::new()
            } else {
                vec![rng.random_range(0..nodes)]
            };
            Fault::Delay {
                nodes,
                base_ms,
                jitter_ms,
            }
        }
    }
}

/// The directed links (from, to) that a partition shape blocks, given the resolved `target`
/// node for shapes that name one.
pub fn blocked_links(p: &Partition, nodes: usize, target: usize) -> Vec<(usize, usize)> {
    let all = |allowed: &dyn Fn(usize, usize) -> bool| -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for a in 0..nodes {
            for b in 0..nodes {
                if a != b && !allowed(a, b) {
                    v.push((a, b));
                }
            }
        }
        v
    };
    match p {
        Partition::Halves { order } => {
            let small: Vec<usize> = order[..nodes / 2].to_vec();
            all(&|a, b| small.contains(&a) == small.contains(&b))
        }
        Partition::Isolate { .. } => all(&|a, b| a != target && b != target),
        Partition::MajoritiesRing { order } => {
            // Position on the ring; each node sees neighbours within distance d, where 2d+1 is
            // at least a majority.
            let pos = |x: usize| order.iter().position(|&y| y == x).unwrap_or(0);
            let majority = nodes / 2 + 1;
            let d = majority / 2;
            all(&|a, b| {
                let diff = pos(a).abs_diff(pos(b));
                diff.min(nodes - diff) <= d
            })
        }
        Partition::Bridge { order } => {
            // order[..half] | order[half] (bridge) | order[half+1..]
            let half = nodes / 2;
            let bridge = order[half.min(nodes - 1)];
            let left: Vec<usize> = order[..half].to_vec();
            all(&|a, b| a == bridge || b == bridge || left.contains(&a) == left.contains(&b))
        }
        Partition::OneWay { inbound, .. } => {
            if *inbound {
                all(&|_, b| b != target)
            } else {
                all(&|a, _| a != target)
            }
        }
    }
}

/// The groups of a partition, for the history's nemesis event (`None` when the shape is not a
/// set of disjoint groups).
pub fn groups(p: &Partition, nodes: usize, target: usize) -> Option<Vec<Vec<usize>>> {
    match p {
        Partition::Halves { order } => {
            let mut a = order[..nodes / 2].to_vec();
            let mut b = order[nodes / 2..].to_vec();
            a.sort_unstable();
            b.sort_unstable();
            Some(vec![a, b])
        }
        Partition::Isolate { .. } => Some(vec![
            vec![target],
            (0..nodes).filter(|&x| x != target).collect(),
        ]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule() {
        let s = |seed| {
            generate(
                seed,
                5,
                &FaultKind::ALL,
                Duration::from_secs(5),
                Duration::from_secs(60),
            )
        };
        assert_eq!(s(7), s(7));
        assert_ne!(s(7), s(8));
        assert!(s(7).len() >= 6);
        for st in s(7) {
            assert!(st.at + st.hold <= Duration::from_secs(60));
        }
    }

    #[test]
    fn no_kinds_no_steps() {
        assert!(generate(1, 5, &[], Duration::from_secs(1), Duration::from_secs(60)).is_empty());
    }

    fn reach(blocked: &[(usize, usize)], a: usize, b: usize) -> bool {
        !blocked.contains(&(a, b))
    }

    #[test]
    fn partition_shapes() {
        let order = vec![0, 1, 2, 3, 4];
        let halves = blocked_links(
            &Partition::Halves {
                order: order.clone(),
            },
            5,
            0,
        );
        assert_eq!(halves.len(), 2 * 2 * 3);
        assert!(reach(&halves, 0, 1) && !reach(&halves, 0, 2) && !reach(&halves, 3, 1));

        let ring = blocked_links(
            &Partition::MajoritiesRing {
                order: order.clone(),
            },
            5,
            0,
        );
        for a in 0..5 {
            let seen = (0..5).filter(|&b| b == a || reach(&ring, a, b)).count();
            assert_eq!(seen, 3, "node {a} sees a majority");
        }
        assert!(reach(&ring, 0, 4) && !reach(&ring, 0, 2));

        let bridge = blocked_links(
            &Partition::Bridge {
                order: order.clone(),
            },
            5,
            0,
        );
        assert!(reach(&bridge, 2, 0) && reach(&bridge, 4, 2) && !reach(&bridge, 0, 4));

        let iso = blocked_links(
            &Partition::Isolate {
                target: Target::Node(3),
            },
            5,
            3,
        );
        assert_eq!(iso.len(), 8);

        let inbound = blocked_links(
            &Partition::OneWay {
                target: Target::Node(1),
                inbound: true,
            },
            5,
            1,
        );
        assert_eq!(inbound.len(), 4);
        assert!(!reach(&inbound, 0, 1) && reach(&inbound, 1, 0));
    }
}
