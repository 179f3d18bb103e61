//! `harness report DIR`: rebuilds a run's report.html, or the index of a directory of runs,
//! from the stored files.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run directory (it holds run.json): its report.html is rebuilt. Any other directory
    /// (histories/, a campaign directory): its index.html is rebuilt over every run below it.
    pub dir: PathBuf,
    /// With a directory of runs: rebuild every run's report.html too.
    #[arg(long)]
    pub all: bool,
}

/// Entry point; exit codes: 0 written, 254 usage (no such directory, no run in it), 255 a
/// page could not be written.
pub fn main(args: ReportArgs) -> ExitCode {
    if !args.dir.is_dir() {
        eprintln!("harness report: {} is not a directory", args.dir.display());
        return ExitCode::from(254);
    }
    match run(&args) {
        Ok(Some(written)) => {
            for p in written {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "harness report: no run directory (one holding run.json) in or below {}",
                args.dir.display()
            );
            ExitCode::from(254)
        }
        Err(e) => {
            eprintln!("harness report: {e:#}");
            ExitCode::from(255)
        }
    }
}

fn run(args: &ReportArgs) -> Result<Option<Vec<PathBuf>>> {
    if args.dir.join("run.json").is_file() {
        return Ok(Some(vec![super::write_run_report(&args.dir)?]));
    }
    let runs = super::index::find_runs(&args.dir);
    if runs.is_empty() {
        return Ok(None);
    }
    let mut written = Vec::new();
    if args.all {
        for r in &runs {
            written.push(super::write_run_report(r)?);
        }
    }
    written.push(super::write_index(&args.dir)?);
    Ok(Some(written))
}
