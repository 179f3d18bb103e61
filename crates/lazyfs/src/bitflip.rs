//! Silent corruption: one bit of one file, the kind a disk or a controller can introduce and a
//! store must notice through its own checksums.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::tracker::TRASH_DIR;
use crate::Error;

/// Which bit was flipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitFlip {
    /// Relative to the directory given to [`flip_random_bit`].
    pub file: PathBuf,
    pub offset: u64,
    /// 0 is the least significant bit.
    pub bit: u8,
}

/// Flips one random bit of one random non-empty regular file under `dir` (files chosen
/// uniformly, then a byte uniformly within the file). `None` when there is no such file.
/// Whoever writes `dir` must be stopped.
pub fn flip_random_bit(dir: &Path, rng: &mut impl Rng) -> Result<Option<BitFlip>, Error> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    // Directory order is not stable; the choice must depend on the seed alone.
    files.sort();
    if files.is_empty() {
        return Ok(None);
    }
    let (rel, len) = files[rng.random_range(0..files.len())].clone();
    let offset = rng.random_range(0..len);
    let bit = rng.random_range(0..8u8);
    let path = dir.join(&rel);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset)
        .map_err(|e| Error::io("reading", &path, e))?;
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, offset)
        .map_err(|e| Error::io("writing", &path, e))?;
    file.sync_all()
        .map_err(|e| Error::io("syncing", &path, e))?;
    Ok(Some(BitFlip {
        file: rel,
        offset,
        bit,
    }))
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), Error> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
        if rel.as_os_str().is_empty() && entry.file_name() == TRASH_DIR {
            continue;
        }
        let child = rel.join(entry.file_name());
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("inspecting", root.join(&child), e))?;
        if ft.is_dir() {
            collect(root, &child, out)?;
        } else if ft.is_file() {
            let len = entry
                .metadata()
                .map_err(|e| Error::io("inspecting", root.join(&child), e))?
                .len();
            if len > 0 {
                out.push((child, len));
            }
        }
    }
    Ok(())
}
