//! Snapshot files: `snap/<index:020>-<term:020>.snap`, each a checksummed blob written by
//! atomic replace. The name repeats the metadata so that recovery can order snapshots without
//! reading them, and a name that disagrees with the content is corruption.

use std::fs;
use std::path::{Path, PathBuf};

use super::blob;
use super::error::{corrupt, io_err, StorageError};
use super::types::Snapshot;

const MAGIC: &[u8; 8] = b"RKVSNAP\x01";
const SUFFIX: &str = ".snap";

/// A snapshot file found on disk, identified by its name.
#[derive(Debug, Clone)]
pub(crate) struct SnapFile {
    pub index: u64,
    pub term: u64,
    pub path: PathBuf,
}

fn file_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let (index, term) = name.strip_suffix(SUFFIX)?.split_once('-')?;
    Some((index.parse().ok()?, term.parse().ok()?))
}

/// The snapshot files in `dir`, oldest (lowest index) first. Other files are ignored.
pub(crate) fn list(dir: &Path) -> Result<Vec<SnapFile>, StorageError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let parsed = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_name);
        if let Some((index, term)) = parsed {
            found.push(SnapFile { index, term, path });
        }
    }
    found.sort_by_key(|s| (s.index, s.term));
    Ok(found)
}

/// Durably writes `snap` into `dir` and returns its path.
pub(crate) fn save(dir: &Path, snap: &Snapshot) -> Result<PathBuf, StorageError> {
    let name = file_name(snap.meta.index.0, snap.meta.term.0);
    let bytes = blob::encode(MAGIC, "snapshot", snap)?;
    blob::write_atomic(dir, &name, &bytes)?;
    Ok(dir.join(name))
}

/// Reads and verifies the snapshot in `file`.
pub(crate) fn load(file: &SnapFile) -> Result<Snapshot, StorageError> {
    let data = fs::read(&file.path).map_err(io_err(&file.path))?;
    let snap: Snapshot = blob::decode(&file.path, MAGIC, &data)?;
    if (snap.meta.index.0, snap.meta.term.0) != (file.index, file.term) {
        return Err(corrupt(
            &file.path,
            0,
            format!(
                "file name says index {} term {}, content says index {} term {}",
                file.index, file.term, snap.meta.index.0, snap.meta.term.0
            ),
        ));
    }
    Ok(snap)
}
