//! Plain-language explanations of counterexamples (kept apart from rendering).

use crate::history::{Func, History, Operation, Outcome, Value};
use crate::result::Step;

/// Explains why the first of `unplaceable` cannot be placed after the prefix.
/// `forcing`: an operation that fits the state after the prefix but must come before the first
/// unplaceable one and would overwrite what it needs (e.g. the write that made a read stale).
pub(crate) fn explain(
    h: &History,
    prefix: &[Step],
    state: &str,
    unplaceable: &[usize],
    forcing: Option<usize>,
) -> String {
    let Some(op) = unplaceable.first().and_then(|&i| h.ops.get(i)) else {
        return "no linearization exists".to_string();
    };
    let key = h.key_name(op.key);
    let observed = match (op.f, op.outcome) {
        (Func::Read, Outcome::Ok) => Some(&op.output),
        (Func::Cas, Outcome::Ok) => Some(&op.arg),
        _ => None,
    };
    let what = describe(h, op);
    if let Some(x) = observed {
        let verb = if op.f == Func::Read {
            format!("{what} returned {x}")
        } else {
            format!("{what} found {x}")
        };
        let at = span(h, op);
        let writers: Vec<&Operation> = h
            .ops
            .iter()
            .filter(|w| w.key == op.key && writes(w) == Some(x))
            .collect();
        let appends = h.ops.iter().any(|w| w.key == op.key && w.f == Func::Append);
        if appends {
            return format!(
                "{verb} ({at}), but {key} holds {state} in the longest valid order found ({} operations), and no placement of the remaining appends makes the {} possible",
                prefix.len(),
                op.f.name()
            );
        }
        if writers.is_empty() && *x != Value::Nil {
            // A streaming check's evidence: later operations are not known, and with `retired`
            // neither are all earlier writes; say only what is certain.
            if h.window && h.retired {
                return format!(
                    "{verb} ({at}), but {key} holds {state} there, and no operation that could still take effect writes {x} (older operations were checked and retired)"
                );
            }
            if h.window {
                return format!(
                    "{verb} ({at}), but no operation invoked before the {} completed wrote {x} to {key}",
                    op.f.name()
                );
            }
            return format!("{verb} ({at}), but no operation ever wrote {x} to {key}");
        }
        let live: Vec<&&Operation> = writers
            .iter()
            .filter(|w| w.outcome != Outcome::Fail)
            .collect();
        if !writers.is_empty() && live.is_empty() {
            let w = writers[0];
            return format!(
                "{verb} ({at}), but {x} was written only by {} ({}), which failed: it definitely did not take effect",
                describe(h, w),
                span(h, w)
            );
        }
        if let Some(ret) = op.ret_time {
            if !live.is_empty() && live.iter().all(|w| w.call_pos > op.ret_pos) {
                let w = live[0];
                return format!(
                    "{verb} ({at}), but {x} was written only by {}, invoked at {}, after the {} completed at {}",
                    describe(h, w),
                    h.fmt_time(w.call_time),
                    op.f.name(),
                    h.fmt_time(ret),
                );
            }
        }
        // Stale: the value was overwritten before the operation began.
        if let Some(w) = forcing.and_then(|i| h.ops.get(i)) {
            if writes(w).is_some_and(|v| v != x) && w.ret_pos < op.call_pos {
                return format!(
                    "{verb} ({at}), but {x} had been overwritten by {}, which completed at {} before the {} began",
                    describe(h, w),
                    h.fmt_time(w.ret_time.unwrap_or(w.call_time)),
                    op.f.name(),
                );
            }
        }
        if let Some(last) = prefix
            .iter()
            .rev()
            .filter_map(|s| h.ops.get(s.op))
            .find(|w| writes(w).is_some())
        {
            if last.ret_pos < op.call_pos && writes(last) != Some(x) {
                return format!(
                    "{verb} ({at}), but {x} had been overwritten by {} (now {state}), which completed at {} before the {} began",
                    describe(h, last),
                    h.fmt_time(last.ret_time.unwrap_or(last.call_time)),
                    op.f.name(),
                );
            }
            return format!(
                "{verb} ({at}), but no order of the operations allows it: in the longest valid order found ({} operations) {key} holds {state}, last set by {}, and {x} cannot be current again when the {} takes effect",
                prefix.len(),
                describe(h, last),
                op.f.name(),
            );
        }
        return format!(
            "{verb} ({at}), but {key} holds {state} at every point where the {} can take effect",
            op.f.name()
        );
    }
    format!(
        "{what} ({}) cannot be ordered: after the longest valid order found ({} operations, {key} = {state}), none of the operations that must come next can take effect",
        span(h, op),
        prefix.len()
    )
}

/// The value an operation would leave in the register, if it writes.
fn writes(op: &Operation) -> Option<&Value> {
    match op.f {
        Func::Write | Func::Append => Some(&op.arg),
        Func::Cas => Some(&op.arg2),
        _ => None,
    }
}

fn describe(h: &History, op: &Operation) -> String {
    let outcome = match op.outcome {
        Outcome::Ok => "",
        Outcome::Fail => ", failed",
        Outcome::Info | Outcome::Pending => ", indefinite",
        Outcome::Refused => ", refused",
    };
    let what = match op.f {
        Func::Read => "read".to_string(),
        Func::Write => format!("write {}", op.arg),
        Func::Cas => format!("cas {}→{}", op.arg, op.arg2),
        Func::Append => format!("append {}", op.arg),
    };
    format!(
        "{what} of {} by process {}{outcome}",
        h.key_name(op.key),
        op.process
    )
}

fn span(h: &History, op: &Operation) -> String {
    match op.ret_time {
        Some(r) => format!("{} to {}", h.fmt_time(op.call_time), h.fmt_time(r)),
        None => format!("from {}", h.fmt_time(op.call_time)),
    }
}
