//! Check results: a three-valued verdict, per-key statistics, counterexamples, and their JSON.

use std::time::Duration;

use serde_json::json;

use crate::history::History;

/// The verdict. `Unknown` is never a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists.
    NotLinearizable,
    /// A limit was reached before the search finished.
    Unknown,
}

impl Verdict {
    /// The verdict of a history from its keys' verdicts: not linearizable if any key is, else
    /// unknown if any key is, else linearizable (an empty set of keys is linearizable).
    pub fn overall(keys: impl IntoIterator<Item = Verdict>) -> Verdict {
        keys.into_iter()
            .fold(Verdict::Linearizable, |acc, v| match (acc, v) {
                (Verdict::NotLinearizable, _) | (_, Verdict::NotLinearizable) => {
                    Verdict::NotLinearizable
                }
                (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
                _ => Verdict::Linearizable,
            })
    }

    /// `linearizable`, `not-linearizable`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not-linearizable",
            Verdict::Unknown => "unknown",
        }
    }

    /// Jepsen's exit code convention: 0, 1, 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable => 1,
            Verdict::Unknown => 2,
        }
    }
}

/// Why a key is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownCause {
    /// The time limit was reached.
    TimeLimit,
    /// The memory budget was reached.
    MemoryBudget,
    /// Another key was found not linearizable and the check was told to stop there.
    Stopped,
    /// Streaming check: the key's concurrency window (operations since its last quiescent
    /// point), its end configurations, or the indefinite operations carried across cuts
    /// exceeded their limit (`CheckOptions::window_limit`, `CheckOptions::info_limit`).
    WindowLimit,
}

impl UnknownCause {
    /// Machine name.
    pub fn name(self) -> &'static str {
        match self {
            UnknownCause::TimeLimit => "time-limit",
            UnknownCause::MemoryBudget => "memory-budget",
            UnknownCause::Stopped => "stopped-after-violation",
            UnknownCause::WindowLimit => "window-limit",
        }
    }
}

/// The result for one key.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct KeyResult {
    /// The key.
    pub key: String,
    /// Operations on the key (all outcomes).
    pub ops: usize,
    /// Operations the search considered (after dropping failed ops and blind reads, and the
    /// reductions).
    pub searched_ops: usize,
    /// Verdict for this key.
    pub verdict: Verdict,
    /// Why unknown.
    pub cause: Option<UnknownCause>,
    /// Search time.
    pub elapsed: Duration,
    /// Search steps.
    pub steps: u64,
    /// Distinct configurations cached.
    pub configs: u64,
    /// Indefinite writes given a completion by reduction R1.
    pub clamped: usize,
    /// Indefinite writes dropped by reduction R2.
    pub dropped: usize,
}

/// One linearized operation of a counterexample's prefix.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// Index into [`History::ops`].
    pub op: usize,
    /// Model state after it.
    pub state_after: String,
}

/// Why a key is not linearizable.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Counterexample {
    /// The key.
    pub key: String,
    /// The longest linearizable prefix found, in order.
    pub prefix: Vec<Step>,
    /// Model state after the prefix.
    pub state: String,
    /// Operations that could not be placed next (indices into [`History::ops`]); the first is the
    /// one the explanation is about.
    pub unplaceable: Vec<usize>,
    /// Plain-language explanation.
    pub explanation: String,
}

/// The result of a check.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CheckResult {
    /// Overall verdict: not linearizable if any key is, else unknown if any key is, else
    /// linearizable.
    pub verdict: Verdict,
    /// Model name.
    pub model: String,
    /// Operations in the history.
    pub ops: usize,
    /// Wall time of the search (all keys).
    pub elapsed: Duration,
    /// Per key, sorted by key.
    pub keys: Vec<KeyResult>,
    /// One per key that is not linearizable, sorted by key.
    pub counterexamples: Vec<Counterexample>,
}

