//! The `external` adapter: a program of your own, in any language, speaking a small JSON-lines
//! protocol on its stdin and stdout, so that a store can be tested through its own client
//! library. `docs/adapters.md` is the reference for authors; in short (protocol version 1):
//!
//! - The harness starts one adapter process per session (one per client worker and node), in
//!   its own process group, with `HARNESS_ADAPTER_PROTOCOL=1` in its environment. One request is
//!   in flight at a time, so an adapter needs no concurrency of its own.
//! - Harness to adapter, one JSON object per line:
//!   `{"id":0,"op":"hello","protocol":1,"node":"n1","addr":"127.0.0.1:4001","cluster":null,"options":{...}}`,
//!   then `{"id":1,"op":"write","node":"n1","addr":"127.0.0.1:4001","key":"k1","value":"v7","client":"p3","seq":9,"timeout_ms":4990}`
//!   (`read` has `key`; `cas` has `key`, `from` (string, or null for "absent") and `to`;
//!   `status` has neither).
//! - Adapter to harness, one line per request, with the request's `id`:
//!   `{"id":0,"type":"ok","protocol":1,"name":"my-adapter"}` to the hello, then
//!   `{"id":1,"type":"ok","value":"v7"}` (a read's `value` is required: a string, or null when
//!   absent), `{"id":1,"type":"fail","error":"cas_mismatch","current":"v9"}` (`current`
//!   optional, null = absent), `{"id":1,"type":"not_leader","leader":"127.0.0.1:4002"}`, or
//!   `{"id":1,"type":"info","error":"timeout"}`.
//! - The adapter should answer within `timeout_ms`; it must exit when its stdin closes; it may
//!   write anything to stderr (option `stderr`).
//!
//! # Mapping
//!
//! | what happens | reply |
//! |---|---|
//! | `type: ok` | `Ok` (a read: its `value`) |
//! | `type: fail` | `Fail(error)`, with `current` if given |
//! | `type: not_leader` | `NotLeader` with `leader` as the hint |
//! | `type: info` | `Info(error)` |
//! | the process could not be (re)started, or refused the hello; the deadline passed before sending | `Fail` |
//! | no answer by the deadline plus `grace_ms` | `Info("timeout")`; the process is killed |
//! | the process exited (or closed stdout) before answering | `Info`; the process is reaped |
//! | a malformed answer: not JSON, no or unknown `type`, another `id`, a read without `value`, over 8 MiB | `Info`; the process is killed |
//!
//! After a killed or dead process the next request starts a new one (with a new hello); a
//! process found dead *before* a request is sent is replaced without loss. Processes are killed
//! (SIGKILL to the whole process group) and reaped when their session is dropped, and get
//! SIGKILL if the thread that started them dies (`PR_SET_PDEATHSIG`; sessions are meant to stay
//! on the thread that opened them), so none outlives the harness.
//!
//! Options: `command` (array of strings, required: the program and its arguments), `env`
//! (table of strings), `cwd` (string), `stderr` (`"inherit"`, the default, `"null"`, or a file
//! path to append to), `grace_ms` (default 500), `startup_ms` (default 5000: how long a new
//! process may take to answer its hello), `options` (any table, passed as is in the
//! hello).

use crate::config::{ConfigError, Options};
use crate::lines::{read_line, LineRead};
use crate::{
    remaining, too_late, Adapter, AdapterError, ConnectError, NodeEndpoint, NodeStatus, Op,
    OpContext, Reply, Role, Session,
};
use serde_json::{json, Value};
use std::io::{self, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The protocol version this harness speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// The longest answer line accepted.
const MAX_LINE: usize = 8 << 20;

/// Where an adapter process's stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrTo {
    Inherit,
    Null,
    /// Appended to this file.
    File(PathBuf),
}

/// The `external` adapter. See the module documentation for the protocol and options.
#[derive(Debug, Clone)]
pub struct ExternalAdapter {
    command: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stderr: StderrTo,
    grace: Duration,
    /// How long a new process may take to answer its hello, whatever the operation's deadline.
    startup: Duration,
    options: Value,
}

