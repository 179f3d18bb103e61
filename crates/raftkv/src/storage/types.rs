//! The raft crate's data types, in one place for the storage module.

#[cfg(test)]
pub(crate) use raft::EntryPayload;
pub(crate) use raft::{Entry, HardState, Index, NodeId, Snapshot, SnapshotMeta, Term};
