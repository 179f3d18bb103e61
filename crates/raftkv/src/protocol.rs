//! The client protocol (a **contract**, see docs/protocol.md): newline-delimited JSON requests
//! in, one JSON answer line per request out.
//!
//! Parsing is strict about what it needs and lenient about what it does not: unknown fields are
//! ignored (so clients may add their own), but a missing or mistyped required field is a
//! `bad_request` that names the field. Nothing here panics on any input.

use raft::NodeId;
use serde_json::{Map, Value};

/// Longest request line accepted, excluding the newline. Longer lines are answered with
/// `bad_request` and skipped up to the next newline.
pub const MAX_LINE: usize = 1 << 20;

/// A client's session stamp: a retried write with the same `(client, seq)` applies at most once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub client: String,
    pub seq: u64,
}

/// One parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub session: Option<Session>,
    pub op: Op,
}

/// The operations of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    /// Compare-and-set; `from: None` (JSON `null`) means "only if the key is absent".
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
    Status,
    /// Admin: add `node` as a learner, wait for it to catch up, promote it to voter.
    AddMember {
        node: NodeId,
    },
    /// Admin: remove `node` (a voter or learner; the leader itself included).
    RemoveMember {
        node: NodeId,
    },
    /// Admin: hand leadership to `node`, or (`None`) to the most caught-up follower.
    TransferLeader {
        node: Option<NodeId>,
    },
}

impl Op {
    /// Whether this is one of the admin operations (membership and leadership).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Op::AddMember { .. } | Op::RemoveMember { .. } | Op::TransferLeader { .. }
        )
    }
}

/// A request line that could not be understood; answered with `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The request's id when one could be read, so the client can match the answer.
    pub id: Option<u64>,
    pub detail: String,
}

impl BadRequest {
    fn new(id: Option<u64>, detail: impl Into<String>) -> Self {
        BadRequest {
            id,
            detail: detail.into(),
        }
    }
}

/// The node's view answered by the `status` op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    pub node: String,
    /// The `--cluster-id`, so that a client can tell this node from another process that took
    /// over its port.
    pub cluster: String,
    pub role: &'static str,
    pub term: u64,
    /// The leader's node id, if one is known.
    pub leader: Option<String>,
    pub commit: u64,
    pub applied: u64,
    /// The latest configuration in this node's log: voters and learners, sorted node ids.
    pub voters: Vec<String>,
    pub learners: Vec<String>,
}

/// Why a request failed. Each code is either definite (the op surely did not take effect) or
/// indefinite (it may have); [`ErrorCode::is_definite`] is the table docs/protocol.md repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The line was not a valid request. Definite.
    BadRequest(String),
    /// This node is not the leader and did not propose the op. Definite. Carries the leader's
    /// client address when known.
    NotLeader(Option<String>),
    /// The cas found another value (carried; `None` = absent). Definite.
    CasMismatch(Option<String>),
    /// The op was refused before it entered the log (e.g. the node is shutting down, or the
    /// Raft core dropped the proposal). Definite.
    Dropped(String),
    /// The op's log entry was replaced by another leader's entry, so it can never commit.
    /// Definite.
    Overwritten,
    /// No outcome within the server's request timeout. Indefinite.
    Timeout,
    /// The node can no longer learn the outcome (e.g. a snapshot replaced the log around the
    /// entry, or the node shut down while waiting). Indefinite.
    Unknown(String),
    /// The session's `seq` is older than the last one applied for that client, and its result
    /// is no longer kept: an earlier attempt may or may not have applied. Indefinite.
    StaleSeq,
    /// Admin: another membership change or a leadership transfer is in progress, or the
    /// leader has not yet committed an entry of its own term; retry later. Definite.
    Busy(String),
}

