//! `harness campaign merge DIR...`: shard directories into one campaign.json, one summary and one
//! JUnit file. The shards must be of the same campaign (seed base, matrix, run options, runs or
//! duration, shard count) and distinct; a shard that is missing, or that stopped early, makes the
//! merged campaign incomplete (exit 255 unless a violation was found).

use super::args::MergeArgs;
use super::record::{self, Counts};
use super::report::{self, relative_to, CampaignFile};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Entry point of `harness campaign merge`.
pub fn main(args: MergeArgs) -> ExitCode {
    let shards = match read_shards(&args.dirs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("harness campaign merge: {e:#}");
            return ExitCode::from(254);
        }
    };
    let out = match std::path::absolute(&args.out) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("harness campaign merge: --out {}: {e}", args.out.display());
            return ExitCode::from(254);
        }
    };
    let merged = match merge(&shards, &args.dirs, &out, args.allow_unknown) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("harness campaign merge: {e:#}");
            return ExitCode::from(254);
        }
    };
    match write(&merged, &out, args.junit.as_deref()) {
        Ok(()) => ExitCode::from(merged.exit_code),
        Err(e) => {
            eprintln!("harness campaign merge: {e:#}");
            ExitCode::from(255)
        }
    }
}

fn read_shards(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, CampaignFile)>> {
    dirs.iter()
        .map(|d| {
            let abs = std::path::absolute(d).with_context(|| d.display().to_string())?;
            Ok((abs.clone(), CampaignFile::read(&abs)?))
        })
        .collect()
}

/// Merges shard campaign files (each with its absolute directory) into one, whose run
/// directories are relative to `out`.
pub fn merge(
    shards: &[(PathBuf, CampaignFile)],
    given: &[PathBuf],
    out: &Path,
    allow_unknown: bool,
) -> Result<CampaignFile> {
    let Some((first_dir, first)) = shards.first() else {
        anyhow::bail!("no shard directories given");
    };
    let count = first.shard.map(|s| s.count).unwrap_or(1);
    let mut seen = BTreeSet::new();
    let mut seen_runs = BTreeSet::new();
    let mut runs = Vec::new();
    let mut stopped = Vec::new();
    let mut incomplete = Vec::new();
    for (dir, c) in shards {
        let differs = |what: &str| {
            anyhow::anyhow!(
                "{} and {} are not shards of one campaign: their {what} differ",
                first_dir.display(),
                dir.display()
            )
        };
        if c.seed_base != first.seed_base {
            return Err(differs("seed bases"));
        }
        if c.matrix != first.matrix {
            return Err(differs("matrices"));
        }
        if c.run_options != first.run_options {
            return Err(differs("run options"));
        }
        if (c.runs_requested, &c.duration) != (first.runs_requested, &first.duration) {
            return Err(differs("--runs / --duration"));
        }
        if c.shard.map(|s| s.count).unwrap_or(1) != count {
            return Err(differs("shard counts"));
        }
        let index = c.shard.map(|s| s.index).unwrap_or(0);
        if !seen.insert(index) {
            anyhow::bail!(
                "shard {index}/{count} is given twice (the second time as {})",
                dir.display()
            );
        }
        if let Some(s) = &c.stopped {
            stopped.push(format!("shard {index}: {s}"));
            if !s.starts_with("stop-on-failure") {
                incomplete.push(format!("shard {index} stopped early ({s})"));
            }
        }
        if c.state != "finished" {
            incomplete.push(format!(
                "shard {index} did not finish (its campaign.json says {:?})",
                c.state
            ));
        }
        for r in &c.runs {
            if !seen_runs.insert(r.index) {
                anyhow::bail!("run r{} appears in two shards", r.index);
            }
            let mut r = r.clone();
            let fix = |p: &String| relative_to(out, &dir.join(p)).display().to_string();
            r.run_dir = r.run_dir.as_ref().map(fix);
            if let Some(rep) = &mut r.replay {
                rep.run_dir = rep.run_dir.as_ref().map(fix);
            }
            runs.push(r);
        }
    }
    let missing: Vec<u64> = (0..count).filter(|i| !seen.contains(i)).collect();
    if !missing.is_empty() {
        incomplete.push(format!(
            "shard(s) {} of {count} missing",
            missing
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    runs.sort_by_key(|r| r.index);
    let allow_unknown = allow_unknown || shards.iter().all(|(_, c)| c.allow_unknown);
    let incomplete_text = (!incomplete.is_empty()).then(|| incomplete.join("; "));
    let (exit_code, explanation) =
        record::verdict(&runs, incomplete_text.as_deref(), allow_unknown);
    let not_started: Option<u64> = shards.iter().map(|(_, c)| c.runs_not_started).sum();
    Ok(CampaignFile {
        format: report::FORMAT.into(),
        version: report::VERSION,
        harness_version: env!("CARGO_PKG_VERSION").into(),
        state: "finished".into(),
        started: shards
            .iter()
            .map(|(_, c)| c.started.clone())
            .min()
            .unwrap_or_default(),
        finished: shards.iter().filter_map(|(_, c)| c.finished.clone()).max(),
        elapsed_seconds: shards
            .iter()
            .map(|(_, c)| c.elapsed_seconds)
            .fold(0.0, f64::max),
        seed_base: first.seed_base,
        runs_requested: first.runs_requested,
        duration: first.duration.clone(),
        shard: None,
        matrix: first.matrix.clone(),
        cells: first.cells,
        run_options: first.run_options.clone(),
        parallel: shards.iter().map(|(_, c)| c.parallel).sum(),
        allow_unknown,
        replay_violations: first.replay_violations,
        keep_passing: first.keep_passing,
        stopped: (!stopped.is_empty()).then(|| stopped.join("; ")),
        runs_not_started: not_started,
        counts: Counts::of(&runs),
        pruned: shards.iter().map(|(_, c)| c.pruned).sum(),
        exit_code,
        explanation,
        merged_from: given.iter().map(|d| d.display().to_string()).collect(),
        shards_missing: missing,
        runs,
    })
}

fn write(merged: &CampaignFile, out: &Path, junit: Option<&Path>) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    merged.write(out)?;
    if let Some(j) = junit {
        super::junit::write(merged, out, j)?;
    }
    let mut stdout = std::io::stdout().lock();
    report::print_summary(merged, out, &mut stdout);
    if let Some(j) = junit {
        use std::io::Write;
        let _ = writeln!(stdout, "junit: {}", j.display());
    }
    Ok(())
}
