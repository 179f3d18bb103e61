//! `harness bench` options and their validation (a usage error exits 254 before anything starts).

use crate::system::Spec;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `harness bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Systems to compare, comma-separated built-in names or spec files; ratios are to the first.
    #[arg(long, value_delimiter = ',', default_value = "raftkv")]
    pub system: Vec<String>,
    /// Nodes per cluster: one number for every system, or one per system (`3,3,1`).
    #[arg(long, value_delimiter = ',', default_value = "3")]
    pub nodes: Vec<usize>,
    /// Closed-loop client counts, one setting each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Measured time per setting and round.
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Unmeasured load before each measurement (connections opened, caches warm).
    #[arg(long, default_value = "1s", value_parser = crate::duration::parse)]
    pub warmup: Duration,
    /// Operation mixes, one setting each: `write`, `read`, or `R/W` (percent reads / writes,
    /// e.g. `50/50`).
    #[arg(long, value_delimiter = ',', default_value = "write,read")]
    pub mix: Vec<String>,
    /// Bytes per written value.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Distinct keys the clients spread over (each written once before the first measurement).
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Rounds: every setting runs once per round for each system in turn (A B A B ...), so
    /// drift of a shared machine hits every system alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Time limit of one operation; an operation that takes longer counts as an error.
    #[arg(long, default_value = "2s", value_parser = crate::duration::parse)]
    pub op_timeout: Duration,
    /// Instead of throughput: time from a leader fault (SIGKILL or SIGSTOP) under a write load to
    /// the first acknowledged write, over `--trials` trials.
    #[arg(long, value_enum)]
    pub failover: Option<FailoverMode>,
    /// Time limit of one write attempt in failover mode. A store may hold a write to a dead
    /// leader until the client gives up, so this bounds the resolution of the failover times.
    #[arg(long, default_value = "100ms", value_parser = crate::duration::parse)]
    pub failover_op_timeout: Duration,
    /// Failover trials per system.
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Also measure every system through the harness's proxy (no faults): system X gets a
    /// second cluster, `X+proxy`, right after it, whose clients and peer links all pass through
    /// the proxy as in `harness run`; the ratio column then gives the proxy's cost
    #[arg(long)]
    pub through_proxy: bool,
    /// The node program for every system whose spec runs `{bin}` (replaces the spec's `bin`).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Extra argument for every node of every system (repeatable; use `--node-arg=--flag`).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Time allowed for a cluster to start and elect a leader.
    #[arg(long, default_value = "20s", value_parser = crate::duration::parse)]
    pub start_timeout: Duration,
    /// Also write the results as JSON to this file (`-` for stdout, instead of the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where the node data directories and logs go (`<out>/bench-<UTC time>/`).
    #[arg(long, default_value = "histories")]
    pub out: PathBuf,
    /// Keep the node data directories (only the logs are kept by default).
    #[arg(long)]
    pub keep_data: bool,
}

/// Which fault `--failover` injects on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// SIGKILL, then restart on the same data directory after the trial.
    Kill,
    /// SIGSTOP, then SIGCONT after the trial.
    Stop,
}

/// The share of reads in an operation mix, with the name it was given.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mix {
    pub name: String,
    /// Percent of operations that are reads (0..=100); the rest are writes.
    pub read_percent: u32,
}

impl Mix {
    pub fn parse(s: &str) -> Result<Mix, String> {
        let read_percent = match s {
            "write" => 0,
            "read" => 100,
            other => {
                let bad = || {
                    format!(
                        "invalid --mix {other:?}: expected write, read or R/W in percent (50/50)"
                    )
                };
                let (r, w) = other.split_once('/').ok_or_else(bad)?;
                let r: u32 = r.trim().parse().map_err(|_| bad())?;
                let w: u32 = w.trim().parse().map_err(|_| bad())?;
                if r + w != 100 {
                    return Err(format!(
                        "invalid --mix {other:?}: reads and writes must add up to 100"
                    ));
                }
                r
            }
        };
        Ok(Mix {
            name: s.to_string(),
            read_percent,
        })
    }
}

/// One system to measure.
#[derive(Debug, Clone)]
pub struct SystemConf {
    pub spec: Spec,
    pub nodes: usize,
}

/// Checked options.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub systems: Vec<SystemConf>,
    pub clients: Vec<usize>,
    pub mixes: Vec<Mix>,
    pub duration: Duration,
    pub warmup: Duration,
    pub value_size: usize,
    pub keys: usize,
    pub rounds: usize,
    pub op_timeout: Duration,
    pub failover: Option<FailoverMode>,
    pub failover_op_timeout: Duration,
    pub trials: usize,
    pub through_proxy: bool,
    pub node_bin: Option<PathBuf>,
    pub node_args: Vec<String>,
    pub start_timeout: Duration,
    pub json: Option<PathBuf>,
    pub out: PathBuf,
    pub keep_data: bool,
}

impl BenchArgs {
    /// Checks the options; the message says what is wrong.
    pub fn validate(&self) -> Result<BenchConfig, String> {
        if self.system.is_empty() || self.system.iter().any(|s| s.trim().is_empty()) {
            return Err("--system: give one or more system names or spec files".into());
        }
        if self.nodes.len() != 1 && self.nodes.len() != self.system.len() {
            return Err(format!(
                "--nodes: give one count for all systems or one per system ({} systems, {} counts)",
                self.system.len(),
                self.nodes.len()
            ));
        }
        let mut systems = Vec::new();
        for (i, name) in self.system.iter().enumerate() {
            let spec = Spec::load(name.trim()).map_err(|e| e.to_string())?;
            let nodes = if self.nodes.len() == 1 {
                self.nodes[0]
            } else {
                self.nodes[i]
            };
            if nodes == 0 || nodes > 9 {
                return Err(format!("--nodes {nodes} for {name}: must be 1 to 9"));
            }
            systems.push(SystemConf { spec, nodes });
        }
        if self.clients.is_empty() || self.clients.iter().any(|&c| c == 0 || c > 1024) {
            return Err("--clients: each count must be 1 to 1024".into());
        }
        let mixes = self
            .mix
            .iter()
            .map(|m| Mix::parse(m.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if mixes.is_empty() {
            return Err("--mix: give at least one mix".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        if self.op_timeout < Duration::from_millis(10)
            || self.failover_op_timeout < Duration::from_millis(10)
        {
            return Err("--op-timeout and --failover-op-timeout must be at least 10ms".into());
        }
        if self.value_size == 0 || self.value_size > 1 << 20 {
            return Err("--value-size must be 1 to 1048576 bytes".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if self.failover.is_some() && self.trials == 0 {
            return Err("--trials must be at least 1".into());
        }
        Ok(BenchConfig {
            systems,
            clients: self.clients.clone(),
            mixes,
            duration: self.duration,
            warmup: self.warmup,
            value_size: self.value_size,
            keys: self.keys,
            rounds: self.rounds,
            op_timeout: self.op_timeout,
            failover: self.failover,
            failover_op_timeout: self.failover_op_timeout,
            trials: self.trials,
            through_proxy: self.through_proxy,
            node_bin: self.node_bin.clone(),
            node_args: self.node_args.clone(),
            start_timeout: self.start_timeout,
            json: self.json.clone(),
            out: self.out.clone(),
            keep_data: self.keep_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes() {
        assert_eq!(Mix::parse("write").map(|m| m.read_percent), Ok(0));
        assert_eq!(Mix::parse("read").map(|m| m.read_percent), Ok(100));
        assert_eq!(Mix::parse("90/10").map(|m| m.read_percent), Ok(90));
        assert!(Mix::parse("50/40").is_err());
        assert!(Mix::parse("scan").is_err());
    }
}
