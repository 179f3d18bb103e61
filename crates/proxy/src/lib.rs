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
//! heal it is reset (`Reset`), or, in `Deliver` mode, dialed **unless it is a ghost**. (A hold
//! that begins and ends between the accept and the dial, however short, counts the same.)
//!
//! **The ghost rule.** Behind a real partition the dialer's `connect` would still be pending,
//! and a process that closes the socket or dies meanwhile abandons the attempt: nothing ever
//! reaches the target. So on heal, a held handshake is dropped (its accepted socket reset, the
//! target never dialed; counted in [`LinkStats::ghosts`], logged `drop ... ghost`) when the
//! dialer reset it, or when no process holds the dialer's socket any more: it was closed, or
//! its process was killed (the kernel then closes it). This is read from `/proc/net/tcp`, where
//! the dialer's socket shows inode 0 once no process holds it. A dialer that wrote bytes and then
//! half-closed (`shutdown(Write)`) still holds its socket and is delivered: bytes, then FIN, as
//! TCP would once the handshake went through. Precisely because a kill closes the socket, a
//! killed node's queued connection never reaches the target after the node died. (If `/proc`
//! cannot be read, only an end of stream with no data before it, or a reset, counts as a ghost.)
//! The rule is about handshakes only: bytes held on an *established* connection are still
//! delivered on heal even if their sender has died since, as the dead sender's kernel would
//! keep retransmitting them.
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
//! # Destination listeners
//!
//! Some stores cannot be given a per-peer address: every etcd member dials the one peer URL a
//! member advertises; Redis replicas dial the master. For them, [`Proxy::add_destination`]
//! opens **one listener per destination node** and works out, for every accepted connection,
//! which node process dialed it:
//!
//! 1. the accepted socket's peer address is the dialer's local address; the row of
//!    `/proc/net/tcp` (or `tcp6`) with that local address and the listener as remote address is
//!    the dialer's socket, and gives its inode;
//! 2. the candidates callback is called (per connection: nodes come and go) for the current
//!    `(node id, root pid)` of every node; the first candidate, in the order returned, whose
//!    root process or any descendant (a node may be a shell wrapper that forks) has an fd on
//!    `socket:[inode]` dialed it. A pid reused by an unrelated process is the callback's to
//!    avoid;
//! 3. this is retried a handful of times over about 30 ms while it fails.
//!
//! An attributed connection from node `i` to destination `j` then behaves exactly like one
//! accepted on the per-link listener `i -> j` (which need not exist): bytes `i -> j` follow link
//! `i -> j`, replies follow `j -> i`, with the same hold, delay, heal, reset and ghost
//! semantics, counted in that link's [`LinkStats`] and logged under its name (`attribute`
//! line first). The links are created on first use if [`Proxy::declare_link`] did not create
//! them already; declare them up front so that a partition can name them before any
//! connection was made.
//!
//! A connection that cannot be attributed (the dialer is not a candidate nor a descendant of
//! one, its socket was already closed, or `/proc` cannot be read) is **reset**, counted in
//! [`DestinationStats::unattributed`] and logged at `warn` with its source port. Resetting,
//! rather than passing it unfaulted, keeps every byte that reaches a node subject to the
//! partitions: a connection that slipped past the links would silently bypass them. The dialer
//! sees a reset, as if the connection was refused, and may retry.
//!
//! The destination node dialing itself through its own listener (`j -> j`) is passed through,
//! governed by no link (a partition never separates a node from itself), and counted in
//! [`DestinationStats::self_dials`].
//!
//! Linux only: elsewhere every destination connection is unattributed.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use proxy::{Candidates, LinkId, Proxy, ProxyConfig};
//!
//! # fn main() -> Result<(), proxy::ProxyError> {
//! # let pids = || Vec::<(String, u32)>::new();
//! let proxy = Proxy::new(ProxyConfig::default());
//! let n2_peer: SocketAddr = "127.0.0.1:2380".parse().unwrap(); // n2's real peer port
//! // The current (node id, root pid) of every node process, e.g. from the launcher.
//! let candidates: Candidates = Arc::new(move || pids());
//! let n2_advertised = proxy.add_destination("n2", n2_peer, candidates)?;
//! proxy.declare_link(&LinkId::new("n1", "n2"))?; // and its reverse; likewise every pair
//! # let _ = n2_advertised;
//! // n2 advertises `n2_advertised`; whoever dials it is told apart by process.
//! proxy.partition(&[LinkId::new("n1", "n2")])?; // n1's bytes no longer reach n2
//! # Ok(())
//! # }
//! ```
//!
//! **Shutdown.** Dropping the [`Proxy`] (or [`Proxy::shutdown`]) stops every acceptor, resets
//! every proxied connection and joins every thread; listening ports are released.
//!
//! # Observability
//!
//! [`Proxy::stats`] gives, per directed link, its state, connection counts (on the link that
//! carried them: the link whose listener accepted them, or the attributed link), bytes delivered
//! in its direction, resets, failed dials and ghosts dropped. [`Proxy::destination_stats`]
//! gives, per destination listener, how many of its connections were attributed and how many
//! were not.
//!
//! To detect links the system under test bypassed (a link that carried no connection while both
//! its ends were up), look at [`LinkStats::connections_total`] of every link between nodes: it
//! counts connections dialed `from -> to` through either kind of listener. A connection dialed
//! `j -> i` also carries bytes on `i -> j` (the replies) but is counted on `j -> i` only; use
//! [`LinkStats::bytes`] to see traffic in a direction. Any non-zero
//! [`DestinationStats::unattributed`] means something dialed a destination that was not a
//! known node (or died before it could be identified).
//!
//! Every decision is logged through the `log` facade, target `proxy`, as `<verb> <what>`:
//! `start` (with the seed), `link`, `destination`, `partition`, `heal`, `delay`, `stopped` at
//! `info`; `unattributed` (with the source port) at `warn`; per connection `accept`,
//! `attribute`, `hold`, `release`, `drop` (a ghost), `reset`, `close` at `debug`; each delayed
//! chunk (`delay`) at `trace`. Install any `log` backend to see them.
//!
//! # Link lists
//!
//! [`Proxy::partition`], [`Proxy::heal`] and [`Proxy::delay`] take anything iterable over
//! `LinkId` or `&LinkId`: `&vec`, `[&l]`, `cut_between(..)`. A list naming an unknown link is
//! rejected whole ([`ProxyError::UnknownLink`]) and changes nothing.

