//! The project's JSON Lines history format (docs/history-format.md): a streaming reader with
//! line-numbered errors, and a writer.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::builder::{Builder, Completion, Invocation};
use crate::error::{LineError, LineErrorKind};
use crate::history::{Func, History, Outcome, Value};

/// A `value` field as it appears on a line. Decoded without building a `serde_json::Value` for
/// the common shapes (null, integer, string, a pair for cas).
#[derive(Debug, PartialEq)]
pub(crate) enum RawValue<'a> {
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

    /// The value of a scalar (null, an integer, a string); `Nil` for anything else.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            RawValue::Int(i) => Value::Int(*i),
            RawValue::Str(s) => Value::Str((**s).into()),
            _ => Value::Nil,
        }
    }

    /// Checks that this is a scalar: what a key can hold.
    fn check_scalar(&self, f: &'static str) -> Result<(), LineErrorKind> {
        match self {
            RawValue::Null | RawValue::Int(_) | RawValue::Str(_) => Ok(()),
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

#[derive(Deserialize, Debug, PartialEq, Default)]
pub(crate) struct RawEvent<'a> {
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) index: Option<u64>,
    pub(crate) time: Option<u64>,
    /// Any JSON, so that a wrong one is reported as a bad process rather than as bad JSON.
    #[serde(borrow)]
    pub(crate) process: Option<RawValue<'a>>,
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) f: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) value: Option<RawValue<'a>>,
    #[serde(borrow)]
    pub(crate) error: Option<Cow<'a, str>>,
}

/// Reads a JSONL history from any reader, one line at a time (the whole file is never held in
/// memory).
///
/// The writer ends every event with a newline, so a last line with no newline that is not even
/// valid JSON (or not UTF-8) is what a crash mid-write leaves: it is left out and its number kept
/// in [`History::torn_tail`]. Any other malformed line is an error: the last one when it is
/// complete, and an unterminated one that is whole JSON but breaks a rule (a wrong type, a bad
/// process), which no crash can produce.
pub fn read_jsonl<R: BufRead>(reader: R) -> Result<History, ReadLineError> {
    let mut builder = Builder::new();
    let torn_tail = read_jsonl_into(reader, &mut builder)?;
    let mut history = builder.finish();
    history.torn_tail = torn_tail;
    Ok(history)
}

/// Reads JSONL events into a sink, one line at a time; returns the line number of a torn last
/// line that was left out (see [`read_jsonl`]).
pub(crate) fn read_jsonl_into<R: Read, S: Sink>(
    reader: R,
    sink: &mut S,
) -> Result<Option<u64>, ReadLineError> {
    let mut torn = None;
    for_each_line(reader, |buf, line_no, complete| {
        match decode_line(buf, line_no, complete)? {
            Line::Event(ev) => apply_event(sink, line_no, ev).map_err(ReadLineError::Line)?,
            Line::Blank => {}
            Line::Torn => {
                torn = Some(line_no);
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(torn)
}

/// Calls `f(line, line_no, complete)` for each line of the input (with its newline;
/// `complete` is false only for a last line without one) until it returns `false`. Lines are
/// handed out of a large buffer, not copied one by one.
pub(crate) fn for_each_line<R: Read>(
    mut reader: R,
    mut f: impl FnMut(&[u8], u64, bool) -> Result<bool, ReadLineError>,
) -> Result<(), ReadLineError> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0, 0);
    let mut line_no = 0u64;
    loop {
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) {
            line_no += 1;
            if !f(&buf[start..start + nl + 1], line_no, true)? {
                return Ok(());
            }
            start += nl + 1;
        }
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        let n = loop {
            match reader.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadLineError::Io(line_no + 1, e)),
            }
        };
        if n == 0 {
            if end > 0 {
                f(&buf[..end], line_no + 1, false)?;
            }
            return Ok(());
        }
        end += n;
    }
}

/// One line, decoded.
pub(crate) enum Line<'a> {
    Event(RawEvent<'a>),
    Blank,
    /// A last line cut short by a crash (no newline, not JSON): left out.
    Torn,
}

