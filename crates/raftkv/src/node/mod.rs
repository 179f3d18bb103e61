//! The node: wiring (storage, Raft core, listeners, threads) and the Raft thread's loop.
//!
//! Threads: the Raft thread ([`driver`], owns the `RawNode`); the disk writer ([`disk`], owns
//! the storage: group commit); the applier ([`applier`], owns the KV state machine and the
//! waiting clients); one dialer per peer and one thread per accepted peer connection
//! ([`crate::transport`]); an accept thread and one thread per client connection
//! ([`crate::client`]). They reach the Raft thread only through its inbox ([`Event`]).

mod admin;
mod applier;
mod disk;
mod driver;
pub mod pending;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded};
use raft::{Config, HardState, Index, RawNode, Restored};

use crate::client::{self, ClientCall};
use crate::config::NodeConfig;
use crate::kv::{KvError, KvStore, DEFAULT_MAX_SESSIONS};
use crate::planted::{self, OneWayLease, PlantedBug};
use crate::storage::{Storage, StorageError, StorageOptions};
use crate::transport::{ClientDirectory, Identity, PeerTransport};
use crate::{info, warn};

pub use driver::Driver;

/// Events queued for the Raft thread (in the inbox).
#[derive(Debug)]
pub enum Event {
    /// A message from a peer.
    Peer(raft::Message),
    /// A client request.
    Client(ClientCall),
    /// From the disk writer: this much of the log is durable.
    Persisted(raft::Persisted),
    /// From the applier: the state machine reflects the log through this index.
    Applied(Index),
    /// From the applier: a snapshot of the state machine at `index` (entry term `term`).
    Snapshot {
        index: Index,
        term: raft::Term,
        data: Vec<u8>,
    },
    /// From the disk writer or applier: the node must stop.
    Fatal(NodeError),
    /// SIGTERM or SIGINT: stop cleanly.
    Shutdown,
}

/// Inbox capacity. Senders block when it is full (back-pressure on peers and clients),
/// except the signal handler, which only sets a flag then.
const INBOX_LEN: usize = 16 * 1024;

