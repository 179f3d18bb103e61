//! The node's durable state under `--data-dir`: the Raft log, term and vote, and the snapshot.
//!
//! # On-disk format (version 1)
//!
//! ```text
//! <data-dir>/
//!   LOCK                              held (flock) while a process has the directory open
//!   hardstate                         term, vote, commit            (blob, atomic replace)
//!   snap/<index:020>-<term:020>.snap  the newest snapshot           (blob, atomic replace)
//!   snap/*.snap.corrupt               a corrupt snapshot set aside by recovery (kept for study)
//!   log/<first index:020>.seg         log segments, in index order  (append-only)
//!   *.tmp                             an atomic replace in progress (deleted on open)
//! ```
//!
//! A **blob** (`blob.rs`) is `[magic 8][len u64 LE][crc32c(payload) u32 LE][payload]`, with
//! magic `RKVHARD\x01` for the hard state and `RKVSNAP\x02` for snapshots (`\x01`, without learners, is still read); the payload is
//! `postcard(HardState)` or `postcard(Snapshot)`. A blob is written to `<name>.tmp`, fsynced,
//! renamed over `<name>`, and the directory is fsynced.
//!
//! A **segment** (`segment.rs`) is named after the index of its first entry and is the magic
//! `RKVLOG\x00\x01` followed by records. A **record** (`record.rs`) is
//! `[len u32 LE][crc32c(payload) u32 LE][crc32c(first 8 header bytes) u32 LE][payload]`, and its
//! payload is `postcard((prev_term, entry))`: one `raft::Entry` plus the term of the entry before
//! it. Entries are consecutive within a segment and across segments. The active (last) segment
//! is rolled once it exceeds `segment_bytes` and everything in it is synced. The header has its
//! own checksum so that a trusted length tells a torn record (it runs past the end of the file)
//! from a damaged one, and the search for valid data after a bad record can skip its extent.
//!
//! # Durability
//!
//! - The node writes through [`Storage::write`] (or `stage` several, then one `sync`): a
//!   [`WriteBatch`] of hard state, snapshot and entries, written in that order so that every
//!   crash point leaves a state Raft accepts, and durable as a whole when the sync returns.
//!   The rule and why it holds are in `batch.rs`; the kill-point test kills a writer
//!   between every two steps of many batches.
//! - `append` encodes into a memory buffer (written out when it exceeds `write_buffer_bytes`);
//!   `sync` writes the buffer and issues one `fdatasync`: group commit. Nothing on the hot path
//!   rewrites a file.
//! - Term and vote are durable as soon as a batch carrying them is staged. The commit index
//!   is stored only when term or vote is written anyway: Raft treats it as volatile (paper Figure 2), a follower
//!   re-learns it from the leader's next AppendEntries and a leader recomputes it once an entry
//!   of its term is replicated, so a stale value only means re-applying entries after a restart.
//!   On open it is clamped to `[snapshot index, last index]`, because the entries it pointed at
//!   may have been unsynced and lost.
//! - `save_snapshot` writes the snapshot durably first and only then edits the log, so every
//!   crash point leaves a snapshot that recovery can finish the job from (`recover.rs`).
//!
//! # Recovery (`Storage::open`)
//!
//! - A bad record at the end of the last segment with no valid record after it is a torn write
//!   and is cut off; a bad record anywhere else, a checksummed record that does not decode, an
//!   index out of sequence, a gap above the snapshot, or a `prev_term` that disagrees with the
//!   entry before it is `StorageError::Corrupt` naming file and offset: the node must not start.
//! - Snapshots: the newest one that verifies wins. If a newer one is corrupt, recovery falls
//!   back to the older one (or to none) only if the log still holds every entry after it, which
//!   loses nothing (the newer snapshot only summarised committed entries that are still there);
//!   the corrupt file is renamed to `*.corrupt` and reported. Otherwise committed state would
//!   be lost, so `open` fails with the snapshot's `Corrupt` error (see "A node that will not
//!   start" below).
//! - What `open` repaired is returned in [`Recovered::repairs`] for the node to log.
//! - Replacing a conflicting suffix is crash-safe: the cut is durable before any new record is
//!   written, and `prev_term` catches a stale entry that would follow its replacement (the
//!   argument is on `Storage::truncate_from` in `write_path.rs`).
//!
//! # For the caller
//!
//! - Persist before answering: `write` (or `stage` + `sync`) before acknowledging entries,
//!   granting a vote or acting on a new term.
//! - An `Io` error from a write path poisons the storage (`Failed` from then on): the node
//!   should stop, and a restart re-reads what is really on disk.
//! - `Corrupt` from `open`: refuse to start and print the error (it names file and offset).
//!
//! # Limits
//!
//! The crash model is the process dying (SIGKILL, panic): the kernel keeps every completed
//! write, so a torn tail is a prefix cut. After a power failure the unsynced tail can also
//! have holes (a later page reached the disk, an earlier one did not); recovery then finds a
//! bad record with a valid one after it and refuses to start rather than guess, although no
//! acknowledged entry was lost.
//!
//! # A node that will not start
//!
//! Do not wipe its data directory (or restore an old copy) and restart it under the same id as
//! it is: it would forget its vote, and could vote twice in one term (two leaders), and the
//! entries it acknowledged, which may be all that made them committed (lost writes). The safe
//! procedure (docs/protocol.md, "Membership changes"): send `remove_member` for it to the
//! leader and wait for `ok`; wipe its data directory; restart it with `--join` (it has no
//! configuration, so it neither votes nor campaigns); send `add_member` for it to the leader,
//! which adds it as a learner, lets it catch up and promotes it. Until then the cluster serves
//! as long as a majority of its voters is up.

