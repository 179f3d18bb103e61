//! Starting a system's cluster for a benchmark: the same specs and launcher as `harness run`.
//! By default without the proxy: every node is told its peers' real peer addresses, and clients
//! connect to the real client ports, so nothing of the harness sits on any path being measured.
//! With `--through-proxy`, a second cluster of the system is wired exactly as `harness run` wires
//! it (peer links and client connections through the proxy, every link passing), to measure
//! what the proxy costs.

use super::args::SystemConf;
use crate::run::args::HealMode;
use crate::run::launcher::{self, Cluster, NodeSpec};
use crate::run::network::Network;
use crate::run::probe::Probe;
use crate::system::LeaderFind;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What clients need to reach a cluster's nodes (cloned into client threads).
#[derive(Clone)]
pub struct Target {
    pub adapter: Arc<dyn adapters::Adapter>,
    /// Where clients dial each node, by index: its client port, or the proxy's listener for it.
    pub addrs: Vec<SocketAddr>,
    /// Each node's own client address, which `not_leader` hints name.
    pub hints: Vec<SocketAddr>,
    pub cluster_id: String,
}

impl Target {
    /// The endpoint of node `i` for an adapter session.
    pub fn endpoint(&self, i: usize) -> adapters::NodeEndpoint {
        adapters::NodeEndpoint::new(format!("n{}", i + 1), self.addrs[i].to_string())
            .with_cluster(self.cluster_id.clone())
    }

    /// The node whose client address is `hint` (a `not_leader` hint), if any.
    pub fn node_of(&self, hint: &str) -> Option<usize> {
        self.hints.iter().position(|a| a.to_string() == hint)
    }
}

/// A running cluster of one system, with what clients need to reach it.
pub struct Running {
    pub name: String,
    /// Where the spec came from (a built-in name or a file).
    pub spec_origin: String,
    pub nodes: usize,
    pub cluster: Cluster,
    pub target: Target,
    /// Whether the spec has a leader that can move (Raft-like), so failover applies.
    pub elects_leader: bool,
    /// The node program and what it says to `--version`.
    pub program: String,
    pub version: Option<String>,
    /// The proxy every link of this cluster passes through (`--through-proxy`).
    pub network: Option<Network>,
}