mod attribute;
mod conn;
mod control;
mod destination;
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

pub use crate::destination::Candidates;
pub use crate::error::ProxyError;
pub use crate::link::{cut_between, LinkId, LinkState};

use crate::conn::{Route, Shared};
use crate::control::lock;
use crate::destination::{DestCounters, Destination};
use crate::listener::{Acceptor, Origin};

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
    /// Connections dialed from `from` to `to`: accepted by this link's listener, or by `to`'s
    /// destination listener and attributed to `from`. Counted when accepted (attributed), even
    /// if later held, reset or dropped as a ghost.
    pub connections_total: u64,
    /// Of those, the ones that came through a destination listener.
    pub connections_attributed: u64,
    /// Of `connections_total`, not yet closed.
    pub connections_active: u64,
    /// Bytes delivered from `from` to `to`, on connections in either direction.
    pub bytes: u64,
    /// Connections reset on heal because this link held something of theirs (`HealMode::Reset`).
    pub resets: u64,
    /// Connections whose dial to the target failed.
    pub dial_failures: u64,
    /// Connections accepted while this link (or its reverse) was held, dropped on heal because
    /// their dialer had meanwhile closed its socket, reset, or died (`HealMode::Deliver`; see
    /// the ghost rule in the crate docs). The target never saw them.
    pub ghosts: u64,
}

/// Counters of one destination listener, as returned by [`Proxy::destination_stats`].
///
/// Every accepted connection ends up in exactly one of `attributed`, `self_dials` and
/// `unattributed` once its attribution is done (a few ms at most; `connections_total` counts it
/// from the accept).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestinationStats {
    /// The listener address: where every node is told this destination lives.
    pub listen_addr: SocketAddr,
    /// Where it forwards to: the destination's real address.
    pub target: SocketAddr,
    /// Connections accepted.
    pub connections_total: u64,
    /// Attributed to another node `i`, and so proxied on link `i -> destination` (counted there
    /// too, in [`LinkStats::connections_attributed`]).
    pub attributed: u64,
    /// Dialed by the destination node itself: passed through, governed by no link.
    pub self_dials: u64,
    /// Not attributable to any candidate (see the crate docs): reset, and logged at `warn`.
    pub unattributed: u64,
}

