//! Client adapters: how the harness talks to a store it did not write.
//!
//! Every store under test is reached through one [`Adapter`] per run (built from the `[client]`
//! table of a system spec with [`from_config`] / [`from_client_table`]), which opens one
//! [`Session`] per client worker and node. A session executes read / write / cas operations and
//! maps each answer to a [`Reply`]:
//!
//! | reply | history | meaning |
//! |---|---|---|
//! | [`Reply::Ok`] | `ok` | the operation took effect (a read: the value read) |
//! | [`Reply::Fail`] | `fail` | the operation **surely** did not take effect, and never will |
//! | [`Reply::NotLeader`] | `fail` | surely not applied; the store names another node to try |
//! | [`Reply::Info`] | `info` | it may or may not have taken effect, now or later |
//!
//! The checker's verdict depends on this split: an adapter must never answer `Fail` or
//! `NotLeader` for an operation that might have been applied. When in doubt: `Info`. A session
//! is expected to be dropped after an `Info` (the harness continues under a new process number),
//! but every session here also stays correct if it is reused: a connection whose state is unknown
//! is discarded, and the next call opens a new one.
//!
//! The adapters, each documenting its exact mapping in its module and in `docs/adapters.md`:
//!
//! - [`native`]: the JSON-lines protocol of `docs/protocol.md` (the reference node `raftkv`);
//! - [`etcd`]: etcd v3 through its JSON gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`);
//! - [`redis`]: Redis over RESP (`GET`, `SET`, cas as a Lua script, optional `WAIT`);
//! - [`external`]: any program speaking a small JSON-lines protocol on stdin/stdout, so that an
//!   adapter can be written in any language with the store's own client library.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

pub mod config;
pub mod etcd;
pub mod external;
mod lines;
pub mod native;
pub mod redis;

pub use config::{from_client_table, from_config, from_toml, ConfigError, ADAPTERS};

/// An operation on one key of the register workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read `key`.
    Read { key: String },
    /// Set `key` to `value`.
    Write { key: String, value: String },
    /// Set `key` to `to` if it currently holds `from`; `from: None` means "only if `key` is
    /// absent".
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
}

impl Op {
    /// The history's `f`: `read`, `write` or `cas`.
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
        }
    }

    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => key,
        }
    }

    /// Whether the operation may change state (write, cas).
    pub fn is_update(&self) -> bool {
        !matches!(self, Op::Read { .. })
    }
}

/// A change to the cluster itself rather than to its data, for the harness's `membership`
/// nemesis ([`Session::admin`]). Answered with a [`Reply`] under the same rules as data
/// operations: `Fail` only when the change surely did not and will not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    /// Make `node` a voting member. It joins as a new member, with an empty data directory.
    AddMember { node: String },
    /// Take `node` out of the configuration.
    RemoveMember { node: String },
    /// Hand leadership to `node`, or to the store's choice when `None`.
    TransferLeader { node: Option<String> },
}

impl AdminOp {
    /// The operation's name in events and messages (`add_member`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            AdminOp::AddMember { .. } => "add_member",
            AdminOp::RemoveMember { .. } => "remove_member",
            AdminOp::TransferLeader { .. } => "transfer_leader",
        }
    }
}

/// How one attempt at an operation ended, as far as the store told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The operation took effect. A read carries the value read (`None`: the key is absent);
    /// a write or cas carries `None`.
    Ok { value: Option<String> },
    /// The operation surely did not take effect and never will. `error` is a short code
    /// (`cas_mismatch` for a cas whose expected value did not match, in every adapter), maybe
    /// followed by `": "` and details. A cas mismatch may report the value found:
    /// `current: Some(None)` = the key was absent, `Some(Some(v))` = it held `v`, `None` = not
    /// reported.
    Fail {
        error: String,
        current: Option<Option<String>>,
    },
    /// The operation may or may not have taken effect (timeout, connection lost after sending,
    /// garbled answer, an error the store does not promise to be definite).
    Info { error: String },
    /// The node refused the operation without applying it because it is not the one that
    /// serves it; `hint` is an address the store names as the leader (or master), if any.
    NotLeader { hint: Option<String> },
}

