//! History types: what a client did, as the checker sees it.
//!
//! # Semantics
//!
//! A history is a sequence of events. A client *invokes* an operation and later the operation
//! *completes* with one of three outcomes:
//!
//! - `ok`: the operation took effect exactly once, at some instant between its invocation and its
//!   completion (its *linearization point*);
//! - `fail`: the operation definitely did not take effect; it constrains nothing;
//! - `info` (or no completion at all, [`Outcome::Pending`]): the operation may or may not have taken
//!   effect, at any instant after its invocation. Its completion is treated as lying at +infinity.
//!   A read with such an outcome observed nothing and constrains nothing.
//!
//! [`Outcome::Refused`] exists for importers only: Porcupine's etcd logs record a compare-and-set
//! whose precondition did not hold as `:fail`, and that is an *observation* (the register did not
//! hold `from` at the instant the cas took effect), not an operation that never happened.
//!
//! A process runs one operation at a time; after an indefinite outcome it never invokes again
//! (the client continues under a new process number, as in Jepsen). Nemesis events are kept for
//! display and are ignored by the check.
//!
//! Positions: every operation carries the ordinal of its invocation and completion event in the
//! input (`call_pos`, `ret_pos`). Real-time order is the order of those positions, so two events
//! with equal timestamps are still ordered as the recorder wrote them.

use std::fmt;

/// A value read or written. Keys hold strings or integers; `Nil` is an absent key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Value {
    /// No value: the key is absent (JSON `null`, EDN `nil`).
    #[default]
    Nil,
    /// An integer value.
    Int(i64),
    /// A string value.
    Str(Box<str>),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Self {
        Value::Str(s.into())
    }

    /// A value from JSON: a string, an integer, or `null` (absent). `None` for anything else
    /// (floats, booleans, arrays, objects), which no key holds.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::Null => Some(Value::Nil),
            serde_json::Value::String(s) => Some(Value::str(s)),
            serde_json::Value::Number(n) => n.as_i64().map(Value::Int),
            _ => None,
        }
    }

    /// The value as JSON, as the history format writes it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::from(&**s),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The function an operation applies to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Func {
    /// Read the key (Porcupine's kv `get`).
    Read,
    /// Overwrite the key (Porcupine's kv `put`).
    Write,
    /// Compare-and-set: if the key holds `arg`, set it to `arg2`.
    Cas,
    /// Append `arg` to the string the key holds (Porcupine's kv model).
    Append,
}

impl Func {
    /// The name used in the history format.
    pub fn name(self) -> &'static str {
        match self {
            Func::Read => "read",
            Func::Write => "write",
            Func::Cas => "cas",
            Func::Append => "append",
        }
    }

    /// Parses a history-format function name (also Porcupine kv's `get` and `put`).
    pub fn parse(s: &str) -> Option<Func> {
        Some(match s {
            "read" | "get" => Func::Read,
            "write" | "put" => Func::Write,
            "cas" => Func::Cas,
            "append" => Func::Append,
            _ => return None,
        })
    }
}

/// How an operation completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Completed: took effect once between invocation and completion.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Indefinite: may have taken effect at any time after the invocation.
    Info,
    /// Never completed (the history ended first): same meaning as `Info`.
    Pending,
    /// Took effect as a no-op because its precondition did not hold (a cas whose `from` did not
    /// match). Produced by the Porcupine etcd importer only.
    Refused,
}

impl Outcome {
    /// Whether the outcome is indefinite (`info` or no completion).
    pub fn is_indefinite(self) -> bool {
        matches!(self, Outcome::Info | Outcome::Pending)
    }

    /// The name used in the history format (`pending` for no completion).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
            Outcome::Refused => "refused",
        }
    }
}

/// Index of a key in [`History::keys`].
pub type KeyId = u32;