mod batch;
mod blob;
mod error;
mod hard_state;
mod record;
mod recover;
mod segment;
mod snapshot_file;
mod types;
mod write_path;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub use batch::WriteBatch;
pub use error::StorageError;
pub use recover::Repair;

use blob::sync_dir;
use error::io_err;
use segment::Segment;
use types::{Entry, HardState, Index, Snapshot, Term};

const LOG_DIR: &str = "log";
const SNAP_DIR: &str = "snap";
const LOCK_FILE: &str = "LOCK";

/// Tuning knobs; `Default` suits the node.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// A segment is rolled once it holds at least this many bytes and all of it is synced
    /// (so a single unsynced batch may carry it past the threshold).
    pub segment_bytes: u64,
    /// `append` writes its buffer to the file once the buffer holds this many bytes, even
    /// before `sync`, to bound memory.
    pub write_buffer_bytes: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_bytes: 64 << 20,
            write_buffer_bytes: 4 << 20,
        }
    }
}

/// The state read back by [`Storage::open`].
#[derive(Debug)]
pub struct Recovered {
    /// Term and vote as last made durable; `commit` clamped to what the log and snapshot hold.
    pub hard_state: HardState,
    /// The newest valid snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Every entry after the snapshot, in index order.
    pub entries: Vec<Entry>,
    /// What recovery changed on disk (torn tail cut, temp files removed, ...); log each.
    pub repairs: Vec<Repair>,
}