impl ErrorCode {
    /// The wire name of the error.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorCode::BadRequest(_) => "bad_request",
            ErrorCode::NotLeader(_) => "not_leader",
            ErrorCode::CasMismatch(_) => "cas_mismatch",
            ErrorCode::Dropped(_) => "dropped",
            ErrorCode::Overwritten => "overwritten",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unknown(_) => "unknown",
            ErrorCode::StaleSeq => "stale_seq",
            ErrorCode::Busy(_) => "busy",
        }
    }

    /// True when the op surely did not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            ErrorCode::BadRequest(_)
            | ErrorCode::NotLeader(_)
            | ErrorCode::CasMismatch(_)
            | ErrorCode::Dropped(_)
            | ErrorCode::Overwritten
            | ErrorCode::Busy(_) => true,
            ErrorCode::Timeout | ErrorCode::Unknown(_) | ErrorCode::StaleSeq => false,
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A read's value (`None` = absent).
    Value(Option<String>),
    /// A write or cas took effect.
    Done,
    /// Boxed: a status is rare and large, and every answer travels by value.
    Status(Box<StatusInfo>),
    Error(ErrorCode),
}

/// Renders one answer line (with the trailing newline). `id` is omitted when unknown.
///
/// Written by hand rather than through a `serde_json::Map` so that fields keep the order of
/// the contract (`id`, `ok`, ...), which makes logs and captures easy to read.
pub fn encode_reply(id: Option<u64>, reply: &Reply) -> String {
    let mut out = Line::new(id);
    match reply {
        Reply::Value(v) => {
            out.field("ok", "true");
            out.opt_str("value", v);
        }
        Reply::Done => out.field("ok", "true"),
        Reply::Status(s) => {
            out.field("ok", "true");
            out.str("node", &s.node);
            out.str("cluster", &s.cluster);
            out.str("role", s.role);
            out.field("term", &s.term.to_string());
            out.opt_str("leader", &s.leader);
            out.field("commit", &s.commit.to_string());
            out.field("applied", &s.applied.to_string());
            out.field("voters", &json_list(&s.voters));
            out.field("learners", &json_list(&s.learners));
        }
        Reply::Error(e) => {
            out.field("ok", "false");
            out.str("error", e.name());
            match e {
                ErrorCode::BadRequest(d)
                | ErrorCode::Dropped(d)
                | ErrorCode::Unknown(d)
                | ErrorCode::Busy(d) => out.str("detail", d),
                ErrorCode::NotLeader(l) => out.opt_str("leader", l),
                ErrorCode::CasMismatch(v) => out.opt_str("value", v),
                ErrorCode::Overwritten | ErrorCode::Timeout | ErrorCode::StaleSeq => {}
            }
        }
    }
    out.finish()
}

/// A JSON array of strings.
fn json_list(items: &[String]) -> String {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()).to_string()
}

/// A JSON object written field by field.
struct Line {
    buf: String,
    first: bool,
}

impl Line {
    fn new(id: Option<u64>) -> Self {
        let mut l = Line {
            buf: String::with_capacity(64),
            first: true,
        };
        l.buf.push('{');
        if let Some(id) = id {
            l.field("id", &id.to_string());
        }
        l
    }

    /// Appends `"name":raw` where `raw` is already valid JSON.
    fn field(&mut self, name: &str, raw: &str) {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        self.buf.push('"');
        self.buf.push_str(name);
        self.buf.push_str("\":");
        self.buf.push_str(raw);
    }

    fn str(&mut self, name: &str, value: &str) {
        self.field(name, &Value::from(value).to_string());
    }

    fn opt_str(&mut self, name: &str, value: &Option<String>) {
        match value {
            Some(v) => self.str(name, v),
            None => self.field(name, "null"),
        }
    }

    fn finish(mut self) -> String {
        self.buf.push_str("}\n");
        self.buf
    }
}

