//! The `etcd` adapter: etcd v3 through its JSON gateway, over HTTP/1.1 (no TLS).
//!
//! - read: `POST /v3/kv/range {"key"}` (linearizable; option `serializable_reads = true` adds
//!   `"serializable": true`, a local read that is **not** linearizable).
//! - write: `POST /v3/kv/put {"key","value"}`.
//! - cas: `POST /v3/kv/txn` comparing `VALUE == from` (or `CREATE` revision `== 0` when `from` is
//!   absent, i.e. "the key does not exist"), with a put on success and a range on failure, so a
//!   mismatch reports the value found.
//!
//! Keys and values are base64 in the gateway's JSON; int64 fields are strings; fields with
//! default values are omitted from answers (no `kvs`: the key is absent; a kv without `value`:
//! the empty string; no `succeeded`: false). Keys get option `key_prefix` (default none) in
//! front. Each session has its own HTTP agent and reuses one keep-alive connection; every
//! request carries the operation's deadline as its overall timeout.
//!
//! # Identity check
//!
//! On connect the session asks `POST /v3/maintenance/status` (which proves the member answers)
//! and, with `check_identity = true` (the default), `POST /v3/cluster/member/list`, and refuses
//! a member whose name differs from [`NodeEndpoint::node`] (start members with `--name <node
//! id>`). etcd's cluster id is a hash the harness cannot know beforehand, so
//! [`NodeEndpoint::cluster`] is not compared; it is reported by `status`.
//!
//! # Mapping
//!
//! | answer | reply |
//! |---|---|
//! | 200 to a range | `Ok` with the value (no `kvs`: absent) |
//! | 200 to a put | `Ok` |
//! | 200 to the txn, `succeeded: true` | `Ok` |
//! | 200 to the txn, no `succeeded` | `Fail("cas_mismatch")` with the value the failure branch read |
//! | 200 with a body that does not parse as the answer expected | `Info` |
//! | gRPC code 3 `InvalidArgument` (HTTP 400): bad key, request too large, bad JSON or base64 | `Fail` |
//! | gRPC code 5 `NotFound`, 12 `Unimplemented`: no such method | `Fail` |
//! | gRPC code 7 `PermissionDenied`, 16 `Unauthenticated` | `Fail` |
//! | gRPC code 8 `ResourceExhausted`: too many requests, no space (alarm), message too large | `Fail` |
//! | gRPC code 11 `OutOfRange`: compacted / future revision (reads at a revision only) | `Fail` |
//! | gRPC code 14 `Unavailable` (HTTP 503): request timed out, leader changed, no leader, stopped | `Info` |
//! | gRPC code 4 `DeadlineExceeded`, 1 `Canceled`, 2 `Unknown`, 9 `FailedPrecondition`, 10 `Aborted`, 13 `Internal`, 15 `DataLoss`, any other | `Info` |
//! | no gRPC error body: HTTP 400, 401, 403, 404, 405, 411, 413, 414, 415, 431 | `Fail` |
//! | no gRPC error body: any other status (5xx, 408, 429, ...) | `Info` |
//! | connection refused, or no connection within the deadline (nothing sent) | `Fail` |
//! | the deadline passed before sending; a bad address | `Fail` |
//! | timeout after connecting; connection reset or closed; a broken response | `Info` |
//!
//! Why those are definite: etcd validates a request (key present, size, txn shape) in its gRPC
//! layer before proposing it to Raft, and the gateway rejects malformed JSON or base64 before
//! calling etcd at all (`InvalidArgument`). "Too many requests" is refused before proposing; a
//! space quota alarm rejects the write in the gRPC quota check, or deterministically on every
//! member when the entry is applied, so it never takes effect. Permission checks happen before
//! proposing or deterministically at apply time. A path or method the gateway does not serve
//! (404, 405) never reaches the key-value store. `Unavailable` covers errors after proposing
//! ("request timed out", "leader changed"): the entry may still commit, so it is `Info`, and so
//! is every code whose meaning for a kv request is not documented as "rejected".

use crate::config::{ConfigError, Options};
use crate::{
    remaining, split_host_port, too_late, Adapter, AdapterError, ConnectError, NodeEndpoint,
    NodeStatus, Op, OpContext, Reply, Role, Session,
};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io;
use std::time::{Duration, Instant};

/// The largest answer body read (one kv, or a member list).
const MAX_BODY: u64 = 16 << 20;

/// The `etcd` adapter. Options: `serializable_reads` (bool, default false), `key_prefix`
/// (string, default ""), `check_identity` (bool, default true).
#[derive(Debug, Clone)]
pub struct EtcdAdapter {
    serializable_reads: bool,
    key_prefix: String,
    check_identity: bool,
}

