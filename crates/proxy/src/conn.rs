//! One proxied connection: dialing the target, the two pumps, abort, and the registry that lets
//! shutdown find every live connection.
//!
//! Threads: the acceptor spawns one connection thread per accepted socket. It attributes the
//! connection to a link first if it came through a destination listener, waits out a held
//! handshake (dropping it as a ghost if its dialer is gone by the heal), dials, spawns the
//! backward pump, runs the forward pump itself, joins the backward one, and finally
//! unregisters. Two threads per live connection, none left after it ends.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, warn};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::attribute::{self, DialerSocket};
use crate::control::{lock, Control, Counters};
use crate::link::LinkId;
use crate::pump::{Dir, Pump};
use crate::sock;
use crate::HealMode;

/// Dialing a loopback target either succeeds or is refused at once; this only guards against a
/// target that is up but not accepting (e.g. SIGSTOPped with a full backlog).
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the facade, acceptors and connection threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub control: Control,
    pub conns: Mutex<BTreeMap<u64, Entry>>,
    pub next_conn: AtomicU64,
    pub heal_mode: HealMode,
    pub seed: u64,
}

/// A registered connection, as shutdown sees it.
#[derive(Debug)]
pub(crate) struct Entry {
    /// A handle on the accepted socket, so shutdown can abort a connection still being dialed.
    client: TcpStream,
    conn: Option<Arc<Conn>>,
    thread: Option<JoinHandle<()>>,
}

impl Entry {
    /// Aborts the connection and returns its thread to join.
    pub(crate) fn abort(self, control: &Control) -> Option<JoinHandle<()>> {
        match &self.conn {
            Some(conn) => conn.abort(control),
            None => sock::abort(&self.client),
        }
        self.thread
    }
}

/// Both sockets of a dialed connection. Each pump reads one and writes the other.
#[derive(Debug)]
pub(crate) struct Conn {
    /// `from->to#seq`, for log lines.
    pub label: String,
    /// The socket accepted from the dialer (`from`).
    pub client: TcpStream,
    /// The socket dialed to the target (`to`).
    pub server: TcpStream,
    aborted: AtomicBool,
}

