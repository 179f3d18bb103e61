//! Keeping a long campaign from filling the disk: free space (statvfs), pruning passing runs,
//! capping node logs.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes available to an unprivileged user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st =
        nix::sys::statvfs::statvfs(path).with_context(|| format!("statvfs {}", path.display()))?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let free = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    Ok(free)
}

/// Total size of the files under `path` (best effort).
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Deletes a run's directory; returns the bytes freed.
pub fn prune(dir: &Path) -> Result<u64> {
    let size = tree_size(dir);
    std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))?;
    Ok(size)
}

/// Cuts each `nodes/*.log` under `run_dir` longer than `cap` bytes to its last `cap` bytes
/// (from the first line boundary), behind a line that says so. Returns the bytes saved.
pub fn cap_node_logs(run_dir: &Path, cap: u64) -> Result<u64> {
    if cap == 0 {
        return Ok(0);
    }
    let nodes = run_dir.join("nodes");
    let Ok(entries) = std::fs::read_dir(&nodes) else {
        return Ok(0);
    };
    let mut saved = 0;
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log") && p.is_file())
        .collect();
    logs.sort();
    for log in logs {
        saved += cap_file(&log, cap)?;
    }
    Ok(saved)
}

/// Keeps the last `cap` bytes of `path` (see [`cap_node_logs`]).
pub fn cap_file(path: &Path, cap: u64) -> Result<u64> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len <= cap {
        return Ok(0);
    }
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(len - cap))
        .with_context(|| format!("reading {}", path.display()))?;
    let mut tail = Vec::with_capacity(cap as usize);
    f.take(cap)
        .read_to_end(&mut tail)
        .with_context(|| format!("reading {}", path.display()))?;
    // Start at a line boundary, unless the tail is one long line.
    let skip = tail
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| i + 1)
        .filter(|&i| i < tail.len())
        .unwrap_or(0);
    let kept = &tail[skip..];
    let dropped = len - kept.len() as u64;
    let tmp = path.with_extension("log.cap-tmp");
    let mut out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    writeln!(
        out,
        "==== harness campaign: passing run; the first {dropped} bytes of this log were cut \
         (--node-log-cap)"
    )
    .and_then(|()| out.write_all(kept))
    .with_context(|| format!("writing {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(len.saturating_sub(std::fs::metadata(path).map(|m| m.len()).unwrap_or(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_logs_at_a_line_boundary() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("campaign-disk-{}", std::process::id()));
        let nodes = dir.join("nodes");
        std::fs::create_dir_all(nodes.join("n1"))?;
        let big: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(nodes.join("n1.log"), &big)?;
        std::fs::write(nodes.join("n2.log"), "short\n")?;
        std::fs::write(nodes.join("n1").join("data.log"), &big)?;
        let saved = cap_node_logs(&dir, 100)?;
        assert!(saved > 0);
        let n1 = std::fs::read_to_string(nodes.join("n1.log"))?;
        let mut lines = n1.lines();
        assert!(lines.next().is_some_and(|l| l.contains("were cut")), "{n1}");
        assert!(lines.next().is_some_and(|l| l.starts_with("line ")));
        assert!(n1.ends_with("line 999\n"));
        assert!(n1.len() < 200);
        assert_eq!(std::fs::read_to_string(nodes.join("n2.log"))?, "short\n");
        // Only nodes/*.log: data directories are left alone.
        assert_eq!(
            std::fs::read_to_string(nodes.join("n1").join("data.log"))?,
            big
        );
        assert_eq!(cap_node_logs(&dir, 0)?, 0);
        assert!(tree_size(&dir) > big.len() as u64);
        assert!(prune(&dir)? > 0);
        assert!(!dir.exists());
        Ok(())
    }

    #[test]
    fn free_space() -> Result<()> {
        assert!(free_bytes(&std::env::temp_dir())? > 0);
        assert!(free_bytes(Path::new("/nonexistent/x")).is_err());
        Ok(())
    }
}