impl CheckResult {
    /// Keys whose verdict is unknown, with the cause.
    pub fn unresolved(&self) -> Vec<(&str, UnknownCause)> {
        self.keys
            .iter()
            .filter_map(|k| k.cause.map(|c| (k.key.as_str(), c)))
            .collect()
    }

    /// One-paragraph summary for a terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} ops, {} keys, model {}, {:.3} s",
            self.verdict.name(),
            self.ops,
            self.keys.len(),
            self.model,
            self.elapsed.as_secs_f64()
        );
        for c in &self.counterexamples {
            s.push_str(&format!("\nkey {}: {}", c.key, c.explanation));
        }
        let unresolved = self.unresolved();
        if !unresolved.is_empty() {
            let list: Vec<String> = unresolved
                .iter()
                .map(|(k, c)| format!("{k} ({})", c.name()))
                .collect();
            s.push_str(&format!("\nunresolved keys: {}", list.join(", ")));
        }
        s
    }

    /// The machine-readable result (`result.json`).
    pub fn to_json(&self, history: &History) -> serde_json::Value {
        let op_json = |i: usize| -> serde_json::Value {
            match history.ops.get(i) {
                Some(op) => json!({
                    "op": i,
                    "process": op.process,
                    "f": op.f.name(),
                    "description": op.describe(),
                    "outcome": op.outcome.name(),
                    "invoke_time_ns": op.call_time,
                    "complete_time_ns": op.ret_time,
                    "invoke_line": op.call_line,
                    "complete_line": op.ret_line,
                }),
                None => json!({ "op": i }),
            }
        };
        json!({
            "verdict": self.verdict.name(),
            "valid": match self.verdict {
                Verdict::Linearizable => json!(true),
                Verdict::NotLinearizable => json!(false),
                Verdict::Unknown => json!("unknown"),
            },
            "model": self.model,
            "ops": self.ops,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
            "unresolved": self.unresolved().iter().map(|(k, c)| json!({"key": k, "cause": c.name()})).collect::<Vec<_>>(),
            "keys": self.keys.iter().map(|k| json!({
                "key": k.key,
                "ops": k.ops,
                "searched_ops": k.searched_ops,
                "verdict": k.verdict.name(),
                "cause": k.cause.map(UnknownCause::name),
                "elapsed_ms": k.elapsed.as_secs_f64() * 1e3,
                "steps": k.steps,
                "configs": k.configs,
                "reductions": {"clamped": k.clamped, "dropped": k.dropped},
            })).collect::<Vec<_>>(),
            "counterexamples": self.counterexamples.iter().map(|c| json!({
                "key": c.key,
                "explanation": c.explanation,
                "state_after_prefix": c.state,
                "prefix": c.prefix.iter().map(|s| {
                    let mut o = op_json(s.op);
                    o["state_after"] = json!(s.state_after);
                    o
                }).collect::<Vec<_>>(),
                "unplaceable": c.unplaceable.iter().map(|&i| op_json(i)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Why a stored `result.json` cannot be read back against its history.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ResultJsonError {
    /// A field is missing or has the wrong type.
    #[error("result.json: bad or missing `{0}`")]
    Field(&'static str),
    /// An operation of a counterexample is not in the history (by its invocation line).
    #[error("result.json: the counterexample of key {key} names an operation invoked on line {line}, which the history does not hold")]
    UnknownOp {
        /// The key.
        key: String,
        /// The invocation line.
        line: u64,
    },
}

fn verdict_from_name(name: &str) -> Option<Verdict> {
    Some(match name {
        "linearizable" => Verdict::Linearizable,
        "not-linearizable" => Verdict::NotLinearizable,
        "unknown" => Verdict::Unknown,
        _ => return None,
    })
}

fn cause_from_name(name: &str) -> Option<UnknownCause> {
    Some(match name {
        "time-limit" => UnknownCause::TimeLimit,
        "memory-budget" => UnknownCause::MemoryBudget,
        "stopped-after-violation" => UnknownCause::Stopped,
        "window-limit" => UnknownCause::WindowLimit,
        _ => return None,
    })
}

impl CheckResult {
    /// Reads back what [`CheckResult::to_json`] wrote, against the history it was made from,
    /// so a report can be drawn from a run directory without checking again. Operations are
    /// found by their invocation line, not by their index: a checker that held only part of the
    /// history (the streaming one) numbers its operations differently, but lines are the file's.
    pub fn from_json(
        v: &serde_json::Value,
        history: &History,
    ) -> Result<CheckResult, ResultJsonError> {
        use std::collections::HashMap;
        let by_line: HashMap<u64, usize> = history
            .ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.call_line, i))
            .collect();
        let str_of = |v: &serde_json::Value, f: &'static str| {
            v.get(f)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or(ResultJsonError::Field(f))
        };
        let u64_of = |v: &serde_json::Value, f: &'static str| v.get(f).and_then(|x| x.as_u64());
        let ms = |v: &serde_json::Value| {
            Duration::from_secs_f64(
                (v.get("elapsed_ms").and_then(|x| x.as_f64()).unwrap_or(0.0) / 1e3).max(0.0),
            )
        };
        let verdict =
            verdict_from_name(&str_of(v, "verdict")?).ok_or(ResultJsonError::Field("verdict"))?;
        let mut keys = Vec::new();
        for k in v
            .get("keys")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            keys.push(KeyResult {
                key: str_of(k, "key")?,
                ops: u64_of(k, "ops").unwrap_or(0) as usize,
                searched_ops: u64_of(k, "searched_ops").unwrap_or(0) as usize,
                verdict: verdict_from_name(&str_of(k, "verdict")?)
                    .ok_or(ResultJsonError::Field("keys.verdict"))?,
                cause: k
                    .get("cause")
                    .and_then(|c| c.as_str())
                    .and_then(cause_from_name),
                elapsed: ms(k),
                steps: u64_of(k, "steps").unwrap_or(0),
                configs: u64_of(k, "configs").unwrap_or(0),
                clamped: u64_of(&k["reductions"], "clamped").unwrap_or(0) as usize,
                dropped: u64_of(&k["reductions"], "dropped").unwrap_or(0) as usize,
            });
        }
        let mut counterexamples = Vec::new();
        for c in v
            .get("counterexamples")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            let key = str_of(c, "key")?;
            let op_of = |o: &serde_json::Value| -> Result<usize, ResultJsonError> {
                let line = u64_of(o, "invoke_line").ok_or(ResultJsonError::Field("invoke_line"))?;
                by_line
                    .get(&line)
                    .copied()
                    .ok_or(ResultJsonError::UnknownOp {
                        key: key.clone(),
                        line,
                    })
            };
            let mut prefix = Vec::new();
            for s in c
                .get("prefix")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
            {
                prefix.push(Step {
                    op: op_of(s)?,
                    state_after: str_of(s, "state_after")?,
                });
            }
            let mut unplaceable = Vec::new();
            for u in c
                .get("unplaceable")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
            {
                unplaceable.push(op_of(u)?);
            }
            counterexamples.push(Counterexample {
                key: key.clone(),
                prefix,
                state: str_of(c, "state_after_prefix")?,
                unplaceable,
                explanation: str_of(c, "explanation")?,
            });
        }
        Ok(CheckResult {
            verdict,
            model: str_of(v, "model")?,
            ops: u64_of(v, "ops").unwrap_or(0) as usize,
            elapsed: ms(v),
            keys,
            counterexamples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::{self, Linearizable as L, NotLinearizable as N, Unknown as U};

    #[test]
    fn overall_verdict_a_violation_wins_then_unknown() {
        assert_eq!(Verdict::overall([]), L);
        assert_eq!(Verdict::overall([L, L]), L);
        assert_eq!(Verdict::overall([L, U, L]), U);
        assert_eq!(Verdict::overall([U, N, L]), N);
        assert_eq!(Verdict::overall([N, U]), N);
    }
}