impl Conn {
    /// Resets both sides (RST once every handle is dropped) and wakes both pumps. Idempotent.
    pub(crate) fn abort(&self, control: &Control) {
        if !self.aborted.swap(true, Ordering::SeqCst) {
            sock::abort(&self.client);
            sock::abort(&self.server);
            // A pump may be waiting on the link table for a heal; make it look again.
            control.notify();
        }
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// Where an accepted connection goes and which links govern it.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub link: LinkId,
    /// Slot of `from -> to`: governs bytes client -> server.
    pub forward: usize,
    /// Slot of `to -> from`: governs bytes server -> client.
    pub backward: usize,
    pub target: SocketAddr,
    /// The listener link's counters (connection counts live there).
    pub counters: Arc<Counters>,
}

/// Registers and starts the thread for a socket accepted on a per-link listener.
pub(crate) fn spawn(shared: &Arc<Shared>, client: TcpStream, peer: SocketAddr, route: &Route) {
    // First, before any counter shows the connection: was its link held since the accept?
    let accepted = shared.control.table().epochs();
    let seq = route
        .counters
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    let label = format!("{}#{}", route.link, seq);
    debug!(target: "proxy", "accept {label} from {peer}");
    let route = route.clone();
    let counters = Arc::clone(&route.counters);
    register(
        shared,
        client,
        label,
        Some(counters),
        move |reg, client, label| {
            run(&reg.shared, client, &route, label, (seq, reg.id), &accepted);
        },
    );
}

/// A registered connection's thread, as its body sees it. Dropping it (however the thread
/// ends) removes the registry entry and counts the connection closed.
pub(crate) struct Registered {
    pub shared: Arc<Shared>,
    pub id: u64,
    /// The link whose `connections_active` counts this connection, once known.
    counters: Option<Arc<Counters>>,
}

impl Registered {
    /// Counts the connection active on `counters` (until the thread ends).
    pub(crate) fn count_in(&mut self, counters: Arc<Counters>) {
        Counters::add(&counters.connections_active, 1);
        if let Some(old) = self.counters.replace(counters) {
            old.connections_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
        if let Some(c) = &self.counters {
            c.connections_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Registers a freshly accepted socket (so shutdown can find and abort it) and runs `body` on
/// its own thread, with the socket and `label`. With `counters`, the connection counts as
/// active there from now on. Returns false, having reset the socket, if it cannot be started.
pub(crate) fn register<F>(
    shared: &Arc<Shared>,
    client: TcpStream,
    label: String,
    counters: Option<Arc<Counters>>,
    body: F,
) -> bool
where
    F: FnOnce(&mut Registered, TcpStream, String) + Send + 'static,
{
    let handle = match client.try_clone() {
        Ok(h) => h,
        Err(e) => {
            warn!(target: "proxy", "reset {label}: cannot clone socket ({e})");
            sock::abort(&client);
            return false;
        }
    };
    if let Some(c) = &counters {
        Counters::add(&c.connections_active, 1);
    }
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    // Insert under the lock that the thread's own unregistering also takes, so the entry is
    // always there before the thread can try to remove it.
    let mut conns = lock(&shared.conns);
    let thread = {
        let shared = Arc::clone(shared);
        let counters = counters.clone();
        thread::Builder::new()
            .name(format!("proxy {label}"))
            .spawn(move || {
                // Built here, not moved in: if the spawn fails, nothing may try to unregister
                // under the lock this function holds.
                let mut reg = Registered {
                    shared,
                    id,
                    counters,
                };
                body(&mut reg, client, label);
            })
    };
    match thread {
        Ok(t) => {
            conns.insert(
                id,
                Entry {
                    client: handle,
                    conn: None,
                    thread: Some(t),
                },
            );
            true
        }
        Err(e) => {
            warn!(target: "proxy", "reset: cannot spawn a connection thread ({e})");
            sock::abort(&handle);
            if let Some(c) = &counters {
                c.connections_active.fetch_sub(1, Ordering::Relaxed);
            }
            false
        }
    }
}

/// Waits out a held handshake, dials the target and pumps both ways until the connection ends.
/// `seq` numbers the connection on its link, `id` in the registry; `accepted` is the table's
/// [`epochs`](crate::control::Table::epochs) when the socket was accepted.
pub(crate) fn run(
    shared: &Arc<Shared>,
    client: TcpStream,
    route: &Route,
    label: String,
    (seq, id): (u64, u64),
    accepted: &[u64],
) {
    let control = &shared.control;
    // A handshake needs both directions: while either is held, so is the dial. Held since the
    // accept counts, even if this thread got here only after the heal.
    match control.wait_open(route.forward, route.backward, accepted) {
        Err(_) => return,
        Ok(true) if shared.heal_mode == HealMode::Reset => {
            debug!(target: "proxy", "reset {label}: its handshake was held and the link healed");
            Counters::add(&route.counters.resets, 1);
            sock::abort(&client);
            return;
        }
        Ok(true) => {
            if let Some(why) = ghost(&client) {
                debug!(target: "proxy", "drop {label}: ghost: {why} while its handshake was held");
                Counters::add(&route.counters.ghosts, 1);
                sock::abort(&client);
                return;
            }
            debug!(target: "proxy", "release {label}: held handshake proceeds");
        }
        Ok(false) => {}
    }
    let server = match TcpStream::connect_timeout(&route.target, DIAL_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            // The target is down: the dialer sees its connection reset, as close to a refused
            // connection as a proxy that already accepted can get.
            debug!(target: "proxy", "reset {label}: dial {} failed ({e})", route.target);
            Counters::add(&route.counters.dial_failures, 1);
            sock::abort(&client);
            return;
        }
    };
    if let Err(e) = sock::tune(&client).and_then(|()| sock::tune(&server)) {
        debug!(target: "proxy", "reset {label}: socket setup failed ({e})");
        sock::abort(&client);
        sock::abort(&server);
        return;
    }
    let (client_r, server_r) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            warn!(target: "proxy", "reset {label}: cannot clone sockets ({e})");
            sock::abort(&client);
            sock::abort(&server);
            return;
        }
    };
    let conn = Arc::new(Conn {
        label,
        client: client_r,
        server: server_r,
        aborted: AtomicBool::new(false),
    });
    {
        let mut conns = lock(&shared.conns);
        match conns.get_mut(&id) {
            // Shutdown closes the table before it takes the registry: if the entry is gone or
            // the table is closing, shutdown will not (or did not) see this connection.
            Some(entry) if !control.is_closing() => entry.conn = Some(Arc::clone(&conn)),
            _ => {
                conn.abort(control);
                return;
            }
        }
    }
    let rng = |dir: Dir| StdRng::seed_from_u64(pump_seed(shared.seed, &route.link, seq, dir));
    let backward = Pump::new(
        Arc::clone(shared),
        Arc::clone(&conn),
        Dir::Backward,
        route.backward,
        rng(Dir::Backward),
    );
    let back = thread::Builder::new()
        .name(format!("proxy {} back", conn.label))
        .spawn(move || backward.run());
    let back = match back {
        Ok(t) => t,
        Err(e) => {
            warn!(target: "proxy", "reset {}: cannot spawn pump ({e})", conn.label);
            conn.abort(control);
            return;
        }
    };
    Pump::new(
        Arc::clone(shared),
        Arc::clone(&conn),
        Dir::Forward,
        route.forward,
        rng(Dir::Forward),
    )
    .run();
    if back.join().is_err() {
        // A pump panicked: our bug. Reset rather than leave the connection half-served.
        conn.abort(control);
    }
    debug!(target: "proxy", "close {}", conn.label);
}

/// Whether a connection whose handshake was held must be dropped rather than delivered on
/// heal, and why: the dialer reset it, or no process holds the dialer's socket any more (it was
/// closed, or its process died). A dialer that half-closed (`shutdown(Write)`) still holds its
/// socket and is delivered. If `/proc` cannot tell, only an end of stream with no data before it
/// counts as gone.
fn ghost(client: &TcpStream) -> Option<String> {
    let eof = match sock::peek_nonblocking(client) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
        Err(e) => return Some(format!("the dialer reset ({e})")),
    };
    let (dialer, listener) = match (client.peer_addr(), client.local_addr()) {
        (Ok(d), Ok(l)) => (d, l),
        (Err(e), _) | (_, Err(e)) => return Some(format!("the dialer is gone ({e})")),
    };
    match attribute::dialer_socket(dialer, listener) {
        Ok(DialerSocket::Open(_)) => None,
        Ok(DialerSocket::Orphaned) => Some(format!(
            "the dialer (port {}) closed its socket or died",
            dialer.port()
        )),
        Ok(DialerSocket::Missing) => Some(format!(
            "the dialer's socket (port {}) is gone",
            dialer.port()
        )),
        Err(e) => {
            debug!(target: "proxy", "ghost check without /proc: {e}");
            eof.then(|| "the dialer closed without sending anything".to_string())
        }
    }
}

/// A per-connection, per-direction RNG seed derived from the proxy seed, so that the same
/// sequence of connections on a link draws the same delays whatever the thread interleaving.
fn pump_seed(seed: u64, link: &LinkId, seq: u64, dir: Dir) -> u64 {
    // FNV-1a over the link name: stable across Rust releases, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in link.from.bytes().chain([0]).chain(link.to.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let dir = match dir {
        Dir::Forward => 0,
        Dir::Backward => 1,
    };
    splitmix(splitmix(splitmix(seed ^ h) ^ seq) ^ dir)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
