//! Porcupine's Jepsen etcd logs: `INFO  jepsen.util - <process>\t<type>\t<f>\t<value>`.
//!
//! A single register, absent at the start. `:fail :cas` is a cas whose precondition did not hold
//! (it happened, as a no-op: [`Outcome::Refused`]); `:fail :read :timed-out` and `:info ...
//! :timed-out` are indefinite. `:nemesis` lines are kept for display.
//!
//! Lines without `jepsen.util - `, or whose first word after it is neither a number nor a
//! keyword, are other log output and are skipped. A line that names a process is an event and
//! must be whole: another keyword for the process, an unknown type or function, or a missing
//! field is an error, never a skipped line (a client event skipped is a client event unchecked).

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
        let err = |kind| LineError { line, kind };
        let Some((_, rest)) = raw.split_once("jepsen.util - ") else {
            continue;
        };
        let mut toks = rest.split_whitespace();
        let Some(p) = toks.next() else {
            continue;
        };
        let process = match p.parse::<u64>() {
            Ok(p) => Some(p),
            Err(_) if p == ":nemesis" => None,
            Err(_) if p.starts_with(':') || p.parse::<i64>().is_ok() => {
                return Err(err(LineErrorKind::BadProcess(p.to_string())))
            }
            Err(_) => continue,
        };
        let (Some(kind), Some(f_name)) = (toks.next(), toks.next()) else {
            return Err(err(LineErrorKind::Malformed {
                format: "Jepsen log",
                detail: "expected `<process> <type> <f> <value>`".into(),
            }));
        };
        let value: Vec<&str> = toks.collect();
        let value = value.join(" ");
        let outcome = match kind {
            ":invoke" => None,
            ":ok" => Some(Outcome::Ok),
            ":fail" => Some(Outcome::Fail),
            ":info" => Some(Outcome::Info),
            other => return Err(err(LineErrorKind::UnknownType(other.to_string()))),
        };
        let Some(process) = process else {
            let name = |k: &str| k.trim_start_matches(':').to_string();
            b.nemesis(None, &name(f_name), &name(kind), value.into());
            continue;
        };
        let f = match f_name {
            ":read" => Func::Read,
            ":write" => Func::Write,
            ":cas" => Func::Cas,
            other => return Err(err(LineErrorKind::UnknownFunction(other.to_string()))),
        };
        let bad = |detail: String| {
            err(LineErrorKind::BadValue {
                f: f.name(),
                detail,
            })
        };
        let input = |value: &str| -> Result<(Value, Value), LineError> {
            Ok(match f {
                Func::Read => (Value::Nil, Value::Nil),
                Func::Write => (
                    parse_value(value).ok_or_else(|| bad(format!("`{value}`")))?,
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
            })
        };
        let Some(outcome) = outcome else {
            let (arg, arg2) = input(&value)?;
            b.invoke(Invocation {
                line,
                time: None,
                process,
                f,
                key: DEFAULT_KEY,
                arg,
                arg2,
            })?;
            continue;
        };
        let timed_out = value == ":timed-out";
        let outcome = match (outcome, f) {
            (Outcome::Fail, _) if timed_out => Outcome::Info,
            (Outcome::Fail, Func::Cas) => Outcome::Refused,
            (o, _) => o,
        };
        let (output, echo) = match (f, outcome) {
            (Func::Read, Outcome::Ok) => (
                parse_value(&value).ok_or_else(|| bad(format!("`{value}`")))?,
                None,
            ),
            (Func::Write | Func::Cas, Outcome::Ok) => (Value::Nil, Some(input(&value)?)),
            _ => (Value::Nil, None),
        };
        b.complete(Completion {
            line,
            time: None,
            process,
            outcome,
            f: Some(f),
            key: None,
            output,
            echo,
            error: timed_out.then_some("timed-out"),
        })?;
    }
    Ok(b.finish())
}
