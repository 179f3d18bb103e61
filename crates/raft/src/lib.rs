//! A pure, deterministic Raft consensus core (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", 2014, Figure 2), with pre-vote and check-quorum
//! (Ongaro's thesis §9.6 and §6.2), ReadIndex reads (thesis §6.4), a no-op entry at the start
//! of each term, and snapshots (§7).
//!
//! No I/O, no threads, no clock, no global randomness: the caller feeds inputs and carries out
//! a [`Ready`]. The log lives in memory from the latest snapshot on; the caller keeps the
//! durable copy and hands it back on restart through [`Restored`].
//!
//! # Driving a node
//!
//! ```
//! use raft::{Config, NodeId, RawNode, Restored, Ready};
//!
//! let config = Config { seed: 42, ..Config::new(NodeId(1), vec![NodeId(1)]) };
//! let mut node = RawNode::new(config, Restored::default()).unwrap();
//! let mut applied = Vec::new();
//! for _ in 0..30 {
//!     node.tick(); // every tick interval (say 100 ms)
//!     // ... node.step(message) for every message received, node.propose(cmd) ...
//!     if node.status().role == raft::Role::Leader && applied.is_empty() {
//!         node.propose(b"set x=1".to_vec()).unwrap();
//!     }
//!     while node.has_ready() {
//!         let mut rd: Ready = node.ready();
//!         // 1. persist snapshot, entries and hard state; 2. only then send the messages.
//!         rd.persist_then_send(
//!             |_snapshot, _entries, _hard_state| -> Result<(), std::io::Error> { Ok(()) /* write + fsync */ },
//!             |messages| { for _m in messages { /* send to m.to */ } },
//!         ).unwrap();
//!         // 3. apply committed entries, then answer reads whose index is applied.
//!         for entry in &rd.committed_entries {
//!             if let raft::EntryPayload::Command(cmd) = &entry.payload { applied.push(cmd.clone()); }
//!         }
//!         // 4. hand the Ready back.
//!         node.advance(rd);
//!     }
//! }
//! assert_eq!(applied, vec![b"set x=1".to_vec()]);
//! ```
//!
//! # Asynchronous storage writes
//!
//! A node that persists and applies on other threads takes each `Ready` and, instead of
//! `advance`, calls [`RawNode::advance_async`]: it gets an [`AsyncReady`] with the messages to
//! send now (a leader's replication), a [`PersistTask`] for the disk writer (the write plus the
//! messages that must wait for it, released only by [`PersistTask::persist_then_send`]) and an
//! [`ApplyTask`] for the applier. It then reports back with [`RawNode::on_persisted`] and
//! [`RawNode::on_applied`]. A leader counts itself towards a commit only for entries reported
//! durable; a follower's acknowledgements and vote grants leave only after their write.
//!
//! The [`sim`] module drives many nodes through a deterministic simulated network.
//!
//! # Tests
//!
//! - unit tests beside each module, and `raw_node_tests.rs` (one paper rule per test);
//! - `tests/mit.rs`: scenarios named after the MIT 6.5840 Raft lab tests;
//! - `tests/sweep.rs`: 2,000 seeds of a mixed-fault scenario plus 500 election storms. A
//!   failing seed prints its replay command, e.g.
//!   `RAFT_SEED=1234 cargo nextest run -p raft --cargo-profile ci sweep`;
//!   `RAFT_SOAK_SEEDS=100000` runs a long soak instead.
//!
//! Benchmarks: `cargo bench -p raft` (commit throughput of a 3-node simulated cluster, and
//! simulated seeds per second).

mod config;
mod election;
mod errors;
mod follower;
mod leader;
mod log;
mod message;
mod progress;
mod quorum;
mod raft;
mod raw_node;
mod read_only;
mod ready;
mod types;

pub mod sim;

pub use config::Config;
pub use errors::{ConfigError, Error, ProposeError, RestoreError};
pub use message::{Message, MessageBody};
pub use raw_node::{RawNode, Restored};
pub use ready::{ApplyTask, AsyncReady, PersistTask, Persisted, Ready};
pub use types::{
    Entry, EntryPayload, HardState, Index, NodeId, ReadState, Role, Snapshot, SnapshotMeta, Status,
    Term,
};

#[cfg(test)]
mod raw_node_tests;