/// Decodes one line. `complete`: the line was whole (ended by a newline, or handed over as
/// one); an incomplete one that is not JSON is a torn tail.
pub(crate) fn decode_line(
    buf: &[u8],
    line_no: u64,
    complete: bool,
) -> Result<Line<'_>, ReadLineError> {
    let err = |kind| LineError {
        line: line_no,
        kind,
    };
    // Bytes, not `read_line`: a writer killed inside a multi-byte character leaves a last
    // line that is not UTF-8, and that is a torn tail, not an unreadable file.
    let line = match std::str::from_utf8(buf) {
        Ok(text) => text.trim(),
        Err(_) if !complete => return Ok(Line::Torn),
        Err(e) => {
            return Err(ReadLineError::Line(err(LineErrorKind::Malformed {
                format: "JSON",
                detail: format!("not UTF-8 (byte {})", e.valid_up_to() + 1),
            })))
        }
    };
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(ev) = canonical_event(line).or_else(|| fast_event(line)) {
        return Ok(Line::Event(ev));
    }
    match serde_json::from_str(line) {
        Ok(ev) => Ok(Line::Event(ev)),
        // A line cut short is never valid JSON, and fails as a syntax error or at its end,
        // never on a type (a cut number is still a number); a complete object with a field
        // of the wrong type is an error wherever it stands.
        Err(e) if !complete && e.classify() != serde_json::error::Category::Data => Ok(Line::Torn),
        Err(e) => Err(ReadLineError::Line(err(LineErrorKind::Malformed {
            format: "JSON",
            detail: json_detail(&e),
        }))),
    }
}

/// The writers' field order, decoded with fixed prefixes: `{"index":N,"time":N,"process":P,
/// "type":"T","f":"F"` then, each optional and in this order, `"key"`, `"value"`, `"error"`,
/// `"node"` (ignored, as serde ignores unknown fields). `None` for anything else.
fn canonical_event(line: &str) -> Option<RawEvent<'_>> {
    let b = line.as_bytes();
    let mut ev = RawEvent::default();
    let mut i = expect(b, 0, b"{\"index\":")?;
    let (n, j) = fast_uint(b, i)?;
    ev.index = Some(n);
    i = expect(b, j, b",\"time\":")?;
    let (n, j) = fast_uint(b, i)?;
    ev.time = Some(n);
    i = expect(b, j, b",\"process\":")?;
    let (p, j) = fast_value(line, i, false)?;
    if p == RawValue::Null {
        return None;
    }
    ev.process = Some(p);
    i = expect(b, j, b",\"type\":")?;
    let (t, j) = fast_str(line, i)?;
    ev.kind = Some(Cow::Borrowed(t));
    i = expect(b, j, b",\"f\":")?;
    let (f, j) = fast_str(line, i)?;
    ev.f = Some(Cow::Borrowed(f));
    i = j;
    if let Some(k) = expect(b, i, b",\"key\":") {
        let (key, j) = fast_str(line, k)?;
        ev.key = Some(Cow::Borrowed(key));
        i = j;
    }
    if let Some(k) = expect(b, i, b",\"value\":") {
        let (v, j) = fast_value(line, k, true)?;
        ev.value = (v != RawValue::Null).then_some(v);
        i = j;
    }
    if let Some(k) = expect(b, i, b",\"error\":") {
        let (e, j) = fast_str(line, k)?;
        ev.error = Some(Cow::Borrowed(e));
        i = j;
    }
    if let Some(k) = expect(b, i, b",\"node\":") {
        let (_, j) = fast_str(line, k)?;
        i = j;
    }
    (i + 1 == b.len() && b[i] == b'}').then_some(ev)
}

/// The index after `lit` if `b` holds it at `i`.
#[inline(always)]
fn expect<const N: usize>(b: &[u8], i: usize, lit: &[u8; N]) -> Option<usize> {
    let end = i.checked_add(N)?;
    (b.get(i..end)? == lit.as_slice()).then_some(end)
}

/// Decodes the lines the writer produces (`{"index":0,"time":1,...}`: no whitespace, no
/// escapes, scalar or pair values) without serde; `None` for anything else, which serde then
/// reads. Returns exactly what serde would for every line it accepts (tested against it), at
/// a fraction of the cost: reading is most of the time a streaming check takes.
pub(crate) fn fast_event(line: &str) -> Option<RawEvent<'_>> {
    let b = line.as_bytes();
    if b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return None;
    }
    let mut ev = RawEvent::default();
    let mut seen = 0u8;
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return Some(ev).filter(|_| b.len() == 2);
    }
    loop {
        let (name, j) = fast_str(line, i)?;
        if b.get(j) != Some(&b':') {
            return None;
        }
        i = j + 1;
        let bit = match name {
            "index" => 1,
            "time" => 2,
            "process" => 4,
            "type" => 8,
            "f" => 16,
            "key" => 32,
            "value" => 64,
            "error" => 128,
            _ => 0,
        };
        if seen & bit != 0 {
            return None; // a duplicate field: serde's error
        }
        seen |= bit;
        match name {
            "index" | "time" => {
                let (n, j) = fast_uint(b, i)?;
                if name == "time" {
                    ev.time = Some(n);
                } else {
                    ev.index = Some(n);
                }
                i = j;
            }
            "process" | "value" => {
                let (v, j) = fast_value(line, i, name == "value")?;
                if name == "process" {
                    // `null` is `None` for an `Option`, as serde reads it.
                    ev.process = match v {
                        RawValue::Null => None,
                        v => Some(v),
                    };
                } else {
                    ev.value = match v {
                        RawValue::Null => None,
                        v => Some(v),
                    };
                }
                i = j;
            }
            _ => {
                let (text, j) = fast_str(line, i)?;
                let text = Some(Cow::Borrowed(text));
                match name {
                    "type" => ev.kind = text,
                    "f" => ev.f = text,
                    "key" => ev.key = text,
                    "error" => ev.error = text,
                    _ => {} // an unknown field (`node`): ignored, as serde does
                }
                i = j;
            }
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') if i + 1 == b.len() => return Some(ev),
            _ => return None,
        }
    }
}

