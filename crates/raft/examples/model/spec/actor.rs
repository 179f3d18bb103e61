//! The stateright actors: three servers around `raft::RawNode`, and clients of the register.

use super::disk::{DiskModel, Durable};
use super::server::{Out as ServerOut, Server};
use super::wire::Msg;
use super::Options;
use raft::{Config, NodeId, RawNode, Restored};
use stateright::actor::{model_timeout, Actor, Id, Out};
use std::borrow::Cow;
use std::fmt;

/// Actor ids: servers are `0..SERVERS`, clients follow.
pub const SERVERS: usize = 3;

pub fn node_id(server: usize) -> NodeId {
    NodeId(server as u64 + 1)
}

fn server_of(id: NodeId) -> Id {
    Id::from(id.0 as usize - 1)
}

pub fn client_id(client: u8) -> Id {
    Id::from(SERVERS + client as usize)
}

/// The timeouts of a server: each firing is one step of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// A follower's or candidate's election timeout.
    Election,
    /// A leader's heartbeat interval.
    Heartbeat,
    /// The disk writer finishes one part of a write.
    Disk,
}

#[derive(Clone)]
pub enum RaftActor {
    Server { index: usize, opts: Options },
    Client { index: u8, opts: Options },
}

/// The operations of client `index`: puts and gets alternating, starting with a put for even
/// clients and a get for odd ones, so that two clients with one operation each make a write
/// and a read.
pub fn client_op(index: u8, k: u8) -> Msg {
    if (index + k) & 1 == 0 {
        Msg::Put {
            req: k,
            value: 10 * (index + 1) + k,
        }
    } else {
        Msg::Get { req: k }
    }
}

#[derive(Clone, PartialEq, Hash)]
pub enum State {
    Server(Box<Server>),
    /// A server whose durable state `RawNode::new` refused on restart.
    Unrestorable(String),
    /// A server whose core panicked (one of its assertions failed).
    Panicked(String),
    /// A client: the number of operations it issued, and the one it awaits.
    Client {
        issued: u8,
        awaiting: Option<u8>,
    },
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Server(s) => s.fmt(f),
            State::Unrestorable(e) => write!(f, "cannot restart: {e}"),
            State::Panicked(e) => write!(f, "the core panicked: {e}"),
            State::Client { issued, awaiting } => {
                write!(f, "client: issued {issued}, awaiting {awaiting:?}")
            }
        }
    }
}

impl RaftActor {
    fn config(&self, index: usize, restarts: u8) -> Config {
        let Self::Server { opts, .. } = self else {
            unreachable!("servers only")
        };
        let voters = (0..SERVERS).map(node_id).collect();
        let mut c = Config::new(node_id(index), voters);
        c.election_tick = opts.election_tick;
        c.max_entries_per_msg = opts.entries_per_msg;
        c.heartbeat_tick = 1;
        c.pre_vote = opts.pre_vote;
        c.check_quorum = opts.check_quorum;
        c.seed = index as u64 * 1000 + restarts as u64;
        opts.planted.configure(&mut c);
        c
    }

    fn emit(&self, state: &Server, outs: Vec<ServerOut>, o: &mut Out<Self>, saved: &Durable) {
        if &state.durable != saved {
            o.save(state.durable.clone());
        }
        for out in outs {
            match out {
                ServerOut::Raft(m) => {
                    let to = server_of(m.to);
                    o.send(to, Msg::Raft(m));
                }
                ServerOut::Client(c, msg) => o.send(client_id(c), msg),
            }
        }
        let leader = state.node.status().role == raft::Role::Leader;
        if leader {
            o.cancel_timer(Timer::Election);
        } else {
            o.set_timer(Timer::Election, model_timeout());
        }
        if leader && self.opts().heartbeats {
            o.set_timer(Timer::Heartbeat, model_timeout());
        } else {
            o.cancel_timer(Timer::Heartbeat);
        }
        if state.disk.is_empty() {
            o.cancel_timer(Timer::Disk);
        } else {
            o.set_timer(Timer::Disk, model_timeout());
        }
    }

    fn with_server(
        &self,
        state: &mut Cow<State>,
        o: &mut Out<Self>,
        f: impl FnOnce(&mut Server, &mut Vec<ServerOut>),
    ) {
        let State::Server(server) = &**state else {
            return;
        };
        let mut next = server.clone();
        let mut outs = Vec::new();
        // The core's own assertions (a committed entry truncated, two leaders in a term) are
        // violations too: caught here, they become a state the properties reject.
        STEPPING.with(|q| q.set(true));
        let stepped =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut next, &mut outs)));
        STEPPING.with(|q| q.set(false));
        if let Err(payload) = stepped {
            *state.to_mut() = State::Panicked(panic_message(&*payload));
            return;
        }
        // Even a step that leaves the projection the state is hashed by unchanged is taken:
        // it may change what the projection leaves out (votes received, elapsed ticks), and
        // it consumes the message that caused it.
        let saved = server.durable.clone();
        self.emit(&next, outs, o, &saved);
        *state.to_mut() = State::Server(next);
    }
}