impl Default for EtcdAdapter {
    fn default() -> Self {
        EtcdAdapter::new()
    }
}

impl EtcdAdapter {
    pub fn new() -> EtcdAdapter {
        EtcdAdapter {
            serializable_reads: false,
            key_prefix: String::new(),
            check_identity: true,
        }
    }

    /// Serializable (local, not linearizable) reads instead of linearizable ones.
    pub fn serializable_reads(mut self, on: bool) -> EtcdAdapter {
        self.serializable_reads = on;
        self
    }

    /// A prefix put in front of every key.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> EtcdAdapter {
        self.key_prefix = prefix.into();
        self
    }

    /// Whether to compare the member's name with the node id on connect (default: yes).
    pub fn check_identity(mut self, on: bool) -> EtcdAdapter {
        self.check_identity = on;
        self
    }

    pub(crate) fn from_options(o: &mut Options<'_>) -> Result<EtcdAdapter, ConfigError> {
        Ok(EtcdAdapter {
            serializable_reads: o.bool("serializable_reads", false)?,
            key_prefix: o.string("key_prefix")?.unwrap_or_default(),
            check_identity: o.bool("check_identity", true)?,
        })
    }

    /// [`Adapter::connect`], with the concrete session type.
    pub fn open(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<EtcdSession, ConnectError> {
        split_host_port(&node.addr)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            .user_agent("harness-adapters")
            .build();
        let s = EtcdSession {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{}", node.addr),
            endpoint: node.clone(),
            cfg: self.clone(),
        };
        let (status, members) = s.status_and_members(deadline, self.check_identity)?;
        if self.check_identity {
            let found = status
                .member_id
                .and_then(|id| member_name(&members, id))
                .unwrap_or_default();
            if found != node.node {
                return Err(ConnectError::WrongNode {
                    addr: node.addr.clone(),
                    what: "member name",
                    expected: node.node.clone(),
                    found,
                });
            }
        }
        Ok(s)
    }
}

impl Adapter for EtcdAdapter {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn connect(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<Box<dyn Session>, ConnectError> {
        Ok(Box::new(self.open(node, deadline)?))
    }
}

/// A session of the [`EtcdAdapter`].
pub struct EtcdSession {
    agent: ureq::Agent,
    base: String,
    endpoint: NodeEndpoint,
    cfg: EtcdAdapter,
}

/// How one HTTP exchange ended.
#[derive(Debug)]
enum Http {
    /// An answer, with its status and body.
    Answer { status: u16, body: String },
    /// The deadline passed before anything was sent.
    TooLate,
    /// Nothing was sent (no connection, bad request line).
    NotSent(ureq::Error),
    /// The request may have been sent.
    Unknown(String),
    /// No (whole) answer before the deadline.
    Timeout,
}

/// What `maintenance/status` says.
#[derive(Debug, Default)]
struct MemberStatus {
    member_id: Option<u64>,
    cluster_id: Option<u64>,
    leader: Option<u64>,
    term: Option<u64>,
}

impl EtcdSession {
    fn key(&self, key: &str) -> String {
        B64.encode(format!("{}{key}", self.cfg.key_prefix))
    }