/// The three history outcomes a [`Reply`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
}

impl Reply {
    /// A `Fail` without a reported current value.
    pub fn fail(error: impl Into<String>) -> Reply {
        Reply::Fail {
            error: error.into(),
            current: None,
        }
    }

    /// An `Info`.
    pub fn info(error: impl Into<String>) -> Reply {
        Reply::Info {
            error: error.into(),
        }
    }

    /// The history outcome: `NotLeader` is a `fail`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Reply::Ok { .. } => Outcome::Ok,
            Reply::Fail { .. } | Reply::NotLeader { .. } => Outcome::Fail,
            Reply::Info { .. } => Outcome::Info,
        }
    }

    /// The history's `error` field (`None` for `Ok`; `not_leader` for `NotLeader`).
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Ok { .. } => None,
            Reply::Fail { error, .. } | Reply::Info { error } => Some(error),
            Reply::NotLeader { .. } => Some("not_leader"),
        }
    }
}

/// Who is asking: the session fields for at-most-once retries, where the protocol has them
/// (`native`, and `external` passes them on). `client` is stable for a history process
/// (e.g. `p3`), `seq` grows with each new operation of that client and is reused by a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpContext {
    pub client: String,
    pub seq: u64,
}

impl OpContext {
    pub fn new(client: impl Into<String>, seq: u64) -> OpContext {
        OpContext {
            client: client.into(),
            seq,
        }
    }
}

/// The node a session talks to, as the harness knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// The harness's id of the node (`n1`, ...).
    pub node: String,
    /// Where to connect (`host:port`): usually a proxy listener in front of the node's client
    /// port.
    pub addr: String,
    /// The cluster id the node must report, where the store reports one (the native adapter
    /// compares it with `status`'s `cluster` field).
    pub cluster: Option<String>,
}

impl NodeEndpoint {
    pub fn new(node: impl Into<String>, addr: impl Into<String>) -> NodeEndpoint {
        NodeEndpoint {
            node: node.into(),
            addr: addr.into(),
            cluster: None,
        }
    }

    /// Expects the node to report this cluster id.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> NodeEndpoint {
        self.cluster = Some(cluster.into());
        self
    }
}

/// A node's role, as far as the store says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Role {
    /// The Raft leader, or the Redis master.
    Leader,
    /// A Raft follower, or a Redis replica.
    Follower,
    /// A Raft candidate (or pre-candidate).
    Candidate,
    /// Another role the store named.
    Other(String),
    /// The store does not say.
    #[default]
    Unknown,
}

impl Role {
    /// Parses a native-protocol role name.
    pub fn from_name(name: &str) -> Role {
        match name {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" | "pre_candidate" => Role::Candidate,
            other => Role::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Leader => f.write_str("leader"),
            Role::Follower => f.write_str("follower"),
            Role::Candidate => f.write_str("candidate"),
            Role::Other(s) => f.write_str(s),
            Role::Unknown => f.write_str("unknown"),
        }
    }
}

/// A node's view of the cluster (not linearizable; for leader discovery and humans).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// The node's own id, as the store names it (native: `node`; etcd: the member name).
    pub node: Option<String>,
    pub role: Role,
    /// The Raft term, where there is one.
    pub term: Option<u64>,
    /// The id of the leader this node knows of (native: node id; etcd: member name).
    pub leader: Option<String>,
    /// The leader's (or master's) address, where the store gives one instead of an id (Redis).
    pub leader_addr: Option<String>,
    /// The cluster id the node reports (native `cluster`, etcd `cluster_id`).
    pub cluster: Option<String>,
    /// The voting members in this node's latest configuration, where the store says.
    pub voters: Option<Vec<String>>,
    /// The non-voting members (learners catching up), where the store says.
    pub learners: Option<Vec<String>>,
}

impl NodeStatus {
    /// Nothing known.
    pub fn unknown() -> NodeStatus {
        NodeStatus::default()
    }
}

