//! The `redis` adapter: Redis over RESP2, through the `redis` crate's synchronous connection.
//!
//! - write: `SET key value`, then, with option `wait_replicas = N` (N > 0), `WAIT N timeout`.
//! - cas: one `EVAL` of a Lua script that reads the key, compares (a missing key matches only
//!   `from: None`), sets it on a match and otherwise returns the value found. Redis runs a script
//!   atomically, so no other command interleaves between the compare and the set.
//! - read: `GET key`. By default reads are served by a master only: the session sends
//!   `MULTI; ROLE; GET key; EXEC` (the role and the value from one atomic step) and answers
//!   `NotLeader` with the master's address if the node is a replica. With option
//!   `read_from_replicas = true` the session sends a plain `GET` to its node, whatever its role
//!   (the harness binds clients to nodes; replica reads are not linearizable, which is the
//!   point of testing them).
//!
//! Writes always go to the session's node: the harness gives each session the node it should use
//! (the master, for writes). A write sent to a replica is refused with `READONLY` (`Fail`).
//! Other options: `key_prefix` (default none), `db` (default 0), `username`, `password`,
//! `wait_timeout_ms` (default 1000).
//!
//! # Mapping
//!
//! | answer | reply |
//! |---|---|
//! | `GET`: a bulk string / nil | `Ok` with the value / absent |
//! | read on a replica, default mode: `ROLE` says `slave` | `NotLeader`, hint = the master's `host:port` as the replica knows it |
//! | `SET`: `OK` (and, with `wait_replicas`, `WAIT` reports at least N replicas) | `Ok` |
//! | `SET`: `OK`, but `WAIT` reports fewer than N replicas, or fails | `Info` (applied on the master, maybe not durable) |
//! | script: `{1}` | `Ok` (then `WAIT` as for `SET`) |
//! | script: `{0}` / `{0, v}` | `Fail("cas_mismatch")`, current = absent / `v` |
//! | `-MOVED slot host:port` (cluster) | `NotLeader`, hint = `host:port` |
//! | `-READONLY`, `-MASTERDOWN`, `-NOREPLICAS`, `-LOADING`, `-BUSY`, `-OOM`, `-MISCONF`, `-NOAUTH`, `-WRONGPASS`, `-NOPERM`, `-WRONGTYPE`, `-EXECABORT`, `-NOSCRIPT`, `-CLUSTERDOWN`, `-TRYAGAIN`, `-CROSSSLOT`, `-ASK`, `-ERR` | `Fail(CODE: message)` |
//! | any other error reply (a module's, a proxy's) | `Info` |
//! | a reply of an unexpected shape | `Info` |
//! | connecting failed (refused, timeout, handshake refused); the deadline passed before sending | `Fail` |
//! | timeout after sending; connection lost after sending | `Info` |
//!
//! Why those error replies are definite: Redis executes one command at a time, and each of the
//! commands used here either runs whole or not at all. `READONLY` (a write to a replica),
//! `MASTERDOWN` (a replica with `replica-serve-stale-data no` that lost its master),
//! `NOREPLICAS` (`min-replicas-to-write` not met), `LOADING`, `BUSY` (a script is running),
//! `OOM` (`maxmemory` reached), `MISCONF` (writes stopped after a failed save) and the
//! authentication and ACL errors are all checked in `processCommand` before the command runs.
//! Inside the cas script the same checks are made by `redis.call('SET', ...)` before the set,
//! which is the script's last call, so a script that errors has written nothing. `-ERR` is a
//! syntax, arity or argument error (or a script error before its set), and `WRONGTYPE` a command
//! refused on a key of another type: neither changes anything. The cluster redirections and
//! refusals (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `CROSSSLOT`) are decided before the
//! command runs. An error code not in this list is `Info`: the adapter cannot vouch for it.
//!
//! # What `WAIT` does and does not guarantee
//!
//! `WAIT N timeout` blocks until N replicas have acknowledged every write this connection made
//! so far, or the timeout passes, and answers how many did. It does **not** make Redis
//! strongly consistent: a write that `WAIT` did not see replicated is still applied on the master
//! (so it is `Info` here, never `Fail`), other clients may read it before it is replicated, and
//! it is not rolled back; a failover may promote a replica that did not get it (`WAIT` counts
//! any N replicas, and the promoted one may not be among them), losing even an acknowledged write.
//! What it does give: an `Ok` write had reached N replicas when it was acknowledged.
//!
//! A connection the node closed while idle (a node killed between two operations) is only
//! noticed when the next request is sent, so that request is `Info`; the next one reconnects.

