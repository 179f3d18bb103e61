//! The write path of [`Storage`]: appending, truncating a conflicting suffix, rolling
//! segments, group commit, and editing the log after a snapshot.

use std::fs;
use std::io::Write;

use super::blob::sync_dir;
use super::error::{io_err, StorageError};
use super::types::{Entry, Index, Snapshot};
use super::{record, segment, snapshot_file, Storage};

impl Storage {
    pub(super) fn append_inner(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        let start = head.index.0;
        for (k, e) in entries.iter().enumerate() {
            if e.index.0 != start + k as u64 {
                return Err(StorageError::NotContiguous {
                    expected: start + k as u64,
                    got: e.index.0,
                });
            }
        }
        if start <= self.snapshot.0 {
            return Err(StorageError::Compacted {
                index: start,
                snapshot_index: self.snapshot.0,
            });
        }
        let last = self.last_index().0;
        if start > last + 1 {
            return Err(StorageError::Gap {
                index: start,
                last_index: last,
            });
        }
        if start <= last {
            self.truncate_from(start)?;
        } else {
            self.maybe_roll()?;
        }
        let prev = self.term(Index(start - 1));
        let mut prev_term = prev.expect("the entry before an append is in the log or the snapshot");
        let buf_mark = self.buf.len();
        let seg_mark = (self.active().offsets.len(), self.active().len);
        for e in entries {
            match record::push(&mut self.buf, &(prev_term, e)) {
                Ok(n) => {
                    let seg = self.active();
                    seg.offsets.push(seg.len);
                    seg.terms.push(e.term.0);
                    seg.len += n as u64;
                    prev_term = e.term;
                }
                Err(err) => {
                    // Leave the batch out entirely rather than half of it.
                    self.buf.truncate(buf_mark);
                    let seg = self.active();
                    seg.offsets.truncate(seg_mark.0);
                    seg.terms.truncate(seg_mark.0);
                    seg.len = seg_mark.1;
                    return Err(err);
                }
            }
        }
        if self.buf.len() >= self.opts.write_buffer_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Removes entries `index..` from the log, durably, before anything new is written.
    ///
    /// Why this is crash-safe: later segments are unlinked newest first, each unlink made
    /// durable by a directory fsync, then the segment holding `index` is cut with ftruncate and
    /// fdatasynced. Every crash point therefore leaves a *prefix* of the old log, which Raft
    /// allows (the removed entries conflict with the leader, so they were never committed, and
    /// nothing new has been acknowledged yet). Only after the cut is durable do new records get
    /// appended, always at the end of a file; so a durable new entry can never be followed on
    /// recovery by a stale one, whose bytes no longer exist. As a second line of defence every
    /// record carries the term of its predecessor, which differs between a conflicting entry
    /// and its replacement, so a stale successor would fail recovery's `prev_term` check.
    /// Entries still in the memory buffer are simply dropped: they never reached the kernel.
    fn truncate_from(&mut self, index: u64) -> Result<(), StorageError> {
        let Some(k) = self.segment_of(index) else {
            unreachable!(
                "index {index} is above the snapshot, so some segment starts at or below it"
            );
        };
        let active = self.segments.len() - 1;
        if k == active {
            let flushed = self.flushed;
            let at = self.segments[k].cut(index);
            if at >= flushed {
                self.buf.truncate((at - flushed) as usize);
                return Ok(());
            }
            self.buf.clear();
            self.file
                .set_len(at)
                .map_err(io_err(&self.segments[k].path))?;
            self.crash_point("active segment cut")?;
            self.file
                .sync_data()
                .map_err(io_err(&self.segments[k].path))?;
            self.flushed = at;
            self.synced_len = at;
            self.unsynced = false;
            return self.crash_point("cut synced");
        }
        self.buf.clear();
        while self.segments.len() > k + 1 {
            if let Some(seg) = self.segments.pop() {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                sync_dir(&self.log_dir)?;
                self.crash_point("later segment removed")?;
            }
        }
        let seg = &mut self.segments[k];
        let at = seg.cut(index);
        let file = segment::open_append(&seg.path)?;
        file.set_len(at).map_err(io_err(&seg.path))?;
        file.sync_data().map_err(io_err(&seg.path))?;
        self.file = file;
        self.flushed = at;
        self.synced_len = at;
        self.unsynced = false;
        self.dir_unsynced = false;
        self.crash_point("segment cut and synced")
    }

    /// Starts a new segment if the active one is full and wholly synced. Rolling only after a
    /// sync means a closed segment never has unsynced data, so no later fsync has to visit it,
    /// and a crash cannot persist the new segment while losing the old one's tail.
    fn maybe_roll(&mut self) -> Result<(), StorageError> {
        let threshold = self.opts.segment_bytes;
        let seg = self.active();
        if seg.len < threshold || seg.offsets.is_empty() {
            return Ok(());
        }
        if self.unsynced || !self.buf.is_empty() {
            return Ok(());
        }
        let first = self.active().end();
        let (file, seg) = segment::create(&self.log_dir, first)?;
        self.file = file;
        self.flushed = seg.len;
        self.synced_len = 0;
        self.segments.push(seg);
        self.unsynced = true;
        self.dir_unsynced = true;
        self.crash_point("segment created")
    }

    /// Hands the buffer to the kernel (no fsync).
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = &self.segments[self.segments.len() - 1].path;
        self.file.write_all(&self.buf).map_err(io_err(path))?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        self.crash_point("records written")
    }