impl Actor for RaftActor {
    type Msg = Msg;
    type Timer = Timer;
    type State = State;
    type Storage = Durable;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<Durable>, o: &mut Out<Self>) -> State {
        match self {
            RaftActor::Server { index, .. } => {
                let mut durable = storage.clone().unwrap_or_default();
                if storage.is_some() {
                    durable.restarts += 1;
                    o.save(durable.clone());
                }
                let restored = Restored {
                    hard_state: durable.hard_state.clone(),
                    snapshot: None,
                    entries: durable.entries.clone(),
                    applied: raft::Index(0),
                };
                match RawNode::new(self.config(*index, durable.restarts), restored) {
                    Ok(node) => {
                        let mut server = Server::new(node, durable);
                        let mut outs = Vec::new();
                        let dm = self.disk_model();
                        server.drive(dm, &mut outs);
                        let saved = server.durable.clone();
                        self.emit(&server, outs, o, &saved);
                        State::Server(Box::new(server))
                    }
                    Err(e) => State::Unrestorable(format!("{id:?}: {e}")),
                }
            }
            RaftActor::Client { index, opts } => {
                if opts.client_ops == 0 {
                    return State::Client {
                        issued: 0,
                        awaiting: None,
                    };
                }
                let op = client_op(*index, 0);
                for s in 0..SERVERS {
                    o.send(Id::from(s), op.clone());
                }
                State::Client {
                    issued: 1,
                    awaiting: Some(0),
                }
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<State>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match self {
            RaftActor::Server { opts, .. } => {
                let dm = self.disk_model();
                let client = usize::from(src).checked_sub(SERVERS).map(|c| c as u8);
                let max_log = opts.max_log;
                // A request a server would ignore stays in flight for another server (or for
                // this one once it leads), rather than being consumed.
                if let (Some(c), State::Server(s)) = (client, &**state) {
                    let req = match msg {
                        Msg::Put { req, .. } | Msg::Get { req } => req,
                        _ => return,
                    };
                    let started = s.proposed.contains(&(c, req)) || s.reads.contains(&(c, req));
                    if s.node.status().role != raft::Role::Leader || started {
                        return;
                    }
                }
                self.with_server(state, o, |s, outs| match (msg, client) {
                    (Msg::Raft(m), None) => s.step(m, dm, outs),
                    (Msg::Put { req, value }, Some(c)) => s.put(c, req, value, max_log, dm, outs),
                    (Msg::Get { req }, Some(c)) => s.get(c, req, dm, outs),
                    _ => {}
                });
            }
            RaftActor::Client { index, opts } => {
                let State::Client { issued, awaiting } = **state else {
                    return;
                };
                let req = match msg {
                    Msg::PutOk { req } | Msg::GetOk { req, .. } => req,
                    _ => return,
                };
                if awaiting != Some(req) {
                    return;
                }
                if issued < opts.client_ops {
                    let op = client_op(*index, issued);
                    for s in 0..SERVERS {
                        o.send(Id::from(s), op.clone());
                    }
                    *state.to_mut() = State::Client {
                        issued: issued + 1,
                        awaiting: Some(issued),
                    };
                } else {
                    *state.to_mut() = State::Client {
                        issued,
                        awaiting: None,
                    };
                }
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<State>, timer: &Timer, o: &mut Out<Self>) {
        let RaftActor::Server { opts, .. } = self else {
            return;
        };
        let dm = self.disk_model();
        let election_tick = opts.election_tick;
        self.with_server(state, o, |s, outs| match timer {
            Timer::Election => s.election_timeout(election_tick, dm, outs),
            Timer::Heartbeat => s.heartbeat(dm, outs),
            Timer::Disk => {
                s.disk_step(dm, outs);
            }
        });
    }
}

impl RaftActor {
    fn opts(&self) -> &Options {
        match self {
            RaftActor::Server { opts, .. } | RaftActor::Client { opts, .. } => opts,
        }
    }

    fn disk_model(&self) -> DiskModel {
        match self {
            RaftActor::Server { opts, .. } | RaftActor::Client { opts, .. } => DiskModel {
                order: opts.planted.write_order(),
                steps: opts.disk_steps,
            },
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

thread_local! {
    /// Whether this thread is inside a server step, whose panics the model catches.
    static STEPPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps the panic hook quiet about the core's panics the model catches (each becomes a
/// violation with a trace) and lets every other panic through to the previous hook.
pub fn quiet_caught_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !STEPPING.with(|q| q.get()) {
            previous(info)
        }
    }));
}
