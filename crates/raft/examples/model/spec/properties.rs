//! The properties checked in every state (Raft paper Figure 3, plus linearizability of the
//! register and restartability of what the disk holds), and the bounds of the search.

use super::actor::{State, SERVERS};
use super::server::Server;
use super::wire::EntryKey;
use super::{Model, Options};
use stateright::actor::ActorModelState;
use stateright::semantics::register::{RegisterOp, RegisterRet};
use stateright::Expectation;

type Sys = ActorModelState<super::actor::RaftActor, super::History>;

pub type Check = (Expectation, &'static str, fn(&Model, &Sys) -> bool);

pub const ELECTION_SAFETY: &str = "election safety";
pub const LOG_MATCHING: &str = "log matching";
pub const LEADER_COMPLETENESS: &str = "leader completeness";
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
pub const LINEARIZABLE: &str = "linearizable";
pub const RESTARTS: &str = "durable state restores";
pub const NO_PANIC: &str = "the core's assertions hold";
pub const READ_A_WRITE: &str = "a read returns a write";

pub fn all() -> Vec<Check> {
    vec![
        (Expectation::Always, ELECTION_SAFETY, |_, s| {
            election_safety(s)
        }),
        (Expectation::Always, LOG_MATCHING, |_, s| log_matching(s)),
        (Expectation::Always, LEADER_COMPLETENESS, |_, s| {
            leader_completeness(s)
        }),
        (Expectation::Always, STATE_MACHINE_SAFETY, |_, s| {
            state_machine_safety(s)
        }),
        (Expectation::Always, LINEARIZABLE, |_, s| {
            s.history.tester.serialized_history().is_some()
        }),
        (Expectation::Always, RESTARTS, |_, s| {
            !s.actor_states
                .iter()
                .any(|a| matches!(**a, State::Unrestorable(_)))
        }),
        (Expectation::Always, NO_PANIC, |_, s| {
            !s.actor_states
                .iter()
                .any(|a| matches!(**a, State::Panicked(_)))
        }),
        // Not a safety property: evidence that the model gets as far as a completed write
        // and a read of it, so that a clean run means something.
        (Expectation::Sometimes, READ_A_WRITE, |_, s| {
            s.history.tester.serialized_history().is_some_and(|h| {
                h.iter().any(|(op, ret)| {
                    matches!((op, ret), (RegisterOp::Read, RegisterRet::ReadOk(Some(_))))
                })
            })
        }),
    ]
}

/// Live (not crashed) servers.
pub fn live(s: &Sys) -> impl Iterator<Item = &Server> {
    s.actor_states
        .iter()
        .take(SERVERS)
        .enumerate()
        .filter(|(i, _)| !s.crashed.get(*i).copied().unwrap_or(false))
        .filter_map(|(_, a)| match &**a {
            State::Server(server) => Some(&**server),
            _ => None,
        })
}

/// At most one leader per term (§5.2), over the whole run: every leader sends AppendEntries
/// in its term at once, and the history keeps who did.
fn election_safety(s: &Sys) -> bool {
    s.history.leaders.values().all(|senders| senders.len() <= 1)
}

/// If two logs hold an entry with the same index and term, they are identical up to it
/// (§5.3): over the live servers' logs and every durable log.
fn log_matching(s: &Sys) -> bool {
    let mut logs: Vec<Vec<(u64, u64)>> = live(s).map(|srv| terms(&srv.log())).collect();
    for d in s.actor_storages.iter().flatten() {
        logs.push(d.entries.iter().map(|e| (e.index.0, e.term.0)).collect());
    }
    for a in &logs {
        for b in &logs {
            let n = a.len().min(b.len());
            if let Some(last_same) = (0..n).rev().find(|&i| a[i] == b[i]) {
                if a[..=last_same] != b[..=last_same] {
                    return false;
                }
            }
        }
    }
    true
}

fn terms(log: &[EntryKey]) -> Vec<(u64, u64)> {
    log.iter().map(|e| (e.1, e.0)).collect()
}

/// A leader holds every entry committed before its term (§5.4): for a live leader and any
/// live server whose term is not above the leader's, the server's committed prefix is in the
/// leader's log. (The server learnt its commit index in a term no later than its own, so from
/// a leader of a term no later than this leader's.)
fn leader_completeness(s: &Sys) -> bool {
    let servers: Vec<&Server> = live(s).collect();
    for l in &servers {
        let ls = l.node.status();
        if ls.role != raft::Role::Leader {
            continue;
        }
        let llog = l.log();
        for n in &servers {
            let ns = n.node.status();
            if ns.term > ls.term {
                continue;
            }
            let c = ns.commit.0 as usize;
            let nlog = n.log();
            if llog.len() < c || llog[..c] != nlog[..c] {
                return false;
            }
        }
    }
    true
}

/// No two servers apply different entries at one index (§5.4.3).
fn state_machine_safety(s: &Sys) -> bool {
    let applied: Vec<&Vec<EntryKey>> = live(s).map(|srv| &srv.applied).collect();
    applied.iter().all(|a| {
        applied.iter().all(|b| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        })
    })
}

/// The search stops at states past the bounds.
pub fn within_boundary(opts: &Options, s: &Sys) -> bool {
    let crashes: usize = s
        .actor_storages
        .iter()
        .flatten()
        .map(|d| d.restarts as usize)
        .sum::<usize>()
        + s.crashed.iter().filter(|c| **c).count();
    // stateright may crash any actor; only servers crash in this model.
    let client_down = s.crashed.iter().skip(SERVERS).any(|c| *c);
    !client_down
        && crashes <= opts.max_crashes as usize
        && (opts.max_in_flight == 0 || raft_in_flight(s) <= opts.max_in_flight)
        && live(s).all(|srv| {
            let st = srv.node.status();
            st.term.0 <= opts.max_term
                && st.last_index.0 <= opts.max_log
                && srv.disk.len() <= opts.max_disk_queue
        })
}

/// Messages between servers in flight (clients' requests and answers are not bounded: there
/// are few of them).
fn raft_in_flight(s: &Sys) -> usize {
    s.network
        .iter_all()
        .filter(|env| matches!(env.msg, super::wire::Msg::Raft(_)))
        .count()
}