/// Largest Raft message of entries, and so the largest proposal: a client line is at most
/// 1 MiB, so any valid write fits.
const MAX_BYTES_PER_MSG: u64 = 4 << 20;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage in {dir}: {source}")]
    Storage {
        dir: String,
        #[source]
        source: StorageError,
    },
    #[error("the durable state is inconsistent: {0}")]
    Raft(#[from] raft::Error),
    #[error("snapshot data: {0}")]
    Snapshot(#[from] KvError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot install the signal handler: {0}")]
    Signal(#[from] ctrlc::Error),
}

/// Runs a node until SIGTERM/SIGINT (`Ok`) or a fatal error.
pub fn run(cfg: NodeConfig) -> Result<(), NodeError> {
    let dir = cfg.data_dir.display().to_string();
    if let Some(bug) = cfg.planted {
        warn!(
            "PLANTED BUG {}: this is a test fixture, not a correct node",
            bug.name()
        );
    }
    // PLANTED(fx-bad-restart): after a crash, refuse to start (a made-up "corrupt log").
    if cfg.planted == Some(PlantedBug::BadRestart) {
        planted::bad_restart_on_start(&cfg.data_dir).map_err(|source| NodeError::Storage {
            dir: dir.clone(),
            source,
        })?;
    }
    let (storage, recovered) =
        Storage::open(&cfg.data_dir, StorageOptions::default()).map_err(|source| {
            NodeError::Storage {
                dir: dir.clone(),
                source,
            }
        })?;
    for repair in &recovered.repairs {
        warn!("storage repair: {repair}");
    }
    let kv = match &recovered.snapshot {
        Some(s) => KvStore::restore(&s.data, DEFAULT_MAX_SESSIONS)?,
        None => KvStore::new(DEFAULT_MAX_SESSIONS),
    };
    let snapshot_index = recovered.snapshot.as_ref().map_or(0, |s| s.meta.index.0);
    info!(
        "recovered from {dir}: term {} vote {:?} commit {}, snapshot at {snapshot_index} ({} keys), {} log entries",
        recovered.hard_state.term.0,
        recovered.hard_state.vote.map(|v| v.0),
        recovered.hard_state.commit.0,
        kv.len(),
        recovered.entries.len()
    );

    // The address book: every node that may ever be a member (the contract requires a
    // --peer for each). Without a configuration in the log or a snapshot, it is also the
    // configuration the cluster starts with, unless this node joins an existing cluster.
    let mut voters: Vec<_> = cfg.peers.iter().map(|p| p.id).collect();
    voters.push(cfg.id);
    voters.sort();
    let fresh = recovered.snapshot.is_none()
        && recovered.entries.is_empty()
        && recovered.hard_state == HardState::default();
    let joining = joining(&cfg.data_dir, cfg.join, fresh).map_err(|source| NodeError::Storage {
        dir: dir.clone(),
        source,
    })?;
    let bootstrap = if joining { Vec::new() } else { voters.clone() };
    let raft_cfg = Config {
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        max_bytes_per_msg: MAX_BYTES_PER_MSG,
        // A fresh seed per process, so restarted nodes do not time out in lockstep.
        seed: rand::random(),
        // PLANTED(fx-stale-reads): no check-quorum, so an isolated leader never steps down.
        check_quorum: cfg.planted != Some(PlantedBug::StaleReads),
        ..Config::new(cfg.id, bootstrap)
    };
    let mut hard_state = recovered.hard_state;
    if cfg.planted == Some(PlantedBug::LazyLog) {
        // Not the bug, the fixture's way back from it: a leader counts the entries this node
        // acknowledged before it lost them as matched, and would never send them again. A
        // higher term makes that leader step down; the next one re-learns this node's log.
        hard_state.term.0 += 1;
        hard_state.vote = None;
        // Nor is the stored commit index to be trusted (Raft keeps it volatile anyway): when a
        // majority lost entries, the next leader commits others at those indexes.
        hard_state.commit = Index(snapshot_index);
    }
    let raw = RawNode::new(
        raft_cfg,
        Restored {
            hard_state,
            snapshot: recovered.snapshot,
            entries: recovered.entries,
            applied: Index(0),
        },
    )?;

    let bind = |what, addr: &str| {
        TcpListener::bind(addr).map_err(|source| NodeError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
    };
    let client_listener = bind("clients", &cfg.client_listen)?;
    let peer_listener = bind("peers", &cfg.peer_listen)?;
    let client_addr = match &cfg.advertise_client {
        Some(a) => a.clone(),
        None => match client_listener.local_addr() {
            Ok(a) if a.ip().is_unspecified() => {
                warn!("clients are told to redirect to {a}: set --advertise-client to a reachable address");
                a.to_string()
            }
            Ok(a) => a.to_string(),
            Err(_) => cfg.client_listen.clone(),
        },
    };
    let me = Identity {
        cluster_id: cfg.cluster_id.clone(),
        name: cfg.name.clone(),
        id: cfg.id,
        client_addr: Some(client_addr.clone()),
    };
    let directory = ClientDirectory::new(cfg.peer_clients.clone().into_iter().collect());

    let (inbox, events) = bounded(INBOX_LEN);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (stop, inbox) = (stop.clone(), inbox.clone());
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            let _ = inbox.try_send(Event::Shutdown); // wakes the loop; the flag is the truth
        })?;
    }
    let outbox = Arc::new(PeerTransport::start_dialers(&me, &cfg.peers, &directory));
    {
        let inbox = inbox.clone();
        PeerTransport::start_listener(
            peer_listener,
            me.clone(),
            cfg.peers.clone(),
            directory.clone(),
            move |m| inbox.send(Event::Peer(m)).is_ok(),
        )
        .map_err(NodeError::Thread)?;
    }
    {
        let inbox = inbox.clone();
        client::start(
            client_listener,
            Arc::new(move |call| inbox.send(Event::Client(call)).is_ok()),
            cfg.request_timeout,
        )
        .map_err(NodeError::Thread)?;
    }
    let (disk_tx, disk_rx) = unbounded();
    let disk = {
        let writer = disk::DiskWriter {
            storage,
            outbox: outbox.clone(),
            inbox: inbox.clone(),
            lazy: cfg.planted == Some(PlantedBug::LazyLog),
        };
        std::thread::Builder::new()
            .name("disk".into())
            .spawn(move || writer.run(&disk_rx))
            .map_err(NodeError::Thread)?
    };
    let (applier_tx, applier_rx) = unbounded();
    let applier = {
        let applier = applier::Applier::new(kv, snapshot_index, cfg.snapshot_every, inbox.clone());
        std::thread::Builder::new()
            .name("applier".into())
            .spawn(move || applier.run(&applier_rx))
            .map_err(NodeError::Thread)?
    };
    drop(inbox);
    info!(
        "serving clients on {} (advertised {client_addr}), peers on {}, cluster {}",
        cfg.client_listen, cfg.peer_listen, cfg.cluster_id
    );

    let one_way = (cfg.planted == Some(PlantedBug::OneWay)).then(|| {
        OneWayLease::new(
            voters.len(),
            cfg.tick * cfg.election_ticks,
            cfg.tick * cfg.heartbeat_ticks,
        )
    });
    let mut driver = Driver::new(driver::Parts {
        name: cfg.name.clone(),
        cluster_id: cfg.cluster_id.clone(),
        planted: cfg.planted,
        one_way,
        raw,
        outbox,
        directory,
        voters,
        tick: cfg.tick,
        election_timeout: cfg.tick * cfg.election_ticks,
        disk: disk_tx,
        applier: applier_tx,
    });
    let result = driver.run(&events, &stop);
    // Hang up on both workers: the disk writer finishes what is queued, the applier fails the
    // clients still waiting. A worker that failed already returned.
    // Dropping the inbox too, so that a worker blocked on a full inbox gets an error instead.
    drop(driver);
    drop(events);
    let _ = disk.join();
    let _ = applier.join();
    if result.is_ok() && cfg.planted == Some(PlantedBug::BadRestart) {
        planted::bad_restart_on_clean_stop(&cfg.data_dir);
    }
    info!("stopped");
    result
}

