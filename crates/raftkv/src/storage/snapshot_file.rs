//! Snapshot files: `snap/<index:020>-<term:020>.snap`, each a checksummed blob written by
//! atomic replace. The name repeats the metadata so that recovery can order snapshots without
//! reading them, and a name that disagrees with the content is corruption.

use std::fs;
use std::path::{Path, PathBuf};

use super::blob;
use super::error::{corrupt, io_err, StorageError};
use super::types::{Index, NodeId, Snapshot, SnapshotMeta, Term};

/// Version 2: the metadata carries learners as well as voters (membership changes).
const MAGIC: &[u8; 8] = b"RKVSNAP\x02";
/// Version 1, before learners: still read, so that old data directories open.
const MAGIC_V1: &[u8; 8] = b"RKVSNAP\x01";

/// The version 1 layout (no learners).
#[derive(serde::Deserialize)]
struct SnapshotV1 {
    meta: MetaV1,
    data: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct MetaV1 {
    index: Index,
    term: Term,
    voters: Vec<NodeId>,
}

impl From<SnapshotV1> for Snapshot {
    fn from(v1: SnapshotV1) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: v1.meta.index,
                term: v1.meta.term,
                voters: v1.meta.voters,
                learners: Vec::new(),
            },
            data: v1.data,
        }
    }
}
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
    let snap: Snapshot = if data.starts_with(MAGIC_V1) {
        blob::decode::<SnapshotV1>(&file.path, MAGIC_V1, &data)?.into()
    } else {
        blob::decode(&file.path, MAGIC, &data)?
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct WriteV1<'a> {
        meta: (Index, Term, &'a [NodeId]),
        data: &'a [u8],
    }

    #[test]
    fn a_version_1_snapshot_still_loads_with_no_learners() {
        let dir = std::env::temp_dir().join(format!("raftkv-snapv1-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let voters = [NodeId(1), NodeId(2)];
        let old = WriteV1 {
            meta: (Index(7), Term(3), &voters),
            data: b"state",
        };
        let bytes = blob::encode(MAGIC_V1, "snapshot", &old).unwrap();
        blob::write_atomic(&dir, &file_name(7, 3), &bytes).unwrap();
        let files = list(&dir).unwrap();
        let snap = load(&files[0]).unwrap();
        assert_eq!(snap.meta.voters, voters.to_vec());
        assert!(snap.meta.learners.is_empty());
        assert_eq!(snap.data, b"state".to_vec());
        // A new one is written in version 2 and reads back whole.
        let mut new = snap.clone();
        new.meta.index = Index(9);
        new.meta.learners = vec![NodeId(3)];
        save(&dir, &new).unwrap();
        let files = list(&dir).unwrap();
        assert_eq!(load(&files[1]).unwrap(), new);
        fs::remove_dir_all(&dir).unwrap();
    }
}
