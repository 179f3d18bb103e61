//! A fault-injecting TCP proxy for chaos tests on loopback: pass, drop-and-hold, and delay with
//! jitter, per directed link, switchable at any moment on live connections.
//!
//! Plain threads, no async runtime. Every listener binds `127.0.0.1:0`.
//!
//! # Wiring
//!
//! One [`Proxy`] per run. For every directed pair of nodes `i -> j`, [`Proxy::add_link`] opens a
//! listener that forwards to `j`'s real address; node `i` is told that peer `j` lives at that
//! listener. Clients are endpoints like any other: a link `c1 -> n1` to `n1`'s client address
//! lets `c1` be cut off from `n1` the same way.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use proxy::{cut_between, HealMode, LinkId, LinkState, Proxy, ProxyConfig};
//!
//! # fn main() -> Result<(), proxy::ProxyError> {
//! let peer_addr: SocketAddr = "127.0.0.1:7102".parse().unwrap(); // n2's real peer port
//! let proxy = Proxy::new(ProxyConfig { heal_mode: HealMode::Deliver, seed: 42 });
//! // n1 dials n2 here:
//! let n1_to_n2 = proxy.add_link(LinkId::new("n1", "n2"), peer_addr)?;
//! # let _ = n1_to_n2;
//! // ... one add_link per directed pair, plus client links ...
//!
//! proxy.partition(cut_between(&[vec!["n1"], vec!["n2", "n3"]]))?; // isolate n1
//! proxy.heal_all();
//! proxy.partition(&[LinkId::new("n1", "n2")])?; // one-way: n1's bytes no longer reach n2
//! proxy.set(&LinkId::new("n2", "n3"), LinkState::Delay {
//!     base: Duration::from_millis(20),
//!     jitter: Duration::from_millis(10),
//! })?;
//! for (link, stats) in proxy.stats() {
//!     println!("{link}: {:?} {} bytes", stats.state, stats.bytes);
//! }
//! drop(proxy); // stops every thread, resets every proxied connection, frees every port
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! **A link governs bytes, not connections.** The state of `i -> j` applies to every byte
//! travelling from `i` to `j`, on connections in either direction: the requests `i` sends on a
//! connection it dialed to `j` (through the `i -> j` listener), *and* the replies `i` sends on a
//! connection `j` dialed to `i` (through the `j -> i` listener). So:
//!
//! - On a connection `i` dialed to `j`, bytes `i -> j` follow the `i -> j` link and `j`'s replies
//!   follow the `j -> i` link.
//! - A one-way cut `i -> j` (hold only that link) stops everything `i` says to `j`, while
//!   everything `j` says reaches `i`. In request/response terms: `i`'s requests to `j` stall;
//!   `j`'s requests reach `i` but `i`'s responses stall. This is what an IP-level one-way drop
//!   looks like to the applications (with TCP, `j`'s segments reach `i` but `i`'s ACKs do not;
//!   the proxy cannot imitate the missing ACKs, so `j`'s bytes are simply delivered).
//! - A two-way partition between `i` and `j` is both links held: see [`cut_between`].
//!
//! **Hold** (drop-and-hold). Bytes on a held link stop in the proxy: it keeps what it had
//! already read but not delivered (one read chunk, or a delay queue), then stops reading, so the
//! rest waits in the kernel's socket buffers and the sender eventually blocks, as behind a dead
//! network. A chunk the proxy was already writing when the hold began still arrives. End of
//! stream (FIN) and resets are held in order behind the data. On heal, per [`HealMode`]:
//!
//! - `Deliver`: held bytes are delivered at once, in order, as TCP retransmission would deliver
//!   them; the connection carries on.
//! - `Reset`: every connection that had something held on a healed link (bytes, a FIN, or its
//!   own handshake) is reset: both its sockets are closed with a RST, and both endpoints see
//!   `ConnectionReset` (or EOF). Connections that stayed idle through the hold carry on, as
//!   idle TCP connections survive a real partition. New connections work at once.
//!
//! A connection accepted while either direction of its link is held is not dialed until both
//! are open (a handshake needs both ways); until then the dialer's bytes wait in its socket. On
//! heal it is dialed (`Deliver`) or reset (`Reset`).
//!
//! **Delay** `{ base, jitter }`: each chunk read is delivered `base + U[0, jitter]` after it was
//! read, but never before an earlier chunk of the same connection direction, so byte order is
//! kept. Added latency is therefore always `>= base`. A link switched from `Delay` to `Pass`
//! flushes its queued chunks within 20 ms; one switched to `Hold` holds them. Connection set-up
//! is not delayed. Delays are drawn from an RNG per connection direction seeded from
//! [`ProxyConfig::seed`], the link and the connection's sequence number on its listener, so a
//! run that opens the same connections draws the same delays.
//!
//! **Liveness.** Removing a fault never hangs a connection: held pumps wake on every state
//! change, queued chunks are flushed, and blocked writes re-check every 100 ms whether their
//! connection was aborted. If either endpoint closes or resets, the proxy passes the FIN or the
//! RST on (subject to the link state, like the bytes before it). If a target refuses the dial
//! (the node is down), the dialer's connection is reset.
//!
//! **Shutdown.** Dropping the [`Proxy`] (or [`Proxy::shutdown`]) stops every acceptor, resets
//! every proxied connection and joins every thread; listening ports are released.
//!
//! # Observability
//!
//! [`Proxy::stats`] gives, per directed link, its state, connection counts (on the link whose
//! listener accepted them), bytes delivered in its direction, resets and failed dials.
//!
//! Every decision is logged through the `log` facade, target `proxy`, as `<verb> <what>`:
//! `start` (with the seed), `link`, `partition`, `heal`, `delay`, `stopped` at `info`; per
//! connection `accept`, `hold`, `release`, `reset`, `close` at `debug`; each delayed chunk
//! (`delay`) at `trace`. Install any `log` backend to see them.
//!
//! # Link lists
//!
//! [`Proxy::partition`], [`Proxy::heal`] and [`Proxy::delay`] take anything iterable over
//! `LinkId` or `&LinkId`: `&vec`, `[&l]`, `cut_between(..)`. A list naming an unknown link is
//! rejected whole ([`ProxyError::UnknownLink`]) and changes nothing.

