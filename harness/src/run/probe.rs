//! Asking nodes about themselves through the system's client adapter, on their real client
//! addresses (not through the proxy, so a client partition never hides a node from the harness):
//! is a node ready, and which node leads.

use crate::system::{LeaderFind, ReadyCheck};
use adapters::{Adapter, NodeEndpoint, NodeStatus, Role};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The readiness and leader checks a system spec asks for.
#[derive(Clone)]
pub struct Probe {
    pub adapter: Arc<dyn Adapter>,
    pub ready: ReadyCheck,
    pub leader: LeaderFind,
    pub cluster: String,
}

impl Probe {
    /// Node `id` at `addr`'s status, within `timeout`.
    pub fn status(
        &self,
        id: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        let deadline = Instant::now() + timeout;
        let endpoint = NodeEndpoint::new(id, addr.to_string()).with_cluster(self.cluster.clone());
        let mut session = self
            .adapter
            .connect(&endpoint, deadline)
            .map_err(|e| e.to_string())?;
        session.status(deadline).map_err(|e| e.to_string())
    }

    /// Whether node `id` at `addr` is ready, per the spec: its status answers, or its client port
    /// accepts a connection.
    pub fn ready(&self, id: &str, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
        match self.ready {
            ReadyCheck::Status => self.status(id, addr, timeout).map(|_| ()),
            ReadyCheck::Tcp => {
                TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The leader among `running` (index, id, client address): the node that says it leads with
    /// the highest term, asked in parallel (500 ms each at most); node 0 for a fixed primary;
    /// none when the spec says there is no leader to find.
    pub fn find_leader(&self, running: &[(usize, String, SocketAddr)]) -> Option<usize> {
        match self.leader {
            LeaderFind::None => None,
            LeaderFind::First => running.iter().find(|(i, _, _)| *i == 0).map(|_| 0),
            LeaderFind::Status => {
                let answers: Vec<(usize, NodeStatus)> = std::thread::scope(|s| {
                    let hs: Vec<_> = running
                        .iter()
                        .map(|(i, id, a)| {
                            s.spawn(move || {
                                (*i, self.status(id, *a, Duration::from_millis(500)).ok())
                            })
                        })
                        .collect();
                    hs.into_iter()
                        .filter_map(|h| h.join().ok())
                        .filter_map(|(i, st)| st.map(|st| (i, st)))
                        .collect()
                });
                answers
                    .into_iter()
                    .filter(|(_, st)| st.role == Role::Leader)
                    .max_by_key(|(_, st)| st.term.unwrap_or(0))
                    .map(|(i, _)| i)
            }
        }
    }
}
