//! FUSE inode numbers and the backing paths they stand for.
//!
//! Numbers are never reused, not even across a power cut: after a cut the kernel may still hold
//! old numbers, and a fresh lookup must not hand one of them a different file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) const ROOT: u64 = 1;

#[derive(Debug)]
pub(crate) struct Inodes {
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next: u64,
}

impl Inodes {
    pub(crate) fn new() -> Inodes {
        let mut inodes = Inodes {
            paths: HashMap::new(),
            inos: HashMap::new(),
            next: ROOT + 1,
        };
        inodes.paths.insert(ROOT, PathBuf::new());
        inodes.inos.insert(PathBuf::new(), ROOT);
        inodes
    }

    pub(crate) fn path(&self, ino: u64) -> Option<&Path> {
        self.paths.get(&ino).map(PathBuf::as_path)
    }

    /// The number of `path` relative to the backing root, assigned on first sight.
    pub(crate) fn ino_for(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.inos.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_path_buf());
        self.inos.insert(path.to_path_buf(), ino);
        ino
    }

    /// `from`, and everything under it, now lives at `to`. Whatever was known at `to` must
    /// have been moved away first.
    pub(crate) fn moved(&mut self, from: &Path, to: &Path) {
        let affected: Vec<(u64, PathBuf)> = self
            .paths
            .iter()
            .filter(|(_, p)| p.starts_with(from))
            .map(|(&ino, p)| (ino, p.clone()))
            .collect();
        for (ino, old) in affected {
            let new = match old.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            self.inos.remove(&old);
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
    }

    /// Forget every number but the root's; new lookups get new numbers.
    pub(crate) fn reset(&mut self) {
        self.paths.retain(|&ino, _| ino == ROOT);
        self.inos.retain(|_, &mut ino| ino == ROOT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_directory_takes_its_children_and_numbers_are_never_reused() {
        let mut inodes = Inodes::new();
        let dir = inodes.ino_for(Path::new("a"));
        let child = inodes.ino_for(Path::new("a/x"));
        let other = inodes.ino_for(Path::new("ab"));
        inodes.moved(Path::new("a"), Path::new("b"));
        assert_eq!(inodes.path(dir), Some(Path::new("b")));
        assert_eq!(inodes.path(child), Some(Path::new("b/x")));
        assert_eq!(
            inodes.path(other),
            Some(Path::new("ab")),
            "a prefix of the name is not a parent"
        );
        inodes.reset();
        assert_eq!(inodes.path(child), None);
        assert!(inodes.ino_for(Path::new("b/x")) > other);
        assert_eq!(inodes.path(ROOT), Some(Path::new("")));
    }
}
