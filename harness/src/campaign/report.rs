//! campaign.json (the stable, versioned format of docs/campaign.md) and the summary table.

use super::args::{describe_params, Shard};
use super::matrix::Dim;
use super::record::{Counts, RunRecord, Status};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// `format` of campaign.json.
pub const FORMAT: &str = "harness-campaign";
/// `version` of campaign.json; bumped on any change that is not adding a field.
pub const VERSION: u32 = 1;

/// campaign.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignFile {
    pub format: String,
    pub version: u32,
    pub harness_version: String,
    /// `running` while the campaign runs (the file is rewritten after every run), then
    /// `finished`.
    pub state: String,
    pub started: String,
    pub finished: Option<String>,
    pub elapsed_seconds: f64,
    pub seed_base: u64,
    /// --runs of the whole campaign (all shards); null with --duration alone.
    pub runs_requested: Option<u64>,
    pub duration: Option<String>,
    pub shard: Option<Shard>,
    pub matrix: Vec<Dim>,
    pub cells: u64,
    /// Options given to every `harness run`.
    pub run_options: Vec<String>,
    pub parallel: usize,
    pub allow_unknown: bool,
    pub replay_violations: bool,
    pub keep_passing: u64,
    /// Why the campaign stopped before doing every run: `interrupted`, `stop-on-failure`,
    /// `low disk space: ...`; null when it did them all (or its --duration was up).
    pub stopped: Option<String>,
    /// Runs of this campaign (shard) that were never started; null when unbounded.
    pub runs_not_started: Option<u64>,
    pub counts: Counts,
    /// Passing run directories deleted (--keep-passing).
    pub pruned: u64,
    pub exit_code: u8,
    /// Why that exit code, in a sentence.
    pub explanation: String,
    /// For a merged campaign: the shard directories merged, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// For a merged campaign: shard indices that were expected but not given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards_missing: Vec<u64>,
    /// Sorted by index.
    pub runs: Vec<RunRecord>,
}

impl CampaignFile {
    pub fn read(dir: &Path) -> Result<CampaignFile> {
        let path = dir.join("campaign.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if v["format"].as_str() != Some(FORMAT) {
            anyhow::bail!("{}: not a campaign.json (format)", path.display());
        }
        match v["version"].as_u64() {
            Some(n) if n == VERSION as u64 => {}
            other => anyhow::bail!(
                "{}: campaign.json version {other:?}, this harness reads version {VERSION}",
                path.display()
            ),
        }
        serde_json::from_value(v).with_context(|| format!("reading {}", path.display()))
    }

    /// Writes `<dir>/campaign.json` atomically (temporary file, then rename).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding campaign.json")?;
        write_atomic(&dir.join("campaign.json"), text.as_bytes())
    }
}

/// Writes `path` through a temporary file and a rename: never half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn utc_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

pub fn utc_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `path` relative to `base` when both are absolute (with `..` as needed), else `path`.
pub fn relative_to(base: &Path, path: &Path) -> PathBuf {
    if !(base.is_absolute() && path.is_absolute()) {
        return path.to_path_buf();
    }
    fn norm(p: &Path) -> Vec<Component<'_>> {
        let mut out: Vec<Component> = Vec::new();
        for c in p.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    }
    let (b, p) = (norm(base), norm(path));
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

/// A run's parameters in matrix order (campaign.json stores them by name), as
/// `nodes=3 nemesis=pause,kill`, or `-` without a matrix.
pub fn params(r: &RunRecord, matrix: &[Dim]) -> String {
    let mut ordered: Vec<(&String, &String)> = matrix
        .iter()
        .filter_map(|d| r.params.get_key_value(&d.name))
        .collect();
    ordered.extend(
        r.params
            .iter()
            .filter(|(k, _)| !matrix.iter().any(|d| &d.name == *k)),
    );
    describe_params(ordered)
}

/// `kill 2, partition 1`, or `none`.
pub fn faults_line(faults: &std::collections::BTreeMap<String, u64>) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    faults
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verdict column: the status, and for a violation whether it reproduced.
pub fn verdict_cell(r: &RunRecord) -> String {
    match (r.status, r.reproduced) {
        (Status::NotLinearizable, Some(true)) => "NOT LINEARIZABLE (reproduced)".into(),
        (Status::NotLinearizable, Some(false)) => "NOT LINEARIZABLE (not reproduced)".into(),
        (Status::NotLinearizable, None) => "NOT LINEARIZABLE".into(),
        (s, _) => s.name().into(),
    }
}