/// Parses one request line (without its newline; a trailing `\r` is tolerated).
pub fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(BadRequest::new(
            None,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| BadRequest::new(None, format!("line is not UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| BadRequest::new(None, format!("malformed JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(BadRequest::new(None, "a request must be a JSON object"));
    };
    let id = match obj.get("id") {
        None => return Err(BadRequest::new(None, "missing field `id`")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| BadRequest::new(None, "field `id` must be a non-negative integer"))?,
    };
    let bad = |detail: String| BadRequest::new(Some(id), detail);
    let op_name = match obj.get("op") {
        None => return Err(bad("missing field `op`".into())),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(bad("field `op` must be a string".into())),
    };
    let op = match op_name {
        "read" => Op::Read {
            key: req_str(&obj, "key").map_err(bad)?,
        },
        "write" => Op::Write {
            key: req_str(&obj, "key").map_err(bad)?,
            value: req_str(&obj, "value").map_err(bad)?,
        },
        "cas" => Op::Cas {
            key: req_str(&obj, "key").map_err(bad)?,
            from: nullable_str(&obj, "from").map_err(bad)?,
            to: req_str(&obj, "to").map_err(bad)?,
        },
        "status" => Op::Status,
        "add_member" => Op::AddMember {
            node: node_id(&req_str(&obj, "node").map_err(bad)?).map_err(bad)?,
        },
        "remove_member" => Op::RemoveMember {
            node: node_id(&req_str(&obj, "node").map_err(bad)?).map_err(bad)?,
        },
        "transfer_leader" => Op::TransferLeader {
            node: match obj.get("node") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(node_id(s).map_err(bad)?),
                Some(_) => return Err(bad("field `node` must be a string or null".into())),
            },
        },
        other => return Err(bad(format!("unknown op `{}`", truncate(other, 64)))),
    };
    let session = parse_session(&obj).map_err(bad)?;
    Ok(Request { id, session, op })
}

fn parse_session(obj: &Map<String, Value>) -> Result<Option<Session>, String> {
    match (obj.get("client"), obj.get("seq")) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(None),
        (Some(Value::String(client)), Some(seq)) => {
            let seq = seq
                .as_u64()
                .ok_or("field `seq` must be a non-negative integer")?;
            Ok(Some(Session {
                client: client.clone(),
                seq,
            }))
        }
        (Some(Value::String(_)), _) => Err("field `client` given without `seq`".into()),
        (None | Some(Value::Null), Some(_)) => Err("field `seq` given without `client`".into()),
        (Some(_), _) => Err("field `client` must be a string".into()),
    }
}

fn req_str(obj: &Map<String, Value>, field: &str) -> Result<String, String> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(format!("missing field `{field}`")),
        Some(_) => Err(format!("field `{field}` must be a string")),
    }
}

/// A field that must be present and is either a string or `null`.
fn nullable_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        None => Err(format!("missing field `{field}`")),
        Some(_) => Err(format!("field `{field}` must be a string or null")),
    }
}

