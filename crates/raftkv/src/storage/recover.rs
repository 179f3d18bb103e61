//! Reading the log back at `Storage::open`: validate every record, cut a torn tail, refuse real
//! corruption, and finish a compaction or snapshot install that a crash interrupted.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::blob::sync_dir;
use super::error::{corrupt, io_err, StorageError};
use super::record;
use super::segment::{self, Segment, HEADER_LEN, MAGIC};
use super::snapshot_file;
use super::types::{Entry, Snapshot};

/// Something `Storage::open` changed on disk to recover from a crash. The node logs each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A partial or damaged last record of the last segment, with nothing valid after it (a
    /// write cut short by a crash), was cut off.
    TornTail {
        file: PathBuf,
        offset: u64,
        dropped_bytes: u64,
    },
    /// The last segment was shorter than its header (its creation was interrupted) and was removed.
    TornSegment { file: PathBuf },
    /// A temp file of an interrupted atomic replace was removed.
    TempFile { file: PathBuf },
    /// Segments wholly covered by the snapshot, left by an interrupted compaction, were removed.
    Compacted { files: Vec<PathBuf> },
    /// The log disagreed with the snapshot (an interrupted snapshot install) and was removed.
    DiscardedLog {
        files: Vec<PathBuf>,
        snapshot_index: u64,
    },
    /// The newest snapshot was corrupt; it was renamed aside and an older state (an older
    /// snapshot or none) was used, the log still holding every entry after it.
    SnapshotFallback {
        corrupt: PathBuf,
        renamed_to: PathBuf,
        used_index: u64,
        error: String,
    },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::TornTail {
                file,
                offset,
                dropped_bytes,
            } => write!(
                f,
                "truncated torn tail of {} at offset {offset} ({dropped_bytes} bytes dropped)",
                file.display()
            ),
            Repair::TornSegment { file } => {
                write!(f, "removed half-created segment {}", file.display())
            }
            Repair::TempFile { file } => write!(f, "removed leftover temp file {}", file.display()),
            Repair::Compacted { files } => {
                write!(f, "removed {} segment(s) already covered by the snapshot", files.len())
            }
            Repair::DiscardedLog {
                files,
                snapshot_index,
            } => write!(
                f,
                "removed {} segment(s) that conflict with the snapshot at index {snapshot_index}",
                files.len()
            ),
            Repair::SnapshotFallback {
                corrupt,
                renamed_to,
                used_index,
                error,
            } => write!(
                f,
                "snapshot {} is corrupt ({error}); moved to {} and recovered from index {used_index} instead",
                corrupt.display(),
                renamed_to.display()
            ),
        }
    }
}

/// The validated log: its segments in order (possibly none) and the entries after the snapshot.
pub(crate) struct ScannedLog {
    pub segments: Vec<Segment>,
    pub entries: Vec<Entry>,
}

impl ScannedLog {
    /// One past the index of the last entry read (0 for no segment).
    pub fn end(&self) -> u64 {
        self.segments.last().map_or(0, Segment::end)
    }

    /// Whether the log disagrees with a snapshot at `(snap_index, snap_term)`: it holds a
    /// different term at `snap_index`, or it ends before it.
    pub fn conflicts_with(&self, snap_index: u64, snap_term: u64) -> bool {
        if snap_index == 0 || self.segments.is_empty() {
            return false;
        }
        match self.segments.iter().find_map(|s| s.term(snap_index)) {
            Some(term) => term != snap_term,
            None => self.end() <= snap_index,
        }
    }
}

