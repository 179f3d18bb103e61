//! What the campaign keeps of each run (a line of the summary, an entry of campaign.json, a JUnit
//! test case), read from the run's exit status, run.json and result.json; and the exit-code
//! policy over all runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Exit 0.
    Linearizable,
    /// Exit 1: a violation.
    NotLinearizable,
    /// Exit 2: a checker limit was reached.
    Unknown,
    /// Exit 255 (a node crashed, the cluster never came up or did not recover), or anything
    /// else unexpected: another code, a signal the campaign did not send.
    Failed,
    /// Killed by the campaign (Ctrl-C, SIGTERM): partial results only.
    Interrupted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Linearizable => "linearizable",
            Status::NotLinearizable => "not-linearizable",
            Status::Unknown => "unknown",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// From `harness run`'s exit code (None: killed by a signal).
    pub fn from_exit(code: Option<i32>, interrupted: bool) -> Status {
        match code {
            Some(0) => Status::Linearizable,
            Some(1) => Status::NotLinearizable,
            Some(2) => Status::Unknown,
            None if interrupted => Status::Interrupted,
            _ => Status::Failed,
        }
    }
}

/// The re-run of a seed that found a violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayRecord {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    pub ops: Option<u64>,
    pub explanation: Option<String>,
    /// Relative to the directory of the campaign.json that holds it, or absolute.
    pub run_dir: Option<String>,
}

/// One run, as campaign.json stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub index: u64,
    pub seed: u64,
    pub cell: u64,
    /// The matrix cell's values by option name (empty without a matrix).
    pub params: BTreeMap<String, String>,
    pub status: Status,
    /// `harness run`'s exit code; null when it was killed by a signal.
    pub exit_code: Option<i32>,
    /// RFC 3339 UTC.
    pub started: String,
    /// Wall time of the run (start to exit of `harness run`).
    pub seconds: f64,
    /// Operations recorded (outcome.ops.total); null when the run left no outcome.
    pub ops: Option<u64>,
    /// Faults injected, by kind (outcome.faults without the `kind:shape` detail).
    pub faults: BTreeMap<String, u64>,
    /// Why the run did not pass, in a sentence or so: the checker's explanation of a violation,
    /// the unresolved keys of an unknown, the failure of a failed run.
    pub explanation: Option<String>,
    /// The run directory, relative to the directory of this campaign.json (or absolute).
    pub run_dir: Option<String>,
    /// The run directory was deleted (a passing run beyond --keep-passing).
    pub pruned: bool,
    /// The command that replays the run (run.json's `replay`, every option).
    pub replay_command: String,
    /// For a violation: whether its re-run found a violation again; null if not re-run.
    pub reproduced: Option<bool>,
    pub replay: Option<ReplayRecord>,
}

impl RunRecord {
    /// Whether this run fails the campaign, given --allow-unknown.
    pub fn fails(&self, allow_unknown: bool) -> bool {
        match self.status {
            Status::Linearizable => false,
            Status::Unknown => !allow_unknown,
            _ => true,
        }
    }
}

/// What the campaign reads from a finished run's directory.
#[derive(Debug, Default, Clone)]
pub struct RunFacts {
    pub run_dir: Option<PathBuf>,
    pub ops: Option<u64>,
    pub faults: BTreeMap<String, u64>,
    pub explanation: Option<String>,
    pub replay_command: Option<String>,
}

