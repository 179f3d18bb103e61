//! The typed errors of the storage module.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in [`super::Storage`].
///
/// `Io` and `Failed` are environmental (disk full, permissions, a failing device); `Corrupt` means
/// the bytes on disk are not what this module wrote and the node must not start on them; the
/// rest are caller bugs that are reported instead of silently writing a broken log.
#[derive(thiserror::Error, Debug)]
pub enum StorageError {
    /// A system call on `path` failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Damaged data that a crash cannot explain: a bad checksum with valid data after it, a
    /// record in the middle of the log that does not decode, a gap in the indexes.
    #[error("corrupt data in {} at byte offset {offset}: {detail} (do not wipe the directory and restart under the same id; to replace the node safely: remove_member it, wipe its data directory, restart it with --join, add_member it)", .file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        detail: String,
    },
    /// A value could not be serialized (postcard only fails on types it cannot represent).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    /// `append` was given entries whose indexes do not follow each other.
    #[error("entries to append are not contiguous: expected index {expected}, got {got}")]
    NotContiguous { expected: u64, got: u64 },
    /// `append` would overwrite entries already compacted into the snapshot.
    #[error("cannot append at index {index}: entries up to {snapshot_index} are compacted into a snapshot")]
    Compacted { index: u64, snapshot_index: u64 },
    /// `append` would leave a hole after the last stored entry.
    #[error("cannot append at index {index}: the log ends at {last_index}")]
    Gap { index: u64, last_index: u64 },
    /// `save_snapshot` was given a snapshot that is not newer than the stored one.
    #[error("snapshot at index {index} is not newer than the stored one at index {current}")]
    StaleSnapshot { index: u64, current: u64 },
    /// One encoded entry is larger than a record can hold.
    #[error("an encoded entry of {len} bytes exceeds the record limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// An earlier write, truncate or fsync failed, so what the kernel holds for our files is
    /// unknown (a failed fsync may have dropped dirty pages); only a restart, which re-reads
    /// the files, can tell what is durable.
    #[error("storage is unusable after an earlier I/O failure; restart to recover from disk")]
    Failed,
    /// Another process (or another `Storage` in this one) has the data directory open.
    #[error("data directory {} is in use by another process (it holds the lock on {}/LOCK); stop that process first", .dir.display(), .dir.display())]
    Locked { dir: PathBuf },
    /// Tests only: the write stopped at a crash point, as if the process had been killed.
    #[cfg(test)]
    #[error("simulated crash after: {0}")]
    SimulatedCrash(&'static str),
}

/// Builds the `map_err` closure that attaches `path` to an `io::Error`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A `Corrupt` error for `file` at `offset`.
pub(crate) fn corrupt(file: &Path, offset: u64, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        detail: detail.into(),
    }
}
