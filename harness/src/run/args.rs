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
    /// Faults to inject: a comma-separated subset of pause, kill, kill-all, partition,
    /// client-partition, delay, power-cut, disk-error, bitflip, membership; or all (the first
    /// six), or none, or a mix (`all,membership`). Every selected kind is dealt at least once per
    /// run when the run is long enough (the schedule deals them like a shuffled deck), and
    /// faults may overlap. power-cut and disk-error mount each node's data directory through
    /// lazyfs (FUSE; docs/disk-faults.md); membership needs a system with admin operations and a
    /// `[membership]` table (raftkv; docs/plugging-in.md).
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Chance that a second fault starts while one is in force (0 disables overlapping faults).
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// How clients pick the node for an operation. `bound` (default, as Jepsen): each client has
    /// a home node and sends every operation there first, following a `not_leader` hint for that
    /// operation only, so every node on every side of a partition keeps receiving traffic.
    /// `leader`: a client stays on whichever node last answered (faster, blind to stale reads on
    /// an isolated old leader).
    #[arg(long, value_enum, default_value_t = ClientMode::Bound)]
    pub client_mode: ClientMode,
    /// Mean time between the start of one fault and the start of the next.
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub nemesis_interval: Duration,
    /// Seed for the fault schedule and every worker's op sequence (random when absent; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of keys the workers spread their operations over.
    #[arg(long, default_value_t = 5)]
    pub keys: usize,
    /// The store under test: a built-in system (raftkv, etcd, redis) or a spec file (a path
    /// ending in .toml; see docs/plugging-in.md).
    #[arg(long, default_value = "raftkv")]
    pub system: String,
    /// Sets an option of the system's client adapter, over the spec's `[client]` table
    /// (repeatable): `KEY=VALUE`, the value read as TOML (`true`, `3`, `"text"`), else as a
    /// string. E.g. `--client-opt read_from_replicas=false` for Redis.
    #[arg(long = "client-opt", value_name = "KEY=VALUE")]
    pub client_opts: Vec<String>,
    /// The program the system spec calls `{bin}` (for raftkv: `raftkv` next to the harness
    /// executable): e.g. your own node binary that takes raftkv's flags.
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
    /// End the run as soon as the live check finds a violation (exit 1): no recovery, no final
    /// reads; the history, the fault events and the node logs up to that moment are kept.
    #[arg(long)]
    pub stop_on_violation: bool,
    /// Extra argument passed to every node (repeatable), e.g. `--node-arg=--verbose`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Mount every node's data directory through lazyfs (FUSE) even when no selected fault
    /// needs it (power-cut and disk-error always do): to measure its cost, or to look at
    /// `<run>/disks`. See docs/disk-faults.md.
    #[arg(long)]
    pub lazyfs: bool,
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

/// How clients choose the node for each operation.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientMode {
    /// Home node first, every operation; a leader hint is followed for that operation only.
    Bound,
    /// Stay on the node that last answered; follow leader hints for good.
    Leader,
}

impl ClientMode {
    pub fn name(self) -> &'static str {
        match self {
            ClientMode::Bound => "bound",
            ClientMode::Leader => "leader",
        }
    }
}

