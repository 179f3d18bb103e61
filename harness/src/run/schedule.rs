//! The fault schedule: drawn up front from the seed, so the same seed gives the same schedule.
//!
//! Kinds are dealt like a shuffled deck: every selected kind (and for `partition`, both the
//! symmetric shapes and the one-way cut) comes up once before any comes up twice, so a run long
//! enough for one round of the deck exercises every selected fault. Each step starts a fault at
//! `at` and heals it after `hold`; the next main step starts after a gap, the mean cycle being
//! the nemesis interval. With probability `overlap`, a second fault is drawn from the deck to
//! start while the main one is in force, so faults compose (a kill during a partition, a pause
//! during a client partition, ...).
//!
//! Everything random is drawn here (targets, permutations, delays); only "the leader" is resolved
//! at run time, falling back to a node drawn here when no leader answers.

use super::args::FaultKind;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

/// Which node a single-node fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A node chosen by the schedule.
    Node(usize),
    /// The current leader (found through `status`), else the fallback node.
    Leader { fallback: usize },
}

/// Which nodes a process fault (pause, kill) hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "set")]
pub enum Targets {
    /// One node.
    One { target: Target },
    /// A minority (`(n-1)/2` nodes, at least one), the leader among them when `with_leader`.
    Minority {
        order: Vec<usize>,
        with_leader: bool,
    },
    /// A majority (`n/2+1` nodes), the leader among them when `with_leader`.
    Majority {
        order: Vec<usize>,
        with_leader: bool,
    },
    /// Every node.
    All,
    /// A subset drawn here (non-empty).
    Subset { nodes: Vec<usize> },
}

impl Targets {
    /// The set's name in history events and counts.
    pub fn name(&self) -> &'static str {
        match self {
            Targets::One {
                target: Target::Leader { .. },
            } => "leader",
            Targets::One { .. } => "one",
            Targets::Minority { .. } => "minority",
            Targets::Majority { .. } => "majority",
            Targets::All => "all",
            Targets::Subset { .. } => "subset",
        }
    }

    /// The node indices, given the leader found at run time (if any).
    pub fn resolve(&self, nodes: usize, leader: Option<usize>) -> Vec<usize> {
        let take = |order: &[usize], k: usize, with_leader: bool| -> Vec<usize> {
            let mut v: Vec<usize> = Vec::with_capacity(k);
            if let (true, Some(l)) = (with_leader, leader) {
                v.push(l);
            }
            for &x in order {
                if v.len() >= k {
                    break;
                }
                if !v.contains(&x) {
                    v.push(x);
                }
            }
            v.sort_unstable();
            v
        };
        match self {
            Targets::One {
                target: Target::Node(i),
            } => vec![*i],
            Targets::One {
                target: Target::Leader { fallback },
            } => vec![leader.unwrap_or(*fallback)],
            Targets::Minority { order, with_leader } => {
                take(order, ((nodes - 1) / 2).max(1), *with_leader)
            }
            Targets::Majority { order, with_leader } => take(order, nodes / 2 + 1, *with_leader),
            Targets::All => (0..nodes).collect(),
            Targets::Subset { nodes } => nodes.clone(),
        }
    }

    /// Whether resolving needs the current leader.
    pub fn wants_leader(&self) -> bool {
        match self {
            Targets::One { target } => matches!(target, Target::Leader { .. }),
            Targets::Minority { with_leader, .. } | Targets::Majority { with_leader, .. } => {
                *with_leader
            }
            Targets::All | Targets::Subset { .. } => false,
        }
    }
}

