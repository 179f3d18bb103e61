//! The project's JSON Lines history format (docs/history-format.md): a streaming reader with
//! line-numbered errors, and a writer.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Write};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::builder::{Builder, Completion, Invocation};
use crate::error::{LineError, LineErrorKind};
use crate::history::{Func, History, Outcome, Value};

/// A `value` field as it appears on a line. Decoded without building a `serde_json::Value` for
/// the common shapes (null, integer, string, a pair for cas).
#[derive(Debug)]
enum RawValue<'a> {
    Null,
    Int(i64),
    Str(Cow<'a, str>),
    List(Vec<RawValue<'a>>),
    Other(serde_json::Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawValue::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(RawValue::Null)
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(RawValue::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(RawValue::Other(serde_json::Value::from(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawValue::Other(serde_json::Value::from(v)))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawValue::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawValue::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawValue::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map_err(de::Error::custom)?;
                Ok(RawValue::Other(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl RawValue<'_> {
    fn to_json(&self) -> serde_json::Value {
        match self {
            RawValue::Null => serde_json::Value::Null,
            RawValue::Int(i) => (*i).into(),
            RawValue::Str(s) => serde_json::Value::from(&**s),
            RawValue::List(l) => serde_json::Value::Array(l.iter().map(|v| v.to_json()).collect()),
            RawValue::Other(v) => v.clone(),
        }
    }

    fn scalar(&self, f: &'static str) -> Result<Value, LineErrorKind> {
        match self {
            RawValue::Null => Ok(Value::Nil),
            RawValue::Int(i) => Ok(Value::Int(*i)),
            RawValue::Str(s) => Ok(Value::Str((**s).into())),
            other => Err(LineErrorKind::BadValue {
                f,
                detail: format!(
                    "expected a string, an integer or null, got {}",
                    other.to_json()
                ),
            }),
        }
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default)]
    #[allow(dead_code)]
    index: Option<u64>,
    time: Option<u64>,
    /// Any JSON, so that a wrong one is reported as a bad process rather than as bad JSON.
    #[serde(borrow)]
    process: Option<RawValue<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    value: Option<RawValue<'a>>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

/// Reads a JSONL history from any reader, one line at a time (the whole file is never held in
/// memory).
///
/// The writer ends every event with a newline, so a last line with no newline that is not even
/// valid JSON (or not UTF-8) is what a crash mid-write leaves: it is left out and its number kept
/// in [`History::torn_tail`]. Any other malformed line is an error: the last one when it is
/// complete, and an unterminated one that is whole JSON but breaks a rule (a wrong type, a bad
/// process), which no crash can produce.
pub fn read_jsonl<R: BufRead>(mut reader: R) -> Result<History, ReadLineError> {
    let mut builder = Builder::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut torn_tail = None;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| ReadLineError::Io(line_no + 1, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        // `read_until` stops without a newline only at the end of the input.
        let complete = buf.ends_with(b"\n");
        let err = |kind| LineError {
            line: line_no,
            kind,
        };
        // Bytes, not `read_line`: a writer killed inside a multi-byte character leaves a last
        // line that is not UTF-8, and that is a torn tail, not an unreadable file.
        let line = match std::str::from_utf8(&buf) {
            Ok(text) => text.trim(),
            Err(_) if !complete => {
                torn_tail = Some(line_no);
                break;
            }
            Err(e) => {
                return Err(ReadLineError::Line(err(LineErrorKind::Malformed {
                    format: "JSON",
                    detail: format!("not UTF-8 (byte {})", e.valid_up_to() + 1),
                })))
            }
        };
        if line.is_empty() {
            continue;
        }
        let ev: RawEvent = match serde_json::from_str(line) {
            Ok(ev) => ev,
            // A line cut short is never valid JSON, and fails as a syntax error or at its end,
            // never on a type (a cut number is still a number); a complete object with a field
            // of the wrong type is an error wherever it stands.
            Err(e) if !complete && e.classify() != serde_json::error::Category::Data => {
                torn_tail = Some(line_no);
                break;
            }
            Err(e) => {
                return Err(ReadLineError::Line(err(LineErrorKind::Malformed {
                    format: "JSON",
                    detail: json_detail(&e),
                })))
            }
        };
        apply_event(&mut builder, line_no, ev).map_err(ReadLineError::Line)?;
    }
    let mut history = builder.finish();
    history.torn_tail = torn_tail;
    Ok(history)
}

/// serde_json's message without its own "at line 1 column N": the line is the history's, not
/// serde's (which only ever sees one line), and the caller names it; the column is kept.
fn json_detail(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(m) => format!("{m} (column {})", e.column()),
        None => msg,
    }
}

/// An I/O error (at a line) or a malformed line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadLineError {
    /// Reading failed. The cause is in the message, not also `source()` (it would print twice).
    #[error("line {0}: {1}")]
    Io(u64, io::Error),
    /// A line is malformed.
    #[error(transparent)]
    Line(#[from] LineError),
}

fn apply_event(b: &mut Builder, line: u64, ev: RawEvent<'_>) -> Result<(), LineError> {
    let err = |kind| LineError { line, kind };
    let kind = ev.kind.ok_or(err(LineErrorKind::MissingField("type")))?;
    let process = ev
        .process
        .ok_or(err(LineErrorKind::MissingField("process")))?;
    let f_name = ev.f.ok_or(err(LineErrorKind::MissingField("f")))?;
    let time = Some(ev.time.ok_or(err(LineErrorKind::MissingField("time")))?);
    let outcome = match &*kind {
        "invoke" => None,
        "ok" => Some(Outcome::Ok),
        "fail" => Some(Outcome::Fail),
        "info" => Some(Outcome::Info),
        other => return Err(err(LineErrorKind::UnknownType(other.to_string()))),
    };
    let process = match process {
        RawValue::Int(p) if p >= 0 => p as u64,
        RawValue::Str(name) if name == "nemesis" => {
            let value = ev.value.map(|v| v.to_json()).unwrap_or_default();
            b.nemesis(time, &f_name, &kind, value);
            return Ok(());
        }
        other => return Err(err(LineErrorKind::BadProcess(other.to_json().to_string()))),
    };
    let f = Func::parse(&f_name)
        .ok_or_else(|| err(LineErrorKind::UnknownFunction(f_name.to_string())))?;
    let Some(outcome) = outcome else {
        let key = ev.key.ok_or(err(LineErrorKind::MissingField("key")))?;
        let (arg, arg2) = invocation_args(f, &ev.value.unwrap_or(RawValue::Null)).map_err(err)?;
        return b.invoke(Invocation {
            line,
            time,
            process,
            f,
            key: &key,
            arg,
            arg2,
        });
    };
    let (output, echo) = match (f, outcome, ev.value) {
        (Func::Read, Outcome::Ok, v) => (
            v.unwrap_or(RawValue::Null).scalar("read").map_err(err)?,
            None,
        ),
        // Only an `ok` is compared: the check uses the invocation's input, and a `fail` or
        // `info` line's value is not evidence of anything (docs/history-format.md).
        (Func::Read, ..) | (_, Outcome::Fail | Outcome::Info, _) | (_, _, None) => {
            (Value::Nil, None)
        }
        (f, _, Some(v)) => (Value::Nil, Some(invocation_args(f, &v).map_err(err)?)),
    };
    b.complete(Completion {
        line,
        time,
        process,
        outcome,
        f: Some(f),
        key: ev.key.as_deref(),
        output,
        echo,
        error: ev.error.as_deref(),
    })
}

fn invocation_args(f: Func, value: &RawValue<'_>) -> Result<(Value, Value), LineErrorKind> {
    Ok(match f {
        Func::Read => (Value::Nil, Value::Nil),
        Func::Write | Func::Append => (value.scalar(f.name())?, Value::Nil),
        Func::Cas => match value {
            RawValue::List(l) if l.len() == 2 => (l[0].scalar("cas")?, l[1].scalar("cas")?),
            other => {
                return Err(LineErrorKind::BadValue {
                    f: "cas",
                    detail: format!("expected [from, to], got {}", other.to_json()),
                })
            }
        },
    })
}

/// Who ran an event: a client process or the nemesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process number.
    Client(u64),
    /// A named actor, `"nemesis"`.
    Named(String),
}

/// The type of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// An invocation.
    Invoke,
    /// Success.
    Ok,
    /// Definite failure.
    Fail,
    /// Indefinite outcome, or a nemesis event.
    Info,
}

/// One line of the history format, for writing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Sequence number from 0.
    pub index: u64,
    /// ns since the run started (monotonic).
    pub time: u64,
    /// Who.
    pub process: Process,
    /// What kind of event.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function.
    pub f: String,
    /// The key (absent for nemesis events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value: written value, `[from, to]` for cas, the value read, nemesis details.
    pub value: serde_json::Value,
    /// Error text of a fail/info completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes events one line each, flushing nothing by itself (wrap a `LineWriter` or call
/// [`JsonlWriter::flush`] to bound what a crash can lose).
pub struct JsonlWriter<W: Write> {
    out: W,
    next_index: u64,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer starting at index 0.
    pub fn new(out: W) -> Self {
        Self { out, next_index: 0 }
    }

    /// Writes one event; its `index` is replaced by the next sequence number.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        let mut ev = event.clone();
        ev.index = self.next_index;
        self.next_index += 1;
        serde_json::to_writer(&mut self.out, &ev)?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Converts a history back to events, in input order (invocations, completions and nemesis
/// events interleaved by position).
pub fn history_events(h: &History) -> Vec<Event> {
    let mut evs: Vec<(u64, Event)> = Vec::with_capacity(h.ops.len() * 2 + h.nemesis.len());
    for op in &h.ops {
        let key = Some(h.key_name(op.key).to_string());
        let input = match op.f {
            Func::Read => serde_json::Value::Null,
            Func::Cas => serde_json::json!([op.arg.to_json(), op.arg2.to_json()]),
            _ => op.arg.to_json(),
        };
        evs.push((
            op.call_pos,
            Event {
                index: 0,
                time: op.call_time,
                process: Process::Client(op.process),
                kind: EventType::Invoke,
                f: op.f.name().to_string(),
                key: key.clone(),
                value: input.clone(),
                error: None,
            },
        ));
        let kind = match op.outcome {
            Outcome::Ok => EventType::Ok,
            Outcome::Fail | Outcome::Refused => EventType::Fail,
            Outcome::Info => EventType::Info,
            Outcome::Pending => continue,
        };
        let value = if op.f == Func::Read && op.outcome == Outcome::Ok {
            op.output.to_json()
        } else {
            input
        };
        let pos = op.end_pos.unwrap_or(u64::MAX);
        evs.push((
            pos,
            Event {
                index: 0,
                time: op.ret_time.unwrap_or(op.call_time),
                process: Process::Client(op.process),
                kind,
                f: op.f.name().to_string(),
                key,
                value,
                error: op.error.as_deref().map(str::to_string),
            },
        ));
    }
    for n in &h.nemesis {
        evs.push((
            n.pos,
            Event {
                index: 0,
                time: n.time,
                process: Process::Named("nemesis".into()),
                kind: EventType::Info,
                f: n.f.clone(),
                key: None,
                value: n.value.clone(),
                error: None,
            },
        ));
    }
    evs.sort_by_key(|(p, _)| *p);
    evs.into_iter()
        .enumerate()
        .map(|(i, (_, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}