/// The durable log, hard state and snapshot of one node. Single-threaded: owned by the
/// node's disk writer.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    log_dir: PathBuf,
    snap_dir: PathBuf,
    opts: StorageOptions,
    /// Never empty; the last one is the active segment that `append` writes to. The first may
    /// hold entries at or below the snapshot index, which are ignored.
    segments: Vec<Segment>,
    /// The active segment, opened for appending.
    file: File,
    /// Bytes of the active segment already handed to the kernel.
    flushed: u64,
    /// Bytes of the active segment known durable (covered by an fsync or read at open).
    synced_len: u64,
    /// Encoded records not yet written to `file`.
    buf: Vec<u8>,
    /// `file` has writes not yet covered by an fdatasync.
    unsynced: bool,
    /// The log directory has a created segment not yet covered by a directory fsync.
    dir_unsynced: bool,
    /// `(index, term)` of the stored snapshot; `(0, 0)` when there is none.
    snapshot: (u64, u64),
    /// Term and vote as last written; commit as last given (persisted with the next write).
    hard_state: HardState,
    /// Set after an I/O failure in a write path: the kernel's view of our files is unknown.
    failed: bool,
    /// The open `LOCK` file; its exclusive lock keeps a second process off the directory
    /// for as long as this one holds it (released by the kernel however the process ends).
    _lock: File,
    /// Tests: the number of write steps still allowed before a simulated process death.
    #[cfg(test)]
    crash_after: Option<usize>,
    /// Tests: the order in which a batch's parts are written.
    #[cfg(test)]
    order: batch::WriteOrder,
}

/// Takes the exclusive lock on `dir/LOCK`: two processes writing one log would interleave
/// records and corrupt it, and nothing else would tell them apart.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StorageError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