/// A partition shape, over node indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum Partition {
    /// The nodes, shuffled, cut into two halves (the first is the smaller); with
    /// `leader_in_minority`, the leader found at run time is swapped into the smaller half.
    Halves {
        order: Vec<usize>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        leader_in_minority: bool,
    },
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
        targets: Targets,
    },
    Kill {
        targets: Targets,
    },
    /// Every node killed at once, all restarted when the step ends.
    KillAll,
    Partition(Partition),
    /// Both directions between `clients` (worker indices) and `nodes` held.
    ClientPartition {
        targets: Targets,
        clients: Vec<usize>,
    },
    /// Latency on the links touching `nodes` (every link when `nodes` is empty).
    Delay {
        nodes: Vec<usize>,
        base_ms: u64,
        jitter_ms: u64,
    },
    /// The targets killed and everything their filesystems never made durable dropped.
    PowerCut {
        targets: Targets,
    },
    /// `ops` (`writes`, `fsyncs` or `all`) of one node fail with `errno` (`EIO`, `ENOSPC`).
    DiskError {
        target: Target,
        ops: &'static str,
        errno: &'static str,
    },
    /// One node stopped and one bit of its files flipped (file and bit drawn from `seed`).
    Bitflip {
        target: Target,
        seed: u64,
    },
    /// A change of the cluster's membership or leadership.
    Membership(MemberChange),
}

/// What a `membership` fault changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum MemberChange {
    /// Remove the target from the configuration, kill it and wipe its data; when the fault ends,
    /// start it empty and add it back as a new member.
    Replace { target: Target },
    /// Hand leadership to `to` (or, if `to` leads already, to the store's choice).
    Transfer { to: usize },
}

#[cfg(test)]
impl Fault {
    /// The kind's name, as in `--nemesis`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Pause { .. } => "pause",
            Fault::Kill { .. } => "kill",
            Fault::KillAll => "kill-all",
            Fault::Partition(_) => "partition",
            Fault::ClientPartition { .. } => "client-partition",
            Fault::Delay { .. } => "delay",
            Fault::PowerCut { .. } => "power-cut",
            Fault::DiskError { .. } => "disk-error",
            Fault::Bitflip { .. } => "bitflip",
            Fault::Membership(_) => "membership",
        }
    }
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
    /// Whether it was drawn to overlap the main step before it.
    pub overlapping: bool,
    pub fault: Fault,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A card of the deck: a kind, and for partitions which family of shapes. Partitions have four
/// cards, because the bugs they find hide in different places: any shape, the leader cut off
/// from a majority (stale reads on an old leader), and a one-way cut each way (a store that
/// mistakes a one-way cut for a dead peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Kind(FaultKind),
    LeaderInMinority,
    OneWay { inbound: bool },
}

impl Card {
    /// How much longer than the usual fault this one is held. The leader cut off from a
    /// majority, or cut one way, must last long enough for the others to elect a new leader and
    /// take writes, and for clients still talking to the old one to ask it something.
    fn hold_scale(self) -> f64 {
        match self {
            Card::LeaderInMinority | Card::OneWay { .. } => 1.6,
            Card::Kind(_) => 1.0,
        }
    }
}

struct Deck {
    cards: Vec<Card>,
    left: Vec<Card>,
}

impl Deck {
    fn new(kinds: &[FaultKind]) -> Deck {
        let mut cards: Vec<Card> = kinds.iter().map(|&k| Card::Kind(k)).collect();
        if kinds.contains(&FaultKind::Partition) {
            cards.push(Card::LeaderInMinority);
            cards.push(Card::OneWay { inbound: false });
            cards.push(Card::OneWay { inbound: true });
        }
        Deck {
            cards,
            left: Vec::new(),
        }
    }

    fn deal(&mut self, rng: &mut StdRng) -> Card {
        if self.left.is_empty() {
            self.left = self.cards.clone();
            self.left.shuffle(rng);
        }
        // `cards` is never empty (checked by the caller), so neither is a refilled `left`.
        self.left.pop().unwrap_or(Card::Kind(FaultKind::Pause))
    }
}