mod conn;
mod control;
mod error;
mod link;
mod listener;
mod pump;
mod sock;

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::info;

pub use crate::error::ProxyError;
pub use crate::link::{cut_between, LinkId, LinkState};

use crate::conn::{Route, Shared};
use crate::control::lock;
use crate::listener::Acceptor;

/// What happens to held bytes when their link heals. One choice per proxy (per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HealMode {
    /// Deliver them late, in order, as TCP retransmission would.
    #[default]
    Deliver,
    /// Reset the connections that held them.
    Reset,
}

/// Configuration of a [`Proxy`].
#[derive(Clone, Debug, Default)]
pub struct ProxyConfig {
    /// What a heal does to held bytes.
    pub heal_mode: HealMode,
    /// Seeds every random choice (delay jitter). Log it with the run to replay it.
    pub seed: u64,
}

/// Counters and state of one directed link, as returned by [`Proxy::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// The current state.
    pub state: LinkState,
    /// The listener address, if this direction has a listener (a reply-only direction, such as
    /// node -> client, has none).
    pub listen_addr: Option<SocketAddr>,
    /// Where the listener forwards to.
    pub target: Option<SocketAddr>,
    /// Connections this link's listener has accepted.
    pub connections_total: u64,
    /// Of those, not yet closed.
    pub connections_active: u64,
    /// Bytes delivered from `from` to `to`, on connections in either direction.
    pub bytes: u64,
    /// Connections reset on heal because this link held something of theirs (`HealMode::Reset`).
    pub resets: u64,
    /// Connections whose dial to the target failed.
    pub dial_failures: u64,
}

