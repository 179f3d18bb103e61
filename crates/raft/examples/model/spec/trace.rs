//! A path of the model told in Raft terms: who sent what to whom, timeouts, disk writes,
//! crashes and restarts, with the servers' states after each step.

use super::actor::{State, Timer, SERVERS};
use super::Model;
use stateright::actor::{ActorModelAction, Id};

type State0 = <Model as stateright::Model>::State;
type Action = <Model as stateright::Model>::Action;
use std::fmt::Write;

fn who(id: Id) -> String {
    let i = usize::from(id);
    if i < SERVERS {
        format!("n{}", i + 1)
    } else {
        format!("client c{}", i - SERVERS)
    }
}

/// One line per step, and the servers after it.
pub fn render(steps: Vec<(State0, Option<Action>)>) -> String {
    let mut out = String::new();
    let mut n = 0;
    for (state, action) in steps {
        let label = if n == 0 { "  initial:\n" } else { "" };
        let _ = writeln!(out, "{label}    {}", servers(&state).join("\n    "));
        let Some(action) = action else {
            break;
        };
        n += 1;
        let line = match &action {
            ActorModelAction::Deliver { src, dst, msg } => {
                format!("deliver {msg:?} ({} → {})", who(*src), who(*dst))
            }
            ActorModelAction::Drop(env) => format!("the network loses {:?}", env.msg),
            ActorModelAction::Timeout(id, Timer::Election) => {
                format!("{}: election timeout", who(*id))
            }
            ActorModelAction::Timeout(id, Timer::Heartbeat) => {
                format!("{}: heartbeat timeout", who(*id))
            }
            ActorModelAction::Timeout(id, Timer::Disk) => {
                let part = match &*state.actor_states[usize::from(*id)] {
                    State::Server(s) => s
                        .disk
                        .front()
                        .and_then(|j| j.parts.front())
                        .map_or("nothing".to_string(), |p| format!("{p:?}")),
                    _ => "nothing".to_string(),
                };
                format!("{}: disk writes {part}", who(*id))
            }
            ActorModelAction::Crash(id) => format!("{} crashes (loses all but its disk)", who(*id)),
            ActorModelAction::Recover(id) => format!("{} restarts from its disk", who(*id)),
            ActorModelAction::SelectRandom { actor, .. } => {
                format!("{}: random choice", who(*actor))
            }
        };
        let _ = writeln!(out, "{n:>3}. {line}");
    }
    out
}

fn servers(state: &State0) -> Vec<String> {
    (0..SERVERS)
        .map(|i| {
            let down = if state.crashed.get(i).copied().unwrap_or(false) {
                " (crashed)"
            } else {
                ""
            };
            format!("{:?}{down}", state.actor_states[i])
        })
        .collect()
}
