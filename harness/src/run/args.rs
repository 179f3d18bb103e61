//! `harness run` options: what the user typed (clap), then a validated [`RunConfig`] with no side
//! effects (two-stage parsing, as ripgrep's lowargs/hiargs).

use crate::duration;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `harness run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Number of nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Number of concurrent client workers.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// How long the clients run (e.g. 30s, 2m); recovery and final reads come after.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub time_limit: Duration,
    /// Faults to inject: a comma-separated subset of pause,kill,partition,delay, or all, or none.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Mean time between the start of one fault and the start of the next.
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    pub nemesis_interval: Duration,
    /// Seed for the fault schedule and every worker's op sequence (random when absent; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of keys the workers spread their operations over.
    #[arg(long, default_value_t = 5)]
    pub keys: usize,
    /// Node binary: anything that accepts raftkv's flags and speaks the client protocol
    /// [default: `raftkv` next to the harness executable].
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Where run directories are created; `<out>/latest` points at the newest.
    #[arg(long, default_value = "histories")]
    pub out: PathBuf,
    /// Per-operation timeout; an operation that times out is recorded as `info` (indefinite).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    pub op_timeout: Duration,
    /// Total request rate limit over all workers, in ops/s (0: as fast as the cluster answers).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Quiet period after everything is healed, before the final reads.
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub recovery: Duration,
    /// How long the final reads may take before the cluster counts as not recovered.
    #[arg(long, default_value = "20s", value_parser = duration::parse)]
    pub final_timeout: Duration,
    /// How long a node may take to answer `status` after it is started.
    #[arg(long, default_value = "15s", value_parser = duration::parse)]
    pub start_timeout: Duration,
    /// What a healed drop-and-hold link does with the bytes it held: deliver them late (as TCP
    /// retransmission would) or reset the connections.
    #[arg(long, value_enum, default_value_t = HealMode::Deliver)]
    pub heal: HealMode,
    /// Time limit for the linearizability check (the verdict is `unknown` past it).
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub check_timeout: Duration,
    /// Extra argument passed to every node (repeatable), e.g. `--node-arg=--verbose`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

/// What happens to held bytes when a drop-and-hold link is healed.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealMode {
    /// Deliver the held bytes late.
    Deliver,
    /// Reset the connections that held bytes.
    Reset,
}

/// A fault kind the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// SIGSTOP a node, SIGCONT later.
    Pause,
    /// SIGKILL a node, restart it later on the same data directory.
    Kill,
    /// Cut links between nodes.
    Partition,
    /// Add latency with jitter to some links.
    Delay,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Partition,
        FaultKind::Delay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Partition => "partition",
            FaultKind::Delay => "delay",
        }
    }
}

/// Validated run configuration.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub nodes: usize,
    pub clients: usize,
    #[serde(serialize_with = "ser_duration")]
    pub time_limit: Duration,
    pub nemesis: Vec<FaultKind>,
    #[serde(serialize_with = "ser_duration")]
    pub nemesis_interval: Duration,
    pub seed: u64,
    pub keys: usize,
    pub node_bin: PathBuf,
    pub out: PathBuf,
    #[serde(serialize_with = "ser_duration")]
    pub op_timeout: Duration,
    pub rate: f64,
    #[serde(serialize_with = "ser_duration")]
    pub recovery: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub final_timeout: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub start_timeout: Duration,
    pub heal: HealMode,
    #[serde(serialize_with = "ser_duration")]
    pub check_timeout: Duration,
    pub node_args: Vec<String>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&duration::format(*d))
}

/// A usage error: exit code 254.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the `--nemesis` list.
pub fn parse_nemesis(s: &str) -> Result<Vec<FaultKind>, UsageError> {
    let mut kinds = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => kinds.extend(FaultKind::ALL),
            "none" => {}
            other => {
                let kind = FaultKind::ALL
                    .into_iter()
                    .find(|k| k.name() == other)
                    .ok_or_else(|| {
                        UsageError(format!(
                            "unknown nemesis {other:?}: expected pause, kill, partition, delay, all or none"
                        ))
                    })?;
                kinds.push(kind);
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

impl RunArgs {
    /// Validates the options. `default_node_bin` is used when `--node-bin` is absent; `random_seed`
    /// when `--seed` is.
    pub fn validate(
        &self,
        default_node_bin: impl FnOnce() -> PathBuf,
        random_seed: impl FnOnce() -> u64,
    ) -> Result<RunConfig, UsageError> {
        let usage = |m: &str| Err(UsageError(m.to_string()));
        if self.nodes == 0 || self.nodes > 64 {
            return usage("--nodes must be between 1 and 64");
        }
        if self.clients == 0 || self.clients > 1000 {
            return usage("--clients must be between 1 and 1000");
        }
        if self.keys == 0 || self.keys > 100_000 {
            return usage("--keys must be between 1 and 100000");
        }
        if self.time_limit.is_zero() {
            return usage("--time-limit must be positive");
        }
        if self.nemesis_interval < Duration::from_millis(100) {
            return usage("--nemesis-interval must be at least 100ms");
        }
        if self.op_timeout < Duration::from_millis(10) {
            return usage("--op-timeout must be at least 10ms");
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return usage("--rate must be a non-negative number of ops/s");
        }
        if self.start_timeout.is_zero() || self.final_timeout.is_zero() {
            return usage("--start-timeout and --final-timeout must be positive");
        }
        let nemesis = parse_nemesis(&self.nemesis)?;
        Ok(RunConfig {
            nodes: self.nodes,
            clients: self.clients,
            time_limit: self.time_limit,
            nemesis,
            nemesis_interval: self.nemesis_interval,
            seed: self.seed.unwrap_or_else(random_seed),
            keys: self.keys,
            node_bin: self.node_bin.clone().unwrap_or_else(default_node_bin),
            out: self.out.clone(),
            op_timeout: self.op_timeout,
            rate: self.rate,
            recovery: self.recovery,
            final_timeout: self.final_timeout,
            start_timeout: self.start_timeout,
            heal: self.heal,
            check_timeout: self.check_timeout,
            node_args: self.node_args.clone(),
        })
    }
}

/// The command line that replays this run.
pub fn replay_command(cfg: &RunConfig) -> String {
    let d = duration::format;
    let nemesis = if cfg.nemesis.is_empty() {
        "none".to_string()
    } else {
        cfg.nemesis
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut s = format!(
        "harness run --seed {} --nodes {} --clients {} --keys {} --time-limit {} --nemesis {} \
         --nemesis-interval {} --op-timeout {} --node-bin {}",
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        d(cfg.time_limit),
        nemesis,
        d(cfg.nemesis_interval),
        d(cfg.op_timeout),
        cfg.node_bin.display()
    );
    if cfg.rate > 0.0 {
        s.push_str(&format!(" --rate {}", cfg.rate));
    }
    if cfg.heal != HealMode::Deliver {
        s.push_str(" --heal reset");
    }
    for a in &cfg.node_args {
        s.push_str(&format!(" --node-arg={a}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists() {
        assert_eq!(parse_nemesis("all").map(|v| v.len()).ok(), Some(4));
        assert_eq!(parse_nemesis("none").map(|v| v.len()).ok(), Some(0));
        assert_eq!(
            parse_nemesis("kill,pause,kill").ok(),
            Some(vec![FaultKind::Pause, FaultKind::Kill])
        );
        assert!(parse_nemesis("kill,explode").is_err());
    }
}
