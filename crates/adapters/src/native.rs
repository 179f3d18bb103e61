//! The `native` adapter: the JSON-lines client protocol of `docs/protocol.md`, spoken by the
//! reference node `raftkv` and by any implementation plugged in behind the harness.
//!
//! One TCP connection per session, one request in flight at a time (so answers cannot be taken
//! for another request's), `client`/`seq` on every write and cas for at-most-once retries.
//!
//! # Identity check
//!
//! On connect (and on every reconnect) the session sends `status` and refuses the node with
//! [`ConnectError::WrongNode`] if its `node` field differs from [`NodeEndpoint::node`], or if
//! the harness expects a cluster id ([`NodeEndpoint::cluster`]) and the node reports a different
//! `cluster`. A node that reports no `cluster` field is accepted (the field is not yet part of
//! the protocol's contract). Option `check_identity = false` skips the check (and the `status`
//! round trip).
//!
//! # Mapping
//!
//! | answer | reply |
//! |---|---|
//! | `ok:true` to a read | `Ok` with `value` (`null` or missing: absent) |
//! | `ok:true` to a write or cas | `Ok` |
//! | `not_leader` | `NotLeader` with the `leader` address as the hint |
//! | `cas_mismatch` | `Fail("cas_mismatch")` with `value` as the current value |
//! | `bad_request`, `dropped`, `overwritten` | `Fail(code: detail)` |
//! | `timeout`, `unknown`, `stale_seq`, any other code, `ok:false` without a code | `Info` |
//! | an `ok:true` read whose `value` is neither a string nor null | `Info` |
//! | connecting failed, or the identity check failed, before the request was sent | `Fail` |
//! | the deadline passed before the request was sent | `Fail` |
//! | no answer by the deadline | `Info("timeout")` |
//! | the connection broke after (or while) sending | `Info` |
//! | an answer that is not JSON, has no `ok`, or has another request's `id` | `Info` |
//! | an answer without `id` that is a `bad_request` (the node could not parse our line) | `Fail` |
//!
//! Admin operations ([`AdminOp`]: `add_member`, `remove_member`, `transfer_leader`) map the
//! same way, except that their definite errors are `not_leader` (`NotLeader`), `busy`,
//! `bad_request` and `dropped` (`Fail`); every other code is `Info`.
//!
//! After an `Info` from the transport (not from the node) the connection is dropped, so that a
//! late answer cannot be taken for the next request's; the next call reconnects. Before reusing
//! a connection the session checks that the node has not closed it (a node killed since), so
//! that a request is not lost to a dead connection.

