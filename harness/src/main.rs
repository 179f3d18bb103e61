//! `harness`: run chaos tests against a KV cluster and check recorded histories.

mod bench;
mod campaign;
mod check_cmd;
mod duration;
mod report;
mod run;
mod system;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Chaos-test a replicated KV store and check its history for linearizability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once; the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run a chaos test: start a cluster, inject faults, record and check the history.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::RunArgs),
    /// Check stored histories (files or run directories) for linearizability.
    Check(check_cmd::CheckArgs),
    /// Run many chaos tests (a seed loop over a matrix of run options, sharded, in parallel) and
    /// gate CI on them: summary, campaign.json, JUnit XML.
    Campaign(campaign::CampaignArgs),
    /// Rebuild a run's report.html, or the index.html of a directory of runs, from the stored
    /// files.
    Report(report::ReportArgs),
    /// Measure throughput and latency (or leader failover) of one or more systems side by side,
    /// with the same clients, in one run.
    #[command(after_help = bench::AFTER_HELP)]
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(254)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Campaign(args) => campaign::main(args),
        Command::Report(args) => report::cli::main(args),
        Command::Bench(args) => bench::main(args),
    }
}
