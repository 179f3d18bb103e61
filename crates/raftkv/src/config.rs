//! Command line and validated node configuration.
//!
//! Two stages, as in ripgrep: [`Args`] is what the user typed (clap), [`NodeConfig`] is the
//! checked result the rest of the node uses. Parsing has no side effects.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use raft::NodeId;

/// The `raftkv` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "raftkv",
    version,
    about = "A Raft-replicated key-value node (client protocol: docs/protocol.md)"
)]
pub struct Args {
    /// This node's id: `n` followed by a positive number without leading zeros (n1, n2, ...).
    #[arg(long)]
    pub id: String,
    /// Cluster id; peers with another cluster id are refused.
    #[arg(long)]
    pub cluster_id: String,
    /// Address of the client (JSON lines) listener.
    #[arg(long)]
    pub client: String,
    /// Address of the peer listener.
    #[arg(long)]
    pub peer_listen: String,
    /// A peer, as ID=ADDR: where this node dials it (may be a proxy). Repeat per peer.
    #[arg(long = "peer", value_name = "ID=ADDR")]
    pub peers: Vec<String>,
    /// Directory of the durable log, hard state and snapshots (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Minimum election timeout; the actual one is random in [T, 2T).
    #[arg(long, default_value_t = 300)]
    pub election_timeout_ms: u64,
    /// Leader heartbeat interval.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Take a snapshot and compact the log every N applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Client address announced to peers for `not_leader` hints (default: the bound --client
    /// address). Set it when clients reach this node through a proxy.
    #[arg(long, value_name = "ADDR")]
    pub advertise_client: Option<String>,
    /// Overrides the client address announced by a peer, as ID=ADDR. Repeatable.
    #[arg(long = "peer-client", value_name = "ID=ADDR")]
    pub peer_clients: Vec<String>,
    /// A request with no outcome after this long is answered `timeout`.
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// Log level: debug, info, warn or error.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Start as a new member of an existing cluster: with no configuration, the node never
    /// campaigns nor votes and waits for a leader to add it (`add_member`). Only takes effect
    /// on an empty data directory, which then remembers it (a `JOINED` file) across restarts;
    /// ignored, with a warning, on a data directory that already holds state.
    #[arg(long)]
    pub join: bool,
}

/// A configuration error, reported before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid node id {0:?}: expected `n` followed by a positive number, e.g. n1")]
    NodeId(String),
    #[error("invalid --{flag} {value:?}: expected ID=ADDR")]
    PeerSyntax { flag: &'static str, value: String },
    #[error("peer {0} is listed twice")]
    DuplicatePeer(String),
    #[error("--peer lists this node ({0}) itself")]
    SelfPeer(String),
    #[error("--peer-client names {0}, which is not a --peer")]
    UnknownPeerClient(String),
    #[error("--cluster-id must not be empty")]
    EmptyCluster,
    #[error("--{0} must be positive")]
    Zero(&'static str),
    #[error("--election-timeout-ms ({election}) must exceed --heartbeat-ms ({heartbeat})")]
    Timeouts { election: u64, heartbeat: u64 },
    #[error("invalid --log-level {0:?}: expected debug, info, warn or error")]
    LogLevel(String),
}

/// One peer: its id, its Raft id and where this node dials it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub id: NodeId,
    pub addr: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub id: NodeId,
    pub cluster_id: String,
    pub client_listen: String,
    pub peer_listen: String,
    pub peers: Vec<Peer>,
    pub data_dir: PathBuf,
    pub advertise_client: Option<String>,
    pub peer_clients: BTreeMap<NodeId, String>,
    /// One Raft tick.
    pub tick: Duration,
    pub heartbeat_ticks: u32,
    pub election_ticks: u32,
    pub snapshot_every: u64,
    pub request_timeout: Duration,
    pub log_level: crate::logging::Level,
    /// `--join`: start as a new member (see [`Args::join`]).
    pub join: bool,
    /// **Test-only**: a deliberate bug, for the harness's fixtures (see [`crate::planted`]).
    /// No flag sets it: [`Args::validate`] always gives `None`, the correct node.
    pub planted: Option<crate::planted::PlantedBug>,
}

/// Ticks are at most this long, so election timeouts are randomised finely enough.
const MAX_TICK_MS: u64 = 10;

/// Maps a node id string to the Raft core's numeric id: `n<k>` ↦ `NodeId(k)`. Leading zeros
/// are refused so that the mapping is one-to-one (`n01` would otherwise alias `n1`).
pub fn parse_node_id(s: &str) -> Result<NodeId, ConfigError> {
    let bad = || ConfigError::NodeId(s.to_string());
    let digits = s.strip_prefix('n').ok_or_else(bad)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse::<u64>().map(NodeId).map_err(|_| bad())
}

/// The inverse of [`parse_node_id`].
pub fn node_name(id: NodeId) -> String {
    format!("n{}", id.0)
}

fn split_pair(flag: &'static str, value: &str) -> Result<(String, NodeId, String), ConfigError> {
    let syntax = || ConfigError::PeerSyntax {
        flag,
        value: value.to_string(),
    };
    let (name, addr) = value.split_once('=').ok_or_else(syntax)?;
    if addr.is_empty() {
        return Err(syntax());
    }
    let id = parse_node_id(name)?;
    Ok((name.to_string(), id, addr.to_string()))
}