use crate::config::{ConfigError, Options};
use crate::lines::{read_line, LineRead};
use crate::{
    remaining, resolve, too_late, Adapter, AdapterError, AdminOp, ConnectError, NodeEndpoint,
    NodeStatus, Op, OpContext, Reply, Role, Session,
};
use serde_json::{json, Value};
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The longest answer line accepted (the protocol's request limit is 1 MiB; answers carry at most
/// one value).
const MAX_ANSWER: usize = 8 << 20;

/// Error codes after which the operation surely did not take effect (docs/protocol.md), besides
/// `not_leader` and `cas_mismatch`, which have their own replies.
const DEFINITE_ERRORS: [&str; 3] = ["bad_request", "dropped", "overwritten"];

/// Errors of the admin operations that say the change surely did not happen, besides
/// `not_leader` (docs/protocol.md): another change under way, or a request that makes no sense.
const DEFINITE_ADMIN_ERRORS: [&str; 3] = ["busy", "bad_request", "dropped"];

/// The `native` adapter. Options: `check_identity` (bool, default true).
#[derive(Debug, Clone)]
pub struct NativeAdapter {
    check_identity: bool,
}

impl Default for NativeAdapter {
    fn default() -> Self {
        NativeAdapter::new()
    }
}

impl NativeAdapter {
    pub fn new() -> NativeAdapter {
        NativeAdapter {
            check_identity: true,
        }
    }

    /// Whether to check the node's `node`/`cluster` on connect (default: yes).
    pub fn check_identity(mut self, on: bool) -> NativeAdapter {
        self.check_identity = on;
        self
    }

    pub(crate) fn from_options(o: &mut Options<'_>) -> Result<NativeAdapter, ConfigError> {
        let a = NativeAdapter {
            check_identity: o.bool("check_identity", true)?,
        };
        Ok(a)
    }

    /// [`Adapter::connect`], with the concrete session type.
    pub fn open(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<NativeSession, ConnectError> {
        let mut s = NativeSession {
            addr: resolve(&node.addr)?,
            endpoint: node.clone(),
            check_identity: self.check_identity,
            conn: None,
        };
        s.conn = Some(s.dial(deadline)?);
        Ok(s)
    }
}

impl Adapter for NativeAdapter {
    fn name(&self) -> &'static str {
        "native"
    }

    fn connect(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<Box<dyn Session>, ConnectError> {
        Ok(Box::new(self.open(node, deadline)?))
    }
}

/// A session of the [`NativeAdapter`].
pub struct NativeSession {
    endpoint: NodeEndpoint,
    addr: SocketAddr,
    check_identity: bool,
    conn: Option<Conn>,
}

impl NativeSession {
    /// Opens a connection and checks the node's identity.
    fn dial(&self, deadline: Instant) -> Result<Conn, ConnectError> {
        let addr = self.endpoint.addr.clone();
        let left = remaining(deadline).ok_or(ConnectError::Timeout { addr: addr.clone() })?;
        let mut conn = Conn::connect(self.addr, left).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                ConnectError::Timeout { addr: addr.clone() }
            }
            _ => ConnectError::Unreachable {
                addr: addr.clone(),
                source: e,
            },
        })?;
        if !self.check_identity {
            return Ok(conn);
        }
        let answer = conn
            .call(json!({"op": "status"}), deadline)
            .map_err(|e| match e {
                CallError::Timeout | CallError::TooLate => {
                    ConnectError::Timeout { addr: addr.clone() }
                }
                other => ConnectError::Handshake {
                    addr: addr.clone(),
                    detail: format!("status: {other}"),
                },
            })?;
        if !answer.ok {
            return Err(ConnectError::Handshake {
                addr,
                detail: format!("status refused: {}", answer.raw),
            });
        }
        let status = parse_status(&answer.raw);
        let found = status.node.unwrap_or_default();
        if found != self.endpoint.node {
            return Err(ConnectError::WrongNode {
                addr,
                what: "node id",
                expected: self.endpoint.node.clone(),
                found,
            });
        }
        if let (Some(expected), Some(found)) = (&self.endpoint.cluster, status.cluster) {
            if *expected != found {
                return Err(ConnectError::WrongNode {
                    addr,
                    what: "cluster id",
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(conn)
    }

    /// A live connection: the current one if the node has not closed it, else a new one.
    fn live_conn(&mut self, deadline: Instant) -> Result<&mut Conn, ConnectError> {
        if self.conn.as_ref().is_some_and(Conn::is_closed) {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.dial(deadline)?,
        };
        Ok(self.conn.insert(conn))
    }
}

impl Session for NativeSession {
    fn execute(&mut self, op: &Op, ctx: &OpContext, deadline: Instant) -> Reply {
        if remaining(deadline).is_none() {
            return too_late();
        }
        let conn = match self.live_conn(deadline) {
            Ok(c) => c,
            Err(e) => return Reply::fail(format!("connect: {e}")),
        };
        match conn.call(request(op, ctx), deadline) {
            Ok(answer) => classify(op, &answer),
            Err(CallError::TooLate) => too_late(),
            Err(e) => {
                // The request may have been applied; a late answer must not be taken for the
                // next request's.
                self.conn = None;
                Reply::info(e.to_string())
            }
        }
    }

    fn status(&mut self, deadline: Instant) -> Result<NodeStatus, AdapterError> {
        let conn = self.live_conn(deadline)?;
        match conn.call(json!({"op": "status"}), deadline) {
            Ok(a) if a.ok => Ok(parse_status(&a.raw)),
            Ok(a) => Err(AdapterError::Refused(a.raw.to_string())),
            Err(e) => {
                self.conn = None;
                Err(match e {
                    CallError::Timeout | CallError::TooLate => AdapterError::Timeout,
                    CallError::Io(e) => AdapterError::Io(e.to_string()),
                    CallError::Protocol(p) => AdapterError::Protocol(p),
                })
            }
        }
    }

    fn admin(&mut self, op: &AdminOp, deadline: Instant) -> Reply {
        self.admin_call(admin_request(op), deadline)
    }
}

impl NativeSession {
    /// One admin request; any failure to get an answer after sending is indefinite.
    fn admin_call(&mut self, request: Value, deadline: Instant) -> Reply {
        if remaining(deadline).is_none() {
            return too_late();
        }
        let conn = match self.live_conn(deadline) {
            Ok(c) => c,
            Err(e) => return Reply::fail(format!("connect: {e}")),
        };
        match conn.call(request, deadline) {
            Ok(answer) => classify_admin(&answer),
            Err(CallError::TooLate) => too_late(),
            Err(e) => {
                self.conn = None;
                Reply::info(e.to_string())
            }
        }
    }
}

/// The protocol request for an admin operation.
fn admin_request(op: &AdminOp) -> Value {
    match op {
        AdminOp::AddMember { node } => json!({"op": "add_member", "node": node}),
        AdminOp::RemoveMember { node } => json!({"op": "remove_member", "node": node}),
        AdminOp::TransferLeader { node } => json!({"op": "transfer_leader", "node": node}),
    }
}

/// Maps an answer to an admin request: `ok`, `not_leader` and the definite admin errors as they
/// are; anything else (`timeout`, `unknown`, codes this adapter does not know) indefinite.
fn classify_admin(a: &Answer) -> Reply {
    if a.ok {
        return Reply::Ok { value: None };
    }
    let detail = a.raw.get("detail").and_then(Value::as_str);
    match a.raw.get("error").and_then(Value::as_str) {
        Some("not_leader") => Reply::NotLeader {
            hint: a
                .raw
                .get("leader")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        Some(c) => {
            let text = detail.map_or_else(|| c.to_string(), |d| format!("{c}: {d}"));
            if DEFINITE_ADMIN_ERRORS.contains(&c) {
                Reply::fail(text)
            } else {
                Reply::info(text)
            }
        }
        None => Reply::info(format!(
            "protocol: failure without an error code: {}",
            a.raw
        )),
    }
}

/// The protocol request for `op`.
fn request(op: &Op, ctx: &OpContext) -> Value {
    match op {
        Op::Read { key } => json!({"op": "read", "key": key}),
        Op::Write { key, value } => json!({"op": "write", "key": key, "value": value,
            "client": ctx.client, "seq": ctx.seq}),
        Op::Cas { key, from, to } => json!({"op": "cas", "key": key, "from": from, "to": to,
            "client": ctx.client, "seq": ctx.seq}),
    }
}

fn parse_status(raw: &Value) -> NodeStatus {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    let ids = |k: &str| {
        raw.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    NodeStatus {
        node: s("node"),
        role: s("role").map_or(Role::Unknown, |r| Role::from_name(&r)),
        term: raw.get("term").and_then(Value::as_u64),
        leader: s("leader"),
        leader_addr: None,
        cluster: s("cluster"),
        voters: ids("voters"),
        learners: ids("learners"),
    }
}

/// Maps a node's answer to a reply (see the module's table).
fn classify(op: &Op, a: &Answer) -> Reply {
    let with_detail = |code: &str| match a.raw.get("detail").and_then(Value::as_str) {
        Some(d) => format!("{code}: {d}"),
        None => code.to_string(),
    };
    if a.ok {
        return match op {
            Op::Read { .. } => match a.raw.get("value") {
                None | Some(Value::Null) => Reply::Ok { value: None },
                Some(Value::String(s)) => Reply::Ok {
                    value: Some(s.clone()),
                },
                Some(other) => Reply::info(format!("protocol: read value {other} is not a string")),
            },
            _ => Reply::Ok { value: None },
        };
    }
    let Some(code) = a.raw.get("error").and_then(Value::as_str) else {
        return Reply::info(format!(
            "protocol: failure without an error code: {}",
            a.raw
        ));
    };
    match code {
        "not_leader" => Reply::NotLeader {
            hint: a
                .raw
                .get("leader")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        "cas_mismatch" => Reply::Fail {
            error: "cas_mismatch".into(),
            current: match a.raw.get("value") {
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s.clone())),
                _ => None,
            },
        },
        c if DEFINITE_ERRORS.contains(&c) => Reply::fail(with_detail(c)),
        c => Reply::info(with_detail(c)),
    }
}

/// Why a call has no answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The deadline passed before anything was sent.
    #[error("deadline passed before sending")]
    TooLate,
    /// No answer before the deadline.
    #[error("timeout")]
    Timeout,
    /// The connection broke after (or while) sending.
    #[error("connection: {0}")]
    Io(io::Error),
    /// The answer was not what the protocol says.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A parsed answer.
#[derive(Debug, Clone)]
struct Answer {
    ok: bool,
    raw: Value,
}

/// One connection to a node's client port.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

impl Conn {
    fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Whether the node has visibly closed the connection (EOF or an error pending, or bytes
    /// nobody asked for): then it is replaced before a request goes out instead of losing the
    /// request.
    fn is_closed(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let s = self.reader.get_ref();
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let closed = match s.peek(&mut b) {
            Ok(_) => true, // 0 = EOF; >0 = unsolicited data
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        s.set_nonblocking(false).is_err() || closed
    }

    /// Sends one request (an object; the `id` is added) and waits for its answer until
    /// `deadline`.
    fn call(&mut self, mut request: Value, deadline: Instant) -> Result<Answer, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        if let Value::Object(m) = &mut request {
            m.insert("id".into(), json!(id));
        }
        let mut line = request.to_string();
        line.push('\n');
        let left = remaining(deadline).ok_or(CallError::TooLate)?;
        self.writer
            .set_write_timeout(Some(left))
            .map_err(CallError::Io)?;
        // From here on the request may have reached the node, even if the write fails midway.
        if let Err(e) = self.writer.write_all(line.as_bytes()) {
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => CallError::Timeout,
                _ => CallError::Io(e),
            });
        }
        let mut buf = Vec::new();
        loop {
            let left = remaining(deadline).ok_or(CallError::Timeout)?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(CallError::Io)?;
            match read_line(&mut self.reader, &mut buf, MAX_ANSWER) {
                Ok(LineRead::Line) => {}
                Ok(LineRead::Eof) => {
                    return Err(CallError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the node",
                    )))
                }
                Ok(LineRead::TooLong) => {
                    return Err(CallError::Protocol(format!(
                        "answer longer than {MAX_ANSWER} bytes"
                    )))
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(CallError::Timeout)
                }
                Err(e) => return Err(CallError::Io(e)),
            }
            let text = String::from_utf8_lossy(&buf);
            if text.trim().is_empty() {
                buf.clear();
                continue;
            }
            let raw: Value = serde_json::from_str(text.trim())
                .map_err(|e| CallError::Protocol(format!("bad JSON answer {text:?}: {e}")))?;
            let ok = raw.get("ok").and_then(Value::as_bool).ok_or_else(|| {
                CallError::Protocol(format!("answer without `ok`: {}", text.trim()))
            })?;
            match raw.get("id").and_then(Value::as_u64) {
                Some(got) if got == id => {}
                Some(got) => {
                    return Err(CallError::Protocol(format!(
                        "answer id {got} for request {id}"
                    )))
                }
                // The node could not parse our line (only that answer has no id): definite.
                None if !ok && raw.get("error").and_then(Value::as_str) == Some("bad_request") => {}
                None => {
                    return Err(CallError::Protocol(format!(
                        "answer without id: {}",
                        text.trim()
                    )))
                }
            }
            return Ok(Answer { ok, raw });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(raw: Value) -> Answer {
        Answer {
            ok: raw["ok"].as_bool().unwrap_or(false),
            raw,
        }
    }

    #[test]
    fn classifies_answers() {
        let read = Op::Read { key: "k".into() };
        let cas = Op::Cas {
            key: "k".into(),
            from: None,
            to: "b".into(),
        };
        let c = |op: &Op, raw: Value| classify(op, &ans(raw));
        assert_eq!(
            c(&read, json!({"ok": true, "value": "v"})),
            Reply::Ok {
                value: Some("v".into())
            }
        );
        assert_eq!(
            c(&read, json!({"ok": true, "value": null})),
            Reply::Ok { value: None }
        );
        assert!(matches!(
            c(&read, json!({"ok": true, "value": 3})),
            Reply::Info { .. }
        ));
        assert_eq!(c(&cas, json!({"ok": true})), Reply::Ok { value: None });
        assert_eq!(
            c(
                &cas,
                json!({"ok": false, "error": "cas_mismatch", "value": null})
            ),
            Reply::Fail {
                error: "cas_mismatch".into(),
                current: Some(None)
            }
        );
        assert_eq!(
            c(
                &cas,
                json!({"ok": false, "error": "not_leader", "leader": "h:1"})
            ),
            Reply::NotLeader {
                hint: Some("h:1".into())
            }
        );
        assert_eq!(
            c(
                &cas,
                json!({"ok": false, "error": "dropped", "detail": "shutting down"})
            ),
            Reply::fail("dropped: shutting down")
        );
        assert_eq!(
            c(&cas, json!({"ok": false, "error": "overwritten"})),
            Reply::fail("overwritten")
        );
        for code in ["timeout", "unknown", "stale_seq", "something_new"] {
            assert_eq!(
                c(&cas, json!({"ok": false, "error": code})),
                Reply::info(code)
            );
        }
        assert!(matches!(c(&cas, json!({"ok": false})), Reply::Info { .. }));
    }

    #[test]
    fn classifies_admin_answers() {
        let c = |raw: Value| classify_admin(&ans(raw));
        assert_eq!(c(json!({"ok": true})), Reply::Ok { value: None });
        assert_eq!(
            c(json!({"ok": false, "error": "not_leader", "leader": null})),
            Reply::NotLeader { hint: None }
        );
        assert_eq!(
            c(json!({"ok": false, "error": "busy", "detail": "a change is under way"})),
            Reply::fail("busy: a change is under way")
        );
        assert_eq!(
            c(json!({"ok": false, "error": "bad_request"})),
            Reply::fail("bad_request")
        );
        // A remove that timed out may still commit: never a definite failure.
        for code in ["timeout", "unknown", "overwritten", "something_new"] {
            assert_eq!(c(json!({"ok": false, "error": code})), Reply::info(code));
        }
        assert!(matches!(c(json!({"ok": false})), Reply::Info { .. }));
        assert_eq!(
            admin_request(&AdminOp::TransferLeader { node: None }),
            json!({"op": "transfer_leader", "node": null})
        );
        assert_eq!(
            admin_request(&AdminOp::RemoveMember { node: "n2".into() }),
            json!({"op": "remove_member", "node": "n2"})
        );
    }

    #[test]
    fn status_lists_members() {
        let st = parse_status(&json!({"node": "n1", "role": "leader", "term": 3,
            "voters": ["n1", "n2"], "learners": ["n3"]}));
        assert_eq!(st.voters, Some(vec!["n1".to_string(), "n2".to_string()]));
        assert_eq!(st.learners, Some(vec!["n3".to_string()]));
        assert_eq!(parse_status(&json!({"node": "n1"})).voters, None);
    }

    #[test]
    fn requests_carry_sessions_on_updates_only() {
        let ctx = OpContext::new("p3", 9);
        let r = request(&Op::Read { key: "k".into() }, &ctx);
        assert_eq!(r, json!({"op": "read", "key": "k"}));
        let r = request(
            &Op::Cas {
                key: "k".into(),
                from: None,
                to: "b".into(),
            },
            &ctx,
        );
        assert_eq!(
            r,
            json!({"op": "cas", "key": "k", "from": null, "to": "b", "client": "p3", "seq": 9})
        );
    }
}
