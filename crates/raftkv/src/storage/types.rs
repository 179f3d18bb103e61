//! The raft crate's data types, in one place for the storage module.

pub(crate) use raft::{Entry, HardState, Index, Snapshot, Term};
#[cfg(test)]
pub(crate) use raft::{EntryPayload, NodeId, SnapshotMeta};
