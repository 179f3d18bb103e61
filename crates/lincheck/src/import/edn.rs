//! Jepsen EDN histories: one map per line, or one vector/list of maps; `;` comments.
//! `:process :nemesis` events are kept for display only. Also reads Porcupine's kv logs, which
//! are EDN maps with `:key`.

use crate::builder::{Builder, Completion, Invocation};
use crate::error::{LineError, LineErrorKind};
use crate::history::{Func, History, Outcome, Value};

/// An EDN value (the subset histories use).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Keyword(String),
    Symbol(String),
    Seq(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Edn::Nil => J::Null,
            Edn::Bool(b) => J::from(*b),
            Edn::Int(i) => J::from(*i),
            Edn::Float(f) => J::from(*f),
            Edn::Str(s) | Edn::Symbol(s) => J::from(s.as_str()),
            Edn::Keyword(k) => J::from(format!(":{k}")),
            Edn::Seq(v) => J::Array(v.iter().map(Edn::to_json).collect()),
            Edn::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| {
                        let k = match k {
                            Edn::Keyword(k) => k.clone(),
                            other => other.to_json().to_string(),
                        };
                        (k, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    /// The value as EDN text, for error messages.
    fn text(&self) -> String {
        fn join<'a>(items: impl Iterator<Item = &'a Edn>) -> String {
            items.map(Edn::text).collect::<Vec<_>>().join(" ")
        }
        match self {
            Edn::Nil => "nil".into(),
            Edn::Bool(b) => b.to_string(),
            Edn::Int(i) => i.to_string(),
            Edn::Float(f) => f.to_string(),
            Edn::Str(s) => format!("{s:?}"),
            Edn::Keyword(k) => format!(":{k}"),
            Edn::Symbol(s) => s.clone(),
            Edn::Seq(v) => format!("[{}]", join(v.iter())),
            Edn::Map(m) => format!("{{{}}}", join(m.iter().flat_map(|(k, v)| [k, v]))),
        }
    }

    fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(m) => m
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(k) if k == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: u64,
}

type PResult<T> = Result<T, LineError>;

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
            line: 1,
        }
    }

    fn err(&self, detail: impl Into<String>) -> LineError {
        LineError {
            line: self.line,
            kind: LineErrorKind::Malformed {
                format: "EDN",
                detail: detail.into(),
            },
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' | b',' => self.i += 1,
                b';' => {
                    while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn token(&mut self) -> &'a str {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_whitespace() || b",()[]{}\";".contains(&c) {
                break;
            }
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self, depth: u32) -> PResult<Edn> {
        if depth > 64 {
            return Err(self.err("nested too deeply"));
        }
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of input"));
        };
        match c {
            b'{' => {
                self.i += 1;
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(self.err("map with an odd number of forms"));
                }
                let mut it = items.into_iter();
                let mut m = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    m.push((k, v));
                }
                Ok(Edn::Map(m))
            }
            b'[' => {
                self.i += 1;
                Ok(Edn::Seq(self.seq(b']', depth)?))
            }
            b'(' => {
                self.i += 1;
                Ok(Edn::Seq(self.seq(b')', depth)?))
            }
            b'#' => {
                self.i += 1;
                match self.s.get(self.i) {
                    Some(b'{') => {
                        self.i += 1;
                        Ok(Edn::Seq(self.seq(b'}', depth)?))
                    }
                    Some(b'_') => {
                        self.i += 1;
                        self.value(depth + 1)?;
                        self.value(depth + 1)
                    }
                    _ => {
                        // Tagged literal (#inst "...", #jepsen.history.Op{...}): keep the value.
                        self.token();
                        self.value(depth + 1)
                    }
                }
            }
            b'"' => self.string(),
            b')' | b']' | b'}' => Err(self.err(format!("unexpected `{}`", c as char))),
            b':' => {
                self.i += 1;
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err("empty keyword"));
                }
                Ok(Edn::Keyword(t.to_string()))
            }
            _ => {
                let line = self.line;
                let t = self.token();
                if t.is_empty() {
                    return Err(self.err(format!("unexpected `{}`", c as char)));
                }
                Ok(match t {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => {
                        let num = t.trim_end_matches('N');
                        if let Ok(i) = num.parse::<i64>() {
                            Edn::Int(i)
                        } else if let Ok(f) = t.trim_end_matches('M').parse::<f64>() {
                            Edn::Float(f)
                        } else if t.starts_with(|c: char| c.is_ascii_digit())
                            || (t.len() > 1
                                && t.starts_with(['-', '+'])
                                && t[1..].starts_with(|c: char| c.is_ascii_digit()))
                        {
                            return Err(LineError {
                                line,
                                kind: LineErrorKind::Malformed {
                                    format: "EDN",
                                    detail: format!("bad number `{t}`"),
                                },
                            });
                        } else {
                            Edn::Symbol(t.to_string())
                        }
                    }
                })
            }
        }
    }

    fn seq(&mut self, close: u8, depth: u32) -> PResult<Vec<Edn>> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err(format!("missing closing `{}`", close as char))),
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> PResult<Edn> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| self.err("string is not UTF-8"))
    }
}

/// Parses an EDN history into events, each with its line.
fn forms(text: &str) -> PResult<Vec<(u64, Edn)>> {
    let mut p = Parser::new(text);
    let mut out = Vec::new();
    let first = p.peek();
    if matches!(first, Some(b'[') | Some(b'(')) {
        let close = if first == Some(b'[') { b']' } else { b')' };
        p.i += 1;
        loop {
            match p.peek() {
                None => return Err(p.err(format!("missing closing `{}`", close as char))),
                Some(c) if c == close => {
                    p.i += 1;
                    break;
                }
                Some(_) => {
                    let line = p.line;
                    out.push((line, p.value(0)?));
                }
            }
        }
        if p.peek().is_some() {
            return Err(p.err("text after the history's closing bracket"));
        }
        return Ok(out);
    }
    while p.peek().is_some() {
        let line = p.line;
        out.push((line, p.value(0)?));
    }
    Ok(out)
}

