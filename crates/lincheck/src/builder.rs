//! Pairs invocation and completion events into [`Operation`]s, checking the per-process
//! discipline. Every reader (JSONL and the importers) feeds events through this.

use std::collections::HashMap;

use crate::error::{LineError, LineErrorKind};
use crate::history::{Func, History, KeyId, NemesisEvent, Operation, Outcome, Value};

/// A completion event, as a reader decoded it.
pub(crate) struct Completion<'a, V = Value> {
    pub line: u64,
    pub time: Option<u64>,
    pub process: u64,
    pub outcome: Outcome,
    /// `None` when the format does not repeat f on completions.
    pub f: Option<Func>,
    pub key: Option<&'a str>,
    pub output: V,
    /// The input an `ok` completion of a write, cas or append repeats (`(value, Nil)`, or
    /// `(from, to)` for cas); `None` when the line does not repeat it.
    pub echo: Option<(V, V)>,
    pub error: Option<&'a str>,
}

/// An invocation event.
pub(crate) struct Invocation<'a, V = Value> {
    pub line: u64,
    pub time: Option<u64>,
    pub process: u64,
    pub f: Func,
    pub key: &'a str,
    pub arg: V,
    pub arg2: V,
}

enum ProcState {
    Open(usize),
    /// Ended with an indefinite outcome on this line.
    Crashed(u64),
}

#[derive(Default)]
pub(crate) struct Builder {
    history: History,
    procs: HashMap<u64, ProcState>,
    key_ids: HashMap<String, KeyId>,
    pos: u64,
    /// Whether a process may invoke again after `info` (Jepsen logs reuse numbers in practice).
    lenient_info: bool,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts a process invoking again after an `info` completion (treated as a new process).
    pub fn lenient_info(mut self) -> Self {
        self.lenient_info = true;
        self
    }

    fn key_id(&mut self, key: &str) -> KeyId {
        if let Some(&id) = self.key_ids.get(key) {
            return id;
        }
        let id = self.history.keys.len() as KeyId;
        self.history.keys.push(key.to_string());
        self.key_ids.insert(key.to_string(), id);
        id
    }

    fn next_pos(&mut self) -> u64 {
        self.pos += 1;
        self.pos
    }

    pub fn invoke(&mut self, ev: Invocation<'_>) -> Result<(), LineError> {
        let err = |kind| LineError {
            line: ev.line,
            kind,
        };
        match self.procs.get(&ev.process) {
            Some(ProcState::Open(i)) => {
                return Err(err(LineErrorKind::AlreadyOpen {
                    process: ev.process,
                    open_line: self.history.ops[*i].call_line,
                }))
            }
            Some(ProcState::Crashed(info_line)) if !self.lenient_info => {
                return Err(err(LineErrorKind::InvokeAfterInfo {
                    process: ev.process,
                    info_line: *info_line,
                }))
            }
            _ => {}
        }
        let pos = self.next_pos();
        self.history.timed |= ev.time.is_some();
        let key = self.key_id(ev.key);
        let idx = self.history.ops.len();
        self.history.ops.push(Operation {
            process: ev.process,
            key,
            f: ev.f,
            arg: ev.arg,
            arg2: ev.arg2,
            output: Value::Nil,
            outcome: Outcome::Pending,
            call_pos: pos,
            ret_pos: u64::MAX,
            end_pos: None,
            call_time: ev.time.unwrap_or(pos),
            ret_time: None,
            call_line: ev.line,
            ret_line: None,
            error: None,
        });
        self.procs.insert(ev.process, ProcState::Open(idx));
        Ok(())
    }

    pub fn complete(&mut self, ev: Completion<'_>) -> Result<(), LineError> {
        let err = |kind| LineError {
            line: ev.line,
            kind,
        };
        let idx = match self.procs.get(&ev.process) {
            Some(ProcState::Open(i)) => *i,
            _ => {
                return Err(err(LineErrorKind::CompletionWithoutInvocation {
                    process: ev.process,
                    kind: ev.outcome.name(),
                }))
            }
        };
        let pos = self.next_pos();
        let op = &self.history.ops[idx];
        if let Some(f) = ev.f {
            if f != op.f {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "f",
                    invoked: op.f.name().to_string(),
                    completed: f.name().to_string(),
                    invoke_line: op.call_line,
                }));
            }
        }
        if let Some(key) = ev.key {
            let invoked = self.history.key_name(op.key);
            if key != invoked {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "key",
                    invoked: invoked.to_string(),
                    completed: key.to_string(),
                    invoke_line: op.call_line,
                }));
            }
        }
        // An `ok` that echoes another input than the one invoked means the recorder paired the
        // wrong events or lost one: which value took effect is unknowable, so refuse to guess.
        if let (Outcome::Ok, Some((a, b))) = (ev.outcome, &ev.echo) {
            if (a, b) != (&op.arg, &op.arg2) {
                return Err(err(LineErrorKind::CompletionMismatch {
                    field: "value",
                    invoked: input_text(op.f, &op.arg, &op.arg2),
                    completed: input_text(op.f, a, b),
                    invoke_line: op.call_line,
                }));
            }
        }
        let op = &mut self.history.ops[idx];
        op.outcome = ev.outcome;
        op.ret_time = Some(ev.time.unwrap_or(pos));
        op.ret_line = Some(ev.line);
        op.end_pos = Some(pos);
        op.error = ev.error.map(Into::into);
        if ev.outcome.is_indefinite() {
            self.procs.insert(ev.process, ProcState::Crashed(ev.line));
        } else {
            op.ret_pos = pos;
            if op.f == Func::Read && ev.outcome == Outcome::Ok {
                op.output = ev.output;
            }
            self.procs.remove(&ev.process);
        }
        Ok(())
    }

    pub fn nemesis(&mut self, time: Option<u64>, f: &str, kind: &str, value: serde_json::Value) {
        let pos = self.next_pos();
        self.history.nemesis.push(NemesisEvent {
            time: time.unwrap_or(pos),
            pos,
            f: f.to_string(),
            kind: kind.to_string(),
            value,
        });
    }

    /// Ends the history: operations still open stay `Pending`.
    pub fn finish(self) -> History {
        self.history
    }
}

pub(crate) fn input_text(f: Func, a: &Value, b: &Value) -> String {
    match f {
        Func::Cas => format!("[{a}, {b}]"),
        _ => a.to_string(),
    }
}
