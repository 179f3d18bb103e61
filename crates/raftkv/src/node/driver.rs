//! The Raft thread: the event loop that owns the `RawNode`, the durable storage and the KV
//! state machine.
//!
//! Each turn: wait for an event or the next tick, drain what else is queued, tick if due, then
//! handle every `Ready` in the documented order (persist, send, apply, advance). Proposals that
//! arrive while a Ready is being persisted wait in the inbox and all go into the next Ready:
//! that is the group commit, one fsync per batch.
//!
//! Applying a committed entry is a map update, so it runs here rather than on an applier
//! thread: the snapshot for `compact` is then taken at exactly the applied index without any
//! hand-off, and the extra channel hop would cost more than the apply.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use raft::{
    Entry, EntryPayload, HardState, NodeId, ProposeError, RawNode, Ready, Role, Snapshot,
    SnapshotMeta, Term,
};
use std::sync::atomic::{AtomicBool, Ordering};

use super::pending::{answer, PendingReads, PendingWrites, ReadWaiter};
use super::{Event, NodeError};
use crate::client::ClientCall;
use crate::config::node_name;
use crate::kv::{Command, KvStore, Outcome, Proposal};
use crate::protocol::{ErrorCode, Op, Reply, StatusInfo};
use crate::storage::{Storage, StorageError};
use crate::transport::{ClientDirectory, Outbox};
use crate::{debug, error, info, warn};

/// Events handled per turn before ticking and handling the Ready, so a flood of requests
/// cannot starve the clock.
const MAX_EVENTS_PER_TURN: usize = 4096;
/// See [`Driver::may_send_before_persisting`].
const PARALLEL_LEADER_APPEND: bool = true;
/// How often waiters whose clients timed out are forgotten.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// What the driver is built from.
pub struct Parts {
    /// Term and vote of the recovered hard state.
    pub durable_term_vote: (Term, Option<NodeId>),
    pub name: String,
    pub raw: RawNode,
    pub storage: Storage,
    pub kv: KvStore,
    pub outbox: Outbox,
    pub directory: ClientDirectory,
    pub voters: Vec<NodeId>,
    pub snapshot_index: u64,
    pub snapshot_every: u64,
    pub tick: Duration,
    pub dir: String,
}

/// The Raft thread's state.
pub struct Driver {
    p: Parts,
    writes: PendingWrites,
    reads: PendingReads,
    /// Role and leader last seen, to log changes and fail reads on leadership loss.
    role: Role,
    leader: Option<NodeId>,
    term: u64,
    /// Term and vote as last made durable.
    durable_term_vote: (Term, Option<NodeId>),
}

impl Driver {
    pub fn new(p: Parts) -> Driver {
        let st = p.raw.status();
        Driver {
            durable_term_vote: p.durable_term_vote,
            role: st.role,
            leader: st.leader,
            term: st.term.0,
            p,
            writes: PendingWrites::default(),
            reads: PendingReads::default(),
        }
    }

    /// Runs until shutdown (`Ok`) or a fatal storage error.
    pub fn run(&mut self, events: &Receiver<Event>, stop: &AtomicBool) -> Result<(), NodeError> {
        let tick = self.p.tick;
        let mut next_tick = Instant::now() + tick;
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let result = loop {
            let mut shutdown = stop.load(Ordering::SeqCst);
            match events.recv_deadline(next_tick) {
                Ok(ev) => shutdown |= self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => shutdown = true,
            }
            for _ in 0..MAX_EVENTS_PER_TURN {
                match events.try_recv() {
                    Ok(ev) => shutdown |= self.handle(ev),
                    Err(_) => break,
                }
            }
            if shutdown {
                break Ok(());
            }
            let now = Instant::now();
            if now >= next_tick {
                self.p.raw.tick();
                // No burst of catch-up ticks after a stall (a long fsync, SIGSTOP): time that
                // the loop could not observe is not counted twice.
                next_tick = (next_tick + tick).max(now);
            }
            self.start_reads();
            if let Err(e) = self.handle_ready() {
                break Err(e);
            }
            self.observe_role();
            if now >= next_sweep {
                self.writes.expire(now);
                self.reads.expire(now);
                next_sweep = now + SWEEP_EVERY;
            }
        };
        info!("shutting down");
        self.writes
            .fail_all(&ErrorCode::Unknown("the node stopped".into()));
        for w in self.reads.take_all() {
            answer(
                &w.reply,
                Reply::Error(ErrorCode::Dropped("the node stopped".into())),
            );
        }
        result
    }