/// Why a session could not be opened. In every case nothing that could change the store's
/// state was sent: an operation that needed this connection surely did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address does not parse or resolve.
    #[error("bad address {addr:?}: {detail}")]
    BadAddress { addr: String, detail: String },
    /// Connecting failed (refused, unreachable).
    #[error("connect to {addr}: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// No connection, or no answer to the handshake, before the deadline.
    #[error("connect to {addr}: no answer before the deadline")]
    Timeout { addr: String },
    /// The node answered, but is not the one the harness expects.
    #[error("{addr} is not the expected node: {what} is {found:?}, expected {expected:?}")]
    WrongNode {
        addr: String,
        what: &'static str,
        expected: String,
        found: String,
    },
    /// The handshake failed (refused, or an answer that does not follow the protocol).
    #[error("handshake with {addr}: {detail}")]
    Handshake { addr: String, detail: String },
    /// An external adapter process could not be started.
    #[error("start adapter process {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// Why a `status` call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("timeout")]
    Timeout,
    #[error("connection: {0}")]
    Io(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("not supported by this adapter")]
    Unsupported,
}

/// One per run: knows how to reach the store's nodes. Built from a system spec's `[client]`
/// table by [`from_config`].
pub trait Adapter: Send + Sync {
    /// The adapter's kind, as in the spec (`native`, `etcd`, `redis`, `external`).
    fn name(&self) -> &'static str;

    /// Opens a session to `node`. An error means nothing was sent that could change state.
    fn connect(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<Box<dyn Session>, ConnectError>;
}

/// One per client worker and node. Meant to be dropped after an [`Reply::Info`].
pub trait Session: Send {
    /// Runs one attempt of `op` on this session's node, answering by `deadline` (a little later
    /// at most, for an external adapter's grace period).
    fn execute(&mut self, op: &Op, ctx: &OpContext, deadline: Instant) -> Reply;

    /// The node's view of the cluster, where the store can say; [`NodeStatus::unknown`] by
    /// default.
    fn status(&mut self, _deadline: Instant) -> Result<NodeStatus, AdapterError> {
        Ok(NodeStatus::unknown())
    }

    /// Changes the cluster's membership or leadership; a definite failure (`unsupported`) by
    /// default, for stores whose adapter has no admin operations.
    fn admin(&mut self, op: &AdminOp, _deadline: Instant) -> Reply {
        Reply::fail(format!(
            "unsupported: this adapter has no {} operation",
            op.name()
        ))
    }
}

/// Time left until `deadline`, or `None` if it has passed.
pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// The reply for an operation whose deadline passed before anything was sent.
pub(crate) fn too_late() -> Reply {
    Reply::fail("deadline passed before sending")
}

/// Splits `host:port` (`[v6]:port` too).
pub(crate) fn split_host_port(addr: &str) -> Result<(String, u16), ConnectError> {
    let bad = |detail: &str| ConnectError::BadAddress {
        addr: addr.to_string(),
        detail: detail.to_string(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host.to_string(), port))
}

/// Resolves `host:port` to its first socket address.
pub(crate) fn resolve(addr: &str) -> Result<std::net::SocketAddr, ConnectError> {
    use std::net::ToSocketAddrs;
    let bad = |detail: String| ConnectError::BadAddress {
        addr: addr.to_string(),
        detail,
    };
    addr.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("127.0.0.1:80").ok(),
            Some(("127.0.0.1".into(), 80))
        );
        assert_eq!(split_host_port("[::1]:7").ok(), Some(("::1".into(), 7)));
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[test]
    fn outcomes() {
        assert_eq!(Reply::Ok { value: None }.outcome(), Outcome::Ok);
        assert_eq!(Reply::NotLeader { hint: None }.outcome(), Outcome::Fail);
        assert_eq!(Reply::NotLeader { hint: None }.error(), Some("not_leader"));
        assert_eq!(Reply::info("timeout").outcome(), Outcome::Info);
    }
}