/// Reads the log in `dir` on top of a snapshot at `(snap_index, snap_term)` (`(0, 0)` when
/// there is none), cutting a torn tail; `reconcile_with_snapshot` does the rest.
///
/// Rules:
/// - Only the last segment may end in a bad record, and only if no valid record follows it: that
///   is what a crash mid-write leaves, and it is cut off. Anywhere else a bad record is `Corrupt`,
///   because a crash cannot put damage before data that was written after it.
/// - A record that checksums but does not decode, an index out of sequence, a gap between
///   segments above the snapshot, or a `prev_term` that disagrees with the entry before it are
///   always `Corrupt`: checksummed bytes are what we wrote, so these are bugs or tampering.
/// - Gaps wholly covered by the snapshot are fine (compaction deletes segments in any order).
pub(crate) fn scan_log(
    dir: &Path,
    snap_index: u64,
    snap_term: u64,
    repairs: &mut Vec<Repair>,
) -> Result<ScannedLog, StorageError> {
    let files = segment::list(dir)?;
    let count = files.len();
    let mut segments: Vec<Segment> = Vec::new();
    let mut entries = Vec::new();
    // Term of the entry just before the next one to read, when it is known.
    let mut prev_term: Option<u64> = None;
    for (k, (first, path)) in files.into_iter().enumerate() {
        let is_last = k + 1 == count;
        let data = fs::read(&path).map_err(io_err(&path))?;
        if is_last && (data.len() < HEADER_LEN as usize || data.iter().all(|&b| b == 0)) {
            fs::remove_file(&path).map_err(io_err(&path))?;
            sync_dir(dir)?;
            repairs.push(Repair::TornSegment { file: path });
            break;
        }
        if data.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(corrupt(&path, 0, "bad segment magic number"));
        }
        let prev_end = segments.last().map(Segment::end);
        if first == 0 || (prev_end != Some(first) && first > snap_index + 1) {
            let detail = match prev_end {
                Some(end) => format!(
                    "segment starts at index {first}, but the previous segment ends at {}",
                    end - 1
                ),
                None => format!(
                    "log starts at index {first}, but the snapshot only covers up to {snap_index}"
                ),
            };
            return Err(corrupt(&path, 0, detail));
        }
        if prev_end.is_some_and(|end| first < end) {
            return Err(corrupt(&path, 0, "segment overlaps the previous one"));
        }
        if prev_end != Some(first) {
            prev_term = None; // a gap below the snapshot: the chain restarts
        }
        let mut seg = Segment {
            path,
            first,
            offsets: Vec::new(),
            terms: Vec::new(),
            len: HEADER_LEN,
        };
        scan_segment(
            &mut seg,
            &data,
            is_last,
            (snap_index, snap_term),
            &mut prev_term,
            &mut entries,
            repairs,
        )?;
        segments.push(seg);
    }
    Ok(ScannedLog { segments, entries })
}

/// Reads the records of one segment into `seg`, pushing entries after the snapshot to `entries`.
fn scan_segment(
    seg: &mut Segment,
    data: &[u8],
    is_last: bool,
    (snap_index, snap_term): (u64, u64),
    prev_term: &mut Option<u64>,
    entries: &mut Vec<Entry>,
    repairs: &mut Vec<Repair>,
) -> Result<(), StorageError> {
    let mut at = HEADER_LEN as usize;
    while at < data.len() {
        // Where valid data after a bad record would start: past the record's own extent when
        // its header is intact, so that bytes inside a torn payload (which a client chose) can
        // never pass for a record that follows it.
        let search_from = record::claimed_end(data, at).map_or(at, |end| end - 1);
        let (payload, next) = match record::read(data, at) {
            Ok(ok) => ok,
            Err(_) if is_last && record::valid_record_after(data, search_from).is_none() => {
                cut_torn_tail(seg, at as u64, data.len() as u64, repairs)?;
                return Ok(());
            }
            Err(bad) => {
                let context = if is_last {
                    "a valid record follows it"
                } else {
                    "in a segment that is not the last"
                };
                return Err(corrupt(
                    &seg.path,
                    at as u64,
                    format!("{}, {context}", bad.describe()),
                ));
            }
        };
        let (rec_prev_term, entry) = segment::decode(&seg.path, at as u64, payload)?;
        let index = seg.end();
        if entry.index.0 != index {
            let detail = format!("expected entry {index}, found entry {}", entry.index.0);
            return Err(corrupt(&seg.path, at as u64, detail));
        }
        let known_prev = prev_term.or((index - 1 == snap_index).then_some(snap_term));
        if let Some(want) = known_prev.filter(|&t| t != rec_prev_term.0) {
            let detail = format!(
                "entry {index} follows an entry of term {} but the log has term {want} there",
                rec_prev_term.0
            );
            return Err(corrupt(&seg.path, at as u64, detail));
        }
        seg.offsets.push(at as u64);
        seg.terms.push(entry.term.0);
        seg.len = next as u64;
        *prev_term = Some(entry.term.0);
        if index > snap_index {
            entries.push(entry);
        }
        at = next;
    }
    Ok(())
}