impl Args {
    /// Validates the command line into a [`NodeConfig`].
    pub fn validate(&self) -> Result<NodeConfig, ConfigError> {
        let id = parse_node_id(&self.id)?;
        if self.cluster_id.is_empty() {
            return Err(ConfigError::EmptyCluster);
        }
        let mut peers: Vec<Peer> = Vec::new();
        for p in &self.peers {
            let (name, pid, addr) = split_pair("peer", p)?;
            if pid == id {
                return Err(ConfigError::SelfPeer(name));
            }
            if peers.iter().any(|q| q.id == pid) {
                return Err(ConfigError::DuplicatePeer(name));
            }
            peers.push(Peer {
                name,
                id: pid,
                addr,
            });
        }
        let mut peer_clients = BTreeMap::new();
        for p in &self.peer_clients {
            let (name, pid, addr) = split_pair("peer-client", p)?;
            if !peers.iter().any(|q| q.id == pid) {
                return Err(ConfigError::UnknownPeerClient(name));
            }
            peer_clients.insert(pid, addr);
        }
        if self.heartbeat_ms == 0 {
            return Err(ConfigError::Zero("heartbeat-ms"));
        }
        if self.snapshot_every == 0 {
            return Err(ConfigError::Zero("snapshot-every"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Zero("request-timeout-ms"));
        }
        if self.election_timeout_ms <= self.heartbeat_ms {
            return Err(ConfigError::Timeouts {
                election: self.election_timeout_ms,
                heartbeat: self.heartbeat_ms,
            });
        }
        let log_level = crate::logging::parse_level(&self.log_level)
            .ok_or_else(|| ConfigError::LogLevel(self.log_level.clone()))?;
        // Split the heartbeat into ticks of at most MAX_TICK_MS.
        let heartbeat_ticks = self.heartbeat_ms.div_ceil(MAX_TICK_MS).max(1);
        let tick_ms = (self.heartbeat_ms / heartbeat_ticks).max(1);
        let election_ticks = (self.election_timeout_ms / tick_ms).max(heartbeat_ticks + 1);
        Ok(NodeConfig {
            name: self.id.clone(),
            id,
            cluster_id: self.cluster_id.clone(),
            client_listen: self.client.clone(),
            peer_listen: self.peer_listen.clone(),
            peers,
            data_dir: self.data_dir.clone(),
            advertise_client: self.advertise_client.clone(),
            peer_clients,
            tick: Duration::from_millis(tick_ms),
            heartbeat_ticks: u32::try_from(heartbeat_ticks).unwrap_or(u32::MAX),
            election_ticks: u32::try_from(election_ticks).unwrap_or(u32::MAX),
            snapshot_every: self.snapshot_every,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            log_level,
            join: self.join,
            planted: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<NodeConfig, ConfigError> {
        let mut v = vec![
            "raftkv",
            "--id",
            "n1",
            "--cluster-id",
            "c",
            "--client",
            "127.0.0.1:7001",
            "--peer-listen",
            "127.0.0.1:7101",
            "--data-dir",
            "/tmp/x",
        ];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).expect("clap").validate()
    }

    #[test]
    fn node_ids_map_one_to_one() {
        assert_eq!(parse_node_id("n1"), Ok(NodeId(1)));
        assert_eq!(parse_node_id("n42"), Ok(NodeId(42)));
        for bad in [
            "",
            "n",
            "n0",
            "n01",
            "1",
            "m1",
            "n-1",
            "n1x",
            "n99999999999999999999999",
        ] {
            assert!(parse_node_id(bad).is_err(), "{bad}");
        }
        assert_eq!(node_name(NodeId(7)), "n7");
    }

    #[test]
    fn a_full_command_line_validates() {
        let c = args(&[
            "--peer",
            "n2=127.0.0.1:7102",
            "--peer",
            "n3=127.0.0.1:7103",
            "--peer-client",
            "n2=10.0.0.2:7002",
        ])
        .unwrap();
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[1].id, NodeId(3));
        assert_eq!(
            c.peer_clients.get(&NodeId(2)).map(String::as_str),
            Some("10.0.0.2:7002")
        );
        // Defaults: 50 ms heartbeat = 5 ticks of 10 ms; 300 ms election = 30 ticks.
        assert_eq!(c.tick, Duration::from_millis(10));
        assert_eq!((c.heartbeat_ticks, c.election_ticks), (5, 30));
        // No flag plants a bug.
        assert_eq!(c.planted, None);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(matches!(
            args(&["--peer", "n2"]),
            Err(ConfigError::PeerSyntax { .. })
        ));
        assert!(matches!(
            args(&["--peer", "n2="]),
            Err(ConfigError::PeerSyntax { .. })
        ));
        assert!(matches!(
            args(&["--peer", "x=a:1"]),
            Err(ConfigError::NodeId(_))
        ));
        assert!(matches!(
            args(&["--peer", "n1=a:1"]),
            Err(ConfigError::SelfPeer(_))
        ));
        assert!(matches!(
            args(&["--peer", "n2=a:1", "--peer", "n2=b:1"]),
            Err(ConfigError::DuplicatePeer(_))
        ));
        assert!(matches!(
            args(&["--peer-client", "n5=a:1"]),
            Err(ConfigError::UnknownPeerClient(_))
        ));
        assert!(matches!(
            args(&["--election-timeout-ms", "50"]),
            Err(ConfigError::Timeouts { .. })
        ));
        assert!(matches!(
            args(&["--heartbeat-ms", "0"]),
            Err(ConfigError::Zero(_))
        ));
        assert!(matches!(
            args(&["--log-level", "loud"]),
            Err(ConfigError::LogLevel(_))
        ));
    }

    #[test]
    fn short_heartbeats_use_short_ticks() {
        let c = args(&["--heartbeat-ms", "5", "--election-timeout-ms", "40"]).unwrap();
        assert_eq!(c.tick, Duration::from_millis(5));
        assert_eq!((c.heartbeat_ticks, c.election_ticks), (1, 8));
    }
}