impl Storage {
    /// Opens (creating if needed) the data directory `dir`, repairs a torn tail, and returns
    /// the storage with everything it holds. Fails with `Corrupt` on damage a crash cannot
    /// explain; the node must then refuse to start.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(Storage, Recovered), StorageError> {
        let log_dir = dir.join(LOG_DIR);
        let snap_dir = dir.join(SNAP_DIR);
        let is_new = !dir.exists();
        for d in [dir, &log_dir, &snap_dir] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        let lock = lock_dir(dir)?;
        // Make the directories themselves durable, or a crash could lose them with their files.
        sync_dir(dir)?;
        match dir.parent() {
            Some(parent) if is_new && !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => {}
        }
        let mut repairs = Vec::new();
        for d in [dir, &snap_dir] {
            for file in blob::remove_temp_files(d)? {
                repairs.push(Repair::TempFile { file });
            }
        }
        let mut hard_state = hard_state::load(dir)?.unwrap_or_default();
        let (snapshot, log) = recover::recover_snapshot_and_log(&snap_dir, &log_dir, &mut repairs)?;
        let snap_id = snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.index.0, s.meta.term.0));
        let mut segments = log.segments;
        let log_end = log.entries.last().map_or(snap_id.0 + 1, |e| e.index.0 + 1);
        let (file, flushed) = match segments.last() {
            Some(last) => {
                // Recovery removes every log that does not reach exactly this far.
                debug_assert_eq!(last.end(), log_end, "recovered log ends elsewhere");
                (segment::open_append(&last.path)?, last.len)
            }
            None => {
                let (file, seg) = segment::create(&log_dir, log_end)?;
                file.sync_data().map_err(io_err(&seg.path))?;
                sync_dir(&log_dir)?;
                let len = seg.len;
                segments.push(seg);
                (file, len)
            }
        };

        let mut storage = Storage {
            dir: dir.to_path_buf(),
            log_dir,
            snap_dir,
            opts,
            segments,
            file,
            flushed,
            synced_len: flushed,
            buf: Vec::new(),
            unsynced: false,
            dir_unsynced: false,
            snapshot: snap_id,
            hard_state: hard_state.clone(),
            failed: false,
            _lock: lock,
            #[cfg(test)]
            crash_after: None,
            #[cfg(test)]
            order: batch::WriteOrder::default(),
        };
        hard_state.commit = hard_state
            .commit
            .min(storage.last_index())
            .max(Index(storage.snapshot.0));
        storage.hard_state.commit = hard_state.commit;
        let recovered = Recovered {
            hard_state,
            snapshot,
            entries: log.entries,
            repairs,
        };
        Ok((storage, recovered))
    }

    /// Appends `entries` (consecutive indexes), first removing every stored entry with an
    /// index at or above `entries[0].index` (a conflicting suffix, Raft §5.3). Buffered: the
    /// entries are durable only after the next [`Storage::sync`]. The node writes through
    /// [`Storage::write`]; this and `set_hard_state` are its steps, for the tests.
    #[cfg(test)]
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.append_inner(entries);
        self.poison_on_io_error(result)
    }

    /// Stores the hard state. When term or vote changed it is durable on return; a change of
    /// commit alone stays in memory until the next write (see the module docs for why).
    #[cfg(test)]
    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.save_term_and_vote(hs, None);
        self.poison_on_io_error(result)
    }

    /// Makes every entry appended since the last sync durable, with one fdatasync (plus a
    /// directory fsync after a segment roll).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.sync_inner();
        self.poison_on_io_error(result)
    }

    /// Durably stores `snap`, then compacts the log: segments holding only entries at or below
    /// `snap.meta.index` are deleted. Entries after it are kept if the log holds the snapshot's
    /// last entry with the same term; otherwise the whole log conflicts with it and is dropped
    /// (Raft §7), and the next append must start at `snap.meta.index + 1`.
    ///
    /// Saving the stored snapshot's index and term again is a no-op (the state machine is
    /// deterministic, so it is the same state); an older index is `StaleSnapshot`.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        self.check_usable()?;
        let result = self.save_snapshot_checked(snap);
        self.poison_on_io_error(result)
    }

    fn save_snapshot_checked(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        if (snap.meta.index.0, snap.meta.term.0) == self.snapshot && self.snapshot.0 > 0 {
            return Ok(());
        }
        if snap.meta.index.0 <= self.snapshot.0 {
            return Err(StorageError::StaleSnapshot {
                index: snap.meta.index.0,
                current: self.snapshot.0,
            });
        }
        self.save_snapshot_inner(snap)
    }

    /// The index of the last entry (the snapshot's index when the log after it is empty).
    pub fn last_index(&self) -> Index {
        let end = self.segments.last().map_or(0, Segment::end);
        Index(end.saturating_sub(1).max(self.snapshot.0))
    }

    /// The index of the first entry not compacted into the snapshot.
    pub fn first_index(&self) -> Index {
        Index(self.snapshot.0 + 1)
    }

    /// The term of entry `index`, for `index` in `first_index() - 1 ..= last_index()` (the
    /// snapshot's last entry included); `None` outside.
    pub fn term(&self, index: Index) -> Option<Term> {
        let index = index.0;
        if index == self.snapshot.0 {
            return Some(Term(self.snapshot.1));
        }
        if index < self.snapshot.0 {
            return None;
        }
        self.segment_of(index)
            .and_then(|k| self.segments[k].term(index))
            .map(Term)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Failed);
        }
        Ok(())
    }

    /// After a failed write, truncate or fsync we cannot tell what the files hold (a failed
    /// fsync may even have dropped dirty pages), so refuse all further writes.
    fn poison_on_io_error<T>(
        &mut self,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if matches!(result, Err(StorageError::Io { .. })) {
            self.failed = true;
        }
        result
    }

    /// A point between two steps of a write at which a test may make the process "die": the
    /// step returns `SimulatedCrash` and the test drops the storage, so what the kernel was
    /// handed stays and what was only in memory is lost, as after SIGKILL.
    #[cfg(test)]
    fn crash_point(&mut self, what: &'static str) -> Result<(), StorageError> {
        match self.crash_after {
            Some(0) => Err(StorageError::SimulatedCrash(what)),
            Some(n) => {
                self.crash_after = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn crash_point(&mut self, _what: &'static str) -> Result<(), StorageError> {
        Ok(())
    }

    /// Position in `segments` of the segment that holds (or would hold) `index`.
    fn segment_of(&self, index: u64) -> Option<usize> {
        self.segments
            .partition_point(|s| s.first <= index)
            .checked_sub(1)
    }

    fn active(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }
}

/// Durably writes an empty marker file `name` into `dir` (atomic replace, directory synced),
/// for facts about the data directory that must survive a crash, such as `--join`.
pub fn write_marker(dir: &Path, name: &str) -> Result<(), StorageError> {
    blob::write_atomic(dir, name, b"")
}