/// The fault-injecting proxy: a set of directed links, each with a listener, a target and a
/// state. All methods take `&self`; share it with `Arc` between the harness's threads.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    acceptors: Mutex<BTreeMap<LinkId, Acceptor>>,
}

impl Proxy {
    /// A proxy with no links yet.
    pub fn new(config: ProxyConfig) -> Proxy {
        info!(target: "proxy", "start seed={} heal_mode={:?}", config.seed, config.heal_mode);
        Proxy {
            shared: Arc::new(Shared {
                control: Default::default(),
                conns: Mutex::default(),
                next_conn: AtomicU64::new(0),
                heal_mode: config.heal_mode,
                seed: config.seed,
            }),
            acceptors: Mutex::default(),
        }
    }

    /// Opens a listener on `127.0.0.1:<OS port>` for `link`, forwarding to `target`, and returns
    /// its address: tell `link.from` that `link.to` lives there. Also makes the reverse direction
    /// known (it governs the replies), in `Pass`. The link starts in its current state (`Pass`
    /// unless it was set while it was only known as a reverse).
    pub fn add_link(&self, link: LinkId, target: SocketAddr) -> Result<SocketAddr, ProxyError> {
        if link.from == link.to {
            return Err(ProxyError::SelfLink(link));
        }
        let mut acceptors = lock(&self.acceptors);
        if acceptors.contains_key(&link) {
            return Err(ProxyError::DuplicateLink(link));
        }
        let route = {
            let mut t = self.shared.control.table();
            let forward = t.ensure(&link);
            let backward = t.ensure(&link.reversed());
            Route {
                link: link.clone(),
                forward,
                backward,
                target,
                counters: Arc::clone(&t.slots[forward].counters),
            }
        };
        let forward = route.forward;
        let acceptor =
            Acceptor::start(&self.shared, route).map_err(|source| ProxyError::Listen {
                link: link.clone(),
                source,
            })?;
        let addr = acceptor.addr;
        self.shared.control.table().slots[forward].listen = Some((addr, target));
        info!(target: "proxy", "link {link} listen={addr} target={target}");
        acceptors.insert(link, acceptor);
        Ok(addr)
    }

    /// The listener address of `link`, if it has one.
    pub fn listen_addr(&self, link: &LinkId) -> Option<SocketAddr> {
        lock(&self.acceptors).get(link).map(|a| a.addr)
    }

    /// Sets the state of one directed link, effective at once on live connections.
    pub fn set(&self, link: &LinkId, state: LinkState) -> Result<(), ProxyError> {
        self.apply([link], state, false)
    }

    /// Makes `links` exactly the set of held links, in one step: the listed links are held,
    /// every other held link is healed to `Pass` (delayed links not listed stay delayed).
    /// A one-way cut is a list with one direction only; see [`cut_between`] for groups.
    pub fn partition<L: Borrow<LinkId>>(
        &self,
        links: impl IntoIterator<Item = L>,
    ) -> Result<(), ProxyError> {
        self.apply(links, LinkState::Hold, true)
    }

    /// Sets `links` to `Delay { base, jitter }`.
    pub fn delay<L: Borrow<LinkId>>(
        &self,
        links: impl IntoIterator<Item = L>,
        base: Duration,
        jitter: Duration,
    ) -> Result<(), ProxyError> {
        self.apply(links, LinkState::Delay { base, jitter }, false)
    }

    /// Sets `links` back to `Pass` (releasing held bytes, or resetting their connections, per
    /// the [`HealMode`]).
    pub fn heal<L: Borrow<LinkId>>(
        &self,
        links: impl IntoIterator<Item = L>,
    ) -> Result<(), ProxyError> {
        self.apply(links, LinkState::Pass, false)
    }