/// Cuts the file of `seg` at `offset` and makes that durable.
fn cut_torn_tail(
    seg: &mut Segment,
    offset: u64,
    file_len: u64,
    repairs: &mut Vec<Repair>,
) -> Result<(), StorageError> {
    let file = segment::open_append(&seg.path)?;
    file.set_len(offset).map_err(io_err(&seg.path))?;
    file.sync_data().map_err(io_err(&seg.path))?;
    seg.len = offset;
    repairs.push(Repair::TornTail {
        file: seg.path.clone(),
        offset,
        dropped_bytes: file_len - offset,
    });
    Ok(())
}

/// Applies the snapshot to the scanned log, finishing whatever `save_snapshot` was doing when
/// the process died (it writes the snapshot first, then edits the log):
/// - the log holds the snapshot's last entry with the same term: keep what follows it and
///   delete segments wholly covered by the snapshot;
/// - the log holds a different term there, or ends before it: it conflicts with the snapshot
///   (Raft §7: "discard the entire log"); delete it all, newest segment first.
pub(crate) fn reconcile_with_snapshot(
    dir: &Path,
    snap_index: u64,
    snap_term: u64,
    mut log: ScannedLog,
    repairs: &mut Vec<Repair>,
) -> Result<ScannedLog, StorageError> {
    if snap_index == 0 || log.segments.is_empty() {
        return Ok(log);
    }
    if log.conflicts_with(snap_index, snap_term) {
        let mut files = Vec::new();
        for seg in log.segments.drain(..).rev() {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            sync_dir(dir)?;
            files.push(seg.path);
        }
        log.entries.clear();
        repairs.push(Repair::DiscardedLog {
            files,
            snapshot_index: snap_index,
        });
        return Ok(log);
    }
    // Segments other than the last whose entries all lie at or below the snapshot.
    let covered = log.segments[..log.segments.len() - 1]
        .iter()
        .take_while(|s| s.end() <= snap_index + 1)
        .count();
    if covered > 0 {
        let mut files = Vec::new();
        for seg in log.segments.drain(..covered) {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            files.push(seg.path);
        }
        sync_dir(dir)?;
        repairs.push(Repair::Compacted { files });
    }
    Ok(log)
}

/// Picks the snapshot (see "Recovery" in the module docs) and recovers the log on top of it.
pub(crate) fn recover_snapshot_and_log(
    snap_dir: &Path,
    log_dir: &Path,
    repairs: &mut Vec<Repair>,
) -> Result<(Option<Snapshot>, ScannedLog), StorageError> {
    let mut corrupt_newer: Vec<(snapshot_file::SnapFile, StorageError)> = Vec::new();
    let mut chosen = None;
    for file in snapshot_file::list(snap_dir)?.into_iter().rev() {
        match snapshot_file::load(&file) {
            Ok(snap) => {
                chosen = Some(snap);
                break;
            }
            Err(err @ StorageError::Corrupt { .. }) => corrupt_newer.push((file, err)),
            Err(err) => return Err(err),
        }
    }
    let (index, term) = chosen
        .as_ref()
        .map_or((0, 0), |s| (s.meta.index.0, s.meta.term.0));
    let scanned = scan_log(log_dir, index, term, repairs);
    if let Some((newest, err)) = corrupt_newer.first() {
        // Falling back loses nothing only if the log still holds, on top of the older state,
        // every entry the corrupt snapshot covered.
        let covers = match &scanned {
            Ok(log) => !log.conflicts_with(index, term) && log.end() > newest.index,
            Err(_) => false,
        };
        if !covers {
            let reason = match &scanned {
                Ok(_) => format!(
                    "the log does not hold entries {}..={}",
                    index + 1,
                    newest.index
                ),
                Err(e) => e.to_string(),
            };
            let (offset, detail) = match err {
                StorageError::Corrupt { offset, detail, .. } => (*offset, detail.clone()),
                other => (0, other.to_string()),
            };
            return Err(corrupt(
                &newest.path,
                offset,
                format!("{detail}; no older state can replace this snapshot ({reason})"),
            ));
        }
    }
    let log = reconcile_with_snapshot(log_dir, index, term, scanned?, repairs)?;
    for (file, err) in corrupt_newer {
        let renamed_to = file.path.with_extension("snap.corrupt");
        fs::rename(&file.path, &renamed_to).map_err(io_err(&file.path))?;
        repairs.push(Repair::SnapshotFallback {
            corrupt: file.path,
            renamed_to,
            used_index: index,
            error: err.to_string(),
        });
    }
    Ok((chosen, log))
}
