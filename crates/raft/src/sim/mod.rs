//! A deterministic simulator for [`crate::RawNode`] clusters.
//!
//! Many nodes, virtual time, one seeded RNG for every decision: a network that drops,
//! duplicates, delays and reorders messages and can be partitioned (symmetric or one-way);
//! crash and restart from persisted state only (what was not yet handed out in a `Ready` is
//! lost); client proposals and ReadIndex reads. After **every** event the [`Checker`] verifies
//! election safety, log matching, leader completeness, state machine safety, that commit
//! indexes never decrease, that no node overwrites log entries it acknowledged to its current
//! term's leader, that snapshots hold committed state, that every index a node knows
//! committed is durable on a majority, that every message leaves with its term (and a granted
//! vote) durable, and that reads see every write acknowledged, every entry committed and the
//! state every completed read returned before they began.
//!
//! With [`SimConfig::async_storage`] the nodes run in asynchronous-storage mode
//! ([`crate::RawNode::advance_async`]), modelled on raftkv's write path: each has a disk queue
//! that a simulated disk writer takes after a random delay and writes part by part (term and
//! vote, snapshot, entries: a batch is not atomic, and crashes land between its parts), then
//! the persisted report, then the held messages; committed entries reach a lagging applier,
//! whose compactions race leaders' snapshots. A crash loses what was not written.
//!
//! [`Cluster`] exposes the controls the scenario tests use (named after the MIT 6.5840 Raft
//! tests); [`run_mixed`] is one seeded run of the mixed-fault scenario the seed sweep repeats, and
//! [`run_election_storm`] one of the reboot-heavy election storms.
//! Everything here is pure computation: the same seed gives the same run.

mod checker;
mod cluster;
mod network;
mod scenario;

pub use checker::{Checker, ReadCheck, Violation};
pub use cluster::{Cluster, SimConfig, WriteOrder};
pub use network::Network;
pub use scenario::{run_election_storm, run_mixed, MixedOptions, MixedReport};

/// Folds `v` into hash `h` (a 64-bit mix; collisions are irrelevant at these sizes).
pub(crate) fn mix(h: u64, v: u64) -> u64 {
    let mut x = h ^ v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