impl ExternalAdapter {
    /// An adapter that runs `command` (the program, then its arguments).
    pub fn new(command: Vec<String>) -> ExternalAdapter {
        ExternalAdapter {
            command,
            env: Vec::new(),
            cwd: None,
            stderr: StderrTo::Inherit,
            grace: Duration::from_millis(500),
            startup: Duration::from_secs(5),
            options: Value::Null,
        }
    }

    /// The table passed in the hello's `options`.
    pub fn options(mut self, options: Value) -> ExternalAdapter {
        self.options = options;
        self
    }

    /// How long past an operation's deadline to wait for the adapter's answer.
    pub fn grace(mut self, grace: Duration) -> ExternalAdapter {
        self.grace = grace;
        self
    }

    /// Where the processes' stderr goes.
    pub fn stderr(mut self, to: StderrTo) -> ExternalAdapter {
        self.stderr = to;
        self
    }

    pub(crate) fn from_options(o: &mut Options<'_>) -> Result<ExternalAdapter, ConfigError> {
        let command = o.string_list("command")?.ok_or(ConfigError::Missing {
            adapter: "external",
            field: "command",
        })?;
        if command.first().map_or(true, |p| p.is_empty()) {
            return Err(o.bad("command", "must name a program"));
        }
        let stderr = match o.string("stderr")?.as_deref() {
            None | Some("inherit") => StderrTo::Inherit,
            Some("null") => StderrTo::Null,
            Some("") => return Err(o.bad("stderr", "\"inherit\", \"null\" or a file path")),
            Some(path) => StderrTo::File(path.into()),
        };
        let a = ExternalAdapter {
            command,
            env: o.string_table("env")?,
            cwd: o.string("cwd")?.map(PathBuf::from),
            stderr,
            grace: Duration::from_millis(o.u64("grace_ms", 500)?),
            startup: Duration::from_millis(o.u64("startup_ms", 5000)?),
            options: o.raw("options"),
        };
        if !matches!(a.options, Value::Null | Value::Object(_)) {
            return Err(o.bad("options", "must be a table"));
        }
        Ok(a)
    }

    /// [`Adapter::connect`], with the concrete session type: starts the process and says hello.
    pub fn open(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<ExternalSession, ConnectError> {
        let mut s = ExternalSession {
            cfg: Arc::new(self.clone()),
            endpoint: node.clone(),
            proc: None,
            next_id: 1,
        };
        s.proc = Some(s.start(deadline)?);
        Ok(s)
    }
}

impl Adapter for ExternalAdapter {
    fn name(&self) -> &'static str {
        "external"
    }

    fn connect(
        &self,
        node: &NodeEndpoint,
        deadline: Instant,
    ) -> Result<Box<dyn Session>, ConnectError> {
        Ok(Box::new(self.open(node, deadline)?))
    }
}

/// What the stdout reader thread passes on.
enum FromAdapter {
    Line(Vec<u8>),
    Eof,
    TooLong,
    Error(io::Error),
}

/// One running adapter process.
struct Proc {
    child: Child,
    to_adapter: Sender<Vec<u8>>,
    from_adapter: Receiver<FromAdapter>,
}