use crate::config::{ConfigError, Options};
use crate::{
    remaining, split_host_port, too_late, Adapter, AdapterError, ConnectError, NodeEndpoint,
    NodeStatus, Op, OpContext, Reply, Role, Session,
};
use redis::{ConnectionLike, Value};
use std::io;
use std::time::{Duration, Instant};

/// The compare-and-set script: `KEYS[1]` the key; `ARGV[1]` `value` or `absent`, `ARGV[2]` the
/// expected value, `ARGV[3]` the new one. Returns `{1}` when set, `{0}` when the key was absent,
/// `{0, current}` when it held another value. The set is the last call, so a script that errors
/// has written nothing.
const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
local match
if ARGV[1] == 'absent' then match = (cur == false) else match = (cur == ARGV[2]) end
if match then
  redis.call('SET', KEYS[1], ARGV[3])
  return {1}
end
if cur == false then return {0} end
return {0, cur}
";

/// Error replies after which the command surely did not run (see the module documentation).
const DEFINITE_CODES: [&str; 18] = [
    "READONLY",
    "MASTERDOWN",
    "NOREPLICAS",
    "LOADING",
    "BUSY",
    "OOM",
    "MISCONF",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "WRONGTYPE",
    "EXECABORT",
    "NOSCRIPT",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "CROSSSLOT",
    "ASK",
    "ERR",
];

/// The `redis` adapter. Options: `read_from_replicas` (bool, default false), `wait_replicas`
/// (integer, default 0 = no `WAIT`), `wait_timeout_ms` (default 1000), `key_prefix`, `db`,
/// `username`, `password`.
#[derive(Debug, Clone)]
pub struct RedisAdapter {
    read_from_replicas: bool,
    wait_replicas: u64,
    wait_timeout: Duration,
    key_prefix: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
}

impl Default for RedisAdapter {
    fn default() -> Self {
        RedisAdapter::new()
    }
}

impl RedisAdapter {
    pub fn new() -> RedisAdapter {
        RedisAdapter {
            read_from_replicas: false,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(1000),
            key_prefix: String::new(),
            db: 0,
            username: None,
            password: None,
        }
    }

    /// Reads go to the session's node even if it is a replica.
    pub fn read_from_replicas(mut self, on: bool) -> RedisAdapter {
        self.read_from_replicas = on;
        self
    }

    /// After each write, `WAIT n timeout` (0: no `WAIT`).
    pub fn wait_replicas(mut self, n: u64, timeout: Duration) -> RedisAdapter {
        self.wait_replicas = n;
        self.wait_timeout = timeout;
        self
    }

    /// A prefix put in front of every key.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> RedisAdapter {
        self.key_prefix = prefix.into();
        self
    }

    pub(crate) fn from_options(o: &mut Options<'_>) -> Result<RedisAdapter, ConfigError> {
        let db = o.u64("db", 0)?;
        let a = RedisAdapter {
            read_from_replicas: o.bool("read_from_replicas", false)?,
            wait_replicas: o.u64("wait_replicas", 0)?,
            wait_timeout: Duration::from_millis(o.u64("wait_timeout_ms", 1000)?),
            key_prefix: o.string("key_prefix")?.unwrap_or_default(),
            db: i64::try_from(db).map_err(|_| o.bad("db", "too large"))?,
            username: o.string("username")?,
            password: o.string("password")?,
        };
        if a.wait_replicas > 0 && a.wait_timeout.is_zero() {
            // `WAIT n 0` blocks forever.
            return Err(o.bad(
                "wait_timeout_ms",
                "must be positive (WAIT with 0 blocks forever)",
            ));
        }
        Ok(a)
    }

    /// [`Adapter::connect`], with the concrete session type.
    pub fn open(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<RedisSession, ConnectError> {
        let (host, port) = split_host_port(&node.addr)?;
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host, port),
            redis: redis::RedisConnectionInfo {
                db: self.db,
                username: self.username.clone(),
                password: self.password.clone(),
                ..Default::default()
            },
        };
        let mut s = RedisSession {
            endpoint: node.clone(),
            info,
            con: None,
            cfg: self.clone(),
        };
        s.con = Some(s.dial(deadline)?);
        Ok(s)
    }
}