    /// One POST with `deadline` as its overall timeout.
    fn post(&self, path: &str, body: &Value, deadline: Instant) -> Http {
        let Some(left) = remaining(deadline) else {
            return Http::TooLate;
        };
        // Connecting gets a little less than the whole budget, so that a connection that cannot
        // be made is reported as a connect timeout (nothing sent), not as the overall one.
        let connect = left.mul_f64(0.9).max(Duration::from_millis(1));
        let sent = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(left))
            .timeout_connect(Some(connect))
            .build()
            .header("content-type", "application/json")
            .send(body.to_string());
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return transport_error(e),
        };
        let status = response.status().as_u16();
        match response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
        {
            Ok(body) => Http::Answer { status, body },
            Err(ureq::Error::Timeout(_)) => Http::Timeout,
            Err(e) => Http::Unknown(format!("reading the answer: {e}")),
        }
    }

    /// Runs one kv request and maps what happened; `on_200` maps a successful answer's JSON.
    fn kv(
        &self,
        path: &str,
        body: &Value,
        deadline: Instant,
        on_200: impl FnOnce(&Value) -> Result<Reply, String>,
    ) -> Reply {
        match self.post(path, body, deadline) {
            Http::Answer { status: 200, body } => match serde_json::from_str::<Value>(&body) {
                Ok(v) if v.is_object() => on_200(&v)
                    .unwrap_or_else(|e| Reply::info(format!("protocol: {e}: {}", clip(&body)))),
                _ => Reply::info(format!(
                    "protocol: answer is not a JSON object: {}",
                    clip(&body)
                )),
            },
            Http::Answer { status, body } => classify_error(status, &body),
            Http::TooLate => too_late(),
            Http::NotSent(e) => Reply::fail(format!("connect: {e}")),
            Http::Unknown(e) => Reply::info(e),
            Http::Timeout => Reply::info("timeout"),
        }
    }

    /// `maintenance/status`, and `cluster/member/list` if `members`.
    fn status_and_members(
        &self,
        deadline: Instant,
        members: bool,
    ) -> Result<(MemberStatus, Value), ConnectError> {
        let addr = || self.endpoint.addr.clone();
        let call = |path: &str| -> Result<Value, ConnectError> {
            match self.post(path, &json!({}), deadline) {
                Http::Answer { status: 200, body } => {
                    serde_json::from_str::<Value>(&body).map_err(|e| ConnectError::Handshake {
                        addr: addr(),
                        detail: format!("{path}: {e}: {}", clip(&body)),
                    })
                }
                Http::Answer { status, body } => Err(ConnectError::Handshake {
                    addr: addr(),
                    detail: format!("{path}: HTTP {status}: {}", clip(&body)),
                }),
                Http::NotSent(ureq::Error::Io(e)) => Err(ConnectError::Unreachable {
                    addr: addr(),
                    source: e,
                }),
                Http::TooLate | Http::NotSent(ureq::Error::Timeout(_)) | Http::Timeout => {
                    Err(ConnectError::Timeout { addr: addr() })
                }
                Http::NotSent(e) => Err(ConnectError::Unreachable {
                    addr: addr(),
                    source: io::Error::other(e.to_string()),
                }),
                Http::Unknown(e) => Err(ConnectError::Handshake {
                    addr: addr(),
                    detail: format!("{path}: {e}"),
                }),
            }
        };
        let status = call("/v3/maintenance/status")?;
        let header = status.get("header");
        let parsed = MemberStatus {
            member_id: header.and_then(|h| int(h.get("member_id"))),
            cluster_id: header.and_then(|h| int(h.get("cluster_id"))),
            leader: int(status.get("leader")),
            term: int(status.get("raftTerm"))
                .or_else(|| header.and_then(|h| int(h.get("raft_term")))),
        };
        let list = if members {
            call("/v3/cluster/member/list")?
        } else {
            Value::Null
        };
        Ok((parsed, list))
    }
}

impl Session for EtcdSession {
    fn execute(&mut self, op: &Op, _ctx: &OpContext, deadline: Instant) -> Reply {
        match op {
            Op::Read { key } => {
                let mut body = json!({"key": self.key(key)});
                if self.cfg.serializable_reads {
                    body["serializable"] = json!(true);
                }
                self.kv("/v3/kv/range", &body, deadline, |v| {
                    Ok(Reply::Ok {
                        value: range_value(v)?,
                    })
                })
            }
            Op::Write { key, value } => {
                let body = json!({"key": self.key(key), "value": B64.encode(value)});
                self.kv("/v3/kv/put", &body, deadline, |_| {
                    Ok(Reply::Ok { value: None })
                })
            }
            Op::Cas { key, from, to } => {
                let k = self.key(key);
                let compare = match from {
                    Some(from) => json!({"key": k, "result": "EQUAL", "target": "VALUE",
                        "value": B64.encode(from)}),
                    None => json!({"key": k, "result": "EQUAL", "target": "CREATE",
                        "create_revision": "0"}),
                };
                let body = json!({
                    "compare": [compare],
                    "success": [{"request_put": {"key": k, "value": B64.encode(to)}}],
                    "failure": [{"request_range": {"key": k}}],
                });
                self.kv("/v3/kv/txn", &body, deadline, |v| {
                    if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
                        return Ok(Reply::Ok { value: None });
                    }
                    // The compare failed: nothing was written. The value the failure branch read
                    // is a bonus; a mismatch without it is still a mismatch.
                    let current = v
                        .get("responses")
                        .and_then(|r| r.get(0))
                        .and_then(|r| r.get("response_range"))
                        .and_then(|r| range_value(r).ok());
                    Ok(Reply::Fail {
                        error: "cas_mismatch".into(),
                        current,
                    })
                })
            }
        }
    }

    fn status(&mut self, deadline: Instant) -> Result<NodeStatus, AdapterError> {
        let (s, members) = self
            .status_and_members(deadline, true)
            .map_err(|e| match e {
                ConnectError::Timeout { .. } => AdapterError::Timeout,
                other => AdapterError::Connect(other),
            })?;
        let name = |id: Option<u64>| {
            id.filter(|&id| id != 0)
                .map(|id| member_name(&members, id).unwrap_or_else(|| format!("{id:x}")))
        };
        let role = match (s.leader.filter(|&l| l != 0), s.member_id) {
            (Some(l), Some(me)) if l == me => Role::Leader,
            (Some(_), _) => Role::Follower,
            (None, _) => Role::Unknown,
        };
        Ok(NodeStatus {
            node: name(s.member_id),
            role,
            term: s.term,
            leader: name(s.leader),
            leader_addr: None,
            cluster: s.cluster_id.map(|c| c.to_string()),
            ..NodeStatus::unknown()
        })
    }
}