/// Draws the schedule for a run of `time_limit` over `nodes` nodes and `clients` workers.
pub fn generate(
    seed: u64,
    nodes: usize,
    clients: usize,
    kinds: &[FaultKind],
    interval: Duration,
    overlap: f64,
    time_limit: Duration,
) -> Vec<Step> {
    // A stream of its own: the workers' streams are derived from the seed differently.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7321);
    let mut steps = Vec::new();
    if kinds.is_empty() || nodes == 0 {
        return steps;
    }
    let mut deck = Deck::new(kinds);
    let mut t = interval.mul_f64(rng.random_range(0.3..0.6));
    loop {
        let card = deck.deal(&mut rng);
        let hold = interval.mul_f64(rng.random_range(0.5..0.8) * card.hold_scale());
        let gap = interval.mul_f64(rng.random_range(0.2..0.4));
        let fault = draw(&mut rng, card, nodes, clients);
        // The last fault may be cut short by the end of the run (everything is healed then).
        if t + Duration::from_millis(100) >= time_limit {
            break;
        }
        let hold = hold.min(time_limit - t);
        steps.push(Step {
            at: t,
            hold,
            overlapping: false,
            fault,
        });
        if rng.random_bool(overlap.clamp(0.0, 1.0)) {
            let at = t + hold.mul_f64(rng.random_range(0.1..0.4));
            let card = deck.deal(&mut rng);
            let second_hold = interval.mul_f64(rng.random_range(0.4..0.7) * card.hold_scale());
            let fault = draw(&mut rng, card, nodes, clients);
            if at + Duration::from_millis(100) < time_limit {
                steps.push(Step {
                    at,
                    hold: second_hold.min(time_limit - at),
                    overlapping: true,
                    fault,
                });
            }
        }
        t += hold + gap;
    }
    steps
}

/// The leader half the time: most protocol bugs live where the leader is.
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

/// A target set: one (a node or the leader) in 2 of 5, then a minority, a majority, all or a
/// random subset.
fn targets(rng: &mut StdRng, nodes: usize) -> Targets {
    let order = shuffled(rng, nodes);
    let with_leader = rng.random_bool(0.5);
    let size = rng.random_range(1..=nodes);
    let subset = {
        let mut s = order[..size].to_vec();
        s.sort_unstable();
        s
    };
    match rng.random_range(0..10) {
        0..4 => Targets::One {
            target: target(rng, nodes),
        },
        4 | 5 => Targets::Minority { order, with_leader },
        6 | 7 => Targets::Majority { order, with_leader },
        8 => Targets::All,
        _ => Targets::Subset { nodes: subset },
    }
}

/// A power cut's target set: a majority or all in 3 of 5, since what a minority loses the
/// others still hold and hand back; one node (or the leader), or a minority, otherwise.
fn power_cut_targets(rng: &mut StdRng, nodes: usize) -> Targets {
    let order = shuffled(rng, nodes);
    let with_leader = rng.random_bool(0.5);
    match rng.random_range(0..10) {
        0 | 1 => Targets::One {
            target: target(rng, nodes),
        },
        2 | 3 => Targets::Minority { order, with_leader },
        4..7 => Targets::Majority { order, with_leader },
        _ => Targets::All,
    }
}

