//! Small whole-file values (the hard state, snapshots): a checksummed format and the atomic
//! replace that writes them.
//!
//! ```text
//! [magic: 8 bytes][len: u64 LE][crc32c(payload): u32 LE][payload: len bytes]
//! ```
//!
//! Written as `<name>.tmp`, fsynced, renamed over `<name>`, then the directory is fsynced, so a
//! crash leaves either the old file or the new one, never a mix; a leftover `.tmp` is garbage
//! from a crash before the rename and is deleted on open.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{corrupt, io_err, StorageError};

const HEADER_LEN: usize = 20;

/// Suffix of a file being written before its atomic rename.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Encodes `value` in the blob format with `magic`.
pub(crate) fn encode<T: Serialize>(
    magic: &[u8; 8],
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(magic);
    out.extend_from_slice(&[0; HEADER_LEN - 8]);
    postcard::to_io(value, &mut out).map_err(|source| StorageError::Encode { what, source })?;
    let len = (out.len() - HEADER_LEN) as u64;
    let crc = crc32c::crc32c(&out[HEADER_LEN..]);
    out[8..16].copy_from_slice(&len.to_le_bytes());
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes a blob read from `path`; any mismatch is `Corrupt`, because blobs are only ever
/// replaced atomically and so are never legitimately torn.
pub(crate) fn decode<T: DeserializeOwned>(
    path: &Path,
    magic: &[u8; 8],
    data: &[u8],
) -> Result<T, StorageError> {
    if data.len() < HEADER_LEN {
        return Err(corrupt(
            path,
            0,
            format!("file of {} bytes is shorter than its header", data.len()),
        ));
    }
    if &data[0..8] != magic {
        return Err(corrupt(path, 0, "bad magic number"));
    }
    let len = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(data[16..20].try_into().unwrap_or_default());
    let payload = &data[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(corrupt(
            path,
            8,
            format!(
                "header says {len} payload bytes, file holds {}",
                payload.len()
            ),
        ));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(corrupt(
            path,
            HEADER_LEN as u64,
            "payload checksum mismatch",
        ));
    }
    postcard::from_bytes(payload).map_err(|e| {
        corrupt(
            path,
            HEADER_LEN as u64,
            format!("payload does not decode: {e}"),
        )
    })
}

/// Replaces `dir/name` with `bytes` atomically and durably (see the module docs).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(io_err(&target))?;
    sync_dir(dir)
}

/// Makes directory entries (creations, renames, unlinks) in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Removes every `*.tmp` file in `dir`, returning their paths (for the recovery report).
pub(crate) fn remove_temp_files(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.to_string_lossy().ends_with(TMP_SUFFIX) {
            fs::remove_file(&path).map_err(io_err(&path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}
