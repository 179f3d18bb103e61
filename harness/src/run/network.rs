//! The nodes' network: one proxy listener per directed link i->j (node i is told that peer j
//! lives there), so the nemesis can hold, delay and heal any directed link.

use super::args::HealMode;
use anyhow::{Context, Result};
use proxy::{LinkId, LinkState, Proxy, ProxyConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// The proxy plus the node naming it needs.
pub struct Network {
    proxy: Proxy,
    ids: Vec<String>,
    /// `peer[i][j]`: where node i dials node j.
    peer: Vec<Vec<Option<SocketAddr>>>,
}

impl Network {
    /// Opens a listener for every directed pair of nodes, forwarding to `peer_listen[j]`.
    pub fn start(
        ids: &[String],
        peer_listen: &[SocketAddr],
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
        Ok(Network {
            proxy,
            ids: ids.to_vec(),
            peer,
        })
    }

    /// Where node `i` dials node `j`.
    pub fn peer_addr(&self, i: usize, j: usize) -> Option<SocketAddr> {
        self.peer.get(i).and_then(|r| r.get(j)).copied().flatten()
    }

    fn links(&self, pairs: &[(usize, usize)]) -> Vec<LinkId> {
        pairs
            .iter()
            .map(|&(a, b)| LinkId::new(self.ids[a].as_str(), self.ids[b].as_str()))
            .collect()
    }

    /// Holds exactly the directed links `pairs` (every other held link is healed).
    pub fn partition(&self, pairs: &[(usize, usize)]) -> Result<()> {
        self.proxy
            .partition(self.links(pairs))
            .context("setting a partition")
    }

    /// Delays the directed links `pairs`.
    pub fn delay(&self, pairs: &[(usize, usize)], base: Duration, jitter: Duration) -> Result<()> {
        self.proxy
            .delay(self.links(pairs), base, jitter)
            .context("setting delays")
    }

    /// Every link back to pass.
    pub fn heal_all(&self) {
        self.proxy.heal_all();
    }

    /// Whether any link is not in `Pass`.
    pub fn faulty(&self) -> bool {
        self.proxy
            .stats()
            .values()
            .any(|s| s.state != LinkState::Pass)
    }

    /// Per-link counters, for run.json.
    pub fn stats_json(&self) -> Value {
        let links: serde_json::Map<String, Value> = self
            .proxy
            .stats()
            .into_iter()
            .map(|(link, s)| {
                (
                    link.to_string(),
                    json!({
                        "listen": s.listen_addr.map(|a| a.to_string()),
                        "target": s.target.map(|a| a.to_string()),
                        "connections": s.connections_total,
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
