//! A run directory read back from its files: nothing here depends on the process that ran it.

use anyhow::{bail, Context, Result};
use lincheck::{CheckResult, Format, History};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a report is drawn from.
pub struct RunData {
    pub dir: PathBuf,
    /// run.json (`Null` if absent or unreadable: the report says so).
    pub run: Value,
    /// result.json (`Null` if absent).
    pub result: Value,
    /// The history, or why it could not be read.
    pub history: Result<History, String>,
    /// The check result read back against the history, for the counterexample view.
    pub check: Option<CheckResult>,
    /// Why `check` is absent although result.json names counterexamples.
    pub check_error: Option<String>,
    /// The wall-clock instant of history time 0, when it can be worked out (for node logs).
    pub zero_wall: Option<SystemTime>,
    /// Node ids and their log files, in order.
    pub node_logs: Vec<(String, PathBuf)>,
    /// Problems met while reading, shown at the top of the page.
    pub warnings: Vec<String>,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let mut warnings = Vec::new();
        let run = read_json(&dir.join("run.json")).unwrap_or_else(|e| {
            warnings.push(format!("{e:#}"));
            Value::Null
        });
        let result_path = dir.join("result.json");
        let result = if result_path.exists() {
            read_json(&result_path).unwrap_or_else(|e| {
                warnings.push(format!("{e:#}"));
                Value::Null
            })
        } else {
            Value::Null
        };
        let history_path = dir.join("history.jsonl");
        let history = lincheck::read_file(&history_path, Format::Jsonl)
            .map(|(h, _)| h)
            .map_err(|e| e.to_string());
        let (check, check_error) = match (&history, &result) {
            (Ok(h), r)
                if r.get("counterexamples")
                    .is_some_and(|c| c.as_array().is_some_and(|a| !a.is_empty())) =>
            {
                match CheckResult::from_json(r, h) {
                    Ok(c) => (Some(c), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            }
            _ => (None, None),
        };
        let zero_wall = history_zero(&run, &dir.join("proxy.log"));
        let node_logs = node_logs(dir, &run);
        Ok(RunData {
            dir: dir.to_path_buf(),
            run,
            result,
            history,
            check,
            check_error,
            zero_wall,
            node_logs,
            warnings,
        })
    }

    /// The verdict as the run recorded it: run.json's outcome, else result.json's.
    pub fn verdict(&self) -> String {
        self.run["outcome"]["verdict"]
            .as_str()
            .or_else(|| self.result["verdict"].as_str())
            .unwrap_or("no verdict")
            .to_string()
    }

    /// The run's exit code, when it finished.
    pub fn exit_code(&self) -> Option<i64> {
        self.run["outcome"]["exit_code"].as_i64()
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// History time 0 on the wall clock: run.json's `started` plus the proxy log's offset of its
/// "history time zero" line. The proxy log's clock starts a few milliseconds after `started`
/// (the run directory and run.json are written in between), so this is early by that much,
/// which is well inside the window of log lines a report shows.
fn history_zero(run: &Value, proxy_log: &Path) -> Option<SystemTime> {
    let started = humantime::parse_rfc3339_weak(run["started"].as_str()?).ok()?;
    let text = std::fs::read_to_string(proxy_log).ok()?;
    let line = text.lines().find(|l| l.contains("history time zero"))?;
    let secs: f64 = line.split_whitespace().next()?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(started + Duration::from_secs_f64(secs))
}

/// The node logs: as run.json lists them, else whatever `nodes/*.log` holds.
fn node_logs(dir: &Path, run: &Value) -> Vec<(String, PathBuf)> {
    let listed: Vec<(String, PathBuf)> = run["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let id = n["id"].as_str()?;
            Some((id.to_string(), dir.join("nodes").join(format!("{id}.log"))))
        })
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "log").then_some((stem, p))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_zero_is_the_start_plus_the_proxy_logs_offset() {
        let dir = std::env::temp_dir().join(format!("harness-load-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let log = dir.join("proxy.log");
        std::fs::write(
            &log,
            "  0.000280 INFO  start seed=7\n  0.070453 INFO  history time zero (history.jsonl `time` 0)\n",
        )
        .expect("writing proxy.log");
        let run = json!({"started": "2026-11-30T21:16:25.400Z"});
        let zero = history_zero(&run, &log).expect("a time");
        let started = humantime::parse_rfc3339_weak("2026-11-30T21:16:25.400Z").expect("a time");
        let d = zero.duration_since(started).expect("later");
        assert!((d.as_secs_f64() - 0.070453).abs() < 1e-6, "{d:?}");
        assert_eq!(history_zero(&json!({}), &log), None);
        assert_eq!(history_zero(&run, &dir.join("absent.log")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