/// The run directory column, as a path a reader can open from the current directory.
pub fn dir_cell(r: &RunRecord, campaign_dir: &Path) -> String {
    match (&r.run_dir, r.pruned) {
        (_, true) => "(pruned: passed)".into(),
        (Some(d), false) => normalize(&campaign_dir.join(d)).display().to_string(),
        (None, false) => "-".into(),
    }
}

/// `a/b/../c` as `a/c` (lexically: the paths here are the harness's own, without symlinks in
/// the part that is cut).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// The summary: a table of every run, the violations and failures with their explanation and
/// replay command, and the totals. `campaign_dir` is where campaign.json is.
pub fn print_summary(c: &CampaignFile, campaign_dir: &Path, out: &mut impl Write) {
    let header = [
        "run",
        "seed",
        "parameters",
        "ops",
        "faults",
        "verdict",
        "time",
        "run directory",
    ];
    let rows: Vec<[String; 8]> = c
        .runs
        .iter()
        .map(|r| {
            [
                format!("r{}", r.index),
                r.seed.to_string(),
                params(r, &c.matrix),
                r.ops.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                faults_line(&r.faults),
                verdict_cell(r),
                format!("{:.1}s", r.seconds),
                dir_cell(r, campaign_dir),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out);
    if rows.is_empty() {
        let _ = writeln!(out, "no run was done");
    } else {
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
    }
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let bad: Vec<&RunRecord> = c
        .runs
        .iter()
        .filter(|r| r.fails(c.allow_unknown) || r.status == Status::Unknown)
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(out);
    }
    for r in bad {
        let p = params(r, &c.matrix);
        let _ = writeln!(
            out,
            "r{} seed {}{}: {}",
            r.index,
            r.seed,
            if r.params.is_empty() {
                String::new()
            } else {
                format!(" ({p})")
            },
            verdict_cell(r)
        );
        if let Some(e) = &r.explanation {
            for l in e.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        if let Some(p) = &r.replay {
            let _ = writeln!(
                out,
                "    replayed: {} ({:.1}s){}",
                p.status.name(),
                p.seconds,
                p.run_dir
                    .as_ref()
                    .map(|d| format!(", {}", normalize(&campaign_dir.join(d)).display()))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out, "    run directory: {}", dir_cell(r, campaign_dir));
        let _ = writeln!(out, "    replay: {}", r.replay_command);
    }
    let _ = writeln!(out);
    let mut totals = format!("runs: {} ({})", c.counts.total, c.counts.line());
    if let Some(n) = c.runs_not_started.filter(|&n| n > 0) {
        totals.push_str(&format!(", {n} not started"));
    }
    if c.pruned > 0 {
        totals.push_str(&format!(", {} passing run directories pruned", c.pruned));
    }
    let _ = writeln!(
        out,
        "{totals}; {:.0}s; seed base {}",
        c.elapsed_seconds, c.seed_base
    );
    if let Some(s) = &c.stopped {
        let _ = writeln!(out, "stopped early: {s}");
    }
    if !c.shards_missing.is_empty() {
        let _ = writeln!(
            out,
            "shards missing: {}",
            c.shards_missing
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        out,
        "campaign: {}",
        campaign_dir.join("campaign.json").display()
    );
    let _ = writeln!(out, "exit {}: {}", c.exit_code, c.explanation);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let r = |b: &str, p: &str| {
            relative_to(Path::new(b), Path::new(p))
                .display()
                .to_string()
        };
        assert_eq!(r("/a/b", "/a/b/runs/r1/x"), "runs/r1/x");
        assert_eq!(r("/a/merged", "/a/shard-0/runs/r1"), "../shard-0/runs/r1");
        assert_eq!(r("/a/b", "/a/b"), ".");
        assert_eq!(r("/a/./b/../c", "/a/c/d"), "d");
        assert_eq!(r("rel", "/x"), "/x");
        assert_eq!(
            normalize(Path::new("/a/merged/../shard-0/./runs")),
            Path::new("/a/shard-0/runs")
        );
    }

    #[test]
    fn stamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_441_235);
        assert_eq!(utc_stamp(t), "20261123T134035Z");
    }
}
