//! Destination listeners: one listener per destination node, each accepted connection
//! attributed to the candidate node process that dialed it, then proxied exactly as if it had
//! been accepted on that node's per-link listener.
//!
//! Attribution runs on the connection's own thread (it may retry for a few ms), so a slow
//! attribution never delays other accepts.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use log::{debug, info, warn};

use crate::attribute;
use crate::conn::{self, Registered, Route, Shared};
use crate::control::Counters;
use crate::link::LinkId;
use crate::sock;

/// The node processes that may dial a destination, as `(node id, root pid)`: see
/// [`Proxy::add_destination`](crate::Proxy::add_destination).
pub type Candidates = Arc<dyn Fn() -> Vec<(String, u32)> + Send + Sync>;

/// A destination listener's identity and counters.
pub(crate) struct Destination {
    pub name: String,
    pub target: SocketAddr,
    pub candidates: Candidates,
    /// The private slot carrying self-dials (the destination node dialing itself).
    pub self_slot: usize,
    pub counters: DestCounters,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct DestCounters {
    pub accepted: AtomicU64,
    pub attributed: AtomicU64,
    pub self_dials: AtomicU64,
    pub unattributed: AtomicU64,
}

/// Registers and starts the thread for a socket accepted on `dest`'s listener.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    client: TcpStream,
    peer: SocketAddr,
    dest: &Arc<Destination>,
) {
    // First, before any counter shows the connection: whether its link was held since this
    // instant decides the ghost check, once the link is known.
    let accepted = shared.control.table().epochs();
    let n = dest.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let label = format!("*->{}#{n}", dest.name);
    debug!(target: "proxy", "accept {label} from {peer}");
    let d = Arc::clone(dest);
    let started = conn::register(shared, client, label, None, move |reg, client, label| {
        if let Some((route, pid)) = attribute_route(reg, &d, &client, peer, &label) {
            let seq = route
                .counters
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            reg.count_in(Arc::clone(&route.counters));
            let link_label = format!("{}#{seq}", route.link);
            debug!(target: "proxy", "attribute {label} from {peer} to {link_label}: pid {pid}");
            let ids = (seq, reg.id);
            conn::run(&reg.shared, client, &route, link_label, ids, &accepted);
        }
    });
    if !started {
        Counters::add(&dest.counters.unattributed, 1);
    }
}

/// Which link the connection belongs to, and the pid that holds the dialer's socket; or
/// `None`, having counted, logged and reset an unattributable connection.
fn attribute_route(
    reg: &Registered,
    dest: &Destination,
    client: &TcpStream,
    peer: SocketAddr,
    label: &str,
) -> Option<(Route, u32)> {
    let shared = &reg.shared;
    let found = client
        .local_addr()
        .map_err(|e| format!("no local address ({e})"))
        .and_then(|listener| {
            // A panicking callback is the caller's bug; it costs this connection, not the proxy.
            let candidates = panic::catch_unwind(AssertUnwindSafe(|| (dest.candidates)()))
                .map_err(|_| "the candidates callback panicked".to_string())?;
            let roots: Vec<u32> = candidates.iter().map(|(_, pid)| *pid).collect();
            let (i, pid) =
                attribute::attribute(peer, listener, &roots, || shared.control.is_closing())
                    .map_err(|e| e.to_string())?;
            match candidates.into_iter().nth(i) {
                Some((node, _)) => Ok((node, pid)),
                None => Err("attribution out of range".to_string()),
            }
        });
    let (node, pid) = match found {
        Ok(found) => found,
        Err(_) if shared.control.is_closing() => {
            sock::abort(client);
            return None;
        }
        Err(why) => {
            Counters::add(&dest.counters.unattributed, 1);
            warn!(
                target: "proxy",
                "unattributed {label} from source port {}: {why}; resetting it",
                peer.port()
            );
            sock::abort(client);
            return None;
        }
    };
    let route = if node == dest.name {
        Counters::add(&dest.counters.self_dials, 1);
        let t = shared.control.table();
        Route {
            link: LinkId::new(node.as_str(), node.as_str()),
            forward: dest.self_slot,
            backward: dest.self_slot,
            target: dest.target,
            counters: Arc::clone(&t.slots[dest.self_slot].counters),
        }
    } else {
        Counters::add(&dest.counters.attributed, 1);
        let link = LinkId::new(node.as_str(), dest.name.as_str());
        let mut t = shared.control.table();
        if t.find(&link).is_none() {
            info!(target: "proxy", "link {link} via destination listener (no listener of its own)");
        }
        let forward = t.ensure(&link);
        let backward = t.ensure(&link.reversed());
        let counters = Arc::clone(&t.slots[forward].counters);
        Counters::add(&counters.connections_attributed, 1);
        Route {
            link,
            forward,
            backward,
            target: dest.target,
            counters,
        }
    };
    Some((route, pid))
}
