//! Node log excerpts: the lines around an instant (lines that carry an RFC 3339 timestamp, as
//! raftkv's and etcd's do), or the last lines of a log without timestamps.

use std::path::Path;
use std::time::SystemTime;

/// Lines shown per log.
pub const LINES: usize = 40;
/// Logs bigger than this are read from their last bytes only.
const READ_CAP: u64 = 16 << 20;

pub struct Excerpt {
    /// (line number, text, is the line nearest the instant).
    pub lines: Vec<(usize, String, bool)>,
    /// What the excerpt is: "around 12.3 s", "last lines", "empty", or why the log is missing.
    pub what: String,
}

/// The timestamp a line carries: the first `YYYY-MM-DDTHH:MM:SS[.fff][Z]` in its first 120
/// bytes.
pub fn timestamp(line: &str) -> Option<SystemTime> {
    let b = line.as_bytes();
    let limit = b.len().min(120);
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let start = (0..limit.saturating_sub(18)).find(|&i| {
        digit(i)
            && digit(i + 3)
            && b.get(i + 4) == Some(&b'-')
            && b.get(i + 7) == Some(&b'-')
            && b.get(i + 10) == Some(&b'T')
            && b.get(i + 13) == Some(&b':')
    })?;
    let len = b[start..]
        .iter()
        .position(|c| !(c.is_ascii_digit() || matches!(c, b'-' | b':' | b'.' | b'T' | b'Z')))
        .unwrap_or(b.len() - start);
    humantime::parse_rfc3339_weak(line.get(start..start + len)?.trim_end_matches('Z')).ok()
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > READ_CAP {
        f.seek(SeekFrom::Start(len - READ_CAP))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The lines of `path` around `at` (three quarters before it), or its last lines.
pub fn excerpt(path: &Path, at: Option<(SystemTime, String)>) -> Excerpt {
    let text = match read_tail(path) {
        Ok(t) => t,
        Err(e) => {
            return Excerpt {
                lines: Vec::new(),
                what: format!("cannot read it: {e}"),
            }
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Excerpt {
            lines: Vec::new(),
            what: "empty".into(),
        };
    }
    let nearest = at.as_ref().and_then(|(t, _)| {
        let stamped: Vec<(usize, SystemTime)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| timestamp(l).map(|ts| (i, ts)))
            .collect();
        if stamped.is_empty() {
            return None;
        }
        // The last line at or before the instant (or the first line, if all are later).
        Some(
            stamped
                .iter()
                .rev()
                .find(|(_, ts)| ts <= t)
                .or(stamped.first())
                .map(|(i, _)| *i)
                .unwrap_or(0),
        )
    });
    let (from, to, what) = match (nearest, &at) {
        (Some(i), Some((_, when))) => {
            let from = i.saturating_sub(LINES * 3 / 4);
            let to = (from + LINES).min(lines.len());
            (from, to, format!("around {when}"))
        }
        _ => (
            lines.len().saturating_sub(LINES),
            lines.len(),
            "last lines".to_string(),
        ),
    };
    Excerpt {
        lines: (from..to)
            .map(|i| (i + 1, lines[i].to_string(), Some(i) == nearest))
            .collect(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_of_raftkv_and_etcd_lines() {
        let t = timestamp("2026-11-30T21:16:25.432Z n1 INFO recovered").expect("raftkv");
        let u = timestamp(r#"{"level":"info","ts":"2026-11-30T21:16:25.932Z","msg":"x"}"#)
            .expect("etcd");
        assert_eq!(u.duration_since(t).ok(), Some(Duration::from_millis(500)));
        assert_eq!(timestamp("==== harness: start #1 of n1"), None);
        assert_eq!(timestamp(""), None);
    }

    #[test]
    fn excerpts_around_an_instant_or_the_end() {
        let dir = std::env::temp_dir().join(format!("harness-logs-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("n1.log");
        let mut text = String::from("==== harness: start #1 of n1\n");
        for s in 0..50 {
            text.push_str(&format!("2026-11-30T21:16:{s:02}.000Z n1 INFO line {s}\n"));
        }
        std::fs::write(&path, &text).expect("writing the log");
        let at = timestamp("2026-11-30T21:16:10.500Z").expect("a time");
        let e = excerpt(&path, Some((at, "10.5 s".into())));
        let near: Vec<&str> = e
            .lines
            .iter()
            .filter(|l| l.2)
            .map(|l| l.1.as_str())
            .collect();
        assert_eq!(near, ["2026-11-30T21:16:10.000Z n1 INFO line 10"]);
        assert_eq!(e.what, "around 10.5 s");
        let e = excerpt(&path, None);
        assert_eq!(e.lines.len(), LINES);
        assert_eq!(e.lines.last().map(|l| l.0), Some(51));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