/// The fault-injecting proxy: a set of directed links, each with a listener, a target and a
/// state. All methods take `&self`; share it with `Arc` between the harness's threads.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    acceptors: Mutex<BTreeMap<LinkId, Acceptor>>,
    destinations: Mutex<BTreeMap<String, (Acceptor, Arc<Destination>)>>,
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
            destinations: Mutex::default(),
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
        let acceptor = Acceptor::start(&self.shared, Origin::Link(route)).map_err(|source| {
            ProxyError::Listen {
                link: link.clone(),
                source,
            }
        })?;
        let addr = acceptor.addr;
        self.shared.control.table().slots[forward].listen = Some((addr, target));
        info!(target: "proxy", "link {link} listen={addr} target={target}");
        acceptors.insert(link, acceptor);
        Ok(addr)
    }

    /// Makes `link` and its reverse known, in `Pass` unless already set, without opening a
    /// listener: the links that connections through destination listeners will follow, so a
    /// partition can name them before any such connection exists. Idempotent.
    pub fn declare_link(&self, link: &LinkId) -> Result<(), ProxyError> {
        if link.from == link.to {
            return Err(ProxyError::SelfLink(link.clone()));
        }
        let mut t = self.shared.control.table();
        if t.find(link).is_none() {
            info!(target: "proxy", "link {link} declared");
        }
        t.ensure(link);
        t.ensure(&link.reversed());
        Ok(())
    }

    /// Opens one listener on `127.0.0.1:<OS port>` for destination node `dest`, forwarding to
    /// its real address `target`, and returns its address: tell every node that `dest` lives
    /// there. Each accepted connection is attributed to the node that dialed it, among
    /// `candidates()` (called per connection: the current `(node id, root pid)` of every node
    /// process), and proxied on link `node -> dest`; one that cannot be attributed is reset.
    /// See "Destination listeners" in the crate docs.
    pub fn add_destination(
        &self,
        dest: &str,
        target: SocketAddr,
        candidates: Candidates,
    ) -> Result<SocketAddr, ProxyError> {
        let mut dests = lock(&self.destinations);
        if dests.contains_key(dest) {
            return Err(ProxyError::DuplicateDestination(dest.to_string()));
        }
        let self_slot = self.shared.control.table().private(LinkId::new(dest, dest));
        let d = Arc::new(Destination {
            name: dest.to_string(),
            target,
            candidates,
            self_slot,
            counters: DestCounters::default(),
        });
        let acceptor = Acceptor::start(&self.shared, Origin::Destination(Arc::clone(&d))).map_err(
            |source| ProxyError::DestinationListen {
                dest: dest.to_string(),
                source,
            },
        )?;
        let addr = acceptor.addr;
        info!(target: "proxy", "destination {dest} listen={addr} target={target}");
        dests.insert(dest.to_string(), (acceptor, d));
        Ok(addr)
    }

    /// The listener address of destination `dest`, if it has one.
    pub fn destination_addr(&self, dest: &str) -> Option<SocketAddr> {
        lock(&self.destinations).get(dest).map(|(a, _)| a.addr)
    }

    /// Counters of every destination listener, by destination.
    pub fn destination_stats(&self) -> BTreeMap<String, DestinationStats> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        lock(&self.destinations)
            .iter()
            .map(|(name, (acceptor, d))| {
                let c = &d.counters;
                let stats = DestinationStats {
                    listen_addr: acceptor.addr,
                    target: d.target,
                    connections_total: get(&c.accepted),
                    attributed: get(&c.attributed),
                    self_dials: get(&c.self_dials),
                    unattributed: get(&c.unattributed),
                };
                (name.clone(), stats)
            })
            .collect()
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
                    connections_attributed: get(&c.connections_attributed),
                    connections_active: get(&c.connections_active),
                    bytes: get(&c.bytes),
                    resets: get(&c.resets),
                    dial_failures: get(&c.dial_failures),
                    ghosts: get(&c.ghosts),
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
        let destinations = std::mem::take(&mut *lock(&self.destinations));
        for (_, (a, _)) in destinations {
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
