//! An exhaustive model of the real Raft core (`raft::RawNode`, not a re-implementation) for
//! stateright: three servers over an unordered, duplicating, lossy network, each with a disk
//! writer whose writes land one part at a time, crashes that lose everything not yet written,
//! restarts from what was, and clients of a one-register KV built on the log (writes) and
//! ReadIndex (reads). Shared by the `model` example and `tests/model.rs`.

pub mod actor;
pub mod disk;
pub mod properties;
pub mod server;
pub mod trace;
pub mod wire;

use actor::{RaftActor, SERVERS};
use disk::{DiskSteps, WriteOrder};
use stateright::actor::{ActorModel, Id, LossyNetwork, Network};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use std::collections::BTreeMap;
use wire::Msg;

/// A bug planted in the core (or the model's disk writer) for the model checker to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Planted {
    None,
    /// `Config::planted_read_before_noop`.
    ReadBeforeNoop,
    /// `Config::planted_vote_ignores_log`.
    VoteIgnoresLog,
    /// `Config::planted_commit_earlier_term`.
    CommitEarlierTerm,
    /// `Config::planted_vote_before_durable`.
    VoteBeforeDurable,
    /// The disk writer writes entries before term and vote (`raft::sim::WriteOrder::EntriesFirst`).
    EntriesFirst,
}

impl Planted {
    pub const ALL: [Planted; 5] = [
        Planted::EntriesFirst,
        Planted::ReadBeforeNoop,
        Planted::VoteIgnoresLog,
        Planted::CommitEarlierTerm,
        Planted::VoteBeforeDurable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Planted::None => "none",
            Planted::ReadBeforeNoop => "read-before-noop",
            Planted::VoteIgnoresLog => "vote-ignores-log",
            Planted::CommitEarlierTerm => "commit-earlier-term",
            Planted::VoteBeforeDurable => "vote-before-durable",
            Planted::EntriesFirst => "entries-first",
        }
    }

    pub fn parse(s: &str) -> Option<Planted> {
        [Planted::None]
            .into_iter()
            .chain(Planted::ALL)
            .find(|p| p.name() == s)
    }

    pub fn configure(self, c: &mut raft::Config) {
        match self {
            Planted::ReadBeforeNoop => c.planted_read_before_noop = true,
            Planted::VoteIgnoresLog => c.planted_vote_ignores_log = true,
            Planted::CommitEarlierTerm => c.planted_commit_earlier_term = true,
            Planted::VoteBeforeDurable => c.planted_vote_before_durable = true,
            Planted::None | Planted::EntriesFirst => {}
        }
    }

    pub fn write_order(self) -> WriteOrder {
        if self == Planted::EntriesFirst {
            WriteOrder::EntriesFirst
        } else {
            WriteOrder::TermFirst
        }
    }
}

/// The bounds and switches of one model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// States where a server's term exceeds this are not explored further.
    pub max_term: u64,
    /// Leaders refuse writes past this log length, and states where a log is longer (no-ops
    /// of new terms) are not explored further.
    pub max_log: u64,
    /// Clients, and operations each (a put and a get alternating).
    pub clients: u8,
    pub client_ops: u8,
    /// Crashes over the whole run (at most one server down at a time).
    pub max_crashes: u8,
    /// States where a server has more tasks queued for its disk writer are not explored
    /// further: every duplicate of a message delivered while a write is pending queues one
    /// more task (its answer waits for the write), so the queue is otherwise unbounded.
    pub max_disk_queue: usize,
    /// How many steps a write takes (and so where crashes may land).
    pub disk_steps: DiskSteps,
    /// Whether the network loses messages (it always reorders them).
    pub lossy: bool,
    /// Whether the network duplicates messages (every message stays deliverable forever);
    /// otherwise a delivered message is gone.
    pub duplicating: bool,
    /// States with more messages between servers in flight are not explored further (0: no
    /// bound).
    pub max_in_flight: usize,
    /// Whether leaders send heartbeats (a timeout step). Without them a leader still sends
    /// AppendEntries on every proposal and answer, and ReadIndex its own round; with them
    /// every heartbeat is more messages in flight and the space grows fast.
    pub heartbeats: bool,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_tick: u32,
    /// `Config::max_entries_per_msg`. At 1 a new leader can bring a follower up to an earlier
    /// term's entry without its own no-op in the same message, which Figure 8 needs.
    pub entries_per_msg: usize,
    pub planted: Planted,
}

impl Default for Options {
    /// The bound CI checks.
    fn default() -> Options {
        Options {
            max_term: 2,
            max_log: 2,
            clients: 1,
            client_ops: 2,
            max_crashes: 0,
            max_disk_queue: 2,
            disk_steps: DiskSteps::Immediate,
            lossy: false,
            duplicating: false,
            max_in_flight: 3,
            heartbeats: false,
            pre_vote: false,
            check_quorum: false,
            election_tick: 2,
            entries_per_msg: 256,
            planted: Planted::None,
        }
    }
}

