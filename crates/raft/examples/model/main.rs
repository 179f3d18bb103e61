//! Exhaustive model checking of the real Raft core with stateright.
//!
//! ```sh
//! cargo run --release -p raft --example model -- check                  # the CI bound
//! cargo run --release -p raft --example model -- check --max-term 3 --max-log 3
//! cargo run --release -p raft --example model -- check --planted all   # the planted-bug table
//! cargo run --release -p raft --example model -- explore               # http://127.0.0.1:3000
//! ```
//!
//! Exit status: 0 when no property is violated, 1 when one is (the shortest trace is printed),
//! 2 on a usage error.

mod spec;

use spec::{Options, Planted};
use std::process::ExitCode;

const USAGE: &str = "usage: model check|explore [--max-term N] [--max-log N] [--clients N] [--ops N]
       [--crashes N] [--disk immediate|task|part] [--disk-queue N] [--lossy] [--duplicating] [--in-flight N] [--heartbeats] [--pre-vote] [--check-quorum] [--election-tick N] [--entries-per-msg N]
       [--planted none|all|entries-first|read-before-noop|vote-ignores-log|commit-earlier-term|vote-before-durable]
       [--threads N] [--timeout SECS] [--addr 127.0.0.1:3000]";

struct Args {
    command: String,
    opts: Options,
    planted_all: bool,
    threads: usize,
    addr: String,
    timeout: Option<std::time::Duration>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let command = it.next().ok_or("no command")?.clone();
    if command != "check" && command != "explore" {
        return Err(format!("unknown command {command:?}"));
    }
    let mut a = Args {
        command,
        opts: Options::default(),
        planted_all: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        addr: "127.0.0.1:3000".to_string(),
        timeout: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--max-term" => a.opts.max_term = num(value()?)?,
            "--max-log" => a.opts.max_log = num(value()?)?,
            "--clients" => a.opts.clients = num(value()?)? as u8,
            "--ops" => a.opts.client_ops = num(value()?)? as u8,
            "--crashes" => a.opts.max_crashes = num(value()?)? as u8,
            "--election-tick" => a.opts.election_tick = num(value()?)?.max(2) as u32,
            "--entries-per-msg" => a.opts.entries_per_msg = num(value()?)?.max(1) as usize,
            "--threads" => a.threads = num(value()?)?.max(1) as usize,
            "--disk-queue" => a.opts.max_disk_queue = num(value()?)? as usize,
            "--timeout" => a.timeout = Some(std::time::Duration::from_secs(num(value()?)?)),
            "--disk" => {
                a.opts.disk_steps = match value()?.as_str() {
                    "immediate" => spec::disk::DiskSteps::Immediate,
                    "task" => spec::disk::DiskSteps::PerTask,
                    "part" => spec::disk::DiskSteps::PerPart,
                    v => return Err(format!("--disk {v}: immediate, task or part")),
                }
            }
            "--duplicating" => a.opts.duplicating = true,
            "--heartbeats" => a.opts.heartbeats = true,
            "--in-flight" => a.opts.max_in_flight = num(value()?)? as usize,
            "--lossy" => a.opts.lossy = true,
            "--pre-vote" => a.opts.pre_vote = true,
            "--check-quorum" => a.opts.check_quorum = true,
            "--addr" => a.addr = value()?,
            "--planted" => {
                let v = value()?;
                if v == "all" {
                    a.planted_all = true;
                } else {
                    a.opts.planted =
                        Planted::parse(&v).ok_or(format!("unknown planted bug {v:?}"))?;
                }
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    spec::actor::quiet_caught_panics();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("model: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if a.command == "explore" {
        use stateright::Model as _;
        println!("{}", a.opts.describe());
        println!("explorer on http://{}", a.addr);
        spec::build(&a.opts).checker().serve(a.addr.as_str());
        return ExitCode::SUCCESS;
    }
    if a.planted_all {
        return table(&a);
    }
    println!("{}", a.opts.describe());
    let out = spec::check(&a.opts, a.threads, true, a.timeout);
    println!(
        "{} states ({} unique), depth {}, {:.2?} ({} threads); examples found: {}",
        out.states,
        out.unique_states,
        out.max_depth,
        out.elapsed,
        a.threads,
        if out.examples.is_empty() {
            "none".to_string()
        } else {
            out.examples.join(", ")
        }
    );
    if out.violations.is_empty() {
        if a.timeout.is_some_and(|t| out.elapsed >= t) {
            println!("time limit reached: the search is NOT complete");
            return ExitCode::from(2);
        }
        println!("no property violated");
        return ExitCode::SUCCESS;
    }
    for (name, len, trace) in &out.violations {
        println!("\nVIOLATED: {name} (shortest trace, {len} steps)\n{trace}");
    }
    ExitCode::from(1)
}

/// Every planted bug at the given bounds: found or not, states, time, trace length.
fn table(a: &Args) -> ExitCode {
    println!("| bug | found | property | bound | states (unique) | time | trace |");
    println!("|---|---|---|---|---|---|---|");
    let mut missed = false;
    for p in Planted::ALL {
        let opts = Options {
            planted: p,
            ..a.opts.clone()
        };
        let out = spec::check(&opts, a.threads, true, a.timeout);
        let (found, prop, len) = match out.violations.first() {
            Some((name, len, _)) => ("yes", *name, len.to_string()),
            None => ("no", "-", "-".to_string()),
        };
        missed |= out.violations.is_empty();
        println!(
            "| {} | {found} | {prop} | terms<={} log<={} crashes<={} | {} ({}) | {:.2?} | {len} |",
            p.name(),
            opts.max_term,
            opts.max_log,
            opts.max_crashes,
            out.states,
            out.unique_states,
            out.elapsed,
        );
    }
    if missed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