/// A node id field: `n<k>`, as on the command line.
fn node_id(s: &str) -> Result<NodeId, String> {
    crate::config::parse_node_id(s).map_err(|e| format!("field `node`: {e}"))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Request {
        parse_request(line.as_bytes()).unwrap()
    }

    fn bad(line: &[u8]) -> BadRequest {
        parse_request(line).unwrap_err()
    }

    #[test]
    fn parses_every_op() {
        assert_eq!(
            ok(r#"{"id":1,"op":"read","key":"k1"}"#),
            Request {
                id: 1,
                session: None,
                op: Op::Read { key: "k1".into() }
            }
        );
        assert_eq!(
            ok(r#"{"id":2,"op":"write","key":"k1","value":"v7"}"#).op,
            Op::Write {
                key: "k1".into(),
                value: "v7".into()
            }
        );
        assert_eq!(
            ok(r#"{"id":3,"op":"cas","key":"k1","from":"v7","to":"v8"}"#).op,
            Op::Cas {
                key: "k1".into(),
                from: Some("v7".into()),
                to: "v8".into()
            }
        );
        assert_eq!(
            ok(r#"{"id":3,"op":"cas","key":"k1","from":null,"to":"v8"}"#).op,
            Op::Cas {
                key: "k1".into(),
                from: None,
                to: "v8".into()
            }
        );
        assert_eq!(ok(r#"{"id":4,"op":"status"}"#).op, Op::Status);
    }

    #[test]
    fn parses_sessions_and_ignores_unknown_fields() {
        let r = ok(r#"{"id":5,"op":"write","key":"k","value":"v","client":"c1","seq":9,"x":[1]}"#);
        assert_eq!(
            r.session,
            Some(Session {
                client: "c1".into(),
                seq: 9
            })
        );
        // A trailing carriage return (telnet, Windows clients) is fine.
        assert_eq!(ok("{\"id\":6,\"op\":\"status\"}\r").id, 6);
        // Null session fields mean "no session".
        assert_eq!(
            ok(r#"{"id":7,"op":"status","client":null,"seq":null}"#).session,
            None
        );
    }

    #[test]
    fn rejects_every_bad_input_with_a_detail() {
        let cases: &[(&[u8], Option<u64>, &str)] = &[
            (b"", None, "malformed JSON"),
            (b"{", None, "malformed JSON"),
            (b"not json", None, "malformed JSON"),
            (b"\xff\xfe", None, "not UTF-8"),
            (b"[1,2]", None, "JSON object"),
            (b"42", None, "JSON object"),
            (b"null", None, "JSON object"),
            (br#"{"op":"read","key":"k"}"#, None, "missing field `id`"),
            (br#"{"id":-1,"op":"status"}"#, None, "`id` must be"),
            (br#"{"id":1.5,"op":"status"}"#, None, "`id` must be"),
            (br#"{"id":"1","op":"status"}"#, None, "`id` must be"),
            (br#"{"id":1}"#, Some(1), "missing field `op`"),
            (br#"{"id":1,"op":7}"#, Some(1), "`op` must be a string"),
            (
                br#"{"id":1,"op":"delete","key":"k"}"#,
                Some(1),
                "unknown op `delete`",
            ),
            (br#"{"id":1,"op":"read"}"#, Some(1), "missing field `key`"),
            (
                br#"{"id":1,"op":"read","key":3}"#,
                Some(1),
                "`key` must be a string",
            ),
            (
                br#"{"id":1,"op":"write","key":"k"}"#,
                Some(1),
                "missing field `value`",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":null}"#,
                Some(1),
                "`value` must be a string",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":{}}"#,
                Some(1),
                "`value` must be a string",
            ),
            (
                br#"{"id":1,"op":"cas","key":"k","to":"b"}"#,
                Some(1),
                "missing field `from`",
            ),
            (
                br#"{"id":1,"op":"cas","key":"k","from":"a"}"#,
                Some(1),
                "missing field `to`",
            ),
            (
                br#"{"id":1,"op":"cas","key":"k","from":1,"to":"b"}"#,
                Some(1),
                "`from` must be a string or null",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":"v","client":"c"}"#,
                Some(1),
                "without `seq`",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":"v","seq":1}"#,
                Some(1),
                "without `client`",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":"v","client":1,"seq":1}"#,
                Some(1),
                "`client` must be a string",
            ),
            (
                br#"{"id":1,"op":"write","key":"k","value":"v","client":"c","seq":-3}"#,
                Some(1),
                "`seq` must be",
            ),
        ];
        for (line, id, detail) in cases {
            let e = bad(line);
            assert_eq!(e.id, *id, "{:?}", String::from_utf8_lossy(line));
            assert!(
                e.detail.contains(detail),
                "{:?}: {:?} lacks {detail:?}",
                String::from_utf8_lossy(line),
                e.detail
            );
        }
    }

    #[test]
    fn rejects_oversized_lines_and_truncates_long_op_names() {
        let long = vec![b' '; MAX_LINE + 1];
        assert!(bad(&long).detail.contains("longer than"));
        let op = "x".repeat(10_000);
        let line = format!(r#"{{"id":1,"op":"{op}"}}"#);
        assert!(bad(line.as_bytes()).detail.len() < 200);
    }

    #[test]
    fn encodes_answers_as_in_the_contract() {
        let enc = |id, r: &Reply| encode_reply(id, r);
        assert_eq!(
            enc(Some(1), &Reply::Value(Some("v7".into()))),
            "{\"id\":1,\"ok\":true,\"value\":\"v7\"}\n"
        );
        assert_eq!(
            enc(Some(1), &Reply::Value(None)),
            "{\"id\":1,\"ok\":true,\"value\":null}\n"
        );
        assert_eq!(enc(Some(2), &Reply::Done), "{\"id\":2,\"ok\":true}\n");
        assert_eq!(
            enc(
                Some(3),
                &Reply::Error(ErrorCode::CasMismatch(Some("v9".into())))
            ),
            "{\"id\":3,\"ok\":false,\"error\":\"cas_mismatch\",\"value\":\"v9\"}\n"
        );
        assert_eq!(
            enc(
                Some(2),
                &Reply::Error(ErrorCode::NotLeader(Some("127.0.0.1:7102".into())))
            ),
            "{\"id\":2,\"ok\":false,\"error\":\"not_leader\",\"leader\":\"127.0.0.1:7102\"}\n"
        );
        assert_eq!(
            enc(Some(2), &Reply::Error(ErrorCode::NotLeader(None))),
            "{\"id\":2,\"ok\":false,\"error\":\"not_leader\",\"leader\":null}\n"
        );
        assert_eq!(
            enc(Some(2), &Reply::Error(ErrorCode::Timeout)),
            "{\"id\":2,\"ok\":false,\"error\":\"timeout\"}\n"
        );
        assert_eq!(
            enc(None, &Reply::Error(ErrorCode::BadRequest("x".into()))),
            "{\"ok\":false,\"error\":\"bad_request\",\"detail\":\"x\"}\n"
        );
        let status = StatusInfo {
            node: "n2".into(),
            cluster: "c\"1".into(),
            role: "leader",
            term: 7,
            leader: Some("n2".into()),
            commit: 1042,
            applied: 1040,
            voters: vec!["n1".into(), "n2".into()],
            learners: vec![],
        };
        assert_eq!(
            enc(Some(4), &Reply::Status(Box::new(status))),
            "{\"id\":4,\"ok\":true,\"node\":\"n2\",\"cluster\":\"c\\\"1\",\"role\":\"leader\",\"term\":7,\"leader\":\"n2\",\"commit\":1042,\"applied\":1040,\"voters\":[\"n1\",\"n2\"],\"learners\":[]}\n"
        );
        assert_eq!(
            enc(Some(5), &Reply::Error(ErrorCode::Busy("a change".into()))),
            "{\"id\":5,\"ok\":false,\"error\":\"busy\",\"detail\":\"a change\"}\n"
        );
    }

    #[test]
    fn parses_admin_ops_and_rejects_bad_node_ids() {
        assert_eq!(
            ok(r#"{"id":7,"op":"add_member","node":"n3"}"#).op,
            Op::AddMember { node: NodeId(3) }
        );
        assert_eq!(
            ok(r#"{"id":8,"op":"remove_member","node":"n12"}"#).op,
            Op::RemoveMember { node: NodeId(12) }
        );
        assert_eq!(
            ok(r#"{"id":9,"op":"transfer_leader","node":"n2"}"#).op,
            Op::TransferLeader {
                node: Some(NodeId(2))
            }
        );
        for line in [
            r#"{"id":9,"op":"transfer_leader","node":null}"#,
            r#"{"id":9,"op":"transfer_leader"}"#,
        ] {
            assert_eq!(ok(line).op, Op::TransferLeader { node: None });
        }
        assert!(ok(r#"{"id":9,"op":"transfer_leader"}"#).op.is_admin());
        for (line, detail) in [
            (r#"{"id":7,"op":"add_member"}"#, "missing field `node`"),
            (r#"{"id":7,"op":"add_member","node":3}"#, "must be a string"),
            (
                r#"{"id":7,"op":"add_member","node":"x3"}"#,
                "invalid node id",
            ),
            (
                r#"{"id":7,"op":"remove_member","node":"n0"}"#,
                "invalid node id",
            ),
            (
                r#"{"id":7,"op":"remove_member","node":"n03"}"#,
                "invalid node id",
            ),
            (
                r#"{"id":9,"op":"transfer_leader","node":7}"#,
                "string or null",
            ),
        ] {
            let b = bad(line.as_bytes());
            assert_eq!(
                b.id,
                Some(7).filter(|_| !line.contains("\"id\":9")).or(Some(9))
            );
            assert!(b.detail.contains(detail), "{line}: {}", b.detail);
        }
    }

    #[test]
    fn definiteness_table() {
        assert!(ErrorCode::NotLeader(None).is_definite());
        assert!(ErrorCode::Overwritten.is_definite());
        assert!(!ErrorCode::Timeout.is_definite());
        assert!(!ErrorCode::StaleSeq.is_definite());
        assert!(!ErrorCode::Unknown(String::new()).is_definite());
        assert!(ErrorCode::Busy(String::new()).is_definite());
    }
}