/// Maps a ureq error from sending a request: which ones surely sent nothing.
fn transport_error(e: ureq::Error) -> Http {
    use ureq::Error as E;
    match e {
        // The connection was never made: not a byte of the request left.
        E::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => Http::NotSent(e),
        E::Timeout(_) => Http::Timeout,
        E::Io(ref io)
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable
            ) =>
        {
            Http::NotSent(e)
        }
        E::HostNotFound | E::BadUri(_) | E::Http(_) | E::ConnectionFailed => Http::NotSent(e),
        other => Http::Unknown(other.to_string()),
    }
}

/// The gRPC status codes after which a kv request surely did not take effect (see the module
/// documentation for why each).
fn definite_code(code: i64) -> bool {
    matches!(code, 3 | 5 | 7 | 8 | 11 | 12 | 16)
}

fn grpc_name(code: i64) -> &'static str {
    match code {
        0 => "ok",
        1 => "canceled",
        2 => "unknown",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "grpc_error",
    }
}

/// Maps a non-200 answer.
fn classify_error(status: u16, body: &str) -> Reply {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(Value::as_i64);
    if let Some(code) = code {
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message").or_else(|| v.get("error")))
            .and_then(Value::as_str)
            .unwrap_or("");
        let error = format!("{}: {message}", grpc_name(code));
        return if definite_code(code) {
            Reply::fail(error)
        } else {
            Reply::info(error)
        };
    }
    let error = format!("http_{status}: {}", clip(body.trim()));
    match status {
        400 | 401 | 403 | 404 | 405 | 411 | 413 | 414 | 415 | 431 => Reply::fail(error),
        _ => Reply::info(error),
    }
}

/// The value of a range answer: `None` if no kv; a kv without `value` holds "".
fn range_value(v: &Value) -> Result<Option<String>, String> {
    let kv = match v.get("kvs") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(kvs)) => match kvs.first() {
            None => return Ok(None),
            Some(kv) => kv,
        },
        Some(_) => return Err("`kvs` is not an array".into()),
    };
    match kv.get("value") {
        None | Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(b)) => {
            let bytes = B64
                .decode(b)
                .map_err(|e| format!("value is not base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| "value is not UTF-8".into())
        }
        Some(_) => Err("value is not a string".into()),
    }
}

/// An int64 field: a string of digits (as the gateway sends them) or a number.
fn int(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn member_name(members: &Value, id: u64) -> Option<String> {
    members
        .get("members")?
        .as_array()?
        .iter()
        .find(|m| int(m.get("ID")) == Some(id))
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// At most 200 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_values() {
        assert_eq!(range_value(&json!({"header": {}})), Ok(None));
        assert_eq!(
            range_value(&json!({"kvs": [{"key": "aw=="}]})),
            Ok(Some(String::new()))
        );
        assert_eq!(
            range_value(&json!({"kvs": [{"key": "aw==", "value": "djE="}]})),
            Ok(Some("v1".into()))
        );
        assert!(range_value(&json!({"kvs": [{"value": "!!"}]})).is_err());
    }

    #[test]
    fn error_classes() {
        let body = r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#;
        assert_eq!(
            classify_error(400, body),
            Reply::fail("invalid_argument: etcdserver: key is not provided")
        );
        let body = r#"{"error":"etcdserver: request timed out","code":14}"#;
        assert_eq!(
            classify_error(503, body),
            Reply::info("unavailable: etcdserver: request timed out")
        );
        assert!(matches!(
            classify_error(404, "Not Found\n"),
            Reply::Fail { .. }
        ));
        assert!(matches!(
            classify_error(502, "bad gateway"),
            Reply::Info { .. }
        ));
        assert!(matches!(classify_error(429, ""), Reply::Info { .. }));
    }

    #[test]
    fn ints_as_strings_or_numbers() {
        assert_eq!(
            int(Some(&json!("15118495548433857066"))),
            Some(15118495548433857066)
        );
        assert_eq!(int(Some(&json!(7))), Some(7));
        assert_eq!(int(None), None);
    }
}