impl Running {
    /// The index of the node a client should send to: the leader (per the spec's leader check)
    /// among running nodes, waiting up to `timeout` for one.
    pub fn leader(&mut self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<(usize, String, SocketAddr)> = (0..self.cluster.len())
                .filter(|&i| self.cluster.state(i) == launcher::NodeState::Running)
                .map(|i| (i, self.cluster.id(i).to_string(), self.target.addrs[i]))
                .collect();
            match self.cluster.probe().leader {
                LeaderFind::None => return Ok(0),
                _ => {
                    if let Some(i) = self.cluster.probe().find_leader(&running) {
                        return Ok(i);
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("{}: no leader within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `sys` with data and logs under `dir`, and waits until every node is ready and a leader
/// is known. A node that will not start fails with its log's path and last lines.
pub fn start(
    sys: &SystemConf,
    dir: &Path,
    node_bin: Option<&Path>,
    node_args: &[String],
    timeout: Duration,
    through_proxy: bool,
) -> Result<Running> {
    let spec = &sys.spec;
    let n = sys.nodes;
    let bin_dir = launcher::bin_dir();
    let bin = spec
        .bin(node_bin, &bin_dir)
        .context("the system spec's `bin`")?;
    let program = match spec.node.command.first().map(String::as_str) {
        Some("{bin}") => bin.clone(),
        Some(p) => p.to_string(),
        None => String::new(),
    };
    launcher::check_program(&program)?;
    let version = launcher::node_version(&program);
    let adapter = crate::system::build_adapter(spec).context("the system spec's [client]")?;
    let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let cluster_id = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench".into());
    // A port may be taken between reserving it and the node binding it: retry with new ones.
    for attempt in 1..=3 {
        let ports = launcher::free_ports(2 * n).context("reserving ports")?;
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let client: Vec<SocketAddr> = ports[..n].iter().map(|&p| addr(p)).collect();
        let peer: Vec<SocketAddr> = if spec.node.shared_port {
            client.clone()
        } else {
            ports[n..].iter().map(|&p| addr(p)).collect()
        };
        let pids: launcher::Pids = Arc::default();
        let network = if through_proxy {
            // One client link per node, shared by every bench client: the proxy serves each
            // connection on its own threads either way.
            let net = Network::start(
                &ids,
                &peer,
                &client,
                1,
                spec.network.peers,
                &pids,
                HealMode::Deliver,
                0,
            )?;
            Some(net)
        } else {
            None
        };
        let net = network.as_ref();
        let all: Vec<(String, SocketAddr)> = match net {
            Some(net) => (0..n)
                .filter_map(|j| net.advertised_peer_addr(j).map(|a| (ids[j].clone(), a)))
                .collect(),
            None => ids.iter().cloned().zip(peer.clone()).collect(),
        };
        let mut specs = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let data_dir = dir.join(id);
            let log = dir.join(format!("{id}.log"));
            if attempt > 1 {
                let _ = std::fs::remove_dir_all(&data_dir);
                let _ = std::fs::remove_file(&log);
            }
            let peers: Vec<(String, SocketAddr)> = match net {
                Some(net) => (0..n)
                    .filter(|&j| j != i)
                    .filter_map(|j| net.peer_addr(i, j).map(|a| (ids[j].clone(), a)))
                    .collect(),
                None => all.iter().filter(|(p, _)| p != id).cloned().collect(),
            };
            let vars = crate::system::Vars {
                id: id.clone(),
                index: i,
                nodes: n,
                cluster_id: cluster_id.clone(),
                client_addr: client[i],
                peer_addr: peer[i],
                advertise_peer_addr: match net {
                    Some(net) => net.advertised_peer_addr(i),
                    None => Some(peer[i]),
                },
                data_dir: data_dir.clone(),
                bin: bin.clone(),
                bin_dir: bin_dir.clone(),
                spec_dir: spec.dir.clone(),
                peers: peers.clone(),
                all_advertised: all.clone(),
                peer_scheme: spec.network.peer_scheme.clone(),
            };
            specs.push(NodeSpec {
                id: id.clone(),
                client: client[i],
                peer_listen: peer[i],
                peers,
                argv: spec.argv(&vars, node_args)?,
                join_args: spec.join_args(&vars)?,
                env: spec.env(&vars)?,
                workdir: spec.workdir(&vars)?,
                data_dir,
                log,
            });
        }
        let probe = Probe {
            adapter: Arc::clone(&adapter),
            ready: spec.ready.check,
            leader: spec.leader.find,
            cluster: cluster_id.clone(),
        };
        let addrs = match net {
            Some(net) => net.client_addrs(0),
            None => client.clone(),
        };
        let mut running = Running {
            name: if through_proxy {
                format!("{}+proxy", spec.name)
            } else {
                spec.name.clone()
            },
            spec_origin: spec.origin.clone(),
            nodes: n,
            cluster: Cluster::new(cluster_id.clone(), specs, pids, probe),
            target: Target {
                adapter: Arc::clone(&adapter),
                addrs,
                hints: client,
                cluster_id: cluster_id.clone(),
            },
            elects_leader: spec.leader.find == LeaderFind::Status,
            program: program.clone(),
            version: version.clone(),
            network,
        };
        let started = (|| -> Result<()> {
            for i in 0..n {
                running.cluster.spawn(i, "bench start")?;
            }
            let deadline = Instant::now() + timeout;
            for i in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                running
                    .cluster
                    .wait_ready(i, left.max(Duration::from_millis(100)))?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            running.leader(left.max(Duration::from_millis(100)))?;
            Ok(())
        })();
        match started {
            Ok(()) => return Ok(running),
            Err(e) => {
                let exited = running.cluster.crash_count() > 0;
                running.cluster.shutdown();
                if launcher::shutting_down() {
                    bail!("interrupted while starting {}", spec.name);
                }
                if exited && attempt < 3 {
                    eprintln!(
                        "harness bench: {}: start attempt {attempt} failed, retrying with new \
                         ports: {e:#}",
                        spec.name
                    );
                    continue;
                }
                return Err(e.context(format!(
                    "starting {} ({n} nodes; logs in {})",
                    spec.name,
                    dir.display()
                )));
            }
        }
    }
    bail!("{} did not start", spec.name)
}