fn draw(rng: &mut StdRng, card: Card, nodes: usize, clients: usize) -> Fault {
    match card {
        Card::Kind(FaultKind::Pause) => Fault::Pause {
            targets: targets(rng, nodes),
        },
        Card::Kind(FaultKind::Kill) => Fault::Kill {
            targets: targets(rng, nodes),
        },
        Card::Kind(FaultKind::KillAll) => Fault::KillAll,
        Card::Kind(FaultKind::Partition) => {
            let shape = rng.random_range(0..5);
            let order = shuffled(rng, nodes);
            let node = rng.random_range(0..nodes);
            let inbound = rng.random_bool(0.5);
            Fault::Partition(match shape {
                4 => Partition::OneWay {
                    target: Target::Node(node),
                    inbound,
                },
                0 => Partition::Halves {
                    order,
                    leader_in_minority: false,
                },
                1 => Partition::Isolate {
                    target: Target::Node(node),
                },
                2 if nodes >= 4 => Partition::MajoritiesRing { order },
                3 if nodes >= 3 => Partition::Bridge { order },
                _ => Partition::Halves {
                    order,
                    leader_in_minority: false,
                },
            })
        }
        Card::LeaderInMinority => {
            let order = shuffled(rng, nodes);
            let node = rng.random_range(0..nodes);
            Fault::Partition(if rng.random_bool(0.5) || nodes < 3 {
                Partition::Isolate {
                    target: Target::Leader { fallback: node },
                }
            } else {
                Partition::Halves {
                    order,
                    leader_in_minority: true,
                }
            })
        }
        Card::OneWay { inbound } => {
            // Around the leader: that is where a store most often mistakes silence for death.
            // (One-way cuts of any node come with the plain partition card.)
            let node = rng.random_range(0..nodes);
            Fault::Partition(Partition::OneWay {
                target: Target::Leader { fallback: node },
                inbound,
            })
        }
        Card::Kind(FaultKind::ClientPartition) => {
            let mut cs: Vec<usize> = (0..clients).collect();
            cs.shuffle(rng);
            let k = rng.random_range(1..=clients.max(1)).min(clients);
            let mut clients = cs[..k].to_vec();
            clients.sort_unstable();
            Fault::ClientPartition {
                targets: targets(rng, nodes),
                clients,
            }
        }
        Card::Kind(FaultKind::PowerCut) => Fault::PowerCut {
            targets: power_cut_targets(rng, nodes),
        },
        Card::Kind(FaultKind::DiskError) => Fault::DiskError {
            target: target(rng, nodes),
            ops: ["writes", "fsyncs", "all"][rng.random_range(0..3)],
            errno: ["EIO", "ENOSPC"][rng.random_range(0..2)],
        },
        Card::Kind(FaultKind::Bitflip) => Fault::Bitflip {
            target: target(rng, nodes),
            seed: rng.random(),
        },
        // Replacing a member is the change that can lose data, so it comes up two times in three.
        Card::Kind(FaultKind::Membership) => Fault::Membership(if rng.random_bool(2.0 / 3.0) {
            MemberChange::Replace {
                target: target(rng, nodes),
            }
        } else {
            MemberChange::Transfer {
                to: rng.random_range(0..nodes),
            }
        }),
        Card::Kind(FaultKind::Delay) => {
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
        Partition::Halves { order, .. } => {
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

/// `p` with the leader (when it asks for one and one was found) moved into the smaller half.
pub fn place_leader(p: &Partition, nodes: usize, leader: Option<usize>) -> Partition {
    match (p, leader) {
        (
            Partition::Halves {
                order,
                leader_in_minority: true,
            },
            Some(l),
        ) if nodes >= 2 => {
            let mut order = order.clone();
            if let Some(pos) = order.iter().position(|&x| x == l) {
                if pos >= nodes / 2 {
                    order.swap(pos, 0);
                }
            }
            Partition::Halves {
                order,
                leader_in_minority: true,
            }
        }
        _ => p.clone(),
    }
}

/// The groups of a partition, for the history's nemesis event (`None` when the shape is not a
/// set of disjoint groups).
pub fn groups(p: &Partition, nodes: usize, target: usize) -> Option<Vec<Vec<usize>>> {
    match p {
        Partition::Halves { order, .. } => {
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

    fn sched(seed: u64, kinds: &[FaultKind], overlap: f64) -> Vec<Step> {
        generate(
            seed,
            5,
            10,
            kinds,
            Duration::from_secs(3),
            overlap,
            Duration::from_secs(30),
        )
    }

    #[test]
    fn same_seed_same_schedule() {
        assert_eq!(
            sched(7, &FaultKind::ALL, 0.4),
            sched(7, &FaultKind::ALL, 0.4)
        );
        assert_ne!(
            sched(7, &FaultKind::ALL, 0.4),
            sched(8, &FaultKind::ALL, 0.4)
        );
        for st in sched(7, &FaultKind::ALL, 0.4) {
            assert!(st.at + st.hold <= Duration::from_secs(30));
        }
    }

    #[test]
    fn every_kind_is_dealt_in_a_default_run() {
        for seed in 0..200 {
            let s = sched(seed, &FaultKind::ALL, 0.5);
            for kind in FaultKind::ALL {
                assert!(
                    s.iter().any(|st| st.fault.kind_name() == kind.name()),
                    "seed {seed}: no {} in {s:?}",
                    kind.name()
                );
            }
            assert!(
                s.iter()
                    .any(|st| matches!(st.fault, Fault::Partition(Partition::OneWay { .. }))),
                "seed {seed}: no one-way cut"
            );
        }
    }

    #[test]
    fn overlap_draws_concurrent_faults() {
        let s = sched(3, &FaultKind::ALL, 1.0);
        let mut overlaps = 0;
        for (i, a) in s.iter().enumerate() {
            for b in &s[i + 1..] {
                if b.at < a.at + a.hold {
                    overlaps += 1;
                }
            }
        }
        assert!(overlaps >= 3, "{s:?}");
        let none = sched(3, &FaultKind::ALL, 0.0);
        assert!(none.iter().all(|st| !st.overlapping));
    }

    #[test]
    fn no_kinds_no_steps() {
        assert!(sched(1, &[], 0.4).is_empty());
    }

    #[test]
    fn target_sets_resolve() {
        let order = vec![4, 2, 0, 1, 3];
        let min = Targets::Minority {
            order: order.clone(),
            with_leader: true,
        };
        assert_eq!(min.resolve(5, Some(1)), vec![1, 4]);
        assert_eq!(min.resolve(5, None), vec![2, 4]);
        let maj = Targets::Majority {
            order,
            with_leader: false,
        };
        assert_eq!(maj.resolve(5, Some(1)), vec![0, 2, 4]);
        assert_eq!(Targets::All.resolve(3, None), vec![0, 1, 2]);
        let one = Targets::One {
            target: Target::Leader { fallback: 2 },
        };
        assert_eq!(one.resolve(5, Some(0)), vec![0]);
        assert_eq!(one.resolve(5, None), vec![2]);
        assert_eq!(
            Targets::Minority {
                order: vec![0],
                with_leader: false
            }
            .resolve(1, None),
            vec![0]
        );
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
                leader_in_minority: false,
            },
            5,
            0,
        );
        let moved = place_leader(
            &Partition::Halves {
                order: order.clone(),
                leader_in_minority: true,
            },
            5,
            Some(4),
        );
        let leader_cut = blocked_links(&moved, 5, 0);
        let seen_by_leader = (0..5)
            .filter(|&b| b != 4 && reach(&leader_cut, 4, b))
            .count();
        assert_eq!(seen_by_leader, 1, "the leader sees only its minority mate");
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

    #[test]
    fn disk_faults_are_dealt_when_named() {
        let kinds = [
            FaultKind::Kill,
            FaultKind::PowerCut,
            FaultKind::DiskError,
            FaultKind::Bitflip,
        ];
        let s = sched(5, &kinds, 0.5);
        for kind in kinds {
            assert!(
                s.iter().any(|st| st.fault.kind_name() == kind.name()),
                "{} never dealt",
                kind.name()
            );
        }
        assert!(sched(5, &FaultKind::ALL, 0.5)
            .iter()
            .all(|st| !matches!(st.fault.kind_name(), "power-cut" | "disk-error" | "bitflip")));
    }

    #[test]
    fn membership_changes_are_dealt_when_named() {
        let s = sched(9, &[FaultKind::Membership, FaultKind::Kill], 0.5);
        let changes: Vec<MemberChange> = s
            .iter()
            .filter_map(|st| match st.fault {
                Fault::Membership(c) => Some(c),
                _ => None,
            })
            .collect();
        assert!(changes
            .iter()
            .any(|c| matches!(c, MemberChange::Replace { .. })));
        assert!(changes
            .iter()
            .any(|c| matches!(c, MemberChange::Transfer { .. })));
        assert!(sched(9, &FaultKind::ALL, 0.5)
            .iter()
            .all(|st| st.fault.kind_name() != "membership"));
    }
}
