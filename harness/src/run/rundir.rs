//! The run directory: `<out>/<UTC time>-seed<seed>/` with run.json, history.jsonl,
//! nodes/<id>.log (and nodes/<id>/, the data directory), proxy.log, result.json and
//! report.html (see crate::report); `<out>/latest` points at the newest run.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A created run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
    pub name: String,
}

impl RunDir {
    /// Creates `<out>/<UTC time>-seed<seed>/nodes/` (with a numeric suffix if the name is taken).
    pub fn create(out: &Path, seed: u64, now: SystemTime) -> Result<RunDir> {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating the output directory {}", out.display()))?;
        let base = format!("{}-seed{seed}", utc_stamp(now));
        for n in 1..1000 {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let path = out.join(&name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    std::fs::create_dir(path.join("nodes"))
                        .with_context(|| format!("creating {}/nodes", path.display()))?;
                    return Ok(RunDir { path, name });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", path.display()));
                }
            }
        }
        anyhow::bail!(
            "cannot find a free run directory name under {}",
            out.display()
        )
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` as pretty JSON (via a temporary file and a rename: never half-written).
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value).context("encoding JSON")?;
        self.write(name, text.as_bytes())
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let dst = self.path.join(name);
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &dst).with_context(|| format!("writing {}", dst.display()))
    }

    /// Points `<out>/latest` at this run (a relative symlink, replaced atomically).
    pub fn mark_latest(&self) -> Result<()> {
        let out = self.path.parent().unwrap_or(Path::new("."));
        let tmp = out.join(format!(".latest.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&self.name, &tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        std::fs::rename(&tmp, out.join("latest"))
            .with_context(|| format!("updating {}/latest", out.display()))
    }
}

/// `YYYYMMDDTHHMMSSZ` for a UTC instant (no colons: the name is also a path).
pub fn utc_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// RFC 3339 UTC time, for run.json.
pub fn utc_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_441_235) + Duration::from_millis(7);
        assert_eq!(utc_stamp(t), "20261123T134035Z");
        assert_eq!(utc_rfc3339(t), "2026-11-23T13:40:35.007Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_stamp(t), "20000229T000000Z");
    }

    #[test]
    fn creates_and_links() -> Result<()> {
        let out = std::env::temp_dir().join(format!("harness-rundir-{}", std::process::id()));
        let t = UNIX_EPOCH + Duration::from_secs(1_795_441_235);
        let a = RunDir::create(&out, 7, t)?;
        let b = RunDir::create(&out, 7, t)?;
        assert_ne!(a.path, b.path);
        assert!(a.path.join("nodes").is_dir());
        a.mark_latest()?;
        b.mark_latest()?;
        assert_eq!(
            std::fs::read_link(out.join("latest"))?,
            PathBuf::from(&b.name)
        );
        b.write_json("run.json", &serde_json::json!({"seed": 7}))?;
        assert!(std::fs::read_to_string(b.file("run.json"))?.contains("\"seed\": 7"));
        let _ = std::fs::remove_dir_all(&out);
        Ok(())
    }
}
