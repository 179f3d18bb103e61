//! `harness check`: re-check stored histories.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// History files or run directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(_args: CheckArgs) -> ExitCode {
    eprintln!("harness check: not implemented yet");
    ExitCode::from(255)
}