/// One operation: an invocation paired with its completion.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Operation {
    /// The client process that ran it.
    pub process: u64,
    /// The key it applies to (index into [`History::keys`]).
    pub key: KeyId,
    /// What it does.
    pub f: Func,
    /// Write/append: the value; cas: the expected value.
    pub arg: Value,
    /// Cas: the new value. `Nil` otherwise.
    pub arg2: Value,
    /// Read: the value returned (meaningful for `Ok` reads only).
    pub output: Value,
    /// How it completed.
    pub outcome: Outcome,
    /// Ordinal of the invocation event in the input (real-time order).
    pub call_pos: u64,
    /// Ordinal of the completion event for real-time order; `u64::MAX` when indefinite.
    pub ret_pos: u64,
    /// Ordinal of the completion event, whatever the outcome; `None` when there was none.
    pub end_pos: Option<u64>,
    /// Timestamp of the invocation (ns since the run started; the ordinal when the input has none).
    pub call_time: u64,
    /// Timestamp of the completion; `None` when there was no completion event.
    pub ret_time: Option<u64>,
    /// Line number of the invocation in the input (1-based).
    pub call_line: u64,
    /// Line number of the completion in the input.
    pub ret_line: Option<u64>,
    /// The completion's `error` field, if any.
    pub error: Option<Box<str>>,
}

impl Operation {
    /// A short human description, e.g. `write "v7"`, `read → "v7"`, `cas "v7"→"v8"`.
    pub fn describe(&self) -> String {
        match self.f {
            Func::Read if self.outcome == Outcome::Ok => format!("read → {}", self.output),
            Func::Read => "read".to_string(),
            Func::Write => format!("write {}", self.arg),
            Func::Cas => format!("cas {}→{}", self.arg, self.arg2),
            Func::Append => format!("append {}", self.arg),
        }
    }
}

/// A nemesis (fault injector) event: kept for display, ignored by the check.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NemesisEvent {
    /// Timestamp (ns).
    pub time: u64,
    /// Ordinal in the input.
    pub pos: u64,
    /// What the nemesis did (`partition`, `kill`, ...).
    pub f: String,
    /// Event type as written (`info`, `invoke`, ...).
    pub kind: String,
    /// Free-form details.
    pub value: serde_json::Value,
}

/// A whole history: operations in invocation order, keys, and nemesis events.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct History {
    /// Operations, in order of invocation.
    pub ops: Vec<Operation>,
    /// Key names; `Operation::key` indexes this.
    pub keys: Vec<String>,
    /// Nemesis events, in input order.
    pub nemesis: Vec<NemesisEvent>,
    /// Whether events carry real timestamps (ns); otherwise times are event ordinals.
    pub timed: bool,
    /// The line number of a torn last line that was left out: the writer crashed mid-line,
    /// which the format allows (a crash loses at most the last line).
    pub torn_tail: Option<u64>,
    /// The history is the evidence a streaming check kept ([`crate::stream`]): it ends at the
    /// violation (what came after is not known when it is reported).
    pub window: bool,
    /// With `window`: some earlier writes of the key were checked and retired without being
    /// kept (only a few recent ones are), so the history does not hold every write before the
    /// violation.
    pub retired: bool,
}

impl History {
    /// The name of a key.
    pub fn key_name(&self, key: KeyId) -> &str {
        self.keys
            .get(key as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// A time for humans: `12.4 ms` when timed, else `event #N`.
    pub fn fmt_time(&self, t: u64) -> String {
        if self.timed {
            format!("{:.1} ms", t as f64 / 1e6)
        } else {
            format!("event #{t}")
        }
    }

    /// Operations known to have taken effect: an `ok` completion, or a cas refused by its
    /// precondition ([`Outcome::Refused`]). Only these can contradict a model: a history of
    /// `fail`, `info` and unfinished operations alone is linearizable whatever it holds, so a
    /// caller that wants evidence (`harness check --require-ops`) counts these.
    pub fn effective_ops(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok | Outcome::Refused))
            .count()
    }

    /// The last timestamp seen in the history.
    pub fn end_time(&self) -> u64 {
        let ops = self
            .ops
            .iter()
            .map(|o| o.ret_time.unwrap_or(o.call_time))
            .max()
            .unwrap_or(0);
        let nem = self.nemesis.iter().map(|n| n.time).max().unwrap_or(0);
        ops.max(nem)
    }
}