impl Options {
    pub fn describe(&self) -> String {
        format!(
            "3 servers, {} client(s) x {} op(s), terms <= {}, log <= {}, crashes <= {}, disk {:?} queue <= {}, {}{} network (in flight <= {}), heartbeats {}, pre-vote {}, check-quorum {}, entries per message <= {}, planted: {}",
            self.clients,
            self.client_ops,
            self.max_term,
            self.max_log,
            self.max_crashes,
            self.disk_steps,
            self.max_disk_queue,
            if self.lossy { "lossy " } else { "" },
            if self.duplicating { "duplicating" } else { "non-duplicating" },
            self.max_in_flight,
            on_off(self.heartbeats),
            on_off(self.pre_vote),
            on_off(self.check_quorum),
            self.entries_per_msg,
            self.planted.name()
        )
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// What the model remembers beyond the actors: the clients' history for the
/// linearizability tester, and which servers sent AppendEntries in each term (a leader always
/// does at once, with its no-op), for election safety across crashes.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct History {
    pub tester: LinearizabilityTester<Id, Register<Option<u8>>>,
    pub leaders: BTreeMap<u64, Vec<u64>>,
}

pub type Model = ActorModel<RaftActor, Options, History>;

pub fn build(opts: &Options) -> Model {
    let mut model = ActorModel::new(
        opts.clone(),
        History {
            tester: LinearizabilityTester::new(Register(None)),
            leaders: BTreeMap::new(),
        },
    )
    .actors((0..SERVERS).map(|index| RaftActor::Server {
        index,
        opts: opts.clone(),
    }))
    .actors((0..opts.clients).map(|index| RaftActor::Client {
        index,
        opts: opts.clone(),
    }))
    .init_network(if opts.duplicating {
        Network::new_unordered_duplicating([])
    } else {
        Network::new_unordered_nonduplicating([])
    })
    .lossy_network(if opts.lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    })
    .max_crashes(if opts.max_crashes > 0 { 1 } else { 0 })
    .record_msg_out(record_out)
    .record_msg_in(record_in)
    .within_boundary(properties::within_boundary);
    for p in properties::all() {
        model = model.property(p.0, p.1, p.2);
    }
    model
}

fn record_out(_: &Options, h: &History, env: stateright::actor::Envelope<&Msg>) -> Option<History> {
    let op = match env.msg {
        Msg::Raft(m) => {
            if !matches!(m.body, raft::MessageBody::AppendEntries { .. }) {
                return None;
            }
            let senders = h.leaders.get(&m.term.0);
            if senders.is_some_and(|s| s.contains(&m.from.0)) {
                return None;
            }
            let mut h = h.clone();
            h.leaders.entry(m.term.0).or_default().push(m.from.0);
            return Some(h);
        }
        // A client sends each request to every server: the first copy is the invocation.
        _ if usize::from(env.dst) != 0 => return None,
        Msg::Put { value, .. } => RegisterOp::Write(Some(*value)),
        Msg::Get { .. } => RegisterOp::Read,
        _ => return None,
    };
    let mut h = h.clone();
    // An invalid history (two operations in flight on one client) is itself reported by the
    // linearizability property.
    let _ = h.tester.on_invoke(env.src, op);
    Some(h)
}

fn record_in(_: &Options, h: &History, env: stateright::actor::Envelope<&Msg>) -> Option<History> {
    let ret = match env.msg {
        Msg::PutOk { .. } => RegisterRet::WriteOk,
        Msg::GetOk { value, .. } => RegisterRet::ReadOk(*value),
        _ => return None,
    };
    let mut h = h.clone();
    let _ = h.tester.on_return(env.dst, ret);
    Some(h)
}

/// The result of one exhaustive search.
pub struct Outcome {
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub elapsed: std::time::Duration,
    /// Violated `Always` properties, each with the rendered shortest trace and its length.
    pub violations: Vec<(&'static str, usize, String)>,
    /// `Sometimes` properties for which an example was found.
    pub examples: Vec<&'static str>,
}

/// Breadth-first search of the whole bounded model (`threads` workers), stopping at the
/// first violation when `stop_early`.
pub fn check(
    opts: &Options,
    threads: usize,
    stop_early: bool,
    timeout: Option<std::time::Duration>,
) -> Outcome {
    use stateright::{Checker, Model as _};
    let model = build(opts);
    let properties: Vec<_> = model
        .properties()
        .into_iter()
        .map(|p| (p.name, p.expectation, p.condition))
        .collect();
    let start = std::time::Instant::now();
    let mut builder = model.checker().threads(threads);
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    if stop_early {
        builder = builder.finish_when(stateright::HasDiscoveries::AnyFailures);
    }
    let checker = builder.spawn_bfs().join();
    let model = checker.model();
    let elapsed = start.elapsed();
    let mut violations = Vec::new();
    let mut examples = Vec::new();
    for (name, expectation, condition) in properties {
        let found = checker.discovery(name);
        match (expectation, found) {
            (stateright::Expectation::Always, Some(path)) => {
                // The checker keeps the last violating path its workers found, which may run
                // on past the first violating state: cut it there.
                let mut steps = path.into_vec();
                if let Some(first) = steps.iter().position(|(s, _)| !condition(model, s)) {
                    steps.truncate(first + 1);
                    if let Some(last) = steps.last_mut() {
                        last.1 = None;
                    }
                }
                let len = steps.len() - 1;
                violations.push((name, len, trace::render(steps)));
            }
            (stateright::Expectation::Sometimes, Some(_)) => examples.push(name),
            _ => {}
        }
    }
    Outcome {
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        violations,
        examples,
    }
}