impl Adapter for RedisAdapter {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn connect(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<Box<dyn Session>, ConnectError> {
        Ok(Box::new(self.open(node, deadline)?))
    }
}

/// A session of the [`RedisAdapter`].
pub struct RedisSession {
    endpoint: NodeEndpoint,
    info: redis::ConnectionInfo,
    con: Option<redis::Connection>,
    cfg: RedisAdapter,
}

/// Why a command has no usable reply: the connection is dropped after any of these.
enum Broken {
    /// Nothing was sent.
    NotSent(String),
    /// The command may have run.
    Unknown(String),
}

impl From<Broken> for Reply {
    fn from(b: Broken) -> Reply {
        match b {
            Broken::NotSent(e) => Reply::fail(e),
            Broken::Unknown(e) => Reply::info(e),
        }
    }
}

impl RedisSession {
    fn dial(&self, deadline: Instant) -> Result<redis::Connection, ConnectError> {
        let addr = self.endpoint.addr.clone();
        let left = remaining(deadline).ok_or(ConnectError::Timeout { addr: addr.clone() })?;
        let client =
            redis::Client::open(self.info.clone()).map_err(|e| ConnectError::BadAddress {
                addr: addr.clone(),
                detail: e.to_string(),
            })?;
        client.get_connection_with_timeout(left).map_err(|e| {
            if e.is_timeout() {
                ConnectError::Timeout { addr }
            } else if e.is_io_error() {
                let kind = if e.is_connection_refusal() {
                    io::ErrorKind::ConnectionRefused
                } else {
                    io::ErrorKind::Other
                };
                ConnectError::Unreachable {
                    addr,
                    source: io::Error::new(kind, e.to_string()),
                }
            } else {
                ConnectError::Handshake {
                    addr,
                    detail: e.to_string(),
                }
            }
        })
    }

    /// A connection with `deadline` as its socket timeouts.
    fn live(&mut self, deadline: Instant) -> Result<&mut redis::Connection, Broken> {
        if self.con.as_ref().is_some_and(|c| !c.is_open()) {
            self.con = None;
        }
        let con = match self.con.take() {
            Some(c) => c,
            None => self
                .dial(deadline)
                .map_err(|e| Broken::NotSent(format!("connect: {e}")))?,
        };
        let Some(left) = remaining(deadline) else {
            self.con = Some(con);
            return Err(Broken::NotSent(too_late_text()));
        };
        if let Err(e) = con
            .set_read_timeout(Some(left))
            .and_then(|()| con.set_write_timeout(Some(left)))
        {
            return Err(Broken::NotSent(format!("connection: {e}")));
        }
        Ok(self.con.insert(con))
    }