/// A fault kind the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGSTOP a set of nodes (one, the leader, a minority, a majority, all), SIGCONT later.
    Pause,
    /// SIGKILL a set of nodes, restart them later on the same data directories.
    Kill,
    /// SIGKILL every node at once, then restart them all.
    KillAll,
    /// Cut links between nodes: symmetric shapes, and one-way cuts.
    Partition,
    /// Cut some clients off from some nodes.
    ClientPartition,
    /// Add latency with jitter to some links.
    Delay,
    /// SIGKILL a set of nodes, drop everything their filesystems never made durable, restart.
    PowerCut,
    /// Make one node's writes or fsyncs fail with EIO or ENOSPC for a while.
    DiskError,
    /// Stop one node, flip one bit of one of its files, restart it.
    Bitflip,
    /// Remove a member (the leader, half the time), wipe it and add it back as a new member;
    /// or hand leadership to another node. Needs the system's admin operations.
    Membership,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::KillAll,
        FaultKind::Partition,
        FaultKind::ClientPartition,
        FaultKind::Delay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::KillAll => "kill-all",
            FaultKind::Partition => "partition",
            FaultKind::ClientPartition => "client-partition",
            FaultKind::Delay => "delay",
            FaultKind::PowerCut => "power-cut",
            FaultKind::DiskError => "disk-error",
            FaultKind::Bitflip => "bitflip",
            FaultKind::Membership => "membership",
        }
    }

    /// Kinds that are named one by one, never part of `all`: the disk faults (two need FUSE)
    /// and membership changes (a store needs admin operations for them).
    pub const OPT_IN: [FaultKind; 4] = [
        FaultKind::PowerCut,
        FaultKind::DiskError,
        FaultKind::Bitflip,
        FaultKind::Membership,
    ];

    /// Whether injecting this kind needs each node's data directory mounted through lazyfs.
    pub fn needs_lazyfs(self) -> bool {
        matches!(self, FaultKind::PowerCut | FaultKind::DiskError)
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
    pub overlap: f64,
    pub client_mode: ClientMode,
    #[serde(serialize_with = "ser_duration")]
    pub nemesis_interval: Duration,
    pub seed: u64,
    pub keys: usize,
    /// What `--system` named (a built-in name or a path).
    pub system: String,
    #[serde(skip)]
    pub spec: crate::system::Spec,
    pub node_bin: Option<PathBuf>,
    pub client_opts: Vec<String>,
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
    pub stop_on_violation: bool,
    pub node_args: Vec<String>,
    /// Whether node data directories are lazyfs mounts (asked for, or needed by a fault).
    pub lazyfs: bool,
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
                    .chain(FaultKind::OPT_IN)
                    .find(|k| k.name() == other)
                    .ok_or_else(|| {
                        UsageError(format!(
                            "unknown nemesis {other:?}: expected pause, kill, kill-all, partition, \
                             client-partition, delay, power-cut, disk-error, bitflip, membership, all \
                             or none"
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
    /// Validates the options and loads the system spec; `random_seed` is used when `--seed` is
    /// absent.
    pub fn validate(&self, random_seed: impl FnOnce() -> u64) -> Result<RunConfig, UsageError> {
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
        if !(0.0..=1.0).contains(&self.overlap) {
            return usage("--overlap must be between 0 and 1");
        }
        let nemesis = parse_nemesis(&self.nemesis)?;
        let mut spec =
            crate::system::Spec::load(&self.system).map_err(|e| UsageError(e.to_string()))?;
        for opt in &self.client_opts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| UsageError(format!("--client-opt {opt:?}: expected KEY=VALUE")))?;
            let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(v.to_string()));
            spec.client.insert(k.trim().to_string(), value);
        }
        crate::system::build_adapter(&spec).map_err(|e| UsageError(e.to_string()))?;
        if nemesis.contains(&FaultKind::Membership) && spec.membership.is_none() {
            return Err(UsageError(format!(
                "--nemesis membership: system {} has no [membership] table (how a wiped node \
                 rejoins as a new member; see docs/plugging-in.md)",
                spec.name
            )));
        }
        Ok(RunConfig {
            nodes: self.nodes,
            clients: self.clients,
            time_limit: self.time_limit,
            nemesis: nemesis.clone(),
            overlap: self.overlap,
            client_mode: self.client_mode,
            nemesis_interval: self.nemesis_interval,
            seed: self.seed.unwrap_or_else(random_seed),
            keys: self.keys,
            system: self.system.clone(),
            spec,
            node_bin: self.node_bin.clone(),
            client_opts: self.client_opts.clone(),
            out: self.out.clone(),
            op_timeout: self.op_timeout,
            rate: self.rate,
            recovery: self.recovery,
            final_timeout: self.final_timeout,
            start_timeout: self.start_timeout,
            heal: self.heal,
            check_timeout: self.check_timeout,
            stop_on_violation: self.stop_on_violation,
            node_args: self.node_args.clone(),
            lazyfs: self.lazyfs || nemesis.iter().any(|k| k.needs_lazyfs()),
        })
    }
}

/// The command line that replays this run: every option, each argument shell-quoted.
pub fn replay_command(cfg: &RunConfig) -> String {
    let d = |x: Duration| duration::format(x);
    let nemesis = if cfg.nemesis.is_empty() {
        "none".to_string()
    } else {
        cfg.nemesis
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut argv: Vec<String> = vec!["harness".into(), "run".into()];
    let mut opt = |name: &str, value: String| {
        argv.push(format!("--{name}"));
        argv.push(value);
    };
    opt("seed", cfg.seed.to_string());
    opt("nodes", cfg.nodes.to_string());
    opt("clients", cfg.clients.to_string());
    opt("keys", cfg.keys.to_string());
    opt("time-limit", d(cfg.time_limit));
    opt("nemesis", nemesis);
    opt("nemesis-interval", d(cfg.nemesis_interval));
    opt("overlap", cfg.overlap.to_string());
    opt("client-mode", cfg.client_mode.name().into());
    opt("op-timeout", d(cfg.op_timeout));
    opt("rate", cfg.rate.to_string());
    opt("recovery", d(cfg.recovery));
    opt("final-timeout", d(cfg.final_timeout));
    opt("start-timeout", d(cfg.start_timeout));
    opt(
        "heal",
        match cfg.heal {
            HealMode::Deliver => "deliver",
            HealMode::Reset => "reset",
        }
        .into(),
    );
    opt("check-timeout", d(cfg.check_timeout));
    opt("system", cfg.system.clone());
    for c in &cfg.client_opts {
        opt("client-opt", c.clone());
    }
    if let Some(b) = &cfg.node_bin {
        opt("node-bin", b.display().to_string());
    }
    opt("out", cfg.out.display().to_string());
    if cfg.stop_on_violation {
        argv.push("--stop-on-violation".into());
    }
    for a in &cfg.node_args {
        argv.push(format!("--node-arg={a}"));
    }
    if cfg.lazyfs && !cfg.nemesis.iter().any(|k| k.needs_lazyfs()) {
        argv.push("--lazyfs".into());
    }
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `s` for a POSIX shell: as is when it only holds safe characters, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists() {
        assert_eq!(parse_nemesis("all").map(|v| v.len()).ok(), Some(6));
        assert_eq!(
            parse_nemesis("kill-all,client-partition").ok(),
            Some(vec![FaultKind::KillAll, FaultKind::ClientPartition])
        );
        assert_eq!(parse_nemesis("none").map(|v| v.len()).ok(), Some(0));
        assert_eq!(
            parse_nemesis("kill,pause,kill").ok(),
            Some(vec![FaultKind::Pause, FaultKind::Kill])
        );
        assert!(parse_nemesis("kill,explode").is_err());
        assert_eq!(
            parse_nemesis("all,power-cut").map(|v| v.len()).ok(),
            Some(7),
            "disk faults are named, not part of all"
        );
        assert_eq!(
            parse_nemesis("bitflip,disk-error").ok(),
            Some(vec![FaultKind::DiskError, FaultKind::Bitflip])
        );
        assert_eq!(
            parse_nemesis("all,membership")
                .ok()
                .and_then(|v| v.last().copied()),
            Some(FaultKind::Membership),
            "membership is named, not part of all"
        );
    }

    #[test]
    fn membership_needs_a_membership_table() {
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let parse = |system: &str| {
            let cli = <Cli as clap::Parser>::try_parse_from([
                "run",
                "--nemesis",
                "membership",
                "--system",
                system,
            ])
            .map_err(|e| UsageError(e.to_string()))?;
            cli.run.validate(|| 1).map(|c| c.nemesis)
        };
        assert_eq!(parse("raftkv").ok(), Some(vec![FaultKind::Membership]));
        let err = parse("etcd").err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("no [membership] table"), "{err}");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--node-arg=--verbose"), "--node-arg=--verbose");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