impl Proc {
    fn spawn(cfg: &ExternalAdapter) -> Result<Proc, ConnectError> {
        let program = cfg.command.first().cloned().unwrap_or_default();
        let spawn_err = |source: io::Error| ConnectError::Spawn {
            program: program.clone(),
            source,
        };
        let mut cmd = Command::new(&program);
        cmd.args(cfg.command.iter().skip(1))
            .envs(cfg.env.iter().map(|(k, v)| (k, v)))
            .env("HARNESS_ADAPTER_PROTOCOL", PROTOCOL_VERSION.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0);
        match &cfg.stderr {
            StderrTo::Inherit => cmd.stderr(Stdio::inherit()),
            StderrTo::Null => cmd.stderr(Stdio::null()),
            StderrTo::File(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(spawn_err)?;
                cmd.stderr(f)
            }
        };
        if let Some(dir) = &cfg.cwd {
            cmd.current_dir(dir);
        }
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // async-signal-safe system call.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill_group(&mut child);
            return Err(spawn_err(io::Error::other("no pipes to the child")));
        };
        let (to_adapter, lines_in) = mpsc::channel::<Vec<u8>>();
        let (lines_out, from_adapter) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("adapter-writer".into())
            .spawn(move || write_lines(stdin, lines_in))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("adapter-reader".into())
                    .spawn(move || read_lines(stdout, lines_out))
            });
        if let Err(e) = spawned {
            kill_group(&mut child);
            return Err(spawn_err(e));
        }
        Ok(Proc {
            child,
            to_adapter,
            from_adapter,
        })
    }

    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// What to say about a process that stopped answering.
    fn exit_text(&mut self) -> String {
        // Give it a moment to be reapable: stdout closes just before the exit.
        for _ in 0..20 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("adapter process exited ({status})");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        "adapter process closed its stdout".into()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// SIGKILL to the child's process group (it leads one), then reap the child.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: a plain system call. The group is the child's own (process_group(0)). Its id
        // cannot have been reused while the child is unreaped, nor while any process of the
        // group lives (Linux does not hand out a pid that is in use as a group id); only a child
        // reaped by `try_wait` whose whole group is gone leaves a window, and then only through
        // pid wrap-around in between.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn write_lines(mut stdin: ChildStdin, lines: Receiver<Vec<u8>>) {
    for line in lines {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

fn read_lines(stdout: std::process::ChildStdout, out: Sender<FromAdapter>) {
    let mut r = BufReader::new(stdout);
    loop {
        let mut buf = Vec::new();
        let msg = match read_line(&mut r, &mut buf, MAX_LINE) {
            Ok(LineRead::Line) => FromAdapter::Line(buf),
            Ok(LineRead::Eof) => FromAdapter::Eof,
            Ok(LineRead::TooLong) => FromAdapter::TooLong,
            Err(e) => FromAdapter::Error(e),
        };
        let last = !matches!(msg, FromAdapter::Line(_));
        if out.send(msg).is_err() || last {
            return;
        }
    }
}

/// A session of the [`ExternalAdapter`]: one adapter process at a time.
pub struct ExternalSession {
    cfg: Arc<ExternalAdapter>,
    endpoint: NodeEndpoint,
    proc: Option<Proc>,
    next_id: u64,
}

/// Why a request has no answer.
enum Trouble {
    /// Nothing was sent: the process could not be started or refused the hello.
    NotSent(String),
    /// Sent; the process died, hung or garbled its answer, and has been killed.
    Lost(String),
}

impl ExternalSession {
    /// The running adapter process's id, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    /// Starts a process and says hello.
    fn start(&self, deadline: Instant) -> Result<Proc, ConnectError> {
        let mut proc = Proc::spawn(&self.cfg)?;
        let hello = json!({
            "id": 0,
            "op": "hello",
            "protocol": PROTOCOL_VERSION,
            "node": self.endpoint.node,
            "addr": self.endpoint.addr,
            "cluster": self.endpoint.cluster,
            "options": self.cfg.options,
        });
        let handshake = |detail: String| ConnectError::Handshake {
            addr: self.endpoint.addr.clone(),
            detail,
        };
        // The hello touches no store: a process slow to start (an interpreter on a loaded
        // machine) gets `startup`, even past the operation's deadline. Nothing has been sent
        // to the store either way.
        let hello_deadline = (deadline + self.cfg.grace).max(Instant::now() + self.cfg.startup);
        let answer = match exchange(&mut proc, &hello, 0, hello_deadline) {
            Ok(a) => a,
            Err(Exchange::Timeout) => {
                return Err(ConnectError::Timeout {
                    addr: self.endpoint.addr.clone(),
                })
            }
            Err(Exchange::Dead) => return Err(handshake(format!("hello: {}", proc.exit_text()))),
            Err(Exchange::Malformed(e)) => return Err(handshake(format!("hello: {e}"))),
        };
        match answer.get("type").and_then(Value::as_str) {
            Some("ok") => {}
            Some("fail" | "info") => {
                return Err(handshake(format!(
                    "the adapter refused: {}",
                    answer.get("error").and_then(Value::as_str).unwrap_or("")
                )))
            }
            _ => return Err(handshake(format!("hello: malformed answer {answer}"))),
        }
        match answer.get("protocol").and_then(Value::as_u64) {
            Some(PROTOCOL_VERSION) => Ok(proc),
            other => Err(handshake(format!(
                "the adapter speaks protocol {other:?}, the harness {PROTOCOL_VERSION}"
            ))),
        }
    }

    /// Sends one request (the `id` is added) and returns the answer object.
    fn request(&mut self, mut msg: Value, deadline: Instant) -> Result<Value, Trouble> {
        if self.proc.as_mut().is_some_and(Proc::has_exited) {
            self.proc = None; // reaped on drop; nothing was sent to it
        }
        let mut proc = match self.proc.take() {
            Some(p) => p,
            None => self
                .start(deadline)
                .map_err(|e| Trouble::NotSent(format!("adapter: {e}")))?,
        };
        let Some(left) = remaining(deadline) else {
            self.proc = Some(proc);
            return Err(Trouble::NotSent("deadline passed before sending".into()));
        };
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        msg["node"] = json!(self.endpoint.node);
        msg["addr"] = json!(self.endpoint.addr);
        msg["timeout_ms"] = json!(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        match exchange(&mut proc, &msg, id, deadline + self.cfg.grace) {
            Ok(answer) => {
                self.proc = Some(proc);
                Ok(answer)
            }
            // `proc` is dropped here: killed and reaped; the next request starts another.
            Err(Exchange::Timeout) => Err(Trouble::Lost("timeout".into())),
            Err(Exchange::Dead) => Err(Trouble::Lost(proc.exit_text())),
            Err(Exchange::Malformed(e)) => Err(Trouble::Lost(format!("adapter: {e}"))),
        }
    }
}

/// Why an exchange has no answer.
enum Exchange {
    Timeout,
    Dead,
    Malformed(String),
}

/// Writes `msg` and waits until `until` for the answer with `id`.
fn exchange(proc: &mut Proc, msg: &Value, id: u64, until: Instant) -> Result<Value, Exchange> {
    let mut line = msg.to_string().into_bytes();
    line.push(b'\n');
    if proc.to_adapter.send(line).is_err() {
        return Err(Exchange::Dead);
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let got = match proc.from_adapter.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Err(Exchange::Timeout),
            Err(RecvTimeoutError::Disconnected) => return Err(Exchange::Dead),
        };
        let bytes = match got {
            FromAdapter::Line(b) => b,
            FromAdapter::Eof => return Err(Exchange::Dead),
            FromAdapter::Error(e) => {
                return Err(Exchange::Malformed(format!("reading its stdout: {e}")))
            }
            FromAdapter::TooLong => {
                return Err(Exchange::Malformed(format!(
                    "answer longer than {MAX_LINE} bytes"
                )))
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.trim().is_empty() {
            continue;
        }
        let answer: Value = serde_json::from_str(text.trim()).map_err(|e| {
            Exchange::Malformed(format!("malformed answer (not JSON: {e}): {}", clip(&text)))
        })?;
        if !answer.is_object() {
            return Err(Exchange::Malformed(format!(
                "malformed answer (not an object): {}",
                clip(&text)
            )));
        }
        return match answer.get("id").and_then(Value::as_u64) {
            Some(got) if got == id => Ok(answer),
            _ => Err(Exchange::Malformed(format!(
                "malformed answer (expected id {id}): {}",
                clip(&text)
            ))),
        };
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Maps an adapter's answer to an operation (see the module's table).
fn classify(op: &Op, a: &Value) -> Result<Reply, String> {
    let error = || {
        a.get("error")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match a.get("type").and_then(Value::as_str) {
        Some("ok") => match op {
            Op::Read { .. } => match a.get("value") {
                Some(Value::Null) => Ok(Reply::Ok { value: None }),
                Some(Value::String(s)) => Ok(Reply::Ok {
                    value: Some(s.clone()),
                }),
                Some(_) => Err("a read's `value` must be a string or null".into()),
                None => Err("a read's answer needs `value` (null when absent)".into()),
            },
            _ => Ok(Reply::Ok { value: None }),
        },
        Some("fail") => Ok(Reply::Fail {
            error: error(),
            current: match a.get("current") {
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(Some(s.clone())),
                _ => None,
            },
        }),
        Some("not_leader") => Ok(Reply::NotLeader {
            hint: a.get("leader").and_then(Value::as_str).map(str::to_string),
        }),
        Some("info") => Ok(Reply::info(error())),
        Some(other) => Err(format!("unknown answer type {other:?}")),
        None => Err("answer without `type`".into()),
    }
}

impl Session for ExternalSession {
    fn execute(&mut self, op: &Op, ctx: &OpContext, deadline: Instant) -> Reply {
        if remaining(deadline).is_none() {
            return too_late();
        }
        let mut msg = match op {
            Op::Read { key } => json!({"op": "read", "key": key}),
            Op::Write { key, value } => json!({"op": "write", "key": key, "value": value}),
            Op::Cas { key, from, to } => json!({"op": "cas", "key": key, "from": from, "to": to}),
        };
        msg["client"] = json!(ctx.client);
        msg["seq"] = json!(ctx.seq);
        match self.request(msg, deadline) {
            Ok(answer) => match classify(op, &answer) {
                Ok(reply) => reply,
                Err(e) => {
                    // Out of step with the protocol: start afresh.
                    self.proc = None;
                    Reply::info(format!(
                        "adapter: malformed answer ({e}): {}",
                        clip(&answer.to_string())
                    ))
                }
            },
            Err(Trouble::NotSent(e)) => Reply::fail(e),
            Err(Trouble::Lost(e)) => Reply::info(e),
        }
    }

    fn status(&mut self, deadline: Instant) -> Result<NodeStatus, AdapterError> {
        let answer = match self.request(json!({"op": "status"}), deadline) {
            Ok(a) => a,
            Err(Trouble::NotSent(e)) => return Err(AdapterError::Io(e)),
            Err(Trouble::Lost(e)) if e == "timeout" => return Err(AdapterError::Timeout),
            Err(Trouble::Lost(e)) => return Err(AdapterError::Protocol(e)),
        };
        let s = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_string);
        match s("type").as_deref() {
            Some("ok") => Ok(NodeStatus {
                node: s("node"),
                role: s("role").map_or(Role::Unknown, |r| Role::from_name(&r)),
                term: answer.get("term").and_then(Value::as_u64),
                leader: s("leader"),
                leader_addr: s("leader_addr"),
                cluster: s("cluster"),
                ..NodeStatus::unknown()
            }),
            Some("fail") if s("error").as_deref() == Some("unsupported") => {
                Err(AdapterError::Unsupported)
            }
            Some("fail" | "info") => Err(AdapterError::Refused(s("error").unwrap_or_default())),
            _ => {
                self.proc = None;
                Err(AdapterError::Protocol(format!("malformed answer {answer}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        let read = Op::Read { key: "k".into() };
        let write = Op::Write {
            key: "k".into(),
            value: "v".into(),
        };
        assert_eq!(
            classify(&read, &json!({"type": "ok", "value": "x"})),
            Ok(Reply::Ok {
                value: Some("x".into())
            })
        );
        assert!(classify(&read, &json!({"type": "ok"})).is_err());
        assert_eq!(
            classify(&write, &json!({"type": "ok"})),
            Ok(Reply::Ok { value: None })
        );
        assert_eq!(
            classify(
                &write,
                &json!({"type": "fail", "error": "cas_mismatch", "current": null})
            ),
            Ok(Reply::Fail {
                error: "cas_mismatch".into(),
                current: Some(None)
            })
        );
        assert_eq!(
            classify(&write, &json!({"type": "not_leader", "leader": null})),
            Ok(Reply::NotLeader { hint: None })
        );
        assert_eq!(
            classify(&write, &json!({"type": "info", "error": "timeout"})),
            Ok(Reply::info("timeout"))
        );
        assert!(classify(&write, &json!({"type": "maybe"})).is_err());
        assert!(classify(&write, &json!({})).is_err());
    }
}
