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
