//! The client side of the node protocol (docs/protocol.md): newline-delimited JSON over TCP, one
//! request per line, answers in order.

use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a call has no answer. Whether the request may have taken effect is the caller's to judge:
/// [`CallError::NotSent`] surely did not, every other variant may have.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request was never sent (connecting failed).
    #[error("connect: {0}")]
    NotSent(io::Error),
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
pub struct Answer {
    pub ok: bool,
    pub error: Option<String>,
    pub raw: Value,
}

impl Answer {
    /// The `value` field (`None` if absent; `Some(Value::Null)` if null).
    pub fn value(&self) -> Option<&Value> {
        self.raw.get("value")
    }

    /// A not_leader answer's hint: the leader's client address, if known.
    pub fn leader_hint(&self) -> Option<String> {
        self.raw
            .get("leader")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// One connection to a node's client port.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
    line: String,
}

impl Conn {
    /// Connects with a timeout.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(1)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Whether the peer has visibly closed the connection (EOF or error pending, nothing
    /// unread): a reused connection is checked this way before a request goes out, so that a
    /// connection to a node that was killed since is replaced instead of losing the request.
    pub fn is_closed(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            // Unsolicited bytes: something is off, do not reuse.
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

    /// Sends one request (an object without `id`; the id is added) and waits for its answer
    /// until `deadline`.
    pub fn call(&mut self, mut request: Value, deadline: Instant) -> Result<Answer, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        if let Value::Object(m) = &mut request {
            m.insert("id".into(), json!(id));
        }
        let mut line = request.to_string();
        line.push('\n');
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(CallError::Timeout);
        }
        self.writer
            .set_write_timeout(Some(remaining))
            .map_err(CallError::Io)?;
        // From here on the request may have reached the node, even if the write fails midway.
        self.writer
            .write_all(line.as_bytes())
            .map_err(CallError::Io)?;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallError::Timeout);
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(remaining))
                .map_err(CallError::Io)?;
            match self.reader.read_line(&mut self.line) {
                Ok(0) => {
                    return Err(CallError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the node",
                    )))
                }
                Ok(_) if !self.line.ends_with('\n') => continue,
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(CallError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CallError::Io(e)),
            }
            let line = std::mem::take(&mut self.line);
            let raw: Value = serde_json::from_str(line.trim())
                .map_err(|e| CallError::Protocol(format!("bad JSON answer {line:?}: {e}")))?;
            match raw.get("id").and_then(Value::as_u64) {
                Some(got) if got == id => {}
                // An answer without an id is a bad_request for a line the node could not parse.
                Some(got) => {
                    return Err(CallError::Protocol(format!(
                        "answer id {got} for request {id}"
                    )))
                }
                None => {
                    return Err(CallError::Protocol(format!(
                        "answer without id: {}",
                        line.trim()
                    )))
                }
            }
            let ok = raw.get("ok").and_then(Value::as_bool).ok_or_else(|| {
                CallError::Protocol(format!("answer without ok: {}", line.trim()))
            })?;
            let error = raw.get("error").and_then(Value::as_str).map(str::to_string);
            return Ok(Answer { ok, error, raw });
        }
    }
}

/// Opens a connection to `addr` (a proxy listener in front of a node's client port) and checks,
/// with a `status` request, that the node behind it is `node` of cluster `cluster`: a `node` or
/// `cluster` field that differs refuses the connection (a field the store leaves out is not
/// checked). Nothing but `status` has been sent when this fails, so a caller may treat the
/// operation it wanted to send as surely not applied.
pub fn connect_checked(
    addr: SocketAddr,
    node: &str,
    cluster: &str,
    deadline: Instant,
) -> Result<Conn, CallError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut conn = Conn::connect(addr, left).map_err(CallError::NotSent)?;
    let a = conn
        .call(json!({"op": "status"}), deadline)
        .map_err(|e| CallError::NotSent(io::Error::other(format!("status on connect: {e}"))))?;
    let field = |k: &str| a.raw.get(k).and_then(Value::as_str);
    let mismatch = |what: &str, want: &str, got: Option<&str>| {
        CallError::NotSent(io::Error::other(format!(
            "{addr} is not {what} {want:?} (it says {got:?}): another process answers there"
        )))
    };
    if !a.ok {
        return Err(CallError::NotSent(io::Error::other(format!(
            "status refused on connect: {}",
            a.raw
        ))));
    }
    if field("node").is_some_and(|n| n != node) {
        return Err(mismatch("node", node, field("node")));
    }
    if field("cluster").is_some_and(|c| c != cluster) {
        return Err(mismatch("a node of cluster", cluster, field("cluster")));
    }
    Ok(conn)
}

/// What a node says about itself (`status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub node: Option<String>,
    pub role: Option<String>,
    pub term: Option<u64>,
    pub leader: Option<String>,
}

/// Asks one node for its status, on a fresh connection.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<Status, CallError> {
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::connect(addr, timeout).map_err(CallError::NotSent)?;
    let a = conn.call(json!({"op": "status"}), deadline)?;
    if !a.ok {
        return Err(CallError::Protocol(format!("status refused: {}", a.raw)));
    }
    let s = |k: &str| a.raw.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Status {
        node: s("node"),
        role: s("role"),
        term: a.raw.get("term").and_then(Value::as_u64),
        leader: s("leader"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that answers each line with `reply(line)`.
    fn serve(reply: fn(&Value) -> Option<Value>) -> io::Result<SocketAddr> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                let mut w = match s.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    let req: Value = serde_json::from_str(&line).unwrap_or_default();
                    if let Some(ans) = reply(&req) {
                        let _ = writeln!(w, "{ans}");
                    }
                }
            }
        });
        Ok(addr)
    }

    #[test]
    fn status_and_calls() -> io::Result<()> {
        let addr = serve(|req| {
            Some(match req["op"].as_str() {
                Some("status") => json!({"id": req["id"], "ok": true, "node": "n1",
                    "role": "leader", "term": 3, "leader": "n1"}),
                Some("read") => json!({"id": req["id"], "ok": true, "value": null}),
                Some("write") => return None, // never answers
                _ => json!({"id": req["id"], "ok": false, "error": "not_leader",
                    "leader": "127.0.0.1:1"}),
            })
        })?;
        let mut c = Conn::connect(addr, Duration::from_secs(1))?;
        let a = c.call(
            json!({"op": "status"}),
            Instant::now() + Duration::from_secs(1),
        );
        assert!(matches!(a, Ok(ref a) if a.ok && a.raw["role"] == "leader"));
        let a = c.call(
            json!({"op": "read", "key": "k"}),
            Instant::now() + Duration::from_secs(1),
        );
        assert!(matches!(a, Ok(ref a) if a.value() == Some(&Value::Null)));
        let a = c.call(
            json!({"op": "cas"}),
            Instant::now() + Duration::from_secs(1),
        );
        assert!(
            matches!(a, Ok(ref a) if a.error.as_deref() == Some("not_leader")
                && a.leader_hint().as_deref() == Some("127.0.0.1:1"))
        );
        assert!(!c.is_closed());
        let a = c.call(
            json!({"op": "write"}),
            Instant::now() + Duration::from_millis(50),
        );
        assert!(matches!(a, Err(CallError::Timeout)));
        Ok(())
    }

    #[test]
    fn connect_refused_is_not_sent() -> io::Result<()> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        drop(l);
        assert!(matches!(
            status(addr, Duration::from_millis(200)),
            Err(CallError::NotSent(_))
        ));
        Ok(())
    }
}
