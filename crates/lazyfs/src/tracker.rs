//! What has been written to the backing directory but not yet made durable, kept as undo
//! records, so that a power cut can put every file and directory back the way the last
//! fsync left it.
//!
//! The model is a strict reading of POSIX, applied as if the disk lost its whole cache:
//! - file data is durable once the file is fsynced (fsync and fdatasync alike, or a write
//!   through an O_SYNC / O_DSYNC handle, which counts as a write followed by fsync);
//! - a create, mkdir, unlink, rmdir or rename is durable once a directory it changed is
//!   fsynced. Metadata commits in order, as in a journaling filesystem: fsyncing a directory
//!   makes every namespace change up to the last one that touched it durable, never a later
//!   one alone. Fsyncing a file does not make its directory entry durable.
//!
//! Undo records rather than a shadow copy: an append-only log, the common case, needs no saved
//! bytes at all (the cut only truncates), and a sync just forgets the records.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where unlinked files wait, inside the backing directory, until their unlink is durable.
pub(crate) const TRASH_DIR: &str = ".lazyfs-trash";

#[derive(Debug, Default)]
struct FileUndo {
    durable_len: u64,
    /// Bytes each unsynced write or truncate destroyed, oldest first.
    undo: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug)]
enum MetaOp {
    Created {
        path: PathBuf,
    },
    Removed {
        path: PathBuf,
        trash: PathBuf,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    },
}

impl MetaOp {
    fn trash(&self) -> Option<&Path> {
        match self {
            MetaOp::Created { .. } => None,
            MetaOp::Removed { trash, .. } => Some(trash),
            MetaOp::Renamed { replaced, .. } => replaced.as_deref(),
        }
    }

    fn touches_dir(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent().unwrap_or(Path::new("")) == dir;
        match self {
            MetaOp::Created { path } | MetaOp::Removed { path, .. } => parent_is(path),
            MetaOp::Renamed { from, to, .. } => parent_is(from) || parent_is(to),
        }
    }
}

/// What a power cut threw away.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose content was rolled back to their last fsync.
    pub files_rolled_back: usize,
    /// Bytes of unsynced writes beyond the durable length that were cut off.
    pub bytes_truncated: u64,
    /// Unsynced overwrites undone (each restores the bytes one write or truncate destroyed).
    pub overwrites_undone: usize,
    /// Creates, removals and renames undone because no directory fsync covered them.
    pub namespace_ops_undone: usize,
}

#[derive(Debug)]
pub(crate) struct Tracker {
    root: PathBuf,
    files: HashMap<u64, FileUndo>,
    meta: Vec<MetaOp>,
    trash_seq: u64,
}

impl Tracker {
    /// Everything already in `root` counts as durable.
    pub(crate) fn new(root: &Path) -> Tracker {
        Tracker {
            root: root.to_path_buf(),
            files: HashMap::new(),
            meta: Vec::new(),
            trash_seq: 0,
        }
    }

    pub(crate) fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// A fresh name in the trash directory for something being unlinked or replaced.
    pub(crate) fn trash_name(&mut self) -> PathBuf {
        self.trash_seq += 1;
        Path::new(TRASH_DIR).join(self.trash_seq.to_string())
    }

    fn file(&mut self, ino: u64, file: &File) -> io::Result<&mut FileUndo> {
        // First change since the mount or the last sync: what is there now is durable.
        let durable_len = match self.files.contains_key(&ino) {
            true => 0,
            false => file.metadata()?.len(),
        };
        Ok(self.files.entry(ino).or_insert(FileUndo {
            durable_len,
            undo: Vec::new(),
        }))
    }

    /// Call before writing `len` bytes at `offset` of `file` (inode `ino`).
    pub(crate) fn before_write(
        &mut self,
        ino: u64,
        file: &File,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let current = file.metadata()?.len();
        let entry = self.file(ino, file)?;
        // Only bytes inside the durable length need saving: the cut truncates the rest.
        let end = (offset + len).min(current).min(entry.durable_len);
        if offset < end {
            let mut old = vec![0u8; (end - offset) as usize];
            file.read_exact_at(&mut old, offset)?;
            entry.undo.push((offset, old));
        }
        Ok(())
    }