/// The run directory `harness run` made under `out`: `<out>/latest`, or the only run
/// directory there.
pub fn find_run_dir(out: &Path) -> Option<PathBuf> {
    if let Ok(name) = std::fs::read_link(out.join("latest")) {
        let p = out.join(name);
        if p.is_dir() {
            return Some(p);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reads run.json and result.json of the run under `out`, and the tail of its output
/// (`harness.log`) when they say nothing.
pub fn read_facts(out: &Path, status: Status) -> RunFacts {
    let mut f = RunFacts {
        run_dir: find_run_dir(out),
        ..RunFacts::default()
    };
    let run = f
        .run_dir
        .as_ref()
        .and_then(|d| read_json(&d.join("run.json")));
    let result = f
        .run_dir
        .as_ref()
        .and_then(|d| read_json(&d.join("result.json")));
    if let Some(run) = &run {
        f.replay_command = run["replay"].as_str().map(String::from);
        let outcome = &run["outcome"];
        f.ops = outcome["ops"]["total"].as_u64();
        if let Some(m) = outcome["faults"].as_object() {
            for (k, v) in m {
                if !k.contains(':') {
                    f.faults.insert(k.clone(), v.as_u64().unwrap_or(0));
                }
            }
        }
    }
    let outcome = run.as_ref().map(|r| &r["outcome"]);
    f.explanation = match status {
        Status::Linearizable => None,
        Status::NotLinearizable => Some(
            result
                .as_ref()
                .and_then(|r| r["counterexamples"].as_array()?.first().cloned())
                .and_then(|c| {
                    Some(format!(
                        "key {}: {}",
                        c["key"].as_str()?,
                        c["explanation"].as_str()?
                    ))
                })
                .unwrap_or_else(|| "not linearizable (see result.json)".into()),
        ),
        Status::Unknown => Some(
            result
                .as_ref()
                .and_then(|r| {
                    if let Some(e) = r["error"].as_str() {
                        return Some(e.to_string());
                    }
                    let keys: Vec<String> = r["unresolved"]
                        .as_array()?
                        .iter()
                        .map(|k| {
                            format!(
                                "{} ({})",
                                k["key"].as_str().unwrap_or("?"),
                                k["cause"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    (!keys.is_empty()).then(|| {
                        format!(
                            "the checker reached a limit before deciding keys {}",
                            keys.join(", ")
                        )
                    })
                })
                .unwrap_or_else(|| "unknown: a checker limit was reached (see result.json)".into()),
        ),
        Status::Failed => Some(
            outcome
                .and_then(|o| o["failure"].as_str())
                .map(String::from)
                .or_else(|| output_tail(&out.join("harness.log")))
                .unwrap_or_else(|| "the run failed and left no message".into()),
        ),
        Status::Interrupted => Some(
            "interrupted by the campaign (Ctrl-C or a termination signal); the run directory \
             holds the partial history"
                .into(),
        ),
    };
    f
}

/// For runs that left no run.json outcome: the run's last `run failed:` message (with the lines
/// that follow it, a node's log tail say), else the last line of its output.
fn output_tail(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines
        .iter()
        .rposition(|l| l.contains("run failed:"))
        .or_else(|| lines.len().checked_sub(1))?;
    let msg: Vec<&str> = lines[from..]
        .iter()
        .take(20)
        .map(|l| l.trim_end())
        .collect();
    let msg = msg.join("\n");
    Some(
        msg.strip_prefix("harness run: ")
            .map(String::from)
            .unwrap_or(msg),
    )
}

/// Counts per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub linearizable: u64,
    pub not_linearizable: u64,
    pub unknown: u64,
    pub failed: u64,
    pub interrupted: u64,
}

impl Counts {
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> Counts {
        let mut c = Counts::default();
        for r in runs {
            c.add(r.status);
        }
        c
    }

    pub fn add(&mut self, s: Status) {
        self.total += 1;
        *match s {
            Status::Linearizable => &mut self.linearizable,
            Status::NotLinearizable => &mut self.not_linearizable,
            Status::Unknown => &mut self.unknown,
            Status::Failed => &mut self.failed,
            Status::Interrupted => &mut self.interrupted,
        } += 1;
    }

    /// `3 linearizable, 1 not linearizable, ...` (zero counts left out).
    pub fn line(&self) -> String {
        let parts: Vec<String> = [
            (self.linearizable, "linearizable"),
            (self.not_linearizable, "not linearizable"),
            (self.unknown, "unknown"),
            (self.failed, "failed"),
            (self.interrupted, "interrupted"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
        if parts.is_empty() {
            "no runs".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The campaign's exit code and why, by the policy of docs/campaign.md: 1 if any run found a
/// violation; else 255 if any run failed or was interrupted, or the campaign stopped early
/// (`incomplete`: Ctrl-C, low disk, a missing shard); else 2 if any run was unknown, unless
/// `allow_unknown`; else 0.
pub fn verdict(runs: &[RunRecord], incomplete: Option<&str>, allow_unknown: bool) -> (u8, String) {
    let seeds = |s: Status| -> Vec<String> {
        runs.iter()
            .filter(|r| r.status == s)
            .map(|r| r.seed.to_string())
            .collect()
    };
    let violations = seeds(Status::NotLinearizable);
    if !violations.is_empty() {
        return (
            1,
            format!(
                "{} run(s) found a violation: seed(s) {}",
                violations.len(),
                violations.join(", ")
            ),
        );
    }
    let mut failed = seeds(Status::Failed);
    failed.extend(seeds(Status::Interrupted));
    if !failed.is_empty() || incomplete.is_some() {
        let mut why = Vec::new();
        if !failed.is_empty() {
            why.push(format!(
                "{} run(s) failed or were interrupted: seed(s) {}",
                failed.len(),
                failed.join(", ")
            ));
        }
        if let Some(i) = incomplete {
            why.push(format!("the campaign is incomplete: {i}"));
        }
        return (255, why.join("; "));
    }
    let unknown = seeds(Status::Unknown);
    if !unknown.is_empty() {
        return if allow_unknown {
            (
                0,
                format!(
                    "passed with {} unknown run(s) (seed(s) {}) because of --allow-unknown",
                    unknown.len(),
                    unknown.join(", ")
                ),
            )
        } else {
            (
                2,
                format!(
                    "{} run(s) unknown (a checker limit was reached): seed(s) {}; unknown is \
                     not a pass (--allow-unknown to accept)",
                    unknown.len(),
                    unknown.join(", ")
                ),
            )
        };
    }
    if runs.is_empty() {
        return (0, "no runs to do (an empty shard)".into());
    }
    (0, format!("all {} run(s) linearizable", runs.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seed: u64, status: Status) -> RunRecord {
        RunRecord {
            index: seed,
            seed,
            cell: 0,
            params: BTreeMap::new(),
            status,
            exit_code: None,
            started: String::new(),
            seconds: 0.0,
            ops: None,
            faults: BTreeMap::new(),
            explanation: None,
            run_dir: None,
            pruned: false,
            replay_command: String::new(),
            reproduced: None,
            replay: None,
        }
    }

    #[test]
    fn exit_code_policy() {
        use Status::*;
        let code = |s: &[Status], inc: Option<&str>, allow: bool| {
            let runs: Vec<RunRecord> = s
                .iter()
                .enumerate()
                .map(|(i, &st)| rec(i as u64, st))
                .collect();
            verdict(&runs, inc, allow).0
        };
        assert_eq!(code(&[Linearizable, Linearizable], None, false), 0);
        assert_eq!(code(&[Linearizable, Unknown], None, false), 2);
        assert_eq!(code(&[Linearizable, Unknown], None, true), 0);
        assert_eq!(code(&[Unknown, Failed], None, true), 255);
        assert_eq!(code(&[Unknown, Interrupted], None, false), 255);
        assert_eq!(code(&[Failed, NotLinearizable, Unknown], None, false), 1);
        assert_eq!(code(&[Linearizable], Some("low disk"), false), 255);
        assert_eq!(code(&[NotLinearizable], Some("interrupted"), false), 1);
        assert_eq!(code(&[], None, false), 0);
        let (_, why) = verdict(
            &[rec(7, NotLinearizable), rec(9, NotLinearizable)],
            None,
            false,
        );
        assert!(why.contains("seed(s) 7, 9"), "{why}");
        let (_, why) = verdict(&[rec(3, Unknown)], None, true);
        assert!(why.contains("--allow-unknown"), "{why}");
    }

    #[test]
    fn statuses_from_exit_codes() {
        assert_eq!(Status::from_exit(Some(0), false), Status::Linearizable);
        assert_eq!(Status::from_exit(Some(1), true), Status::NotLinearizable);
        assert_eq!(Status::from_exit(Some(2), false), Status::Unknown);
        assert_eq!(Status::from_exit(Some(255), false), Status::Failed);
        assert_eq!(Status::from_exit(Some(254), false), Status::Failed);
        assert_eq!(Status::from_exit(None, false), Status::Failed);
        assert_eq!(Status::from_exit(None, true), Status::Interrupted);
        let json = serde_json::to_string(&Status::NotLinearizable).unwrap_or_default();
        assert_eq!(json, "\"not-linearizable\"");
    }

    #[test]
    fn failure_from_the_output_of_a_run_without_outcome() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("campaign-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("harness.log"),
            "harness run: seed 3\nharness run: start attempt 1 failed\n\
             harness run: run failed: starting the cluster: node n1 exited\n    log line\n",
        )?;
        let f = read_facts(&dir, Status::Failed);
        assert_eq!(
            f.explanation.as_deref(),
            Some("run failed: starting the cluster: node n1 exited\n    log line")
        );
        assert!(f.run_dir.is_none() && f.ops.is_none());
        std::fs::remove_dir_all(&dir)
    }
}
