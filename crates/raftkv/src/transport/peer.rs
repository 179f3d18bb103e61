//! Peer connections.
//!
//! Each node dials each peer once and only *sends* on that connection; it only *receives* on
//! connections it accepted. So the directed link i→j is one TCP connection that a proxy can
//! hold, drop or delay on its own.
//!
//! Outgoing messages go through a bounded queue per peer. The Raft thread never blocks on a
//! peer: when a queue is full (the peer is slow, dead or partitioned) the message is dropped,
//! which Raft tolerates by design (it retries appends and heartbeats), and memory stays bounded.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use raft::{Message, NodeId};

use super::frame::{self, FrameError, MAX_FRAME, MAX_MESSAGE};
use super::handshake::{self, Hello, HelloReply, MAX_HANDSHAKE_FRAME};
use crate::config::{parse_node_id, Peer};
use crate::{debug, info, warn};

/// Messages queued per peer before new ones are dropped.
const QUEUE_LEN: usize = 4096;
/// Reconnect backoff bounds: quick enough that a restarted peer is back within half a second.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// A handshake (or a connect) that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// A write blocked this long (peer stopped, proxy holding bytes) drops the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Repeated warnings about the same peer problem are printed at most this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Who this node is, as told to peers.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cluster_id: String,
    pub name: String,
    pub id: NodeId,
    /// The client address announced to peers for `not_leader` hints.
    pub client_addr: Option<String>,
}

/// The client addresses of peers: learned in handshakes, overridden by `--peer-client`.
#[derive(Debug, Clone, Default)]
pub struct ClientDirectory {
    learned: Arc<RwLock<HashMap<NodeId, String>>>,
    overrides: Arc<HashMap<NodeId, String>>,
}

impl ClientDirectory {
    pub fn new(overrides: HashMap<NodeId, String>) -> Self {
        ClientDirectory {
            learned: Arc::default(),
            overrides: Arc::new(overrides),
        }
    }

    /// The client address of `node`, if known.
    pub fn get(&self, node: NodeId) -> Option<String> {
        if let Some(a) = self.overrides.get(&node) {
            return Some(a.clone());
        }
        let learned = self.learned.read().unwrap_or_else(|p| p.into_inner());
        learned.get(&node).cloned()
    }

    fn learn(&self, node: NodeId, addr: Option<String>) {
        if let Some(addr) = addr {
            let mut learned = self.learned.write().unwrap_or_else(|p| p.into_inner());
            learned.insert(node, addr);
        }
    }
}

/// The sending side: one bounded queue per peer, drained by that peer's dialer thread.
pub struct Outbox {
    queues: HashMap<NodeId, Sender<Message>>,
    dropped: AtomicU64,
}