    /// Sends one command; a server error comes back as `Ok(Value::ServerError)`.
    fn call(&mut self, cmd: &redis::Cmd, deadline: Instant) -> Result<Value, Broken> {
        let con = self.live(deadline)?;
        match con.req_command(cmd) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.con = None;
                Err(Broken::Unknown(transport_text(&e)))
            }
        }
    }

    fn prefixed(&self, key: &str) -> String {
        format!("{}{key}", self.cfg.key_prefix)
    }

    fn read(&mut self, key: &str, deadline: Instant) -> Reply {
        let key = self.prefixed(key);
        if self.cfg.read_from_replicas {
            return match self.call(redis::cmd("GET").arg(&key), deadline) {
                Ok(v) => get_reply(v),
                Err(b) => b.into(),
            };
        }
        // The role and the value in one atomic step.
        let mut p = redis::pipe();
        p.atomic().cmd("ROLE").cmd("GET").arg(&key);
        let con = match self.live(deadline) {
            Ok(c) => c,
            Err(b) => return b.into(),
        };
        let exec = match con.req_packed_commands(&p.get_packed_pipeline(), p.len() + 1, 1) {
            Ok(mut replies) => replies.pop(),
            Err(e) if e.is_io_error() || e.code().is_none() => {
                self.con = None;
                return Reply::info(transport_text(&e));
            }
            // An error reply while queueing (LOADING, say): EXEC was refused too.
            Err(e) => {
                return server_error(e.code().unwrap_or("ERR"), e.detail().unwrap_or_default())
            }
        };
        match exec {
            Some(Value::Array(items)) if items.len() == 2 => {
                let mut items = items.into_iter();
                let (Some(role), Some(value)) = (items.next(), items.next()) else {
                    return Reply::info("protocol: EXEC answer of the wrong length");
                };
                match parse_role(&role) {
                    Ok(ParsedRole::Master) => get_reply(value),
                    Ok(ParsedRole::Replica { master }) => Reply::NotLeader { hint: master },
                    Ok(ParsedRole::Other(r)) => Reply::fail(format!("not_master: role {r}")),
                    Err(e) => match role {
                        Value::ServerError(se) => {
                            server_error(se.code(), se.details().unwrap_or_default())
                        }
                        _ => Reply::info(format!("protocol: {e}")),
                    },
                }
            }
            Some(Value::ServerError(se)) => {
                server_error(se.code(), se.details().unwrap_or_default())
            }
            other => Reply::info(format!("protocol: unexpected EXEC answer {other:?}")),
        }
    }

    /// After an applied write: `WAIT`, if configured.
    fn after_write(&mut self, deadline: Instant) -> Reply {
        if self.cfg.wait_replicas == 0 {
            return Reply::Ok { value: None };
        }
        let Some(left) = remaining(deadline) else {
            return Reply::info("applied on the master; no time left to WAIT for replicas");
        };
        let ms = self.cfg.wait_timeout.min(left).as_millis().max(1);
        let wanted = self.cfg.wait_replicas;
        let cmd = redis::cmd("WAIT").arg(wanted).arg(ms as u64).clone();
        match self.call(&cmd, deadline) {
            Ok(Value::Int(n)) if n >= 0 && n as u64 >= wanted => Reply::Ok { value: None },
            Ok(Value::Int(n)) => Reply::info(format!(
                "applied on the master; WAIT: {n} of {wanted} replicas acknowledged"
            )),
            Ok(other) => Reply::info(format!("applied on the master; WAIT answered {other:?}")),
            Err(Broken::NotSent(e) | Broken::Unknown(e)) => {
                Reply::info(format!("applied on the master; WAIT: {e}"))
            }
        }
    }
}

impl Session for RedisSession {
    fn execute(&mut self, op: &Op, _ctx: &OpContext, deadline: Instant) -> Reply {
        if remaining(deadline).is_none() {
            return too_late();
        }
        match op {
            Op::Read { key } => self.read(key, deadline),
            Op::Write { key, value } => {
                let cmd = redis::cmd("SET").arg(self.prefixed(key)).arg(value).clone();
                match self.call(&cmd, deadline) {
                    Ok(Value::Okay) => self.after_write(deadline),
                    Ok(Value::SimpleString(s)) if s == "OK" => self.after_write(deadline),
                    Ok(Value::ServerError(se)) => {
                        server_error(se.code(), se.details().unwrap_or_default())
                    }
                    Ok(other) => Reply::info(format!("protocol: SET answered {other:?}")),
                    Err(b) => b.into(),
                }
            }
            Op::Cas { key, from, to } => {
                let (mode, expected) = match from {
                    Some(f) => ("value", f.as_str()),
                    None => ("absent", ""),
                };
                let cmd = redis::cmd("EVAL")
                    .arg(CAS_SCRIPT)
                    .arg(1)
                    .arg(self.prefixed(key))
                    .arg(mode)
                    .arg(expected)
                    .arg(to)
                    .clone();
                match self.call(&cmd, deadline) {
                    Ok(Value::Array(items)) => match items.as_slice() {
                        [Value::Int(1)] => self.after_write(deadline),
                        [Value::Int(0)] => Reply::Fail {
                            error: "cas_mismatch".into(),
                            current: Some(None),
                        },
                        [Value::Int(0), cur] => Reply::Fail {
                            error: "cas_mismatch".into(),
                            current: string_value(cur).ok().flatten().map(Some),
                        },
                        _ => Reply::info(format!("protocol: cas script answered {items:?}")),
                    },
                    Ok(Value::ServerError(se)) => {
                        server_error(se.code(), se.details().unwrap_or_default())
                    }
                    Ok(other) => Reply::info(format!("protocol: cas script answered {other:?}")),
                    Err(b) => b.into(),
                }
            }
        }
    }

