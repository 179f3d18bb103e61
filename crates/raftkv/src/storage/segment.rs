//! Log segment files: `log/<first index:020>.seg`, an 8-byte magic number followed by records
//! (see `record.rs`), each holding one entry as `postcard((prev_term, entry))`.
//!
//! `prev_term` is the term of the entry before it (the snapshot's term, or 0 before index 1).
//! Recovery checks it against the entry actually before it, so the durable log verifies Raft's
//! Log Matching property on itself: a stale entry from a truncated suffix can never be read
//! back after its replacement, because the replacement's term differs from the entry it
//! replaced and the stale successor still names the old one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{corrupt, io_err, StorageError};
use super::types::{Entry, Term};

/// The first bytes of every segment: format name and version.
pub(crate) const MAGIC: &[u8; 8] = b"RKVLOG\x00\x01";

/// Bytes before the first record.
pub(crate) const HEADER_LEN: u64 = MAGIC.len() as u64;

const SUFFIX: &str = ".seg";

/// What one record of a segment holds: `(prev_term, entry)`.
pub(crate) type RecordOwned = (Term, Entry);

/// The in-memory index of one segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    /// Index of the first entry the segment holds (or will hold, while empty).
    pub first: u64,
    /// `offsets[k]` is where the record of entry `first + k` starts.
    pub offsets: Vec<u64>,
    /// `terms[k]` is the term of entry `first + k`.
    pub terms: Vec<u64>,
    /// Bytes of the segment, counting records still buffered in memory for the active one.
    pub len: u64,
}

impl Segment {
    /// One past the index of its last entry (`first` when empty).
    pub fn end(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }

    /// Term of entry `index`, if this segment holds it.
    pub fn term(&self, index: u64) -> Option<u64> {
        let k = index.checked_sub(self.first)?;
        self.terms.get(usize::try_from(k).ok()?).copied()
    }

    /// Forgets entries from `index` on; returns the byte offset where the first of them began.
    pub fn cut(&mut self, index: u64) -> u64 {
        let k = (index.saturating_sub(self.first) as usize).min(self.offsets.len());
        let at = self.offsets.get(k).copied().unwrap_or(self.len);
        self.offsets.truncate(k);
        self.terms.truncate(k);
        self.len = at;
        at
    }
}

/// The file name of the segment starting at `first`.
pub(crate) fn file_name(first: u64) -> String {
    format!("{first:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir` as `(first index, path)`, in log order.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if let Some(first) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_name)
        {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Creates a new, empty segment starting at `first` and returns it open for appending.
///
/// Neither the file nor its directory entry is fsynced here: the caller fsyncs both before any
/// entry in it is reported durable.
pub(crate) fn create(dir: &Path, first: u64) -> Result<(File, Segment), StorageError> {
    let path = dir.join(file_name(first));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(MAGIC).map_err(io_err(&path))?;
    let seg = Segment {
        path,
        first,
        offsets: Vec::new(),
        terms: Vec::new(),
        len: HEADER_LEN,
    };
    Ok((file, seg))
}

/// Opens an existing segment for appending at its end.
pub(crate) fn open_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

/// Decodes one record's payload, which must be consumed exactly.
pub(crate) fn decode(
    path: &Path,
    offset: u64,
    payload: &[u8],
) -> Result<RecordOwned, StorageError> {
    match postcard::take_from_bytes::<RecordOwned>(payload) {
        Ok((rec, [])) => Ok(rec),
        Ok((_, rest)) => Err(corrupt(
            path,
            offset,
            format!("record has {} undecoded trailing bytes", rest.len()),
        )),
        Err(e) => Err(corrupt(
            path,
            offset,
            format!("record does not decode: {e}"),
        )),
    }
}
