//! `harness campaign`: many `harness run`s in a row or side by side (a seed loop over a matrix of
//! options, sharded across machines), with an exit-code policy for CI, a summary, campaign.json,
//! JUnit XML, re-runs of violations, and care for the disk. See docs/campaign.md.
//!
//! Each run is a child process, `harness run` of this same executable, with its own seed and its
//! own `--out` under the campaign directory: the run module keeps process-global state (signal
//! handlers, the node registry, the proxy logger), so runs are never called in-process, and
//! `--parallel` is safe because processes share nothing but the file system (distinct
//! directories) and the port space (each run picks free ports and retries on a clash).
//!
//! - [`args`]: options, and the validated plan (which runs, which seeds, which command lines);
//! - [`matrix`]: matrix dimensions and cells;
//! - [`exec`]: the main loop; [`children`]: the child processes and how they are taken down;
//! - [`record`]: what is kept of each run, and the exit-code policy;
//! - [`report`]: campaign.json and the summary table; [`junit`]: the JUnit file;
//! - [`disk`]: free space, pruning, log caps; [`progress`]: the progress display;
//! - [`merge`]: `harness campaign merge`.

pub mod args;
mod children;
mod disk;
mod exec;
mod junit;
mod matrix;
mod merge;
mod progress;
mod record;
mod report;

pub use args::CampaignArgs;
use args::CampaignCommand;
use std::process::ExitCode;

/// Entry point of `harness campaign` (and `harness campaign merge`).
pub fn main(args: CampaignArgs) -> ExitCode {
    match args.command {
        Some(CampaignCommand::Merge(m)) => merge::main(m),
        None => exec::main(args.opts),
    }
}
