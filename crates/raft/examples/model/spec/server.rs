//! A server: a real `raft::RawNode` in asynchronous mode, its disk writer (one part per
//! step, so crashes land between parts) and the register KV it applies committed entries to.

use super::disk::{DiskModel, DiskSteps, Durable, Job, Part};
use super::wire::{decode_put, encode_put, entry_key, show_entry, EntryKey, Msg};
use raft::{Entry, EntryPayload, HardState, Index, Message, NodeId, PersistTask, RawNode, Role};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Something a server sends: a Raft message to a peer, or an answer to a client (by index
/// among the clients).
pub enum Out {
    Raft(Message),
    Client(u8, Msg),
}

/// A live server.
#[derive(Clone)]
pub struct Server {
    pub node: RawNode,
    /// A mirror of the actor's storage, which the model cannot read back until a restart.
    pub durable: Durable,
    pub disk: VecDeque<Job>,
    /// The register and, per client, the last request applied (writes are deduplicated:
    /// a client's request may be proposed again by a later leader).
    pub value: Option<u8>,
    pub sessions: BTreeMap<u8, u8>,
    /// Every entry applied, in order (for state machine safety).
    pub applied: Vec<EntryKey>,
    /// Requests this incarnation proposed or started reading, so that a duplicated request
    /// does not start them again, and so that it answers those it proposed.
    pub proposed: BTreeSet<(u8, u8)>,
    pub reads: BTreeSet<(u8, u8)>,
    /// Reads confirmed by ReadIndex, waiting for the state machine to reach their index.
    pub waiting_reads: Vec<(Index, u64)>,
}

impl Server {
    pub fn new(node: RawNode, durable: Durable) -> Server {
        Server {
            node,
            durable,
            disk: VecDeque::new(),
            value: None,
            sessions: BTreeMap::new(),
            applied: Vec::new(),
            proposed: BTreeSet::new(),
            reads: BTreeSet::new(),
            waiting_reads: Vec::new(),
        }
    }

    /// The log as plain keys, first index 1 (the model never compacts).
    pub fn log(&self) -> Vec<EntryKey> {
        let last = self.node.status().last_index;
        (1..=last.0)
            .filter_map(|i| self.node.entry(Index(i)).map(entry_key))
            .collect()
    }

    /// Election timeout: ticks until the node does something (campaigns), at most two
    /// randomized timeouts' worth, so that one model step is one Raft timeout and not one
    /// tick of a clock the model would have to count.
    pub fn election_timeout(&mut self, election_tick: u32, dm: DiskModel, out: &mut Vec<Out>) {
        for _ in 0..4 * election_tick {
            self.node.tick();
            if self.node.has_ready() {
                break;
            }
        }
        self.drive(dm, out);
    }

    /// A leader's heartbeat interval: one tick (`heartbeat_tick` is 1 in the model).
    pub fn heartbeat(&mut self, dm: DiskModel, out: &mut Vec<Out>) {
        self.node.tick();
        self.drive(dm, out);
    }

    pub fn step(&mut self, m: Message, dm: DiskModel, out: &mut Vec<Out>) {
        // Errors are about the message (a stranger's), which the model never sends.
        let _ = self.node.step(m);
        self.drive(dm, out);
    }

    /// A client's write: the leader proposes it (once per incarnation; a bounded log refuses).
    pub fn put(
        &mut self,
        client: u8,
        req: u8,
        value: u8,
        max_log: u64,
        dm: DiskModel,
        out: &mut Vec<Out>,
    ) {
        let status = self.node.status();
        if status.role != Role::Leader
            || status.last_index.0 >= max_log
            || self.proposed.contains(&(client, req))
        {
            return;
        }
        if self.sessions.get(&client).is_some_and(|&r| r >= req) {
            out.push(Out::Client(client, Msg::PutOk { req }));
            return;
        }
        if self.node.propose(encode_put(client, req, value)).is_ok() {
            self.proposed.insert((client, req));
        }
        self.drive(dm, out);
    }

    /// A client's read: the leader starts a ReadIndex round (once per incarnation).
    pub fn get(&mut self, client: u8, req: u8, dm: DiskModel, out: &mut Vec<Out>) {
        if self.node.status().role != Role::Leader || self.reads.contains(&(client, req)) {
            return;
        }
        if self.node.read_index(read_ctx(client, req)).is_ok() {
            self.reads.insert((client, req));
        }
        self.drive(dm, out);
    }

    /// The disk writer writes the next part of its first task; once the task is written, its
    /// messages leave and the node hears that it is durable.
    pub fn disk_step(&mut self, dm: DiskModel, out: &mut Vec<Out>) -> Option<Part> {
        let job = self.disk.front_mut()?;
        let part = job.write_next(&mut self.durable);
        if dm.steps != DiskSteps::PerPart {
            while job.write_next(&mut self.durable).is_some() {}
        }
        self.drive(dm, out);
        part
    }

    /// Carries out every Ready: replication leaves at once, the rest waits for its write,
    /// committed entries are applied at once (they are durable on a quorum).
    pub fn drive(&mut self, dm: DiskModel, out: &mut Vec<Out>) {
        loop {
            while self.node.has_ready() {
                let rd = self.node.ready();
                let a = self.node.advance_async(rd);
                out.extend(a.send_now.into_iter().map(Out::Raft));
                if !a.persist.is_empty() {
                    let mut job = Job::new(a.persist, dm.order);
                    if dm.steps == DiskSteps::Immediate && self.disk.is_empty() {
                        while job.write_next(&mut self.durable).is_some() {}
                    }
                    self.disk.push_back(job);
                }
                self.apply(a.apply.committed_entries, a.apply.read_states, out);
            }
            match self.disk.front() {
                Some(job) if job.parts.is_empty() => {
                    let job = self.disk.pop_front().expect("front exists");
                    self.release(job.task, out);
                }
                _ => return,
            }
        }
    }

    fn release(&mut self, task: PersistTask, out: &mut Vec<Out>) {
        let mut report = None;
        let written: Result<(), Infallible> = PersistTask::persist_then_send(
            vec![task],
            |_| Ok(()),
            |p| report = Some(p),
            |m| out.push(Out::Raft(m)),
        );
        let Ok(()) = written;
        if let Some(p) = report {
            self.node.on_persisted(p);
        }
    }

    fn apply(&mut self, entries: Vec<Entry>, reads: Vec<raft::ReadState>, out: &mut Vec<Out>) {
        let Some(last) = entries.last().map(|e| e.index) else {
            self.waiting_reads
                .extend(reads.into_iter().map(|r| (r.index, r.ctx)));
            self.serve_reads(out);
            return;
        };
        for e in &entries {
            self.applied.push(entry_key(e));
            let EntryPayload::Command(data) = &e.payload else {
                continue;
            };
            let Some((client, req, value)) = decode_put(data) else {
                continue;
            };
            if self.sessions.get(&client).is_none_or(|&r| r < req) {
                self.sessions.insert(client, req);
                self.value = Some(value);
            }
            if self.proposed.contains(&(client, req)) {
                out.push(Out::Client(client, Msg::PutOk { req }));
            }
        }
        self.node.on_applied(last);
        self.waiting_reads
            .extend(reads.into_iter().map(|r| (r.index, r.ctx)));
        self.serve_reads(out);
    }

    fn serve_reads(&mut self, out: &mut Vec<Out>) {
        let applied = Index(self.applied.len() as u64);
        let value = self.value;
        self.waiting_reads.retain(|&(index, ctx)| {
            if index > applied {
                return true;
            }
            let (client, req) = split_ctx(ctx);
            out.push(Out::Client(client, Msg::GetOk { req, value }));
            false
        });
    }

    /// Everything that decides what the server does next, except counters that only grow
    /// (Ready numbers, read rounds), its random number generator and the timers' elapsed
    /// ticks: the model abstracts time into timeout steps, and these would make every state
    /// new. See the model's documentation for what this leaves out.
    fn key(&self) -> impl Hash + Eq + '_ {
        let s = self.node.status();
        let hs = self.node.hard_state();
        (
            (s.role as u8, s.leader.map(|l| l.0), s.applied.0),
            (hs.term.0, hs.vote.map(|v| v.0), hs.commit.0),
            self.log(),
            self.node.describe_progress(),
            (&self.durable, &self.disk),
            (self.value, &self.sessions, &self.applied),
            (&self.proposed, &self.reads, &self.waiting_reads),
        )
    }
}

pub fn read_ctx(client: u8, req: u8) -> u64 {
    ((client as u64) << 8) | req as u64
}

fn split_ctx(ctx: u64) -> (u8, u8) {
    ((ctx >> 8) as u8, ctx as u8)
}

impl Hash for Server {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for Server {
    fn eq(&self, other: &Server) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.node.status();
        let hs: HardState = self.node.hard_state();
        let log: Vec<String> = (1..=s.last_index.0)
            .filter_map(|i| self.node.entry(Index(i)).map(show_entry))
            .collect();
        write!(
            f,
            "{} {} {} vote={:?} commit={} log=[{}] value={:?}",
            s.id,
            s.role,
            s.term,
            hs.vote.map(|v: NodeId| v.0),
            s.commit,
            log.join(", "),
            self.value
        )?;
        if s.role == Role::Leader {
            write!(f, " progress={}", self.node.describe_progress().trim_end())?;
        }
        write!(f, "; {:?}", self.durable)?;
        if !self.disk.is_empty() {
            write!(f, "; {:?}", self.disk)?;
        }
        Ok(())
    }
}