/// A string without escapes or control characters starting at `i` (the opening quote); the
/// text and the index after the closing quote.
fn fast_str(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = b[i + 1..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = i + 1 + len;
    (b[end] == b'"').then(|| (&line[i + 1..end], end + 1))
}

/// An unsigned integer in JSON's form (no leading zeros) that fits a `u64`.
fn fast_uint(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut n = 0u64;
    let mut j = i;
    while let Some(&c) = b.get(j) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        j += 1;
    }
    let len = j - i;
    if len == 0 || len > 19 || (len > 1 && b[i] == b'0') {
        return None;
    }
    if matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some((n, j))
}

/// A scalar (null, an integer that fits an `i64`, a string), or with `pair`, also a list of
/// scalars.
fn fast_value(line: &str, i: usize, list: bool) -> Option<(RawValue<'_>, usize)> {
    let b = line.as_bytes();
    match *b.get(i)? {
        b'"' => {
            let (s, j) = fast_str(line, i)?;
            Some((RawValue::Str(Cow::Borrowed(s)), j))
        }
        b'n' => line[i..]
            .starts_with("null")
            .then_some((RawValue::Null, i + 4)),
        b'-' => {
            let (n, j) = fast_uint(b, i + 1)?;
            // `-0` is serde's 0; leave such oddities to serde.
            (n != 0 && n <= i64::MAX as u64).then(|| (RawValue::Int(-(n as i64)), j))
        }
        b'0'..=b'9' => {
            let (n, j) = fast_uint(b, i)?;
            i64::try_from(n).ok().map(|n| (RawValue::Int(n), j))
        }
        b'[' if list => {
            let mut items = Vec::with_capacity(2);
            let mut j = i + 1;
            if b.get(j) == Some(&b']') {
                return Some((RawValue::List(items), j + 1));
            }
            loop {
                let (v, k) = fast_value(line, j, false)?;
                items.push(v);
                match b.get(k) {
                    Some(b',') => j = k + 1,
                    Some(b']') => return Some((RawValue::List(items), k + 1)),
                    _ => return None,
                }
            }
        }
        _ => None,
    }
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

/// Where decoded events go: the [`Builder`] (a whole history) or the streaming checker.
pub(crate) trait Sink {
    /// How the sink holds a value: a [`Value`], or (the streaming reader's threads) a reference
    /// into the input, made a [`Value`] by the thread that keeps it.
    type Val;
    /// A value from a scalar already checked (null, an integer, a string).
    fn val(&mut self, raw: &RawValue<'_>) -> Self::Val;
    fn invoke(&mut self, ev: Invocation<'_, Self::Val>) -> Result<(), LineError>;
    fn complete(&mut self, ev: Completion<'_, Self::Val>) -> Result<(), LineError>;
    fn nemesis(&mut self, time: Option<u64>, f: &str, kind: &str, value: serde_json::Value);
}

impl Sink for Builder {
    type Val = Value;
    fn val(&mut self, raw: &RawValue<'_>) -> Value {
        raw.to_value()
    }
    fn invoke(&mut self, ev: Invocation<'_>) -> Result<(), LineError> {
        Builder::invoke(self, ev)
    }
    fn complete(&mut self, ev: Completion<'_>) -> Result<(), LineError> {
        Builder::complete(self, ev)
    }
    fn nemesis(&mut self, time: Option<u64>, f: &str, kind: &str, value: serde_json::Value) {
        Builder::nemesis(self, time, f, kind, value)
    }
}

pub(crate) fn apply_event<S: Sink>(
    b: &mut S,
    line: u64,
    ev: RawEvent<'_>,
) -> Result<(), LineError> {
    let err = |kind| LineError { line, kind };
    let kind = ev
        .kind
        .ok_or_else(|| err(LineErrorKind::MissingField("type")))?;
    let process = ev
        .process
        .ok_or_else(|| err(LineErrorKind::MissingField("process")))?;
    let f_name = ev.f.ok_or_else(|| err(LineErrorKind::MissingField("f")))?;
    let time = Some(
        ev.time
            .ok_or_else(|| err(LineErrorKind::MissingField("time")))?,
    );
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
        let key = ev
            .key
            .ok_or_else(|| err(LineErrorKind::MissingField("key")))?;
        let value = ev.value.unwrap_or(RawValue::Null);
        let (arg, arg2) = invocation_args(b, f, &value).map_err(err)?;
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
        (Func::Read, Outcome::Ok, v) => {
            let v = v.unwrap_or(RawValue::Null);
            v.check_scalar("read").map_err(err)?;
            (b.val(&v), None)
        }
        // Only an `ok` is compared: the check uses the invocation's input, and a `fail` or
        // `info` line's value is not evidence of anything (docs/history-format.md).
        (Func::Read, ..) | (_, Outcome::Fail | Outcome::Info, _) | (_, _, None) => {
            (b.val(&RawValue::Null), None)
        }
        (f, _, Some(v)) => (
            b.val(&RawValue::Null),
            Some(invocation_args(b, f, &v).map_err(err)?),
        ),
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

fn invocation_args<S: Sink>(
    b: &mut S,
    f: Func,
    value: &RawValue<'_>,
) -> Result<(S::Val, S::Val), LineErrorKind> {
    Ok(match f {
        Func::Read => (b.val(&RawValue::Null), b.val(&RawValue::Null)),
        Func::Write | Func::Append => {
            value.check_scalar(f.name())?;
            (b.val(value), b.val(&RawValue::Null))
        }
        Func::Cas => match value {
            RawValue::List(l) if l.len() == 2 => {
                l[0].check_scalar("cas")?;
                l[1].check_scalar("cas")?;
                (b.val(&l[0]), b.val(&l[1]))
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const LINES: &[&str] = &[
        r#"{"index":0,"time":1203311,"process":3,"type":"invoke","f":"write","key":"k1","value":"v7"}"#,
        r#"{"index":1,"time":1503311,"process":3,"type":"ok","f":"write","key":"k1","value":"v7"}"#,
        r#"{"index":2,"time":1600000,"process":4,"type":"invoke","f":"cas","key":"k1","value":["v7","v8"]}"#,
        r#"{"index":3,"time":9600000,"process":4,"type":"info","f":"cas","key":"k1","value":["v7",null],"error":"timeout"}"#,
        r#"{"index":4,"time":9700000,"process":"nemesis","type":"info","f":"partition","value":{"groups":[["n1"]]}}"#,
        r#"{"index":5,"time":9800000,"process":5,"type":"ok","f":"read","key":"k1","value":-12,"node":"n1"}"#,
        r#"{"index":6,"time":9900000,"process":5,"type":"invoke","f":"read","key":"k1","value":null}"#,
        r#"{"time":1,"process":5,"type":"fail","f":"write","key":"k\u00e9","value":0,"error":"not_leader"}"#,
        r#"{"f":"write","type":"ok","process":5,"time":1,"key":"k","value":[]}"#,
        r#"{}"#,
    ];

    /// The fast decoders return exactly what serde would, for every line they accept.
    #[test]
    fn fast_decoding_agrees_with_serde() {
        let mut rng = StdRng::seed_from_u64(9);
        let alphabet: &[u8] = b"{}[]\":,0123456789-.e nul\\xkvaindetmp";
        let mut accepted = 0;
        for round in 0..200_000 {
            let base = LINES[round % LINES.len()];
            let mut b = base.as_bytes().to_vec();
            for _ in 0..rng.random_range(0..3) {
                if b.is_empty() {
                    break;
                }
                let i = rng.random_range(0..b.len());
                match rng.random_range(0..3) {
                    0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            let Ok(line) = std::str::from_utf8(&b) else {
                continue;
            };
            let serde: Result<RawEvent, _> = serde_json::from_str(line);
            for fast in [canonical_event(line), fast_event(line)]
                .into_iter()
                .flatten()
            {
                accepted += 1;
                assert_eq!(serde.as_ref().ok(), Some(&fast), "{line}");
            }
        }
        assert!(accepted > 100_000, "{accepted}");
    }
}
