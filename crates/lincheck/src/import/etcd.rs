//! Porcupine's Jepsen etcd logs: `INFO  jepsen.util - <process>\t<type>\t<f>\t<value>`.
//!
//! A single register, absent at the start. `:fail :cas` is a cas whose precondition did not hold
//! (it happened, as a no-op: [`Outcome::Refused`]); `:fail :read :timed-out` and `:info ...
//! :timed-out` are indefinite. Lines of any other shape are not operations and are skipped.

use crate::builder::{Builder, Completion, Invocation};
use crate::error::{LineError, LineErrorKind};
use crate::history::{Func, History, Outcome, Value};
use crate::import::edn::DEFAULT_KEY;

fn parse_value(s: &str) -> Option<Value> {
    match s {
        "nil" => Some(Value::Nil),
        _ => s.parse::<i64>().ok().map(Value::Int),
    }
}

/// Reads a Porcupine etcd log.
pub(crate) fn read_etcd(text: &str) -> Result<History, LineError> {
    let mut b = Builder::new().lenient_info();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let Some((_, rest)) = raw.split_once("jepsen.util - ") else {
            continue;
        };
        let mut toks = rest.split_whitespace();
        let (Some(p), Some(kind), Some(f)) = (toks.next(), toks.next(), toks.next()) else {
            continue;
        };
        let Ok(process) = p.parse::<u64>() else {
            continue; // :nemesis and other actors
        };
        let value: Vec<&str> = toks.collect();
        let value = value.join(" ");
        let f = match f {
            ":read" => Func::Read,
            ":write" => Func::Write,
            ":cas" => Func::Cas,
            _ => continue,
        };
        let bad = |detail: String| LineError {
            line,
            kind: LineErrorKind::BadValue {
                f: f.name(),
                detail,
            },
        };
        match kind {
            ":invoke" => {
                let (arg, arg2) = match f {
                    Func::Read => (Value::Nil, Value::Nil),
                    Func::Write => (
                        parse_value(&value).ok_or_else(|| bad(format!("`{value}`")))?,
                        Value::Nil,
                    ),
                    _ => {
                        let inner = value.trim_start_matches('[').trim_end_matches(']');
                        let mut it = inner.split_whitespace().map(parse_value);
                        match (it.next(), it.next(), it.next()) {
                            (Some(Some(a)), Some(Some(c)), None) => (a, c),
                            _ => return Err(bad(format!("expected [from to], got `{value}`"))),
                        }
                    }
                };
                b.invoke(Invocation {
                    line,
                    time: None,
                    process,
                    f,
                    key: DEFAULT_KEY,
                    arg,
                    arg2,
                })?;
            }
            ":ok" | ":fail" | ":info" => {
                let timed_out = value == ":timed-out";
                let outcome = match (kind, f) {
                    (":ok", _) => Outcome::Ok,
                    (":info", _) => Outcome::Info,
                    (_, _) if timed_out => Outcome::Info,
                    (_, Func::Cas) => Outcome::Refused,
                    _ => Outcome::Fail,
                };
                let output = if f == Func::Read && outcome == Outcome::Ok {
                    parse_value(&value).ok_or_else(|| bad(format!("`{value}`")))?
                } else {
                    Value::Nil
                };
                b.complete(Completion {
                    line,
                    time: None,
                    process,
                    outcome,
                    f: Some(f),
                    key: None,
                    output,
                    error: timed_out.then_some("timed-out"),
                })?;
            }
            _ => continue,
        }
    }
    Ok(b.finish())
}