impl Outbox {
    /// Queues a message for its addressee without blocking; drops it when the queue is full.
    pub fn send(&self, msg: Message) {
        let Some(q) = self.queues.get(&msg.to) else {
            debug!("no route to {}: message dropped", msg.to);
            return;
        };
        match q.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if crate::logging::rate_limited(&format!("queue-full-{}", m.to), WARN_EVERY) {
                    warn!(
                        "queue to {} full: dropping messages ({n} dropped so far)",
                        m.to
                    );
                }
            }
            // The dialer thread is gone only when the process is shutting down.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Starts the dialer threads and the peer listener.
pub struct PeerTransport;

impl PeerTransport {
    /// Starts one dialer thread per peer; returns the queues that feed them.
    pub fn start_dialers(me: &Identity, peers: &[Peer], directory: &ClientDirectory) -> Outbox {
        let mut queues = HashMap::new();
        for peer in peers {
            let (tx, rx) = bounded(QUEUE_LEN);
            queues.insert(peer.id, tx);
            let me = me.clone();
            let name = format!("dial-{}", peer.name);
            let peer = peer.clone();
            let directory = directory.clone();
            let spawned = thread::Builder::new()
                .name(name)
                .spawn(move || dial_loop(&me, &peer, &directory, &rx));
            if let Err(e) = spawned {
                warn!("cannot start a dialer thread: {e}");
            }
        }
        Outbox {
            queues,
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the accept loop; every valid message read from a peer is passed to `deliver`,
    /// which returns false once the node is gone.
    pub fn start_listener(
        listener: TcpListener,
        me: Identity,
        peers: Vec<Peer>,
        directory: ClientDirectory,
        deliver: impl Fn(Message) -> bool + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let shared = Arc::new(Inbound {
            me,
            peers,
            directory,
            deliver: Box::new(deliver),
            live: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
        });
        thread::Builder::new()
            .name("peer-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let stream = match conn {
                        Ok(s) => s,
                        Err(e) => {
                            warn!("peer accept failed: {e}");
                            // E.g. out of file descriptors: do not spin.
                            thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    let shared = shared.clone();
                    let spawned = thread::Builder::new()
                        .name("peer-in".into())
                        .spawn(move || shared.serve(stream));
                    if let Err(e) = spawned {
                        warn!("cannot start a peer connection thread: {e}");
                    }
                }
            })?;
        Ok(())
    }
}

/// What the threads serving accepted connections share.
struct Inbound {
    me: Identity,
    peers: Vec<Peer>,
    directory: ClientDirectory,
    deliver: Box<dyn Fn(Message) -> bool + Send + Sync>,
    /// The current connection from each peer. A peer dials us on one connection at a time, so
    /// a new handshake from it means the old connection is dead even if no FIN or RST came
    /// (a proxy holding it open, a peer host gone): the old one is shut down, which ends its
    /// reader thread instead of leaving it blocked forever.
    live: Mutex<HashMap<NodeId, (u64, TcpStream)>>,
    next_conn: AtomicU64,
}

/// Dials `peer` forever, sending what its queue holds; reconnects with backoff.
fn dial_loop(me: &Identity, peer: &Peer, directory: &ClientDirectory, rx: &Receiver<Message>) {
    let mut backoff = MIN_BACKOFF;
    let mut connected_before = false;
    loop {
        match connect(me, peer, directory) {
            Ok(stream) => {
                info!("connected to {} at {}", peer.name, peer.addr);
                connected_before = true;
                backoff = MIN_BACKOFF;
                match send_loop(&stream, rx) {
                    Ok(()) => return, // the node is shutting down
                    Err(e) => info!("connection to {} lost: {e}", peer.name),
                }
                let _ = stream.shutdown(Shutdown::Both);
            }
            Err(DialError::Refused(reason)) => {
                if crate::logging::rate_limited(&format!("refused-by-{}", peer.name), WARN_EVERY) {
                    warn!("{} at {} refused this node: {reason}", peer.name, peer.addr);
                }
                backoff = MAX_BACKOFF;
            }
            Err(DialError::Failed(e)) => {
                let key = format!("dial-{}", peer.name);
                if !connected_before && crate::logging::rate_limited(&key, WARN_EVERY) {
                    info!(
                        "cannot reach {} at {}: {e} (retrying)",
                        peer.name, peer.addr
                    );
                }
            }
        }
        // Wait out the backoff, discarding what queues up meanwhile: stale heartbeats and
        // appends are useless, and Raft resends what matters.
        let until = Instant::now() + backoff;
        loop {
            match rx.recv_deadline(until) {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

/// Connects to `peer` and completes the handshake.
fn connect(
    me: &Identity,
    peer: &Peer,
    directory: &ClientDirectory,
) -> Result<TcpStream, DialError> {
    let fail = |e: &dyn std::fmt::Display| DialError::Failed(e.to_string());
    let addr = peer
        .addr
        .to_socket_addrs()
        .map_err(|e| fail(&e))?
        .next()
        .ok_or_else(|| DialError::Failed(format!("{} resolves to no address", peer.addr)))?;
    let stream = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(|e| fail(&e))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        .map_err(|e| fail(&e))?;
    let hello = Hello {
        cluster_id: me.cluster_id.clone(),
        from: me.name.clone(),
        to: peer.name.clone(),
        client_addr: me.client_addr.clone(),
    };
    let mut w = &stream;
    frame::write_raw_frame(
        &mut w,
        &handshake::encode_hello(&hello),
        MAX_HANDSHAKE_FRAME,
    )
    .map_err(|e| fail(&e))?;
    let mut r = &stream;
    let reply: HelloReply = frame::read_frame(&mut r, MAX_HANDSHAKE_FRAME)
        .map_err(|e| fail(&e))?
        .ok_or_else(|| DialError::Failed("closed during the handshake".into()))?;
    match reply {
        HelloReply::Welcome { client_addr } => {
            directory.learn(peer.id, client_addr);
            stream.set_read_timeout(None).map_err(|e| fail(&e))?;
            stream
                .set_write_timeout(Some(WRITE_TIMEOUT))
                .map_err(|e| fail(&e))?;
            Ok(stream)
        }
        HelloReply::Refused { reason } => Err(DialError::Refused(reason)),
    }
}

/// Sends queued messages until the connection fails (`Err`) or the queue closes (`Ok`).
/// Writes everything already queued before flushing, so a burst costs one syscall.
fn send_loop(stream: &TcpStream, rx: &Receiver<Message>) -> Result<(), FrameError> {
    let mut w = BufWriter::with_capacity(256 << 10, stream);
    let mut buf = Vec::with_capacity(64 << 10);
    loop {
        let Ok(first) = rx.recv() else {
            return Ok(());
        };
        let mut next = Some(first);
        while let Some(msg) = next {
            buf.clear();
            // A message larger than a frame (a big snapshot) goes in chunks.
            match frame::encode_message(&msg, &mut buf, MAX_FRAME, MAX_MESSAGE) {
                Ok(()) => w.write_all(&buf)?,
                // Not the connection's fault: skip this message, keep the link.
                Err(e) => warn!("cannot send {} to {}: {e}", msg.body.kind(), msg.to),
            }
            next = rx.try_recv().ok();
        }
        w.flush()?;
    }
}

/// Serves one accepted connection: handshake, then read messages until it ends.
impl Inbound {
    fn serve(&self, stream: TcpStream) {
        let (me, peers, directory) = (&self.me, &self.peers, &self.directory);
        let remote = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        let from = match accept_hello(&stream, me, peers) {
            Ok((from, client_addr)) => {
                directory.learn(from, client_addr);
                from
            }
            Err(reason) => {
                if crate::logging::rate_limited(&format!("refuse-{reason}"), WARN_EVERY) {
                    warn!("refused peer connection from {remote}: {reason}");
                }
                let mut w = &stream;
                let _ = frame::write_frame(
                    &mut w,
                    &HelloReply::Refused {
                        reason: reason.clone(),
                    },
                    MAX_HANDSHAKE_FRAME,
                );
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        };
        let _ = stream.set_read_timeout(None);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.replace_live(from, conn, &stream);
        let mut r = BufReader::with_capacity(256 << 10, &stream);
        loop {
            match frame::read_message::<_, Message>(&mut r, MAX_FRAME, MAX_MESSAGE) {
                Ok(Some(msg)) => {
                    if msg.from != from || msg.to != me.id {
                        warn!(
                            "dropping connection from {from} ({remote}): message {}→{} on its link",
                            msg.from, msg.to
                        );
                        break;
                    }
                    if !(self.deliver)(msg) {
                        break;
                    }
                }
                Ok(None) => {
                    debug!("peer {from} ({remote}) closed its connection");
                    break;
                }
                Err(FrameError::Io(e)) => {
                    debug!("peer connection from {from} ({remote}) ended: {e}");
                    break;
                }
                Err(e) => {
                    warn!("dropping connection from {from} ({remote}): {e}");
                    break;
                }
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.get(&from).is_some_and(|(c, _)| *c == conn) {
            live.remove(&from);
        }
    }

    /// Records `stream` as the live connection from `from`, shutting the previous one down.
    fn replace_live(&self, from: NodeId, conn: u64, stream: &TcpStream) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = live.remove(&from) {
            debug!("new connection from {from} replaces the previous one");
            let _ = old.shutdown(Shutdown::Both);
        }
        if let Ok(clone) = stream.try_clone() {
            live.insert(from, (conn, clone));
        }
    }
}

/// Reads and checks the hello; answers `Welcome` and returns the peer, or returns the reason
/// to refuse.
fn accept_hello(
    stream: &TcpStream,
    me: &Identity,
    peers: &[Peer],
) -> Result<(NodeId, Option<String>), String> {
    let mut r = stream;
    let payload = frame::read_raw_frame(&mut r, MAX_HANDSHAKE_FRAME)
        .map_err(|e| format!("bad handshake frame: {e}"))?
        .ok_or("closed before the handshake")?;
    let hello = handshake::decode_hello(&payload).map_err(|e| e.to_string())?;
    handshake::check_hello(&hello, &me.cluster_id, &me.name, |p| {
        peers.iter().any(|q| q.name == p)
    })
    .map_err(|e| e.to_string())?;
    let from = parse_node_id(&hello.from).map_err(|e| e.to_string())?;
    let mut w = stream;
    frame::write_frame(
        &mut w,
        &HelloReply::Welcome {
            client_addr: me.client_addr.clone(),
        },
        MAX_HANDSHAKE_FRAME,
    )
    .map_err(|e| format!("cannot answer the handshake: {e}"))?;
    Ok((from, hello.client_addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;
    use raft::{MessageBody, Term};

    fn identity(cluster: &str, name: &str, id: u64) -> Identity {
        Identity {
            cluster_id: cluster.into(),
            name: name.into(),
            id: NodeId(id),
            client_addr: Some(format!("client-of-{name}")),
        }
    }

    fn vote(from: u64, to: u64) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(3),
            body: MessageBody::VoteResponse { granted: true },
        }
    }

    /// Starts n2's listener and n1's dialer towards it; returns what n2 receives, n1's
    /// outbox and both directories.
    fn link(n1_cluster: &str) -> (Receiver<Message>, Outbox, ClientDirectory, ClientDirectory) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let n1 = Peer {
            name: "n1".into(),
            id: NodeId(1),
            addr: "127.0.0.1:1".into(),
        };
        let n2 = Peer {
            name: "n2".into(),
            id: NodeId(2),
            addr,
        };
        let (tx, rx) = unbounded();
        let dir2 = ClientDirectory::default();
        PeerTransport::start_listener(
            listener,
            identity("c", "n2", 2),
            vec![n1],
            dir2.clone(),
            move |m| tx.send(m).is_ok(),
        )
        .unwrap();
        let dir1 = ClientDirectory::default();
        let outbox = PeerTransport::start_dialers(&identity(n1_cluster, "n1", 1), &[n2], &dir1);
        (rx, outbox, dir1, dir2)
    }

    #[test]
    fn messages_flow_after_a_handshake_that_exchanges_client_addresses() {
        let (rx, outbox, dir1, dir2) = link("c");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Early messages may be dropped while connecting: keep sending until one arrives.
        let got = loop {
            outbox.send(vote(1, 2));
            if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
                break m;
            }
            assert!(Instant::now() < deadline, "no message delivered");
        };
        assert_eq!(got, vote(1, 2));
        assert_eq!(dir1.get(NodeId(2)).as_deref(), Some("client-of-n2"));
        assert_eq!(dir2.get(NodeId(1)).as_deref(), Some("client-of-n1"));
    }

    #[test]
    fn a_node_of_another_cluster_is_refused() {
        let (rx, outbox, dir1, _) = link("other");
        for _ in 0..20 {
            outbox.send(vote(1, 2));
            assert!(rx.recv_timeout(Duration::from_millis(25)).is_err());
        }
        assert_eq!(dir1.get(NodeId(2)), None);
    }

    #[test]
    fn sending_to_a_dead_peer_never_blocks_and_memory_stays_bounded() {
        let dead = Peer {
            name: "n2".into(),
            id: NodeId(2),
            addr: "127.0.0.1:1".into(), // nothing listens on port 1
        };
        let outbox = PeerTransport::start_dialers(
            &identity("c", "n1", 1),
            &[dead],
            &ClientDirectory::default(),
        );
        let started = Instant::now();
        for _ in 0..(QUEUE_LEN * 20) {
            outbox.send(vote(1, 2));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(outbox.queues[&NodeId(2)].len() <= QUEUE_LEN);
        // A message for a node that is not a peer is dropped, not a panic.
        outbox.send(vote(1, 9));
    }

    #[test]
    fn a_new_connection_from_a_peer_closes_its_previous_one() {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let n1 = Peer {
            name: "n1".into(),
            id: NodeId(1),
            addr: "unused:1".into(),
        };
        PeerTransport::start_listener(
            listener,
            identity("c", "n2", 2),
            vec![n1],
            ClientDirectory::default(),
            |_| true,
        )
        .unwrap();
        let dial = || {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let hello = Hello {
                cluster_id: "c".into(),
                from: "n1".into(),
                to: "n2".into(),
                client_addr: None,
            };
            let mut w = &s;
            frame::write_raw_frame(
                &mut w,
                &handshake::encode_hello(&hello),
                MAX_HANDSHAKE_FRAME,
            )
            .unwrap();
            let mut r = &s;
            let reply: HelloReply = frame::read_frame(&mut r, MAX_HANDSHAKE_FRAME)
                .unwrap()
                .unwrap();
            assert!(matches!(reply, HelloReply::Welcome { .. }));
            s
        };
        let mut old = dial();
        let _new = dial();
        let mut buf = [0u8; 1];
        // The node shut the old connection down: end of stream, not a read timeout.
        assert_eq!(old.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn overrides_win_over_learned_client_addresses() {
        let dir = ClientDirectory::new(HashMap::from([(NodeId(2), "proxy:1".to_string())]));
        dir.learn(NodeId(2), Some("real:1".into()));
        dir.learn(NodeId(3), Some("real:3".into()));
        assert_eq!(dir.get(NodeId(2)).as_deref(), Some("proxy:1"));
        assert_eq!(dir.get(NodeId(3)).as_deref(), Some("real:3"));
        assert_eq!(dir.get(NodeId(4)), None);
    }
}