    fn status(&mut self, deadline: Instant) -> Result<NodeStatus, AdapterError> {
        let role = match self.call(&redis::cmd("ROLE"), deadline) {
            Ok(Value::ServerError(se)) => {
                return Err(AdapterError::Refused(format!(
                    "{} {}",
                    se.code(),
                    se.details().unwrap_or_default()
                )))
            }
            Ok(v) => parse_role(&v).map_err(AdapterError::Protocol)?,
            Err(Broken::NotSent(e)) => return Err(AdapterError::Io(e)),
            Err(Broken::Unknown(e)) if e == "timeout" => return Err(AdapterError::Timeout),
            Err(Broken::Unknown(e)) => return Err(AdapterError::Io(e)),
        };
        Ok(match role {
            ParsedRole::Master => NodeStatus {
                role: Role::Leader,
                ..NodeStatus::unknown()
            },
            ParsedRole::Replica { master } => NodeStatus {
                role: Role::Follower,
                leader_addr: master,
                ..NodeStatus::unknown()
            },
            ParsedRole::Other(r) => NodeStatus {
                role: Role::Other(r),
                ..NodeStatus::unknown()
            },
        })
    }
}

fn too_late_text() -> String {
    "deadline passed before sending".into()
}

/// A transport error's text: `timeout`, or what broke.
fn transport_text(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_io_error() {
        format!("connection: {e}")
    } else {
        format!("protocol: {e}")
    }
}

/// Maps an error reply (see the module's table).
fn server_error(code: &str, detail: &str) -> Reply {
    if code == "MOVED" {
        // "MOVED <slot> <host:port>"
        return Reply::NotLeader {
            hint: detail.split_whitespace().nth(1).map(str::to_string),
        };
    }
    let error = format!("{code}: {detail}");
    if DEFINITE_CODES.contains(&code) {
        Reply::fail(error)
    } else {
        Reply::info(error)
    }
}

/// A `GET` reply as a read's reply.
fn get_reply(v: Value) -> Reply {
    match v {
        Value::ServerError(se) => server_error(se.code(), se.details().unwrap_or_default()),
        other => match string_value(&other) {
            Ok(value) => Reply::Ok { value },
            Err(e) => Reply::info(format!("protocol: {e}")),
        },
    }
}

/// A bulk string (or nil) as an optional UTF-8 string.
fn string_value(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => String::from_utf8(b.clone())
            .map(Some)
            .map_err(|_| "value is not UTF-8".into()),
        Value::SimpleString(s) => Ok(Some(s.clone())),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

enum ParsedRole {
    Master,
    /// A replica, with its master's `host:port` as it knows it.
    Replica {
        master: Option<String>,
    },
    Other(String),
}

/// Parses a `ROLE` reply: `["master", offset, [...]]` or `["slave", host, port, state, offset]`.
fn parse_role(v: &Value) -> Result<ParsedRole, String> {
    let Value::Array(items) = v else {
        return Err(format!("ROLE answered {v:?}"));
    };
    let name = items
        .first()
        .and_then(|n| string_value(n).ok().flatten())
        .ok_or_else(|| format!("ROLE answered {v:?}"))?;
    Ok(match name.as_str() {
        "master" => ParsedRole::Master,
        "slave" | "replica" => {
            let host = items.get(1).and_then(|h| string_value(h).ok().flatten());
            let port = match items.get(2) {
                Some(Value::Int(p)) => Some(p.to_string()),
                Some(other) => string_value(other).ok().flatten(),
                None => None,
            };
            ParsedRole::Replica {
                master: host.zip(port).map(|(h, p)| {
                    if h.contains(':') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }
                }),
            }
        }
        other => ParsedRole::Other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies() {
        assert_eq!(
            server_error("READONLY", "You can't write against a read only replica."),
            Reply::fail("READONLY: You can't write against a read only replica.")
        );
        assert_eq!(
            server_error("MOVED", "3999 127.0.0.1:6381"),
            Reply::NotLeader {
                hint: Some("127.0.0.1:6381".into())
            }
        );
        assert!(matches!(
            server_error("SOMEMODULE", "x"),
            Reply::Info { .. }
        ));
    }

    #[test]
    fn roles() {
        let master = Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(vec![]),
        ]);
        assert!(matches!(parse_role(&master), Ok(ParsedRole::Master)));
        let replica = Value::Array(vec![
            Value::BulkString(b"slave".to_vec()),
            Value::BulkString(b"127.0.0.1".to_vec()),
            Value::Int(6379),
            Value::BulkString(b"connected".to_vec()),
            Value::Int(10),
        ]);
        assert!(matches!(
            parse_role(&replica),
            Ok(ParsedRole::Replica { master: Some(m) }) if m == "127.0.0.1:6379"
        ));
        assert!(parse_role(&Value::Nil).is_err());
    }
}