    /// Call before truncating `file` to `new_len`.
    pub(crate) fn before_truncate(
        &mut self,
        ino: u64,
        file: &File,
        new_len: u64,
    ) -> io::Result<()> {
        let current = file.metadata()?.len();
        let entry = self.file(ino, file)?;
        let end = current.min(entry.durable_len);
        if new_len < end {
            let mut old = vec![0u8; (end - new_len) as usize];
            file.read_exact_at(&mut old, new_len)?;
            entry.undo.push((new_len, old));
        }
        Ok(())
    }

    /// `file` was fsynced: all of its content is durable.
    pub(crate) fn file_synced(&mut self, ino: u64, file: &File) -> io::Result<()> {
        if let Some(entry) = self.files.get_mut(&ino) {
            entry.durable_len = file.metadata()?.len();
            entry.undo.clear();
        }
        Ok(())
    }

    /// A new file or directory (inode `ino`) appeared at `path`.
    pub(crate) fn created(&mut self, ino: u64, path: &Path) {
        self.files.insert(ino, FileUndo::default());
        self.meta.push(MetaOp::Created {
            path: path.to_path_buf(),
        });
    }

    /// `path` was moved to `trash` instead of being removed.
    pub(crate) fn removed(&mut self, path: &Path, trash: &Path) {
        self.meta.push(MetaOp::Removed {
            path: path.to_path_buf(),
            trash: trash.to_path_buf(),
        });
    }

    /// `from` was renamed to `to`; what `to` held before, if anything, is now at `replaced`.
    pub(crate) fn renamed(&mut self, from: &Path, to: &Path, replaced: Option<&Path>) {
        self.meta.push(MetaOp::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced: replaced.map(Path::to_path_buf),
        });
    }

    /// Directory `dir` was fsynced: namespace changes up to the last one in it are durable.
    pub(crate) fn dir_synced(&mut self, dir: &Path) -> io::Result<()> {
        let Some(last) = self.meta.iter().rposition(|op| op.touches_dir(dir)) else {
            return Ok(());
        };
        for op in self.meta.drain(..=last) {
            if let Some(trash) = op.trash() {
                remove_any(&self.root.join(trash))?;
            }
        }
        Ok(())
    }

    /// Drop every unsynced byte and namespace change. `path_of` gives the current path of a
    /// tracked inode (None when it is gone for good). Afterwards nothing is tracked: what is
    /// left is all durable.
    pub(crate) fn power_cut(
        &mut self,
        path_of: impl Fn(u64) -> Option<PathBuf>,
    ) -> io::Result<CutReport> {
        let mut report = CutReport::default();
        for (ino, entry) in self.files.drain() {
            let Some(rel) = path_of(ino) else { continue };
            let abs = self.root.join(&rel);
            // Never through a symlink: its target may lie outside the backing directory.
            let file = match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&abs)
            {
                Ok(f) => f,
                // Directories and symlinks are tracked for their creation only; vanished files
                // need nothing.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EISDIR) | Some(libc::ENOENT) | Some(libc::ELOOP)
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let len = file.metadata()?.len();
            if entry.undo.is_empty() && len == entry.durable_len {
                continue;
            }
            report.files_rolled_back += 1;
            report.overwrites_undone += entry.undo.len();
            report.bytes_truncated += len.saturating_sub(entry.durable_len);
            for (offset, old) in entry.undo.iter().rev() {
                file.write_all_at(old, *offset)?;
            }
            file.set_len(entry.durable_len)?;
        }
        while let Some(op) = self.meta.pop() {
            report.namespace_ops_undone += 1;
            match op {
                MetaOp::Created { path } => remove_any(&self.root.join(path))?,
                MetaOp::Removed { path, trash } => {
                    fs::rename(self.root.join(trash), self.root.join(path))?
                }
                MetaOp::Renamed { from, to, replaced } => {
                    fs::rename(self.root.join(&to), self.root.join(from))?;
                    if let Some(trash) = replaced {
                        fs::rename(self.root.join(trash), self.root.join(to))?;
                    }
                }
            }
        }
        Ok(report)
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