    /// Sets every link to `Pass`: no partition, no delay.
    pub fn heal_all(&self) {
        let mut t = self.shared.control.table();
        let all: Vec<usize> = (0..t.slots.len()).collect();
        let changed = set_all(&mut t, &all, LinkState::Pass);
        drop(t);
        self.shared.control.notify();
        info!(target: "proxy", "heal all [{}]", changed.join(" "));
    }

    /// The current state of `link`, if the proxy knows it.
    pub fn state(&self, link: &LinkId) -> Option<LinkState> {
        let t = self.shared.control.table();
        t.find(link).map(|i| t.slots[i].state)
    }

    /// State and counters of every known directed link, in link order.
    pub fn stats(&self) -> BTreeMap<LinkId, LinkStats> {
        let t = self.shared.control.table();
        t.iter()
            .map(|s| {
                let c = &s.counters;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let stats = LinkStats {
                    state: s.state,
                    listen_addr: s.listen.map(|(l, _)| l),
                    target: s.listen.map(|(_, t)| t),
                    connections_total: get(&c.connections_total),
                    connections_active: get(&c.connections_active),
                    bytes: get(&c.bytes),
                    resets: get(&c.resets),
                    dial_failures: get(&c.dial_failures),
                };
                (s.id.clone(), stats)
            })
            .collect()
    }

    /// The seed and heal mode this proxy runs with.
    pub fn config(&self) -> ProxyConfig {
        ProxyConfig {
            heal_mode: self.shared.heal_mode,
            seed: self.shared.seed,
        }
    }

    /// Stops everything; the same as dropping the proxy, spelled out.
    pub fn shutdown(self) {}

    /// Validates every link first, so a bad list changes nothing; then applies all under one
    /// lock, so no pump sees half of a change.
    fn apply<L: Borrow<LinkId>>(
        &self,
        links: impl IntoIterator<Item = L>,
        state: LinkState,
        exact: bool,
    ) -> Result<(), ProxyError> {
        let links: Vec<L> = links.into_iter().collect();
        let mut t = self.shared.control.table();
        let mut idx = Vec::with_capacity(links.len());
        for link in &links {
            let link = link.borrow();
            let i = t.find(link);
            idx.push(i.ok_or_else(|| ProxyError::UnknownLink(link.clone()))?);
        }
        let mut healed = Vec::new();
        if exact {
            let others: Vec<usize> = (0..t.slots.len())
                .filter(|i| t.slots[*i].state == LinkState::Hold && !idx.contains(i))
                .collect();
            healed = set_all(&mut t, &others, LinkState::Pass);
        }
        let changed = set_all(&mut t, &idx, state);
        drop(t);
        self.shared.control.notify();
        let list = changed.join(" ");
        match state {
            LinkState::Hold => {
                info!(target: "proxy", "partition [{list}] heal [{}]", healed.join(" "))
            }
            LinkState::Pass => info!(target: "proxy", "heal [{list}]"),
            LinkState::Delay { base, jitter } => {
                info!(target: "proxy", "delay [{list}] base={base:?} jitter={jitter:?}")
            }
        }
        Ok(())
    }
}

/// Sets each slot; returns the names of the links whose state changed, for the log line.
fn set_all(t: &mut control::Table, idx: &[usize], state: LinkState) -> Vec<String> {
    let mut changed = Vec::new();
    for &i in idx {
        if t.set(i, state) != state {
            changed.push(t.slots[i].id.to_string());
        }
    }
    changed
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Order matters: close the table (no new connection registers, waiters wake), stop the
        // acceptors (no new connection starts), then abort and join what is left.
        self.shared.control.close();
        let acceptors = std::mem::take(&mut *lock(&self.acceptors));
        for (_, a) in acceptors {
            a.stop();
        }
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        let threads: Vec<_> = conns
            .into_values()
            .filter_map(|e| e.abort(&self.shared.control))
            .collect();
        for t in threads {
            // A panicked connection thread is our bug, already printed by the panic hook;
            // shutdown goes on regardless.
            let _ = t.join();
        }
        info!(target: "proxy", "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Proxy>();
    }
}