    pub(super) fn sync_inner(&mut self) -> Result<(), StorageError> {
        self.flush()?;
        if self.unsynced {
            let path = &self.segments[self.segments.len() - 1].path;
            self.file.sync_data().map_err(io_err(path))?;
            self.synced_len = self.flushed;
            self.unsynced = false;
            self.crash_point("segment synced")?;
        }
        if self.dir_unsynced {
            sync_dir(&self.log_dir)?;
            self.dir_unsynced = false;
            self.crash_point("log directory synced")?;
        }
        Ok(())
    }

    pub(super) fn save_snapshot_inner(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        let (index, term) = (snap.meta.index.0, snap.meta.term.0);
        let keep_log = self.term(snap.meta.index) == Some(snap.meta.term);
        let path = snapshot_file::save(&self.snap_dir, snap)?;
        self.crash_point("snapshot saved")?;
        if keep_log {
            // Oldest first, never the active segment; recovery tolerates any subset of these
            // unlinks because the gaps they leave lie below the snapshot.
            let covered = self.segments[..self.segments.len() - 1]
                .iter()
                .take_while(|s| s.end() <= index + 1)
                .count();
            for seg in self.segments.drain(..covered).collect::<Vec<_>>() {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                self.crash_point("covered segment removed")?;
            }
            if covered > 0 {
                sync_dir(&self.log_dir)?;
            }
        } else {
            // Newest first, so a crash leaves a prefix of the log, which still conflicts with
            // (or ends before) the snapshot and is discarded again by recovery.
            self.buf.clear();
            while let Some(seg) = self.segments.pop() {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                sync_dir(&self.log_dir)?;
                self.crash_point("conflicting segment removed")?;
            }
            let (file, seg) = segment::create(&self.log_dir, index + 1)?;
            file.sync_data().map_err(io_err(&seg.path))?;
            sync_dir(&self.log_dir)?;
            self.crash_point("fresh segment created")?;
            self.file = file;
            self.flushed = seg.len;
            self.synced_len = seg.len;
            self.segments.push(seg);
            self.unsynced = false;
            self.dir_unsynced = false;
        }
        self.snapshot = (index, term);
        // Older snapshots are now useless. Their unlinks need no fsync: if one reappears after
        // a crash, the newer snapshot still wins.
        for old in snapshot_file::list(&self.snap_dir)? {
            if old.path != path {
                fs::remove_file(&old.path).map_err(io_err(&old.path))?;
            }
        }
        Ok(())
    }
}