    /// Handles one event; returns true to stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Peer(msg) => {
                let (from, kind) = (msg.from, msg.body.kind());
                if let Err(e) = self.p.raw.step(msg) {
                    debug!("ignored {kind} from {from}: {e}");
                }
                false
            }
            Event::Client(call) => {
                self.client(call);
                false
            }
            Event::Shutdown => true,
        }
    }

    fn client(&mut self, call: ClientCall) {
        let ClientCall {
            request,
            reply,
            deadline,
        } = call;
        let command = match request.op {
            Op::Status => {
                answer(&reply, Reply::Status(self.status()));
                return;
            }
            Op::Read { key } => {
                self.reads.push(ReadWaiter {
                    key,
                    reply,
                    deadline,
                });
                return;
            }
            Op::Write { key, value } => Command::Write { key, value },
            Op::Cas { key, from, to } => Command::Cas { key, from, to },
        };
        let proposal = Proposal {
            session: request.session,
            command,
        };
        match self.p.raw.propose(proposal.encode()) {
            Ok((term, index)) => self.writes.insert(term.0, index.0, reply, deadline),
            Err(e) => answer(&reply, Reply::Error(self.refusal(e))),
        }
    }

    /// The answer to a proposal or read the core refused (all definite).
    fn refusal(&self, e: ProposeError) -> ErrorCode {
        match e {
            ProposeError::NotLeader { leader } => {
                ErrorCode::NotLeader(leader.and_then(|l| self.p.directory.get(l)))
            }
            other => ErrorCode::Dropped(other.to_string()),
        }
    }

    fn status(&self) -> StatusInfo {
        let st = self.p.raw.status();
        StatusInfo {
            node: self.p.name.clone(),
            role: role_name(st.role),
            term: st.term.0,
            leader: st.leader.map(node_name),
            commit: st.commit.0,
            applied: st.applied.0,
        }
    }

    /// Gives the reads that arrived this turn to Raft as one ReadIndex round.
    fn start_reads(&mut self) {
        let Some((ctx, batch)) = self.reads.take_batch() else {
            return;
        };
        match self.p.raw.read_index(ctx) {
            Ok(()) => self.reads.register(ctx, batch),
            Err(e) => {
                let code = self.refusal(e);
                for w in batch {
                    answer(&w.reply, Reply::Error(code.clone()));
                }
            }
        }
    }

    /// Handles every Ready: persist, send, apply, advance; then snapshot if due.
    fn handle_ready(&mut self) -> Result<(), NodeError> {
        while self.p.raw.has_ready() {
            let mut rd = self.p.raw.ready();
            if self.may_send_before_persisting(&rd) {
                for m in std::mem::take(&mut rd.messages) {
                    self.p.outbox.send(m);
                }
            }
            let outbox = &self.p.outbox;
            let storage = &mut self.p.storage;
            rd.persist_then_send(
                |snapshot, entries, hard_state| persist(storage, snapshot, entries, hard_state),
                |messages| messages.into_iter().for_each(|m| outbox.send(m)),
            )
            .map_err(|source| self.storage_error(source))?;
            if let Some(hs) = &rd.hard_state {
                self.durable_term_vote = (hs.term, hs.vote);
            }
            self.apply(&rd)?;
            self.p.raw.advance(rd);
            self.maybe_snapshot()?;
        }
        Ok(())
    }

    /// Whether this Ready's messages may go out while its entries are being written: the
    /// leader writing its log in parallel with its followers (Raft thesis §10.2.1; etcd's raft
    /// documents the same for leaders). It halves the latency of a write (one fsync on the
    /// critical path instead of two in sequence).
    ///
    /// Safe here because everything else stays sequential on this thread: a follower's
    /// acknowledgement is only stepped in a later turn, after this Ready's fsync returned, so
    /// the leader never counts its own undurable entries towards a commit, and no message that
    /// reveals a commit can leave before the entries are durable. If the leader crashes before
    /// its fsync, the entries were never acknowledged to a client (indefinite, as Raft allows).
    /// Only for a leader whose term and vote are already durable and with no snapshot to
    /// install: messages that depend on a term or vote change still wait for the fsync.
    fn may_send_before_persisting(&self, rd: &Ready) -> bool {
        PARALLEL_LEADER_APPEND
            && self.p.raw.status().role == Role::Leader
            && rd.snapshot.is_none()
            && match &rd.hard_state {
                None => true,
                Some(hs) => (hs.term, hs.vote) == self.durable_term_vote,
            }
    }

    fn storage_error(&self, source: StorageError) -> NodeError {
        error!("storage failed, stopping: {source}");
        NodeError::Storage {
            dir: self.p.dir.clone(),
            source,
        }
    }

    /// Applies a Ready's snapshot, committed entries and confirmed reads.
    fn apply(&mut self, rd: &Ready) -> Result<(), NodeError> {
        if let Some(s) = &rd.snapshot {
            self.p.kv = KvStore::restore(&s.data, crate::kv::DEFAULT_MAX_SESSIONS)?;
            self.p.snapshot_index = s.meta.index.0;
            self.writes.snapshot_installed(s.meta.index.0);
            info!(
                "installed a snapshot at {} from the leader ({} keys)",
                s.meta.index.0,
                self.p.kv.len()
            );
        }
        let mut applied = rd.snapshot.as_ref().map(|s| s.meta.index.0);
        for e in &rd.committed_entries {
            self.apply_entry(e);
            applied = Some(e.index.0);
        }
        for rs in &rd.read_states {
            self.reads.confirm(rs.ctx, rs.index.0);
        }
        let applied = applied.unwrap_or(self.p.raw.status().applied.0);
        for w in self.reads.take_servable(applied) {
            let value = self.p.kv.get(&w.key).map(str::to_string);
            answer(&w.reply, Reply::Value(value));
        }
        Ok(())
    }

    fn apply_entry(&mut self, e: &Entry) {
        let (index, term) = (e.index.0, e.term.0);
        match &e.payload {
            EntryPayload::Noop => {
                self.writes
                    .applied(index, term, || Reply::Error(ErrorCode::Overwritten));
            }
            EntryPayload::Command(bytes) => match Proposal::decode(bytes) {
                Ok(p) => {
                    let outcome = self.p.kv.apply(index, &p);
                    self.writes.applied(index, term, || reply_for(outcome));
                }
                Err(err) => {
                    // Every replica skips it alike, so they stay identical.
                    error!("skipping undecodable entry {index}: {err}");
                    self.writes.applied(index, term, || {
                        Reply::Error(ErrorCode::Unknown(format!("undecodable entry: {err}")))
                    });
                }
            },
        }
    }

    /// Every `snapshot_every` applied entries: snapshot the KV state, persist it, and let the
    /// core compact its log.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let applied = self.p.raw.status().applied;
        if applied.0 < self.p.snapshot_index + self.p.snapshot_every {
            return Ok(());
        }
        let Some(term) = self.p.raw.entry(applied).map(|e| e.term) else {
            return Ok(()); // the applied entry is already compacted away
        };
        let voters = self
            .p
            .raw
            .snapshot_meta()
            .map_or_else(|| self.p.voters.clone(), |m| m.voters.clone());
        let data = self.p.kv.snapshot();
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: applied,
                term,
                voters,
            },
            data,
        };
        self.p
            .storage
            .save_snapshot(&snapshot)
            .map_err(|e| self.storage_error(e))?;
        let size = snapshot.data.len();
        if let Err(e) = self.p.raw.compact(applied, snapshot.data) {
            warn!("compaction to {} refused: {e}", applied.0);
        }
        self.p.snapshot_index = applied.0;
        debug!("snapshot at {} ({size} bytes)", applied.0);
        Ok(())
    }

    /// Logs role, term and leader changes; on losing leadership, fails the reads that can no
    /// longer be confirmed.
    fn observe_role(&mut self) {
        let st = self.p.raw.status();
        if st.role == self.role && st.leader == self.leader && st.term.0 == self.term {
            return;
        }
        let was_leader = self.role == Role::Leader;
        if st.role != self.role || st.term.0 != self.term || st.leader != self.leader {
            info!(
                "now {} in term {} (leader {})",
                st.role,
                st.term.0,
                st.leader.map_or_else(|| "unknown".to_string(), node_name)
            );
        }
        (self.role, self.leader, self.term) = (st.role, st.leader, st.term.0);
        if was_leader && st.role != Role::Leader {
            let hint = st.leader.and_then(|l| self.p.directory.get(l));
            for w in self.reads.take_unconfirmed() {
                answer(&w.reply, Reply::Error(ErrorCode::NotLeader(hint.clone())));
            }
        }
    }
}

/// Makes a Ready's snapshot, entries and hard state durable, with one fsync for the batch.
fn persist(
    storage: &mut Storage,
    snapshot: Option<&Snapshot>,
    entries: &[Entry],
    hard_state: Option<&HardState>,
) -> Result<(), StorageError> {
    if let Some(s) = snapshot {
        storage.save_snapshot(s)?;
    }
    if !entries.is_empty() {
        storage.append(entries)?;
    }
    if let Some(hs) = hard_state {
        storage.set_hard_state(hs)?;
    }
    if !entries.is_empty() || hard_state.is_some() {
        storage.sync()?;
    }
    Ok(())
}

fn reply_for(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Done => Reply::Done,
        Outcome::CasMismatch(v) => Reply::Error(ErrorCode::CasMismatch(v)),
        Outcome::StaleSeq => Reply::Error(ErrorCode::StaleSeq),
    }
}

/// The `role` of the `status` answer.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}
