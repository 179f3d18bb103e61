//! The `hardstate` file: term, vote and (lazily) commit, replaced atomically.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::blob;
use super::error::{io_err, StorageError};
use super::types::HardState;

const MAGIC: &[u8; 8] = b"RKVHARD\x01";

/// The file name inside the data directory.
pub(crate) const FILE: &str = "hardstate";

/// Reads the stored hard state; `None` when none was ever written.
pub(crate) fn load(dir: &Path) -> Result<Option<HardState>, StorageError> {
    let path = dir.join(FILE);
    match fs::read(&path) {
        Ok(data) => blob::decode(&path, MAGIC, &data).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Durably replaces the stored hard state.
pub(crate) fn save(dir: &Path, hs: &HardState) -> Result<(), StorageError> {
    let bytes = blob::encode(MAGIC, "hard state", hs)?;
    blob::write_atomic(dir, FILE, &bytes)
}