/// Marks a data directory whose node joined an existing cluster (`--join`): it starts with no
/// configuration on every restart, flag or not, until its log or a snapshot holds one.
const JOINED_FILE: &str = "JOINED";

/// Whether this node starts without a configuration: `--join` on a fresh data directory
/// (which is then marked durably), or a directory marked before.
fn joining(data_dir: &std::path::Path, join: bool, fresh: bool) -> Result<bool, StorageError> {
    let marker = data_dir.join(JOINED_FILE);
    if marker.exists() {
        return Ok(true);
    }
    if !join {
        return Ok(false);
    }
    if !fresh {
        warn!("--join ignored: the data directory already holds state (the configuration comes from it)");
        return Ok(false);
    }
    crate::storage::write_marker(data_dir, JOINED_FILE)?;
    info!("joining: no configuration until a leader adds this node");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_takes_effect_on_a_fresh_directory_and_is_remembered() {
        let dir = std::env::temp_dir().join(format!("raftkv-join-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!joining(&dir, false, true).unwrap(), "no flag, no marker");
        assert!(
            !joining(&dir, true, false).unwrap(),
            "ignored on a directory that holds state"
        );
        assert!(!dir.join(JOINED_FILE).exists());
        assert!(joining(&dir, true, true).unwrap());
        assert!(dir.join(JOINED_FILE).exists());
        // Restarted without the flag, with state by now: still joining.
        assert!(joining(&dir, false, false).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
