//! The network: one proxy listener per directed link i->j between nodes (node i is told that
//! peer j lives there), and one per (client worker, node) pair in front of the node's client
//! port, so the nemesis can hold, delay and heal any directed link, between nodes or between a
//! client and a node. The harness holds every listener for the whole run: a killed node's client
//! port is never what a client dials, so another process that takes that port cannot answer in
//! the node's name unnoticed (the client also checks the node's identity on connect).
//!
//! Faults compose: the wanted state of every link is computed from all the network faults in
//! force (held wins over delayed), and only the links whose state changes are touched.

use super::args::HealMode;
use super::launcher::Pids;
use crate::system::PeerNetwork;
use anyhow::{Context, Result};
use proxy::{LinkId, LinkState, Proxy, ProxyConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The name of worker `w`'s endpoint in link names (`c3 -> n1`).
pub fn client_name(w: usize) -> String {
    format!("c{w}")
}

/// The endpoint name of the client that makes the final reads.
pub const FINAL_CLIENT: &str = "cfinal";

/// A network fault in force.
#[derive(Debug, Clone)]
pub enum NetFault {
    /// Directed node links held.
    Partition(Vec<(usize, usize)>),
    /// Both directions between these (worker, node) pairs held.
    ClientCut(Vec<(usize, usize)>),
    /// Directed node links delayed.
    Delay {
        links: Vec<(usize, usize)>,
        base: Duration,
        jitter: Duration,
    },
}

/// The proxy plus the naming it needs.
pub struct Network {
    proxy: Proxy,
    ids: Vec<String>,
    /// `peer[i][j]`: where node i dials node j.
    peer: Vec<Vec<Option<SocketAddr>>>,
    /// Where every node dials node j, with per-destination listeners.
    advertised: Vec<Option<SocketAddr>>,
    /// `client[w][i]`: where worker w dials node i's client port.
    client: Vec<Vec<SocketAddr>>,
    /// Where the final-read client dials node i.
    final_client: Vec<SocketAddr>,
    /// Faults in force, by the id the nemesis gave them.
    faults: BTreeMap<u64, NetFault>,
}

impl Network {
    /// Opens the peer listeners, forwarding to `peer_listen[j]`: one per directed pair of nodes
    /// (`PerLink`), or one per node whose connections are attributed to the dialing node by its
    /// process (`PerDestination`, among `pids`). Then one listener per (worker, node) pair,
    /// forwarding to `client_listen[i]`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        ids: &[String],
        peer_listen: &[SocketAddr],
        client_listen: &[SocketAddr],
        workers: usize,
        mode: PeerNetwork,
        pids: &Pids,
        heal: HealMode,
        seed: u64,
    ) -> Result<Network> {
        let proxy = Proxy::new(ProxyConfig {
            heal_mode: match heal {
                HealMode::Deliver => proxy::HealMode::Deliver,
                HealMode::Reset => proxy::HealMode::Reset,
            },
            seed,
        });
        let n = ids.len();
        let mut peer = vec![vec![None; n]; n];
        let mut advertised = vec![None; n];
        match mode {
            PeerNetwork::PerLink => {
                for i in 0..n {
                    for j in 0..n {
                        if i != j {
                            let link = LinkId::new(ids[i].as_str(), ids[j].as_str());
                            let addr = proxy.add_link(link, peer_listen[j]).with_context(|| {
                                format!("opening the proxy link {}->{}", ids[i], ids[j])
                            })?;
                            peer[i][j] = Some(addr);
                        }
                    }
                }
            }
            PeerNetwork::PerDestination => {
                let pids = Arc::clone(pids);
                let candidates: proxy::Candidates = Arc::new(move || match pids.lock() {
                    Ok(g) => g.clone(),
                    Err(p) => p.into_inner().clone(),
                });
                for j in 0..n {
                    let addr = proxy
                        .add_destination(&ids[j], peer_listen[j], Arc::clone(&candidates))
                        .with_context(|| format!("opening the proxy destination {}", ids[j]))?;
                    advertised[j] = Some(addr);
                    for i in (0..n).filter(|&i| i != j) {
                        proxy
                            .declare_link(&LinkId::new(ids[i].as_str(), ids[j].as_str()))
                            .with_context(|| format!("declaring {}->{}", ids[i], ids[j]))?;
                        peer[i][j] = Some(addr);
                    }
                }
            }
        }
        let client_links = |name: &str| -> Result<Vec<SocketAddr>> {
            (0..n)
                .map(|i| {
                    proxy
                        .add_link(LinkId::new(name, ids[i].as_str()), client_listen[i])
                        .with_context(|| format!("opening the proxy link {name}->{}", ids[i]))
                })
                .collect()
        };
        let client = (0..workers)
            .map(|w| client_links(&client_name(w)))
            .collect::<Result<Vec<_>>>()?;
        let final_client = client_links(FINAL_CLIENT)?;
        Ok(Network {
            proxy,
            ids: ids.to_vec(),
            peer,
            advertised,
            client,
            final_client,
            faults: BTreeMap::new(),
        })
    }

    /// Where node `i` dials node `j`.
    pub fn peer_addr(&self, i: usize, j: usize) -> Option<SocketAddr> {
        self.peer.get(i).and_then(|r| r.get(j)).copied().flatten()
    }

    /// Where every node dials node `j`, with per-destination listeners (`None` per link).
    pub fn advertised_peer_addr(&self, j: usize) -> Option<SocketAddr> {
        self.advertised.get(j).copied().flatten()
    }

    /// Where worker `w` dials each node's client port.
    pub fn client_addrs(&self, w: usize) -> Vec<SocketAddr> {
        self.client.get(w).cloned().unwrap_or_default()
    }

    /// Where the final-read client dials each node.
    pub fn final_client_addrs(&self) -> Vec<SocketAddr> {
        self.final_client.clone()
    }

    fn link(&self, a: usize, b: usize) -> LinkId {
        LinkId::new(self.ids[a].as_str(), self.ids[b].as_str())
    }

    /// Puts fault `id` in force, on top of the others.
    pub fn add(&mut self, id: u64, fault: NetFault) -> Result<()> {
        self.faults.insert(id, fault);
        self.apply()
    }

    /// Lifts fault `id`; links no other fault holds go back to pass (or to a delay still in
    /// force).
    pub fn remove(&mut self, id: u64) -> Result<()> {
        if self.faults.remove(&id).is_some() {
            self.apply()
        } else {
            Ok(())
        }
    }

    /// Every fault lifted, every link back to pass.
    pub fn heal_all(&mut self) {
        self.faults.clear();
        self.proxy.heal_all();
    }

    /// Bytes forwarded over every link so far (proof that traffic took the proxy).
    pub fn bytes_forwarded(&self) -> u64 {
        self.proxy.stats().values().map(|s| s.bytes).sum()
    }

    /// Whether any link is not in `Pass`.
    pub fn faulty(&self) -> bool {
        self.proxy
            .stats()
            .values()
            .any(|s| s.state != LinkState::Pass)
    }

    /// The state every link should have with the faults in force.
    fn wanted(&self) -> BTreeMap<LinkId, LinkState> {
        let mut want = BTreeMap::new();
        for f in self.faults.values() {
            if let NetFault::Delay {
                links,
                base,
                jitter,
            } = f
            {
                for &(a, b) in links {
                    want.insert(
                        self.link(a, b),
                        LinkState::Delay {
                            base: *base,
                            jitter: *jitter,
                        },
                    );
                }
            }
        }
        for f in self.faults.values() {
            match f {
                NetFault::Partition(links) => {
                    for &(a, b) in links {
                        want.insert(self.link(a, b), LinkState::Hold);
                    }
                }
                NetFault::ClientCut(pairs) => {
                    for &(w, i) in pairs {
                        let c = client_name(w);
                        let id = self.ids[i].as_str();
                        want.insert(LinkId::new(c.as_str(), id), LinkState::Hold);
                        want.insert(LinkId::new(id, c.as_str()), LinkState::Hold);
                    }
                }
                NetFault::Delay { .. } => {}
            }
        }
        want
    }

    fn apply(&self) -> Result<()> {
        let want = self.wanted();
        for (link, stats) in self.proxy.stats() {
            let state = want.get(&link).copied().unwrap_or(LinkState::Pass);
            if stats.state != state {
                self.proxy
                    .set(&link, state)
                    .with_context(|| format!("setting {link} to {state:?}"))?;
            }
        }
        Ok(())
    }

    /// What never went through the proxy although both ends ran. Per link: every directed
    /// node-to-node link whose listener never accepted a connection (the nodes talked some other
    /// way, or not at all, and partitions there cut nothing). Per destination (stores like Redis
    /// dial in one direction only, so a silent pair is normal): every node that no attributed
    /// connection ever linked to any other node.
    pub fn silent_node_links(&self) -> Vec<String> {
        let stats = self.proxy.stats();
        let n = self.ids.len();
        let attributed = |a: usize, b: usize| {
            stats
                .get(&self.link(a, b))
                .map_or(0, |s| s.connections_attributed)
        };
        let mut silent = Vec::new();
        if self.advertised.iter().any(Option::is_some) {
            for i in 0..n {
                let any = (0..n)
                    .filter(|&j| j != i)
                    .any(|j| attributed(i, j) + attributed(j, i) > 0);
                if !any && n > 1 {
                    silent.push(format!("{}<->*", self.ids[i]));
                }
            }
            return silent;
        }
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let link = self.link(i, j);
                if stats
                    .get(&link)
                    .is_some_and(|s| s.listen_addr.is_some() && s.connections_total == 0)
                {
                    silent.push(link.to_string());
                }
            }
        }
        silent
    }

    /// Per-destination counters (attributed and unattributed connections), for run.json.
    pub fn destinations_json(&self) -> Value {
        let d: serde_json::Map<String, Value> = self
            .proxy
            .destination_stats()
            .into_iter()
            .map(|(name, s)| {
                (
                    name,
                    json!({
                        "listen": s.listen_addr.to_string(),
                        "target": s.target.to_string(),
                        "connections": s.connections_total,
                        "attributed": s.attributed,
                        "self_dials": s.self_dials,
                        "unattributed": s.unattributed,
                    }),
                )
            })
            .collect();
        Value::Object(d)
    }

    /// Connections that could not be attributed to a node (reset by the proxy), over all
    /// destinations.
    pub fn unattributed(&self) -> u64 {
        self.proxy
            .destination_stats()
            .values()
            .map(|s| s.unattributed)
            .sum()
    }

    /// Per-link counters, for run.json.
    pub fn stats_json(&self) -> Value {
        let links: serde_json::Map<String, Value> = self
            .proxy
            .stats()
            .into_iter()
            .filter(|(_, s)| s.connections_total > 0 || s.bytes > 0 || s.listen_addr.is_some())
            .map(|(link, s)| {
                (
                    link.to_string(),
                    json!({
                        "listen": s.listen_addr.map(|a| a.to_string()),
                        "target": s.target.map(|a| a.to_string()),
                        "connections": s.connections_total,
                        "attributed": s.connections_attributed,
                        "ghosts_dropped": s.ghosts,
                        "bytes": s.bytes,
                        "resets": s.resets,
                        "dial_failures": s.dial_failures,
                    }),
                )
            })
            .collect();
        Value::Object(links)
    }
}
