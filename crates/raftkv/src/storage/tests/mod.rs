//! Tests of the storage module. Each test works in its own directory under the system temp
//! directory, removed when the test ends.

mod basic;
mod bench;
mod corruption;
mod crash;
mod kill_points;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::types::{Entry, EntryPayload, HardState, Index, NodeId, Snapshot, SnapshotMeta, Term};
use super::{Recovered, Storage, StorageOptions};

/// A directory removed on drop.
pub(super) struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("raftkv-storage-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A deterministic entry: its payload names its index and term, so a test can tell an entry
/// from the one it replaced, and its length varies so records do not line up.
pub(super) fn entry(index: u64, term: u64) -> Entry {
    let pad = "x".repeat(((index * 7 + term * 3) % 40) as usize);
    Entry {
        term: Term(term),
        index: Index(index),
        payload: EntryPayload::Command(format!("value-{index}-{term}-{pad}").into_bytes()),
    }
}

/// Entries `range` with `term`.
pub(super) fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

pub(super) fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index: Index(index),
            term: Term(term),
            voters: vec![NodeId(1), NodeId(2), NodeId(3)],
            learners: vec![],
        },
        data: format!("state-at-{index}").into_bytes(),
    }
}

pub(super) fn hard_state(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
        commit: Index(commit),
    }
}

/// Options with tiny segments, so that a few entries roll several.
pub(super) fn small_segments() -> StorageOptions {
    StorageOptions {
        segment_bytes: 200,
        ..StorageOptions::default()
    }
}

pub(super) fn open(dir: &Path) -> (Storage, Recovered) {
    open_with(dir, StorageOptions::default())
}

pub(super) fn open_with(dir: &Path, opts: StorageOptions) -> (Storage, Recovered) {
    match Storage::open(dir, opts) {
        Ok(pair) => pair,
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

/// The segment files, in log order.
pub(super) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    super::segment::list(&dir.join(super::LOG_DIR))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// XORs one byte of `path` at `offset` with `mask`.
pub(super) fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize] ^= mask;
    fs::write(path, data).unwrap();
}