/// The key used when events have no `:key` (a single register).
pub const DEFAULT_KEY: &str = "register";

fn scalar(v: Option<&Edn>, f: &'static str, line: u64) -> Result<Value, LineError> {
    match v {
        None | Some(Edn::Nil) => Ok(Value::Nil),
        Some(Edn::Int(i)) => Ok(Value::Int(*i)),
        Some(Edn::Str(s)) => Ok(Value::str(s)),
        Some(other) => Err(LineError {
            line,
            kind: LineErrorKind::BadValue {
                f,
                detail: format!("expected nil, an integer or a string, got {}", other.text()),
            },
        }),
    }
}

fn key_text(v: &Edn) -> String {
    match v {
        Edn::Str(s) => s.clone(),
        Edn::Int(i) => i.to_string(),
        Edn::Keyword(k) => format!(":{k}"),
        other => other.to_json().to_string(),
    }
}

/// The input of a write, cas or append as the `:value` gives it.
fn input(f: Func, value: Option<&Edn>, line: u64) -> Result<(Value, Value), LineError> {
    Ok(match f {
        Func::Read => (Value::Nil, Value::Nil),
        Func::Cas => match value {
            Some(Edn::Seq(v)) if v.len() == 2 => (
                scalar(Some(&v[0]), "cas", line)?,
                scalar(Some(&v[1]), "cas", line)?,
            ),
            other => {
                return Err(LineError {
                    line,
                    kind: LineErrorKind::BadValue {
                        f: "cas",
                        detail: format!(
                            "expected [from to], got {}",
                            other.map_or("nothing".into(), Edn::text)
                        ),
                    },
                })
            }
        },
        _ => (scalar(value, f.name(), line)?, Value::Nil),
    })
}

/// Reads an EDN history.
pub(crate) fn read_edn(text: &str) -> Result<History, LineError> {
    let mut b = Builder::new().lenient_info();
    for (line, ev) in forms(text)? {
        let err = |kind| LineError { line, kind };
        if !matches!(ev, Edn::Map(_)) {
            return Err(err(LineErrorKind::Malformed {
                format: "EDN",
                detail: "expected a map per event".into(),
            }));
        }
        let time = match ev.get("time") {
            None | Some(Edn::Nil) => None,
            Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
            Some(other) => {
                return Err(err(LineErrorKind::BadField {
                    field: "time",
                    detail: format!("expected a non-negative integer, got {}", other.text()),
                }))
            }
        };
        let kind = match ev.get("type") {
            Some(Edn::Keyword(k)) => k.as_str(),
            Some(other) => return Err(err(LineErrorKind::UnknownType(other.text()))),
            None => return Err(err(LineErrorKind::MissingField("type"))),
        };
        let outcome = match kind {
            "invoke" => None,
            "ok" => Some(Outcome::Ok),
            "fail" => Some(Outcome::Fail),
            "info" => Some(Outcome::Info),
            other => return Err(err(LineErrorKind::UnknownType(format!(":{other}")))),
        };
        let f_name = match ev.get("f") {
            Some(Edn::Keyword(k) | Edn::Symbol(k) | Edn::Str(k)) => k.as_str(),
            Some(other) => return Err(err(LineErrorKind::UnknownFunction(other.text()))),
            None => return Err(err(LineErrorKind::MissingField("f"))),
        };
        let process = match ev.get("process") {
            Some(Edn::Int(p)) if *p >= 0 => *p as u64,
            Some(Edn::Keyword(k)) if k == "nemesis" => {
                let value = ev.get("value").map(Edn::to_json).unwrap_or_default();
                b.nemesis(time, f_name, kind, value);
                continue;
            }
            Some(other) => return Err(err(LineErrorKind::BadProcess(other.text()))),
            None => return Err(err(LineErrorKind::MissingField("process"))),
        };
        let f = Func::parse(f_name)
            .ok_or_else(|| err(LineErrorKind::UnknownFunction(f_name.to_string())))?;
        let key = ev.get("key").map(key_text);
        let key = key.as_deref().unwrap_or(DEFAULT_KEY);
        let value = ev.get("value");
        let Some(outcome) = outcome else {
            let (arg, arg2) = input(f, value, line)?;
            b.invoke(Invocation {
                line,
                time,
                process,
                f,
                key,
                arg,
                arg2,
            })?;
            continue;
        };
        let (output, echo) = match (f, outcome, value) {
            (Func::Read, Outcome::Ok, v) => (scalar(v, "read", line)?, None),
            // Only an `ok` is compared: Jepsen clients often put something else on `:info`
            // and `:fail` (`:timed-out`), and the check uses the invocation's input anyway.
            (Func::Read, ..)
            | (_, Outcome::Fail | Outcome::Info, _)
            | (_, _, None | Some(Edn::Nil)) => (Value::Nil, None),
            (f, _, v) => (Value::Nil, Some(input(f, v, line)?)),
        };
        let error = ev.get("error").map(|e| e.to_json().to_string());
        b.complete(Completion {
            line,
            time,
            process,
            outcome,
            f: Some(f),
            key: Some(key),
            output,
            echo,
            error: error.as_deref(),
        })?;
    }
    Ok(b.finish())
}
